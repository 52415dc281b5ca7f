/* Unit tests for models/online: RLS against ridge, FTRL against scikit-learn, anomaly scores and
 * Holt RUL against independent numpy code, batch = loop of steps, parameters and state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/online.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char reference_script[] = "tests/unit/models/online_reference.py";

/* --- helpers ---------------------------------------------------------------------------------- */

static struct online_model *model_or_fail(const struct online_params *p, size_t nfeatures)
{
    char err[256] = "";
    struct online_model *m = online_new(p, nfeatures, err, sizeof(err));
    if (!m)
        fail_msg("online_new(%s, %zu): %s", online_kind_name(p->kind), nfeatures, err);
    return m;
}

static double *new_state(const struct online_model *m)
{
    double *state = mem_alloc(online_state_len(m) * sizeof(double));
    online_state_init(m, state);
    return state;
}

/* Writes n rows of ncols doubles (row-major) to a new CSV file; the caller unlinks and frees the
 * returned path. */
static char *write_csv(const double *rows, size_t n, size_t ncols)
{
    char *path = NULL;
    FILE *fp = support_temp_file("tributary_online", &path);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ncols; j++)
            fprintf(fp, "%.17g%c", rows[i * ncols + j], j + 1 < ncols ? ',' : '\n');
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Runs the reference script: command on the CSV at path with up to 6 more arguments (NULL ends
 * them early). Returns its output; the caller frees it. */
static char *run_reference(const char *command, const char *path, const char *a1, const char *a2,
                           const char *a3, const char *a4, const char *a5, const char *a6)
{
    if (access(reference_script, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", reference_script);
    return support_python(reference_script, command, path, a1, a2, a3, a4, a5, a6, NULL);
}

/* Reads the count numbers of the output line "name v1 v2 ..." into values; fails the test when
 * the line is missing or holds another number of values. */
static void reference_values(const char *output, const char *name, double *values, size_t count)
{
    char *copy = mem_strdup(output), *cursor = copy, *line;
    size_t namelen = strlen(name);
    bool found = false;
    while ((line = support_next_line(&cursor))) {
        if (strncmp(line, name, namelen) != 0 || line[namelen] != ' ')
            continue;
        found = true;
        char *p = line + namelen, *end = NULL;
        size_t got = 0;
        for (double v = strtod(p, &end); end != p; v = strtod(p, &end)) {
            if (got < count)
                values[got] = v;
            got++;
            p = end;
        }
        if (got != count)
            fail_msg("reference line \"%s\" has %zu values, want %zu", name, got, count);
        break;
    }
    free(copy);
    if (!found)
        fail_msg("reference output lacks a line \"%s\":\n%s", name, output);
}

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Fails unless every got[i] is within rel of want[i], relative to max(|got|, |want|) or to the
 * largest |want| for values near zero. */
static void assert_vector_close(const double *got, const double *want, size_t n, double rel,
                                const char *what)
{
    double floor = rel * max_abs(want, n);
    for (size_t i = 0; i < n; i++) {
        char label[96];
        snprintf(label, sizeof(label), "%s [%zu]", what, i);
        support_assert_close_floor(got[i], want[i], rel, floor, label);
    }
}

static char *format_double(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.17g", v);
    return buf;
}

/* Fisher-Yates shuffle of the indices 0..n-1 with the support generator. */
static void shuffle(size_t *order, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(support_rng_uniform() * (double)i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* --- RLS -------------------------------------------------------------------------------------- */

/* Rows of p correlated features with different scales, label = a linear function plus noise and
 * (when with_offset) a random offset per row: n x (p + 2) as [x, y, offset]. */
static double *make_regression_stream(size_t n, size_t p, uint64_t seed, bool with_offset)
{
    double *rows = mem_alloc(n * (p + 2) * sizeof(double));
    support_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        double *r = rows + i * (p + 2), common = support_rng_normal(), y = 3.0;
        for (size_t j = 0; j < p; j++) {
            r[j] =
                (1.0 + (double)j) * (0.6 * support_rng_normal() + 0.4 * common) + 0.5 * (double)j;
            y += (j % 2 ? -1.0 : 1.0) * (double)(j + 1) / (double)p * r[j];
        }
        r[p] = y + 0.3 * support_rng_normal();
        r[p + 1] = with_offset ? 2.0 * support_rng_normal() : 0.0;
    }
    return rows;
}

/* Streams rows [x, y, offset] through RLS and returns the final state (the caller frees it). */
static double *rls_run(const struct online_model *m, const double *rows, size_t n)
{
    size_t p = online_nfeatures(m);
    double *state = new_state(m);
    for (size_t i = 0; i < n; i++) {
        const double *r = rows + i * (p + 2);
        online_step(m, state, r, r[p], r[p + 1]);
    }
    assert_true(online_learned(m, state) == (double)n);
    return state;
}

/* Compares the weights of RLS over rows with the reference's closed form and, for forgetting 1,
 * scikit-learn's Ridge on [X, 1]: each to 1e-10 relative (of the largest weight near zero). */
static void rls_compare(const double *rows, size_t n, size_t p, double delta, double forgetting)
{
    struct online_params params;
    online_params_default(&params, ONLINE_RLS);
    params.delta = delta;
    params.forgetting = forgetting;
    struct online_model *m = model_or_fail(&params, p);
    double *state = rls_run(m, rows, n);

    char *path = write_csv(rows, n, p + 2), a1[32], a2[32];
    char *out = run_reference("rls", path, format_double(a1, sizeof(a1), delta),
                              format_double(a2, sizeof(a2), forgetting), NULL, NULL, NULL, NULL);
    double *want = mem_alloc((p + 1) * sizeof(double));
    reference_values(out, "closed", want, p + 1);
    assert_vector_close(state + 1, want, p + 1, 1e-10, "rls weight vs closed form");
    if (forgetting == 1.0) {
        reference_values(out, "sklearn", want, p + 1);
        assert_vector_close(state + 1, want, p + 1, 1e-10, "rls weight vs sklearn Ridge");
    }
    free(want);
    free(out);
    unlink(path);
    free(path);
    free(state);
    online_destroy(m);
}

static void test_rls_synthetic_equals_ridge(void **state)
{
    (void)state;
    enum { N = 3000, P = 16 };
    double *rows = make_regression_stream(N, P, 101, true);
    rls_compare(rows, N, P, 1.0, 1.0);
    rls_compare(rows, N, P, 25.0, 1.0);
    free(rows);
}

/* The 16 columns of C-MAPSS FD001 that vary: settings 1 and 2 and sensors 2, 3, 4, 7, 8, 9, 11,
 * 12, 13, 14, 15, 17, 20, 21 (file columns 2, 3, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 19, 21, 24,
 * 25); the label is RUL = last cycle of the unit - cycle. Reads the first n rows, standardises
 * each column over them (mean and population std) and returns [x, y, 0] rows. */
static double *read_fd001_stream(size_t n)
{
    enum { COLS = SUPPORT_FD001_COLS, P = 16 };
    static const size_t columns[P] = {2, 3, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 19, 21, 24, 25};
    size_t nall = 0;
    double *rul = NULL, *all = support_read_fd001(&nall, &rul);
    assert_int_equal(nall, 20631);
    assert_true(n <= nall);

    double *rows = mem_alloc(n * (P + 2) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < P; j++)
            rows[i * (P + 2) + j] = all[i * COLS + columns[j]];
        rows[i * (P + 2) + P] = rul[i];
        rows[i * (P + 2) + P + 1] = 0.0;
    }
    for (size_t j = 0; j < P; j++) {
        double mean = 0.0, var = 0.0;
        for (size_t i = 0; i < n; i++)
            mean += rows[i * (P + 2) + j] / (double)n;
        for (size_t i = 0; i < n; i++)
            var += pow(rows[i * (P + 2) + j] - mean, 2) / (double)n;
        assert_true(var > 0.0);
        for (size_t i = 0; i < n; i++)
            rows[i * (P + 2) + j] = (rows[i * (P + 2) + j] - mean) / sqrt(var);
    }
    free(rul);
    free(all);
    return rows;
}

static void test_rls_cmapss_equals_ridge(void **state)
{
    (void)state;
    enum { N = 5000, P = 16 };
    double *rows = read_fd001_stream(N);
    rls_compare(rows, N, P, 1.0, 1.0);
    free(rows);
}

/* A stream whose coefficients change half way: forgetting follows the recent ones. */
static void test_rls_forgetting_closed_form(void **state)
{
    (void)state;
    enum { N = 2000, P = 6 };
    double *rows = make_regression_stream(N, P, 202, true);
    for (size_t i = N / 2; i < N; i++)
        rows[i * (P + 2) + P] += 4.0 * rows[i * (P + 2)] - 3.0;
    rls_compare(rows, N, P, 1.0, 0.99);
    rls_compare(rows, N, P, 10.0, 0.995);
    rls_compare(rows, 300, P, 0.5, 0.9);
    rls_compare(rows, 300, P, 50.0, 0.998); /* the prior keeps weight 0.998^300 = 0.55 */
    free(rows);
}

/* Each returned prediction is offset + w.[x, 1] of the rows before it (w = 0 for the first). */
static void test_rls_prequential_predictions(void **state)
{
    (void)state;
    enum { N = 150, P = 3 };
    double *rows = make_regression_stream(N, P, 303, true);
    struct online_params params;
    online_params_default(&params, ONLINE_RLS);
    params.delta = 2.0;
    params.forgetting = 0.97;
    struct online_model *m = model_or_fail(&params, P);
    double *st = new_state(m), got[N];
    for (size_t i = 0; i < N; i++) {
        const double *r = rows + i * (P + 2);
        double before = online_predict(m, st, r, r[P + 1]);
        got[i] = online_step(m, st, r, r[P], r[P + 1]);
        assert_true(got[i] == before);
    }
    assert_true(got[0] == rows[P + 1]); /* nothing learned: the offset alone */

    char *path = write_csv(rows, N, P + 2), a1[32], a2[32];
    char *out = run_reference("rls_prequential", path, format_double(a1, sizeof(a1), 2.0),
                              format_double(a2, sizeof(a2), 0.97), NULL, NULL, NULL, NULL);
    double want[N];
    reference_values(out, "predictions", want, N);
    for (size_t i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof(what), "prediction of row %zu", i);
        support_assert_close_floor(got[i], want[i], 1e-9, 1e-9, what);
    }
    free(out);
    unlink(path);
    free(path);
    free(st);
    online_destroy(m);
    free(rows);
}

/* P stays exactly symmetric and positive on its diagonal (the packed triangle is checked). */
static void test_rls_state_layout(void **state)
{
    (void)state;
    enum { P = 4, D = P + 1 };
    struct online_params params;
    online_params_default(&params, ONLINE_RLS);
    params.delta = 4.0;
    struct online_model *m = model_or_fail(&params, P);
    assert_int_equal(online_state_len(m), 1 + D + D * (D + 1) / 2);
    double *st = new_state(m);
    /* A new key: count 0, w = 0, P = I / delta. */
    assert_true(st[0] == 0.0);
    const double *packed = st + 1 + D;
    for (size_t i = 0, k = 0; i < D; i++)
        for (size_t j = i; j < D; j++, k++)
            assert_true(packed[k] == (i == j ? 0.25 : 0.0));
    /* One record from a fresh state: w = x t / (delta + |x|^2) (Sherman-Morrison). */
    double x[P] = {1.0, -2.0, 0.5, 3.0}, t = 7.0, norm2 = 1 + 4 + 0.25 + 9 + 1;
    online_step(m, st, x, t + 1.5, 1.5);
    for (size_t j = 0; j < D; j++)
        support_assert_close(st[1 + j], (j < P ? x[j] : 1.0) * t / (4.0 + norm2), 1e-15,
                             "w after one record");
    char err[128] = "";
    assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_OK);
    free(st);
    online_destroy(m);
}

