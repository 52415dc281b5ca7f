/* Unit tests for models/ridge: closed forms, batch invariance, errors, and scikit-learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/linear.h"
#include "models/ridge.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- helpers ---------------------------------------------------------------------------------- */

static struct linear_model fit_or_fail(const struct ridge_stats *stats, double alpha)
{
    struct linear_model model = {0};
    char err[256] = "";
    int rc = ridge_fit(stats, alpha, &model, err, sizeof(err));
    if (rc != TB_OK) {
        print_error("ridge_fit: %s (%s)\n", err, tb_strerror(rc));
        fail();
    }
    /* The shape of a fitted ridge model: one output, no classes. */
    assert_int_equal(model.kind, LINEAR_RIDGE);
    assert_int_equal(model.nfeatures, ridge_stats_nfeatures(stats));
    assert_int_equal(model.noutputs, 1);
    assert_int_equal(model.nclasses, 0);
    assert_null(model.classes);
    assert_non_null(model.intercept);
    assert_non_null(model.coef);
    assert_int_equal(linear_width(&model), 1);
    return model;
}

static struct linear_model fit_rows(const double *x, const double *y, size_t n, size_t p,
                                    double alpha)
{
    struct ridge_stats *stats = ridge_stats_new(p);
    assert_non_null(stats);
    ridge_stats_add(stats, x, y, n);
    struct linear_model model = fit_or_fail(stats, alpha);
    ridge_stats_destroy(stats);
    return model;
}

/* Runs tests/unit/models/ridge_reference.py (scikit-learn) on the rows and reads its intercept and
 * p coefficients. */
static void sklearn_ridge(const double *x, const double *y, size_t n, size_t p, double alpha,
                          double *intercept, double *coef)
{
    const char *script = "tests/unit/models/ridge_reference.py";
    if (access(script, R_OK) != 0) {
        print_error("%s not found: run the tests from the repository root\n", script);
        fail();
    }
    char *path = NULL;
    FILE *csv = support_temp_file("tributary_ridge", &path);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p; j++)
            fprintf(csv, "%.17g,", x[i * p + j]);
        fprintf(csv, "%.17g\n", y[i]);
    }
    assert_int_equal(fclose(csv), 0);

    char alpha_text[32];
    snprintf(alpha_text, sizeof(alpha_text), "%.17g", alpha);
    char *out = support_python(script, path, alpha_text, NULL), *cursor = out, *line;
    size_t got = 0;
    while ((line = support_next_line(&cursor))) {
        char *end = NULL;
        double v = strtod(line, &end);
        assert_true(end != line);
        if (got == 0)
            *intercept = v;
        else if (got <= p)
            coef[got - 1] = v;
        got++;
    }
    free(out);
    unlink(path);
    free(path);
    if (got != p + 1) {
        print_error("%s printed %zu of %zu values\n", script, got, p + 1);
        fail();
    }
}

/* --- closed forms ----------------------------------------------------------------------------- */

static void test_one_feature_closed_form(void **state)
{
    double alpha = *(const double *)*state;
    enum { N = 50 };
    double x[N], y[N];
    support_rng_seed(11);
    for (size_t i = 0; i < N; i++) {
        x[i] = 40.0 + 3.0 * support_rng_normal();
        y[i] = 5.0 - 0.7 * x[i] + support_rng_normal();
    }
    /* w = Sxy / (Sxx + alpha), b = ybar - w xbar, from plain sums. */
    double xbar = 0, ybar = 0;
    for (size_t i = 0; i < N; i++) {
        xbar += x[i];
        ybar += y[i];
    }
    xbar /= N;
    ybar /= N;
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < N; i++) {
        sxx += (x[i] - xbar) * (x[i] - xbar);
        sxy += (x[i] - xbar) * (y[i] - ybar);
    }
    double w = sxy / (sxx + alpha), b = ybar - w * xbar;

    struct linear_model model = fit_rows(x, y, N, 1, alpha);
    assert_int_equal(model.nfeatures, 1);
    support_assert_close(model.coef[0], w, 1e-12, "coefficient");
    support_assert_close(model.intercept[0], b, 1e-12, "intercept");
    linear_model_free(&model);
    assert_null(model.coef);
    assert_null(model.intercept);
    linear_model_free(&model); /* a second free is harmless */
}

