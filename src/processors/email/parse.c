/*
 * RFC 5322 / MIME parsing with GMime. The body parts are chosen the way JMAP (RFC 8621
 * section 4.1.4) chooses textBody, htmlBody and attachments, so multipart/alternative and
 * multipart/related pick the same main bodies that mail clients show.
 *
 * Every parse has its own GMimeParserOptions (carrying the warning callback), its own stream
 * and message: nothing is shared between threads but GMime's internally locked caches. The
 * stream is a view of the caller's bytes, not a copy; part bodies are decoded straight from it.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

struct ctx {
    struct dr_email *em;
    const struct dr_email_limits *lim;
    size_t max_depth;
    size_t parts;
    int stopped; /* the part limit was reached, or the message is refused */
    int depth_warned;
    unsigned flags; /* DR__EMAIL_* */
    GPtrArray *calendar_parts;
    GPtrArray *html_later; /* DR__EMAIL_LAZY_HTML: the HTML parts left unread, or NULL */
    GMimeParserOptions *opts;
    GPtrArray *owned;    /* parts made here (boundless_content()), freed with the message */
    const char *refused; /* why the message cannot be read, or NULL */
    size_t fwd_depth;    /* 0 for the message, 1 for one attached to it, ... */
    struct budget *budget; /* shared by all levels */
};

/* What reading one message has spent so far, its attached messages included. */
struct budget {
    size_t forwards; /* attached messages parsed */
    int fwd_warned;
    GArray *fwd_queue;    /* struct fwd_item: attached messages waiting to be read, in the order
                           * found, so all of one level are read before any of the next */
    struct dr_email *top; /* the message: where a warning about them goes */
    size_t reread, reread_max; /* bytes of boundless multiparts parsed again, and the cap */
};

/* What dr__email_lazy_html() needs: the parsed message (its parts are windows onto raw) and the
 * HTML parts choose_bodies() left unread. */
struct dr__email_lazy {
    GMimeParserOptions *opts;
    GMimeStream *stream;
    GByteArray *view;
    GMimeParser *parser;
    GMimeMessage *msg;
    GPtrArray *html;
    GPtrArray *owned;
    struct dr_email_limits lim;
    unsigned flags;
};

/* Headers worth carrying to classifiers (auto-replies, lists, mailers, envelope). */
static const char *const selected_headers[] = {
    "return-path",    "sender",           "delivered-to",  "x-original-to",
    "list-id",        "list-unsubscribe", "list-post",     "precedence",
    "auto-submitted", "x-autoreply",      "x-autorespond", "x-auto-response-suppress",
    "x-mailer",       "user-agent",       "mime-version",  "importance",
    "x-priority",     "thread-topic",     "x-gm-thrid",    "feedback-id",
};

static const char *warning_text(GMimeParserWarning code)
{
    switch (code) {
    case GMIME_WARN_DUPLICATED_HEADER:
        return "duplicated header";
    case GMIME_WARN_DUPLICATED_PARAMETER:
        return "duplicated header parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
        return "header with unencoded 8-bit characters";
    case GMIME_WARN_INVALID_CONTENT_TYPE:
        return "invalid Content-Type, treated as application/octet-stream";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
        return "invalid RFC 2047 encoded header value";
    case GMIME_WARN_MALFORMED_MULTIPART:
        return "malformed multipart (no child parts found)";
    case GMIME_WARN_TRUNCATED_MESSAGE:
        return "message truncated (end boundary missing)";
    case GMIME_WARN_MALFORMED_MESSAGE:
        return "malformed message";
    case GMIME_CRIT_INVALID_HEADER_NAME:
        return "invalid header name";
    case GMIME_CRIT_CONFLICTING_HEADER:
        return "conflicting header";
    case GMIME_CRIT_CONFLICTING_PARAMETER:
        return "conflicting header parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        return "multipart without boundary";
    case GMIME_WARN_INVALID_PARAMETER:
        return "invalid header parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST:
        return "invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW:
        return "MIME nesting too deep for the parser";
    case GMIME_WARN_PART_WITHOUT_CONTENT:
        return "MIME part without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        return "MIME part without headers or content";
    }
    return "MIME parser warning";
}

static void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                              gpointer user_data)
{
    struct dr_email *em = user_data;

    /* Each parse sees 8-bit headers often; one note is enough and says nothing of where. */
    if (code == GMIME_WARN_UNENCODED_8BIT_HEADER || code == GMIME_WARN_INVALID_ADDRESS_LIST ||
        code == GMIME_WARN_INVALID_RFC2047_HEADER_VALUE || !item) {
        dr__email_warn(em, "%s", warning_text(code));
    } else {
        dr__email_warn(em, "%s: %.60s", warning_text(code), item);
    }
}

static GMimeParserOptions *new_options(struct dr_email *em)
{
    static const char *fallback[] = {"UTF-8", "windows-1252", NULL};
    GMimeParserOptions *o = g_mime_parser_options_new();

    g_mime_parser_options_set_fallback_charsets(o, fallback);
    g_mime_parser_options_set_allow_addresses_without_domain(o, TRUE);
    g_mime_parser_options_set_warning_callback(o, on_parser_warning, em);
    return o;
}

/* ---- charset conversion ---------------------------------------------------------------- */