/* --- FTRL ------------------------------------------------------------------------------------- */

/* n rows [x (p), y]: x standard normal; y from the linear score s = 0.3 + x.(2, -1, 0.5, ...):
 * kind 0 separable classes (s > 0), 1 noisy classes (Bernoulli(sigmoid(s))), 2 regression
 * (1 + s + noise). */
static double *make_ftrl_data(size_t n, size_t p, int kind, uint64_t seed)
{
    static const double coef[] = {2.0, -1.0, 0.5, 0.25, -0.125};
    double *rows = mem_alloc(n * (p + 1) * sizeof(double));
    support_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        double *r = rows + i * (p + 1), s = 0.3;
        for (size_t j = 0; j < p; j++) {
            r[j] = support_rng_normal();
            s += coef[j % 5] * r[j];
        }
        if (kind == 0)
            r[p] = s > 0.0 ? 1.0 : 0.0;
        else if (kind == 1)
            r[p] = support_rng_uniform() < 1.0 / (1.0 + exp(-s)) ? 1.0 : 0.0;
        else
            r[p] = 1.0 + s + 0.5 * support_rng_normal();
    }
    return rows;
}

/* sum_i loss_i + (n l2 / 2) ||w||^2 at weights w (intercept last): log loss or half the
 * squared error. */
static double batch_objective(const double *rows, size_t n, size_t p, const double *w, double l2,
                              bool logistic)
{
    double sum = 0.0, norm2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *r = rows + i * (p + 1);
        double t = w[p];
        for (size_t j = 0; j < p; j++)
            t += w[j] * r[j];
        if (logistic)
            sum += (t > 0 ? t + log1p(exp(-t)) : log1p(exp(t))) - r[p] * t;
        else
            sum += 0.5 * (t - r[p]) * (t - r[p]);
    }
    for (size_t j = 0; j < p; j++)
        norm2 += w[j] * w[j];
    return sum + (double)n * l2 / 2.0 * norm2;
}

struct ftrl_case {
    enum online_kind kind;
    int data; /* make_ftrl_data's kind */
    size_t n, p;
    double l2, alpha;
    size_t passes;
};

