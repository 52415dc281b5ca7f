/* Unit tests for the artefact module (service/registry/artefact*): round trips of every model
 * kind with a full pipeline, atomic writes, refusal of damaged or inconsistent files (framing,
 * varints, embedded schemas, records), and Python's avro package as a second reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/registry/crc32.h"
#include "tests/support/support.h"

#include <avro.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- fixtures --------------------------------------------------------------------------------- */

static char *path_in(void **state, const char *name)
{
    char *path = mem_alloc(1024);
    snprintf(path, 1024, "%s/%s", (const char *)*state, name);
    return path;
}

/* The sample pipeline, written by hand as a fitted spec: 3 numeric inputs imputed with their
 * means and a missing indicator on s2, a window of 5 over s2 and s3 with mean, std and slope, one
 * categorical input with 3 categories, and standard scaling of the 10 columns before the one-hot
 * ones (3 inputs, 1 indicator, 2 x 3 window statistics). The numbers are made up and distinct,
 * so that each can be found in the file's bytes. */
enum { NNUMERIC = 3, NSCALED = 10, NFEATURES = 13, MAX_CLASSES = 3, NINPUTS = 4 };

static char *numeric_names[NNUMERIC] = {"setting1", "s2", "s3"};
static char *categorical_names[1] = {"mode"};
static char *mode_categories[3] = {"H", "L", "M"};
static char **categories[1] = {mode_categories};
static size_t ncategories[1] = {3};
static double fills[NNUMERIC] = {0.5, 641.8125, 1589.0625};
static bool indicators[NNUMERIC] = {false, true, false};
static size_t window_columns[2] = {1, 2};
static double offsets[NSCALED] = {0.4375, 641.6875, 1589.4375, 0.0625, 641.75,
                                  0.375,  0.015625, 1589.125,  3.25,   -0.03125};
static double factors[NSCALED] = {4.0, 2.0, 0.125, 4.25, 2.5, 1.75, 8.5, 0.1875, 0.3125, 16.5};

static const struct pipeline_spec sample_spec = {
    .nnumeric = NNUMERIC,
    .numeric = numeric_names,
    .ncategorical = 1,
    .categorical = categorical_names,
    .ncategories = ncategories,
    .categories = categories,
    .impute = PIPELINE_IMPUTE_MEAN,
    .impute_value = 0.0,
    .fill = fills,
    .indicator = indicators,
    .window = 5,
    .window_stats = PIPELINE_STAT_MEAN | PIPELINE_STAT_STD | PIPELINE_STAT_SLOPE,
    .nwindow_columns = 2,
    .window_columns = window_columns,
    .scale = PIPELINE_SCALE_STANDARD,
    .nscaled = NSCALED,
    .offset = offsets,
    .factor = factors,
};

/* What pipeline.h says the sample spec makes: the inputs, the indicator, the window columns
 * ("<name>_<stat>_<window>" per column in stat order), then "<name>=<category>". */
static const char *const feature_names[NFEATURES] = {
    "setting1",  "s2",       "s3",         "s2_missing", "s2_mean_5", "s2_std_5", "s2_slope_5",
    "s3_mean_5", "s3_std_5", "s3_slope_5", "mode=H",     "mode=L",    "mode=M"};

static double ridge_intercept[1] = {117.5};
static double ridge_coef[NFEATURES] = {0.5,   -1.25,  3.0e-3, 42.0,  -7.75, 0.8125, 1.0625,
                                       -2.25, 0.4375, 9.5,    -11.0, 12.25, 13.0625};
static double logistic_classes[2] = {0.0, 1.0};
static double logistic_intercept[1] = {-0.75};
static double logistic_coef[NFEATURES] = {0.15625, -0.3125,  0.625,   1.875,    -0.0546875,
                                          2.375,   -3.5,     0.71875, -0.84375, 5.5,
                                          0.03125, -0.09375, 0.28125};
static double softmax_classes[MAX_CLASSES] = {1.0, 2.0, 4.0};
static double softmax_intercept[MAX_CLASSES] = {0.25, -0.5, 0.125};
static double softmax_coef[MAX_CLASSES * NFEATURES] = {
    0.1,  -0.2, 0.3,  -0.4, 0.5,  -0.6, 0.7,  -0.8, 0.9,  -1.1, 1.2,  -1.3, 1.4,
    -1.5, 1.6,  -1.7, 1.8,  -1.9, 2.1,  -2.2, 2.3,  -2.4, 2.5,  -2.6, 2.7,  -2.8,
    2.9,  -3.1, 3.2,  -3.3, 3.4,  -3.5, 3.6,  -3.7, 3.8,  -3.9, 4.1,  -4.2, 4.3};

/* One artefact of each model kind, all on the sample pipeline. */
struct sample {
    enum linear_kind kind;
    const char *kind_name;
    const char *name, *trainer, *label;
    size_t noutputs, nclasses;
    double *intercept, *coef, *classes;
};

static const struct sample samples[] = {
    [LINEAR_RIDGE] = {LINEAR_RIDGE, "ridge", "rul-fd001", "ridge", "rul", 1, 0, ridge_intercept,
                      ridge_coef, NULL},
    [LINEAR_LOGISTIC] = {LINEAR_LOGISTIC, "logistic", "failure-ai4i", "logistic-lbfgs", "failure",
                         1, 2, logistic_intercept, logistic_coef, logistic_classes},
    [LINEAR_SOFTMAX] = {LINEAR_SOFTMAX, "softmax", "wear-fleet", "softmax-lbfgs", "wear_class",
                        MAX_CLASSES, MAX_CLASSES, softmax_intercept, softmax_coef, softmax_classes},
};

static struct linear_model sample_model(const struct sample *s)
{
    return (struct linear_model){.kind = s->kind,
                                 .nfeatures = NFEATURES,
                                 .noutputs = s->noutputs,
                                 .nclasses = s->nclasses,
                                 .intercept = s->intercept,
                                 .coef = s->coef,
                                 .classes = s->classes};
}

static struct pipeline *sample_pipeline(void)
{
    char err[512] = "";
    struct pipeline *p = pipeline_new(&sample_spec, err, sizeof(err));
    if (!p) {
        print_error("pipeline_new refused the sample spec: %s\n", err);
        fail();
    }
    return p;
}

/* The sample artefact of kind, created at created_at_ms. */
static struct artefact *sample_artefact_at(enum linear_kind kind, int64_t created_at_ms)
{
    const struct sample *s = &samples[kind];
    struct pipeline *pipeline = sample_pipeline();
    struct linear_model model = sample_model(s);
    struct artefact_info info = {
        .name = s->name,
        .version = 3,
        .created_at_ms = created_at_ms,
        .trainer = s->trainer,
        .label = s->label,
        .input_schema_fingerprint = "sha256:0123abcd",
    };
    char err[512] = "";
    struct artefact *a = artefact_new(&info, pipeline, &model, err, sizeof(err));
    pipeline_destroy(pipeline); /* the artefact holds its own copy */
    if (!a) {
        print_error("artefact_new (%s): %s\n", s->kind_name, err);
        fail();
    }
    artefact_set_hyperparameter(a, "l2", 1.0);
    artefact_set_metric(a, "rmse", 31.75);
    artefact_set_metric(a, "r2", 0.58);
    artefact_set_metric(a, "nasa_score", 1.5e6);
    return a;
}

static struct artefact *sample_artefact_of(enum linear_kind kind)
{
    return sample_artefact_at(kind, 1700000000123);
}

static struct artefact *sample_artefact(void)
{
    return sample_artefact_of(LINEAR_RIDGE);
}

static void write_or_fail(const struct artefact *a, const char *path)
{
    char err[512] = "";
    int rc = artefact_write(a, path, err, sizeof(err));
    if (rc != TB_OK) {
        print_error("artefact_write: %s\n", err);
        fail();
    }
}

static struct artefact *read_or_fail(const char *path)
{
    char err[512] = "";
    struct artefact *a = artefact_read(path, err, sizeof(err));
    if (!a) {
        print_error("artefact_read: %s\n", err);
        fail();
    }
    return a;
}

