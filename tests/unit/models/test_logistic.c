/* Unit tests for models/logistic and the shared models/linear: closed forms, errors, prediction,
 * and scikit-learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/linear.h"
#include "models/logistic.h"
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
    struct logistic_options options = {
        .l2 = l2, .tol = LOGISTIC_DEFAULT_TOL, .max_iter = LOGISTIC_DEFAULT_MAX_ITER};
    struct linear_model model = {0};
    char err[256] = "";
    int rc = logistic_fit(x, y, n, p, &options, &model, iterations, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("logistic_fit: %s (%s)", err, tb_strerror(rc));
    return model;
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* --- scikit-learn ----------------------------------------------------------------------------- */

/* Fits the reference data with logistic_fit and compares with scikit-learn: the intercept and
 * the coefficients to 1e-6 relative (absolute 1e-9 for a coefficient near zero), the predicted
 * probabilities to 1e-6 relative (absolute 1e-12 for a probability near zero). */
static void test_sklearn(void **state)
{
    const struct support_classifier_case *c = *state;
    struct support_classifier_reference ref;
    support_classifier_reference("logistic", c, 1e-10, &ref);
    assert_int_equal(ref.nclasses, 2);
    assert_int_equal(ref.noutputs, 1);

    int iterations = -1;
    struct linear_model model = fit_or_fail(ref.x, ref.y, ref.n, ref.p, c->l2, &iterations);
    assert_true(iterations >= 1 && iterations <= 100);
    assert_int_equal(model.kind, LINEAR_LOGISTIC);
    assert_int_equal(model.nfeatures, ref.p);
    assert_int_equal(model.noutputs, 1);
    assert_int_equal(model.nclasses, 2);
    assert_true(model.classes[0] == ref.classes[0] && model.classes[1] == ref.classes[1]);
    support_assert_close_floor(model.intercept[0], ref.intercept[0], 1e-6, 1e-9, "intercept");
    for (size_t j = 0; j < ref.p; j++) {
        char what[64];
        snprintf(what, sizeof(what), "coefficient %zu", j);
        support_assert_close_floor(model.coef[j], ref.coef[j], 1e-6, 1e-9, what);
    }

    double *prob = mem_alloc(ref.n * 2 * sizeof(double));
    linear_predict(&model, ref.x, ref.n, prob);
    for (size_t i = 0; i < ref.n * 2; i++) {
        char what[64];
        snprintf(what, sizeof(what), "row %zu: P(class %zu)", i / 2, i % 2);
        support_assert_close_floor(prob[i], ref.prob[i], 1e-6, 1e-12, what);
    }
    free(prob);
    linear_model_free(&model);
    support_classifier_reference_free(&ref);
}

/* --- closed forms ----------------------------------------------------------------------------- */

static void test_binary_feature_empirical_log_odds(void **state)
{
    (void)state;
    /* One 0/1 feature and l2 = 0: the fit reproduces the class frequencies in each group, so
     * b = logit(P(y=1 | x=0)) and w = logit(P(y=1 | x=1)) - b. Labels are 2 and 7. */
    enum { N = 40 };
    double x[N], y[N];
    size_t n0 = 0, pos0 = 0, n1 = 0, pos1 = 0;
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)(i % 2);
        bool positive = x[i] == 0.0 ? i % 10 < 3 : i % 8 != 1; /* 3/10 and 3/4 positive */
        y[i] = positive ? 7.0 : 2.0;
        if (x[i] == 0.0) {
            n0++;
            pos0 += positive;
        } else {
            n1++;
            pos1 += positive;
        }
    }
    double b = log((double)pos0 / (double)(n0 - pos0));
    double w = log((double)pos1 / (double)(n1 - pos1)) - b;

    struct linear_model model = fit_or_fail(x, y, N, 1, 0.0, NULL);
    assert_true(model.classes[0] == 2.0 && model.classes[1] == 7.0);
    support_assert_close(model.intercept[0], b, 1e-10, "intercept");
    support_assert_close(model.coef[0], w, 1e-10, "coefficient");
    double prob[4];
    const double rows[2] = {0.0, 1.0};
    linear_predict(&model, rows, 2, prob);
    support_assert_close(prob[1], (double)pos0 / (double)n0, 1e-10, "P(7 | x=0)");
    support_assert_close(prob[3], (double)pos1 / (double)n1, 1e-10, "P(7 | x=1)");
    linear_model_free(&model);
}

