/* Hyperopt-style search spaces and a random-search or TPE study over them (see tpe.h). */
#include "models/tpe.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/rng.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* log(sqrt(2 pi)) */
#define TPE_LOG_SQRT_2PI 0.91893853320467274178
/* Draws from a truncated mixture before giving up on rejection (a component centred inside the
 * bounds, with a width at most theirs, keeps a third of its mass there: never reached in
 * practice). */
#define TPE_MAX_REJECTIONS 100000
/* Relative tolerance when checking that a replayed value is a multiple of q or an integer. */
#define TPE_VALUE_TOLERANCE 1e-9

struct tpe_param_def {
    char *name;
    enum tpe_kind kind;
    double low, high, q, mu, sigma;
    size_t noptions;
    char **options;        /* NULL when the choice has no labels */
    double *probabilities; /* choice: noptions, summing to 1 */
    int parent, parent_option;
};

struct tpe_space {
    size_t count, cap;
    struct tpe_param_def *params;
};

/* What is known of one trial id. */
enum tpe_slot { TPE_SLOT_EMPTY, TPE_SLOT_PENDING, TPE_SLOT_OK, TPE_SLOT_FAILED };

struct tpe_study {
    struct tpe_space *space; /* owned copy */
    size_t nparams;
    enum tpe_algo algo;
    uint64_t seed;
    struct tpe_options options;
    size_t max_categories; /* largest choice or randint in the space (0 when none) */
    int next_id;           /* one past the largest id asked or replayed */
    size_t cap;            /* ids the arrays below hold */
    unsigned char *slot;   /* enum tpe_slot per id */
    double *loss;          /* per id; +inf for failed */
    double *values;        /* nparams per id */
    size_t npending, nok, nfailed;
};

/* ---- random numbers -------------------------------------------------------------------------- */

/* The stream of one parameter of one trial: a function of the seed, the trial id and the
 * parameter index only, so that no proposal depends on how many draws another one took. */
static void tpe_rng_init(struct rng *rng, uint64_t seed, int trial_id, size_t param)
{
    uint64_t x = seed;
    x = rng_splitmix64(&x) ^ ((uint64_t)(unsigned)trial_id * 0xD1B54A32D192ED03ull);
    x = rng_splitmix64(&x) ^ ((uint64_t)param * 0x8CB92BA72F3D8DD7ull);
    rng_seed(rng, x);
}

/* Standard normal (Box-Muller, one value per call). */
static double tpe_normal(struct rng *rng)
{
    double u = (double)((rng_next(rng) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    double v = rng_uniform(rng);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* An index drawn with probabilities weights[0..n) (summing to 1; the last takes any rounding). */
static size_t tpe_pick(const double *weights, size_t n, struct rng *rng)
{
    double u = rng_uniform(rng), cumulative = 0.0;
    for (size_t i = 0; i + 1 < n; i++) {
        cumulative += weights[i];
        if (u < cumulative)
            return i;
    }
    return n - 1;
}

/* ---- the space ------------------------------------------------------------------------------- */

static const char *const tpe_kind_names[] = {
    [TPE_UNIFORM] = "uniform",   [TPE_LOGUNIFORM] = "loguniform",
    [TPE_QUNIFORM] = "quniform", [TPE_QLOGUNIFORM] = "qloguniform",
    [TPE_NORMAL] = "normal",     [TPE_RANDINT] = "randint",
    [TPE_CHOICE] = "choice"};

#define TPE_NKINDS (sizeof tpe_kind_names / sizeof tpe_kind_names[0])

const char *tpe_kind_name(enum tpe_kind kind)
{
    return (unsigned)kind < TPE_NKINDS ? tpe_kind_names[kind] : "?";
}

int tpe_kind_parse(const char *name, enum tpe_kind *out)
{
    for (size_t k = 0; k < TPE_NKINDS; k++)
        if (name && strcmp(name, tpe_kind_names[k]) == 0) {
            *out = (enum tpe_kind)k;
            return TB_OK;
        }
    return TB_NOTFOUND;
}

struct tpe_space *tpe_space_new(void)
{
    return mem_calloc(1, sizeof(struct tpe_space));
}

static void tpe_param_def_free(struct tpe_param_def *def)
{
    if (def->options)
        for (size_t k = 0; k < def->noptions; k++)
            free(def->options[k]);
    free(def->options);
    free(def->probabilities);
    free(def->name);
}

void tpe_space_destroy(struct tpe_space *space)
{
    if (!space)
        return;
    for (size_t i = 0; i < space->count; i++)
        tpe_param_def_free(&space->params[i]);
    free(space->params);
    free(space);
}

size_t tpe_space_size(const struct tpe_space *space)
{
    return space->count;
}

int tpe_space_find(const struct tpe_space *space, const char *name)
{
    for (size_t i = 0; i < space->count; i++)
        if (strcmp(space->params[i].name, name) == 0)
            return (int)i;
    return TB_NOTFOUND;
}

static bool tpe_is_integer(double v)
{
    return isfinite(v) && v == floor(v) && fabs(v) <= 0x1.0p53;
}

/* Checks the numbers of a definition; returns TB_OK or TB_USAGE with a message. */
static int tpe_check_param(const struct tpe_param *p, char *err, size_t errsz)
{
    const char *name = p->name, *kind = tpe_kind_name(p->kind);
    switch (p->kind) {
    case TPE_UNIFORM:
    case TPE_QUNIFORM:
        if (!(isfinite(p->low) && isfinite(p->high) && p->low < p->high))
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': %s needs finite low < high (got %g, %g)", name, kind,
                           p->low, p->high);
        break;
    case TPE_LOGUNIFORM:
    case TPE_QLOGUNIFORM:
        if (!(isfinite(p->low) && isfinite(p->high) && p->low > 0 && p->low < p->high))
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': %s needs finite 0 < low < high (got %g, %g)", name,
                           kind, p->low, p->high);
        break;
    case TPE_NORMAL:
        if (!(isfinite(p->mu) && isfinite(p->sigma) && p->sigma > 0))
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': normal needs finite mu and sigma > 0 (got %g, %g)",
                           name, p->mu, p->sigma);
        break;
    case TPE_RANDINT:
        if (!(tpe_is_integer(p->low) && tpe_is_integer(p->high) && p->low < p->high &&
              p->high - p->low <= TPE_MAX_CATEGORIES))
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': randint needs integers low < high with at most %d "
                           "values (got %g, %g)",
                           name, TPE_MAX_CATEGORIES, p->low, p->high);
        break;
    case TPE_CHOICE: {
        if (p->noptions < 1 || p->noptions > TPE_MAX_CATEGORIES)
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': choice needs 1 to %d options (got %zu)", name,
                           TPE_MAX_CATEGORIES, p->noptions);
        if (p->options)
            for (size_t k = 0; k < p->noptions; k++)
                if (!p->options[k])
                    return tb_fail(err, errsz, TB_USAGE, "parameter '%s': option %zu has no label",
                                   name, k);
        if (p->probabilities) {
            double total = 0.0;
            for (size_t k = 0; k < p->noptions; k++) {
                if (!(isfinite(p->probabilities[k]) && p->probabilities[k] >= 0))
                    return tb_fail(err, errsz, TB_USAGE,
                                   "parameter '%s': probability %zu is %g, not finite and >= 0",
                                   name, k, p->probabilities[k]);
                total += p->probabilities[k];
            }
            if (!(total > 0 && isfinite(total)))
                return tb_fail(err, errsz, TB_USAGE, "parameter '%s': the probabilities sum to %g",
                               name, total);
        }
        break;
    }
    default:
        return tb_fail(err, errsz, TB_USAGE, "parameter '%s': unknown kind %d", name, (int)p->kind);
    }
    if ((p->kind == TPE_QUNIFORM || p->kind == TPE_QLOGUNIFORM) && !(isfinite(p->q) && p->q > 0))
        return tb_fail(err, errsz, TB_USAGE, "parameter '%s': %s needs a step q > 0 (got %g)", name,
                       kind, p->q);
    return TB_OK;
}

