/* Binary logistic regression: Newton's method on standardised row blocks, Cholesky solves. */
#include "models/logistic.h"

#include "models/standardize.h"
#include "service/base/error.h"
#include "service/base/mem.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Rows per block when the gradient and Hessian are accumulated: bounds the standardised copy of
 * the rows to LOGISTIC_BLOCK_ROWS * nfeatures doubles and keeps BLAS dimensions within int. */
#define LOGISTIC_BLOCK_ROWS 4096

/* On large problems the first Newton steps, far from the optimum, take their Hessian from every
 * LOGISTIC_HESSIAN_STRIDE-th block of rows (the gradient always comes from all of them): a
 * direction that is still a descent direction, for a sixteenth of the dominant cost (at least
 * four blocks are sampled). Once the
 * gradient's max-norm is below LOGISTIC_EXACT_BELOW x rows, or a step is refused, the Hessian is
 * exact again, so the last steps converge quadratically to the exact optimum. */
#define LOGISTIC_HESSIAN_STRIDE   16
#define LOGISTIC_SAMPLED_MIN_ROWS ((size_t)4 * LOGISTIC_HESSIAN_STRIDE * LOGISTIC_BLOCK_ROWS)
#define LOGISTIC_EXACT_BELOW      1e-4

/* Armijo constant of the line search and the number of step halvings it tries. */
#define LOGISTIC_ARMIJO       1e-4
#define LOGISTIC_MAX_HALVINGS 60

/* With l2 = 0, a Cholesky pivot of the unit-diagonal (equilibrated) Hessian whose square is
 * below this means the feature is (numerically) a combination of the ones before it. */
#define LOGISTIC_SINGULAR_PIVOT 1e-12

/* The problem and the scratch of one fit. The fit runs on standardised features
 * z_j = (x_j - mean_j) / std_j: Newton's method is indifferent to that in exact arithmetic, but
 * centring keeps the Hessian well conditioned whatever the features' offsets, and it makes tol
 * independent of their units. The parameters theta = [c, v_0 .. v_{p-1}] (q = p + 1) of the
 * standardised problem give b = c - sum_j w_j mean_j and w_j = v_j / std_j. A constant feature
 * has inv_std 0: its z is 0, and its coefficient stays 0. */
struct logistic_fit_state {
    size_t n, p, q;
    double l2;
    struct standardize *scales;
    const double *inv_std;   /* p: 1 / std_j, 0 for a constant feature (owned by scales) */
    unsigned char *positive; /* n: 1 when y_i is classes[1] */
    double *eta;             /* n: c + v . z_i at theta */
    double *prev;            /* n: eta before the last step, whose scores are then eta - prev */
    double *z;               /* block x p: standardised rows, then scaled by sqrt(curv) */
    double *resid;           /* block: p_i - t_i */
    double *curv;            /* block: p_i (1 - p_i) */
    double *theta;           /* q */
    double *grad;            /* q */
    double *hess;            /* q x q row-major, upper triangle */
    double *equil;           /* q: the equilibration 1 / sqrt(hess_jj) */
    double *dir;             /* q: the Newton direction */
    double *saved;           /* q: theta before the polishing step */
};

