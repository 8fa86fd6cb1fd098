#include "core/cli.h"

int dr_cli_extract_reply(int argc, char **argv)
{
    dr_cli_error("extract reply: not built yet");
    return 1;
}

int dr_cli_parse_poll_reply(int argc, char **argv)
{
    dr_cli_error("parse poll-reply: not built yet");
    return 1;
}