static void test_orthogonal_centred_design(void **state)
{
    (void)state;
    /* Columns are offset Walsh functions: centred they are orthogonal, so the centred Gram is
     * diagonal and w_j = (xc_j . yc) / (xc_j . xc_j + alpha). */
    enum { N = 8, P = 3 };
    const double offset[P] = {5.0, -3.0, 1000.0};
    const double scale[P] = {1.0, 2.5, 0.01};
    const double y[N] = {3.1, -2.0, 4.4, 0.5, 9.9, -7.25, 1.0, 2.0};
    double x[N * P];
    for (size_t i = 0; i < N; i++) {
        x[i * P + 0] = offset[0] + scale[0] * ((i & 1) ? -1.0 : 1.0);
        x[i * P + 1] = offset[1] + scale[1] * ((i & 2) ? -1.0 : 1.0);
        x[i * P + 2] = offset[2] + scale[2] * ((i & 4) ? -1.0 : 1.0);
    }
    const double alpha = 0.75;
    double ybar = 0;
    for (size_t i = 0; i < N; i++)
        ybar += y[i];
    ybar /= N;

    struct linear_model model = fit_rows(x, y, N, P, alpha);
    double intercept = ybar;
    for (size_t j = 0; j < P; j++) {
        double sxy = 0, sxx = 0;
        for (size_t i = 0; i < N; i++) {
            double xc = x[i * P + j] - offset[j];
            sxy += xc * (y[i] - ybar);
            sxx += xc * xc;
        }
        double w = sxy / (sxx + alpha);
        intercept -= w * offset[j];
        support_assert_close(model.coef[j], w, 1e-10, "coefficient");
    }
    support_assert_close(model.intercept[0], intercept, 1e-10, "intercept");
    linear_model_free(&model);
}

static void test_alpha_zero_exactly_linear(void **state)
{
    (void)state;
    enum { N = 200, P = 3 };
    const double want[P] = {0.5, -3.0, 7.0}, want_intercept = 2.0;
    double x[N * P], y[N];
    support_rng_seed(3);
    for (size_t i = 0; i < N; i++) {
        y[i] = want_intercept;
        for (size_t j = 0; j < P; j++) {
            x[i * P + j] = 10.0 * support_rng_normal() + (double)j;
            y[i] += want[j] * x[i * P + j];
        }
    }
    struct linear_model model = fit_rows(x, y, N, P, 0.0);
    for (size_t j = 0; j < P; j++)
        support_assert_close(model.coef[j], want[j], 1e-10, "coefficient");
    support_assert_close(model.intercept[0], want_intercept, 1e-10, "intercept");
    linear_model_free(&model);
}

/* --- streaming -------------------------------------------------------------------------------- */

enum { SPLIT_N = 2503, SPLIT_P = 5 };

static void make_offset_data(double *x, double *y, size_t n, size_t p, uint64_t seed)
{
    const double offset[] = {100.0, -50.0, 1000.0, 0.0, 8000.0};
    const double spread[] = {1.0, 10.0, 0.5, 2.0, 30.0};
    const double w[] = {1.5, -0.25, 4.0, 2.0, 0.05};
    support_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        y[i] = 3.0 + 0.1 * support_rng_normal();
        for (size_t j = 0; j < p; j++) {
            x[i * p + j] = offset[j] + spread[j] * support_rng_normal();
            y[i] += w[j] * x[i * p + j];
        }
    }
}

static struct linear_model fit_in_batches(const double *x, const double *y, size_t n, size_t p,
                                          size_t batch, double alpha)
{
    struct ridge_stats *stats = ridge_stats_new(p);
    for (size_t start = 0; start < n; start += batch) {
        size_t m = n - start < batch ? n - start : batch;
        ridge_stats_add(stats, x + start * p, y + start, m);
    }
    assert_int_equal(ridge_stats_count(stats), n);
    struct linear_model model = fit_or_fail(stats, alpha);
    ridge_stats_destroy(stats);
    return model;
}