static int is_utf8_or_ascii(const char *cs)
{
    static const char *const names[] = {"utf-8", "utf8", "unicode-1-1-utf-8", "x-unknown"};
    for (size_t i = 0; i < DR_ARRAY_LEN(names); i++) {
        if (strcasecmp(cs, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Labels that the WHATWG Encoding Standard (what browsers and mail clients decode by) reads as
 * another, wider charset than iconv does: ISO-8859-1 and US-ASCII text is windows-1252 in
 * practice (0x93 is a curly quote, not a C1 control), and EUC-KR text is windows-949, which
 * Outlook labels ks_c_5601-1987.
 */
static const char *const cp1252_labels[] = {
    "ansi_x3.4-1968", "ascii",           "cp1252",     "cp819",     "csisolatin1",
    "ibm819",         "iso-8859-1",      "iso-ir-100", "iso8859-1", "iso88591",
    "iso_8859-1",     "iso_8859-1:1987", "l1",         "latin1",    "us-ascii",
    "iso646-us",      "windows-1252",    "x-cp1252"};
/* the US-ASCII labels among them */
static const char *const ascii_labels[] = {"ansi_x3.4-1968", "ascii", "iso646-us", "us-ascii"};
static const char *const cp949_labels[] = {
    "cseuckr",        "csksc56011987",  "euc-kr",  "iso-ir-149", "korean",
    "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "ksc_5601",   "windows-949"};

static int label_in(const char *cs, const char *const *labels, size_t n)
{
    size_t len;

    while (*cs == ' ' || *cs == '\t') {
        cs++;
    }
    len = strlen(cs);
    while (len && (cs[len - 1] == ' ' || cs[len - 1] == '\t')) {
        len--;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(labels[i]) == len && strncasecmp(cs, labels[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

static const uint16_t cp1252_high[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

/* Windows-1252 (a superset of Latin-1 in practice) to UTF-8; never fails. */
static int from_cp1252(const char *s, size_t n, struct dr_buf *out)
{
    int err = DR_OK;

    for (size_t i = 0; i < n && !err; i++) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp = c >= 0x80 && c < 0xA0 ? cp1252_high[c - 0x80] : c;
        char u[3];

        if (cp < 0x80) {
            /* an ASCII run at once where it fits whole; at the limit byte by byte, so out keeps
             * what fitted */
            size_t k = i + 1;
            while (k < n && (unsigned char)s[k] < 0x80) {
                k++;
            }
            if (out->limit - out->len >= k - i) {
                err = dr_buf_append(out, s + i, k - i);
                i = k - 1;
            } else {
                err = dr_buf_appendc(out, (char)cp);
            }
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            err = dr_buf_append(out, u, 2);
        } else {
            u[0] = (char)(0xE0 | (cp >> 12));
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            err = dr_buf_append(out, u, 3);
        }
    }
    return err;
}

/*
 * Converts with iconv (the labels above as the charsets they name), replacing invalid input with
 * U+FFFD. DR_EUNSUPPORTED when iconv does not know the charset; DR_ETOOBIG when out filled up
 * (out keeps what fitted).
 */
static int from_charset(const char *cs, const char *s, size_t n, struct dr_buf *out)
{
    iconv_t cd;
    char chunk[4096];
    char *in = (char *)s;
    size_t inleft = n;
    int err = DR_OK, done = 0;

    if (label_in(cs, ascii_labels, DR_ARRAY_LEN(ascii_labels)) && dr_utf8_valid(s, n)) {
        /* bytes above 0x7F break the label anyway, and senders that label everything
         * US-ASCII mostly send UTF-8: when they all form UTF-8, that is what they are */
        return dr_buf_append(out, s, n);
    }
    if (label_in(cs, cp1252_labels, DR_ARRAY_LEN(cp1252_labels))) {
        return from_cp1252(s, n, out);
    }
    cd = g_mime_iconv_open("UTF-8",
                           label_in(cs, cp949_labels, DR_ARRAY_LEN(cp949_labels)) ? "CP949" : cs);
    if (cd == (iconv_t)-1) {
        return DR_EUNSUPPORTED;
    }
    iconv(cd, NULL, NULL, NULL, NULL);
    while (!err && !done) {
        char *o = chunk;
        size_t oleft = sizeof(chunk);
        size_t rc =
            inleft ? iconv(cd, &in, &inleft, &o, &oleft) : iconv(cd, NULL, NULL, &o, &oleft);
        int e = errno;

        err = dr_buf_append(out, chunk, sizeof(chunk) - oleft);
        if (err) {
            break;
        }
        if (rc != (size_t)-1) {
            done = (inleft == 0 && o == chunk) || inleft == 0;
            if (inleft == 0) {
                /* flush the shift state of stateful charsets (ISO-2022-JP) */
                o = chunk;
                oleft = sizeof(chunk);
                iconv(cd, NULL, NULL, &o, &oleft);
                err = dr_buf_append(out, chunk, sizeof(chunk) - oleft);
                done = 1;
            }
        } else if (e == E2BIG) {
            continue;
        } else if (e == EILSEQ || e == EINVAL) {
            err = dr_buf_append(out, "\xEF\xBF\xBD", 3);
            if (inleft > 0) {
                in++;
                inleft--;
            }
            if (e == EINVAL) {
                done = 1; /* incomplete sequence at the end */
            }
            iconv(cd, NULL, NULL, NULL, NULL);
        } else {
            done = 1;
        }
    }
    g_mime_iconv_close(cd);
    return err;
}

/* A <meta charset=...> or <meta http-equiv content="...; charset=..."> in the first bytes. */
static int sniff_meta_charset(const char *s, size_t n, char *cs, size_t cssz)
{
    size_t lim = n < 4096 ? n : 4096;
    const char *p = s;

    while ((p = memmem(p, lim - (size_t)(p - s), "charset", 7)) != NULL) {
        size_t k = 0;
        p += 7;
        while (p < s + lim && (*p == ' ' || *p == '=' || *p == '"' || *p == '\'')) {
            p++;
        }
        while (p < s + lim && k + 1 < cssz &&
               ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == ':' || *p == '.')) {
            cs[k++] = *p++;
        }
        cs[k] = '\0';
        if (k > 0) {
            return 1;
        }
    }
    return 0;
}

static void drop_cr(struct dr_buf *b)
{
    const char *cr = b->data ? memchr(b->data, '\r', b->len) : NULL;
    size_t w, r;

    if (!cr) {
        return;
    }
    /* from one CR to the next: the CR of a CRLF dropped, the bytes up to the next CR moved whole */
    for (w = r = (size_t)(cr - b->data); r < b->len;) {
        const char *next;
        size_t k;

        if (r + 1 < b->len && b->data[r + 1] == '\n') {
            r++;
        } else {
            b->data[w++] = b->data[r++];
        }
        next = memchr(b->data + r, '\r', b->len - r);
        k = (size_t)((next ? next : b->data + b->len) - (b->data + r));
        memmove(b->data + w, b->data + r, k);
        w += k;
        r += k;
    }
    b->len = w;
    b->data[w] = '\0';
}

/* ---- reading parts ---------------------------------------------------------------------- */

static int is_type(GMimeObject *o, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    const char *t = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *s = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;

    if (!t || g_ascii_strcasecmp(t, type) != 0) {
        return 0;
    }
    return !subtype || (s && g_ascii_strcasecmp(s, subtype) == 0);
}

/*
 * The bytes of a memory stream (the parser's content streams are windows onto the message it
 * read), without copying them. 0 when src is another kind of stream.
 */
static int mem_span(GMimeStream *src, const char **data, size_t *len)
{
    GByteArray *a;
    gint64 start, end;

    if (!GMIME_IS_STREAM_MEM(src) ||
        !(a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(src)))) {
        return 0;
    }
    start = src->bound_start;
    end = src->bound_end < 0 || src->bound_end > (gint64)a->len ? (gint64)a->len : src->bound_end;
    if (start < 0 || start > end) {
        return 0;
    }
    *data = (const char *)a->data + start;
    *len = (size_t)(end - start);
    return 1;
}

/* Reads the transfer-decoded bytes of part into raw up to its limit (1 in *cut when there were
 * more). */
static int read_raw(GMimePart *part, struct dr_buf *raw, int *cut)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    GMimeContentEncoding enc;
    GMimeStream *src, *fs;
    const char *data;
    char chunk[8192];
    size_t len, max = raw->limit;
    ssize_t got;
    int err = DR_OK;

    *cut = 0;
    if (!w || !(src = g_mime_data_wrapper_get_stream(w))) {
        return DR_OK;
    }
    enc = g_mime_data_wrapper_get_encoding(w);
    if (enc != GMIME_CONTENT_ENCODING_UUENCODE && mem_span(src, &data, &len)) {
        /* decoded here, straight from the message: what GMime's filter would give, faster */
        if (enc == GMIME_CONTENT_ENCODING_BASE64) {
            return dr__email_decode_base64(data, len, raw, cut);
        }
        if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
            return dr__email_decode_qp(data, len, raw, cut);
        }
        *cut = len > max - raw->len;
        return dr_buf_append(raw, data, *cut ? max - raw->len : len);
    }
    g_mime_stream_reset(src);
    fs = g_mime_stream_filter_new(src);
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
        g_object_unref(f);
    }
    while ((got = g_mime_stream_read(fs, chunk, sizeof(chunk))) > 0) {
        size_t room = max - raw->len;
        if ((size_t)got > room) {
            err = dr_buf_append(raw, chunk, room);
            *cut = 1;
            break;
        }
        err = dr_buf_append(raw, chunk, (size_t)got);
        if (err) {
            break;
        }
    }
    g_object_unref(fs);
    g_mime_stream_reset(src);
    return err;
}

/*
 * Appends the text of part, converted to UTF-8 with CRLF as LF, to out (which has the per-body
 * limit). Unknown or wrong charsets fall back to UTF-8 or Windows-1252 with a warning.
 * *cut is set when the text did not fit.
 */
/* Hands the content of from to the empty buffer to (whose limit it fits), leaving from empty. */
static void buf_move(struct dr_buf *to, struct dr_buf *from)
{
    free(to->data);
    to->data = from->data;
    to->len = from->len;
    to->cap = from->cap;
    from->data = NULL;
    from->len = 0;
    from->cap = 0;
}

static int read_text(struct ctx *c, GMimePart *part, struct dr_buf *out, int *cut)
{
    const char *cs = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    size_t room = out->limit - out->len;
    struct dr_buf raw, conv, *res = &conv; /* res: the text, converted when it had to be */
    int raw_cut = 0, err, converted = 0, valid = 0;
    char meta[40];

    *cut = 0;
    /* Read a little past the room: conversion may shrink the text. */
    dr_buf_init(&raw, room + 4096);
    dr_buf_init(&conv, room);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_PART, &raw);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &conv);
    err = read_raw(part, &raw, &raw_cut);
    if (err || raw.len == 0) {
        goto out;
    }
    if (cs && *cs && !is_utf8_or_ascii(cs)) {
        err = from_charset(cs, raw.data, raw.len, &conv);
        if (err == DR_EUNSUPPORTED) {
            dr__email_warn(c->em,
                           "unknown charset \"%.40s\"; text decoded as UTF-8 or "
                           "Windows-1252",
                           cs);
            err = DR_OK;
        } else {
            converted = 1;
        }
    }
    if (!converted) {
        if (dr_utf8_valid_text(raw.data, raw.len) ||
            (raw_cut && dr_utf8_valid_text(raw.data, dr__email_utf8_boundary(raw.data, raw.len)))) {
            /* already UTF-8: used as it is, cut to the room */
            valid = 1;
            res = &raw;
            if (raw.len > room) {
                raw.len = room;
                err = DR_ETOOBIG;
            }
        } else if (is_type(GMIME_OBJECT(part), "text", "html") &&
                   sniff_meta_charset(raw.data, raw.len, meta, sizeof(meta)) &&
                   !is_utf8_or_ascii(meta) &&
                   (err = from_charset(meta, raw.data, raw.len, &conv)) != DR_EUNSUPPORTED) {
            /* converted with the charset the HTML declares */
        } else {
            dr_buf_reset(&conv);
            if (cs && *cs && g_ascii_strcasecmp(cs, "us-ascii") != 0) {
                dr__email_warn(c->em,
                               "text not valid in its charset \"%.40s\"; decoded as "
                               "Windows-1252",
                               cs);
            }
            err = from_cp1252(raw.data, raw.len, &conv);
        }
    }
    if (err == DR_ETOOBIG) {
        res->len = dr__email_utf8_boundary(res->data, res->len);
        res->data[res->len] = '\0';
        *cut = 1;
        err = DR_OK;
    }
    if (err) {
        goto out;
    }
    if (raw_cut) {
        *cut = 1;
    }
    drop_cr(res);
    if (res->len && (valid || dr_utf8_valid_text(res->data, res->len))) {
        /* valid with an explicit length also means no NUL inside */
        if (!out->data && res->len <= out->limit) {
            buf_move(out, res); /* the common case: the whole text, nothing to copy */
        } else {
            err = dr_buf_append(out, res->data, res->len);
        }
        if (err == DR_ETOOBIG) {
            *cut = 1;
            err = DR_OK;
        }
    } else if (res->len) {
        /* make sure what we keep is valid UTF-8 without NULs */
        char *clean = dr__email_utf8_dup(res->data, res->len, room, NULL);
        err = dr_buf_appends(out, clean);
        free(clean);
        if (err == DR_ETOOBIG) {
            *cut = 1;
            err = DR_OK;
        }
    }
out:
    dr__email_scratch_give(DR__EMAIL_SCRATCH_PART, &raw);
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &conv);
    return err;
}

/* The size of a part's content once decoded: counted here when the content is a window onto the
 * message (what writing it through GMime's decoder would write), else written out by GMime. */
static size_t decoded_size(GMimeObject *p)
{
    GMimeStream *null, *src;
    GMimeDataWrapper *w;
    ssize_t n = 0;

    if (GMIME_IS_PART(p) && (w = g_mime_part_get_content(GMIME_PART(p))) != NULL &&
        (src = g_mime_data_wrapper_get_stream(w)) != NULL) {
        GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(w);
        const char *data;
        size_t len;

        if (enc != GMIME_CONTENT_ENCODING_UUENCODE && mem_span(src, &data, &len)) {
            return dr__email_decoded_len(data, len,
                                         enc == GMIME_CONTENT_ENCODING_BASE64 ? DR__EMAIL_CTE_BASE64
                                         : enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
                                             ? DR__EMAIL_CTE_QP
                                             : DR__EMAIL_CTE_IDENTITY);
        }
    }
    null = g_mime_stream_null_new();
    if (GMIME_IS_PART(p)) {
        w = g_mime_part_get_content(GMIME_PART(p));
        if (w) {
            n = g_mime_data_wrapper_write_to_stream(w, null);
        }
    } else if (GMIME_IS_MESSAGE_PART(p)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(p));
        if (m) {
            n = g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
        }
    }
    g_object_unref(null);
    return n < 0 ? 0 : (size_t)n;
}

