/*
 * Check digit algorithms of parcel carriers, as tracking_number_data's CHECKSUM_ALGORITHMS.md
 * defines them. Pure functions: thread-safe.
 */
#include "processors/shipment/tracking_int.h"

static int digit_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : -1;
}

int dr__check_mod10(const char *serial, size_t n, int evens, int odds, int reverse)
{
    long total = 0;

    for (size_t i = 0; i < n; i++) {
        char c = serial[reverse ? n - 1 - i : i];
        long x;

        if (c >= '0' && c <= '9') {
            x = c - '0';
        } else if (c >= 'A' && c <= 'Z') {
            x = (c - 3) % 10;
        } else {
            return -1;
        }
        x *= (i % 2 == 0) ? evens : odds;
        total += x;
    }
    return '0' + (int)((10 - total % 10) % 10);
}

int dr__check_mod7(const char *serial, size_t n)
{
    unsigned rem = 0;

    for (size_t i = 0; i < n; i++) {
        int d = digit_value(serial[i]);
        if (d < 0) {
            return -1;
        }
        rem = (rem * 10 + (unsigned)d) % 7;
    }
    return '0' + (int)rem;
}

int dr__check_luhn(const char *serial, size_t n)
{
    int total = 0;

    for (size_t i = 0; i < n; i++) {
        int d = digit_value(serial[n - 1 - i]);
        if (d < 0) {
            return -1;
        }
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        total += d;
    }
    return '0' + (10 - total % 10) % 10;
}

int dr__check_s10(const char *serial, size_t n)
{
    static const int weights[] = {8, 6, 4, 2, 3, 5, 9, 7};
    int total = 0, rem;

    if (n != sizeof(weights) / sizeof(weights[0])) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int d = digit_value(serial[i]);
        if (d < 0) {
            return -1;
        }
        total += d * weights[i];
    }
    rem = total % 11;
    if (rem == 0) {
        return '5';
    }
    if (rem == 1) {
        return '0';
    }
    return '0' + 11 - rem;
}

int dr__check_sum_product(const char *serial, size_t n, const char *weights, int m1, int m2)
{
    long total = 0;

    /* Like the reference (Ruby zip), characters past the last weight weigh nothing. */
    for (size_t i = 0; i < n; i++) {
        int d = digit_value(serial[i]);
        if (d < 0) {
            return -1;
        }
        if (weights[i] == '\0') {
            break;
        }
        total += (long)d * (weights[i] - '0');
    }
    return '0' + (int)(total % m1 % m2);
}

int dr__check_mod37_36(const char *serial, size_t n)
{
    const int mod = 36;
    int cd = mod;

    for (size_t i = 0; i < n; i++) {
        char c = serial[i];
        int val;

        if (c >= '0' && c <= '9') {
            val = c - '0';
        } else if (c >= 'A' && c <= 'Z') {
            val = c - 'A' + 10;
        } else {
            return -1;
        }
        cd += val;
        if (cd > mod) {
            cd -= mod;
        }
        cd *= 2;
        if (cd > mod) {
            cd -= mod + 1;
        }
    }
    cd = mod + 1 - cd;
    if (cd == mod) {
        cd = 0;
    }
    return cd < 10 ? '0' + cd : 'A' + cd - 10;
}
