/*
 * Content-Transfer-Encoding decoders for part bodies: base64 and quoted-printable, table-driven
 * and run straight over the part's bytes. They produce byte for byte what reading the part
 * through a GMimeStreamFilter with GMime's basic decoder produces, malformed input included:
 * the same state machines, with fast paths for the common runs (whole quartets of base64, 16
 * characters at a time where SSE2 is, text without '=' in quoted-printable). One difference, on
 * purpose: quoted-printable transport padding (blanks between a soft break's '=' and the line
 * break) is deleted with the break, as RFC 2045 6.7 says; GMime keeps it and the break. The unit
 * tests hold them to the installed GMime, with that padding taken out of GMime's input.
 *
 * And the decoder of the email processor's `raw` field: base64url as the Gmail API sends it, or
 * standard base64, with the strict rules of dr_base64url_decode() and dr_base64_decode().
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h> /* AVX2 and SSSE3, used where the CPU has them (raw_blocks_*()) */
#define RAW_SSSE3 1
#endif

#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

/* Input decoded at a time when the output may not fit (a GMimeStreamFilter's block). */
#define FILTER_BLOCK 4096
/* Room a block's output needs beyond its input: what a step carries over (base64: 3 bytes). */
#define STEP_CARRY DR__EMAIL_QP_CARRY
_Static_assert(STEP_CARRY >= 3, "base64 carries 3 bytes");

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

#ifdef __SSE2__
/*
 * Decodes the 16 characters at p (four whole quartets) to 12 bytes at o when all 16 are in the
 * base64 alphabet; returns 0 without writing when one is not (the byte loop then takes them).
 */
static int base64_block16(const unsigned char *p, unsigned char *o)
{
    __m128i c = _mm_loadu_si128((const __m128i *)p);
    /* signed compares: bytes from 0x80 up are negative and in no range */
    __m128i up = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('A' - 1)),
                               _mm_cmplt_epi8(c, _mm_set1_epi8('Z' + 1)));
    __m128i lo = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('a' - 1)),
                               _mm_cmplt_epi8(c, _mm_set1_epi8('z' + 1)));
    __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)),
                               _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
    __m128i plus = _mm_cmpeq_epi8(c, _mm_set1_epi8('+'));
    __m128i slash = _mm_cmpeq_epi8(c, _mm_set1_epi8('/'));
    __m128i add, v, w;

    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(up, lo),
                                       _mm_or_si128(_mm_or_si128(dg, plus), slash))) != 0xFFFF) {
        return 0;
    }
    /* the value of each character: its byte plus the offset of its range */
    add = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(up, _mm_set1_epi8(-65)), _mm_and_si128(lo, _mm_set1_epi8(-71))),
        _mm_or_si128(_mm_and_si128(dg, _mm_set1_epi8(4)),
                     _mm_or_si128(_mm_and_si128(plus, _mm_set1_epi8(19)),
                                  _mm_and_si128(slash, _mm_set1_epi8(16)))));
    v = _mm_add_epi8(c, add);
    /* pairs of 6-bit values to 12 bits, pairs of those to the 24 bits of a quartet */
    w = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00FF)), 6),
                     _mm_srli_epi16(v, 8));
    w = _mm_madd_epi16(w, _mm_set1_epi32(0x00011000));
    /* each 32-bit lane holds its quartet's 3 bytes, most significant first in the output */
    for (int half = 0; half < 2; half++) {
        uint64_t x = (uint64_t)_mm_cvtsi128_si64(half ? _mm_unpackhi_epi64(w, w) : w);
        uint64_t y = (uint64_t)__builtin_bswap32((uint32_t)x << 8) |
                     (uint64_t)__builtin_bswap32((uint32_t)(x >> 32) << 8) << 24;

        memcpy(o + 6 * half, &y, 6);
    }
    return 1;
}
#endif

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
#ifdef __SSE2__
            while (end - p >= 16 && base64_block16(p, o)) {
                p += 16;
                o += 12;
            }
