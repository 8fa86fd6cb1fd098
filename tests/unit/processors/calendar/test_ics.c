/*
 * Tests for src/processors/calendar/ics.c against public corpora (tests/data/ics/SOURCE.md):
 * the RFC 2446 iTIP examples and fuzz reproducers from libical, the jCal parser fixtures and
 * samples from ical.js, plus hostile input built here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libical/ical.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/ics.h"
#include "dr/json.h"
#include "dr/util.h"

#define ERRSZ 512

static char *slurp(const char *rel, size_t *len)
{
    const char *base = getenv("DR_TEST_DATA");
    char path[1024];
    FILE *f;
    long n;
    char *b;

    snprintf(path, sizeof(path), "%s/ics/%s", base ? base : "tests/data", rel);
    f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in tests/data/ics/<rel> ending in suffix ("" for all regular files). */
static char **list_dir(const char *rel, const char *suffix, size_t *count)
{
    const char *base = getenv("DR_TEST_DATA");
    char path[1024];
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/ics/%s", base ? base : "tests/data", rel);
    d = opendir(path);
    if (!d) {
        fail_msg("cannot open %s", path);
    }
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (de->d_name[0] == '.' || l < sl || strcmp(de->d_name + l - sl, suffix) != 0) {
            continue;
        }
        if (de->d_type == DT_DIR) {
            continue;
        }
        names = realloc(names, (n + 1) * sizeof(*names));
        assert_non_null(names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    *count = n;
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

static cJSON *parse_ok(const char *text)
{
    cJSON *out = NULL;
    char err[ERRSZ];
    int rc = dr_ics_parse(text, strlen(text), &out, err, sizeof(err));

    if (rc != DR_OK) {
        fail_msg("parse failed (%s): %s", dr_strerror(rc), err);
    }
    assert_non_null(out);
    return out;
}

static void expect_reject(const char *text, size_t len, int want, const char *needle)
{
    cJSON *out = (cJSON *)1;
    char err[ERRSZ];
    int rc = dr_ics_parse(text, len, &out, err, sizeof(err));

    if (rc == DR_OK) {
        cJSON_Delete(out);
        fail_msg("accepted; want %s (%s)", dr_strerror(want), needle ? needle : "");
    }
    assert_null(out);
    if (rc != want) {
        fail_msg("want %s, got %s: %s", dr_strerror(want), dr_strerror(rc), err);
    }
    assert_true(strlen(err) > 0);
    if (needle && !strstr(err, needle)) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
}

static const char *jstr(const cJSON *root, const char *ptr)
{
    const cJSON *v = dr_json_pointer(root, ptr);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_jstr(const cJSON *root, const char *ptr, const char *want)
{
    const char *got = jstr(root, ptr);

    if (!want) {
        assert_true(cJSON_IsNull(dr_json_pointer(root, ptr)));
        return;
    }
    if (!got || strcmp(got, want) != 0) {
        fail_msg("%s: want \"%s\", got \"%s\"", ptr, want, got ? got : "(none)");
    }
}

/* Calls fn on every BEGIN:VCALENDAR ... END:VCALENDAR block of text; returns how many. */
static size_t each_calendar(const char *text, void (*fn)(const char *, size_t, void *), void *arg)
{
    const char *p = text;
    size_t n = 0;

    while ((p = strstr(p, "BEGIN:VCALENDAR"))) {
        const char *e = strstr(p, "END:VCALENDAR");
        assert_non_null(e);
        e += strlen("END:VCALENDAR");
        fn(p, (size_t)(e - p), arg);
        n++;
        p = e;
    }
    return n;
}

/* ---- RFC 2446 examples (libical test-data/2446.ics) ------------------------------------- */

struct method_counts {
    int request, reply, cancel, other, rejected;
};

static void count_method(const char *cal, size_t len, void *arg)
{
    struct method_counts *c = arg;
    cJSON *out = NULL;
    char err[ERRSZ];
    int rc = dr_ics_parse(cal, len, &out, err, sizeof(err));
    const char *m;

    if (rc != DR_OK) {
        /* RFC 2446's LOCATION;VALUE=URI example: LOCATION is TEXT only (RFC 2445 4.8.1.7). */
        assert_int_equal(rc, DR_EINVAL);
        assert_non_null(strstr(err, "LOCATION"));
        c->rejected++;
        return;
    }
    m = jstr(out, "/method");
    assert_non_null(m);
    assert_true(cJSON_IsArray(dr_json_pointer(out, "/events")));
    if (strcmp(m, "REQUEST") == 0) {
        c->request++;
    } else if (strcmp(m, "REPLY") == 0) {
        c->reply++;
    } else if (strcmp(m, "CANCEL") == 0) {
        c->cancel++;
    } else {
        c->other++;
    }
    cJSON_Delete(out);
}

static void rfc2446_methods(void **state)
{
    size_t len;
    char *text = slurp("libical/2446.ics", &len);
    struct method_counts c = {0};

    assert_int_equal(each_calendar(text, count_method, &c), 53);
    assert_int_equal(c.request, 24);
    assert_int_equal(c.reply, 10);
    assert_int_equal(c.cancel, 5);
    assert_int_equal(c.rejected, 1);
    assert_int_equal(c.other, 53 - 24 - 10 - 5 - 1);
    free(text);
}

struct reply_expect {
    const char *uid, *attendee, *partstat; /* attendee NULL: no ATTENDEE in a VEVENT/VTODO */
};

/* Transcribed from the ten METHOD:REPLY examples in RFC 2446, in file order. */
static const struct reply_expect replies[] = {
    {"calsrv.example.com-873970198738777@example.com", "b@example.com", "ACCEPTED"},
    {"calsrv.example.com-873970198738777@example.com", "c@example.com", "DELEGATED"},
    {"calsrv.example.com-873970198738777@example.com", "e@example.com", "ACCEPTED"},
    {"calsrv.example.com-873970198738777@example.com", "c@example.com", "DELEGATED"},
    {NULL, NULL, NULL}, /* VFREEBUSY reply: not a VEVENT/VTODO */
    {"guid-1@host1.com", "b@example.com", "NEEDS-ACTION"},
    {"calsrv.example.com-873970198738777-00@example.com", "b@example.com", "ACCEPTED"},
    {"calsrv.example.com-873970198738777-00@example.com", "b@example.com", "IN-PROCESS"},
    {"calsrv.example.com-873970198738777-00@example.com", "d@example.com", "COMPLETED"},
    {"calsrv.example.com-873970198738777-00@example.com", "b@example.com", "IN-PROCESS"},
};

struct reply_state {
    size_t next;
    int non_reply_refused;
};

static void check_reply(const char *cal, size_t len, void *arg)
{
    struct reply_state *st = arg;
    cJSON *out = NULL;
    const struct reply_expect *x;
    int rc;

    if (!memmem(cal, len, "METHOD:REPLY", 12)) {
        rc = dr_ics_reply_partstats(cal, len, &out);
        assert_int_equal(rc, DR_EINVAL);
        assert_null(out);
        st->non_reply_refused++;
        return;
    }
    assert_true(st->next < DR_ARRAY_LEN(replies));
    x = &replies[st->next++];
    rc = dr_ics_reply_partstats(cal, len, &out);
    assert_int_equal(rc, DR_OK);
    assert_true(cJSON_IsArray(out));
    if (!x->uid) {
        assert_int_equal(cJSON_GetArraySize(out), 0);
    } else {
        assert_int_equal(cJSON_GetArraySize(out), 1);
        assert_jstr(out, "/0/uid", x->uid);
        assert_jstr(out, "/0/attendee", x->attendee);
        assert_jstr(out, "/0/partstat", x->partstat);
    }
    cJSON_Delete(out);
}

static void rfc2446_reply_partstats(void **state)
{
    size_t len;
    char *text = slurp("libical/2446.ics", &len);
    struct reply_state st = {0};

    each_calendar(text, check_reply, &st);
    assert_int_equal(st.next, DR_ARRAY_LEN(replies));
    assert_int_equal(st.non_reply_refused, 53 - 10);
    free(text);
}

static void rfc2446_request_fields(void **state)
{
    size_t len;
    char *text = slurp("libical/2446.ics", &len);
    const char *p = strstr(text, "METHOD:REQUEST");
    const char *b, *e;
    cJSON *out = NULL;
    char err[ERRSZ];

    /* The first REQUEST: six attendees, one of them a room without mailto:. */
    assert_non_null(p);
    for (b = p; strncmp(b, "BEGIN:VCALENDAR", 15) != 0; b--) {
    }
    e = strstr(p, "END:VCALENDAR") + 13;
    assert_int_equal(dr_ics_parse(b, (size_t)(e - b), &out, err, sizeof(err)), DR_OK);
    assert_jstr(out, "/events/0/uid", "calsrv.example.com-873970198738777@example.com");
    assert_jstr(out, "/events/0/organizer/email", "a@example.com");
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(out, "/events/0/attendees")), 6);
    assert_jstr(out, "/events/0/attendees/0/name", "BIG A");
    assert_jstr(out, "/events/0/attendees/0/role", "CHAIR");
    assert_jstr(out, "/events/0/attendees/0/partstat", "ACCEPTED");
    assert_true(cJSON_IsFalse(dr_json_pointer(out, "/events/0/attendees/0/rsvp")));
    assert_jstr(out, "/events/0/attendees/1/partstat", "NEEDS-ACTION");
    assert_true(cJSON_IsTrue(dr_json_pointer(out, "/events/0/attendees/1/rsvp")));
    assert_jstr(out, "/events/0/attendees/4/email", "conf_big@example.com");
    assert_jstr(out, "/events/0/attendees/5/role", "NON-PARTICIPANT");
    assert_jstr(out, "/events/0/start/utc", "1997-07-01T20:00:00Z");
    assert_jstr(out, "/events/0/status", "CONFIRMED");
    cJSON_Delete(out);
    free(text);
}

/* ---- text/calendar inside MIME (libical simple-mime.txt, complex-mime.txt) --------------- */

static char *qp_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;

    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '\n') {
            i++;
        } else if (s[i] == '=' && i + 2 < n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            o[k++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

static void mime_simple(void **state)
{
    size_t len;
    char *text = slurp("libical/simple-mime.txt", &len);
    const char *b = strstr(text, "BEGIN:VCALENDAR"), *e = strstr(text, "END:VCALENDAR");
    cJSON *out = NULL;
    char err[ERRSZ];

    assert_non_null(b);
    assert_non_null(e);
    /* The whole email is not iCalendar. */
    expect_reject(text, len, DR_EINVAL, "line 1");
    assert_int_equal(dr_ics_parse(b, (size_t)(e + 13 - b), &out, err, sizeof(err)), DR_OK);
    assert_jstr(out, "/method", "REQUEST");
    assert_jstr(out, "/events/0/organizer/email", "foo1@example.com");
    assert_jstr(out, "/events/0/attendees/0/email", "employee-a@host.com");
    assert_jstr(out, "/events/0/attendees/1/email", "employee-b@host.com");
    assert_jstr(out, "/events/0/attendees/2/email", "eric@agony.busboom.org");
    assert_jstr(out, "/events/0/attendees/2/role", "REQ-PARTICIPANT");
    assert_jstr(out, "/events/0/start/utc", "1997-06-21T17:00:00Z");
    assert_jstr(out, "/events/0/end/utc", "1997-06-21T17:30:00Z");
    assert_jstr(out, "/events/0/summary", "Let's discuss the attached document");
    cJSON_Delete(out);
    free(text);
}

static void mime_complex_bad_dtend(void **state)
{
    size_t len, b64len = 0;
    char *text = slurp("libical/complex-mime.txt", &len);
    const char *qp = strstr(text, "quoted-printable");
    const char *b64 = strstr(text, "Content-Transfer-Encoding: base64");
    const char *b, *e;
    char *cal, *joined;
    unsigned char *dec;
    size_t declen;

    /* The quoted-printable part carries DTEND:199706211T173000Z (nine-digit date). */
    assert_non_null(qp);
    b = strstr(qp, "BEGIN:VCALENDAR");
    e = strstr(b, "END:VCALENDAR") + 13;
    cal = qp_decode(b, (size_t)(e - b));
    assert_non_null(strstr(cal, "employee-A@host.com"));
    expect_reject(cal, strlen(cal), DR_EINVAL, "DTEND");
    expect_reject(cal, strlen(cal), DR_EINVAL, "line 12"); /* after QP soft breaks */
    free(cal);

    /* The base64 part is the same calendar. */
    assert_non_null(b64);
    b = strstr(b64, "\n\n") + 2;
    e = strstr(b, "\n\n");
    joined = malloc((size_t)(e - b) + 1);
    assert_non_null(joined);
    for (const char *p = b; p < e; p++) {
        if (*p != '\n') {
            joined[b64len++] = *p;
        }
    }
    assert_int_equal(dr_base64_decode(joined, b64len, &dec, &declen), DR_OK);
    assert_non_null(strstr((char *)dec, "BEGIN:VEVENT"));
    expect_reject((char *)dec, declen, DR_EINVAL, "DTEND");
    free(dec);
    free(joined);
    free(text);
}

/* ---- ical.js parser fixtures with expected jCal ------------------------------------------- */

/* Rejections accepted on purpose: ical.js is lenient where RFC 5545 is not. */
static const struct {
    const char *file, *needle;
} icaljs_rejects[] = {
    /* VALUE=BOOLEAN:MAYBE is not a BOOLEAN (RFC 5545 3.3.2); ical.js keeps the string. */
    {"boolean.ics", "BOOLEAN"},
    /* "GROUP1.X-TEST" is vCard group syntax; iCalendar names have no dot (RFC 5545 3.1). */
    {"grouped.ics", "GROUP1.X-TEST"},
    /* TZID "(GMT +01:00)" names no VTIMEZONE in the object and no known zone (RFC 5545 3.2.19). */
    {"tzid_with_gmt.ics", "TZID"},
};

/* Attendees whose parse differs from ical.js: libical 3.0 quirks in parameter parsing. */
static const struct {
    const char *file;
    int index;
    const char *why;
} icaljs_attendee_skips[] = {
    {"property_params.ics", 6, "RFC 6868 ^' and ^n in CN are not decoded by libical 3.0"},
    {"property_params.ics", 8, "CN=X\\ unquoted: libical splits at the second colon"},
    {"property_params.ics", 9, "CN=\"Y\\\": libical treats \\\" as an escaped quote"},
};

static const char *rejected_reason(const char *file)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(icaljs_rejects); i++) {
        if (strcmp(icaljs_rejects[i].file, file) == 0) {
            return icaljs_rejects[i].needle;
        }
    }
    return NULL;
}

