/* Model metrics: regression (RMSE, MAE, R2, NASA C-MAPSS score, over a batch or running record by
 * record) and classification (accuracy, precision, recall, F1, ROC AUC, log-loss, over a batch). */
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

/* Running binary classification metrics, one (label, probability of the positive class) pair
 * at a time: a label is positive when it is not 0. Log-loss clips the probability to
 * [DBL_EPSILON, 1 - DBL_EPSILON] as metrics_classification_compute does; a prediction is right
 * when p >= 0.5 matches a positive label or p < 0.5 a negative one. A plain value: start it with
 * `= {0}`. */
struct metrics_running_class {
    size_t count;
    size_t correct;
    double sum_log_loss;
};

/* Adds one pair. Never fails. */
void metrics_running_class_add(struct metrics_running_class *running, double y_true, double p);

/* Adds everything `from` has seen to `into`. */
void metrics_running_class_merge(struct metrics_running_class *into,
                                 const struct metrics_running_class *from);

/* The mean log-loss and the accuracy so far (NaN for both before the first pair). */
void metrics_running_class_get(const struct metrics_running_class *running, double *log_loss,
                               double *accuracy);

/* Classification metrics over a batch, defined to equal scikit-learn 1.2's (the version Debian
 * ships, which the unit tests check against):
 *   accuracy   the fraction of rows whose predicted class (the argmax of the row's probabilities,
 *              the first one on ties) is the true one: accuracy_score.
 *   precision, recall, f1
 *              binary (nclasses 2): those of the positive class classes[1], as
 *              precision_score / recall_score / f1_score(y_true, y_pred, pos_label=classes[1],
 *              zero_division=0); a ratio whose denominator is 0 is 0, and F1 is 0 when
 *              precision + recall is 0.
 *              multiclass: the unweighted mean over the classes that occur in y_true or in the
 *              predictions (scikit-learn's default labels) of the per-class values, as
 *              average='macro', zero_division=0; a class that is neither true nor predicted
 *              anywhere is left out of the mean. F1 is the mean of per-class F1s.
 *   auc        binary: roc_auc_score(y_true == classes[1], proba[:, 1]), the area under the ROC
 *              curve by the trapezoid rule over distinct scores, so that a tie between a positive
 *              and a negative counts one half (the Mann-Whitney statistic with average ranks).
 *              multiclass: the unweighted mean over all nclasses classes of the one-versus-rest
 *              binary AUC of proba[:, c], as roc_auc_score(multi_class='ovr', average='macro',
 *              labels=classes). NaN when any of those AUCs is undefined, that is when a class
 *              (binary: either class) is absent from y_true or is all of it; scikit-learn raises
 *              ValueError there. Unlike scikit-learn, rows need not sum to 1.
 *   log_loss   log_loss(y_true, proba, labels=classes): each probability is clipped to
 *              [eps, 1 - eps] with eps = DBL_EPSILON (numpy's finfo(float64).eps, the "auto"
 *              eps of scikit-learn 1.2), the row is divided by its clipped sum, and the loss is
 *              the mean over rows of -log(probability of the true class). A probability of 0 for
 *              the true class therefore costs -log(DBL_EPSILON), about 36.04, not infinity.
 * count is the number of rows and nclasses the number of classes. When count is 0, nclasses is
 * below 2, or a label is not one of the classes, every double is NaN. */
struct metrics_classification {
    double accuracy, precision, recall, f1, auc, log_loss;
    size_t count;
    size_t nclasses;
};

/* Fills *out from n rows: y_true[i] is row i's label, one of classes[0..nclasses) (distinct
 * values, compared with ==); proba[i * nclasses + c] is the row's probability of classes[c]
 * (finite; rows normally sum to 1). Never fails; allocates and frees its own scratch memory. */
void metrics_classification_compute(const double *y_true, const double *proba,
                                    const double *classes, size_t nclasses, size_t n,
                                    struct metrics_classification *out);

#endif