static void test_uninformative_feature_gives_prior(void **state)
{
    (void)state;
    /* x = +-1 in equal numbers within each class: at w = 0 the gradient in w is zero, so for any
     * l2 the optimum is w = 0, b = log(n1 / n0), and it is where the fit starts. */
    enum { N = 60 };
    double x[N], y[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = i % 2 ? 1.0 : -1.0;
        y[i] = i < 20 ? 0.0 : 1.0; /* 20 negatives, 40 positives, both even counts */
    }
    int iterations = -1;
    struct linear_model model = fit_or_fail(x, y, N, 1, 0.5, &iterations);
    assert_int_equal(iterations, 0);
    assert_true(fabs(model.coef[0]) < 1e-15);
    support_assert_close(model.intercept[0], log(40.0 / 20.0), 1e-14, "intercept");
    linear_model_free(&model);
}

static void test_l2_shrinks_towards_zero(void **state)
{
    (void)state;
    enum { N = 500, P = 3 };
    double x[N * P], y[N];
    support_rng_seed(7);
    for (size_t i = 0; i < N; i++) {
        double score = 0.3;
        for (size_t j = 0; j < P; j++) {
            x[i * P + j] = support_rng_normal();
            score += (1.0 + (double)j) * x[i * P + j];
        }
        y[i] = support_rng_uniform() < sigmoid(score);
    }
    double previous = INFINITY;
    const double l2s[] = {0.0, 1.0, 10.0, 100.0, 1000.0};
    for (size_t k = 0; k < sizeof(l2s) / sizeof(l2s[0]); k++) {
        struct linear_model model = fit_or_fail(x, y, N, P, l2s[k], NULL);
        double norm = 0.0;
        for (size_t j = 0; j < P; j++)
            norm += model.coef[j] * model.coef[j];
        assert_true(sqrt(norm) < previous);
        previous = sqrt(norm);
        linear_model_free(&model);
    }
}

/* A problem large enough that the first Newton steps sample the Hessian (models/logistic.c):
 * the fit must still land on the exact optimum, where the gradient of the objective, computed
 * here from its definition, vanishes. */
static void test_large_problem_reaches_the_optimum(void **state)
{
    (void)state;
    enum { N = 400000, P = 6 };
    double *x = mem_alloc((size_t)N * P * sizeof *x), *y = mem_alloc(N * sizeof *y);
    support_rng_seed(11);
    for (size_t i = 0; i < N; i++) {
        double score = -0.5;
        for (size_t j = 0; j < P; j++) {
            x[i * P + j] = 3.0 * support_rng_normal() + (double)j;
            score += (j % 2 ? 0.4 : -0.3) * x[i * P + j];
        }
        y[i] = support_rng_uniform() < sigmoid(score);
    }
    const double l2 = 2.0;
    struct linear_model model = fit_or_fail(x, y, N, P, l2, NULL);
    double grad[P + 1] = {0}, scale = 0.0;
    for (size_t i = 0; i < N; i++) {
        double score = model.intercept[0];
        for (size_t j = 0; j < P; j++)
            score += model.coef[j] * x[i * P + j];
        double residual = sigmoid(score) - y[i];
        grad[P] += residual;
        for (size_t j = 0; j < P; j++)
            grad[j] += residual * x[i * P + j];
        scale += fabs(residual);
    }
    for (size_t j = 0; j < P; j++)
        grad[j] += l2 * model.coef[j];
    for (size_t j = 0; j <= P; j++)
        if (fabs(grad[j]) > 1e-8 * scale)
            fail_msg("gradient component %zu is %g at the fit (sum |residual| %g)", j, grad[j],
                     scale);
    linear_model_free(&model);
    free(y);
    free(x);
}

/* --- prediction (models/linear) --------------------------------------------------------------- */

