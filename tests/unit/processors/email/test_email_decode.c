/* Transfer decoders (src/processors/email/decode.c): edge cases, and byte for byte the output of
 * GMime's own filter stream, which the parser read part bodies through before (for
 * quoted-printable with the transport padding GMime keeps taken out of its input first, see
 * without_padding()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "dr/buf.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"
#include "unit/processors/corpus.h"

typedef int (*decoder)(const char *, size_t, struct dr_buf *, int *);

/* Decodes s with limit bytes of room; returns the malloc'ed output (NUL-terminated). */
static char *run(decoder fn, const char *s, size_t len, size_t limit, size_t *outlen, int *cut)
{
    struct dr_buf b;
    char *r;

    dr_buf_init(&b, limit);
    assert_int_equal(fn(s, len, &b, cut), DR_OK);
    *outlen = b.len;
    r = malloc(b.len + 1);
    memcpy(r, b.data ? b.data : "", b.len);
    r[b.len] = '\0';
    dr_buf_cleanup(&b);
    return r;
}

static void expect(decoder fn, const char *in, const char *want, size_t want_len)
{
    size_t n;
    int cut;
    char *got = run(fn, in, strlen(in), 1 << 20, &n, &cut);

    if (n != want_len || memcmp(got, want, n) != 0) {
        fail_msg("\"%s\": got %zu bytes \"%s\", want %zu bytes \"%s\"", in, n, got, want_len, want);
    }
    assert_int_equal(cut, 0);
    free(got);
}

#define EXPECT(fn, in, want) expect(fn, in, want, sizeof(want) - 1)

static void base64_edges(void **state)
{
    (void)state;
    EXPECT(dr__email_decode_base64, "", "");
    EXPECT(dr__email_decode_base64, "QUJD", "ABC");
    /* padding: one byte less per '=' at the end */
    EXPECT(dr__email_decode_base64, "QQ==", "A");
    EXPECT(dr__email_decode_base64, "QUI=", "AB");
    EXPECT(dr__email_decode_base64, "QUI=\r\n", "AB");
    EXPECT(dr__email_decode_base64, "QUI=\r\n  \r\n", "AB");
    /* line breaks, spaces and characters outside the alphabet are skipped */
    EXPECT(dr__email_decode_base64, "QU\r\nJD\r\nREVG", "ABCDEF");
    EXPECT(dr__email_decode_base64, " Q U J D ", "ABC");
    EXPECT(dr__email_decode_base64,
           "Q*U!J\x80\xff"
           "D",
           "ABC");
    EXPECT(dr__email_decode_base64, "-_QUJD", "ABC"); /* no base64url alphabet */
    EXPECT(dr__email_decode_base64, "+/+/", "\xfb\xff\xbf");
    /* truncated: an incomplete quartet at the end is dropped */
    EXPECT(dr__email_decode_base64, "QUJDR", "ABC");
    EXPECT(dr__email_decode_base64, "QUJDRE", "ABC");
    EXPECT(dr__email_decode_base64, "QUJDREV", "ABC");
    /* the first '=' ends the data, with the bytes of its quartet so far */
    EXPECT(dr__email_decode_base64, "QQ=", "A");
    EXPECT(dr__email_decode_base64, "QQ==QUJD", "A");
    EXPECT(dr__email_decode_base64, "QUJD==QUJD", "ABC");
    EXPECT(dr__email_decode_base64, "QU=JD", "A");
    EXPECT(dr__email_decode_base64, "QUJ=QUJD", "AB");
    EXPECT(dr__email_decode_base64, "Q=", "");
    EXPECT(dr__email_decode_base64, "=QUJD", "");
}

