/* Model artefacts as Avro container files: build, write atomically, read and verify, describe. */
#include "service/registry/artefact.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"
#include "service/registry/crc32.h"

#include <avro.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* "crc32:" and 8 hex digits, without the NUL. */
#define ARTEFACT_CHECKSUM_LEN 14

/* Refuse files larger than this before reading them into memory: real models, even with
 * thousands of features and classes, take a few megabytes at most. */
#define ARTEFACT_MAX_FILE_BYTES (64L * 1024 * 1024)

/* Refuse records with more array and map items than this in all, before Avro C decodes them:
 * its generic values take about a hundred bytes per item, whatever the item's own size. A model
 * of 1000 classes over 4000 features is within it. */
#define ARTEFACT_MAX_ITEMS (1L << 22)

#define ARTEFACT_SYNC_BYTES 16

/* The meaning of config/schemas/model.avsc (test_artefact checks that they parse equal). */
static const char artefact_schema_text[] =
    "{\"type\": \"record\", \"name\": \"Artefact\", \"namespace\": \"tributary\", \"fields\": [\n"
    "  {\"name\": \"manifest\", \"type\": {\"type\": \"record\", \"name\": \"Manifest\", "
    "\"fields\": [\n"
    "    {\"name\": \"name\", \"type\": \"string\"},\n"
    "    {\"name\": \"version\", \"type\": \"int\"},\n"
    "    {\"name\": \"created_at\", \"type\": {\"type\": \"long\", "
    "\"logicalType\": \"timestamp-millis\"}},\n"
    "    {\"name\": \"trainer\", \"type\": \"string\"},\n"
    "    {\"name\": \"hyperparameters\", \"type\": {\"type\": \"map\", \"values\": \"double\"}},\n"
    "    {\"name\": \"metrics\", \"type\": {\"type\": \"map\", \"values\": \"double\"}},\n"
    "    {\"name\": \"features\", \"type\": {\"type\": \"array\", \"items\": \"string\"}},\n"
    "    {\"name\": \"label\", \"type\": \"string\"},\n"
    "    {\"name\": \"input_schema_fingerprint\", \"type\": \"string\"},\n"
    "    {\"name\": \"checksum\", \"type\": \"string\"}\n"
    "  ]}},\n"
    "  {\"name\": \"pipeline\", \"type\": {\"type\": \"record\", \"name\": \"Pipeline\", "
    "\"fields\": [\n"
    "    {\"name\": \"numeric\", \"type\": {\"type\": \"array\", \"items\": \"string\"}},\n"
    "    {\"name\": \"categorical\", \"type\": {\"type\": \"array\", \"items\": "
    "{\"type\": \"record\", \"name\": \"Categorical\", \"fields\": [\n"
    "      {\"name\": \"name\", \"type\": \"string\"},\n"
    "      {\"name\": \"categories\", \"type\": {\"type\": \"array\", \"items\": \"string\"}}\n"
    "    ]}}},\n"
    "    {\"name\": \"impute\", \"type\": \"string\"},\n"
    "    {\"name\": \"impute_value\", \"type\": \"double\"},\n"
    "    {\"name\": \"fill\", \"type\": {\"type\": \"array\", \"items\": \"double\"}},\n"
    "    {\"name\": \"indicator\", \"type\": {\"type\": \"array\", \"items\": \"boolean\"}},\n"
    "    {\"name\": \"window\", \"type\": \"int\"},\n"
    "    {\"name\": \"window_stats\", \"type\": {\"type\": \"array\", \"items\": \"string\"}},\n"
    "    {\"name\": \"window_columns\", \"type\": {\"type\": \"array\", \"items\": \"int\"}},\n"
    "    {\"name\": \"scale\", \"type\": \"string\"},\n"
    "    {\"name\": \"offset\", \"type\": {\"type\": \"array\", \"items\": \"double\"}},\n"
    "    {\"name\": \"factor\", \"type\": {\"type\": \"array\", \"items\": \"double\"}}\n"
    "  ]}},\n"
    "  {\"name\": \"model\", \"type\": {\"type\": \"record\", \"name\": \"Model\", \"fields\": [\n"
    "    {\"name\": \"kind\", \"type\": \"string\"},\n"
    "    {\"name\": \"classes\", \"type\": {\"type\": \"array\", \"items\": \"double\"}},\n"
    "    {\"name\": \"intercepts\", \"type\": {\"type\": \"array\", \"items\": \"double\"}},\n"
    "    {\"name\": \"coefficients\", \"type\": {\"type\": \"array\", \"items\": \"double\"}}\n"
    "  ]}}\n"
    "]}\n";

struct artefact_params {
    struct artefact_param *items;
    size_t count, cap;
};

struct artefact {
    char *name;
    int32_t version;
    int64_t created_at_ms;
    char *trainer;
    char *label;
    char *input_schema_fingerprint;
    char checksum[ARTEFACT_CHECKSUM_LEN + 1];
    struct artefact_params hyperparameters;
    struct artefact_params metrics;
    struct pipeline *pipeline;
    struct linear_model model;
};

/* The parsed schema, its generic class and one value of it. */
struct artefact_avro {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool has_value;
};

const char *artefact_schema_json(void)
{
    return artefact_schema_text;
}

static int artefact_avro_open(struct artefact_avro *av, char *err, size_t errsz)
{
    *av = (struct artefact_avro){0};
    /* Avro C may leave a freed schema in its output on failure: keep it out of av until then. */
    avro_schema_t parsed = NULL;
    if (avro_schema_from_json_length(artefact_schema_text, sizeof(artefact_schema_text) - 1,
                                     &parsed) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "artefact schema does not parse: %s",
                       avro_strerror());
    av->schema = parsed;
    av->iface = avro_generic_class_from_schema(av->schema);
    if (!av->iface)
        return tb_fail(err, errsz, TB_ARTEFACT, "artefact schema has no generic class: %s",
                       avro_strerror());
    if (avro_generic_value_new(av->iface, &av->value) != 0)
        return tb_fail(err, errsz, TB_NOMEM, "cannot create an Avro value: %s", avro_strerror());
    av->has_value = true;
    return TB_OK;
}

static void artefact_avro_close(struct artefact_avro *av)
{
    if (av->has_value)
        avro_value_decref(&av->value);
    if (av->iface)
        avro_value_iface_decref(av->iface);
    if (av->schema)
        avro_schema_decref(av->schema);
    *av = (struct artefact_avro){0};
}

/* Appends a parameter whose name is not there yet. */
static void artefact_params_append(struct artefact_params *params, const char *name, double value)
{
    mem_grow((void **)&params->items, &params->cap, params->count + 1, sizeof(*params->items));
    params->items[params->count++] = (struct artefact_param){mem_strdup(name), value};
}

static void artefact_params_set(struct artefact_params *params, const char *name, double value)
{
    for (size_t i = 0; i < params->count; i++) {
        if (strcmp(params->items[i].name, name) == 0) {
            params->items[i].value = value;
            return;
        }
    }
    artefact_params_append(params, name, value);
}

static void artefact_params_release(struct artefact_params *params)
{
    for (size_t i = 0; i < params->count; i++)
        free((char *)params->items[i].name);
    free(params->items);
}

