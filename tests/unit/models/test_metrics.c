/* Unit tests for models/metrics: hand-computed cases, scikit-learn, running versus batch; and
 * classification metrics against scikit-learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/metrics.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Classification. Each problem is written to a CSV file (label, then one probability per class)
 * and scikit-learn computes the reference from it: the predicted class as numpy's argmax (the
 * first on ties), the binary metrics of classes[1], macro averages with scikit-learn's default
 * labels, roc_auc_score (NaN where it raises ValueError), log_loss with labels. Multiclass
 * roc_auc_score and log_loss need sorted labels, so the script sorts the classes and the
 * columns with them after taking the argmax in the given order. */
static const char classification_script[] =
    "import sys, numpy as np\n"
    "from sklearn.metrics import accuracy_score, precision_score, recall_score, f1_score\n"
    "from sklearn.metrics import roc_auc_score, log_loss\n"
    "d = np.loadtxt(sys.argv[1], delimiter=\",\", ndmin=2)\n"
    "classes = np.array([float(c) for c in sys.argv[2].split(\",\")])\n"
    "y, p = d[:, 0], d[:, 1:]\n"
    "pred = classes[np.argmax(p, axis=1)]\n"
    "if len(classes) == 2:\n"
    "    kw = dict(pos_label=classes[1], zero_division=0)\n"
    "else:\n"
    "    kw = dict(average=\"macro\", zero_division=0)\n"
    "order = np.argsort(classes)\n"
    "try:\n"
    "    if len(classes) == 2:\n"
    "        auc = roc_auc_score(y == classes[1], p[:, 1])\n"
    "    else:\n"
    "        auc = roc_auc_score(y, p[:, order], multi_class=\"ovr\", average=\"macro\",\n"
    "                            labels=classes[order])\n"
    "except ValueError as e:\n"
    "    print(\"roc_auc_score:\", e, file=sys.stderr)\n"
    "    auc = float(\"nan\")\n"
    "for v in (accuracy_score(y, pred), precision_score(y, pred, **kw),\n"
    "          recall_score(y, pred, **kw), f1_score(y, pred, **kw), auc,\n"
    "          log_loss(y, p[:, order], labels=classes[order])):\n"
    "    print(repr(float(v)))\n";

enum problem_kind {
    PROBLEM_TIED,        /* integer weights normalised: many tied scores and tied argmaxes */
    PROBLEM_PERFECT,     /* one-hot on the true class: probabilities 0 and 1 */
    PROBLEM_CONSTANT,    /* every row uniform: every argmax a tie, every score a tie */
    PROBLEM_ONE_CLASS,   /* tied weights, but every label classes[0] */
    PROBLEM_CONFIDENT,   /* one-hot, on a wrong class in every third row: log(0) clipped */
    PROBLEM_UNNORMAL,    /* binary rows that do not sum to 1: log_loss renormalises */
    PROBLEM_CLASS_ABSENT /* the last class never true and never predicted */
};

struct classification_case {
    enum problem_kind kind;
    size_t nclasses, n;
    double classes[4];
    uint64_t seed;
    int auc_undefined; /* 1 when scikit-learn raises and the AUC must be NaN */
};

/* Fills labels and row-major probabilities for the case. */
static void classification_problem(const struct classification_case *c, double *y, double *p)
{
    size_t k = c->nclasses;
    rng_state = c->seed;
    for (size_t i = 0; i < c->n; i++) {
        size_t label = (size_t)(rng_uniform() * (double)k);
        if (c->kind == PROBLEM_ONE_CLASS)
            label = 0;
        if (c->kind == PROBLEM_CLASS_ABSENT)
            label = (size_t)(rng_uniform() * (double)(k - 1));
        y[i] = c->classes[label];
        double *row = p + i * k, sum = 0.0;
        for (size_t j = 0; j < k; j++) {
            switch (c->kind) {
            case PROBLEM_TIED:
            case PROBLEM_ONE_CLASS:
                row[j] = floor(5.0 * rng_uniform()) + (j == label ? 2.0 : 0.0);
                break;
            case PROBLEM_CLASS_ABSENT:
                row[j] = j == k - 1 ? 0.0 : floor(5.0 * rng_uniform()) + (j == label ? 2.0 : 0.0);
                break;
            case PROBLEM_PERFECT:
                row[j] = j == label ? 1.0 : 0.0;
                break;
            case PROBLEM_CONFIDENT:
                row[j] = j == (i % 3 == 0 ? (label + 1) % k : label) ? 1.0 : 0.0;
                break;
            case PROBLEM_CONSTANT:
                row[j] = 1.0;
                break;
            case PROBLEM_UNNORMAL:
                row[j] = 0.05 + floor(10.0 * rng_uniform()) / 10.0;
                break;
            }
            sum += row[j];
        }
        if (c->kind != PROBLEM_UNNORMAL)
            for (size_t j = 0; j < k; j++)
                row[j] /= sum;
    }
}

