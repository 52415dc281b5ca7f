/* Unit tests for models/metrics: hand-computed cases, scikit-learn, running versus batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/metrics.h"
#include "service/mem.h"
#include "tests/unit/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAMED_CASE(name, fn, state)                                                                \
    {                                                                                              \
        name, fn, NULL, NULL, state                                                                \
    }

static uint64_t rng_state;

static double rng_uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* A case computed by hand: the expected values are written as the arithmetic that gives them. */
struct hand_case {
    size_t n;
    double y_true[4], y_pred[4];
    double rmse, mae, r2, nasa;
};

static void check_hand_case(const struct hand_case *c)
{
    struct metrics_regression m;
    metrics_regression_compute(c->y_true, c->y_pred, c->n, &m);
    assert_int_equal(m.count, c->n);
    support_assert_close(m.rmse, c->rmse, 1e-15, "rmse");
    support_assert_close(m.mae, c->mae, 1e-15, "mae");
    if (isnan(c->r2))
        assert_true(isnan(m.r2));
    else
        support_assert_close(m.r2, c->r2, 1e-15, "r2");
    support_assert_close(metrics_nasa_score(c->y_true, c->y_pred, c->n), c->nasa, 1e-15, "nasa");
}

static void test_hand_case(void **state)
{
    check_hand_case(*state);
}

/* scikit-learn's r2_score docstring example: mean 2.875, SS_tot 29.1875, SS_res 1.5, so
 * RMSE sqrt(0.375); the errors d = pred - true are -0.5, 0.5, 0, 1, so the score is
 * (exp(0.5/13)-1) + (exp(0.05)-1) + 0 + (exp(0.1)-1). Decimals from Python's math module. */
static const struct hand_case sklearn_docs = {
    .n = 4,
    .y_true = {3.0, -0.5, 2.0, 7.0},
    .y_pred = {2.5, 0.0, 2.0, 8.0},
    .rmse = 0.6123724356957945,
    .mae = 0.5,
    .r2 = 1.0 - 1.5 / 29.1875,
    .nasa = 0.03921075794479083 + 0.05127109637602404 + 0.0 + 0.10517091807564763,
};
/* Perfect predictions: no error, R2 1, score 0. */
static const struct hand_case perfect = {
    .n = 3, .y_true = {1, 2, 3}, .y_pred = {1, 2, 3}, .rmse = 0, .mae = 0, .r2 = 1, .nasa = 0};
/* 13 cycles early and 10 cycles late each cost e - 1; RMSE sqrt((169 + 100) / 2); the truth is
 * constant and not predicted exactly, so R2 is 0. */
static const struct hand_case asymmetric = {
    .n = 2,
    .y_true = {100.0, 100.0},
    .y_pred = {87.0, 110.0},
    .rmse = 11.597413504743201,
    .mae = 11.5,
    .r2 = 0.0,
    .nasa = 2.0 * 1.718281828459045,
};
/* Constant truth predicted exactly: R2 1 (scikit-learn's force_finite rule). */
static const struct hand_case constant_exact = {
    .n = 2, .y_true = {5, 5}, .y_pred = {5, 5}, .rmse = 0, .mae = 0, .r2 = 1, .nasa = 0};
/* One pair, 2 late: R2 undefined (NaN), score exp(0.2) - 1. */
static const struct hand_case single = {
    .n = 1,
    .y_true = {10.0},
    .y_pred = {12.0},
    .rmse = 2.0,
    .mae = 2.0,
    .r2 = NAN,
    .nasa = 0.22140275816016985,
};

static void test_empty_is_nan(void **state)
{
    (void)state;
    struct metrics_regression m = {.count = 7};
    metrics_regression_compute(NULL, NULL, 0, &m);
    assert_int_equal(m.count, 0);
    assert_true(isnan(m.rmse) && isnan(m.mae) && isnan(m.r2));
    assert_true(metrics_nasa_score(NULL, NULL, 0) == 0.0);
    struct metrics_running r = {0};
    metrics_running_get(&r, &m);
    assert_int_equal(m.count, 0);
    assert_true(isnan(m.rmse) && isnan(m.mae) && isnan(m.r2));
}

enum { RANDOM_N = 1000 };

static void random_vectors(double *y_true, double *y_pred, size_t n, uint64_t seed)
{
    rng_state = seed;
    for (size_t i = 0; i < n; i++) {
        y_true[i] = 200.0 * rng_uniform();
        y_pred[i] = y_true[i] + 40.0 * (rng_uniform() - 0.45);
    }
}

