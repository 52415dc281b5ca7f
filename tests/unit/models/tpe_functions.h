/* Standard test functions with known minima and their search spaces, for the TPE study: shared by
 * the unit test (tests/unit/test_tpe.c) and the benchmark (tests/bench/bench_tpe.c), whose peers
 * script, tests/bench/bench_tpe_peers.py, states the same functions and spaces for Optuna and must
 * be kept in step with this file. Header only: every definition is static. */
#ifndef TRIBUTARY_TPE_FUNCTIONS_H
#define TRIBUTARY_TPE_FUNCTIONS_H

#include "models/tpe.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* A row of a space table: the parameter and its condition, as tpe_space_add takes them. */
struct tpe_fn_param {
    int parent, option;
    struct tpe_param p;
};

/* The condition of a top-level parameter in a table row. */
#define TPE_FN_ROOT TPE_ROOT, -1

/* The number of entries of an array. */
#define TPE_FN_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static inline double tpe_fn_square(double x)
{
    return x * x;
}

/* Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478,
 * 2.475). */
static const struct tpe_fn_param tpe_fn_branin_space[] = {
    {TPE_FN_ROOT, {.name = "x1", .kind = TPE_UNIFORM, .low = -5, .high = 10}},
    {TPE_FN_ROOT, {.name = "x2", .kind = TPE_UNIFORM, .low = 0, .high = 15}},
};
static const double tpe_fn_branin_argmin[] = {M_PI, 2.275};

static inline double tpe_fn_branin(const double *v)
{
    double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
    return tpe_fn_square(v[1] - b * v[0] * v[0] + c * v[0] - 6) + 10 * (1 - t) * cos(v[0]) + 10;
}

/* A sphere centred on (1.5, -2, 0.5, 3) in [-5, 5]^4; minimum 0. */
static const struct tpe_fn_param tpe_fn_sphere_space[] = {
    {TPE_FN_ROOT, {.name = "x1", .kind = TPE_UNIFORM, .low = -5, .high = 5}},
    {TPE_FN_ROOT, {.name = "x2", .kind = TPE_UNIFORM, .low = -5, .high = 5}},
    {TPE_FN_ROOT, {.name = "x3", .kind = TPE_UNIFORM, .low = -5, .high = 5}},
    {TPE_FN_ROOT, {.name = "x4", .kind = TPE_UNIFORM, .low = -5, .high = 5}},
};
static const double tpe_fn_sphere_centre[] = {1.5, -2, 0.5, 3};

static inline double tpe_fn_sphere(const double *v)
{
    double sum = 0;
    for (size_t i = 0; i < 4; i++)
        sum += tpe_fn_square(v[i] - tpe_fn_sphere_centre[i]);
    return sum;
}

/* Hartmann-6 on [0, 1]^6; minimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652,
 * 0.6573). */
