/* Model artefacts as Avro container files: build, write atomically, read and verify, describe. */
#include "models/artefact.h"

#include "models/crc32.h"
#include "service/error.h"
#include "service/mem.h"

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

/* Refuse files larger than this before reading them into memory: the largest model this build
 * accepts (RIDGE_MAX_FEATURES coefficients and names) is a few megabytes. */
#define ARTEFACT_MAX_FILE_BYTES (256L * 1024 * 1024)

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
    "  {\"name\": \"model\", \"type\": {\"type\": \"record\", \"name\": \"Model\", \"fields\": [\n"
    "    {\"name\": \"kind\", \"type\": \"string\"},\n"
    "    {\"name\": \"intercept\", \"type\": \"double\"},\n"
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
    char **features;
    size_t nfeatures;
    struct artefact_params hyperparameters;
    struct artefact_params metrics;
    char *model_kind;
    struct ridge_model ridge;
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

static void artefact_params_set(struct artefact_params *params, const char *name, double value)
{
    for (size_t i = 0; i < params->count; i++) {
        if (strcmp(params->items[i].name, name) == 0) {
            params->items[i].value = value;
            return;
        }
    }
    mem_grow((void **)&params->items, &params->cap, params->count + 1, sizeof(*params->items));
    params->items[params->count++] = (struct artefact_param){mem_strdup(name), value};
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
    ridge_model_free(&artefact->ridge);
    free(artefact->model_kind);
    artefact_params_release(&artefact->metrics);
    artefact_params_release(&artefact->hyperparameters);
    for (size_t i = 0; i < artefact->nfeatures; i++)
        free(artefact->features[i]);
    free(artefact->features);
    free(artefact->input_schema_fingerprint);
    free(artefact->label);
    free(artefact->trainer);
    free(artefact->name);
    free(artefact);
}

/* --- the model record and its checksum ------------------------------------------------------ */

static int artefact_set_string(avro_value_t *record, const char *field, const char *value)
{
    avro_value_t child;
    return avro_value_get_by_name(record, field, &child, NULL) ||
           avro_value_set_string(&child, value);
}

static int artefact_set_double_array(avro_value_t *record, const char *field, const double *values,
                                     size_t count)
{
    avro_value_t array, element;
    if (avro_value_get_by_name(record, field, &array, NULL) || avro_value_reset(&array))
        return 1;
    for (size_t i = 0; i < count; i++)
        if (avro_value_append(&array, &element, NULL) || avro_value_set_double(&element, values[i]))
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

/* Fills the model field of an artefact record; nonzero (an Avro error) on failure. */
static int artefact_fill_model(const struct artefact *a, avro_value_t *record)
{
    avro_value_t model, intercept;
    return avro_value_get_by_name(record, "model", &model, NULL) ||
           artefact_set_string(&model, "kind", a->model_kind) ||
           avro_value_get_by_name(&model, "intercept", &intercept, NULL) ||
           avro_value_set_double(&intercept, a->ridge.intercept) ||
           artefact_set_double_array(&model, "coefficients", a->ridge.coef, a->ridge.nfeatures);
}

/* Fills a whole artefact record; nonzero (an Avro error) on failure. */
static int artefact_fill(const struct artefact *a, avro_value_t *record)
{
    avro_value_t manifest, field, element;
    if (avro_value_get_by_name(record, "manifest", &manifest, NULL) ||
        artefact_set_string(&manifest, "name", a->name) ||
        avro_value_get_by_name(&manifest, "version", &field, NULL) ||
        avro_value_set_int(&field, a->version) ||
        avro_value_get_by_name(&manifest, "created_at", &field, NULL) ||
        avro_value_set_long(&field, a->created_at_ms) ||
        artefact_set_string(&manifest, "trainer", a->trainer) ||
        artefact_set_map(&manifest, "hyperparameters", &a->hyperparameters) ||
        artefact_set_map(&manifest, "metrics", &a->metrics) ||
        artefact_set_string(&manifest, "label", a->label) ||
        artefact_set_string(&manifest, "input_schema_fingerprint", a->input_schema_fingerprint) ||
        artefact_set_string(&manifest, "checksum", a->checksum) ||
        avro_value_get_by_name(&manifest, "features", &field, NULL) || avro_value_reset(&field))
        return 1;
    for (size_t i = 0; i < a->nfeatures; i++)
        if (avro_value_append(&field, &element, NULL) ||
            avro_value_set_string(&element, a->features[i]))
            return 1;
    return artefact_fill_model(a, record);
}

/* Writes "crc32:xxxxxxxx" of the Avro binary encoding of model into out. */
static int artefact_model_checksum(avro_value_t *model, char out[ARTEFACT_CHECKSUM_LEN + 1],
                                   char *err, size_t errsz)
{
    size_t size = 0;
    if (avro_value_sizeof(model, &size) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "cannot size the model record: %s",
                       avro_strerror());
    char *buf = mem_alloc(size);
    avro_writer_t writer = avro_writer_memory(buf, (int64_t)size);
    int rc = writer ? avro_value_write(writer, model) : ENOMEM;
    if (writer)
        avro_writer_free(writer);
    if (rc == 0)
        snprintf(out, ARTEFACT_CHECKSUM_LEN + 1, "crc32:%08" PRIx32, crc32_compute(buf, size));
    free(buf);
    if (rc != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "cannot encode the model record: %s",
                       avro_strerror());
    return TB_OK;
}

static int artefact_compute_checksum(struct artefact *a, char *err, size_t errsz)
{
    struct artefact_avro av;
    avro_value_t model;
    int rc = artefact_avro_open(&av, err, errsz);
    if (rc != TB_OK)
        goto cleanup;
    if (artefact_fill_model(a, &av.value) ||
        avro_value_get_by_name(&av.value, "model", &model, NULL)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "cannot build the model record: %s", avro_strerror());
        goto cleanup;
    }
    rc = artefact_model_checksum(&model, a->checksum, err, errsz);

cleanup:
    artefact_avro_close(&av);
    return rc;
}

