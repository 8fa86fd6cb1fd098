#include "dr/json.h"

#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/util.h"

const char *dr_json_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int dr_json_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d;

    if (!it) {
        return DR_ENOTFOUND;
    }
    if (!cJSON_IsNumber(it)) {
        return DR_EINVAL;
    }
    d = it->valuedouble;
    /* converting a double outside [-2^63, 2^63) (or NaN) to int64_t is undefined */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(int64_t)d) {
        return DR_EINVAL;
    }
    *out = (int64_t)d;
    return DR_OK;
}

int dr_json_true(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

const cJSON *dr_json_pointer(const cJSON *root, const char *ptr)
{
    const cJSON *cur = root;
    char tok[256];

    if (!ptr) {
        return NULL;
    }
    if (!*ptr) {
        return root;
    }
    if (*ptr != '/') {
        return NULL;
    }
    while (cur && *ptr == '/') {
        size_t n = 0;
        ptr++;
        while (*ptr && *ptr != '/') {
            char c = *ptr++;
            if (c == '~') {
                if (*ptr == '0') {
                    c = '~';
                } else if (*ptr == '1') {
                    c = '/';
                } else {
                    return NULL;
                }
                ptr++;
            }
            if (n + 1 >= sizeof(tok)) {
                return NULL;
            }
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (cJSON_IsArray(cur)) {
            int64_t idx;
            if (dr_parse_i64(tok, &idx) || idx < 0 || idx > 1000000) {
                return NULL;
            }
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else {
            return NULL;
        }
    }
    return cur;
}

int dr_json_append(struct dr_buf *b, const cJSON *item)
{
    char *s = cJSON_PrintUnformatted(item);
    int err;

    if (!s) {
        return DR_ENOMEM;
    }
    err = dr_buf_appends(b, s);
    cJSON_free(s);
    return err;
}

char *dr_json_print(const cJSON *item)
{
    char *s = cJSON_PrintUnformatted(item);
    char *r;

    if (!s) {
        abort();
    }
    r = dr_xstrdup(s);
    cJSON_free(s);
    return r;
}