/* sigmoid(t) = 1 / (1 + exp(-t)), without overflow for either sign of t. */
static double logistic_sigmoid(double t)
{
    if (t >= 0.0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* log(1 + exp(t)), without overflow or loss of precision for either sign of t. */
static double logistic_softplus(double t)
{
    return t > 0.0 ? t + log1p(exp(-t)) : log1p(exp(t));
}

/* softplus(after) - softplus(before), accurate to relative precision even when the two are
 * close: that is log1p(sigmoid(before) * expm1(after - before)). A large move is a plain
 * difference, whose terms then do not cancel (and expm1 could overflow). */
static double logistic_softplus_change(double before, double after)
{
    double delta = after - before;
    if (fabs(delta) > 1.0)
        return logistic_softplus(after) - logistic_softplus(before);
    return log1p(logistic_sigmoid(before) * expm1(delta));
}

/* Puts the distinct values of y (n >= 1, finite) in classes, ascending, when there are at most
 * two; returns how many there are, 3 standing for "more than two". */
static size_t logistic_two_classes(const double *y, size_t n, double classes[2])
{
    size_t found = 1;
    classes[0] = y[0];
    for (size_t i = 1; i < n; i++) {
        if (y[i] == classes[0] || (found == 2 && y[i] == classes[1]))
            continue;
        if (found == 2)
            return 3;
        classes[1] = y[i];
        found = 2;
    }
    if (found == 2 && classes[0] > classes[1]) {
        double first = classes[1];
        classes[1] = classes[0];
        classes[0] = first;
    }
    return found;
}

static int logistic_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The number of distinct values of y, by sorting a copy. */
static size_t logistic_count_distinct(const double *y, size_t n)
{
    double *sorted = mem_alloc(n * sizeof(double));
    memcpy(sorted, y, n * sizeof(double));
    qsort(sorted, n, sizeof(double), logistic_compare);
    size_t count = n > 0;
    for (size_t i = 1; i < n; i++)
        count += sorted[i] != sorted[i - 1];
    free(sorted);
    return count;
}

/* At s->theta: sets eta, the gradient and, when stride > 0, the Hessian of the penalised
 * objective (upper triangle), from every stride-th block of rows scaled up to all of them
 * (stride 1: the exact Hessian). Returns whether every row is on its own class's side of the
 * boundary, which with l2 = 0 means the optimum is at infinity. */
static bool logistic_newton_system(struct logistic_fit_state *s, size_t stride)
{
    size_t n = s->n, p = s->p, q = s->q;
    const double *v = s->theta + 1;
    bool separated = true;
    double grad_c = 0.0, hess_cc = 0.0;
    size_t sampled = 0;

    memset(s->grad, 0, q * sizeof(double));
    memset(s->hess, 0, q * q * sizeof(double));
    for (size_t start = 0, block = 0; start < n; start += LOGISTIC_BLOCK_ROWS, block++) {
        size_t m = n - start;
        if (m > LOGISTIC_BLOCK_ROWS)
            m = LOGISTIC_BLOCK_ROWS;
        bool in_hessian = stride > 0 && block % stride == 0;
        double *eta = s->eta + start;
        standardize_rows(s->scales, start, m, s->z);
        for (size_t i = 0; i < m; i++)
            eta[i] = s->theta[0];
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)p, 1.0, s->z, (int)p, v, 1, 1.0, eta,
                    1);
        for (size_t i = 0; i < m; i++) {
            bool positive = s->positive[start + i];
            double prob = logistic_sigmoid(eta[i]), other = logistic_sigmoid(-eta[i]);
            /* p - 1 as -(1 - p), which does not cancel when p is close to 1. */
            s->resid[i] = positive ? -other : prob;
            s->curv[i] = prob * other;
            separated = separated && (positive ? eta[i] > 0.0 : eta[i] < 0.0);
            grad_c += s->resid[i];
            hess_cc += in_hessian ? s->curv[i] : 0.0;
        }
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, (int)p, 1.0, s->z, (int)p, s->resid, 1, 1.0,
                    s->grad + 1, 1);
        if (!in_hessian)
            continue;
        sampled += m;
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, (int)p, 1.0, s->z, (int)p, s->curv, 1, 1.0,
                    s->hess + 1, 1);
        /* Z' D Z as (D^1/2 Z)' (D^1/2 Z), one dsyrk per block. */
        for (size_t i = 0; i < m; i++) {
            double root = sqrt(s->curv[i]);
            for (size_t j = 0; j < p; j++)
                s->z[i * p + j] *= root;
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)m, 1.0, s->z, (int)p, 1.0,
                    s->hess + q + 1, (int)q);
    }
    s->grad[0] = grad_c;
    s->hess[0] = hess_cc;
    if (sampled > 0 && sampled < n) {
        double scale = (double)n / (double)sampled;
        for (size_t i = 0; i < q; i++)
            for (size_t j = i; j < q; j++)
                s->hess[i * q + j] *= scale;
    }
    /* The penalty (l2/2) sum_j w_j^2 = (l2/2) sum_j (v_j / std_j)^2. A constant feature gets a
     * unit diagonal instead: its row of the Hessian and its gradient are 0, so its step is 0. */
    for (size_t j = 0; j < p; j++) {
        double weight = s->l2 * s->inv_std[j] * s->inv_std[j];
        s->grad[1 + j] += weight * v[j];
        s->hess[(1 + j) * q + 1 + j] += s->inv_std[j] == 0.0 ? 1.0 : weight;
    }
    return separated;
}

