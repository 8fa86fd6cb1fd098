/*
 * Content-Transfer-Encoding decoders for part bodies: base64 and quoted-printable, table-driven
 * and run straight over the part's bytes. They produce byte for byte what reading the part
 * through a GMimeStreamFilter with GMime's basic decoder produces, malformed input included:
 * the same state machines, with fast paths for the common runs (whole quartets of base64, text
 * without '=' in quoted-printable). The unit tests hold them to the installed GMime.
 */
#include <stdint.h>
#include <string.h>

#include "dr/err.h"
#include "processors/email/email_int.h"

/* Input decoded at a time when the output may not fit (a GMimeStreamFilter's block). */
#define FILTER_BLOCK 4096

#define XX 0xFF /* not base64: skipped; not a hex digit */
#define EQ 0xFE /* '=': the end of base64 data */
/* Values of base64 characters; '=' ends the data, every other byte not listed is skipped. */
static const unsigned char b64_rank[256] = {
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x00 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x10 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63, /* 0x20 */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, EQ, XX, XX, /* 0x30 */
    XX, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX, /* 0x50 */
    XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX, /* 0x70 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x80 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x90 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xA0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xB0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xC0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xD0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xE0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xF0 */
};

/* Values of hex digits (either case), 0xFF for other bytes. */
static const unsigned char hex_value[256] = {
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x00 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x10 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x20 */
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  XX, XX, XX, XX, XX, XX, /* 0x30 */
    XX, 10, 11, 12, 13, 14, 15, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x40 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x50 */
    XX, 10, 11, 12, 13, 14, 15, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x60 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x70 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x80 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0x90 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xA0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xB0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xC0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xD0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xE0 */
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, /* 0xF0 */
};

size_t dr__email_base64_step(const unsigned char *in, size_t len, unsigned char *out, int *state,
                             uint32_t *save)
{
    const unsigned char *p = in, *end = in + len;
    unsigned char *o = out;
    int n = *state;
    uint32_t saved = *save;

    if (n < 0) {
        return 0; /* past the padding: the rest is not data */
    }
    while (p < end) {
        unsigned char c;

        if (n == 0) {
            /* whole quartets: the common case between line breaks */
            while (end - p >= 4) {
                unsigned a = b64_rank[p[0]], b = b64_rank[p[1]], c2 = b64_rank[p[2]],
                         d = b64_rank[p[3]];
                uint32_t v;

                if ((a | b | c2 | d) & 0x80) {
                    break;
                }
                v = (a << 18) | (b << 12) | (c2 << 6) | d;
                o[0] = (unsigned char)(v >> 16);
                o[1] = (unsigned char)(v >> 8);
                o[2] = (unsigned char)v;
                o += 3;
                p += 4;
            }
            if (p == end) {
                break;
            }
        }
        c = b64_rank[*p++];
        if (c == XX) {
            continue;
        }
        if (c == EQ) {
            /* padding: the bytes of the quartet so far, then nothing more */
            if (n >= 2) {
                saved <<= 6 * (4 - n);
                o[0] = (unsigned char)(saved >> 16);
                if (n == 3) {
                    o[1] = (unsigned char)(saved >> 8);
                }
                o += n - 1;
            }
            *state = -1;
            *save = saved;
            return (size_t)(o - out);
        }
        saved = (saved << 6) | c;
        if (++n == 4) {
            o[0] = (unsigned char)(saved >> 16);
            o[1] = (unsigned char)(saved >> 8);
            o[2] = (unsigned char)saved;
            o += 3;
            n = 0;
            saved = 0;
        }
    }
    *state = n;
    *save = saved;
    return (size_t)(o - out);
}

size_t dr__email_qp_step(const unsigned char *in, size_t len, unsigned char *out, int *state,
                         uint32_t *save)
{
    const unsigned char *p = in, *end = in + len;
    unsigned char *o = out;
    int st = *state;
    unsigned isave = *save;

    while (p < end) {
        unsigned char c;

        switch (st) {
        case 0: {
            const unsigned char *eq = memchr(p, '=', (size_t)(end - p));
            size_t k = (size_t)((eq ? eq : end) - p);

            memcpy(o, p, k);
            o += k;
            p += k;
            if (eq) {
                p++;
                st = 1;
            }
            break;
        }
        case 1:
            c = *p++;
            if (c == '\n') {
                st = 0; /* soft line break, LF only */
            } else {
                isave = c;
                st = 2;
            }
            break;
        default:
            c = *p++;
            if (hex_value[c] != 0xff && hex_value[isave & 0xff] != 0xff) {
                *o++ = (unsigned char)((hex_value[isave & 0xff] << 4) | hex_value[c]);
            } else if (!(c == '\n' && isave == '\r')) {
                /* not an escape: kept as it was ("=\r\n" is a soft line break) */
                *o++ = '=';
                *o++ = (unsigned char)isave;
                *o++ = c;
            }
            st = 0;
            break;
        }
    }
    *state = st;
    *save = isave;
    return (size_t)(o - out);
}

/*
 * Runs step over in[0..len) block by block and appends the output to out while it fits. A
 * block's output is at most its input (quoted-printable) or 3/4 of it plus 3 bytes carried over
 * from the block before (base64).
 */
static int decode_blocks(size_t (*step)(const unsigned char *, size_t, unsigned char *, int *,
                                        uint32_t *),
                         const char *in, size_t len, struct dr_buf *out, int *cut)
{
    unsigned char chunk[FILTER_BLOCK + 4];
    const unsigned char *p = (const unsigned char *)in;
    int state = 0, err = DR_OK;
    uint32_t save = 0;

    *cut = 0;
    for (size_t off = 0; off < len && !err;) {
        size_t n = len - off < FILTER_BLOCK ? len - off : FILTER_BLOCK;
        size_t got = step(p + off, n, chunk, &state, &save);
        size_t room = out->limit - out->len;

        off += n;
        if (got > room) {
            err = dr_buf_append(out, chunk, room);
            *cut = 1;
            break;
        }
        err = dr_buf_append(out, chunk, got);
    }
    return err;
}

int dr__email_decode_base64(const char *in, size_t len, struct dr_buf *out, int *cut)
{
    unsigned char *o;
    int state = 0, err;
    uint32_t save = 0;

    *cut = 0;
    if (len / 4 * 3 + 3 > out->limit - out->len) {
        return decode_blocks(dr__email_base64_step, in, len, out, cut);
    }
    /* Fits whatever it holds: decoded in place. */
    err = dr_buf_reserve(out, len / 4 * 3 + 3);
    if (err) {
        return err;
    }
    o = (unsigned char *)out->data + out->len;
    o += dr__email_base64_step((const unsigned char *)in, len, o, &state, &save);
    out->len = (size_t)(o - (unsigned char *)out->data);
    out->data[out->len] = '\0';
    return DR_OK;
}

int dr__email_decode_qp(const char *in, size_t len, struct dr_buf *out, int *cut)
{
    int state = 0, err;
    uint32_t save = 0;
    size_t got;

    *cut = 0;
    if (len > out->limit - out->len) {
        return decode_blocks(dr__email_qp_step, in, len, out, cut);
    }
    /* Never longer than the input: decoded in place. */
    err = dr_buf_reserve(out, len);
    if (err) {
        return err;
    }
    got = dr__email_qp_step((const unsigned char *)in, len, (unsigned char *)out->data + out->len,
                            &state, &save);
    out->len += got;
    out->data[out->len] = '\0';
    return DR_OK;
}
