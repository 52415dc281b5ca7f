/* Binary L2-regularised logistic regression with an unpenalised intercept, fitted by Newton's
 * method to the exact optimum. */
#ifndef TRIBUTARY_LOGISTIC_H
#define TRIBUTARY_LOGISTIC_H

#include "models/linear.h"

#include <stddef.h>

/* Largest number of features logistic_fit accepts: the Hessian is (nfeatures + 1)^2 doubles and
 * BLAS takes int dimensions. */
#define LOGISTIC_MAX_FEATURES 65536

#define LOGISTIC_DEFAULT_L2       1.0
#define LOGISTIC_DEFAULT_TOL      1e-10
#define LOGISTIC_DEFAULT_MAX_ITER 100

/* l2 >= 0: the weight of the penalty; tol > 0: the fit stops when the largest component of the
 * objective's gradient (see logistic_fit) is at most tol * nrows; max_iter >= 1: Newton steps
 * allowed. */
struct logistic_options {
    double l2;    /* default LOGISTIC_DEFAULT_L2 (scikit-learn's C = 1) */
    double tol;   /* default LOGISTIC_DEFAULT_TOL */
    int max_iter; /* default LOGISTIC_DEFAULT_MAX_ITER */
};

/* Fits the intercept b and coefficients w that minimise
 *
 *     sum_i log(1 + exp(-s_i (b + w . x_i)))  +  (l2 / 2) ||w||^2,
 *
 * s_i = +1 when y_i is classes[1] and -1 when it is classes[0]: scikit-learn's
 * LogisticRegression(C = 1 / l2, penalty = "l2", fit_intercept = True) at its optimum.
 *
 * x is nrows x nfeatures, row-major; y holds nrows label values, which must take exactly two
 * distinct values: classes[0] < classes[1], and classes[1] is the positive class. options NULL
 * means the defaults above.
 *
 * Method: Newton's method with a backtracking (Armijo) line search, on the same problem written
 * in the standardised features z_j = (x_j - mean_j) / std_j (population std; the result is
 * mapped back, so this changes only the conditioning), starting from w = 0 and b = the log-odds
 * of the classes. The gradient tested against tol is the one with respect to the intercept and
 * the coefficients of z, so tol does not depend on the features' units; for standardised input
 * it is the plain gradient. The Hessian Z'DZ + penalty is accumulated in row blocks of 4096 with
 * BLAS level 3 (dsyrk), so memory is O(nrows + nfeatures^2) beyond the data, and solved by
 * Cholesky (LAPACK dpotrf/dpotrs) after equilibration. Once the gradient meets tol, one more
 * Newton step is taken and kept when it lowers the gradient, so the result is at the optimum to
 * rounding rather than to tol. A constant feature (std below 1e-14 of its mean) gets
 * coefficient 0: for l2 > 0 that is the optimum, for l2 = 0 the smallest of the optima.
 *
 * On success returns TB_OK, fills *out (kind LINEAR_LOGISTIC, noutputs 1, nclasses 2; the
 * caller releases it with linear_model_free) and, when iterations is not NULL, sets *iterations
 * to the number of Newton steps taken to meet tol (not counting that last one). On failure *out
 * is unchanged and err says why:
 *   TB_USAGE   no rows, nfeatures 0 or above LOGISTIC_MAX_FEATURES, l2 negative or not finite,
 *              tol not positive, max_iter < 1, or the label does not take exactly two values;
 *   TB_NUMERIC NaN or infinity in x or y; with l2 = 0, classes that are linearly separable (no
 *              finite optimum; "use l2 > 0") or a feature collinear with others (named); no
 *              convergence within max_iter steps, or a line search that cannot make progress
 *              (both with the gradient's size). */
int logistic_fit(const double *x, const double *y, size_t nrows, size_t nfeatures,
                 const struct logistic_options *options, struct linear_model *out, int *iterations,
                 char *err, size_t errsz);

#endif
