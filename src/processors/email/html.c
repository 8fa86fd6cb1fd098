/*
 * HTML to readable text for classification and indexing. Not a browser: a single forward pass
 * over the bytes that knows which elements hide their content, which ones break lines, and how
 * to decode character references. Malformed markup degrades to text, never to an error.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

struct writer {
    struct dr_buf *b;
    int nl;    /* newlines at the end of the output; 2 at the start so none lead */
    int space; /* a collapsed space is pending */
    int err;
};

static void emit(struct writer *w, const char *s, size_t n)
{
    if (w->err || n == 0) {
        return;
    }
    if (w->space && w->nl == 0) {
        w->err = dr_buf_appendc(w->b, ' ');
    }
    w->space = 0;
    if (!w->err) {
        w->err = dr_buf_append(w->b, s, n);
    }
    if (!w->err) {
        w->nl = 0;
    }
}

static void emit_space(struct writer *w)
{
    if (w->nl == 0) {
        w->space = 1;
    }
}

/* Ensures the output ends with at least n newlines (n <= 2). */
static void emit_break(struct writer *w, int n)
{
    w->space = 0;
    while (!w->err && w->nl < n) {
        w->err = dr_buf_appendc(w->b, '\n');
        w->nl++;
    }
}

static void emit_codepoint(struct writer *w, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp == 0xA0 || cp == 0x2002 || cp == 0x2003 || cp == 0x2009) {
        emit_space(w);
        return;
    }
    if (cp == 0xAD || cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0xFEFF ||
        cp == 0x034F) {
        return; /* invisible padding, common in marketing pre-headers */
    }
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        cp = 0xFFFD;
    }
    n = dr_utf8_encode(cp, u);
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
        emit_space(w);
        return;
    }
    emit(w, u, n);
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},       {"lt", '<'},       {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},     {"nbsp", 0xA0},    {"ensp", 0x2002},   {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200C},  {"zwj", 0x200D},    {"shy", 0xAD},
    {"copy", 0xA9},     {"reg", 0xAE},     {"trade", 0x2122},  {"hellip", 0x2026},
    {"mdash", 0x2014},  {"ndash", 0x2013}, {"lsquo", 0x2018},  {"rsquo", 0x2019},
    {"sbquo", 0x201A},  {"ldquo", 0x201C}, {"rdquo", 0x201D},  {"bdquo", 0x201E},
    {"bull", 0x2022},   {"middot", 0xB7},  {"euro", 0x20AC},   {"pound", 0xA3},
    {"yen", 0xA5},      {"cent", 0xA2},    {"sect", 0xA7},     {"para", 0xB6},
    {"deg", 0xB0},      {"plusmn", 0xB1},  {"times", 0xD7},    {"divide", 0xF7},
    {"laquo", 0xAB},    {"raquo", 0xBB},   {"lsaquo", 0x2039}, {"rsaquo", 0x203A},
    {"iexcl", 0xA1},    {"iquest", 0xBF},  {"ordf", 0xAA},     {"ordm", 0xBA},
    {"sup1", 0xB9},     {"sup2", 0xB2},    {"sup3", 0xB3},     {"frac12", 0xBD},
    {"frac14", 0xBC},   {"frac34", 0xBE},  {"micro", 0xB5},    {"dagger", 0x2020},
    {"larr", 0x2190},   {"rarr", 0x2192},  {"uarr", 0x2191},   {"darr", 0x2193},
    {"check", 0x2713},  {"star", 0x2606},  {"hearts", 0x2665}, {"Agrave", 0xC0},
    {"Aacute", 0xC1},   {"Acirc", 0xC2},   {"Atilde", 0xC3},   {"Auml", 0xC4},
    {"Aring", 0xC5},    {"AElig", 0xC6},   {"Ccedil", 0xC7},   {"Egrave", 0xC8},
    {"Eacute", 0xC9},   {"Ecirc", 0xCA},   {"Euml", 0xCB},     {"Igrave", 0xCC},
    {"Iacute", 0xCD},   {"Icirc", 0xCE},   {"Iuml", 0xCF},     {"Ntilde", 0xD1},
    {"Ograve", 0xD2},   {"Oacute", 0xD3},  {"Ocirc", 0xD4},    {"Otilde", 0xD5},
    {"Ouml", 0xD6},     {"Oslash", 0xD8},  {"Ugrave", 0xD9},   {"Uacute", 0xDA},
    {"Ucirc", 0xDB},    {"Uuml", 0xDC},    {"Yacute", 0xDD},   {"szlig", 0xDF},
    {"agrave", 0xE0},   {"aacute", 0xE1},  {"acirc", 0xE2},    {"atilde", 0xE3},
    {"auml", 0xE4},     {"aring", 0xE5},   {"aelig", 0xE6},    {"ccedil", 0xE7},
    {"egrave", 0xE8},   {"eacute", 0xE9},  {"ecirc", 0xEA},    {"euml", 0xEB},
    {"igrave", 0xEC},   {"iacute", 0xED},  {"icirc", 0xEE},    {"iuml", 0xEF},
    {"ntilde", 0xF1},   {"ograve", 0xF2},  {"oacute", 0xF3},   {"ocirc", 0xF4},
    {"otilde", 0xF5},   {"ouml", 0xF6},    {"oslash", 0xF8},   {"ugrave", 0xF9},
    {"uacute", 0xFA},   {"ucirc", 0xFB},   {"uuml", 0xFC},     {"yacute", 0xFD},
    {"yuml", 0xFF},     {"OElig", 0x152},  {"oelig", 0x153},   {"Scaron", 0x160},
    {"scaron", 0x161},  {"Yuml", 0x178},   {"Zcaron", 0x17D},  {"zcaron", 0x17E},
};

