/* Unit tests for models/logistic and the shared models/linear: closed forms, errors, prediction,
 * and scikit-learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/linear.h"
#include "models/logistic.h"
#include "service/error.h"
#include "service/mem.h"
#include "tests/unit/support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAMED_CASE(name, fn, state)                                                                \
    {                                                                                              \
        name, fn, NULL, NULL, state                                                                \
    }

/* --- helpers ---------------------------------------------------------------------------------- */

/* splitmix64: a small deterministic generator, so every run sees the same data. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

static double rng_uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0; /* [0, 1) */
}

static double rng_normal(void)
{
    double u = rng_uniform(), v = rng_uniform();
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Fails unless |got - want| <= max(rel * max(|got|, |want|), floor): relative, except that
 * values near zero need only agree to the absolute floor. */
static void assert_close_floor(double got, double want, double rel, double floor, const char *what)
{
    double diff = fabs(got - want), scale = fmax(fabs(got), fabs(want));
    if (!(diff <= fmax(rel * scale, floor)))
        fail_msg("%s: got %.17g, want %.17g (difference %.3g > max(%.3g relative, %.3g))", what,
                 got, want, diff, rel, floor);
}

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

/* What tests/unit/classifier_reference.py wrote: the (standardised) data and one fit. */
struct reference {
    size_t n, p;
    double *x, *y;
    double grad_over_n; /* max |gradient| / n at scikit-learn's solution */
    size_t nclasses, noutputs;
    double *classes, *intercept, *coef, *prob;
};

static double next_number(char **cursor, const char *file)
{
    char *end = NULL;
    double v = strtod(*cursor, &end);
    if (end == *cursor)
        fail_msg("%s: a number is missing", file);
    *cursor = end;
    return v;
}

static double *read_numbers(char **cursor, size_t count, const char *file)
{
    double *v = mem_alloc((count > 0 ? count : 1) * sizeof(double));
    for (size_t i = 0; i < count; i++)
        v[i] = next_number(cursor, file);
    return v;
}

static size_t next_count(char **cursor, const char *file)
{
    double v = next_number(cursor, file);
    assert_true(v >= 0 && v == floor(v));
    return (size_t)v;
}

/* Runs the reference script for one model, dataset and l2 and reads what it wrote. */
static void run_reference(const char *model, const char *dataset, double l2, struct reference *ref)
{
    const char *script = "tests/unit/classifier_reference.py";
    if (access(script, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", script);
    char *dir = support_mkdtemp("tributary_classifier");
    assert_non_null(dir);
    char l2_text[32], path[1024];
    snprintf(l2_text, sizeof(l2_text), "%.17g", l2);
    free(support_python(script, model, dataset, dir, l2_text, NULL));

    size_t len = 0;
    snprintf(path, sizeof(path), "%s/data.txt", dir);
    char *text = support_read_file(path, &len), *cursor = text;
    ref->n = next_count(&cursor, path);
    ref->p = next_count(&cursor, path);
    ref->x = mem_alloc(ref->n * ref->p * sizeof(double));
    ref->y = mem_alloc(ref->n * sizeof(double));
    for (size_t i = 0; i < ref->n; i++) {
        for (size_t j = 0; j < ref->p; j++)
            ref->x[i * ref->p + j] = next_number(&cursor, path);
        ref->y[i] = next_number(&cursor, path);
    }
    free(text);

    snprintf(path, sizeof(path), "%s/fit-0.txt", dir);
    text = support_read_file(path, &len);
    cursor = text;
    ref->grad_over_n = next_number(&cursor, path);
    ref->nclasses = next_count(&cursor, path);
    ref->classes = read_numbers(&cursor, ref->nclasses, path);
    ref->noutputs = next_count(&cursor, path);
    ref->intercept = read_numbers(&cursor, ref->noutputs, path);
    ref->coef = read_numbers(&cursor, ref->noutputs * ref->p, path);
    ref->prob = read_numbers(&cursor, ref->n * ref->nclasses, path);
    free(text);
    assert_int_equal(support_rmtree(dir), 0);
    free(dir);
}

static void free_reference(struct reference *ref)
{
    free(ref->prob);
    free(ref->coef);
    free(ref->intercept);
    free(ref->classes);
    free(ref->y);
    free(ref->x);
}

struct sklearn_case {
    const char *dataset; /* a scikit-learn data set, or NULL for AI4I 2020 */
    double l2;
};

/* Fits the reference data with logistic_fit and compares with scikit-learn: the intercept and
 * the coefficients to 1e-6 relative (absolute 1e-9 for a coefficient near zero), the predicted
 * probabilities to 1e-6 relative (absolute 1e-12 for a probability near zero). */
static void test_sklearn(void **state)
{
    const struct sklearn_case *c = *state;
    char ai4i[1024];
    const char *dataset =
        c->dataset ? c->dataset : support_data_path("ai4i/ai4i2020.csv", ai4i, sizeof(ai4i));
    struct reference ref;
    run_reference("logistic", dataset, c->l2, &ref);
    /* The reference is only a reference if it sits at the optimum. */
    if (!(ref.grad_over_n <= 1e-10))
        fail_msg("scikit-learn stopped with max |gradient| / n = %g", ref.grad_over_n);
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
    assert_close_floor(model.intercept[0], ref.intercept[0], 1e-6, 1e-9, "intercept");
    for (size_t j = 0; j < ref.p; j++) {
        char what[64];
        snprintf(what, sizeof(what), "coefficient %zu", j);
        assert_close_floor(model.coef[j], ref.coef[j], 1e-6, 1e-9, what);
    }

    double *prob = mem_alloc(ref.n * 2 * sizeof(double));
    linear_predict(&model, ref.x, ref.n, prob);
    for (size_t i = 0; i < ref.n * 2; i++) {
        char what[64];
        snprintf(what, sizeof(what), "row %zu: P(class %zu)", i / 2, i % 2);
        assert_close_floor(prob[i], ref.prob[i], 1e-6, 1e-12, what);
    }
    free(prob);
    linear_model_free(&model);
    free_reference(&ref);
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
        x[i] = i % 2;
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
    rng_seed(7);
    for (size_t i = 0; i < N; i++) {
        double score = 0.3;
        for (size_t j = 0; j < P; j++) {
            x[i * P + j] = rng_normal();
            score += (1.0 + (double)j) * x[i * P + j];
        }
        y[i] = rng_uniform() < sigmoid(score);
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
    rng_seed(5);
    for (size_t i = 0; i < N; i++) {
        x[i * P] = rng_normal();
        x[i * P + 1] = rng_normal();
        y[i] = rng_uniform() < sigmoid(x[i * P] - x[i * P + 1]) ? 4.0 : 1.0;
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
    if (rc != want_rc)
        fail_msg("logistic_fit returned %d (%s), want %d; message: %s", rc, tb_strerror(rc),
                 want_rc, err);
    assert_int_equal(model.nfeatures, 99);
    assert_null(model.coef);
    assert_null(model.intercept);
    for (const char *const *f = fragments; *f; f++)
        if (!strstr(err, *f))
            fail_msg("message \"%s\" lacks \"%s\"", err, *f);
}

enum { ERR_N = 30 };

/* Overlapping classes 0/1 in two features. */
static void make_noisy_data(double *x, double *y)
{
    rng_seed(99);
    for (size_t i = 0; i < ERR_N; i++) {
        x[i * 2] = rng_normal();
        x[i * 2 + 1] = rng_normal();
        y[i] = rng_uniform() < sigmoid(x[i * 2]) ? 1.0 : 0.0;
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
    rng_seed(17);
    for (size_t i = 0; i < N; i++) {
        double a = rng_normal(), b = rng_normal(), side = a + b > 0 ? 1.0 : -1.0;
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
    static const struct sklearn_case cancer_1 = {"breast_cancer", 1.0};
    static const struct sklearn_case cancer_01 = {"breast_cancer", 0.1};
    static const struct sklearn_case ai4i_1 = {NULL, 1.0};
    static const struct sklearn_case ai4i_001 = {NULL, 0.01};
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
