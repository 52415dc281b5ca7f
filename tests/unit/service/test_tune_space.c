/* Tests of service/tune_space: the TPE space a space file gives, random trials applied to
 * configurations (ranges as the file declares them, branches consistent), the JSON round trip,
 * every load error with its file:line message, and the shipped example spaces. */
#include "service/offline/tune_space.h"

#include "models/tpe.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/config/config.h"
#include "tests/support/support.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TRIALS       200

/* The example space of the tune_space brief, made loadable: every key a real configuration key
 * and none set twice on one path (the brief's own version is among the error cases). */
static const char example_space[] =
    "# every numeric distribution, and choices\n"      /* 1 */
    "pipeline.window: {quniform: [5, 50, 5]}\n"        /* 2 */
    "train.tol: {qloguniform: [1e-10, 1e-4, 1e-10]}\n" /* 3 */
    "train.test_fraction: {uniform: [0.1, 0.3]}\n"     /* 4 */
    "pipeline.impute_value: {normal: [0, 1]}\n"        /* 5 */
    "train.folds: {randint: [2, 6]}\n"                 /* 6 */
    "pipeline.window_stats: {choice: [[mean], [mean, std], [mean, std, slope]]}\n"
    "pipeline.scale: {choice: [standard, minmax]}\n"  /* 8 */
    "train.split: random\n"                           /* 9 */
    "family:\n"                                       /* 10 */
    "  choice:\n"                                     /* 11 */
    "    - train.model: ridge\n"                      /* 12 */
    "      train.l2: {loguniform: [0.01, 1000]}\n"    /* 13 */
    "    - train.model: logistic\n"                   /* 14 */
    "      train.l2: {loguniform: [0.001, 10]}\n"     /* 15 */
    "      train.max_iter: {randint: [100, 1000]}\n"; /* 16 */

/* Indices of the example's parameters, in file order. */
enum {
    EX_WINDOW,
    EX_TOL,
    EX_TEST_FRACTION,
    EX_IMPUTE_VALUE,
    EX_FOLDS,
    EX_WINDOW_STATS,
    EX_SCALE,
    EX_FAMILY,
    EX_RIDGE_L2,
    EX_LOGISTIC_L2,
    EX_LOGISTIC_MAX_ITER,
    EX_NPARAMS
};

/* Each case has its own directory; the file under test is <dir>/space.yaml. */
struct fixture {
    const void *data; /* the case of a table-driven test */
    char *dir;
    char path[1024];
    char err[1024];
};

static int fixture_setup(void **state)
{
    struct fixture *fx = mem_calloc(1, sizeof *fx);
    fx->data = *state;
    fx->dir = support_mkdtemp("tributary_test_tune_space");
    if (!fx->dir) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/space.yaml", fx->dir);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    support_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Writes text as the fixture's space file and loads it; fails the test when it does not load. */
static struct tune_space *load_text(struct fixture *fx, const char *text)
{
    support_write_file(fx->path, text, strlen(text));
    fx->err[0] = '\0';
    struct tune_space *space = tune_space_load(fx->path, fx->err, sizeof fx->err);
    if (!space)
        fail_msg("tune_space_load: %s", fx->err);
    return space;
}

/* Whether a and b are the same trial value (NAN counts as equal to NAN). */
static bool same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Joins a configuration list with ',' into buf. */
static const char *join_list(char **items, size_t n, char *buf, size_t bufsz)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(buf, i ? "," : "", bufsz - strlen(buf) - 1);
        strncat(buf, items[i], bufsz - strlen(buf) - 1);
    }
    return buf;
}

/* A random-search study over space, seeded. */
static struct tpe_study *random_study(const struct tune_space *space, uint64_t seed)
{
    char err[256] = "";
    struct tpe_study *study =
        tpe_study_new(tune_space_tpe(space), TPE_RANDOM, seed, NULL, err, sizeof err);
    if (!study)
        fail_msg("tpe_study_new: %s", err);
    return study;
}

static void ask(struct tpe_study *study, double *values, size_t n)
{
    char err[256] = "";
    if (tpe_ask(study, values, n, err, sizeof err) < 0)
        fail_msg("tpe_ask: %s", err);
}

/* ---- the example space ----------------------------------------------------------------------- */

/* What the TPE space of the example must hold, from the file above. */
struct expected_param {
    const char *name;
    enum tpe_kind kind;
    double a, b, c; /* low, high, q; mu, sigma */
    int parent, option;
    const char *labels; /* choice: the options' labels joined by '|' */
};

