/*
 * Just enough HTML to text for reading notification emails: drops markup, scripts, styles and
 * comments, decodes the common character references, keeps link targets (carrier tracking links
 * carry the number), and breaks lines at block elements so table cells stay apart.
 * Single pass, linear in the input; never fails on malformed markup.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive search for the NUL-terminated needle in h[0..n). */
static const char *find_ci(const char *h, size_t n, const char *needle)
{
    size_t m = strlen(needle);

    for (size_t i = 0; m <= n && i <= n - m; i++) {
        size_t j = 0;
        while (j < m && lower((unsigned char)h[i + j]) == needle[j]) {
            j++;
        }
        if (j == m) {
            return h + i;
        }
    }
    return NULL;
}

/* 1 when h[0..n) starts with the lower-case needle, in any case. */
static int starts_ci(const char *h, size_t n, const char *needle)
{
    size_t j = 0;

    while (needle[j] && j < n && lower((unsigned char)h[j]) == needle[j]) {
        j++;
    }
    return needle[j] == '\0';
}

int dr__looks_html(const char *text, size_t len)
{
    static const char *const marks[] = {"<html", "<!doctype", "<body", "<div",  "<table",
                                        "<td",   "<p>",       "<br",   "<span", "<a href"};
    size_t n = len < 8192 ? len : 8192;
    const char *p = text, *end = text + n;

    if (n == 0) {
        return 0;
    }
    /* every mark starts with '<': look only there */
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
            if (starts_ci(p, (size_t)(end - p), marks[i])) {
                return 1;
            }
        }
        p++;
    }
    return 0;
}

static int put_utf8(struct dr_buf *out, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp == 0xA0) {
        cp = ' ';
    }
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        return DR_OK; /* drop what is not a character */
    }
    n = dr_utf8_encode(cp, u);
    return dr_buf_append(out, u, n);
}

/* Decodes the character reference at s[0] == '&'; *used gets its length, 0 if it is none. */
static int decode_entity(const char *s, size_t n, struct dr_buf *out, size_t *used)
{
#define NAMED(s, cp)                                                                               \
    {                                                                                              \
        s, sizeof(s) - 1, cp                                                                       \
    }
    static const struct {
        const char *name;
        size_t len;
        uint32_t cp;
    } named[] = {
        NAMED("nbsp;", 0xA0),    NAMED("amp;", '&'),      NAMED("lt;", '<'),
        NAMED("gt;", '>'),       NAMED("quot;", '"'),     NAMED("apos;", '\''),
        NAMED("reg;", 0xAE),     NAMED("copy;", 0xA9),    NAMED("trade;", 0x2122),
        NAMED("ndash;", 0x2013), NAMED("mdash;", 0x2014), NAMED("hellip;", 0x2026),
        NAMED("rsquo;", 0x2019), NAMED("lsquo;", 0x2018), NAMED("zwnj;", 0x200C),
        NAMED("shy;", 0xAD),
    };
#undef NAMED

    *used = 0;
    if (n >= 3 && s[1] == '#') {
        uint32_t cp = 0;
        size_t i = 2;
        int hex = i < n && (s[i] == 'x' || s[i] == 'X');
        size_t digits = 0;

        i += hex;
        for (; i < n && digits < 8; i++, digits++) {
            int c = lower((unsigned char)s[i]), v;
            if (c >= '0' && c <= '9') {
                v = c - '0';
            } else if (hex && c >= 'a' && c <= 'f') {
                v = c - 'a' + 10;
            } else {
                break;
            }
            cp = cp * (hex ? 16 : 10) + (uint32_t)v;
        }
        if (digits == 0) {
            return DR_OK;
        }
        *used = i + (i < n && s[i] == ';');
        return put_utf8(out, cp);
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
        size_t m = named[k].len;
        if (n > m && strncasecmp(s + 1, named[k].name, m) == 0) {
            *used = m + 1;
            return put_utf8(out, named[k].cp);
        }
    }
    return DR_OK;
}

/* 1 for the bytes put_text() does not copy as they are: a reference's '&' and blanks. */
static const unsigned char special[256] = {
    ['&'] = 1, [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1};

/* Appends text with references decoded and runs of blanks folded into one space. Plain bytes
 * are copied a run at a time: most of a mail's text is plain. */
static int put_text(struct dr_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t j;
        int err;

        if (!special[c]) {
            for (j = i + 1; j < n && !special[(unsigned char)s[j]]; j++) {
            }
            err = dr_buf_append(out, s + i, j - i);
            if (err) {
                return err;
            }
            i = j;
            continue;
        }
        if (c == '&') {
            size_t used;
            err = decode_entity(s + i, n - i, out, &used);
            if (err) {
                return err;
            }
            i += used ? used : 1;
            if (!used) {
                err = dr_buf_appendc(out, '&');
                if (err) {
                    return err;
                }
            }
            continue;
        }
        /* a blank: one space, unless the text already ends with a space or line break */
        if (out->len && out->data[out->len - 1] != ' ' && out->data[out->len - 1] != '\n') {
            err = dr_buf_appendc(out, ' ');
            if (err) {
                return err;
            }
        }
        for (i++; i < n && special[(unsigned char)s[i]] && s[i] != '&'; i++) {
        }
    }
    return DR_OK;
}