void artefact_destroy(struct artefact *artefact)
{
    if (!artefact)
        return;
    linear_model_free(&artefact->model);
    pipeline_destroy(artefact->pipeline);
    artefact_params_release(&artefact->metrics);
    artefact_params_release(&artefact->hyperparameters);
    free(artefact->input_schema_fingerprint);
    free(artefact->label);
    free(artefact->trainer);
    free(artefact->name);
    free(artefact);
}

/* --- the pipeline and model records, and their checksum ----------------------------------------
 */

static const char *const artefact_impute_names[] = {"none", "mean", "constant"};
static const char *const artefact_scale_names[] = {"none", "standard", "minmax"};

static int artefact_set_string(avro_value_t *record, const char *field, const char *value)
{
    avro_value_t child;
    return avro_value_get_by_name(record, field, &child, NULL) ||
           avro_value_set_string(&child, value);
}

static int artefact_set_double(avro_value_t *record, const char *field, double value)
{
    avro_value_t child;
    return avro_value_get_by_name(record, field, &child, NULL) ||
           avro_value_set_double(&child, value);
}

static int artefact_set_int(avro_value_t *record, const char *field, int32_t value)
{
    avro_value_t child;
    return avro_value_get_by_name(record, field, &child, NULL) || avro_value_set_int(&child, value);
}

/* Empties the array field and returns it in *array; nonzero on failure. */
static int artefact_reset_array(avro_value_t *record, const char *field, avro_value_t *array)
{
    return avro_value_get_by_name(record, field, array, NULL) || avro_value_reset(array);
}

static int artefact_set_double_array(avro_value_t *record, const char *field, const double *values,
                                     size_t count)
{
    avro_value_t array, element;
    if (artefact_reset_array(record, field, &array))
        return 1;
    for (size_t i = 0; i < count; i++)
        if (avro_value_append(&array, &element, NULL) || avro_value_set_double(&element, values[i]))
            return 1;
    return 0;
}

static int artefact_set_string_array(avro_value_t *record, const char *field,
                                     const char *const *values, size_t count)
{
    avro_value_t array, element;
    if (artefact_reset_array(record, field, &array))
        return 1;
    for (size_t i = 0; i < count; i++)
        if (avro_value_append(&array, &element, NULL) || avro_value_set_string(&element, values[i]))
            return 1;
    return 0;
}

static int artefact_set_map(avro_value_t *record, const char *field,
                            const struct artefact_params *params)
{
    avro_value_t map, element;
    if (avro_value_get_by_name(record, field, &map, NULL) || avro_value_reset(&map))
        return 1;
    for (size_t i = 0; i < params->count; i++)
        if (avro_value_add(&map, params->items[i].name, &element, NULL, NULL) ||
            avro_value_set_double(&element, params->items[i].value))
            return 1;
    return 0;
}

/* Fills the pipeline field of an artefact record from the fitted spec; nonzero on failure. */
static int artefact_fill_pipeline(const struct pipeline_spec *spec, avro_value_t *record)
{
    avro_value_t pipeline, array, element, child;
    if (avro_value_get_by_name(record, "pipeline", &pipeline, NULL) ||
        artefact_set_string_array(&pipeline, "numeric", (const char *const *)spec->numeric,
                                  spec->nnumeric) ||
        artefact_reset_array(&pipeline, "categorical", &array))
        return 1;
    for (size_t j = 0; j < spec->ncategorical; j++)
        if (avro_value_append(&array, &element, NULL) ||
            artefact_set_string(&element, "name", spec->categorical[j]) ||
            artefact_set_string_array(&element, "categories",
                                      (const char *const *)spec->categories[j],
                                      spec->ncategories[j]))
            return 1;
    if (artefact_set_string(&pipeline, "impute", artefact_impute_names[spec->impute]) ||
        artefact_set_double(&pipeline, "impute_value", spec->impute_value) ||
        artefact_set_double_array(&pipeline, "fill", spec->fill, spec->nnumeric) ||
        artefact_reset_array(&pipeline, "indicator", &array))
        return 1;
    for (size_t i = 0; i < spec->nnumeric; i++)
        if (avro_value_append(&array, &element, NULL) ||
            avro_value_set_boolean(&element, spec->indicator[i]))
            return 1;
    if (artefact_set_int(&pipeline, "window", (int32_t)spec->window) ||
        artefact_reset_array(&pipeline, "window_stats", &array))
        return 1;
    for (unsigned bit = 1; bit <= PIPELINE_STAT_COUNT; bit <<= 1)
        if ((spec->window_stats & bit) &&
            (avro_value_append(&array, &element, NULL) ||
             avro_value_set_string(&element, pipeline_stat_name(bit))))
            return 1;
    if (artefact_reset_array(&pipeline, "window_columns", &array))
        return 1;
    for (size_t i = 0; i < spec->nwindow_columns; i++)
        if (avro_value_append(&array, &child, NULL) ||
            avro_value_set_int(&child, (int32_t)spec->window_columns[i]))
            return 1;
    return artefact_set_string(&pipeline, "scale", artefact_scale_names[spec->scale]) ||
           artefact_set_double_array(&pipeline, "offset", spec->offset, spec->nscaled) ||
           artefact_set_double_array(&pipeline, "factor", spec->factor, spec->nscaled);
}

/* Fills the model field of an artefact record; nonzero (an Avro error) on failure. */
static int artefact_fill_model(const struct linear_model *m, avro_value_t *record)
{
    avro_value_t model;
    return avro_value_get_by_name(record, "model", &model, NULL) ||
           artefact_set_string(&model, "kind", linear_kind_name(m->kind)) ||
           artefact_set_double_array(&model, "classes", m->classes, m->nclasses) ||
           artefact_set_double_array(&model, "intercepts", m->intercept, m->noutputs) ||
           artefact_set_double_array(&model, "coefficients", m->coef, m->noutputs * m->nfeatures);
}

/* Fills a whole artefact record; nonzero (an Avro error) on failure. */
static int artefact_fill(const struct artefact *a, avro_value_t *record)
{
    avro_value_t manifest, field, element;
    if (avro_value_get_by_name(record, "manifest", &manifest, NULL) ||
        artefact_set_string(&manifest, "name", a->name) ||
        artefact_set_int(&manifest, "version", a->version) ||
        avro_value_get_by_name(&manifest, "created_at", &field, NULL) ||
        avro_value_set_long(&field, a->created_at_ms) ||
        artefact_set_string(&manifest, "trainer", a->trainer) ||
        artefact_set_map(&manifest, "hyperparameters", &a->hyperparameters) ||
        artefact_set_map(&manifest, "metrics", &a->metrics) ||
        artefact_set_string(&manifest, "label", a->label) ||
        artefact_set_string(&manifest, "input_schema_fingerprint", a->input_schema_fingerprint) ||
        artefact_set_string(&manifest, "checksum", a->checksum) ||
        artefact_reset_array(&manifest, "features", &field))
        return 1;
    for (size_t i = 0; i < pipeline_nfeatures(a->pipeline); i++)
        if (avro_value_append(&field, &element, NULL) ||
            avro_value_set_string(&element, pipeline_feature_name(a->pipeline, i)))
            return 1;
    return artefact_fill_pipeline(pipeline_spec(a->pipeline), record) ||
           artefact_fill_model(&a->model, record);
}