/* Copies def (strings and arrays too) into *out. */
static void tpe_param_def_copy(struct tpe_param_def *out, const struct tpe_param_def *def)
{
    *out = *def;
    out->name = mem_strdup(def->name);
    out->options = NULL;
    out->probabilities = NULL;
    if (def->kind != TPE_CHOICE)
        return;
    if (def->options) {
        out->options = mem_alloc(def->noptions * sizeof(char *));
        for (size_t k = 0; k < def->noptions; k++)
            out->options[k] = mem_strdup(def->options[k]);
    }
    out->probabilities = mem_alloc(def->noptions * sizeof(double));
    memcpy(out->probabilities, def->probabilities, def->noptions * sizeof(double));
}

int tpe_space_add(struct tpe_space *space, int parent, int parent_option,
                  const struct tpe_param *param, char *err, size_t errsz)
{
    if (!param->name || !*param->name)
        return tb_fail(err, errsz, TB_USAGE, "a parameter needs a name");
    if (tpe_space_find(space, param->name) >= 0)
        return tb_fail(err, errsz, TB_USAGE, "parameter '%s' is defined twice", param->name);
    if (space->count >= TPE_MAX_PARAMS)
        return tb_fail(err, errsz, TB_USAGE, "a space holds at most %d parameters", TPE_MAX_PARAMS);
    if (parent != TPE_ROOT) {
        if (parent < 0 || (size_t)parent >= space->count ||
            space->params[parent].kind != TPE_CHOICE)
            return tb_fail(err, errsz, TB_USAGE,
                           "parameter '%s': parent %d is not an earlier choice parameter",
                           param->name, parent);
        if (parent_option < 0 || (size_t)parent_option >= space->params[parent].noptions)
            return tb_fail(err, errsz, TB_USAGE, "parameter '%s': choice '%s' has no option %d",
                           param->name, space->params[parent].name, parent_option);
    }
    int rc = tpe_check_param(param, err, errsz);
    if (rc != TB_OK)
        return rc;

    /* Built as a definition that borrows param's strings, then deep-copied into the space. */
    struct tpe_param_def def = {.name = (char *)param->name,
                                .kind = param->kind,
                                .low = param->low,
                                .high = param->high,
                                .q = param->q,
                                .mu = param->mu,
                                .sigma = param->sigma,
                                .noptions = param->kind == TPE_CHOICE ? param->noptions : 0,
                                .options = (char **)param->options,
                                .parent = parent,
                                .parent_option = parent == TPE_ROOT ? -1 : parent_option};
    double *probabilities = NULL;
    if (param->kind == TPE_CHOICE) {
        probabilities = mem_alloc(param->noptions * sizeof(double));
        double total = 0.0;
        for (size_t k = 0; k < param->noptions; k++)
            total += param->probabilities ? param->probabilities[k] : 1.0;
        for (size_t k = 0; k < param->noptions; k++)
            probabilities[k] = (param->probabilities ? param->probabilities[k] : 1.0) / total;
        def.probabilities = probabilities;
    }
    mem_grow((void **)&space->params, &space->cap, space->count + 1, sizeof(struct tpe_param_def));
    tpe_param_def_copy(&space->params[space->count], &def);
    free(probabilities);
    return (int)space->count++;
}

