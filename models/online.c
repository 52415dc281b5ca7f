/* Per-key online models: RLS, FTRL-Proximal (linear and logistic), Welford/EWMA anomaly scores and
 * Holt's trend RUL, each a pure function of an immutable model and one key's flat state. */
#include "models/online.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct online_model {
    struct online_params params;
    size_t nfeatures;
    size_t dim;       /* rls and ftrl: nfeatures + 1 coordinates, the intercept last */
    size_t state_len; /* doubles of one key's state */
};

static const char *const kind_names[] = {
    [ONLINE_RLS] = "rls",
    [ONLINE_FTRL_LINEAR] = "ftrl",
    [ONLINE_FTRL_LOGISTIC] = "ftrl_logistic",
    [ONLINE_ANOMALY] = "anomaly",
    [ONLINE_HOLT] = "holt",
};
#define ONLINE_NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

void online_params_default(struct online_params *p, enum online_kind kind)
{
    *p = (struct online_params){
        .kind = kind,
        .forgetting = 1.0,
        .delta = 1.0,
        .alpha = 0.1,
        .beta = 1.0,
        .l1 = 0.0,
        .l2 = 0.0,
        .stat = ONLINE_WELFORD,
        .ewma_alpha = 0.05,
        .score = ONLINE_SCORE_ZMAX,
        .warmup = 10,
        .min_std = 1e-9,
        .indicator = 0,
        .level_alpha = 0.3,
        .trend_beta = 0.1,
        .threshold = 0.0,
        .direction = -1,
        .horizon = 1000.0,
    };
}

const char *online_kind_name(enum online_kind k)
{
    return (unsigned)k < ONLINE_NKINDS ? kind_names[k] : "?";
}

int online_kind_parse(const char *name, enum online_kind *k)
{
    for (size_t i = 0; name && i < ONLINE_NKINDS; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *k = (enum online_kind)i;
            return TB_OK;
        }
    }
    return TB_CONFIG;
}

/* --- validation ------------------------------------------------------------------------------- */

/* Whether v lies in (0, 1]; false for NaN. */
static bool in_unit_interval(double v)
{
    return v > 0.0 && v <= 1.0;
}

/* Returns TB_OK, or TB_CONFIG with a message naming the first parameter of p's kind that is out
 * of range. */