static int64_t artefact_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct artefact *artefact_new_ridge(const struct artefact_info *info,
                                    const struct ridge_model *model, char *err, size_t errsz)
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
    if (info->nfeatures == 0 || !info->features) {
        tb_fail(err, errsz, TB_USAGE, "artefact %s has no features", info->name);
        goto fail;
    }
    if (model->nfeatures != info->nfeatures || !model->coef) {
        tb_fail(err, errsz, TB_USAGE,
                "artefact %s: the model has %zu coefficients but %zu features", info->name,
                model->nfeatures, info->nfeatures);
        goto fail;
    }
    for (size_t i = 0; i < info->nfeatures; i++) {
        if (!info->features[i] || !info->features[i][0]) {
            tb_fail(err, errsz, TB_USAGE, "artefact %s: feature %zu has no name", info->name, i);
            goto fail;
        }
    }

    a = mem_calloc(1, sizeof(*a));
    a->name = mem_strdup(info->name);
    a->version = info->version;
    a->created_at_ms = info->created_at_ms ? info->created_at_ms : artefact_now_ms();
    a->trainer = mem_strdup(info->trainer ? info->trainer : "ridge");
    a->label = mem_strdup(info->label);
    a->input_schema_fingerprint =
        mem_strdup(info->input_schema_fingerprint ? info->input_schema_fingerprint : "");
    a->features = mem_calloc(info->nfeatures, sizeof(char *));
    a->nfeatures = info->nfeatures;
    for (size_t i = 0; i < info->nfeatures; i++)
        a->features[i] = mem_strdup(info->features[i]);
    a->model_kind = mem_strdup("ridge");
    a->ridge.nfeatures = model->nfeatures;
    a->ridge.intercept = model->intercept;
    a->ridge.coef = mem_alloc(model->nfeatures * sizeof(double));
    memcpy(a->ridge.coef, model->coef, model->nfeatures * sizeof(double));

    if (artefact_compute_checksum(a, err, errsz) != TB_OK)
        goto fail;
    return a;

fail:
    artefact_destroy(a);
    return NULL;
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

