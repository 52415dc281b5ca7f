/* Unit tests for models/softmax (and softmax prediction in models/linear): closed forms, the
 * two-class case against models/logistic, errors, and scikit-learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/linear.h"
#include "models/logistic.h"
#include "models/softmax.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- helpers ---------------------------------------------------------------------------------- */

static struct linear_model fit_or_fail(const double *x, const double *y, size_t n, size_t p,
                                       double l2, int *iterations)
{
    struct softmax_options options = {
        .l2 = l2, .tol = SOFTMAX_DEFAULT_TOL, .max_iter = SOFTMAX_DEFAULT_MAX_ITER};
    struct linear_model model = {0};
    char err[256] = "";
    int rc = softmax_fit(x, y, n, p, &options, &model, iterations, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("softmax_fit: %s (%s)", err, tb_strerror(rc));
    return model;
}

static double sum_of(const double *v, size_t n, size_t stride)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += v[i * stride];
    return sum;
}

static double max_abs_of(const double *v, size_t n)
{
    double max = 0.0;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, fabs(v[i]));
    return max;
}

/* --- scikit-learn ----------------------------------------------------------------------------- */

/* Fits the reference data with softmax_fit and compares with scikit-learn: intercepts and
 * coefficients to 1e-6 relative (absolute 1e-9 for a value near zero), the predicted
 * probabilities to 1e-6 relative (absolute 1e-12 for a probability near zero). Both sets of
 * intercepts, and both coefficient columns, sum to zero (the convention in softmax.h). */
static void test_sklearn(void **state)
{
    const struct support_classifier_case *c = *state;
    struct support_classifier_reference ref;
    support_classifier_reference("softmax", c, 1e-12, &ref);
    size_t k = ref.nclasses, p = ref.p;
    assert_true(k >= 3);
    assert_int_equal(ref.noutputs, k);

    int iterations = -1;
    struct linear_model model = fit_or_fail(ref.x, ref.y, ref.n, p, c->l2, &iterations);
    print_message("%d L-BFGS iterations\n", iterations);
    assert_true(iterations >= 1);
    assert_int_equal(model.kind, LINEAR_SOFTMAX);
    assert_int_equal(model.nfeatures, p);
    assert_int_equal(model.noutputs, k);
    assert_int_equal(model.nclasses, k);
    assert_memory_equal(model.classes, ref.classes, k * sizeof(double));

    /* scikit-learn's intercepts sum to zero (up to rounding), and so do ours. */
    double scale_b = max_abs_of(ref.intercept, k);
    assert_true(fabs(sum_of(ref.intercept, k, 1)) <= 1e-9 * scale_b);
    assert_true(fabs(sum_of(model.intercept, k, 1)) <= 1e-12 * scale_b);
    for (size_t j = 0; j < p; j++)
        assert_true(fabs(sum_of(model.coef + j, k, p)) <= 1e-12 * max_abs_of(ref.coef, k * p));

    for (size_t c2 = 0; c2 < k; c2++) {
        char what[64];
        snprintf(what, sizeof(what), "intercept %zu", c2);
        support_assert_close_floor(model.intercept[c2], ref.intercept[c2], 1e-6, 1e-9, what);
        for (size_t j = 0; j < p; j++) {
            snprintf(what, sizeof(what), "coefficient %zu of class %zu", j, c2);
            support_assert_close_floor(model.coef[c2 * p + j], ref.coef[c2 * p + j], 1e-6, 1e-9,
                                       what);
        }
    }
    double *prob = mem_alloc(ref.n * k * sizeof(double));
    linear_predict(&model, ref.x, ref.n, prob);
    for (size_t i = 0; i < ref.n * k; i++) {
        char what[64];
        snprintf(what, sizeof(what), "row %zu: P(class %zu)", i / k, i % k);
        support_assert_close_floor(prob[i], ref.prob[i], 1e-6, 1e-12, what);
    }
    free(prob);
    linear_model_free(&model);
    support_classifier_reference_free(&ref);
}

/* --- closed forms ----------------------------------------------------------------------------- */

