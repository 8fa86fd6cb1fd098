/*
 * iCalendar parsing: a byte-level pre-check and unfolding pass of our own (limits, structure,
 * line numbers for errors), then libical for the grammar, then a walk of libical's tree that
 * turns any X-LIC-ERROR into a rejection and builds the JSON the rest of the router uses.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libical/ical.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/ics.h"
#include "dr/log.h"

#define COMP_NAME_MAX 64
#define TZID_MAX      128
/* The unfolded copy may grow by ";VALUE=DATE" on repaired RDATE/EXDATE lines. */
#define NORM_LIMIT (DR_ICS_MAX_BYTES + (size_t)DR_ICS_MAX_LINES * 16)

/*
 * libical 3.0 keeps process-wide state: the error state and errno, the lazily loaded builtin
 * time-zone list and each zone's cached transitions, and the temporary ring buffers that many
 * *_as_string() calls return. One lock around every libical call keeps worker threads apart.
 */
static pthread_mutex_t ical_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t ical_once = PTHREAD_ONCE_INIT;

struct open_comp {
    char name[COMP_NAME_MAX + 1];
    size_t line;
};

struct prescan {
    struct dr_buf out;  /* unfolded text handed to libical */
    struct dr_buf line; /* the logical line being assembled */
    size_t line_no;     /* physical line the logical line starts on */
    size_t nlines;
    size_t ncomps;
    size_t ncals;
    size_t depth;
    struct open_comp stack[DR_ICS_MAX_DEPTH];
    char *err;
    size_t errsz;
};

static void ical_init(void)
{
    icalerror_set_errors_are_fatal(0);
    (void)icaltimezone_get_builtin_timezones();
    (void)icaltimezone_get_utc_timezone();
}

static bool is_delim(char c)
{
    return c == ' ' || c == '\t' || c == ':' || c == ';' || c == ',' || c == '"' || c == '<' ||
           c == '>' || c == '(' || c == ')' || c == '\'' || c == '=';
}

/* Error texts often quote the offending line, which may hold an attendee's address. */
static void redact_emails(char *s, size_t sz)
{
    char *tmp = malloc(sz);
    size_t o = 0;
    const char *p = s;

    if (!tmp) {
        s[0] = '\0';
        return;
    }
    while (*p && o + 1 < sz) {
        const char *tok = p;
        size_t n = 0;

        if (is_delim(*p)) {
            tmp[o++] = *p++;
            continue;
        }
        while (tok[n] && !is_delim(tok[n])) {
            n++;
        }
        if (memchr(tok, '@', n)) {
            char addr[256], red[256];
            size_t m = n < sizeof(addr) - 1 ? n : sizeof(addr) - 1;

            memcpy(addr, tok, m);
            addr[m] = '\0';
            dr_log_redact_email(addr, red, sizeof(red));
            for (const char *r = red; *r && o + 1 < sz; r++) {
                tmp[o++] = *r;
            }
        } else {
            for (size_t i = 0; i < n && o + 1 < sz; i++) {
                tmp[o++] = tok[i];
            }
        }
        p = tok + n;
    }
    tmp[o] = '\0';
    memcpy(s, tmp, o + 1);
    free(tmp);
}

static int set_err(char *err, size_t errsz, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errsz, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errsz) {
        return code;
    }
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    redact_emails(err, errsz);
    return code;
}

/* ---- byte-level checks ---------------------------------------------------------------- */

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not valid UTF-8 (RFC 3629). */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

static bool utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;

    for (size_t i = 0, n; i < len; i += n) {
        n = utf8_len(p + i, len - i);
        if (!n) {
            return false;
        }
    }
    return true;
}

/* Line ends and control characters. UTF-8 is checked per content line once unfolded: a fold may
 * split a character's bytes (RFC 5545 3.1). */
static int check_bytes(const char *text, size_t len, char *err, size_t errsz)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t line = 1;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (c == '\n') {
            line++;
            continue;
        }
        if (c == '\r') {
            if (i + 1 >= len || p[i + 1] != '\n') {
                return set_err(err, errsz, DR_EINVAL, "line %zu: CR not followed by LF", line);
            }
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return set_err(err, errsz, DR_EINVAL, "line %zu: control character 0x%02x", line, c);
        }
    }
    return DR_OK;
}

/* ---- structure pass: unfolding, BEGIN/END balance, limits ------------------------------- */

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool name_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

/* "20131210Z" or "20131210Z,20121210Z": a DATE that some producers (Google) mark as UTC. */
static bool is_zdate_list(const char *v, size_t n)
{
    size_t i = 0;

    for (;;) {
        if (n - i < 9) {
            return false;
        }
        for (size_t k = 0; k < 8; k++) {
            if (!isdigit((unsigned char)v[i + k])) {
                return false;
            }
        }
        if (v[i + 8] != 'Z' && v[i + 8] != 'z') {
            return false;
        }
        i += 9;
        if (i == n) {
            return true;
        }
        if (v[i] != ',') {
            return false;
        }
        i++;
    }
}

static int begin_end(struct prescan *s, bool begin, const char *val, size_t n)
{
    char comp[COMP_NAME_MAX + 1];
    const char *what = begin ? "BEGIN" : "END";
    int rc;

    while (n && (val[n - 1] == ' ' || val[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || n > COMP_NAME_MAX) {
        return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: %s without a valid component name",
                       s->line_no, what);
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(val[i])) {
            return set_err(s->err, s->errsz, DR_EINVAL,
                           "line %zu: malformed component name in %s:%.*s", s->line_no, what,
                           (int)n, val);
        }
        comp[i] = (char)toupper((unsigned char)val[i]);
    }
    comp[n] = '\0';

    if (begin) {
        if (s->depth == 0 && strcmp(comp, "VCALENDAR") != 0) {
            return set_err(s->err, s->errsz, DR_EINVAL,
                           "line %zu: expected BEGIN:VCALENDAR, got BEGIN:%s", s->line_no, comp);
        }
        if (s->depth == DR_ICS_MAX_DEPTH) {
            return set_err(s->err, s->errsz, DR_ETOOBIG,
                           "line %zu: components nested deeper than %d", s->line_no,
                           DR_ICS_MAX_DEPTH);
        }
        if (++s->ncomps > DR_ICS_MAX_COMPONENTS) {
            return set_err(s->err, s->errsz, DR_ETOOBIG, "line %zu: more than %d components",
                           s->line_no, DR_ICS_MAX_COMPONENTS);
        }
        memcpy(s->stack[s->depth].name, comp, n + 1);
        s->stack[s->depth].line = s->line_no;
        s->depth++;
        if (s->depth == 1) {
            s->ncals++;
        }
    } else {
        if (s->depth == 0) {
            return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: END:%s without BEGIN",
                           s->line_no, comp);
        }
        if (strcmp(s->stack[s->depth - 1].name, comp) != 0) {
            return set_err(s->err, s->errsz, DR_EINVAL,
                           "line %zu: END:%s does not close BEGIN:%s from line %zu", s->line_no,
                           comp, s->stack[s->depth - 1].name, s->stack[s->depth - 1].line);
        }
        s->depth--;
    }
    rc = dr_buf_printf(&s->out, "%s:%s\n", what, comp);
    return rc == DR_ETOOBIG ? set_err(s->err, s->errsz, rc, "input too large") : rc;
}