static void test_against_sklearn(void **state)
{
    (void)state;
    double *t = mem_alloc(RANDOM_N * sizeof(double)), *p = mem_alloc(RANDOM_N * sizeof(double));
    random_vectors(t, p, RANDOM_N, 77);

    char *path = NULL;
    FILE *csv = support_temp_file("tributary_metrics", &path);
    for (size_t i = 0; i < RANDOM_N; i++)
        fprintf(csv, "%.17g,%.17g\n", t[i], p[i]);
    assert_int_equal(fclose(csv), 0);

    static const char script[] =
        "import sys, numpy as np\n"
        "from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score\n"
        "d = np.loadtxt(sys.argv[1], delimiter=\",\", ndmin=2)\n"
        "t, p = d[:, 0], d[:, 1]\n"
        "e = p - t\n"
        "print(repr(float(np.sqrt(mean_squared_error(t, p)))))\n"
        "print(repr(float(mean_absolute_error(t, p))))\n"
        "print(repr(float(r2_score(t, p))))\n"
        "print(repr(float(np.sum(np.where(e < 0, np.exp(-e / 13) - 1, np.exp(e / 10) - 1)))))\n";
    char *out = support_python("-c", script, path, NULL), *cursor = out, *line;
    double want[4];
    size_t got = 0;
    while (got < 4 && (line = support_next_line(&cursor)))
        want[got++] = strtod(line, NULL);
    free(out);
    unlink(path);
    free(path);
    assert_int_equal(got, 4);

    struct metrics_regression m;
    metrics_regression_compute(t, p, RANDOM_N, &m);
    assert_int_equal(m.count, RANDOM_N);
    support_assert_close(m.rmse, want[0], 1e-12, "rmse vs sklearn");
    support_assert_close(m.mae, want[1], 1e-12, "mae vs sklearn");
    support_assert_close(m.r2, want[2], 1e-12, "r2 vs sklearn");
    support_assert_close(metrics_nasa_score(t, p, RANDOM_N), want[3], 1e-12, "nasa vs numpy");
    free(p);
    free(t);
}

static void test_running_equals_batch(void **state)
{
    (void)state;
    double *t = mem_alloc(RANDOM_N * sizeof(double)), *p = mem_alloc(RANDOM_N * sizeof(double));
    random_vectors(t, p, RANDOM_N, 5);

    struct metrics_regression batch, running;
    metrics_regression_compute(t, p, RANDOM_N, &batch);
    struct metrics_running r;
    metrics_running_reset(&r);
    for (size_t i = 0; i < RANDOM_N; i++)
        metrics_running_add(&r, t[i], p[i]);
    metrics_running_get(&r, &running);
    assert_int_equal(running.count, batch.count);
    support_assert_close(running.rmse, batch.rmse, 1e-12, "running rmse");
    support_assert_close(running.mae, batch.mae, 1e-12, "running mae");
    support_assert_close(running.r2, batch.r2, 1e-12, "running r2");
    support_assert_close(metrics_running_nasa_score(&r), metrics_nasa_score(t, p, RANDOM_N), 1e-12,
                         "running nasa");

    /* Two workers' running metrics merged equal one stream's. */
    struct metrics_running a = {0}, b = {0}, empty = {0};
    for (size_t i = 0; i < RANDOM_N; i++)
        metrics_running_add(i < 313 ? &a : &b, t[i], p[i]);
    metrics_running_merge(&a, &empty);
    metrics_running_merge(&empty, &a);
    metrics_running_merge(&empty, &b);
    struct metrics_regression merged;
    metrics_running_get(&empty, &merged);
    assert_int_equal(merged.count, RANDOM_N);
    support_assert_close(merged.rmse, batch.rmse, 1e-12, "merged rmse");
    support_assert_close(merged.mae, batch.mae, 1e-12, "merged mae");
    support_assert_close(merged.r2, batch.r2, 1e-12, "merged r2");
    free(p);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("hand: scikit-learn's r2_score example", test_hand_case, (void *)&sklearn_docs),
        NAMED_CASE("hand: perfect predictions", test_hand_case, (void *)&perfect),
        NAMED_CASE("hand: NASA score, 13 early and 10 late cost e-1 each", test_hand_case,
                   (void *)&asymmetric),
        NAMED_CASE("hand: constant truth predicted exactly has R2 1", test_hand_case,
                   (void *)&constant_exact),
        NAMED_CASE("hand: one pair has R2 NaN", test_hand_case, (void *)&single),
        NAMED_CASE("no pairs: NaN metrics, count 0", test_empty_is_nan, NULL),
        NAMED_CASE("random vector against sklearn.metrics", test_against_sklearn, NULL),
        NAMED_CASE("running and merged running equal batch", test_running_equals_batch, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