#endif
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
            /* a line break: skipped whole, so the quartets after it are tried once */
            while (p < end && b64_rank[*p] == XX) {
                p++;
            }
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

/*
 * Quoted-printable states: 0 text; 1 after '='; 2 after '=' and one byte (in save), which is not
 * blank; from QP_PAD after '=' and k blanks (1 <= k <= QP_PAD_MAX; bit i of save set when blank i
 * is a tab), and a CR after them when cr is set: st = QP_PAD + 2 * (k - 1) + cr. RFC 2045 6.7:
 * blanks a transport added after a soft line break's '=' are deleted with the break, "=  \r\n"
 * is a soft line break as "=\r\n" is; '=' and blanks at the very end too. Blanks after an '='
 * that no line break follows are kept, as GMime keeps them.
 */
#define QP_PAD     3
#define QP_PAD_MAX 32 /* blanks of one save; a longer run after '=' is no padding */
_Static_assert(QP_PAD_MAX + 2 <= DR__EMAIL_QP_CARRY, "what a step may carry into the next");

/* Writes '=' and the k blanks of save (tabs where its bits are set) to o; returns the end. */
static unsigned char *qp_unpad(unsigned char *o, unsigned k, uint32_t save)
{
    *o++ = '=';
    for (unsigned i = 0; i < k; i++) {
        *o++ = (save >> i) & 1 ? '\t' : ' ';
    }
    return o;
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

        if (st >= QP_PAD) {
            unsigned k = (unsigned)(st - QP_PAD) / 2 + 1, cr = (unsigned)(st - QP_PAD) % 2;

            c = *p;
            if (c == '\n') { /* a soft line break after padding: all of it goes */
                p++;
                st = 0;
            } else if (cr) { /* a CR alone: kept, and c read as text */
                o = qp_unpad(o, k, isave);
                *o++ = '\r';
                st = 0;
            } else if (c == '\r') {
                p++;
                st++;
            } else if ((c == ' ' || c == '\t') && k < QP_PAD_MAX) {
                p++;
                isave |= (c == '\t' ? 1u : 0u) << k;
                st += 2;
            } else if (k == 1) { /* "= x": kept as it was, as state 2 keeps it */
                p++;
                o = qp_unpad(o, k, isave);
                *o++ = c;
                st = 0;
            } else { /* "=  x": kept, and c read as text */
                o = qp_unpad(o, k, isave);
                st = 0;
            }
            continue;
        }
        switch (st) {
        case 0: {
            const unsigned char *eq;
            size_t k;

            /* "=XX" and "=\r\n" inside the input, the bulk of quoted-printable HTML, taken here
             * as states 1 and 2 would take them */
            while (end - p >= 3 && p[0] == '=') {
                unsigned char a = p[1], b = p[2];

                if (hex_value[a] != 0xff && hex_value[b] != 0xff) {
                    *o++ = (unsigned char)((hex_value[a] << 4) | hex_value[b]);
                } else if (a == '\r' && b == '\n') {
                    /* soft line break */
                } else {
                    break;
                }
                p += 3;
            }
            eq = memchr(p, '=', (size_t)(end - p));
            k = (size_t)((eq ? eq : end) - p);
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
            } else if (c == ' ' || c == '\t') {
                isave = c == '\t' ? 1u : 0u;
                st = QP_PAD;
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
    unsigned char chunk[FILTER_BLOCK + STEP_CARRY];
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

size_t dr__email_decoded_len(const char *in, size_t len, enum dr__email_cte cte)
{
    unsigned char chunk[FILTER_BLOCK + STEP_CARRY];
    const unsigned char *p = (const unsigned char *)in;
    int state = 0;
    uint32_t save = 0;
    size_t total = 0;

    if (cte == DR__EMAIL_CTE_IDENTITY) {
        return len;
    }
    for (size_t off = 0; off < len;) {
        size_t n = len - off < FILTER_BLOCK ? len - off : FILTER_BLOCK;

        total += cte == DR__EMAIL_CTE_BASE64
                     ? dr__email_base64_step(p + off, n, chunk, &state, &save)
                     : dr__email_qp_step(p + off, n, chunk, &state, &save);
        off += n;
    }
    return total;
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

/* ---- the payload's raw field --------------------------------------------------------------- */

/*
 * One table per position in a quartet: the character's 6 bits already shifted to where they land
 * in the three output bytes (little-endian), so a quartet is four loads or'ed together. The top
 * byte flags what is not data: RAW_BAD for bytes outside both alphabets, RAW_URL for '-' and '_',
 * RAW_STD for '+' and '/'.
 */
#define RAW_BAD 0x01000000u
#define RAW_URL 0x02000000u
#define RAW_STD 0x04000000u

static uint32_t raw_d0[256], raw_d1[256], raw_d2[256], raw_d3[256];
static pthread_once_t raw_once = PTHREAD_ONCE_INIT;
static int raw_ssse3, raw_avx2; /* the CPU has SSSE3, AVX2 (set with the tables) */

static void raw_tables(void)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#ifdef RAW_SSSE3
    raw_ssse3 = __builtin_cpu_supports("ssse3");
    raw_avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int c = 0; c < 256; c++) {
        raw_d0[c] = raw_d1[c] = raw_d2[c] = raw_d3[c] = RAW_BAD;
    }
    for (int i = 0; i < 66; i++) {
        unsigned char c = (unsigned char)(i < 62 ? digits[i] : "-_+/"[i - 62]);
        uint32_t v = (uint32_t)(i < 62 ? i : 62 + (i - 62) % 2);
        uint32_t flag = i < 62 ? 0 : i < 64 ? RAW_URL : RAW_STD;

        raw_d0[c] = (v << 2) | flag;
        raw_d1[c] = ((v >> 4) | ((v & 0xF) << 12)) | flag;
        raw_d2[c] = (((v >> 2) << 8) | ((v & 3) << 22)) | flag;
        raw_d3[c] = (v << 16) | flag;
    }
}

static void put3(unsigned char *o, uint32_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(o, &x, 4); /* the fourth byte is scratch: the next write or the NUL covers it */
#else
    o[0] = (unsigned char)x;
    o[1] = (unsigned char)(x >> 8);
    o[2] = (unsigned char)(x >> 16);
#endif
}

#ifdef RAW_SSSE3
/*
 * The raw field 16 characters at a time with SSSE3 (nibble lookups, as in Muła's and Lemire's
 * base64 decoders), for whole blocks in[0..n) (n a multiple of 16) up to the first block holding a
 * character of neither alphabet: writes their bytes to o, or's the alphabet flags of what it saw
 * into *seen as the tables would and returns the characters taken (the table loop goes on from
 * there and meets the character that stopped it).
 */
__attribute__((target("ssse3"))) static size_t raw_blocks_ssse3(const unsigned char *in, size_t n,
                                                                unsigned char *o, uint32_t *seen)
{
    /* bit per group of characters: a byte is in an alphabet when the groups of its high and of
     * its low nibble meet (0x2 +-/, 0x3 digits, 0x4/0x6 letters from 1, 0x5/0x7 letters to A,
     * 0x5F '_') */
    const __m128i lut_hi =
        _mm_setr_epi8(0, 0, 0x01, 0x02, 0x04, 0x18, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i lut_lo = _mm_setr_epi8(0x0A, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E,
                                         0x0C, 0x05, 0x04, 0x05, 0x04, 0x15);
    /* what each group adds to a character for its value; 0x2 by the low nibble */
    const __m128i off_hi = _mm_setr_epi8(0, 0, 0, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i off_lo2 =
        _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 17, 0, 16); /* '+' '-' '/' */
    const __m128i pack = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m128i nib = _mm_set1_epi8(0x0F);
    __m128i url = _mm_setzero_si128(), std = _mm_setzero_si128();
    size_t i = 0;

    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), nib), lo = _mm_and_si128(x, nib);
        __m128i ok = _mm_and_si128(_mm_shuffle_epi8(lut_hi, hi), _mm_shuffle_epi8(lut_lo, lo));
        __m128i is2 = _mm_cmpeq_epi8(hi, _mm_set1_epi8(2));
        __m128i under = _mm_cmpeq_epi8(x, _mm_set1_epi8('_'));
        __m128i off, v, w;

        if (_mm_movemask_epi8(_mm_cmpeq_epi8(ok, _mm_setzero_si128())) != 0) {
            break;
        }
        off = _mm_or_si128(_mm_andnot_si128(is2, _mm_shuffle_epi8(off_hi, hi)),
                           _mm_and_si128(is2, _mm_shuffle_epi8(off_lo2, lo)));
        off = _mm_or_si128(_mm_andnot_si128(under, off), _mm_and_si128(under, _mm_set1_epi8(-32)));
        url = _mm_or_si128(url, _mm_or_si128(under, _mm_cmpeq_epi8(x, _mm_set1_epi8('-'))));
        std = _mm_or_si128(std, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('+')),
                                             _mm_cmpeq_epi8(x, _mm_set1_epi8('/'))));
        v = _mm_add_epi8(x, off);
        /* four 6-bit values to three bytes per quartet */
        w = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
        w = _mm_madd_epi16(w, _mm_set1_epi32(0x00011000));
        w = _mm_shuffle_epi8(w, pack);
        _mm_storel_epi64((__m128i *)(void *)(o + i / 4 * 3), w);
        {
            uint32_t t = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(w, 8));
            memcpy(o + i / 4 * 3 + 8, &t, 4);
        }
    }
    *seen |= (_mm_movemask_epi8(url) ? RAW_URL : 0) | (_mm_movemask_epi8(std) ? RAW_STD : 0);
    return i;
}

