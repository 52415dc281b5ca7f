/* Ridge regression: centred sufficient statistics merged pairwise, solved by Cholesky. */
#include "models/ridge.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <assert.h>
#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per BLAS call in ridge_stats_add: bounds the scratch copy to CHUNK_ROWS * nfeatures
 * doubles whatever the batch size, and keeps BLAS dimensions within int. */
#define RIDGE_CHUNK_ROWS 1024

/* With alpha = 0 a feature whose centred spread is below this fraction of its mean is constant
 * for double precision: the corrected two-pass mean leaves residues of about one ulp. */
#define RIDGE_CONSTANT_REL 1e-14

/* With alpha = 0, a Cholesky pivot whose square is below this fraction of the feature's centred
 * sum of squares means the feature is (numerically) a combination of the ones before it. */
#define RIDGE_COLLINEAR_REL 1e-12

/* Centred moments of a set of rows. gram is nfeatures x nfeatures row-major; only its upper
 * triangle (j >= i) is maintained, the lower one stays zero. */
struct ridge_moments {
    size_t count;
    double ymean;
    double *mean;
    double *gram;
    double *cross;
};

struct ridge_stats {
    size_t nfeatures;
    struct ridge_moments total;
    /* Scratch for one chunk of ridge_stats_add: its moments, its centred copy, and the
     * difference of means used by the merge. */
    struct ridge_moments chunk;
    double *centred_x;
    double *centred_y;
    double *delta;
};

static void ridge_moments_init(struct ridge_moments *m, size_t p)
{
    m->count = 0;
    m->ymean = 0.0;
    m->mean = mem_calloc(p, sizeof(double));
    m->gram = mem_calloc(p * p, sizeof(double));
    m->cross = mem_calloc(p, sizeof(double));
}

static void ridge_moments_release(struct ridge_moments *m)
{
    free(m->cross);
    free(m->gram);
    free(m->mean);
}

struct ridge_stats *ridge_stats_new(size_t nfeatures)
{
    if (nfeatures == 0 || nfeatures > RIDGE_MAX_FEATURES)
        return NULL;
    struct ridge_stats *s = mem_calloc(1, sizeof(*s));
    s->nfeatures = nfeatures;
    ridge_moments_init(&s->total, nfeatures);
    ridge_moments_init(&s->chunk, nfeatures);
    s->centred_x = mem_alloc((size_t)RIDGE_CHUNK_ROWS * nfeatures * sizeof(double));
    s->centred_y = mem_alloc(RIDGE_CHUNK_ROWS * sizeof(double));
    s->delta = mem_alloc(nfeatures * sizeof(double));
    return s;
}

void ridge_stats_destroy(struct ridge_stats *stats)
{
    if (!stats)
        return;
    free(stats->delta);
    free(stats->centred_y);
    free(stats->centred_x);
    ridge_moments_release(&stats->chunk);
    ridge_moments_release(&stats->total);
    free(stats);
}

/* Pairwise combination (Chan, Golub, LeVeque): with d = mean_b - mean_a and n = na + nb,
 * C = Ca + Cb + na nb / n d d', c = ca + cb + na nb / n d dy, mean = mean_a + nb / n d.
 * delta is scratch of p doubles. */
static void ridge_moments_merge(struct ridge_moments *into, const struct ridge_moments *from,
                                size_t p, double *delta)
{
    if (from->count == 0)
        return;
    if (into->count == 0) {
        into->count = from->count;
        into->ymean = from->ymean;
        memcpy(into->mean, from->mean, p * sizeof(double));
        memcpy(into->gram, from->gram, p * p * sizeof(double));
        memcpy(into->cross, from->cross, p * sizeof(double));
        return;
    }
    double na = (double)into->count, nb = (double)from->count, n = na + nb;
    double weight = na * nb / n;
    double dy = from->ymean - into->ymean;
    for (size_t j = 0; j < p; j++)
        delta[j] = from->mean[j] - into->mean[j];

    for (size_t i = 0; i < p; i++)
        for (size_t j = i; j < p; j++)
            into->gram[i * p + j] += from->gram[i * p + j];
    cblas_dsyr(CblasRowMajor, CblasUpper, (int)p, weight, delta, 1, into->gram, (int)p);
    for (size_t j = 0; j < p; j++) {
        into->cross[j] += from->cross[j] + weight * dy * delta[j];
        into->mean[j] += nb / n * delta[j];
    }
    into->ymean += nb / n * dy;
    into->count += from->count;
}

