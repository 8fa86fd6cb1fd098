/* Inside dr_json_parse(), for its tests. */
#ifndef DR_JSON_INT_H
#define DR_JSON_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The fast parser alone: NULL for whatever it leaves to cJSON (and on allocation failure,
 * *nomem then 1). Any length. */
cJSON *dr__json_parse_fast(const char *s, size_t len, int *nomem);

#endif