/* raw_blocks_ssse3() 32 characters at a time with AVX2 (n a multiple of 32): each 128-bit half
 * is the SSSE3 block, the same lookups and the same 12 bytes out. */
__attribute__((target("avx2"))) static size_t raw_blocks_avx2(const unsigned char *in, size_t n,
                                                              unsigned char *o, uint32_t *seen)
{
    const __m256i lut_hi =
        _mm256_setr_epi8(0, 0, 0x01, 0x02, 0x04, 0x18, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                         0x01, 0x02, 0x04, 0x18, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i lut_lo =
        _mm256_setr_epi8(0x0A, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0C, 0x05,
                         0x04, 0x05, 0x04, 0x15, 0x0A, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E,
                         0x0E, 0x0E, 0x0C, 0x05, 0x04, 0x05, 0x04, 0x15);
    const __m256i off_hi = _mm256_setr_epi8(0, 0, 0, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i off_lo2 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 17, 0, 16, 0,
                                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 17, 0, 16);
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2,
                                          1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i url = _mm256_setzero_si256(), std = _mm256_setzero_si256();
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(in + i));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib), lo = _mm256_and_si256(x, nib);
        __m256i ok =
            _mm256_and_si256(_mm256_shuffle_epi8(lut_hi, hi), _mm256_shuffle_epi8(lut_lo, lo));
        __m256i is2 = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8(2));
        __m256i under = _mm256_cmpeq_epi8(x, _mm256_set1_epi8('_'));
        __m256i off, v, w;
        __m128i w0, w1;
        uint32_t t;

        if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(ok, _mm256_setzero_si256())) != 0) {
            break;
        }
        off = _mm256_or_si256(_mm256_andnot_si256(is2, _mm256_shuffle_epi8(off_hi, hi)),
                              _mm256_and_si256(is2, _mm256_shuffle_epi8(off_lo2, lo)));
        off = _mm256_or_si256(_mm256_andnot_si256(under, off),
                              _mm256_and_si256(under, _mm256_set1_epi8(-32)));
        url = _mm256_or_si256(url,
                              _mm256_or_si256(under, _mm256_cmpeq_epi8(x, _mm256_set1_epi8('-'))));
        std = _mm256_or_si256(std, _mm256_or_si256(_mm256_cmpeq_epi8(x, _mm256_set1_epi8('+')),
                                                   _mm256_cmpeq_epi8(x, _mm256_set1_epi8('/'))));
        v = _mm256_add_epi8(x, off);
        w = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
        w = _mm256_madd_epi16(w, _mm256_set1_epi32(0x00011000));
        w = _mm256_shuffle_epi8(w, pack);
        w0 = _mm256_castsi256_si128(w);
        w1 = _mm256_extracti128_si256(w, 1);
        _mm_storel_epi64((__m128i *)(void *)(o + i / 4 * 3), w0);
        t = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(w0, 8));
        memcpy(o + i / 4 * 3 + 8, &t, 4);
        _mm_storel_epi64((__m128i *)(void *)(o + i / 4 * 3 + 12), w1);
        t = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(w1, 8));
        memcpy(o + i / 4 * 3 + 20, &t, 4);
    }
    *seen |= (_mm256_movemask_epi8(url) ? RAW_URL : 0) | (_mm256_movemask_epi8(std) ? RAW_STD : 0);
    return i;
}
#endif

