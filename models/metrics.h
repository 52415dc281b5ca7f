/* Regression metrics (RMSE, MAE, R2, NASA C-MAPSS score), over a batch or running record by record.
 */
#ifndef TRIBUTARY_METRICS_H
#define TRIBUTARY_METRICS_H

#include <stddef.h>

/* Error of predictions against true values over count pairs. R2 follows scikit-learn's
 * r2_score: 1 - SS_res / SS_tot; 1 when the true values are constant and predicted exactly,
 * 0 when they are constant and not; NaN for fewer than two pairs. With count 0 every field is
 * NaN. */
struct metrics_regression {
    double rmse, mae, r2;
    size_t count;
};

/* Fills *out from n pairs (y_true[i], y_pred[i]). Never fails. */
void metrics_regression_compute(const double *y_true, const double *y_pred, size_t n,
                                struct metrics_regression *out);

/* Returns the NASA C-MAPSS asymmetric score over n pairs: the sum, with d = y_pred - y_true, of
 * exp(-d/13) - 1 for d < 0 (early) and exp(d/10) - 1 for d >= 0 (late). 0 for n = 0. */
double metrics_nasa_score(const double *y_true, const double *y_pred, size_t n);

/* Running version of the same metrics, one pair at a time (a plain value: no allocation).
 * Start it with metrics_running_reset or `= {0}`; read its fields only through the functions. */
struct metrics_running {
    size_t count;
    double sum_abs_error;
    double sum_squared_error;
    double mean_true; /* Welford's running mean of y_true */
    double m2_true;   /* and sum of squared deviations from it */
    double nasa_score;
};

/* Empties the running metrics. */
void metrics_running_reset(struct metrics_running *running);

/* Adds one pair. Never fails. */
void metrics_running_add(struct metrics_running *running, double y_true, double y_pred);

/* Adds everything `from` has seen to `into` (e.g. per-worker metrics into a total). */
void metrics_running_merge(struct metrics_running *into, const struct metrics_running *from);

/* Fills *out with the metrics of every pair added so far (the same definitions as
 * metrics_regression_compute). */
void metrics_running_get(const struct metrics_running *running, struct metrics_regression *out);

/* Returns the NASA score of every pair added so far. */
double metrics_running_nasa_score(const struct metrics_running *running);

#endif
