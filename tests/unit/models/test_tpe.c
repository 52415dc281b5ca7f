/* Tests of models/tpe: the space's priors against their closed-form distributions, conditional
 * parameters, seeding and resuming, the TPE models against a numpy/scipy transcription of
 * hyperopt's formulas (tests/unit/models/tpe_reference.py), and TPE against random search on
 * standard test functions with known minima. */
#include "models/tpe.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"
#include "tests/unit/models/tpe_functions.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- spaces ---------------------------------------------------------------------------------- */

/* A space of the rows, each at its own index (fails the test otherwise). */
static struct tpe_space *space_of(const struct tpe_fn_param *defs, size_t n)
{
    char err[256] = "";
    struct tpe_space *space = tpe_fn_space_new(defs, n, err, sizeof err);
    if (!space)
        fail_msg("tpe_space_add: %s", err);
    return space;
}

/* Fails unless v is a value parameter def can take (an independent restatement of the support). */
static void assert_in_support(const struct tpe_param *p, double v)
{
    const double tol = 1e-9;
    bool ok = isfinite(v);
    switch (p->kind) {
    case TPE_UNIFORM:
    case TPE_LOGUNIFORM:
        ok = ok && v >= p->low && v <= p->high;
        break;
    case TPE_QUNIFORM:
    case TPE_QLOGUNIFORM:
        ok = ok && fabs(v / p->q - round(v / p->q)) < tol && v >= p->low - p->q / 2 - tol &&
             v <= p->high + p->q / 2 + tol && (p->kind == TPE_QUNIFORM || v >= 0);
        break;
    case TPE_NORMAL:
        break;
    case TPE_RANDINT:
        ok = ok && v == floor(v) && v >= p->low && v < p->high;
        break;
    case TPE_CHOICE:
        ok = ok && v == floor(v) && v >= 0 && v < (double)p->noptions;
        break;
    }
    if (!ok)
        fail_msg("parameter '%s' (%s) took %.17g, outside its support", p->name,
                 tpe_kind_name(p->kind), v);
}

/* Fails unless exactly the parameters whose conditions hold have values (checked from defs). */
static void assert_activity(const struct tpe_fn_param *defs, size_t n, const double *v)
{
    for (size_t i = 0; i < n; i++) {
        bool active = true;
        for (size_t j = i; defs[j].parent != TPE_ROOT; j = (size_t)defs[j].parent)
            if (v[defs[j].parent] != defs[j].option) {
                active = false;
                break;
            }
        if (active == isnan(v[i]))
            fail_msg("parameter '%s' is %s but its value is %g", defs[i].p.name,
                     active ? "active" : "inactive", v[i]);
        if (active)
            assert_in_support(&defs[i].p, v[i]);
    }
}

static struct tpe_study *study_new(const struct tpe_space *space, enum tpe_algo algo, uint64_t seed,
                                   const struct tpe_options *options)
{
    char err[256] = "";
    struct tpe_study *study = tpe_study_new(space, algo, seed, options, err, sizeof err);
    if (!study)
        fail_msg("tpe_study_new: %s", err);
    return study;
}

static int ask(struct tpe_study *study, double *v, size_t n)
{
    char err[256] = "";
    int id = tpe_ask(study, v, n, err, sizeof err);
    if (id < 0)
        fail_msg("tpe_ask: %s", err);
    return id;
}

static void tell(struct tpe_study *study, int id, enum tpe_status status, double loss)
{
    char err[256] = "";
    int rc = tpe_tell(study, id, status, loss, err, sizeof err);
    if (rc != TB_OK)
        fail_msg("tpe_tell(%d): %s", id, err);
}

/* Runs budget sequential trials of problem pr; returns the best loss, and checks every proposal's
 * support and activity and that no loss is below the known minimum. */
static double run_problem(const struct tpe_fn_problem *pr, const struct tpe_space *space,
                          enum tpe_algo algo, uint64_t seed, int budget)
{
    struct tpe_study *study = study_new(space, algo, seed, NULL);
    double v[TPE_FN_MAX_PARAMS], best = INFINITY;
    for (int t = 0; t < budget; t++) {
        int id = ask(study, v, pr->nparams);
        assert_int_equal(id, t);
        assert_activity(pr->space, pr->nparams, v);
        double loss = pr->f(v);
        if (!(loss >= pr->minimum))
            fail_msg("%s: loss %.17g below the known minimum %.17g", pr->name, loss, pr->minimum);
        best = fmin(best, loss);
        tell(study, id, TPE_OK, loss);
    }
    double best_loss = NAN;
    assert_true(tpe_best(study, NULL, 0, &best_loss) >= 0);
    assert_true(best_loss == best);
    tpe_study_destroy(study);
    return best;
}

/* ---- the space ------------------------------------------------------------------------------- */

