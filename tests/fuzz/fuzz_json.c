/*
 * dr_json_parse() must build exactly the tree cJSON_ParseWithLengthOpts(s, len, NULL, 0) builds
 * (src/core/json_parse.c): the same accept/refuse decision, the same types, keys, strings and
 * numbers. dr_json_print() must write exactly what cJSON_PrintUnformatted() writes.
 */
#include <stdlib.h>
#include <string.h>

#include "dr/json.h"
#include "fuzz.h"

static void same(const cJSON *a, const cJSON *b, int depth)
{
    FUZZ_CHECK(depth < 2000, "tree deeper than cJSON allows");
    for (; a || b; a = a->next, b = b->next) {
        FUZZ_CHECK(a && b, "a different number of members or elements");
        FUZZ_CHECK((a->type & 0xff) == (b->type & 0xff), "type %d against cJSON's %d",
                   a->type & 0xff, b->type & 0xff);
        FUZZ_CHECK((a->string == NULL) == (b->string == NULL) &&
                       (!a->string || strcmp(a->string, b->string) == 0),
                   "key '%s' against cJSON's '%s'", a->string ? a->string : "(none)",
                   b->string ? b->string : "(none)");
        if (cJSON_IsString(a)) {
            FUZZ_CHECK(strcmp(a->valuestring, b->valuestring) == 0, "string differs");
        } else if (cJSON_IsNumber(a)) {
            FUZZ_CHECK(memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) == 0 &&
                           a->valueint == b->valueint,
                       "number %.17g against cJSON's %.17g", a->valuedouble, b->valuedouble);
        }
        same(a->child, b->child, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    cJSON *mine = dr_json_parse(s, size);
    cJSON *ref = cJSON_ParseWithLengthOpts(s, size, NULL, 0);

    FUZZ_CHECK((mine == NULL) == (ref == NULL), "dr_json_parse %s what cJSON %s",
               mine ? "accepts" : "refuses", ref ? "accepts" : "refuses");
    if (mine) {
        char *a, *b;

        same(mine, ref, 0);
        a = dr_json_print(mine);
        b = cJSON_PrintUnformatted(ref);
        FUZZ_CHECK(b && strcmp(a, b) == 0, "dr_json_print wrote '%.200s', cJSON '%.200s'", a,
                   b ? b : "(nothing)");
        free(a);
        cJSON_free(b);
    }
    cJSON_Delete(mine);
    cJSON_Delete(ref);
    return 0;
}