static const struct expected_param example_params[EX_NPARAMS] = {
    {"pipeline.window", TPE_QUNIFORM, 5, 50, 5, TPE_ROOT, -1, NULL},
    {"train.tol", TPE_QLOGUNIFORM, 1e-10, 1e-4, 1e-10, TPE_ROOT, -1, NULL},
    {"train.test_fraction", TPE_UNIFORM, 0.1, 0.3, 0, TPE_ROOT, -1, NULL},
    {"pipeline.impute_value", TPE_NORMAL, 0, 1, 0, TPE_ROOT, -1, NULL},
    {"train.folds", TPE_RANDINT, 2, 6, 0, TPE_ROOT, -1, NULL},
    {"pipeline.window_stats", TPE_CHOICE, 0, 0, 0, TPE_ROOT, -1, "mean|mean,std|mean,std,slope"},
    {"pipeline.scale", TPE_CHOICE, 0, 0, 0, TPE_ROOT, -1, "standard|minmax"},
    {"family", TPE_CHOICE, 0, 0, 0, TPE_ROOT, -1, "ridge|logistic"},
    {"family=ridge/train.l2", TPE_LOGUNIFORM, 0.01, 1000, 0, EX_FAMILY, 0, NULL},
    {"family=logistic/train.l2", TPE_LOGUNIFORM, 0.001, 10, 0, EX_FAMILY, 1, NULL},
    {"family=logistic/train.max_iter", TPE_RANDINT, 100, 1000, 0, EX_FAMILY, 1, NULL},
};

static void test_example_space(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    const struct tpe_space *tpe = tune_space_tpe(space);
    assert_int_equal(tpe_space_size(tpe), EX_NPARAMS);
    for (size_t i = 0; i < EX_NPARAMS; i++) {
        const struct expected_param *want = &example_params[i];
        struct tpe_param got;
        int parent = 0, option = 0;
        assert_int_equal(tpe_space_describe(tpe, i, &got, &parent, &option), TB_OK);
        assert_string_equal(got.name, want->name);
        assert_int_equal(got.kind, want->kind);
        assert_int_equal(parent, want->parent);
        assert_int_equal(option, want->option);
        switch (want->kind) {
        case TPE_NORMAL:
            assert_true(got.mu == want->a && got.sigma == want->b);
            break;
        case TPE_CHOICE: {
            char joined[256] = "";
            for (size_t k = 0; k < got.noptions; k++) {
                strcat(joined, k ? "|" : "");
                strcat(joined, got.options[k]);
            }
            assert_string_equal(joined, want->labels);
            break;
        }
        default:
            assert_true(got.low == want->a && got.high == want->b);
            if (want->kind == TPE_QUNIFORM || want->kind == TPE_QLOGUNIFORM)
                assert_true(got.q == want->c);
        }
    }
    tune_space_destroy(space);
}

/* 200 random trials applied to fresh configurations: every value within what the file declares,
 * equal to the trial's value, and the family branch consistent. */
static void test_example_trials_apply(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    struct tpe_study *study = random_study(space, 42);
    struct config *defaults = config_new();
    size_t per_family[2] = {0, 0}, per_stats[3] = {0, 0, 0};
    static const char *const stats[] = {"mean", "mean,std", "mean,std,slope"};
    static const char *const scales[] = {"standard", "minmax"};
    double values[EX_NPARAMS];
    for (int trial = 0; trial < TRIALS; trial++) {
        ask(study, values, EX_NPARAMS);
        struct config *cfg = config_new();
        char err[512] = "", list[256];
        if (tune_space_apply(space, values, cfg, err, sizeof err) != TB_OK)
            fail_msg("trial %d: %s", trial, err);

        int window = cfg->pipeline.window;
        assert_true(window >= 5 && window <= 50 && window % 5 == 0);
        assert_true(window == values[EX_WINDOW]);
        assert_true(cfg->train.tol >= 1e-10 && cfg->train.tol <= 1e-4 * (1 + 1e-12));
        assert_true(cfg->train.tol == values[EX_TOL]);
        assert_true(cfg->train.test_fraction >= 0.1 && cfg->train.test_fraction <= 0.3);
        assert_true(cfg->train.test_fraction == values[EX_TEST_FRACTION]);
        assert_true(cfg->pipeline.impute_value == values[EX_IMPUTE_VALUE]);
        assert_true(cfg->train.folds >= 2 && cfg->train.folds < 6);
        assert_true(cfg->train.folds == values[EX_FOLDS]);
        size_t s = (size_t)values[EX_WINDOW_STATS];
        assert_true(s < 3);
        per_stats[s]++;
        assert_string_equal(
            join_list(cfg->pipeline.window_stats, cfg->pipeline.nwindow_stats, list, sizeof list),
            stats[s]);
        assert_true(values[EX_SCALE] == 0 || values[EX_SCALE] == 1);
        assert_string_equal(cfg->pipeline.scale, scales[(size_t)values[EX_SCALE]]);
        assert_string_equal(cfg->train.split, "random"); /* the top-level constant */

        if (values[EX_FAMILY] == 0) {
            per_family[0]++;
            assert_string_equal(cfg->train.model, "ridge");
            assert_true(cfg->train.l2 >= 0.01 && cfg->train.l2 <= 1000);
            assert_true(cfg->train.l2 == values[EX_RIDGE_L2]);
            assert_true(isnan(values[EX_LOGISTIC_L2]) && isnan(values[EX_LOGISTIC_MAX_ITER]));
            assert_int_equal(cfg->train.max_iter, defaults->train.max_iter);
        } else {
            assert_true(values[EX_FAMILY] == 1);
            per_family[1]++;
            assert_string_equal(cfg->train.model, "logistic");
            assert_true(cfg->train.l2 >= 0.001 && cfg->train.l2 <= 10);
            assert_true(cfg->train.l2 == values[EX_LOGISTIC_L2]);
            assert_true(cfg->train.max_iter >= 100 && cfg->train.max_iter < 1000);
            assert_true(cfg->train.max_iter == values[EX_LOGISTIC_MAX_ITER]);
            assert_true(isnan(values[EX_RIDGE_L2]));
        }
        config_destroy(cfg);
    }
    /* Random search takes each option about equally often (binomial: far inside these bounds). */
    assert_true(per_family[0] > TRIALS / 4 && per_family[1] > TRIALS / 4);
    for (size_t s = 0; s < 3; s++)
        assert_true(per_stats[s] > TRIALS / 6);
    config_destroy(defaults);
    tpe_study_destroy(study);
    tune_space_destroy(space);
}