static int logical_line(struct prescan *s)
{
    const char *l = s->line.data;
    size_t n = s->line.len, name_len = 0;
    const char *colon;
    int rc;

    if (!utf8_valid(l, n)) {
        return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: invalid UTF-8", s->line_no);
    }
    while (name_len < n && l[name_len] != ':' && l[name_len] != ';') {
        name_len++;
    }
    if (name_len == 0) {
        return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: content line without a name",
                       s->line_no);
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!is_name_char(l[i])) {
            return set_err(s->err, s->errsz, DR_EINVAL,
                           "line %zu: malformed property name \"%.*s\"", s->line_no,
                           (int)(name_len < 40 ? name_len : 40), l);
        }
    }
    colon = memchr(l + name_len, ':', n - name_len);
    if (!colon) {
        return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: %.*s has no ':' before its value",
                       s->line_no, (int)(name_len < 40 ? name_len : 40), l);
    }
    if (++s->nlines > DR_ICS_MAX_LINES) {
        return set_err(s->err, s->errsz, DR_ETOOBIG, "line %zu: more than %d content lines",
                       s->line_no, DR_ICS_MAX_LINES);
    }
    if (name_is(l, name_len, "BEGIN") || name_is(l, name_len, "END")) {
        if (l[name_len] != ':') {
            return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: parameters on %.*s", s->line_no,
                           (int)name_len, l);
        }
        return begin_end(s, name_is(l, name_len, "BEGIN"), l + name_len + 1, n - name_len - 1);
    }
    if (s->depth == 0) {
        return set_err(s->err, s->errsz, DR_EINVAL,
                       "line %zu: property %.*s outside BEGIN:VCALENDAR ... END:VCALENDAR",
                       s->line_no, (int)(name_len < 40 ? name_len : 40), l);
    }
    if ((name_is(l, name_len, "RDATE") || name_is(l, name_len, "EXDATE")) && l[name_len] == ':' &&
        is_zdate_list(l + name_len + 1, n - name_len - 1)) {
        rc = dr_buf_append(&s->out, l, name_len);
        if (!rc) {
            rc = dr_buf_appends(&s->out, ";VALUE=DATE:");
        }
        for (size_t i = name_len + 1; !rc && i < n; i++) {
            if (l[i] != 'Z' && l[i] != 'z') {
                rc = dr_buf_appendc(&s->out, l[i]);
            }
        }
    } else {
        rc = dr_buf_append(&s->out, l, n);
    }
    if (!rc) {
        rc = dr_buf_appendc(&s->out, '\n');
    }
    return rc == DR_ETOOBIG ? set_err(s->err, s->errsz, rc, "input too large") : rc;
}

/*
 * Unfolds text into s->out, one content line per '\n', after checking structure and limits.
 * libical would accept much of what is refused here, but silently or with a warning on stderr.
 */
static int prescan_run(struct prescan *s, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    size_t phys = 0;
    bool have_line = false;
    int rc;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);

        if (n && p[n - 1] == '\r') {
            n--;
        }
        phys++;
        if (n && (p[0] == ' ' || p[0] == '\t')) {
            if (!have_line) {
                return set_err(s->err, s->errsz, DR_EINVAL,
                               "line %zu: continuation line with no content line before it", phys);
            }
            rc = dr_buf_append(&s->line, p + 1, n - 1);
            if (rc) {
                return set_err(s->err, s->errsz, rc, "line %zu: content line longer than %u bytes",
                               s->line_no, DR_ICS_MAX_LINE_BYTES);
            }
        } else {
            if (have_line) {
                rc = logical_line(s);
                if (rc) {
                    return rc;
                }
            }
            have_line = false;
            if (n) {
                dr_buf_reset(&s->line);
                rc = dr_buf_append(&s->line, p, n);
                if (rc) {
                    return set_err(s->err, s->errsz, rc,
                                   "line %zu: content line longer than %u bytes", phys,
                                   DR_ICS_MAX_LINE_BYTES);
                }
                s->line_no = phys;
                have_line = true;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (have_line) {
        rc = logical_line(s);
        if (rc) {
            return rc;
        }
    }
    if (s->depth) {
        return set_err(s->err, s->errsz, DR_EINVAL, "line %zu: BEGIN:%s is never closed",
                       s->stack[s->depth - 1].line, s->stack[s->depth - 1].name);
    }
    if (!s->ncals) {
        return set_err(s->err, s->errsz, DR_EINVAL, "no BEGIN:VCALENDAR found");
    }
    if (!s->out.data) {
        return DR_ENOMEM;
    }
    return DR_OK;
}

/* ---- libical tree checks ------------------------------------------------------------------ */

/* libical drops a property with an empty value; RFC 5545 allows an empty TEXT. */
static bool error_tolerable(const char *msg)
{
    static const char prefix[] = "No value for ";
    char name[COMP_NAME_MAX + 1];
    size_t n = 0;
    icalproperty_kind kind;

    if (strncmp(msg, prefix, sizeof(prefix) - 1) != 0) {
        return false;
    }
    msg += sizeof(prefix) - 1;
    while (msg[n] && msg[n] != ' ' && n < COMP_NAME_MAX) {
        name[n] = msg[n];
        n++;
    }
    name[n] = '\0';
    if (strncmp(msg + n, " property", 9) != 0) {
        return false;
    }
    kind = icalproperty_string_to_kind(name);
    if (kind == ICAL_X_PROPERTY || (n > 2 && strncasecmp(name, "X-", 2) == 0)) {
        return true;
    }
    return kind != ICAL_NO_PROPERTY && icalproperty_kind_to_value_kind(kind) == ICAL_TEXT_VALUE;
}

/* The line of text holding what libical quotes after the last ": " of its message, or 0. */
static size_t locate(const char *text, size_t len, const char *msg)
{
    const char *q = NULL, *hit;
    size_t line = 1, qlen;
    char before, after;

    for (const char *p = strstr(msg, ": "); p; p = strstr(p + 1, ": ")) {
        q = p + 2;
    }
    if (!q || !*q) {
        return 0;
    }
    qlen = strlen(q);
    /* The quoted text as a whole token: "DTSTAR" must not match inside an earlier "DTSTART". */
    for (const char *from = text;; from = hit + 1) {
        hit = memmem(from, len - (size_t)(from - text), q, qlen);
        if (!hit) {
            return 0;
        }
        before = hit == text ? '\n' : hit[-1];
        after = hit + qlen < text + len ? hit[qlen] : '\n';
        if (strchr("\n:;=,", before) && strchr("\r\n:;,", after)) {
            break;
        }
    }
    for (const char *p = text; p < hit; p++) {
        line += *p == '\n';
    }
    return line;
}

static int check_errors(icalcomponent *c, const char *text, size_t len, char *err, size_t errsz)
{
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_XLICERROR_PROPERTY)) {
        const char *msg = icalproperty_get_xlicerror(p);
        const char *kind = icalcomponent_kind_to_string(icalcomponent_isa(c));
        size_t line;

        if (!msg) {
            msg = "unknown error";
        }
        if (error_tolerable(msg)) {
            continue;
        }
        line = locate(text, len, msg);
        if (line) {
            return set_err(err, errsz, DR_EINVAL, "line %zu: in %s: %s", line, kind ? kind : "?",
                           msg);
        }
        return set_err(err, errsz, DR_EINVAL, "in %s: %s", kind ? kind : "?", msg);
    }
    for (icalcomponent *s = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); s;
         s = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT)) {
        int rc = check_errors(s, text, len, err, errsz);
        if (rc) {
            return rc;
        }
    }
    return DR_OK;
}

static bool recur_list_empty(const short *a)
{
    return a[0] == ICAL_RECURRENCE_ARRAY_MAX;
}

static size_t recur_list_len(const short *a, size_t size)
{
    size_t n = 0;

    while (n < size && a[n] != ICAL_RECURRENCE_ARRAY_MAX) {
        n++;
    }
    return n;
}