static const char *part_filename(GMimeObject *p)
{
    const char *name = NULL;

    if (GMIME_IS_PART(p)) {
        name = g_mime_part_get_filename(GMIME_PART(p));
    } else {
        GMimeContentDisposition *d = g_mime_object_get_content_disposition(p);
        if (d) {
            name = g_mime_content_disposition_get_parameter(d, "filename");
        }
        if (!name) {
            name = g_mime_object_get_content_type_parameter(p, "name");
        }
    }
    return name && *name ? name : NULL;
}

static void add_attachment(struct ctx *c, GMimeObject *p)
{
    struct dr_email *em = c->em;
    struct dr_email_attachment *a;
    GMimeContentType *ct = g_mime_object_get_content_type(p);
    char *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    const char *name = part_filename(p);

    em->attachments = dr_xrealloc(em->attachments, (em->n_attachments + 1) * sizeof(*a));
    a = &em->attachments[em->n_attachments++];
    a->filename = name ? dr__email_clean_line(
                             dr__email_utf8_dup(name, strlen(name), DR_EMAIL_MAX_HEADER, NULL))
                       : NULL;
    a->content_type = dr__email_utf8_dup(mt ? mt : "application/octet-stream",
                                         strlen(mt ? mt : "application/octet-stream"), 255, NULL);
    for (char *q = a->content_type; *q; q++) {
        *q = (char)g_ascii_tolower(*q);
    }
    a->size = decoded_size(p);
    g_free(mt);
}

static int is_calendar(GMimeObject *p)
{
    return GMIME_IS_PART(p) &&
           (is_type(p, "text", "calendar") || is_type(p, "application", "ics") ||
            is_type(p, "text", "x-vcalendar"));
}

static int add_calendar(struct ctx *c, GMimeObject *p)
{
    struct dr_email *em = c->em;
    struct dr_email_calendar *cal;
    const char *method = g_mime_object_get_content_type_parameter(p, "method");
    struct dr_buf b;
    char *m = NULL;
    int cut = 0, err;

    if (em->n_calendar >= DR_EMAIL_MAX_CALENDAR) {
        dr__email_warn(em, "more than %d calendar parts; the rest were skipped",
                       DR_EMAIL_MAX_CALENDAR);
        return DR_OK;
    }
    dr_buf_init(&b, c->lim->max_text_bytes);
    err = read_text(c, GMIME_PART(p), &b, &cut);
    if (err) {
        dr_buf_cleanup(&b);
        return err;
    }
    if (cut) {
        dr__email_warn(em, "calendar part cut at %zu bytes", c->lim->max_text_bytes);
    }
    if (!b.data) {
        dr_buf_cleanup(&b);
        return DR_OK;
    }
    if (!method) {
        /* METHOD is a VCALENDAR property: a line of its own, usually near the top. */
        for (const char *l = b.data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            if (strncasecmp(l, "METHOD:", 7) == 0) {
                size_t k = strcspn(l + 7, "\r\n");
                m = dr_xstrndup(l + 7, k < 64 ? k : 64);
                break;
            }
        }
    } else {
        m = dr_xstrndup(method, strlen(method) < 64 ? strlen(method) : 64);
    }
    if (m) {
        m = dr__email_clean_line(m);
        for (char *q = m; q && *q; q++) {
            *q = (char)g_ascii_toupper(*q);
        }
    }
    em->calendar = dr_xrealloc(em->calendar, (em->n_calendar + 1) * sizeof(*cal));
    cal = &em->calendar[em->n_calendar++];
    cal->method = m;
    cal->ics = dr_buf_steal(&b, NULL);
    return DR_OK;
}

/* ---- choosing the bodies (RFC 8621 4.1.4) ----------------------------------------------- */

static int is_inline_media(GMimeObject *p)
{
    return is_type(p, "image", NULL) || is_type(p, "audio", NULL) || is_type(p, "video", NULL);
}

static int is_attachment_disposition(GMimeObject *p)
{
    const char *d = g_mime_object_get_disposition(p);
    return d && g_ascii_strcasecmp(d, "attachment") == 0;
}

/* Whether the n bytes at s are a boundary (RFC 2046 5.1.1: 1-70 of bchars, no space last). */
static int boundary_ok(const char *s, size_t n)
{
    if (n == 0 || n > 70 || s[n - 1] == ' ') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && !strchr("'()+_,-./:=? ", s[i])) {
            return 0;
        }
    }
    return 1;
}

/* text (n bytes, a multipart's content) parsed as a multipart/sub whose boundary is the n_b
 * bytes at b; NULL unless that gives parts. */
static GMimeObject *parse_with_boundary(struct ctx *c, const char *sub, const char *b, size_t n_b,
                                        const char *text, size_t n)
{
    GString *s = g_string_sized_new(n + n_b + 64);
    GMimeStream *stream;
    GMimeParser *parser;
    GMimeObject *o;

    g_string_append_printf(s, "Content-Type: multipart/%s; boundary=\"%.*s\"\r\n\r\n", sub,
                           (int)n_b, b);
    g_string_append_len(s, text, (gssize)n);
    stream = g_mime_stream_mem_new_with_buffer(s->str, s->len);
    parser = g_mime_parser_new_with_stream(stream);
    o = g_mime_parser_construct_part(parser, c->opts);
    g_object_unref(parser);
    g_object_unref(stream);
    g_string_free(s, TRUE);
    if (o && (!GMIME_IS_MULTIPART(o) || g_mime_multipart_get_count(GMIME_MULTIPART(o)) == 0)) {
        g_object_unref(o);
        o = NULL;
    }
    return o;
}

/* Why c's message cannot be read. The message's own refusal refuses it whole: its walk stops
 * there, nothing more of it is read; a forward's loses nothing of the message, and the rest of the
 * forward is still read. */
static void refuse(struct ctx *c, const char *why)
{
    c->refused = why;
    if (c->fwd_depth == 0) {
        c->stopped = 1;
    }
}

/*
 * A multipart without child parts: GMime found no boundary line in it (its Content-Type has no
 * boundary parameter, or one its content does not use) and kept all of the content as its
 * prologue. None of it may be lost. Content that opens with a "--token" line is MIME parts, the
 * token their boundary (a Content-Type that lost its parameter, or "multipart/mixed
 * boundary=x" without the ';'): it is read again as that multipart. Other content is text, a
 * text/plain part. Returns the part to read in mp's place, owned by c (NULL: nothing to read),
 * or NULL with c->refused set when the parts cannot be read.
 */