/* fsyncs the directory that holds path, so that a rename into it is durable. */
static int artefact_sync_directory(const char *path, char *err, size_t errsz)
{
    char *copy = mem_strdup(path);
    const char *dir = dirname(copy);
    int rc = TB_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot fsync directory %s: %s", path, dir,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}

int artefact_write(const struct artefact *artefact, const char *path, char *err, size_t errsz)
{
    struct artefact_avro av;
    avro_file_writer_t writer = NULL;
    FILE *fp = NULL;
    char *tmp = NULL;
    bool tmp_exists = false;
    size_t record_bytes = 0;

    int rc = artefact_avro_open(&av, err, errsz);
    if (rc != TB_OK)
        goto cleanup;
    if (artefact_fill(artefact, &av.value) || avro_value_sizeof(&av.value, &record_bytes)) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: cannot build the artefact record: %s", path,
                     avro_strerror());
        goto cleanup;
    }

    size_t tmp_size = strlen(path) + 32;
    tmp = mem_alloc(tmp_size);
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC, not O_EXCL: in a container every run has the same pid, and a temporary left by a
     * crash must not block the next write. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    tmp_exists = true;
    fp = fdopen(fd, "wb");
    if (!fp) {
        rc = tb_fail(err, errsz, TB_IO, "%s: %s", tmp, strerror(errno));
        close(fd);
        goto cleanup;
    }
    /* One block big enough for the record: the default 16 KiB would refuse large models. */
    if (avro_file_writer_create_with_codec_fp(fp, tmp, 0, av.schema, &writer, "null",
                                              record_bytes + 64) != 0 ||
        avro_file_writer_append_value(writer, &av.value) != 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "%s: cannot write the Avro container: %s", tmp,
                     avro_strerror());
        goto cleanup;
    }
    int close_rc = avro_file_writer_close(writer);
    writer = NULL;
    if (close_rc != 0 || fflush(fp) != 0 || ferror(fp)) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot write: %s", tmp,
                     close_rc ? avro_strerror() : strerror(errno));
        goto cleanup;
    }
    if (fsync(fileno(fp)) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot fsync: %s", tmp, strerror(errno));
        goto cleanup;
    }
    int fclose_rc = fclose(fp);
    fp = NULL;
    if (fclose_rc != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot close: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot rename %s over it: %s", path, tmp,
                     strerror(errno));
        goto cleanup;
    }
    tmp_exists = false;
    rc = artefact_sync_directory(path, err, errsz);

cleanup:
    if (writer)
        avro_file_writer_close(writer);
    if (fp)
        fclose(fp);
    if (tmp_exists)
        unlink(tmp);
    free(tmp);
    artefact_avro_close(&av);
    return rc;
}

/* --- reading ---------------------------------------------------------------------------------- */

/* A bounded cursor over the file's bytes, for checking the container framing. */
struct artefact_cursor {
    const unsigned char *p, *end;
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
    struct artefact_cursor c = {buf, buf + size};
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
    {"model.kind", WIRE_STRING},
    {"model.intercept", WIRE_DOUBLE},
    {"model.coefficients", WIRE_ARRAY_OF_DOUBLE},
};

static bool artefact_skip(struct artefact_cursor *c, size_t bytes)
{
    if ((size_t)(c->end - c->p) < bytes)
        return false;
    c->p += bytes;
    return true;
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
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *bytes;
            size_t len;
            if (wire != WIRE_ARRAY_OF_DOUBLE && !artefact_read_bytes(c, &bytes, &len))
                return false;
            if (wire != WIRE_ARRAY_OF_STRING && !artefact_skip(c, 8))
                return false;
        }
    }
}

/* Walks the record's bytes along artefact_layout; TB_OK when every length and count fits and
 * the record ends exactly at the end of its block. */
static int artefact_check_record(const char *path, const unsigned char *record, size_t len,
                                 char *err, size_t errsz)
{
    struct artefact_cursor c = {record, record + len};
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
        case WIRE_MAP_OF_DOUBLE:
        case WIRE_ARRAY_OF_STRING:
        case WIRE_ARRAY_OF_DOUBLE:
            ok = artefact_skip_blocks(&c, artefact_layout[i].wire);
            break;
        }
        if (!ok)
            return tb_fail(err, errsz, TB_ARTEFACT,
                           "%s: corrupt artefact record (field %s at byte %td of the record)", path,
                           artefact_layout[i].name, field_start - record);
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
        artefact_params_set(params, key, value);
    }
    return 0;
}