static bool time_fields_valid(struct icaltimetype t)
{
    if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
        t.day > icaltime_days_in_month(t.month, t.year)) {
        return false;
    }
    if (t.is_date) {
        return true;
    }
    return t.hour >= 0 && t.hour < 24 && t.minute >= 0 && t.minute < 60 && t.second >= 0 &&
           t.second <= 60;
}

/* Whether day (1..31, or -1..-31 from the end) is in month in some year. */
static bool day_in_month(int month, int day)
{
    int len = month == 2 ? 29 : icaltime_days_in_month(month, 2001);

    return day != 0 && day >= -len && day <= len;
}

/*
 * What one year of an observance RRULE costs libical to expand, in steps of about 25 us
 * (measured with libical 3.0), or 0 when the rule is not one a time zone uses: yearly, in one
 * month, on a day of it, on one weekday (the 2nd Sunday), or on one weekday among up to 7 days
 * of it. Anything else is refused: FREQ=SECONDLY or BYYEARDAY expand to thousands of
 * transitions a year, and a rule that never matches (BYMONTHDAY=30 in February, the 2nd
 * Sunday on the 1st) makes libical search for several hundred milliseconds.
 */
static int rule_cost(const struct icalrecurrencetype *rt, struct icaltimetype dtstart)
{
    size_t nmonth = recur_list_len(rt->by_month, ICAL_BY_MONTH_SIZE);
    size_t nday = recur_list_len(rt->by_day, ICAL_BY_DAY_SIZE);
    size_t nmday = recur_list_len(rt->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    int month = dtstart.month, pos = 0;

    if (rt->freq != ICAL_YEARLY_RECURRENCE || rt->rscale || rt->interval < 1 ||
        !recur_list_empty(rt->by_second) || !recur_list_empty(rt->by_minute) ||
        !recur_list_empty(rt->by_hour) || !recur_list_empty(rt->by_year_day) ||
        !recur_list_empty(rt->by_week_no) || !recur_list_empty(rt->by_set_pos) || nmonth > 1 ||
        nday > 1 || nmday > 7 || ((nday || nmday) && !nmonth)) {
        return 0;
    }
    if (nmonth) {
        if (icalrecurrencetype_month_is_leap(rt->by_month[0])) {
            return 0;
        }
        month = icalrecurrencetype_month_month(rt->by_month[0]);
        if (month < 1 || month > 12) {
            return 0;
        }
    }
    for (size_t i = 0; i < nmday; i++) {
        if (!day_in_month(month, rt->by_month_day[i])) {
            return 0;
        }
    }
    if (nday) {
        pos = icalrecurrencetype_day_position(rt->by_day[0]);
        if (pos < -5 || pos > 5 || (pos && nmday)) {
            return 0;
        }
    } else if (!nmday && !day_in_month(month, dtstart.day)) {
        return 0; /* the day comes from DTSTART: the 31st in April never happens */
    }
    return (nday && !pos) || nmday > 1 ? 3 : 1;
}

static bool is_observance(icalcomponent *c)
{
    icalcomponent_kind k = icalcomponent_isa(c);

    return k == ICAL_XSTANDARD_COMPONENT || k == ICAL_XDAYLIGHT_COMPONENT;
}

/*
 * libical expands a VTIMEZONE's observances year by year from their DTSTART when converting a
 * time, so their number, their start and their rules are limited to what real zones use (see
 * dr/ics.h). An observance libical ignores (no DTSTART) costs nothing.
 */
static int check_vtimezone(icalcomponent *tz, char *err, size_t errsz)
{
    icalproperty *p = icalcomponent_get_first_property(tz, ICAL_TZID_PROPERTY);
    const char *tzid = p ? icalproperty_get_tzid(p) : NULL;

    if (!tzid || !*tzid) {
        return DR_OK; /* nothing can refer to it, so it is never expanded; ignored */
    }
    if (icalcomponent_count_components(tz, ICAL_XSTANDARD_COMPONENT) +
            icalcomponent_count_components(tz, ICAL_XDAYLIGHT_COMPONENT) >
        DR_ICS_MAX_OBSERVANCES) {
        return set_err(err, errsz, DR_ETOOBIG, "VTIMEZONE %.*s: more than %d observances", TZID_MAX,
                       tzid, DR_ICS_MAX_OBSERVANCES);
    }
    for (icalcomponent *o = icalcomponent_get_first_component(tz, ICAL_ANY_COMPONENT); o;
         o = icalcomponent_get_next_component(tz, ICAL_ANY_COMPONENT)) {
        struct icaltimetype start;

        if (!is_observance(o)) {
            continue;
        }
        p = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY);
        if (!p) {
            continue;
        }
        start = icalproperty_get_dtstart(p);
        if (icaltime_is_null_time(start) || !time_fields_valid(start)) {
            return set_err(err, errsz, DR_EINVAL,
                           "VTIMEZONE %.*s: observance DTSTART is not a valid date-time", TZID_MAX,
                           tzid);
        }
        if (start.year < DR_ICS_TZ_FIRST_YEAR) {
            return set_err(err, errsz, DR_EINVAL,
                           "VTIMEZONE %.*s: observance DTSTART in year %d, before %d", TZID_MAX,
                           tzid, start.year, DR_ICS_TZ_FIRST_YEAR);
        }
        for (icalproperty *r = icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY); r;
             r = icalcomponent_get_next_property(o, ICAL_RRULE_PROPERTY)) {
            struct icalrecurrencetype rt = icalproperty_get_rrule(r);

            if (!rule_cost(&rt, start)) {
                return set_err(err, errsz, DR_EINVAL,
                               "VTIMEZONE %.*s: observance RRULE is not a yearly rule on one "
                               "month that can match",
                               TZID_MAX, tzid);
            }
        }
    }
    return DR_OK;
}

/* Iterates the VCALENDARs under root: root itself, or the children of libical's XROOT. */
static icalcomponent *first_calendar(icalcomponent *root)
{
    if (icalcomponent_isa(root) == ICAL_VCALENDAR_COMPONENT) {
        return root;
    }
    return icalcomponent_get_first_component(root, ICAL_VCALENDAR_COMPONENT);
}

static icalcomponent *next_calendar(icalcomponent *root, icalcomponent *cal)
{
    if (cal == root) {
        return NULL;
    }
    return icalcomponent_get_next_component(root, ICAL_VCALENDAR_COMPONENT);
}

/*
 * Validates text and returns libical's tree in *root (caller frees with icalcomponent_free()).
 * Called with ical_lock held.
 */