/* artefact_read must refuse path with a message that starts with the path and holds want. */
static void expect_refused(const char *path, const char *want)
{
    char err[512] = "";
    struct artefact *a = artefact_read(path, err, sizeof(err));
    if (a) {
        artefact_destroy(a);
        print_error("%s was accepted; expected \"%s\"\n", path, want);
        fail();
    }
    if (strncmp(err, path, strlen(path)) != 0 || !strstr(err, want)) {
        print_error("message \"%s\" does not start with %s or lacks \"%s\"\n", err, path, want);
        fail();
    }
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Writes "why" and returns false from the enclosing function when cond holds. */
#define DIFFER_IF(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            snprintf(why, whysz, __VA_ARGS__);                                                     \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* Whether the pipeline is the sample spec, field by field, and makes the sample's features. */
static bool is_sample_pipeline(const struct pipeline *p, char *why, size_t whysz)
{
    const struct pipeline_spec *s = pipeline_spec(p);
    DIFFER_IF(s->nnumeric != NNUMERIC, "%zu numeric inputs", s->nnumeric);
    for (size_t j = 0; j < NNUMERIC; j++)
        DIFFER_IF(strcmp(s->numeric[j], numeric_names[j]) != 0, "numeric input %zu is '%s'", j,
                  s->numeric[j]);
    DIFFER_IF(s->ncategorical != 1, "%zu categorical inputs", s->ncategorical);
    DIFFER_IF(strcmp(s->categorical[0], "mode") != 0, "categorical input '%s'", s->categorical[0]);
    DIFFER_IF(s->ncategories[0] != 3, "%zu categories", s->ncategories[0]);
    for (size_t k = 0; k < 3; k++)
        DIFFER_IF(strcmp(s->categories[0][k], mode_categories[k]) != 0, "category %zu is '%s'", k,
                  s->categories[0][k]);
    DIFFER_IF(s->impute != PIPELINE_IMPUTE_MEAN, "impute %d", (int)s->impute);
    DIFFER_IF(memcmp(&s->impute_value, &sample_spec.impute_value, sizeof(double)) != 0,
              "impute value %.17g", s->impute_value);
    DIFFER_IF(memcmp(s->fill, fills, sizeof(fills)) != 0, "fills differ");
    for (size_t j = 0; j < NNUMERIC; j++)
        DIFFER_IF(s->indicator[j] != indicators[j], "indicator %zu differs", j);
    DIFFER_IF(s->window != 5, "window %zu", s->window);
    DIFFER_IF(s->window_stats != sample_spec.window_stats, "window stats 0x%x", s->window_stats);
    DIFFER_IF(s->nwindow_columns != 2, "%zu window columns", s->nwindow_columns);
    DIFFER_IF(memcmp(s->window_columns, window_columns, sizeof(window_columns)) != 0,
              "window columns differ");
    DIFFER_IF(s->scale != PIPELINE_SCALE_STANDARD, "scale %d", (int)s->scale);
    DIFFER_IF(s->nscaled != NSCALED, "%zu scaled columns", s->nscaled);
    DIFFER_IF(memcmp(s->offset, offsets, sizeof(offsets)) != 0, "offsets differ");
    DIFFER_IF(memcmp(s->factor, factors, sizeof(factors)) != 0, "factors differ");
    DIFFER_IF(pipeline_ninputs(p) != NINPUTS, "%zu inputs", pipeline_ninputs(p));
    DIFFER_IF(pipeline_nfeatures(p) != NFEATURES, "%zu features", pipeline_nfeatures(p));
    for (size_t i = 0; i < NFEATURES; i++)
        DIFFER_IF(strcmp(pipeline_feature_name(p, i), feature_names[i]) != 0,
                  "pipeline feature %zu is '%s'", i, pipeline_feature_name(p, i));
    return true;
}

/* Whether the artefact holds the sample's model and pipeline, with the features listed. */
static bool holds_sample(const struct artefact *a, const struct sample *s, char *why, size_t whysz)
{
    const struct linear_model *m = artefact_model(a);
    DIFFER_IF(strcmp(artefact_model_kind(a), s->kind_name) != 0, "kind '%s'",
              artefact_model_kind(a));
    DIFFER_IF(m->kind != s->kind, "kind %d", (int)m->kind);
    DIFFER_IF(m->nfeatures != NFEATURES, "model takes %zu features", m->nfeatures);
    DIFFER_IF(m->noutputs != s->noutputs, "%zu outputs", m->noutputs);
    DIFFER_IF(m->nclasses != s->nclasses, "%zu classes", m->nclasses);
    DIFFER_IF(s->nclasses == 0 && m->classes != NULL, "classes of a ridge model");
    DIFFER_IF(s->nclasses > 0 && memcmp(m->classes, s->classes, s->nclasses * sizeof(double)),
              "classes differ");
    DIFFER_IF(memcmp(m->intercept, s->intercept, s->noutputs * sizeof(double)) != 0,
              "intercepts differ");
    DIFFER_IF(memcmp(m->coef, s->coef, s->noutputs * NFEATURES * sizeof(double)) != 0,
              "coefficients differ");
    DIFFER_IF(artefact_nfeatures(a) != NFEATURES, "%zu features", artefact_nfeatures(a));
    for (size_t i = 0; i < NFEATURES; i++)
        DIFFER_IF(strcmp(artefact_feature(a, i), feature_names[i]) != 0, "feature %zu is '%s'", i,
                  artefact_feature(a, i));
    DIFFER_IF(artefact_feature(a, NFEATURES) != NULL, "a feature past the end");
    return is_sample_pipeline(artefact_pipeline(a), why, whysz);
}

static void assert_holds_sample(const struct artefact *a, const struct sample *s)
{
    char why[256] = "";
    if (!holds_sample(a, s, why, sizeof(why))) {
        print_error("the %s artefact differs from its sample: %s\n", s->kind_name, why);
        fail();
    }
}

/* The read artefact must compute what the built one computes: the same features from the same
 * rows (imputation, windows per key, one-hot, scaling) and the same predictions, bit for bit. */
static void assert_same_predictions(const struct artefact *a, const struct artefact *b)
{
    enum { NROWS = 7 };
    const double rows[NROWS * NINPUTS] = {
        0.25, 640.0, 1585.5, 0,   /* u1 */
        0.5,  NAN,   1590.0, 2,   /* u2: s2 missing, category M */
        0.75, 642.5, NAN,    1,   /* u1 */
        NAN,  643.0, 1592.5, -1,  /* u1: an unknown category */
        0.0,  641.0, 1588.0, NAN, /* u2: category missing */
        1.0,  644.5, 1593.0, 0,   /* u1 */
        0.5,  645.0, 1594.5, 1,   /* u1 */
    };
    const char *const keys[NROWS] = {"u1", "u2", "u1", "u1", "u2", "u1", "u1"};
    const struct pipeline_rows in = {.nrows = NROWS, .values = rows, .keys = keys};
    const struct pipeline *pa = artefact_pipeline(a), *pb = artefact_pipeline(b);
    struct pipeline_state *sa = pipeline_state_new(pa), *sb = pipeline_state_new(pb);
    assert_true(pipeline_state_fits(sa, pb));
    double fa[NROWS * NFEATURES], fb[NROWS * NFEATURES];
    pipeline_transform(pa, sa, &in, fa);
    pipeline_transform(pb, sb, &in, fb);
    assert_memory_equal(fa, fb, sizeof(fa));
    const struct linear_model *ma = artefact_model(a), *mb = artefact_model(b);
    assert_int_equal(linear_width(ma), linear_width(mb));
    double ya[NROWS * MAX_CLASSES], yb[NROWS * MAX_CLASSES];
    linear_predict(ma, fa, NROWS, ya);
    linear_predict(mb, fb, NROWS, yb);
    assert_memory_equal(ya, yb, NROWS * linear_width(ma) * sizeof(double));
    pipeline_state_destroy(sb);
    pipeline_state_destroy(sa);
}

/* Fails unless the manifests of a and b are equal field by field. */
static void assert_same_manifest(const struct artefact *a, const struct artefact *b)
{
    assert_string_equal(artefact_name(b), artefact_name(a));
    assert_int_equal(artefact_version(b), artefact_version(a));
    assert_int_equal(artefact_created_at_ms(b), artefact_created_at_ms(a));
    assert_string_equal(artefact_trainer(b), artefact_trainer(a));
    assert_string_equal(artefact_label(b), artefact_label(a));
    assert_string_equal(artefact_input_schema_fingerprint(b), artefact_input_schema_fingerprint(a));
    assert_string_equal(artefact_checksum(b), artefact_checksum(a));
    size_t na = 0, nb = 0;
    const struct artefact_param *pa = artefact_hyperparameters(a, &na);
    const struct artefact_param *pb = artefact_hyperparameters(b, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(pb[i].name, pa[i].name);
        assert_memory_equal(&pb[i].value, &pa[i].value, sizeof(double));
    }
    pa = artefact_metrics(a, &na);
    pb = artefact_metrics(b, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(pb[i].name, pa[i].name);
        assert_memory_equal(&pb[i].value, &pa[i].value, sizeof(double));
    }
}

/* --- rewriting files with Avro C's own reader and writer ---------------------------------------
 */

/* Continues *crc over the Avro binary encoding of value. */
static void crc_encoding(avro_value_t *value, uint32_t *crc)
{
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(value, &size), 0);
    char *enc = mem_alloc(size ? size : 1);
    avro_writer_t w = avro_writer_memory(enc, (int64_t)size);
    assert_non_null(w);
    assert_int_equal(avro_value_write(w, value), 0);
    avro_writer_free(w);
    *crc = crc32_update(*crc, enc, size);
    free(enc);
}

/* "crc32:" and the CRC-32 of the encodings of the record's pipeline and model, as the schema's
 * doc for the checksum field says. */
