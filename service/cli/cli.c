/* Subcommand options, configuration loading and Kafka property hand-off. */
#include "service/cli/cli.h"

#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

extern char **environ;

struct config *cli_config_load(const char *path, char *const *sets, size_t nsets, char *err,
                               size_t errsz)
{
    struct config *cfg = config_new();
    if (path && config_load_file(cfg, path, err, errsz) != TB_OK)
        goto fail;
    if (config_apply_env(cfg, environ, err, errsz) != TB_OK)
        goto fail;
    for (size_t i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) {
            tb_fail(err, errsz, TB_CONFIG, "--set '%s': expected KEY=VALUE", sets[i]);
            goto fail;
        }
        char *key = mem_strndup(sets[i], (size_t)(eq - sets[i]));
        int rc = config_set(cfg, key, eq + 1, "--set", err, errsz);
        free(key);
        if (rc != TB_OK)
            goto fail;
    }
    enum log_level level;
    if (log_parse_level(cfg->log_level, &level) != TB_OK) {
        tb_fail(err, errsz, TB_CONFIG, "log.level: '%s' is not debug, info, warn or error",
                cfg->log_level);
        goto fail;
    }
    log_set_level(level);
    return cfg;

fail:
    config_destroy(cfg);
    return NULL;
}

static void cli_usage(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", cmd->usage, cmd->description);
    fprintf(out, "  %-26s %s\n", "-c, --config FILE", "YAML configuration file");
    fprintf(out, "  %-26s %s\n", "--set KEY=VALUE", "set one configuration key (repeatable)");
    for (size_t i = 0; i < cmd->noptions; i++) {
        const struct cli_option *o = &cmd->options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", o->name, o->arg);
        fprintf(out, "  %-26s %s (%s)\n", left, o->help, o->config_key);
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "show this help");
    fprintf(out, "\nEvery configuration key can also be set in the environment as TRIBUTARY_ and\n"
                 "its upper-cased path (TRIBUTARY_SERVE_WORKERS=4); `tributary config --help`\n"
                 "lists them all.\n");
}

/* Appends "key=value" (copied) to the assignments; value alone, as --set gives it, when key is
 * NULL. */
static void cli_add_set(char ***sets, size_t *nsets, size_t *cap, const char *key,
                        const char *value)
{
    const char *prefix = key ? key : "", *equals = key ? "=" : "";
    size_t size = strlen(prefix) + strlen(equals) + strlen(value) + 1;
    char *assignment = mem_alloc(size);
    snprintf(assignment, size, "%s%s%s", prefix, equals, value);
    mem_grow((void **)sets, cap, *nsets + 1, sizeof **sets);
    (*sets)[(*nsets)++] = assignment;
}

struct config *cli_start(int argc, char **argv, const struct cli_command *cmd, int *first_arg,
                         int *exit_code)
{
    enum { CLI_CONFIG = 1000, CLI_SET, CLI_HELP };
    size_t n = cmd->noptions;
    struct option *longopts = mem_calloc(n + 4, sizeof *longopts);
    for (size_t i = 0; i < n; i++)
        longopts[i] = (struct option){cmd->options[i].name, required_argument, NULL, (int)i};
    longopts[n] = (struct option){"config", required_argument, NULL, CLI_CONFIG};
    longopts[n + 1] = (struct option){"set", required_argument, NULL, CLI_SET};
    longopts[n + 2] = (struct option){"help", no_argument, NULL, CLI_HELP};

    const char *path = NULL;
    char **sets = NULL; /* --set and option assignments, in order */
    size_t nsets = 0, sets_cap = 0;
    struct config *cfg = NULL;
    *exit_code = 2;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        if (opt == 'c' || opt == CLI_CONFIG) {
            path = optarg;
        } else if (opt == CLI_SET) {
            cli_add_set(&sets, &nsets, &sets_cap, NULL, optarg);
        } else if (opt == 'h' || opt == CLI_HELP) {
            cli_usage(cmd, stdout);
            *exit_code = 0;
            goto done;
        } else if (opt >= 0 && (size_t)opt < n) {
            cli_add_set(&sets, &nsets, &sets_cap, cmd->options[opt].config_key, optarg);
        } else {
            fprintf(stderr,
                    "tributary %s: unknown option or missing argument: '%s'\n"
                    "Try 'tributary %s --help'.\n",
                    cmd->name, argv[optind - 1], cmd->name);
            goto done;
        }
    }
    int npositional = argc - optind;
    if (npositional < cmd->min_args || npositional > cmd->max_args) {
        fprintf(stderr, "usage: %s\nTry 'tributary %s --help'.\n", cmd->usage, cmd->name);
        goto done;
    }
    char err[1024];
    cfg = cli_config_load(path, sets, nsets, err, sizeof err);
    if (!cfg)
        fprintf(stderr, "tributary %s: %s\n", cmd->name, err);
    *first_arg = optind;

done:
    for (size_t i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    free(longopts);
    return cfg;
}