/* values -> JSON -> values gives the same values for 200 random trials, and the object holds
 * exactly the active parameters, with labels for choices. */
static void test_example_json_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    struct tpe_study *study = random_study(space, 7);
    double values[EX_NPARAMS], back[EX_NPARAMS];
    for (int trial = 0; trial < TRIALS; trial++) {
        ask(study, values, EX_NPARAMS);
        json_t *object = tune_space_values_json(space, values);
        assert_non_null(object);
        size_t active = 0;
        for (size_t i = 0; i < EX_NPARAMS; i++)
            active += isnan(values[i]) ? 0 : 1;
        assert_int_equal(json_object_size(object), active);
        /* through text, as the trials log stores it */
        char *text = json_dumps(object, JSON_COMPACT);
        json_error_t jerr;
        json_t *read = json_loads(text, 0, &jerr);
        assert_non_null(read);
        char err[256] = "";
        if (tune_space_values_from_json(space, read, back, EX_NPARAMS, err, sizeof err) != TB_OK)
            fail_msg("trial %d: %s (%s)", trial, err, text);
        for (size_t i = 0; i < EX_NPARAMS; i++)
            if (!same_value(values[i], back[i]))
                fail_msg("trial %d: parameter %zu: %.17g came back as %.17g (%s)", trial, i,
                         values[i], back[i], text);
        json_decref(read);
        free(text);
        json_decref(object);
    }
    tpe_study_destroy(study);
    tune_space_destroy(space);
}

/* One trial by hand: the JSON names, types and labels. */
static void test_example_json_content(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    const double values[EX_NPARAMS] = {25, 3e-10, 0.25, -0.5, 3, 1, 0, 1, NAN, 0.5, 200};
    json_t *object = tune_space_values_json(space, values);
    assert_non_null(object);
    assert_int_equal(json_object_size(object), 10);
    json_t *window = json_object_get(object, "pipeline.window");
    assert_true(json_is_integer(window) && json_integer_value(window) == 25);
    json_t *tol = json_object_get(object, "train.tol");
    assert_true(json_is_real(tol) && json_real_value(tol) == 3e-10);
    assert_true(json_real_value(json_object_get(object, "train.test_fraction")) == 0.25);
    assert_true(json_real_value(json_object_get(object, "pipeline.impute_value")) == -0.5);
    json_t *folds = json_object_get(object, "train.folds");
    assert_true(json_is_integer(folds) && json_integer_value(folds) == 3);
    assert_string_equal(json_string_value(json_object_get(object, "pipeline.window_stats")),
                        "mean,std");
    assert_string_equal(json_string_value(json_object_get(object, "pipeline.scale")), "standard");
    assert_string_equal(json_string_value(json_object_get(object, "family")), "logistic");
    assert_null(json_object_get(object, "family=ridge/train.l2"));
    assert_true(json_real_value(json_object_get(object, "family=logistic/train.l2")) == 0.5);
    json_t *max_iter = json_object_get(object, "family=logistic/train.max_iter");
    assert_true(json_is_integer(max_iter) && json_integer_value(max_iter) == 200);
    json_decref(object);
    tune_space_destroy(space);
}

/* A trials-log object that does not fit the space. */
struct json_error_case {
    const char *name;
    const char *json;
    const char *message;
};