static GMimeObject *boundless_content(struct ctx *c, GMimeObject *mp)
{
    const char *pro = g_mime_multipart_get_prologue(GMIME_MULTIPART(mp));
    const char *first = pro ? pro + strspn(pro, " \t\r\n") : NULL;
    GMimeObject *o = NULL;

    if (!first || !*first) {
        return NULL;
    }
    if (strncmp(first, "--", 2) == 0) {
        GMimeContentType *ct = g_mime_object_get_content_type(mp);
        const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
        size_t n_b = strcspn(first + 2, "\r\n");

        while (n_b > 0 && (first[2 + n_b - 1] == ' ' || first[2 + n_b - 1] == '\t')) {
            n_b--;
        }
        if (!sub || !*sub ||
            sub[strspn(sub, "abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.+")]) {
            sub = "mixed";
        }
        if (c->budget->reread_max - c->budget->reread < strlen(first)) {
            /* nested boundless multiparts: each is read again whole, their content the rest of
             * the message; twice the message's size in all, not its square */
            refuse(c, "multipart without boundaries nested in each other beyond what the "
                      "message's size allows to read again");
            return NULL;
        }
        c->budget->reread += strlen(first);
        if (boundary_ok(first + 2, n_b)) {
            o = parse_with_boundary(c, sub, first + 2, n_b, first, strlen(first));
        }
        if (!o) {
            refuse(c, "a multipart without a boundary whose parts cannot be read (its first line "
                      "is no boundary either)");
            return NULL;
        }
        dr__email_warn(c->em,
                       "multipart/%s without a boundary: read with the boundary of its "
                       "first line",
                       sub);
    } else {
        int cut = 0;
        char *t = dr__email_utf8_dup(pro, strlen(pro), c->lim->max_text_bytes, &cut);
        GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");

        g_mime_text_part_set_text(tp, t);
        free(t);
        if (cut) {
            dr__email_warn(c->em, "text body cut at %zu bytes", c->lim->max_text_bytes);
        }
        o = GMIME_OBJECT(tp);
    }
    g_ptr_array_add(c->owned, o);
    return o;
}

static void walk(struct ctx *c, GMimeObject *owner, GMimeObject *single, const char *mptype,
                 int in_alt, GPtrArray *html, GPtrArray *text, GPtrArray *att, size_t depth)
{
    int n = owner ? g_mime_multipart_get_count(GMIME_MULTIPART(owner)) : 1;
    long text_len = text ? (long)text->len : -1;
    long html_len = html ? (long)html->len : -1;

    for (int i = 0; i < n && !c->stopped; i++) {
        GMimeObject *p = owner ? g_mime_multipart_get_part(GMIME_MULTIPART(owner), i) : single;
        int plain, is_html, media, inline_part;

        if (!p) {
            continue;
        }
        if (++c->parts > c->lim->max_parts) {
            dr__email_warn(c->em, "more than %zu MIME parts; the rest were skipped",
                           c->lim->max_parts);
            c->stopped = 1;
            return;
        }
        if (GMIME_IS_MULTIPART(p)) {
            GMimeContentType *ct;
            const char *sub;

            /* the depth first: a multipart past it is skipped, never read again */
            if (depth + 1 > c->max_depth) {
                if (!c->depth_warned) {
                    dr__email_warn(c->em, "MIME nesting deeper than %zu; deeper parts skipped",
                                   c->max_depth);
                    c->depth_warned = 1;
                }
                continue;
            }
            if (g_mime_multipart_get_count(GMIME_MULTIPART(p)) == 0) {
                p = boundless_content(c, p);
                if (!p) {
                    continue;
                }
            }
            if (GMIME_IS_MULTIPART(p)) {
                ct = g_mime_object_get_content_type(p);
                sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
                sub = sub ? sub : "mixed";
                walk(c, p, NULL, sub, in_alt || g_ascii_strcasecmp(sub, "alternative") == 0, html,
                     text, att, depth + 1);
                continue;
            }
        }
        if (is_calendar(p) && g_ptr_array_find(c->calendar_parts, p, NULL) == FALSE) {
            g_ptr_array_add(c->calendar_parts, p);
        }
        plain = GMIME_IS_PART(p) && is_type(p, "text", "plain");
        is_html = GMIME_IS_PART(p) && is_type(p, "text", "html");
        media = is_inline_media(p);
        inline_part = !is_attachment_disposition(p) && (plain || is_html || media) &&
                      (i == 0 || (g_ascii_strcasecmp(mptype, "related") != 0 &&
                                  (media || !part_filename(p))));
        if (!inline_part) {
            g_ptr_array_add(att, p);
            continue;
        }
        if (g_ascii_strcasecmp(mptype, "alternative") == 0) {
            /* text or html is NULL inside a branch of an enclosing alternative that chose the
             * other form: this alternative's part of that form is not wanted */
            if (plain) {
                if (text) {
                    g_ptr_array_add(text, p);
                }
            } else if (is_html) {
                if (html) {
                    g_ptr_array_add(html, p);
                }
            } else {
                g_ptr_array_add(att, p);
            }
            continue;
        } else if (in_alt) {
            if (plain) {
                html = NULL;
            }
            if (is_html) {
                text = NULL;
            }
        }
        if (media) {
            /* no text to show; listed so that every image and recording is accounted for */
            g_ptr_array_add(att, p);
            continue;
        }
        if (text) {
            g_ptr_array_add(text, p);
        }
        if (html) {
            g_ptr_array_add(html, p);
        }
    }
    if (owner && g_ascii_strcasecmp(mptype, "alternative") == 0 && text && html) {
        if (text_len == (long)text->len && html_len != (long)html->len) {
            for (long k = html_len; k < (long)html->len; k++) {
                g_ptr_array_add(text, html->pdata[k]);
            }
        }
        if (html_len == (long)html->len && text_len != (long)text->len) {
            for (long k = text_len; k < (long)text->len; k++) {
                g_ptr_array_add(html, text->pdata[k]);
            }
        }
    }
}

/* Concatenates the text of the chosen parts; HTML parts are rendered when want_html == 0. */
static int render_body(struct ctx *c, GPtrArray *parts, int html_raw, struct dr_buf *out,
                       const char *what)
{
    int cut_any = 0, err = DR_OK;

    for (guint i = 0; i < parts->len && !err; i++) {
        GMimeObject *p = parts->pdata[i];
        int is_html = is_type(p, "text", "html"), cut = 0;

        if (!GMIME_IS_PART(p) || !is_type(p, "text", NULL)) {
            continue; /* inline images have no text */
        }
        if (html_raw && !is_html) {
            continue;
        }
        if (out->len > 0 && out->len < out->limit) {
            err = dr_buf_appendc(out, '\n');
            if (err) {
                cut_any = 1;
                err = DR_OK;
                break;
            }
        }
        if (is_html && !html_raw) {
            struct dr_buf h;
            int fresh = 0;
            dr_buf_init(&h, c->lim->max_text_bytes);
            err = read_text(c, GMIME_PART(p), &h, &cut);
            if (!err && h.len && out->limit > out->len) {
                /* the text is shorter than its markup: one allocation */
                size_t room = out->limit - out->len;
                fresh = !out->data;
                err = dr_buf_reserve(out, h.len < room ? h.len : room) == DR_ENOMEM ? DR_ENOMEM
                                                                                    : DR_OK;
                if (!err && fresh) {
                    out->data[0] = 1; /* still there after rendering: nothing was written */
                }
            }
            if (!err && h.len) {
                err = dr__email_html_to_text(h.data, h.len, out);
            }
            if (fresh && out->data && out->len == 0 && out->data[0] == 1) {
                /* markup without text: out stays without data (the body absent, not an
                 * unterminated allocation) */
                dr_buf_cleanup(out);
            }
            dr__email_scratch_give(DR__EMAIL_SCRATCH_PART, &h); /* it holds the part's bytes */
        } else {
            err = read_text(c, GMIME_PART(p), out, &cut);
        }
        if (err == DR_ETOOBIG) {
            cut = 1;
            err = DR_OK;
        }
        cut_any |= cut;
    }
    if (cut_any) {
        dr__email_warn(c->em, "%s cut at %zu bytes", what, c->lim->max_text_bytes);
    }
    return err;
}

static int set_body(struct dr_buf *b, char **s, size_t *len)
{
    if (!b->data) {
        return DR_OK;
    }
    *s = dr_buf_steal(b, len);
    return *s ? DR_OK : DR_ENOMEM;
}

static void take_headers(struct ctx *c, GMimeMessage *msg);
static int choose_bodies(struct ctx *c, GMimeObject *root);

/*
 * A message attached whole (message/rfc822): parsed into an email of its own in its parent's
 * forwarded, so that what it says (a carrier's tracking numbers, under the carrier's From) is
 * read as in that message itself. The attached messages are read level by level (breadth
 * first): all those attached to the message itself, then those attached to them, ..., so the
 * forwards nested in one attachment never use up the budget before the message's own next
 * attachment is read. Bounded: DR_EMAIL_FORWARD_DEPTH levels of forwards, DR_EMAIL_MAX_FORWARDED
 * messages in all, each examining at most max_parts parts of its own (apart from the parent's:
 * the parent's walk had already collected it when its own parts ran out). A forward that cannot
 * be read leaves only its attachment entry.
 */
struct fwd_item {
    struct dr_email *parent; /* whose forwarded it goes into */
    GMimeObject *part;       /* the message/rfc822 part */
    size_t depth;            /* the parent's fwd_depth */
};

static void fwd_skipped(struct ctx *c)
{
    if (!c->budget->fwd_warned) {
        dr__email_warn(c->budget->top,
                       "attached messages beyond %d in all or %d levels deep were not read",
                       DR_EMAIL_MAX_FORWARDED, DR_EMAIL_FORWARD_DEPTH);
        c->budget->fwd_warned = 1;
    }
}