/*
 * Decodes the character reference at s[0] == '&' into *cp. Returns the bytes consumed, or 0
 * when it is not a reference (then '&' is literal text).
 */
static size_t decode_entity(const char *s, size_t n, uint32_t *cp)
{
    size_t i = 1;

    if (n >= 3 && s[1] == '#') {
        uint32_t v = 0;
        int hex = (s[2] == 'x' || s[2] == 'X');
        size_t start;

        i = hex ? 3 : 2;
        start = i;
        for (; i < n && i - start < 8; i++) {
            char c = s[i];
            int d;
            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (hex && c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (hex && c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                break;
            }
            v = v * (hex ? 16u : 10u) + (uint32_t)d;
        }
        if (i == start) {
            return 0;
        }
        if (i < n && s[i] == ';') {
            i++;
        }
        /* Windows-1252 code points smuggled in as C1 controls, as browsers map them. */
        if (v >= 0x80 && v <= 0x9F) {
            static const uint16_t c1[32] = {0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020,
                                            0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD,
                                            0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D,
                                            0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
                                            0x0153, 0xFFFD, 0x017E, 0x0178};
            v = c1[v - 0x80];
        }
        *cp = v;
        return i;
    }
    while (i < n && i < 10 &&
           ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
            (s[i] >= '0' && s[i] <= '9'))) {
        i++;
    }
    if (i == 1) {
        return 0;
    }
    for (size_t k = 0; k < DR_ARRAY_LEN(entities); k++) {
        size_t el;
        if (entities[k].name[0] != s[1]) {
            continue;
        }
        el = strlen(entities[k].name);
        if (el == i - 1 && memcmp(s + 1, entities[k].name, el) == 0) {
            *cp = entities[k].cp;
            return (i < n && s[i] == ';') ? i + 1 : i;
        }
    }
    return 0;
}

enum tag_kind {
    TAG_OTHER,
    TAG_BLOCK,
    TAG_PARA,
    TAG_BR,
    TAG_CELL,
    TAG_LI,
    TAG_A,
    TAG_PRE,
    TAG_SKIP,
    TAG_IMG
};