static const struct json_error_case json_error_cases[] = {
    {"unknown parameter",
     "{\"pipeline.window\": 5, \"train.tol\": 1e-9, \"train.test_fraction\": 0.2, "
     "\"pipeline.impute_value\": 0, \"train.folds\": 2, \"pipeline.window_stats\": \"mean\", "
     "\"pipeline.scale\": \"minmax\", \"family\": \"ridge\", \"family=ridge/train.l2\": 1, "
     "\"train.l3\": 1}",
     "trial values: unknown parameter 'train.l3'"},
    {"label not an option", "{\"pipeline.window\": 5, \"pipeline.scale\": \"fancy\"}",
     "trial values: parameter 'pipeline.scale': 'fancy' is not one of its options"},
    {"choice given as index", "{\"family\": 0}",
     "trial values: parameter 'family' is not a string (an option's label)"},
    {"number given as text", "{\"train.folds\": \"3\"}",
     "trial values: parameter 'train.folds' is not a number"},
    {"active parameter missing",
     "{\"pipeline.window\": 5, \"train.tol\": 1e-9, \"train.test_fraction\": 0.2, "
     "\"pipeline.impute_value\": 0, \"train.folds\": 2, \"pipeline.window_stats\": \"mean\", "
     "\"pipeline.scale\": \"minmax\", \"family\": \"logistic\", \"family=logistic/train.l2\": 1}",
     "trial values: parameter 'family=logistic/train.max_iter' is missing"},
    {"inactive parameter given",
     "{\"pipeline.window\": 5, \"train.tol\": 1e-9, \"train.test_fraction\": 0.2, "
     "\"pipeline.impute_value\": 0, \"train.folds\": 2, \"pipeline.window_stats\": \"mean\", "
     "\"pipeline.scale\": \"minmax\", \"family\": \"ridge\", \"family=ridge/train.l2\": 1, "
     "\"family=logistic/train.l2\": 1}",
     "trial values: parameter 'family=logistic/train.l2' is given, but its branch is not chosen"},
    {"not an object", "[1, 2]", "trial values: expected a JSON object"},
};

static void test_example_json_errors(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    double values[EX_NPARAMS];
    for (size_t i = 0; i < ARRAY_LEN(json_error_cases); i++) {
        const struct json_error_case *c = &json_error_cases[i];
        json_error_t jerr;
        json_t *object = json_loads(c->json, 0, &jerr);
        if (!object)
            fail_msg("%s: bad test JSON: %s", c->name, jerr.text);
        char err[256] = "";
        int rc = tune_space_values_from_json(space, object, values, EX_NPARAMS, err, sizeof err);
        if (rc != TB_PARSE || strcmp(err, c->message) != 0)
            fail_msg("%s: got %d '%s', want TB_PARSE '%s'", c->name, rc, err, c->message);
        json_decref(object);
    }
    json_t *empty = json_object();
    char err[256] = "";
    assert_int_equal(
        tune_space_values_from_json(space, empty, values, EX_NPARAMS - 1, err, sizeof err),
        TB_USAGE);
    assert_string_equal(err, "room for 10 values, the space has 11");
    json_decref(empty);
    tune_space_destroy(space);
}

/* ---- applying -------------------------------------------------------------------------------- */

/* Top-level constants (a scalar and a list) are set whatever the trial. */
static void test_apply_top_level_constants(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, "train.split: group\n"
                                             "pipeline.window_columns: [s2, s3]\n"
                                             "train.l2: {loguniform: [0.5, 2]}\n");
    assert_int_equal(tpe_space_size(tune_space_tpe(space)), 1);
    struct config *cfg = config_new();
    const double values[1] = {0.75};
    char err[256] = "", list[64];
    assert_int_equal(tune_space_apply(space, values, cfg, err, sizeof err), TB_OK);
    assert_string_equal(cfg->train.split, "group");
    assert_string_equal(
        join_list(cfg->pipeline.window_columns, cfg->pipeline.nwindow_columns, list, sizeof list),
        "s2,s3");
    assert_true(cfg->train.l2 == 0.75);
    config_destroy(cfg);
    tune_space_destroy(space);
}

/* Numbers reach the configuration exactly: integers as integers, others through "%.17g". */
static void test_apply_numbers_exact(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, "train.l2: {uniform: [0, 1]}\n"
                                             "train.seed: {randint: [-5, 5]}\n"
                                             "pipeline.window: {quniform: [0, 100, 10]}\n");
    struct config *cfg = config_new();
    const double values[3] = {0.1 + 0.2, -3, 70};
    char err[256] = "";
    assert_int_equal(tune_space_apply(space, values, cfg, err, sizeof err), TB_OK);
    assert_true(cfg->train.l2 == 0.1 + 0.2);
    assert_true(cfg->train.seed == -3);
    assert_int_equal(cfg->pipeline.window, 70);
    config_destroy(cfg);
    tune_space_destroy(space);
}

/* A quantised value rounded below the key's bound is refused at apply time, with cfg unchanged. */
static void test_apply_refused_value(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, "train.l2: {uniform: [0, 1]}\n"
                                             "train.max_iter: {quniform: [1, 100, 10]}\n");
    struct config *cfg = config_new();
    const double values[2] = {0.5, 0}; /* round(1 / 10) * 10 = 0: possible, and below 1 */
    char err[256] = "";
    assert_int_equal(tune_space_apply(space, values, cfg, err, sizeof err), TB_CONFIG);
    assert_string_equal(err, "tune train.max_iter: 0 is out of range (1..1000000)");
    assert_true(cfg->train.l2 == 1.0); /* the default: nothing was applied */
    config_destroy(cfg);
    tune_space_destroy(space);
}