/* Queues the message part p attached to c's message, to be read by read_forwards(). */
static void queue_forward(struct ctx *c, GMimeObject *p)
{
    struct fwd_item it = {c->em, p, c->fwd_depth};

    if (c->fwd_depth >= DR_EMAIL_FORWARD_DEPTH) {
        fwd_skipped(c);
        return;
    }
    if (!c->budget->fwd_queue) {
        c->budget->fwd_queue = g_array_new(FALSE, FALSE, sizeof(struct fwd_item));
    }
    g_array_append_val(c->budget->fwd_queue, it);
}

/* Parses one queued message into it->parent's forwarded; c is the top message's. */
static int add_forward(struct ctx *c, const struct fwd_item *it)
{
    GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(it->part));
    GMimeObject *root = m ? g_mime_message_get_mime_part(m) : NULL;
    struct dr_email *em = it->parent, *f;
    struct ctx sub;
    int err;

    if (!root) {
        return DR_OK;
    }
    c->budget->forwards++;
    f = dr_xcalloc(1, sizeof(*f));
    /* what it shares with this message; the rest its own, from zero: its parts counted apart,
     * and its unreadable parts lose nothing of this message */
    sub = (struct ctx){
        .em = f,
        .lim = c->lim,
        .max_depth = c->max_depth,
        .flags = (c->flags & ~DR__EMAIL_LAZY_HTML) | DR__EMAIL_NO_HTML_TEXT,
        .opts = c->opts,
        .owned = c->owned,
        .fwd_depth = it->depth + 1,
        .budget = c->budget,
    };
    take_headers(&sub, m);
    err = choose_bodies(&sub, root);
    if (!err) {
        err = dr__email_finish_bodies_ex(f, c->lim, sub.flags);
    }
    if (err) {
        dr_email_destroy(f);
        return err;
    }
    em->forwarded = dr_xrealloc(em->forwarded, (em->n_forwarded + 1) * sizeof(*em->forwarded));
    em->forwarded[em->n_forwarded++] = f;
    return DR_OK;
}

/* Reads the queued attached messages, level by level, those they carry queued behind them.
 * DR_OK or DR_ENOMEM. */
static int read_forwards(struct ctx *c)
{
    GArray *q;
    int err = DR_OK;

    for (guint i = 0; !err && (q = c->budget->fwd_queue) != NULL && i < q->len; i++) {
        struct fwd_item it = g_array_index(q, struct fwd_item, i);

        if (c->budget->forwards >= DR_EMAIL_MAX_FORWARDED) {
            fwd_skipped(c);
            break;
        }
        err = add_forward(c, &it); /* may append to the queue (and move it) */
    }
    if (c->budget->fwd_queue) {
        g_array_free(c->budget->fwd_queue, TRUE);
        c->budget->fwd_queue = NULL;
    }
    return err;
}

static int choose_bodies(struct ctx *c, GMimeObject *root)
{
    struct dr_email *em = c->em;
    GPtrArray *text = g_ptr_array_new(), *html = g_ptr_array_new(), *att = g_ptr_array_new();
    struct dr_buf tb, hb, htb;
    int has_html = 0, same = 0, err = DR_OK;

    c->calendar_parts = g_ptr_array_new();
    dr_buf_init(&tb, c->lim->max_text_bytes);
    dr_buf_init(&hb, c->lim->max_text_bytes);
    dr_buf_init(&htb, c->lim->max_text_bytes);
    walk(c, NULL, root, "mixed", 0, html, text, att, 0);
    if (c->refused && c->fwd_depth == 0) {
        goto out; /* the message is refused: its bodies and forwards would be dropped */
    }

    for (guint i = 0; i < html->len; i++) {
        has_html |= is_type(html->pdata[i], "text", "html");
    }
    same = text->len == html->len && text->len > 0;
    for (guint i = 0; same && i < text->len; i++) {
        same = text->pdata[i] == html->pdata[i];
    }
    if (has_html && (c->flags & DR__EMAIL_LAZY_HTML) && !same) {
        /* the text first: when there is one, the HTML is read only if asked for */
        err = render_body(c, text, 0, &tb, "text body");
        if (!err && tb.data) {
            c->html_later = html;
            html = g_ptr_array_new();
            has_html = 0;
        } else if (!err) {
            err = render_body(c, html, 1, &hb, "HTML body");
        }
    } else {
        if (has_html) {
            err = render_body(c, html, 1, &hb, "HTML body");
            if (!err && !(c->flags & DR__EMAIL_NO_HTML_TEXT)) {
                err = render_body(c, html, 0, &htb, "HTML text");
            }
        }
        if (!err && !(same && has_html)) {
            err = render_body(c, text, 0, &tb, "text body");
        }
    }
    /* html_text is wanted after all when there is no text to read instead */
    if (!err && has_html && (c->flags & DR__EMAIL_NO_HTML_TEXT) && !tb.data) {
        err = render_body(c, html, 0, &htb, "HTML text");
    }
    if (!err) {
        err = set_body(&hb, &em->html, &em->html_len);
    }
    if (!err) {
        err = set_body(&htb, &em->html_text, &em->html_text_len);
    }
    if (!err) {
        err = set_body(&tb, &em->text, &em->text_len);
    }
    for (guint i = 0; !err && i < att->len; i++) {
        add_attachment(c, att->pdata[i]);
    }
    for (guint i = 0; !err && i < att->len; i++) {
        if (GMIME_IS_MESSAGE_PART(att->pdata[i])) {
            queue_forward(c, att->pdata[i]);
        }
    }
    if (!err && c->fwd_depth == 0) {
        err = read_forwards(c);
    }
    for (guint i = 0; !err && i < c->calendar_parts->len; i++) {
        err = add_calendar(c, c->calendar_parts->pdata[i]);
    }
out:
    dr_buf_cleanup(&tb);
    dr_buf_cleanup(&hb);
    dr_buf_cleanup(&htb);
    g_ptr_array_free(text, TRUE);
    g_ptr_array_free(html, TRUE);
    g_ptr_array_free(att, TRUE);
    g_ptr_array_free(c->calendar_parts, TRUE);
    return err;
}

/* ---- headers ---------------------------------------------------------------------------- */

/*
 * GMime parses the address fields (Sender, From, Reply-To, To, Cc, Bcc) as it reads them, and a
 * "name:" there opens a group whose members are parsed one call deeper: "To: g:g:g:..." nests a
 * group per ':' and tens of thousands of them overflow the stack. A field with more ':'s than
 * this (every nesting level takes one) is refused; real address lists hold a handful.
 */
#define ADDRESS_COLONS_MAX 10000

static size_t address_colons(const char *s, size_t n)
{
    size_t colons = 0;

    for (const char *p = s; (p = memchr(p, ':', (size_t)(s + n - p))) != NULL; p++) {
        colons++;
    }
    return colons;
}

/*
 * GMime reads an address list leniently: "bob@example.com@evil.com", "<bob@example.com>@evil.com"
 * and "Bob <bob@example.com> <eve@evil.com>" all give it bob@example.com, where a mail server
 * or a reader may see another address. An address is taken only where the field's text, its
 * comments left out, holds it as a whole token (not next to more address characters), with no
 * other '@' or '<' after it before the next ',' or ';'. The search resumes where the previous
 * address was found (a list is in order) and is bounded, so a hostile field costs linear time.
 */
struct addr_text {
    char *text;     /* the field as written (raw header values joined by ','), comments left
                     * out; NULL when not known */
    size_t len, at; /* bytes, and where the previous address ended */
    size_t budget;  /* bytes still to search; at 0 every further address is refused */
};

