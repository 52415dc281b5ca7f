/* `tributary tune`: hyperparameter search over a space of configuration values. */
#include "service/base/error.h"
#include "service/base/signals.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/offline/tune_space.h"
#include "service/offline/tuner.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

static const struct cli_option tune_options[] = {
    {"space", "FILE", "tune.space", "the search space"},
    {"trials", "N", "tune.trials", "trials in all"},
    {"parallelism", "P", "tune.parallelism", "trials at once"},
    {"algorithm", "ALGO", "tune.algorithm", "tpe or random"},
    {"seed", "N", "tune.seed", "seed of the search"},
    {"loss", "METRIC", "tune.loss", "manifest metric to minimise, or 1-<metric>"},
    {"publish", "REGISTRY", "registry.directory",
     "publish the refitted best model into this registry directory"},
};

static const struct cli_command tune_command = {
    "tune",
    "tributary tune -c FILE --space SPACE [OPTIONS]",
    "Searches the hyperparameters in SPACE (configuration keys mapped to Hyperopt-style\n"
    "distributions: uniform, loguniform, quniform, qloguniform, normal, randint,\n"
    "choice, and nested choices) with TPE or random search. Each trial trains the\n"
    "configuration with the trial's values in a `tributary train` process, P at a\n"
    "time, and its loss is tune.loss from the artefact's manifest (use train.folds or\n"
    "train.split for validation metrics). Trials go to tune.directory/<name>-trials.jsonl,\n"
    "which a later run resumes; tune.early_stop_trials and tune.loss_threshold stop\n"
    "early. At the end the best configuration is written to <name>-best.yaml,\n"
    "refitted without folds to <name>-best.avro (its holdout and test metrics are of\n"
    "rows the search never saw) and published to the\n"
    "registry (and its topic), and a report with plots goes to <name>-report.html.",
    tune_options,
    sizeof tune_options / sizeof tune_options[0],
    0,
    0,
};

/* Prints a trial's progress: on a terminal one line kept up to date, else a line per trial. */
static void tune_print_trial(const struct tuner_event *e, bool tty)
{
    char best[64] = "none yet";
    if (e->best_trial >= 0)
        snprintf(best, sizeof best, "%.6g (trial %d)", e->best_loss, e->best_trial);
    char now[128];
    if (e->ok)
        snprintf(now, sizeof now, "trial %zu: loss %.6g in %.1f s", e->trial, e->loss, e->seconds);
    else
        snprintf(now, sizeof now, "trial %zu failed: %.80s", e->trial, e->error);
    if (tty)
        printf("\r\033[K[%zu/%zu] best %s | %.2f trials/s | ETA %.0f s | %s", e->done, e->total,
               best, e->trials_per_s, e->eta_s, now);
    else
        printf("[%zu/%zu] %s; best %s; %.2f trials/s, ETA %.0f s\n", e->done, e->total, now, best,
               e->trials_per_s, e->eta_s);
    fflush(stdout);
}

/* The tuner's events, as the user sees them on stdout; opaque points to whether it is a terminal.
 */
static void tune_print_event(const struct tuner_event *e, void *opaque)
{
    bool tty = *(const bool *)opaque;
    switch (e->kind) {
    case TUNER_EVENT_UNFINISHED:
        printf("tune: trial %zu of %s never finished; going on from it\n", e->trial, e->log_path);
        break;
    case TUNER_EVENT_RESUMED:
        printf("tune: resuming %s: %zu trials done, best %.6g (trial %d)\n", e->log_path, e->done,
               e->best_loss, e->best_trial);
        break;
    case TUNER_EVENT_TRIAL:
        tune_print_trial(e, tty);
        break;
    case TUNER_EVENT_TRIALS_OVER:
        if (tty)
            printf("\n"); /* ends the line kept up to date */
        break;
    }
}

int cmd_tune(int argc, char **argv)
{
    int first_arg, exit_code;
    struct config *cfg = cli_start(argc, argv, &tune_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024], exe[PATH_MAX];
    int status = 0;
    struct tune_space *space = NULL;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        fprintf(stderr, "tributary tune: cannot find its own binary\n");
        status = 1;
        goto done;
    }
    exe[len] = '\0';
    if (!cfg->tune.space[0]) {
        fprintf(stderr, "tributary tune: tune.space: no search space (--space FILE)\n");
        status = 2;
        goto done;
    }
    space = tune_space_load(cfg->tune.space, err, sizeof err);
    if (!space) {
        fprintf(stderr, "tributary tune: %s\n", err);
        status = 2;
        goto done;
    }
    signals_install();
    struct tuner_result result;
    bool tty = isatty(STDOUT_FILENO);
    int rc = tuner_run(cfg, space, exe, tune_print_event, &tty, &result, err, sizeof err);
    if (rc != TB_OK) {
        fprintf(stderr, "tributary tune: %s\n", err);
        status = rc == TB_CONFIG ? 2 : 1;
        goto done;
    }
    printf("tune: %zu trials (%zu resumed, %zu failed); stopped: %s\n", result.trials,
           result.resumed, result.failed, result.stopped);
    if (result.best_trial < 0) {
        printf("tune: no trial succeeded; see %s\n", result.log_path);
        status = 1;
        goto done;
    }
    printf("tune: best trial %d, %s %.6g\n", result.best_trial, cfg->tune.loss, result.best_loss);
    printf("tune: trials log %s\n", result.log_path);
    if (result.report_path[0])
        printf("tune: report %s\n", result.report_path);
    if (result.best_config_path[0] && result.stopped[0] != 'i') {
        printf("tune: best configuration %s, refitted on the training rows to %s\n",
               result.best_config_path, result.best_artefact_path);
        if (result.published)
            printf("tune: published %s version %d to %s\n", cfg->train.model_name,
                   (int)result.published, cfg->registry.directory);
    }
done:
    tune_space_destroy(space);
    config_destroy(cfg);
    return status;
}
