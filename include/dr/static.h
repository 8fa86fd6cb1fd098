/*
 * The dashboard's files: GET / (web/index.html) and GET /web/<file>, read from one directory.
 *
 * Which directory: the top-level config key `web_dir`, else the environment variable
 * DR_WEB_DIR, else the first of ./web, <binary's directory>/../web, <binary's directory>/web and
 * the source tree's web/ that holds an index.html.
 *
 * Safety: a requested name is 1..DR_STATIC_MAX_NAME characters of [A-Za-z0-9._-/] whose
 * segments are not empty and do not start with a dot (so no "..", no hidden files); every
 * segment is opened with O_NOFOLLOW relative to the directory (no symlink is followed, so
 * nothing outside the directory can be reached); only regular files of at most
 * DR_STATIC_MAX_FILE bytes are served. Responses carry a Content-Type by extension, an ETag
 * (size and modification time; If-None-Match answers 304), Cache-Control: no-cache and
 * X-Content-Type-Options: nosniff.
 *
 * Files are read on the libuv thread pool, never on the loop thread.
 */
#ifndef DR_STATIC_H
#define DR_STATIC_H

#include <stddef.h>

#include "dr/config.h"
#include "dr/http.h"

#define DR_STATIC_MAX_FILE (4 * 1024 * 1024) /* bytes */
#define DR_STATIC_MAX_NAME 255               /* characters of a name below the directory */

struct dr_static;

/*
 * Finds the web directory for cfg. A directory named by web_dir or DR_WEB_DIR that cannot be
 * opened fails with DR_EINVAL (*out NULL, err says why). When nothing was named and no
 * candidate exists, *out is still created and every request answers 404 (a warning is logged).
 * Blocks (file system): call at start-up only.
 */
int dr_static_create(const struct dr_config *cfg, struct dr_static **out, char *err, size_t errsz);

/* Adds GET / and GET /web/... to srv. Register after the API routes. */
void dr_static_register(struct dr_static *st, struct dr_http_server *srv);

/* The directory served (an absolute path), or NULL when none was found. */
const char *dr_static_dir(const struct dr_static *st);

/* NULL-safe. Call after the loop has finished every deferred request. */
void dr_static_destroy(struct dr_static *st);

#endif