static int load(const char *norm, const char *text, size_t len, icalcomponent **root, char *err,
                size_t errsz)
{
    icalcomponent *c;
    size_t ntz = 0;
    int rc = DR_OK;

    *root = NULL;
    c = icalparser_parse_string(norm);
    if (!c) {
        return set_err(err, errsz, DR_EINVAL, "not an iCalendar object");
    }
    if (icalcomponent_isa(c) != ICAL_VCALENDAR_COMPONENT &&
        icalcomponent_isa(c) != ICAL_XROOT_COMPONENT) {
        rc = set_err(err, errsz, DR_EINVAL, "top-level component is not VCALENDAR");
        goto out;
    }
    if (icalcomponent_count_errors(c) > 0) {
        rc = check_errors(c, text, len, err, errsz);
        if (rc) {
            goto out;
        }
    }
    for (icalcomponent *cal = first_calendar(c); cal; cal = next_calendar(c, cal)) {
        for (icalcomponent *tz = icalcomponent_get_first_component(cal, ICAL_VTIMEZONE_COMPONENT);
             tz; tz = icalcomponent_get_next_component(cal, ICAL_VTIMEZONE_COMPONENT)) {
            if (++ntz > DR_ICS_MAX_TIMEZONES) {
                rc = set_err(err, errsz, DR_ETOOBIG, "more than %d VTIMEZONEs",
                             DR_ICS_MAX_TIMEZONES);
                goto out;
            }
            rc = check_vtimezone(tz, err, errsz);
            if (rc) {
                goto out;
            }
        }
    }
    *root = c;
    c = NULL;
out:
    if (c) {
        icalcomponent_free(c);
    }
    return rc;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static int add_str(cJSON *o, const char *key, const char *val)
{
    cJSON *v = val ? cJSON_CreateString(val) : cJSON_CreateNull();

    if (!v) {
        return DR_ENOMEM;
    }
    cJSON_AddItemToObject(o, key, v);
    return DR_OK;
}

static int add_item(cJSON *o, const char *key, cJSON *v)
{
    if (!v) {
        return DR_ENOMEM;
    }
    if (key) {
        cJSON_AddItemToObject(o, key, v);
    } else {
        cJSON_AddItemToArray(o, v);
    }
    return DR_OK;
}

/* The first kind property's value; TEXT comes back unescaped, other types as written. */
static const char *first_text(icalcomponent *c, icalproperty_kind kind)
{
    icalproperty *p = icalcomponent_get_first_property(c, kind);
    icalvalue *v = p ? icalproperty_get_value(p) : NULL;

    if (!v) {
        return NULL;
    }
    if (icalvalue_isa(v) == ICAL_TEXT_VALUE) {
        return icalvalue_get_text(v);
    }
    return icalproperty_get_value_as_string(p);
}

/* "mailto:Jane@Example.COM" -> "jane@example.com"; the result is malloc'ed. */
static char *cal_address(const char *v)
{
    char *out;
    size_t n;

    if (!v) {
        v = "";
    }
    while (*v == ' ') {
        v++;
    }
    if (strncasecmp(v, "mailto:", 7) == 0) {
        v += 7;
    }
    n = strlen(v);
    out = malloc(n + 1);
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    return out;
}

static int add_address(cJSON *o, const char *key, const char *v)
{
    char *a = cal_address(v);
    int rc;

    if (!a) {
        return DR_ENOMEM;
    }
    rc = add_str(o, key, a);
    free(a);
    return rc;
}

static const char *param(icalproperty *p, const char *name)
{
    return icalproperty_get_parameter_as_string(p, name);
}

/* A zone name as the tz database writes them ("America/Argentina/Buenos_Aires", "Etc/GMT+5"):
 * never a path. */
static bool tzid_plausible(const char *tzid)
{
    size_t n = strlen(tzid);

    if (n == 0 || n > TZID_MAX || !isalnum((unsigned char)tzid[0]) || strstr(tzid, "..")) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = tzid[i];
        if (!isalnum((unsigned char)c) && c != '/' && c != '_' && c != '-' && c != '+') {
            return false;
        }
    }
    return true;
}

/* The zone name in a TZID libical wrote for one of its builtin zones (Evolution and other
 * libical users send them): "/freeassociation.sourceforge.net/Europe/Berlin" and its older forms
 * ".../Tzfile/Europe/Berlin", "/citadel.org/20190914_1/Europe/Berlin". Else tzid itself. */
static const char *builtin_name(const char *tzid)
{
    static const struct {
        const char *prefix;
        int slashes; /* the name follows this many '/' */
    } prefixes[] = {
        {"/freeassociation.sourceforge.net/Tzfile/", 3},
        {"/freeassociation.sourceforge.net/", 2},
        {"/citadel.org/", 3},
    };

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(tzid, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) {
            const char *p = tzid;

            for (int k = 0; p && k < prefixes[i].slashes; k++) {
                p = strchr(p, '/');
                p = p ? p + 1 : NULL;
            }
            return p ? p : tzid;
        }
    }
    return tzid;
}

/* The object's own VTIMEZONE first, then libical's builtin zones by name (never a file path). */
static icaltimezone *resolve_tzid(icalcomponent *cal, const char *tzid)
{
    icaltimezone *z = icalcomponent_get_timezone(cal, tzid);
    const char *name = builtin_name(tzid);

    if (z || !tzid_plausible(name)) {
        return z;
    }
    return icaltimezone_get_builtin_timezone(name);
}

static void format_time(struct icaltimetype t, bool z, char out[32])
{
    if (t.is_date) {
        snprintf(out, 32, "%04d-%02d-%02d", t.year, t.month, t.day);
    } else {
        snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%s", t.year, t.month, t.day, t.hour,
                 t.minute, t.second, z ? "Z" : "");
    }
}

static const char *prop_tzid(icalproperty *p)
{
    icalparameter *tz = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);

    return tz ? icalparameter_get_tzid(tz) : NULL;
}

/* ---- time-zone work ---------------------------------------------------------------------- */

/*
 * libical converts a local time by expanding its zone into transitions, year by year from each
 * observance's DTSTART to five years past the year asked for (never past 2582), and expands the
 * whole zone again whenever a later year is asked for; all under ical_lock. check_vtimezone()
 * limits the zones an object brings; before the first conversion, plan_zones() then
 *  - finds every zone the events use and the years they use it in (a time with a TZID after
 *    DR_ICS_TZ_LAST_YEAR is refused);
 *  - takes the object's own VTIMEZONE, or a copy of libical's builtin zone, and cuts it down to
 *    those years: an observance that starts long before them is moved up to its first
 *    transition in the year before last before the first one used (Windows writes 1601 for
 *    today's rule), and one that ended before that is dropped. Every conversion the object
 *    needs gives the same result as with the whole zone;
 *  - counts what libical will expand, and refuses the object over DR_ICS_MAX_TZ_STEPS;
 *  - has libical expand each zone once, to the latest year used, so no conversion starts over.
 * libical's own builtin zones are never expanded here, so no message changes what the next one
 * costs.
 */
#define LIBICAL_EXTRA_YEARS 5    /* ICALTIMEZONE_EXTRA_COVERAGE */
#define LIBICAL_LAST_YEAR   2582 /* ICALTIMEZONE_MAX_YEAR with a 64-bit time_t */
#define TRIM_STEPS          3    /* steps of moving one observance: an iterator and one year */

struct tzuse {
    icaltimezone *zone; /* what the TZID resolves to */
    icaltimezone *conv; /* what its times are converted with: zone, or an owned cut copy */
    const char *tzid;   /* as the first time using it wrote it */
    int first_year, last_year;
};

struct tzplan {
    struct tzuse use[DR_ICS_MAX_TIMEZONES]; /* of the VCALENDAR being converted */
    size_t n;
    long steps; /* over the whole object */
};

static void plan_reset(struct tzplan *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->use[i].conv && pl->use[i].conv != pl->use[i].zone) {
            icaltimezone_free(pl->use[i].conv, 1);
        }
    }
    pl->n = 0;
}

static int this_year(void)
{
    time_t now = time(NULL);
    struct tm tm;

    return gmtime_r(&now, &tm) ? tm.tm_year + 1900 : 1970;
}

/* The offset libical applies to an observance's times: TZOFFSETFROM, else TZOFFSETTO. */
static bool observance_from(icalcomponent *o, int *offset)
{
    icalproperty *p = icalcomponent_get_first_property(o, ICAL_TZOFFSETFROM_PROPERTY);

    if (!p) {
        p = icalcomponent_get_first_property(o, ICAL_TZOFFSETTO_PROPERTY);
        if (!p) {
            return false;
        }
        *offset = icalproperty_get_tzoffsetto(p);
        return true;
    }
    *offset = icalproperty_get_tzoffsetfrom(p);
    return true;
}