static void test_predict_zero_coef_gives_prior(void **state)
{
    (void)state;
    /* sigmoid(log 3) = 3/4 whatever the row. */
    double intercept = log(3.0), coef[2] = {0.0, 0.0}, classes[2] = {0.0, 1.0};
    struct linear_model model = {.kind = LINEAR_LOGISTIC,
                                 .nfeatures = 2,
                                 .noutputs = 1,
                                 .nclasses = 2,
                                 .intercept = &intercept,
                                 .coef = coef,
                                 .classes = classes};
    assert_int_equal(linear_width(&model), 2);
    const double x[3 * 2] = {1.0, 2.0, -50.0, 3.0, 0.0, 1e6};
    double out[7];
    out[6] = -99.0;
    linear_predict(&model, x, 3, out);
    for (size_t i = 0; i < 3; i++) {
        support_assert_close(out[2 * i], 0.25, 1e-15, "P(classes[0])");
        support_assert_close(out[2 * i + 1], 0.75, 1e-15, "P(classes[1])");
    }
    assert_true(out[6] == -99.0); /* nothing written past nrows */
}

static void test_predict_logistic_by_hand(void **state)
{
    (void)state;
    double intercept = 0.5, coef[2] = {1.0, -2.0}, classes[2] = {-1.0, 1.0};
    struct linear_model model = {.kind = LINEAR_LOGISTIC,
                                 .nfeatures = 2,
                                 .noutputs = 1,
                                 .nclasses = 2,
                                 .intercept = &intercept,
                                 .coef = coef,
                                 .classes = classes};
    /* Scores 0.5 + x0 - 2 x1: 0.5, 2.5, -3.5, 40.5, -800.5 and 799.5. */
    const double x[6 * 2] = {0, 0, 2, 0, 0, 2, 40, 0, 0, 400.5, 799, 0};
    double out[12];
    linear_predict(&model, x, 6, out);
    for (size_t i = 0; i < 6; i++) {
        double score = 0.5 + x[2 * i] - 2.0 * x[2 * i + 1];
        /* 1 - p = sigmoid(-score), which keeps its precision where p rounds to 1. */
        support_assert_close(out[2 * i + 1], sigmoid(score), 1e-14, "P(1)");
        support_assert_close(out[2 * i], sigmoid(-score), 1e-14, "P(-1)");
    }
    /* sigmoid(-40.5) is about 2.6e-18: not 0, as 1 - sigmoid(40.5) would be. */
    assert_true(out[6] > 2e-18 && out[6] < 3e-18);
    assert_true(out[8] == 1.0 && out[9] == 0.0 && out[10] == 0.0 && out[11] == 1.0);
}

static void test_predict_ridge_by_hand(void **state)
{
    (void)state;
    double intercept = 7.0, coef[3] = {0.5, -2.0, 10.0};
    struct linear_model model = {
        .kind = LINEAR_RIDGE, .nfeatures = 3, .noutputs = 1, .intercept = &intercept, .coef = coef};
    assert_int_equal(linear_width(&model), 1);
    const double x[4 * 3] = {1, 2, 3, 0, 0, 0, -1, 0.5, 0.25, 1e3, 1e-3, -4};
    double out[5] = {0, 0, 0, 0, -99.0}, labels[4];
    linear_predict(&model, x, 4, out);
    for (size_t i = 0; i < 4; i++) {
        double want = 7.0 + 0.5 * x[i * 3] - 2.0 * x[i * 3 + 1] + 10.0 * x[i * 3 + 2];
        support_assert_close(out[i], want, 1e-15, "prediction");
    }
    assert_true(out[4] == -99.0);
    linear_predict(&model, NULL, 0, out + 4);
    assert_true(out[4] == -99.0);
    linear_decide(&model, out, 4, labels);
    assert_memory_equal(labels, out, sizeof(labels));
}

static void test_decide_picks_argmax_class(void **state)
{
    (void)state;
    double intercept = 0.0, coef = 0.0, classes[2] = {-3.0, 12.5};
    struct linear_model model = {.kind = LINEAR_LOGISTIC,
                                 .nfeatures = 1,
                                 .noutputs = 1,
                                 .nclasses = 2,
                                 .intercept = &intercept,
                                 .coef = &coef,
                                 .classes = classes};
    const double out[4 * 2] = {0.9, 0.1, 0.2, 0.8, 0.5, 0.5, 0.0, 1.0};
    double labels[4];
    linear_decide(&model, out, 4, labels);
    assert_true(labels[0] == -3.0);
    assert_true(labels[1] == 12.5);
    assert_true(labels[2] == -3.0); /* a tie goes to the first class */
    assert_true(labels[3] == 12.5);
}