static void record_checksum(avro_value_t *record, char out[32])
{
    avro_value_t pipeline, model;
    assert_int_equal(avro_value_get_by_name(record, "pipeline", &pipeline, NULL), 0);
    assert_int_equal(avro_value_get_by_name(record, "model", &model, NULL), 0);
    uint32_t crc = 0;
    crc_encoding(&pipeline, &crc);
    crc_encoding(&model, &crc);
    snprintf(out, 32, "crc32:%08x", (unsigned)crc);
}

static avro_value_t field_of(avro_value_t *record, const char *part, const char *field)
{
    avro_value_t sub, f;
    assert_int_equal(avro_value_get_by_name(record, part, &sub, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&sub, field, &f, NULL), 0);
    return f;
}

typedef void record_patch(avro_value_t *record);

/* Reads the one record of the artefact at path with Avro C; calls patch on it (when not NULL);
 * with fix_checksum sets the manifest checksum to that of the patched pipeline and model, so that
 * only the patch is wrong; and writes nrecords copies of it back to path with Avro C's writer.
 * When checksum_out is not NULL, it receives the content checksum of the patched record. */
static void rewrite_artefact(const char *path, record_patch *patch, bool fix_checksum, int nrecords,
                             char *checksum_out)
{
    const char *json = artefact_schema_json();
    avro_schema_t schema = NULL;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    assert_non_null(iface);
    avro_value_t rec;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);

    avro_file_reader_t reader = NULL;
    assert_int_equal(avro_file_reader(path, &reader), 0);
    assert_int_equal(avro_file_reader_read_value(reader, &rec), 0);
    assert_int_equal(avro_file_reader_close(reader), 0);

    if (patch)
        patch(&rec);
    char checksum[32];
    record_checksum(&rec, checksum);
    if (checksum_out)
        memcpy(checksum_out, checksum, sizeof(checksum));
    if (fix_checksum) {
        avro_value_t f = field_of(&rec, "manifest", "checksum");
        assert_int_equal(avro_value_set_string(&f, checksum), 0);
    }

    assert_int_equal(remove(path), 0);
    avro_file_writer_t writer = NULL;
    assert_int_equal(avro_file_writer_create(path, schema, &writer), 0);
    for (int r = 0; r < nrecords; r++)
        assert_int_equal(avro_file_writer_append_value(writer, &rec), 0);
    assert_int_equal(avro_file_writer_close(writer), 0);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

/* Replaces the double array `array` by values[0..n). */
static void set_doubles(avro_value_t *array, const double *values, size_t n)
{
    avro_value_t e;
    assert_int_equal(avro_value_reset(array), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(avro_value_append(array, &e, NULL), 0);
        assert_int_equal(avro_value_set_double(&e, values[i]), 0);
    }
}

/* Removes the last item of the double array part.field. */
static void drop_last_double(avro_value_t *record, const char *part, const char *field)
{
    avro_value_t array = field_of(record, part, field), e;
    size_t n = 0;
    assert_int_equal(avro_value_get_size(&array, &n), 0);
    assert_true(n > 0);
    double *values = mem_alloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(avro_value_get_by_index(&array, i, &e, NULL), 0);
        assert_int_equal(avro_value_get_double(&e, &values[i]), 0);
    }
    set_doubles(&array, values, n - 1);
    free(values);
}

/* Rewrites the manifest's features: without the last one when rename is NULL, else with feature
 * `index` renamed to rename. */
