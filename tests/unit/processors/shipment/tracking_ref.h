/*
 * Test helper: dr__validate_compact() as src/processors/shipment/tracking.c had it before the
 * first-characters and length prefilter (commit 6d44281): every format's pattern tried on every
 * number. Kept verbatim apart from names, with its own compilation of the format table, as the
 * reference the current one is compared with. Since then it refuses, like the current one,
 * numbers of one repeated digit and serials of one repeated digit under a check digit
 * (ref_degenerate()): a rule of validation, not of the prefilter.
 */
#ifndef TEST_SHIPMENT_TRACKING_REF_H
#define TEST_SHIPMENT_TRACKING_REF_H

#include <string.h>

#include "dr/err.h"
#include "processors/shipment/tracking_int.h"

struct ref_compiled {
    pcre2_code *code;
    int serial, check, country;
    uint32_t minlen;
};

static struct ref_compiled ref_formats[64];

static int ref_group(pcre2_code *code, const char *name)
{
    int n = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
    return n > 0 ? n : -1;
}

/* Compiles the format table as tracking.c does. 0 on success. */
static int ref_compile(void)
{
    for (size_t i = 0; i < dr__format_count && i < 64; i++) {
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)dr__formats[i].regex, PCRE2_ZERO_TERMINATED,
                                         PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY,
                                         &errcode, &erroff, NULL);
        if (!code) {
            return -1;
        }
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        ref_formats[i].code = code;
        ref_formats[i].serial = ref_group(code, "SerialNumber");
        ref_formats[i].check = ref_group(code, "CheckDigit");
        ref_formats[i].country = ref_group(code, "CountryCode");
        if (pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &ref_formats[i].minlen) != 0) {
            ref_formats[i].minlen = 0;
        }
    }
    return 0;
}

static void ref_free(void)
{
    for (size_t i = 0; i < 64; i++) {
        pcre2_code_free(ref_formats[i].code);
        ref_formats[i].code = NULL;
    }
}

/* Span of group g in the last match, or 0 when the group did not take part. */
static int ref_group_span(pcre2_match_data *md, int g, size_t *start, size_t *len)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

    if (g < 0 || (uint32_t)g >= pcre2_get_ovector_count(md) || ov[2 * g] == PCRE2_UNSET) {
        return 0;
    }
    *start = ov[2 * g];
    *len = ov[2 * g + 1] - ov[2 * g];
    return 1;
}

static int ref_checksum_ok(const struct dr__format *f, const char *s, size_t sstart, size_t slen,
                           char check)
{
    char serial[DR_TRACKING_MAX + 8];
    size_t n = 0, plen = f->prepend ? strlen(f->prepend) : 0;
    int want;

    if (slen > DR_TRACKING_MAX) {
        return 0;
    }
    if (plen && (slen < plen || memcmp(s + sstart, f->prepend, plen) != 0)) {
        memcpy(serial, f->prepend, plen);
        n = plen;
    }
    memcpy(serial + n, s + sstart, slen);
    n += slen;

    switch (f->checksum) {
    case DR__CK_MOD10:
        want = dr__check_mod10(serial, n, f->evens, f->odds, f->reverse);
        break;
    case DR__CK_MOD7:
        want = dr__check_mod7(serial, n);
        break;
    case DR__CK_LUHN:
        want = dr__check_luhn(serial, n);
        break;
    case DR__CK_S10:
        want = dr__check_s10(serial, n);
        break;
    case DR__CK_SUM_PRODUCT:
        want = dr__check_sum_product(serial, n, f->weights, f->mod1, f->mod2);
        break;
    case DR__CK_MOD37_36:
        want = dr__check_mod37_36(serial, n);
        break;
    default:
        return 1;
    }
    return want >= 0 && want == check;
}

/* whole: s is one digit repeated and nothing else; else s holds at least 6 digits, all the same
 * (letters aside). */
static int ref_degenerate(const char *s, size_t n, int whole)
{
    size_t digits = 0;
    char first = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            if (whole) {
                return 0;
            }
            continue;
        }
        if (!first) {
            first = s[i];
        } else if (s[i] != first) {
            return 0;
        }
        digits++;
    }
    return whole ? digits > 0 : digits >= 6;
}

static size_t ref_validate_compact(const char *s, size_t n, pcre2_match_data *md,
                                   struct dr_tracking_match *out, size_t *idx, size_t max)
{
    size_t found = 0;

    if (n == 0 || n > DR_TRACKING_MAX || ref_degenerate(s, n, 1)) {
        return 0;
    }
    for (size_t i = 0; i < dr__format_count && found < max; i++) {
        const struct dr__format *f = &dr__formats[i];
        const struct ref_compiled *c = &ref_formats[i];
        size_t sstart, slen, cstart = 0, clen = 0, ccstart, cclen;
        const char *opname = NULL;
        char cc[3] = "";

        if (n < c->minlen || pcre2_match(c->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL) < 0) {
            continue;
        }
        if (!ref_group_span(md, c->serial, &sstart, &slen)) {
            continue;
        }
        if (f->checksum != DR__CK_NONE) {
            if (ref_degenerate(s + sstart, slen, 0) ||
                !ref_group_span(md, c->check, &cstart, &clen) || clen != 1 ||
                !ref_checksum_ok(f, s, sstart, slen, s[cstart])) {
                continue;
            }
        }
        if (f->s10_country) {
            if (!ref_group_span(md, c->country, &ccstart, &cclen) || cclen != 2) {
                continue;
            }
            memcpy(cc, s + ccstart, 2);
            cc[2] = '\0';
            opname = dr__s10_operator(cc);
            if (!opname) {
                continue;
            }
        }
        struct dr_tracking_match *m = &out[found];
        memset(m, 0, sizeof(*m));
        memcpy(m->number, s, n);
        m->number[n] = '\0';
        m->carrier = f->s10_country ? dr__s10_carrier(cc) : f->carrier;
        m->format = f->id;
        m->format_name = f->name;
        m->check_pos = f->checksum != DR__CK_NONE ? (int)cstart : -1;
        memcpy(m->country, cc, sizeof(cc));
        m->operator_name = opname;
        if (idx) {
            idx[found] = i;
        }
        found++;
    }
    return found;
}

#endif
