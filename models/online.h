/* Per-key online models (RLS, FTRL-Proximal, anomaly scores, Holt trend RUL): one immutable model
 * description shared by all keys, and one flat array of doubles of state per key, learned record
 * by record. */
#ifndef TRIBUTARY_ONLINE_H
#define TRIBUTARY_ONLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Largest number of features a model accepts: RLS keeps a (nfeatures + 1)^2 / 2 matrix per key
 * and a scratch vector of nfeatures + 1 doubles on the stack. */
#define ONLINE_MAX_FEATURES 1024

enum online_kind {
    ONLINE_RLS,
    ONLINE_FTRL_LINEAR,
    ONLINE_FTRL_LOGISTIC,
    ONLINE_ANOMALY,
    ONLINE_HOLT
};
enum online_anomaly_stat { ONLINE_WELFORD, ONLINE_EWMA };
enum online_anomaly_score { ONLINE_SCORE_ZMAX, ONLINE_SCORE_MAHALANOBIS };

/* The hyperparameters of every kind; a kind reads only its own fields (online_new validates only
 * those). Defaults, as online_params_default sets them, in brackets.
 *
 * rls: exponentially weighted recursive least squares on [x, 1] (the intercept is an extra
 *   always-1 feature, penalised like the others), target y - offset. With forgetting 1 the state
 *   after n records is batch ridge on them: w = (X1'X1 + delta I)^-1 X1'(y - offset), X1 = [X, 1];
 *   with forgetting lambda < 1 record i of n has weight lambda^(n-1-i) and the prior delta I has
 *   lambda^n. Forgetting < 1 on features that stop varying lets P grow without bound (covariance
 *   wind-up), as in any RLS.
 * ftrl, ftrl_logistic: FTRL-Proximal (McMahan et al., KDD 2013, algorithm 1) with per-coordinate
 *   rates alpha / (beta + sqrt(n_i)) and an intercept coordinate that l1 and l2 leave alone. Loss
 *   (1/2)(offset + w.x + b - y)^2 for ftrl, log loss of sigmoid(offset + w.x + b) for
 *   ftrl_logistic. l1 is McMahan's closed-form lambda_1 (exact zeros); l2 * w_i is added to the
 *   gradient of every record, so that many passes over n records approach the minimiser of
 *   sum_i loss_i + (n * l2 / 2) ||w||^2 (scikit-learn's Ridge(alpha = n * l2) for ftrl and
 *   LogisticRegression(C = 1 / (n * l2)) for ftrl_logistic).
 * anomaly: per feature, the mean and population variance of every record learned (Welford) or
 *   exponentially weighted ones (EWMA); see online_step for the update and the score.
 * holt: Holt's linear trend (level and trend) on feature `indicator`, and the remaining useful
 *   life until the level reaches `threshold`; see online_step. */
struct online_params {
    enum online_kind kind;
    double forgetting;               /* rls: lambda in (0, 1] [1] */
    double delta;                    /* rls: P0 = I / delta, the ridge alpha; > 0 [1] */
    double alpha;                    /* ftrl: rate numerator; > 0 [0.1] */
    double beta;                     /* ftrl: rate offset; >= 0 [1] */
    double l1;                       /* ftrl: >= 0 [0] */
    double l2;                       /* ftrl: per-record L2 on the gradient; >= 0 [0] */
    enum online_anomaly_stat stat;   /* anomaly: [ONLINE_WELFORD] */
    double ewma_alpha;               /* anomaly, EWMA: weight of the newest record, (0, 1] [0.05] */
    enum online_anomaly_score score; /* anomaly: [ONLINE_SCORE_ZMAX] */
    size_t warmup;                   /* anomaly: score 0 until this many records; >= 1 [10] */
    double min_std;                  /* anomaly: floor of each std; > 0 [1e-9] */
    size_t indicator;                /* holt: feature index of the health indicator [0] */
    double level_alpha;              /* holt: level smoothing, (0, 1] [0.3] */
    double trend_beta;               /* holt: trend smoothing, (0, 1] [0.1] */
    double threshold;                /* holt: the failure level, finite [0] */
    int direction;                   /* holt: +1 failure going up, -1 going down [-1] */
    double horizon;                  /* holt: largest RUL reported, > 0 [1000] */
};

/* Sets every field of *p to its default (above) and p->kind to kind. */
void online_params_default(struct online_params *p, enum online_kind kind);

/* An online model: kind, parameters and feature count. Immutable once made, so one model may be
 * shared by any number of threads, each updating its own keys' states. */
struct online_model;

/* Returns a model for rows of nfeatures doubles with a copy of *p, or NULL with a message in err
 * naming the bad parameter ("online.forgetting must be in (0, 1], not 1.5"): an unknown kind,
 * stat or score, a value out of its range (see struct online_params), nfeatures 0 or above
 * ONLINE_MAX_FEATURES, or (holt) indicator >= nfeatures. The caller frees the model with
 * online_destroy. */
struct online_model *online_new(const struct online_params *p, size_t nfeatures, char *err,
                                size_t errsz);

