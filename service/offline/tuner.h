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

/* What a running job reports, in this order: UNFINISHED and RESUMED (each at most once, before
 * any trial runs), a TRIAL per trial this run finishes, then TRIALS_OVER once the trial threads
 * have ended (before the refit). */
enum tuner_event_kind {
    TUNER_EVENT_UNFINISHED,  /* the log stops at `trial`, which never finished: it and every trial
                                after it run again */
    TUNER_EVENT_RESUMED,     /* `done` trials were read back from the log (best_*: their best) */
    TUNER_EVENT_TRIAL,       /* trial `trial` finished */
    TUNER_EVENT_TRIALS_OVER, /* no trial runs any more */
};

/* The numbers of an event; the fields an event does not set are 0 (best_trial -1). */
struct tuner_event {
    enum tuner_event_kind kind;
    const char *log_path; /* the trials log (every event) */
    size_t trial;         /* UNFINISHED, TRIAL */
    bool ok;              /* TRIAL: it gave a loss */
    double loss;          /* TRIAL, when ok */
    double seconds;       /* TRIAL: its wall time */
    const char *error;    /* TRIAL, when not ok: why (never NULL then) */
    size_t done, total;   /* RESUMED, TRIAL: trials finished (resumed ones too) of tune.trials */
    int best_trial;       /* RESUMED, TRIAL: the best so far (a TRIAL event's in the order trials
                             finished), -1 when none */
    double best_loss;
    double trials_per_s; /* TRIAL: trials this run finished per second of its wall time */
    double eta_s;        /* TRIAL: until tune.trials at that rate; 0 when unknown */
};

/* Receives the events of tuner_run; opaque is the one given to it. TRIAL events come from the
 * trial threads with the tuner's lock held, one at a time: the callback must return promptly and
 * must not call back into the tuner. The event and its strings live only during the call. */
typedef void tuner_event_fn(const struct tuner_event *event, void *opaque);

/* Runs the job described by cfg (tune.*, and train.* / pipeline.* as the base of every trial)
 * over space, reporting progress to on_event (with opaque; NULL: none) and printing nothing.
 * exe is the tributary binary the trials run. Returns TB_OK with *result filled (also when every
 * trial failed: then nothing is refitted), or an error with err: TB_CONFIG for a bad tune.* value
 * or a trials log that does not belong to this space, TB_IO when the directory or log cannot be
 * written. An interrupt (SIGINT, SIGTERM) stops the trials running, keeps the log and returns
 * TB_OK with stopped "interrupted" and no refit. */
int tuner_run(const struct config *cfg, const struct tune_space *space, const char *exe,
              tuner_event_fn *on_event, void *opaque, struct tuner_result *result, char *err,
              size_t errsz);

#endif