/* Runs passes shuffled passes (seed fixed) of FTRL over the data and compares with scikit-learn
 * (LogisticRegression(C = 1 / (n l2)) or Ridge(alpha = n l2)): the objective within 1e-5
 * relative of scikit-learn's optimum, every weight within 5e-3 of it (absolute), and the
 * reference at its optimum (max |gradient| / n below 1e-8, which also checks that C = 1/(n l2)
 * is the scaling of our objective). */
static void test_ftrl_reaches_batch_optimum(void **state)
{
    const struct ftrl_case *c = *state;
    bool logistic = c->kind == ONLINE_FTRL_LOGISTIC;
    size_t n = c->n, p = c->p;
    double *rows = make_ftrl_data(n, p, c->data, 404 + (uint64_t)c->data);
    struct online_params params;
    online_params_default(&params, c->kind);
    params.l2 = c->l2;
    params.alpha = c->alpha;
    struct online_model *m = model_or_fail(&params, p);
    assert_true(online_classifier(m) == logistic);
    double *st = new_state(m);
    size_t *order = mem_alloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    support_rng_seed(505);
    for (size_t pass = 0; pass < c->passes; pass++) {
        shuffle(order, n);
        for (size_t k = 0; k < n; k++) {
            const double *r = rows + order[k] * (p + 1);
            online_step(m, st, r, r[p], 0.0);
        }
    }
    assert_true(online_learned(m, st) == (double)(n * c->passes));
    const double *w = st + 1 + 2 * (p + 1);

    char *path = write_csv(rows, n, p + 1), a1[32];
    char *out = run_reference(logistic ? "logistic" : "ridge", path,
                              format_double(a1, sizeof(a1), c->l2), NULL, NULL, NULL, NULL, NULL);
    double gradmax, objective, intercept, *coef = mem_alloc(p * sizeof(double));
    reference_values(out, "gradmax", &gradmax, 1);
    reference_values(out, "objective", &objective, 1);
    reference_values(out, "intercept", &intercept, 1);
    reference_values(out, "coef", coef, p);
    if (!(gradmax < 1e-8))
        fail_msg("scikit-learn is not at the optimum of our objective: max |gradient| / n %g",
                 gradmax);
    /* The objective the test computes at scikit-learn's weights is the script's. */
    double *ref_w = mem_alloc((p + 1) * sizeof(double));
    memcpy(ref_w, coef, p * sizeof(double));
    ref_w[p] = intercept;
    support_assert_close(batch_objective(rows, n, p, ref_w, c->l2, logistic), objective, 1e-10,
                         "objective at scikit-learn's weights");

    double got = batch_objective(rows, n, p, w, c->l2, logistic);
    double gap = (got - objective) / objective, maxdiff = 0.0;
    for (size_t j = 0; j <= p; j++)
        maxdiff = fmax(maxdiff, fabs(w[j] - ref_w[j]));
    print_message("      %s after %zu passes: objective gap %.2e, max |w - w*| %.2e\n",
                  online_kind_name(c->kind), c->passes, gap, maxdiff);
    if (!(gap < 1e-5 && gap > -1e-9))
        fail_msg("objective %.17g, scikit-learn's %.17g: relative gap %.3g", got, objective, gap);
    for (size_t j = 0; j <= p; j++) {
        if (!(fabs(w[j] - ref_w[j]) < 5e-3))
            fail_msg("weight %zu: FTRL %.9g, scikit-learn %.9g", j, w[j], ref_w[j]);
    }
    free(ref_w);
    free(coef);
    free(out);
    unlink(path);
    free(path);
    free(order);
    free(st);
    online_destroy(m);
    free(rows);
}

/* One step from a new state, by hand from McMahan's algorithm 1: g = (p - y) x (p = 0.5 or the
 * offset's output), z = g, n = g^2, w = 0 if |z| <= l1 else -(z - sign(z) l1) alpha / (beta +
 * |g|). */
static void test_ftrl_first_step_by_hand(void **state)
{
    (void)state;
    for (int logistic = 0; logistic <= 1; logistic++) {
        struct online_params params;
        online_params_default(&params, logistic ? ONLINE_FTRL_LOGISTIC : ONLINE_FTRL_LINEAR);
        params.alpha = 0.5;
        params.beta = 2.0;
        params.l1 = 0.3;
        params.l2 = 7.0; /* w = 0 before the step: no effect on this one */
        struct online_model *m = model_or_fail(&params, 3);
        double *st = new_state(m), x[3] = {2.0, -0.1, 0.0}, y = 1.0, offset = 0.4;
        double p0 = logistic ? 1.0 / (1.0 + exp(-offset)) : offset;
        assert_true(online_predict(m, st, x, offset) == p0);
        assert_true(online_step(m, st, x, y, offset) == p0);
        double xe[4] = {2.0, -0.1, 0.0, 1.0};
        for (size_t i = 0; i < 4; i++) {
            double g = (p0 - y) * xe[i], l1 = i < 3 ? 0.3 : 0.0;
            double want = fabs(g) <= l1 ? 0.0 : -(g - copysign(l1, g)) * 0.5 / (2.0 + fabs(g));
            support_assert_close(st[1 + i], g, 1e-15, "z");
            support_assert_close(st[1 + 4 + i], g * g, 1e-15, "n");
            support_assert_close_floor(st[1 + 8 + i], want, 1e-14, 0.0, "w");
        }
        assert_true(st[1 + 8 + 1] == 0.0); /* |g| = 0.06 or so is inside l1 */
        assert_true(st[1 + 8 + 2] == 0.0); /* x = 0 */
        assert_true(st[1 + 8 + 0] != 0.0);
        free(st);
        online_destroy(m);
    }
}

/* One pass over 4000 records of 2 relevant and 4 irrelevant features: with l1 the irrelevant
 * weights end exactly 0 and the relevant ones do not; without l1 none is 0. */
static void test_ftrl_l1_exact_zeros(void **state)
{
    (void)state;
    enum { N = 4000, P = 6 };
    for (int logistic = 0; logistic <= 1; logistic++) {
        double *rows = mem_alloc(N * (P + 1) * sizeof(double));
        support_rng_seed(606);
        for (size_t i = 0; i < N; i++) {
            double *r = rows + i * (P + 1);
            for (size_t j = 0; j < P; j++)
                r[j] = support_rng_normal();
            double s = 0.5 + 2.0 * r[0] - 1.5 * r[1];
            r[P] = logistic ? (support_rng_uniform() < 1.0 / (1.0 + exp(-s)) ? 1.0 : 0.0)
                            : s + 0.5 * support_rng_normal();
        }
        for (int with_l1 = 0; with_l1 <= 1; with_l1++) {
            struct online_params params;
            online_params_default(&params, logistic ? ONLINE_FTRL_LOGISTIC : ONLINE_FTRL_LINEAR);
            params.alpha = 0.5;
            params.l1 = with_l1 ? (logistic ? 30.0 : 100.0) : 0.0;
            struct online_model *m = model_or_fail(&params, P);
            double *st = new_state(m);
            for (size_t i = 0; i < N; i++)
                online_step(m, st, rows + i * (P + 1), rows[i * (P + 1) + P], 0.0);
            const double *z = st + 1, *w = st + 1 + 2 * (P + 1);
            print_message("      %s l1 %g: w = %.3g %.3g | %.3g %.3g %.3g %.3g | b %.3g; "
                          "|z| irrelevant <= %.3g\n",
                          online_kind_name(params.kind), params.l1, w[0], w[1], w[2], w[3], w[4],
                          w[5], w[6], max_abs(z + 2, 4));
            assert_true(w[0] > 0.5 && w[1] < -0.5 && w[P] != 0.0);
            for (size_t j = 2; j < P; j++) {
                if (with_l1 && w[j] != 0.0)
                    fail_msg("%s: irrelevant weight %zu is %g, not 0",
                             online_kind_name(params.kind), j, w[j]);
                if (!with_l1 && w[j] == 0.0)
                    fail_msg("%s: weight %zu is 0 without l1", online_kind_name(params.kind), j);
            }
            free(st);
            online_destroy(m);
        }
        free(rows);
    }
}

