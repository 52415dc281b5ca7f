/* Standardised features for the iterative classifier fits: scales, rows, mapping back, checks. */
#include "models/standardize.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <math.h>

/* A column whose standard deviation is below this fraction of its mean is constant for double
 * precision (what is left after centring it is rounding). */
#define STANDARDIZE_CONSTANT_REL 1e-14

struct standardize {
    const double *x; /* borrowed: nrows x p */
    size_t p;
    double *mean;    /* p */
    double *inv_std; /* p: 1 / std_j, 0 for a constant column */
};

struct standardize *standardize_new(const double *x, size_t nrows, size_t nfeatures)
{
    size_t n = nrows, p = nfeatures;
    struct standardize *s = mem_alloc(sizeof(*s));
    s->x = x;
    s->p = p;
    s->mean = mem_calloc(p, sizeof(double));
    s->inv_std = mem_calloc(p, sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < p; j++)
            s->mean[j] += x[i * p + j];
    for (size_t j = 0; j < p; j++)
        s->mean[j] /= (double)n;
    /* inv_std holds the sums of squared deviations until the last loop. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < p; j++) {
            double d = x[i * p + j] - s->mean[j];
            s->inv_std[j] += d * d;
        }
    for (size_t j = 0; j < p; j++) {
        double sd = sqrt(s->inv_std[j] / (double)n);
        s->inv_std[j] =
            sd > STANDARDIZE_CONSTANT_REL * fabs(s->mean[j]) && sd > 0.0 ? 1.0 / sd : 0.0;
    }
    return s;
}

void standardize_destroy(struct standardize *s)
{
    if (!s)
        return;
    free(s->inv_std);
    free(s->mean);
    free(s);
}

const double *standardize_inv_std(const struct standardize *s)
{
    return s->inv_std;
}

void standardize_rows(const struct standardize *s, size_t start, size_t m, double *z)
{
    size_t p = s->p;
    const double *restrict xb = s->x + start * p, *restrict mean = s->mean;
    const double *restrict inv_std = s->inv_std;
    double *restrict out = z;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < p; j++)
            out[i * p + j] = (xb[i * p + j] - mean[j]) * inv_std[j];
}

void standardize_map_back(const struct standardize *s, size_t noutputs, double *coef,
                          double *intercept)
{
    size_t p = s->p;
    for (size_t c = 0; c < noutputs; c++)
        for (size_t j = 0; j < p; j++) {
            coef[c * p + j] *= s->inv_std[j];
            intercept[c] -= coef[c * p + j] * s->mean[j];
        }
}

double standardize_max_abs(const double *v, size_t count)
{
    double max = 0.0;
    for (size_t i = 0; i < count; i++)
        if (fabs(v[i]) > max)
            max = fabs(v[i]);
    return max;
}

bool standardize_all_finite(const double *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

int standardize_check_problem(const struct standardize_fit *fit, const double *x, const double *y,
                              size_t nrows, size_t nfeatures, char *err, size_t errsz)
{
    if (nrows == 0)
        return tb_fail(err, errsz, TB_USAGE, "no training rows: cannot fit a %s model", fit->model);
    if (nfeatures == 0 || nfeatures > (size_t)fit->max_features)
        return tb_fail(err, errsz, TB_USAGE, "%s needs 1 to %d features, got %zu", fit->model,
                       fit->max_features, nfeatures);
    if (!(fit->l2 >= 0.0) || !isfinite(fit->l2))
        return tb_fail(err, errsz, TB_USAGE, "l2 must be finite and >= 0, got %g", fit->l2);
    if (!(fit->tol > 0.0) || !isfinite(fit->tol))
        return tb_fail(err, errsz, TB_USAGE, "tol must be finite and > 0, got %g", fit->tol);
    if (fit->max_iter < 1)
        return tb_fail(err, errsz, TB_USAGE, "max_iter must be at least 1, got %d", fit->max_iter);
    if (!standardize_all_finite(y, nrows))
        return tb_fail(err, errsz, TB_NUMERIC, "the label contains NaN or infinite values");
    if (!standardize_all_finite(x, nrows * nfeatures))
        return tb_fail(err, errsz, TB_NUMERIC, "the training data contains NaN or infinite values");
    return TB_OK;
}

const char *standardize_separable_hint(double l2)
{
    return l2 == 0.0 ? "; with l2 = 0 the classes may be (almost) separable, use l2 > 0" : "";
}

int standardize_check_gradient(const struct standardize_fit *fit, size_t nrows, double gmax,
                               bool separated, int done, bool *converged, char *err, size_t errsz)
{
    *converged = false;
    if (!isfinite(gmax))
        return tb_fail(err, errsz, TB_NUMERIC, "the %s gradient overflowed after %d %s", fit->model,
                       done, fit->steps);
    /* Before the convergence test: on separable data the gradient also vanishes, at infinity. */
    if (separated && fit->l2 == 0.0)
        return tb_fail(err, errsz, TB_NUMERIC,
                       "the classes are linearly separable, so with l2 = 0 the coefficients "
                       "grow without bound (no finite optimum); use l2 > 0");
    if (gmax <= fit->tol * (double)nrows) {
        *converged = true;
        return TB_OK;
    }
    if (done == fit->max_iter)
        return tb_fail(err, errsz, TB_NUMERIC,
                       "%s did not converge in %d %s: gradient max-norm %g > tol %g x %zu rows%s",
                       fit->model, fit->max_iter, fit->steps, gmax, fit->tol, nrows,
                       standardize_separable_hint(fit->l2));
    return TB_OK;
}
