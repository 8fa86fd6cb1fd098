/*
 * An email as it arrives: dr_email_parse() on the raw bytes (then its JSON), and the whole email
 * processor on an email-backfill message carrying them as `raw` (parse, classification, the
 * shipment scan, emits). Either may refuse the email, with a reason; neither may crash, leak or
 * answer anything but OK or REJECT (without a store nothing is retried).
 */
#include <string.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/shipment.h"
#include "dr/util.h"
#include "fuzz.h"

extern const struct dr_processor dr_processor_email;

static void *state;

static void setup(void)
{
    static int done;
    struct dr_proc_env env = {.store = NULL, .data_dir = "/tmp", .config = NULL};
    char err[256];

    if (done) {
        return;
    }
    done = 1;
    dr_log_set_level(DR_LOG_ERROR); /* a line per email would drown what matters */
    dr_email_global_init();
    dr_shipment_init();
    FUZZ_CHECK(dr_processor_email.init(&env, &state, err, sizeof(err)) == 0, "init: %s", err);
}

static void parse(const uint8_t *data, size_t size)
{
    struct dr_email *em = NULL;
    cJSON *json = NULL;
    int rc = dr_email_parse((const char *)data, size, NULL, &em);

    if (rc != DR_OK) {
        FUZZ_CHECK(em == NULL, "refused (%d) but returned an email", rc);
        FUZZ_CHECK(dr_email_error_reason()[0] != '\0', "refused (%d) without a reason", rc);
        return;
    }
    FUZZ_CHECK(em != NULL, "accepted without an email");
    FUZZ_CHECK(dr_email_to_json(em, &json) == DR_OK && json, "parsed email has no JSON");
    cJSON_Delete(json);
    dr_email_destroy(em);
}

static void process(const uint8_t *data, size_t size)
{
    char *b64 = NULL, *payload;
    size_t blen;
    struct dr_msg *msg;
    struct dr_result res;

    if (dr_base64url_encode(data, size, &b64, &blen) != DR_OK) {
        return;
    }
    payload = dr_xmalloc(blen + 128);
    snprintf(payload, blen + 128,
             "{\"user_id\":\"fuzz\",\"org_id\":\"o\",\"email_id\":\"e1\",\"raw\":\"%s\"}", b64);
    free(b64);
    msg = dr_msg_create("fuzz-1", "email-backfill", payload, strlen(payload), dr_now_ms());
    free(payload);
    dr_msg_finish(msg, "email", 0);
    dr_result_init(&res);
    dr_processor_email.process(state, msg, &res);
    FUZZ_CHECK(res.outcome == DR_OUTCOME_OK || res.outcome == DR_OUTCOME_REJECT,
               "outcome %d (%s: %s)", (int)res.outcome, res.reason, res.error);
    FUZZ_CHECK(res.outcome == DR_OUTCOME_OK || res.reason[0], "rejected without a reason");
    dr_result_cleanup(&res);
    dr_msg_unref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    parse(data, size);
    process(data, size);
    return 0;
}