/* --- anomaly ---------------------------------------------------------------------------------- */

struct anomaly_case {
    enum online_anomaly_stat stat;
    enum online_anomaly_score score;
    double ewma_alpha;
    size_t warmup;
};

/* Scores of a stream with a constant column, a level shift and outliers, against the reference
 * (numpy's prefix statistics, or the EWMA weights in closed form): each score and the final
 * means and variances to 1e-9 relative. */
static void test_anomaly_against_numpy(void **state)
{
    const struct anomaly_case *c = *state;
    enum { N = 400, P = 4 };
    double rows[N * P];
    support_rng_seed(707);
    for (size_t i = 0; i < N; i++) {
        double *r = rows + i * P;
        r[0] = 10.0 + support_rng_normal();
        r[1] = 1000.0 + 50.0 * support_rng_normal() + (i >= N / 2 ? 200.0 : 0.0);
        r[2] = 3.5; /* constant: its std is 0 and min_std stands in */
        r[3] = 1e-3 * support_rng_normal();
        if (i % 97 == 50)
            r[3] += 0.05; /* outliers */
    }
    rows[(N - 5) * P + 2] = 3.51; /* the constant column moves once, late */
    struct online_params params;
    online_params_default(&params, ONLINE_ANOMALY);
    params.stat = c->stat;
    params.score = c->score;
    params.ewma_alpha = c->ewma_alpha;
    params.warmup = c->warmup;
    params.min_std = 1e-4;
    struct online_model *m = model_or_fail(&params, P);
    assert_false(online_supervised(m));
    double *st = new_state(m), got[N];
    for (size_t i = 0; i < N; i++) {
        double before = online_predict(m, st, rows + i * P, 123.0);
        got[i] = online_step(m, st, rows + i * P, NAN, 0.0);
        assert_true(got[i] == before);
    }
    assert_true(online_learned(m, st) == N);

    char *path = write_csv(rows, N, P), a1[32], a2[32], a3[32];
    snprintf(a2, sizeof(a2), "%zu", c->warmup);
    char *out = run_reference("anomaly", path, c->stat == ONLINE_WELFORD ? "welford" : "ewma",
                              format_double(a1, sizeof(a1), c->ewma_alpha),
                              c->score == ONLINE_SCORE_ZMAX ? "zmax" : "mahalanobis", a2,
                              format_double(a3, sizeof(a3), params.min_std), NULL);
    double want[N], mean[P], var[P];
    reference_values(out, "scores", want, N);
    reference_values(out, "mean", mean, P);
    reference_values(out, "var", var, P);
    for (size_t i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof(what), "score of row %zu", i);
        if (i < c->warmup)
            assert_true(got[i] == 0.0);
        support_assert_close_floor(got[i], want[i], 1e-9, 1e-12, what);
    }
    /* The late move of the constant column is scored against min_std. */
    assert_true(got[N - 5] >= 0.01 / 1e-4 * (1 - 1e-9));
    for (size_t j = 0; j < P; j++) {
        double v = c->stat == ONLINE_WELFORD ? st[1 + P + j] / N : st[1 + P + j];
        support_assert_close(st[1 + j], mean[j], 1e-12, "mean");
        support_assert_close_floor(v, var[j], 1e-9, 1e-20, "variance");
    }
    free(out);
    unlink(path);
    free(path);
    free(st);
    online_destroy(m);
}

/* Closed forms: Welford after records 1, 2, 3 (mean 2, population std sqrt(2/3)), the first EWMA
 * record as the mean with variance 0, and min_std on a zero variance. */
static void test_anomaly_closed_forms(void **state)
{
    (void)state;
    struct online_params params;
    online_params_default(&params, ONLINE_ANOMALY);
    params.warmup = 3;
    params.score = ONLINE_SCORE_MAHALANOBIS;
    struct online_model *m = model_or_fail(&params, 2);
    double *st = new_state(m);
    const double a[3][2] = {{1, 5}, {2, 5}, {3, 5}};
    for (size_t i = 0; i < 3; i++)
        assert_true(online_step(m, st, a[i], NAN, 0) == 0.0); /* warming up */
    double x[2] = {4.0, 5.0};
    support_assert_close(online_predict(m, st, x, 0), 2.0 / sqrt(2.0 / 3.0), 1e-15,
                         "z of 4 against {1,2,3}");
    x[1] = 5.0 + 1e-8; /* against std 0: min_std 1e-9 */
    support_assert_close(online_predict(m, st, x, 0), sqrt(6.0 + pow(1e-8 / 1e-9, 2)), 1e-6,
                         "mahalanobis with min_std");
    free(st);
    online_destroy(m);

    params.stat = ONLINE_EWMA;
    params.ewma_alpha = 0.25;
    params.warmup = 1;
    params.score = ONLINE_SCORE_ZMAX;
    m = model_or_fail(&params, 2);
    st = new_state(m);
    online_step(m, st, a[0], NAN, 0);
    assert_true(st[1] == 1.0 && st[2] == 5.0 && st[3] == 0.0 && st[4] == 0.0);
    online_step(m, st, a[1], NAN, 0);
    /* d = 1: mean 1.25, var 0.75 (0 + 0.25) = 0.1875 */
    assert_true(st[1] == 1.25 && st[3] == 0.1875);
    free(st);
    online_destroy(m);
}

/* --- holt ------------------------------------------------------------------------------------- */

static struct online_model *holt_model(double a, double b, double threshold, int direction,
                                       double horizon, size_t indicator, size_t nfeatures)
{
    struct online_params params;
    online_params_default(&params, ONLINE_HOLT);
    params.level_alpha = a;
    params.trend_beta = b;
    params.threshold = threshold;
    params.direction = direction;
    params.horizon = horizon;
    params.indicator = indicator;
    return model_or_fail(&params, nfeatures);
}

/* A noisy degradation (a wear indicator rising, then the same mirrored to fall) against the
 * Python recursion, each RUL to 1e-9 relative; the other features and the label are ignored. */