/* Frees the model; NULL is a no-op. States made for it are the caller's. */
void online_destroy(struct online_model *m);

/* The kind, the feature count and the parameters the model was made with. */
enum online_kind online_model_kind(const struct online_model *m);
size_t online_nfeatures(const struct online_model *m);
const struct online_params *online_model_params(const struct online_model *m);

/* Returns the number of doubles of one key's state; with d = nfeatures + 1:
 *   rls 1 + d + d(d+1)/2, ftrl and ftrl_logistic 1 + 3d, anomaly 1 + 2 nfeatures, holt 3.
 * Layout (state[0] is always the number of records learned):
 *   rls      [count, w (d, intercept last), P (upper triangle, row by row)]
 *   ftrl     [count, z (d), n (d), w (d)]  (w is the closed form of z and n, kept to save work)
 *   anomaly  [count, mean (nfeatures), M2 (Welford: sum of squared deviations) or var (EWMA)]
 *   holt     [count, level, trend] */
size_t online_state_len(const struct online_model *m);

/* Writes a new key's state (nothing learned) into state (online_state_len doubles). */
void online_state_init(const struct online_model *m, double *state);

/* Checks that a state read back from storage is one this model could have made: a whole
 * non-negative count, finite values, non-negative variances and n, a positive P diagonal.
 * Returns TB_OK, or TB_PARSE with err naming the first bad element. */
int online_state_check(const struct online_model *m, const double *state, char *err, size_t errsz);

/* Whether the model learns from labels (rls, ftrl, ftrl_logistic) or from the features alone
 * (anomaly, holt). */
bool online_supervised(const struct online_model *m);

/* Whether the output is a probability P(y = 1) (ftrl_logistic). */
bool online_classifier(const struct online_model *m);

/* Returns the model's output for row x (nfeatures doubles, all finite: the caller guarantees it)
 * without changing state. offset is the global batch model's output for the row (its value for
 * a regression, its logit for a logistic model; 0 when there is none) and is added before the
 * link: rls and ftrl return offset + w.x + b, ftrl_logistic sigmoid(offset + w.x + b); anomaly
 * and holt ignore it. anomaly returns the score of x against the current statistics, holt the
 * RUL that online_step would return for x (as if x were learned). */
double online_predict(const struct online_model *m, const double *state, const double *x,
                      double offset);

/* Predicts for one record and learns from it; never fails and never allocates. x holds
 * nfeatures finite values: the caller checks them (a NaN or infinity would poison the key's
 * state for good, so such a record belongs in the dead-letter topic).
 * rls, ftrl, ftrl_logistic: returns online_predict(x, offset) as it was before learning, then
 *   learns from (x, y) when y is finite; NAN (or another non-finite y) is an unlabelled record,
 *   which changes nothing. ftrl_logistic takes y in [0, 1] (0 or 1; values between act as soft
 *   labels, values outside are clamped).
 * anomaly: returns the score of x against the statistics of the records before it, 0 while
 *   fewer than warmup records were learned; z_j = (x_j - mean_j) / max(std_j, min_std), ZMAX
 *   scores max_j |z_j|, MAHALANOBIS sqrt(sum_j z_j^2) (a diagonal covariance). Then learns x
 *   (y is ignored). Welford: the mean and the population variance M2 / count of all records.
 *   EWMA with a = ewma_alpha: the first record sets mean = x, var = 0; each later one
 *   d = x - mean, mean += a d, var = (1 - a)(var + a d^2), which is exactly the weighted mean
 *   and variance with weight a (1 - a)^(t - k) for record k >= 1 of t and (1 - a)^t for the first.
 * holt: learns first, then predicts (y is ignored). With v = x[indicator], the first record sets
 *   level = v, trend = 0; each later one level' = a v + (1 - a)(level + trend),
 *   trend' = b (level' - level) + (1 - b) trend (a = level_alpha, b = trend_beta). Returns the
 *   steps h until level + h trend reaches threshold in `direction`: 0 when the level is at or
 *   past it, horizon when the trend is 0 or points away, else min((threshold - level) / trend,
 *   horizon).
 * Every kind counts the records it learned in state[0]. */
double online_step(const struct online_model *m, double *state, const double *x, double y,
                   double offset);

/* Does online_step for n rows in order, with exactly its results: states[i] is row i's key state
 * (rows of one key share a pointer, and row i sees what rows before it taught), X is n x
 * nfeatures row-major, y and offsets hold n values or are NULL (all NAN, all 0). Writes the n
 * predictions into out. */
void online_step_batch(const struct online_model *m, double *const *states, const double *X,
                       const double *y, const double *offsets, size_t n, double *out);

/* Returns the number of records the state has learned. */
double online_learned(const struct online_model *m, const double *state);

/* Returns the configuration name of a kind: "rls", "ftrl", "ftrl_logistic", "anomaly", "holt"
 * ("?" for a value outside the enum). */
const char *online_kind_name(enum online_kind k);

/* Parses one of the names online_kind_name returns into *k. Returns TB_OK, or TB_CONFIG (and *k
 * unchanged) for any other string. */
int online_kind_parse(const char *name, enum online_kind *k);

#endif