/* The observance's one RRULE as libical expands it (UNTIL in UTC made local with
 * TZOFFSETFROM), if it has exactly one and no COUNT. */
static bool observance_rule(icalcomponent *o, icalproperty **rp, struct icalrecurrencetype *rt)
{
    int offset;

    *rp = icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY);
    if (!*rp || icalcomponent_get_next_property(o, ICAL_RRULE_PROPERTY) ||
        !observance_from(o, &offset)) {
        return false;
    }
    *rt = icalproperty_get_rrule(*rp);
    if (rt->count) {
        return false;
    }
    if (!icaltime_is_null_time(rt->until) && icaltime_is_utc(rt->until)) {
        icaltime_adjust(&rt->until, 0, 0, 0, offset);
        rt->until.zone = NULL;
    }
    return true;
}

/* Starts the observance at its first transition in year, if it has one there. */
static bool move_observance(icalproperty *dp, const struct icalrecurrencetype *rt,
                            struct icaltimetype start, int year)
{
    struct icaltimetype from = start, occ = icaltime_null_time();
    icalrecur_iterator *it = icalrecur_iterator_new(*rt, start);

    from.year = year;
    from.month = from.day = 1;
    from.hour = from.minute = from.second = 0;
    if (it && icalrecur_iterator_set_start(it, from)) {
        occ = icalrecur_iterator_next(it);
    }
    icalrecur_iterator_free(it);
    if (icaltime_is_null_time(occ) || occ.year != year) {
        return false;
    }
    icalproperty_set_dtstart(dp, occ);
    return true;
}

/* Whether every transition of the observance falls in a year before year. */
static bool observance_before(icalcomponent *o, struct icaltimetype start, int year)
{
    icalproperty *rp;
    struct icalrecurrencetype rt;

    if (start.year >= year) {
        return false;
    }
    if (icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY)) {
        if (!observance_rule(o, &rp, &rt) || icaltime_is_null_time(rt.until) ||
            rt.until.year >= year) {
            return false;
        }
    }
    for (icalproperty *p = icalcomponent_get_first_property(o, ICAL_RDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(o, ICAL_RDATE_PROPERTY)) {
        struct icaldatetimeperiodtype dp = icalproperty_get_rdate(p);
        struct icaltimetype t = icaltime_is_null_time(dp.time) ? dp.period.start : dp.time;

        if (t.year >= year) {
            return false;
        }
    }
    return true;
}

/*
 * Cuts tz down for conversions of times from the start of floor + 1 on: each yearly observance
 * that begins earlier is moved up to its first transition in floor (or, when it ended, in the
 * year before its UNTIL), and once one such transition in floor is kept, every observance whose
 * transitions all fall before floor - 1 is dropped. Such a conversion still finds the same
 * latest transition before it, and the same one before that, as with the whole zone. What
 * cannot be moved (COUNT, several RRULEs, a rule that skips the year) stays and is counted in
 * full. Adds the work of moving to *steps.
 */
static void trim_vtimezone(icalcomponent *tz, int floor, long *steps)
{
    bool anchored = false;
    icalcomponent *o, *next;

    for (o = icalcomponent_get_first_component(tz, ICAL_ANY_COMPONENT); o;
         o = icalcomponent_get_next_component(tz, ICAL_ANY_COMPONENT)) {
        icalproperty *dp = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY), *rp;
        struct icalrecurrencetype rt;
        struct icaltimetype start;

        if (!is_observance(o) || !dp || !observance_rule(o, &rp, &rt)) {
            continue;
        }
        start = icalproperty_get_dtstart(dp);
        /* one that ended is dropped or moved below */
        if (start.year < floor && (icaltime_is_null_time(rt.until) || rt.until.year > floor)) {
            *steps += TRIM_STEPS;
            anchored = move_observance(dp, &rt, start, floor) || anchored;
        }
    }
    for (o = icalcomponent_get_first_component(tz, ICAL_ANY_COMPONENT); o; o = next) {
        icalproperty *dp = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY), *rp;
        struct icalrecurrencetype rt;
        struct icaltimetype start;

        next = icalcomponent_get_next_component(tz, ICAL_ANY_COMPONENT);
        if (!is_observance(o) || !dp) {
            continue;
        }
        start = icalproperty_get_dtstart(dp);
        if (anchored && observance_before(o, start, floor - 1)) {
            icalcomponent_remove_component(tz, o);
            icalcomponent_free(o);
            continue;
        }
        if (observance_rule(o, &rp, &rt) && !icaltime_is_null_time(rt.until) &&
            rt.until.year <= floor && start.year < rt.until.year - 1) {
            *steps += TRIM_STEPS;
            (void)move_observance(dp, &rt, start, rt.until.year - 1);
        }
    }
}

/* Transition-years libical computes to expand tz up to the year horizon. */
static long vtimezone_steps(icalcomponent *tz, int horizon)
{
    long steps = 0;

    for (icalcomponent *o = icalcomponent_get_first_component(tz, ICAL_ANY_COMPONENT); o;
         o = icalcomponent_get_next_component(tz, ICAL_ANY_COMPONENT)) {
        icalproperty *dp = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY);
        struct icaltimetype start;

        if (!is_observance(o) || !dp) {
            continue;
        }
        start = icalproperty_get_dtstart(dp);
        steps++;
        steps += icalcomponent_count_properties(o, ICAL_RDATE_PROPERTY);
        for (icalproperty *r = icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY); r;
             r = icalcomponent_get_next_property(o, ICAL_RRULE_PROPERTY)) {
            struct icalrecurrencetype rt = icalproperty_get_rrule(r);
            int last = horizon, cost = rule_cost(&rt, start);

            if (!icaltime_is_null_time(rt.until) && rt.until.year + 1 < last) {
                last = rt.until.year + 1;
            }
            if (last >= start.year) {
                /* a builtin zone's rules are not checked: count an odd one high */
                steps += (long)(last - start.year + 1) * (cost ? cost : 10);
            }
        }
    }
    return steps;
}

static int plan_time(struct tzplan *pl, icalcomponent *cal, const char *uid, const char *what,
                     struct icaltimetype t, const char *tzid, char *err, size_t errsz)
{
    struct tzuse *u = NULL;
    icaltimezone *z;

    /* what time_json() refuses or does not convert */
    if (!tzid || icaltime_is_null_time(t) || !time_fields_valid(t) || t.is_date ||
        icaltime_is_utc(t) || !(z = resolve_tzid(cal, tzid))) {
        return DR_OK;
    }
    if (t.year > DR_ICS_TZ_LAST_YEAR) {
        return set_err(err, errsz, DR_EINVAL,
                       "VEVENT %.100s: %s in year %d with TZID \"%.128s\": times in a time zone "
                       "are converted up to year %d",
                       uid ? uid : "(no UID)", what, t.year, tzid, DR_ICS_TZ_LAST_YEAR);
    }
    for (size_t i = 0; i < pl->n && !u; i++) {
        u = pl->use[i].zone == z ? &pl->use[i] : NULL;
    }
    if (!u) {
        if (pl->n == DR_ICS_MAX_TIMEZONES) {
            return set_err(err, errsz, DR_ETOOBIG, "the events use more than %d time zones",
                           DR_ICS_MAX_TIMEZONES);
        }
        u = &pl->use[pl->n++];
        *u = (struct tzuse){.zone = z, .tzid = tzid, .first_year = t.year, .last_year = t.year};
    }
    u->first_year = t.year < u->first_year ? t.year : u->first_year;
    u->last_year = t.year > u->last_year ? t.year : u->last_year;
    return DR_OK;
}

