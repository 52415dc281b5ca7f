/* Unit tests for models/artefact: round trip, atomic writes, refusal of damaged files, Python. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/artefact.h"
#include "models/crc32.h"
#include "models/ridge.h"
#include "service/error.h"
#include "service/mem.h"
#include "tests/unit/support.h"

#include <avro.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAMED_CASE(name, fn)                                                                       \
    {                                                                                              \
        name, fn, make_dir, remove_dir, NULL                                                       \
    }

/* --- fixtures --------------------------------------------------------------------------------- */

/* Each case gets its own empty directory as *state. */
static int make_dir(void **state)
{
    char *dir = support_mkdtemp("tributary_artefact");
    if (!dir)
        return -1;
    *state = dir;
    return 0;
}

static int remove_dir(void **state)
{
    char *dir = *state;
    (void)support_rmtree(dir);
    free(dir);
    return 0;
}

static char *path_in(void **state, const char *name)
{
    char *path = mem_alloc(1024);
    snprintf(path, 1024, "%s/%s", (const char *)*state, name);
    return path;
}

static const char *const feature_names[] = {"setting1", "s2", "s3", "s4"};
static double coefficients[] = {0.5, -1.25, 3.0e-3, 42.0};

static struct artefact *sample_artefact(void)
{
    struct ridge_model model = {.nfeatures = 4, .intercept = 117.5, .coef = coefficients};
    struct artefact_info info = {
        .name = "rul-fd001",
        .version = 3,
        .created_at_ms = 1700000000123,
        .trainer = "ridge",
        .label = "rul",
        .input_schema_fingerprint = "sha256:0123abcd",
        .features = feature_names,
        .nfeatures = 4,
    };
    char err[256] = "";
    struct artefact *a = artefact_new_ridge(&info, &model, err, sizeof(err));
    if (!a) {
        print_error("artefact_new_ridge: %s\n", err);
        fail();
    }
    artefact_set_hyperparameter(a, "l2", 1.0);
    artefact_set_metric(a, "rmse", 31.75);
    artefact_set_metric(a, "r2", 0.58);
    artefact_set_metric(a, "nasa_score", 1.5e6);
    return a;
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

/* --- cases ------------------------------------------------------------------------------------ */

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

static void test_round_trip(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);

    char err[512] = "";
    struct artefact *b = artefact_read(path, err, sizeof(err));
    if (!b) {
        print_error("artefact_read: %s\n", err);
        fail();
    }
    assert_string_equal(artefact_name(b), "rul-fd001");
    assert_int_equal(artefact_version(b), 3);
    assert_int_equal(artefact_created_at_ms(b), 1700000000123);
    assert_string_equal(artefact_trainer(b), "ridge");
    assert_string_equal(artefact_label(b), "rul");
    assert_string_equal(artefact_input_schema_fingerprint(b), "sha256:0123abcd");
    assert_string_equal(artefact_model_kind(b), "ridge");
    assert_string_equal(artefact_checksum(b), artefact_checksum(a));
    assert_int_equal(strlen(artefact_checksum(b)), 14);
    assert_int_equal(strncmp(artefact_checksum(b), "crc32:", 6), 0);
    assert_int_equal(artefact_nfeatures(b), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(artefact_feature(b, i), feature_names[i]);
    assert_null(artefact_feature(b, 4));

    const struct ridge_model *m = artefact_ridge(b);
    assert_int_equal(m->nfeatures, 4);
    assert_true(m->intercept == 117.5);
    assert_memory_equal(m->coef, coefficients, sizeof(coefficients));

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

static void test_flipped_coefficient_byte(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    /* Avro doubles are little-endian IEEE 754, as in memory here. */
    unsigned char needle[8];
    memcpy(needle, &coefficients[2], 8);
    unsigned char *hit = memmem(buf, size, needle, 8);
    assert_non_null(hit);
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
    expect_refused(path, "corrupt artefact record (field manifest.name at byte 0");
    free(buf);
    artefact_destroy(a);
    free(path);
}

static void test_every_corrupted_byte(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);
    size_t size = 0;
    unsigned char *buf = support_read_file(path, &size);
    unsigned char *copy = mem_alloc(size);
    const unsigned char values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    /* A damaged byte may sit in a manifest string (accepted, the manifest is not checksummed),
     * but it never crashes the reader and never changes the model that is handed out. */
    for (size_t i = 0; i < size; i++) {
        for (size_t k = 0; k < sizeof(values); k++) {
            if (buf[i] == values[k])
                continue;
            memcpy(copy, buf, size);
            copy[i] = values[k];
            support_write_file(path, copy, size);
            char err[512] = "";
            struct artefact *b = artefact_read(path, err, sizeof(err));
            if (!b) {
                assert_int_equal(strncmp(err, path, strlen(path)), 0);
                continue;
            }
            const struct ridge_model *m = artefact_ridge(b);
            if (m->nfeatures != 4 || m->intercept != 117.5 ||
                memcmp(m->coef, coefficients, sizeof(coefficients)) != 0) {
                print_error("byte %zu set to 0x%02x changed the model unnoticed\n", i, values[k]);
                fail();
            }
            artefact_destroy(b);
        }
    }
    free(copy);
    free(buf);
    artefact_destroy(a);
    free(path);
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

/* Writes a container of the artefact schema by hand (with Avro C), with the given kind,
 * coefficient count and record count, and a correct checksum. */
static void write_custom(const char *path, const char *kind, size_t ncoef, int nrecords)
{
    const char *json = artefact_schema_json();
    avro_schema_t schema = NULL;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, manifest, model, f, e;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "manifest", &manifest, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "model", &model, NULL), 0);

