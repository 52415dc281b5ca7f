/* Hyperparameter search: a search space in Hyperopt's vocabulary, with conditional parameters,
 * and a study that proposes trials by random search or by Hyperopt's tree-structured Parzen
 * estimator (TPE), is told their losses in any order, and is reproducible from its seed.
 *
 * What the TPE study does, and where it departs from hyperopt's tpe.py (checked against its 0.3
 * sources):
 *  - Until n_startup trials have finished (OK or failed) it samples the prior (random search).
 *  - Then the finished trials are ranked by loss (ties by trial id) and the first
 *    n_below = min(ceil(gamma * sqrt(n)), max_below) of the n finished are "good", the rest "bad"
 *    (hyperopt: gamma 0.25, cap 25; note sqrt(n), not a fraction of n as in Optuna).
 *  - Each parameter is proposed on its own (one-dimensional expected improvement): a Parzen
 *    estimator l(x) is built from the good trials' values of that parameter and g(x) from the bad
 *    ones, each using only the trials in which the parameter was active; n_candidates values are
 *    drawn from l and the one with the largest log l(x) - log g(x) is proposed.
 *  - Numeric parameters: a Gaussian mixture with one component per observation plus the prior as
 *    one extra component (mean the middle of the range, standard deviation its width; for a
 *    normal parameter its mu and sigma) of weight prior_weight. A component's standard deviation
 *    is the larger distance to its sorted neighbours (the outermost take their one neighbour),
 *    clipped to [width / min(100, 1 + components), width]. With more than linear_forgetting
 *    observations the oldest n - linear_forgetting get linearly ramped weights from 1/n up to 1.
 *    The mixture is truncated to the bounds and renormalised. Log-scaled kinds live in log space.
 *    Quantised kinds score the probability mass of [x - q/2, x + q/2] clipped to the bounds.
 *  - Categorical parameters (choice, randint): forgetting-weighted counts plus prior
 *    pseudo-counts (choice: noptions * prior_weight * p_k; randint: prior_weight per value), as
 *    hyperopt.
 *  - Departures: pending trials are never used (hyperopt counts running trials towards
 *    n_startup_jobs and puts them among the bad with an infinite loss); failed trials count as
 *    finished with an infinite loss, as in hyperopt; a log-scaled continuous density is divided by
 *    its truncation mass like the others (hyperopt's LGMM1_lpdf omits it); sorting is stable.
 *
 * Randomness: xoshiro256** seeded from (seed, trial id, parameter index) through splitmix64, so a
 * proposal depends only on the seed, its trial id and the set of trials finished when it is asked,
 * never on the order of earlier calls. A study rebuilt by replaying the finished trials of a log
 * proposes exactly what the original would have proposed next. */
#ifndef TRIBUTARY_TPE_H
#define TRIBUTARY_TPE_H

#include <stddef.h>
#include <stdint.h>

/* The parent of a top-level parameter (tpe_space_add). */
#define TPE_ROOT (-1)

/* Largest number of parameters in a space. */
#define TPE_MAX_PARAMS 4096

/* Largest number of values of a choice or randint parameter. */
#define TPE_MAX_CATEGORIES 1048576

/* Trial ids run from 0 to TPE_MAX_TRIALS - 1. */
#define TPE_MAX_TRIALS 1000000

/* Kinds of parameter, as hyperopt's hp.* (rounding is half to even, as numpy.round). */
enum tpe_kind {
    TPE_UNIFORM,     /* uniform on [low, high] */
    TPE_LOGUNIFORM,  /* exp(uniform(log low, log high)), 0 < low: bounds are values, not their
                        logarithms (hyperopt's hp.loguniform takes log bounds) */
    TPE_QUNIFORM,    /* round(uniform(low, high) / q) * q: may reach round(low / q) * q < low */
    TPE_QLOGUNIFORM, /* round(loguniform(low, high) / q) * q: may be 0 when low < q / 2 */
    TPE_NORMAL,      /* normal with mean mu and standard deviation sigma, unbounded */
    TPE_RANDINT,     /* the integers low, low + 1, ..., high - 1, equally likely */
    TPE_CHOICE,      /* option index 0 .. noptions - 1, with the given probabilities */
};

