#include "core/cli.h"

int dr_cli_parse_ics(int argc, char **argv)
{
    dr_cli_error("parse ics: not built yet");
    return 1;
}