    avro_value_get_by_name(&model, "kind", &f, NULL);
    avro_value_set_string(&f, kind);
    avro_value_get_by_name(&model, "intercept", &f, NULL);
    avro_value_set_double(&f, 1.0);
    avro_value_get_by_name(&model, "coefficients", &f, NULL);
    for (size_t i = 0; i < ncoef; i++) {
        avro_value_append(&f, &e, NULL);
        avro_value_set_double(&e, (double)i);
    }
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(&model, &size), 0);
    char *enc = mem_alloc(size);
    avro_writer_t w = avro_writer_memory(enc, (int64_t)size);
    assert_int_equal(avro_value_write(w, &model), 0);
    avro_writer_free(w);
    char checksum[32];
    snprintf(checksum, sizeof(checksum), "crc32:%08x", (unsigned)crc32_compute(enc, size));
    free(enc);

    const char *strings[][2] = {{"name", "custom"},
                                {"trainer", "hand"},
                                {"label", "rul"},
                                {"input_schema_fingerprint", ""},
                                {"checksum", checksum}};
    for (size_t i = 0; i < 5; i++) {
        avro_value_get_by_name(&manifest, strings[i][0], &f, NULL);
        avro_value_set_string(&f, strings[i][1]);
    }
    avro_value_get_by_name(&manifest, "version", &f, NULL);
    avro_value_set_int(&f, 1);
    avro_value_get_by_name(&manifest, "features", &f, NULL);
    for (size_t i = 0; i < 4; i++) {
        avro_value_append(&f, &e, NULL);
        avro_value_set_string(&e, feature_names[i]);
    }

    avro_file_writer_t writer = NULL;
    assert_int_equal(avro_file_writer_create(path, schema, &writer), 0);
    for (int r = 0; r < nrecords; r++)
        assert_int_equal(avro_file_writer_append_value(writer, &rec), 0);
    assert_int_equal(avro_file_writer_close(writer), 0);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

static void test_coefficient_count_mismatch(void **state)
{
    char *path = path_in(state, "model.avro");
    write_custom(path, "ridge", 3, 1);
    expect_refused(path, "coefficients has 3 entries but 4 features");
    free(path);
}

static void test_unknown_model_kind(void **state)
{
    char *path = path_in(state, "model.avro");
    write_custom(path, "forest", 4, 1);
    expect_refused(path, "unsupported model kind 'forest'");
    free(path);
}