static void test_classification_vs_sklearn(void **state)
{
    const struct classification_case *c = *state;
    size_t k = c->nclasses;
    double *y = mem_alloc(c->n * sizeof(double)), *p = mem_alloc(c->n * k * sizeof(double));
    classification_problem(c, y, p);

    char *path = NULL;
    FILE *csv = support_temp_file("tributary_metrics", &path);
    for (size_t i = 0; i < c->n; i++) {
        fprintf(csv, "%.17g", y[i]);
        for (size_t j = 0; j < k; j++)
            fprintf(csv, ",%.17g", p[i * k + j]);
        fputc('\n', csv);
    }
    assert_int_equal(fclose(csv), 0);
    char classes[256] = "";
    for (size_t j = 0; j < k; j++)
        snprintf(classes + strlen(classes), sizeof(classes) - strlen(classes), "%s%.17g",
                 j ? "," : "", c->classes[j]);

    char *out = support_python("-c", classification_script, path, classes, NULL), *cursor = out;
    char *line;
    double want[6];
    size_t got = 0;
    while (got < 6 && (line = support_next_line(&cursor)))
        want[got++] = strtod(line, NULL);
    free(out);
    unlink(path);
    free(path);
    assert_int_equal(got, 6);

    struct metrics_classification m;
    metrics_classification_compute(y, p, c->classes, k, c->n, &m);
    assert_int_equal(m.count, c->n);
    assert_int_equal(m.nclasses, k);
    support_assert_close(m.accuracy, want[0], 1e-12, "accuracy vs accuracy_score");
    support_assert_close(m.precision, want[1], 1e-12, "precision vs precision_score");
    support_assert_close(m.recall, want[2], 1e-12, "recall vs recall_score");
    support_assert_close(m.f1, want[3], 1e-12, "f1 vs f1_score");
    if (c->auc_undefined) {
        assert_true(isnan(want[4]));
        if (!isnan(m.auc))
            fail_msg("auc: got %.17g, want NaN (roc_auc_score refuses)", m.auc);
    } else {
        support_assert_close(m.auc, want[4], 1e-12, "auc vs roc_auc_score");
    }
    support_assert_close(m.log_loss, want[5], 1e-12, "log_loss vs log_loss");
    free(p);
    free(y);
}

static const struct classification_case binary_tied = {PROBLEM_TIED, 2, 1000, {-1.0, 3.0}, 101, 0};
static const struct classification_case binary_tied_unsorted = {PROBLEM_TIED, 2,   777,
                                                                {1.0, 0.0},   102, 0};
static const struct classification_case multi_tied = {PROBLEM_TIED,         4,   1000,
                                                      {0.0, 2.0, 5.0, 7.0}, 103, 0};
static const struct classification_case multi_tied_unsorted = {PROBLEM_TIED,          4,   999,
                                                               {7.0, -2.0, 0.0, 3.0}, 104, 0};
static const struct classification_case binary_perfect = {PROBLEM_PERFECT, 2,   200,
                                                          {0.0, 1.0},      105, 0};
static const struct classification_case multi_perfect = {PROBLEM_PERFECT,      4,   200,
                                                         {0.0, 1.0, 2.0, 3.0}, 106, 0};
static const struct classification_case binary_constant = {PROBLEM_CONSTANT, 2,   100,
                                                           {0.0, 1.0},       107, 0};
static const struct classification_case multi_constant = {PROBLEM_CONSTANT,     4,   100,
                                                          {0.0, 1.0, 2.0, 3.0}, 108, 0};
static const struct classification_case binary_one_class = {PROBLEM_ONE_CLASS, 2,   50,
                                                            {0.0, 1.0},        109, 1};
static const struct classification_case multi_one_class = {PROBLEM_ONE_CLASS,    4,   50,
                                                           {0.0, 1.0, 2.0, 3.0}, 110, 1};
static const struct classification_case binary_confident = {PROBLEM_CONFIDENT, 2,   300,
                                                            {0.0, 1.0},        111, 0};
static const struct classification_case multi_confident = {PROBLEM_CONFIDENT,    4,   300,
                                                           {0.0, 1.0, 2.0, 3.0}, 112, 0};
static const struct classification_case binary_unnormalised = {PROBLEM_UNNORMAL, 2,   500,
                                                               {0.0, 1.0},       113, 0};
static const struct classification_case multi_class_absent = {PROBLEM_CLASS_ABSENT, 4,   400,
                                                              {0.0, 1.0, 2.0, 3.0}, 114, 1};

/* scikit-learn's roc_curve example, y (0, 0, 1, 1) scored (0.1, 0.4, 0.35, 0.8): of the four
 * positive-negative pairs three are ordered right, AUC 3/4. Predicted positive is only the last
 * row (0.8 > 0.2), so accuracy 3/4, precision 1/1, recall 1/2, F1 2 * 1 * 0.5 / 1.5. */