static bool attendee_skipped(const char *file, int index)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(icaljs_attendee_skips); i++) {
        if (strcmp(icaljs_attendee_skips[i].file, file) == 0 &&
            icaljs_attendee_skips[i].index == index) {
            return true;
        }
    }
    return false;
}

static const cJSON *jcal_prop(const cJSON *props, const char *name, int nth)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, props)
    {
        const cJSON *n = cJSON_GetArrayItem(p, 0);
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 && nth-- == 0) {
            return p;
        }
    }
    return NULL;
}

/* jCal recur object -> "FREQ=DAILY;UNTIL=20121011" parts, one per line, sorted. */
static void recur_from_jcal(const cJSON *r, char *out, size_t outsz)
{
    char *parts[32];
    size_t n = 0, o = 0;
    const cJSON *kv;

    cJSON_ArrayForEach(kv, r)
    {
        char buf[256];
        size_t k = 0;

        for (const char *c = kv->string; *c && k < 64; c++) {
            buf[k++] = (char)toupper((unsigned char)*c);
        }
        buf[k++] = '=';
        if (cJSON_IsArray(kv)) {
            const cJSON *v;
            cJSON_ArrayForEach(v, kv)
            {
                k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s%d", v == kv->child ? "" : ",",
                                      v->valueint);
            }
        } else if (cJSON_IsNumber(kv)) {
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%d", kv->valueint);
        } else {
            for (const char *c = kv->valuestring; *c && k + 1 < sizeof(buf); c++) {
                if (*c != '-' && *c != ':') {
                    buf[k++] = *c;
                }
            }
        }
        buf[k] = '\0';
        parts[n++] = strdup(buf);
    }
    qsort(parts, n, sizeof(*parts), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, outsz - o, "%s\n", parts[i]);
        free(parts[i]);
    }
}