static void test_two_records(void **state)
{
    char *path = path_in(state, "model.avro");
    write_custom(path, "ridge", 4, 2);
    expect_refused(path, "holds 2 records");
    /* The same writer with one record is a valid artefact. */
    write_custom(path, "ridge", 4, 1);
    struct artefact *a = artefact_read(path, NULL, 0);
    assert_non_null(a);
    assert_string_equal(artefact_name(a), "custom");
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

static void test_python_avro_reads_it(void **state)
{
    struct artefact *a = sample_artefact();
    char *path = path_in(state, "model.avro");
    write_or_fail(a, path);

    static const char script[] =
        "import io, sys, zlib\n"
        "import avro.datafile, avro.io, avro.schema\n"
        "with open(sys.argv[1], \"rb\") as f:\n"
        "    r = avro.datafile.DataFileReader(f, avro.io.DatumReader())\n"
        "    records = list(r)\n"
        "    schema = avro.schema.parse(r.meta[\"avro.schema\"].decode())\n"
        "rec = records[0]\n"
        "buf = io.BytesIO()\n"
        "model_schema = schema.fields_dict[\"model\"].type\n"
        "avro.io.DatumWriter(model_schema).write(rec[\"model\"], avro.io.BinaryEncoder(buf))\n"
        "print(len(records))\n"
        "print(rec[\"manifest\"][\"name\"])\n"
        "print(rec[\"manifest\"][\"version\"])\n"
        "print(rec[\"manifest\"][\"checksum\"])\n"
        "print(\"crc32:%08x\" % zlib.crc32(buf.getvalue()))\n"
        "print(repr(rec[\"model\"][\"intercept\"]))\n"
        "for c in rec[\"model\"][\"coefficients\"]:\n"
        "    print(repr(c))\n";
    char *out = support_python("-c", script, path, NULL), *cursor = out;
    char *lines[16];
    size_t n = 0;
    while (n < 16 && (lines[n] = support_next_line(&cursor)))
        n++;
    assert_int_equal(n, 6 + 4);
    assert_string_equal(lines[0], "1");
    assert_string_equal(lines[1], "rul-fd001");
    assert_string_equal(lines[2], "3");
    assert_string_equal(lines[3], artefact_checksum(a)); /* what the manifest says */
    assert_string_equal(lines[4], artefact_checksum(a)); /* what Python computes */
    assert_true(strtod(lines[5], NULL) == 117.5);
    for (size_t i = 0; i < 4; i++)
        assert_true(strtod(lines[6 + i], NULL) == coefficients[i]);
    free(out);
    artefact_destroy(a);
    free(path);
}

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
    assert_string_equal(json_string_value(json_object_get(root, "checksum")), artefact_checksum(a));
    json_t *features = json_object_get(root, "features");
    assert_int_equal(json_array_size(features), 4);
    assert_string_equal(json_string_value(json_array_get(features, 3)), "s4");
    json_t *hp = json_object_get(root, "hyperparameters");
    assert_true(json_real_value(json_object_get(hp, "l2")) == 1.0);
    json_t *metrics = json_object_get(root, "metrics");
    assert_true(json_real_value(json_object_get(metrics, "rmse")) == 31.75);
    assert_true(json_is_null(json_object_get(metrics, "undefined")));
    json_t *model = json_object_get(root, "model");
    assert_string_equal(json_string_value(json_object_get(model, "kind")), "ridge");
    assert_int_equal(json_integer_value(json_object_get(model, "n_coefficients")), 4);
    assert_true(json_real_value(json_object_get(model, "intercept")) == 117.5);
    assert_null(json_object_get(model, "coefficients")); /* sizes, not every coefficient */
    json_decref(root);
    free(text);
    artefact_destroy(a);
}

static void test_constructor_rejects_bad_input(void **state)
{
    (void)state;
    struct ridge_model model = {.nfeatures = 3, .intercept = 0, .coef = coefficients};
    struct artefact_info info = {
        .name = "m", .version = 1, .label = "rul", .features = feature_names, .nfeatures = 4};
    char err[256] = "";
    assert_null(artefact_new_ridge(&info, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "3 coefficients but 4 features"));
    model.nfeatures = 4;
    info.name = "";
    assert_null(artefact_new_ridge(&info, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a name"));
    info.name = "m";
    info.label = NULL;
    assert_null(artefact_new_ridge(&info, &model, err, sizeof(err)));
    assert_non_null(strstr(err, "needs a label"));

    /* Defaults: trainer "ridge", created now, empty fingerprint. */
    info.label = "rul";
    struct artefact *a = artefact_new_ridge(&info, &model, err, sizeof(err));
    assert_non_null(a);
    assert_string_equal(artefact_trainer(a), "ridge");
    assert_string_equal(artefact_input_schema_fingerprint(a), "");
    assert_true(artefact_created_at_ms(a) > 1700000000000);
    artefact_destroy(a);
    artefact_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("schema: config/schemas/model.avsc equals the embedded one",
                   test_schema_file_matches_embedded),
        NAMED_CASE("round trip: every field equal", test_round_trip),
        NAMED_CASE("write: replaces the file, no temporary left", test_write_leaves_no_temporary),
        NAMED_CASE("write: missing directory fails and leaves nothing",
                   test_write_into_missing_directory),
        NAMED_CASE("write: failed rename removes the temporary",
                   test_failed_rename_removes_temporary),
        NAMED_CASE("read: flipped coefficient byte is a checksum mismatch",
                   test_flipped_coefficient_byte),
        NAMED_CASE("read: every truncation is refused", test_truncated_file),
        NAMED_CASE("read: a negative string length is refused", test_negative_string_length),
        NAMED_CASE("read: no corrupted byte crashes or alters the model",
                   test_every_corrupted_byte),
        NAMED_CASE("read: a CSV or empty file is not an Avro container", test_not_avro),
        NAMED_CASE("read: a missing file", test_missing_file),
        NAMED_CASE("read: 3 coefficients for 4 features", test_coefficient_count_mismatch),
        NAMED_CASE("read: unknown model kind", test_unknown_model_kind),
        NAMED_CASE("read: two records are refused, one is read", test_two_records),
        NAMED_CASE("read: an Avro file of another schema", test_foreign_avro_schema),
        NAMED_CASE("python avro reads it and recomputes the checksum", test_python_avro_reads_it),
        NAMED_CASE("manifest JSON: fields, kind and sizes", test_manifest_json),
        NAMED_CASE("constructor: checks and defaults", test_constructor_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