static void test_holt_against_recursion(void **state)
{
    (void)state;
    enum { N = 300, P = 3 };
    for (int direction = -1; direction <= 1; direction += 2) {
        double rows[N * P], series[N], got[N];
        support_rng_seed(808);
        for (size_t i = 0; i < N; i++) {
            double wear = 0.002 * (double)i + 1e-5 * (double)(i * i) + 0.05 * support_rng_normal();
            series[i] = direction > 0 ? wear : 1.0 - wear;
            rows[i * P] = support_rng_normal();
            rows[i * P + 1] = series[i];
            rows[i * P + 2] = 1e6 * support_rng_normal();
        }
        double threshold = direction > 0 ? 1.2 : -0.2;
        struct online_model *m = holt_model(0.4, 0.2, threshold, direction, 250.0, 1, P);
        assert_false(online_supervised(m));
        double *st = new_state(m);
        for (size_t i = 0; i < N; i++) {
            double ahead = online_predict(m, st, rows + i * P, 5.0);
            got[i] = online_step(m, st, rows + i * P, 1e9 * (double)i, 5.0);
            assert_true(got[i] == ahead);
        }
        char *path = write_csv(series, N, 1), a1[32], a2[32], a3[32], a4[8], a5[32];
        snprintf(a4, sizeof(a4), "%d", direction);
        char *out = run_reference("holt", path, format_double(a1, sizeof(a1), 0.4),
                                  format_double(a2, sizeof(a2), 0.2),
                                  format_double(a3, sizeof(a3), threshold), a4,
                                  format_double(a5, sizeof(a5), 250.0), NULL);
        double want[N];
        reference_values(out, "rul", want, N);
        size_t capped = 0, reached = 0, between = 0;
        for (size_t i = 0; i < N; i++) {
            char what[64];
            snprintf(what, sizeof(what), "RUL after record %zu (direction %d)", i, direction);
            support_assert_close_floor(got[i], want[i], 1e-9, 1e-9, what);
            capped += got[i] == 250.0;
            reached += got[i] == 0.0;
            between += got[i] > 0.0 && got[i] < 250.0;
        }
        /* The stream exercises all three regimes. */
        assert_true(capped > 0 && reached > 0 && between > 0);
        free(out);
        unlink(path);
        free(path);
        free(st);
        online_destroy(m);
    }
}

/* v_t = 100 - 0.5 t falls to 40 at t = 120. With a = b = 1 the level is v_t and the trend -0.5
 * from the second record, so RUL = 120 - t exactly; with a = 0.5, b = 0.3 the errors decay
 * geometrically and the RUL is exact to rounding after 300 records. */
static void test_holt_linear_series_exact(void **state)
{
    (void)state;
    struct online_model *exact = holt_model(1.0, 1.0, 40.0, -1, 1000.0, 0, 1);
    struct online_model *smooth = holt_model(0.5, 0.3, -100.0, -1, 1e6, 0, 1);
    double *s1 = new_state(exact), *s2 = new_state(smooth);
    for (size_t t = 0; t <= 400; t++) {
        double v = 100.0 - 0.5 * (double)t;
        double r1 = online_step(exact, s1, &v, NAN, 0.0);
        double r2 = online_step(smooth, s2, &v, NAN, 0.0);
        if (t == 0) {
            assert_true(r1 == 1000.0); /* one record: trend 0 */
        } else if (t <= 120) {
            support_assert_close_floor(r1, 120.0 - (double)t, 1e-13, 1e-12, "RUL, a = b = 1");
        } else {
            assert_true(r1 == 0.0); /* past the threshold */
        }
        if (t >= 300 && t < 400)
            support_assert_close(r2, 400.0 - (double)t, 1e-9, "RUL, a = 0.5, b = 0.3");
    }
    free(s2);
    free(s1);
    online_destroy(smooth);
    online_destroy(exact);
}

/* RUL from a given level and trend (the state written by hand): at or past the threshold 0,
 * trend 0 or away the horizon, far the horizon, else the division. */
