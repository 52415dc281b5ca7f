/* What the subcommands share: their options and --help, and the configuration
 * built from -c FILE, the environment and --set KEY=VALUE. */
#ifndef TRIBUTARY_CLI_H
#define TRIBUTARY_CLI_H

#include "service/config/config.h"

#include <stddef.h>

/* A command's own option: a shorthand for one configuration key
 * (`--workers 4` is `--set serve.workers=4`). */
struct cli_option {
    const char *name; /* long name without "--" */
    const char *arg;  /* the argument's name in --help ("N") */
    const char *config_key;
    const char *help;
};

struct cli_command {
    const char *name;        /* "train" */
    const char *usage;       /* "tributary train -c FILE [OPTIONS]" */
    const char *description; /* paragraphs shown under the usage line */
    const struct cli_option *options;
    size_t noptions;
    int min_args, max_args; /* positional arguments accepted */
};

/* Parses argv (argv[0] is the command's name) and builds the configuration.
 * Every command takes -c/--config FILE, --set KEY=VALUE (repeatable) and
 * -h/--help besides its own options. The configuration is the defaults, then
 * the file, then TRIBUTARY_* environment variables, then the options in
 * order; log.level is applied. Returns the configuration (free with
 * config_destroy) with positional arguments from argv[*first_arg]; or NULL
 * with *exit_code 0 after printing --help, or 2 after printing a usage or
 * configuration error. */
struct config *cli_start(int argc, char **argv, const struct cli_command *cmd, int *first_arg,
                         int *exit_code);

/* Builds a configuration from a file (path may be NULL), the environment and
 * `nsets` KEY=VALUE assignments. Returns it or NULL with err naming the key and
 * where it came from. */
struct config *cli_config_load(const char *path, char *const *sets, size_t nsets, char *err,
                               size_t errsz);

#endif