static void test_model_copy_is_deep(void **state)
{
    (void)state;
    enum { N = 100, P = 2 };
    double x[N * P], y[N];
    support_rng_seed(5);
    for (size_t i = 0; i < N; i++) {
        x[i * P] = support_rng_normal();
        x[i * P + 1] = support_rng_normal();
        y[i] = support_rng_uniform() < sigmoid(x[i * P] - x[i * P + 1]) ? 4.0 : 1.0;
    }
    struct linear_model model = fit_or_fail(x, y, N, P, 1.0, NULL), copy;
    linear_model_copy(&copy, &model);
    assert_int_equal(copy.kind, LINEAR_LOGISTIC);
    assert_int_equal(copy.nfeatures, P);
    assert_int_equal(copy.noutputs, 1);
    assert_int_equal(copy.nclasses, 2);
    assert_ptr_not_equal(copy.coef, model.coef);
    assert_ptr_not_equal(copy.intercept, model.intercept);
    assert_ptr_not_equal(copy.classes, model.classes);
    double coef[P] = {model.coef[0], model.coef[1]}, intercept = model.intercept[0];
    double classes[2] = {model.classes[0], model.classes[1]};
    /* Changing, then freeing, the original leaves the copy as it was. */
    model.coef[0] = model.coef[1] = model.intercept[0] = model.classes[0] = 1234.0;
    linear_model_free(&model);
    assert_memory_equal(copy.coef, coef, sizeof(coef));
    assert_memory_equal(copy.intercept, &intercept, sizeof(intercept));
    assert_memory_equal(copy.classes, classes, sizeof(classes));
    double out[2];
    linear_predict(&copy, x, 1, out);
    support_assert_close(out[1], sigmoid(intercept + coef[0] * x[0] + coef[1] * x[1]), 1e-14,
                         "prediction of the copy");
    linear_model_free(&copy);
}

static void test_kind_names(void **state)
{
    (void)state;
    const enum linear_kind kinds[] = {LINEAR_RIDGE, LINEAR_LOGISTIC, LINEAR_SOFTMAX};
    const char *names[] = {"ridge", "logistic", "softmax"};
    for (size_t k = 0; k < 3; k++) {
        assert_string_equal(linear_kind_name(kinds[k]), names[k]);
        enum linear_kind parsed = LINEAR_RIDGE;
        assert_int_equal(linear_kind_parse(names[k], &parsed), TB_OK);
        assert_int_equal(parsed, kinds[k]);
    }
    enum linear_kind untouched = LINEAR_SOFTMAX;
    assert_int_equal(linear_kind_parse("Logistic", &untouched), TB_NOTFOUND);
    assert_int_equal(linear_kind_parse("", &untouched), TB_NOTFOUND);
    assert_int_equal(untouched, LINEAR_SOFTMAX);
}

static void test_model_free_twice_and_null(void **state)
{
    (void)state;
    double x[4] = {0, 1, 2, 3}, y[4] = {0, 1, 0, 1};
    struct linear_model model = fit_or_fail(x, y, 4, 1, 1.0, NULL);
    linear_model_free(&model);
    assert_null(model.coef);
    assert_null(model.intercept);
    assert_null(model.classes);
    linear_model_free(&model);
    linear_model_free(NULL);
}

/* --- errors ----------------------------------------------------------------------------------- */

/* Fits and expects failure with want_rc and every fragment in the message, *out untouched. */
static void expect_fit_error(const double *x, const double *y, size_t n, size_t p,
                             const struct logistic_options *options, int want_rc,
                             const char *const *fragments)
{
    struct linear_model model = {.nfeatures = 99};
    char err[256] = "";
    int rc = logistic_fit(x, y, n, p, options, &model, NULL, err, sizeof(err));
    support_expect_fit_error("logistic_fit", rc, err, &model, want_rc, fragments);
}

enum { ERR_N = 30 };

/* Overlapping classes 0/1 in two features. */
static void make_noisy_data(double *x, double *y)
{
    support_rng_seed(99);
    for (size_t i = 0; i < ERR_N; i++) {
        x[i * 2] = support_rng_normal();
        x[i * 2 + 1] = support_rng_normal();
        y[i] = support_rng_uniform() < sigmoid(x[i * 2]) ? 1.0 : 0.0;
    }
}