/* Continues *crc over the Avro binary encoding of value. */
static int artefact_crc_value(avro_value_t *value, uint32_t *crc, char *err, size_t errsz)
{
    size_t size = 0;
    if (avro_value_sizeof(value, &size) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "cannot size a record: %s", avro_strerror());
    char *buf = mem_alloc(size ? size : 1);
    avro_writer_t writer = avro_writer_memory(buf, (int64_t)size);
    int rc = writer ? avro_value_write(writer, value) : ENOMEM;
    if (writer)
        avro_writer_free(writer);
    if (rc == 0)
        *crc = crc32_update(*crc, buf, size);
    free(buf);
    if (rc != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "cannot encode a record: %s", avro_strerror());
    return TB_OK;
}

/* Writes "crc32:xxxxxxxx" of the encodings of the record's pipeline and model into out. */
static int artefact_content_checksum(avro_value_t *record, char out[ARTEFACT_CHECKSUM_LEN + 1],
                                     char *err, size_t errsz)
{
    avro_value_t pipeline, model;
    uint32_t crc = 0;
    if (avro_value_get_by_name(record, "pipeline", &pipeline, NULL) ||
        avro_value_get_by_name(record, "model", &model, NULL))
        return tb_fail(err, errsz, TB_ARTEFACT, "artefact record lacks pipeline or model");
    int rc = artefact_crc_value(&pipeline, &crc, err, errsz);
    if (rc == TB_OK)
        rc = artefact_crc_value(&model, &crc, err, errsz);
    if (rc == TB_OK)
        snprintf(out, ARTEFACT_CHECKSUM_LEN + 1, "crc32:%08" PRIx32, crc);
    return rc;
}

static int artefact_compute_checksum(struct artefact *a, char *err, size_t errsz)
{
    struct artefact_avro av;
    int rc = artefact_avro_open(&av, err, errsz);
    if (rc != TB_OK)
        goto cleanup;
    if (artefact_fill_pipeline(pipeline_spec(a->pipeline), &av.value) ||
        artefact_fill_model(&a->model, &av.value)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot build the artefact record: %s",
                     avro_strerror());
        goto cleanup;
    }
    rc = artefact_content_checksum(&av.value, a->checksum, err, errsz);

cleanup:
    artefact_avro_close(&av);
    return rc;
}

/* Checks that the model's shape fits its kind and the pipeline, and that its numbers are
 * finite; the message starts with origin. */
static int artefact_check_model(const char *origin, const struct linear_model *m,
                                const struct pipeline *pipeline, char *err, size_t errsz)
{
    size_t nfeatures = pipeline_nfeatures(pipeline);
    size_t want_classes = m->kind == LINEAR_RIDGE      ? 0
                          : m->kind == LINEAR_LOGISTIC ? 2
                                                       : m->nclasses;
    size_t want_outputs = m->kind == LINEAR_SOFTMAX ? m->nclasses : 1;
    if (m->nclasses != want_classes || (m->kind == LINEAR_SOFTMAX && m->nclasses < 2))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: a %s model with %zu classes", origin,
                       linear_kind_name(m->kind), m->nclasses);
    if (m->noutputs != want_outputs || m->nfeatures != nfeatures)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: a model of %zu outputs over %zu features does not fit %zu outputs of "
                       "the pipeline's %zu features",
                       origin, m->noutputs, m->nfeatures, want_outputs, nfeatures);
    for (size_t k = 0; k < m->nclasses; k++)
        if (!isfinite(m->classes[k]) || (k > 0 && !(m->classes[k] > m->classes[k - 1])))
            return tb_fail(err, errsz, TB_ARTEFACT,
                           "%s: classes are not finite and strictly ascending", origin);
    for (size_t k = 0; k < m->noutputs; k++)
        if (!isfinite(m->intercept[k]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: intercept %zu is not finite", origin, k);
    for (size_t i = 0; i < m->noutputs * nfeatures; i++)
        if (!isfinite(m->coef[i]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: coefficient %zu (%s) is not finite",
                           origin, i, pipeline_feature_name(pipeline, i % nfeatures));
    return TB_OK;
}

struct artefact *artefact_new(const struct artefact_info *info, const struct pipeline *pipeline,
                              const struct linear_model *model, char *err, size_t errsz)
{
    struct artefact *a = NULL;

    if (!info->name || !info->name[0]) {
        tb_fail(err, errsz, TB_USAGE, "an artefact needs a name");
        goto fail;
    }
    if (!info->label || !info->label[0]) {
        tb_fail(err, errsz, TB_USAGE, "artefact %s needs a label", info->name);
        goto fail;
    }
    if (model->nfeatures != pipeline_nfeatures(pipeline) || !model->coef || !model->intercept) {
        tb_fail(err, errsz, TB_USAGE,
                "artefact %s: the model takes %zu features but the pipeline "
                "makes %zu",
                info->name, model->nfeatures, pipeline_nfeatures(pipeline));
        goto fail;
    }
    if (artefact_check_model(info->name, model, pipeline, err, errsz) != TB_OK)
        goto fail;

    a = mem_calloc(1, sizeof(*a));
    a->pipeline = pipeline_new(pipeline_spec(pipeline), err, errsz);
    if (!a->pipeline)
        goto fail;
    a->name = mem_strdup(info->name);
    a->version = info->version;
    a->created_at_ms = info->created_at_ms ? info->created_at_ms : clock_wall_ms();
    a->trainer = mem_strdup(info->trainer ? info->trainer : linear_kind_name(model->kind));
    a->label = mem_strdup(info->label);
    a->input_schema_fingerprint =
        mem_strdup(info->input_schema_fingerprint ? info->input_schema_fingerprint : "");
    linear_model_copy(&a->model, model);

    if (artefact_compute_checksum(a, err, errsz) != TB_OK)
        goto fail;
    return a;

fail:
    artefact_destroy(a);
    return NULL;
}

void artefact_set_version(struct artefact *artefact, int32_t version)
{
    artefact->version = version;
}

void artefact_set_hyperparameter(struct artefact *artefact, const char *name, double value)
{
    artefact_params_set(&artefact->hyperparameters, name, value);
}

void artefact_set_metric(struct artefact *artefact, const char *name, double value)
{
    artefact_params_set(&artefact->metrics, name, value);
}

/* --- writing ---------------------------------------------------------------------------------- */

int artefact_encode(const struct artefact *artefact, unsigned char **buf, size_t *len, char *err,
                    size_t errsz)
{
    struct artefact_avro av;
    avro_file_writer_t writer = NULL;
    char *data = NULL;
    size_t size = 0, record_bytes = 0;
    FILE *fp = NULL;

    *buf = NULL;
    *len = 0;
    int rc = artefact_avro_open(&av, err, errsz);
    if (rc != TB_OK)
        goto cleanup;
    if (artefact_fill(artefact, &av.value) || avro_value_sizeof(&av.value, &record_bytes)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot build the artefact record: %s",
                     avro_strerror());
        goto cleanup;
    }
    fp = open_memstream(&data, &size);
    if (!fp) {
        rc = tb_fail(err, errsz, TB_NOMEM, "open_memstream: %s", strerror(errno));
        goto cleanup;
    }
    /* One block big enough for the record: the default 16 KiB would refuse large models. */
    if (avro_file_writer_create_with_codec_fp(fp, "artefact", 0, av.schema, &writer, "null",
                                              record_bytes + 64) != 0 ||
        avro_file_writer_append_value(writer, &av.value) != 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot encode the Avro container: %s",
                     avro_strerror());
        goto cleanup;
    }
    int close_rc = avro_file_writer_close(writer);
    writer = NULL;
    if (close_rc != 0 || fflush(fp) != 0 || ferror(fp)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot encode the Avro container: %s",
                     close_rc ? avro_strerror() : strerror(errno));
        goto cleanup;
    }
    fclose(fp);
    fp = NULL;
    *buf = (unsigned char *)data;
    *len = size;
    data = NULL;