static const struct {
    const char *name;
    enum tag_kind kind;
} tags[] = {
    {"p", TAG_PARA},          {"div", TAG_BLOCK},
    {"br", TAG_BR},           {"tr", TAG_BLOCK},
    {"td", TAG_CELL},         {"th", TAG_CELL},
    {"li", TAG_LI},           {"a", TAG_A},
    {"table", TAG_BLOCK},     {"tbody", TAG_OTHER},
    {"ul", TAG_BLOCK},        {"ol", TAG_BLOCK},
    {"h1", TAG_PARA},         {"h2", TAG_PARA},
    {"h3", TAG_PARA},         {"h4", TAG_PARA},
    {"h5", TAG_PARA},         {"h6", TAG_PARA},
    {"blockquote", TAG_PARA}, {"pre", TAG_PRE},
    {"hr", TAG_PARA},         {"section", TAG_BLOCK},
    {"article", TAG_BLOCK},   {"header", TAG_BLOCK},
    {"footer", TAG_BLOCK},    {"nav", TAG_BLOCK},
    {"aside", TAG_BLOCK},     {"main", TAG_BLOCK},
    {"form", TAG_BLOCK},      {"dl", TAG_BLOCK},
    {"dt", TAG_BLOCK},        {"dd", TAG_BLOCK},
    {"center", TAG_BLOCK},    {"address", TAG_BLOCK},
    {"figure", TAG_BLOCK},    {"fieldset", TAG_BLOCK},
    {"caption", TAG_BLOCK},   {"body", TAG_BLOCK},
    {"html", TAG_BLOCK},      {"title", TAG_SKIP},
    {"script", TAG_SKIP},     {"style", TAG_SKIP},
    {"template", TAG_SKIP},   {"head", TAG_OTHER},
    {"img", TAG_IMG},         {"option", TAG_BLOCK},
    {"textarea", TAG_BLOCK},  {"svg", TAG_SKIP},
};

static enum tag_kind tag_lookup(const char *name, size_t n)
{
    if (n == 0) {
        return TAG_OTHER;
    }
    for (size_t k = 0; k < DR_ARRAY_LEN(tags); k++) {
        /* every name starts with a lower-case letter: a first byte that is neither case of it
         * cannot match */
        if (tags[k].name[0] != ((unsigned char)name[0] | 0x20)) {
            continue;
        }
        if (strlen(tags[k].name) == n && strncasecmp(tags[k].name, name, n) == 0) {
            return tags[k].kind;
        }
    }
    return TAG_OTHER;
}

/* Finds the end of a tag starting at s[0] == '<', honouring quoted attribute values. */
static size_t tag_end(const char *s, size_t n)
{
    char q = 0;

    for (size_t i = 1; i < n; i++) {
        if (q) {
            if (s[i] == q) {
                q = 0;
            }
        } else if (s[i] == '"' || s[i] == '\'') {
            /* quotes only open an attribute value, after '=' */
            size_t j = i;
            while (j > 1 && (s[j - 1] == ' ' || s[j - 1] == '\t' || s[j - 1] == '\n')) {
                j--;
            }
            if (s[j - 1] == '=') {
                q = s[i];
            }
        } else if (s[i] == '>') {
            return i + 1;
        }
    }
    return n;
}

/* Value of attribute attr inside the tag text s[0..n); *vlen set; NULL if absent. */
static const char *tag_attr(const char *s, size_t n, const char *attr, size_t *vlen)
{
    size_t al = strlen(attr);

    for (size_t i = 1; i + al < n; i++) {
        char prev = s[i - 1];
        if ((prev == ' ' || prev == '\t' || prev == '\n' || prev == '\r') &&
            strncasecmp(s + i, attr, al) == 0) {
            size_t j = i + al;
            while (j < n && (s[j] == ' ' || s[j] == '\t')) {
                j++;
            }
            if (j >= n || s[j] != '=') {
                continue;
            }
            j++;
            while (j < n && (s[j] == ' ' || s[j] == '\t')) {
                j++;
            }
            if (j < n && (s[j] == '"' || s[j] == '\'')) {
                char q = s[j++];
                size_t k = j;
                while (k < n && s[k] != q) {
                    k++;
                }
                *vlen = k - j;
                return s + j;
            }
            size_t k = j;
            while (k < n && s[k] != ' ' && s[k] != '>' && s[k] != '\t' && s[k] != '\n') {
                k++;
            }
            *vlen = k - j;
            return s + j;
        }
    }
    return NULL;
}