static void test_binary_feature_empirical_frequencies(void **state)
{
    (void)state;
    /* One 0/1 feature, three classes (10, 20, 30) and l2 = 0: the fit reproduces the class
     * frequencies f(k | x) in each group, so with the centring convention
     * b_k = log f(k|0) - mean_j log f(j|0) and w_k = log f(k|1) - mean_j log f(j|1) - b_k. */
    enum { N = 120, K = 3 };
    double x[N], y[N];
    double count[2][K] = {{0}};
    for (size_t i = 0; i < N; i++) {
        size_t group = i % 2, r = (i / 2) % 10;
        /* group 0: 5, 3, 2 of every 10; group 1: 1, 2, 7 of every 10 */
        size_t c = group == 0 ? (r < 5 ? 0 : r < 8 ? 1 : 2) : (r < 1 ? 0 : r < 3 ? 1 : 2);
        x[i] = (double)group;
        y[i] = 10.0 * (double)(c + 1);
        count[group][c] += 1.0;
    }
    double logf[2][K], mean[2] = {0, 0};
    for (size_t g = 0; g < 2; g++) {
        for (size_t c = 0; c < K; c++) {
            logf[g][c] = log(count[g][c] / (N / 2));
            mean[g] += logf[g][c] / K;
        }
    }
    struct linear_model model = fit_or_fail(x, y, N, 1, 0.0, NULL);
    assert_int_equal(model.nclasses, K);
    for (size_t c = 0; c < K; c++) {
        assert_true(model.classes[c] == 10.0 * (double)(c + 1));
        double b = logf[0][c] - mean[0], w = logf[1][c] - mean[1] - b;
        support_assert_close(model.intercept[c], b, 1e-8, "intercept");
        support_assert_close(model.coef[c], w, 1e-8, "coefficient");
    }
    const double rows[2] = {0.0, 1.0};
    double prob[2 * K];
    linear_predict(&model, rows, 2, prob);
    for (size_t g = 0; g < 2; g++)
        for (size_t c = 0; c < K; c++)
            support_assert_close(prob[g * K + c], count[g][c] / (N / 2), 1e-8, "P(k | x)");
    linear_model_free(&model);
}

static void test_uninformative_feature_gives_prior(void **state)
{
    (void)state;
    /* x = +-1 in equal numbers within each class: at W = 0 the gradient in W is zero, so for any
     * l2 the optimum is W = 0 and b = the centred log class frequencies, where the fit starts. */
    enum { N = 60, K = 3 };
    double x[N], y[N];
    const double freq[K] = {10.0 / 60, 20.0 / 60, 30.0 / 60};
    for (size_t i = 0; i < N; i++) {
        x[i] = i % 2 ? 1.0 : -1.0;
        y[i] = i < 10 ? 0.0 : i < 30 ? 1.0 : 2.0;
    }
    int iterations = -1;
    struct linear_model model = fit_or_fail(x, y, N, 1, 0.5, &iterations);
    assert_int_equal(iterations, 0);
    double mean = (log(freq[0]) + log(freq[1]) + log(freq[2])) / 3;
    for (size_t c = 0; c < K; c++) {
        assert_true(fabs(model.coef[c]) < 1e-15);
        support_assert_close(model.intercept[c], log(freq[c]) - mean, 1e-14, "intercept");
    }
    linear_model_free(&model);
}

static void test_two_classes_match_logistic(void **state)
{
    (void)state;
    /* With K = 2, w_1 = -w_0 at the optimum and the penalty (l2/2)(||w_0||^2 + ||w_1||^2) is
     * (l2/4) ||w_1 - w_0||^2: softmax with l2 is logistic with l2 / 2 on w = w_1 - w_0,
     * b = b_1 - b_0. */
    enum { N = 3000, P = 4 };
    double *x = mem_alloc(N * P * sizeof(double)), y[N];
    support_rng_seed(31);
    for (size_t i = 0; i < N; i++) {
        double score = -0.4;
        for (size_t j = 0; j < P; j++) {
            x[i * P + j] = support_rng_normal() + (double)j;
            score += (j % 2 ? -0.7 : 0.9) * x[i * P + j];
        }
        y[i] = support_rng_uniform() < 1.0 / (1.0 + exp(-score)) ? 1.0 : -1.0;
    }
    const double l2 = 3.0;
    struct linear_model soft = fit_or_fail(x, y, N, P, l2, NULL), logit = {0};
    const struct logistic_options options = {
        .l2 = l2 / 2, .tol = LOGISTIC_DEFAULT_TOL, .max_iter = LOGISTIC_DEFAULT_MAX_ITER};
    char err[256] = "";
    assert_int_equal(logistic_fit(x, y, N, P, &options, &logit, NULL, err, sizeof(err)), TB_OK);
    support_assert_close(soft.intercept[1] - soft.intercept[0], logit.intercept[0], 1e-8,
                         "intercept");
    for (size_t j = 0; j < P; j++) {
        support_assert_close(soft.coef[P + j] - soft.coef[j], logit.coef[j], 1e-8, "coefficient");
        support_assert_close(soft.coef[P + j], -soft.coef[j], 1e-12, "w_1 = -w_0");
    }
    double *ps = mem_alloc(N * 2 * sizeof(double)), *pl = mem_alloc(N * 2 * sizeof(double));
    linear_predict(&soft, x, N, ps);
    linear_predict(&logit, x, N, pl);
    for (size_t i = 0; i < N * 2; i++)
        support_assert_close(ps[i], pl[i], 1e-8, "probability");
    free(pl);
    free(ps);
    linear_model_free(&logit);
    linear_model_free(&soft);
    free(x);
}