static void test_batch_splitting_invariance(void **state)
{
    (void)state;
    double *x = mem_alloc(SPLIT_N * SPLIT_P * sizeof(double));
    double *y = mem_alloc(SPLIT_N * sizeof(double));
    make_offset_data(x, y, SPLIT_N, SPLIT_P, 42);
    const double alpha = 0.1;

    struct linear_model whole = fit_in_batches(x, y, SPLIT_N, SPLIT_P, SPLIT_N, alpha);
    const size_t batches[] = {1, 7, 1000};
    struct linear_model split[4];
    for (size_t k = 0; k < 3; k++)
        split[k] = fit_in_batches(x, y, SPLIT_N, SPLIT_P, batches[k], alpha);

    /* Two partitions accumulated apart, in different batch sizes, then merged. */
    size_t cut = 1234;
    struct ridge_stats *a = ridge_stats_new(SPLIT_P), *b = ridge_stats_new(SPLIT_P);
    for (size_t start = 0; start < cut; start += 100)
        ridge_stats_add(a, x + start * SPLIT_P, y + start, cut - start < 100 ? cut - start : 100);
    ridge_stats_add(b, x + cut * SPLIT_P, y + cut, SPLIT_N - cut);
    char err[256] = "";
    assert_int_equal(ridge_stats_merge(a, b, err, sizeof(err)), TB_OK);
    assert_int_equal(ridge_stats_count(a), SPLIT_N);
    assert_int_equal(ridge_stats_count(b), SPLIT_N - cut);
    split[3] = fit_or_fail(a, alpha);
    ridge_stats_destroy(a);
    ridge_stats_destroy(b);

    double mean[SPLIT_P] = {0}, ybar = 0;
    for (size_t i = 0; i < SPLIT_N; i++) {
        for (size_t j = 0; j < SPLIT_P; j++)
            mean[j] += x[i * SPLIT_P + j] / SPLIT_N;
        ybar += y[i] / SPLIT_N;
    }
    const char *names[] = {"1-row batches", "7-row batches", "1000-row batches", "merged"};
    for (size_t k = 0; k < 4; k++) {
        char what[64];
        for (size_t j = 0; j < SPLIT_P; j++) {
            snprintf(what, sizeof(what), "%s: coefficient %zu", names[k], j);
            support_assert_close(split[k].coef[j], whole.coef[j], 1e-12, what);
        }
        /* b = ybar - mu.w cancels terms about 1000 times larger than b, so b is held to 1e-12
         * of those terms rather than of itself. */
        double terms = fabs(ybar);
        for (size_t j = 0; j < SPLIT_P; j++)
            terms += fabs(mean[j] * whole.coef[j]);
        if (!(fabs(split[k].intercept[0] - whole.intercept[0]) <= 1e-12 * terms)) {
            print_error("%s: intercept %.17g, whole %.17g, terms %.17g\n", names[k],
                        split[k].intercept[0], whole.intercept[0], terms);
            fail();
        }
        linear_model_free(&split[k]);
    }
    linear_model_free(&whole);
    free(y);
    free(x);
}

static void test_merge_into_empty_and_from_empty(void **state)
{
    (void)state;
    enum { N = 300, P = 5 };
    double x[N * P], y[N];
    make_offset_data(x, y, N, P, 9);
    struct linear_model direct = fit_rows(x, y, N, P, 1.0);

    struct ridge_stats *empty = ridge_stats_new(P), *full = ridge_stats_new(P);
    ridge_stats_add(full, x, y, N);
    ridge_stats_add(full, x, y, 0);
    char err[256] = "";
    assert_int_equal(ridge_stats_merge(full, empty, err, sizeof(err)), TB_OK);
    assert_int_equal(ridge_stats_merge(empty, full, err, sizeof(err)), TB_OK);
    assert_int_equal(ridge_stats_count(empty), N);
    struct linear_model merged = fit_or_fail(empty, 1.0);
    for (size_t j = 0; j < P; j++)
        support_assert_close(merged.coef[j], direct.coef[j], 1e-14, "coefficient");
    support_assert_close(merged.intercept[0], direct.intercept[0], 1e-14, "intercept");
    linear_model_free(&merged);
    linear_model_free(&direct);
    ridge_stats_destroy(full);
    ridge_stats_destroy(empty);
}