static void expect_add_error(struct tpe_space *space, int parent, int option,
                             const struct tpe_param *p, const char *fragment)
{
    char err[256] = "";
    int rc = tpe_space_add(space, parent, option, p, err, sizeof err);
    if (rc != TB_USAGE)
        fail_msg("tpe_space_add('%s') returned %d, want TB_USAGE", p->name ? p->name : "", rc);
    if (!strstr(err, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err, fragment);
}

static void test_space_rejects_bad_definitions(void **state)
{
    (void)state;
    struct tpe_space *space = tpe_space_new();
    char err[256];
    const char *const two[] = {"a", "b"};
    assert_int_equal(
        tpe_space_add(
            space, TPE_FN_ROOT,
            &(struct tpe_param){.name = "c", .kind = TPE_CHOICE, .noptions = 2, .options = two},
            err, sizeof err),
        0);
    assert_int_equal(
        tpe_space_add(space, TPE_FN_ROOT,
                      &(struct tpe_param){.name = "x", .kind = TPE_UNIFORM, .low = 0, .high = 1},
                      err, sizeof err),
        1);
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "u", .kind = TPE_UNIFORM, .low = 2, .high = 1},
                     "finite low < high");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "l", .kind = TPE_LOGUNIFORM, .low = 0, .high = 1},
                     "0 < low < high");
    expect_add_error(
        space, TPE_FN_ROOT,
        &(struct tpe_param){.name = "q", .kind = TPE_QUNIFORM, .low = 0, .high = 1, .q = 0},
        "step q > 0");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "n", .kind = TPE_NORMAL, .mu = 0, .sigma = -1},
                     "sigma > 0");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "r", .kind = TPE_RANDINT, .low = 0.5, .high = 3},
                     "integers low < high");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "e", .kind = TPE_CHOICE, .noptions = 0}, "1 to");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "x", .kind = TPE_UNIFORM, .low = 0, .high = 1},
                     "defined twice");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "", .kind = TPE_UNIFORM, .low = 0, .high = 1},
                     "needs a name");
    expect_add_error(space, 1, 0,
                     &(struct tpe_param){.name = "y", .kind = TPE_UNIFORM, .low = 0, .high = 1},
                     "not an earlier choice");
    expect_add_error(space, 0, 2,
                     &(struct tpe_param){.name = "y", .kind = TPE_UNIFORM, .low = 0, .high = 1},
                     "has no option 2");
    expect_add_error(space, TPE_FN_ROOT,
                     &(struct tpe_param){.name = "w",
                                         .kind = TPE_CHOICE,
                                         .noptions = 2,
                                         .probabilities = (const double[]){-1, 2}},
                     "not finite and >= 0");
    assert_int_equal(tpe_space_size(space), 2);

    /* describe gives back the copies, probabilities normalised; find finds by name */
    assert_int_equal(tpe_space_add(space, 0, 1,
                                   &(struct tpe_param){.name = "p",
                                                       .kind = TPE_CHOICE,
                                                       .noptions = 3,
                                                       .probabilities = (const double[]){1, 1, 2}},
                                   err, sizeof err),
                     2);
    struct tpe_param got;
    int parent = 99, option = 99;
    assert_int_equal(tpe_space_describe(space, 2, &got, &parent, &option), TB_OK);
    assert_string_equal(got.name, "p");
    assert_int_equal(parent, 0);
    assert_int_equal(option, 1);
    assert_true(got.probabilities[0] == 0.25 && got.probabilities[2] == 0.5);
    assert_null(got.options);
    assert_int_equal(tpe_space_describe(space, 0, &got, &parent, &option), TB_OK);
    assert_string_equal(got.options[1], "b");
    assert_int_equal(parent, TPE_ROOT);
    assert_int_equal(tpe_space_describe(space, 3, &got, NULL, NULL), TB_USAGE);
    assert_int_equal(tpe_space_find(space, "x"), 1);
    assert_int_equal(tpe_space_find(space, "nope"), TB_NOTFOUND);

    enum tpe_kind kind;
    for (int k = TPE_UNIFORM; k <= TPE_CHOICE; k++) {
        assert_int_equal(tpe_kind_parse(tpe_kind_name((enum tpe_kind)k), &kind), TB_OK);
        assert_int_equal(kind, k);
    }
    assert_int_equal(tpe_kind_parse("lognormal", &kind), TB_NOTFOUND);

    /* a study needs a non-empty space and sane options */
    struct tpe_space *empty = tpe_space_new();
    assert_null(tpe_study_new(empty, TPE_TPE, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no parameters"));
    struct tpe_options options = tpe_options_default();
    options.gamma = 0;
    assert_null(tpe_study_new(space, TPE_TPE, 1, &options, err, sizeof err));
    assert_non_null(strstr(err, "gamma"));
    tpe_space_destroy(empty);
    tpe_space_destroy(space);
    tpe_space_destroy(NULL);
    tpe_study_destroy(NULL);
}

/* ---- the priors ------------------------------------------------------------------------------ */

#define PRIOR_DRAWS 20000

/* One parameter of each kind, at the root. */
static const double choice_weights[] = {0.5, 0.3, 0.2};
static const struct tpe_fn_param prior_space[] = {
    {TPE_FN_ROOT, {.name = "uniform", .kind = TPE_UNIFORM, .low = -2, .high = 3}},
    {TPE_FN_ROOT, {.name = "loguniform", .kind = TPE_LOGUNIFORM, .low = 1e-4, .high = 10}},
    {TPE_FN_ROOT, {.name = "quniform", .kind = TPE_QUNIFORM, .low = 0.3, .high = 2.2, .q = 0.5}},
    {TPE_FN_ROOT, {.name = "qloguniform", .kind = TPE_QLOGUNIFORM, .low = 1, .high = 100, .q = 10}},
    {TPE_FN_ROOT, {.name = "normal", .kind = TPE_NORMAL, .mu = 3, .sigma = 2}},
    {TPE_FN_ROOT, {.name = "randint", .kind = TPE_RANDINT, .low = -3, .high = 4}},
    {TPE_FN_ROOT,
     {.name = "choice", .kind = TPE_CHOICE, .noptions = 3, .probabilities = choice_weights}},
};

/* Kolmogorov-Smirnov statistic of the sorted sample x against the CDF cdf(x, a, b). */
static double ks_statistic(const double *x, size_t n, double (*cdf)(double, double, double),
                           double a, double b)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double f = cdf(x[i], a, b);
        d = fmax(d, fmax(f - (double)i / (double)n, (double)(i + 1) / (double)n - f));
    }
    return d;
}