/* objective(theta + step * dir) - objective(theta), where s->prev holds eta at theta and s->eta
 * at theta + dir (eta is linear along the line). Summed from per-row changes so that it stays
 * accurate near the optimum, where the objective itself is far larger than its changes. */
static double logistic_objective_change(const struct logistic_fit_state *s, double step)
{
    double change = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        /* The row's loss is softplus(-s_i eta_i), s_i = +1 for classes[1] and -1 otherwise. */
        double sign = s->positive[i] ? -1.0 : 1.0, eta = s->prev[i];
        double moved = step == 1.0 ? s->eta[i] : eta + step * (s->eta[i] - eta);
        change += logistic_softplus_change(sign * eta, sign * moved);
    }
    /* (l2/2) sum_j ((v_j + step dv_j)^2 - v_j^2) / std_j^2, theta being v before the step */
    double penalty = 0.0;
    for (size_t j = 0; j < s->p; j++) {
        double v = s->saved[1 + j], dv = s->dir[1 + j];
        penalty += s->inv_std[j] * s->inv_std[j] * (v * dv + 0.5 * step * dv * dv);
    }
    return change + s->l2 * step * penalty;
}

/* Solves hess . dir = -grad by Cholesky on the equilibrated Hessian E H E (E = diag(H)^-1/2,
 * unit diagonal); hess is overwritten. Returns TB_OK or TB_NUMERIC with a message. */
static int logistic_newton_direction(struct logistic_fit_state *s, char *err, size_t errsz)
{
    size_t q = s->q;
    const char *hint = s->l2 == 0.0 ? "; with l2 = 0 that comes from a feature collinear with "
                                      "others or (almost) separable classes: use l2 > 0"
                                    : "";
    for (size_t j = 0; j < q; j++) {
        double diag = s->hess[j * q + j];
        if (!(diag > 0.0) || !isfinite(diag))
            return tb_fail(err, errsz, TB_NUMERIC,
                           "the logistic Hessian is singular: every row's probability is 0 or 1 "
                           "at the current coefficients%s",
                           hint);
        s->equil[j] = 1.0 / sqrt(diag);
    }
    for (size_t i = 0; i < q; i++) {
        for (size_t j = i; j < q; j++)
            s->hess[i * q + j] *= s->equil[i] * s->equil[j];
        s->dir[i] = -s->grad[i] * s->equil[i];
    }
    /* The upper triangle of a row-major matrix is the lower triangle of the same memory read
     * column-major. */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)q, s->hess, (lapack_int)q);
    if (info < 0)
        return tb_fail(err, errsz, TB_NUMERIC, "LAPACK dpotrf rejected argument %d", (int)-info);
    size_t bad = info > 0 ? (size_t)info - 1 : q;
    if (info == 0 && s->l2 == 0.0)
        for (size_t j = 0; j < q && bad == q; j++)
            if (s->hess[j * q + j] * s->hess[j * q + j] <= LOGISTIC_SINGULAR_PIVOT)
                bad = j;
    if (bad < q) {
        if (bad == 0)
            return tb_fail(err, errsz, TB_NUMERIC, "the logistic Hessian is singular%s", hint);
        return tb_fail(err, errsz, TB_NUMERIC,
                       "the logistic Hessian is singular at feature %zu (counting from 0), which "
                       "is collinear with the features before it%s",
                       bad - 1, hint);
    }
    info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)q, 1, s->hess, (lapack_int)q, s->dir,
                          (lapack_int)q);
    if (info != 0)
        return tb_fail(err, errsz, TB_NUMERIC, "LAPACK dpotrs failed (info %d)", (int)info);
    for (size_t j = 0; j < q; j++)
        s->dir[j] *= s->equil[j];
    if (!standardize_all_finite(s->dir, q))
        return tb_fail(err, errsz, TB_NUMERIC, "the Newton step overflowed%s", hint);
    return TB_OK;
}