cleanup:
    if (writer)
        avro_file_writer_close(writer);
    if (fp)
        fclose(fp);
    free(data);
    artefact_avro_close(&av);
    return rc;
}

/* Writes len bytes to fd; TB_OK or TB_IO with the reason. */
int artefact_write(const struct artefact *artefact, const char *path, char *err, size_t errsz)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = artefact_encode(artefact, &buf, &len, err, errsz);
    if (rc == TB_OK)
        rc = textfile_write_atomic(path, buf, len, err, errsz);
    free(buf);
    return rc;
}

/* --- reading ---------------------------------------------------------------------------------- */

/* A bounded cursor over the file's bytes, for checking the container framing. */
struct artefact_cursor {
    const unsigned char *p, *end;
    size_t items; /* array and map items met so far */
};

/* Reads one zig-zag varint long; false when the bytes run out or it is longer than 10 bytes. */
static bool artefact_read_long(struct artefact_cursor *c, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end)
            return false;
        unsigned char b = *c->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    return false;
}

/* Reads a length-prefixed byte string (Avro bytes or string) without copying. */
static bool artefact_read_bytes(struct artefact_cursor *c, const unsigned char **bytes, size_t *len)
{
    int64_t n;
    if (!artefact_read_long(c, &n) || n < 0 || n > c->end - c->p)
        return false;
    *bytes = c->p;
    *len = (size_t)n;
    c->p += n;
    return true;
}

/* Where the parts of a checked container lie inside the file's bytes. */
struct artefact_container {
    const char *schema_json;
    size_t schema_len;
    const unsigned char *record;
    size_t record_len;
};

/* Checks the container framing that Avro C's reader trusts: magic, header map, null codec,
 * exactly one block holding exactly one record, its sync marker, and nothing after it. On
 * success fills *out with the writer schema and the record's bytes inside buf. */
static int artefact_check_container(const char *path, const unsigned char *buf, size_t size,
                                    struct artefact_container *out, char *err, size_t errsz)
{
    const char **schema_json = &out->schema_json;
    size_t *schema_len = &out->schema_len;
    struct artefact_cursor c = {.p = buf, .end = buf + size};
    if (size < 4 || memcmp(buf, "Obj\x01", 4) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: not an Avro container (no Obj\\x01 magic)",
                       path);
    c.p += 4;

    *schema_json = NULL;
    const unsigned char *codec = NULL;
    size_t codec_len = 0;
    for (;;) {
        int64_t count, block_bytes;
        if (!artefact_read_long(&c, &count))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: truncated Avro container (in the header)",
                           path);
        if (count == 0)
            break;
        if (count < 0) {
            count = count == INT64_MIN ? INT64_MAX : -count; /* runs out of bytes below */
            if (!artefact_read_long(&c, &block_bytes))
                return tb_fail(err, errsz, TB_ARTEFACT,
                               "%s: truncated Avro container (in the header)", path);
        }
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *key, *value;
            size_t key_len, value_len;
            if (!artefact_read_bytes(&c, &key, &key_len) ||
                !artefact_read_bytes(&c, &value, &value_len))
                return tb_fail(err, errsz, TB_ARTEFACT,
                               "%s: truncated Avro container (in the header)", path);
            if (key_len == 11 && memcmp(key, "avro.schema", 11) == 0) {
                *schema_json = (const char *)value;
                *schema_len = value_len;
            } else if (key_len == 10 && memcmp(key, "avro.codec", 10) == 0) {
                codec = value;
                codec_len = value_len;
            }
        }
    }
    if (!*schema_json)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: Avro container without a schema", path);
    if (codec && !(codec_len == 4 && memcmp(codec, "null", 4) == 0))
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro codec '%.*s' is not supported for artefacts (only null)", path,
                       (int)(codec_len > 32 ? 32 : codec_len), (const char *)codec);
    if (c.end - c.p < ARTEFACT_SYNC_BYTES)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: truncated Avro container (in the header)",
                       path);
    const unsigned char *sync = c.p;
    c.p += ARTEFACT_SYNC_BYTES;

    if (c.p == c.end)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: Avro container holds no record", path);
    int64_t records, block_bytes;
    if (!artefact_read_long(&c, &records) || !artefact_read_long(&c, &block_bytes) ||
        block_bytes < 0 || block_bytes > c.end - c.p ||
        c.end - c.p - block_bytes < ARTEFACT_SYNC_BYTES)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: truncated Avro container (in the data block)",
                       path);
    if (records != 1)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro container holds %" PRId64 " records in its first block; an "
                       "artefact holds exactly one",
                       path, records);
    out->record = c.p;
    out->record_len = (size_t)block_bytes;
    c.p += block_bytes;
    if (memcmp(c.p, sync, ARTEFACT_SYNC_BYTES) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: corrupt Avro container (wrong sync marker after the data block)", path);
    c.p += ARTEFACT_SYNC_BYTES;
    if (c.p != c.end)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro container holds more than one block; an artefact holds exactly "
                       "one record",
                       path);
    return TB_OK;
}

/* The binary layout of one artefact record, field by field, in schema order: Avro C's decoder
 * trusts lengths and counts (a corrupt one becomes a huge allocation), so they are bounded here
 * first. Must follow artefact_schema_text; the round-trip test fails if it does not. */
enum artefact_wire {
    WIRE_STRING,
    WIRE_INT,
    WIRE_LONG,
    WIRE_DOUBLE,
    WIRE_MAP_OF_DOUBLE,
    WIRE_ARRAY_OF_STRING,
    WIRE_ARRAY_OF_DOUBLE,
    WIRE_ARRAY_OF_BOOLEAN,
    WIRE_ARRAY_OF_INT,
    WIRE_ARRAY_OF_CATEGORICAL, /* records of a string and an array of strings */
};

static const struct {
    const char *name;
    enum artefact_wire wire;
} artefact_layout[] = {
    {"manifest.name", WIRE_STRING},
    {"manifest.version", WIRE_INT},
    {"manifest.created_at", WIRE_LONG},
    {"manifest.trainer", WIRE_STRING},
    {"manifest.hyperparameters", WIRE_MAP_OF_DOUBLE},
    {"manifest.metrics", WIRE_MAP_OF_DOUBLE},
    {"manifest.features", WIRE_ARRAY_OF_STRING},
    {"manifest.label", WIRE_STRING},
    {"manifest.input_schema_fingerprint", WIRE_STRING},
    {"manifest.checksum", WIRE_STRING},
    {"pipeline.numeric", WIRE_ARRAY_OF_STRING},
    {"pipeline.categorical", WIRE_ARRAY_OF_CATEGORICAL},
    {"pipeline.impute", WIRE_STRING},
    {"pipeline.impute_value", WIRE_DOUBLE},
    {"pipeline.fill", WIRE_ARRAY_OF_DOUBLE},
    {"pipeline.indicator", WIRE_ARRAY_OF_BOOLEAN},
    {"pipeline.window", WIRE_INT},
    {"pipeline.window_stats", WIRE_ARRAY_OF_STRING},
    {"pipeline.window_columns", WIRE_ARRAY_OF_INT},
    {"pipeline.scale", WIRE_STRING},
    {"pipeline.offset", WIRE_ARRAY_OF_DOUBLE},
    {"pipeline.factor", WIRE_ARRAY_OF_DOUBLE},
    {"model.kind", WIRE_STRING},
    {"model.classes", WIRE_ARRAY_OF_DOUBLE},
    {"model.intercepts", WIRE_ARRAY_OF_DOUBLE},
    {"model.coefficients", WIRE_ARRAY_OF_DOUBLE},
};

