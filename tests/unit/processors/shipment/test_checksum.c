/* Check digit algorithms (src/processors/shipment/checksum.c) against worked examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "processors/shipment/tracking_int.h"

#define S(x) x, strlen(x)

static void mod10_weights(void **state)
{
    /* UPS 1Z879E930346834440: letters weigh (ord - 3) % 10, odd positions double */
    assert_int_equal(dr__check_mod10(S("879E93034683444"), 1, 2, 0), '0');
    assert_int_equal(dr__check_mod10(S("8V92A7036720302"), 1, 2, 0), '4');
    /* Canada Post 0073938000549297: even positions triple */
    assert_int_equal(dr__check_mod10(S("007393800054929"), 3, 1, 0), '7');
    /* FedEx Ground 568283610012734 */
    assert_int_equal(dr__check_mod10(S("56828361001273"), 1, 3, 0), '4');
    /* USPS IMpb N weighs from the right */
    assert_int_equal(dr__check_mod10(S("940011120620640626078"), 3, 1, 1), '7');
    assert_int_equal(dr__check_mod10(S("12"), 3, 1, 0), '5'); /* 1*3 + 2 = 5 */
    assert_int_equal(dr__check_mod10(S("12"), 3, 1, 1), '3'); /* 2*3 + 1 = 7 */
    /* sum % 10 == 0 gives 0, not 10 */
    assert_int_equal(dr__check_mod10(S("0000"), 3, 1, 0), '0');
    assert_int_equal(dr__check_mod10(S("12a4"), 1, 2, 0), -1);
}

static void mod7(void **state)
{
    assert_int_equal(dr__check_mod7(S("109925599")), '0');
    assert_int_equal(dr__check_mod7(S("331881001")), '4'); /* 3318810014 */
    assert_int_equal(dr__check_mod7(S("331881002")), '5'); /* 3318810025 */
    /* larger than 32 bits: 9999999999 % 7 == 3 */
    assert_int_equal(dr__check_mod7(S("9999999999")), '3');
    assert_int_equal(dr__check_mod7(S("12A")), -1);
}

static void luhn(void **state)
{
    assert_int_equal(dr__check_luhn(S("7992739871")), '3');  /* the classic 79927398713 */
    assert_int_equal(dr__check_luhn(S("32059546393")), '8'); /* Purolator 320595463938 */
    assert_int_equal(dr__check_luhn(S("0720956276")), '3');  /* Old Dominion 07209562763 */
    assert_int_equal(dr__check_luhn(S("41234567890")), '5'); /* constructed */
    assert_int_equal(dr__check_luhn(S("0")), '0');
    assert_int_equal(dr__check_luhn(S("12-3")), -1);
}

static void s10(void **state)
{
    assert_int_equal(dr__check_s10(S("12345678")), '5'); /* RB123456785GB */
    assert_int_equal(dr__check_s10(S("00000001")), '4'); /* 7 % 11 = 7 -> 11 - 7 */
    assert_int_equal(dr__check_s10(S("00000000")), '5'); /* remainder 0 -> 5 */
    assert_int_equal(dr__check_s10(S("00000050")), '0'); /* 45 % 11 = 1 -> 0 */
    assert_int_equal(dr__check_s10(S("1234567")), -1);   /* eight digits exactly */
    assert_int_equal(dr__check_s10(S("1234567X")), -1);
}

static void sum_product(void **state)
{
    assert_int_equal(dr__check_sum_product(S("79053531231"), "31731731731", 11, 10), '7');
    assert_int_equal(dr__check_sum_product(S("97436766271"), "31731731731", 11, 10), '0');
    /* FedEx 34: last 14 digits of 1001921334250001000300779017972697 */
    assert_int_equal(dr__check_sum_product(S("0077901797269"), "1731731731731", 11, 10), '7');
    assert_int_equal(dr__check_sum_product(S("7905353123A"), "31731731731", 11, 10), -1);
}

static void mod37_36(void **state)
{
    /* DPD examples: 09 9800 0002 0033 F, 0998 0000 0200 34D, 00 81827 0998 0000 0200 33 350 276 C
     */
    assert_int_equal(dr__check_mod37_36(S("09980000020033")), 'F');
    assert_int_equal(dr__check_mod37_36(S("09980000020034")), 'D');
    assert_int_equal(dr__check_mod37_36(S("008182709980000020033350276")), 'C');
    assert_int_equal(dr__check_mod37_36(S("008182709980000020045327276")), 'N');
    assert_int_equal(dr__check_mod37_36(S("13490015284111")), 'V');
    assert_int_equal(dr__check_mod37_36(S("01234567890123")), '3');
    assert_int_equal(dr__check_mod37_36(S("0998-000")), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mod10_weights), cmocka_unit_test(mod7),        cmocka_unit_test(luhn),
        cmocka_unit_test(s10),           cmocka_unit_test(sum_product), cmocka_unit_test(mod37_36),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
