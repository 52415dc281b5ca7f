/* Benchmark: the TPE study (hyperopt's defaults) on standard test functions with known minima,
 * 100 trials x 20 seeds each: the median best loss, beside random search's, and the optimiser's
 * own CPU time per trial (tpe_ask + tpe_tell, the objective excluded).
 *
 * One line per function goes to BENCH_SCRATCH/tpe-ours.txt (else BENCH_DIR, else the current
 * directory), where run.sh has tests/bench/bench_tpe_peers.py run Optuna's TPESampler on the same
 * functions and budgets right after this program and print the ratios. The functions and spaces
 * (tests/unit/models/tpe_functions.h, shared with the unit test) and the peers' must stay the same.
 * Never fails on time; exits 1 only when the study fails. Usage: bench_tpe [seeds [trials]]. */
#include "models/tpe.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/bench/bench_support.h"
#include "tests/unit/models/tpe_functions.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_SEEDS  20
#define BENCH_TRIALS 100

/* Runs trials sequential trials; returns the best loss and adds the CPU seconds spent in tpe_ask
 * and tpe_tell to *seconds: the whole loop's, less the objective's, measured again on the same
 * values afterwards (reading the clock around every call would cost more than the objective). */
static double bench_run(const struct tpe_space *space, size_t nparams, double (*f)(const double *),
                        enum tpe_algo algo, uint64_t seed, int trials, double *values,
                        double *seconds)
{
    char err[256];
    struct tpe_study *study = tpe_study_new(space, algo, seed, NULL, err, sizeof err);
    if (!study)
        bench_die("tpe_study_new", err);
    double best = INFINITY, start = bench_cpu_now();
    for (int t = 0; t < trials; t++) {
        double *v = values + (size_t)t * nparams;
        int id = tpe_ask(study, v, nparams, err, sizeof err);
        if (id < 0)
            bench_die("tpe_ask", err);
        double loss = f(v);
        best = fmin(best, loss);
        if (tpe_tell(study, id, TPE_OK, loss, err, sizeof err) != TB_OK)
            bench_die("tpe_tell", err);
    }
    double loop = bench_cpu_now() - start;
    tpe_study_destroy(study);
    volatile double sink = 0;
    start = bench_cpu_now();
    for (int t = 0; t < trials; t++)
        sink += f(values + (size_t)t * nparams);
    *seconds += loop - (bench_cpu_now() - start);
    return best;
}

int main(int argc, char **argv)
{
    int seeds = argc > 1 ? atoi(argv[1]) : BENCH_SEEDS;
    int trials = argc > 2 ? atoi(argv[2]) : BENCH_TRIALS;
    if (seeds < 1 || seeds > 1000 || trials < 1 || trials > 100000)
        bench_die("usage", "bench_tpe [seeds (1..1000) [trials (1..100000)]]");
    FILE *out = bench_open(bench_scratch_dir(), "tpe-ours.txt", "w");

    struct tpe_options o = tpe_options_default();
    printf(
        "TPE (tributary): %d trials x %d seeds per function; hyperopt's defaults: n_startup %zu, "
        "gamma %g (n_below = ceil(gamma sqrt(n)) <= %zu), %zu candidates, prior_weight %g, "
        "linear forgetting %zu\n",
        trials, seeds, o.n_startup, o.gamma, o.max_below, o.n_candidates, o.prior_weight,
        o.linear_forgetting);
    printf("  %-12s %12s %12s %14s %14s %16s\n", "function", "known min", "TPE median",
           "random median", "TPE gap/random", "TPE ask+tell");
    char err[256];
    double *tpe_best = mem_alloc((size_t)seeds * sizeof(double));
    double *random_best = mem_alloc((size_t)seeds * sizeof(double));
    double *values = mem_alloc((size_t)trials * TPE_FN_MAX_PARAMS * sizeof(double));
    for (size_t p = 0; p < TPE_FN_NPROBLEMS; p++) {
        const struct tpe_fn_problem *pr = &tpe_fn_problems[p];
        struct tpe_space *space = tpe_fn_space_new(pr->space, pr->nparams, err, sizeof err);
        if (!space)
            bench_die("tpe_space_add", err);
        double tpe_seconds = 0, random_seconds = 0;
        for (int s = 0; s < seeds; s++) {
            tpe_best[s] = bench_run(space, pr->nparams, pr->f, TPE_TPE, (uint64_t)s, trials, values,
                                    &tpe_seconds);
            random_best[s] = bench_run(space, pr->nparams, pr->f, TPE_RANDOM, (uint64_t)s, trials,
                                       values, &random_seconds);
        }
        double min = pr->minimum;
        double tpe_median = tpe_fn_median(tpe_best, (size_t)seeds);
        double random_median = tpe_fn_median(random_best, (size_t)seeds);
        double us_per_trial = 1e6 * tpe_seconds / ((double)seeds * trials);
        printf("  %-12s %12.6g %12.6g %14.6g %14.3f %13.1f us\n", pr->name, min, tpe_median,
               random_median, (tpe_median - min) / (random_median - min), us_per_trial);
        /* name, trials, seeds, known minimum, median best, microseconds per trial */
        fprintf(out, "%s %d %d %.17g %.17g %.17g\n", pr->name, trials, seeds, min, tpe_median,
                us_per_trial);
        tpe_space_destroy(space);
    }
    free(values);
    free(random_best);
    free(tpe_best);
    bench_close(out, "tpe-ours.txt");
    return 0;
}