static void qp_edges(void **state)
{
    (void)state;
    EXPECT(dr__email_decode_qp, "", "");
    EXPECT(dr__email_decode_qp, "plain text\r\n", "plain text\r\n");
    EXPECT(dr__email_decode_qp, "a=3Db", "a=b");
    EXPECT(dr__email_decode_qp, "a=3db", "a=b"); /* lower-case hex */
    EXPECT(dr__email_decode_qp, "=C3=A9t=c3=a9", "\xc3\xa9t\xc3\xa9");
    /* soft line breaks, CRLF and LF */
    EXPECT(dr__email_decode_qp, "ab=\r\ncd", "abcd");
    EXPECT(dr__email_decode_qp, "ab=\ncd", "abcd");
    /* not escapes: kept as they are */
    EXPECT(dr__email_decode_qp, "a=ZZb", "a=ZZb");
    EXPECT(dr__email_decode_qp, "a=3Zb", "a=3Zb");
    EXPECT(dr__email_decode_qp, "a==41", "a==41");
    /* transport padding after a soft break's '=' goes with the break (RFC 2045 6.7) */
    EXPECT(dr__email_decode_qp, "space=  \r\ncontinues", "spacecontinues");
    EXPECT(dr__email_decode_qp, "a= \nb", "ab");
    EXPECT(dr__email_decode_qp, "a=\t \t\r\nb", "ab");
    EXPECT(dr__email_decode_qp, "end=  ", "end");
    EXPECT(dr__email_decode_qp, "end= \r", "end");
    /* blanks after '=' that no line break follows are kept */
    EXPECT(dr__email_decode_qp, "a= x", "a= x");
    EXPECT(dr__email_decode_qp, "a=  x=41", "a=  xA");
    EXPECT(dr__email_decode_qp, "a= =41", "a= =41");
    EXPECT(dr__email_decode_qp, "a=  =41", "a=  A");
    EXPECT(dr__email_decode_qp, "a= \rb", "a= \rb");
    EXPECT(dr__email_decode_qp, "a=  \r=41", "a=  \rA");
    EXPECT(dr__email_decode_qp,
           "a=                                  \nb", /* 34 blanks: no padding */
           "a=                                  \nb");
    /* truncated escapes at the end are dropped */
    EXPECT(dr__email_decode_qp, "end=", "end");
    EXPECT(dr__email_decode_qp, "end=4", "end");
    EXPECT(dr__email_decode_qp, "end=\r", "end");
    EXPECT(dr__email_decode_qp, "=00", "\0");
}

/* Padding carried from one step to the next: the same output wherever the input is cut. */
static void qp_padding_split_anywhere(void **state)
{
    static const char in[] = "ab=  \t \r\ncd= \t x=41 =   \r=42 f=\t\ng=    \nend= \t";
    static const char want[] = "abcd= \t xA =   \rB fgend";
    const size_t len = sizeof(in) - 1;

    (void)state;
    EXPECT(dr__email_decode_qp, in, want);
    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t cut2 = cut; cut2 <= len; cut2++) {
            unsigned char out[sizeof(in) + DR__EMAIL_QP_CARRY];
            int st = 0;
            uint32_t save = 0;
            size_t n = dr__email_qp_step((const unsigned char *)in, cut, out, &st, &save);

            n +=
                dr__email_qp_step((const unsigned char *)in + cut, cut2 - cut, out + n, &st, &save);
            n += dr__email_qp_step((const unsigned char *)in + cut2, len - cut2, out + n, &st,
                                   &save);
            assert_int_equal(n, sizeof(want) - 1);
            assert_memory_equal(out, want, n);
        }
    }
}

static void limits(void **state)
{
    size_t n;
    int cut;
    char *got;

    (void)state;
    /* exactly the limit: not cut; one more byte: cut, the limit kept */
    got = run(dr__email_decode_base64, "QUJD", 4, 3, &n, &cut);
    assert_int_equal(n, 3);
    assert_int_equal(cut, 0);
    free(got);
    got = run(dr__email_decode_base64, "QUJDRA==", 8, 3, &n, &cut);
    assert_int_equal(n, 3);
    assert_int_equal(cut, 1);
    assert_string_equal(got, "ABC");
    free(got);
    got = run(dr__email_decode_qp, "abc=3D", 6, 3, &n, &cut);
    assert_int_equal(n, 3);
    assert_int_equal(cut, 1);
    free(got);
    got = run(dr__email_decode_qp, "abc=\r\n", 6, 3, &n, &cut);
    assert_int_equal(n, 3);
    assert_int_equal(cut, 0);
    free(got);
}

