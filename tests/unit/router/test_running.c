/* The running file (src/router/running.c): what it hands the next process, and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/running.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/dr-running-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/running", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

static void open_expect(size_t nslots, struct dr_running **r, const int64_t *want, size_t nwant)
{
    int64_t *left = NULL;
    size_t nleft = 99;

    assert_int_equal(dr_running_open(path, nslots, r, &left, &nleft), DR_OK);
    assert_int_equal(nleft, nwant);
    for (size_t i = 0; i < nwant; i++) {
        assert_int_equal(left[i], want[i]);
    }
    free(left);
}

/* A process that dies leaves its slots; the next one gets them, whatever its slot count. */
static void slots_outlive_the_process(void **state)
{
    struct dr_running *r = NULL;
    int64_t *left = NULL;
    size_t nleft = 0;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dr_running_open(path, 4, &r, &left, &nleft) != DR_OK || nleft != 0) {
            _exit(1);
        }
        dr_running_set(r, 0, 17);
        dr_running_set(r, 1, 17); /* fanned out to two processors: still one message */
        dr_running_set(r, 3, 1LL << 40);
        dr_running_set(r, 2, 5);
        dr_running_set(r, 2, 0);  /* finished */
        dr_running_set(r, 4, 99); /* no such slot: ignored */
        abort();                  /* no dr_running_close */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    int64_t want[2] = {17, 1LL << 40};
    open_expect(2, &r, want, 2);
    assert_int_equal(dr_running_slots(r), 2);
    /* one process at a time */
    struct dr_running *r2 = NULL;
    assert_int_equal(dr_running_open(path, 2, &r2, &left, &nleft), DR_EUNAVAIL);
    assert_null(r2);
    assert_int_equal(nleft, 0);
    dr_running_set(r, 1, 3);
    dr_running_set(NULL, 0, 1);
    dr_running_close(r); /* an orderly close clears every slot */
    open_expect(8, &r, NULL, 0);
    dr_running_close(r);
}

/* A file that is not one: nothing taken from it, and it is made one. */
static void foreign_file_ignored(void **state)
{
    static const char *const junk[] = {"", "DRRUN001", "DRRUN001\xff\xff\xff\xff\xff\xff\xff\x7f",
                                       "DRRUN001\x02\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0",
                                       "NOTOURS1\x01\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0"};
    static const size_t len[] = {0, 8, 16, 24, 24};
    struct dr_running *r = NULL;

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(junk[i], 1, len[i], f), len[i]);
        fclose(f);
        open_expect(1, &r, NULL, 0);
        dr_running_set(r, 0, 7);
        dr_running_close(r);
    }
    int64_t *left = NULL;
    size_t nleft = 0;
    assert_int_equal(dr_running_open(path, 0, &r, &left, &nleft), DR_EINVAL);
    assert_int_equal(dr_running_open(path, 100000, &r, &left, &nleft), DR_EINVAL);
    assert_int_equal(dr_running_open("/nonexistent-dir/x", 1, &r, &left, &nleft), DR_EIO);
    assert_null(r);
}

/* A symlink is not followed: the file cannot be pointed at another. */
static void symlink_refused(void **state)
{
    char target[160];
    struct dr_running *r = NULL;
    int64_t *left = NULL;
    size_t nleft = 0;

    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(dr_running_open(path, 1, &r, &left, &nleft), DR_EIO);
    assert_int_equal(access(target, F_OK), -1);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(slots_outlive_the_process, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_file_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(symlink_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("running file", tests, NULL, NULL);
}