int tpe_space_describe(const struct tpe_space *space, size_t index, struct tpe_param *param,
                       int *parent, int *parent_option)
{
    if (index >= space->count)
        return TB_USAGE;
    const struct tpe_param_def *def = &space->params[index];
    *param = (struct tpe_param){.name = def->name,
                                .kind = def->kind,
                                .low = def->low,
                                .high = def->high,
                                .q = def->q,
                                .mu = def->mu,
                                .sigma = def->sigma,
                                .noptions = def->noptions,
                                .options = (const char *const *)def->options,
                                .probabilities = def->probabilities};
    if (parent)
        *parent = def->parent;
    if (parent_option)
        *parent_option = def->parent_option;
    return TB_OK;
}

static struct tpe_space *tpe_space_clone(const struct tpe_space *space)
{
    struct tpe_space *copy = tpe_space_new();
    copy->params = mem_alloc((space->count ? space->count : 1) * sizeof(struct tpe_param_def));
    copy->cap = space->count ? space->count : 1;
    for (size_t i = 0; i < space->count; i++)
        tpe_param_def_copy(&copy->params[i], &space->params[i]);
    copy->count = space->count;
    return copy;
}

/* Whether parameter index is active given the values of the parameters before it. */
static bool tpe_active(const struct tpe_space *space, size_t index, const double *values)
{
    const struct tpe_param_def *def = &space->params[index];
    if (def->parent == TPE_ROOT)
        return true;
    double chosen = values[def->parent];
    return !isnan(chosen) && chosen == (double)def->parent_option;
}

/* Number of values of a categorical parameter (0 for numeric ones). */
static size_t tpe_categories(const struct tpe_param_def *def)
{
    if (def->kind == TPE_CHOICE)
        return def->noptions;
    if (def->kind == TPE_RANDINT)
        return (size_t)(def->high - def->low);
    return 0;
}

/* Whether |v - k q| is within the tolerance for the nearest integer k. */
static bool tpe_on_grid(double v, double q)
{
    double k = nearbyint(v / q);
    return fabs(v - k * q) <= TPE_VALUE_TOLERANCE * fmax(fabs(v), q);
}

/* Checks that v is a value the parameter can take; TB_OK or TB_USAGE with a message. */
static int tpe_check_value(const struct tpe_param_def *def, double v, char *err, size_t errsz)
{
    bool ok = isfinite(v);
    if (ok) {
        switch (def->kind) {
        case TPE_UNIFORM:
        case TPE_LOGUNIFORM:
            ok = v >= def->low && v <= def->high;
            break;
        case TPE_QUNIFORM:
        case TPE_QLOGUNIFORM: {
            /* round(t / q) * q for t in [low, high]: a multiple of q within q/2 of the range */
            double slack = 0.5 * def->q * (1.0 + TPE_VALUE_TOLERANCE);
            ok = tpe_on_grid(v, def->q) && v >= def->low - slack && v <= def->high + slack &&
                 (def->kind == TPE_QUNIFORM || v >= 0);
            break;
        }
        case TPE_NORMAL:
            break;
        case TPE_RANDINT:
            ok = v == floor(v) && v >= def->low && v < def->high;
            break;
        case TPE_CHOICE:
            ok = v == floor(v) && v >= 0 && v < (double)def->noptions;
            break;
        }
    }
    if (!ok)
        return tb_fail(err, errsz, TB_USAGE, "parameter '%s' (%s) cannot take the value %.17g",
                       def->name, tpe_kind_name(def->kind), v);
    return TB_OK;
}

/* ---- Parzen estimators ----------------------------------------------------------------------- */

/* A numeric parameter seen in its model's coordinate t: the value itself, or its logarithm for
 * the log-scaled kinds; [lo, hi] are the bounds there (infinite for normal). */
struct tpe_axis {
    double lo, hi;
    double prior_mu, prior_sigma;
};

static struct tpe_axis tpe_axis_of(const struct tpe_param_def *def)
{
    struct tpe_axis a;
    switch (def->kind) {
    case TPE_LOGUNIFORM:
    case TPE_QLOGUNIFORM:
        a.lo = log(def->low);
        a.hi = log(def->high);
        break;
    case TPE_NORMAL:
        a.lo = -INFINITY;
        a.hi = INFINITY;
        a.prior_mu = def->mu;
        a.prior_sigma = def->sigma;
        return a;
    default:
        a.lo = def->low;
        a.hi = def->high;
        break;
    }
    a.prior_mu = 0.5 * (a.hi + a.lo);
    a.prior_sigma = a.hi - a.lo;
    return a;
}

/* The model coordinate of an observed value. A quantised log value below low (0 in particular)
 * is moved up to low, as hyperopt does. */
static double tpe_to_axis(const struct tpe_param_def *def, double v)
{
    if (def->kind == TPE_LOGUNIFORM || def->kind == TPE_QLOGUNIFORM)
        return log(fmax(v, def->low));
    return v;
}