static double uniform_cdf(double x, double a, double b)
{
    return (x - a) / (b - a);
}

static double loguniform_cdf(double x, double a, double b)
{
    return log(x / a) / log(b / a);
}

static double normal_cdf(double x, double mu, double sigma)
{
    return 0.5 * erfc(-(x - mu) / (sigma * M_SQRT2));
}

/* Fails unless count is within 5 standard deviations of n * p (a binomial count). */
static void assert_frequency(const char *what, double value, size_t count, size_t n, double p)
{
    double expected = (double)n * p, sd = sqrt((double)n * p * (1 - p));
    if (!(fabs((double)count - expected) <= 5 * sd))
        fail_msg("%s = %g: %zu of %zu draws, expected %.1f +- %.1f", what, value, count, n,
                 expected, 5 * sd);
}

/* Fails unless the draws of a quantised or integer parameter take only the values grid[0..n) and
 * each as often as its probability says. */
static void assert_frequencies(const char *what, const double *draws, size_t ndraws,
                               const double *grid, const double *p, size_t n)
{
    double total = 0;
    for (size_t k = 0; k < n; k++) {
        size_t count = 0;
        for (size_t i = 0; i < ndraws; i++)
            count += draws[i] == grid[k];
        assert_frequency(what, grid[k], count, ndraws, p[k]);
        total += (double)count;
    }
    if (total != (double)ndraws)
        fail_msg("%s: %g of %zu draws are off the grid", what, (double)ndraws - total, ndraws);
}