/* --- prediction (models/linear) --------------------------------------------------------------- */

static void test_predict_zero_coef_gives_prior(void **state)
{
    (void)state;
    /* softmax(log prior + c) = prior for any c; here c = 5. */
    double intercept[3] = {log(0.2) + 5, log(0.3) + 5, log(0.5) + 5}, coef[3 * 2] = {0};
    double classes[3] = {1, 2, 3};
    struct linear_model model = {.kind = LINEAR_SOFTMAX,
                                 .nfeatures = 2,
                                 .noutputs = 3,
                                 .nclasses = 3,
                                 .intercept = intercept,
                                 .coef = coef,
                                 .classes = classes};
    assert_int_equal(linear_width(&model), 3);
    const double x[2 * 2] = {1.0, -7.0, 1e6, 3.0};
    double out[7];
    out[6] = -99.0;
    linear_predict(&model, x, 2, out);
    for (size_t i = 0; i < 2; i++) {
        support_assert_close(out[3 * i], 0.2, 1e-14, "P(1)");
        support_assert_close(out[3 * i + 1], 0.3, 1e-14, "P(2)");
        support_assert_close(out[3 * i + 2], 0.5, 1e-14, "P(3)");
    }
    assert_true(out[6] == -99.0); /* nothing written past nrows */
}

static void test_predict_softmax_by_hand(void **state)
{
    (void)state;
    /* Scores b_k + w_k . x with W = [[1, 0], [0, 1], [-1, -1]], b = [0, 0.5, -0.5]. */
    double intercept[3] = {0.0, 0.5, -0.5}, coef[3 * 2] = {1, 0, 0, 1, -1, -1};
    double classes[3] = {0, 1, 2};
    struct linear_model model = {.kind = LINEAR_SOFTMAX,
                                 .nfeatures = 2,
                                 .noutputs = 3,
                                 .nclasses = 3,
                                 .intercept = intercept,
                                 .coef = coef,
                                 .classes = classes};
    const double x[4 * 2] = {0, 0, 1, -2, 1000, 0, 800, 799};
    double out[4 * 3];
    linear_predict(&model, x, 4, out);
    for (size_t i = 0; i < 2; i++) {
        double s[3], sum = 0;
        for (size_t c = 0; c < 3; c++) {
            s[c] = exp(intercept[c] + coef[2 * c] * x[2 * i] + coef[2 * c + 1] * x[2 * i + 1]);
            sum += s[c];
        }
        for (size_t c = 0; c < 3; c++)
            support_assert_close(out[3 * i + c], s[c] / sum, 1e-14, "probability");
    }
    /* Scores 1000, 0.5, -1000.5: no overflow, class 0 has everything. */
    assert_true(out[6] == 1.0 && out[7] >= 0.0 && out[7] < 1e-300 && out[8] == 0.0);
    /* Scores 800, 799.5, -1599.5: the first two in the ratio e^0.5 : 1. */
    support_assert_close(out[9], 1.0 / (1.0 + exp(-0.5)), 1e-14, "P(0) at large scores");
    support_assert_close(out[10], 1.0 / (1.0 + exp(0.5)), 1e-14, "P(1) at large scores");
    assert_true(out[11] == 0.0);
}

static void test_decide_picks_argmax_class(void **state)
{
    (void)state;
    double intercept[3] = {0}, coef[3] = {0}, classes[3] = {2.0, 5.0, 7.0};
    struct linear_model model = {.kind = LINEAR_SOFTMAX,
                                 .nfeatures = 1,
                                 .noutputs = 3,
                                 .nclasses = 3,
                                 .intercept = intercept,
                                 .coef = coef,
                                 .classes = classes};
    const double out[4 * 3] = {0.1, 0.7, 0.2, 0.2, 0.2, 0.6, 0.4, 0.2, 0.4, 0.3, 0.35, 0.35};
    double labels[4];
    linear_decide(&model, out, 4, labels);
    assert_true(labels[0] == 5.0);
    assert_true(labels[1] == 7.0);
    assert_true(labels[2] == 2.0); /* a tie goes to the first class */
    assert_true(labels[3] == 5.0);
}

