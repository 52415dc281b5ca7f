/* Multinomial regression: L-BFGS on standardised row blocks, dgemm gradients. */
#include "models/softmax.h"

#include "models/standardize.h"
#include "service/base/error.h"
#include "service/base/mem.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Rows per block of the gradient: bounds the score scratch to SOFTMAX_BLOCK_ROWS * K doubles and
 * keeps BLAS dimensions within int. */
#define SOFTMAX_BLOCK_ROWS 4096

/* Correction pairs L-BFGS keeps. */
#define SOFTMAX_MEMORY 10

/* Wolfe constants: sufficient decrease and curvature. */
#define SOFTMAX_WOLFE_DECREASE  1e-4
#define SOFTMAX_WOLFE_CURVATURE 0.9

/* Objective and gradient evaluations one line search may use. */
#define SOFTMAX_MAX_EVALUATIONS 60

/* The problem and the scratch of one fit. The fit runs on standardised features
 * z_j = (x_j - mean_j) / std_j, which is the same problem in other coordinates but far better
 * conditioned for L-BFGS when features have offsets or different units. Its parameters theta
 * are V (K x p, row-major) followed by c (K), dim = K (p + 1) of them, and give
 * W = V / std (per column) and b = c - W mean. A constant feature has inv_std 0: its z is 0 and
 * its coefficients stay 0. */
struct softmax_fit_state {
    size_t n, p, k, dim;
    double l2;
    struct standardize *scales;
    const double *inv_std; /* p: 1 / std_j, 0 for a constant feature (owned by scales) */
    size_t *label;         /* n: index of y_i in classes */
    double *z;             /* block x p: standardised rows */
    double *scores;        /* block x K: scores, then p - onehot */
    double *theta;         /* dim */
    double *grad;          /* dim, at theta */
    double *dir;           /* dim */
    double *trial;         /* dim: theta + step dir */
    double *trial_g;       /* dim: the gradient at trial */
    double *s_mem;         /* SOFTMAX_MEMORY x dim: steps */
    double *y_mem;         /* SOFTMAX_MEMORY x dim: gradient changes */
    double rho[SOFTMAX_MEMORY];
    double alpha[SOFTMAX_MEMORY];
    size_t stored; /* correction pairs held */
    size_t newest; /* slot of the newest pair */
};

static int softmax_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct values of y in a new array (the caller frees it); *count is how many. */
static double *softmax_distinct(const double *y, size_t n, size_t *count)
{
    double *values = mem_alloc(n * sizeof(double));
    memcpy(values, y, n * sizeof(double));
    qsort(values, n, sizeof(double), softmax_compare);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || values[i] != values[kept - 1])
            values[kept++] = values[i];
    *count = kept;
    return values;
}