static int validate(const struct online_params *p, size_t nfeatures, char *err, size_t errsz)
{
    if ((unsigned)p->kind >= ONLINE_NKINDS)
        return tb_fail(err, errsz, TB_CONFIG,
                       "online.kind %d is not one of rls, ftrl, ftrl_logistic, anomaly, holt",
                       (int)p->kind);
    if (nfeatures == 0 || nfeatures > ONLINE_MAX_FEATURES)
        return tb_fail(err, errsz, TB_CONFIG, "online: nfeatures must be in [1, %d], not %zu",
                       ONLINE_MAX_FEATURES, nfeatures);
    switch (p->kind) {
    case ONLINE_RLS:
        if (!in_unit_interval(p->forgetting))
            return tb_fail(err, errsz, TB_CONFIG, "online.forgetting must be in (0, 1], not %g",
                           p->forgetting);
        if (!(p->delta > 0.0 && isfinite(p->delta)))
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.delta must be positive and finite, not %g", p->delta);
        break;
    case ONLINE_FTRL_LINEAR:
    case ONLINE_FTRL_LOGISTIC:
        if (!(p->alpha > 0.0 && isfinite(p->alpha)))
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.alpha must be positive and finite, not %g", p->alpha);
        if (!(p->beta >= 0.0 && isfinite(p->beta)))
            return tb_fail(err, errsz, TB_CONFIG, "online.beta must be >= 0 and finite, not %g",
                           p->beta);
        if (!(p->l1 >= 0.0 && isfinite(p->l1)))
            return tb_fail(err, errsz, TB_CONFIG, "online.l1 must be >= 0 and finite, not %g",
                           p->l1);
        if (!(p->l2 >= 0.0 && isfinite(p->l2)))
            return tb_fail(err, errsz, TB_CONFIG, "online.l2 must be >= 0 and finite, not %g",
                           p->l2);
        break;
    case ONLINE_ANOMALY:
        if (p->stat != ONLINE_WELFORD && p->stat != ONLINE_EWMA)
            return tb_fail(err, errsz, TB_CONFIG, "online.stat %d is not welford or ewma",
                           (int)p->stat);
        if (p->stat == ONLINE_EWMA && !in_unit_interval(p->ewma_alpha))
            return tb_fail(err, errsz, TB_CONFIG, "online.ewma_alpha must be in (0, 1], not %g",
                           p->ewma_alpha);
        if (p->score != ONLINE_SCORE_ZMAX && p->score != ONLINE_SCORE_MAHALANOBIS)
            return tb_fail(err, errsz, TB_CONFIG, "online.score %d is not zmax or mahalanobis",
                           (int)p->score);
        if (p->warmup < 1)
            return tb_fail(err, errsz, TB_CONFIG, "online.warmup must be at least 1, not %zu",
                           p->warmup);
        if (!(p->min_std > 0.0 && isfinite(p->min_std)))
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.min_std must be positive and finite, not %g", p->min_std);
        break;
    case ONLINE_HOLT:
        if (p->indicator >= nfeatures)
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.indicator %zu is not a feature index (there are %zu features)",
                           p->indicator, nfeatures);
        if (!in_unit_interval(p->level_alpha))
            return tb_fail(err, errsz, TB_CONFIG, "online.level_alpha must be in (0, 1], not %g",
                           p->level_alpha);
        if (!in_unit_interval(p->trend_beta))
            return tb_fail(err, errsz, TB_CONFIG, "online.trend_beta must be in (0, 1], not %g",
                           p->trend_beta);
        if (!isfinite(p->threshold))
            return tb_fail(err, errsz, TB_CONFIG, "online.threshold must be finite, not %g",
                           p->threshold);
        if (p->direction != 1 && p->direction != -1)
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.direction must be +1 (up) or -1 (down), not %d", p->direction);
        if (!(p->horizon > 0.0 && isfinite(p->horizon)))
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.horizon must be positive and finite, not %g", p->horizon);
        break;
    }
    return TB_OK;
}

struct online_model *online_new(const struct online_params *p, size_t nfeatures, char *err,
                                size_t errsz)
{
    if (validate(p, nfeatures, err, errsz) != TB_OK)
        return NULL;
    struct online_model *m = mem_calloc(1, sizeof(*m));
    m->params = *p;
    m->nfeatures = nfeatures;
    m->dim = nfeatures + 1;
    size_t d = m->dim;
    switch (p->kind) {
    case ONLINE_RLS:
        m->state_len = 1 + d + d * (d + 1) / 2;
        break;
    case ONLINE_FTRL_LINEAR:
    case ONLINE_FTRL_LOGISTIC:
        m->state_len = 1 + 3 * d;
        break;
    case ONLINE_ANOMALY:
        m->state_len = 1 + 2 * nfeatures;
        break;
    case ONLINE_HOLT:
        m->state_len = 3;
        break;
    }
    return m;
}

void online_destroy(struct online_model *m)
{
    free(m);
}

enum online_kind online_model_kind(const struct online_model *m)
{
    return m->params.kind;
}

size_t online_nfeatures(const struct online_model *m)
{
    return m->nfeatures;
}

const struct online_params *online_model_params(const struct online_model *m)
{
    return &m->params;
}

size_t online_state_len(const struct online_model *m)
{
    return m->state_len;
}

bool online_supervised(const struct online_model *m)
{
    return m->params.kind == ONLINE_RLS || m->params.kind == ONLINE_FTRL_LINEAR ||
           m->params.kind == ONLINE_FTRL_LOGISTIC;
}

bool online_classifier(const struct online_model *m)
{
    return m->params.kind == ONLINE_FTRL_LOGISTIC;
}

double online_learned(const struct online_model *m, const double *state)
{
    (void)m;
    return state[0];
}

/* --- rls -------------------------------------------------------------------------------------- */