/* Every time of ev that event_json() converts through a zone (and a few it does not). */
static int plan_event(struct tzplan *pl, icalcomponent *cal, icalcomponent *ev, char *err,
                      size_t errsz)
{
    const char *uid = first_text(ev, ICAL_UID_PROPERTY);
    icalproperty *start = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    icalproperty *dur = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY);
    int rc = DR_OK;

    if (start && dur && !icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY)) {
        rc =
            plan_time(pl, cal, uid, "DTSTART+DURATION",
                      icaltime_add(icalproperty_get_dtstart(start), icalproperty_get_duration(dur)),
                      prop_tzid(start), err, errsz);
    }
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ANY_PROPERTY); p && !rc;
         p = icalcomponent_get_next_property(ev, ICAL_ANY_PROPERTY)) {
        const char *name = icalproperty_get_property_name(p), *tzid = prop_tzid(p);
        struct icaltimetype t = icaltime_null_time();
        struct icaldatetimeperiodtype dp;

        switch (icalproperty_isa(p)) {
        case ICAL_DTSTART_PROPERTY:
            t = icalproperty_get_dtstart(p);
            break;
        case ICAL_DTEND_PROPERTY:
            t = icalproperty_get_dtend(p);
            break;
        case ICAL_RECURRENCEID_PROPERTY:
            t = icalproperty_get_recurrenceid(p);
            break;
        case ICAL_EXDATE_PROPERTY:
            t = icalproperty_get_exdate(p);
            break;
        case ICAL_CREATED_PROPERTY:
            t = icalproperty_get_created(p);
            break;
        case ICAL_LASTMODIFIED_PROPERTY:
            t = icalproperty_get_lastmodified(p);
            break;
        case ICAL_RDATE_PROPERTY:
            dp = icalproperty_get_rdate(p);
            rc = plan_time(pl, cal, uid, name, dp.time, tzid, err, errsz);
            rc = rc ? rc : plan_time(pl, cal, uid, name, dp.period.start, tzid, err, errsz);
            t = dp.period.end;
            break;
        default:
            break;
        }
        rc = rc ? rc : plan_time(pl, cal, uid, name, t, tzid, err, errsz);
    }
    return rc;
}

/* See "time-zone work" above. Called for each VCALENDAR before any of its times is converted;
 * plan_reset() frees what it made. */
static int plan_zones(struct tzplan *pl, icalcomponent *cal, char *err, size_t errsz)
{
    int now = this_year();
    int rc = DR_OK;

    plan_reset(pl);
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
         ev && !rc; ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        rc = plan_event(pl, cal, ev, err, errsz);
    }
    for (size_t i = 0; i < pl->n && !rc; i++) {
        struct tzuse *u = &pl->use[i];
        icalcomponent *tz = icaltimezone_get_component(u->zone);
        int horizon = (u->last_year > now ? u->last_year : now) + LIBICAL_EXTRA_YEARS;
        struct icaltimetype t = icaltime_null_time();

        if (!tz) {
            u->conv = u->zone; /* libical has no rules for it: every offset is 0 */
            continue;
        }
        if (icalcomponent_get_parent(tz) == cal) {
            u->conv = u->zone; /* the object's own VTIMEZONE, cut down in place */
        } else {
            /* a builtin zone: a copy, cut down for this object alone */
            icalcomponent *copy = icalcomponent_new_clone(tz);

            u->conv = icaltimezone_new();
            if (!copy || !u->conv || !icaltimezone_set_component(u->conv, copy)) {
                if (copy) {
                    icalcomponent_free(copy);
                }
                return DR_ENOMEM;
            }
            tz = copy;
        }
        trim_vtimezone(tz, u->first_year - 2, &pl->steps);
        pl->steps += vtimezone_steps(tz, horizon < LIBICAL_LAST_YEAR ? horizon : LIBICAL_LAST_YEAR);
        if (pl->steps > DR_ICS_MAX_TZ_STEPS) {
            return set_err(err, errsz, DR_ETOOBIG,
                           "time zones: converting the times takes more than %d transition-years "
                           "(at TZID \"%.128s\")",
                           DR_ICS_MAX_TZ_STEPS, u->tzid);
        }
        t.year = u->last_year;
        t.month = 12;
        t.day = 31;
        (void)icaltimezone_get_utc_offset(u->conv, &t, NULL);
    }
    return rc;
}

/* The zone to convert t with when its TZID resolved to z, if plan_zones() counted and expanded
 * it for t's year; else NULL. */
static icaltimezone *planned_zone(const struct tzplan *pl, icaltimezone *z, struct icaltimetype t)
{
    for (size_t i = 0; pl && i < pl->n; i++) {
        const struct tzuse *u = &pl->use[i];

        if (u->zone == z) {
            return t.year >= u->first_year && t.year <= u->last_year ? u->conv : NULL;
        }
    }
    return NULL;
}

struct evctx {
    icalcomponent *cal;
    const struct tzplan *plan;
    const char *uid;
    char *err;
    size_t errsz;
};

static int time_err(struct evctx *x, const char *what, const char *fmt, const char *arg)
{
    char msg[200];

    snprintf(msg, sizeof(msg), fmt, arg);
    return set_err(x->err, x->errsz, DR_EINVAL, "VEVENT %.100s: %s %s",
                   x->uid ? x->uid : "(no UID)", what, msg);
}

/* TIME object for t whose TZID parameter (if any) is tzid. */
static int time_json(struct evctx *x, const char *what, struct icaltimetype t, const char *tzid,
                     cJSON **out)
{
    cJSON *o;
    char buf[32], ubuf[32];
    int rc = DR_OK;

    *out = NULL;
    if (icaltime_is_null_time(t) || !time_fields_valid(t)) {
        return time_err(x, what, "%s", "is not a valid date or date-time");
    }
    o = cJSON_CreateObject();
    if (!o) {
        return DR_ENOMEM;
    }
    if (t.is_date) {
        format_time(t, false, buf);
        rc = add_str(o, "value", buf);
        rc = rc ? rc : add_str(o, "tzid", NULL);
        rc = rc ? rc : add_str(o, "utc", NULL);
    } else if (icaltime_is_utc(t)) {
        format_time(t, true, buf);
        rc = add_str(o, "value", buf);
        rc = rc ? rc : add_str(o, "tzid", NULL);
        rc = rc ? rc : add_str(o, "utc", buf);
    } else if (tzid) {
        icaltimezone *z = resolve_tzid(x->cal, tzid);
        struct icaltimetype u;

        if (!z) {
            rc = time_err(x, what, "TZID \"%.128s\" matches no VTIMEZONE and no known zone", tzid);
            goto out;
        }
        z = planned_zone(x->plan, z, t);
        if (!z) {
            /* plan_event() missed this time: converting it could expand the zone again */
            rc = time_err(x, what, "%s", "is outside the years its time zone was checked for");
            goto out;
        }
        format_time(t, false, buf);
        icaltime_set_timezone(&t, z);
        u = icaltime_convert_to_zone(t, icaltimezone_get_utc_timezone());
        if (!time_fields_valid(u)) {
            rc = time_err(x, what, "%s", "is out of range in UTC");
            goto out;
        }
        format_time(u, true, ubuf);
        rc = add_str(o, "value", buf);
        rc = rc ? rc : add_str(o, "tzid", tzid);
        rc = rc ? rc : add_str(o, "utc", ubuf);
    } else {
        format_time(t, false, buf);
        rc = add_str(o, "value", buf);
        rc = rc ? rc : add_str(o, "tzid", NULL);
        rc = rc ? rc : add_str(o, "utc", NULL);
    }
    rc = rc ? rc : add_item(o, "all_day", cJSON_CreateBool(t.is_date));
out:
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return DR_OK;
}