/* Random search and TPE's startup phase draw from the prior: each kind against its closed form. */
static void test_prior_distributions(void **state)
{
    (void)state;
    size_t np = TPE_FN_COUNT(prior_space);
    struct tpe_space *space = space_of(prior_space, np);
    struct tpe_study *study = study_new(space, TPE_RANDOM, 2024, NULL);
    double *draws = mem_alloc(np * PRIOR_DRAWS * sizeof(double)); /* by parameter */
    double v[TPE_FN_COUNT(prior_space)];
    for (size_t t = 0; t < PRIOR_DRAWS; t++) {
        ask(study, v, np);
        for (size_t i = 0; i < np; i++) {
            assert_in_support(&prior_space[i].p, v[i]);
            draws[i * PRIOR_DRAWS + t] = v[i];
        }
    }
    size_t pending = 0;
    tpe_study_counts(study, &pending, NULL, NULL);
    assert_int_equal(pending, PRIOR_DRAWS);

    /* continuous kinds: KS at the 0.1% level (critical value 1.95 / sqrt(n)) */
    double critical = 1.95 / sqrt((double)PRIOR_DRAWS);
    struct {
        size_t index;
        double (*cdf)(double, double, double);
        double a, b;
    } continuous[] = {
        {0, uniform_cdf, -2, 3}, {1, loguniform_cdf, 1e-4, 10}, {4, normal_cdf, 3, 2}};
    for (size_t c = 0; c < 3; c++) {
        double *x = draws + continuous[c].index * PRIOR_DRAWS;
        qsort(x, PRIOR_DRAWS, sizeof(double), tpe_fn_compare_doubles);
        double d =
            ks_statistic(x, PRIOR_DRAWS, continuous[c].cdf, continuous[c].a, continuous[c].b);
        if (!(d < critical))
            fail_msg("%s: KS statistic %.4f >= %.4f", prior_space[continuous[c].index].p.name, d,
                     critical);
    }
    /* normal: mean and variance too */
    double mean = 0, var = 0, *x = draws + 4 * PRIOR_DRAWS;
    for (size_t i = 0; i < PRIOR_DRAWS; i++)
        mean += x[i] / PRIOR_DRAWS;
    for (size_t i = 0; i < PRIOR_DRAWS; i++)
        var += (x[i] - mean) * (x[i] - mean) / (PRIOR_DRAWS - 1);
    assert_true(fabs(mean - 3) < 5 * 2 / sqrt(PRIOR_DRAWS));
    assert_true(fabs(var - 4) < 5 * 4 * sqrt(2.0 / PRIOR_DRAWS));

    /* quniform(0.3, 2.2, 0.5): round(u / 0.5) * 0.5 takes 0.5 (u < 0.75), 1, 1.5, 2 (u >= 1.75) */
    const double qgrid[] = {0.5, 1.0, 1.5, 2.0};
    const double qp[] = {0.45 / 1.9, 0.5 / 1.9, 0.5 / 1.9, 0.45 / 1.9};
    assert_frequencies("quniform", draws + 2 * PRIOR_DRAWS, PRIOR_DRAWS, qgrid, qp, 4);
    /* qloguniform(1, 100, 10): 0 for x < 5, 10k for x in [10k - 5, 10k + 5), 100 for x >= 95 */
    double lgrid[11], lp[11];
    for (size_t k = 0; k <= 10; k++) {
        double lo = fmax(1, 10.0 * (double)k - 5), hi = fmin(100, 10.0 * (double)k + 5);
        lgrid[k] = 10.0 * (double)k;
        lp[k] = log(hi / lo) / log(100);
    }
    assert_frequencies("qloguniform", draws + 3 * PRIOR_DRAWS, PRIOR_DRAWS, lgrid, lp, 11);
    /* randint(-3, 4): -3 .. 3, each 1/7 */
    const double rgrid[] = {-3, -2, -1, 0, 1, 2, 3};
    const double rp[] = {1. / 7, 1. / 7, 1. / 7, 1. / 7, 1. / 7, 1. / 7, 1. / 7};
    assert_frequencies("randint", draws + 5 * PRIOR_DRAWS, PRIOR_DRAWS, rgrid, rp, 7);
    const double cgrid[] = {0, 1, 2};
    assert_frequencies("choice", draws + 6 * PRIOR_DRAWS, PRIOR_DRAWS, cgrid, choice_weights, 3);

    free(draws);
    tpe_study_destroy(study);
    tpe_space_destroy(space);
}

/* A parameter has a value exactly when every choice above it took its branch, under random
 * search and under TPE, and a branch is taken as often as its option's probability. */
static void test_conditional_parameters(void **state)
{
    (void)state;
    size_t np = TPE_FN_COUNT(tpe_fn_conditional_space);
    struct tpe_space *space = space_of(tpe_fn_conditional_space, np);
    for (int algo = TPE_RANDOM; algo <= TPE_TPE; algo++) {
        struct tpe_study *study = study_new(space, (enum tpe_algo)algo, 7, NULL);
        size_t svm = 0, poly = 0, n = algo == TPE_RANDOM ? 6000 : 150;
        double v[TPE_FN_COUNT(tpe_fn_conditional_space)];
        for (size_t t = 0; t < n; t++) {
            int id = ask(study, v, np);
            assert_activity(tpe_fn_conditional_space, np, v);
            svm += v[0] == 2;
            poly += v[0] == 2 && v[5] == 1;
            tell(study, id, TPE_OK, tpe_fn_conditional(v));
        }
        if (algo == TPE_RANDOM) {
            assert_frequency("family", 2, svm, n, 1.0 / 3);
            assert_frequency("family svm, kernel", 1, poly, n, 1.0 / 6);
        }
        tpe_study_destroy(study);
    }
    tpe_space_destroy(space);
}

/* ---- seeding, order, resuming ---------------------------------------------------------------- */

#define RECORD_TRIALS 60

struct record {
    int id;
    double v[TPE_FN_COUNT(tpe_fn_conditional_space)];
    enum tpe_status status;
    double loss;
};

