/*
 * Reading the test corpora (tests/data): whole files, and every file under a folder in a stable
 * order. Header-only, for the processor tests that compare an implementation over the corpora.
 */
#ifndef DR_TESTS_PROCESSORS_CORPUS_H
#define DR_TESTS_PROCESSORS_CORPUS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dr/util.h"

#define CORPUS_FILE_MAX (64L << 20)

/* The whole file followed by pad zero bytes (pad >= 1 makes it a string); *len without the pad.
 * NULL when it cannot be read or is larger than CORPUS_FILE_MAX. */
static inline char *corpus_read(const char *path, size_t *len, size_t pad)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;

    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    if (n < 0 || n > CORPUS_FILE_MAX) {
        fclose(f);
        return NULL;
    }
    buf = dr_xcalloc(1, (size_t)n + pad);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        n = 0;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static inline int corpus_cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the non-empty regular files under dir of at most max_size bytes to out (at most max
 * in all, each freed by the caller), descending into folders; with skip_meta, not the .json and
 * .md files that describe a corpus. Sort with corpus_sort(). */
static inline void corpus_list(const char *dir, char **out, size_t *n, size_t max, size_t max_size,
                               int skip_meta)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL && *n < max) {
        char path[1024];
        struct stat st;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            corpus_list(path, out, n, max, max_size, skip_meta);
        } else if (S_ISREG(st.st_mode) && st.st_size > 0 && (size_t)st.st_size <= max_size &&
                   !(skip_meta && (strstr(e->d_name, ".json") || strstr(e->d_name, ".md")))) {
            out[(*n)++] = strdup(path);
        }
    }
    closedir(d);
}

static inline void corpus_sort(char **paths, size_t n)
{
    qsort(paths, n, sizeof(*paths), corpus_cmp_path);
}

/* Calls fn with every file under dir (in path order, folders descended), read whole with pad
 * zero bytes after it; the data is the callback's to change and is freed afterwards. Returns how
 * many files were visited. */
static inline size_t corpus_each(const char *dir, size_t pad,
                                 void (*fn)(const char *path, char *data, size_t len))
{
    enum { MAX = 8192 };
    char **paths = dr_xcalloc(MAX, sizeof(*paths));
    size_t n = 0, seen = 0;

    corpus_list(dir, paths, &n, MAX, (size_t)CORPUS_FILE_MAX, 0);
    corpus_sort(paths, n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *data = corpus_read(paths[i], &len, pad);
        if (data) {
            fn(paths[i], data, len);
            seen++;
        }
        free(data);
        free(paths[i]);
    }
    free(paths);
    return seen;
}

/* check on a corpus file as it is, cut in half, and with bytes damaged (NULs, 0xFF, quotes;
 * raw is changed). Nothing for an empty file. */
static inline void corpus_variants(const char *path, char *raw, size_t len,
                                   void (*check)(const char *raw, size_t len, const char *path))
{
    if (len == 0) {
        return;
    }
    check(raw, len, path);
    check(raw, len / 2, path);
    for (size_t i = 61; i < len; i += 97) {
        raw[i] = (char)(i % 3 == 0 ? 0 : i % 3 == 1 ? 0xFF : '"');
    }
    check(raw, len, path);
}

#endif