static void recur_from_ours(const char *s, char *out, size_t outsz)
{
    char *copy = strdup(s), *save = NULL, *parts[32];
    size_t n = 0, o = 0;

    for (char *t = strtok_r(copy, ";", &save); t && n < 32; t = strtok_r(NULL, ";", &save)) {
        parts[n++] = t;
    }
    qsort(parts, n, sizeof(*parts), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, outsz - o, "%s\n", parts[i]);
    }
    free(copy);
}

static char *address_of(const char *v)
{
    char *o;

    if (strncasecmp(v, "mailto:", 7) == 0) {
        v += 7;
    }
    o = strdup(v);
    for (char *c = o; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return o;
}

/* Compares one expected jCal component's properties with one of our events. */
static int compare_event(const char *file, const cJSON *props, const cJSON *ev)
{
    const cJSON *p;
    int compared = 0;

    if ((p = jcal_prop(props, "summary", 0))) {
        assert_string_equal(jstr(ev, "/summary"), cJSON_GetArrayItem(p, 3)->valuestring);
        compared++;
    }
    if ((p = jcal_prop(props, "dtstart", 0))) {
        const cJSON *tz = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(p, 1), "tzid");
        assert_string_equal(jstr(ev, "/start/value"), cJSON_GetArrayItem(p, 3)->valuestring);
        if (cJSON_IsString(tz)) {
            assert_string_equal(jstr(ev, "/start/tzid"), tz->valuestring);
        } else {
            assert_true(cJSON_IsNull(dr_json_pointer(ev, "/start/tzid")));
        }
        compared++;
    }
    for (int i = 0; (p = jcal_prop(props, "rrule", i)); i++) {
        const cJSON *ours = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "rrule"), i);
        char want[512], got[512];

        assert_true(cJSON_IsString(ours));
        recur_from_jcal(cJSON_GetArrayItem(p, 3), want, sizeof(want));
        recur_from_ours(ours->valuestring, got, sizeof(got));
        assert_string_equal(got, want);
        compared++;
    }
    for (int i = 0; (p = jcal_prop(props, "attendee", i)); i++) {
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "attendees"), i);
        const cJSON *params = cJSON_GetArrayItem(p, 1), *v;
        char *email;

        assert_non_null(a);
        if (attendee_skipped(file, i)) {
            continue;
        }
        email = address_of(cJSON_GetArrayItem(p, 3)->valuestring);
        assert_string_equal(jstr(a, "/email"), email);
        free(email);
        if ((v = cJSON_GetObjectItemCaseSensitive(params, "cn"))) {
            assert_string_equal(jstr(a, "/name"), v->valuestring);
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(params, "partstat"))) {
            assert_string_equal(jstr(a, "/partstat"), v->valuestring);
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(params, "role"))) {
            assert_string_equal(jstr(a, "/role"), v->valuestring);
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(params, "rsvp"))) {
            assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "rsvp")),
                             strcasecmp(v->valuestring, "TRUE") == 0);
        }
        compared++;
    }
    return compared;
}

/* Puts the VCALENDAR's own properties into a VEVENT, so they map onto our output. */
static char *wrap_in_vevent(const char *text)
{
    struct dr_buf b;
    const char *p = text;
    size_t n;

    dr_buf_init(&b, 1 << 20);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        size_t t = l && p[l - 1] == '\r' ? l - 1 : l;

        if (t == 13 && strncasecmp(p, "END:VCALENDAR", 13) == 0) {
            assert_int_equal(dr_buf_appends(&b, "END:VEVENT\r\n"), DR_OK);
        }
        assert_int_equal(dr_buf_append(&b, p, l), DR_OK);
        assert_int_equal(dr_buf_appendc(&b, '\n'), DR_OK);
        if (t == 15 && strncasecmp(p, "BEGIN:VCALENDAR", 15) == 0) {
            assert_int_equal(dr_buf_appends(&b, "BEGIN:VEVENT\r\n"), DR_OK);
        }
        p = nl ? nl + 1 : p + l;
    }
    return dr_buf_steal(&b, &n);
}

static void icaljs_parser_fixtures(void **state)
{
    size_t n, total = 0, files = 0;
    char **names = list_dir("icaljs/parser", ".ics", &n);

    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        char rel[512], *text, *json, *input;
        size_t len, jlen;
        cJSON *jcal, *out = NULL, *expected = cJSON_CreateArray(), *cal;
        bool wrap = false;
        const char *why = rejected_reason(names[i]);
        char err[ERRSZ];
        int rc;

        snprintf(rel, sizeof(rel), "icaljs/parser/%s", names[i]);
        text = slurp(rel, &len);
        snprintf(rel + strlen(rel) - 3, 8, "json");
        json = slurp(rel, &jlen);
        jcal = cJSON_Parse(json);
        assert_non_null(jcal);
        if (cJSON_IsString(cJSON_GetArrayItem(jcal, 0))) {
            cJSON *one = jcal;
            jcal = cJSON_CreateArray();
            cJSON_AddItemToArray(jcal, one);
        }
        /* Expected events: each vevent, or each vcalendar's own properties if none has one. */
        cJSON_ArrayForEach(cal, jcal)
        {
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetArrayItem(cal, 2))
            {
                if (strcmp(cJSON_GetArrayItem(c, 0)->valuestring, "vevent") == 0) {
                    cJSON_AddItemReferenceToArray(expected, cJSON_GetArrayItem(c, 1));
                }
            }
        }
        if (cJSON_GetArraySize(expected) == 0) {
            cJSON_ArrayForEach(cal, jcal)
            {
                const cJSON *props = cJSON_GetArrayItem(cal, 1);
                if (jcal_prop(props, "summary", 0) || jcal_prop(props, "dtstart", 0) ||
                    jcal_prop(props, "rrule", 0) || jcal_prop(props, "attendee", 0)) {
                    wrap = true;
                }
            }
            if (wrap) {
                cJSON_ArrayForEach(cal, jcal)
                {
                    cJSON_AddItemReferenceToArray(expected, cJSON_GetArrayItem(cal, 1));
                }
            }
        }
        input = wrap ? wrap_in_vevent(text) : strdup(text);
        rc = dr_ics_parse(input, strlen(input), &out, err, sizeof(err));
        if (why) {
            if (rc != DR_EINVAL || !strstr(err, why)) {
                fail_msg("%s: expected a rejection mentioning %s, got %s: %s", names[i], why,
                         dr_strerror(rc), err);
            }
        } else {
            const cJSON *exp;
            int k = 0;

            if (rc != DR_OK) {
                fail_msg("%s: %s", names[i], err);
            }
            assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "events")),
                             cJSON_GetArraySize(expected));
            cJSON_ArrayForEach(exp, expected)
            {
                const cJSON *events = cJSON_GetObjectItemCaseSensitive(out, "events");
                total += (size_t)compare_event(names[i], exp, cJSON_GetArrayItem(events, k++));
            }
            files++;
            cJSON_Delete(out);
        }
        cJSON_Delete(expected);
        cJSON_Delete(jcal);
        free(input);
        free(json);
        free(text);
    }
    /* Summaries, DTSTARTs, five RRULEs and the attendees (18 comparisons when written). */
    assert_true(total >= 15);
    assert_int_equal(files + DR_ARRAY_LEN(icaljs_rejects), n);
    free_list(names, n);
}

static void icaljs_samples(void **state)
{
    static const char *dirs[] = {"icaljs/samples", "icaljs/samples/timezones/America",
                                 "icaljs/samples/timezones/Makebelieve"};
    size_t parsed = 0;

    for (size_t d = 0; d < DR_ARRAY_LEN(dirs); d++) {
        size_t n;
        char **names = list_dir(dirs[d], ".ics", &n);

        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            char rel[512], *text, err[ERRSZ];
            size_t len;
            cJSON *out = NULL;
            int rc;

            snprintf(rel, sizeof(rel), "%s/%s", dirs[d], names[i]);
            text = slurp(rel, &len);
            rc = dr_ics_parse(text, len, &out, err, sizeof(err));
            if (rc != DR_OK) {
                fail_msg("%s: %s", rel, err);
            }
            assert_true(cJSON_IsArray(dr_json_pointer(out, "/timezones")));
            parsed++;
            cJSON_Delete(out);
            free(text);
        }
        free_list(names, n);
    }
    assert_true(parsed >= 20);
}

static cJSON *parse_file(const char *rel)
{
    size_t len;
    char *text = slurp(rel, &len);
    cJSON *out = NULL;
    char err[ERRSZ];
    int rc = dr_ics_parse(text, len, &out, err, sizeof(err));

    if (rc != DR_OK) {
        fail_msg("%s: %s", rel, err);
    }
    free(text);
    return out;
}