/* Skips raw text up to and including "</name ...>", case-insensitive. */
static size_t skip_raw(const char *s, size_t n, size_t i, const char *name, size_t nlen)
{
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        if (!lt) {
            return n;
        }
        i = (size_t)(lt - s);
        if (i + 2 + nlen <= n && s[i + 1] == '/' && strncasecmp(s + i + 2, name, nlen) == 0) {
            return i + tag_end(s + i, n - i);
        }
        i++;
    }
    return n;
}

/* Emits a decoded attribute value (href, alt) as text. */
static void emit_attr_text(struct writer *w, const char *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t used;
        if (v[i] == '&' && (used = decode_entity(v + i, n - i, &cp)) > 0) {
            emit_codepoint(w, cp);
            i += used;
        } else if (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
            emit_space(w);
            i++;
        } else {
            /* a run of plain bytes at once when it fits; near the limit byte by byte, so the
             * output stops where it would */
            size_t k = i + 1;
            while (k < n && v[k] != '&' && v[k] != ' ' && v[k] != '\t' && v[k] != '\n' &&
                   v[k] != '\r') {
                k++;
            }
            if (w->b->limit - w->b->len > k - i + 1) {
                emit(w, v + i, k - i);
                i = k;
            } else {
                emit(w, v + i, 1);
                i++;
            }
        }
    }
}

static int link_worth_keeping(const char *href, size_t n)
{
    /* href is not NUL-terminated: it may end the input */
    return n < 2048 && ((n >= 7 && strncasecmp(href, "http://", 7) == 0) ||
                        (n >= 8 && strncasecmp(href, "https://", 8) == 0));
}