/* Runs RECORD_TRIALS sequential trials of the conditional problem (every seventh fails). */
static void record_run(const struct tpe_space *space, uint64_t seed, struct record *out)
{
    struct tpe_study *study = study_new(space, TPE_TPE, seed, NULL);
    for (int t = 0; t < RECORD_TRIALS; t++) {
        out[t].id = ask(study, out[t].v, TPE_FN_COUNT(tpe_fn_conditional_space));
        out[t].status = t % 7 == 3 ? TPE_FAILED : TPE_OK;
        out[t].loss = out[t].status == TPE_OK ? tpe_fn_conditional(out[t].v) : NAN;
        tell(study, out[t].id, out[t].status, out[t].loss);
    }
    tpe_study_destroy(study);
}

static bool same_values(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))))
            return false;
    return true;
}

static void test_seed_determines_trials(void **state)
{
    (void)state;
    struct tpe_space *space =
        space_of(tpe_fn_conditional_space, TPE_FN_COUNT(tpe_fn_conditional_space));
    struct record *a = mem_alloc(3 * RECORD_TRIALS * sizeof *a), *b = a + RECORD_TRIALS,
                  *c = b + RECORD_TRIALS;
    record_run(space, 42, a);
    record_run(space, 42, b);
    record_run(space, 43, c);
    size_t differ = 0;
    for (int t = 0; t < RECORD_TRIALS; t++) {
        if (!same_values(a[t].v, b[t].v, TPE_FN_COUNT(tpe_fn_conditional_space)))
            fail_msg("seed 42 twice: trial %d differs", t);
        differ += !same_values(a[t].v, c[t].v, TPE_FN_COUNT(tpe_fn_conditional_space));
    }
    assert_int_equal(differ, RECORD_TRIALS);
    free(a);
    tpe_space_destroy(space);
}

/* Proposals depend on which trials finished, not on the order they were told in, and never on
 * pending trials. */
static void test_tell_order_and_pending(void **state)
{
    (void)state;
    size_t np = TPE_FN_COUNT(tpe_fn_branin_space);
    struct tpe_space *space = space_of(tpe_fn_branin_space, np);
    struct tpe_options options = tpe_options_default();
    options.n_startup = 5;
    struct tpe_study *forward = study_new(space, TPE_TPE, 9, &options);
    struct tpe_study *backward = study_new(space, TPE_TPE, 9, &options);
    double v[2], w[2], loss[8];
    for (int round = 0; round < 4; round++) {
        /* four asks in flight, told forwards in one study and backwards in the other */
        for (int k = 0; k < 4; k++) {
            int id = ask(forward, v, np);
            assert_int_equal(ask(backward, w, np), id);
            assert_true(same_values(v, w, np));
            loss[k] = tpe_fn_branin(v);
        }
        for (int k = 0; k < 4; k++) {
            tell(forward, round * 4 + k, TPE_OK, loss[k]);
            tell(backward, round * 4 + 3 - k, TPE_OK, loss[3 - k]);
        }
    }
    /* with trials pending, the models are those of the finished trials alone */
    for (int k = 0; k < 3; k++)
        ask(forward, v, np);
    size_t pending = 0, ok = 0;
    tpe_study_counts(forward, &pending, &ok, NULL);
    assert_int_equal(pending, 3);
    assert_int_equal(ok, 16);
    char err[256];
    for (size_t i = 0; i < np; i++) {
        double lb1, la1, lb2, la2;
        assert_int_equal(tpe_log_density(forward, i, 1.0, &lb1, &la1, err, sizeof err), TB_OK);
        assert_int_equal(tpe_log_density(backward, i, 1.0, &lb2, &la2, err, sizeof err), TB_OK);
        assert_true(lb1 == lb2 && la1 == la2);
    }
    tpe_study_destroy(backward);
    tpe_study_destroy(forward);
    tpe_space_destroy(space);
}

/* A study rebuilt from the first half of a run's log, replayed in a scrambled order, proposes the
 * second half exactly. */
static void test_replay_resumes_exactly(void **state)
{
    (void)state;
    size_t np = TPE_FN_COUNT(tpe_fn_conditional_space);
    struct tpe_space *space = space_of(tpe_fn_conditional_space, np);
    struct record *run = mem_alloc(RECORD_TRIALS * sizeof *run);
    record_run(space, 5, run);
    const int half = 35;
    struct tpe_study *resumed = study_new(space, TPE_TPE, 5, NULL);
    char err[256] = "";
    for (int k = 0; k < half; k++) {
        int t = (k * 11) % half; /* 11 is prime to 35: every trial once */
        int rc = tpe_replay(resumed, run[t].id, run[t].v, np, run[t].status, run[t].loss, err,
                            sizeof err);
        if (rc != TB_OK)
            fail_msg("tpe_replay(%d): %s", run[t].id, err);
    }
    size_t ok = 0, failed = 0;
    tpe_study_counts(resumed, NULL, &ok, &failed);
    assert_int_equal(ok + failed, half);
    assert_int_equal(failed, 5); /* trials 3, 10, 17, 24, 31 */
    double v[TPE_FN_COUNT(tpe_fn_conditional_space)];
    for (int t = half; t < RECORD_TRIALS; t++) {
        int id = ask(resumed, v, np);
        assert_int_equal(id, t);
        if (!same_values(v, run[t].v, np))
            fail_msg("resumed trial %d differs from the uninterrupted run", t);
        tell(resumed, id, run[t].status, run[t].loss);
    }
    free(run);
    tpe_study_destroy(resumed);
    tpe_space_destroy(space);
}

