/* Tests src/processors/contacts/contacts.c: validation and the index operations it emits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/json.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/util.h"

extern const struct dr_processor dr_processor_contacts;

static void run_msg(const char *json, struct dr_result *res)
{
    struct dr_msg *m = dr_msg_create("m1", "contact-updates", json, strlen(json), 1);

    dr_msg_finish(m, "contact", 0);
    dr_result_init(res);
    dr_processor_contacts.process(NULL, m, res);
    dr_msg_unref(m);
}

static cJSON *only_emit(const struct dr_result *res)
{
    cJSON *j;

    assert_int_equal(res->outcome, DR_OUTCOME_OK);
    assert_int_equal(res->nemits, 1);
    assert_string_equal(res->emits[0].topic, "vespa-index");
    j = dr_json_parse(res->emits[0].data, res->emits[0].len);
    assert_non_null(j);
    return j;
}

static void test_upsert_indexed(void **state)
{
    static const char js[] =
        "{\"user_id\":\"u1\",\"org_id\":\"o1\",\"contact_id\":\"c-9\",\"operation\":\"upsert\","
        "\"contact\":{\"name\":\"Kim Lee\",\"company\":\"Example\",\"emails\":[\"Kim@Example.COM\","
        "{\"address\":\"kim.lee@work.example.org\",\"type\":\"work\"}],"
        "\"phones\":[\"+1 (555) 010-0100\",{\"number\":\"+44 20 7946 0000\"}],\"x_custom\":[1]}}";
    struct dr_result res;
    cJSON *op, *f;

    run_msg(js, &res);
    op = only_emit(&res);
    assert_string_equal(dr_json_str(op, "operation"), "put");
    assert_string_equal(dr_json_str(op, "doctype"), "contact");
    assert_string_equal(dr_json_str(op, "docid"), "u1:c-9");
    assert_string_equal(res.emits[0].ordering_key, "u1:c-9");
    f = cJSON_GetObjectItemCaseSensitive(op, "fields");
    assert_string_equal(dr_json_str(f, "name"), "Kim Lee");
    assert_string_equal(dr_json_str(f, "org_id"), "o1");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f, "emails"), 0)->valuestring,
        "kim@example.com");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "emails")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "phones")), 2);
    assert_null(cJSON_GetObjectItemCaseSensitive(f, "x_custom"));
    cJSON_Delete(op);
    dr_result_cleanup(&res);
}

static void test_delete_removes(void **state)
{
    struct dr_result res;
    cJSON *op;

    run_msg("{\"user_id\":\"u1\",\"contact_id\":\"c-9\",\"operation\":\"delete\"}", &res);
    op = only_emit(&res);
    assert_string_equal(dr_json_str(op, "operation"), "remove");
    assert_string_equal(dr_json_str(op, "docid"), "u1:c-9");
    assert_null(cJSON_GetObjectItemCaseSensitive(op, "fields"));
    cJSON_Delete(op);
    dr_result_cleanup(&res);
}

static void test_invalid_rejected(void **state)
{
    static const char *const bad[] = {
        "{\"contact_id\":\"c\",\"contact\":{}}",
        "{\"user_id\":\"u\",\"contact\":{}}",
        "{\"user_id\":\"\",\"contact_id\":\"c\",\"contact\":{}}",
        "{\"user_id\":7,\"contact_id\":\"c\",\"contact\":{}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\"}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"operation\":\"merge\",\"contact\":{}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"name\":42}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"name\":\"a\\u0001b\"}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"not an address\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"a@b\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"a@@b.com\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"a@b..com\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"<a@b.com>\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[\"a@-b.com\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":\"a@b.com\"}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[{\"type\":\"x\"}]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"phones\":[\"call me\"]}}",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"phones\":[5550100]}}",
        "[1]",
        "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":[]}",
    };
    struct dr_result res;

    for (size_t i = 0; i < DR_ARRAY_LEN(bad); i++) {
        run_msg(bad[i], &res);
        if (res.outcome != DR_OUTCOME_REJECT) {
            fprintf(stderr, "case %zu accepted\n", i);
        }
        assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
        assert_string_equal(res.reason, "invalid_contact");
        assert_true(res.error[0] != '\0');
        assert_int_equal(res.nemits, 0);
        dr_result_cleanup(&res);
    }
}

static void test_size_bounds(void **state)
{
    struct dr_buf b;
    struct dr_result res;

    dr_buf_init(&b, 1 << 20);
    dr_buf_appends(&b, "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"emails\":[");
    for (int i = 0; i < 101; i++) {
        dr_buf_printf(&b, "%s\"a%d@example.com\"", i ? "," : "", i);
    }
    dr_buf_appends(&b, "]}}");
    run_msg(b.data, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_contact");
    assert_non_null(strstr(res.error, "emails"));
    dr_result_cleanup(&res);
    dr_buf_reset(&b);
    dr_buf_appends(&b, "{\"user_id\":\"u\",\"contact_id\":\"c\",\"contact\":{\"name\":\"");
    for (int i = 0; i < 1100; i++) {
        dr_buf_appendc(&b, 'x');
    }
    dr_buf_appends(&b, "\"}}");
    run_msg(b.data, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_non_null(strstr(res.error, "contact.name"));
    dr_result_cleanup(&res);
    dr_buf_cleanup(&b);
}

static char *emitted_docid(const char *js)
{
    struct dr_result res;
    cJSON *op;
    char *id;

    run_msg(js, &res);
    op = only_emit(&res);
    id = strdup(dr_json_str(op, "docid"));
    assert_string_equal(res.emits[0].ordering_key, id);
    cJSON_Delete(op);
    dr_result_cleanup(&res);
    return id;
}

/* Two users' documents never share an id: ':' and '%' in the user id are encoded, so user
 * "alice:x" deleting contact "1" does not remove user "alice"'s contact "x:1". */