static void test_predict_batch(void **state)
{
    (void)state;
    double coef[3] = {0.5, -2.0, 10.0}, intercept[1] = {7.0};
    struct linear_model model = {
        .kind = LINEAR_RIDGE, .nfeatures = 3, .noutputs = 1, .intercept = intercept, .coef = coef};
    assert_int_equal(linear_width(&model), 1);
    const double x[4 * 3] = {1, 2, 3, 0, 0, 0, -1, 0.5, 0.25, 1e3, 1e-3, -4};
    double y[5] = {0, 0, 0, 0, -99.0};
    linear_predict(&model, x, 4, y);
    for (size_t i = 0; i < 4; i++) {
        double want = 7.0 + 0.5 * x[i * 3] - 2.0 * x[i * 3 + 1] + 10.0 * x[i * 3 + 2];
        support_assert_close(y[i], want, 1e-15, "prediction");
    }
    assert_true(y[4] == -99.0); /* nothing written past nrows */
    linear_predict(&model, x, 0, y + 4);
    assert_true(y[4] == -99.0);
}

/* --- errors ----------------------------------------------------------------------------------- */

static void expect_fit_error(struct ridge_stats *stats, double alpha, int want_rc,
                             const char *const *fragments)
{
    struct linear_model model = {.kind = LINEAR_SOFTMAX, .nfeatures = 99, .noutputs = 98};
    char err[256] = "";
    int rc = ridge_fit(stats, alpha, &model, err, sizeof(err));
    if (rc != want_rc) {
        print_error("ridge_fit returned %d (%s), want %d; message: %s\n", rc, tb_strerror(rc),
                    want_rc, err);
        fail();
    }
    /* untouched on failure */
    assert_int_equal(model.kind, LINEAR_SOFTMAX);
    assert_int_equal(model.nfeatures, 99);
    assert_int_equal(model.noutputs, 98);
    assert_null(model.coef);
    assert_null(model.intercept);
    for (const char *const *f = fragments; *f; f++) {
        if (!strstr(err, *f)) {
            print_error("message \"%s\" lacks \"%s\"\n", err, *f);
            fail();
        }
    }
}

static void test_error_no_rows(void **state)
{
    (void)state;
    struct ridge_stats *stats = ridge_stats_new(4);
    expect_fit_error(stats, 1.0, TB_USAGE, (const char *[]){"no training rows", NULL});
    ridge_stats_destroy(stats);
}

static void test_error_bad_alpha(void **state)
{
    (void)state;
    enum { N = 20, P = 2 };
    double x[N * P], y[N];
    make_offset_data(x, y, N, P, 5);
    struct ridge_stats *stats = ridge_stats_new(P);
    ridge_stats_add(stats, x, y, N);
    expect_fit_error(stats, -0.5, TB_USAGE, (const char *[]){">= 0", "-0.5", NULL});
    expect_fit_error(stats, NAN, TB_USAGE, (const char *[]){">= 0", NULL});
    expect_fit_error(stats, INFINITY, TB_USAGE, (const char *[]){">= 0", NULL});
    ridge_stats_destroy(stats);
}

/* Rows whose column `bad` is replaced by kind: 0 constant 518.67, 1 the sum of columns 0 and 1. */
static struct ridge_stats *stats_with_degenerate_column(size_t bad, int kind)
{
    enum { N = 500, P = 4 };
    double x[N * P], y[N];
    make_offset_data(x, y, N, P, 21);
    for (size_t i = 0; i < N; i++)
        x[i * P + bad] = kind == 0 ? 518.67 : x[i * P] + x[i * P + 1];
    struct ridge_stats *stats = ridge_stats_new(P);
    /* Odd batches, so the constant's mean is merged from many rounded pieces. */
    for (size_t start = 0; start < N; start += 33)
        ridge_stats_add(stats, x + start * P, y + start, N - start < 33 ? N - start : 33);
    return stats;
}

