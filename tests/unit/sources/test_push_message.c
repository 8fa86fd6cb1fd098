/* dr_push_message_ok() (src/sources/push/push.c): a push body is held to what Pub/Sub lets
 * through, as the publish API is, so that nothing reaches the queue cut short or altered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dr/json.h"
#include "dr/push.h"

static int check(const char *body, char *why, size_t whysz)
{
    cJSON *root = dr_json_parse(body, strlen(body));
    int ok;

    assert_non_null(root);
    ok = dr_push_message_ok(body, strlen(body), cJSON_GetObjectItemCaseSensitive(root, "message"),
                            why, whysz);
    cJSON_Delete(root);
    return ok;
}

static void expect_ok(const char *body)
{
    char why[160] = "";

    if (!check(body, why, sizeof(why))) {
        fail_msg("refused (%s): %s", why, body);
    }
}

static void expect_refused(const char *body, const char *needle)
{
    char why[160] = "";

    assert_false(check(body, why, sizeof(why)));
    if (!strstr(why, needle)) {
        fail_msg("reason '%s' lacks '%s'", why, needle);
    }
}

/* {"subscription":"s","message":{"messageId":"m1",<rest>}} */
static char *push(char *out, size_t n, const char *rest)
{
    snprintf(out, n, "{\"subscription\":\"s\",\"message\":{\"messageId\":\"m1\"%s%s}}",
             *rest ? "," : "", rest);
    return out;
}

static void limits(void **state)
{
    static char b[64 * 1024], a[32 * 1024], big[8 * 1024];
    size_t n = 0;

    (void)state;
    expect_ok(push(b, sizeof(b), "\"data\":\"aGk=\",\"attributes\":{\"k\":\"v\"}"));
    expect_ok(push(b, sizeof(b), "\"data\":\"aGk=\",\"attributes\":null,\"orderingKey\":\"\""));
    expect_ok(push(b, sizeof(b), "\"data\":\"aGk=\",\"attributes\":{\"goog_x\":\"\\\\u0000\"}"));

    n = (size_t)snprintf(a, sizeof(a), "\"attributes\":{");
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(a + n, sizeof(a) - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    }
    snprintf(a + n, sizeof(a) - n, "}");
    expect_ok(push(b, sizeof(b), a));
    snprintf(a + n, sizeof(a) - n, ",\"k100\":\"v\"}");
    expect_refused(push(b, sizeof(b), a), "at most 100");

    memset(big, 'k', 257);
    big[257] = 0;
    snprintf(a, sizeof(a), "\"attributes\":{\"%s\":\"v\"}", big);
    expect_refused(push(b, sizeof(b), a), "keys must be 1-256 bytes");
    big[256] = 0;
    snprintf(a, sizeof(a), "\"attributes\":{\"%s\":\"v\"}", big);
    expect_ok(push(b, sizeof(b), a));
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"\":\"v\"}"), "keys must be 1-256");

    memset(big, 'v', 1025);
    big[1025] = 0;
    snprintf(a, sizeof(a), "\"attributes\":{\"k\":\"%s\"}", big);
    expect_refused(push(b, sizeof(b), a), "at most 1024 bytes");
    snprintf(a, sizeof(a), "\"data\":\"aGk=\",\"orderingKey\":\"%s\"", big);
    expect_refused(push(b, sizeof(b), a), "orderingKey");
    big[1024] = 0;
    snprintf(a, sizeof(a), "\"attributes\":{\"k\":\"%s\"},\"orderingKey\":\"%s\"", big, big);
    expect_ok(push(b, sizeof(b), a));
}

static void malformed(void **state)
{
    static char b[4096];

    (void)state;
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"k\":5}"), "a string");
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"k\":{\"x\":1}}"), "a string");
    expect_refused(push(b, sizeof(b), "\"attributes\":[\"k\"]"), "an object");
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"k\":\"a\",\"k\":\"b\"}"), "twice");
    expect_refused(push(b, sizeof(b), "\"data\":5"), "base64");
    expect_refused(push(b, sizeof(b), "\"data\":\"aGk=\",\"orderingKey\":7"), "orderingKey");
    /* U+0000 would cut a message id or an attribute short */
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"k\":\"a\\u0000b\"}"), "U+0000");
    expect_refused("{\"subscription\":\"s\",\"message\":{\"messageId\":\"m\\u0000x\"}}", "U+0000");
    expect_refused(push(b, sizeof(b), "\"attributes\":{\"k\":\"\xff\xfe\"}"), "UTF-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