/* Values that tpe_ask would never give are refused, not applied. */
static void test_apply_malformed_values(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, example_space);
    struct config *cfg = config_new();
    double values[EX_NPARAMS] = {25, 3e-10, 0.25, -0.5, 3, 1, 0, 1, NAN, 0.5, 200};
    char err[256] = "";
    values[EX_LOGISTIC_L2] = NAN;
    assert_int_equal(tune_space_apply(space, values, cfg, err, sizeof err), TB_CONFIG);
    assert_string_equal(err, "parameter 'family=logistic/train.l2' has no value");
    values[EX_LOGISTIC_L2] = 0.5;
    values[EX_FAMILY] = 2;
    assert_int_equal(tune_space_apply(space, values, cfg, err, sizeof err), TB_CONFIG);
    assert_string_equal(err, "parameter 'family': 2 is not an option index");
    config_destroy(cfg);
    tune_space_destroy(space);
}

/* ---- nesting and labels ---------------------------------------------------------------------- */

static const char nested_space[] = "model:\n"
                                   "  choice:\n"
                                   "    - train.model: logistic\n"
                                   "      solver:\n"
                                   "        choice:\n"
                                   "          - train.tol: 1e-6\n"
                                   "          - train.max_iter: {randint: [10, 20]}\n"
                                   "    - {}\n"
                                   "    - train.model: ridge\n"
                                   "      train.l2: {uniform: [0, 2]}\n"
                                   "    - train.model: ridge\n"
                                   "      pipeline.scale: minmax\n";

/* Labels: a unique first constant, else the index; names carry the path of branches; a nested
 * choice's parameters are active only under both of their options. */
static void test_nested_choices(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, nested_space);
    const struct tpe_space *tpe = tune_space_tpe(space);
    static const struct {
        const char *name, *labels;
        int parent, option;
    } want[] = {
        {"model", "logistic|1|2|3", TPE_ROOT, -1},
        {"model=logistic/solver", "1e-6|1", 0, 0},
        {"model=logistic/solver=1/train.max_iter", NULL, 1, 1},
        {"model=2/train.l2", NULL, 0, 2},
    };
    assert_int_equal(tpe_space_size(tpe), ARRAY_LEN(want));
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        struct tpe_param p;
        int parent = 0, option = 0;
        assert_int_equal(tpe_space_describe(tpe, i, &p, &parent, &option), TB_OK);
        assert_string_equal(p.name, want[i].name);
        assert_int_equal(parent, want[i].parent);
        assert_int_equal(option, want[i].option);
        if (want[i].labels) {
            char joined[128] = "";
            for (size_t k = 0; k < p.noptions; k++) {
                strcat(joined, k ? "|" : "");
                strcat(joined, p.options[k]);
            }
            assert_string_equal(joined, want[i].labels);
        }
    }

    struct tpe_study *study = random_study(space, 3);
    struct config *defaults = config_new();
    size_t seen[5] = {0}; /* model options 0 .. 3, and solver option 1 */
    double values[4];
    for (int trial = 0; trial < TRIALS; trial++) {
        ask(study, values, 4);
        struct config *cfg = config_new();
        char err[256] = "";
        if (tune_space_apply(space, values, cfg, err, sizeof err) != TB_OK)
            fail_msg("trial %d: %s", trial, err);
        int model = (int)values[0];
        assert_true(model >= 0 && model < 4);
        seen[model]++;
        if (model != 0)
            assert_true(isnan(values[1]) && isnan(values[2]));
        if (model != 2)
            assert_true(isnan(values[3]));
        switch (model) {
        case 0:
            assert_string_equal(cfg->train.model, "logistic");
            if (values[1] == 0) {
                assert_true(cfg->train.tol == 1e-6);
                assert_int_equal(cfg->train.max_iter, defaults->train.max_iter);
                assert_true(isnan(values[2]));
            } else {
                seen[4]++;
                assert_true(cfg->train.tol == defaults->train.tol);
                assert_true(cfg->train.max_iter >= 10 && cfg->train.max_iter < 20);
                assert_true(cfg->train.max_iter == values[2]);
            }
            break;
        case 1: /* the empty branch changes nothing */
            assert_string_equal(cfg->train.model, defaults->train.model);
            assert_true(cfg->train.l2 == defaults->train.l2);
            assert_string_equal(cfg->pipeline.scale, defaults->pipeline.scale);
            break;
        case 2:
            assert_string_equal(cfg->train.model, "ridge");
            assert_true(cfg->train.l2 >= 0 && cfg->train.l2 <= 2 && cfg->train.l2 == values[3]);
            assert_string_equal(cfg->pipeline.scale, defaults->pipeline.scale);
            break;
        default:
            assert_string_equal(cfg->train.model, "ridge");
            assert_string_equal(cfg->pipeline.scale, "minmax");
            assert_true(cfg->train.l2 == defaults->train.l2);
        }
        config_destroy(cfg);
    }
    for (size_t k = 0; k < 5; k++)
        assert_true(seen[k] > 10);
    config_destroy(defaults);
    tpe_study_destroy(study);
    tune_space_destroy(space);
}

