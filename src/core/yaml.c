#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "dr/config.h"
#include "dr/err.h"

#define MAX_DEPTH 64

static cJSON *scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    char *end;
    double d;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return cJSON_CreateString(v);
    }
    if (n == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0) {
        return cJSON_CreateNull();
    }
    if (strcmp(v, "true") == 0) {
        return cJSON_CreateTrue();
    }
    if (strcmp(v, "false") == 0) {
        return cJSON_CreateFalse();
    }
    if ((v[0] >= '0' && v[0] <= '9') || ((v[0] == '-' || v[0] == '.') && n > 1)) {
        d = strtod(v, &end);
        if (*end == '\0') {
            return cJSON_CreateNumber(d);
        }
    }
    return cJSON_CreateString(v);
}

struct key_at {
    const char *key;
    size_t at; /* position in the mapping */
};

static int key_cmp(const void *a, const void *b)
{
    const struct key_at *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/*
 * DR_EINVAL naming the first key that repeats an earlier one of the mapping obj, if one does.
 * Sorting keeps a mapping of many keys O(n log n); looking each key up among the ones before
 * it was quadratic (a 1 MB file of 100,000 keys took minutes).
 */
static int duplicate_key(const cJSON *obj, char *err, size_t es)
{
    size_t n = 0, i = 0, first = SIZE_MAX;
    const char *dup = NULL;
    struct key_at *v;
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        n++;
    }
    if (n < 2) {
        return DR_OK;
    }
    v = malloc(n * sizeof(*v));
    if (!v) {
        snprintf(err, es, "out of memory");
        return DR_ENOMEM;
    }
    cJSON_ArrayForEach(it, obj)
    {
        v[i].key = it->string;
        v[i].at = i;
        i++;
    }
    qsort(v, n, sizeof(*v), key_cmp);
    for (i = 1; i < n; i++) {
        /* the repeat met first when reading: the earliest second occurrence */
        if (strcmp(v[i - 1].key, v[i].key) == 0 && v[i].at < first) {
            first = v[i].at;
            dup = v[i].key;
        }
    }
    if (dup) {
        snprintf(err, es, "duplicate key '%s'", dup);
    }
    free(v);
    return dup ? DR_EINVAL : DR_OK;
}

/* Parses one node whose first event is ev; consumes up to its end. */
static int node(yaml_parser_t *p, yaml_event_t *ev, int depth, cJSON **out, char *err, size_t es)
{
    cJSON *item = NULL;
    yaml_event_t e;
    int rc = DR_OK;

    if (depth > MAX_DEPTH) {
        snprintf(err, es, "nesting deeper than %d", MAX_DEPTH);
        return DR_EINVAL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        *out = scalar(ev);
        return DR_OK;
    case YAML_ALIAS_EVENT:
        snprintf(err, es, "line %zu: aliases are not supported", ev->start_mark.line + 1);
        return DR_EINVAL;
    case YAML_SEQUENCE_START_EVENT:
        item = cJSON_CreateArray();
        for (;;) {
            cJSON *child = NULL;
            if (!yaml_parser_parse(p, &e)) {
                snprintf(err, es, "line %zu: %s", p->problem_mark.line + 1,
                         p->problem ? p->problem : "syntax error");
                rc = DR_EINVAL;
                break;
            }
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            rc = node(p, &e, depth + 1, &child, err, es);
            yaml_event_delete(&e);
            if (rc) {
                break;
            }
            cJSON_AddItemToArray(item, child);
        }
        break;
    case YAML_MAPPING_START_EVENT:
        item = cJSON_CreateObject();
        for (;;) {
            cJSON *child = NULL;
            char *key;
            if (!yaml_parser_parse(p, &e)) {
                snprintf(err, es, "line %zu: %s", p->problem_mark.line + 1,
                         p->problem ? p->problem : "syntax error");
                rc = DR_EINVAL;
                break;
            }
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            if (e.type != YAML_SCALAR_EVENT) {
                snprintf(err, es, "line %zu: mapping keys must be plain strings",
                         e.start_mark.line + 1);
                yaml_event_delete(&e);
                rc = DR_EINVAL;
                break;
            }
            key = strdup((const char *)e.data.scalar.value);
            yaml_event_delete(&e);
            if (!yaml_parser_parse(p, &e)) {
                snprintf(err, es, "line %zu: %s", p->problem_mark.line + 1,
                         p->problem ? p->problem : "syntax error");
                free(key);
                rc = DR_EINVAL;
                break;
            }
            rc = node(p, &e, depth + 1, &child, err, es);
            yaml_event_delete(&e);
            if (rc) {
                free(key);
                break;
            }
            cJSON_AddItemToObject(item, key, child);
            free(key);
        }
        if (!rc) {
            rc = duplicate_key(item, err, es);
        }
        break;
    default:
        snprintf(err, es, "line %zu: unexpected YAML event", ev->start_mark.line + 1);
        return DR_EINVAL;
    }
    if (rc) {
        cJSON_Delete(item);
        return rc;
    }
    *out = item;
    return DR_OK;
}

int dr_yaml_to_json(const char *yaml, size_t len, cJSON **out, char *err, size_t errsz)
{
    yaml_parser_t p;
    yaml_event_t e;
    int rc = DR_OK;

    *out = NULL;
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errsz, "out of memory");
        return DR_ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &e)) {
            snprintf(err, errsz, "line %zu: %s", p.problem_mark.line + 1,
                     p.problem ? p.problem : "syntax error");
            rc = DR_EINVAL;
            break;
        }
        if (e.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        if (e.type == YAML_SCALAR_EVENT || e.type == YAML_SEQUENCE_START_EVENT ||
            e.type == YAML_MAPPING_START_EVENT || e.type == YAML_ALIAS_EVENT) {
            cJSON *doc = NULL;
            rc = node(&p, &e, 0, &doc, err, errsz);
            yaml_event_delete(&e);
            if (rc) {
                break;
            }
            if (*out) {
                cJSON_Delete(doc);
                snprintf(err, errsz, "more than one YAML document");
                rc = DR_EINVAL;
                break;
            }
            *out = doc;
            continue;
        }
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    } else if (!*out) {
        *out = cJSON_CreateObject();
    }
    return rc;
}