static bool artefact_skip(struct artefact_cursor *c, size_t bytes)
{
    if ((size_t)(c->end - c->p) < bytes)
        return false;
    c->p += bytes;
    return true;
}

static bool artefact_skip_blocks(struct artefact_cursor *c, enum artefact_wire wire);

/* Skips one item of an array or map of the given wire type. */
static bool artefact_skip_item(struct artefact_cursor *c, enum artefact_wire wire)
{
    const unsigned char *bytes;
    size_t len;
    int64_t v;
    switch (wire) {
    case WIRE_MAP_OF_DOUBLE:
        return artefact_read_bytes(c, &bytes, &len) && artefact_skip(c, 8);
    case WIRE_ARRAY_OF_STRING:
        return artefact_read_bytes(c, &bytes, &len);
    case WIRE_ARRAY_OF_DOUBLE:
        return artefact_skip(c, 8);
    case WIRE_ARRAY_OF_BOOLEAN:
        return c->p < c->end && *c->p++ <= 1;
    case WIRE_ARRAY_OF_INT:
        return artefact_read_long(c, &v) && v >= INT32_MIN && v <= INT32_MAX;
    case WIRE_ARRAY_OF_CATEGORICAL:
        return artefact_read_bytes(c, &bytes, &len) &&
               artefact_skip_blocks(c, WIRE_ARRAY_OF_STRING);
    default:
        return false;
    }
}

/* Skips one array or map of the given wire type: blocks of (count, [byte size,] items). */
static bool artefact_skip_blocks(struct artefact_cursor *c, enum artefact_wire wire)
{
    for (;;) {
        int64_t count, block_bytes;
        if (!artefact_read_long(c, &count))
            return false;
        if (count == 0)
            return true;
        if (count < 0) {
            if (count == INT64_MIN || !artefact_read_long(c, &block_bytes))
                return false;
            count = -count;
        }
        /* Every item takes at least one byte, so a count beyond the bytes left is corrupt. */
        if (count > c->end - c->p)
            return false;
        c->items += (size_t)count;
        if (c->items > ARTEFACT_MAX_ITEMS)
            return false;
        for (int64_t i = 0; i < count; i++)
            if (!artefact_skip_item(c, wire))
                return false;
    }
}

/* Walks the record's bytes along artefact_layout; TB_OK when every length and count fits and
 * the record ends exactly at the end of its block. */
static int artefact_check_record(const char *path, const unsigned char *record, size_t len,
                                 char *err, size_t errsz)
{
    struct artefact_cursor c = {.p = record, .end = record + len};
    for (size_t i = 0; i < sizeof(artefact_layout) / sizeof(artefact_layout[0]); i++) {
        const unsigned char *bytes;
        size_t n;
        int64_t v;
        bool ok = false;
        const unsigned char *field_start = c.p;
        switch (artefact_layout[i].wire) {
        case WIRE_STRING:
            ok = artefact_read_bytes(&c, &bytes, &n);
            break;
        case WIRE_INT:
            ok = artefact_read_long(&c, &v) && v >= INT32_MIN && v <= INT32_MAX;
            break;
        case WIRE_LONG:
            ok = artefact_read_long(&c, &v);
            break;
        case WIRE_DOUBLE:
            ok = artefact_skip(&c, 8);
            break;
        default:
            ok = artefact_skip_blocks(&c, artefact_layout[i].wire);
            break;
        }
        if (!ok)
            return tb_fail(err, errsz, TB_ARTEFACT,
                           "%s: corrupt artefact record, or more than %ld items (field %s at byte "
                           "%td of the record)",
                           path, ARTEFACT_MAX_ITEMS, artefact_layout[i].name, field_start - record);
    }
    if (c.p != c.end)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: corrupt artefact record (%td bytes after its last field)", path,
                       c.end - c.p);
    return TB_OK;
}

/* Reads the whole file (at most ARTEFACT_MAX_FILE_BYTES) into *buf (caller frees). */
static int artefact_slurp(const char *path, unsigned char **buf, size_t *size, char *err,
                          size_t errsz)
{
    int rc = TB_OK;
    unsigned char *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return tb_fail(err, errsz, errno == ENOENT ? TB_NOTFOUND : TB_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ARTEFACT_MAX_FILE_BYTES) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: not a regular file of at most %ld bytes", path,
                     ARTEFACT_MAX_FILE_BYTES);
        goto cleanup;
    }
    data = mem_alloc((size_t)st.st_size);
    if (fread(data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
        rc = tb_fail(err, errsz, TB_IO, "%s: short read", path);
        goto cleanup;
    }
    *buf = data;
    *size = (size_t)st.st_size;
    data = NULL;

cleanup:
    free(data);
    fclose(fp);
    return rc;
}

/* Copies an Avro string child of record into a new C string; NULL if the field is missing. */
static char *artefact_get_string(avro_value_t *record, const char *field)
{
    avro_value_t child;
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_by_name(record, field, &child, NULL) ||
        avro_value_get_string(&child, &s, &size))
        return NULL;
    /* Avro C counts the terminating NUL in size. */
    return mem_strndup(s, size ? size - 1 : 0);
}

static int artefact_get_map(avro_value_t *record, const char *field, struct artefact_params *params)
{
    avro_value_t map, element;
    size_t count = 0;
    if (avro_value_get_by_name(record, field, &map, NULL) || avro_value_get_size(&map, &count))
        return 1;
    for (size_t i = 0; i < count; i++) {
        const char *key = NULL;
        double value;
        if (avro_value_get_by_index(&map, i, &element, &key) ||
            avro_value_get_double(&element, &value))
            return 1;
        /* Avro maps hold each key once: no search, which would be quadratic in a hostile file. */
        artefact_params_append(params, key, value);
    }
    return 0;
}

/* Reads the array field of record into a new array of *count items; nonzero on failure. The
 * wire checks bounded the counts, so the allocations are bounded by the file's size. */
static int artefact_get_doubles(avro_value_t *record, const char *field, double **out,
                                size_t *count)
{
    avro_value_t array, element;
    *out = NULL;
    if (avro_value_get_by_name(record, field, &array, NULL) || avro_value_get_size(&array, count))
        return 1;
    *out = *count ? mem_calloc(*count, sizeof **out) : NULL; /* an empty array is NULL */
    for (size_t i = 0; i < *count; i++)
        if (avro_value_get_by_index(&array, i, &element, NULL) ||
            avro_value_get_double(&element, &(*out)[i]))
            return 1;
    return 0;
}

