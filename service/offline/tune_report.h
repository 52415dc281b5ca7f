/* The HTML report of a tuning run: one self-contained file, no script and no external resource,
 * with the best trial, inline SVG plots (loss per trial, loss against each parameter) and a table
 * of every trial.
 *
 * What the report shows, and the rules behind it:
 *  - A trial "completed" when ok is true and its loss is finite; an ok trial with a NaN or
 *    infinite loss is shown as failed ("loss is not finite"), so no such number reaches a plot.
 *  - The best trial is the completed one with the lowest loss (ties: the lowest id).
 *  - Loss per trial: x is the trial id, y the loss; completed trials are dots, failed ones small
 *    crosses on the top edge, and a step line follows the running minimum in id order.
 *  - One scatter per parameter: the parameter's value (x) against the loss (y), for the trials in
 *    which it was active (value not NaN); failed trials are crosses on the top edge, the best
 *    trial is highlighted. A numeric parameter gets a log axis when all its values are > 0 and
 *    the largest is more than 100 times the smallest (over 2 decades), else a linear one; a
 *    categorical parameter gets one column per option, its label as the tick.
 *  - The loss axis of all plots is clipped at the 95th percentile of the completed losses (the
 *    order statistic at rank floor(0.95 (n - 1)), numpy.percentile's method "lower") when at
 *    least 10 trials completed and the largest loss lies further above that percentile than the
 *    smallest lies below it; the axis then ends 5% of its span above that percentile, the trials
 *    above it are triangles on the top edge, and the plot and its caption say so.
 *  - Axes reach 5% of their span beyond the data on each side; linear axes have ticks at 1-2-5
 *    steps, log axes at powers of ten.
 *  - All text is HTML-escaped; invalid UTF-8 becomes U+FFFD and control characters are dropped,
 *    so the document (and each <svg> in it) is also well-formed XML.
 *
 * Marks a machine may read (the unit test does): each plot is an <svg> with data-plot="loss" or
 * data-plot="param" (then data-param, the parameter's name, and data-scale: "linear", "log" or
 * "categorical"), and data-y-clip (the clip value) when its loss axis is clipped. Markers carry
 * class "trial" (a completed trial; also "best" for the best one, "clipped" when above the clip),
 * or "failed"; the running minimum is the path of class "best-so-far", drawn with absolute M and L
 * commands only. Ticks are <text class="tick x|y" data-value="..."> (class "tick xcat" for the
 * labels of a categorical axis). */
#ifndef TRIBUTARY_TUNE_REPORT_H
#define TRIBUTARY_TUNE_REPORT_H

#include <stdbool.h>
#include <stddef.h>

/* A searched parameter. */
struct tune_report_param {
    const char *name;
    bool categorical; /* its values are option indices into the report's labels */
};

/* One trial of the search. */
struct tune_report_trial {
    int id;               /* trial number, 0.. */
    bool ok;              /* false: it failed, the reason in error */
    double loss;          /* when ok */
    const double *values; /* nparams numbers, NAN for a parameter inactive in this trial; for a
                             categorical parameter an option index. NULL: all inactive */
    double seconds;       /* wall time of the trial */
    const char *error;    /* when failed; may be NULL */
};

/* Everything the report shows. The report only reads it. Any string may be NULL (shown empty, or
 * as a default: title "Tuning report", loss_name "loss"). */
struct tune_report {
    const char *title;     /* e.g. "fd001-rul: TPE, 100 trials" */
    const char *loss_name; /* e.g. "cv_rmse" */
    const struct tune_report_param *params;
    size_t nparams;
    const char *const *const *labels; /* labels[p][option] for categorical params (NULL for numeric
                                         ones, or NULL altogether: options shown as numbers) */
    const size_t *nlabels;            /* nlabels[p]: how many labels[p] holds (NULL: none) */
    const struct tune_report_trial *trials; /* in any order */
    size_t ntrials;
    const char *best_config_yaml; /* the best trial's settings as YAML text, shown in a <pre> */
    const char *summary; /* a line or two: budget, parallelism, seed, stop reason, version */
};

/* Returns the report as one HTML document, a NUL-terminated string that the caller frees with
 * free(). Never NULL; any input (no trials, all failed, non-finite numbers) gives a valid
 * document. report must not be NULL. */
char *tune_report_html(const struct tune_report *report);

/* Writes the report to path: to "path.tmp.<pid>", fsynced, renamed over path, so that a reader
 * sees the old file or the new one, never a part. Returns TB_OK, or TB_IO with a message naming
 * path in err (the temporary is then removed and path is untouched). */
int tune_report_write(const struct tune_report *report, const char *path, char *err, size_t errsz);

#endif
