/*
 * Test helper: HTML to text as src/processors/shipment/html.c did it before plain text was copied
 * a run at a time (commit 6d44281), kept verbatim apart from names as the reference the current
 * dr__html_to_text() is compared with. dr__looks_html() is left out (unchanged).
 */
#ifndef TEST_SHIPMENT_HTML_REF_H
#define TEST_SHIPMENT_HTML_REF_H

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/util.h"

static int ref_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive search for the NUL-terminated needle in h[0..n). */
static const char *ref_find_ci(const char *h, size_t n, const char *needle)
{
    size_t m = strlen(needle);

    for (size_t i = 0; m <= n && i <= n - m; i++) {
        size_t j = 0;
        while (j < m && ref_lower((unsigned char)h[i + j]) == needle[j]) {
            j++;
        }
        if (j == m) {
            return h + i;
        }
    }
    return NULL;
}

static int ref_put_utf8(struct dr_buf *out, uint32_t cp)
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
static int ref_decode_entity(const char *s, size_t n, struct dr_buf *out, size_t *used)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {
        {"nbsp;", 0xA0},    {"amp;", '&'},      {"lt;", '<'},       {"gt;", '>'},
        {"quot;", '"'},     {"apos;", '\''},    {"reg;", 0xAE},     {"copy;", 0xA9},
        {"trade;", 0x2122}, {"ndash;", 0x2013}, {"mdash;", 0x2014}, {"hellip;", 0x2026},
        {"rsquo;", 0x2019}, {"lsquo;", 0x2018}, {"zwnj;", 0x200C},  {"shy;", 0xAD},
    };

    *used = 0;
    if (n >= 3 && s[1] == '#') {
        uint32_t cp = 0;
        size_t i = 2;
        int hex = i < n && (s[i] == 'x' || s[i] == 'X');
        size_t digits = 0;

        i += hex;
        for (; i < n && digits < 8; i++, digits++) {
            int c = ref_lower((unsigned char)s[i]), v;
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
        return ref_put_utf8(out, cp);
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
        size_t m = strlen(named[k].name);
        if (n > m && strncasecmp(s + 1, named[k].name, m) == 0) {
            *used = m + 1;
            return ref_put_utf8(out, named[k].cp);
        }
    }
    return DR_OK;
}

/* Appends text with references decoded and runs of blanks folded into one space. */
static int ref_put_text(struct dr_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int err;

        if (c == '&') {
            size_t used;
            err = ref_decode_entity(s + i, n - i, out, &used);
            if (err) {
                return err;
            }
            if (used) {
                i += used;
                continue;
            }
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (out->len && out->data[out->len - 1] != ' ' && out->data[out->len - 1] != '\n') {
                err = dr_buf_appendc(out, ' ');
                if (err) {
                    return err;
                }
            }
            i++;
            continue;
        }
        err = dr_buf_appendc(out, (char)c);
        if (err) {
            return err;
        }
        i++;
    }
    return DR_OK;
}

static int ref_newline(struct dr_buf *out)
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

static int ref_is_block(const char *name, size_t n)
{
    static const char *const blocks[] = {
        "br",      "p",      "div",    "tr",    "td",    "th",         "li", "table", "h1",
        "h2",      "h3",     "h4",     "h5",    "h6",    "ul",         "ol", "hr",    "center",
        "section", "header", "footer", "title", "tbody", "blockquote", "pre"};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        if (strlen(blocks[i]) == n && strncasecmp(blocks[i], name, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Span of the href value in the tag text t[0..n), if it is a web link. */
static int ref_find_href(const char *t, size_t n, size_t *start, size_t *end)
{
    const char *h = ref_find_ci(t, n, "href=");
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
    return *end - *start >= 8 && ref_find_ci(t + *start, *end - *start, "http") != NULL;
}

/* Link targets go on their own line after the link text, so "number <a>1Z...</a>" keeps the
 * number next to its label. */
static int ref_put_href(const char *href, size_t n, struct dr_buf *out)
{
    int err = ref_newline(out);

    if (!err) {
        err = ref_put_text(out, href, n);
    }
    if (!err) {
        err = ref_newline(out);
    }
    return err;
}

static int ref_html_to_text(const char *html, size_t len, struct dr_buf *out)
{
    size_t i = 0, href_start = 0, href_end = 0;
    int err = DR_OK;

    while (i < len && !err) {
        const char *lt = memchr(html + i, '<', len - i);
        size_t stop = lt ? (size_t)(lt - html) : len;

        err = ref_put_text(out, html + i, stop - i);
        if (err || !lt) {
            break;
        }
        i = stop;
        if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
            const char *end = ref_find_ci(html + i + 4, len - i - 4, "-->");
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
            err = ref_put_text(out, "<", 1); /* a lone '<' in text */
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
        if (name_len == 1 && ref_lower((unsigned char)html[name_start]) == 'a') {
            size_t hs, he;
            if (href_end > href_start) {
                err = ref_put_href(html + href_start, href_end - href_start, out);
                href_start = href_end = 0;
            }
            if (!closing && ref_find_href(html + i, j - i, &hs, &he)) {
                href_start = i + hs;
                href_end = i + he;
            }
        } else if (ref_is_block(html + name_start, name_len)) {
            err = ref_newline(out);
        }
        i = j < len ? j + 1 : len;
        if (!closing && ((name_len == 6 && strncasecmp(html + name_start, "script", 6) == 0) ||
                         (name_len == 5 && strncasecmp(html + name_start, "style", 5) == 0))) {
            const char *end =
                ref_find_ci(html + i, len - i, name_len == 6 ? "</script" : "</style");
            i = end ? (size_t)(end - html) : len;
        }
    }
    if (!err && href_end > href_start) {
        err = ref_put_href(html + href_start, href_end - href_start, out);
    }
    return err;
}

#endif
