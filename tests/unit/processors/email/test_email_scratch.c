/*
 * Tests src/processors/email/scratch.c: a thread gets back the allocation it gave, up to the
 * size cap; larger ones are freed; threads do not share them; an exiting thread frees its own
 * (the leak checker of the sanitizer build would report it otherwise). And parsing the same
 * emails again on scratch buffers left dirty by others gives the same results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dr/buf.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

static void reuse_and_cap(void **state)
{
    struct dr_buf b, c;
    char *first;

    (void)state;
    dr_buf_init(&b, 1 << 20);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &b); /* nothing kept yet */
    assert_null(b.data);
    assert_int_equal(dr_buf_append(&b, "hello", 5), DR_OK);
    first = b.data;
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    dr_buf_init(&c, 100);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &c);
    assert_ptr_equal(c.data, first);
    assert_int_equal(c.len, 0);
    assert_string_equal(c.data, "");
    assert_int_equal(c.limit, 100);
    /* the slot is empty while c holds it */
    dr_buf_init(&b, 100);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &b);
    assert_null(b.data);
    /* over the cap: freed when given back, the slot stays empty */
    dr_buf_init(&b, SIZE_MAX);
    assert_int_equal(dr_buf_reserve(&b, DR__EMAIL_SCRATCH_KEEP + 1), DR_OK);
    dr__email_scratch_give(DR__EMAIL_SCRATCH_PART, &b);
    dr_buf_init(&b, 100);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_PART, &b);
    assert_null(b.data);
    /* a full slot keeps what it has, the second one is freed */
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &c);
    dr_buf_init(&b, 100);
    assert_int_equal(dr_buf_append(&b, "x", 1), DR_OK);
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &b);
    dr_buf_init(&b, 100);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &b);
    assert_ptr_equal(b.data, first);
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &b);
}

static void *other_thread(void *arg)
{
    struct dr_buf b;

    dr_buf_init(&b, 1 << 20);
    dr__email_scratch_take(DR__EMAIL_SCRATCH_CONV, &b);
    *(int *)arg = b.data == NULL; /* not the main thread's */
    assert_int_equal(dr_buf_append(&b, "thread", 6), DR_OK);
    dr__email_scratch_give(DR__EMAIL_SCRATCH_CONV, &b); /* freed when the thread exits */
    return NULL;
}

static void per_thread(void **state)
{
    pthread_t t;
    int own = 0;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &own), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(own);
}

/* The JSON of the email in path, parsed as the parser's callers do; NULL when refused. */
static char *parse_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *raw, *json = NULL;
    struct dr_email *em = NULL;
    cJSON *j = NULL;
    long n;

    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    if (n < 0 || n > (1L << 26)) {
        fclose(f);
        return NULL;
    }
    raw = calloc(1, (size_t)n + 1);
    if (fread(raw, 1, (size_t)n, f) == (size_t)n &&
        dr__email_parse_ex(raw, (size_t)n, NULL, 0, &em) == DR_OK &&
        dr_email_to_json(em, &j) == DR_OK) {
        json = dr_json_print(j);
    }
    cJSON_Delete(j);
    dr_email_destroy(em);
    free(raw);
    fclose(f);
    return json;
}

/* Every email of tests/data/email parsed three times over, each time after all the others, on
 * buffers they left dirty: the same JSON. */
static void same_results(void **state)
{
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    static const char *const dirs[] = {"calendar", "carriers", "gmime", "replies", "stalwart"};
    char *paths[512], *first[512];
    size_t np = 0, n = 0;

    (void)state;
    dr_email_global_init();
    for (size_t d = 0; d < DR_ARRAY_LEN(dirs); d++) {
        char dir[1024];
        DIR *dp;
        struct dirent *e;

        snprintf(dir, sizeof(dir), "%s/email/%s", root, dirs[d]);
        dp = opendir(dir);
        assert_non_null(dp);
        while ((e = readdir(dp)) != NULL && np < DR_ARRAY_LEN(paths)) {
            char p[2048];
            struct stat st;

            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (e->d_name[0] == '.' || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
                continue;
            }
            paths[np++] = strdup(p);
        }
        closedir(dp);
    }
    for (size_t i = 0; i < np; i++) {
        first[i] = parse_json(paths[i]);
    }
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < np; i++) {
            size_t k = round ? np - 1 - i : i;
            char *json = parse_json(paths[k]);

            assert_true((json == NULL) == (first[k] == NULL));
            if (json) {
                assert_string_equal(json, first[k]);
                n++;
            }
            free(json);
        }
    }
    for (size_t i = 0; i < np; i++) {
        free(first[i]);
        free(paths[i]);
    }
    print_message("%zu files, %zu parsed again\n", np, n);
    assert_true(n > 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reuse_and_cap),
        cmocka_unit_test(per_thread),
        cmocka_unit_test(same_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
