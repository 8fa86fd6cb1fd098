#include <string.h>

#include "dr/json.h"
#include "dr/router.h"

static int any_of(char **list, size_t n, const char *s)
{
    if (n == 0) {
        return 1;
    }
    for (size_t i = 0; s && i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

int dr_route_matches(const struct dr_route *rt, const struct dr_msg *msg)
{
    if (!any_of(rt->topics, rt->ntopics, msg->topic) || !any_of(rt->types, rt->ntypes, msg->type)) {
        return 0;
    }
    for (size_t i = 0; i < rt->nattrs; i++) {
        const struct dr_match_attr *a = &rt->attrs[i];
        const char *v = dr_msg_attr(msg, a->key);
        if (!v) {
            return 0;
        }
        if (a->op == DR_ATTR_EXACT && strcmp(v, a->value) != 0) {
            return 0;
        }
        if (a->op == DR_ATTR_PREFIX && strncmp(v, a->value, strlen(a->value)) != 0) {
            return 0;
        }
    }
    for (size_t i = 0; i < rt->nfields; i++) {
        const struct dr_match_field *f = &rt->fields[i];
        const cJSON *pl = dr_msg_payload(msg);
        const cJSON *v = pl ? dr_json_pointer(pl, f->pointer) : NULL;
        if (!v) {
            return 0;
        }
        if (f->equals && !cJSON_Compare(v, f->equals, 1)) {
            return 0;
        }
    }
    return 1;
}

size_t dr_route_match(const struct dr_config *cfg, const struct dr_msg *msg, size_t *idx, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < cfg->nroutes && k < n; i++) {
        if (!cfg->routes[i].is_default && dr_route_matches(&cfg->routes[i], msg)) {
            idx[k++] = i;
        }
    }
    if (k) {
        return k;
    }
    for (size_t i = 0; i < cfg->nroutes && k < n; i++) {
        if (cfg->routes[i].is_default && dr_route_matches(&cfg->routes[i], msg)) {
            idx[k++] = i;
        }
    }
    return k;
}
