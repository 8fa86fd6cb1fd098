/* With pubsub.auto_create the pull source creates its topics and subscriptions: a subscription
 * it creates orders messages by key (enableMessageOrdering, which cannot be set later), with the
 * configured ack deadline and dead-letter policy. Pub/Sub is a local fake that records the
 * creations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

struct fake {
    char *sub_body; /* the body of the subscription's creation */
    int topics;     /* topic creations */
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;

    if (strcmp(req->method, "PUT") == 0 && strstr(req->path, "/subscriptions/sub-a")) {
        free(f->sub_body);
        f->sub_body = strdup(req->body);
        pfx_answer(resp, "{}");
    } else if (strcmp(req->method, "PUT") == 0 && strstr(req->path, "/topics/")) {
        f->topics++;
        pfx_answer(resp, "{}");
    } else if (strstr(req->path, ":pull")) {
        resp->hang = 1; /* a long poll with nothing to deliver */
    } else {
        pfx_answer(resp, "{}");
    }
}

static int created(void *arg)
{
    return ((struct fake *)arg)->sub_body != NULL;
}

static void created_subscription_orders_by_key(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    cJSON *b;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  auto_create: true\n  ack_deadline_seconds: 60\n  max_delivery_attempts: 7\n"
             "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    assert_true(pfx_run_until(&fx, created, &fk, 20000));

    pthread_mutex_lock(&fx.srv.mu);
    b = cJSON_Parse(fk.sub_body);
    pthread_mutex_unlock(&fx.srv.mu);
    assert_non_null(b);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "enableMessageOrdering"))) {
        fail_msg("subscription created without enableMessageOrdering: %s", fk.sub_body);
    }
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "topic")->valuestring,
                        "projects/p/topics/topic-a");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds")->valueint, 60);
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(b, "deadLetterPolicy");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(dl, "deadLetterTopic")->valuestring,
                        "projects/p/topics/topic-a-dlq");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(dl, "maxDeliveryAttempts")->valueint, 7);
    cJSON_Delete(b);
    pfx_stop(&fx);
    assert_int_equal(fk.topics, 2); /* the topic and its dead-letter topic */
    free(fk.sub_body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(created_subscription_orders_by_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