static int newline(struct dr_buf *out)
{
    while (out->len && out->data[out->len - 1] == ' ') {
        out->len--;
        out->data[out->len] = '\0';
    }
    if (out->len && out->data[out->len - 1] == '\n') {
        return DR_OK;
    }
    return out->len ? dr_buf_appendc(out, '\n') : DR_OK;
}

/* Block elements, lower case, by name length (the longest is "blockquote"). */
static const char *const blocks_by_len[11] = {
    [1] = "p",
    [2] = "br tr td th li h1 h2 h3 h4 h5 h6 ul ol hr",
    [3] = "div pre",
    [5] = "table title tbody",
    [6] = "center header footer",
    [7] = "section",
    [10] = "blockquote",
};

static int is_block(const char *name, size_t n)
{
    char low[10];
    const char *list;

    if (n == 0 || n >= DR_ARRAY_LEN(blocks_by_len) || !(list = blocks_by_len[n])) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        low[i] = (char)lower((unsigned char)name[i]);
    }
    /* the names of one length, separated by single spaces */
    for (const char *p = list;; p += n + 1) {
        if (memcmp(p, low, n) == 0) {
            return 1;
        }
        if (p[n] == '\0') {
            return 0;
        }
    }
}

/* Span of the href value in the tag text t[0..n), if it is a web link. */
static int find_href(const char *t, size_t n, size_t *start, size_t *end)
{
    const char *h = find_ci(t, n, "href=");
    size_t i;
    char q;

    if (!h) {
        return 0;
    }
    i = (size_t)(h - t) + 5;
    if (i >= n) {
        return 0;
    }
    q = t[i];
    if (q == '"' || q == '\'') {
        *start = ++i;
        while (i < n && t[i] != q) {
            i++;
        }
    } else {
        *start = i;
        while (i < n && t[i] != ' ' && t[i] != '>') {
            i++;
        }
    }
    *end = i;
    return *end - *start >= 8 && find_ci(t + *start, *end - *start, "http") != NULL;
}

/* Link targets go on their own line after the link text, so "number <a>1Z...</a>" keeps the
 * number next to its label. */
static int put_href(const char *href, size_t n, struct dr_buf *out)
{
    int err = newline(out);

    if (!err) {
        err = put_text(out, href, n);
    }
    if (!err) {
        err = newline(out);
    }
    return err;
}

int dr__html_to_text(const char *html, size_t len, struct dr_buf *out)
{
    size_t i = 0, href_start = 0, href_end = 0;
    int err = DR_OK;

    while (i < len && !err) {
        const char *lt = memchr(html + i, '<', len - i);
        size_t stop = lt ? (size_t)(lt - html) : len;

        err = put_text(out, html + i, stop - i);
        if (err || !lt) {
            break;
        }
        i = stop;
        if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
            const char *end = find_ci(html + i + 4, len - i - 4, "-->");
            i = end ? (size_t)(end - html) + 3 : len;
            continue;
        }
        /* the tag: name, then attributes up to an unquoted '>' */
        size_t j = i + 1, name_start, name_len;
        int closing = 0;
        char q = 0;

        if (j < len && html[j] == '/') {
            closing = 1;
            j++;
        }
        name_start = j;
        while (j < len &&
               ((html[j] >= 'a' && html[j] <= 'z') || (html[j] >= 'A' && html[j] <= 'Z') ||
                (html[j] >= '0' && html[j] <= '9'))) {
            j++;
        }
        name_len = j - name_start;
        if (name_len == 0 && !(j < len && (html[j] == '!' || html[j] == '?'))) {
            err = put_text(out, "<", 1); /* a lone '<' in text */
            i++;
            continue;
        }
        while (j < len && (q || html[j] != '>')) {
            if (q && html[j] == q) {
                q = 0;
            } else if (!q && (html[j] == '"' || html[j] == '\'')) {
                q = html[j];
            }
            j++;
        }
        if (name_len == 1 && lower((unsigned char)html[name_start]) == 'a') {
            size_t hs, he;
            if (href_end > href_start) {
                err = put_href(html + href_start, href_end - href_start, out);
                href_start = href_end = 0;
            }
            if (!closing && find_href(html + i, j - i, &hs, &he)) {
                href_start = i + hs;
                href_end = i + he;
            }
        } else if (is_block(html + name_start, name_len)) {
            err = newline(out);
        }
        i = j < len ? j + 1 : len;
        if (!closing && ((name_len == 6 && strncasecmp(html + name_start, "script", 6) == 0) ||
                         (name_len == 5 && strncasecmp(html + name_start, "style", 5) == 0))) {
            const char *end = find_ci(html + i, len - i, name_len == 6 ? "</script" : "</style");
            i = end ? (size_t)(end - html) : len;
        }
    }
    if (!err && href_end > href_start) {
        err = put_href(html + href_start, href_end - href_start, out);
    }
    return err;
}