static void test_error_three_classes(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    y[4] = 2.0;
    const struct logistic_options o = {1.0, 1e-10, 100};
    expect_fit_error(
        x, y, ERR_N, 2, &o, TB_USAGE,
        (const char *[]){"label has 3 distinct values; logistic needs 2, use softmax", NULL});
}

static void test_error_one_class(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    for (size_t i = 0; i < ERR_N; i++)
        y[i] = 5.0;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_USAGE,
                     (const char *[]){"label has 1 distinct value (5)", "needs 2", NULL});
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
    x[3] = -INFINITY;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_NUMERIC,
                     (const char *[]){"training data contains NaN or infinite", NULL});
    make_noisy_data(x, y);
    y[0] = INFINITY;
    expect_fit_error(x, y, ERR_N, 2, NULL, TB_NUMERIC,
                     (const char *[]){"label contains NaN or infinite", NULL});
}

static void test_error_separable_without_l2(void **state)
{
    (void)state;
    /* Class 1 exactly where x0 + x1 > 0, with a margin. */
    enum { N = 200 };
    double x[N * 2], y[N];
    support_rng_seed(17);
    for (size_t i = 0; i < N; i++) {
        double a = support_rng_normal(), b = support_rng_normal(), side = a + b > 0 ? 1.0 : -1.0;
        x[i * 2] = a + 0.2 * side;
        x[i * 2 + 1] = b + 0.2 * side;
        y[i] = side > 0 ? 1.0 : 0.0;
    }
    const struct logistic_options o = {0.0, 1e-10, 100};
    expect_fit_error(x, y, N, 2, &o, TB_NUMERIC,
                     (const char *[]){"linearly separable", "l2 = 0", "use l2 > 0", NULL});
    /* The same data with a penalty has a finite optimum. */
    struct linear_model model = fit_or_fail(x, y, N, 2, 0.1, NULL);
    assert_true(model.coef[0] > 0.0 && model.coef[1] > 0.0);
    linear_model_free(&model);
}

static void test_constant_feature_gets_zero(void **state)
{
    (void)state;
    /* A constant column is collinear with the intercept: for l2 > 0 its optimal coefficient is
     * 0, for l2 = 0 every value is optimal and 0 is the smallest. Either way the others are those
     * of the fit without it. */
    double x[ERR_N * 3], y[ERR_N], noisy[ERR_N * 2];
    make_noisy_data(noisy, y);
    for (size_t i = 0; i < ERR_N; i++) {
        x[i * 3] = noisy[i * 2];
        x[i * 3 + 1] = 518.67;
        x[i * 3 + 2] = noisy[i * 2 + 1];
    }
    const double l2s[2] = {0.0, 1.0};
    for (size_t k = 0; k < 2; k++) {
        struct linear_model with = fit_or_fail(x, y, ERR_N, 3, l2s[k], NULL);
        struct linear_model without = fit_or_fail(noisy, y, ERR_N, 2, l2s[k], NULL);
        assert_true(with.coef[1] == 0.0);
        support_assert_close(with.coef[0], without.coef[0], 1e-10, "coefficient 0");
        support_assert_close(with.coef[2], without.coef[1], 1e-10, "coefficient 2");
        support_assert_close(with.intercept[0], without.intercept[0], 1e-10, "intercept");
        linear_model_free(&without);
        linear_model_free(&with);
    }
}

static void test_error_collinear_feature_without_l2(void **state)
{
    (void)state;
    double x[ERR_N * 3], y[ERR_N], noisy[ERR_N * 2];
    make_noisy_data(noisy, y);
    for (size_t i = 0; i < ERR_N; i++) {
        x[i * 3] = noisy[i * 2];
        x[i * 3 + 1] = noisy[i * 2 + 1];
        x[i * 3 + 2] = 2.0 * noisy[i * 2] - noisy[i * 2 + 1] + 7.0;
    }
    const struct logistic_options o = {0.0, 1e-10, 100};
    expect_fit_error(x, y, ERR_N, 3, &o, TB_NUMERIC,
                     (const char *[]){"feature 2 ", "collinear", "l2 > 0", NULL});
    /* With a penalty the fit is unique. */
    struct linear_model model = fit_or_fail(x, y, ERR_N, 3, 1.0, NULL);
    linear_model_free(&model);
}

