#include "dr/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"

int dr_index_docid(char out[DR_INDEX_DOCID_MAX + 1], const char *user_id, const char *source_id)
{
    size_t n = 0, sl = source_id ? strlen(source_id) : 0;

    for (const char *p = user_id ? user_id : ""; *p; p++) {
        const char *enc = *p == '%' ? "%25" : *p == ':' ? "%3A" : NULL;
        size_t k = enc ? 3 : 1;
        if (n + k > DR_INDEX_DOCID_MAX) {
            out[0] = '\0';
            return DR_ETOOBIG;
        }
        memcpy(out + n, enc ? enc : p, k);
        n += k;
    }
    if (n + 1 + sl > DR_INDEX_DOCID_MAX) {
        out[0] = '\0';
        return DR_ETOOBIG;
    }
    out[n++] = ':';
    memcpy(out + n, source_id ? source_id : "", sl);
    out[n + sl] = '\0';
    return DR_OK;
}

void dr_index_emit(struct dr_result *res, const char *doctype, const char *user_id,
                   const char *source_id, const cJSON *fields)
{
    cJSON *op;
    const char *attrs[] = {"type", "index_operation", NULL};
    char docid[DR_INDEX_DOCID_MAX + 1];
    char *s;

    if (dr_index_docid(docid, user_id, source_id) != DR_OK) {
        dr_result_reject(res, "invalid_payload",
                         "user_id and the %s id make a search document id longer than %d bytes",
                         doctype, DR_INDEX_DOCID_MAX);
        return;
    }
    op = cJSON_CreateObject();
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