static void icaljs_sample_values(void **state)
{
    cJSON *o;

    /* VTIMEZONE America/Los_Angeles in the file: PDT is UTC-7 on 2012-06-30. */
    o = parse_file("icaljs/samples/blank_description.ics");
    assert_jstr(o, "/events/0/start/value", "2012-06-30T06:00:00");
    assert_jstr(o, "/events/0/start/tzid", "America/Los_Angeles");
    assert_jstr(o, "/events/0/start/utc", "2012-06-30T13:00:00Z");
    assert_jstr(o, "/events/0/end/utc", "2012-06-30T14:00:00Z");
    assert_null(dr_json_pointer(o, "/events/0/location")); /* "LOCATION:" is empty */
    assert_jstr(o, "/timezones/0", "America/Los_Angeles");
    assert_jstr(o, "/events/0/created", "2012-07-24T21:24:11Z");
    cJSON_Delete(o);

    /* DURATION instead of DTEND: end derived, duration kept. */
    o = parse_file("icaljs/samples/duration_instead_of_dtend.ics");
    assert_jstr(o, "/events/0/duration", "P1D");
    assert_jstr(o, "/events/0/end/value", "2012-07-01T06:00:00");
    assert_jstr(o, "/events/0/end/utc", "2012-07-01T13:00:00Z");
    cJSON_Delete(o);

    /* Google's "RDATE:20131210Z" read as the DATE it means. */
    o = parse_file("icaljs/samples/google_birthday.ics");
    assert_jstr(o, "/events/0/rdate/0/value", "2013-12-10");
    assert_true(cJSON_IsTrue(dr_json_pointer(o, "/events/0/rdate/0/all_day")));
    assert_jstr(o, "/events/0/rrule/0", "FREQ=DAILY;COUNT=1");
    assert_jstr(o, "/events/1/recurrence_id/value", "2012-12-10");
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/events")), 4);
    cJSON_Delete(o);

    o = parse_file("icaljs/samples/rdate_exdate.ics");
    assert_jstr(o, "/events/0/exdate/0/value", "2024-06-11");
    cJSON_Delete(o);

    /* A VTIMEZONE with no TZID is ignored; the referenced one still resolves. */
    o = parse_file("icaljs/samples/recur_instances.ics");
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/timezones")), 1);
    assert_jstr(o, "/events/0/start/utc", "2012-10-02T17:00:00Z");
    assert_jstr(o, "/events/0/rdate/1/end/value", "2023-11-25T12:30:00Z");
    cJSON_Delete(o);
}

/* ---- libical fuzz and crash reproducers --------------------------------------------------- */

static void check_robust(const char *name, const char *text, size_t len)
{
    cJSON *out = NULL;
    char err[ERRSZ];
    int rc = dr_ics_parse(text, len, &out, err, sizeof(err));

    if (rc == DR_OK) {
        assert_non_null(out);
        cJSON_Delete(out);
        return;
    }
    if (rc != DR_EINVAL && rc != DR_ETOOBIG) {
        fail_msg("%s: unexpected %s", name, dr_strerror(rc));
    }
    assert_null(out);
    if (!err[0]) {
        fail_msg("%s: rejected without a reason", name);
    }
    out = (cJSON *)1;
    rc = dr_ics_reply_partstats(text, len, &out);
    assert_int_not_equal(rc, DR_OK);
    assert_null(out);
}

static void libical_fuzz_reproducers(void **state)
{
    size_t n, checked = 0;
    char **names = list_dir("libical", "", &n);

    for (size_t i = 0; i < n; i++) {
        char rel[512], *text;
        size_t len;

        if (strstr(names[i], ".txt") && !strstr(names[i], "mime")) {
            continue; /* licence texts */
        }
        snprintf(rel, sizeof(rel), "libical/%s", names[i]);
        text = slurp(rel, &len);
        check_robust(names[i], text, len);
        /* Again with the bytes the pre-check refuses replaced, so libical's parser runs. */
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)text[k];
            if (c == '\r' && (k + 1 == len || text[k + 1] != '\n')) {
                text[k] = '\n';
            } else if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c >= 0x7f) {
                text[k] = '?';
            }
        }
        check_robust(names[i], text, len);
        checked++;
        free(text);
    }
    assert_true(checked >= 30);
    free_list(names, n);
}

/*
 * The pre-check refuses nearly all reproducers at their first bad byte or line, so libical would
 * never see them. Keep only their well-formed-looking property lines and put those into a
 * VEVENT: libical's property, parameter, value, recurrence and time code then gets the fuzz data.
 */