static void test_error_bad_arguments(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    expect_fit_error(x, y, 0, 2, NULL, TB_USAGE, (const char *[]){"no training rows", NULL});
    expect_fit_error(x, y, ERR_N, 0, NULL, TB_USAGE, (const char *[]){"features, got 0", NULL});
    const struct logistic_options negative = {-0.5, 1e-10, 100};
    expect_fit_error(x, y, ERR_N, 2, &negative, TB_USAGE,
                     (const char *[]){"l2 must be finite and >= 0, got -0.5", NULL});
    const struct logistic_options bad_tol = {1.0, 0.0, 100};
    expect_fit_error(x, y, ERR_N, 2, &bad_tol, TB_USAGE, (const char *[]){"tol", NULL});
    const struct logistic_options bad_iter = {1.0, 1e-10, 0};
    expect_fit_error(x, y, ERR_N, 2, &bad_iter, TB_USAGE, (const char *[]){"max_iter", NULL});
}

static void test_error_no_convergence(void **state)
{
    (void)state;
    double x[ERR_N * 2], y[ERR_N];
    make_noisy_data(x, y);
    const struct logistic_options o = {1.0, 1e-10, 1};
    expect_fit_error(
        x, y, ERR_N, 2, &o, TB_NUMERIC,
        (const char *[]){"did not converge in 1 Newton steps", "gradient max-norm", NULL});
}

int main(void)
{
    static const struct support_classifier_case cancer_1 = {"breast_cancer", 1.0};
    static const struct support_classifier_case cancer_01 = {"breast_cancer", 0.1};
    static const struct support_classifier_case ai4i_1 = {NULL, 1.0};
    static const struct support_classifier_case ai4i_001 = {NULL, 0.01};
    const struct CMUnitTest tests[] = {
        NAMED_CASE("sklearn: breast_cancer standardised, l2 1", test_sklearn, (void *)&cancer_1),
        NAMED_CASE("sklearn: breast_cancer standardised, l2 0.1", test_sklearn, (void *)&cancer_01),
        NAMED_CASE("sklearn: AI4I machine failure, l2 1", test_sklearn, (void *)&ai4i_1),
        NAMED_CASE("sklearn: AI4I machine failure, l2 0.01", test_sklearn, (void *)&ai4i_001),
        NAMED_CASE("one 0/1 feature, l2 0: empirical log-odds",
                   test_binary_feature_empirical_log_odds, NULL),
        NAMED_CASE("uninformative feature: w = 0, b = log(n1/n0), 0 steps",
                   test_uninformative_feature_gives_prior, NULL),
        NAMED_CASE("larger l2 gives smaller coefficients", test_l2_shrinks_towards_zero, NULL),
        NAMED_CASE("a large problem, Hessian sampled at first, reaches the exact optimum",
                   test_large_problem_reaches_the_optimum, NULL),
        NAMED_CASE("predict: coef 0 gives sigmoid(intercept)", test_predict_zero_coef_gives_prior,
                   NULL),
        NAMED_CASE("predict: [1 - p, p] by hand, extreme scores", test_predict_logistic_by_hand,
                   NULL),
        NAMED_CASE("predict: ridge is intercept + coef . x", test_predict_ridge_by_hand, NULL),
        NAMED_CASE("decide: the class value of the larger probability",
                   test_decide_picks_argmax_class, NULL),
        NAMED_CASE("copy is deep", test_model_copy_is_deep, NULL),
        NAMED_CASE("kind names parse back; unknown is TB_NOTFOUND", test_kind_names, NULL),
        NAMED_CASE("free twice and free NULL", test_model_free_twice_and_null, NULL),
        NAMED_CASE("error: three classes", test_error_three_classes, NULL),
        NAMED_CASE("error: one class", test_error_one_class, NULL),
        NAMED_CASE("error: NaN or infinity in x or y", test_error_non_finite, NULL),
        NAMED_CASE("error: separable classes with l2 0", test_error_separable_without_l2, NULL),
        NAMED_CASE("constant feature gets coefficient 0, l2 0 or 1",
                   test_constant_feature_gets_zero, NULL),
        NAMED_CASE("error: collinear feature with l2 0 is named",
                   test_error_collinear_feature_without_l2, NULL),
        NAMED_CASE("error: no rows, no features, bad l2, tol, max_iter", test_error_bad_arguments,
                   NULL),
        NAMED_CASE("error: no convergence names the gradient", test_error_no_convergence, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