static void edit_features(avro_value_t *record, size_t index, const char *rename)
{
    avro_value_t array = field_of(record, "manifest", "features"), e;
    size_t n = 0;
    assert_int_equal(avro_value_get_size(&array, &n), 0);
    char **names = mem_alloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *s = NULL;
        size_t size = 0;
        assert_int_equal(avro_value_get_by_index(&array, i, &e, NULL), 0);
        assert_int_equal(avro_value_get_string(&e, &s, &size), 0);
        names[i] = mem_strdup(s);
    }
    assert_int_equal(avro_value_reset(&array), 0);
    size_t keep = rename ? n : n - 1;
    for (size_t i = 0; i < keep; i++) {
        assert_int_equal(avro_value_append(&array, &e, NULL), 0);
        assert_int_equal(avro_value_set_string(&e, i == index && rename ? rename : names[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void patch_drop_coefficient(avro_value_t *record)
{
    drop_last_double(record, "model", "coefficients");
}

static void patch_kind_forest(avro_value_t *record)
{
    avro_value_t kind = field_of(record, "model", "kind");
    assert_int_equal(avro_value_set_string(&kind, "forest"), 0);
}

static void patch_three_classes(avro_value_t *record)
{
    avro_value_t classes = field_of(record, "model", "classes");
    const double three[] = {0.0, 1.0, 2.0};
    set_doubles(&classes, three, 3);
}

static void patch_rename_feature(avro_value_t *record)
{
    edit_features(record, 4, "s2_avg_5");
}

static void patch_drop_feature(avro_value_t *record)
{
    edit_features(record, 0, NULL);
}

static void patch_name_custom(avro_value_t *record)
{
    avro_value_t name = field_of(record, "manifest", "name");
    assert_int_equal(avro_value_set_string(&name, "custom"), 0);
}

static void patch_fill(avro_value_t *record)
{
    avro_value_t fill = field_of(record, "pipeline", "fill");
    const double changed[NNUMERIC] = {fills[0], 641.9375, fills[2]};
    set_doubles(&fill, changed, NNUMERIC);
}

/* Points to the only occurrence of the 8 bytes of v in buf; fails the test unless there is
 * exactly one. */
static unsigned char *find_double(unsigned char *buf, size_t size, double v)
{
    unsigned char needle[8];
    memcpy(needle, &v, 8); /* Avro doubles are little-endian IEEE 754, as in memory here */
    unsigned char *hit = memmem(buf, size, needle, 8);
    assert_non_null(hit);
    assert_null(memmem(hit + 1, size - (size_t)(hit + 1 - buf), needle, 8));
    return hit;
}

/* --- cases: schema and round trips ------------------------------------------------------------ */

static void test_schema_file_matches_embedded(void **state)
{
    (void)state;
    size_t size = 0;
    unsigned char *text = support_read_file("config/schemas/model.avsc", &size);
    avro_schema_t from_file = NULL, embedded = NULL;
    if (avro_schema_from_json_length((const char *)text, size, &from_file) != 0) {
        print_error("config/schemas/model.avsc: %s\n", avro_strerror());
        fail();
    }
    const char *json = artefact_schema_json();
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &embedded), 0);
    assert_true(avro_schema_equal(from_file, embedded));
    avro_schema_decref(embedded);
    avro_schema_decref(from_file);
    free(text);
}

static void test_sample_pipeline_is_valid(void **state)
{
    (void)state;
    /* The fixture itself: pipeline_new keeps the spec as given and names the features as the
     * header documents, so the artefact cases below start from a known pipeline. */
    struct pipeline *p = sample_pipeline();
    char why[256] = "";
    if (!is_sample_pipeline(p, why, sizeof(why))) {
        print_error("sample pipeline: %s\n", why);
        fail();
    }
    pipeline_destroy(p);
}

static void round_trip(void **state, enum linear_kind kind)
{
    const struct sample *s = &samples[kind];
    struct artefact *a = sample_artefact_of(kind);
    assert_holds_sample(a, s);
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    struct artefact *b = read_or_fail(path);

    assert_string_equal(artefact_name(b), s->name);
    assert_int_equal(artefact_version(b), 3);
    assert_int_equal(artefact_created_at_ms(b), 1700000000123);
    assert_string_equal(artefact_trainer(b), s->trainer);
    assert_string_equal(artefact_label(b), s->label);
    assert_string_equal(artefact_input_schema_fingerprint(b), "sha256:0123abcd");
    assert_string_equal(artefact_checksum(b), artefact_checksum(a));
    assert_int_equal(strlen(artefact_checksum(b)), 14);
    assert_int_equal(strncmp(artefact_checksum(b), "crc32:", 6), 0);
    assert_int_equal(strspn(artefact_checksum(b) + 6, "0123456789abcdef"), 8);
    assert_holds_sample(b, s);
    assert_same_predictions(a, b);

    size_t n = 0;
    double v = 0;
    const struct artefact_param *hp = artefact_hyperparameters(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(artefact_param_find(hp, n, "l2", &v), TB_OK);
    assert_true(v == 1.0);
    const struct artefact_param *metrics = artefact_metrics(b, &n);
    assert_int_equal(n, 3);
    assert_int_equal(artefact_param_find(metrics, n, "rmse", &v), TB_OK);
    assert_true(v == 31.75);
    assert_int_equal(artefact_param_find(metrics, n, "r2", &v), TB_OK);
    assert_true(v == 0.58);
    assert_int_equal(artefact_param_find(metrics, n, "nasa_score", &v), TB_OK);
    assert_true(v == 1.5e6);
    assert_int_equal(artefact_param_find(metrics, n, "mae", &v), TB_NOTFOUND);

    artefact_destroy(b);
    artefact_destroy(a);
    free(path);
}

static void test_round_trip_ridge(void **state)
{
    round_trip(state, LINEAR_RIDGE);
}

static void test_round_trip_logistic(void **state)
{
    round_trip(state, LINEAR_LOGISTIC);
}

static void test_round_trip_softmax(void **state)
{
    round_trip(state, LINEAR_SOFTMAX);
}

/* Zeroes the container's sync marker (the file's last 16 bytes, also at the end of the header),
 * which Avro C draws at random for each file. */
static void mask_sync_marker(unsigned char *buf, size_t len)
{
    assert_true(len > 32);
    unsigned char sync[16];
    memcpy(sync, buf + len - 16, 16);
    unsigned char *header_copy = memmem(buf, len - 16, sync, 16);
    assert_non_null(header_copy);
    memset(header_copy, 0, 16);
    memset(buf + len - 16, 0, 16);
}

static void test_encode_decode_in_memory(void **state)
{
    const char *origin = "models topic partition 0 offset 7";
    struct artefact *a = sample_artefact_of(LINEAR_SOFTMAX);
    unsigned char *buf = NULL;
    size_t len = 0;
    char err[512] = "";
    if (artefact_encode(a, &buf, &len, err, sizeof(err)) != TB_OK) {
        print_error("artefact_encode: %s\n", err);
        fail();
    }
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t file_len = 0;
    unsigned char *file = support_read_file(path, &file_len);

    /* The bytes are those of the file, apart from the random sync marker. */
    assert_int_equal(len, file_len);
    unsigned char *masked = mem_alloc(len);
    memcpy(masked, buf, len);
    mask_sync_marker(masked, len);
    mask_sync_marker(file, file_len);
    assert_memory_equal(masked, file, len);

    struct artefact *from_memory = artefact_decode(buf, len, origin, err, sizeof(err));
    if (!from_memory) {
        print_error("artefact_decode: %s\n", err);
        fail();
    }
    struct artefact *from_file = read_or_fail(path);
    assert_same_manifest(from_file, from_memory);
    assert_same_manifest(a, from_memory);
    assert_holds_sample(from_memory, &samples[LINEAR_SOFTMAX]);
    assert_same_predictions(from_file, from_memory);

    /* A damaged buffer is refused with a message that starts with the origin. */
    assert_null(artefact_decode(buf, len - 1, origin, err, sizeof(err)));
    assert_int_equal(strncmp(err, origin, strlen(origin)), 0);
    assert_non_null(strstr(err, "truncated Avro container"));
    assert_null(artefact_decode(buf, 0, origin, err, sizeof(err)));
    assert_int_equal(strncmp(err, origin, strlen(origin)), 0);
    assert_non_null(strstr(err, "not an Avro container"));

    artefact_destroy(from_file);
    artefact_destroy(from_memory);
    free(masked);
    free(file);
    free(path);
    free(buf);
    artefact_destroy(a);
}

static void test_set_version_keeps_checksum(void **state)
{
    struct artefact *a = sample_artefact();
    char before[32];
    snprintf(before, sizeof(before), "%s", artefact_checksum(a));
    artefact_set_version(a, 42);
    assert_int_equal(artefact_version(a), 42);
    assert_string_equal(artefact_checksum(a), before);

    /* The manifest is not checksummed, so the file with the new version is still valid. */
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    struct artefact *b = read_or_fail(path);
    assert_int_equal(artefact_version(b), 42);
    assert_string_equal(artefact_checksum(b), before);
    assert_holds_sample(b, &samples[LINEAR_RIDGE]);
    artefact_destroy(b);
    free(path);
    artefact_destroy(a);
}

/* --- cases: writing --------------------------------------------------------------------------- */

static void test_write_leaves_no_temporary(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    artefact_set_metric(a, "rmse", 20.0);
    write_or_fail(a, path); /* replaces the first */
    assert_int_equal(count_entries(*state), 1);

    struct artefact *b = artefact_read(path, NULL, 0);
    assert_non_null(b);
    size_t n = 0;
    double v = 0;
    const struct artefact_param *metrics = artefact_metrics(b, &n);
    assert_int_equal(artefact_param_find(metrics, n, "rmse", &v), TB_OK);
    assert_true(v == 20.0);
    artefact_destroy(b);
    artefact_destroy(a);
    free(path);
}

static void test_write_into_missing_directory(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "missing/model.avro");
    char err[512] = "";
    assert_int_equal(artefact_write(a, path, err, sizeof(err)), TB_IO);
    assert_non_null(strstr(err, "cannot create"));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_entries(*state), 0);
    artefact_destroy(a);
    free(path);
}

static void test_failed_rename_removes_temporary(void **state)
{
    struct artefact *a = sample_artefact();
    /* A non-empty directory where the file should go: rename(2) cannot replace it. */
    char *path = path_in(state, "model.avro");
    char *inside = path_in(state, "model.avro/keep");
    assert_int_equal(mkdir(path, 0755), 0);
    support_write_file(inside, "x", 1);
    char err[512] = "";
    assert_int_equal(artefact_write(a, path, err, sizeof(err)), TB_IO);
    assert_non_null(strstr(err, "cannot rename"));
    assert_int_equal(count_entries(*state), 1); /* only the directory */
    remove(inside);
    artefact_destroy(a);
    free(inside);
    free(path);
}

/* --- cases: damaged files --------------------------------------------------------------------- */

static void test_flipped_coefficient_byte(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    unsigned char *hit = find_double(buf, size, ridge_coef[2]);
    hit[0] ^= 0x01;
    support_write_file(path, buf, size);

    expect_refused(path, "checksum mismatch (manifest crc32:");
    char err[512] = "";
    assert_null(artefact_read(path, err, sizeof(err)));
    char want[64];
    snprintf(want, sizeof(want), "manifest %s, content crc32:", artefact_checksum(a));
    assert_non_null(strstr(err, want));
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_changed_fill_is_checksum_mismatch(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    /* s2's fill 641.8125 becomes 641.9375: a valid pipeline, but not the one checksummed. */
    unsigned char *hit = find_double(buf, size, fills[1]);
    const double changed = 641.9375;
    memcpy(hit, &changed, 8);
    support_write_file(path, buf, size);

    /* What the content's checksum is now, computed here over Avro C's encodings. */
    char content[32];
    rewrite_artefact(path, NULL, false, 1, content);
    assert_string_not_equal(content, artefact_checksum(a));
    char want[128];
    snprintf(want, sizeof(want), "checksum mismatch (manifest %s, content %s)",
             artefact_checksum(a), content);
    expect_refused(path, want);

    /* The same change made through Avro C is refused alike, and accepted once the manifest
     * carries the new checksum. */
    write_or_fail(a, path);
    rewrite_artefact(path, patch_fill, false, 1, NULL);
    expect_refused(path, want);
    write_or_fail(a, path);
    rewrite_artefact(path, patch_fill, true, 1, NULL);
    struct artefact *b = read_or_fail(path);
    assert_true(pipeline_spec(artefact_pipeline(b))->fill[1] == 641.9375);
    assert_string_equal(artefact_checksum(b), content);
    artefact_destroy(b);
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_truncated_file(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    /* Every proper prefix is refused, none crashes. */
    for (size_t len = 0; len < size; len++) {
        support_write_file(path, buf, len);
        char err[512] = "";
        struct artefact *b = artefact_read(path, err, sizeof(err));
        if (b) {
            print_error("a file cut to %zu of %zu bytes was accepted\n", len, size);
            fail();
        }
        assert_int_equal(strncmp(err, path, strlen(path)), 0);
    }
    support_write_file(path, buf, size - 20);
    expect_refused(path, "truncated Avro container (in the data block)");
    support_write_file(path, buf, 30);
    expect_refused(path, "truncated Avro container (in the header)");
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_negative_string_length(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    /* The record starts with the name: its length 9 as a zig-zag varint (0x12), then the text.
     * 0x01 is -1, a length no decoder may trust. */
    unsigned char *hit = memmem(buf, size, "\x12rul-fd001", 10);
    assert_non_null(hit);
    hit[0] = 0x01;
    support_write_file(path, buf, size);
    expect_refused(path, "corrupt artefact record, or more than 4194304 items (field manifest.name "
                         "at byte 0");
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void every_corrupted_byte(void **state, enum linear_kind kind)
{
    struct artefact *a = sample_artefact_of(kind);
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    unsigned char *copy = mem_alloc(size);
    const unsigned char values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    size_t accepted = 0, refused = 0;
    /* A damaged byte may sit in a manifest string (accepted, the manifest is not checksummed),
     * but it never crashes the reader and never changes the pipeline or model handed out. */
    for (size_t i = 0; i < size; i++) {
        for (size_t k = 0; k < sizeof(values); k++) {
            if (buf[i] == values[k])
                continue;
            memcpy(copy, buf, size);
            copy[i] = values[k];
            char err[512] = "";
            /* In memory: artefact_read is this after reading the file (tested above). */
            struct artefact *b = artefact_decode(copy, size, path, err, sizeof(err));
            if (!b) {
                assert_int_equal(strncmp(err, path, strlen(path)), 0);
                refused++;
                continue;
            }
            char why[256] = "";
            if (!holds_sample(b, &samples[kind], why, sizeof(why))) {
                print_error("byte %zu of %zu set to 0x%02x changed the %s artefact unnoticed: %s\n",
                            i, size, values[k], samples[kind].kind_name, why);
                fail();
            }
            accepted++;
            artefact_destroy(b);
        }
    }
    /* Both outcomes occur: the loop really did reach the reader's checks. */
    assert_true(accepted > 0);
    assert_true(refused > accepted);
    free(copy);
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_every_corrupted_byte_ridge(void **state)
{
    every_corrupted_byte(state, LINEAR_RIDGE);
}

static void test_every_corrupted_byte_softmax(void **state)
{
    every_corrupted_byte(state, LINEAR_SOFTMAX);
}

static void test_not_avro(void **state)
{
    char *path = path_in(state, "model.avro");
    const char *text = "unit,cycle,setting1\n1,1,0.5\n";
    support_write_file(path, text, strlen(text));
    expect_refused(path, "not an Avro container");
    support_write_file(path, "", 0);
    expect_refused(path, "not an Avro container");
    free(path);
}

static void test_missing_file(void **state)
{
    char *path = path_in(state, "nothing-here.avro");
    expect_refused(path, "cannot open: No such file or directory");
    free(path);
}

/* --- cases: well-formed files that do not hold together --------------------------------------- */

static void test_coefficient_count_mismatch(void **state)
{
    char *path = path_in(state, "model.avro");
    struct artefact *ridge = sample_artefact_of(LINEAR_RIDGE);
    write_or_fail(ridge, path);
    rewrite_artefact(path, patch_drop_coefficient, true, 1, NULL);
    expect_refused(path, "12 coefficients do not fit 1 outputs of 13 features");

    struct artefact *softmax = sample_artefact_of(LINEAR_SOFTMAX);
    write_or_fail(softmax, path);
    rewrite_artefact(path, patch_drop_coefficient, true, 1, NULL);
    expect_refused(path, "38 coefficients do not fit 3 outputs of 13 features");

    struct artefact *logistic = sample_artefact_of(LINEAR_LOGISTIC);
    write_or_fail(logistic, path);
    rewrite_artefact(path, patch_three_classes, true, 1, NULL);
    expect_refused(path, "a logistic model with 3 classes");
    artefact_destroy(logistic);
    artefact_destroy(softmax);
    artefact_destroy(ridge);
    free(path);
}

static void test_unknown_model_kind(void **state)
{
    char *path = path_in(state, "model.avro");
    struct artefact *a = sample_artefact();
    write_or_fail(a, path);
    rewrite_artefact(path, patch_kind_forest, true, 1, NULL);
    expect_refused(path, "unsupported model kind 'forest'");
    artefact_destroy(a);
    free(path);
}

static void test_manifest_features_disagree(void **state)
{
    char *path = path_in(state, "model.avro");
    struct artefact *a = sample_artefact();
    /* The features are in the manifest, outside the checksum: the pipeline decides. */
    write_or_fail(a, path);
    rewrite_artefact(path, patch_rename_feature, false, 1, NULL);
    expect_refused(path, "manifest feature 4 is 's2_avg_5' but the pipeline makes 's2_mean_5'");
    write_or_fail(a, path);
    rewrite_artefact(path, patch_drop_feature, false, 1, NULL);
    expect_refused(path, "the manifest lists 12 features but the pipeline makes 13");
    artefact_destroy(a);
    free(path);
}

static void test_two_records(void **state)
{
    char *path = path_in(state, "model.avro");
    struct artefact *a = sample_artefact();
    write_or_fail(a, path);
    rewrite_artefact(path, patch_name_custom, false, 2, NULL);
    expect_refused(path, "holds 2 records");
    /* Avro C's own writer with one record makes a valid artefact. */
    write_or_fail(a, path);
    rewrite_artefact(path, patch_name_custom, false, 1, NULL);
    struct artefact *b = read_or_fail(path);
    assert_string_equal(artefact_name(b), "custom");
    assert_string_equal(artefact_checksum(b), artefact_checksum(a));
    assert_holds_sample(b, &samples[LINEAR_RIDGE]);
    artefact_destroy(b);
    artefact_destroy(a);
    free(path);
}

static void test_foreign_avro_schema(void **state)
{
    char *path = path_in(state, "model.avro");
    avro_schema_t schema = avro_schema_string();
    avro_file_writer_t writer = NULL;
    assert_int_equal(avro_file_writer_create(path, schema, &writer), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t v;
    avro_generic_value_new(iface, &v);
    avro_value_set_string(&v, "hello");
    assert_int_equal(avro_file_writer_append_value(writer, &v), 0);
    assert_int_equal(avro_file_writer_close(writer), 0);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    expect_refused(path, "not a tributary model artefact");
    free(path);
}

/* --- cases: varints and embedded schemas ------------------------------------------------------ */

/* Reads the Avro long (zig-zag, 7 bits a byte, low group first) that Avro C wrote at p and
 * returns it, with its length in *n: the test's own decoder, to find its way in a file. */
static int64_t get_long(const unsigned char *p, size_t *n)
{
    uint64_t zigzag = 0;
    size_t i = 0;
    do
        zigzag |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    while (p[i++] & 0x80);
    *n = i;
    return (int64_t)(zigzag >> 1) ^ -(int64_t)(zigzag & 1);
}

/* Returns a copy of buf[0..size) with len bytes at offset at replaced by insert[0..insert_len),
 * *out_size bytes in all; the caller frees it. */
static unsigned char *splice(const unsigned char *buf, size_t size, size_t at, size_t len,
                             const void *insert, size_t insert_len, size_t *out_size)
{
    *out_size = size - len + insert_len;
    unsigned char *out = mem_alloc(*out_size);
    memcpy(out, buf, at);
    memcpy(out + at, insert, insert_len);
    memcpy(out + at + insert_len, buf + at + len, size - at - len);
    return out;
}

/* Writes the sample ridge artefact to path and returns the file's bytes (*size of them). */
static unsigned char *sample_file(const char *path, size_t *size)
{
    struct artefact *a = sample_artefact();
    write_or_fail(a, path);
    artefact_destroy(a);
    return support_read_file(path, size);
}

/* Ten bytes that spell 1 as a zig-zag varint the long way (2, then eight empty groups) and end
 * with last: 0x00 keeps it a valid long, 0x7e sets bits beyond the 64th, which a reader must
 * refuse rather than drop. */
static void long_one(unsigned char out[10], unsigned char last)
{
    out[0] = 0x82;
    memset(out + 1, 0x80, 8);
    out[9] = last;
}

static void test_overflowing_varint_in_record(void **state)
{
    char *path = path_in(state, "model.avro");
    /* INT64_MIN + 1 takes all ten bytes: zig-zag 2^64 - 3, fd ff ... ff 01. */
    struct artefact *a = sample_artefact_at(LINEAR_RIDGE, INT64_MIN + 1);
    write_or_fail(a, path);
    struct artefact *b = read_or_fail(path);
    assert_true(artefact_created_at_ms(b) == INT64_MIN + 1);
    artefact_destroy(b);

    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    unsigned char *hit = memmem(buf, size, "\xfd\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
    assert_non_null(hit);
    /* Nine bytes of all ones and a tenth of 0x7f: 70 bits, six more than a long holds. */
    memset(hit, 0xff, 9);
    hit[9] = 0x7f;
    support_write_file(path, buf, size);
    expect_refused(path, "field manifest.created_at at byte ");
    expect_refused(path, "a varint that overflows 64 bits");
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_overflowing_varint_in_container(void **state)
{
    char *path = path_in(state, "model.avro");
    size_t size = 0;
    unsigned char *buf = sample_file(path, &size);
    /* The header's metadata map starts with its count of entries (2: 0x04) after the magic; the
     * data block with its count of records (1: 0x02) after the header's sync marker, which the
     * file's last 16 bytes repeat. */
    assert_int_equal(buf[4], 0x04);
    unsigned char *sync = memmem(buf, size - 16, buf + size - 16, 16);
    assert_non_null(sync);
    size_t block = (size_t)(sync + 16 - buf);
    assert_int_equal(buf[block], 0x02);

    unsigned char ten[10];
    size_t out_size = 0;
    unsigned char *out = NULL;
    /* The long spelling of the record count is valid, its overflowing twin is not. */
    long_one(ten, 0x00);
    out = splice(buf, size, block, 1, ten, 10, &out_size);
    support_write_file(path, out, out_size);
    artefact_destroy(read_or_fail(path));
    free(out);
    long_one(ten, 0x7e);
    out = splice(buf, size, block, 1, ten, 10, &out_size);
    support_write_file(path, out, out_size);
    expect_refused(path,
                   "corrupt Avro container (in the data block: a varint that overflows 64 bits)");
    free(out);

    /* The same for the header's entry count: 2 is 0x84 the long way. */
    long_one(ten, 0x00);
    ten[0] = 0x84;
    out = splice(buf, size, 4, 1, ten, 10, &out_size);
    support_write_file(path, out, out_size);
    artefact_destroy(read_or_fail(path));
    free(out);
    ten[9] = 0x7e;
    out = splice(buf, size, 4, 1, ten, 10, &out_size);
    support_write_file(path, out, out_size);
    expect_refused(path, "corrupt Avro container (in the header: a varint that overflows 64 bits)");
    free(out);
    free(buf);
    free(path);
}

/* Returns a copy of the artefact file buf[0..size) whose header carries schema as its
 * avro.schema, *out_size bytes in all; the caller frees it. */
static unsigned char *with_schema(const unsigned char *buf, size_t size, const char *schema,
                                  size_t *out_size)
{
    /* The key: its length 11 (zig-zag 0x16) and its text; then the value's length and text. */
    const unsigned char *key = memmem(buf, size,
                                      "\x16"
                                      "avro.schema",
                                      12);
    assert_non_null(key);
    size_t at = (size_t)(key + 12 - buf), n = 0;
    int64_t len = get_long(buf + at, &n);
    assert_true(len > 0 && at + n + (size_t)len < size);

    size_t schema_len = strlen(schema);
    unsigned char *value = mem_alloc(schema_len + 10);
    uint64_t zigzag = (uint64_t)schema_len << 1;
    size_t value_len = 0;
    for (; zigzag >= 0x80; zigzag >>= 7)
        value[value_len++] = (unsigned char)(zigzag | 0x80);
    value[value_len++] = (unsigned char)zigzag;
    memcpy(value + value_len, schema, schema_len);
    unsigned char *out =
        splice(buf, size, at, n + (size_t)len, value, value_len + schema_len, out_size);
    free(value);
    return out;
}

/* Writes the sample artefact to path with schema in its header. */
static void write_with_schema(const char *path, const char *schema)
{
    size_t size = 0, out_size = 0;
    unsigned char *buf = sample_file(path, &size);
    unsigned char *out = with_schema(buf, size, schema, &out_size);
    support_write_file(path, out, out_size);
    free(out);
    free(buf);
}

/* Returns a copy of the embedded schema text with the first occurrence of from replaced by to;
 * the caller frees it. */
static char *schema_with(const char *from, const char *to)
{
    const char *text = artefact_schema_json();
    const char *hit = strstr(text, from);
    assert_non_null(hit);
    size_t size = 0;
    char *out = (char *)splice((const unsigned char *)text, strlen(text) + 1, (size_t)(hit - text),
                               strlen(from), to, strlen(to), &size);
    return out;
}

static void test_schema_not_json(void **state)
{
    char *path = path_in(state, "model.avro");
    write_with_schema(path, "Obj\x01 is not a schema");
    expect_refused(path, "the container's schema is not valid JSON");

    /* Cut halfway: JSON that ends too soon. */
    const char *text = artefact_schema_json();
    char *half = mem_strndup(text, strlen(text) / 2);
    write_with_schema(path, half);
    expect_refused(path, "the container's schema is not valid JSON");
    free(half);

    /* Trailing bytes after the schema, as a careless writer might leave. */
    char *trailing = mem_alloc(strlen(text) + 8);
    snprintf(trailing, strlen(text) + 8, "%s}", text);
    write_with_schema(path, trailing);
    expect_refused(path, "the container's schema is not valid JSON");
    free(trailing);
    free(path);
}

static void test_schema_not_avro(void **state)
{
    char *path = path_in(state, "model.avro");
    /* Valid JSON, but no Avro schema: a type Avro does not know inside the record. */
    char *unknown = schema_with("\"type\": \"int\"", "\"type\": \"integer\"");
    write_with_schema(path, unknown);
    expect_refused(path, "not a tributary model artefact (its schema differs from "
                         "config/schemas/model.avsc");
    expect_refused(path, "Artefact.manifest.version: integer instead of int");
    free(unknown);

    /* A record without fields, and one whose fields are not objects. */
    write_with_schema(path, "{\"type\": \"record\", \"name\": \"Artefact\", "
                            "\"namespace\": \"tributary\"}");
    expect_refused(path, "Artefact: a record without fields");
    write_with_schema(path, "{\"type\": \"record\", \"name\": \"Artefact\", "
                            "\"namespace\": \"tributary\", \"fields\": [1, 2, 3]}");
    expect_refused(path, "Artefact: field 0 is not an object");
    write_with_schema(path, "[\"null\", \"string\"]");
    expect_refused(path, "not a tributary model artefact");
    write_with_schema(path, "42");
    expect_refused(path, "not a tributary model artefact");
    free(path);
}

/* A record name defined twice is not a valid Avro schema; Avro C's parser leaked about 1.2 KB
 * on each, which LeakSanitizer shows when this runs under SANITIZE=address. */
static void test_schema_names_a_record_twice(void **state)
{
    char *path = path_in(state, "model.avro");
    char *twice = schema_with("\"name\": \"Pipeline\"", "\"name\": \"Manifest\"");
    write_with_schema(path, twice);
    expect_refused(path, "not a tributary model artefact (its schema differs from "
                         "config/schemas/model.avsc: Artefact.pipeline: record tributary.Manifest "
                         "instead of tributary.Pipeline)");
    free(twice);
    write_with_schema(path, "{\"type\": \"record\", \"name\": \"Artefact\", \"fields\": "
                            "[{\"name\": \"manifest\", \"type\": {\"type\": \"record\", "
                            "\"name\": \"Artefact\", \"fields\": []}}]}");
    expect_refused(path, "not a tributary model artefact (its schema differs from "
                         "config/schemas/model.avsc: Artefact: record Artefact instead of "
                         "tributary.Artefact)");
    free(path);
}

static void test_schema_of_another_shape(void **state)
{
    char *path = path_in(state, "model.avro");
    /* Valid Avro schemas, each one step away from the artefact's. */
    const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"{\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}", "\"int\"",
         "Artefact.manifest.created_at: int instead of long"},
        {"\"name\": \"checksum\"", "\"name\": \"crc\"",
         "Artefact.manifest: field 9 is crc instead of checksum"},
        {"\"name\": \"Pipeline\"", "\"name\": \"Featurizer\"",
         "Artefact.pipeline: record tributary.Featurizer instead of tributary.Pipeline"},
        {"\"namespace\": \"tributary\"", "\"namespace\": \"other\"",
         "Artefact: record other.Artefact instead of tributary.Artefact"},
        {"{\"type\": \"map\", \"values\": \"double\"}",
         "{\"type\": \"map\", \"values\": \"float\"}",
         "Artefact.manifest.hyperparameters.values: float instead of double"},
        {"\"items\": \"boolean\"", "\"items\": [\"null\", \"boolean\"]",
         "Artefact.pipeline.indicator.items: a union instead of boolean"},
        {"    {\"name\": \"checksum\", \"type\": \"string\"}\n",
         "    {\"name\": \"checksum\", \"type\": \"string\"},\n"
         "    {\"name\": \"extra\", \"type\": \"string\"}\n",
         "Artefact.manifest: 11 fields instead of 10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *schema = schema_with(cases[i].from, cases[i].to);
        write_with_schema(path, schema);
        expect_refused(path, "not a tributary model artefact (its schema differs from "
                             "config/schemas/model.avsc");
        expect_refused(path, cases[i].want);
        free(schema);
    }
    free(path);
}

static void test_schema_written_otherwise(void **state)
{
    char *path = path_in(state, "model.avro");
    /* What other writers put in the header means the same schema: model.avsc itself, with its
     * docs and logical type; full names instead of namespaces; {"type": "string"} for
     * "string". */
    size_t size = 0;
    char *avsc = support_read_file("config/schemas/model.avsc", &size);
    write_with_schema(path, avsc);
    struct artefact *a = read_or_fail(path);
    assert_holds_sample(a, &samples[LINEAR_RIDGE]);
    artefact_destroy(a);
    free(avsc);

    char *fullnames = schema_with("\"name\": \"Model\"", "\"name\": \"tributary.Model\"");
    write_with_schema(path, fullnames);
    artefact_destroy(read_or_fail(path));
    free(fullnames);
    char *spelled = schema_with("{\"name\": \"kind\", \"type\": \"string\"}",
                                "{\"name\": \"kind\", \"type\": {\"type\": \"string\"}}");
    write_with_schema(path, spelled);
    artefact_destroy(read_or_fail(path));
    free(spelled);
    free(path);
}

/* --- cases: Python's avro package ------------------------------------------------------------- */

/* Reads the file with Python's avro package and prints one JSON object: the record count, the
 * three parts of the record (created_at as milliseconds), and the CRC-32 that Python computes
 * over its own binary encodings of the pipeline and model records with their sub-schemas. */
static const char python_reader[] =
    "import datetime, io, json, sys, zlib\n"
    "import avro.datafile, avro.io, avro.schema\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    r = avro.datafile.DataFileReader(f, avro.io.DatumReader())\n"
    "    records = list(r)\n"
    "    schema = avro.schema.parse(r.meta['avro.schema'].decode())\n"
    "rec = records[0]\n"
    "buf = io.BytesIO()\n"
    "encoder = avro.io.BinaryEncoder(buf)\n"
    "for part in ('pipeline', 'model'):\n"
    "    avro.io.DatumWriter(schema.fields_dict[part].type).write(rec[part], encoder)\n"
    "created = rec['manifest']['created_at']\n"
    "if isinstance(created, datetime.datetime):\n"
    "    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "    created = (created - epoch) // datetime.timedelta(milliseconds=1)\n"
    "rec['manifest']['created_at'] = created\n"
    "print(json.dumps({'records': len(records), 'manifest': rec['manifest'],\n"
    "                  'pipeline': rec['pipeline'], 'model': rec['model'],\n"
    "                  'crc': 'crc32:%08x' % zlib.crc32(buf.getvalue())}))\n";

static void assert_json_strings(json_t *array, const char *const *want, size_t n, const char *what)
{
    if (json_array_size(array) != n) {
        print_error("%s: %zu strings, want %zu\n", what, json_array_size(array), n);
        fail();
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(array, i)), want[i]);
}

static void assert_json_numbers(json_t *array, const double *want, size_t n, const char *what)
{
    if (json_array_size(array) != n) {
        print_error("%s: %zu numbers, want %zu\n", what, json_array_size(array), n);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(array, i);
        if (!json_is_number(v) || json_number_value(v) != want[i]) {
            print_error("%s[%zu]: %.17g, want %.17g\n", what, i, json_number_value(v), want[i]);
            fail();
        }
    }
}

static void python_reads(void **state, enum linear_kind kind)
{
    const struct sample *s = &samples[kind];
    struct artefact *a = sample_artefact_of(kind);
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);

    char *out = support_python("-c", python_reader, path, NULL);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    if (!root) {
        print_error("Python printed no JSON (%s): %s\n", jerr.text, out);
        fail();
    }
    assert_int_equal(json_integer_value(json_object_get(root, "records")), 1);

    json_t *manifest = json_object_get(root, "manifest");
    assert_string_equal(json_string_value(json_object_get(manifest, "name")), s->name);
    assert_int_equal(json_integer_value(json_object_get(manifest, "version")), 3);
    assert_int_equal(json_integer_value(json_object_get(manifest, "created_at")), 1700000000123);
    assert_string_equal(json_string_value(json_object_get(manifest, "trainer")), s->trainer);
    assert_string_equal(json_string_value(json_object_get(manifest, "label")), s->label);
    assert_json_strings(json_object_get(manifest, "features"), feature_names, NFEATURES,
                        "manifest.features");
    /* The checksum the manifest carries, what Python computes, and what the artefact says. */
    const char *checksum = json_string_value(json_object_get(manifest, "checksum"));
    assert_non_null(checksum);
    assert_string_equal(json_string_value(json_object_get(root, "crc")), checksum);
    assert_string_equal(artefact_checksum(a), checksum);

    json_t *pipeline = json_object_get(root, "pipeline");
    assert_json_strings(json_object_get(pipeline, "numeric"), (const char *const *)numeric_names,
                        NNUMERIC, "pipeline.numeric");
    json_t *categorical = json_object_get(pipeline, "categorical");
    assert_int_equal(json_array_size(categorical), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(categorical, 0), "name")),
                        "mode");
    assert_json_strings(json_object_get(json_array_get(categorical, 0), "categories"),
                        (const char *const *)mode_categories, 3, "pipeline.categorical.categories");
    assert_string_equal(json_string_value(json_object_get(pipeline, "impute")), "mean");
    assert_true(json_number_value(json_object_get(pipeline, "impute_value")) ==
                sample_spec.impute_value);
    assert_json_numbers(json_object_get(pipeline, "fill"), fills, NNUMERIC, "pipeline.fill");
    json_t *indicator = json_object_get(pipeline, "indicator");
    assert_int_equal(json_array_size(indicator), NNUMERIC);
    for (size_t j = 0; j < NNUMERIC; j++) {
        assert_true(json_is_boolean(json_array_get(indicator, j)));
        assert_int_equal(json_is_true(json_array_get(indicator, j)), indicators[j]);
    }
    assert_int_equal(json_integer_value(json_object_get(pipeline, "window")), 5);
    const char *const stats[] = {"mean", "std", "slope"};
    assert_json_strings(json_object_get(pipeline, "window_stats"), stats, 3,
                        "pipeline.window_stats");
    json_t *columns = json_object_get(pipeline, "window_columns");
    assert_int_equal(json_array_size(columns), 2);
    assert_int_equal(json_integer_value(json_array_get(columns, 0)), 1);
    assert_int_equal(json_integer_value(json_array_get(columns, 1)), 2);
    assert_string_equal(json_string_value(json_object_get(pipeline, "scale")), "standard");
    assert_json_numbers(json_object_get(pipeline, "offset"), offsets, NSCALED, "pipeline.offset");
    assert_json_numbers(json_object_get(pipeline, "factor"), factors, NSCALED, "pipeline.factor");

    json_t *model = json_object_get(root, "model");
    assert_string_equal(json_string_value(json_object_get(model, "kind")), s->kind_name);
    assert_json_numbers(json_object_get(model, "classes"), s->classes, s->nclasses,
                        "model.classes");
    assert_json_numbers(json_object_get(model, "intercepts"), s->intercept, s->noutputs,
                        "model.intercepts");
    assert_json_numbers(json_object_get(model, "coefficients"), s->coef, s->noutputs * NFEATURES,
                        "model.coefficients");
    json_decref(root);
    free(out);
    artefact_destroy(a);
    free(path);
}

static void test_python_reads_ridge(void **state)
{
    python_reads(state, LINEAR_RIDGE);
}

static void test_python_reads_logistic(void **state)
{
    python_reads(state, LINEAR_LOGISTIC);
}

static void test_python_reads_softmax(void **state)
{
    python_reads(state, LINEAR_SOFTMAX);
}

/* --- cases: manifest JSON and the constructor ------------------------------------------------- */

static void test_manifest_json(void **state)
{
    (void)state;
    struct artefact *a = sample_artefact();
    artefact_set_metric(a, "undefined", NAN);
    char *text = NULL;
    assert_int_equal(artefact_manifest_json(a, &text), TB_OK);
    assert_non_null(text);
    assert_non_null(strchr(text, '\n')); /* indented */

    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "name")), "rul-fd001");
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 3);
    /* 1700000000.123 s after the epoch, per Python's datetime. */
    assert_string_equal(json_string_value(json_object_get(root, "created_at")),
                        "2023-11-14T22:13:20.123Z");
    assert_int_equal(json_integer_value(json_object_get(root, "created_at_ms")), 1700000000123);
    assert_string_equal(json_string_value(json_object_get(root, "trainer")), "ridge");
    assert_string_equal(json_string_value(json_object_get(root, "label")), "rul");
    assert_string_equal(json_string_value(json_object_get(root, "input_schema_fingerprint")),
                        "sha256:0123abcd");
    assert_string_equal(json_string_value(json_object_get(root, "checksum")), artefact_checksum(a));
    assert_json_strings(json_object_get(root, "features"), feature_names, NFEATURES, "features");
    json_t *hp = json_object_get(root, "hyperparameters");
    assert_true(json_real_value(json_object_get(hp, "l2")) == 1.0);
    json_t *metrics = json_object_get(root, "metrics");
    assert_true(json_real_value(json_object_get(metrics, "rmse")) == 31.75);
    assert_true(json_is_null(json_object_get(metrics, "undefined")));

    /* The pipeline's inputs and stages, without the fitted numbers. */
    json_t *pipeline = json_object_get(root, "pipeline");
    assert_non_null(pipeline);
    assert_json_strings(json_object_get(pipeline, "numeric"), (const char *const *)numeric_names,
                        NNUMERIC, "pipeline.numeric");
    assert_json_strings(json_object_get(json_object_get(pipeline, "categorical"), "mode"),
                        (const char *const *)mode_categories, 3, "pipeline.categorical.mode");
    assert_int_equal(json_object_size(json_object_get(pipeline, "categorical")), 1);
    assert_string_equal(json_string_value(json_object_get(pipeline, "impute")), "mean");
    assert_int_equal(json_integer_value(json_object_get(pipeline, "window")), 5);
    const char *const stats[] = {"mean", "std", "slope"};
    assert_json_strings(json_object_get(pipeline, "window_stats"), stats, 3, "window_stats");
    const char *const columns[] = {"s2", "s3"};
    assert_json_strings(json_object_get(pipeline, "window_columns"), columns, 2, "window_columns");
    assert_string_equal(json_string_value(json_object_get(pipeline, "scale")), "standard");
    assert_null(json_object_get(pipeline, "fill"));
    assert_null(json_object_get(pipeline, "offset"));
    assert_null(json_object_get(pipeline, "factor"));

    json_t *model = json_object_get(root, "model");
    assert_string_equal(json_string_value(json_object_get(model, "kind")), "ridge");
    assert_int_equal(json_array_size(json_object_get(model, "classes")), 0);
    assert_json_numbers(json_object_get(model, "intercepts"), ridge_intercept, 1, "intercepts");
    assert_int_equal(json_integer_value(json_object_get(model, "n_coefficients")), NFEATURES);
    assert_null(json_object_get(model, "coefficients")); /* sizes, not every coefficient */
    json_decref(root);
    free(text);
    artefact_destroy(a);
}