static char *fuzz_body_event(const char *text, size_t len)
{
    struct dr_buf b;
    size_t n, i = 0;

    dr_buf_init(&b, 2 * len + 256);
    assert_int_equal(dr_buf_appends(&b, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"), DR_OK);
    while (i < len) {
        const char *l = text + i, *nl = memchr(l, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - l) : len - i, name = 0;
        bool ok = true;

        i += ll + 1;
        while (name < ll && (isalnum((unsigned char)l[name]) || l[name] == '-')) {
            name++;
        }
        if (name == 0 || name >= ll || (l[name] != ':' && l[name] != ';') ||
            !memchr(l + name, ':', ll - name) || strncasecmp(l, "BEGIN", name) == 0 ||
            strncasecmp(l, "END", name) == 0) {
            continue;
        }
        for (size_t k = 0; k < ll; k++) {
            unsigned char c = (unsigned char)l[k];
            if ((c < 0x20 && c != '\t' && !(c == '\r' && k + 1 == ll)) || c >= 0x7f) {
                ok = false;
            }
        }
        if (ok) {
            assert_int_equal(dr_buf_append(&b, l, ll), DR_OK);
            assert_int_equal(dr_buf_appendc(&b, '\n'), DR_OK);
        }
    }
    assert_int_equal(dr_buf_appends(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n"), DR_OK);
    return dr_buf_steal(&b, &n);
}

static void libical_fuzz_bodies(void **state)
{
    size_t n, reached = 0;
    char **names = list_dir("libical", "", &n);

    for (size_t i = 0; i < n; i++) {
        char rel[512], *text, *ev, err[ERRSZ];
        size_t len;
        cJSON *out = NULL;
        int rc;

        if (strstr(names[i], ".txt")) {
            continue;
        }
        snprintf(rel, sizeof(rel), "libical/%s", names[i]);
        text = slurp(rel, &len);
        ev = fuzz_body_event(text, len);
        check_robust(names[i], ev, strlen(ev));
        rc = dr_ics_parse(ev, strlen(ev), &out, err, sizeof(err));
        /* Past the pre-check: accepted, or refused by libical or by the tree walk. */
        if (rc == DR_OK || strstr(err, "in V") || strstr(err, "VEVENT") ||
            strstr(err, "VTIMEZONE")) {
            reached++;
        }
        cJSON_Delete(out);
        free(ev);
        free(text);
    }
    assert_true(reached >= 20);
    free_list(names, n);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static char *repeat(const char *head, const char *unit, size_t times, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *b = malloc(hl + ul * times + tl + 1), *p = b;

    assert_non_null(b);
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < times; i++, p += ul) {
        memcpy(p, unit, ul);
    }
    memcpy(p, tail, tl + 1);
    *len = hl + ul * times + tl;
    return b;
}

static void hostile_sizes(void **state)
{
    size_t len;
    char *b;
    int64_t t0 = dr_mono_ms();

    b = repeat("BEGIN:VCALENDAR\r\n", "X-PAD:0123456789abcdef\r\n", 10 * 1024 * 1024 / 24,
               "END:VCALENDAR\r\n", &len);
    assert_true(len > 10 * 1000 * 1000);
    expect_reject(b, len, DR_ETOOBIG, "limit");
    free(b);

    b = repeat("BEGIN:VCALENDAR\n", "X-A:1\n", 100000, "END:VCALENDAR\n", &len);
    expect_reject(b, len, DR_ETOOBIG, "content lines");
    free(b);

    b = repeat("BEGIN:VCALENDAR\n", "BEGIN:VEVENT\nUID:x\nEND:VEVENT\n", DR_ICS_MAX_COMPONENTS,
               "END:VCALENDAR\n", &len);
    expect_reject(b, len, DR_ETOOBIG, "components");
    free(b);

    /* One SUMMARY folded over 300 KB. */
    b = repeat("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\n",
               " 0123456789012345678901234567890123456789012345678901234567890123456789\n", 4500,
               "END:VEVENT\nEND:VCALENDAR\n", &len);
    expect_reject(b, len, DR_ETOOBIG, "longer than");
    free(b);

    /* All of the above are refused before libical does the work. */
    assert_true(dr_mono_ms() - t0 < 20000);
}

static void hostile_structure(void **state)
{
    size_t len;
    char *b;

    b = repeat("BEGIN:VCALENDAR\n", "BEGIN:VEVENT\n", 100000, "", &len);
    expect_reject(b, len, DR_ETOOBIG, "nested");
    free(b);

    b = repeat("BEGIN:VCALENDAR\n", "BEGIN:X-A\n", 5, "", &len);
    expect_reject(b, len, DR_EINVAL, "never closed");
    free(b);

#define R(s, code, needle) expect_reject(s, strlen(s), code, needle)
    R("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\nEND:VEVENT\n", DR_EINVAL, "line 3");
    R("END:VCALENDAR\n", DR_EINVAL, "without BEGIN");
    R("BEGIN:VEVENT\nEND:VEVENT\n", DR_EINVAL, "expected BEGIN:VCALENDAR");
    R("BEGIN:VCALENDAR\nEND:VCALENDAR\nUID:x\n", DR_EINVAL, "outside");
    R("", DR_EINVAL, "no BEGIN:VCALENDAR");
    R("\r\n\r\n", DR_EINVAL, "no BEGIN:VCALENDAR");
    R(" folded\n", DR_EINVAL, "continuation");
    R("BEGIN:VCALENDAR\nSUMMARY no colon\nEND:VCALENDAR\n", DR_EINVAL, "line 2");
    R("BEGIN:VCALENDAR\nBEGIN;X=1:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n", DR_EINVAL, "line 2");
    R("BEGIN:VCALENDAR\rEND:VCALENDAR\r", DR_EINVAL, "CR");
    R("BEGIN:VCALENDAR\nSUMMARY:caf\xc3\nEND:VCALENDAR\n", DR_EINVAL, "UTF-8");
    R("BEGIN:VCALENDAR\nSUMMARY:\xed\xa0\x80\nEND:VCALENDAR\n", DR_EINVAL, "UTF-8");
    R("BEGIN:VCALENDAR\nSUMMARY:a\x01\nEND:VCALENDAR\n", DR_EINVAL, "control");
    R("BEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\nBEGIN:VCALENDAR\nMETHOD:CANCEL\n"
      "END:VCALENDAR\n",
      DR_EINVAL, "METHOD");
    /* A time-zone rule libical would expand second by second. */
    R("BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Evil\nBEGIN:STANDARD\nDTSTART:16010101T000000\n"
      "TZOFFSETFROM:+0000\nTZOFFSETTO:+0100\nRRULE:FREQ=SECONDLY\nEND:STANDARD\nEND:VTIMEZONE\n"
      "BEGIN:VEVENT\nUID:1\nDTSTART;TZID=Evil:20260101T000000\nEND:VEVENT\nEND:VCALENDAR\n",
      DR_EINVAL, "VTIMEZONE Evil");
#undef R
    expect_reject("BEGIN:VCALENDAR\nSUMMARY:a\0b\nEND:VCALENDAR\n", 42, DR_EINVAL, "0x00");
    expect_reject(NULL, 0, DR_EINVAL, NULL);
}

/* An object with one VTIMEZONE "Z" of n observances, each "DTSTART:<year>0301T020000" and
 * rule (or none), and one event at DTSTART;TZID=Z:<event_year>0101T100000. */
static char *zone_object(size_t n, int year, int year_step, const char *rule, int event_year,
                         size_t *len)
{
    struct dr_buf b;
    char *out;

    dr_buf_init(&b, 8u << 20);
    assert_int_equal(dr_buf_appends(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
                                        "METHOD:REQUEST\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\n"),
                     DR_OK);
    for (size_t i = 0; i < n; i++) {
        const char *kind = i % 2 ? "DAYLIGHT" : "STANDARD";

        assert_int_equal(dr_buf_printf(&b,
                                       "BEGIN:%s\r\nDTSTART:%04d%02zu01T020000\r\n"
                                       "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n%s%s%s"
                                       "END:%s\r\n",
                                       kind, year + (int)(i % 5) * year_step, 1 + i % 12,
                                       rule ? "RRULE:" : "", rule ? rule : "", rule ? "\r\n" : "",
                                       kind),
                         DR_OK);
    }
    assert_int_equal(dr_buf_printf(&b,
                                   "END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:tz@example.com\r\n"
                                   "DTSTAMP:20260101T000000Z\r\n"
                                   "DTSTART;TZID=Z:%04d0101T100000\r\nEND:VEVENT\r\n"
                                   "END:VCALENDAR\r\n",
                                   event_year),
                     DR_OK);
    *len = b.len;
    out = strndup(b.data, b.len);
    dr_buf_cleanup(&b);
    return out;
}

/*
 * libical expands a zone year by year from each observance's DTSTART, under the lock every
 * parse shares: a 49 KB object with 400 observances from year 1 and an event in 9999 took 31 s.
 * What a zone may cost is limited up front, and such objects are refused with the reason.
 */
static void hostile_time_zones(void **state)
{
    static const char yearly[] = "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU";
    static const struct {
        size_t n;
        int year, step;
        const char *rule;
        int event_year, code;
        const char *needle;
    } cases[] = {
        {2, 1, 1, yearly, 2026, DR_EINVAL, "year 1, before 1600"},
        {2, 1601, 0, yearly, 9999, DR_EINVAL, "converted up to year 2500"},
        {400, 1, 1, yearly, 9999, DR_ETOOBIG, "more than 100 observances"},
        {200, 1, 1, yearly, 9999, DR_ETOOBIG, "more than 100 observances"},
        {100, 1, 1, yearly, 2026, DR_EINVAL, "before 1600"},
        /* rules no zone uses: thousands of transitions a year, or a search for one that never
         * comes */
        {1, 2000, 0, "FREQ=YEARLY;BYYEARDAY=1,2,3,4,5,6,7,8,9,10", 2026, DR_EINVAL, "RRULE"},
        {1, 2000, 0, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", 2026, DR_EINVAL, "RRULE"},
        {1, 2000, 0, "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1;BYDAY=2SU", 2026, DR_EINVAL, "RRULE"},
        {1, 2000, 0, "FREQ=YEARLY;BYDAY=SU", 2026, DR_EINVAL, "RRULE"},
        {1, 2000, 0, "FREQ=MONTHLY", 2026, DR_EINVAL, "RRULE"},
        /* rules that cannot be moved forward (COUNT) are counted from their start */
        {20, 1601, 0, "FREQ=YEARLY;COUNT=1000;BYMONTH=3;BYDAY=2SU", 2026, DR_ETOOBIG,
         "transition-years"},
    };
    size_t len;
    char *b;

    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        b = zone_object(cases[i].n, cases[i].year, cases[i].step, cases[i].rule,
                        cases[i].event_year, &len);
        expect_reject(b, len, cases[i].code, cases[i].needle);
        free(b);
    }

    /* More VTIMEZONEs than any object needs. */
    {
        struct dr_buf z;

        dr_buf_init(&z, 1u << 20);
        assert_int_equal(dr_buf_appends(&z, "BEGIN:VCALENDAR\r\n"), DR_OK);
        for (int i = 0; i <= DR_ICS_MAX_TIMEZONES; i++) {
            assert_int_equal(dr_buf_printf(&z,
                                           "BEGIN:VTIMEZONE\r\nTZID:Z%d\r\nBEGIN:STANDARD\r\n"
                                           "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\n"
                                           "TZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
                                           i),
                             DR_OK);
        }
        assert_int_equal(dr_buf_appends(&z, "END:VCALENDAR\r\n"), DR_OK);
        expect_reject(z.data, z.len, DR_ETOOBIG, "VTIMEZONEs");
        dr_buf_cleanup(&z);
    }

    /* What real zones look like passes: 30 observances of today's rule from 1601 (moved up to
     * the event), the Windows zone up to the last year allowed. */
    b = zone_object(30, 1601, 0, yearly, 2026, &len);
    cJSON_Delete(parse_ok(b));
    free(b);
    b = zone_object(2, 1601, 0, yearly, DR_ICS_TZ_LAST_YEAR, &len);
    cJSON_Delete(parse_ok(b));
    free(b);
}

/* One Windows-style zone, as Outlook and Exchange send it: today's EU rule from 1601. */
static const char windows_berlin[] =
    "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
    "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n";

/* The UTC libical gives for the local time t in zone z, as dr_ics_parse() prints it. */
static void reference_utc(icaltimezone *z, struct icaltimetype t, char out[32])
{
    icaltime_set_timezone(&t, z);
    t = icaltime_convert_to_zone(t, icaltimezone_get_utc_timezone());
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", t.year, t.month, t.day, t.hour, t.minute,
             t.second);
}

/*
 * Parses vtimezone (whose TZID is tzid) with one event carrying an EXDATE for each sample local
 * time in the years from..to (every step-th), and compares each EXDATE's UTC with what libical
 * gives in ref with the zone expanded in full. Returns how many times differ.
 */
static int compare_zone(const char *vtimezone, const char *tzid, icaltimezone *ref, int from,
                        int to, int step)
{
    static const int days[] = {1, 8, 15, 22, 29};
    static const int hours[] = {1, 2, 12};
    struct dr_buf b;
    cJSON *o;
    const cJSON *ex;
    int bad = 0, n = 0;

    dr_buf_init(&b, 8u << 20);
    assert_int_equal(dr_buf_printf(&b,
                                   "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n%s"
                                   "BEGIN:VEVENT\r\nUID:eq\r\nDTSTART;TZID=%s:%04d0101T120000\r\n",
                                   vtimezone, tzid, from),
                     DR_OK);
    for (int y = from; y <= to; y += step) {
        for (int m = 1; m <= 12; m++) {
            for (size_t d = 0; d < DR_ARRAY_LEN(days); d++) {
                for (size_t h = 0; h < DR_ARRAY_LEN(hours); h++) {
                    if (days[d] > icaltime_days_in_month(m, y)) {
                        continue;
                    }
                    assert_int_equal(dr_buf_printf(&b, "EXDATE;TZID=%s:%04d%02d%02dT%02d3000\r\n",
                                                   tzid, y, m, days[d], hours[h]),
                                     DR_OK);
                }
            }
        }
    }
    assert_int_equal(dr_buf_appends(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n"), DR_OK);
    o = parse_ok(b.data);
    cJSON_ArrayForEach(ex, dr_json_pointer(o, "/events/0/exdate"))
    {
        struct icaltimetype t = icaltime_from_string(dr_json_str(ex, "value"));
        char want[32];

        reference_utc(ref, t, want);
        if (strcmp(want, dr_json_str(ex, "utc")) != 0) {
            if (bad++ < 5) {
                fprintf(stderr, "%s %s: want %s, got %s\n", tzid, dr_json_str(ex, "value"), want,
                        dr_json_str(ex, "utc"));
            }
        }
        n++;
    }
    assert_true(n > 0);
    cJSON_Delete(o);
    dr_buf_cleanup(&b);
    return bad;
}

/*
 * Observances that start long before an object's times are moved up to them before libical
 * expands the zone; every conversion must come out as with the full expansion. The zones are
 * libical's own (from the system's tz database: decades of rules that ended, DST abolished in
 * 2019 or 2022, a day skipped in 2011, a 30-minute DST), sent as the object's VTIMEZONE and
 * named without one.
 */
static void time_zone_moves_keep_conversions(void **state)
{
    static const char *const zones[] = {
        "Europe/London",       "America/New_York", "America/Sao_Paulo",
        "Europe/Moscow",       "Asia/Tehran",      "Pacific/Apia",
        "Australia/Lord_Howe", "America/Santiago", "Africa/Casablanca"};
    /* one object per range: its first year decides how far the observances are moved */
    static const int years[][3] = {{1950, 1950, 1}, {1975, 1976, 1}, {1996, 1996, 1},
                                   {2006, 2008, 1}, {2011, 2011, 1}, {2014, 2014, 1},
                                   {2018, 2023, 1}, {2026, 2027, 1}, {2060, 2060, 1},
                                   {2150, 2150, 1}, {1990, 2030, 8}};
    int bad = 0;

    for (size_t i = 0; i < DR_ARRAY_LEN(zones); i++) {
        icaltimezone *z = icaltimezone_get_builtin_timezone(zones[i]);
        icalcomponent *c;
        char *text, *tzid;

        assert_non_null(z);
        c = icalcomponent_new_clone(icaltimezone_get_component(z));
        /* under a name of its own, so nothing can take libical's copy instead */
        icalproperty_set_tzid(icalcomponent_get_first_property(c, ICAL_TZID_PROPERTY), "Test/Z");
        text = icalcomponent_as_ical_string_r(c);
        tzid = "Test/Z";
        for (size_t y = 0; y < DR_ARRAY_LEN(years); y++) {
            bad += compare_zone(text, tzid, z, years[y][0], years[y][1], years[y][2]);
            /* and by name, without a VTIMEZONE: the cut copy of libical's zone */
            bad += compare_zone("", zones[i], z, years[y][0], years[y][1], years[y][2]);
        }
        icalmemory_free_buffer(text);
        icalcomponent_free(c);
    }
    /* Zones written here and in ical.js's samples, against libical with the whole zone: a rule
     * every 50 years that cannot be moved, so the rule that ended in 2000 must stay; rules every
     * 5 years; RDATEs in local time, UTC and as dates. */
    {
        static const char *const files[] = {"icaljs/samples/timezones/Makebelieve/RDATE_test.ics",
                                            "icaljs/samples/timezones/Makebelieve/"
                                            "RRULE_UNTIL_test.ics"};
        static const char sparse[] =
            "BEGIN:VTIMEZONE\r\nTZID:Sparse\r\n"
            "BEGIN:DAYLIGHT\r\nDTSTART:19800301T020000\r\nTZOFFSETFROM:+0100\r\n"
            "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;INTERVAL=50;BYMONTH=3;BYDAY=-1SU\r\n"
            "END:DAYLIGHT\r\n"
            "BEGIN:STANDARD\r\nDTSTART:19901001T030000\r\nTZOFFSETFROM:+0200\r\n"
            "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;UNTIL=20001001T010000Z;BYMONTH=10;BYDAY=-1SU"
            "\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";
        char *texts[DR_ARRAY_LEN(files) + 1];

        texts[0] = strdup(sparse);
        for (size_t i = 0; i < DR_ARRAY_LEN(files); i++) {
            size_t len;
            char *f = slurp(files[i], &len), *b = strstr(f, "BEGIN:VTIMEZONE"),
                 *e = strstr(f, "END:VTIMEZONE");

            assert_non_null(b);
            assert_non_null(e);
            texts[i + 1] = malloc((size_t)(e - b) + 32);
            assert_non_null(texts[i + 1]);
            sprintf(texts[i + 1], "%.*sEND:VTIMEZONE\r\n", (int)(e - b), b);
            free(f);
        }
        for (size_t i = 0; i < DR_ARRAY_LEN(texts); i++) {
            icalcomponent *c = icalparser_parse_string(texts[i]);
            icaltimezone *ref = icaltimezone_new();
            char tzid[128];

            assert_non_null(c);
            snprintf(
                tzid, sizeof(tzid), "%s",
                icalproperty_get_tzid(icalcomponent_get_first_property(c, ICAL_TZID_PROPERTY)));
            assert_true(icaltimezone_set_component(ref, c));
            for (size_t y = 0; y < DR_ARRAY_LEN(years); y++) {
                bad += compare_zone(texts[i], tzid, ref, years[y][0], years[y][1], years[y][2]);
            }
            icaltimezone_free(ref, 1);
            free(texts[i]);
        }
    }
    /* Outlook's zone gives what the tz database gives for Berlin since the EU rule of 1996. */
    for (int y = 1996; y <= 2100; y += 13) {
        bad += compare_zone(windows_berlin, "W. Europe Standard Time",
                            icaltimezone_get_builtin_timezone("Europe/Berlin"), y, y + 1, 1);
    }
    assert_int_equal(bad, 0);
}

static void bad_dates(void **state)
{
    static const char *values[] = {
        "DTSTART:20260230T100000Z",
        "DTSTART:20261301T100000Z",
        "DTSTART:20260101T250000Z",
        "DTSTART:20260101T106000",
        "DTSTART:2026",
        "DTSTART:20260101T100000ZZ",
        "DTSTART;VALUE=DATE:20260132",
        "DTSTART:00000101T000000Z",
        "DTSTART:2026-01-01T25:00:00Z",
        "DTSTART;TZID=Nowhere/Zone:20260101T100000",
        "DTSTART;TZID=../../etc/passwd:20260101T100000",
    };

    for (size_t i = 0; i < DR_ARRAY_LEN(values); i++) {
        char text[512];

        snprintf(text, sizeof(text),
                 "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:d%zu\r\n%s\r\n"
                 "END:VEVENT\r\nEND:VCALENDAR\r\n",
                 i, values[i]);
        expect_reject(text, strlen(text), DR_EINVAL, "DTSTART");
    }
}

/* ---- semantics ---------------------------------------------------------------------------- */

static const char berlin_request[] =
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//data-router//test//EN\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:evt-1@example.org\r\n"
    "SEQUENCE:3\r\n"
    "DTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20260701T100000\r\n"
    "DTEND;TZID=Europe/Berlin:20260701T113000\r\n"
    "SUMMARY:Planning\\, Q3\r\n"
    "DESCRIPTION:Line one\\nLine two\r\n"
    "LOCATION:Room 1\r\n"
    "STATUS:CONFIRMED\r\n"
    "ORGANIZER;CN=\"Boss, The\":MAILTO:Boss@Example.COM\r\n"
    "ATTENDEE;CN=Ann;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT;RSVP=TRUE:mailto:ann@ex\r\n"
    "\tample.org\r\n"
    "ATTENDEE:mailto:bob@example.org\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=WE;COUNT=10\r\n"
    "EXDATE;TZID=Europe/Berlin:20260708T100000\r\n"
    "CREATED:20251231T230000Z\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n";

static void event_fields(void **state)
{
    cJSON *o = parse_ok(berlin_request);

    assert_jstr(o, "/method", "REQUEST");
    assert_jstr(o, "/events/0/uid", "evt-1@example.org");
    assert_int_equal(dr_json_pointer(o, "/events/0/sequence")->valueint, 3);
    assert_jstr(o, "/events/0/summary", "Planning, Q3");
    assert_jstr(o, "/events/0/description", "Line one\nLine two");
    assert_jstr(o, "/events/0/location", "Room 1");
    assert_jstr(o, "/events/0/status", "CONFIRMED");
    /* Builtin zone: CEST is UTC+2 in July. */
    assert_jstr(o, "/events/0/start/value", "2026-07-01T10:00:00");
    assert_jstr(o, "/events/0/start/tzid", "Europe/Berlin");
    assert_jstr(o, "/events/0/start/utc", "2026-07-01T08:00:00Z");
    assert_true(cJSON_IsFalse(dr_json_pointer(o, "/events/0/start/all_day")));
    assert_jstr(o, "/events/0/end/utc", "2026-07-01T09:30:00Z");
    assert_jstr(o, "/events/0/organizer/email", "boss@example.com");
    assert_jstr(o, "/events/0/organizer/name", "Boss, The");
    assert_jstr(o, "/events/0/attendees/0/email", "ann@example.org");
    assert_jstr(o, "/events/0/attendees/0/name", "Ann");
    assert_jstr(o, "/events/0/attendees/0/partstat", "TENTATIVE");
    assert_jstr(o, "/events/0/attendees/0/role", "OPT-PARTICIPANT");
    assert_true(cJSON_IsTrue(dr_json_pointer(o, "/events/0/attendees/0/rsvp")));
    assert_jstr(o, "/events/0/attendees/1/email", "bob@example.org");
    assert_jstr(o, "/events/0/attendees/1/name", NULL);
    assert_jstr(o, "/events/0/attendees/1/partstat", "NEEDS-ACTION");
    assert_jstr(o, "/events/0/attendees/1/role", "REQ-PARTICIPANT");
    assert_true(cJSON_IsFalse(dr_json_pointer(o, "/events/0/attendees/1/rsvp")));
    /* Recurrence stays a rule. */
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/events/0/rrule")), 1);
    assert_non_null(strstr(jstr(o, "/events/0/rrule/0"), "FREQ=WEEKLY"));
    assert_non_null(strstr(jstr(o, "/events/0/rrule/0"), "COUNT=10"));
    assert_jstr(o, "/events/0/exdate/0/utc", "2026-07-08T08:00:00Z");
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/events/0/rdate")), 0);
    assert_jstr(o, "/events/0/created", "2025-12-31T23:00:00Z");
    assert_null(dr_json_pointer(o, "/events/0/recurrence_id"));
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/timezones")), 0);
    cJSON_Delete(o);
}

static void time_zones(void **state)
{
    /* Winter in the builtin zone; a file VTIMEZONE wins over the builtin of the same name. */
    static const char winter[] = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:w\n"
                                 "DTSTART;TZID=Europe/Berlin:20260115T100000\n"
                                 "END:VEVENT\nEND:VCALENDAR\n";
    static const char own[] = "BEGIN:VCALENDAR\n"
                              "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\n"
                              "DTSTART:19700101T000000\nTZOFFSETFROM:+0300\nTZOFFSETTO:+0300\n"
                              "END:STANDARD\nEND:VTIMEZONE\n"
                              "BEGIN:VTIMEZONE\nTZID:Custom/Half\nBEGIN:STANDARD\n"
                              "DTSTART:19700101T000000\nTZOFFSETFROM:+0530\nTZOFFSETTO:+0530\n"
                              "END:STANDARD\nEND:VTIMEZONE\n"
                              "BEGIN:VEVENT\nUID:a\nDTSTART;TZID=Europe/Berlin:20260115T100000\n"
                              "DTEND;TZID=Custom/Half:20260115T100000\nEND:VEVENT\n"
                              "BEGIN:VEVENT\nUID:b\nDTSTART;VALUE=DATE:20260301\n"
                              "DTEND;VALUE=DATE:20260302\nEND:VEVENT\n"
                              "BEGIN:VEVENT\nUID:c\nDTSTART:20260301T090000\n"
                              "DURATION:PT45M\nEND:VEVENT\n"
                              "BEGIN:VEVENT\nUID:d\nDTSTART:20260301T090000Z\n"
                              "RECURRENCE-ID:20260301T090000Z\nEND:VEVENT\n"
                              "END:VCALENDAR\n";
    /* libical's own TZIDs for its builtin zones, as Evolution sends them */
    static const char prefixed[] =
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:p\n"
        "DTSTART;TZID=/freeassociation.sourceforge.net/America/New_York:20260115T100000\n"
        "DTEND;TZID=/freeassociation.sourceforge.net/Tzfile/Europe/Berlin:20260115T170000\n"
        "RECURRENCE-ID;TZID=/citadel.org/20190914_1/Asia/Tokyo:20260116T000000\n"
        "END:VEVENT\nEND:VCALENDAR\n";
    static const char *const not_zones[] = {
        "/freeassociation.sourceforge.net/../../etc/passwd",
        "/freeassociation.sourceforge.net/",
        "/usr/share/zoneinfo/Europe/Berlin",
        "/citadel.org/Europe",
    };
    cJSON *o = parse_ok(winter);

    assert_jstr(o, "/events/0/start/utc", "2026-01-15T09:00:00Z");
    cJSON_Delete(o);
    o = parse_ok(prefixed);
    assert_jstr(o, "/events/0/start/utc", "2026-01-15T15:00:00Z");
    assert_jstr(o, "/events/0/start/tzid", "/freeassociation.sourceforge.net/America/New_York");
    assert_jstr(o, "/events/0/end/utc", "2026-01-15T16:00:00Z");
    assert_jstr(o, "/events/0/recurrence_id/utc", "2026-01-15T15:00:00Z");
    cJSON_Delete(o);
    for (size_t i = 0; i < DR_ARRAY_LEN(not_zones); i++) {
        char text[512];

        snprintf(text, sizeof(text),
                 "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:n\nDTSTART;TZID=\"%s\":20260115T100000\n"
                 "END:VEVENT\nEND:VCALENDAR\n",
                 not_zones[i]);
        expect_reject(text, strlen(text), DR_EINVAL, "matches no VTIMEZONE");
    }

    o = parse_ok(own);
    assert_int_equal(cJSON_GetArraySize(dr_json_pointer(o, "/timezones")), 2);
    assert_true(strcmp(jstr(o, "/timezones/0"), "Europe/Berlin") == 0 ||
                strcmp(jstr(o, "/timezones/1"), "Europe/Berlin") == 0);
    assert_jstr(o, "/events/0/start/utc", "2026-01-15T07:00:00Z");
    assert_jstr(o, "/events/0/end/utc", "2026-01-15T04:30:00Z");
    assert_jstr(o, "/events/0/end/tzid", "Custom/Half");
    /* All-day. */
    assert_jstr(o, "/events/1/start/value", "2026-03-01");
    assert_jstr(o, "/events/1/start/utc", NULL);
    assert_true(cJSON_IsTrue(dr_json_pointer(o, "/events/1/start/all_day")));
    assert_jstr(o, "/events/1/end/value", "2026-03-02");
    /* Floating: no instant. DURATION gives the end. */
    assert_jstr(o, "/events/2/start/value", "2026-03-01T09:00:00");
    assert_jstr(o, "/events/2/start/tzid", NULL);
    assert_jstr(o, "/events/2/start/utc", NULL);
    assert_jstr(o, "/events/2/duration", "PT45M");
    assert_jstr(o, "/events/2/end/value", "2026-03-01T09:45:00");
    assert_jstr(o, "/events/2/summary", NULL);
    /* UTC. */
    assert_jstr(o, "/events/3/start/value", "2026-03-01T09:00:00Z");
    assert_jstr(o, "/events/3/start/utc", "2026-03-01T09:00:00Z");
    assert_jstr(o, "/events/3/recurrence_id/utc", "2026-03-01T09:00:00Z");
    assert_jstr(o, "/events/3/end", NULL);
    assert_jstr(o, "/events/3/organizer", NULL);
    cJSON_Delete(o);
}

static void line_endings_and_bom(void **state)
{
    /* libical also reads the extended ISO 8601 form; it is unambiguous, so it is kept. */
    static const char extended[] = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\n"
                                   "DTSTART:2026-01-01T10:00:00Z\nEND:VEVENT\nEND:VCALENDAR\n";
    static const char lf[] = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\nSUMMARY:a\n b\nEND:VEVENT\n"
                             "END:VCALENDAR";
    static const char bom[] = "\xef\xbb\xbf"
                              "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:caf\xc3\xa9\r\n"
                              "END:VEVENT\r\nEND:VCALENDAR\r\n";
    cJSON *o = parse_ok(lf);

    assert_jstr(o, "/events/0/summary", "ab");
    cJSON_Delete(o);
    o = parse_ok(bom);
    assert_jstr(o, "/events/0/summary", "caf\xc3\xa9");
    cJSON_Delete(o);
    o = parse_ok(extended);
    assert_jstr(o, "/events/0/start/utc", "2026-01-01T10:00:00Z");
    cJSON_Delete(o);
}

/* RFC 5545 3.1: a line may be folded between the bytes of one UTF-8 character; unfolding puts
 * them back together. What is still broken once unfolded is refused. */
static void folded_utf8(void **state)
{
    static const char split[] = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n"
                                "SUMMARY:caf\xc3\r\n \xa9 \xf0\x9f\r\n \x98\r\n\t\x80!\r\n"
                                "END:VEVENT\r\nEND:VCALENDAR\r\n";
    static const char broken[] = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n"
                                 "SUMMARY:caf\xc3\r\n e\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    cJSON *o = parse_ok(split);

    assert_jstr(o, "/events/0/summary", "caf\xc3\xa9 \xf0\x9f\x98\x80!");
    cJSON_Delete(o);
    expect_reject(broken, strlen(broken), DR_EINVAL, "line 4: invalid UTF-8");
}

static void reply_partstats(void **state)
{
    static const char reply[] = "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:poll-7\r\n"
                                "ORGANIZER:mailto:org@example.org\r\n"
                                "ATTENDEE;PARTSTAT=TENTATIVE:MAILTO:Guest.One@Example.org\r\n"
                                "ATTENDEE;PARTSTAT=DECLINED;CN=Two:mailto:two@example.org\r\n"
                                "END:VEVENT\r\nEND:VCALENDAR\r\n";
    static const char no_uid[] = "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
                                 "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@example.org\r\n"
                                 "END:VEVENT\r\nEND:VCALENDAR\r\n";
    cJSON *out = NULL;

    assert_int_equal(dr_ics_reply_partstats(reply, strlen(reply), &out), DR_OK);
    assert_int_equal(cJSON_GetArraySize(out), 2);
    assert_jstr(out, "/0/uid", "poll-7");
    assert_jstr(out, "/0/attendee", "guest.one@example.org");
    assert_jstr(out, "/0/partstat", "TENTATIVE");
    assert_jstr(out, "/1/attendee", "two@example.org");
    assert_jstr(out, "/1/partstat", "DECLINED");
    cJSON_Delete(out);

    out = (cJSON *)1;
    assert_int_equal(dr_ics_reply_partstats(no_uid, strlen(no_uid), &out), DR_EINVAL);
    assert_null(out);
    out = (cJSON *)1;
    assert_int_equal(dr_ics_reply_partstats(berlin_request, strlen(berlin_request), &out),
                     DR_EINVAL);
    assert_null(out);
}

static void error_redacts_addresses(void **state)
{
    static const char text[] = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\n"
                               "DTSTART:secret.person@example.com\nEND:VEVENT\nEND:VCALENDAR\n";
    char err[ERRSZ];
    cJSON *out = NULL;

    assert_int_equal(dr_ics_parse(text, strlen(text), &out, err, sizeof(err)), DR_EINVAL);
    assert_null(strstr(err, "secret.person"));
    assert_non_null(strstr(err, "s***@example.com"));
    assert_non_null(strstr(err, "line 4"));
    /* A tiny buffer is still terminated. */
    assert_int_equal(dr_ics_parse(text, strlen(text), &out, err, 8), DR_EINVAL);
    assert_true(strlen(err) < 8);
}

static void error_names_line(void **state)
{
    static const char text[] = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n"
                               "DTSTART:20260101T100000Z\r\nDTSTAR:20260101T100000Z\r\n"
                               "END:VEVENT\r\nEND:VCALENDAR\r\n";

    /* The misspelt name is reported on its own line, not inside the DTSTART before it. */
    expect_reject(text, strlen(text), DR_EINVAL, "line 5");
    expect_reject(text, strlen(text), DR_EINVAL, "DTSTAR");
}

/* ---- threads ------------------------------------------------------------------------------ */

struct worker {
    const char *expect;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < 40; i++) {
        cJSON *o = NULL;
        char err[ERRSZ];
        char *s;

        if (dr_ics_parse(berlin_request, strlen(berlin_request), &o, err, sizeof(err)) != DR_OK) {
            w->failures++;
            continue;
        }
        s = dr_json_print(o);
        if (strcmp(s, w->expect) != 0) {
            w->failures++;
        }
        free(s);
        cJSON_Delete(o);
    }
    return NULL;
}

static void concurrent_parses(void **state)
{
    cJSON *o = parse_ok(berlin_request);
    char *expect = dr_json_print(o);
    pthread_t t[4];
    struct worker w[4];

    cJSON_Delete(o);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.expect = expect};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    free(expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc2446_methods),
        cmocka_unit_test(rfc2446_reply_partstats),
        cmocka_unit_test(rfc2446_request_fields),
        cmocka_unit_test(mime_simple),
        cmocka_unit_test(mime_complex_bad_dtend),
        cmocka_unit_test(icaljs_parser_fixtures),
        cmocka_unit_test(icaljs_samples),
        cmocka_unit_test(icaljs_sample_values),
        cmocka_unit_test(libical_fuzz_reproducers),
        cmocka_unit_test(libical_fuzz_bodies),
        cmocka_unit_test(hostile_sizes),
        cmocka_unit_test(hostile_structure),
        cmocka_unit_test(hostile_time_zones),
        cmocka_unit_test(time_zone_moves_keep_conversions),
        cmocka_unit_test(bad_dates),
        cmocka_unit_test(event_fields),
        cmocka_unit_test(time_zones),
        cmocka_unit_test(line_endings_and_bom),
        cmocka_unit_test(folded_utf8),
        cmocka_unit_test(reply_partstats),
        cmocka_unit_test(error_redacts_addresses),
        cmocka_unit_test(error_names_line),
        cmocka_unit_test(concurrent_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