static int artefact_get_strings(avro_value_t *record, const char *field, char ***out, size_t *count)
{
    avro_value_t array, element;
    *out = NULL;
    if (avro_value_get_by_name(record, field, &array, NULL) || avro_value_get_size(&array, count))
        return 1;
    *out = mem_calloc(*count ? *count : 1, sizeof **out);
    for (size_t i = 0; i < *count; i++) {
        const char *s = NULL;
        size_t size = 0;
        if (avro_value_get_by_index(&array, i, &element, NULL) ||
            avro_value_get_string(&element, &s, &size))
            return 1;
        (*out)[i] = mem_strndup(s, size ? size - 1 : 0);
    }
    return 0;
}

static void artefact_free_strings(char **strings, size_t count)
{
    for (size_t i = 0; strings && i < count; i++)
        free(strings[i]);
    free(strings);
}

/* Index of name in names[0..count), or -1. */
static int artefact_lookup(const char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

/* Frees what artefact_get_spec allocated. */
static void artefact_spec_free(struct pipeline_spec *spec)
{
    artefact_free_strings(spec->numeric, spec->nnumeric);
    for (size_t j = 0; j < spec->ncategorical; j++) {
        artefact_free_strings(spec->categories[j], spec->ncategories[j]);
        free(spec->categorical[j]);
    }
    free(spec->categories);
    free(spec->ncategories);
    free(spec->categorical);
    free(spec->fill);
    free(spec->indicator);
    free(spec->window_columns);
    free(spec->offset);
    free(spec->factor);
    *spec = (struct pipeline_spec){0};
}

/* Reads the pipeline record into spec (freed with artefact_spec_free even on failure). */
static int artefact_get_spec(const char *path, avro_value_t *pipeline, struct pipeline_spec *spec,
                             char *err, size_t errsz)
{
    avro_value_t array, element, child;
    size_t count = 0;
    char *word = NULL;
    int rc = TB_OK;

    if (artefact_get_strings(pipeline, "numeric", &spec->numeric, &spec->nnumeric) ||
        avro_value_get_by_name(pipeline, "categorical", &array, NULL) ||
        avro_value_get_size(&array, &count))
        goto malformed;
    spec->categorical = mem_calloc(count ? count : 1, sizeof *spec->categorical);
    spec->categories = mem_calloc(count ? count : 1, sizeof *spec->categories);
    spec->ncategories = mem_calloc(count ? count : 1, sizeof *spec->ncategories);
    for (size_t j = 0; j < count; j++) {
        if (avro_value_get_by_index(&array, j, &element, NULL))
            goto malformed;
        spec->ncategorical = j + 1;
        spec->categorical[j] = artefact_get_string(&element, "name");
        if (!spec->categorical[j] ||
            artefact_get_strings(&element, "categories", &spec->categories[j],
                                 &spec->ncategories[j]))
            goto malformed;
    }

    word = artefact_get_string(pipeline, "impute");
    int impute = word ? artefact_lookup(artefact_impute_names, 3, word) : -1;
    if (impute < 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: unknown impute method '%s'", path,
                     word ? word : "");
        goto done;
    }
    spec->impute = (enum pipeline_impute)impute;
    free(word);
    word = NULL;
    size_t nfill = 0;
    if (avro_value_get_by_name(pipeline, "impute_value", &child, NULL) ||
        avro_value_get_double(&child, &spec->impute_value) ||
        artefact_get_doubles(pipeline, "fill", &spec->fill, &nfill) ||
        avro_value_get_by_name(pipeline, "indicator", &array, NULL) ||
        avro_value_get_size(&array, &count))
        goto malformed;
    if (nfill != spec->nnumeric || count != spec->nnumeric) {
        rc = tb_fail(err, errsz, TB_ARTEFACT,
                     "%s: pipeline has %zu numeric inputs but %zu fills and %zu indicators", path,
                     spec->nnumeric, nfill, count);
        goto done;
    }
    spec->indicator = mem_calloc(count ? count : 1, sizeof *spec->indicator);
    for (size_t i = 0; i < count; i++) {
        int flag = 0;
        if (avro_value_get_by_index(&array, i, &element, NULL) ||
            avro_value_get_boolean(&element, &flag))
            goto malformed;
        spec->indicator[i] = flag != 0;
    }

    int32_t window = 0;
    char **stats = NULL;
    size_t nstats = 0;
    if (avro_value_get_by_name(pipeline, "window", &child, NULL) ||
        avro_value_get_int(&child, &window) ||
        artefact_get_strings(pipeline, "window_stats", &stats, &nstats)) {
        artefact_free_strings(stats, nstats);
        goto malformed;
    }
    if (window < 0) {
        artefact_free_strings(stats, nstats);
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: negative window %d", path, (int)window);
        goto done;
    }
    spec->window = (size_t)window;
    for (size_t i = 0; i < nstats; i++) {
        unsigned bit = pipeline_stat_parse(stats[i]);
        if (!bit) {
            rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: unknown window statistic '%s'", path,
                         stats[i]);
            artefact_free_strings(stats, nstats);
            goto done;
        }
        spec->window_stats |= bit;
    }
    artefact_free_strings(stats, nstats);
    if (avro_value_get_by_name(pipeline, "window_columns", &array, NULL) ||
        avro_value_get_size(&array, &spec->nwindow_columns))
        goto malformed;
    spec->window_columns =
        mem_calloc(spec->nwindow_columns ? spec->nwindow_columns : 1, sizeof(size_t));
    for (size_t i = 0; i < spec->nwindow_columns; i++) {
        int32_t index = 0;
        if (avro_value_get_by_index(&array, i, &element, NULL) ||
            avro_value_get_int(&element, &index))
            goto malformed;
        if (index < 0) {
            rc =
                tb_fail(err, errsz, TB_ARTEFACT, "%s: negative window column %d", path, (int)index);
            goto done;
        }
        spec->window_columns[i] = (size_t)index;
    }

    word = artefact_get_string(pipeline, "scale");
    int scale = word ? artefact_lookup(artefact_scale_names, 3, word) : -1;
    if (scale < 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: unknown scale method '%s'", path,
                     word ? word : "");
        goto done;
    }
    spec->scale = (enum pipeline_scale)scale;
    size_t nfactor = 0;
    if (artefact_get_doubles(pipeline, "offset", &spec->offset, &spec->nscaled) ||
        artefact_get_doubles(pipeline, "factor", &spec->factor, &nfactor))
        goto malformed;
    if (nfactor != spec->nscaled) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: pipeline has %zu offsets but %zu factors", path,
                     spec->nscaled, nfactor);
        goto done;
    }
    goto done;

malformed:
    rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed pipeline record: %s", path,
                 avro_strerror());
done:
    free(word);
    return rc;
}

/* Reads the model record into a->model and checks its shape against nfeatures. */
static int artefact_get_model(const char *path, avro_value_t *model, struct artefact *a,
                              size_t nfeatures, char *err, size_t errsz)
{
    struct linear_model *m = &a->model;
    char *kind = artefact_get_string(model, "kind");
    int known = kind ? linear_kind_parse(kind, &m->kind) : TB_NOTFOUND;
    if (known != TB_OK) {
        int rc = tb_fail(err, errsz, TB_ARTEFACT,
                         "%s: unsupported model kind '%s' (this build knows ridge, logistic and "
                         "softmax)",
                         path, kind ? kind : "");
        free(kind);
        return rc;
    }
    free(kind);
    size_t ncoef = 0;
    if (artefact_get_doubles(model, "classes", &m->classes, &m->nclasses) ||
        artefact_get_doubles(model, "intercepts", &m->intercept, &m->noutputs) ||
        artefact_get_doubles(model, "coefficients", &m->coef, &ncoef))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed model record", path);
    m->nfeatures = nfeatures;
    if (ncoef != m->noutputs * nfeatures)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: %zu coefficients do not fit %zu outputs of %zu features", path, ncoef,
                       m->noutputs, nfeatures);
    return artefact_check_model(path, m, a->pipeline, err, errsz);
}