/* A parameter's definition, as given to tpe_space_add. Fields a kind does not use are ignored. */
struct tpe_param {
    const char *name; /* unique in the space, not empty */
    enum tpe_kind kind;
    double low, high;            /* uniform kinds; randint: integers, high exclusive */
    double q;                    /* quantisation step of quniform, qloguniform (> 0) */
    double mu, sigma;            /* normal (sigma > 0) */
    size_t noptions;             /* choice: 1 .. TPE_MAX_CATEGORIES */
    const char *const *options;  /* choice: noptions labels, or NULL for none */
    const double *probabilities; /* choice: noptions weights >= 0 (normalised), NULL: equal */
};

/* A search space: parameters in the order they were added; a conditional parameter comes after
 * the choice it depends on. Not thread-safe while it is being built; read-only afterwards. */
struct tpe_space;

/* Returns an empty space; free with tpe_space_destroy. Never NULL. */
struct tpe_space *tpe_space_new(void);

/* Frees the space; NULL is a no-op. */
void tpe_space_destroy(struct tpe_space *space);

/* Adds a parameter, copying param and its strings and arrays. With parent = TPE_ROOT it is always
 * active; otherwise parent is the index of an earlier choice parameter and the new one is active
 * only when that parent is active and took option parent_option (nesting to any depth). Returns
 * the new parameter's index (>= 0), or TB_USAGE with a message in err when the definition is
 * invalid (bad bounds, duplicate name, parent not a choice, ...); the space is then unchanged. */
int tpe_space_add(struct tpe_space *space, int parent, int parent_option,
                  const struct tpe_param *param, char *err, size_t errsz);

/* Returns the number of parameters. */
size_t tpe_space_size(const struct tpe_space *space);

/* Returns the index of the parameter called name, or TB_NOTFOUND. */
int tpe_space_find(const struct tpe_space *space, const char *name);

/* Fills *param with the definition of parameter index (its strings and arrays belong to the space
 * and live as long as it; probabilities are normalised) and, when not NULL, *parent and
 * *parent_option with its condition (TPE_ROOT and -1 for a top-level one). Returns TB_OK, or
 * TB_USAGE when index is out of range. */
int tpe_space_describe(const struct tpe_space *space, size_t index, struct tpe_param *param,
                       int *parent, int *parent_option);

/* Returns the name of a kind ("uniform", "loguniform", "quniform", "qloguniform", "normal",
 * "randint", "choice"), or "?" for a value outside the enum. */
const char *tpe_kind_name(enum tpe_kind kind);

/* Parses a kind's name as tpe_kind_name gives it. Returns TB_OK, or TB_NOTFOUND. */
int tpe_kind_parse(const char *name, enum tpe_kind *out);

enum tpe_algo { TPE_RANDOM, TPE_TPE };

/* How a trial ended. */
enum tpe_status { TPE_OK, TPE_FAILED };

/* Settings of the TPE algorithm (random search reads none of them). */
struct tpe_options {
    size_t n_startup;         /* finished trials sampled from the prior first (hyperopt: 20) */
    double gamma;             /* n_below = ceil(gamma * sqrt(n)), in (0, 1] (0.25) */
    size_t max_below;         /* cap on n_below, >= 1 (25) */
    size_t n_candidates;      /* draws from l(x) per parameter, 1 .. 100000 (24) */
    double prior_weight;      /* weight of the prior component or pseudo-counts, > 0 (1.0) */
    size_t linear_forgetting; /* observations kept at full weight; 0: all (25) */
};

/* Returns hyperopt's defaults: 20, 0.25, 25, 24, 1.0, 25. */
struct tpe_options tpe_options_default(void);