static void test_model_copy_is_deep(void **state)
{
    (void)state;
    enum { N = 90, P = 2, K = 3 };
    double x[N * P], y[N];
    support_rng_seed(12);
    for (size_t i = 0; i < N; i++) {
        y[i] = (double)(i % K);
        x[i * P] = support_rng_normal() + y[i];
        x[i * P + 1] = support_rng_normal() - y[i];
    }
    struct linear_model model = fit_or_fail(x, y, N, P, 1.0, NULL), copy;
    linear_model_copy(&copy, &model);
    assert_int_equal(copy.kind, LINEAR_SOFTMAX);
    assert_int_equal(copy.nfeatures, P);
    assert_int_equal(copy.noutputs, K);
    assert_int_equal(copy.nclasses, K);
    assert_ptr_not_equal(copy.coef, model.coef);
    assert_ptr_not_equal(copy.intercept, model.intercept);
    assert_ptr_not_equal(copy.classes, model.classes);
    double coef[K * P], intercept[K], classes[K], before[K], after[K];
    memcpy(coef, model.coef, sizeof(coef));
    memcpy(intercept, model.intercept, sizeof(intercept));
    memcpy(classes, model.classes, sizeof(classes));
    linear_predict(&model, x, 1, before);
    for (size_t i = 0; i < K * P; i++)
        model.coef[i] = 99.0;
    model.intercept[0] = model.classes[0] = 99.0;
    linear_model_free(&model);
    assert_memory_equal(copy.coef, coef, sizeof(coef));
    assert_memory_equal(copy.intercept, intercept, sizeof(intercept));
    assert_memory_equal(copy.classes, classes, sizeof(classes));
    linear_predict(&copy, x, 1, after);
    assert_memory_equal(after, before, sizeof(after));
    linear_model_free(&copy);
}

/* --- errors ----------------------------------------------------------------------------------- */

/* Fits and expects failure with want_rc and every fragment in the message, *out untouched. */
static void expect_fit_error(const double *x, const double *y, size_t n, size_t p,
                             const struct softmax_options *options, int want_rc,
                             const char *const *fragments)
{
    struct linear_model model = {.nfeatures = 99};
    char err[256] = "";
    int rc = softmax_fit(x, y, n, p, options, &model, NULL, err, sizeof(err));
    support_expect_fit_error("softmax_fit", rc, err, &model, want_rc, fragments);
}

enum { ERR_N = 60 };

/* Three overlapping classes 0, 1, 2 in two features. */
static void make_noisy_data(double *x, double *y)
{
    support_rng_seed(99);
    for (size_t i = 0; i < ERR_N; i++) {
        y[i] = (double)(i % 3);
        x[i * 2] = support_rng_normal() + 0.5 * y[i];
        x[i * 2 + 1] = support_rng_normal();
    }
}

static void test_error_one_class(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    for (size_t i = 0; i < ERR_N; i++)
        y[i] = 3.0;
    expect_fit_error(
        x, y, ERR_N, 2, NULL, TB_USAGE,
        (const char *[]){"label has 1 distinct value (3); softmax needs at least 2", NULL});
}

static void test_error_too_many_classes(void **state)
{
    (void)state;
    enum { N = SOFTMAX_MAX_CLASSES + 1 };
    double *x = mem_alloc(N * sizeof(double)), *y = mem_alloc(N * sizeof(double));
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)i;
        y[i] = 0.5 * (double)i;
    }
    char count[32];
    snprintf(count, sizeof(count), "label has %d distinct values", N);
    expect_fit_error(x, y, N, 1, NULL, TB_USAGE, (const char *[]){count, "continuous", NULL});
    free(y);
    free(x);
}

static void test_error_non_finite(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    x[17 * 2 + 1] = NAN;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_NUMERIC,
                     (const char *[]){"training data contains NaN or infinite", NULL});
    make_noisy_data(x, y);
    x[0] = INFINITY;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_NUMERIC,
                     (const char *[]){"training data contains NaN or infinite", NULL});
    make_noisy_data(x, y);
    y[5] = NAN;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_NUMERIC,
                     (const char *[]){"label contains NaN or infinite", NULL});
}

