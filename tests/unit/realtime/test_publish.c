/* Tests src/realtime/publish.c: the body of POST /api/v1/publish read into notifications
 * (dr__rt_publish_read), refused whole with a reason naming the notification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "realtime/rt_int.h"

#define GOOD         "{\"room\":\"org:o\",\"notification_type\":\"t\",\"title\":\"ok\"}"
#define WITH(member) "{\"room\":\"org:o\",\"notification_type\":\"t\"," member "}"

/* body is refused by the fast reader and the tree alike, with a reason holding why_part. */
static void refused(const char *body, size_t len, const char *why_part)
{
    static const int hows[] = {RT_READ_ANY, RT_READ_TREE};
    struct dr_notification **ns = (void *)1;
    size_t n = 7;
    char why[256] = "";

    assert_int_equal(dr__rt_publish_read(body, len, RT_READ_FAST, &ns, &n, why, sizeof(why)), -2);
    for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
        why[0] = '\0';
        assert_int_equal(dr__rt_publish_read(body, len, hows[i], &ns, &n, why, sizeof(why)), -1);
        assert_null(ns);
        assert_int_equal(n, 0);
        if (!strstr(why, why_part)) {
            fail_msg("%.*s refused with \"%s\", not \"%s\"", (int)len, body, why, why_part);
        }
    }
}

static size_t read_ok(const char *body, int how)
{
    struct dr_notification **ns = NULL;
    size_t n = 0;
    char why[256] = "";

    if (dr__rt_publish_read(body, strlen(body), how, &ns, &n, why, sizeof(why)) != 0) {
        fail_msg("%s refused: %s", body, why);
    }
    dr__rt_notifications_free(ns, n);
    return n;
}

/* Invalid UTF-8 or U+0000 anywhere: refused, naming the first notification that has it. */
static void bad_text_names_the_notification(void **state)
{
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"{\"notifications\":[" GOOD "," WITH("\"title\":\"\xff\xfe\"") "]}",
         "notifications[1]: invalid UTF-8"},
        {"{\"notifications\":[" GOOD "," GOOD "," WITH("\"data\":{\"\xc0\xaf\":1}") "]}",
         "notifications[2]: invalid UTF-8"},
        {"{\"notifications\":[" WITH("\"title\":\"Hello\\u0000 hidden\"") "," GOOD "]}",
         "notifications[0]: strings must not contain U+0000"},
        {"{\"notifications\":[" GOOD "," WITH("\"data\":{\"k\":\"\\u0000\"}") "]}",
         "notifications[1]: strings must not contain U+0000"},
        /* spaces, other members before it, one of them also called notifications inside */
        {" { \"a\" : {\"notifications\":[" GOOD "]} , \"notifications\" : [ " GOOD
         " , " WITH("\"message\":\"caf\xc3\"") " ] } ",
         "notifications[1]: invalid UTF-8"},
        /* outside the notifications: the body */
        {"{\"notifications\":[" GOOD "],\"trace\":\"\xed\xa0\x80\"}", "the body: invalid UTF-8"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        refused(cases[i].body, strlen(cases[i].body), cases[i].why);
    }
    /* an escaped backslash before the text u0000 is not U+0000 */
    assert_int_equal(
        read_ok("{\"notifications\":[" WITH("\"title\":\"\\\\u0000\"") "]}", RT_READ_ANY), 1);
    assert_int_equal(
        read_ok("{\"notifications\":[" WITH("\"title\":\"\\\\u0000\"") "]}", RT_READ_TREE), 1);
}

/* The body is one JSON value: anything but whitespace after it is refused, not ignored. */
static void nothing_after_the_body(void **state)
{
    static const char *const bad[] = {
        "{\"notifications\":[" GOOD "]}garbage",
        "{\"notifications\":[" GOOD "]}{}",
        "{\"notifications\":[" GOOD "]} x",
        /* a body the fast reader leaves to the tree */
        "{\"notifications\":[" WITH("\"title\":\"a\\nb\"") "]}]",
    };
    static const char nul_after[] = "{\"notifications\":[" GOOD "]}\0";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused(bad[i], strlen(bad[i]), "unexpected data after the JSON object");
    }
    refused(nul_after, sizeof(nul_after) - 1, "unexpected data after the JSON object");
    /* whitespace is fine */
    assert_int_equal(read_ok(" {\"notifications\":[" GOOD "," GOOD "]} \r\n\t", RT_READ_ANY), 2);
    assert_int_equal(read_ok(" {\"notifications\":[" GOOD "," GOOD "]} \r\n\t", RT_READ_TREE), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_text_names_the_notification),
        cmocka_unit_test(nothing_after_the_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