int dr__email_html_to_text(const char *s, size_t n, struct dr_buf *out)
{
    struct writer w = {.b = out, .nl = 2};
    size_t start_len = out->len;
    const char *href = NULL;
    size_t href_len = 0, link_start = 0;
    int pre = 0;
    size_t i = 0;

    while (i < n && !w.err) {
        unsigned char c = (unsigned char)s[i];

        if (c == '<') {
            size_t end, nstart, nlen;
            int closing;

            if (i + 4 <= n && memcmp(s + i, "<!--", 4) == 0) {
                const char *e = NULL;
                for (size_t k = i + 4; k + 3 <= n; k++) {
                    if (s[k] == '-' && s[k + 1] == '-' && s[k + 2] == '>') {
                        e = s + k;
                        break;
                    }
                }
                i = e ? (size_t)(e - s) + 3 : n;
                continue;
            }
            nstart = i + 1;
            closing = (nstart < n && s[nstart] == '/');
            if (closing) {
                nstart++;
            }
            nlen = 0;
            while (nstart + nlen < n &&
                   ((s[nstart + nlen] >= 'a' && s[nstart + nlen] <= 'z') ||
                    (s[nstart + nlen] >= 'A' && s[nstart + nlen] <= 'Z') ||
                    (nlen > 0 && s[nstart + nlen] >= '0' && s[nstart + nlen] <= '9'))) {
                nlen++;
            }
            if (nlen == 0 && !(nstart < n && (s[nstart] == '!' || s[nstart] == '?'))) {
                emit(&w, "<", 1); /* a lone '<' in text */
                i++;
                continue;
            }
            end = tag_end(s + i, n - i);
            if (nlen == 0) { /* <!DOCTYPE>, <?xml?> */
                i += end;
                continue;
            }
            enum tag_kind kind = tag_lookup(s + nstart, nlen);
            switch (kind) {
            case TAG_SKIP:
                i += end;
                if (!closing && s[i - 1] == '>' && !(end >= 2 && s[i - 2] == '/')) {
                    char name[16];
                    size_t k = nlen < sizeof(name) - 1 ? nlen : sizeof(name) - 1;
                    memcpy(name, s + nstart, k);
                    name[k] = '\0';
                    i = skip_raw(s, n, i, name, k);
                }
                continue;
            case TAG_BR:
                if (w.nl < 2) {
                    w.space = 0;
                    w.err = dr_buf_appendc(w.b, '\n');
                    w.nl++;
                }
                break;
            case TAG_PARA:
                emit_break(&w, 2);
                break;
            case TAG_BLOCK:
                emit_break(&w, 1);
                break;
            case TAG_PRE:
                emit_break(&w, 1);
                pre = !closing;
                break;
            case TAG_CELL:
                emit_space(&w);
                break;
            case TAG_LI:
                emit_break(&w, 1);
                if (!closing) {
                    emit(&w, "- ", 2);
                }
                break;
            case TAG_IMG: {
                size_t alen = 0;
                const char *alt = tag_attr(s + i, end, "alt", &alen);
                if (alt && alen > 0 && alen < 256) {
                    emit_space(&w);
                    emit_attr_text(&w, alt, alen);
                    emit_space(&w);
                }
                break;
            }
            case TAG_A:
                if (!closing) {
                    href = tag_attr(s + i, end, "href", &href_len);
                    if (href && !link_worth_keeping(href, href_len)) {
                        href = NULL;
                    }
                    link_start = out->len;
                } else if (href) {
                    /* Keep the URL unless the link text already shows it. */
                    int shown = out->len >= link_start && out->len - link_start >= href_len &&
                                memmem(out->data + link_start, out->len - link_start, href,
                                       href_len) != NULL;
                    if (!shown) {
                        emit_space(&w);
                        emit(&w, "(", 1);
                        emit_attr_text(&w, href, href_len);
                        emit(&w, ")", 1);
                    }
                    href = NULL;
                }
                break;
            case TAG_OTHER:
                break;
            }
            i += end;
            continue;
        }
        if (c == '&') {
            uint32_t cp;
            size_t used = decode_entity(s + i, n - i, &cp);
            if (used) {
                emit_codepoint(&w, cp);
                i += used;
                continue;
            }
            emit(&w, "&", 1);
            i++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            if (pre) {
                if (c == '\n') {
                    w.space = 0;
                    w.err = dr_buf_appendc(w.b, '\n');
                    w.nl = w.nl < 2 ? w.nl + 1 : 2;
                } else if (c != '\r') {
                    emit(&w, " ", 1);
                }
            } else {
                emit_space(&w);
            }
            i++;
            continue;
        }
        if (c == 0xC2 && i + 1 < n &&
            ((unsigned char)s[i + 1] == 0xA0 || (unsigned char)s[i + 1] == 0xAD)) {
            emit_codepoint(&w, (unsigned char)s[i + 1]);
            i += 2;
            continue;
        }
        if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            (unsigned char)s[i + 2] >= 0x8B && (unsigned char)s[i + 2] <= 0x8D) {
            i += 3; /* zero-width space / joiners */
            continue;
        }
        if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBB &&
            (unsigned char)s[i + 2] == 0xBF) {
            i += 3;
            continue;
        }
        /* A run of ordinary bytes. */
        size_t j = i + 1;
        while (j < n) {
            unsigned char d = (unsigned char)s[j];
            if (d == '<' || d == '&' || d == ' ' || d == '\t' || d == '\n' || d == '\r' ||
                d == '\f' || d == 0xC2 || d == 0xE2 || d == 0xEF) {
                break;
            }
            j++;
        }
        emit(&w, s + i, j - i);
        i = j;
    }
    if (w.err == DR_ETOOBIG) {
        /* Keep what fits, cut at a character boundary. */
        out->len = dr__email_utf8_boundary(out->data ? out->data : "", out->len);
        if (out->data) {
            out->data[out->len] = '\0';
        }
    }
    /* Trailing whitespace carries no meaning. */
    while (out->len > start_len &&
           (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' ')) {
        out->data[--out->len] = '\0';
    }
    return w.err;
}
