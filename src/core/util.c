#include "dr/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "dr/err.h"

static void oom(void)
{
    static const char msg[] = "{\"level\":\"error\",\"msg\":\"out of memory\"}\n";
    fwrite(msg, 1, sizeof(msg) - 1, stderr);
    abort();
}

void *dr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        oom();
    }
    return p;
}

/* Up to this many bytes, malloc() + memset(): glibc's calloc() (2.36) never takes a block from
 * the thread's cache, so every small calloc went through the shared bins, and the message path
 * makes several per message. Larger ones stay with calloc(), which can skip zeroing fresh pages. */
#define XCALLOC_CACHED 1024

void *dr_xcalloc(size_t n, size_t sz)
{
    void *p;

    n = n ? n : 1;
    sz = sz ? sz : 1;
    if (sz <= XCALLOC_CACHED / n) {
        p = malloc(n * sz);
        if (p) {
            memset(p, 0, n * sz);
        }
    } else {
        p = calloc(n, sz);
    }
    if (!p) {
        oom();
    }
    return p;
}

void *dr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        oom();
    }
    return q;
}

char *dr_xstrdup(const char *s)
{
    return s ? dr_xstrndup(s, strlen(s)) : NULL;
}

char *dr_xstrndup(const char *s, size_t n)
{
    char *p;

    if (!s) {
        return NULL;
    }
    p = dr_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

const char *dr_msgid_bare(const char *s, size_t *len)
{
    size_t n;

    while (*s == ' ' || *s == '\t' || *s == '<') {
        s++;
    }
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '>')) {
        n--;
    }
    *len = n;
    return s;
}

int64_t dr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dr_mono_ms(void)
{
    return (int64_t)(dr_mono_ns() / 1000000);
}

uint64_t dr_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void dr_format_time(int64_t epoch_ms, char out[32])
{
    time_t secs = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    struct tm tm;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    char tmp[96];

    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    memcpy(out, tmp, 31);
    out[31] = '\0';
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (**p < '0' || **p > '9') {
            return -1;
        }
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to the first of month m (1..12) of year y, in the proleptic Gregorian
 * calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

int dr_parse_time(const char *s, int64_t *epoch_ms)
{
    int Y, M, D, h, m, sec, ms = 0, offh = 0, offm = 0, sign = 0;
    const char *p = s;
    int64_t t;

    if (!s || digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' ')) {
        return DR_EINVAL;
    }
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
        digits(&p, 2, &sec)) {
        return DR_EINVAL;
    }
    if (*p == '.') {
        int scale = 100;
        p++;
        if (*p < '0' || *p > '9') {
            return DR_EINVAL;
        }
        while (*p >= '0' && *p <= '9') {
            ms += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (digits(&p, 2, &offh) || *p++ != ':' || digits(&p, 2, &offm)) {
            return DR_EINVAL;
        }
    } else {
        return DR_EINVAL;
    }
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) {
        return DR_EINVAL;
    }
    /* what timegm() makes of it (a day past the month's end is in the next month, second 60
     * the next minute's first), without its locking and normalising */
    t = days_from_civil(Y, M) + D - 1;
    t = t * 86400 + h * 3600 + m * 60 + sec;
    t -= (int64_t)sign * (offh * 3600 + offm * 60);
    *epoch_ms = t * 1000 + ms;
    return DR_OK;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int encode(const char *alpha, int pad, const void *in, size_t len, char **out,
                  size_t *outlen)
{
    const unsigned char *s = in;
    size_t n = 4 * ((len + 2) / 3), j = 0;
    char *o = malloc(n + 1);

    if (!o) {
        return DR_ENOMEM;
    }
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        size_t rem = len - i;
        if (rem > 1) {
            v |= (uint32_t)s[i + 1] << 8;
        }
        if (rem > 2) {
            v |= s[i + 2];
        }
        o[j++] = alpha[(v >> 18) & 63];
        o[j++] = alpha[(v >> 12) & 63];
        if (rem > 1) {
            o[j++] = alpha[(v >> 6) & 63];
        } else if (pad) {
            o[j++] = '=';
        }
        if (rem > 2) {
            o[j++] = alpha[v & 63];
        } else if (pad) {
            o[j++] = '=';
        }
    }
    o[j] = '\0';
    *out = o;
    if (outlen) {
        *outlen = j;
    }
    return DR_OK;
}

int dr_base64_encode(const void *in, size_t len, char **out, size_t *outlen)
{
    return encode(b64std, 1, in, len, out, outlen);
}

int dr_base64url_encode(const void *in, size_t len, char **out, size_t *outlen)
{
    return encode(b64url, 0, in, len, out, outlen);
}

/* Decoding tables: 0-63 for the alphabet, 0xff for anything else. */
static unsigned char dec_std[256], dec_url[256];
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void build_dec(void)
{
    memset(dec_std, 0xff, sizeof(dec_std));
    memset(dec_url, 0xff, sizeof(dec_url));
    for (int i = 0; i < 64; i++) {
        dec_std[(unsigned char)b64std[i]] = (unsigned char)i;
        dec_url[(unsigned char)b64url[i]] = (unsigned char)i;
    }
}