/* raw without its comments (quoted strings kept whole), malloc'ed. */
static char *without_comments(const char *raw, size_t *len)
{
    char *out = dr_xmalloc(strlen(raw) + 1), *o = out;
    int depth = 0, quoted = 0;

    for (const char *p = raw; *p; p++) {
        if (depth == 0 && *p == '"') {
            quoted = !quoted;
        } else if ((quoted || depth > 0) && *p == '\\' && p[1]) {
            if (depth == 0) {
                *o++ = *p;
            }
            p++;
        } else if (!quoted && *p == '(') {
            depth++;
            continue;
        } else if (depth > 0 && *p == ')') {
            depth--;
            continue;
        }
        if (depth == 0) {
            *o++ = *p;
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

/* Characters that continue an addr-spec: the address is part of a larger token next to them. */
static int addr_char(char c)
{
    return (c && strchr(".@\"[]!#$%&'*+-/=?^_`{|}~", c)) || g_ascii_isalnum(c) ||
           (unsigned char)c >= 0x80;
}

/* Whether the address at text[pos, pos + n) stands there as a whole mailbox. */
static int clean_at(const struct addr_text *t, size_t pos, size_t n)
{
    const char *p = t->text + pos + n, *end = t->text + t->len;

    if ((pos > 0 && addr_char(t->text[pos - 1])) || (p < end && addr_char(*p))) {
        return 0;
    }
    for (; p < end && *p != ',' && *p != ';'; p++) {
        if (*p == '@' || *p == '<') {
            return 0;
        }
    }
    return 1;
}

static int addr_clean(struct addr_text *t, const char *addr)
{
    size_t n = strlen(addr);

    if (!t->text) {
        return 1; /* no text to hold it to: the addr-spec check alone */
    }
    for (int pass = 0; pass < 2 && n > 0; pass++) {
        /* from the previous address on, then (out of order) from the start */
        size_t from = pass ? 0 : t->at, to = pass ? t->at + n : t->len;
        if (to > t->len) {
            to = t->len;
        }
        while (from < to && t->budget > 0) {
            size_t span = to - from < t->budget ? to - from : t->budget;
            const char *p = span >= n ? memmem(t->text + from, span, addr, n) : NULL;
            if (!p) {
                t->budget -= span;
                break;
            }
            t->budget -= (size_t)(p - (t->text + from)) + 1;
            if (clean_at(t, (size_t)(p - t->text), n)) {
                t->at = (size_t)(p - t->text) + n;
                return 1;
            }
            from = (size_t)(p - t->text) + 1;
        }
    }
    return 0;
}

static void flatten(struct dr_email *em, struct dr_email_addr_list *l, InternetAddressList *list,
                    int depth, int *full, int *unclean, struct addr_text *t)
{
    int n = list ? internet_address_list_length(list) : 0;

    for (int i = 0; i < n && !*full; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            if (depth == 0) {
                flatten(em, l, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                        depth + 1, full, unclean, t);
            }
        } else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            const char *name = internet_address_get_name(ia);
            int err;
            if (addr && !strchr(addr, '@') && (!name || !*name)) {
                /* "From: Whomever": a phrase, not a mailbox ("Name <local>" stays a mailbox) */
                name = addr;
                addr = NULL;
            }
            if (addr && strchr(addr, '@') && !addr_clean(t, addr)) {
                addr = NULL; /* see struct addr_text; the name alone stays */
                *unclean = 1;
            }
            err = dr__email_addr_push(l, name, addr);
            if (err == DR_ETOOBIG) {
                *full = 1;
            } else if (err == DR_EINVAL) {
                *unclean = 1;
            }
        }
    }
}

/* Takes the addresses of list into l; raw is the field's text as written (NULL: not known). */
static void take_addresses(struct dr_email *em, struct dr_email_addr_list *l,
                           InternetAddressList *list, const char *what, const char *raw)
{
    struct addr_text t = {NULL, 0, 0, 0};
    int full = 0, unclean = 0;

    if (raw) {
        t.text = without_comments(raw, &t.len);
        t.budget = 4 * t.len + 4096;
    }
    flatten(em, l, list, 0, &full, &unclean, &t);
    free(t.text);
    if (unclean) {
        dr__email_warn(em, "%s: an address that does not parse cleanly was left out", what);
    }
    if (full) {
        dr__email_warn(em, "%s has more than %d addresses; the rest were dropped", what,
                       DR_EMAIL_MAX_ADDRESSES);
    }
}

void dr__email_parse_addresses(struct dr_email *em, struct dr_email_addr_list *l, const char *text,
                               const char *what)
{
    GMimeParserOptions *o;
    InternetAddressList *list;

    if (address_colons(text, strlen(text)) > ADDRESS_COLONS_MAX) {
        dr__email_warn(em, "%s has more than %d ':' (groups nested too deeply); ignored", what,
                       ADDRESS_COLONS_MAX);
        return;
    }
    dr__email_gmime_init();
    o = new_options(em);
    list = internet_address_list_parse(o, text);
    if (list) {
        take_addresses(em, l, list, what, text);
        g_object_unref(list);
    }
    g_mime_parser_options_free(o);
}

static void set_date_from(struct dr_email *em, GDateTime *dt)
{
    GTimeSpan off = g_date_time_get_utc_offset(dt);
    dr__email_set_date(em, g_date_time_to_unix(dt), (int)(off / G_TIME_SPAN_SECOND));
}

int dr__email_parse_date(struct dr_email *em, const char *text)
{
    GDateTime *dt;

    dr__email_gmime_init();
    dt = g_mime_utils_header_decode_date(text);
    if (!dt) {
        return DR_EINVAL;
    }
    set_date_from(em, dt);
    g_date_time_unref(dt);
    return em->has_date ? DR_OK : DR_EINVAL;
}

static char *header_text(struct dr_email *em, const char *v, const char *what)
{
    int cut = 0;
    char *s;

    if (!v) {
        return NULL;
    }
    s = dr__email_clean_line(dr__email_utf8_dup(v, strlen(v), DR_EMAIL_MAX_HEADER, &cut));
    if (cut) {
        dr__email_warn(em, "%s cut at %d bytes", what, DR_EMAIL_MAX_HEADER);
    }
    return s;
}

/* take_addresses() for the message's header field name, held to its text as written. */
static void take_message_addresses(struct dr_email *em, GMimeMessage *msg,
                                   struct dr_email_addr_list *l, InternetAddressList *list,
                                   const char *name)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    int n = g_mime_header_list_get_count(hl);
    GString *raw = NULL;

    if (!list || internet_address_list_length(list) == 0) {
        return;
    }
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *v = g_mime_header_get_raw_value(h);
        if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0 || !v) {
            continue;
        }
        if (raw) {
            g_string_append_c(raw, ',');
        } else {
            raw = g_string_new(NULL);
        }
        g_string_append(raw, v);
    }
    take_addresses(em, l, list, name, raw ? raw->str : NULL);
    if (raw) {
        g_string_free(raw, TRUE);
    }
}

static void take_headers(struct ctx *c, GMimeMessage *msg)
{
    struct dr_email *em = c->em;
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    int n = g_mime_header_list_get_count(hl);
    const char *v;

    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        int dup = 0;

        for (size_t k = 0; k < DR_ARRAY_LEN(selected_headers); k++) {
            /* the names are lower case: a first letter that differs in any case rules one out */
            if ((name && g_ascii_tolower(name[0]) != selected_headers[k][0]) ||
                g_ascii_strcasecmp(name, selected_headers[k]) != 0) {
                continue;
            }
            for (size_t j = 0; j < em->n_headers; j++) {
                dup |= strcmp(em->headers[j].name, selected_headers[k]) == 0;
            }
            if (!dup) {
                char *val = header_text(em, g_mime_header_get_value(h), name);
                if (val) {
                    em->headers =
                        dr_xrealloc(em->headers, (em->n_headers + 1) * sizeof(*em->headers));
                    em->headers[em->n_headers].name = dr_xstrdup(selected_headers[k]);
                    em->headers[em->n_headers++].value = val;
                }
            }
            break;
        }
    }

    em->subject = header_text(em, g_mime_message_get_subject(msg), "Subject");
    em->message_id = header_text(em, g_mime_message_get_message_id(msg), "Message-ID");
    if ((v = g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To")) != NULL) {
        char *id = g_mime_utils_decode_message_id(v);
        em->in_reply_to = header_text(em, id, "In-Reply-To");
        g_free(id);
    }
    if ((v = g_mime_object_get_header(GMIME_OBJECT(msg), "References")) != NULL) {
        GMimeReferences *refs = g_mime_references_parse(NULL, v);
        int nr = refs ? g_mime_references_length(refs) : 0;
        /* Keep the root and the most recent ones: they are what threading uses. */
        for (int i = 0; i < nr; i++) {
            if (nr > DR_EMAIL_MAX_REFERENCES && i > 0 && i < nr - (DR_EMAIL_MAX_REFERENCES - 1)) {
                continue;
            }
            char *id = header_text(em, g_mime_references_get_message_id(refs, i), "References");
            if (id) {
                em->references =
                    dr_xrealloc(em->references, (em->n_references + 1) * sizeof(char *));
                em->references[em->n_references++] = id;
            }
        }
        if (nr > DR_EMAIL_MAX_REFERENCES) {
            dr__email_warn(em, "References has %d ids; kept the first and the last %d", nr,
                           DR_EMAIL_MAX_REFERENCES - 1);
        }
        if (refs) {
            g_mime_references_free(refs);
        }
    }

    InternetAddressList *from = g_mime_message_get_from(msg);
    struct dr_email_addr_list fl = {0};
    take_message_addresses(em, msg, &fl, from, "From");
    if (fl.n > 0) {
        em->from = fl.v[0];
        for (size_t i = 1; i < fl.n; i++) {
            free(fl.v[i].name);
            free(fl.v[i].address);
        }
    }
    free(fl.v);
    take_message_addresses(em, msg, &em->to, g_mime_message_get_to(msg), "To");
    take_message_addresses(em, msg, &em->cc, g_mime_message_get_cc(msg), "Cc");
    take_message_addresses(em, msg, &em->bcc, g_mime_message_get_bcc(msg), "Bcc");
    take_message_addresses(em, msg, &em->reply_to, g_mime_message_get_reply_to(msg), "Reply-To");

    GDateTime *dt = g_mime_message_get_date(msg);
    if (dt) {
        set_date_from(em, dt);
    }
    if (!em->has_date && g_mime_object_get_header(GMIME_OBJECT(msg), "Date")) {
        dr__email_warn(em, "unparsable Date header");
    }
}

static int count_headers(GMimeObject *o)
{
    return o ? g_mime_header_list_get_count(g_mime_object_get_header_list(o)) : 0;
}

/*
 * GMime checks every line that starts with "--" against the whole stack of open boundaries,
 * so lines x boundaries is the parse cost a message can force. Legitimate mail stays orders
 * of magnitude below the budget; a hostile one (thousands of nested multiparts, megabytes of
 * "--" lines) is refused before it can burn seconds of CPU.
 */
#define BOUNDARY_WORK_BUDGET 50000000 /* lines x bounds */