static const struct tpe_fn_param tpe_fn_hartmann_space[] = {
    {TPE_FN_ROOT, {.name = "x1", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {TPE_FN_ROOT, {.name = "x2", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {TPE_FN_ROOT, {.name = "x3", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {TPE_FN_ROOT, {.name = "x4", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {TPE_FN_ROOT, {.name = "x5", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
    {TPE_FN_ROOT, {.name = "x6", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
};
static const double tpe_fn_hartmann_argmin[] = {0.20169,  0.150011, 0.476874,
                                                0.275332, 0.311652, 0.6573};

static inline double tpe_fn_hartmann6(const double *v)
{
    static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
    static const double a[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                   {0.05, 10, 17, 0.1, 8, 14},
                                   {3, 3.5, 1.7, 10, 17, 8},
                                   {17, 8, 0.05, 10, 0.1, 14}};
    static const double p[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                   {2329, 4135, 8307, 3736, 1004, 9991},
                                   {2348, 1451, 3522, 2883, 3047, 6650},
                                   {4047, 8828, 8732, 5743, 1091, 381}};
    double sum = 0;
    for (size_t i = 0; i < 4; i++) {
        double inner = 0;
        for (size_t j = 0; j < 6; j++)
            inner += a[i][j] * tpe_fn_square(v[j] - 1e-4 * p[i][j]);
        sum += alpha[i] * exp(-inner);
    }
    return -sum;
}

/* Model selection: a family with its own parameters, one of them a nested choice, and a parameter
 * shared by all. Minimum 0: svm, C = 10, rbf, gamma = 0.01, scale = 0.25. */
static const char *const tpe_fn_families[] = {"linear", "tree", "svm"};
static const char *const tpe_fn_kernels[] = {"rbf", "poly"};
static const struct tpe_fn_param tpe_fn_conditional_space[] = {
    {TPE_FN_ROOT,
     {.name = "family", .kind = TPE_CHOICE, .noptions = 3, .options = tpe_fn_families}},
    {0, 0, {.name = "alpha", .kind = TPE_LOGUNIFORM, .low = 1e-6, .high = 10}},
    {0, 1, {.name = "depth", .kind = TPE_QUNIFORM, .low = 1, .high = 16, .q = 1}},
    {0, 1, {.name = "lr", .kind = TPE_LOGUNIFORM, .low = 1e-3, .high = 1}},
    {0, 2, {.name = "C", .kind = TPE_LOGUNIFORM, .low = 1e-3, .high = 1e3}},
    {0, 2, {.name = "kernel", .kind = TPE_CHOICE, .noptions = 2, .options = tpe_fn_kernels}},
    {5, 0, {.name = "gamma", .kind = TPE_LOGUNIFORM, .low = 1e-5, .high = 10}},
    {5, 1, {.name = "degree", .kind = TPE_RANDINT, .low = 2, .high = 6}},
    {TPE_FN_ROOT, {.name = "scale", .kind = TPE_UNIFORM, .low = 0, .high = 1}},
};
static const double tpe_fn_conditional_argmin[] = {2, NAN, NAN, NAN, 10, 0, 0.01, NAN, 0.25};

static inline double tpe_fn_conditional(const double *v)
{
    double shared = 0.5 * tpe_fn_square(v[8] - 0.25);
    switch ((int)v[0]) {
    case 0:
        return shared + 0.6 + 0.05 * tpe_fn_square(log10(v[1]) + 2);
    case 1:
        return shared + 0.3 + 0.02 * tpe_fn_square(v[2] - 9) +
               0.2 * tpe_fn_square(log10(v[3]) + 1.5);
    default:
        if (v[5] == 0)
            return shared + 0.05 * tpe_fn_square(log10(v[4]) - 1) +
                   0.05 * tpe_fn_square(log10(v[6]) + 2);
        return shared + 0.2 + 0.05 * tpe_fn_square(log10(v[4])) + 0.1 * tpe_fn_square(v[7] - 3);
    }
}

/* Log-scaled, quantised, normal and integer parameters together; minimum 0 at lr = 1e-3,
 * depth = 7, batch = 64, momentum = 0.95, units = 40. */
static const struct tpe_fn_param tpe_fn_mixed_space[] = {
    {TPE_FN_ROOT, {.name = "lr", .kind = TPE_LOGUNIFORM, .low = 1e-6, .high = 1}},
    {TPE_FN_ROOT, {.name = "depth", .kind = TPE_QUNIFORM, .low = 0.5, .high = 12.5, .q = 1}},
    {TPE_FN_ROOT, {.name = "batch", .kind = TPE_QLOGUNIFORM, .low = 8, .high = 1024, .q = 8}},
    {TPE_FN_ROOT, {.name = "momentum", .kind = TPE_NORMAL, .mu = 0.9, .sigma = 0.05}},
    {TPE_FN_ROOT, {.name = "units", .kind = TPE_RANDINT, .low = 1, .high = 101}},
};
static const double tpe_fn_mixed_argmin[] = {1e-3, 7, 64, 0.95, 40};

static inline double tpe_fn_mixed(const double *v)
{
    return tpe_fn_square(log10(v[0]) + 3) + tpe_fn_square((v[1] - 7) / 3) +
           0.25 * tpe_fn_square(log2(v[2] / 64)) + 100 * tpe_fn_square(v[3] - 0.95) +
           tpe_fn_square((v[4] - 40) / 30);
}

/* Returns a new space of the n rows (free it with tpe_space_destroy), or NULL with
 * tpe_space_add's message in err when a row is refused or not added at its own index. */
static inline struct tpe_space *tpe_fn_space_new(const struct tpe_fn_param *rows, size_t n,
                                                 char *err, size_t errsz)
{
    struct tpe_space *space = tpe_space_new();
    for (size_t i = 0; i < n; i++) {
        int index = tpe_space_add(space, rows[i].parent, rows[i].option, &rows[i].p, err, errsz);
        if (index != (int)i) {
            if (index >= 0)
                snprintf(err, errsz, "parameter '%s' added at index %d, not %zu", rows[i].p.name,
                         index, i);
            tpe_space_destroy(space);
            return NULL;
        }
    }
    return space;
}

/* A function with its space, its published minimum and where it is reached. */
struct tpe_fn_problem {
    const char *name;
    const struct tpe_fn_param *space;
    size_t nparams;
    double (*f)(const double *);
    double minimum;       /* a lower bound of every loss */
    const double *argmin; /* nparams values (NAN for an inactive parameter) */
};

/* Indices into tpe_fn_problems. */
enum {
    TPE_FN_BRANIN,
    TPE_FN_SPHERE4,
    TPE_FN_HARTMANN6,
    TPE_FN_CONDITIONAL,
    TPE_FN_MIXED,
    TPE_FN_NPROBLEMS
};

/* The largest nparams of tpe_fn_problems. */
#define TPE_FN_MAX_PARAMS 16

static const struct tpe_fn_problem tpe_fn_problems[TPE_FN_NPROBLEMS] = {
    [TPE_FN_BRANIN] = {"branin", tpe_fn_branin_space, TPE_FN_COUNT(tpe_fn_branin_space),
                       tpe_fn_branin, 0.397887, tpe_fn_branin_argmin},
    [TPE_FN_SPHERE4] = {"sphere4", tpe_fn_sphere_space, TPE_FN_COUNT(tpe_fn_sphere_space),
                        tpe_fn_sphere, 0.0, tpe_fn_sphere_centre},
    [TPE_FN_HARTMANN6] = {"hartmann6", tpe_fn_hartmann_space, TPE_FN_COUNT(tpe_fn_hartmann_space),
                          tpe_fn_hartmann6, -3.32237, tpe_fn_hartmann_argmin},
    [TPE_FN_CONDITIONAL] = {"conditional", tpe_fn_conditional_space,
                            TPE_FN_COUNT(tpe_fn_conditional_space), tpe_fn_conditional, 0.0,
                            tpe_fn_conditional_argmin},
    [TPE_FN_MIXED] = {"mixed", tpe_fn_mixed_space, TPE_FN_COUNT(tpe_fn_mixed_space), tpe_fn_mixed,
                      0.0, tpe_fn_mixed_argmin},
};

static inline int tpe_fn_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (n >= 1), which it sorts in place. */
static inline double tpe_fn_median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), tpe_fn_compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
