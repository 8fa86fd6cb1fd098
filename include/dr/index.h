/*
 * Search-index operations. Processors do not call Vespa themselves: they emit an operation to the
 * topic `vespa-index`, which the vespa processor feeds to Vespa's /document/v1 API with its own
 * retries and circuit breaker. The operation is durable like any other emit.
 *
 * Message (type index_operation):
 *   {"operation":"put"|"remove","doctype":"email"|"calendar_event"|"contact",
 *    "docid":"<user_id>:<source_id>","user_id":"...","fields":{...}}
 * The ordering key is the docid, so operations on one document apply in order.
 */
#ifndef DR_INDEX_H
#define DR_INDEX_H

#include <cjson/cJSON.h>

#include "dr/processor.h"

#define DR_INDEX_TOPIC "vespa-index"

/* fields NULL = remove. fields is not consumed. Stable ids: the same user and source id always
 * give the same docid, so re-indexing overwrites. */
void dr_index_emit(struct dr_result *res, const char *doctype, const char *user_id,
                   const char *source_id, const cJSON *fields);

#endif
