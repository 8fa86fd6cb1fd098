/*
 * dr__domain_is() (sender domains against the keys of the carrier and shop tables, labels found
 * once per domain) answers as the implementation before it did (strcmp/strchr per key, kept
 * below as ref_domain_is()), for domains built from the keys, random labels, dots and hyphens,
 * up to the 255 bytes a sender domain holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "processors/shipment/tracking_int.h"

static const char *const keys[] = {
    "ups.com",
    "fedex.com",
    "usps.com",
    "usps.gov",
    "dhl.",
    "dhlparcel.",
    "dhl-",
    "amazon.",
    "gls-",
    "gls.",
    "gls-group.eu",
    "post.ch",
    "hm.com",
    "me.com",
    "web.de",
    "bol.com",
    "x-kom.",
    "poste.it",
    "royalmail.co.uk",
    "auspost.com.au",
    "a.",
    "a",
    "-",
    ".",
    "com",
    "co.uk",
    "",
};

static const char *const parts[] = {
    "ups", "dhl", "gls", "amazon", "post", "hm",  "me",  "com", "co", "uk",    "de",     "mail",
    "x",   "a",   "-",   ".",      "..",   "kom", "web", "ch",  "eu", "group", "parcel", "ç",
};

/* The previous implementation, verbatim apart from its name. */
static int ref_domain_is(const char *domain, const char *key)
{
    size_t dl = strlen(domain), kl = strlen(key);

    if (!kl || !dl) {
        return 0;
    }
    if (key[kl - 1] == '.' || key[kl - 1] == '-') {
        /* a label prefix: "dhl." matches dhl.de and mail.dhl.com */
        if (strncmp(domain, key, kl) == 0) {
            return 1;
        }
        for (const char *p = strchr(domain, '.'); p; p = strchr(p + 1, '.')) {
            if (strncmp(p + 1, key, kl) == 0) {
                return 1;
            }
        }
        return 0;
    }
    return strcmp(domain, key) == 0 ||
           (dl > kl && domain[dl - kl - 1] == '.' && strcmp(domain + dl - kl, key) == 0);
}

static uint64_t rng = 0x853C49E6748FEA9Bull;

static size_t next_rand(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

static void same_answers(void **state)
{
    char d[256];
    size_t cases = 0, matches = 0, mismatches = 0;

    (void)state;
    for (int v = 0; v < 100000; v++) {
        size_t n = 0, want = v < 50000 ? 1 + next_rand(6) : 1 + next_rand(120);

        for (size_t k = 0; k < want; k++) {
            const char *p = next_rand(3) == 0 ? keys[next_rand(sizeof(keys) / sizeof(keys[0]))]
                                              : parts[next_rand(sizeof(parts) / sizeof(parts[0]))];
            size_t pl = strlen(p);
            if (n + pl + 1 > sizeof(d) - 1) {
                break;
            }
            memcpy(d + n, p, pl);
            n += pl;
            if (next_rand(2)) {
                d[n++] = '.';
            }
        }
        d[n] = '\0';
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            int want_is = ref_domain_is(d, keys[k]), got = dr__domain_is(d, keys[k]);
            cases++;
            matches += (size_t)want_is;
            if (want_is != got && mismatches++ < 10) {
                print_message("mismatch \"%s\" key \"%s\": %d, now %d\n", d, keys[k], want_is, got);
            }
        }
    }
    print_message("domains: %zu cases, %zu matches, %zu mismatches\n", cases, matches, mismatches);
    assert_true(matches > 10000);
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
