/*
 * The `realtime` processor: consumes the client-notifications topic. Each message is validated
 * as a ClientNotification, stored (which gives it its seq) and handed to the hub, which fans it
 * out on the loop thread.
 *
 * Store and hand-off happen under one lock, so the hub sees this instance's notifications in
 * seq order and only after their row is committed: the resume logic in conn.c relies on both.
 * A notification already stored (a redelivery) is not fanned out again: whoever missed it gets
 * it from the store on resume.
 */
#include <pthread.h>
#include <stdlib.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "realtime/rt_int.h"

static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;

static int rt_init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    *state = dr_store_db(env->store);
    return 0;
}

static void rt_process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct dr_db *db = state;
    struct dr_notification *n = NULL;
    struct dr_hub *hub;
    char why[128];
    int dup = 0, err;

    err = dr_notification_parse((const char *)msg->data, msg->data_len, msg->message_id, &n, why,
                                sizeof(why));
    if (err) {
        dr_metrics_inc(RT_M_STORED, "outcome=\"invalid\"", 1);
        dr_result_reject(res, "invalid_notification", "%s", why);
        return;
    }
    n->t0_ns = (uint64_t)msg->received_ns;
    pthread_mutex_lock(&order_mu);
    err = dr__rt_store_put(db, n, &dup);
    if (!err && !dup && (hub = dr__hub_current()) != NULL) {
        dr_hub_publish(hub, n);
    }
    pthread_mutex_unlock(&order_mu);
    if (err) {
        dr_result_retry(res, "store_unavailable", "storing the notification failed: %s",
                        dr_strerror(err));
    } else {
        dr_metrics_inc(RT_M_STORED, dup ? "outcome=\"duplicate\"" : "outcome=\"stored\"", 1);
        DR_DEBUG("realtime", "notification stored", "message_id=%s seq=%lld duplicate=%d",
                 msg->message_id, (long long)n->seq, dup);
    }
    dr_notification_unref(n);
}

const struct dr_processor dr_processor_realtime = {
    .name = "realtime",
    .description = "Stores client notifications and delivers them to WebSocket/SSE clients",
    .init = rt_init,
    .process = rt_process,
};
