/*
 * Real carrier and shop notification emails (tests/data/shipment/mail_and_packages, redacted
 * upstream) decoded with GMime and read by dr_shipment_extract(): carrier, status, order ids and
 * tracking numbers as expectations.json gives them. The numbers in these emails are redacted
 * fakes, so only their extraction is checked, not their check digits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/shipment.h"
#include "mime_text.h"

static char *read_file(const char *path)
{
    gchar *data = NULL;
    gsize n;

    if (!g_file_get_contents(path, &data, &n, NULL)) {
        return NULL;
    }
    char *copy = strdup(data);
    g_free(data);
    return copy;
}

static int has_string(const cJSON *arr, const char *key, const char *value)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(it, key) : it;
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The status name an upstream fixture label stands for, or NULL to skip. */
static const char *expected_status(const char *label)
{
    enum dr_shipment_status s;

    if (strcmp(label, "shipped") == 0) {
        return "in_transit";
    }
    if (dr_shipment_status_parse(label, &s) == DR_OK) {
        return label;
    }
    if (strstr(label, "digest") || strstr(label, "not a parcel status")) {
        return "unknown";
    }
    return NULL;
}

static void carrier_emails(void **state)
{
    const char *dir = getenv("DR_TEST_DATA");
    char path[1024];
    char *json;
    cJSON *exp;
    const cJSON *c;
    int cases = 0, checks = 0;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/shipment/mail_and_packages/expectations.json", dir);
    json = read_file(path);
    assert_non_null(json);
    exp = cJSON_Parse(json);
    free(json);
    assert_non_null(exp);

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(exp, "cases"))
    {
        const char *fixture = cJSON_GetObjectItemCaseSensitive(c, "fixture")->valuestring;
        const char *carrier = cJSON_GetObjectItemCaseSensitive(c, "carrier")->valuestring;
        const char *label = cJSON_GetObjectItemCaseSensitive(c, "status_label")->valuestring;
        const cJSON *asserted = cJSON_GetObjectItemCaseSensitive(c, "asserted"), *v;
        const char *base = strrchr(fixture, '/') ? strrchr(fixture, '/') + 1 : fixture;
        const char *want_status = expected_status(label);
        struct mime_text m;
        cJSON *out = NULL;
        const cJSON *hint, *status;

        snprintf(path, sizeof(path), "%s/shipment/mail_and_packages/%s", dir, base);
        assert_int_equal(mime_text_load(path, &m), 0);
        assert_int_equal(dr_shipment_extract(m.subject, m.from, m.body, m.body_len, &out), DR_OK);
        hint = cJSON_GetObjectItemCaseSensitive(out, "carrier_hint");
        status = cJSON_GetObjectItemCaseSensitive(out, "status");
        if (!cJSON_IsString(hint) || strcmp(hint->valuestring, carrier) != 0) {
            print_error("%s: carrier %s, expected %s\n", base,
                        cJSON_IsString(hint) ? hint->valuestring : "null", carrier);
            fail();
        }
        checks++;
        if (want_status) {
            if (strcmp(status->valuestring, want_status) != 0) {
                print_error("%s: status %s, expected %s\n", base, status->valuestring, want_status);
                fail();
            }
            checks++;
        }
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(asserted, "amazon_order"))
        {
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(out, "order_ids");
            assert_true(has_string(ids, NULL, v->valuestring));
            /* the order the email is about comes first */
            assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, v->valuestring);
            checks++;
        }
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(asserted, "tracking"))
        {
            if (!has_string(cJSON_GetObjectItemCaseSensitive(out, "shipments"), "tracking_number",
                            v->valuestring)) {
                char *dump = cJSON_PrintUnformatted(out);
                print_error("%s: tracking number %s not found: %s\n", base, v->valuestring, dump);
                free(dump);
                fail();
            }
            checks++;
        }
        /* a shop's order number is never taken for a tracking number */
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(out, "order_ids"))
        {
            assert_false(has_string(cJSON_GetObjectItemCaseSensitive(out, "shipments"),
                                    "tracking_number", v->valuestring));
        }
        cJSON_Delete(out);
        mime_text_free(&m);
        cases++;
    }
    cJSON_Delete(exp);
    print_message("emails: %d cases, %d checks\n", cases, checks);
    assert_true(cases >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(carrier_emails),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dr_shipment_cleanup();
    mime_text_shutdown();
    return rc;
}
