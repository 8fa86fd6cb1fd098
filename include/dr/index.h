/*
 * Search-index operations. Processors do not call Vespa themselves: they emit an operation to the
 * topic `vespa-index`, which the vespa processor feeds to Vespa's /document/v1 API with its own
 * retries and circuit breaker. The operation is durable like any other emit.
 *
 * Message (type index_operation):
 *   {"operation":"put"|"remove","doctype":"email"|"calendar_event"|"contact",
 *    "docid":"<user_id>:<source_id>","user_id":"...","fields":{...}}
 * The ordering key is the docid, so operations on one document apply in order.
 *
 * In the docid, '%' and ':' of the user id are percent-encoded (%25, %3A), so its first ':' ends
 * the user id and no two (user, source id) pairs share a document: user "alice:x" with contact
 * "1" is "alice%3Ax:1", user "alice" with contact "x:1" is "alice:x:1". User ids without those
 * characters keep the ids they always had.
 */
#ifndef DR_INDEX_H
#define DR_INDEX_H

#include <cjson/cJSON.h>

#include "dr/processor.h"

#define DR_INDEX_TOPIC "vespa-index"

/* Longest docid (Vespa's ids are meant to be short keys; the vespa processor refuses longer) */
#define DR_INDEX_DOCID_MAX 2048

/* The docid of (user_id, source_id) (NULL: "") in out. DR_ETOOBIG, out "", when it would be
 * longer than DR_INDEX_DOCID_MAX bytes: never cut short, which would make two documents one. */
int dr_index_docid(char out[DR_INDEX_DOCID_MAX + 1], const char *user_id, const char *source_id);

/* fields NULL = remove. fields is not consumed. Stable ids: the same user and source id always
 * give the same docid, so re-indexing overwrites. A docid that would be too long rejects the
 * message (invalid_payload) instead. */
void dr_index_emit(struct dr_result *res, const char *doctype, const char *user_id,
                   const char *source_id, const cJSON *fields);

#endif