/* What the parser did before: the part's stream read through GMime's basic filter. */
static char *gmime_decode(GMimeContentEncoding enc, const char *s, size_t len, size_t limit,
                          size_t *outlen, int *cut)
{
    GMimeStream *src = g_mime_stream_mem_new_with_buffer(s, len);
    GMimeStream *fs = g_mime_stream_filter_new(src);
    GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
    struct dr_buf b;
    char chunk[8192], *r;
    ssize_t got;

    g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
    g_object_unref(f);
    dr_buf_init(&b, limit);
    *cut = 0;
    while ((got = g_mime_stream_read(fs, chunk, sizeof(chunk))) > 0) {
        size_t room = b.limit - b.len;
        if ((size_t)got > room) {
            dr_buf_append(&b, chunk, room);
            *cut = 1;
            break;
        }
        dr_buf_append(&b, chunk, (size_t)got);
    }
    g_object_unref(fs);
    g_object_unref(src);
    *outlen = b.len;
    r = malloc(b.len + 1);
    memcpy(r, b.data ? b.data : "", b.len);
    r[b.len] = '\0';
    dr_buf_cleanup(&b);
    return r;
}

/* in[0..len) without the quoted-printable transport padding the decoders delete (RFC 2045 6.7)
 * and GMime keeps, into out (len bytes): "=" and up to 32 blanks then a line break become "=\n",
 * "=" and blanks at the end go. The escapes are walked as GMime walks them ('=' takes the two
 * bytes after it, "=\n" one), so that GMime decodes what is left as the decoders decode in. */
static size_t without_padding(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;

    while (i < len) {
        size_t k = 0, j;

        if (in[i] != '=') {
            out[o++] = in[i++];
            continue;
        }
        while (i + 1 + k < len && (in[i + 1 + k] == ' ' || in[i + 1 + k] == '\t')) {
            k++;
        }
        j = i + 1 + k;
        if (k >= 1 && k <= 32) {
            if (j == len || (in[j] == '\r' && j + 1 == len)) {
                break; /* padding at the end */
            }
            if (in[j] == '\n' || (in[j] == '\r' && in[j + 1] == '\n')) {
                out[o++] = '=';
                out[o++] = '\n';
                i = in[j] == '\n' ? j + 1 : j + 2;
                continue;
            }
        }
        /* an escape, a soft break or kept bytes: as GMime consumes them */
        for (size_t n = i + 1 < len && in [i + 1] == '\n' ? 2 : 3; n && i < len; n--) {
            out[o++] = in[i++];
        }
    }
    return o;
}

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

static void same_as_gmime(GMimeContentEncoding enc, decoder fn, const char *alphabet, unsigned seed)
{
    size_t alen = strlen(alphabet);

    dr__email_gmime_init();
    for (int round = 0; round < 400; round++) {
        size_t len = round < 200 ? rnd(&seed) % 64 : rnd(&seed) % 20000;
        size_t limit = round % 5 == 0 ? rnd(&seed) % (len + 1) + 1 : 1 << 20;
        char *in = malloc(len + 1), *want, *got;
        size_t want_len, got_len;
        int want_cut, got_cut;

        for (size_t i = 0; i < len; i++) {
            unsigned r = rnd(&seed) % 1000;
            /* mostly the alphabet; line breaks; now and then anything */
            in[i] = r < 940   ? alphabet[rnd(&seed) % alen]
                    : r < 980 ? (r & 1 ? '\n' : '\r')
                              : (char)(rnd(&seed) & 0xff);
        }
        in[len] = '\0';
        if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
            char *bare = malloc(len + 1);
            want = gmime_decode(enc, bare, without_padding(in, len, bare), limit, &want_len,
                                &want_cut);
            free(bare);
        } else {
            want = gmime_decode(enc, in, len, limit, &want_len, &want_cut);
        }
        got = run(fn, in, len, limit, &got_len, &got_cut);
        if (want_len != got_len || memcmp(want, got, want_len) != 0 || want_cut != got_cut) {
            fail_msg("round %d: %zu input bytes, limit %zu: %zu bytes (cut %d) vs GMime's %zu "
                     "(cut %d)",
                     round, len, limit, got_len, got_cut, want_len, want_cut);
        }
        free(in);
        free(want);
        free(got);
    }
}

