#include "dr/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/json.h"
#include "dr/util.h"

void dr_index_emit(struct dr_result *res, const char *doctype, const char *user_id,
                   const char *source_id, const cJSON *fields)
{
    cJSON *op = cJSON_CreateObject();
    const char *attrs[] = {"type", "index_operation", NULL};
    char docid[1024];
    char *s;

    snprintf(docid, sizeof(docid), "%s:%s", user_id ? user_id : "", source_id ? source_id : "");
    cJSON_AddStringToObject(op, "operation", fields ? "put" : "remove");
    cJSON_AddStringToObject(op, "doctype", doctype);
    cJSON_AddStringToObject(op, "docid", docid);
    cJSON_AddStringToObject(op, "user_id", user_id ? user_id : "");
    if (fields) {
        cJSON_AddItemToObject(op, "fields", cJSON_Duplicate(fields, 1));
    }
    s = dr_json_print(op);
    dr_result_emit(res, DR_INDEX_TOPIC, s, strlen(s), docid, attrs);
    free(s);
    cJSON_Delete(op);
}