/* Avro C does not check that strings are UTF-8, so a file may hold names that are not; the
 * manifest shows their other bytes as '?', as it shows such strings, rather than failing as if
 * out of memory (inspect and GET /v1/models could not describe the model served). */
static void test_manifest_json_non_utf8_names(void **state)
{
    char *path = path_in(state, "latin1.avro");
    char mode[] = "mo\xe9"
                  "de";
    char *categorical[] = {mode};
    struct pipeline_spec spec = sample_spec;
    spec.categorical = categorical;
    char err[512] = "";
    struct pipeline *pipeline = pipeline_new(&spec, err, sizeof err);
    assert_non_null(pipeline);
    struct linear_model model = sample_model(&samples[LINEAR_RIDGE]);
    struct artefact_info info = {.name = "latin1", .label = "rul"};
    struct artefact *a = artefact_new(&info, pipeline, &model, err, sizeof err);
    assert_non_null(a);
    pipeline_destroy(pipeline);
    artefact_set_metric(a, "log\x9a\x93oss", 0.25);
    artefact_set_hyperparameter(a, "\xff", 2.0);
    write_or_fail(a, path);
    struct artefact *read = read_or_fail(path);

    char *text = NULL;
    assert_int_equal(artefact_manifest_json(read, &text), TB_OK);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    json_t *metrics = json_object_get(root, "metrics");
    assert_true(json_real_value(json_object_get(metrics, "log??oss")) == 0.25);
    json_t *hyperparameters = json_object_get(root, "hyperparameters");
    assert_true(json_real_value(json_object_get(hyperparameters, "?")) == 2.0);
    json_t *pipeline_json = json_object_get(root, "pipeline");
    json_t *mode_json = json_object_get(json_object_get(pipeline_json, "categorical"), "mo?de");
    assert_json_strings(mode_json, (const char *const *)mode_categories, 3, "categories");
    json_decref(root);
    free(text);
    artefact_destroy(read);
    artefact_destroy(a);
    free(path);
}