/* Moves the decoded record into a, checking its structure; the message starts with path. */
static int artefact_extract(const char *path, avro_value_t *record, struct artefact *a, char *err,
                            size_t errsz)
{
    avro_value_t manifest, model, field, element;
    size_t count = 0;

    if (avro_value_get_by_name(record, "manifest", &manifest, NULL) ||
        avro_value_get_by_name(record, "model", &model, NULL))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: record lacks manifest or model", path);

    a->name = artefact_get_string(&manifest, "name");
    a->trainer = artefact_get_string(&manifest, "trainer");
    a->label = artefact_get_string(&manifest, "label");
    a->input_schema_fingerprint = artefact_get_string(&manifest, "input_schema_fingerprint");
    char *checksum = artefact_get_string(&manifest, "checksum");
    a->model_kind = artefact_get_string(&model, "kind");
    bool strings_ok = a->name && a->trainer && a->label && a->input_schema_fingerprint &&
                      checksum && a->model_kind;
    if (checksum)
        snprintf(a->checksum, sizeof(a->checksum), "%s", checksum);
    bool checksum_fits = checksum && strlen(checksum) == ARTEFACT_CHECKSUM_LEN;
    free(checksum);
    if (!strings_ok)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: manifest or model lacks a string field", path);

    if (avro_value_get_by_name(&manifest, "version", &field, NULL) ||
        avro_value_get_int(&field, &a->version) ||
        avro_value_get_by_name(&manifest, "created_at", &field, NULL) ||
        avro_value_get_long(&field, &a->created_at_ms) ||
        artefact_get_map(&manifest, "hyperparameters", &a->hyperparameters) ||
        artefact_get_map(&manifest, "metrics", &a->metrics))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed manifest: %s", path,
                       avro_strerror());

    char content[ARTEFACT_CHECKSUM_LEN + 1];
    int rc = artefact_model_checksum(&model, content, err, errsz);
    if (rc != TB_OK)
        return rc;
    if (!checksum_fits || strncmp(a->checksum, "crc32:", 6) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: manifest checksum '%s' is not crc32: and 8 hex digits", path,
                       a->checksum);
    if (strcmp(a->checksum, content) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: checksum mismatch (manifest %s, content %s)",
                       path, a->checksum, content);

    if (strcmp(a->model_kind, "ridge") != 0)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: unsupported model kind '%s' (this build knows ridge)", path,
                       a->model_kind);

    if (avro_value_get_by_name(&manifest, "features", &field, NULL) ||
        avro_value_get_size(&field, &count))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed features", path);
    if (count == 0 || count > RIDGE_MAX_FEATURES)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: has %zu features (must be 1..%d)", path, count,
                       RIDGE_MAX_FEATURES);
    a->features = mem_calloc(count, sizeof(char *));
    for (size_t i = 0; i < count; i++) {
        const char *s = NULL;
        size_t size = 0;
        if (avro_value_get_by_index(&field, i, &element, NULL) ||
            avro_value_get_string(&element, &s, &size))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed feature %zu", path, i);
        a->features[i] = mem_strndup(s, size ? size - 1 : 0);
        a->nfeatures = i + 1;
    }

    size_t ncoef = 0;
    double intercept;
    if (avro_value_get_by_name(&model, "intercept", &field, NULL) ||
        avro_value_get_double(&field, &intercept) ||
        avro_value_get_by_name(&model, "coefficients", &field, NULL) ||
        avro_value_get_size(&field, &ncoef))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed model record", path);
    if (ncoef != a->nfeatures)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: coefficients has %zu entries but %zu features",
                       path, ncoef, a->nfeatures);
    if (!isfinite(intercept))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: the intercept is not finite", path);
    a->ridge.coef = mem_alloc(ncoef * sizeof(double));
    a->ridge.nfeatures = ncoef;
    a->ridge.intercept = intercept;
    for (size_t i = 0; i < ncoef; i++) {
        if (avro_value_get_by_index(&field, i, &element, NULL) ||
            avro_value_get_double(&element, &a->ridge.coef[i]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: malformed coefficient %zu", path, i);
        if (!isfinite(a->ridge.coef[i]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: coefficient %zu (%s) is not finite", path,
                           i, a->features[i]);
    }
    return TB_OK;
}

struct artefact *artefact_read(const char *path, char *err, size_t errsz)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    struct artefact_container container = {0};
    avro_schema_t writer_schema = NULL;
    struct artefact_avro av = {0};
    avro_file_reader_t reader = NULL;
    struct artefact *a = NULL;
    bool ok = false;

    if (artefact_slurp(path, &buf, &size, err, errsz) != TB_OK ||
        artefact_check_container(path, buf, size, &container, err, errsz) != TB_OK ||
        artefact_avro_open(&av, err, errsz) != TB_OK)
        goto cleanup;
    /* Avro C may leave a freed schema in its output when the JSON is bad, so parse into a
     * scratch variable and keep it only on success. */
    avro_schema_t parsed = NULL;
    if (avro_schema_from_json_length(container.schema_json, container.schema_len, &parsed) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: the container's schema does not parse: %s", path,
                avro_strerror());
        goto cleanup;
    }
    writer_schema = parsed;
    if (!avro_schema_equal(writer_schema, av.schema)) {
        tb_fail(err, errsz, TB_ARTEFACT,
                "%s: not a tributary model artefact (its schema differs from "
                "config/schemas/model.avsc)",
                path);
        goto cleanup;
    }

    if (artefact_check_record(path, container.record, container.record_len, err, errsz) != TB_OK)
        goto cleanup;

    /* Framing and record are checked, so Avro C's reader only meets well-formed bytes. */
    FILE *mem = fmemopen(buf, size, "rb");
    if (!mem) {
        tb_fail(err, errsz, TB_IO, "%s: fmemopen: %s", path, strerror(errno));
        goto cleanup;
    }
    if (avro_file_reader_fp(mem, path, 1, &reader) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: not an Avro container: %s", path, avro_strerror());
        reader = NULL;
        goto cleanup;
    }
    if (avro_file_reader_read_value(reader, &av.value) != 0) {
        tb_fail(err, errsz, TB_ARTEFACT, "%s: cannot decode the artefact record: %s", path,
                avro_strerror());
        goto cleanup;
    }

    a = mem_calloc(1, sizeof(*a));
    ok = artefact_extract(path, &av.value, a, err, errsz) == TB_OK;

cleanup:
    if (reader)
        avro_file_reader_close(reader);
    artefact_avro_close(&av);
    if (writer_schema)
        avro_schema_decref(writer_schema);
    free(buf);
    if (!ok) {
        artefact_destroy(a);
        return NULL;
    }
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

static json_t *artefact_json_params(const struct artefact_params *params)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < params->count; i++) {
        if (json_object_set_new(obj, params->items[i].name,
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

int artefact_manifest_json(const struct artefact *artefact, char **json_out)
{
    const struct artefact *a = artefact;
    char when[64];
    int rc = TB_NOMEM;
    json_t *root = json_object(), *features = json_array(), *model = json_object();
    *json_out = NULL;
    if (!root || !features || !model)
        goto cleanup;
    for (size_t i = 0; i < a->nfeatures; i++)
        if (json_array_append_new(features, artefact_json_string(a->features[i])) != 0)
            goto cleanup;
    if (json_object_set_new(model, "kind", artefact_json_string(a->model_kind)) != 0 ||
        json_object_set_new(model, "intercept", artefact_json_number(a->ridge.intercept)) != 0 ||
        json_object_set_new(model, "n_coefficients", json_integer((json_int_t)a->ridge.nfeatures)))
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
    return artefact->model_kind;
}

size_t artefact_nfeatures(const struct artefact *artefact)
{
    return artefact->nfeatures;
}

const char *artefact_feature(const struct artefact *artefact, size_t i)
{
    return i < artefact->nfeatures ? artefact->features[i] : NULL;
}

const struct ridge_model *artefact_ridge(const struct artefact *artefact)
{
    return &artefact->ridge;
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
