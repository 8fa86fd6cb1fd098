#include "core/cli.h"

int dr_cli_parse_email(int argc, char **argv)
{
    dr_cli_error("parse email: not built yet");
    return 1;
}