int dr__email_raw_decode_into(const char *in, size_t len, unsigned char *o, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t pads = 0, full, j = 0, i = 0;
    uint32_t seen = 0;

    pthread_once(&raw_once, raw_tables);
    while (len > 0 && in[len - 1] == '=' && pads < 2) {
        len--;
        pads++;
    }
    /* the length rules of base64url; standard base64 adds its own below */
    if ((pads && (len + pads) % 4 != 0) || len % 4 == 1) {
        return DR_EINVAL;
    }
    full = len - len % 4;
#ifdef RAW_SSSE3
    if (raw_avx2) {
        i = raw_blocks_avx2(s, full - full % 32, o, &seen);
    }
    if (raw_ssse3) { /* the last 16 characters, or from the block that stopped AVX2 */
        i += raw_blocks_ssse3(s + i, (full - i) - (full - i) % 16, o + i / 4 * 3, &seen);
    }
    j = i / 4 * 3;
#endif
    for (; i + 8 <= full; i += 8) {
        uint32_t x = raw_d0[s[i]] | raw_d1[s[i + 1]] | raw_d2[s[i + 2]] | raw_d3[s[i + 3]];
        uint32_t y = raw_d0[s[i + 4]] | raw_d1[s[i + 5]] | raw_d2[s[i + 6]] | raw_d3[s[i + 7]];

        if ((x | y) & RAW_BAD) {
            goto bad;
        }
        seen |= x | y;
        put3(o + j, x);
        put3(o + j + 3, y);
        j += 6;
    }
    for (; i < full; i += 4) {
        uint32_t x = raw_d0[s[i]] | raw_d1[s[i + 1]] | raw_d2[s[i + 2]] | raw_d3[s[i + 3]];

        if (x & RAW_BAD) {
            goto bad;
        }
        seen |= x;
        put3(o + j, x);
        j += 3;
    }
    if (len - full >= 2) {
        uint32_t x = raw_d0[s[i]] | raw_d1[s[i + 1]] | (len - full == 3 ? raw_d2[s[i + 2]] : 0);

        if (x & RAW_BAD) {
            goto bad;
        }
        seen |= x;
        o[j++] = (unsigned char)x;
        if (len - full == 3) {
            o[j++] = (unsigned char)(x >> 8);
        }
    }
    /* one alphabet only; standard base64 without padding comes in whole quartets */
    if ((seen & RAW_URL && seen & RAW_STD) || (seen & RAW_STD && !pads && len % 4 != 0)) {
        goto bad;
    }
    o[j] = '\0';
    *outlen = j;
    return DR_OK;
bad:
    return DR_EINVAL;
}

int dr__email_raw_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o = malloc(DR_BASE64_DECODED_MAX(len) + 1);
    int err;

    if (!o) {
        return DR_ENOMEM;
    }
    err = dr__email_raw_decode_into(in, len, o, outlen);
    if (err) {
        free(o);
        return err;
    }
    *out = o;
    return DR_OK;
}