static void test_error_separable_without_l2(void **state)
{
    (void)state;
    /* Three clusters far apart on a line. */
    enum { N = 90 };
    double x[N * 2], y[N];
    support_rng_seed(4);
    for (size_t i = 0; i < N; i++) {
        y[i] = (double)(i % 3);
        x[i * 2] = 10.0 * y[i] + support_rng_normal();
        x[i * 2 + 1] = support_rng_normal();
    }
    const struct softmax_options o = {0.0, 1e-10, 1000};
    expect_fit_error(x, y, N, 2, &o, TB_NUMERIC,
                     (const char *[]){"linearly separable", "l2 = 0", "use l2 > 0", NULL});
    /* The same data with a penalty has a finite optimum. */
    struct linear_model model = fit_or_fail(x, y, N, 2, 0.1, NULL);
    assert_true(model.coef[0] < 0.0 && model.coef[2 * 2] > 0.0);
    linear_model_free(&model);
}

static void test_error_bad_arguments(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    expect_fit_error(x, y, 0, 2, NULL, TB_USAGE, (const char *[]){"no training rows", NULL});
    expect_fit_error(x, y, ERR_N, 0, NULL, TB_USAGE, (const char *[]){"features, got 0", NULL});
    const struct softmax_options negative = {-2.0, 1e-10, 100};
    expect_fit_error(x, y, ERR_N, 2, &negative, TB_USAGE,
                     (const char *[]){"l2 must be finite and >= 0, got -2", NULL});
    const struct softmax_options nan_l2 = {NAN, 1e-10, 100};
    expect_fit_error(x, y, ERR_N, 2, &nan_l2, TB_USAGE, (const char *[]){"l2 must be", NULL});
    const struct softmax_options bad_tol = {1.0, -1.0, 100};
    expect_fit_error(x, y, ERR_N, 2, &bad_tol, TB_USAGE, (const char *[]){"tol", NULL});
    const struct softmax_options bad_iter = {1.0, 1e-10, 0};
    expect_fit_error(x, y, ERR_N, 2, &bad_iter, TB_USAGE, (const char *[]){"max_iter", NULL});
}

static void test_error_no_convergence(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    const struct softmax_options o = {1.0, 1e-10, 1};
    expect_fit_error(
        x, y, ERR_N, 2, &o, TB_NUMERIC,
        (const char *[]){"did not converge in 1 iterations", "gradient max-norm", NULL});
}

int main(void)
{
    static const struct support_classifier_case wine_1 = {"wine", 1.0};
    static const struct support_classifier_case wine_01 = {"wine", 0.1};
    static const struct support_classifier_case ai4i_1 = {NULL, 1.0};
    static const struct support_classifier_case ai4i_01 = {NULL, 0.1};
    const struct CMUnitTest tests[] = {
        NAMED_CASE("sklearn: wine standardised, l2 1", test_sklearn, (void *)&wine_1),
        NAMED_CASE("sklearn: wine standardised, l2 0.1", test_sklearn, (void *)&wine_01),
        NAMED_CASE("sklearn: AI4I failure mode, l2 1", test_sklearn, (void *)&ai4i_1),
        NAMED_CASE("sklearn: AI4I failure mode, l2 0.1", test_sklearn, (void *)&ai4i_01),
        NAMED_CASE("one 0/1 feature, l2 0: empirical class frequencies",
                   test_binary_feature_empirical_frequencies, NULL),
        NAMED_CASE("uninformative feature: W = 0, b = centred log frequencies, 0 iterations",
                   test_uninformative_feature_gives_prior, NULL),
        NAMED_CASE("two classes: softmax with l2 is logistic with l2/2",
                   test_two_classes_match_logistic, NULL),
        NAMED_CASE("predict: coef 0 gives softmax(intercepts)", test_predict_zero_coef_gives_prior,
                   NULL),
        NAMED_CASE("predict: by hand, extreme scores", test_predict_softmax_by_hand, NULL),
        NAMED_CASE("decide: the class value of the largest probability",
                   test_decide_picks_argmax_class, NULL),
        NAMED_CASE("copy is deep", test_model_copy_is_deep, NULL),
        NAMED_CASE("error: one class", test_error_one_class, NULL),
        NAMED_CASE("error: more classes than SOFTMAX_MAX_CLASSES", test_error_too_many_classes,
                   NULL),
        NAMED_CASE("error: NaN or infinity in x or y", test_error_non_finite, NULL),
        NAMED_CASE("error: separable classes with l2 0", test_error_separable_without_l2, NULL),
        NAMED_CASE("error: no rows, no features, bad l2, tol, max_iter", test_error_bad_arguments,
                   NULL),
        NAMED_CASE("error: no convergence names the gradient", test_error_no_convergence, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