/* Whether an '=' at raw[i] ends "boundary" (any case), i.e. declares a boundary parameter. */
static int is_boundary_eq(const char *raw, size_t i)
{
    return i >= 8 && (raw[i - 1] | 0x20) == 'y' &&
           g_ascii_strncasecmp(raw + i - 8, "boundary", 8) == 0;
}

/* Whether a line starting at raw[i] starts with "--". */
static int is_dash_line(const char *raw, size_t len, size_t i)
{
    return (i == 0 || raw[i - 1] == '\n') && len - i >= 2 && raw[i] == '-' && raw[i + 1] == '-';
}

void dr__email_boundary_work(const char *raw, size_t len, size_t *lines, size_t *bounds)
{
    size_t i = 0;

    *lines = 0;
    *bounds = 0;
#ifdef __SSE2__
    /* sixteen positions at a time, each seen with the byte before and the byte after it */
    if (len >= 18) {
        const __m128i nl = _mm_set1_epi8('\n'), dash = _mm_set1_epi8('-'), eq = _mm_set1_epi8('='),
                      y = _mm_set1_epi8('y'), low = _mm_set1_epi8(0x20);

        *lines += is_dash_line(raw, len, 0);
        for (i = 1; i + 17 <= len; i += 16) {
            __m128i prev = _mm_loadu_si128((const __m128i *)(raw + i - 1));
            __m128i cur = _mm_loadu_si128((const __m128i *)(raw + i));
            __m128i next = _mm_loadu_si128((const __m128i *)(raw + i + 1));
            __m128i l =
                _mm_and_si128(_mm_cmpeq_epi8(prev, nl),
                              _mm_and_si128(_mm_cmpeq_epi8(cur, dash), _mm_cmpeq_epi8(next, dash)));
            __m128i e =
                _mm_and_si128(_mm_cmpeq_epi8(cur, eq), _mm_cmpeq_epi8(_mm_or_si128(prev, low), y));
            unsigned lm = (unsigned)_mm_movemask_epi8(l), em = (unsigned)_mm_movemask_epi8(e);

            /* bits cleared one by one: masks are nearly always 0, and __builtin_popcount() is
             * a libgcc call per block without -mpopcnt */
            for (; lm; lm &= lm - 1) {
                (*lines)++;
            }
            for (; em; em &= em - 1) {
                *bounds += is_boundary_eq(raw, i + (size_t)__builtin_ctz(em));
            }
        }
    }
#endif
    for (; i < len; i++) {
        *lines += is_dash_line(raw, len, i);
        *bounds += raw[i] == '=' && is_boundary_eq(raw, i);
    }
}

/*
 * Up to this many bytes no message is over the budget, so none is scanned: a counted line takes
 * 3 bytes at least ("--" and the break before the next one) but the last, a "boundary=" 9 that
 * no other one shares, so lines x bounds <= (len + 1) / 3 x len / 9.
 */
#define BOUNDARY_WORK_FREE 36000
_Static_assert((BOUNDARY_WORK_FREE + 1) / 3 * (BOUNDARY_WORK_FREE / 9) <= BOUNDARY_WORK_BUDGET,
               "a message of BOUNDARY_WORK_FREE bytes stays within the budget");

static int too_complex(const char *raw, size_t len, size_t *lines, size_t *bounds)
{
    if (len <= BOUNDARY_WORK_FREE) {
        *lines = *bounds = 0;
        return 0;
    }
    dr__email_boundary_work(raw, len, lines, bounds);
    return (double)*lines * (double)*bounds > (double)BOUNDARY_WORK_BUDGET;
}

/* Whether the line at raw[i] starts an address field GMime parses ("To:", "cc :"); *value is
 * then the index after its ':'. */
static int address_field_at(const char *raw, size_t len, size_t i, size_t *value)
{
    static const char *const names[] = {"sender", "from", "reply-to", "to", "cc", "bcc"};

    if (i >= len || !memchr("sfrtcb", g_ascii_tolower(raw[i]), 6)) {
        return 0; /* most lines: no such name starts with this letter */
    }
    for (size_t k = 0; k < DR_ARRAY_LEN(names); k++) {
        size_t m = strlen(names[k]), j = i + m;

        if (len - i < m || g_ascii_strncasecmp(raw + i, names[k], m) != 0) {
            continue;
        }
        while (j < len && (raw[j] == ' ' || raw[j] == '\t')) {
            j++;
        }
        if (j < len && raw[j] == ':') {
            *value = j + 1;
            return 1;
        }
    }
    return 0;
}

/* How many ':' raw[0..len) holds, counting stopped once past max. */
size_t dr__email_count_colons(const char *raw, size_t len, size_t max)
{
    size_t n = 0, i = 0;

#ifdef __SSE2__
    /* per byte lane a counter that a match decrements by -1, summed before it can wrap */
    const __m128i colon = _mm_set1_epi8(':'), zero = _mm_setzero_si128();

    while (len - i >= 16 && n <= max) {
        __m128i acc = zero;
        size_t end = len - i >= 255 * 16 ? i + 255 * 16 : i + (len - i) / 16 * 16;

        for (; i < end; i += 16) {
            __m128i c = _mm_loadu_si128((const __m128i *)(raw + i));
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(c, colon));
        }
        acc = _mm_sad_epu8(acc, zero);
        n += (size_t)_mm_cvtsi128_si32(acc) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(acc, 8));
    }
#endif
    for (; i < len && n <= max; i++) {
        n += raw[i] == ':';
    }
    return n;
}

/* Whether an address field anywhere in raw (the message's, or an attached message's), with its
 * continuation lines, has more than ADDRESS_COLONS_MAX ':'s. */
static int addresses_too_nested(const char *raw, size_t len)
{
    size_t i = 0;

    /* a message with fewer ':' in all cannot have a field with more: most mail stops here */
    if (len <= ADDRESS_COLONS_MAX ||
        dr__email_count_colons(raw, len, ADDRESS_COLONS_MAX) <= ADDRESS_COLONS_MAX) {
        return 0;
    }
    while (i < len) {
        const char *nl;
        size_t v;

        if (address_field_at(raw, len, i, &v)) {
            size_t end = v;

            /* the field ends at a line break not followed by a blank */
            while ((nl = memchr(raw + end, '\n', len - end)) != NULL &&
                   (size_t)(nl - raw) + 1 < len && (nl[1] == ' ' || nl[1] == '\t')) {
                end = (size_t)(nl - raw) + 1;
            }
            end = nl ? (size_t)(nl - raw) : len;
            if (address_colons(raw + v, end - v) > ADDRESS_COLONS_MAX) {
                return 1;
            }
            i = end;
        }
        nl = memchr(raw + i, '\n', len - i);
        if (!nl) {
            break;
        }
        i = (size_t)(nl - raw) + 1;
    }
    return 0;
}

/*
 * GMime builds an object for every part it finds, whether or not it is read: a message of
 * 200,000 tiny parts costs seconds and hundreds of MB though only max_parts are examined. A
 * part starts at a line beginning with "--", so only this many such lines per examined part are
 * given to GMime; the message is read up to the first line past them.
 */
#define DASH_LINES_PER_PART 8

/* The offset of the line that starts with "--" after max of them, or len if there are not
 * that many. */
static size_t dash_lines_cut(const char *raw, size_t len, size_t max)
{
    size_t i = 0, n = 0;

    while (i < len) {
        const char *nl;

        if (is_dash_line(raw, len, i) && n++ == max) {
            return i;
        }
        nl = memchr(raw + i, '\n', len - i);
        if (!nl) {
            break;
        }
        i = (size_t)(nl - raw) + 1;
    }
    return len;
}

/*
 * GMime keeps an object of several hundred bytes for every header field: 1,500,000 fields in
 * 10 MB cost it a GB. No mail has this many; a message with more is refused before it parses.
 * A header line takes 3 bytes at least ("a:" and its break), so a shorter message is not scanned.
 */
#define HEADER_LINES_MAX 100000
/* Decoding a field costs GMime tens of bytes per byte (a 6 MB Subject: 385 MB), so a field with
 * its continuation lines may have this many bytes at most. */
#define HEADER_FIELD_MAX (1024 * 1024)

/* Whether the line s[0..n) is a header field: a name of printable characters, then ':'. */
static int is_field_line(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && s[i] > ' ' && s[i] < 127 && s[i] != ':') {
        i++;
    }
    if (i == 0) {
        return 0;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    return i < n && s[i] == ':';
}

