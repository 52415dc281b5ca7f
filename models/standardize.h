/* Standardised features for the iterative classifier fits (logistic, softmax): column scales,
 * standardised row blocks, coefficients mapped back to the features' own units, and the checks
 * and stopping rule those fits share. */
#ifndef TRIBUTARY_STANDARDIZE_H
#define TRIBUTARY_STANDARDIZE_H

#include <stdbool.h>
#include <stddef.h>

/* The column scales of one training matrix. */
struct standardize;

/* Computes the mean and the population standard deviation (two passes) of each column of x
 * (nrows >= 1 rows of nfeatures, row-major, finite). A column whose standard deviation is 0 or
 * below 1e-14 of its mean's size is constant for double precision (what is left after centring
 * it is rounding): its factor 1 / std is 0, so its standardised values are 0 and a coefficient
 * fitted to them stays 0. x is borrowed and must outlive the handle. Returns the handle (never
 * NULL); the caller frees it with standardize_destroy. */
struct standardize *standardize_new(const double *x, size_t nrows, size_t nfeatures);

/* Frees the handle; accepts NULL. */
void standardize_destroy(struct standardize *s);

/* Returns the nfeatures factors 1 / std_j (0 for a constant column), owned by s. */
const double *standardize_inv_std(const struct standardize *s);

/* Writes the m rows of x from row start, standardised as z_j = (x_j - mean_j) / std_j, into z
 * (m x nfeatures, row-major). */
void standardize_rows(const struct standardize *s, size_t start, size_t m, double *z);

/* Maps a model fitted on the standardised features back to the features' own units, in place:
 * coef (noutputs x nfeatures, row-major) holds the coefficients v of the standardised features
 * and becomes w = v / std (per column); intercept (noutputs) holds c and becomes c - w . mean. */
void standardize_map_back(const struct standardize *s, size_t noutputs, double *coef,
                          double *intercept);

/* Returns the largest |v_i| of the count values (0 when count is 0; NaN is passed over). */
double standardize_max_abs(const double *v, size_t count);

/* Returns whether every one of the count values is finite. */
bool standardize_all_finite(const double *v, size_t count);

/* What the checks and the stopping rule that follow need to know of one fit. */
struct standardize_fit {
    const char *model; /* names the model in messages: "logistic" */
    const char *steps; /* names its iterations in messages: "Newton steps" */
    int max_features;  /* the most features it accepts */
    double l2;         /* the options it was given */
    double tol;
    int max_iter;
};

/* Checks the arguments every fit on standardised features needs: nrows >= 1, 1 to max_features
 * features, l2 finite and >= 0, tol finite and > 0, max_iter >= 1 (TB_USAGE otherwise), and
 * finite values in y (nrows) and x (nrows x nfeatures; TB_NUMERIC otherwise). Returns TB_OK or
 * the failure with its message in err. */
int standardize_check_problem(const struct standardize_fit *fit, const double *x, const double *y,
                              size_t nrows, size_t nfeatures, char *err, size_t errsz);

/* The stopping rule of an iterative fit on nrows rows, tested before each step with gmax, the
 * max-norm of the gradient with respect to the intercepts and the coefficients of the
 * standardised features (so that tol does not depend on the features' units); separated says
 * whether every row is strictly on its own class's side, and done how many steps were taken.
 * Returns TB_OK with *converged true when gmax <= tol * nrows, TB_OK with *converged false when
 * another step is due, or TB_NUMERIC with a message in err: the gradient overflowed; with
 * l2 = 0, the classes are separable (tested first, since there the gradient also vanishes, at
 * infinity); or done has reached max_iter. */
int standardize_check_gradient(const struct standardize_fit *fit, size_t nrows, double gmax,
                               bool separated, int done, bool *converged, char *err, size_t errsz);

/* Returns what a failure to converge adds when l2 is 0 ("; with l2 = 0 the classes may be
 * (almost) separable, use l2 > 0"), or "" (static strings). */
const char *standardize_separable_hint(double l2);

#endif
