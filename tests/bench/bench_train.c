/* Benchmark: training time of ridge and logistic regression on a synthetic 1,000,000 x 64 problem,
 * against the BLAS/LAPACK floor for ridge (one dsyrk for X'X, one pass for X'[1 y], dposv).
 *
 * The problem is written as raw little-endian float64 files, together with our coefficients and
 * times, to BENCH_SCRATCH (else BENCH_DIR, else the current directory), where run.sh has
 * tests/bench/bench_train_peers.py fit scikit-learn on the very same data right after this
 * program, check its coefficients against ours and print the ratios. Every fit here uses OpenBLAS's
 * default thread count, as numpy does there. Never fails on time; exits 1 only when a fit fails or
 * the data cannot be written. */
#include "models/linear.h"
#include "models/logistic.h"
#include "models/ridge.h"
#include "service/base/mem.h"
#include "tests/bench/bench_support.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_ROWS     1000000
#define BENCH_FEATURES 64
#define BENCH_SEED     42
#define BENCH_ALPHA    1.0
/* Fits repeated for the ridge times (the best is kept); logistic fits take seconds, one is kept. */
#define BENCH_RIDGE_REPEATS 3

/* max_j |a_j - b_j| / max_j |b_j| over the intercept and coefficients of two fits. */
static double bench_coef_difference(double a_intercept, const double *a_coef, double b_intercept,
                                    const double *b_coef, size_t p)
{
    double diff = fabs(a_intercept - b_intercept), scale = fabs(b_intercept);
    for (size_t j = 0; j < p; j++) {
        diff = fmax(diff, fabs(a_coef[j] - b_coef[j]));
        scale = fmax(scale, fabs(b_coef[j]));
    }
    return diff / scale;
}

/* The floor for ridge with an intercept: one dsyrk for X'X and one dgemm for X'[1 y] (two passes
 * over X and no copy of it), the centring as a rank-1 update X'X - n mu mu', and dposv. ones_y is
 * the n x 2 row-major matrix [1 y], built by the caller. Writes coef (p doubles) and returns the
 * intercept. */
