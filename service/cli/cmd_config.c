/* `tributary config`: every configuration key, or a complete example file. */
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/config/config.h"

#include <stdio.h>
#include <string.h>

int cmd_config(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--example") == 0) {
        config_write_example(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        char err[1024];
        struct config *cfg = cli_config_load(argv[2], NULL, 0, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "tributary config: %s\n", err);
            return 2;
        }
        config_destroy(cfg);
        printf("%s: ok\n", argv[2]);
        return 0;
    }
    if (argc == 1 ||
        (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))) {
        printf("usage: tributary config [--example | --check FILE]\n\n"
               "Every key can be set in the YAML file, as an environment variable\n"
               "TRIBUTARY_<PATH> (dots as underscores, upper case), or with --set KEY=VALUE.\n"
               "--example prints a complete commented configuration; --check loads FILE\n"
               "(and the environment) and reports the first error.\n\nkeys:\n");
        config_print_help(stdout);
        return 0;
    }
    fprintf(stderr, "usage: tributary config [--example | --check FILE]\n");
    return 2;
}