static void base64_same_as_gmime(void **state)
{
    (void)state;
    /* some with an '=' early, most long enough to cross GMime's 4096-byte blocks */
    same_as_gmime(GMIME_CONTENT_ENCODING_BASE64, dr__email_decode_base64,
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/  ", 1);
    same_as_gmime(GMIME_CONTENT_ENCODING_BASE64, dr__email_decode_base64,
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", 3);
}

/* Every byte value at every place of the first three 16-character blocks of a line, with the
 * line shifted so the blocks start anywhere in a quartet: the 16-character fast path takes
 * exactly the blocks the byte loop would. */
static void base64_every_byte_everywhere(void **state)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char in[80];

    (void)state;
    dr__email_gmime_init();
    for (size_t lead = 0; lead < 4; lead++) {
        for (size_t pos = 0; pos < 52; pos++) {
            for (unsigned b = 0; b < 256; b++) {
                size_t len = 64 + lead, want_len, got_len;
                int want_cut, got_cut;
                char *want, *got;

                for (size_t i = 0; i < len; i++) {
                    in[i] = i < lead ? "\r\n \t"[i] : alpha[(i * 7 + b + pos) % 64];
                }
                in[lead + pos] = (char)b;
                in[len] = '\0';
                want = gmime_decode(GMIME_CONTENT_ENCODING_BASE64, in, len, 1 << 20, &want_len,
                                    &want_cut);
                got = run(dr__email_decode_base64, in, len, 1 << 20, &got_len, &got_cut);
                if (want_len != got_len || memcmp(want, got, want_len) != 0) {
                    fail_msg("byte 0x%02x at %zu after %zu: %zu bytes vs GMime's %zu", b, pos, lead,
                             got_len, want_len);
                }
                free(want);
                free(got);
            }
        }
    }
}

/* The steps carry their state from one call to the next as GMime's own steps do. */
static void steps_split_anywhere(void **state)
{
    static const char *const inputs[] = {"QUJDREVGR0g=", "QUJDREVGRw==",      "QUJD\r\nREVG\r\nRw",
                                         "QU=JD",        "a=3D=C3=A9=\r\nb=", "x=4",
                                         "=\r"};
    (void)state;
    dr__email_gmime_init();
    for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
        const unsigned char *in = (const unsigned char *)inputs[k];
        size_t len = strlen(inputs[k]);
        for (int qp = 0; qp < 2; qp++) {
            for (size_t cut = 0; cut <= len; cut++) {
                unsigned char want[64], got[64];
                int ws = 0, gs = 0;
                guint32 wsave = 0;
                uint32_t gsave = 0;
                size_t wn, gn;
                if (qp) {
                    wn = g_mime_encoding_quoted_decode_step(in, cut, want, &ws, &wsave);
                    wn += g_mime_encoding_quoted_decode_step(in + cut, len - cut, want + wn, &ws,
                                                             &wsave);
                    gn = dr__email_qp_step(in, cut, got, &gs, &gsave);
                    gn += dr__email_qp_step(in + cut, len - cut, got + gn, &gs, &gsave);
                } else {
                    wn = g_mime_encoding_base64_decode_step(in, cut, want, &ws, &wsave);
                    wn += g_mime_encoding_base64_decode_step(in + cut, len - cut, want + wn, &ws,
                                                             &wsave);
                    gn = dr__email_base64_step(in, cut, got, &gs, &gsave);
                    gn += dr__email_base64_step(in + cut, len - cut, got + gn, &gs, &gsave);
                }
                assert_int_equal(gn, wn);
                assert_memory_equal(got, want, wn);
            }
        }
    }
}

/* Every pair of bytes after an '=', the escape whole, at the end of the input and cut short, at
 * the start and inside a text, run by our steps cut at every place: what GMime's filter gives. */
