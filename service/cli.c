/* Configuration loading and Kafka property hand-off for the subcommands. */
#include "service/cli.h"

#include "service/error.h"
#include "service/log.h"
#include "service/mem.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

extern char **environ;

void cli_config_args_add_set(struct cli_config_args *args, const char *assignment)
{
    mem_grow((void **)&args->sets, &args->sets_cap, args->nsets + 1, sizeof *args->sets);
    args->sets[args->nsets++] = mem_strdup(assignment);
}

void cli_config_args_add(struct cli_config_args *args, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value);
    char *assignment = mem_alloc(klen + vlen + 2);
    memcpy(assignment, key, klen);
    assignment[klen] = '=';
    memcpy(assignment + klen + 1, value, vlen + 1);
    mem_grow((void **)&args->sets, &args->sets_cap, args->nsets + 1, sizeof *args->sets);
    args->sets[args->nsets++] = assignment;
}

void cli_config_args_free(struct cli_config_args *args)
{
    for (size_t i = 0; i < args->nsets; i++)
        free(args->sets[i]);
    free(args->sets);
    args->sets = NULL;
    args->nsets = args->sets_cap = 0;
}

struct config *cli_config_load(const struct cli_config_args *args, char *err, size_t errsz)
{
    struct config *cfg = config_new();
    if (args->path && config_load_file(cfg, args->path, err, errsz) != TB_OK)
        goto fail;
    if (config_apply_env(cfg, environ, err, errsz) != TB_OK)
        goto fail;
    for (size_t i = 0; i < args->nsets; i++) {
        const char *eq = strchr(args->sets[i], '=');
        if (!eq || eq == args->sets[i]) {
            tb_fail(err, errsz, TB_CONFIG, "--set '%s': expected KEY=VALUE", args->sets[i]);
            goto fail;
        }
        char *key = mem_strndup(args->sets[i], (size_t)(eq - args->sets[i]));
        int rc = config_set(cfg, key, eq + 1, "--set", err, errsz);
        free(key);
        if (rc != TB_OK)
            goto fail;
    }
    enum log_level level;
    if (log_parse_level(cfg->log_level, &level) != TB_OK) {
        tb_fail(err, errsz, TB_CONFIG, "log.level: '%s' is not debug, info, warn, error or off",
                cfg->log_level);
        goto fail;
    }
    log_set_level(level);
    return cfg;

fail:
    config_destroy(cfg);
    return NULL;
}

struct kafka_prop *cli_kafka_props(const struct config *cfg, size_t *nprops)
{
    struct kafka_prop *props = mem_calloc(cfg->nkafka + 1, sizeof *props);
    for (size_t i = 0; i < cfg->nkafka; i++) {
        props[i].key = cfg->kafka[i].key;
        props[i].value = cfg->kafka[i].value;
    }
    *nprops = cfg->nkafka;
    return props;
}

static void cli_usage(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", cmd->usage, cmd->description);
    fprintf(out, "  %-26s %s\n", "-c, --config FILE", "YAML configuration file");
    fprintf(out, "  %-26s %s\n", "--set KEY=VALUE", "override one configuration key (repeatable)");
    for (size_t i = 0; i < cmd->noptions; i++) {
        const struct cli_option *o = &cmd->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (o->config_key)
            fprintf(out, "  %-26s %s (%s)\n", left, o->help, o->config_key);
        else
            fprintf(out, "  %-26s %s\n", left, o->help);
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "show this help");
    fprintf(out, "\nEvery configuration key can also be set in the environment as TRIBUTARY_ and\n"
                 "its upper-cased path (TRIBUTARY_SERVE_WORKERS=4); `tributary config --help`\n"
                 "lists them all.\n");
}

int cli_parse(int argc, char **argv, const struct cli_command *cmd, struct cli_config_args *args,
              const char **values, int *first_arg)
{
    enum { CLI_CONFIG = 1000, CLI_SET, CLI_HELP };
    size_t n = cmd->noptions;
    struct option *longopts = mem_calloc(n + 4, sizeof *longopts);
    for (size_t i = 0; i < n; i++) {
        longopts[i].name = cmd->options[i].name;
        longopts[i].has_arg = cmd->options[i].arg ? required_argument : no_argument;
        longopts[i].val = (int)i;
        values[i] = NULL;
    }
    longopts[n] = (struct option){"config", required_argument, NULL, CLI_CONFIG};
    longopts[n + 1] = (struct option){"set", required_argument, NULL, CLI_SET};
    longopts[n + 2] = (struct option){"help", no_argument, NULL, CLI_HELP};

    int rc = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        if (opt == 'c' || opt == CLI_CONFIG) {
            args->path = optarg;
        } else if (opt == CLI_SET) {
            cli_config_args_add_set(args, optarg);
        } else if (opt == 'h' || opt == CLI_HELP) {
            cli_usage(cmd, stdout);
            rc = 1;
        } else if (opt >= 0 && (size_t)opt < n) {
            const struct cli_option *o = &cmd->options[opt];
            if (o->config_key)
                cli_config_args_add(args, o->config_key, optarg);
            else
                values[opt] = o->arg ? optarg : "1";
        } else {
            fprintf(stderr, "tributary %s: unknown option or missing argument: '%s'\n", argv[0],
                    argv[optind - 1]);
            fprintf(stderr, "Try 'tributary %s --help'.\n", argv[0]);
            rc = 2;
        }
    }
    *first_arg = optind;
    free(longopts);
    return rc;
}
