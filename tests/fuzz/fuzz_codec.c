/*
 * The small decoders every message passes through, against their own contracts:
 *   base64 / base64url  encode then decode gives the input back; decoding text gives the same
 *                       bytes through dr_base64*_decode() and dr_base64*_decode_into();
 *   RFC 3339 times      a time dr_parse_time() accepts, written by dr_format_time(), reads back
 *                       as the same millisecond;
 *   UTF-8               dr_utf8_valid() agrees with a plain reference decoder, dr_utf8_cut()
 *                       never cuts inside a sequence;
 *   integers            dr_parse_int() accepts exactly an optional '-' and digits in range.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/util.h"
#include "fuzz.h"

/* RFC 3629 by the table of well-formed byte sequences. */
static int utf8_ref(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }
        for (size_t j = 2; j <= k; j++) {
            if (s[i + j] < 0x80 || s[i + j] > 0xBF) {
                return 0;
            }
        }
        i += k + 1;
    }
    return 1;
}

static void base64(const uint8_t *data, size_t size, int url)
{
    char *enc = NULL;
    unsigned char *dec = NULL, *into;
    size_t elen = 0, dlen = 0, ilen = 0;
    int rc, rc2;

    FUZZ_CHECK((url ? dr_base64url_encode(data, size, &enc, &elen)
                    : dr_base64_encode(data, size, &enc, &elen)) == DR_OK,
               "encode");
    FUZZ_CHECK((url ? dr_base64url_decode(enc, elen, &dec, &dlen)
                    : dr_base64_decode(enc, elen, &dec, &dlen)) == DR_OK,
               "decoding what was encoded");
    FUZZ_CHECK(dlen == size && memcmp(dec, data, size) == 0, "round trip");
    free(enc);
    free(dec);
    dec = NULL;

    /* the input as base64 text */
    rc = url ? dr_base64url_decode((const char *)data, size, &dec, &dlen)
             : dr_base64_decode((const char *)data, size, &dec, &dlen);
    into = malloc(DR_BASE64_DECODED_MAX(size) + 1);
    FUZZ_CHECK(into, "out of memory");
    rc2 = url ? dr_base64url_decode_into((const char *)data, size, into, &ilen)
              : dr_base64_decode_into((const char *)data, size, into, &ilen);
    FUZZ_CHECK(rc == rc2, "decode %d, decode_into %d", rc, rc2);
    if (rc == DR_OK) {
        FUZZ_CHECK(dlen == ilen && memcmp(dec, into, dlen) == 0, "decoders disagree");
        FUZZ_CHECK(dlen <= DR_BASE64_DECODED_MAX(size), "decoded past the bound");
    }
    free(dec);
    free(into);
}

static void text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    int64_t ms, again, v = 7;
    char out[32];
    int rc;

    FUZZ_CHECK(s, "out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    if (dr_parse_time(s, &ms) == DR_OK) {
        dr_format_time(ms, out);
        FUZZ_CHECK(dr_parse_time(out, &again) == DR_OK && again == ms, "%s is %lld ms, written %s",
                   s, (long long)ms, out);
    }
    rc = dr_parse_int(s, -1000000, 1000000, &v);
    if (rc == DR_OK) {
        size_t i = s[0] == '-';
        FUZZ_CHECK(s[i] != '\0', "accepted no digits");
        for (; s[i]; i++) {
            FUZZ_CHECK(s[i] >= '0' && s[i] <= '9', "accepted '%c'", s[i]);
        }
        FUZZ_CHECK(v >= -1000000 && v <= 1000000 && v == strtoll(s, NULL, 10), "value");
    } else {
        FUZZ_CHECK(v == 7, "refused but wrote *out");
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int valid = dr_utf8_valid(data, size);

    FUZZ_CHECK(valid == utf8_ref(data, size), "dr_utf8_valid %d, reference %d", valid,
               utf8_ref(data, size));
    FUZZ_CHECK(dr_utf8_valid_text(data, size) == (valid && !memchr(data, 0, size)),
               "dr_utf8_valid_text");
    if (valid) {
        for (size_t max = 0; max <= size && max < 64; max++) {
            size_t cut = dr_utf8_cut((const char *)data, size, max);
            FUZZ_CHECK(cut <= max && utf8_ref(data, cut), "cut at %zu of %zu", cut, max);
        }
    }
    base64(data, size, 0);
    base64(data, size, 1);
    text(data, size);
    return 0;
}