static void qp_every_escape(void **state)
{
    char in[16];

    (void)state;
    dr__email_gmime_init();
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (int form = 0; form < 4; form++) {
                size_t len = 0, want_len, got_len, gn;
                int want_cut, got_cut;
                char *want, *got;
                unsigned char out[32];

                if (form & 1) {
                    memcpy(in, "ab", 2);
                    len = 2;
                }
                in[len++] = '=';
                in[len++] = (char)a;
                in[len++] = (char)b;
                if (form & 2) {
                    memcpy(in + len, "=3Dc=\r\n", 8);
                    len += 8;
                }
                {
                    char bare[16];
                    want =
                        gmime_decode(GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE, bare,
                                     without_padding(in, len, bare), 1 << 20, &want_len, &want_cut);
                }
                got = run(dr__email_decode_qp, in, len, 1 << 20, &got_len, &got_cut);
                if (want_len != got_len || memcmp(want, got, want_len) != 0) {
                    fail_msg("=%02x%02x (form %d): %zu bytes vs GMime's %zu", a, b, form, got_len,
                             want_len);
                }
                for (size_t cut = 0; cut <= len; cut++) {
                    int st = 0;
                    uint32_t save = 0;

                    gn = dr__email_qp_step((const unsigned char *)in, cut, out, &st, &save);
                    gn += dr__email_qp_step((const unsigned char *)in + cut, len - cut, out + gn,
                                            &st, &save);
                    assert_int_equal(gn, want_len);
                    assert_memory_equal(out, want, want_len);
                }
                free(want);
                free(got);
            }
        }
    }
}

static void qp_same_as_gmime(void **state)
{
    (void)state;
    same_as_gmime(GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE, dr__email_decode_qp,
                  "abcdefxyzABCDEFXYZ0123456789 \t=====.,", 2);
}

/* What the processor did with its raw field before: base64url, else standard base64. */
static int raw_before(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    int err = dr_base64url_decode(in, len, out, outlen);

    if (err == DR_EINVAL) {
        err = dr_base64_decode(in, len, out, outlen);
    }
    return err;
}

static void raw_same(const char *in, size_t len)
{
    unsigned char *want = NULL, *got = NULL;
    size_t wlen = 0, glen = 0;
    int werr = raw_before(in, len, &want, &wlen), gerr = dr__email_raw_decode(in, len, &got, &glen);

    if (werr != gerr || (!werr && (wlen != glen || memcmp(want, got, wlen + 1) != 0))) {
        fail_msg("raw field of %zu characters \"%.60s\": %d (%zu bytes) vs %d (%zu bytes) before",
                 len, in, gerr, glen, werr, wlen);
    }
    free(want);
    free(got);
}

/* The raw field decoder against the two strict decoders it replaces. */
static void raw_same_as_before(void **state)
{
    static const char *const alphabets[] = {"ABCXYZabcxyz0189",
                                            "ABCXYZabcxyz0189-_",
                                            "ABCXYZabcxyz0189+/",
                                            "ABCXYZabcxyz0189-_+/",
                                            "ABCabc09-_=",
                                            "ABCabc09+/= \r\n\t.\x80\xff",
                                            "A-+=",
                                            "ABCXYZabcxyz0189-_\0"};
    static const char *const fixed[] = {
        "",     "=",    "==",   "===", "A",   "AA",   "AA=",  "AA==", "AAA=", "AAA==", "AAAA",
        "-_+/", "-_-_", "+/+/", "+/A", "-_A", "+/A=", "-_A=", "+/AA", "QQ",   "QQ=="};
    uint32_t x = 2463534242u;
    char buf[300];

    (void)state;
    for (size_t i = 0; i < DR_ARRAY_LEN(fixed); i++) {
        raw_same(fixed[i], strlen(fixed[i]));
    }
    /* every byte value at every place of the first three 32-character blocks (six of 16),
     * among plain characters and among those of either alphabet, the text ending after a
     * 16-character block, after a 32-character one and after a quartet more */
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 96; at++) {
            for (int mix = 0; mix < 3; mix++) {
                for (size_t k = 0; k < 100; k++) {
                    buf[k] = mix == 0   ? "QUJDxyz09"[k % 9]
                             : mix == 1 ? "QU-_x"[k % 5]
                                        : "QU+/x"[k % 5];
                }
                buf[at] = (char)c;
                raw_same(buf, 80);
                raw_same(buf, 96);
                raw_same(buf, 100);
            }
        }
    }
    for (int round = 0; round < 200000; round++) {
        const char *a = alphabets[round % DR_ARRAY_LEN(alphabets)];
        size_t alen = round % DR_ARRAY_LEN(alphabets) == 7 ? 19 : strlen(a);
        size_t len;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        len = x % (round % 10 == 0 ? sizeof(buf) : 24);
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* mostly the plain alphabet, so that long valid runs occur */
            buf[k] = (x & 0xF000) ? "ABCXYZabcxyz0189"[x % 16] : a[(x >> 4) % alen];
        }
        for (size_t k = 0; k < (x >> 20) % 3 && len + k < sizeof(buf); k++) {
            buf[len++] = '='; /* padding, right or wrong */
        }
        raw_same(buf, len);
    }
}

