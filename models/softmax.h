/* Multinomial (softmax) regression with L2 on the coefficients and unpenalised intercepts,
 * fitted by L-BFGS to the exact optimum. */
#ifndef TRIBUTARY_SOFTMAX_H
#define TRIBUTARY_SOFTMAX_H

#include "models/linear.h"

#include <stddef.h>

/* Largest number of features softmax_fit accepts (BLAS takes int dimensions). */
#define SOFTMAX_MAX_FEATURES 65536

/* Largest number of distinct label values: more is almost surely a continuous label. */
#define SOFTMAX_MAX_CLASSES 1000

#define SOFTMAX_DEFAULT_L2       1.0
#define SOFTMAX_DEFAULT_TOL      1e-12
#define SOFTMAX_DEFAULT_MAX_ITER 1000

/* l2 >= 0: the weight of the penalty; tol > 0: the fit stops when the largest component of the
 * objective's gradient (see softmax_fit) is at most tol * nrows; max_iter >= 1: L-BFGS
 * iterations allowed. L-BFGS converges about linearly near the optimum, so its distance to it
 * is proportional to tol: the default, tighter than logistic's (whose last Newton step squares
 * the error), puts coefficients within about 1e-7 relative of the optimum on problems as
 * ill-conditioned as AI4I 2020's failure modes. */
struct softmax_options {
    double l2;    /* default SOFTMAX_DEFAULT_L2 (scikit-learn's C = 1) */
    double tol;   /* default SOFTMAX_DEFAULT_TOL */
    int max_iter; /* default SOFTMAX_DEFAULT_MAX_ITER */
};

/* Fits K intercepts b_k and a K x nfeatures coefficient matrix W (row k is w_k) that minimise
 *
 *     -sum_i log p(y_i | x_i)  +  (l2 / 2) sum_k ||w_k||^2,
 *     p(classes[k] | x) = exp(b_k + w_k . x) / sum_j exp(b_j + w_j . x),
 *
 * the symmetric, over-parameterised form of scikit-learn's LogisticRegression(C = 1 / l2,
 * multi_class = "multinomial", penalty = "l2", fit_intercept = True).
 *
 * Adding one constant to every b_k, or (with l2 = 0) one vector to every w_k, changes no
 * probability, so the optimum is unique only up to that. The result is normalised so that
 * sum_k b_k = 0 and sum_k w_k = 0; with l2 > 0 the optimum has sum_k w_k = 0 anyway. That is the
 * representative scikit-learn returns too: as of 1.2 it does not centre explicitly, but its
 * solvers start from zero and every gradient of the intercepts sums to zero, so its intercepts
 * sum to 0 up to rounding.
 *
 * x is nrows x nfeatures, row-major; y holds nrows label values with K >= 2 distinct values
 * (classes, ascending). options NULL means the defaults above.
 *
 * Method: L-BFGS (10 corrections) on the same problem written in the standardised features
 * z_j = (x_j - mean_j) / std_j (population std; the result is mapped back, so this changes
 * only the conditioning, which for L-BFGS matters a great deal), from W = 0 and b = the centred
 * log class frequencies. The line search finds strong-Wolfe steps (secant on the directional
 * derivative within a bracket); since the objective is convex, a step whose derivative is
 * still at most c1 times the initial one is known to decrease it enough without comparing
 * objective values, which keeps the search working near the optimum, where changes of the
 * objective fall below its rounding. The gradient tested against tol is the one with respect
 * to the intercepts and the coefficients of z, so tol does not depend on the features' units;
 * for standardised input it is the plain gradient. Gradients are accumulated over row blocks of
 * 4096 with two dgemm calls per block. A constant feature (std below 1e-14 of its mean) gets
 * coefficients 0.
 *
 * On success returns TB_OK, fills *out (kind LINEAR_SOFTMAX, noutputs = nclasses = K; the
 * caller releases it with linear_model_free) and, when iterations is not NULL, sets *iterations
 * to the number of L-BFGS iterations. On failure *out is unchanged and err says why:
 *   TB_USAGE   no rows, nfeatures 0 or above SOFTMAX_MAX_FEATURES, l2 negative or not finite,
 *              tol not positive, max_iter < 1, a label with one value or more than
 *              SOFTMAX_MAX_CLASSES values;
 *   TB_NUMERIC NaN or infinity in x or y; the classes are linearly separable with l2 = 0 (no
 *              finite optimum; "use l2 > 0"); no convergence within max_iter iterations, or a
 *              line search that cannot make progress (both with the gradient's size). */
int softmax_fit(const double *x, const double *y, size_t nrows, size_t nfeatures,
                const struct softmax_options *options, struct linear_model *out, int *iterations,
                char *err, size_t errsz);

#endif