static int add_time_prop(struct evctx *x, cJSON *o, const char *key, icalproperty *p,
                         struct icaltimetype t)
{
    cJSON *tj;
    int rc = time_json(x, icalproperty_get_property_name(p), t, prop_tzid(p), &tj);

    return rc ? rc : add_item(o, key, tj);
}

static int add_person(cJSON *o, icalproperty *p, bool attendee)
{
    cJSON *a = cJSON_CreateObject();
    const char *v;
    int rc;

    if (!a) {
        return DR_ENOMEM;
    }
    rc = add_address(a, "email", icalproperty_get_value_as_string(p));
    rc = rc ? rc : add_str(a, "name", param(p, "CN"));
    if (attendee) {
        v = param(p, "PARTSTAT");
        rc = rc ? rc : add_str(a, "partstat", v ? v : "NEEDS-ACTION");
        v = param(p, "ROLE");
        rc = rc ? rc : add_str(a, "role", v ? v : "REQ-PARTICIPANT");
        v = param(p, "RSVP");
        rc = rc ? rc : add_item(a, "rsvp", cJSON_CreateBool(v && strcasecmp(v, "TRUE") == 0));
    }
    if (rc) {
        cJSON_Delete(a);
        return rc;
    }
    return add_item(o, attendee ? NULL : "organizer", a);
}

static int add_recurrence(struct evctx *x, icalcomponent *ev, cJSON *e)
{
    cJSON *rrule = cJSON_AddArrayToObject(e, "rrule");
    cJSON *rdate = cJSON_AddArrayToObject(e, "rdate");
    cJSON *exdate = cJSON_AddArrayToObject(e, "exdate");
    icalproperty *p;
    int rc = DR_OK;

    if (!rrule || !rdate || !exdate) {
        return DR_ENOMEM;
    }
    for (p = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY); p && !rc;
         p = icalcomponent_get_next_property(ev, ICAL_RRULE_PROPERTY)) {
        struct icalrecurrencetype rt = icalproperty_get_rrule(p);
        char *s = icalrecurrencetype_as_string_r(&rt);

        if (!s) {
            return set_err(x->err, x->errsz, DR_EINVAL, "VEVENT %.100s: unusable RRULE",
                           x->uid ? x->uid : "(no UID)");
        }
        rc = add_item(rrule, NULL, cJSON_CreateString(s));
        icalmemory_free_buffer(s);
    }
    for (p = icalcomponent_get_first_property(ev, ICAL_RDATE_PROPERTY); p && !rc;
         p = icalcomponent_get_next_property(ev, ICAL_RDATE_PROPERTY)) {
        struct icaldatetimeperiodtype dp = icalproperty_get_rdate(p);
        cJSON *tj = NULL;

        if (!icaltime_is_null_time(dp.time)) {
            rc = time_json(x, "RDATE", dp.time, prop_tzid(p), &tj);
        } else {
            rc = time_json(x, "RDATE", dp.period.start, prop_tzid(p), &tj);
            if (!rc && !icaltime_is_null_time(dp.period.end)) {
                cJSON *ej;
                rc = time_json(x, "RDATE", dp.period.end, prop_tzid(p), &ej);
                rc = rc ? rc : add_item(tj, "end", ej);
            } else if (!rc) {
                char *d = icaldurationtype_as_ical_string_r(dp.period.duration);
                rc = add_str(tj, "duration", d);
                icalmemory_free_buffer(d);
            }
        }
        if (rc) {
            cJSON_Delete(tj);
            break;
        }
        rc = add_item(rdate, NULL, tj);
    }
    for (p = icalcomponent_get_first_property(ev, ICAL_EXDATE_PROPERTY); p && !rc;
         p = icalcomponent_get_next_property(ev, ICAL_EXDATE_PROPERTY)) {
        cJSON *tj;

        rc = time_json(x, "EXDATE", icalproperty_get_exdate(p), prop_tzid(p), &tj);
        rc = rc ? rc : add_item(exdate, NULL, tj);
    }
    return rc;
}

static int add_stamp(struct evctx *x, cJSON *e, const char *key, icalproperty *p,
                     struct icaltimetype t)
{
    cJSON *tj;
    const cJSON *u;
    int rc;

    if (!p) {
        return DR_OK;
    }
    rc = time_json(x, icalproperty_get_property_name(p), t, prop_tzid(p), &tj);
    if (rc) {
        return rc;
    }
    u = cJSON_GetObjectItemCaseSensitive(tj, "utc");
    if (!cJSON_IsString(u)) {
        u = cJSON_GetObjectItemCaseSensitive(tj, "value");
    }
    rc = add_str(e, key, u->valuestring);
    cJSON_Delete(tj);
    return rc;
}

static int event_json(icalcomponent *cal, const struct tzplan *plan, icalcomponent *ev, cJSON **out,
                      char *err, size_t errsz)
{
    struct evctx x = {.cal = cal, .plan = plan, .err = err, .errsz = errsz};
    cJSON *e = cJSON_CreateObject(), *list, *start = NULL;
    icalproperty *p, *dtstart;
    const char *s;
    int rc;

    *out = NULL;
    if (!e) {
        return DR_ENOMEM;
    }
    x.uid = first_text(ev, ICAL_UID_PROPERTY);
    rc = add_str(e, "uid", x.uid);
    p = icalcomponent_get_first_property(ev, ICAL_SEQUENCE_PROPERTY);
    rc =
        rc ? rc : add_item(e, "sequence", cJSON_CreateNumber(p ? icalproperty_get_sequence(p) : 0));
    rc = rc ? rc : add_str(e, "summary", first_text(ev, ICAL_SUMMARY_PROPERTY));
    if (!rc && (s = first_text(ev, ICAL_DESCRIPTION_PROPERTY))) {
        rc = add_str(e, "description", s);
    }
    if (!rc && (s = first_text(ev, ICAL_LOCATION_PROPERTY))) {
        rc = add_str(e, "location", s);
    }
    rc = rc ? rc : add_str(e, "status", first_text(ev, ICAL_STATUS_PROPERTY));
    if (rc) {
        goto out;
    }

    dtstart = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    if (dtstart) {
        rc =
            time_json(&x, "DTSTART", icalproperty_get_dtstart(dtstart), prop_tzid(dtstart), &start);
        rc = rc ? rc : add_item(e, "start", start);
    } else {
        rc = add_str(e, "start", NULL);
    }
    if (rc) {
        goto out;
    }
    p = icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY);
    if (p) {
        rc = add_time_prop(&x, e, "end", p, icalproperty_get_dtend(p));
    } else if ((p = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY))) {
        struct icaldurationtype d = icalproperty_get_duration(p);
        char *ds = icaldurationtype_as_ical_string_r(d);

        rc = add_str(e, "duration", ds);
        icalmemory_free_buffer(ds);
        if (!rc && dtstart) {
            struct icaltimetype st = icalproperty_get_dtstart(dtstart);
            cJSON *tj;

            rc = time_json(&x, "DTSTART+DURATION", icaltime_add(st, d), prop_tzid(dtstart), &tj);
            rc = rc ? rc : add_item(e, "end", tj);
        } else if (!rc) {
            rc = add_str(e, "end", NULL);
        }
    } else {
        rc = add_str(e, "end", NULL);
    }
    if (rc) {
        goto out;
    }

    p = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);
    rc = p ? add_person(e, p, false) : add_str(e, "organizer", NULL);
    list = rc ? NULL : cJSON_AddArrayToObject(e, "attendees");
    if (!rc && !list) {
        rc = DR_ENOMEM;
    }
    for (p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p && !rc;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        rc = add_person(list, p, true);
    }
    rc = rc ? rc : add_recurrence(&x, ev, e);
    if (!rc && (p = icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY))) {
        rc = add_time_prop(&x, e, "recurrence_id", p, icalproperty_get_recurrenceid(p));
    }
    if (!rc) {
        p = icalcomponent_get_first_property(ev, ICAL_CREATED_PROPERTY);
        rc = add_stamp(&x, e, "created", p, p ? icalproperty_get_created(p) : icaltime_null_time());
    }
    if (!rc) {
        p = icalcomponent_get_first_property(ev, ICAL_LASTMODIFIED_PROPERTY);
        rc = add_stamp(&x, e, "last_modified", p,
                       p ? icalproperty_get_lastmodified(p) : icaltime_null_time());
    }