/* w . [x, 1] over d = nfeatures + 1 coordinates. */
static double affine_dot(const double *w, const double *x, size_t nfeatures)
{
    double sum = w[nfeatures];
    for (size_t j = 0; j < nfeatures; j++)
        sum += w[j] * x[j];
    return sum;
}

static void rls_init(const struct online_model *m, double *state)
{
    size_t d = m->dim;
    double *w = state + 1, *packed = state + 1 + d;
    memset(w, 0, d * sizeof(double));
    double diagonal = 1.0 / m->params.delta;
    for (size_t i = 0; i < d; i++) {
        packed[0] = diagonal;
        memset(packed + 1, 0, (d - 1 - i) * sizeof(double));
        packed += d - i;
    }
}

/* One RLS update towards target (y - offset): u = P x, k = u / (lambda + x'u),
 * w += k (target - w.x), P = (P - k x'P) / lambda, and k x'P = k u' = u u' / (lambda + x'u)
 * because P is symmetric, so updating the packed upper triangle keeps P exactly symmetric. Plain
 * loops: for d = 17 they beat BLAS dspmv + dspr, whose call overhead is larger than the work. */
static void rls_learn(const struct online_model *m, double *state, const double *x, double target)
{
    size_t d = m->dim, nf = m->nfeatures;
    /* online_new: nfeatures passed validate() and dim counts the intercept too, so xe and u hold
     * d coordinates and all d of xe are set below. */
    assert(nf <= ONLINE_MAX_FEATURES && d == nf + 1);
    double *w = state + 1, *packed = state + 1 + d;
    double xe[ONLINE_MAX_FEATURES + 1], u[ONLINE_MAX_FEATURES + 1];
    memcpy(xe, x, nf * sizeof(double));
    xe[nf] = 1.0;

    /* u = P xe from the upper triangle: row i contributes P_ii x_i + sum_{j>i} P_ij x_j to u_i
     * and P_ij x_i to every u_j, j > i. */
    memset(u, 0, d * sizeof(double));
    const double *row = packed;
    for (size_t i = 0; i < d; i++) {
        double xi = xe[i], acc = row[0] * xi;
        const double *r = row - i; /* r[j] is P_ij for j >= i */
        for (size_t j = i + 1; j < d; j++) {
            acc += r[j] * xe[j];
            u[j] += r[j] * xi;
        }
        u[i] += acc;
        row += d - i;
    }
    double xpx = 0.0, wx = 0.0;
    for (size_t j = 0; j < d; j++) {
        xpx += xe[j] * u[j];
        wx += w[j] * xe[j];
    }
    double lambda = m->params.forgetting;
    double denom = lambda + xpx, err = target - wx, inv_lambda = 1.0 / lambda;
    for (size_t j = 0; j < d; j++)
        w[j] += u[j] / denom * err;
    double *prow = packed;
    for (size_t i = 0; i < d; i++) {
        double ki = u[i] / denom;
        double *r = prow - i;
        for (size_t j = i; j < d; j++)
            r[j] = (r[j] - ki * u[j]) * inv_lambda;
        prow += d - i;
    }
    state[0] += 1.0;
}

/* --- ftrl ------------------------------------------------------------------------------------- */