static void test_docids_never_collide(void **state)
{
    static const char *const pairs[][2] = {
        {"alice", "x:1"}, {"alice:x", "1"}, {"alice%3Ax", "1"}, {"alice%x", "1"}, {"a", "b"},
    };
    static const char *const want[] = {"alice:x:1", "alice%3Ax:1", "alice%253Ax:1", "alice%25x:1",
                                       "a:b"};
    char *ids[5];
    char js[512];

    for (int i = 0; i < 5; i++) {
        snprintf(js, sizeof(js),
                 "{\"user_id\":\"%s\",\"contact_id\":\"%s\",\"operation\":\"delete\"}", pairs[i][0],
                 pairs[i][1]);
        ids[i] = emitted_docid(js);
        assert_string_equal(ids[i], want[i]);
        for (int k = 0; k < i; k++) {
            assert_string_not_equal(ids[i], ids[k]);
        }
    }
    for (int i = 0; i < 5; i++) {
        free(ids[i]);
    }
}

/* An id that would be longer than Vespa's limit is refused, not cut (two long ids that differ
 * only at their ends were one document). */
static void test_long_docid_refused(void **state)
{
    struct dr_buf b;
    struct dr_result res;

    dr_buf_init(&b, 1 << 16);
    dr_buf_appends(&b, "{\"user_id\":\"");
    for (int i = 0; i < 512; i++) {
        dr_buf_appendc(&b, ':'); /* 1,536 bytes encoded */
    }
    dr_buf_appends(&b, "\",\"contact_id\":\"");
    for (int i = 0; i < 512; i++) {
        dr_buf_appendc(&b, 'c');
    }
    dr_buf_appends(&b, "\",\"operation\":\"delete\"}");
    run_msg(b.data, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_payload");
    assert_non_null(strstr(res.error, "longer than 2048"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    dr_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_indexed),       cmocka_unit_test(test_delete_removes),
        cmocka_unit_test(test_invalid_rejected),     cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_docids_never_collide), cmocka_unit_test(test_long_docid_refused),
    };

    return cmocka_run_group_tests_name("contacts processor", tests, NULL, NULL);
}