out:
    if (rc) {
        cJSON_Delete(e);
        return rc;
    }
    *out = e;
    return DR_OK;
}

/* The METHOD shared by every VCALENDAR under root; NULL if none has one. Copied into *out. */
static int common_method(icalcomponent *root, char **out, char *err, size_t errsz)
{
    *out = NULL;
    for (icalcomponent *cal = first_calendar(root); cal; cal = next_calendar(root, cal)) {
        const char *m = first_text(cal, ICAL_METHOD_PROPERTY);

        if (!m) {
            continue;
        }
        if (*out && strcasecmp(*out, m) != 0) {
            int rc = set_err(err, errsz, DR_EINVAL, "VCALENDARs with different METHODs (%s, %s)",
                             *out, m);
            free(*out);
            *out = NULL;
            return rc;
        }
        if (!*out) {
            *out = strdup(m);
            if (!*out) {
                return DR_ENOMEM;
            }
        }
    }
    return DR_OK;
}

static int build_parse_json(icalcomponent *root, cJSON **out, char *err, size_t errsz)
{
    cJSON *o = cJSON_CreateObject(), *events, *tzs;
    struct tzplan *plan = calloc(1, sizeof(*plan));
    char *method = NULL;
    int rc;

    *out = NULL;
    if (!o || !plan) {
        cJSON_Delete(o);
        free(plan);
        return DR_ENOMEM;
    }
    rc = common_method(root, &method, err, errsz);
    rc = rc ? rc : add_str(o, "method", method);
    free(method);
    events = rc ? NULL : cJSON_AddArrayToObject(o, "events");
    tzs = events ? cJSON_AddArrayToObject(o, "timezones") : NULL;
    if (!rc && !tzs) {
        rc = DR_ENOMEM;
    }
    for (icalcomponent *cal = first_calendar(root); cal && !rc; cal = next_calendar(root, cal)) {
        rc = plan_zones(plan, cal, err, errsz);
        for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
             ev && !rc; ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
            cJSON *e;

            rc = event_json(cal, plan, ev, &e, err, errsz);
            rc = rc ? rc : add_item(events, NULL, e);
        }
        for (icalcomponent *tz = icalcomponent_get_first_component(cal, ICAL_VTIMEZONE_COMPONENT);
             tz && !rc; tz = icalcomponent_get_next_component(cal, ICAL_VTIMEZONE_COMPONENT)) {
            const char *tzid = first_text(tz, ICAL_TZID_PROPERTY);

            if (tzid && *tzid) {
                rc = add_item(tzs, NULL, cJSON_CreateString(tzid));
            }
        }
    }
    plan_reset(plan);
    free(plan);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return DR_OK;
}

static int reply_json(icalcomponent *root, cJSON **out, char *err, size_t errsz)
{
    cJSON *arr;
    char *method = NULL;
    int rc;

    *out = NULL;
    rc = common_method(root, &method, err, errsz);
    if (rc) {
        return rc;
    }
    if (!method || strcasecmp(method, "REPLY") != 0) {
        rc = set_err(err, errsz, DR_EINVAL, "METHOD is %s, not REPLY", method ? method : "absent");
        free(method);
        return rc;
    }
    free(method);
    arr = cJSON_CreateArray();
    if (!arr) {
        return DR_ENOMEM;
    }
    for (icalcomponent *cal = first_calendar(root); cal && !rc; cal = next_calendar(root, cal)) {
        for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT);
             c && !rc; c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
            icalcomponent_kind k = icalcomponent_isa(c);
            const char *uid;

            if (k != ICAL_VEVENT_COMPONENT && k != ICAL_VTODO_COMPONENT) {
                continue;
            }
            uid = first_text(c, ICAL_UID_PROPERTY);
            if (!uid || !*uid) {
                rc = set_err(err, errsz, DR_EINVAL, "REPLY %s without UID",
                             icalcomponent_kind_to_string(k));
                break;
            }
            for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
                 p && !rc; p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
                cJSON *a = cJSON_CreateObject();
                const char *ps = param(p, "PARTSTAT");

                if (!a) {
                    rc = DR_ENOMEM;
                    break;
                }
                rc = add_str(a, "uid", uid);
                rc = rc ? rc : add_address(a, "attendee", icalproperty_get_value_as_string(p));
                rc = rc ? rc : add_str(a, "partstat", ps ? ps : "NEEDS-ACTION");
                if (rc) {
                    cJSON_Delete(a);
                    break;
                }
                cJSON_AddItemToArray(arr, a);
            }
        }
    }
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return DR_OK;
}

/* ---- entry points ------------------------------------------------------------------------- */

enum mode { MODE_PARSE, MODE_REPLY };

static int run(const char *text, size_t len, enum mode mode, cJSON **out, char *err, size_t errsz)
{
    struct prescan s = {.err = err, .errsz = errsz};
    icalcomponent *root = NULL;
    int rc;

    *out = NULL;
    if (err && errsz) {
        err[0] = '\0';
    }
    if (!text) {
        return set_err(err, errsz, DR_EINVAL, "no input");
    }
    if (len > DR_ICS_MAX_BYTES) {
        return set_err(err, errsz, DR_ETOOBIG, "input of %zu bytes exceeds the %u byte limit", len,
                       DR_ICS_MAX_BYTES);
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    rc = check_bytes(text, len, err, errsz);
    if (rc) {
        return rc;
    }
    dr_buf_init(&s.out, NORM_LIMIT);
    dr_buf_init(&s.line, DR_ICS_MAX_LINE_BYTES);
    rc = prescan_run(&s, text, len);
    dr_buf_cleanup(&s.line);
    if (rc) {
        goto out;
    }

    pthread_once(&ical_once, ical_init);
    pthread_mutex_lock(&ical_lock);
    rc = load(s.out.data, text, len, &root, err, errsz);
    if (!rc) {
        rc = mode == MODE_PARSE ? build_parse_json(root, out, err, errsz)
                                : reply_json(root, out, err, errsz);
    }
    if (root) {
        icalcomponent_free(root);
    }
    pthread_mutex_unlock(&ical_lock);
out:
    dr_buf_cleanup(&s.out);
    if (rc == DR_ENOMEM && err && errsz && !err[0]) {
        set_err(err, errsz, rc, "out of memory");
    }
    return rc;
}

int dr_ics_parse(const char *text, size_t len, cJSON **out, char *err, size_t errsz)
{
    return run(text, len, MODE_PARSE, out, err, errsz);
}

int dr_ics_reply_partstats(const char *text, size_t len, cJSON **out)
{
    return run(text, len, MODE_REPLY, out, NULL, 0);
}