/* Fills s->chunk with the centred moments of m rows (1 <= m <= RIDGE_CHUNK_ROWS). The means are
 * two-pass corrected (mean += mean of residuals), so a constant column centres to ~0, not to
 * the rounding error of its sum. */
static void ridge_chunk_moments(struct ridge_stats *s, const double *x, const double *y, size_t m)
{
    size_t p = s->nfeatures;
    double *mean = s->chunk.mean, *cx = s->centred_x, *cy = s->centred_y;
    double *correction = s->delta;

    memset(mean, 0, p * sizeof(double));
    double ymean = 0.0;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < p; j++)
            mean[j] += x[i * p + j];
        ymean += y[i];
    }
    for (size_t j = 0; j < p; j++)
        mean[j] /= (double)m;
    ymean /= (double)m;

    memset(correction, 0, p * sizeof(double));
    double ycorrection = 0.0;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < p; j++) {
            cx[i * p + j] = x[i * p + j] - mean[j];
            correction[j] += cx[i * p + j];
        }
        cy[i] = y[i] - ymean;
        ycorrection += cy[i];
    }
    for (size_t j = 0; j < p; j++) {
        correction[j] /= (double)m;
        mean[j] += correction[j];
    }
    ycorrection /= (double)m;
    ymean += ycorrection;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < p; j++)
            cx[i * p + j] -= correction[j];
        cy[i] -= ycorrection;
    }

    s->chunk.count = m;
    s->chunk.ymean = ymean;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)m, 1.0, cx, (int)p, 0.0,
                s->chunk.gram, (int)p);
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, (int)p, 1.0, cx, (int)p, cy, 1, 0.0,
                s->chunk.cross, 1);
}

void ridge_stats_add(struct ridge_stats *stats, const double *x_rowmajor, const double *y,
                     size_t nrows)
{
    size_t p = stats->nfeatures;
    for (size_t start = 0; start < nrows; start += RIDGE_CHUNK_ROWS) {
        size_t m = nrows - start < RIDGE_CHUNK_ROWS ? nrows - start : RIDGE_CHUNK_ROWS;
        ridge_chunk_moments(stats, x_rowmajor + start * p, y + start, m);
        ridge_moments_merge(&stats->total, &stats->chunk, p, stats->delta);
    }
}

int ridge_stats_merge(struct ridge_stats *into, const struct ridge_stats *from, char *err,
                      size_t errsz)
{
    if (into->nfeatures != from->nfeatures)
        return tb_fail(err, errsz, TB_USAGE,
                       "cannot merge ridge statistics of %zu features into ones of %zu features",
                       from->nfeatures, into->nfeatures);
    ridge_moments_merge(&into->total, &from->total, into->nfeatures, into->delta);
    return TB_OK;
}

size_t ridge_stats_count(const struct ridge_stats *stats)
{
    return stats->total.count;
}

size_t ridge_stats_nfeatures(const struct ridge_stats *stats)
{
    return stats->nfeatures;
}

static int ridge_moments_finite(const struct ridge_moments *m, size_t p)
{
    if (!isfinite(m->ymean))
        return 0;
    for (size_t i = 0; i < p; i++) {
        if (!isfinite(m->mean[i]) || !isfinite(m->cross[i]))
            return 0;
        for (size_t j = i; j < p; j++)
            if (!isfinite(m->gram[i * p + j]))
                return 0;
    }
    return 1;
}