static int decode_into(int url, const char *in, size_t len, unsigned char *o, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    const unsigned char *t;
    size_t j = 0, pads = 0, i = 0, full;

    pthread_once(&dec_once, build_dec);
    t = url ? dec_url : dec_std;
    while (len > 0 && in[len - 1] == '=' && pads < 2) {
        len--;
        pads++;
    }
    if (!url && pads == 0 && len % 4 != 0) {
        return DR_EINVAL;
    }
    if (pads && (len + pads) % 4 != 0) {
        return DR_EINVAL;
    }
    if (len % 4 == 1) {
        return DR_EINVAL;
    }
    /* four characters to three bytes at a time; any invalid character sets a high bit */
    full = len - len % 4;
    for (; i < full; i += 4) {
        unsigned a = t[s[i]], b = t[s[i + 1]], c = t[s[i + 2]], d = t[s[i + 3]];
        if ((a | b | c | d) & 0x80) {
            return DR_EINVAL;
        }
        uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        o[j++] = (unsigned char)(v >> 16);
        o[j++] = (unsigned char)(v >> 8);
        o[j++] = (unsigned char)v;
    }
    if (len - full >= 2) {
        unsigned a = t[s[i]], b = t[s[i + 1]], c = len - full == 3 ? t[s[i + 2]] : 0;
        if ((a | b | c) & 0x80) {
            return DR_EINVAL;
        }
        o[j++] = (unsigned char)((a << 2) | (b >> 4));
        if (len - full == 3) {
            o[j++] = (unsigned char)(((b & 15) << 4) | (c >> 2));
        }
    }
    *outlen = j;
    return DR_OK;
}

static int decode(int url, const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o = malloc(DR_BASE64_DECODED_MAX(len) + 1);
    size_t j;

    if (!o) {
        return DR_ENOMEM;
    }
    if (decode_into(url, in, len, o, &j)) {
        free(o);
        return DR_EINVAL;
    }
    o[j] = '\0';
    *out = o;
    *outlen = j;
    return DR_OK;
}

int dr_base64_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    return decode_into(0, in, len, out, outlen);
}

int dr_base64url_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    return decode_into(1, in, len, out, outlen);
}

int dr_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    return decode(0, in, len, out, outlen);
}

int dr_base64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    return decode(1, in, len, out, outlen);
}

int dr_base64_data_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    /* what Pub/Sub accepts */
    if (decode_into(0, in, len, out, outlen) == DR_OK) {
        return DR_OK;
    }
    return decode_into(1, in, len, out, outlen);
}

int dr_base64_data_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    if (decode(0, in, len, out, outlen) == DR_OK) {
        return DR_OK;
    }
    return decode(1, in, len, out, outlen);
}

void dr_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int dr_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, alen) == 0;
}

static void random_hex(unsigned char *r, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    if (RAND_bytes(r, (int)n) != 1) {
        for (size_t i = 0; i < n; i++) {
            r[i] = (unsigned char)(dr_random_unit() * 256);
        }
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
}

void dr_instance_name(int port, char *out, size_t outsz)
{
    const char *id = getenv("DR_INSTANCE_ID");
    char host[256] = "localhost";

    if (id && *id) {
        snprintf(out, outsz, "%s", id);
        return;
    }
    gethostname(host, sizeof(host) - 1);
    snprintf(out, outsz, "%s:%d", host, port);
}

void dr_random_id(char out[33])
{
    unsigned char r[16];

    random_hex(r, sizeof(r), out);
    out[32] = '\0';
}

void dr_time_id(char out[33])
{
    unsigned char r[10];

    snprintf(out, 13, "%012llx", (unsigned long long)dr_now_ms() & 0xffffffffffffULL);
    random_hex(r, sizeof(r), out + 12);
    out[32] = '\0';
}

uint64_t dr_hash_more(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ULL;
    }
    return h;
}

uint64_t dr_hash_str(const char *s)
{
    uint64_t h = DR_HASH_INIT;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

double dr_random_unit(void)
{
    static _Thread_local uint64_t s;
    if (!s) {
        s = dr_mono_ns() ^ (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
    }
    /* xorshift64* */
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (double)((s * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

int dr_parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s) {
        return DR_EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) {
        return DR_EINVAL;
    }
    *out = v;
    return DR_OK;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int dr_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;

    /* strtoll() would also skip white space and take a '+' */
    if (!s || !(is_digit(s[0]) || (s[0] == '-' && is_digit(s[1]))) ||
        dr_parse_i64(s, &v) != DR_OK || v < min || v > max) {
        return DR_EINVAL;
    }
    *out = v;
    return DR_OK;
}

/* The rules of g_utf8_validate() (no overlong form, no surrogate, nothing above U+10FFFF), NUL
 * allowed or not; ASCII eight bytes at a time, as most text is nothing else. */
static int utf8_valid(const unsigned char *u, size_t n, int allow_nul)
{
    const uint64_t nul_bits = allow_nul ? 0 : UINT64_C(0x8080808080808080);
    size_t k = 0;

    while (k < n) {
        unsigned c;

        for (; k + 8 <= n; k += 8) {
            uint64_t w;
            memcpy(&w, u + k, 8);
            if ((w & UINT64_C(0x8080808080808080)) ||
                ((w - UINT64_C(0x0101010101010101)) & ~w & nul_bits)) {
                break;
            }
        }
        if (k == n) {
            break;
        }
        /* one character, then the eight-byte steps again */
        c = u[k];
        if (c < 0x80) {
            if (c == 0 && !allow_nul) {
                return 0;
            }
            k++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (n - k < 2 || (u[k + 1] & 0xC0) != 0x80) {
                return 0;
            }
            k += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;

            if (n - k < 3 || u[k + 1] < lo || u[k + 1] > hi || (u[k + 2] & 0xC0) != 0x80) {
                return 0;
            }
            k += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;

            if (n - k < 4 || u[k + 1] < lo || u[k + 1] > hi || (u[k + 2] & 0xC0) != 0x80 ||
                (u[k + 3] & 0xC0) != 0x80) {
                return 0;
            }
            k += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

int dr_utf8_valid(const void *s, size_t n)
{
    return utf8_valid(s, n, 1);
}

int dr_utf8_valid_text(const void *s, size_t n)
{
    return utf8_valid(s, n, 0);
}

size_t dr_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

size_t dr_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
