/*
 * Helpers shared by the JWT tests: reading the fixture, running the jose token factory
 * (tests/js/tools/sign-tokens.mjs), building key sets. Tokens always come from jose.
 */
#ifndef DR_TEST_JWT_UTIL_H
#define DR_TEST_JWT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"

#define TEST_OUTPUT_LIMIT (4u * 1024 * 1024)

/* Path under $DR_SOURCE_DIR (falls back to the current directory). */
static inline void source_path(char *out, size_t outsz, const char *rel)
{
    const char *root = getenv("DR_SOURCE_DIR");
    snprintf(out, outsz, "%s/%s", root ? root : ".", rel);
}

/* Reads a whole stream; NULL on error or when larger than TEST_OUTPUT_LIMIT. */
static inline char *read_stream(FILE *f, size_t *len)
{
    struct dr_buf b;
    char chunk[4096];
    size_t n;

    dr_buf_init(&b, TEST_OUTPUT_LIMIT);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (dr_buf_append(&b, chunk, n)) {
            dr_buf_cleanup(&b);
            return NULL;
        }
    }
    if (!b.data) {
        dr_buf_appends(&b, "");
    }
    return dr_buf_steal(&b, len);
}

static inline cJSON *load_json_file(const char *rel)
{
    char path[1024];
    size_t len = 0;
    char *text;
    cJSON *doc;
    FILE *f;

    source_path(path, sizeof(path), rel);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    text = read_stream(f, &len);
    fclose(f);
    doc = text ? dr_json_parse(text, len) : NULL;
    free(text);
    return doc;
}

/* 1 when s holds only characters that need no quoting in shell words (spaces separate them). */
static inline int shell_safe(const char *s)
{
    for (; *s; s++) {
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=/:+ ", *s)) {
            return 0;
        }
    }
    return 1;
}

/* Runs the token factory with args (shell-safe); *status gets the exit status. */
static inline char *run_factory(const char *args, int *status, size_t *len)
{
    char script[1024], cmd[8192];
    char *out;
    FILE *p;
    int st;

    source_path(script, sizeof(script), "tests/js/tools/sign-tokens.mjs");
    if (!shell_safe(script) || !shell_safe(args)) {
        return NULL;
    }
    snprintf(cmd, sizeof(cmd), "node %s %s", script, args);
    p = popen(cmd, "r");
    if (!p) {
        return NULL;
    }
    out = read_stream(p, len);
    st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* A key set from a secret and/or a JWKS object (either may be NULL). */
static inline struct dr_jwt_keys *make_keys(const char *secret, const cJSON *jwks,
                                            const char *hs_alg)
{
    struct dr_jwt_keys *keys = dr_jwt_keys_create();

    if (secret && dr_jwt_keys_set_secret(keys, secret, strlen(secret)) != DR_OK) {
        goto fail;
    }
    if (jwks) {
        char *text = dr_json_print(jwks);
        int err = dr_jwt_keys_load_jwks(keys, text, strlen(text));
        free(text);
        if (err) {
            goto fail;
        }
    }
    if (hs_alg && dr_jwt_keys_set_hs_alg(keys, hs_alg) != DR_OK) {
        goto fail;
    }
    return keys;
fail:
    dr_jwt_keys_destroy(keys);
    return NULL;
}

#endif