/* A constant "1" would clash with branch 1's index: then every branch goes by its index. */
static void test_branch_labels_clash(void **state)
{
    struct fixture *fx = *state;
    struct tune_space *space = load_text(fx, "x:\n"
                                             "  choice:\n"
                                             "    - train.folds: 1\n"
                                             "    - train.l2: {uniform: [0, 1]}\n");
    const struct tpe_space *tpe = tune_space_tpe(space);
    struct tpe_param p;
    assert_int_equal(tpe_space_size(tpe), 2);
    assert_int_equal(tpe_space_describe(tpe, 0, &p, NULL, NULL), TB_OK);
    assert_int_equal(p.noptions, 2);
    assert_string_equal(p.options[0], "0");
    assert_string_equal(p.options[1], "1");
    assert_int_equal(tpe_space_describe(tpe, 1, &p, NULL, NULL), TB_OK);
    assert_string_equal(p.name, "x=1/train.l2");
    tune_space_destroy(space);
}

/* ---- load errors ----------------------------------------------------------------------------- */

/* A space file that must be refused: the message is "<path>:<line>: <message>" ("<path>: ..."
 * when line is 0). */
struct load_error_case {
    const char *name;
    const char *yaml;
    int line;
    const char *message;
};

static const struct load_error_case load_error_cases[] = {
    {"brief example: x.y is not a key",
     "train.l2: {loguniform: [0.001, 1000]}\n"
     "pipeline.window: {quniform: [5, 50, 5]}\n"
     "train.tol: {qloguniform: [1e-10, 1e-4, 1e-10]}\n"
     "x.y: {uniform: [0, 1]}\n"
     "x.z: {normal: [0, 1]}\n",
     4, "'x.y' is not a configuration key"},
    {"brief example: train.l2 at the top and in a branch",
     "train.l2: {loguniform: [0.001, 1000]}\n"
     "train.max_iter: {randint: [50, 500]}\n"
     "family:\n"
     "  choice:\n"
     "    - train.model: ridge\n"
     "      train.l2: {loguniform: [0.01, 1000]}\n",
     6, "'train.l2' is set twice on one path (first at line 1)"},
    {"unknown key", "train.l2: {loguniform: [0.001, 1]}\n\n\ntrain.l3: {loguniform: [0.001, 1]}\n",
     4, "'train.l3' is not a configuration key"},
    {"unknown key with a constant", "train.l2: {uniform: [0, 1]}\ntrian.split: random\n", 2,
     "'trian.split' is not a configuration key"},
    {"unknown key in a branch",
     "family:\n  choice:\n    - train.model: ridge\n      train.l3: {uniform: [0, 1]}\n", 4,
     "'train.l3' is not a configuration key"},
    {"too many arguments", "train.l2: {loguniform: [0.001, 1, 2]}\n", 1,
     "train.l2: loguniform takes 2 arguments (low, high), got 3"},
    {"too few arguments", "pipeline.window: {quniform: [5, 50]}\n", 1,
     "pipeline.window: quniform takes 3 arguments (low, high, q), got 2"},
    {"arguments not a list", "train.l2: {uniform: 5}\n", 1,
     "train.l2: uniform takes a list of 2 arguments (low, high)"},
    {"argument not a number", "train.l2:\n  uniform: [0, abc]\n", 2,
     "train.l2: uniform argument 'abc' is not a number"},
    {"low above high", "train.l2: {uniform: [5, 1]}\n", 1,
     "train.l2: uniform needs low < high (got 5, 1)"},
    {"low equal to high", "train.l2: {loguniform: [1, 1]}\n", 1,
     "train.l2: loguniform needs low < high (got 1, 1)"},
    {"loguniform low zero", "train.l2: {loguniform: [0, 1]}\n", 1,
     "train.l2: loguniform needs low > 0 (got 0)"},
    {"qloguniform low negative", "train.tol: {qloguniform: [-1, 1, 0.1]}\n", 1,
     "train.tol: qloguniform needs low > 0 (got -1)"},
    {"q zero", "pipeline.window: {quniform: [5, 50, 0]}\n", 1,
     "pipeline.window: quniform needs q > 0 (got 0)"},
    {"q negative", "train.tol: {qloguniform: [1e-10, 1e-4, -1e-10]}\n", 1,
     "train.tol: qloguniform needs q > 0 (got -1e-10)"},
    {"sigma negative", "pipeline.impute_value: {normal: [0, -1]}\n", 1,
     "pipeline.impute_value: normal needs sigma > 0 (got -1)"},
    {"sigma zero", "pipeline.impute_value: {normal: [0, 0]}\n", 1,
     "pipeline.impute_value: normal needs sigma > 0 (got 0)"},
    {"randint fractional", "train.max_iter: {randint: [1.5, 10]}\n", 1,
     "train.max_iter: randint needs integer bounds (got 1.5, 10)"},
    {"randint empty", "train.max_iter: {randint: [10, 10]}\n", 1,
     "train.max_iter: randint needs low < high (got 10, 10)"},
    {"unknown distribution", "train.l2: {logunifrom: [0.001, 1]}\n", 1,
     "train.l2: unknown distribution 'logunifrom' (expected uniform, loguniform, quniform, "
     "qloguniform, normal, randint or choice)"},
    {"two distributions", "train.l2: {uniform: [0, 1], normal: [0, 1]}\n", 1,
     "train.l2: expected one distribution, got a mapping of 2 entries"},
    {"empty choice", "pipeline.scale: {choice: []}\n", 1,
     "pipeline.scale: choice needs at least one option"},
    {"empty conditional choice", "family:\n  choice: []\n", 2,
     "family: choice needs at least one option"},
    {"set twice in sibling choices",
     "a:\n  choice:\n    - train.l2: 1\n    - {}\nb:\n  choice:\n    - train.l2: {uniform: [0, "
     "1]}\n",
     7, "'train.l2' is set twice on one path (first at line 3)"},
    {"set twice in a nested branch",
     "a:\n  choice:\n    - train.l2: {uniform: [0, 1]}\n      b:\n        choice:\n          - "
     "train.l2: 2\n",
     6, "'train.l2' is set twice on one path (first at line 3)"},
    {"duplicate key", "train.l2: {uniform: [0, 1]}\ntrain.l2: 2\n", 2, "duplicate key 'train.l2'"},
    {"bad constant", "train.l2: {uniform: [0, 1]}\npipeline.scale: fancy\n", 2,
     "pipeline.scale: 'fancy' is not one of none|standard|minmax"},
    {"bad constant in a branch",
     "family:\n  choice:\n    - train.model: linear\n      train.l2: {uniform: [0, 1]}\n", 3,
     "train.model: 'linear' is not one of ridge|logistic|softmax"},
    {"bad choice option", "pipeline.scale:\n  choice:\n    - standard\n    - fancy\n", 4,
     "pipeline.scale: 'fancy' is not one of none|standard|minmax"},
    {"bad list option", "pipeline.window_stats: {choice: [[mean], [mean, '']]}\n", 1,
     "pipeline.window_stats: 'mean,' has an empty item"},
    {"option given twice", "pipeline.window_stats: {choice: [[mean, std], 'mean,std']}\n", 1,
     "pipeline.window_stats: option 'mean,std' is given twice"},
    {"list item with a comma", "pipeline.window_stats: {choice: [[mean], ['mean,std']]}\n", 1,
     "pipeline.window_stats: list item 'mean,std' contains a comma"},
    {"bound out of the key's range", "train.l2: {uniform: [-1, 1]}\n", 1,
     "train.l2: uniform low -1 is refused: -1 is out of range (>= 0)"},
    {"randint beyond the key's range", "train.folds: {randint: [2, 102]}\n", 1,
     "train.folds: randint largest value 101 is refused: 101 is out of range (0..100)"},
    {"continuous distribution on an integer key", "pipeline.window: {uniform: [5, 50]}\n", 1,
     "pipeline.window: uniform value 5.5 is refused: '5.5' is not an integer"},
    {"fractional step on an integer key", "pipeline.window: {quniform: [5, 50, 2.5]}\n", 1,
     "pipeline.window: quniform value 7.5 is refused: '7.5' is not an integer"},
    {"distribution on a choice key", "pipeline.scale: {uniform: [0, 1]}\n", 1,
     "pipeline.scale: uniform low 0 is refused: '0' is not one of none|standard|minmax"},
    {"not a key, not a choice", "family: ridge\n", 1, "'family' is not a configuration key"},
    {"branches that are not mappings", "family:\n  choice: [ridge, logistic]\n", 2,
     "'family' is not a configuration key, so the options of its choice must be mappings "
     "(branches)"},
    {"a mapping as a key's option", "train.model: {choice: [ridge, {train.l2: 1}]}\n", 1,
     "train.model: option 1 is a mapping; a conditional choice needs a name that is not a "
     "configuration key"},
    {"not a mapping at the top", "- train.l2\n- train.l3\n", 1, "expected a mapping at the top"},
    {"empty file", "# nothing\n", 0, "the search space is empty"},
    {"only constants", "train.model: ridge\ntrain.l2: 3\n", 0,
     "the search space has no parameter (no distribution and no choice)"},
    {"two documents", "train.l2: {uniform: [0, 1]}\n---\ntrain.l2: 2\n", 2,
     "expected one YAML document, found another"},
};