static void test_classification_hand(void **state)
{
    (void)state;
    const double classes[2] = {0.0, 1.0}, y[4] = {0, 0, 1, 1};
    const double p[8] = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
    struct metrics_classification m;
    metrics_classification_compute(y, p, classes, 2, 4, &m);
    assert_int_equal(m.count, 4);
    assert_int_equal(m.nclasses, 2);
    support_assert_close(m.accuracy, 0.75, 1e-15, "accuracy");
    support_assert_close(m.precision, 1.0, 1e-15, "precision");
    support_assert_close(m.recall, 0.5, 1e-15, "recall");
    support_assert_close(m.f1, 2.0 / 3.0, 1e-15, "f1");
    support_assert_close(m.auc, 0.75, 1e-15, "auc");
    support_assert_close(m.log_loss, -(log(0.9) + log(0.6) + log(0.35) + log(0.8)) / 4.0, 1e-14,
                         "log_loss");

    /* A positive and a negative with one score: the pair counts half. */
    const double tie_p[4] = {0.5, 0.5, 0.5, 0.5}, tie_y[2] = {0, 1};
    metrics_classification_compute(tie_y, tie_p, classes, 2, 2, &m);
    support_assert_close(m.auc, 0.5, 1e-15, "tied auc");
    support_assert_close(m.log_loss, log(2.0), 1e-15, "tied log_loss");
}

static void test_classification_degenerate(void **state)
{
    (void)state;
    const double classes[3] = {0.0, 1.0, 2.0}, y[2] = {0.0, 5.0};
    const double p[6] = {0.2, 0.3, 0.5, 0.1, 0.1, 0.8};
    struct metrics_classification m = {.count = 9, .nclasses = 9};
    struct {
        const char *what;
        const double *y;
        size_t nclasses, n;
    } cases[] = {
        {"no rows", y, 3, 0},
        {"one class", y, 1, 1},
        {"a label that is not a class", y, 3, 2},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        metrics_classification_compute(cases[c].y, p, classes, cases[c].nclasses, cases[c].n, &m);
        if (m.count != cases[c].n || m.nclasses != cases[c].nclasses)
            fail_msg("%s: count %zu, nclasses %zu", cases[c].what, m.count, m.nclasses);
        if (!(isnan(m.accuracy) && isnan(m.precision) && isnan(m.recall) && isnan(m.f1) &&
              isnan(m.auc) && isnan(m.log_loss)))
            fail_msg("%s: not every metric is NaN (accuracy %g, auc %g)", cases[c].what, m.accuracy,
                     m.auc);
    }
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
        NAMED_CASE("classification, hand: roc_curve example and a tied pair",
                   test_classification_hand, NULL),
        NAMED_CASE("classification: no rows, one class, unknown label give NaN",
                   test_classification_degenerate, NULL),
        NAMED_CASE("classification vs sklearn: binary, tied scores", test_classification_vs_sklearn,
                   (void *)&binary_tied),
        NAMED_CASE("classification vs sklearn: binary, positive class sorts first",
                   test_classification_vs_sklearn, (void *)&binary_tied_unsorted),
        NAMED_CASE("classification vs sklearn: 4 classes, tied scores",
                   test_classification_vs_sklearn, (void *)&multi_tied),
        NAMED_CASE("classification vs sklearn: 4 classes given unsorted",
                   test_classification_vs_sklearn, (void *)&multi_tied_unsorted),
        NAMED_CASE("classification vs sklearn: binary, perfect (p 0 and 1)",
                   test_classification_vs_sklearn, (void *)&binary_perfect),
        NAMED_CASE("classification vs sklearn: 4 classes, perfect (p 0 and 1)",
                   test_classification_vs_sklearn, (void *)&multi_perfect),
        NAMED_CASE("classification vs sklearn: binary, constant predictions",
                   test_classification_vs_sklearn, (void *)&binary_constant),
        NAMED_CASE("classification vs sklearn: 4 classes, constant predictions",
                   test_classification_vs_sklearn, (void *)&multi_constant),
        NAMED_CASE("classification vs sklearn: binary, one class present, AUC NaN",
                   test_classification_vs_sklearn, (void *)&binary_one_class),
        NAMED_CASE("classification vs sklearn: 4 classes, one class present, AUC NaN",
                   test_classification_vs_sklearn, (void *)&multi_one_class),
        NAMED_CASE("classification vs sklearn: binary, confidently wrong (log-loss clipping)",
                   test_classification_vs_sklearn, (void *)&binary_confident),
        NAMED_CASE("classification vs sklearn: 4 classes, confidently wrong (log-loss clipping)",
                   test_classification_vs_sklearn, (void *)&multi_confident),
        NAMED_CASE("classification vs sklearn: binary rows not summing to 1",
                   test_classification_vs_sklearn, (void *)&binary_unnormalised),
        NAMED_CASE("classification vs sklearn: a class never true nor predicted",
                   test_classification_vs_sklearn, (void *)&multi_class_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