/* The index of v in the k ascending classes, where it is known to be. */
static size_t softmax_class_index(const double *classes, size_t k, double v)
{
    size_t lo = 0, hi = k - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (classes[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Writes the gradient of the penalised objective at theta into grad and the objective into
 * *objective. Returns whether every row scores its own class strictly above every other, which
 * with l2 = 0 means the optimum is at infinity. */
static bool softmax_gradient(struct softmax_fit_state *s, const double *theta, double *grad,
                             double *objective)
{
    double loss = 0.0;
    size_t n = s->n, p = s->p, k = s->k;
    const double *v = theta, *b = theta + k * p;
    double *grad_v = grad, *grad_b = grad + k * p;
    bool separated = true;

    memset(grad, 0, s->dim * sizeof(double));
    for (size_t start = 0; start < n; start += SOFTMAX_BLOCK_ROWS) {
        size_t m = n - start < SOFTMAX_BLOCK_ROWS ? n - start : SOFTMAX_BLOCK_ROWS;
        standardize_rows(s->scales, start, m, s->z);
        /* scores (m x K) = z (m x p) . V' (p x K) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)p, 1.0, s->z,
                    (int)p, v, (int)p, 0.0, s->scores, (int)k);
        for (size_t i = 0; i < m; i++) {
            double *row = s->scores + i * k;
            size_t own = s->label[start + i];
            double max = -INFINITY, rival = -INFINITY;
            for (size_t c = 0; c < k; c++) {
                row[c] += b[c];
                if (row[c] > max)
                    max = row[c];
                if (c != own && row[c] > rival)
                    rival = row[c];
            }
            separated = separated && row[own] > rival;
            double sum = 0.0, own_score = row[own];
            for (size_t c = 0; c < k; c++) {
                row[c] = exp(row[c] - max);
                sum += row[c];
            }
            /* cppcheck-suppress invalidFunctionArg ; sum >= 1: the largest term is exp(0) */
            loss += max + log(sum) - own_score; /* log-sum-exp minus the own score */
            /* p - onehot; for the row's own class -(sum of the others), which does not cancel
             * when its probability is close to 1. */
            double others = 0.0;
            for (size_t c = 0; c < k; c++) {
                row[c] /= sum;
                if (c != own)
                    others += row[c];
            }
            row[own] = -others;
            for (size_t c = 0; c < k; c++)
                grad_b[c] += row[c];
        }
        /* grad_V (K x p) += resid' (K x m) . z (m x p) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)p, (int)m, 1.0, s->scores,
                    (int)k, s->z, (int)p, 1.0, grad_v, (int)p);
    }
    /* The penalty (l2/2) sum ||w_k||^2 = (l2/2) sum_kj (v_kj / std_j)^2. */
    double penalty = 0.0;
    for (size_t c = 0; c < k; c++)
        for (size_t j = 0; j < p; j++) {
            double w = v[c * p + j] * s->inv_std[j];
            grad_v[c * p + j] += s->l2 * s->inv_std[j] * w;
            penalty += w * w;
        }
    *objective = loss + 0.5 * s->l2 * penalty;
    return separated;
}

/* The L-BFGS direction -H g (two-loop recursion) into s->dir; -g when no pairs are stored. */
static void softmax_lbfgs_direction(struct softmax_fit_state *s)
{
    int dim = (int)s->dim;
    double *r = s->dir;
    memcpy(r, s->grad, s->dim * sizeof(double));
    for (size_t j = 0; j < s->stored; j++) {
        size_t slot = (s->newest + SOFTMAX_MEMORY - j) % SOFTMAX_MEMORY;
        s->alpha[slot] = s->rho[slot] * cblas_ddot(dim, s->s_mem + slot * s->dim, 1, r, 1);
        cblas_daxpy(dim, -s->alpha[slot], s->y_mem + slot * s->dim, 1, r, 1);
    }
    if (s->stored > 0) {
        const double *y_new = s->y_mem + s->newest * s->dim;
        /* H0 = (s'y / y'y) I, the scale of the newest pair. */
        cblas_dscal(dim, 1.0 / (s->rho[s->newest] * cblas_ddot(dim, y_new, 1, y_new, 1)), r, 1);
    }
    for (size_t j = s->stored; j-- > 0;) {
        size_t slot = (s->newest + SOFTMAX_MEMORY - j) % SOFTMAX_MEMORY;
        double beta = s->rho[slot] * cblas_ddot(dim, s->y_mem + slot * s->dim, 1, r, 1);
        cblas_daxpy(dim, s->alpha[slot] - beta, s->s_mem + slot * s->dim, 1, r, 1);
    }
    cblas_dscal(dim, -1.0, r, 1);
}

/* Finds a step t along s->dir that meets the strong Wolfe conditions, f(t) <= f(0) + c1 t d0
 * and |f'(t)| <= c2 |d0| (d0 = f'(0) < 0, f0 = f(0)). Sufficient decrease is also accepted on
 * the evidence of the derivative alone, f'(t) <= c1 d0: the objective is convex, so then
 * f(t) - f(0) <= t f'(t) <= c1 t d0 exactly. That keeps the search working near the optimum,
 * where changes of the objective fall below its rounding but derivatives are still accurate.
 * On success returns true with the step in *step_io (its first trial on entry), s->trial,
 * s->trial_g and *trial_f at it, and *separated the separation flag there. */
static bool softmax_line_search(struct softmax_fit_state *s, double f0, double d0, double *step_io,
                                double *trial_f, bool *separated)
{
    const double c1 = SOFTMAX_WOLFE_DECREASE, c2 = SOFTMAX_WOLFE_CURVATURE;
    double step = *step_io;
    double lo = 0.0, d_lo = d0, hi = INFINITY, d_hi = NAN;
    for (int e = 0; e < SOFTMAX_MAX_EVALUATIONS; e++) {
        memcpy(s->trial, s->theta, s->dim * sizeof(double));
        cblas_daxpy((int)s->dim, step, s->dir, 1, s->trial, 1);
        double f = 0.0;
        *separated = softmax_gradient(s, s->trial, s->trial_g, &f);
        double d = cblas_ddot((int)s->dim, s->trial_g, 1, s->dir, 1);
        if (!isfinite(d) || !isfinite(f)) {
            hi = step;
            d_hi = NAN;
        } else if (d < c2 * d0) {
            lo = step; /* still steep (and so decreasing enough, by convexity): go further */
            d_lo = d;
        } else if (d > -c2 * d0 || (d > c1 * d0 && f > f0 + c1 * step * d0)) {
            hi = step; /* too far past the minimum along the line, or too little decrease */
            d_hi = d;
        } else {
            *step_io = step;
            *trial_f = f;
            return true;
        }
        if (isinf(hi)) {
            step *= 4.0;
            continue;
        }
        /* Secant on the (increasing) derivative towards its zero, kept inside the middle 80% of
         * the bracket so that the bracket shrinks; bisection without a usable slope. */
        double width = hi - lo, next = 0.5 * (lo + hi);
        if (isfinite(d_hi) && d_hi > d_lo)
            next = lo - d_lo * width / (d_hi - d_lo);
        if (next < lo + 0.1 * width)
            next = lo + 0.1 * width;
        if (next > hi - 0.1 * width)
            next = hi - 0.1 * width;
        step = next;
    }
    return false;
}

/* Stores the pair (step, change of gradient) of an accepted iteration, dropping the oldest. */
static void softmax_remember(struct softmax_fit_state *s, double step)
{
    size_t slot = s->stored == 0 ? 0 : (s->newest + 1) % SOFTMAX_MEMORY;
    double *sv = s->s_mem + slot * s->dim, *yv = s->y_mem + slot * s->dim;
    for (size_t j = 0; j < s->dim; j++) {
        sv[j] = step * s->dir[j];
        yv[j] = s->trial_g[j] - s->grad[j];
    }
    double sy = cblas_ddot((int)s->dim, sv, 1, yv, 1);
    if (!(sy > 0.0) || !isfinite(sy))
        return; /* no curvature information (rounding); keep the old pairs */
    s->rho[slot] = 1.0 / sy;
    s->newest = slot;
    if (s->stored < SOFTMAX_MEMORY)
        s->stored++;
}

/* L-BFGS from s->theta until the gradient's max-norm is at most tol * n. Returns TB_OK with the
 * number of iterations in *iterations, or a failure with its message. */
static int softmax_lbfgs(struct softmax_fit_state *s, const struct standardize_fit *fit,
                         int *iterations, char *err, size_t errsz)
{
    int dim = (int)s->dim;
    double objective = 0.0;
    bool separated = softmax_gradient(s, s->theta, s->grad, &objective), converged = false;
    for (*iterations = 0;; ++*iterations) {
        double gmax = standardize_max_abs(s->grad, s->dim);
        int rc = standardize_check_gradient(fit, s->n, gmax, separated, *iterations, &converged,
                                            err, errsz);
        if (rc != TB_OK || converged)
            return rc;
        /* The quasi-Newton step; when rounding has spoilt it (not a descent direction, or no
         * acceptable step along it), steepest descent with a first step of unit length. */
        bool found = false;
        for (int attempt = 0; attempt < 2 && !found; attempt++) {
            if (attempt > 0) {
                if (s->stored == 0)
                    break; /* that was steepest descent already */
                s->stored = 0;
            }
            softmax_lbfgs_direction(s);
            double d0 = cblas_ddot(dim, s->grad, 1, s->dir, 1);
            if (!(d0 < 0.0) && s->stored > 0) {
                s->stored = 0;
                softmax_lbfgs_direction(s);
                d0 = cblas_ddot(dim, s->grad, 1, s->dir, 1);
            }
            double step = s->stored > 0 ? 1.0 : 1.0 / cblas_dnrm2(dim, s->grad, 1);
            found =
                d0 < 0.0 && softmax_line_search(s, objective, d0, &step, &objective, &separated);
            if (found)
                softmax_remember(s, step);
        }
        if (!found)
            return tb_fail(err, errsz, TB_NUMERIC,
                           "softmax stalled after %d iterations: the line search cannot make "
                           "progress, gradient max-norm %g > tol %g x %zu rows; use a larger "
                           "tol%s",
                           *iterations, gmax, fit->tol, s->n, fit->l2 == 0.0 ? " or l2 > 0" : "");
        double *swap = s->theta;
        s->theta = s->trial;
        s->trial = swap;
        swap = s->grad;
        s->grad = s->trial_g;
        s->trial_g = swap;
    }
}

int softmax_fit(const double *x, const double *y, size_t nrows, size_t nfeatures,
                const struct softmax_options *options, struct linear_model *out, int *iterations,
                char *err, size_t errsz)
{
    static const struct softmax_options defaults = {
        .l2 = SOFTMAX_DEFAULT_L2,
        .tol = SOFTMAX_DEFAULT_TOL,
        .max_iter = SOFTMAX_DEFAULT_MAX_ITER,
    };
    const struct softmax_options *o = options ? options : &defaults;
    const struct standardize_fit fit = {.model = "softmax",
                                        .steps = "iterations",
                                        .max_features = SOFTMAX_MAX_FEATURES,
                                        .l2 = o->l2,
                                        .tol = o->tol,
                                        .max_iter = o->max_iter};
    int rc = standardize_check_problem(&fit, x, y, nrows, nfeatures, err, errsz);
    if (rc != TB_OK)
        return rc;

    struct softmax_fit_state s = {.n = nrows, .p = nfeatures, .l2 = o->l2};
    size_t k = 0;
    double *classes = softmax_distinct(y, nrows, &k);
    double *counts = NULL;
    if (k < 2) {
        rc = tb_fail(err, errsz, TB_USAGE,
                     "label has 1 distinct value (%g); softmax needs at least 2", classes[0]);
        goto done;
    }
    if (k > SOFTMAX_MAX_CLASSES) {
        rc = tb_fail(err, errsz, TB_USAGE,
                     "label has %zu distinct values; softmax supports at most %d classes (is "
                     "the label continuous?)",
                     k, SOFTMAX_MAX_CLASSES);
        goto done;
    }
    size_t n = nrows, p = nfeatures, dim = k * (p + 1);
    size_t block = n < SOFTMAX_BLOCK_ROWS ? n : SOFTMAX_BLOCK_ROWS;
    s.k = k;
    s.dim = dim;
    s.scales = standardize_new(x, n, p);
    s.inv_std = standardize_inv_std(s.scales);
    s.label = mem_alloc(n * sizeof(size_t));
    s.z = mem_alloc(block * p * sizeof(double));
    s.scores = mem_alloc(block * k * sizeof(double));
    s.theta = mem_calloc(dim, sizeof(double));
    s.grad = mem_alloc(dim * sizeof(double));
    s.dir = mem_alloc(dim * sizeof(double));
    s.trial = mem_alloc(dim * sizeof(double));
    s.trial_g = mem_alloc(dim * sizeof(double));
    s.s_mem = mem_alloc(SOFTMAX_MEMORY * dim * sizeof(double));
    s.y_mem = mem_alloc(SOFTMAX_MEMORY * dim * sizeof(double));
    counts = mem_calloc(k, sizeof(double));

    for (size_t i = 0; i < n; i++) {
        s.label[i] = softmax_class_index(classes, k, y[i]);
        counts[s.label[i]] += 1.0;
    }
    /* Start from the optimum with W = 0: the log class frequencies, centred. */
    double *b = s.theta + k * p, mean_log = 0.0;
    for (size_t c = 0; c < k; c++)
        mean_log += log(counts[c]) / (double)k;
    for (size_t c = 0; c < k; c++)
        b[c] = log(counts[c]) - mean_log;

    int iter = 0;
    rc = softmax_lbfgs(&s, &fit, &iter, err, errsz);
    if (rc != TB_OK)
        goto done;

    /* Back to the features' own units, W = V / std and b = c - W mean, as the representative
     * with sum_k b_k = 0 and sum_k w_k = 0 (see softmax.h): centring each column of W and b is
     * a change of gauge, which no probability sees. */
    double *w = s.theta;
    b = s.theta + k * p;
    standardize_map_back(s.scales, k, w, b);
    for (size_t j = 0; j <= p; j++) {
        /* Column j of W (stride p) for j < p, then b (stride 1). */
        double *column = j < p ? w + j : b;
        size_t stride = j < p ? p : 1;
        double mean = 0.0;
        for (size_t c = 0; c < k; c++)
            mean += column[c * stride];
        mean /= (double)k;
        for (size_t c = 0; c < k; c++)
            column[c * stride] -= mean;
    }
    if (!standardize_all_finite(s.theta, dim)) {
        rc = tb_fail(err, errsz, TB_NUMERIC, "the softmax solution is not finite");
        goto done;
    }

    out->kind = LINEAR_SOFTMAX;
    out->nfeatures = p;
    out->noutputs = k;
    out->nclasses = k;
    out->coef = mem_alloc(k * p * sizeof(double));
    memcpy(out->coef, w, k * p * sizeof(double));
    out->intercept = mem_alloc(k * sizeof(double));
    memcpy(out->intercept, b, k * sizeof(double));
    out->classes = classes;
    classes = NULL;
    if (iterations)
        *iterations = iter;

done:
    free(counts);
    free(s.y_mem);
    free(s.s_mem);
    free(s.trial_g);
    free(s.trial);
    free(s.dir);
    free(s.grad);
    free(s.theta);
    free(s.scores);
    free(s.z);
    free(s.label);
    standardize_destroy(s.scales);
    free(classes);
    return rc;
}