static void test_holt_rul_cases(void **state)
{
    (void)state;
    struct online_model *up = holt_model(1.0, 1.0, 10.0, +1, 50.0, 0, 1);
    struct online_model *down = holt_model(1.0, 1.0, 10.0, -1, 50.0, 0, 1);
    /* With a = b = 1 a step from (level L, trend T, count 1+) to v gives level v, trend v - L. */
    const struct {
        struct online_model *m;
        double level, v, want;
    } cases[] = {
        {up, 5.0, 6.0, 4.0},      {up, 5.0, 10.0, 0.0},     {up, 5.0, 12.0, 0.0},
        {up, 6.0, 6.0, 50.0},     {up, 6.0, 5.0, 50.0},     {up, 0.0, 0.1, 50.0},
        {up, 9.0, 9.5, 1.0},      {down, 15.0, 14.0, 4.0},  {down, 15.0, 10.0, 0.0},
        {down, 14.0, 15.0, 50.0}, {down, 14.0, 14.0, 50.0}, {down, 10.5, 10.25, 1.0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        double st[3] = {1.0, cases[k].level, 123.0};
        double v = cases[k].v;
        double ahead = online_predict(cases[k].m, st, &v, 0.0);
        assert_true(st[0] == 1.0 && st[1] == cases[k].level && st[2] == 123.0);
        double got = online_step(cases[k].m, st, &v, NAN, 0.0);
        if (got != cases[k].want || ahead != got)
            fail_msg("case %zu: level %g then %g: RUL %g (predict %g), want %g", k, cases[k].level,
                     v, got, ahead, cases[k].want);
        assert_true(st[0] == 2.0 && st[1] == v && st[2] == v - cases[k].level);
    }
    /* The very first record: trend 0, so the horizon unless already past. */
    double st[3];
    online_state_init(up, st);
    double v = 3.0;
    assert_true(online_predict(up, st, &v, 0.0) == 50.0);
    v = 11.0;
    assert_true(online_step(up, st, &v, NAN, 0.0) == 0.0);
    assert_true(st[0] == 1.0 && st[1] == 11.0 && st[2] == 0.0);
    online_destroy(down);
    online_destroy(up);
}

/* --- every kind ------------------------------------------------------------------------------- */

static const enum online_kind all_kinds[] = {ONLINE_RLS, ONLINE_FTRL_LINEAR, ONLINE_FTRL_LOGISTIC,
                                             ONLINE_ANOMALY, ONLINE_HOLT};
#define NKINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))

static struct online_model *default_model(enum online_kind kind, size_t nfeatures)
{
    struct online_params params;
    online_params_default(&params, kind);
    params.forgetting = 0.98;
    params.l1 = 0.01;
    params.l2 = 0.001;
    params.warmup = 3;
    params.threshold = 5.0;
    params.direction = 1;
    params.indicator = nfeatures - 1;
    return model_or_fail(&params, nfeatures);
}

/* 600 rows over 5 keys in a random interleaving, a third unlabelled, with offsets: the batch gives
 * bit for bit the predictions and the final states of a loop of online_step; also with y and
 * offsets NULL. */
static void test_batch_equals_steps(void **state)
{
    (void)state;
    enum { N = 600, P = 4, KEYS = 5 };
    double x[N * P], y[N], offsets[N];
    size_t key[N];
    support_rng_seed(909);
    for (size_t i = 0; i < N; i++) {
        key[i] = (size_t)(support_rng_uniform() * KEYS);
        for (size_t j = 0; j < P; j++)
            x[i * P + j] = support_rng_normal() + 0.01 * (double)i * (double)key[i];
        y[i] = i % 3 == 1 ? NAN : (support_rng_uniform() < 0.5 ? 1.0 : 0.0) + x[i * P];
        offsets[i] = 0.2 * support_rng_normal();
    }
    for (size_t k = 0; k < NKINDS; k++) {
        struct online_model *m = default_model(all_kinds[k], P);
        size_t len = online_state_len(m);
        for (int nulls = 0; nulls <= 1; nulls++) {
            double *batch_states = mem_alloc(KEYS * len * sizeof(double));
            double *step_states = mem_alloc(KEYS * len * sizeof(double));
            double *ptrs[N], got[N + 1], want[N];
            for (size_t s = 0; s < KEYS; s++) {
                online_state_init(m, batch_states + s * len);
                online_state_init(m, step_states + s * len);
            }
            for (size_t i = 0; i < N; i++) {
                ptrs[i] = batch_states + key[i] * len;
                want[i] = online_step(m, step_states + key[i] * len, x + i * P, nulls ? NAN : y[i],
                                      nulls ? 0.0 : offsets[i]);
            }
            got[N] = -7.0;
            online_step_batch(m, ptrs, x, nulls ? NULL : y, nulls ? NULL : offsets, N, got);
            assert_true(got[N] == -7.0);
            if (memcmp(got, want, sizeof(want)) != 0)
                fail_msg("%s: batch predictions differ from steps", online_kind_name(all_kinds[k]));
            if (memcmp(batch_states, step_states, KEYS * len * sizeof(double)) != 0)
                fail_msg("%s: batch states differ from steps", online_kind_name(all_kinds[k]));
            /* Keys learned apart: the counts add up to the rows learned. */
            double learned = 0;
            for (size_t s = 0; s < KEYS; s++)
                learned += online_learned(m, batch_states + s * len);
            bool labelled_only = online_supervised(m);
            assert_true(learned == (labelled_only ? (nulls ? 0.0 : N - N / 3) : N));
            free(step_states);
            free(batch_states);
        }
        online_destroy(m);
    }
}

/* An unlabelled (NaN or infinite y) record leaves a supervised state untouched and returns the
 * prediction; unsupervised kinds learn every record whatever y is. */
static void test_unlabelled_records(void **state)
{
    (void)state;
    enum { P = 3 };
    double x[P] = {0.5, -1.0, 2.0}, x2[P] = {1.5, 0.0, -2.0};
    for (size_t k = 0; k < NKINDS; k++) {
        struct online_model *m = default_model(all_kinds[k], P);
        size_t len = online_state_len(m);
        double *st = new_state(m), *copy = mem_alloc(len * sizeof(double));
        online_step(m, st, x, 1.0, 0.0);
        online_step(m, st, x2, 0.0, 0.0);
        memcpy(copy, st, len * sizeof(double));
        double labels[3] = {NAN, INFINITY, -INFINITY};
        for (size_t i = 0; i < 3; i++) {
            double ahead = online_predict(m, st, x, 0.25);
            double got = online_step(m, st, x, labels[i], 0.25);
            assert_true(got == ahead);
            if (online_supervised(m))
                assert_memory_equal(st, copy, len * sizeof(double));
        }
        assert_true(online_learned(m, st) == (online_supervised(m) ? 2.0 : 5.0));
        free(copy);
        free(st);
        online_destroy(m);
    }
}

/* The offset enters before the link: rls and ftrl add it, ftrl_logistic treats it as a logit. */
static void test_offsets(void **state)
{
    (void)state;
    double x[2] = {1.0, 2.0};
    for (size_t k = 0; k < 3; k++) {
        struct online_model *m = default_model(all_kinds[k], 2);
        double *st = new_state(m);
        double got = online_predict(m, st, x, 1.5);
        double want = all_kinds[k] == ONLINE_FTRL_LOGISTIC ? 1.0 / (1.0 + exp(-1.5)) : 1.5;
        support_assert_close(got, want, 1e-15, online_kind_name(all_kinds[k]));
        /* A label equal to the offset's output teaches nothing. */
        online_step(m, st, x, want, 1.5);
        assert_true(online_predict(m, st, x, 1.5) == want);
        free(st);
        online_destroy(m);
    }
    /* Extreme logits stay probabilities. */
    struct online_model *m = default_model(ONLINE_FTRL_LOGISTIC, 2);
    double *st = new_state(m);
    assert_true(online_predict(m, st, x, 800.0) == 1.0);
    assert_true(online_predict(m, st, x, -800.0) >= 0.0);
    assert_true(online_predict(m, st, x, -30.0) > 0.0);
    free(st);
    online_destroy(m);
}

/* ftrl_logistic takes y in [0, 1]: 2 learns as 1, -3 as 0, and 0.25 is a soft label between. */
static void test_logistic_labels_clamped(void **state)
{
    (void)state;
    struct online_model *m = default_model(ONLINE_FTRL_LOGISTIC, 2);
    size_t len = online_state_len(m);
    double x[2] = {0.5, -1.0};
    const double pairs[2][2] = {{2.0, 1.0}, {-3.0, 0.0}};
    for (size_t k = 0; k < 2; k++) {
        double *a = new_state(m), *b = new_state(m);
        for (int i = 0; i < 3; i++) {
            online_step(m, a, x, pairs[k][0], 0.1);
            online_step(m, b, x, pairs[k][1], 0.1);
        }
        assert_memory_equal(a, b, len * sizeof(double));
        free(b);
        free(a);
    }
    double *soft = new_state(m), *one = new_state(m);
    online_step(m, soft, x, 0.25, 0.0);
    online_step(m, one, x, 1.0, 0.0);
    /* From p = 0.5 the residual is 0.25 for the soft label and -0.5 for 1: z differs by that. */
    support_assert_close(soft[1], -0.5 * one[1], 1e-15, "z of a soft label");
    free(one);
    free(soft);
    online_destroy(m);
}

/* --- parameters, names and state -------------------------------------------------------------- */

static void test_params_default(void **state)
{
    (void)state;
    struct online_params p;
    memset(&p, 0x5a, sizeof(p));
    online_params_default(&p, ONLINE_HOLT);
    assert_int_equal(p.kind, ONLINE_HOLT);
    assert_true(p.forgetting == 1.0 && p.delta == 1.0);
    assert_true(p.alpha == 0.1 && p.beta == 1.0 && p.l1 == 0.0 && p.l2 == 0.0);
    assert_int_equal(p.stat, ONLINE_WELFORD);
    assert_true(p.ewma_alpha == 0.05);
    assert_int_equal(p.score, ONLINE_SCORE_ZMAX);
    assert_int_equal(p.warmup, 10);
    assert_true(p.min_std == 1e-9);
    assert_int_equal(p.indicator, 0);
    assert_true(p.level_alpha == 0.3 && p.trend_beta == 0.1);
    assert_true(p.threshold == 0.0 && p.direction == -1 && p.horizon == 1000.0);
    /* The defaults make a valid model of every kind. */
    for (size_t k = 0; k < NKINDS; k++) {
        online_params_default(&p, all_kinds[k]);
        struct online_model *m = model_or_fail(&p, 16);
        assert_int_equal(online_model_kind(m), all_kinds[k]);
        assert_int_equal(online_nfeatures(m), 16);
        assert_int_equal(online_model_params(m)->kind, all_kinds[k]);
        assert_true(online_model_params(m)->horizon == p.horizon);
        online_destroy(m);
    }
    online_destroy(NULL);
}

struct bad_param {
    enum online_kind kind;
    const char *field;
    double value;
    const char *message;
};

static void set_param(struct online_params *p, const char *field, double v)
{
    if (strcmp(field, "forgetting") == 0)
        p->forgetting = v;
    else if (strcmp(field, "delta") == 0)
        p->delta = v;
    else if (strcmp(field, "alpha") == 0)
        p->alpha = v;
    else if (strcmp(field, "beta") == 0)
        p->beta = v;
    else if (strcmp(field, "l1") == 0)
        p->l1 = v;
    else if (strcmp(field, "l2") == 0)
        p->l2 = v;
    else if (strcmp(field, "ewma_alpha") == 0) {
        p->stat = ONLINE_EWMA;
        p->ewma_alpha = v;
    } else if (strcmp(field, "stat") == 0)
        p->stat = (enum online_anomaly_stat)v;
    else if (strcmp(field, "score") == 0)
        p->score = (enum online_anomaly_score)v;
    else if (strcmp(field, "warmup") == 0)
        p->warmup = (size_t)v;
    else if (strcmp(field, "min_std") == 0)
        p->min_std = v;
    else if (strcmp(field, "indicator") == 0)
        p->indicator = (size_t)v;
    else if (strcmp(field, "level_alpha") == 0)
        p->level_alpha = v;
    else if (strcmp(field, "trend_beta") == 0)
        p->trend_beta = v;
    else if (strcmp(field, "threshold") == 0)
        p->threshold = v;
    else if (strcmp(field, "direction") == 0)
        p->direction = (int)v;
    else if (strcmp(field, "horizon") == 0)
        p->horizon = v;
    else if (strcmp(field, "kind") == 0)
        p->kind = (enum online_kind)v;
    else
        fail_msg("no field %s", field);
}

static void test_params_refused(void **state)
{
    (void)state;
    static const struct bad_param cases[] = {
        {ONLINE_RLS, "forgetting", 1.5, "online.forgetting must be in (0, 1], not 1.5"},
        {ONLINE_RLS, "forgetting", 0.0, "online.forgetting must be in (0, 1], not 0"},
        {ONLINE_RLS, "forgetting", NAN, "online.forgetting must be in (0, 1], not nan"},
        {ONLINE_RLS, "delta", 0.0, "online.delta must be positive and finite, not 0"},
        {ONLINE_RLS, "delta", INFINITY, "online.delta must be positive and finite, not inf"},
        {ONLINE_FTRL_LINEAR, "alpha", -0.1, "online.alpha must be positive and finite, not -0.1"},
        {ONLINE_FTRL_LOGISTIC, "beta", -1.0, "online.beta must be >= 0 and finite, not -1"},
        {ONLINE_FTRL_LINEAR, "l1", -2.0, "online.l1 must be >= 0 and finite, not -2"},
        {ONLINE_FTRL_LOGISTIC, "l2", NAN, "online.l2 must be >= 0 and finite, not nan"},
        {ONLINE_ANOMALY, "ewma_alpha", 0.0, "online.ewma_alpha must be in (0, 1], not 0"},
        {ONLINE_ANOMALY, "ewma_alpha", 1.25, "online.ewma_alpha must be in (0, 1], not 1.25"},
        {ONLINE_ANOMALY, "stat", 7, "online.stat 7 is not welford or ewma"},
        {ONLINE_ANOMALY, "score", 9, "online.score 9 is not zmax or mahalanobis"},
        {ONLINE_ANOMALY, "warmup", 0, "online.warmup must be at least 1, not 0"},
        {ONLINE_ANOMALY, "min_std", 0.0, "online.min_std must be positive and finite, not 0"},
        {ONLINE_HOLT, "indicator", 4,
         "online.indicator 4 is not a feature index (there are 4 features)"},
        {ONLINE_HOLT, "level_alpha", 0.0, "online.level_alpha must be in (0, 1], not 0"},
        {ONLINE_HOLT, "trend_beta", 2.0, "online.trend_beta must be in (0, 1], not 2"},
        {ONLINE_HOLT, "threshold", INFINITY, "online.threshold must be finite, not inf"},
        {ONLINE_HOLT, "direction", 0, "online.direction must be +1 (up) or -1 (down), not 0"},
        {ONLINE_HOLT, "horizon", 0.0, "online.horizon must be positive and finite, not 0"},
        {ONLINE_HOLT, "kind", 5,
         "online.kind 5 is not one of rls, ftrl, ftrl_logistic, anomaly, holt"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct online_params p;
        online_params_default(&p, cases[k].kind);
        set_param(&p, cases[k].field, cases[k].value);
        char err[256] = "";
        struct online_model *m = online_new(&p, 4, err, sizeof(err));
        if (m || strcmp(err, cases[k].message) != 0)
            fail_msg("%s %s = %g: model %p, message \"%s\", want \"%s\"",
                     online_kind_name(cases[k].kind), cases[k].field, cases[k].value, (void *)m,
                     err, cases[k].message);
    }
    /* A kind checks only its own fields: a bad FTRL alpha does not stop an RLS model. */
    struct online_params p;
    online_params_default(&p, ONLINE_RLS);
    p.alpha = -1.0;
    p.horizon = NAN;
    struct online_model *m = model_or_fail(&p, 2);
    online_destroy(m);
    /* Feature counts. */
    char err[256] = "";
    online_params_default(&p, ONLINE_ANOMALY);
    assert_null(online_new(&p, 0, err, sizeof(err)));
    assert_string_equal(err, "online: nfeatures must be in [1, 1024], not 0");
    assert_null(online_new(&p, ONLINE_MAX_FEATURES + 1, err, sizeof(err)));
    assert_string_equal(err, "online: nfeatures must be in [1, 1024], not 1025");
    m = online_new(&p, ONLINE_MAX_FEATURES, NULL, 0);
    assert_non_null(m);
    online_destroy(m);
}

static void test_kind_names(void **state)
{
    (void)state;
    static const char *const names[] = {"rls", "ftrl", "ftrl_logistic", "anomaly", "holt"};
    for (size_t k = 0; k < NKINDS; k++) {
        assert_string_equal(online_kind_name(all_kinds[k]), names[k]);
        enum online_kind parsed = (enum online_kind)99;
        assert_int_equal(online_kind_parse(names[k], &parsed), TB_OK);
        assert_int_equal(parsed, all_kinds[k]);
    }
    enum online_kind parsed = ONLINE_HOLT;
    assert_int_equal(online_kind_parse("RLS", &parsed), TB_CONFIG);
    assert_int_equal(online_kind_parse("ftrl_linear", &parsed), TB_CONFIG);
    assert_int_equal(online_kind_parse("", &parsed), TB_CONFIG);
    assert_int_equal(online_kind_parse(NULL, &parsed), TB_CONFIG);
    assert_int_equal(parsed, ONLINE_HOLT);
    assert_string_equal(online_kind_name((enum online_kind)42), "?");
}

/* State lengths by kind, what the flags say, and online_state_check on learned and damaged
 * states. */
static void test_state_lengths_and_check(void **state)
{
    (void)state;
    enum { P = 16, D = P + 1 };
    const size_t lengths[NKINDS] = {1 + D + D * (D + 1) / 2, 1 + 3 * D, 1 + 3 * D, 1 + 2 * P, 3};
    const bool supervised[NKINDS] = {true, true, true, false, false};
    const bool classifier[NKINDS] = {false, false, true, false, false};
    for (size_t k = 0; k < NKINDS; k++) {
        struct online_model *m = default_model(all_kinds[k], P);
        assert_int_equal(online_state_len(m), lengths[k]);
        assert_true(online_supervised(m) == supervised[k]);
        assert_true(online_classifier(m) == classifier[k]);
        double *st = new_state(m), x[P];
        char err[256] = "";
        assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_OK);
        assert_true(online_learned(m, st) == 0.0);
        support_rng_seed(k);
        for (size_t i = 0; i < 50; i++) {
            for (size_t j = 0; j < P; j++)
                x[j] = support_rng_normal();
            online_step(m, st, x, support_rng_uniform() < 0.5, 0.0);
        }
        assert_true(online_learned(m, st) == 50.0);
        assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_OK);

        st[0] = 2.5;
        assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
        assert_string_equal(err, "online state: the count 2.5 is not a whole number of records");
        st[0] = -1.0;
        assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
        st[0] = 50.0;
        double keep = st[lengths[k] - 1];
        st[lengths[k] - 1] = NAN;
        assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
        char want[64];
        snprintf(want, sizeof(want), "online state: element %zu is nan", lengths[k] - 1);
        assert_string_equal(err, want);
        st[lengths[k] - 1] = keep;
        if (all_kinds[k] == ONLINE_RLS) {
            st[1 + D] = -1.0; /* P[0][0] */
            assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
            assert_string_equal(err, "online state: P[0][0] = -1 is not positive");
        } else if (all_kinds[k] == ONLINE_ANOMALY) {
            st[1 + P + 3] = -0.5;
            assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
            assert_string_equal(err, "online state: the spread of feature 3 is negative (-0.5)");
        } else if (all_kinds[k] != ONLINE_HOLT) {
            st[1 + D + 2] = -0.5;
            assert_int_equal(online_state_check(m, st, err, sizeof(err)), TB_PARSE);
            assert_string_equal(err, "online state: n[2] = -0.5 is negative");
        }
        free(st);
        online_destroy(m);
    }
}