static void test_manifest_json_softmax(void **state)
{
    (void)state;
    struct artefact *a = sample_artefact_of(LINEAR_SOFTMAX);
    char *text = NULL;
    assert_int_equal(artefact_manifest_json(a, &text), TB_OK);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "trainer")), "softmax-lbfgs");
    json_t *model = json_object_get(root, "model");
    assert_string_equal(json_string_value(json_object_get(model, "kind")), "softmax");
    assert_json_numbers(json_object_get(model, "classes"), softmax_classes, MAX_CLASSES, "classes");
    assert_json_numbers(json_object_get(model, "intercepts"), softmax_intercept, MAX_CLASSES,
                        "intercepts");
    assert_int_equal(json_integer_value(json_object_get(model, "n_coefficients")),
                     MAX_CLASSES * NFEATURES);
    json_decref(root);
    free(text);
    artefact_destroy(a);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_constructor_rejects_bad_input(void **state)
{
    (void)state;
    struct pipeline *pipeline = sample_pipeline();
    struct linear_model model = sample_model(&samples[LINEAR_RIDGE]);
    model.nfeatures = NFEATURES - 1;
    struct artefact_info info = {.name = "m", .version = 1, .label = "rul"};
    char err[256] = "";
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "the model takes 12 features but the pipeline makes 13"));
    model.nfeatures = NFEATURES;
    info.name = "";
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a name"));
    info.name = NULL;
    err[0] = '\0';
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a name"));
    info.name = "m";
    info.label = NULL;
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a label"));
    info.label = "";
    err[0] = '\0';
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a label"));

    /* A model that artefact_read would refuse is refused here already. */
    info.label = "rul";
    double coef[NFEATURES];
    memcpy(coef, ridge_coef, sizeof coef);
    coef[4] = NAN;
    model.coef = coef;
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "m: coefficient 4 (") && strstr(err, ") is not finite"));
    model = sample_model(&samples[LINEAR_LOGISTIC]);
    model.nclasses = 3;
    model.classes = softmax_classes;
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "m: a logistic model with 3 classes"));
    model = sample_model(&samples[LINEAR_SOFTMAX]);
    model.classes = (double[]){1, 1, 2};
    assert_null(artefact_new(&info, pipeline, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "classes are not finite and strictly ascending"));

    /* Defaults: the trainer is the model kind's name, created now, empty fingerprint. */
    for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
        model = sample_model(&samples[k]);
        int64_t before = wall_ms();
        struct artefact *a = artefact_new(&info, pipeline, &model, err, sizeof(err));
        int64_t after = wall_ms();
        assert_non_null(a);
        assert_string_equal(artefact_trainer(a), samples[k].kind_name);
        assert_string_equal(artefact_input_schema_fingerprint(a), "");
        assert_in_range(artefact_created_at_ms(a), before, after);
        artefact_destroy(a);
    }
    pipeline_destroy(pipeline);
    artefact_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_DIR_CASE("schema: config/schemas/model.avsc equals the embedded one",
                      test_schema_file_matches_embedded),
        TEMP_DIR_CASE("fixture: the hand-written pipeline spec is valid",
                      test_sample_pipeline_is_valid),
        TEMP_DIR_CASE("round trip: ridge, every field equal", test_round_trip_ridge),
        TEMP_DIR_CASE("round trip: logistic, classes {0,1}", test_round_trip_logistic),
        TEMP_DIR_CASE("round trip: softmax, 3 classes", test_round_trip_softmax),
        TEMP_DIR_CASE("encode/decode in memory equal write/read", test_encode_decode_in_memory),
        TEMP_DIR_CASE("set_version: new version, same checksum", test_set_version_keeps_checksum),
        TEMP_DIR_CASE("write: replaces the file, no temporary left",
                      test_write_leaves_no_temporary),
        TEMP_DIR_CASE("write: missing directory fails and leaves nothing",
                      test_write_into_missing_directory),
        TEMP_DIR_CASE("write: failed rename removes the temporary",
                      test_failed_rename_removes_temporary),
        TEMP_DIR_CASE("read: flipped coefficient byte is a checksum mismatch",
                      test_flipped_coefficient_byte),
        TEMP_DIR_CASE("read: a changed fill is a checksum mismatch",
                      test_changed_fill_is_checksum_mismatch),
        TEMP_DIR_CASE("read: every truncation is refused", test_truncated_file),
        TEMP_DIR_CASE("read: a negative string length is refused", test_negative_string_length),
        TEMP_DIR_CASE("read: no corrupted byte crashes or alters a ridge artefact",
                      test_every_corrupted_byte_ridge),
        TEMP_DIR_CASE("read: no corrupted byte crashes or alters a softmax artefact",
                      test_every_corrupted_byte_softmax),
        TEMP_DIR_CASE("read: a CSV or empty file is not an Avro container", test_not_avro),
        TEMP_DIR_CASE("read: a missing file", test_missing_file),
        TEMP_DIR_CASE("read: coefficients or classes that do not fit the features",
                      test_coefficient_count_mismatch),
        TEMP_DIR_CASE("read: unknown model kind", test_unknown_model_kind),
        TEMP_DIR_CASE("read: manifest features that disagree with the pipeline",
                      test_manifest_features_disagree),
        TEMP_DIR_CASE("read: two records are refused, one is read", test_two_records),
        TEMP_DIR_CASE("read: an Avro file of another schema", test_foreign_avro_schema),
        TEMP_DIR_CASE("read: a long in the record that overflows 64 bits",
                      test_overflowing_varint_in_record),
        TEMP_DIR_CASE("read: a long in the container framing that overflows 64 bits",
                      test_overflowing_varint_in_container),
        TEMP_DIR_CASE("read: an embedded schema that is not JSON", test_schema_not_json),
        TEMP_DIR_CASE("read: an embedded schema that is JSON but not Avro", test_schema_not_avro),
        TEMP_DIR_CASE("read: an embedded schema that names a record twice",
                      test_schema_names_a_record_twice),
        TEMP_DIR_CASE("read: an embedded schema one step from the artefact's",
                      test_schema_of_another_shape),
        TEMP_DIR_CASE("read: the artefact schema as other writers spell it",
                      test_schema_written_otherwise),
        TEMP_DIR_CASE("python avro reads a ridge artefact and recomputes the checksum",
                      test_python_reads_ridge),
        TEMP_DIR_CASE("python avro reads a logistic artefact and recomputes the checksum",
                      test_python_reads_logistic),
        TEMP_DIR_CASE("python avro reads a softmax artefact and recomputes the checksum",
                      test_python_reads_softmax),
        TEMP_DIR_CASE("manifest JSON: fields, pipeline stages, kind and sizes", test_manifest_json),
        TEMP_DIR_CASE("manifest JSON: a softmax model's classes and intercepts",
                      test_manifest_json_softmax),
        TEMP_DIR_CASE("manifest JSON: names in a file that are not UTF-8 show as '?'",
                      test_manifest_json_non_utf8_names),
        TEMP_DIR_CASE("constructor: checks and defaults", test_constructor_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