static void test_load_error(void **state)
{
    struct fixture *fx = *state;
    const struct load_error_case *c = fx->data;
    support_write_file(fx->path, c->yaml, strlen(c->yaml));
    char want[1400];
    if (c->line > 0)
        snprintf(want, sizeof want, "%s:%d: %s", fx->path, c->line, c->message);
    else
        snprintf(want, sizeof want, "%s: %s", fx->path, c->message);
    struct tune_space *space = tune_space_load(fx->path, fx->err, sizeof fx->err);
    if (space) {
        tune_space_destroy(space);
        fail_msg("%s: loaded, want '%s'", c->name, want);
    }
    if (strcmp(fx->err, want) != 0)
        fail_msg("%s:\n  got  '%s'\n  want '%s'", c->name, fx->err, want);
}

/* libyaml's own wording follows the file and line of the error. */
static void test_load_yaml_syntax_error(void **state)
{
    struct fixture *fx = *state;
    static const char text[] = "train.l2: {uniform: [0, 1]}\ntrain.tol: {uniform: [1, 2]\n";
    support_write_file(fx->path, text, strlen(text));
    char want[1200];
    snprintf(want, sizeof want, "%s:3: YAML syntax error: ", fx->path);
    assert_null(tune_space_load(fx->path, fx->err, sizeof fx->err));
    if (strncmp(fx->err, want, strlen(want)) != 0)
        fail_msg("got '%s', want '%s...'", fx->err, want);
}

