/* Ridge regression with an unpenalised intercept, trained from mergeable sufficient statistics. */
#ifndef TRIBUTARY_RIDGE_H
#define TRIBUTARY_RIDGE_H

#include "models/linear.h"

#include <stddef.h>

/* Largest number of features a ridge_stats accepts: the Gram matrix is nfeatures^2 doubles, and
 * BLAS takes int dimensions. */
#define RIDGE_MAX_FEATURES 65536

/* Streaming accumulator of the sufficient statistics of ||y - Xw - b||^2: the row count, the
 * feature means mu, the label mean ybar, the centred Gram matrix (X-mu)'(X-mu) and the centred
 * cross term (X-mu)'(y-ybar). Batches and accumulators combine with the pairwise update of
 * Chan, Golub and LeVeque, so the order and size of batches change the result only by
 * rounding. Not thread-safe: one writer at a time; merge per-thread accumulators instead. */
struct ridge_stats;

/* Returns an empty accumulator for rows of nfeatures doubles, or NULL when nfeatures is 0 or
 * larger than RIDGE_MAX_FEATURES. Free with ridge_stats_destroy. */
struct ridge_stats *ridge_stats_new(size_t nfeatures);

/* Frees the accumulator; NULL is a no-op. */
void ridge_stats_destroy(struct ridge_stats *stats);

/* Adds nrows rows: x_rowmajor holds nrows * nfeatures doubles (row i at x_rowmajor + i *
 * nfeatures) and y holds nrows labels. nrows may be 0. Never fails; non-finite values are
 * accumulated as they are and reported by ridge_fit. */
void ridge_stats_add(struct ridge_stats *stats, const double *x_rowmajor, const double *y,
                     size_t nrows);

/* Adds everything accumulated in `from` to `into` (as if into had seen from's rows too); `from`
 * is unchanged. Returns TB_OK, or TB_USAGE (with a message in err) when the two have different
 * feature counts, in which case `into` is unchanged. */
int ridge_stats_merge(struct ridge_stats *into, const struct ridge_stats *from, char *err,
                      size_t errsz);

/* Returns the number of rows accumulated so far. */
size_t ridge_stats_count(const struct ridge_stats *stats);

/* Returns the number of features per row, as given to ridge_stats_new. */
size_t ridge_stats_nfeatures(const struct ridge_stats *stats);

/* Solves (C + alpha I) w = c by Cholesky and sets b = ybar - mu.w: the minimiser of
 * ||y - Xw - b||^2 + alpha ||w||^2 (scikit-learn's Ridge(alpha, fit_intercept=True)).
 * On success returns TB_OK and fills *out (kind LINEAR_RIDGE); the caller releases it with
 * linear_model_free.
 * On failure *out is unchanged and err says why:
 *   TB_USAGE   no rows were accumulated, or alpha is negative or not finite;
 *   TB_NUMERIC the data holds NaN or infinity, or the system is not positive definite. With
 *              alpha = 0 that names the feature (counting from 0) that is constant or collinear
 *              with the features before it, and suggests l2 > 0. */
int ridge_fit(const struct ridge_stats *stats, double alpha, struct linear_model *out, char *err,
              size_t errsz);

#endif
