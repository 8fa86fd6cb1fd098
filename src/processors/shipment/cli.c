#include "core/cli.h"

int dr_cli_extract_shipments(int argc, char **argv)
{
    dr_cli_error("extract shipments: not built yet");
    return 1;
}