/* Called once the gradient (max-norm gmax) meets tol, with the Hessian at theta in s->hess:
 * takes one more full Newton step and keeps it when it lowers the gradient's max-norm. Near the
 * optimum each Newton step squares the error, so this takes the result from "within tol" to
 * rounding, for one factorisation and one pass without the Hessian. */
static void logistic_polish(struct logistic_fit_state *s, double gmax)
{
    char ignored[8];
    if (gmax == 0.0 || logistic_newton_direction(s, ignored, sizeof(ignored)) != TB_OK)
        return;
    memcpy(s->saved, s->theta, s->q * sizeof(double));
    cblas_daxpy((int)s->q, 1.0, s->dir, 1, s->theta, 1);
    (void)logistic_newton_system(s, 0);
    if (!(standardize_max_abs(s->grad, s->q) < gmax))
        memcpy(s->theta, s->saved, s->q * sizeof(double));
}

/* Newton's method from s->theta until the gradient's max-norm is at most tol * n. Each step
 * first tries the full Newton step, building the next Newton system at that point in the same
 * pass; only when the step is refused is it halved, from the two sets of scores (no pass over
 * the data), and the system rebuilt where it lands. Returns TB_OK with the number of steps in
 * *steps, or a failure with its message. */
static int logistic_newton(struct logistic_fit_state *s, const struct standardize_fit *fit,
                           int *steps, char *err, size_t errsz)
{
    size_t stride = s->n >= LOGISTIC_SAMPLED_MIN_ROWS ? LOGISTIC_HESSIAN_STRIDE : 1;
    bool separated = logistic_newton_system(s, stride), converged = false;
    double gmax = 0.0;
    for (*steps = 0;; ++*steps) {
        gmax = standardize_max_abs(s->grad, s->q);
        if (gmax <= LOGISTIC_EXACT_BELOW * (double)s->n)
            stride = 1;
        int rc =
            standardize_check_gradient(fit, s->n, gmax, separated, *steps, &converged, err, errsz);
        if (rc != TB_OK)
            return rc;
        if (converged) {
            logistic_polish(s, gmax);
            return TB_OK;
        }
        rc = logistic_newton_direction(s, err, errsz);
        if (rc != TB_OK)
            return rc;
        double slope = cblas_ddot((int)s->q, s->grad, 1, s->dir, 1);
        if (!(slope < 0.0))
            break;

        /* The full step, with the next system built at its end. */
        memcpy(s->saved, s->theta, s->q * sizeof(double));
        double *swap = s->prev;
        s->prev = s->eta;
        s->eta = swap;
        cblas_daxpy((int)s->q, 1.0, s->dir, 1, s->theta, 1);
        separated = logistic_newton_system(s, stride);
        if (logistic_objective_change(s, 1.0) <= LOGISTIC_ARMIJO * slope)
            continue;
        stride = 1;

        /* Refused: halve it, scoring each try from prev and eta. */
        double step = 0.5;
        int halvings = 1;
        for (; halvings < LOGISTIC_MAX_HALVINGS; halvings++) {
            if (logistic_objective_change(s, step) <= LOGISTIC_ARMIJO * step * slope)
                break;
            step *= 0.5;
        }
        if (halvings == LOGISTIC_MAX_HALVINGS)
            break;
        memcpy(s->theta, s->saved, s->q * sizeof(double));
        cblas_daxpy((int)s->q, step, s->dir, 1, s->theta, 1);
        separated = logistic_newton_system(s, stride);
    }
    /* No descent direction, or no step along it that descends: rounding has the last word. */
    return tb_fail(err, errsz, TB_NUMERIC,
                   "logistic stalled after %d Newton steps: the line search cannot reduce the "
                   "objective, gradient max-norm %g > tol %g x %zu rows; use a larger tol%s",
                   *steps, gmax, fit->tol, s->n, standardize_separable_hint(fit->l2));
}

/* Checks the arguments and finds the two classes; TB_OK or a failure with its message. */
static int logistic_check(const double *x, const double *y, size_t nrows, size_t nfeatures,
                          const struct standardize_fit *fit, double *classes, char *err,
                          size_t errsz)
{
    int rc = standardize_check_problem(fit, x, y, nrows, nfeatures, err, errsz);
    if (rc != TB_OK)
        return rc;
    size_t distinct = logistic_two_classes(y, nrows, classes);
    if (distinct > 2)
        return tb_fail(err, errsz, TB_USAGE,
                       "label has %zu distinct values; logistic needs 2, use softmax",
                       logistic_count_distinct(y, nrows));
    if (distinct == 1)
        return tb_fail(err, errsz, TB_USAGE, "label has 1 distinct value (%g); logistic needs 2",
                       classes[0]);
    return TB_OK;
}

