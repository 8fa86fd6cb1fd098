/* src/processors/vespa/response.c: /document/v1 answers → verdicts, messages, delays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/vespa.h"

static void classify(void **state)
{
    static const struct {
        enum dr_vespa_kind kind;
        int err;
        long status;
        enum dr_vespa_verdict want;
    } cases[] = {
        {DR_VESPA_PUT, DR_OK, 200, DR_VESPA_DONE},
        {DR_VESPA_UPDATE, DR_OK, 200, DR_VESPA_DONE},
        {DR_VESPA_REMOVE, DR_OK, 204, DR_VESPA_DONE},
        {DR_VESPA_REMOVE, DR_OK, 404, DR_VESPA_DONE},
        {DR_VESPA_PUT, DR_OK, 404, DR_VESPA_TRANSIENT},
        {DR_VESPA_UPDATE, DR_OK, 404, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 400, DR_VESPA_REJECTED},
        {DR_VESPA_REMOVE, DR_OK, 400, DR_VESPA_REJECTED},
        {DR_VESPA_PUT, DR_OK, 405, DR_VESPA_REJECTED},
        {DR_VESPA_UPDATE, DR_OK, 412, DR_VESPA_REJECTED},
        {DR_VESPA_PUT, DR_OK, 413, DR_VESPA_REJECTED},
        {DR_VESPA_PUT, DR_OK, 401, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 403, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 408, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 429, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 500, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 502, DR_VESPA_TRANSIENT},
        {DR_VESPA_REMOVE, DR_OK, 503, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 504, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 507, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_OK, 302, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_ETIMEOUT, 0, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_EIO, 0, DR_VESPA_TRANSIENT},
        {DR_VESPA_REMOVE, DR_EIO, 404, DR_VESPA_TRANSIENT}, /* no complete answer */
        {DR_VESPA_PUT, DR_ETOOBIG, 200, DR_VESPA_TRANSIENT},
        {DR_VESPA_PUT, DR_EUNAVAIL, 0, DR_VESPA_TRANSIENT},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum dr_vespa_verdict v = dr_vespa_classify(cases[i].kind, cases[i].err, cases[i].status);
        if (v != cases[i].want) {
            fail_msg("case %zu: %s err=%d status=%ld gave %d, want %d", i,
                     dr_vespa_kind_name(cases[i].kind), cases[i].err, cases[i].status, v,
                     cases[i].want);
        }
    }
}

static void error_message(void **state)
{
    const char *vespa = "{\"pathId\":\"/document/v1/ns/nope/docid/x\",\"id\":\"id:ns:nope::x\","
                        "\"message\":\"Document type nope does not exist\"}";
    const char *ctl = "{\"message\":\"line1\\nline2\\ttab\"}";
    const char *utf = "{\"message\":\"ab\xc3\xbc\xc3\xbc\"}";
    char out[64];

    dr_vespa_error_message(vespa, strlen(vespa), out, sizeof(out));
    assert_string_equal(out, "Document type nope does not exist");

    dr_vespa_error_message(ctl, strlen(ctl), out, sizeof(out));
    assert_string_equal(out, "line1 line2 tab");

    /* truncation never splits a UTF-8 sequence: "ab" + one of the two ü fits in 5 bytes + NUL */
    dr_vespa_error_message(utf, strlen(utf), out, 6);
    assert_true(strcmp(out, "ab\xc3\xbc") == 0 || strcmp(out, "ab") == 0);
    dr_vespa_error_message(utf, strlen(utf), out, 5);
    assert_true(strcmp(out, "ab") == 0 || strcmp(out, "ab\xc3\xbc") == 0);
    assert_int_not_equal((unsigned char)out[strlen(out) ? strlen(out) - 1 : 0], 0xc3);

    strcpy(out, "junk");
    dr_vespa_error_message("<html>502 Bad Gateway</html>", 28, out, sizeof(out));
    assert_string_equal(out, "");
    strcpy(out, "junk");
    dr_vespa_error_message("{\"pathId\":\"/x\"}", 15, out, sizeof(out));
    assert_string_equal(out, "");
    strcpy(out, "junk");
    dr_vespa_error_message("{\"message\":7}", 13, out, sizeof(out));
    assert_string_equal(out, "");
    strcpy(out, "junk");
    dr_vespa_error_message(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

static void retry_after(void **state)
{
    assert_int_equal(dr_vespa_retry_after_ms(NULL), -1);
    assert_int_equal(dr_vespa_retry_after_ms("0"), 0);
    assert_int_equal(dr_vespa_retry_after_ms("7"), 7000);
    assert_int_equal(dr_vespa_retry_after_ms("-3"), -1);
    assert_int_equal(dr_vespa_retry_after_ms("1.5"), -1);
    assert_int_equal(dr_vespa_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    assert_int_equal(dr_vespa_retry_after_ms("99999999999"), 86400 * 1000LL);
}

static void backoff(void **state)
{
    struct dr_vespa_conf c = {.backoff_ms = 100, .backoff_max_ms = 1000};

    assert_int_equal(dr_vespa_backoff_ms(&c, 0, 0.0), 50);
    assert_int_equal(dr_vespa_backoff_ms(&c, 0, 0.999999), 99);
    assert_int_equal(dr_vespa_backoff_ms(&c, 0, 1.0), 100);
    assert_int_equal(dr_vespa_backoff_ms(&c, 1, 1.0), 200);
    assert_int_equal(dr_vespa_backoff_ms(&c, 2, 1.0), 400);
    assert_int_equal(dr_vespa_backoff_ms(&c, 3, 1.0), 800);
    assert_int_equal(dr_vespa_backoff_ms(&c, 4, 1.0), 1000);
    assert_int_equal(dr_vespa_backoff_ms(&c, 60, 1.0), 1000); /* no overflow */
    assert_int_equal(dr_vespa_backoff_ms(&c, 60, 0.0), 500);
    assert_int_equal(dr_vespa_backoff_ms(&c, 1, -5.0), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify),
        cmocka_unit_test(error_message),
        cmocka_unit_test(retry_after),
        cmocka_unit_test(backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
