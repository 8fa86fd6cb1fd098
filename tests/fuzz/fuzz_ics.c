/*
 * iCalendar through libical: dr_ics_parse() and dr_ics_reply_partstats() either refuse with a
 * reason or return their documented JSON shapes.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/ics.h"
#include "dr/json.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *out = NULL;
    char err[256] = "";
    int rc = dr_ics_parse((const char *)data, size, &out, err, sizeof(err));

    if (rc == DR_OK) {
        FUZZ_CHECK(cJSON_IsObject(out), "not an object");
        FUZZ_CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(out, "events")), "no events");
    } else {
        FUZZ_CHECK(out == NULL, "error %d with output", rc);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && (rc == DR_ENOMEM || err[0]),
                   "refused (%d) without a reason", rc);
    }
    cJSON_Delete(out);
    out = NULL;
    rc = dr_ics_reply_partstats((const char *)data, size, &out);
    FUZZ_CHECK(rc == DR_OK ? cJSON_IsArray(out) : out == NULL, "partstats %d", rc);
    cJSON_Delete(out);
    return 0;
}
