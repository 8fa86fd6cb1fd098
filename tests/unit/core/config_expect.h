/* Shared by the configuration tests: a configuration text that must be refused. */
#ifndef DR_TESTS_CONFIG_EXPECT_H
#define DR_TESTS_CONFIG_EXPECT_H

#include <string.h>

#include "dr/config.h"
#include "dr/err.h"

/* Loading yaml fails, gives no config and says needle in its error. */
static void expect_error(const char *yaml, const char *needle)
{
    struct dr_config *c = NULL;
    char err[512] = "";

    assert_int_not_equal(
        dr_config_load_string(yaml, strlen(yaml), "bad.yaml", &c, err, sizeof(err)), DR_OK);
    assert_null(c);
    if (!strstr(err, needle)) {
        fail_msg("error '%s' lacks '%s'", err, needle);
    }
}

#endif
