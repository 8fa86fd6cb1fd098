/* Helpers shared by the email parser tests. */
#ifndef DR_TEST_EMAIL_UTIL_H
#define DR_TEST_EMAIL_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads DR_TEST_DATA/email/<rel> into a malloc'ed, NUL-terminated buffer; NULL if missing. */
static inline char *email_data(const char *rel, size_t *len)
{
    const char *root = getenv("DR_TEST_DATA");
    char path[1024];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof(path), "%s/email/%s", root ? root : "tests/data", rel);
    f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = '\0';
        if (len) {
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* Collapses every whitespace run to one space and trims, in place. */
static inline char *squash(char *s)
{
    char *w = s;
    int sp = 0;

    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') {
            sp = w != s;
            continue;
        }
        if (sp) {
            *w++ = ' ';
            sp = 0;
        }
        *w++ = *r;
    }
    *w = '\0';
    return s;
}

#endif