static void test_error_constant_feature_alpha_zero(void **state)
{
    (void)state;
    struct ridge_stats *stats = stats_with_degenerate_column(2, 0);
    expect_fit_error(stats, 0.0, TB_NUMERIC,
                     (const char *[]){"feature 2 ", "constant", "l2 > 0", NULL});
    ridge_stats_destroy(stats);
}

static void test_error_collinear_feature_alpha_zero(void **state)
{
    (void)state;
    struct ridge_stats *stats = stats_with_degenerate_column(3, 1);
    expect_fit_error(stats, 0.0, TB_NUMERIC,
                     (const char *[]){"feature 3 ", "collinear", "l2 > 0", NULL});
    ridge_stats_destroy(stats);
}

static void test_constant_feature_with_l2_fits(void **state)
{
    (void)state;
    struct ridge_stats *stats = stats_with_degenerate_column(2, 0);
    struct linear_model model = fit_or_fail(stats, 1.0);
    assert_true(fabs(model.coef[2]) < 1e-9);
    linear_model_free(&model);
    ridge_stats_destroy(stats);
}

static void test_error_nan_in_data(void **state)
{
    (void)state;
    enum { N = 30, P = 3 };
    double x[N * P], y[N];
    make_offset_data(x, y, N, P, 8);
    x[17 * P + 1] = NAN;
    struct ridge_stats *stats = ridge_stats_new(P);
    ridge_stats_add(stats, x, y, N);
    expect_fit_error(stats, 1.0, TB_NUMERIC, (const char *[]){"NaN or infinite", NULL});
    ridge_stats_destroy(stats);
}

static void test_error_merge_feature_mismatch(void **state)
{
    (void)state;
    struct ridge_stats *a = ridge_stats_new(3), *b = ridge_stats_new(4);
    double x[4] = {1, 2, 3, 4}, y[1] = {1};
    ridge_stats_add(b, x, y, 1);
    char err[256] = "";
    assert_int_equal(ridge_stats_merge(a, b, err, sizeof(err)), TB_USAGE);
    assert_non_null(strstr(err, "4 features into ones of 3"));
    assert_int_equal(ridge_stats_count(a), 0);
    ridge_stats_destroy(a);
    ridge_stats_destroy(b);
}

static void test_new_rejects_bad_sizes(void **state)
{
    (void)state;
    assert_null(ridge_stats_new(0));
    assert_null(ridge_stats_new(RIDGE_MAX_FEATURES + 1));
    struct ridge_stats *s = ridge_stats_new(7);
    assert_int_equal(ridge_stats_nfeatures(s), 7);
    assert_int_equal(ridge_stats_count(s), 0);
    ridge_stats_destroy(s);
    ridge_stats_destroy(NULL);
    linear_model_free(NULL);
}

/* --- against scikit-learn --------------------------------------------------------------------- */

/* Fits with ridge and with scikit-learn and compares within 1e-6 relative. A column that is
 * exactly constant in the data has no effect on predictions and a coefficient that is rounding
 * noise in both; for it both must be below 1e-9 instead. */
static void compare_with_sklearn(const double *x, const double *y, size_t n, size_t p, double alpha)
{
    struct linear_model model = fit_rows(x, y, n, p, alpha);
    double intercept = 0;
    double *coef = mem_alloc(p * sizeof(double));
    sklearn_ridge(x, y, n, p, alpha, &intercept, coef);
    support_assert_close(model.intercept[0], intercept, 1e-6, "intercept vs sklearn");
    for (size_t j = 0; j < p; j++) {
        bool constant = true;
        for (size_t i = 1; i < n && constant; i++)
            constant = x[i * p + j] == x[j];
        char what[64];
        snprintf(what, sizeof(what), "coefficient %zu vs sklearn", j);
        if (constant) {
            if (!(fabs(model.coef[j]) < 1e-9 && fabs(coef[j]) < 1e-9)) {
                print_error("%s (constant column): got %.17g, sklearn %.17g\n", what, model.coef[j],
                            coef[j]);
                fail();
            }
        } else {
            support_assert_close(model.coef[j], coef[j], 1e-6, what);
        }
    }
    free(coef);
    linear_model_free(&model);
}

