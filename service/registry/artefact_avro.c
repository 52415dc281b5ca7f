/* The artefact file format: Avro records built and read with Avro C's generic values, the
 * container file, atomic writes, and the checksum over the records' Avro encoding. */
#include "service/registry/artefact_avro.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"
#include "service/registry/artefact_container.h"
#include "service/registry/artefact_int.h"
#include "service/registry/crc32.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Refuse files larger than this before reading them into memory: real models, even with
 * thousands of features and classes, take a few megabytes at most. */
#define ARTEFACT_MAX_FILE_BYTES (64L * 1024 * 1024)

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

/* --- building the record ---------------------------------------------------------------------- */

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

/* --- the checksum ----------------------------------------------------------------------------- */

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
static int artefact_record_checksum(avro_value_t *record, char out[ARTEFACT_CHECKSUM_LEN + 1],
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

int artefact_content_checksum(const struct pipeline *pipeline, const struct linear_model *model,
                              char out[ARTEFACT_CHECKSUM_LEN + 1], char *err, size_t errsz)
{
    struct artefact_avro av;
    int rc = artefact_avro_open(&av, err, errsz);
    if (rc != TB_OK)
        goto done;
    if (artefact_fill_pipeline(pipeline_spec(pipeline), &av.value) ||
        artefact_fill_model(model, &av.value)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot build the artefact record: %s",
                     avro_strerror());
        goto done;
    }
    rc = artefact_record_checksum(&av.value, out, err, errsz);

done:
    artefact_avro_close(&av);
    return rc;
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
        goto done;
    if (artefact_fill(artefact, &av.value) || avro_value_sizeof(&av.value, &record_bytes)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot build the artefact record: %s",
                     avro_strerror());
        goto done;
    }
    fp = open_memstream(&data, &size);
    if (!fp) {
        rc = tb_fail(err, errsz, TB_NOMEM, "open_memstream: %s", strerror(errno));
        goto done;
    }
    /* One block big enough for the record: the default 16 KiB would refuse large models. */
    if (avro_file_writer_create_with_codec_fp(fp, "artefact", 0, av.schema, &writer, "null",
                                              record_bytes + 64) != 0 ||
        avro_file_writer_append_value(writer, &av.value) != 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot encode the Avro container: %s",
                     avro_strerror());
        goto done;
    }
    int close_rc = avro_file_writer_close(writer);
    writer = NULL;
    if (close_rc != 0 || fflush(fp) != 0 || ferror(fp)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot encode the Avro container: %s",
                     close_rc ? avro_strerror() : strerror(errno));
        goto done;
    }
    fclose(fp);
    fp = NULL;
    *buf = (unsigned char *)data;
    *len = size;
    data = NULL;

done:
    if (writer)
        avro_file_writer_close(writer);
    if (fp)
        fclose(fp);
    free(data);
    artefact_avro_close(&av);
    return rc;
}

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
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ARTEFACT_MAX_FILE_BYTES) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: not a regular file of at most %ld bytes", path,
                     ARTEFACT_MAX_FILE_BYTES);
        goto done;
    }
    data = mem_alloc((size_t)st.st_size);
    if (fread(data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
        rc = tb_fail(err, errsz, TB_IO, "%s: short read", path);
        goto done;
    }
    *buf = data;
    *size = (size_t)st.st_size;
    data = NULL;

done:
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
    rc = artefact_record_checksum(record, content, err, errsz);
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
        goto done;
    char why[512];
    a->pipeline = pipeline_new(&spec, why, sizeof why);
    if (!a->pipeline) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: invalid pipeline: %s", path, why);
        goto done;
    }
    size_t p = pipeline_nfeatures(a->pipeline);
    if (artefact_get_strings(&manifest, "features", &features, &nfeatures)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed features", path);
        goto done;
    }
    if (nfeatures != p || p == 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT,
                     "%s: the manifest lists %zu features but the pipeline makes %zu", path,
                     nfeatures, p);
        goto done;
    }
    for (size_t i = 0; i < p; i++) {
        if (strcmp(features[i], pipeline_feature_name(a->pipeline, i)) != 0) {
            rc = tb_fail(err, errsz, TB_ARTEFACT,
                         "%s: manifest feature %zu is '%s' but the pipeline makes '%s'", path, i,
                         features[i], pipeline_feature_name(a->pipeline, i));
            goto done;
        }
    }
    rc = artefact_get_model(path, &model, a, p, err, errsz);

done:
    artefact_free_strings(features, nfeatures);
    artefact_spec_free(&spec);
    return rc;
}

struct artefact *artefact_decode(const void *buf, size_t len, const char *origin, char *err,
                                 size_t errsz)
{
    const uint8_t *record = NULL;
    size_t record_len = 0;
    struct artefact_avro av = {0};
    avro_reader_t reader = NULL;
    struct artefact *a = NULL;
    bool ok = false;

    if (artefact_container_check(origin, buf, len, &record, &record_len, err, errsz) != TB_OK ||
        artefact_avro_open(&av, err, errsz) != TB_OK)
        goto done;
    /* The record's bytes passed the checks, and the schema in the header means ours, so they
     * are read with ours: Avro C neither parses the file's schema nor meets malformed bytes. */
    reader = avro_reader_memory((const char *)record, (int64_t)record_len);
    if (!reader) {
        tb_fail(err, errsz, TB_NOMEM, "%s: cannot create an Avro reader: %s", origin,
                avro_strerror());
        goto done;
    }
    if (avro_value_read(reader, &av.value) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: cannot decode the artefact record: %s", origin,
                avro_strerror());
        goto done;
    }

    a = mem_calloc(1, sizeof(*a));
    ok = artefact_extract(origin, &av.value, a, err, errsz) == TB_OK;

done:
    if (reader)
        avro_reader_free(reader);
    artefact_avro_close(&av);
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