/* ---- decoded sizes: dr__email_decoded_len() against GMime writing the part out ---------- */

static size_t sized_parts;

static void size_same(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    GMimeDataWrapper *w;
    GMimeStream *src, *null;
    GByteArray *a;
    GMimeContentEncoding enc;
    ssize_t want;
    size_t got;

    (void)parent;
    (void)data;
    if (!GMIME_IS_PART(part) || !(w = g_mime_part_get_content(GMIME_PART(part))) ||
        !(src = g_mime_data_wrapper_get_stream(w)) || !GMIME_IS_STREAM_MEM(src)) {
        return;
    }
    enc = g_mime_data_wrapper_get_encoding(w);
    if (enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        return; /* left to GMime */
    }
    a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(src));
    null = g_mime_stream_null_new();
    want = g_mime_data_wrapper_write_to_stream(w, null);
    g_object_unref(null);
    got = dr__email_decoded_len(
        (const char *)a->data + src->bound_start,
        (size_t)((src->bound_end < 0 ? (gint64)a->len : src->bound_end) - src->bound_start),
        enc == GMIME_CONTENT_ENCODING_BASE64            ? DR__EMAIL_CTE_BASE64
        : enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ? DR__EMAIL_CTE_QP
                                                        : DR__EMAIL_CTE_IDENTITY);
    assert_int_equal(got, (size_t)(want < 0 ? 0 : want));
    sized_parts++;
}

static void sizes_of(const char *path, char *data, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg;

    (void)path;
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    msg = g_mime_parser_construct_message(parser, NULL);
    if (msg) {
        g_mime_message_foreach(msg, size_same, NULL);
        g_object_unref(msg);
    }
    g_object_unref(parser);
    g_object_unref(stream);
}

/* Every part of the corpora: what the parser now counts for an attachment's size is what it had
 * GMime write out before. */
static void decoded_len_same_as_gmime(void **state)
{
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    static const char *const dirs[] = {"email", "shipment", "replies"};
    char dir[1024];

    (void)state;
    dr_email_global_init();
    for (size_t i = 0; i < DR_ARRAY_LEN(dirs); i++) {
        snprintf(dir, sizeof(dir), "%s/%s", root, dirs[i]);
        corpus_each(dir, 1, sizes_of);
    }
    assert_true(sized_parts > 100);
}

/* Whole messages: the bodies come out decoded, whatever their encoding. */
static void parsed_bodies(void **state)
{
    static const char msg[] =
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Caf=C3=A9 au lait, soft=\r\nly broken =3d fine\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "PHA+Q2Fmw6k8L3A+\r\n"
        "--b--\r\n";
    struct dr_email *em = NULL;

    (void)state;
    assert_int_equal(dr_email_parse(msg, sizeof(msg) - 1, NULL, &em), DR_OK);
    assert_string_equal(em->text, "Café au lait, softly broken = fine");
    assert_string_equal(em->html, "<p>Café</p>");
    assert_string_equal(em->html_text, "Café");
    dr_email_destroy(em);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_edges),
        cmocka_unit_test(qp_edges),
        cmocka_unit_test(qp_padding_split_anywhere),
        cmocka_unit_test(limits),
        cmocka_unit_test(base64_same_as_gmime),
        cmocka_unit_test(base64_every_byte_everywhere),
        cmocka_unit_test(qp_same_as_gmime),
        cmocka_unit_test(qp_every_escape),
        cmocka_unit_test(decoded_len_same_as_gmime),
        cmocka_unit_test(steps_split_anywhere),
        cmocka_unit_test(parsed_bodies),
        cmocka_unit_test(raw_same_as_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
