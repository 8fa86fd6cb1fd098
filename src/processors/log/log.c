/* The log processor: records that a message passed, never its body. */
#include "dr/log.h"
#include "dr/processor.h"

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    char trace[33];
    dr_msg_trace_id(msg, trace);
    DR_INFO("processor.log", "message",
            "message_id=%s trace_id=%s topic=%s type=%s bytes=%zu attempt=%d", msg->message_id,
            trace, msg->topic, msg->type, msg->data_len, msg->attempt);
}

const struct dr_processor dr_processor_log = {
    .name = "log",
    .description = "logs each message's envelope (ids, topic, type, size; never the body)",
    .process = process,
};
