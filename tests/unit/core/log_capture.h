/*
 * Reading what the JSON logger (src/core/log.c) writes, for the tests of it and of the audit log:
 * capture() collects stderr around a call, lines() reads every line back as one JSON object.
 */
#ifndef DR_TEST_LOG_CAPTURE_H
#define DR_TEST_LOG_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dr/util.h"

/* Runs fn with stderr going to a file; returns what was written (caller frees). */
static inline char *capture(void (*fn)(void))
{
    char path[] = "/tmp/dr-log-capture-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    char *out;
    long n;
    FILE *f;

    assert_true(fd >= 0 && saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);
    return out;
}

/* The lines of text as JSON objects: every line must be one whole object in UTF-8, and no
 * object may name a field twice. */
static inline cJSON *lines(const char *text, int *n)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = text;

    *n = 0;
    while (*p) {
        const char *nl = strchr(p, '\n'), *end = NULL;
        const cJSON *a, *b;
        cJSON *o;

        assert_non_null(nl); /* every line is complete */
        if (!dr_utf8_valid(p, (size_t)(nl - p))) {
            fail_msg("line %d is not UTF-8: %.*s", *n, (int)(nl - p), p);
        }
        o = cJSON_ParseWithLengthOpts(p, (size_t)(nl - p), &end, 0);
        if (!o || end != nl || !cJSON_IsObject(o)) {
            fail_msg("line %d is not one JSON object: %.*s", *n, (int)(nl - p), p);
        }
        cJSON_ArrayForEach(a, o)
        {
            for (b = a->next; b; b = b->next) {
                if (strcmp(a->string, b->string) == 0) {
                    fail_msg("line %d names %s twice: %.*s", *n, a->string, (int)(nl - p), p);
                }
            }
        }
        cJSON_AddItemToArray(arr, o);
        (*n)++;
        p = nl + 1;
    }
    return arr;
}

#endif