/* Whether s[0..n) names a message/... type (an attached message, whose header follows). */
static int names_message_type(const char *s, size_t n)
{
    for (size_t j = 0; j + 8 <= n; j++) {
        if ((s[j] | 0x20) == 'm' && g_ascii_strncasecmp(s + j, "message/", 8) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * The lines GMime reads as header fields, counted up to max + 1: the message's header, each
 * part's (after a line starting with "--"), and an attached message's (the block after a header
 * naming a message/ type), each up to its blank line or first line that is no field. *longest
 * is the size of the longest field with its continuation lines.
 */
static size_t header_lines(const char *raw, size_t len, size_t max, size_t *longest)
{
    size_t i = 0, n = 0, field = 0;
    int in_header = 1, nested = 0, maybe_header = 0;

    *longest = 0;
    while (i < len && n <= max) {
        const char *nl = memchr(raw + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - raw) : len, e = end;

        if (e > i && raw[e - 1] == '\r') {
            e--;
        }
        if (e == i) {
            maybe_header = in_header && nested;
            in_header = nested = 0;
        } else if (e - i >= 2 && raw[i] == '-' && raw[i + 1] == '-') {
            in_header = 1;
            nested = maybe_header = 0;
        } else if ((in_header || maybe_header) &&
                   (is_field_line(raw + i, e - i) ||
                    (in_header && (raw[i] == ' ' || raw[i] == '\t')))) {
            if (maybe_header) {
                in_header = 1;
                nested = maybe_header = 0;
            }
            nested = nested || names_message_type(raw + i, e - i);
            field = raw[i] == ' ' || raw[i] == '\t' ? field + (end - i) + 1 : end - i;
            *longest = field > *longest ? field : *longest;
            n++;
        } else {
            in_header = nested = maybe_header = 0;
        }
        if (!nl) {
            break;
        }
        i = end + 1;
    }
    return n;
}

int dr_email_parse(const char *raw, size_t len, const struct dr_email_limits *lim,
                   struct dr_email **out)
{
    return dr__email_parse_ex(raw, len, lim, 0, out);
}

static int parse(const char *raw, size_t len, const struct dr_email_limits *lim, unsigned flags,
                 struct dr_email **out, struct dr__email_lazy **lazy)
{
    struct dr_email_limits defaults;
    struct dr_email *em = NULL;
    GMimeParserOptions *opts = NULL;
    GMimeStream *stream = NULL;
    GByteArray *view = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *msg = NULL;
    GMimeObject *root;
    struct ctx c = {0};
    struct budget budget = {0};
    size_t max_dash, full_len = 0;
    int err = DR_OK;

    *out = NULL;
    if (lazy) {
        *lazy = NULL;
    }
    dr__email_set_reason(NULL);
    if (!lim) {
        dr_email_limits_init(&defaults);
        lim = &defaults;
    }
    if (!raw || len == 0) {
        dr__email_set_reason("empty message");
        return DR_EINVAL;
    }
    if (len > lim->max_message_bytes) {
        dr__email_set_reason("message of %zu bytes exceeds the limit of %zu", len,
                             lim->max_message_bytes);
        return DR_ETOOBIG;
    }
    {
        size_t lines, bounds;
        if (too_complex(raw, len, &lines, &bounds)) {
            dr__email_set_reason("MIME structure too complex: %zu boundary lines against %zu "
                                 "boundaries",
                                 lines, bounds);
            return DR_ETOOBIG;
        }
        max_dash = lim->max_parts > SIZE_MAX / DASH_LINES_PER_PART
                       ? SIZE_MAX
                       : lim->max_parts * DASH_LINES_PER_PART;
        if (len / 3 > max_dash) {
            /* too_complex() counts lines above BOUNDARY_WORK_FREE bytes only */
            if (len <= BOUNDARY_WORK_FREE) {
                dr__email_boundary_work(raw, len, &lines, &bounds);
            }
            if (lines > max_dash) {
                full_len = len;
                len = dash_lines_cut(raw, len, max_dash);
            }
        }
    }
    if (len / 3 > HEADER_LINES_MAX || len > HEADER_FIELD_MAX) {
        size_t longest;

        if (header_lines(raw, len, HEADER_LINES_MAX, &longest) > HEADER_LINES_MAX) {
            dr__email_set_reason("more than %d header lines (in the message, its parts or the "
                                 "messages it attaches)",
                                 HEADER_LINES_MAX);
            return DR_ETOOBIG;
        }
        if (longest > HEADER_FIELD_MAX) {
            dr__email_set_reason("a header field of %zu bytes (at most %d)", longest,
                                 HEADER_FIELD_MAX);
            return DR_ETOOBIG;
        }
    }
    if (addresses_too_nested(raw, len)) {
        dr__email_set_reason("an address field has more than %d ':' (groups nested too deeply)",
                             ADDRESS_COLONS_MAX);
        return DR_ETOOBIG;
    }
    dr__email_gmime_init();
    em = dr_xcalloc(1, sizeof(*em));
    if (len < full_len) {
        dr__email_warn(em,
                       "more than %zu lines start with \"--\" (MIME boundaries); the message "
                       "was read up to byte %zu of %zu",
                       max_dash, len, full_len);
    }
    opts = new_options(em);
    if (len <= G_MAXUINT) {
        /* the stream reads raw where it is: the parser never writes to it */
        view = g_byte_array_new_take((guint8 *)raw, len);
        stream = g_mime_stream_mem_new_with_byte_array(view);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    } else {
        stream = g_mime_stream_mem_new_with_buffer(raw, len);
    }
    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    msg = g_mime_parser_construct_message(parser, opts);
    if (!msg) {
        dr__email_set_reason("not an RFC 5322 message");
        err = DR_EINVAL;
        goto out;
    }
    root = g_mime_message_get_mime_part(msg);
    if (count_headers(GMIME_OBJECT(msg)) == 0 && count_headers(root) == 0) {
        dr__email_set_reason("not an RFC 5322 message: no header fields");
        err = DR_EINVAL;
        goto out;
    }
    memset(&c, 0, sizeof(c));
    c.em = em;
    c.lim = lim;
    c.flags = lazy ? flags : flags & ~DR__EMAIL_LAZY_HTML;
    c.max_depth = lim->max_depth < DR_EMAIL_DEPTH_CEILING ? lim->max_depth : DR_EMAIL_DEPTH_CEILING;
    c.opts = opts;
    c.owned = g_ptr_array_new_with_free_func(g_object_unref);
    budget.top = em;
    budget.reread_max = len > SIZE_MAX / 2 ? SIZE_MAX : 2 * len;
    c.budget = &budget;
    take_headers(&c, msg);
    if (root) {
        err = choose_bodies(&c, root);
    }
    if (!err && c.refused) {
        dr__email_set_reason("%s", c.refused);
        err = DR_EINVAL;
        goto out;
    }
    if (!err) {
        err = dr__email_finish_bodies_ex(em, lim, flags);
    }
    if (err) {
        dr__email_set_reason("%s while reading the bodies", dr_strerror(err));
        goto out;
    }
    *out = em;
    em = NULL;
    if (c.html_later) {
        /* the message stays parsed for dr__email_lazy_html() */
        struct dr__email_lazy *lz = dr_xcalloc(1, sizeof(*lz));

        lz->opts = opts;
        lz->stream = stream;
        lz->view = view;
        lz->parser = parser;
        lz->msg = msg;
        lz->html = c.html_later;
        lz->owned = c.owned;
        lz->lim = *lim;
        lz->flags = flags;
        *lazy = lz;
        return DR_OK;
    }
out:
    if (budget.fwd_queue) {
        g_array_free(budget.fwd_queue, TRUE); /* left by an error */
    }
    if (c.html_later) {
        g_ptr_array_free(c.html_later, TRUE);
    }
    if (c.owned) {
        g_ptr_array_free(c.owned, TRUE);
    }
    if (msg) {
        g_object_unref(msg);
    }
    if (parser) {
        g_object_unref(parser);
    }
    if (stream) {
        g_object_unref(stream);
    }
    if (view) {
        g_byte_array_free(view, FALSE); /* the wrapper only: raw is the caller's */
    }
    /* after the message: its lazily parsed headers refer to these options */
    g_mime_parser_options_free(opts);
    dr_email_destroy(em);
    return err;
}

int dr__email_parse_ex(const char *raw, size_t len, const struct dr_email_limits *lim,
                       unsigned flags, struct dr_email **out)
{
    return parse(raw, len, lim, flags, out, NULL);
}

int dr__email_parse_lazy(const char *raw, size_t len, const struct dr_email_limits *lim,
                         unsigned flags, struct dr_email **out, struct dr__email_lazy **lazy)
{
    return parse(raw, len, lim, flags | DR__EMAIL_NO_HTML_TEXT | DR__EMAIL_LAZY_HTML, out, lazy);
}

int dr__email_lazy_html(struct dr__email_lazy *lz, struct dr_email *em)
{
    struct dr_buf hb;
    struct ctx c = {0};
    int err;

    if (!lz || !lz->html) {
        return DR_OK;
    }
    c.em = em;
    c.lim = &lz->lim;
    c.flags = lz->flags;
    dr_buf_init(&hb, lz->lim.max_text_bytes);
    err = render_body(&c, lz->html, 1, &hb, "HTML body");
    if (!err) {
        err = set_body(&hb, &em->html, &em->html_len);
    }
    dr_buf_cleanup(&hb);
    g_ptr_array_free(lz->html, TRUE);
    lz->html = NULL; /* read once */
    return err;
}

void dr__email_lazy_free(struct dr__email_lazy *lz)
{
    if (!lz) {
        return;
    }
    if (lz->html) {
        g_ptr_array_free(lz->html, TRUE);
    }
    g_ptr_array_free(lz->owned, TRUE);
    g_object_unref(lz->msg);
    g_object_unref(lz->parser);
    g_object_unref(lz->stream);
    if (lz->view) {
        g_byte_array_free(lz->view, FALSE);
    }
    g_mime_parser_options_free(lz->opts);
    free(lz);
}