int main(void)
{
    static const struct ftrl_case separable = {
        ONLINE_FTRL_LOGISTIC, 0, 300, 3, 1.0 / 300, 1.0, 5000};
    static const struct ftrl_case noisy = {ONLINE_FTRL_LOGISTIC, 1, 300, 3, 0.01, 1.0, 5000};
    static const struct ftrl_case linear = {ONLINE_FTRL_LINEAR, 2, 300, 4, 0.01, 0.1, 5000};
    static const struct anomaly_case welford_zmax = {ONLINE_WELFORD, ONLINE_SCORE_ZMAX, 0.1, 10};
    static const struct anomaly_case welford_maha = {ONLINE_WELFORD, ONLINE_SCORE_MAHALANOBIS, 0.1,
                                                     2};
    static const struct anomaly_case ewma_zmax = {ONLINE_EWMA, ONLINE_SCORE_ZMAX, 0.05, 5};
    static const struct anomaly_case ewma_maha = {ONLINE_EWMA, ONLINE_SCORE_MAHALANOBIS, 0.3, 1};
    const struct CMUnitTest tests[] = {
        NAMED_CASE("rls: forgetting 1 is ridge on [X, 1] (synthetic, sklearn and closed form)",
                   test_rls_synthetic_equals_ridge, NULL),
        NAMED_CASE("rls: forgetting 1 is ridge on [X, 1] (C-MAPSS FD001, 16 columns)",
                   test_rls_cmapss_equals_ridge, NULL),
        NAMED_CASE("rls: forgetting < 1 is the weighted ridge closed form",
                   test_rls_forgetting_closed_form, NULL),
        NAMED_CASE("rls: each prediction comes from the rows before it",
                   test_rls_prequential_predictions, NULL),
        NAMED_CASE("rls: new state I / delta, one record by Sherman-Morrison",
                   test_rls_state_layout, NULL),
        NAMED_CASE("ftrl_logistic: separable classes reach sklearn's optimum",
                   test_ftrl_reaches_batch_optimum, (void *)&separable),
        NAMED_CASE("ftrl_logistic: noisy classes reach sklearn's optimum",
                   test_ftrl_reaches_batch_optimum, (void *)&noisy),
        NAMED_CASE("ftrl: noisy linear data reaches sklearn Ridge", test_ftrl_reaches_batch_optimum,
                   (void *)&linear),
        NAMED_CASE("ftrl: first step by hand (z, n, w with l1)", test_ftrl_first_step_by_hand,
                   NULL),
        NAMED_CASE("ftrl: l1 gives exact zeros for irrelevant features", test_ftrl_l1_exact_zeros,
                   NULL),
        NAMED_CASE("anomaly: Welford z-max against numpy", test_anomaly_against_numpy,
                   (void *)&welford_zmax),
        NAMED_CASE("anomaly: Welford Mahalanobis against numpy", test_anomaly_against_numpy,
                   (void *)&welford_maha),
        NAMED_CASE("anomaly: EWMA z-max against the weighted closed form",
                   test_anomaly_against_numpy, (void *)&ewma_zmax),
        NAMED_CASE("anomaly: EWMA Mahalanobis against the weighted closed form",
                   test_anomaly_against_numpy, (void *)&ewma_maha),
        NAMED_CASE("anomaly: closed forms, warmup and min_std", test_anomaly_closed_forms, NULL),
        NAMED_CASE("holt: RUL against the Python recursion, up and down",
                   test_holt_against_recursion, NULL),
        NAMED_CASE("holt: a linear series gives the exact RUL", test_holt_linear_series_exact,
                   NULL),
        NAMED_CASE("holt: reached, flat, away, capped and in between", test_holt_rul_cases, NULL),
        NAMED_CASE("batch equals a loop of steps with interleaved keys", test_batch_equals_steps,
                   NULL),
        NAMED_CASE("unlabelled records: supervised kinds keep their state", test_unlabelled_records,
                   NULL),
        NAMED_CASE("offsets: added before the link", test_offsets, NULL),
        NAMED_CASE("ftrl_logistic: labels are clamped to [0, 1]", test_logistic_labels_clamped,
                   NULL),
        NAMED_CASE("params: documented defaults, valid for every kind", test_params_default, NULL),
        NAMED_CASE("params: each bad value refused with its name", test_params_refused, NULL),
        NAMED_CASE("kind names print and parse", test_kind_names, NULL),
        NAMED_CASE("state: lengths, flags and the check of a restored state",
                   test_state_lengths_and_check, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