int ridge_fit(const struct ridge_stats *stats, double alpha, struct linear_model *out, char *err,
              size_t errsz)
{
    const struct ridge_moments *t = &stats->total;
    size_t p = stats->nfeatures;
    double *factor = NULL, *coef = NULL;
    int rc = TB_OK;

    if (t->count == 0)
        return tb_fail(err, errsz, TB_USAGE, "no training rows: cannot fit a ridge model");
    if (!(alpha >= 0.0) || !isfinite(alpha))
        return tb_fail(err, errsz, TB_USAGE, "l2 (ridge alpha) must be finite and >= 0, got %g",
                       alpha);
    if (!ridge_moments_finite(t, p))
        return tb_fail(err, errsz, TB_NUMERIC, "the training data contains NaN or infinite values");

    if (alpha == 0.0) {
        for (size_t j = 0; j < p; j++) {
            double spread = RIDGE_CONSTANT_REL * fabs(t->mean[j]);
            if (t->gram[j * p + j] <= (double)t->count * spread * spread)
                return tb_fail(err, errsz, TB_NUMERIC,
                               "feature %zu (counting from 0) is constant, so the fit has no "
                               "unique solution; use l2 > 0",
                               j);
        }
    }

    factor = mem_alloc(p * p * sizeof(double));
    coef = mem_alloc(p * sizeof(double));
    memcpy(factor, t->gram, p * p * sizeof(double));
    memcpy(coef, t->cross, p * sizeof(double));
    for (size_t j = 0; j < p; j++)
        factor[j * p + j] += alpha;

    /* The upper triangle of a row-major matrix is the lower triangle of the same memory read
     * column-major, so LAPACK works in place without LAPACKE's transposed copy. */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)p, factor, (lapack_int)p);
    if (info > 0) {
        size_t j = (size_t)info - 1;
        rc = alpha == 0.0 ? tb_fail(err, errsz, TB_NUMERIC,
                                    "feature %zu (counting from 0) is collinear with the features "
                                    "before it, so the fit has no unique solution; use l2 > 0",
                                    j)
                          : tb_fail(err, errsz, TB_NUMERIC,
                                    "the regularised Gram matrix is not positive definite at "
                                    "feature %zu (counting from 0); use a larger l2",
                                    j);
        goto done;
    }
    if (info < 0) {
        rc = tb_fail(err, errsz, TB_NUMERIC, "LAPACK dpotrf rejected argument %d", (int)-info);
        goto done;
    }
    if (alpha == 0.0) {
        for (size_t j = 0; j < p; j++) {
            double pivot = factor[j * p + j];
            if (pivot * pivot <= RIDGE_COLLINEAR_REL * t->gram[j * p + j]) {
                rc = tb_fail(err, errsz, TB_NUMERIC,
                             "feature %zu (counting from 0) is collinear with the features "
                             "before it, so the fit has no unique solution; use l2 > 0",
                             j);
                goto done;
            }
        }
    }
    info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)p, 1, factor, (lapack_int)p, coef,
                          (lapack_int)p);
    if (info != 0) {
        rc = tb_fail(err, errsz, TB_NUMERIC, "LAPACK dpotrs failed (info %d)", (int)info);
        goto done;
    }

    double intercept = t->ymean - cblas_ddot((int)p, t->mean, 1, coef, 1);
    int finite = isfinite(intercept);
    for (size_t j = 0; j < p && finite; j++)
        finite = isfinite(coef[j]);
    if (!finite) {
        rc = tb_fail(err, errsz, TB_NUMERIC,
                     "the ridge solution overflowed; the features are too badly scaled");
        goto done;
    }

    *out = (struct linear_model){.kind = LINEAR_RIDGE,
                                 .nfeatures = p,
                                 .noutputs = 1,
                                 .intercept = mem_alloc(sizeof(double)),
                                 .coef = coef};
    out->intercept[0] = intercept;
    coef = NULL;

done:
    free(coef);
    free(factor);
    return rc;
}