/* Moves the decoded record into a, checking its structure; the message starts with path. */
static int artefact_extract(const char *path, avro_value_t *record, struct artefact *a, char *err,
                            size_t errsz)
{
    avro_value_t manifest, pipeline, model, field;
    struct pipeline_spec spec = {0};
    char **features = NULL;
    size_t nfeatures = 0;
    int rc = TB_OK;

    if (avro_value_get_by_name(record, "manifest", &manifest, NULL) ||
        avro_value_get_by_name(record, "pipeline", &pipeline, NULL) ||
        avro_value_get_by_name(record, "model", &model, NULL))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: record lacks manifest, pipeline or model",
                       path);

    a->name = artefact_get_string(&manifest, "name");
    a->trainer = artefact_get_string(&manifest, "trainer");
    a->label = artefact_get_string(&manifest, "label");
    a->input_schema_fingerprint = artefact_get_string(&manifest, "input_schema_fingerprint");
    char *checksum = artefact_get_string(&manifest, "checksum");
    bool strings_ok = a->name && a->trainer && a->label && a->input_schema_fingerprint && checksum;
    if (checksum)
        snprintf(a->checksum, sizeof(a->checksum), "%s", checksum);
    bool checksum_fits = checksum && strlen(checksum) == ARTEFACT_CHECKSUM_LEN;
    free(checksum);
    if (!strings_ok)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: the manifest lacks a string field", path);

    if (avro_value_get_by_name(&manifest, "version", &field, NULL) ||
        avro_value_get_int(&field, &a->version) ||
        avro_value_get_by_name(&manifest, "created_at", &field, NULL) ||
        avro_value_get_long(&field, &a->created_at_ms) ||
        artefact_get_map(&manifest, "hyperparameters", &a->hyperparameters) ||
        artefact_get_map(&manifest, "metrics", &a->metrics))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed manifest: %s", path,
                       avro_strerror());

    char content[ARTEFACT_CHECKSUM_LEN + 1];
    rc = artefact_content_checksum(record, content, err, errsz);
    if (rc != TB_OK)
        return rc;
    if (!checksum_fits || strncmp(a->checksum, "crc32:", 6) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: manifest checksum '%s' is not crc32: and 8 hex digits", path,
                       a->checksum);
    if (strcmp(a->checksum, content) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: checksum mismatch (manifest %s, content %s)",
                       path, a->checksum, content);

    rc = artefact_get_spec(path, &pipeline, &spec, err, errsz);
    if (rc != TB_OK)
        goto cleanup;
    char why[512];
    a->pipeline = pipeline_new(&spec, why, sizeof why);
    if (!a->pipeline) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: invalid pipeline: %s", path, why);
        goto cleanup;
    }
    size_t p = pipeline_nfeatures(a->pipeline);
    if (artefact_get_strings(&manifest, "features", &features, &nfeatures)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed features", path);
        goto cleanup;
    }
    if (nfeatures != p || p == 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT,
                     "%s: the manifest lists %zu features but the pipeline makes %zu", path,
                     nfeatures, p);
        goto cleanup;
    }
    for (size_t i = 0; i < p; i++) {
        if (strcmp(features[i], pipeline_feature_name(a->pipeline, i)) != 0) {
            rc = tb_fail(err, errsz, TB_ARTEFACT,
                         "%s: manifest feature %zu is '%s' but the pipeline makes '%s'", path, i,
                         features[i], pipeline_feature_name(a->pipeline, i));
            goto cleanup;
        }
    }
    rc = artefact_get_model(path, &model, a, p, err, errsz);

cleanup:
    artefact_free_strings(features, nfeatures);
    artefact_spec_free(&spec);
    return rc;
}

struct artefact *artefact_decode(const void *buf, size_t size, const char *origin, char *err,
                                 size_t errsz)
{
    struct artefact_container container = {0};
    avro_schema_t writer_schema = NULL;
    struct artefact_avro av = {0};
    avro_file_reader_t reader = NULL;
    struct artefact *a = NULL;
    bool ok = false;

    if (artefact_check_container(origin, buf, size, &container, err, errsz) != TB_OK ||
        artefact_avro_open(&av, err, errsz) != TB_OK)
        goto cleanup;
    /* Avro C may leave a freed schema in its output when the JSON is bad, so parse into a
     * scratch variable and keep it only on success. */
    avro_schema_t parsed = NULL;
    if (avro_schema_from_json_length(container.schema_json, container.schema_len, &parsed) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: the container's schema does not parse: %s", origin,
                avro_strerror());
        goto cleanup;
    }
    writer_schema = parsed;
    if (!avro_schema_equal(writer_schema, av.schema)) {
        tb_fail(err, errsz, TB_ARTEFACT,
                "%s: not a tributary model artefact (its schema differs from "
                "config/schemas/model.avsc)",
                origin);
        goto cleanup;
    }

    if (artefact_check_record(origin, container.record, container.record_len, err, errsz) != TB_OK)
        goto cleanup;

    /* Framing and record are checked, so Avro C's reader only meets well-formed bytes. */
    FILE *mem = fmemopen((void *)buf, size, "rb");
    if (!mem) {
        tb_fail(err, errsz, TB_IO, "%s: fmemopen: %s", origin, strerror(errno));
        goto cleanup;
    }
    if (avro_file_reader_fp(mem, origin, 1, &reader) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: not an Avro container: %s", origin, avro_strerror());
        reader = NULL;
        goto cleanup;
    }
    if (avro_file_reader_read_value(reader, &av.value) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: cannot decode the artefact record: %s", origin,
                avro_strerror());
        goto cleanup;
    }

    a = mem_calloc(1, sizeof(*a));
    ok = artefact_extract(origin, &av.value, a, err, errsz) == TB_OK;

cleanup:
    if (reader)
        avro_file_reader_close(reader);
    artefact_avro_close(&av);
    if (writer_schema)
        avro_schema_decref(writer_schema);
    if (!ok) {
        artefact_destroy(a);
        return NULL;
    }
    return a;
}

struct artefact *artefact_read(const char *path, char *err, size_t errsz)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    if (artefact_slurp(path, &buf, &size, err, errsz) != TB_OK)
        return NULL;
    struct artefact *a = artefact_decode(buf, size, path, err, errsz);
    free(buf);
    return a;
}

/* --- describing ------------------------------------------------------------------------------- */

/* A JSON string for s; jansson refuses invalid UTF-8, which then shows as '?'. */
static json_t *artefact_json_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *ascii = mem_strdup(s);
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(ascii);
    free(ascii);
    return j;
}

static json_t *artefact_json_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Sets obj[key] to value (taken), the key shown as artefact_json_string shows a string: jansson
 * refuses a key that is not UTF-8, and a file may hold one. Returns 0, or -1 when jansson fails. */