static void test_sklearn_badly_scaled(void **state)
{
    (void)state;
    enum { N = 1500, P = 5 };
    double *x = mem_alloc(N * P * sizeof(double)), *y = mem_alloc(N * sizeof(double));
    support_rng_seed(2024);
    for (size_t i = 0; i < N; i++) {
        double *r = x + i * P;
        r[0] = 8000.0 + 5.0 * support_rng_normal();      /* large offset, small spread */
        r[1] = 1e-3 * support_rng_normal();              /* tiny scale */
        r[2] = 1e6 + 100.0 * support_rng_normal();       /* huge offset */
        r[3] = 0.5 + support_rng_uniform();              /* unit scale */
        r[4] = r[0] * 0.01 + 0.1 * support_rng_normal(); /* correlated with column 0 */
        y[i] = 1e4 + 3.0 * r[0] - 2000.0 * r[1] + 0.01 * r[2] + 7.0 * r[3] - 4.0 * r[4] +
               support_rng_normal();
    }
    compare_with_sklearn(x, y, N, P, 0.1);
    compare_with_sklearn(x, y, N, P, 25.0);
    free(y);
    free(x);
}

/* C-MAPSS train_FD001.txt (unit cycle setting1..3 s1..s21): the features are columns 2..25, the
 * label is RUL = max cycle of the unit - cycle. */
static size_t read_fd001(double **x_out, double **y_out)
{
    enum { COLS = SUPPORT_FD001_COLS, P = 24 };
    size_t n = 0;
    double *rows = support_read_fd001(&n, y_out);
    assert_int_equal(n, 20631);
    double *x = mem_alloc(n * P * sizeof(double));
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * P, rows + i * COLS + 2, P * sizeof(double));
    free(rows);
    *x_out = x;
    return n;
}

static void test_sklearn_cmapss_fd001(void **state)
{
    (void)state;
    double *x = NULL, *y = NULL;
    size_t n = read_fd001(&x, &y);
    compare_with_sklearn(x, y, n, 24, 1.0);
    free(y);
    free(x);
}

int main(void)
{
    static const double alpha_zero = 0.0, alpha_mid = 3.5;
    const struct CMUnitTest tests[] = {
        NAMED_CASE("one feature, alpha 0: w = Sxy/Sxx", test_one_feature_closed_form,
                   (void *)&alpha_zero),
        NAMED_CASE("one feature, alpha 3.5: w = Sxy/(Sxx+alpha)", test_one_feature_closed_form,
                   (void *)&alpha_mid),
        NAMED_CASE("orthogonal centred design: diagonal solve", test_orthogonal_centred_design,
                   NULL),
        NAMED_CASE("alpha 0 recovers exactly linear data", test_alpha_zero_exactly_linear, NULL),
        NAMED_CASE("batches of 1, 7, 1000 rows and a merge agree", test_batch_splitting_invariance,
                   NULL),
        NAMED_CASE("merge with an empty accumulator either way",
                   test_merge_into_empty_and_from_empty, NULL),
        NAMED_CASE("predict: intercept + x.w for each row of a batch", test_predict_batch, NULL),
        NAMED_CASE("error: no rows", test_error_no_rows, NULL),
        NAMED_CASE("error: alpha negative, NaN or infinite", test_error_bad_alpha, NULL),
        NAMED_CASE("error: constant feature with alpha 0 is named",
                   test_error_constant_feature_alpha_zero, NULL),
        NAMED_CASE("error: collinear feature with alpha 0 is named",
                   test_error_collinear_feature_alpha_zero, NULL),
        NAMED_CASE("constant feature with alpha > 0 gets coefficient 0",
                   test_constant_feature_with_l2_fits, NULL),
        NAMED_CASE("error: NaN in the data", test_error_nan_in_data, NULL),
        NAMED_CASE("error: merging different feature counts", test_error_merge_feature_mismatch,
                   NULL),
        NAMED_CASE("new: 0 or too many features is NULL", test_new_rejects_bad_sizes, NULL),
        NAMED_CASE("sklearn: badly scaled columns with large offsets", test_sklearn_badly_scaled,
                   NULL),
        NAMED_CASE("sklearn: C-MAPSS FD001, alpha 1", test_sklearn_cmapss_fd001, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