static void test_load_missing_file(void **state)
{
    struct fixture *fx = *state;
    char want[1200];
    snprintf(want, sizeof want, "%s: No such file or directory", fx->path);
    assert_null(tune_space_load(fx->path, fx->err, sizeof fx->err));
    assert_string_equal(fx->err, want);
}

/* ---- the shipped spaces ---------------------------------------------------------------------- */

/* Loads a shipped space and its base configuration, and applies 50 random trials over the base:
 * every one applies. Returns the space, for the caller's further checks. */
static struct tune_space *check_shipped(const char *space_path, const char *base_path)
{
    char err[1024] = "";
    struct tune_space *space = tune_space_load(space_path, err, sizeof err);
    if (!space)
        fail_msg("%s: %s", space_path, err);
    size_t n = tpe_space_size(tune_space_tpe(space));
    double *values = mem_alloc(n * sizeof *values);
    struct tpe_study *study = random_study(space, 11);
    for (int trial = 0; trial < 50; trial++) {
        ask(study, values, n);
        struct config *cfg = config_new();
        if (config_load_file(cfg, base_path, err, sizeof err) != TB_OK)
            fail_msg("%s", err);
        if (tune_space_apply(space, values, cfg, err, sizeof err) != TB_OK)
            fail_msg("%s, trial %d: %s", space_path, trial, err);
        config_destroy(cfg);
    }
    tpe_study_destroy(study);
    free(values);
    return space;
}

static void test_shipped_fd001(void **state)
{
    (void)state;
    struct tune_space *space = check_shipped("config/spaces/fd001.yaml", "config/fd001.yaml");
    const struct tpe_space *tpe = tune_space_tpe(space);
    struct tpe_param p;
    int window = tpe_space_find(tpe, "pipeline.window");
    assert_true(window >= 0);
    assert_int_equal(tpe_space_describe(tpe, (size_t)window, &p, NULL, NULL), TB_OK);
    assert_int_equal(p.kind, TPE_QUNIFORM);
    assert_true(p.low == 10 && p.high == 50 && p.q == 5);
    assert_true(tpe_space_find(tpe, "pipeline.window_stats") >= 0);
    assert_true(tpe_space_find(tpe, "train.l2") >= 0);
    assert_true(tpe_space_find(tpe, "pipeline.scale") >= 0);
    tune_space_destroy(space);
}

static void test_shipped_ai4i(void **state)
{
    (void)state;
    struct tune_space *space = check_shipped("config/spaces/ai4i.yaml", "config/ai4i.yaml");
    const struct tpe_space *tpe = tune_space_tpe(space);
    struct tpe_param p;
    int l2 = tpe_space_find(tpe, "train.l2");
    assert_true(l2 >= 0);
    assert_int_equal(tpe_space_describe(tpe, (size_t)l2, &p, NULL, NULL), TB_OK);
    assert_int_equal(p.kind, TPE_LOGUNIFORM);
    assert_true(tpe_space_find(tpe, "pipeline.scale") >= 0);
    tune_space_destroy(space);
}

#define CASE(fn)                                                                                   \
    {                                                                                              \
#fn, fn, fixture_setup, fixture_teardown, NULL                                             \
    }

/* clang-format off */
static const struct CMUnitTest fixed_tests[] = {
    CASE(test_example_space),
    CASE(test_example_trials_apply),
    CASE(test_example_json_round_trip),
    CASE(test_example_json_content),
    CASE(test_example_json_errors),
    CASE(test_apply_top_level_constants),
    CASE(test_apply_numbers_exact),
    CASE(test_apply_refused_value),
    CASE(test_apply_malformed_values),
    CASE(test_nested_choices),
    CASE(test_branch_labels_clash),
    CASE(test_load_missing_file),
    CASE(test_load_yaml_syntax_error),
    CASE(test_shipped_fd001),
    CASE(test_shipped_ai4i),
};
/* clang-format on */

int main(void)
{
    /* The fixed cases, then one case per load error, named after it. */
    struct CMUnitTest tests[ARRAY_LEN(fixed_tests) + ARRAY_LEN(load_error_cases)];
    char names[ARRAY_LEN(load_error_cases)][96];
    for (size_t i = 0; i < ARRAY_LEN(fixed_tests); i++)
        tests[i] = fixed_tests[i];
    for (size_t i = 0; i < ARRAY_LEN(load_error_cases); i++) {
        snprintf(names[i], sizeof names[i], "load error: %s", load_error_cases[i].name);
        tests[ARRAY_LEN(fixed_tests) + i] =
            (struct CMUnitTest){names[i], test_load_error, fixture_setup, fixture_teardown,
                                (void *)&load_error_cases[i]};
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
