#include <stdio.h>
#include <string.h>

#include "dr/version.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("data-router %s\n", DR_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: data-router <serve|publish|dlq|version> [options]\n");
    return 2;
}