static double bench_floor_ridge(const double *x, const double *ones_y, size_t n, size_t p,
                                double alpha, double *gram, double *sums, double *coef)
{
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)n, 1.0, x, (int)p, 0.0, gram,
                (int)p);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, 2, (int)n, 1.0, x, (int)p, ones_y,
                2, 0.0, sums, 2);
    double ysum = 0.0;
    for (size_t i = 0; i < n; i++)
        ysum += ones_y[2 * i + 1];
    double ymean = ysum / (double)n;
    double mean[BENCH_FEATURES];
    for (size_t j = 0; j < p; j++) {
        mean[j] = sums[2 * j] / (double)n;
        coef[j] = sums[2 * j + 1] - (double)n * mean[j] * ymean;
    }
    cblas_dsyr(CblasRowMajor, CblasUpper, (int)p, -(double)n, mean, 1, gram, (int)p);
    for (size_t j = 0; j < p; j++)
        gram[j * p + j] += alpha;
    /* Row-major upper is column-major lower of the same memory: no transposed copy. */
    lapack_int info = LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', (lapack_int)p, 1, gram, (lapack_int)p,
                                    coef, (lapack_int)p);
    if (info != 0)
        bench_die("floor", "dposv failed");
    return ymean - cblas_ddot((int)p, mean, 1, coef, 1);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : BENCH_ROWS, p = BENCH_FEATURES;
    const char *dir = bench_scratch_dir();
    char err[512];
    if (n < 2 || n > 100000000)
        bench_die("usage", "bench_train [rows], rows between 2 and 1e8");
    bench_require_little_endian();

    /* The problem: x standard normal, w uniform on [-1, 1], unit normal noise;
     * ridge y = x.w + noise, logistic y = (x.w + noise > 0). */
    double *x = mem_alloc(n * p * sizeof(double));
    double *noise = mem_alloc(n * sizeof(double));
    double *y_ridge = mem_alloc(n * sizeof(double));
    double *y_logistic = mem_alloc(n * sizeof(double));
    double *ones_y = mem_alloc(2 * n * sizeof(double));
    double true_w[BENCH_FEATURES];
    uint64_t state = BENCH_SEED;
    for (size_t j = 0; j < p; j++)
        true_w[j] = 2.0 * bench_uniform(&state) - 1.0;
    bench_normals(&state, x, n * p);
    bench_normals(&state, noise, n);
    for (size_t i = 0; i < n; i++) {
        double signal = cblas_ddot((int)p, x + i * p, 1, true_w, 1) + noise[i];
        y_ridge[i] = signal;
        y_logistic[i] = signal > 0.0 ? 1.0 : 0.0;
        ones_y[2 * i] = 1.0;
        ones_y[2 * i + 1] = y_ridge[i];
    }
    bench_write(dir, "train-x.f64", x, sizeof(double), n * p);
    bench_write(dir, "train-y-ridge.f64", y_ridge, sizeof(double), n);
    bench_write(dir, "train-y-logistic.f64", y_logistic, sizeof(double), n);

    printf("training (%zu rows x %zu features, seed %d)\n", n, p, BENCH_SEED);
    printf("  %s; core %s, %d threads on %ld cores\n", openblas_get_config(),
           openblas_get_corename(), openblas_get_num_threads(), sysconf(_SC_NPROCESSORS_ONLN));

    /* Ridge: ours and the floor, alternated, best of BENCH_RIDGE_REPEATS each. */
    double *gram = mem_alloc(p * p * sizeof(double));
    double *sums = mem_alloc(2 * p * sizeof(double));
    double floor_coef[BENCH_FEATURES], floor_intercept = 0.0;
    double ours_s = INFINITY, floor_s = INFINITY;
    struct linear_model ridge = {0};
    for (int r = 0; r < BENCH_RIDGE_REPEATS; r++) {
        linear_model_free(&ridge);
        struct ridge_stats *stats = ridge_stats_new(p);
        double start = bench_now();
        ridge_stats_add(stats, x, y_ridge, n);
        if (ridge_fit(stats, BENCH_ALPHA, &ridge, err, sizeof err) != 0)
            bench_die("ridge_fit", err);
        ours_s = fmin(ours_s, bench_now() - start);
        ridge_stats_destroy(stats);

        start = bench_now();
        floor_intercept = bench_floor_ridge(x, ones_y, n, p, BENCH_ALPHA, gram, sums, floor_coef);
        floor_s = fmin(floor_s, bench_now() - start);
    }
    double ridge_diff =
        bench_coef_difference(ridge.intercept[0], ridge.coef, floor_intercept, floor_coef, p);
    printf("ridge, alpha %g (best of %d)\n", BENCH_ALPHA, BENCH_RIDGE_REPEATS);
    printf("  %-52s %9.3f s\n", "floor: dsyrk X'X + dgemm X'[1 y] + dposv (C)", floor_s);
    printf("  %-52s %9.3f s\n", "tributary ridge_stats_add + ridge_fit", ours_s);
    printf("  %-52s %9.2f\n", "ratio tributary / floor", ours_s / floor_s);
    printf("  %-52s %9.1e\n", "coef vs floor: max |diff| / max |coef|", ridge_diff);

    /* Logistic: one fit with the defaults but l2 = 1. */
    struct logistic_options options = {
        .l2 = 1.0, .tol = LOGISTIC_DEFAULT_TOL, .max_iter = LOGISTIC_DEFAULT_MAX_ITER};
    struct linear_model logistic = {0};
    int iterations = 0;
    double start = bench_now();
    if (logistic_fit(x, y_logistic, n, p, &options, &logistic, &iterations, err, sizeof err) != 0)
        bench_die("logistic_fit", err);
    double logistic_s = bench_now() - start;
    printf("logistic, l2 %g, tol %g\n", options.l2, options.tol);
    char label[64];
    snprintf(label, sizeof label, "tributary logistic_fit (%d Newton steps)", iterations);
    printf("  %-52s %9.3f s\n", label, logistic_s);

    /* For the peers: [intercept, coef...] of each fit, and the times. */
    double saved[BENCH_FEATURES + 1];
    saved[0] = ridge.intercept[0];
    memcpy(saved + 1, ridge.coef, p * sizeof(double));
    bench_write(dir, "train-coef-ridge.f64", saved, sizeof(double), p + 1);
    saved[0] = logistic.intercept[0];
    memcpy(saved + 1, logistic.coef, p * sizeof(double));
    bench_write(dir, "train-coef-logistic.f64", saved, sizeof(double), p + 1);
    const double times[] = {ours_s, floor_s, logistic_s};
    bench_write(dir, "train-times.f64", times, sizeof(double), sizeof times / sizeof times[0]);

    linear_model_free(&logistic);
    linear_model_free(&ridge);
    free(sums);
    free(gram);
    free(ones_y);
    free(y_logistic);
    free(y_ridge);
    free(noise);
    free(x);
    return 0;
}