/* A study over a space: trials are asked for, run, and told their loss. Not thread-safe: callers
 * that ask and tell from several threads hold one mutex around each call (each is quick). */
struct tpe_study;

/* Returns a new study over a copy of space (which the caller keeps and may free at once), with
 * the given algorithm, seed and options (NULL: tpe_options_default()). Free it with
 * tpe_study_destroy. Returns NULL with TB_USAGE's message in err when the space is empty, algo is
 * not one of the enum, or an option is out of range. */
struct tpe_study *tpe_study_new(const struct tpe_space *space, enum tpe_algo algo, uint64_t seed,
                                const struct tpe_options *options, char *err, size_t errsz);

/* Frees the study; NULL is a no-op. */
void tpe_study_destroy(struct tpe_study *study);

/* Returns the study's own copy of its space, which lives as long as the study. */
const struct tpe_space *tpe_study_space(const struct tpe_study *study);

/* Proposes a new trial from the trials finished so far and records it as pending. values
 * (nvalues >= tpe_space_size entries) receives one value per parameter in space order: a choice's
 * option index, a randint's integer, or NAN for a parameter that is not active. Returns the new
 * trial's id (>= 0; ids count up from 0 past every id asked or replayed), or TB_USAGE when nvalues
 * is too small or TPE_MAX_TRIALS ids are used; values is then untouched. */
int tpe_ask(struct tpe_study *study, double *values, size_t nvalues, char *err, size_t errsz);

/* Reports that a pending trial finished: TPE_OK with its finite loss (lower is better), or
 * TPE_FAILED (loss ignored; the trial counts as finished with an infinite loss). Trials may be
 * told in any order. Returns TB_OK; TB_NOTFOUND when no trial has that id; TB_USAGE when it was
 * already told, or is TPE_OK with a loss that is not finite (tell TPE_FAILED instead). */
int tpe_tell(struct tpe_study *study, int trial_id, enum tpe_status status, double loss, char *err,
             size_t errsz);

/* Records a finished trial that was run elsewhere, e.g. read back from a trials log to resume a
 * study: id trial_id, values as tpe_ask gives them (NAN exactly where a parameter is inactive),
 * status and loss as for tpe_tell. Replaying a log's finished trials, in any order, into a new
 * study with the same space, algorithm, seed and options makes it propose what the original
 * would have. Returns TB_OK, or TB_USAGE when trial_id is negative, at least TPE_MAX_TRIALS or
 * already used, a value is outside its parameter's support, a value is missing (NAN) for an
 * active parameter or present for an inactive one, or the loss is as tpe_tell refuses. */
int tpe_replay(struct tpe_study *study, int trial_id, const double *values, size_t nvalues,
               enum tpe_status status, double loss, char *err, size_t errsz);

/* Returns the id of the finished TPE_OK trial with the lowest loss (the lowest id among equals)
 * and, when not NULL, its loss in *loss and its values in values (nvalues >= tpe_space_size);
 * TB_NOTFOUND when no trial finished OK. */
int tpe_best(const struct tpe_study *study, double *values, size_t nvalues, double *loss);

/* Fills the numbers of trials pending, finished OK and failed (any pointer may be NULL). */
void tpe_study_counts(const struct tpe_study *study, size_t *pending, size_t *ok, size_t *failed);

/* The two models the next tpe_ask would build for parameter param from the trials finished now,
 * whatever the algorithm and n_startup, evaluated at value: *log_below = log l(value) and
 * *log_above = log g(value). A density (for a log-scaled kind with respect to the value itself)
 * for continuous kinds, a probability for quantised, randint and choice ones. For diagnostics and
 * tests. Returns TB_OK, or TB_USAGE when param is out of range or value outside its support. */
int tpe_log_density(const struct tpe_study *study, size_t param, double value, double *log_below,
                    double *log_above, char *err, size_t errsz);

#endif