/* The parameter value of a model coordinate: exp for log kinds, then rounding to q. */
static double tpe_from_axis(const struct tpe_param_def *def, double t)
{
    switch (def->kind) {
    case TPE_LOGUNIFORM:
        return fmin(fmax(exp(t), def->low), def->high);
    case TPE_QUNIFORM:
        return nearbyint(t / def->q) * def->q;
    case TPE_QLOGUNIFORM:
        return nearbyint(exp(t) / def->q) * def->q;
    default:
        return t;
    }
}

/* P(za < Z < zb) for a standard normal Z, za <= zb, accurate in either tail. */
static double tpe_normal_mass(double za, double zb)
{
    if (za >= 0)
        return 0.5 * (erfc(za * M_SQRT1_2) - erfc(zb * M_SQRT1_2));
    if (zb <= 0)
        return 0.5 * (erfc(-zb * M_SQRT1_2) - erfc(-za * M_SQRT1_2));
    return 1.0 - 0.5 * erfc(-za * M_SQRT1_2) - 0.5 * erfc(zb * M_SQRT1_2);
}

/* A one-dimensional Gaussian mixture truncated to [lo, hi]; the arrays belong to a tpe_work. */
struct tpe_mixture {
    size_t n;
    double *mu, *sigma, *weight;
    double *log_coef; /* log(weight / sigma), for the density */
    double lo, hi;
    double log_accept; /* log of the untruncated mixture's mass on [lo, hi] */
};

/* Scratch arrays for one proposal, sized for every finished trial plus the prior. */
struct tpe_work {
    size_t cap;
    double *below_obs, *above_obs; /* model coordinates or categories, in trial id order */
    double *forgetting;            /* linear forgetting weights */
    double *terms;                 /* log-density terms of one evaluation */
    struct tpe_keyed *order;
    struct tpe_mixture below, above;
    double *below_p, *above_p; /* categorical probabilities */
};

/* A value with its position, sorted by value then position (a stable sort with qsort). */
struct tpe_keyed {
    double key;
    size_t pos;
};

