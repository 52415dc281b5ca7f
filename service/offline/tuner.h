/* Hyperparameter tuning: trials of a search space (tune.space) run as `tributary train`
 * processes, tune.parallelism at once, proposed by TPE or random search; a trials log that a
 * later run resumes; early stopping; an HTML report; and the best configuration refitted on all
 * the training data and published, so that a running serve swaps it in.
 *
 * Each trial is the configuration in effect with the trial's values applied, written to
 * DIR/<name>-trials/<id>.yaml and trained by a child `tributary train` (its output beside it in
 * <id>.log); its loss is tune.loss read from the manifest of the artefact it writes (1 minus the
 * metric with a "1-" prefix). A trial whose process fails, times out (tune.trial_timeout_s, then
 * SIGKILL) or yields a loss that is not finite is recorded as failed, with the reason, and the job
 * goes on. Children share the cores: each gets OpenBLAS threads = max(1, cores / parallelism).
 *
 * Determinism: with P at once, trial k is proposed from exactly the results of trials
 * 0 .. k - P (it waits for them), so one seed and parallelism give the same trials whatever the
 * timing. Early stopping counts in that order too.
 *
 * The refit trains the best configuration without folds on the training side of train.split: the
 * search chose on folds of those rows, so the holdout (and train.test_input) metrics in the
 * refitted manifest are of data the search never saw. */
#ifndef TRIBUTARY_TUNER_H
#define TRIBUTARY_TUNER_H

#include "service/config/config.h"
#include "service/offline/tune_space.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tuner_result {
    size_t trials;  /* in the log: resumed and new */
    size_t resumed; /* read back from an earlier run's log */
    size_t failed;  /* of all trials */
    int best_trial; /* -1 when no trial succeeded */
    double best_loss;
    const char *stopped; /* why the search ended: "budget", "no improvement", "threshold",
                            "interrupted" (static strings) */
    int32_t published;   /* registry version of the refitted best model, 0 when not published */
    char log_path[1024], report_path[1024], best_config_path[1024], best_artefact_path[1024];
};

/* Runs the job described by cfg (tune.*, and train.* / pipeline.* as the base of every trial)
 * over space, printing progress to stdout (a line per trial, or one updated line on a terminal).
 * exe is the tributary binary the trials run. Returns TB_OK with *result filled (also when every
 * trial failed: then nothing is refitted), or an error with err: TB_CONFIG for a bad tune.* value
 * or a trials log that does not belong to this space, TB_IO when the directory or log cannot be
 * written. An interrupt (SIGINT, SIGTERM) stops the trials running, keeps the log and returns
 * TB_OK with stopped "interrupted" and no refit. */
int tuner_run(const struct config *cfg, const struct tune_space *space, const char *exe,
              struct tuner_result *result, char *err, size_t errsz);

#endif