static double sigmoid(double t)
{
    if (t >= 0.0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

static double ftrl_output(const struct online_model *m, const double *state, const double *x,
                          double offset)
{
    const double *w = state + 1 + 2 * m->dim;
    double t = offset + affine_dot(w, x, m->nfeatures);
    return m->params.kind == ONLINE_FTRL_LOGISTIC ? sigmoid(t) : t;
}

/* One FTRL-Proximal step (McMahan et al. 2013, algorithm 1), per coordinate i with gradient
 * g_i = (prediction - y) x_i + l2 w_i (no l2 on the intercept):
 *   sigma = (sqrt(n_i + g_i^2) - sqrt(n_i)) / alpha, z_i += g_i - sigma w_i, n_i += g_i^2,
 *   w_i = 0 if |z_i| <= l1, else -(z_i - sign(z_i) l1) alpha / (beta + sqrt(n_i)).
 * prediction is the output before the step (sigmoid applied for the logistic loss). */
static void ftrl_learn(const struct online_model *m, double *state, const double *x, double y,
                       double prediction)
{
    size_t d = m->dim, nf = m->nfeatures;
    double *z = state + 1, *n = state + 1 + d, *w = state + 1 + 2 * d;
    double alpha = m->params.alpha, beta = m->params.beta;
    double l1 = m->params.l1, l2 = m->params.l2;
    double residual = prediction - y;
    for (size_t i = 0; i < d; i++) {
        bool intercept = i == nf;
        double g = intercept ? residual : residual * x[i] + l2 * w[i];
        double n_new = n[i] + g * g;
        double root_old = sqrt(n[i]), root_new = sqrt(n_new);
        z[i] += g - (root_new - root_old) / alpha * w[i];
        n[i] = n_new;
        double threshold = intercept ? 0.0 : l1, zi = z[i];
        double scale = (beta + root_new) / alpha;
        /* |z| > 0 implies some g != 0 and so n > 0; scale > 0 also guards a g whose square
         * underflows when beta is 0. */
        if (fabs(zi) <= threshold || !(scale > 0.0))
            w[i] = 0.0;
        else
            w[i] = -(zi - copysign(threshold, zi)) / scale;
    }
    state[0] += 1.0;
}

/* --- anomaly ---------------------------------------------------------------------------------- */

static double anomaly_score(const struct online_model *m, const double *state, const double *x)
{
    const struct online_params *p = &m->params;
    double count = state[0];
    if (count < (double)p->warmup)
        return 0.0;
    size_t nf = m->nfeatures;
    const double *mean = state + 1, *spread = state + 1 + nf;
    bool welford = p->stat == ONLINE_WELFORD;
    double zmax = 0.0, sumsq = 0.0;
    for (size_t j = 0; j < nf; j++) {
        double var = welford ? spread[j] / count : spread[j];
        double z = (x[j] - mean[j]) / fmax(sqrt(var), p->min_std);
        zmax = fmax(zmax, fabs(z));
        sumsq += z * z;
    }
    return p->score == ONLINE_SCORE_ZMAX ? zmax : sqrt(sumsq);
}

static void anomaly_learn(const struct online_model *m, double *state, const double *x)
{
    size_t nf = m->nfeatures;
    double *mean = state + 1, *spread = state + 1 + nf;
    double count = state[0] + 1.0;
    if (m->params.stat == ONLINE_WELFORD) {
        for (size_t j = 0; j < nf; j++) {
            double delta = x[j] - mean[j];
            mean[j] += delta / count;
            spread[j] += delta * (x[j] - mean[j]);
        }
    } else if (state[0] == 0.0) {
        memcpy(mean, x, nf * sizeof(double));
        memset(spread, 0, nf * sizeof(double));
    } else {
        double a = m->params.ewma_alpha;
        for (size_t j = 0; j < nf; j++) {
            double delta = x[j] - mean[j];
            mean[j] += a * delta;
            spread[j] = (1.0 - a) * (spread[j] + a * delta * delta);
        }
    }
    state[0] = count;
}

/* --- holt ------------------------------------------------------------------------------------- */

/* Moves (level, trend) by one observation v; the first observation (count 0) sets the level. */
static void holt_update(const struct online_params *p, double count, double *level, double *trend,
                        double v)
{
    if (count == 0.0) {
        *level = v;
        *trend = 0.0;
        return;
    }
    double a = p->level_alpha, b = p->trend_beta;
    double next = a * v + (1.0 - a) * (*level + *trend);
    *trend = b * (next - *level) + (1.0 - b) * *trend;
    *level = next;
}

static double holt_rul(const struct online_params *p, double level, double trend)
{
    double s = (double)p->direction;
    double gap = s * (p->threshold - level), rate = s * trend;
    if (gap <= 0.0)
        return 0.0;
    if (rate <= 0.0)
        return p->horizon;
    double steps = gap / rate;
    return steps < p->horizon ? steps : p->horizon;
}

/* --- dispatch --------------------------------------------------------------------------------- */

void online_state_init(const struct online_model *m, double *state)
{
    memset(state, 0, m->state_len * sizeof(double));
    if (m->params.kind == ONLINE_RLS)
        rls_init(m, state);
}

double online_predict(const struct online_model *m, const double *state, const double *x,
                      double offset)
{
    switch (m->params.kind) {
    case ONLINE_RLS:
        return offset + affine_dot(state + 1, x, m->nfeatures);
    case ONLINE_FTRL_LINEAR:
    case ONLINE_FTRL_LOGISTIC:
        return ftrl_output(m, state, x, offset);
    case ONLINE_ANOMALY:
        return anomaly_score(m, state, x);
    case ONLINE_HOLT: {
        double level = state[1], trend = state[2];
        holt_update(&m->params, state[0], &level, &trend, x[m->params.indicator]);
        return holt_rul(&m->params, level, trend);
    }
    }
    return NAN;
}

double online_step(const struct online_model *m, double *state, const double *x, double y,
                   double offset)
{
    const struct online_params *p = &m->params;
    switch (p->kind) {
    case ONLINE_RLS: {
        double prediction = offset + affine_dot(state + 1, x, m->nfeatures);
        if (isfinite(y))
            rls_learn(m, state, x, y - offset);
        return prediction;
    }
    case ONLINE_FTRL_LINEAR:
    case ONLINE_FTRL_LOGISTIC: {
        double prediction = ftrl_output(m, state, x, offset);
        if (isfinite(y)) {
            if (p->kind == ONLINE_FTRL_LOGISTIC)
                y = y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y;
            ftrl_learn(m, state, x, y, prediction);
        }
        return prediction;
    }
    case ONLINE_ANOMALY: {
        double score = anomaly_score(m, state, x);
        anomaly_learn(m, state, x);
        return score;
    }
    case ONLINE_HOLT:
        holt_update(p, state[0], &state[1], &state[2], x[p->indicator]);
        state[0] += 1.0;
        return holt_rul(p, state[1], state[2]);
    }
    return NAN;
}

void online_step_batch(const struct online_model *m, double *const *states, const double *X,
                       const double *y, const double *offsets, size_t n, double *out)
{
    size_t nf = m->nfeatures;
    for (size_t i = 0; i < n; i++)
        out[i] = online_step(m, states[i], X + i * nf, y ? y[i] : NAN, offsets ? offsets[i] : 0.0);
}

/* --- state check ------------------------------------------------------------------------------ */

int online_state_check(const struct online_model *m, const double *state, char *err, size_t errsz)
{
    double count = state[0];
    if (!(count >= 0.0 && count <= 9007199254740992.0 && count == floor(count)))
        return tb_fail(err, errsz, TB_PARSE,
                       "online state: the count %g is not a whole number of records", count);
    for (size_t i = 1; i < m->state_len; i++)
        if (!isfinite(state[i]))
            return tb_fail(err, errsz, TB_PARSE, "online state: element %zu is %g", i, state[i]);
    size_t d = m->dim, nf = m->nfeatures;
    switch (m->params.kind) {
    case ONLINE_RLS: {
        const double *row = state + 1 + d;
        for (size_t i = 0; i < d; row += d - i, i++)
            if (!(row[0] > 0.0))
                return tb_fail(err, errsz, TB_PARSE,
                               "online state: P[%zu][%zu] = %g is not positive", i, i, row[0]);
        break;
    }
    case ONLINE_FTRL_LINEAR:
    case ONLINE_FTRL_LOGISTIC:
        for (size_t i = 0; i < d; i++)
            if (state[1 + d + i] < 0.0)
                return tb_fail(err, errsz, TB_PARSE, "online state: n[%zu] = %g is negative", i,
                               state[1 + d + i]);
        break;
    case ONLINE_ANOMALY:
        for (size_t j = 0; j < nf; j++)
            if (state[1 + nf + j] < 0.0)
                return tb_fail(err, errsz, TB_PARSE,
                               "online state: the spread of feature %zu is negative (%g)", j,
                               state[1 + nf + j]);
        break;
    case ONLINE_HOLT:
        break;
    }
    return TB_OK;
}