static int tpe_keyed_compare(const void *a, const void *b)
{
    const struct tpe_keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static void tpe_work_init(struct tpe_work *w, size_t nfinished, size_t max_categories)
{
    size_t cap = nfinished + 1, kcap = max_categories ? max_categories : 1;
    *w = (struct tpe_work){.cap = cap};
    w->below_obs = mem_alloc(cap * sizeof(double));
    w->above_obs = mem_alloc(cap * sizeof(double));
    w->forgetting = mem_alloc(cap * sizeof(double));
    w->terms = mem_alloc(cap * sizeof(double));
    w->order = mem_alloc(cap * sizeof(struct tpe_keyed));
    struct tpe_mixture *mixtures[] = {&w->below, &w->above};
    for (size_t i = 0; i < 2; i++) {
        mixtures[i]->mu = mem_alloc(cap * sizeof(double));
        mixtures[i]->sigma = mem_alloc(cap * sizeof(double));
        mixtures[i]->weight = mem_alloc(cap * sizeof(double));
        mixtures[i]->log_coef = mem_alloc(cap * sizeof(double));
    }
    w->below_p = mem_alloc(kcap * sizeof(double));
    w->above_p = mem_alloc(kcap * sizeof(double));
}

static void tpe_work_free(struct tpe_work *w)
{
    free(w->above_p);
    free(w->below_p);
    struct tpe_mixture *mixtures[] = {&w->above, &w->below};
    for (size_t i = 0; i < 2; i++) {
        free(mixtures[i]->log_coef);
        free(mixtures[i]->weight);
        free(mixtures[i]->sigma);
        free(mixtures[i]->mu);
    }
    free(w->order);
    free(w->terms);
    free(w->forgetting);
    free(w->above_obs);
    free(w->below_obs);
}

/* Hyperopt's linear forgetting: n ones when n <= keep (or keep is 0); otherwise the oldest
 * n - keep weights rise linearly from 1/n to 1 (numpy.linspace) and the newest keep are 1. */
static void tpe_forgetting_weights(size_t n, size_t keep, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = 1.0;
    if (keep == 0 || n <= keep)
        return;
    size_t ramp = n - keep;
    double start = 1.0 / (double)n;
    if (ramp == 1) {
        out[0] = start;
        return;
    }
    double step = (1.0 - start) / (double)(ramp - 1);
    for (size_t i = 0; i + 1 < ramp; i++)
        out[i] = (double)i * step + start;
    out[ramp - 1] = 1.0;
}

/* Hyperopt's adaptive Parzen estimator of n observations obs (model coordinates, oldest first):
 * the components sorted by mean with the prior inserted at its place. */
static void tpe_parzen_build(const double *obs, size_t n, const struct tpe_axis *axis,
                             double prior_weight, size_t keep, struct tpe_work *w,
                             struct tpe_mixture *m)
{
    double prior_sigma = axis->prior_sigma;
    size_t prior_pos = 0;
    m->n = n + 1;
    m->lo = axis->lo;
    m->hi = axis->hi;
    if (n == 0) {
        m->mu[0] = axis->prior_mu;
        m->sigma[0] = prior_sigma;
        m->weight[0] = prior_weight;
    } else if (n == 1) {
        prior_pos = axis->prior_mu < obs[0] ? 0 : 1;
        m->mu[prior_pos] = axis->prior_mu;
        m->mu[1 - prior_pos] = obs[0];
        m->sigma[1 - prior_pos] = 0.5 * prior_sigma;
        m->weight[1 - prior_pos] = 1.0;
    } else {
        for (size_t i = 0; i < n; i++)
            w->order[i] = (struct tpe_keyed){.key = obs[i], .pos = i};
        qsort(w->order, n, sizeof(struct tpe_keyed), tpe_keyed_compare);
        while (prior_pos < n && w->order[prior_pos].key < axis->prior_mu)
            prior_pos++; /* numpy.searchsorted, side "left" */
        tpe_forgetting_weights(n, keep, w->forgetting);
        for (size_t j = 0, i = 0; j <= n; j++) {
            if (j == prior_pos) {
                m->mu[j] = axis->prior_mu;
                continue;
            }
            m->mu[j] = w->order[i].key;
            m->weight[j] = w->forgetting[w->order[i].pos];
            i++;
        }
        for (size_t j = 1; j < n; j++)
            m->sigma[j] = fmax(m->mu[j] - m->mu[j - 1], m->mu[j + 1] - m->mu[j]);
        m->sigma[0] = m->mu[1] - m->mu[0];
        m->sigma[n] = m->mu[n] - m->mu[n - 1];
    }
    /* hyperopt's "magic formula" */
    double max_sigma = prior_sigma;
    double min_sigma = prior_sigma / fmin(100.0, 1.0 + (double)m->n);
    for (size_t j = 0; j < m->n; j++)
        m->sigma[j] = fmin(fmax(m->sigma[j], min_sigma), max_sigma);
    m->sigma[prior_pos] = prior_sigma;
    m->weight[prior_pos] = prior_weight;
    double total = 0.0;
    for (size_t j = 0; j < m->n; j++)
        total += m->weight[j];
    for (size_t j = 0; j < m->n; j++) {
        m->weight[j] /= total;
        m->log_coef[j] = log(m->weight[j]) - log(m->sigma[j]);
    }

    double accept = 0.0;
    if (isinf(m->lo) && isinf(m->hi))
        accept = 1.0;
    else
        for (size_t j = 0; j < m->n; j++)
            accept += m->weight[j] * tpe_normal_mass((m->lo - m->mu[j]) / m->sigma[j],
                                                     (m->hi - m->mu[j]) / m->sigma[j]);
    m->log_accept = log(accept);
}

/* log of the truncated mixture's density at t (model coordinate). */
static double tpe_mixture_log_pdf(const struct tpe_mixture *m, double t, double *terms)
{
    double top = -INFINITY;
    for (size_t j = 0; j < m->n; j++) {
        double z = (t - m->mu[j]) / m->sigma[j];
        terms[j] = m->log_coef[j] - 0.5 * z * z;
        top = fmax(top, terms[j]);
    }
    if (isinf(top))
        return -INFINITY;
    double sum = 0.0;
    for (size_t j = 0; j < m->n; j++)
        sum += exp(terms[j] - top);
    /* cppcheck-suppress invalidFunctionArg ; sum >= 1: the largest term is exp(0) */
    return top + log(sum) - TPE_LOG_SQRT_2PI - m->log_accept;
}

/* log of the truncated mixture's mass on [a, b] (model coordinates, already within bounds). */
static double tpe_mixture_log_mass(const struct tpe_mixture *m, double a, double b)
{
    if (!(a < b))
        return -INFINITY;
    double mass = 0.0;
    for (size_t j = 0; j < m->n; j++)
        mass += m->weight[j] *
                tpe_normal_mass((a - m->mu[j]) / m->sigma[j], (b - m->mu[j]) / m->sigma[j]);
    return (mass == 0.0 ? -INFINITY : log(mass)) - m->log_accept; /* 0: every tail underflowed */
}

/* A draw from the truncated mixture: component and value redrawn together until the value is in
 * [lo, hi), as hyperopt's GMM1. */
static double tpe_mixture_sample(const struct tpe_mixture *m, struct rng *rng)
{
    for (int tries = 0; tries < TPE_MAX_REJECTIONS; tries++) {
        size_t j = tpe_pick(m->weight, m->n, rng);
        double t = m->mu[j] + m->sigma[j] * tpe_normal(rng);
        if (t >= m->lo && t < m->hi)
            return t;
    }
    return m->lo + (m->hi - m->lo) * rng_uniform(rng);
}

/* The score of a quantised value x: the log mass of the cell [x - q/2, x + q/2] clipped to the
 * bounds, in model coordinates. */
static double tpe_cell_log_mass(const struct tpe_param_def *def, const struct tpe_mixture *m,
                                double x)
{
    double a = fmax(x - 0.5 * def->q, def->low), b = fmin(x + 0.5 * def->q, def->high);
    if (def->kind == TPE_QLOGUNIFORM) {
        if (!(a < b))
            return -INFINITY;
        a = log(a);
        b = log(b);
    }
    return tpe_mixture_log_mass(m, a, b);
}

/* Log-density (continuous kinds, with respect to the value) or log-probability (quantised) of
 * value x under mixture m. */
static double tpe_numeric_log_density(const struct tpe_param_def *def, const struct tpe_mixture *m,
                                      double x, double *terms)
{
    switch (def->kind) {
    case TPE_QUNIFORM:
    case TPE_QLOGUNIFORM:
        return tpe_cell_log_mass(def, m, x);
    case TPE_LOGUNIFORM:
        return tpe_mixture_log_pdf(m, log(x), terms) - log(x);
    default:
        return tpe_mixture_log_pdf(m, x, terms);
    }
}

/* Probabilities of the k values of a categorical parameter: forgetting-weighted counts of the n
 * observed categories obs (oldest first) plus the prior's pseudo-counts, normalised. */
static void tpe_categorical_build(const struct tpe_param_def *def, const double *obs, size_t n,
                                  double prior_weight, size_t keep, struct tpe_work *w, double *p)
{
    size_t k = tpe_categories(def);
    for (size_t c = 0; c < k; c++)
        p[c] = def->kind == TPE_CHOICE ? (double)k * prior_weight * def->probabilities[c]
                                       : prior_weight;
    tpe_forgetting_weights(n, keep, w->forgetting);
    for (size_t i = 0; i < n; i++)
        p[(size_t)obs[i]] += w->forgetting[i];
    double total = 0.0;
    for (size_t c = 0; c < k; c++)
        total += p[c];
    for (size_t c = 0; c < k; c++)
        p[c] /= total;
}

/* ---- the study ------------------------------------------------------------------------------- */

struct tpe_options tpe_options_default(void)
{
    return (struct tpe_options){.n_startup = 20,
                                .gamma = 0.25,
                                .max_below = 25,
                                .n_candidates = 24,
                                .prior_weight = 1.0,
                                .linear_forgetting = 25};
}

struct tpe_study *tpe_study_new(const struct tpe_space *space, enum tpe_algo algo, uint64_t seed,
                                const struct tpe_options *options, char *err, size_t errsz)
{
    struct tpe_options o = options ? *options : tpe_options_default();
    if (space->count == 0) {
        tb_fail(err, errsz, TB_USAGE, "the search space has no parameters");
        return NULL;
    }
    if (algo != TPE_RANDOM && algo != TPE_TPE) {
        tb_fail(err, errsz, TB_USAGE, "unknown search algorithm %d", (int)algo);
        return NULL;
    }
    const char *bad =
        !(o.gamma > 0 && o.gamma <= 1)                      ? "gamma is not in (0, 1]"
        : o.max_below < 1                                   ? "max_below is 0"
        : o.n_candidates < 1 || o.n_candidates > 100000     ? "n_candidates is not in 1..100000"
        : !(o.prior_weight > 0 && isfinite(o.prior_weight)) ? "prior_weight is not finite and > 0"
                                                            : NULL;
    if (bad) {
        tb_fail(err, errsz, TB_USAGE, "TPE options: %s", bad);
        return NULL;
    }
    struct tpe_study *study = mem_calloc(1, sizeof *study);
    study->space = tpe_space_clone(space);
    study->nparams = space->count;
    study->algo = algo;
    study->seed = seed;
    study->options = o;
    for (size_t i = 0; i < space->count; i++) {
        size_t k = tpe_categories(&space->params[i]);
        if (k > study->max_categories)
            study->max_categories = k;
    }
    return study;
}

void tpe_study_destroy(struct tpe_study *study)
{
    if (!study)
        return;
    free(study->values);
    free(study->loss);
    free(study->slot);
    tpe_space_destroy(study->space);
    free(study);
}

const struct tpe_space *tpe_study_space(const struct tpe_study *study)
{
    return study->space;
}

/* Makes room for ids below need. */
static void tpe_study_reserve(struct tpe_study *study, size_t need)
{
    if (need <= study->cap)
        return;
    size_t cap = study->cap ? study->cap : 64;
    while (cap < need)
        cap *= 2;
    study->slot = mem_realloc(study->slot, cap);
    memset(study->slot + study->cap, TPE_SLOT_EMPTY, cap - study->cap);
    study->loss = mem_realloc(study->loss, cap * sizeof(double));
    study->values = mem_realloc(study->values, cap * study->nparams * sizeof(double));
    study->cap = cap;
}

/* The finished trials, in id order, and which of them are "below" (the good ones). */
struct tpe_history {
    size_t n;
    int *ids;
    bool *below;
};

static void tpe_history_build(const struct tpe_study *study, struct tpe_history *h)
{
    size_t n = study->nok + study->nfailed;
    h->n = 0;
    h->ids = mem_alloc((n ? n : 1) * sizeof(int));
    h->below = mem_calloc(n ? n : 1, sizeof(bool));
    struct tpe_keyed *ranked = mem_alloc((n ? n : 1) * sizeof(struct tpe_keyed));
    for (int id = 0; id < study->next_id; id++) {
        unsigned char slot = study->slot[id];
        if (slot != TPE_SLOT_OK && slot != TPE_SLOT_FAILED)
            continue;
        ranked[h->n] = (struct tpe_keyed){.key = study->loss[id], .pos = h->n};
        h->ids[h->n++] = id;
    }
    qsort(ranked, h->n, sizeof(struct tpe_keyed), tpe_keyed_compare);
    double good = ceil(study->options.gamma * sqrt((double)h->n));
    size_t n_below = (size_t)fmin(good, (double)study->options.max_below);
    for (size_t r = 0; r < n_below && r < h->n; r++)
        h->below[ranked[r].pos] = true;
    free(ranked);
}

static void tpe_history_free(struct tpe_history *h)
{
    free(h->below);
    free(h->ids);
}

/* Gathers parameter index's observations from the finished trials in which it was active, split
 * into below and above (model coordinates, or category numbers), oldest first. */
static void tpe_gather(const struct tpe_study *study, const struct tpe_history *h, size_t index,
                       struct tpe_work *w, size_t *nbelow, size_t *nabove)
{
    const struct tpe_param_def *def = &study->space->params[index];
    *nbelow = *nabove = 0;
    for (size_t i = 0; i < h->n; i++) {
        double v = study->values[(size_t)h->ids[i] * study->nparams + index];
        if (isnan(v))
            continue;
        double o = def->kind == TPE_CHOICE    ? v
                   : def->kind == TPE_RANDINT ? v - def->low
                                              : tpe_to_axis(def, v);
        if (h->below[i])
            w->below_obs[(*nbelow)++] = o;
        else
            w->above_obs[(*nabove)++] = o;
    }
}

/* Builds the below and above models of parameter index into w. */
static void tpe_models_build(const struct tpe_study *study, const struct tpe_history *h,
                             size_t index, struct tpe_work *w)
{
    const struct tpe_param_def *def = &study->space->params[index];
    const struct tpe_options *o = &study->options;
    size_t nbelow = 0, nabove = 0;
    tpe_gather(study, h, index, w, &nbelow, &nabove);
    if (tpe_categories(def)) {
        tpe_categorical_build(def, w->below_obs, nbelow, o->prior_weight, o->linear_forgetting, w,
                              w->below_p);
        tpe_categorical_build(def, w->above_obs, nabove, o->prior_weight, o->linear_forgetting, w,
                              w->above_p);
    } else {
        struct tpe_axis axis = tpe_axis_of(def);
        tpe_parzen_build(w->below_obs, nbelow, &axis, o->prior_weight, o->linear_forgetting, w,
                         &w->below);
        tpe_parzen_build(w->above_obs, nabove, &axis, o->prior_weight, o->linear_forgetting, w,
                         &w->above);
    }
}

/* One draw from the parameter's prior. */
static double tpe_sample_prior(const struct tpe_param_def *def, struct rng *rng)
{
    switch (def->kind) {
    case TPE_NORMAL:
        return def->mu + def->sigma * tpe_normal(rng);
    case TPE_RANDINT:
        return def->low + floor(rng_uniform(rng) * (def->high - def->low));
    case TPE_CHOICE:
        return (double)tpe_pick(def->probabilities, def->noptions, rng);
    default: {
        struct tpe_axis axis = tpe_axis_of(def);
        return tpe_from_axis(def, axis.lo + (axis.hi - axis.lo) * rng_uniform(rng));
    }
    }
}

/* The TPE proposal for parameter index: n_candidates draws from l, the best by log l - log g
 * (the first among equals; a candidate whose score is not a number never wins). */
static double tpe_propose(const struct tpe_study *study, const struct tpe_history *h, size_t index,
                          struct tpe_work *w, struct rng *rng)
{
    const struct tpe_param_def *def = &study->space->params[index];
    tpe_models_build(study, h, index, w);
    size_t k = tpe_categories(def);
    double best = NAN, best_score = -INFINITY;
    for (size_t c = 0; c < study->options.n_candidates; c++) {
        double x, score;
        if (k) {
            size_t category = tpe_pick(w->below_p, k, rng);
            score = log(w->below_p[category]) - log(w->above_p[category]);
            x = def->kind == TPE_RANDINT ? def->low + (double)category : (double)category;
        } else {
            double t = tpe_mixture_sample(&w->below, rng);
            x = tpe_from_axis(def, t);
            if (def->kind == TPE_QUNIFORM || def->kind == TPE_QLOGUNIFORM)
                score = tpe_cell_log_mass(def, &w->below, x) - tpe_cell_log_mass(def, &w->above, x);
            else
                score = tpe_mixture_log_pdf(&w->below, t, w->terms) -
                        tpe_mixture_log_pdf(&w->above, t, w->terms);
        }
        if (c == 0 || score > best_score) {
            best = x;
            best_score = isnan(score) ? -INFINITY : score;
        }
    }
    return best;
}

int tpe_ask(struct tpe_study *study, double *values, size_t nvalues, char *err, size_t errsz)
{
    size_t p = study->nparams;
    if (nvalues < p)
        return tb_fail(err, errsz, TB_USAGE, "tpe_ask: room for %zu values, the space has %zu",
                       nvalues, p);
    if (study->next_id >= TPE_MAX_TRIALS)
        return tb_fail(err, errsz, TB_USAGE, "tpe_ask: all %d trial ids are used", TPE_MAX_TRIALS);
    int id = study->next_id;
    tpe_study_reserve(study, (size_t)id + 1);
    double *proposal = study->values + (size_t)id * p;

    size_t finished = study->nok + study->nfailed;
    bool model = study->algo == TPE_TPE && finished >= study->options.n_startup;
    struct tpe_history history = {0};
    struct tpe_work work = {0};
    if (model) {
        tpe_history_build(study, &history);
        tpe_work_init(&work, finished, study->max_categories);
    }
    for (size_t i = 0; i < p; i++) {
        if (!tpe_active(study->space, i, proposal)) {
            proposal[i] = NAN;
            continue;
        }
        struct rng rng;
        tpe_rng_init(&rng, study->seed, id, i);
        proposal[i] = model ? tpe_propose(study, &history, i, &work, &rng)
                            : tpe_sample_prior(&study->space->params[i], &rng);
    }
    if (model) {
        tpe_work_free(&work);
        tpe_history_free(&history);
    }
    study->slot[id] = TPE_SLOT_PENDING;
    study->loss[id] = NAN;
    study->npending++;
    study->next_id++;
    memcpy(values, proposal, p * sizeof(double));
    return id;
}

/* Checks a result as tpe_tell takes it. */
static int tpe_check_result(enum tpe_status status, double loss, int trial_id, char *err,
                            size_t errsz)
{
    if (status != TPE_OK && status != TPE_FAILED)
        return tb_fail(err, errsz, TB_USAGE, "trial %d: unknown status %d", trial_id, (int)status);
    if (status == TPE_OK && !isfinite(loss))
        return tb_fail(err, errsz, TB_USAGE,
                       "trial %d: loss %g is not finite (report the trial as failed instead)",
                       trial_id, loss);
    return TB_OK;
}

/* Records the result of a trial whose slot is pending or empty. */
static void tpe_finish(struct tpe_study *study, int trial_id, enum tpe_status status, double loss)
{
    study->slot[trial_id] = status == TPE_OK ? TPE_SLOT_OK : TPE_SLOT_FAILED;
    study->loss[trial_id] = status == TPE_OK ? loss : INFINITY;
    if (status == TPE_OK)
        study->nok++;
    else
        study->nfailed++;
}

int tpe_tell(struct tpe_study *study, int trial_id, enum tpe_status status, double loss, char *err,
             size_t errsz)
{
    if (trial_id < 0 || trial_id >= study->next_id || study->slot[trial_id] == TPE_SLOT_EMPTY)
        return tb_fail(err, errsz, TB_NOTFOUND, "there is no trial %d", trial_id);
    if (study->slot[trial_id] != TPE_SLOT_PENDING)
        return tb_fail(err, errsz, TB_USAGE, "trial %d was already told its result", trial_id);
    int rc = tpe_check_result(status, loss, trial_id, err, errsz);
    if (rc != TB_OK)
        return rc;
    tpe_finish(study, trial_id, status, loss);
    study->npending--;
    return TB_OK;
}

int tpe_replay(struct tpe_study *study, int trial_id, const double *values, size_t nvalues,
               enum tpe_status status, double loss, char *err, size_t errsz)
{
    size_t p = study->nparams;
    if (trial_id < 0 || trial_id >= TPE_MAX_TRIALS)
        return tb_fail(err, errsz, TB_USAGE, "trial id %d is not in 0..%d", trial_id,
                       TPE_MAX_TRIALS - 1);
    if (trial_id < study->next_id && study->slot[trial_id] != TPE_SLOT_EMPTY)
        return tb_fail(err, errsz, TB_USAGE, "trial %d is already in the study", trial_id);
    if (nvalues < p)
        return tb_fail(err, errsz, TB_USAGE, "trial %d: %zu values, the space has %zu", trial_id,
                       nvalues, p);
    int rc = tpe_check_result(status, loss, trial_id, err, errsz);
    if (rc != TB_OK)
        return rc;
    for (size_t i = 0; i < p; i++) {
        const struct tpe_param_def *def = &study->space->params[i];
        bool active = tpe_active(study->space, i, values);
        if (active && isnan(values[i]))
            return tb_fail(err, errsz, TB_USAGE, "trial %d: active parameter '%s' has no value",
                           trial_id, def->name);
        if (!active && !isnan(values[i]))
            return tb_fail(err, errsz, TB_USAGE,
                           "trial %d: parameter '%s' is inactive (its choice '%s' is not option "
                           "%d) but has the value %g",
                           trial_id, def->name, study->space->params[def->parent].name,
                           def->parent_option, values[i]);
        if (active && (rc = tpe_check_value(def, values[i], err, errsz)) != TB_OK)
            return rc;
    }
    tpe_study_reserve(study, (size_t)trial_id + 1);
    memcpy(study->values + (size_t)trial_id * p, values, p * sizeof(double));
    tpe_finish(study, trial_id, status, loss);
    if (trial_id >= study->next_id)
        study->next_id = trial_id + 1;
    return TB_OK;
}

int tpe_best(const struct tpe_study *study, double *values, size_t nvalues, double *loss)
{
    int best = TB_NOTFOUND;
    for (int id = 0; id < study->next_id; id++)
        if (study->slot[id] == TPE_SLOT_OK && (best < 0 || study->loss[id] < study->loss[best]))
            best = id;
    if (best < 0)
        return TB_NOTFOUND;
    if (loss)
        *loss = study->loss[best];
    if (values && nvalues >= study->nparams)
        memcpy(values, study->values + (size_t)best * study->nparams,
               study->nparams * sizeof(double));
    return best;
}

void tpe_study_counts(const struct tpe_study *study, size_t *pending, size_t *ok, size_t *failed)
{
    if (pending)
        *pending = study->npending;
    if (ok)
        *ok = study->nok;
    if (failed)
        *failed = study->nfailed;
}

int tpe_log_density(const struct tpe_study *study, size_t param, double value, double *log_below,
                    double *log_above, char *err, size_t errsz)
{
    if (param >= study->nparams)
        return tb_fail(err, errsz, TB_USAGE, "there is no parameter %zu (the space has %zu)", param,
                       study->nparams);
    const struct tpe_param_def *def = &study->space->params[param];
    int rc = tpe_check_value(def, value, err, errsz);
    if (rc != TB_OK)
        return rc;
    struct tpe_history history;
    struct tpe_work work;
    tpe_history_build(study, &history);
    tpe_work_init(&work, history.n, study->max_categories);
    tpe_models_build(study, &history, param, &work);
    if (tpe_categories(def)) {
        size_t c = (size_t)(def->kind == TPE_RANDINT ? value - def->low : value);
        *log_below = log(work.below_p[c]);
        *log_above = log(work.above_p[c]);
    } else {
        *log_below = tpe_numeric_log_density(def, &work.below, value, work.terms);
        *log_above = tpe_numeric_log_density(def, &work.above, value, work.terms);
    }
    tpe_work_free(&work);
    tpe_history_free(&history);
    return TB_OK;
}
