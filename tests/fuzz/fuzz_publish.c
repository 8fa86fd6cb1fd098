/*
 * The local publish API's body (POST .../topics/T:publish): dr_publish_parse() either refuses
 * with an error text and nothing allocated, or returns 1-1000 rows within Pub/Sub's limits.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/local.h"
#include "dr/store.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dr_qmsg *rows = (struct dr_qmsg *)1;
    size_t n = 12345;
    char err[512] = "";
    int rc = dr_publish_parse((const char *)data, size, "fuzz-topic", &rows, &n, err, sizeof(err));

    if (rc != DR_OK) {
        FUZZ_CHECK(rc == DR_EINVAL || rc == DR_ETOOBIG, "unexpected error %d", rc);
        FUZZ_CHECK(err[0] != '\0', "refused without a reason");
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "reason not terminated");
        return 0;
    }
    FUZZ_CHECK(n >= 1 && n <= 1000, "%zu rows", n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(rows[i].message_id && rows[i].message_id[0], "row without a message id");
        FUZZ_CHECK(rows[i].topic && strcmp(rows[i].topic, "fuzz-topic") == 0, "wrong topic");
        FUZZ_CHECK(rows[i].attrs_json && rows[i].attrs_json[0] == '{', "attributes not an object");
        FUZZ_CHECK(!rows[i].ordering_key || strlen(rows[i].ordering_key) <= 1024,
                   "ordering key over 1024 bytes");
        FUZZ_CHECK(rows[i].data_len == 0 || rows[i].data, "data length without data");
    }
    dr_qmsgs_free(rows, n);
    return 0;
}
