/* What the subcommands share: loading the configuration from -c FILE, the
 * environment and --set KEY=VALUE, and handing its kafka.* keys to connectors. */
#ifndef TRIBUTARY_CLI_H
#define TRIBUTARY_CLI_H

#include "connectors/kafka_conf.h"
#include "service/config.h"

#include <stddef.h>

/* The configuration options every command accepts, gathered by getopt. */
struct cli_config_args {
    const char *path;           /* -c FILE, or NULL */
    char **sets;                /* KEY=VALUE assignments, in order (owned) */
    size_t nsets, sets_cap;
};

/* Records one --set KEY=VALUE argument (copied). */
void cli_config_args_add_set(struct cli_config_args *args, const char *assignment);

/* Records a command's own option that stands for a configuration key, as if
 * it were --set key=value (copied). */
void cli_config_args_add(struct cli_config_args *args, const char *key, const char *value);

/* Frees what cli_config_args_add_set allocated. */
void cli_config_args_free(struct cli_config_args *args);

/* One command-line option of a command. */
struct cli_option {
    const char *name;           /* long name without "--" */
    const char *arg;            /* the argument's name in --help ("N"), NULL for a flag */
    const char *config_key;     /* the configuration key it sets, or NULL */
    const char *help;
};

/* What a command is, for its --help. */
struct cli_command {
    const char *usage;          /* "tributary train -c FILE [OPTIONS]" */
    const char *description;    /* paragraphs shown under the usage line */
    const struct cli_option *options;
    size_t noptions;
};

/* Parses argv (argv[0] is the command's name). Every command takes
 * -c/--config FILE, --set KEY=VALUE and -h/--help besides its own options; an
 * option with a config_key is recorded in args as if it were --set, any other
 * leaves its argument (or "1" for a flag) in values[i], where values has
 * cmd->noptions entries. Positional arguments are left from argv[*first_arg].
 * Returns 0 to go on, 1 when --help was printed (exit 0), or 2 after printing
 * a usage error. */
int cli_parse(int argc, char **argv, const struct cli_command *cmd, struct cli_config_args *args,
              const char **values, int *first_arg);

/* Builds the configuration: defaults, then the file (if any), then TRIBUTARY_*
 * environment variables, then --set assignments; applies log.level. Returns the
 * configuration (free with config_destroy) or NULL with err naming the key and
 * where it came from. */
struct config *cli_config_load(const struct cli_config_args *args, char *err, size_t errsz);

/* The kafka.* keys as librdkafka properties, in an array with room for one
 * more entry. The array is the caller's to free; its strings stay owned by cfg. */
struct kafka_prop *cli_kafka_props(const struct config *cfg, size_t *nprops);

#endif