int logistic_fit(const double *x, const double *y, size_t nrows, size_t nfeatures,
                 const struct logistic_options *options, struct linear_model *out, int *iterations,
                 char *err, size_t errsz)
{
    static const struct logistic_options defaults = {
        .l2 = LOGISTIC_DEFAULT_L2,
        .tol = LOGISTIC_DEFAULT_TOL,
        .max_iter = LOGISTIC_DEFAULT_MAX_ITER,
    };
    const struct logistic_options *o = options ? options : &defaults;
    const struct standardize_fit fit = {.model = "logistic",
                                        .steps = "Newton steps",
                                        .max_features = LOGISTIC_MAX_FEATURES,
                                        .l2 = o->l2,
                                        .tol = o->tol,
                                        .max_iter = o->max_iter};
    double classes[2], *coef = NULL;
    int rc = logistic_check(x, y, nrows, nfeatures, &fit, classes, err, errsz);
    if (rc != TB_OK)
        return rc;

    size_t n = nrows, p = nfeatures, q = p + 1;
    size_t block = n < LOGISTIC_BLOCK_ROWS ? n : LOGISTIC_BLOCK_ROWS;
    struct logistic_fit_state s = {.n = n, .p = p, .q = q, .l2 = o->l2};
    s.scales = standardize_new(x, n, p);
    s.inv_std = standardize_inv_std(s.scales);
    s.positive = mem_alloc(n);
    s.eta = mem_alloc(n * sizeof(double));
    s.prev = mem_alloc(n * sizeof(double));
    s.z = mem_alloc(block * p * sizeof(double));
    s.resid = mem_alloc(block * sizeof(double));
    s.curv = mem_alloc(block * sizeof(double));
    s.theta = mem_calloc(q, sizeof(double));
    s.grad = mem_alloc(q * sizeof(double));
    s.hess = mem_alloc(q * q * sizeof(double));
    s.equil = mem_alloc(q * sizeof(double));
    s.dir = mem_alloc(q * sizeof(double));
    s.saved = mem_alloc(q * sizeof(double));

    size_t npositive = 0;
    for (size_t i = 0; i < n; i++) {
        s.positive[i] = y[i] == classes[1];
        npositive += s.positive[i];
    }
    /* Start from the optimum of the intercept alone (w = 0): the log-odds of the classes. */
    s.theta[0] = log((double)npositive / (double)(n - npositive));

    int steps = 0;
    rc = logistic_newton(&s, &fit, &steps, err, errsz);
    if (rc != TB_OK)
        goto done;

    /* Back to the features' own units: w_j = v_j / std_j, b = c - sum_j w_j mean_j. */
    standardize_map_back(s.scales, 1, s.theta + 1, s.theta);
    if (!standardize_all_finite(s.theta, q)) {
        rc = tb_fail(err, errsz, TB_NUMERIC, "the logistic solution is not finite");
        goto done;
    }
    coef = mem_alloc(p * sizeof(double));
    memcpy(coef, s.theta + 1, p * sizeof(double));
    out->kind = LINEAR_LOGISTIC;
    out->nfeatures = p;
    out->noutputs = 1;
    out->nclasses = 2;
    out->intercept = mem_alloc(sizeof(double));
    out->intercept[0] = s.theta[0];
    out->coef = coef;
    coef = NULL;
    out->classes = mem_alloc(2 * sizeof(double));
    memcpy(out->classes, classes, sizeof(classes));
    if (iterations)
        *iterations = steps;

done:
    free(coef);
    free(s.saved);
    free(s.dir);
    free(s.equil);
    free(s.hess);
    free(s.grad);
    free(s.theta);
    free(s.curv);
    free(s.resid);
    free(s.z);
    free(s.prev);
    free(s.eta);
    free(s.positive);
    standardize_destroy(s.scales);
    return rc;
}
