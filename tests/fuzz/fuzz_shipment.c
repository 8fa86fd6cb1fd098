/*
 * The shipment extractor on arbitrary text (plain or HTML): it either refuses the input with an
 * error or returns {"shipments":[...]} where every number is 4-40 letters and digits (and
 * LaserShip's inner dash), and every entry marked valid passes dr_tracking_validate() for its
 * carrier.
 */
#include <ctype.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/shipment.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    cJSON *out = NULL;
    const cJSON *list, *s;
    /* the first line, if short, is the subject: subjects are scanned too */
    const uint8_t *nl = memchr(data, '\n', size < 200 ? size : 200);
    char subject[201] = "";
    int rc;

    if (!init) {
        FUZZ_CHECK(dr_shipment_init() == DR_OK, "init");
        init = 1;
    }
    if (nl) {
        memcpy(subject, data, (size_t)(nl - data));
        subject[nl - data] = '\0';
        size -= (size_t)(nl - data) + 1;
        data = nl + 1;
    }
    rc =
        dr_shipment_extract(subject, "Shipping <ship@example.com>", (const char *)data, size, &out);
    if (rc != DR_OK) {
        FUZZ_CHECK(out == NULL, "error %d with output", rc);
        return 0;
    }
    list = cJSON_GetObjectItemCaseSensitive(out, "shipments");
    FUZZ_CHECK(cJSON_IsArray(list), "no shipments array");
    cJSON_ArrayForEach(s, list)
    {
        const char *tn = dr_json_str(s, "tracking_number"), *carrier = dr_json_str(s, "carrier");
        size_t len = tn ? strlen(tn) : 0;

        FUZZ_CHECK(len >= 4 && len <= DR_TRACKING_MAX, "tracking number of %zu characters", len);
        for (size_t i = 0; i < len; i++) { /* LaserShip's "1LS...-1" has a dash */
            FUZZ_CHECK(isalnum((unsigned char)tn[i]) || (tn[i] == '-' && i > 0 && i + 1 < len),
                       "tracking number with '%c'", tn[i]);
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "valid")) && carrier) {
            struct dr_tracking_match m[16];
            size_t n = 0;
            int found = 0;

            FUZZ_CHECK(dr_tracking_validate(tn, m, 16, &n) == DR_OK, "valid %s fails validation",
                       tn);
            for (size_t i = 0; i < n; i++) {
                found |= strcmp(m[i].carrier, carrier) == 0;
            }
            FUZZ_CHECK(found, "%s reported valid for %s, which its check digit refuses", tn,
                       carrier);
        }
    }
    cJSON_Delete(out);
    return 0;
}
