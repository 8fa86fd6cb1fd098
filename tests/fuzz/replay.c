/*
 * main() for a fuzz target outside libFuzzer: runs LLVMFuzzerTestOneInput() once on every file
 * named on the command line, and on every regular file below a directory named there (in name
 * order, so every machine runs the same sequence).
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f) {
            fclose(f);
        }
        return 1;
    }
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static char **names;
static size_t nnames, capnames;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type != FTW_F) {
        return 0;
    }
    if (nnames == capnames) {
        capnames = capnames ? capnames * 2 : 256;
        names = realloc(names, capnames * sizeof(*names));
        if (!names) {
            abort();
        }
    }
    if (!(names[nnames++] = strdup(path))) {
        abort();
    }
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int bad = 0;

    for (int i = 1; i < argc; i++) {
        if (nftw(argv[i], collect, 16, FTW_PHYS) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
    }
    if (nnames == 0) {
        fprintf(stderr, "replay: no input files\n");
        return 1;
    }
    qsort(names, nnames, sizeof(*names), cmp);
    for (size_t k = 0; k < nnames; k++) {
        /* on a crash the last line names the input */
        printf("%s\n", names[k]);
        fflush(stdout);
        bad |= run_file(names[k]);
        free(names[k]);
    }
    free(names);
    if (!bad) {
        printf("replay: %zu inputs, no failure\n", nnames);
    }
    return bad;
}