static void expect_status(int rc, int want, const char *err, const char *fragment)
{
    if (rc != want)
        fail_msg("returned %d (%s), want %d; message: %s", rc, tb_strerror(rc), want, err);
    if (!strstr(err, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err, fragment);
}

static void test_tell_and_replay_errors(void **state)
{
    (void)state;
    size_t np = TPE_FN_COUNT(tpe_fn_conditional_space);
    struct tpe_space *space = space_of(tpe_fn_conditional_space, np);
    struct tpe_study *study = study_new(space, TPE_TPE, 1, NULL);
    char err[256] = "";
    double v[TPE_FN_COUNT(tpe_fn_conditional_space)];
    expect_status(tpe_ask(study, v, np - 1, err, sizeof err), TB_USAGE, err, "room for 8 values");
    int id = ask(study, v, np);
    expect_status(tpe_tell(study, 5, TPE_OK, 1.0, err, sizeof err), TB_NOTFOUND, err, "no trial 5");
    expect_status(tpe_tell(study, id, TPE_OK, NAN, err, sizeof err), TB_USAGE, err,
                  "as failed instead");
    assert_int_equal(tpe_tell(study, id, TPE_OK, 1.0, err, sizeof err), TB_OK);
    expect_status(tpe_tell(study, id, TPE_OK, 1.0, err, sizeof err), TB_USAGE, err, "already told");

    /* svm with rbf: family 2, C, kernel 0, gamma, scale */
    double good[] = {2, NAN, NAN, NAN, 10, 0, 0.01, NAN, 0.25};
    expect_status(tpe_replay(study, id, good, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "already in the study");
    double extra[] = {2, NAN, NAN, NAN, 10, 0, 0.01, 4, 0.25};
    expect_status(tpe_replay(study, 7, extra, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "'degree' is inactive");
    double missing[] = {2, NAN, NAN, NAN, 10, 0, NAN, NAN, 0.25};
    expect_status(tpe_replay(study, 7, missing, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "'gamma' has no value");
    double outside[] = {2, NAN, NAN, NAN, 1e4, 0, 0.01, NAN, 0.25};
    expect_status(tpe_replay(study, 7, outside, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "'C' (loguniform) cannot take the value 10000");
    double off_grid[] = {1, NAN, 2.5, 0.1, NAN, NAN, NAN, NAN, 0.25};
    expect_status(tpe_replay(study, 7, off_grid, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "'depth' (quniform) cannot take the value 2.5");
    expect_status(tpe_replay(study, -1, good, np, TPE_OK, 0.5, err, sizeof err), TB_USAGE, err,
                  "not in 0..");
    /* a valid replay beyond the next id moves the ids on */
    assert_int_equal(tpe_replay(study, 7, good, np, TPE_FAILED, NAN, err, sizeof err), TB_OK);
    assert_int_equal(ask(study, v, np), 8);
    double best[TPE_FN_COUNT(tpe_fn_conditional_space)], loss = 0;
    assert_int_equal(tpe_best(study, best, np, &loss), 0);
    assert_true(loss == 1.0);
    expect_status(tpe_log_density(study, 2, 2.5, &loss, &loss, err, sizeof err), TB_USAGE, err,
                  "cannot take");
    tpe_study_destroy(study);
    tpe_space_destroy(space);
}

/* ---- the models against the reference ----------------------------------------------------------
 */

/* One parameter of each kind, some conditional, for the model cross-check. */
static const char *const arms[] = {"a", "b", "c"};
static const double arm_weights[] = {0.2, 0.5, 0.3};
static const struct tpe_fn_param model_space[] = {
    {TPE_FN_ROOT, {.name = "u", .kind = TPE_UNIFORM, .low = -2, .high = 3}},
    {TPE_FN_ROOT, {.name = "lu", .kind = TPE_LOGUNIFORM, .low = 1e-4, .high = 10}},
    {TPE_FN_ROOT, {.name = "qu", .kind = TPE_QUNIFORM, .low = 0.5, .high = 9.5, .q = 0.5}},
    {TPE_FN_ROOT, {.name = "qlu", .kind = TPE_QLOGUNIFORM, .low = 1, .high = 300, .q = 5}},
    {TPE_FN_ROOT, {.name = "n", .kind = TPE_NORMAL, .mu = 3, .sigma = 2}},
    {TPE_FN_ROOT, {.name = "ri", .kind = TPE_RANDINT, .low = -3, .high = 9}},
    {TPE_FN_ROOT,
     {.name = "arm",
      .kind = TPE_CHOICE,
      .noptions = 3,
      .options = arms,
      .probabilities = arm_weights}},
    {6, 1, {.name = "b_u", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {6, 2, {.name = "c_ri", .kind = TPE_RANDINT, .low = 0, .high = 5}},
};

/* A loss with ties, so that the stable ranking matters. */
static double model_loss(const double *v)
{
    double loss =
        tpe_fn_square(v[0] - 1) + tpe_fn_square(log10(v[1]) + 1) + 0.1 * tpe_fn_square(v[2] - 4);
    loss +=
        1e-3 * tpe_fn_square(v[3] - 50) + tpe_fn_square(v[4] - 2) + 0.1 * tpe_fn_square(v[5] - 2);
    loss += v[6] == 1 ? tpe_fn_square(v[7] - 0.3) : v[6] == 2 ? 0.2 * v[8] : 1;
    return round(loss * 4) / 4;
}

/* Writes the space, options, finished trials and probes to a file, runs the reference on it and
 * compares its log l(x) and log g(x) with tpe_log_density's. */
static void check_models(const struct tpe_options *options, int ntrials, uint64_t seed)
{
    size_t np = TPE_FN_COUNT(model_space);
    struct tpe_space *space = space_of(model_space, np);
    struct tpe_study *study = study_new(space, TPE_RANDOM, seed, options);
    char *path = NULL;
    FILE *fp = support_temp_file("tpe_reference", &path);
    fprintf(fp, "options %zu %.17g %zu %zu %.17g %zu\n", options->n_startup, options->gamma,
            options->max_below, options->n_candidates, options->prior_weight,
            options->linear_forgetting);
    for (size_t i = 0; i < np; i++) {
        const struct tpe_param *p = &model_space[i].p;
        fprintf(fp, "param %s %.17g %.17g %.17g %.17g %.17g %zu", tpe_kind_name(p->kind), p->low,
                p->high, p->q, p->mu, p->sigma, p->kind == TPE_CHOICE ? p->noptions : 0);
        for (size_t k = 0; p->kind == TPE_CHOICE && k < p->noptions; k++)
            fprintf(fp, " %.17g",
                    p->probabilities ? p->probabilities[k] : 1.0 / (double)p->noptions);
        fputc('\n', fp);
    }
    double v[TPE_FN_COUNT(model_space)];
    for (int t = 0; t < ntrials; t++) {
        int id = ask(study, v, np);
        if (t % 9 == 4) /* leave some pending: the models must ignore them */
            continue;
        enum tpe_status status = t % 13 == 6 ? TPE_FAILED : TPE_OK;
        double loss = model_loss(v);
        tell(study, id, status, loss);
        fprintf(fp, "trial %d %s %.17g", id, status == TPE_OK ? "ok" : "failed", loss);
        for (size_t i = 0; i < np; i++)
            fprintf(fp, " %.17g", v[i]);
        fputc('\n', fp);
    }
    /* probes: a spread of values of each parameter, edges included */
    struct {
        size_t index;
        double values[6];
        size_t n;
    } probes[] = {{0, {-2, -1.3, 0.2, 1.0, 2.9, 3}, 6},
                  {1, {1e-4, 3e-3, 0.05, 0.1, 2, 10}, 6},
                  {2, {0.5, 1, 5, 6.5, 9.5}, 5},
                  {3, {0, 5, 50, 100, 295, 300}, 6},
                  {4, {-5, 0, 2, 3.3, 7, 12}, 6},
                  {5, {-3, 0, 2, 5, 8}, 5},
                  {6, {0, 1, 2}, 3},
                  {7, {0, 0.3, 0.9, 1}, 4},
                  {8, {0, 2, 4}, 3}};
    size_t nprobes = 0;
    double(*ours)[2] = mem_alloc(64 * sizeof *ours);
    char err[256] = "";
    for (size_t p = 0; p < TPE_FN_COUNT(probes); p++)
        for (size_t k = 0; k < probes[p].n; k++) {
            double x = probes[p].values[k];
            fprintf(fp, "probe %zu %.17g\n", probes[p].index, x);
            int rc = tpe_log_density(study, probes[p].index, x, &ours[nprobes][0],
                                     &ours[nprobes][1], err, sizeof err);
            if (rc != TB_OK)
                fail_msg("tpe_log_density(%zu, %g): %s", probes[p].index, x, err);
            nprobes++;
        }
    assert_int_equal(fclose(fp), 0);

    char *out = support_python("tests/unit/models/tpe_reference.py", path, NULL);
    char *cursor = out, *line;
    for (size_t i = 0; i < nprobes; i++) {
        line = support_next_line(&cursor);
        if (!line)
            fail_msg("the reference printed %zu lines, want %zu", i, nprobes);
        double want[2];
        if (sscanf(line, "%lf %lf", &want[0], &want[1]) != 2)
            fail_msg("reference line \"%s\"", line);
        char what[64];
        for (int side = 0; side < 2; side++) {
            snprintf(what, sizeof what, "probe %zu, log %s", i, side ? "g" : "l");
            support_assert_close_floor(ours[i][side], want[side], 1e-9, 1e-9, what);
        }
    }
    free(out);
    free(ours);
    unlink(path);
    free(path);
    tpe_study_destroy(study);
    tpe_space_destroy(space);
}

/* hyperopt's defaults: 2 to 3 good trials of ~70, forgetting among the bad. */
static void test_models_match_reference_defaults(void **state)
{
    (void)state;
    struct tpe_options options = tpe_options_default();
    check_models(&options, 80, 11);
}

/* Other settings: many good trials with their own forgetting, a heavier prior. */
static void test_models_match_reference_options(void **state)
{
    (void)state;
    struct tpe_options options = {.n_startup = 3,
                                  .gamma = 0.9,
                                  .max_below = 12,
                                  .n_candidates = 5,
                                  .prior_weight = 2.5,
                                  .linear_forgetting = 8};
    check_models(&options, 60, 12);
}

/* With no finished trial both models are the prior. */
static void test_models_without_history_are_the_prior(void **state)
{
    (void)state;
    struct tpe_options options = tpe_options_default();
    check_models(&options, 0, 13);
}

/* ---- optimisation ------------------------------------------------------------------------------
 */

#define SEEDS  20
#define BUDGET 100

/* TPE's median best loss over 20 seeds at 100 trials is lower than random search's, and nothing
 * found is below the known minimum (which f reaches at the published argmin). */
static void check_beats_random(const struct tpe_fn_problem *pr)
{
    double at_argmin = pr->f(pr->argmin);
    support_assert_close_floor(at_argmin, pr->minimum, 1e-5, 1e-9, pr->name);
    struct tpe_space *space = space_of(pr->space, pr->nparams);
    double tpe[SEEDS], random[SEEDS];
    for (int s = 0; s < SEEDS; s++) {
        random[s] = run_problem(pr, space, TPE_RANDOM, 1000 + (uint64_t)s, BUDGET);
        tpe[s] = run_problem(pr, space, TPE_TPE, 1000 + (uint64_t)s, BUDGET);
    }
    double tpe_median = tpe_fn_median(tpe, SEEDS), random_median = tpe_fn_median(random, SEEDS);
    print_message("%-12s median best of %d seeds at %d trials: TPE %.6g, random %.6g\n", pr->name,
                  SEEDS, BUDGET, tpe_median, random_median);
    if (!(tpe_median < random_median))
        fail_msg("%s: TPE's median best %.6g is not below random search's %.6g", pr->name,
                 tpe_median, random_median);
    tpe_space_destroy(space);
}

/* A case of test_tpe_beats_random on problem tpe_fn_problems[index]. */
#define BEATS_RANDOM_CASE(name, index)                                                             \
    {                                                                                              \
        name, test_tpe_beats_random, NULL, NULL, (void *)&tpe_fn_problems[index]                   \
    }

/* The case's state is the problem (a tpe_fn_problems entry). */
static void test_tpe_beats_random(void **state)
{
    check_beats_random(*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_rejects_bad_definitions),
        cmocka_unit_test(test_prior_distributions),
        cmocka_unit_test(test_conditional_parameters),
        cmocka_unit_test(test_seed_determines_trials),
        cmocka_unit_test(test_tell_order_and_pending),
        cmocka_unit_test(test_replay_resumes_exactly),
        cmocka_unit_test(test_tell_and_replay_errors),
        cmocka_unit_test(test_models_match_reference_defaults),
        cmocka_unit_test(test_models_match_reference_options),
        cmocka_unit_test(test_models_without_history_are_the_prior),
        BEATS_RANDOM_CASE("test_tpe_beats_random_branin", TPE_FN_BRANIN),
        BEATS_RANDOM_CASE("test_tpe_beats_random_sphere", TPE_FN_SPHERE4),
        BEATS_RANDOM_CASE("test_tpe_beats_random_hartmann6", TPE_FN_HARTMANN6),
        BEATS_RANDOM_CASE("test_tpe_beats_random_conditional", TPE_FN_CONDITIONAL),
        BEATS_RANDOM_CASE("test_tpe_beats_random_mixed", TPE_FN_MIXED),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