static int artefact_json_set_new(json_t *obj, const char *key, json_t *value)
{
    json_t *name = artefact_json_string(key);
    int rc = name ? json_object_set_new(obj, json_string_value(name), value) : -1;
    if (!name)
        json_decref(value);
    json_decref(name);
    return rc;
}

static json_t *artefact_json_params(const struct artefact_params *params)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < params->count; i++) {
        if (artefact_json_set_new(obj, params->items[i].name,
                                  artefact_json_number(params->items[i].value)) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static void artefact_format_time(int64_t ms, char *out, size_t outsz)
{
    int64_t secs = ms / 1000, millis = ms % 1000;
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, outsz, "%" PRId64 " ms", ms);
        return;
    }
    size_t len = strlen(out);
    snprintf(out + len, outsz - len, ".%03dZ", (int)millis);
}

static json_t *artefact_json_strings(const char *const *strings, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++) {
        if (json_array_append_new(array, artefact_json_string(strings[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *artefact_json_numbers(const double *values, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++) {
        if (json_array_append_new(array, artefact_json_number(values[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* The pipeline's inputs and stages, without the fitted numbers. */
static json_t *artefact_json_pipeline(const struct pipeline_spec *spec)
{
    json_t *root = json_object(), *categorical = json_object(), *stats = json_array(),
           *columns = json_array();
    if (!root || !categorical || !stats || !columns)
        goto fail;
    for (size_t j = 0; j < spec->ncategorical; j++)
        if (artefact_json_set_new(categorical, spec->categorical[j],
                                  artefact_json_strings((const char *const *)spec->categories[j],
                                                        spec->ncategories[j])) != 0)
            goto fail;
    for (unsigned bit = 1; bit <= PIPELINE_STAT_COUNT; bit <<= 1)
        if ((spec->window_stats & bit) &&
            json_array_append_new(stats, json_string(pipeline_stat_name(bit))) != 0)
            goto fail;
    for (size_t i = 0; i < spec->nwindow_columns; i++)
        if (json_array_append_new(columns,
                                  artefact_json_string(spec->numeric[spec->window_columns[i]])))
            goto fail;
    if (json_object_set_new(
            root, "numeric",
            artefact_json_strings((const char *const *)spec->numeric, spec->nnumeric)) != 0 ||
        json_object_set(root, "categorical", categorical) != 0 ||
        json_object_set_new(root, "impute", json_string(artefact_impute_names[spec->impute])) ||
        json_object_set_new(root, "window", json_integer((json_int_t)spec->window)) != 0 ||
        json_object_set(root, "window_stats", stats) != 0 ||
        json_object_set(root, "window_columns", columns) != 0 ||
        json_object_set_new(root, "scale", json_string(artefact_scale_names[spec->scale])) != 0)
        goto fail;
    json_decref(categorical);
    json_decref(stats);
    json_decref(columns);
    return root;

fail:
    json_decref(columns);
    json_decref(stats);
    json_decref(categorical);
    json_decref(root);
    return NULL;
}

int artefact_manifest_json(const struct artefact *artefact, char **json_out)
{
    const struct artefact *a = artefact;
    const struct linear_model *m = &a->model;
    char when[64];
    int rc = TB_NOMEM;
    json_t *root = json_object(), *features = json_array(), *model = json_object();
    *json_out = NULL;
    if (!root || !features || !model)
        goto cleanup;
    for (size_t i = 0; i < pipeline_nfeatures(a->pipeline); i++)
        if (json_array_append_new(features,
                                  artefact_json_string(pipeline_feature_name(a->pipeline, i))))
            goto cleanup;
    if (json_object_set_new(model, "kind", json_string(linear_kind_name(m->kind))) != 0 ||
        json_object_set_new(model, "classes", artefact_json_numbers(m->classes, m->nclasses)) ||
        json_object_set_new(model, "intercepts",
                            artefact_json_numbers(m->intercept, m->noutputs)) != 0 ||
        json_object_set_new(model, "n_coefficients",
                            json_integer((json_int_t)(m->noutputs * m->nfeatures))) != 0)
        goto cleanup;

    artefact_format_time(a->created_at_ms, when, sizeof(when));
    if (json_object_set_new(root, "name", artefact_json_string(a->name)) != 0 ||
        json_object_set_new(root, "version", json_integer(a->version)) != 0 ||
        json_object_set_new(root, "created_at", json_string(when)) != 0 ||
        json_object_set_new(root, "created_at_ms", json_integer(a->created_at_ms)) != 0 ||
        json_object_set_new(root, "trainer", artefact_json_string(a->trainer)) != 0 ||
        json_object_set_new(root, "hyperparameters", artefact_json_params(&a->hyperparameters)) !=
            0 ||
        json_object_set_new(root, "metrics", artefact_json_params(&a->metrics)) != 0 ||
        json_object_set(root, "features", features) != 0 ||
        json_object_set_new(root, "label", artefact_json_string(a->label)) != 0 ||
        json_object_set_new(root, "input_schema_fingerprint",
                            artefact_json_string(a->input_schema_fingerprint)) != 0 ||
        json_object_set_new(root, "checksum", json_string(a->checksum)) != 0 ||
        json_object_set_new(root, "pipeline", artefact_json_pipeline(pipeline_spec(a->pipeline))) ||
        json_object_set(root, "model", model) != 0)
        goto cleanup;

    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (*json_out)
        rc = TB_OK;

cleanup:
    json_decref(model);
    json_decref(features);
    json_decref(root);
    return rc;
}

/* --- accessors -------------------------------------------------------------------------------- */

const char *artefact_name(const struct artefact *artefact)
{
    return artefact->name;
}

int32_t artefact_version(const struct artefact *artefact)
{
    return artefact->version;
}

int64_t artefact_created_at_ms(const struct artefact *artefact)
{
    return artefact->created_at_ms;
}

const char *artefact_trainer(const struct artefact *artefact)
{
    return artefact->trainer;
}

const char *artefact_label(const struct artefact *artefact)
{
    return artefact->label;
}

const char *artefact_input_schema_fingerprint(const struct artefact *artefact)
{
    return artefact->input_schema_fingerprint;
}

const char *artefact_checksum(const struct artefact *artefact)
{
    return artefact->checksum;
}

const char *artefact_model_kind(const struct artefact *artefact)
{
    return linear_kind_name(artefact->model.kind);
}

size_t artefact_nfeatures(const struct artefact *artefact)
{
    return pipeline_nfeatures(artefact->pipeline);
}

const char *artefact_feature(const struct artefact *artefact, size_t i)
{
    return i < artefact_nfeatures(artefact) ? pipeline_feature_name(artefact->pipeline, i) : NULL;
}

const struct pipeline *artefact_pipeline(const struct artefact *artefact)
{
    return artefact->pipeline;
}

const struct linear_model *artefact_model(const struct artefact *artefact)
{
    return &artefact->model;
}

const struct artefact_param *artefact_hyperparameters(const struct artefact *artefact,
                                                      size_t *count)
{
    *count = artefact->hyperparameters.count;
    return artefact->hyperparameters.items;
}

const struct artefact_param *artefact_metrics(const struct artefact *artefact, size_t *count)
{
    *count = artefact->metrics.count;
    return artefact->metrics.items;
}

int artefact_param_find(const struct artefact_param *params, size_t count, const char *name,
                        double *value)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(params[i].name, name) == 0) {
            *value = params[i].value;
            return TB_OK;
        }
    }
    return TB_NOTFOUND;
}
