/* Tests for the Avro container reader: files written by Avro C and by
 * Python's avro package (null and deflate codecs) read back to the values
 * written, and every error names the file and field. */
#include "connectors/avro_container_reader.h"
#include "connectors/table.h"
#include "service/error.h"
#include "tests/unit/support.h"

#include <avro.h>
#include <limits.h>
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

static const char telemetry_schema[] =
    "{\"type\": \"record\", \"name\": \"Telemetry\", \"namespace\": \"tributary.test\","
    " \"fields\": ["
    "{\"name\": \"machine\", \"type\": \"string\"},"
    "{\"name\": \"cycle\", \"type\": \"int\"},"
    "{\"name\": \"ts_ms\", \"type\": \"long\"},"
    "{\"name\": \"temp\", \"type\": \"float\"},"
    "{\"name\": \"pressure\", \"type\": \"double\"},"
    "{\"name\": \"failed\", \"type\": \"boolean\"},"
    "{\"name\": \"vibration\", \"type\": [\"null\", \"double\"]},"
    "{\"name\": \"rpm\", \"type\": [\"int\", \"null\"]},"
    "{\"name\": \"owner\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"tags\", \"type\": {\"type\": \"array\", \"items\": \"string\"}},"
    "{\"name\": \"unit\", \"type\": [\"null\", \"long\"]}]}";

/* Field indexes in telemetry_schema. */
enum {
    F_MACHINE,
    F_CYCLE,
    F_TS,
    F_TEMP,
    F_PRESSURE,
    F_FAILED,
    F_VIBRATION,
    F_RPM,
    F_OWNER,
    F_TAGS,
    F_UNIT
};

/* The numeric fields the tests read, in the order they ask for them. */
static const char *const wanted[] = {"pressure", "cycle",     "ts_ms", "temp",
                                     "failed",   "vibration", "rpm"};
enum { NWANTED = sizeof(wanted) / sizeof(wanted[0]), C_ROWS = 1000, PY_ROWS = 3000 };

/* The values of record i, all exactly representable in the types they are
 * written as. NAN marks a null. */
struct telemetry {
    char machine[16];
    int32_t cycle;
    int64_t ts_ms;
    float temp;
    double pressure;
    bool failed;
    double vibration; /* NAN: null */
    int32_t rpm;
    bool rpm_null;
    bool unit_null;
    int64_t unit;
};

static double sample_value(size_t i)
{
    static const double scale[] = {1.0, 1e-3, 1e6, 1e-300, 1e300, 0.1, 123.456};
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    double unit = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
    return (unit - 0.5) * scale[i % (sizeof(scale) / sizeof(scale[0]))];
}

static void make_record(size_t i, struct telemetry *t)
{
    snprintf(t->machine, sizeof(t->machine), "m-%03zu", i % 17);
    t->cycle = (int32_t)((i * 7919) % 100000) - 50000;
    t->ts_ms = 1700000000000LL + (int64_t)i * 1000 + (i % 2 ? (1LL << 52) : 0);
    t->temp = (float)(290.0 + (double)((i * 37) % 1000) / 7.0); /* rounded to float */
    t->pressure = sample_value(i);
    t->failed = i % 5 == 0;
    t->vibration = i % 3 == 0 ? NAN : sample_value(i + 5000);
    t->rpm_null = i % 4 == 1;
    t->rpm = (int32_t)i * 3;
    t->unit_null = i == 2;
    t->unit = (int64_t)i - 400;
}

/* The row the reader should produce for record i, in the order of wanted. */
static void expected_row(size_t i, double *row)
{
    struct telemetry t;
    make_record(i, &t);
    row[0] = t.pressure;
    row[1] = t.cycle;
    row[2] = (double)t.ts_ms;
    row[3] = (double)t.temp;
    row[4] = t.failed ? 1.0 : 0.0;
    row[5] = t.vibration;
    row[6] = t.rpm_null ? NAN : t.rpm;
}

static char *tmpdir;

static void tmp_path(const char *name, char *path, size_t pathsz)
{
    snprintf(path, pathsz, "%s/%s", tmpdir, name);
}

static avro_schema_t parse_schema(const char *json)
{
    avro_schema_t s = NULL;
    if (avro_schema_from_json_length(json, strlen(json), &s) != 0)
        fail_msg("schema does not parse: %s", avro_strerror());
    return s;
}

static void set_union(avro_value_t *field, int branch_index, avro_value_t *branch)
{
    assert_int_equal(avro_value_set_branch(field, branch_index, branch), 0);
}

/* Writes records 0..n-1 to tmpdir/name with Avro C's file writer. */
static void write_with_avro_c(const char *name, size_t n)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    avro_schema_t schema = parse_schema(telemetry_schema);
    avro_file_writer_t w = NULL;
    if (avro_file_writer_create(path, schema, &w) != 0)
        fail_msg("avro_file_writer_create: %s", avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, f, b;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    for (size_t i = 0; i < n; i++) {
        struct telemetry t;
        make_record(i, &t);
        avro_value_reset(&rec);
        avro_value_get_by_index(&rec, F_MACHINE, &f, NULL);
        avro_value_set_string(&f, t.machine);
        avro_value_get_by_index(&rec, F_CYCLE, &f, NULL);
        avro_value_set_int(&f, t.cycle);
        avro_value_get_by_index(&rec, F_TS, &f, NULL);
        avro_value_set_long(&f, t.ts_ms);
        avro_value_get_by_index(&rec, F_TEMP, &f, NULL);
        avro_value_set_float(&f, t.temp);
        avro_value_get_by_index(&rec, F_PRESSURE, &f, NULL);
        avro_value_set_double(&f, t.pressure);
        avro_value_get_by_index(&rec, F_FAILED, &f, NULL);
        avro_value_set_boolean(&f, t.failed);
        avro_value_get_by_index(&rec, F_VIBRATION, &f, NULL);
        if (isnan(t.vibration)) {
            set_union(&f, 0, &b);
            avro_value_set_null(&b);
        } else {
            set_union(&f, 1, &b);
            avro_value_set_double(&b, t.vibration);
        }
        avro_value_get_by_index(&rec, F_RPM, &f, NULL);
        if (t.rpm_null) {
            set_union(&f, 1, &b);
            avro_value_set_null(&b);
        } else {
            set_union(&f, 0, &b);
            avro_value_set_int(&b, t.rpm);
        }
        avro_value_get_by_index(&rec, F_OWNER, &f, NULL);
        set_union(&f, 1, &b);
        avro_value_set_string(&b, "ops");
        avro_value_get_by_index(&rec, F_UNIT, &f, NULL);
        if (t.unit_null) {
            set_union(&f, 0, &b);
            avro_value_set_null(&b);
        } else {
            set_union(&f, 1, &b);
            avro_value_set_long(&b, t.unit);
        }
        if (avro_file_writer_append_value(w, &rec) != 0)
            fail_msg("append record %zu: %s", i, avro_strerror());
    }
    assert_int_equal(avro_file_writer_close(w), 0);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

/* Writes an Avro C container whose schema is a bare double. */
static void write_scalar_container(const char *name)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    avro_schema_t schema = avro_schema_double();
    avro_file_writer_t w = NULL;
    assert_int_equal(avro_file_writer_create(path, schema, &w), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    avro_value_set_double(&v, 1.5);
    assert_int_equal(avro_file_writer_append_value(w, &v), 0);
    assert_int_equal(avro_file_writer_close(w), 0);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

static void write_bytes(const char *name, const char *bytes, size_t len)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    support_write_file(path, bytes, len);
}

/* Files shared by the cases: main.avro (C_ROWS records by Avro C),
 * truncated.avro (main.avro cut inside a block), scalar.avro (a container of
 * doubles), empty.avro (no records), garbage.avro (not Avro), zero-bytes.avro. */
static int group_setup(void **state)
{
    (void)state;
    tmpdir = support_mkdtemp("tributary-avro");
    if (!tmpdir)
        return -1;
    write_with_avro_c("main.avro", C_ROWS);
    write_with_avro_c("empty.avro", 0);
    write_scalar_container("scalar.avro");
    char path[PATH_MAX];
    tmp_path("main.avro", path, sizeof(path));
    size_t len = 0;
    char *bytes = support_read_file(path, &len);
    write_bytes("truncated.avro", bytes, len * 3 / 5);
    free(bytes);
    static const char garbage[] = "machine,pressure\nm-1,1.5\n";
    write_bytes("garbage.avro", garbage, sizeof(garbage) - 1);
    write_bytes("zero-bytes.avro", "", 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = support_rmtree(tmpdir);
    free(tmpdir);
    return rc;
}

static struct avro_container_reader *open_ok(const char *path)
{
    char err[1024] = "";
    struct avro_container_reader *r = avro_container_reader_new(path, err, sizeof(err));
    if (!r)
        fail_msg("avro_container_reader_new(%s): %s", path, err);
    return r;
}

static struct table *read_ok(struct avro_container_reader *r, const char *const *fields, size_t n,
                             const char *key)
{
    char err[1024] = "";
    struct table *t = NULL;
    int rc = avro_container_reader_read_table(r, fields, n, key, &t, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("read_table failed (%d): %s", rc, err);
    assert_non_null(t);
    return t;
}

static void assert_same_double(double got, double want, const char *what, size_t r, size_t c)
{
    if (!(got == want || (isnan(got) && isnan(want))))
        fail_msg("%s record %zu field %zu: got %.17g, want %.17g", what, r, c, got, want);
}

/* Reads path with the wanted fields and machine as the key and checks every
 * value against the records written. */
/* Checks a table read with the wanted fields and machine as the key against
 * records 0..nrows-1. */
static void check_telemetry_table(const struct table *t, size_t nrows, const char *what)
{
    assert_int_equal(table_nrows(t), nrows);
    assert_int_equal(table_ncols(t), NWANTED);
    assert_string_equal(table_key_name(t), "machine");
    for (size_t c = 0; c < NWANTED; c++)
        assert_string_equal(table_column_name(t, c), wanted[c]);
    for (size_t i = 0; i < nrows; i++) {
        double want[NWANTED];
        struct telemetry rec;
        expected_row(i, want);
        make_record(i, &rec);
        for (size_t c = 0; c < NWANTED; c++)
            assert_same_double(table_row(t, i)[c], want[c], what, i, c);
        assert_string_equal(table_key(t, i), rec.machine);
    }
}

static void check_telemetry_file(const char *path, size_t nrows)
{
    struct avro_container_reader *r = open_ok(path);
    struct table *t = read_ok(r, wanted, NWANTED, "machine");
    check_telemetry_table(t, nrows, path);
    table_destroy(t);
    avro_container_reader_destroy(r);
}

static void test_avro_c_file_reads_back_values_written(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmp_path("main.avro", path, sizeof(path));
    check_telemetry_file(path, C_ROWS);
}

static void test_one_call_read_gives_table_and_schema(void **state)
{
    (void)state;
    char path[PATH_MAX], err[1024] = "";
    tmp_path("main.avro", path, sizeof(path));
    struct table *t = NULL;
    char *json = NULL;
    int rc =
        avro_container_reader_read(path, wanted, NWANTED, "machine", &t, &json, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("avro_container_reader_read: %s", err);
    check_telemetry_table(t, C_ROWS, path);
    struct avro_container_reader *r = open_ok(path);
    assert_string_equal(json, avro_container_reader_schema_json(r));
    avro_container_reader_destroy(r);
    free(json);
    table_destroy(t);

    /* Failures leave both outputs NULL. */
    static const char *const absent[] = {"absent"};
    t = (struct table *)path;
    json = path;
    assert_int_equal(avro_container_reader_read(path, absent, 1, NULL, &t, &json, err, sizeof(err)),
                     TB_SCHEMA);
    assert_null(t);
    assert_null(json);
    tmp_path("no-such.avro", path, sizeof(path));
    t = (struct table *)path;
    json = path;
    assert_int_equal(
        avro_container_reader_read(path, wanted, NWANTED, NULL, &t, &json, err, sizeof(err)),
        TB_IO);
    assert_null(t);
    assert_null(json);
}

static void test_schema_json_is_the_writer_schema(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmp_path("main.avro", path, sizeof(path));
    struct avro_container_reader *r = open_ok(path);
    const char *json = avro_container_reader_schema_json(r);
    assert_non_null(json);
    avro_schema_t got = parse_schema(json), want = parse_schema(telemetry_schema);
    assert_true(avro_schema_equal(got, want));
    /* The same schema gives the same text, so the text can be fingerprinted. */
    struct avro_container_reader *again = open_ok(path);
    assert_string_equal(avro_container_reader_schema_json(again), json);
    avro_container_reader_destroy(again);
    avro_schema_decref(want);
    avro_schema_decref(got);
    avro_container_reader_destroy(r);
}

static void test_int_and_long_keys_are_kept_in_decimal(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmp_path("main.avro", path, sizeof(path));
    static const char *const pressure[] = {"pressure"};
    struct avro_container_reader *r = open_ok(path);
    struct table *t = read_ok(r, pressure, 1, "cycle");
    struct avro_container_reader *r2 = open_ok(path);
    struct table *t2 = read_ok(r2, NULL, 0, "ts_ms");
    assert_int_equal(table_nrows(t2), C_ROWS);
    assert_int_equal(table_ncols(t2), 0);
    for (size_t i = 0; i < C_ROWS; i++) {
        struct telemetry rec;
        make_record(i, &rec);
        char want[32];
        snprintf(want, sizeof(want), "%d", (int)rec.cycle);
        assert_string_equal(table_key(t, i), want);
        snprintf(want, sizeof(want), "%lld", (long long)rec.ts_ms);
        assert_string_equal(table_key(t2, i), want);
    }
    table_destroy(t2);
    avro_container_reader_destroy(r2);
    table_destroy(t);
    avro_container_reader_destroy(r);
}

static void test_container_without_records_gives_no_rows(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmp_path("empty.avro", path, sizeof(path));
    struct avro_container_reader *r = open_ok(path);
    struct table *t = read_ok(r, wanted, NWANTED, "machine");
    assert_int_equal(table_nrows(t), 0);
    table_destroy(t);
    avro_container_reader_destroy(r);
}

static void test_second_read_is_refused(void **state)
{
    (void)state;
    char path[PATH_MAX], expected[PATH_MAX + 64], err[1024] = "";
    tmp_path("main.avro", path, sizeof(path));
    struct avro_container_reader *r = open_ok(path);
    struct table *t = read_ok(r, wanted, NWANTED, NULL);
    assert_null(table_key(t, 0));
    table_destroy(t);
    t = NULL;
    assert_int_equal(
        avro_container_reader_read_table(r, wanted, NWANTED, NULL, &t, err, sizeof(err)), TB_USAGE);
    assert_null(t);
    snprintf(expected, sizeof(expected), "%s: already read; open it again to reread", path);
    assert_string_equal(err, expected);
    avro_container_reader_destroy(r);
}

/* Appends a JSON number that Python reads as a float (never as an int). */
static int json_float(char *buf, size_t bufsz, double v)
{
    char num[40];
    snprintf(num, sizeof(num), "%.17g", v);
    bool looks_int = strpbrk(num, ".eEn") == NULL;
    return snprintf(buf, bufsz, "%s%s", num, looks_int ? ".0" : "");
}

/* Writes records 0..n-1 as JSON lines for the Python writer. */
static void write_records_json(const char *name, size_t n)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++) {
        struct telemetry t;
        make_record(i, &t);
        char temp[48], pressure[48], vibration[48], unit[32], rpm[32];
        json_float(temp, sizeof(temp), (double)t.temp);
        json_float(pressure, sizeof(pressure), t.pressure);
        if (isnan(t.vibration))
            snprintf(vibration, sizeof(vibration), "null");
        else
            json_float(vibration, sizeof(vibration), t.vibration);
        snprintf(rpm, sizeof(rpm), t.rpm_null ? "null" : "%d", (int)t.rpm);
        if (t.unit_null)
            snprintf(unit, sizeof(unit), "null");
        else
            snprintf(unit, sizeof(unit), "%lld", (long long)t.unit);
        fprintf(fp,
                "{\"machine\": \"%s\", \"cycle\": %d, \"ts_ms\": %lld, \"temp\": %s, "
                "\"pressure\": %s, \"failed\": %s, \"vibration\": %s, \"rpm\": %s, "
                "\"owner\": null, \"tags\": [\"a\", \"b\"], \"unit\": %s}\n",
                t.machine, (int)t.cycle, (long long)t.ts_ms, temp, pressure,
                t.failed ? "true" : "false", vibration, rpm, unit);
    }
    assert_int_equal(fclose(fp), 0);
}

/* argv: schema JSON, records (JSON lines), output path, codec. Forces a
 * block every 250 records so that the file has several. */
static const char python_writer[] =
    "import json, sys\n"
    "import avro.schema\n"
    "from avro.datafile import DataFileWriter\n"
    "from avro.io import DatumWriter\n"
    "schema_json, records, out, codec = sys.argv[1:5]\n"
    "schema = avro.schema.parse(schema_json)\n"
    "with open(out, 'wb') as f:\n"
    "    w = DataFileWriter(f, DatumWriter(), schema, codec=codec)\n"
    "    for i, line in enumerate(open(records)):\n"
    "        w.append(json.loads(line))\n"
    "        if i % 250 == 249:\n"
    "            w.sync()\n"
    "    w.close()\n"
    "print(codec)\n";

/* Has Python's avro package write PY_ROWS records with codec, checks that
 * the file says it uses that codec, and reads it back. */
static void python_round_trip(const char *codec)
{
    char records[PATH_MAX], path[PATH_MAX], name[64], said[64];
    snprintf(name, sizeof(name), "records-%s.jsonl", codec);
    write_records_json(name, PY_ROWS);
    tmp_path(name, records, sizeof(records));
    snprintf(name, sizeof(name), "python-%s.avro", codec);
    tmp_path(name, path, sizeof(path));
    char *out = support_python("-c", python_writer, telemetry_schema, records, path, codec, NULL);
    snprintf(said, sizeof(said), "%s\n", codec);
    assert_string_equal(out, said);
    free(out);

    /* The header's metadata maps "avro.codec" to the codec's name, both
     * encoded as a zigzag length (2 * n for short strings) and the bytes. */
    size_t len = 0;
    char *bytes = support_read_file(path, &len);
    char entry[64];
    size_t n = strlen(codec);
    int k = snprintf(entry, sizeof(entry), "%c%s%c%s", 2 * 10, "avro.codec", (int)(2 * n), codec);
    if (!memmem(bytes, len, entry, (size_t)k))
        fail_msg("%s does not declare codec %s", path, codec);
    free(bytes);

    struct avro_container_reader *r = open_ok(path);
    avro_schema_t got = parse_schema(avro_container_reader_schema_json(r));
    avro_schema_t want = parse_schema(telemetry_schema);
    assert_true(avro_schema_equal(got, want));
    avro_schema_decref(want);
    avro_schema_decref(got);
    avro_container_reader_destroy(r);

    check_telemetry_file(path, PY_ROWS);
}

static void test_python_null_codec_file_reads_back_values_written(void **state)
{
    (void)state;
    python_round_trip("null");
}

static void test_python_deflate_codec_file_reads_back_values_written(void **state)
{
    (void)state;
    python_round_trip("deflate");
}

/* One error case: the file (in tmpdir), the fields and key asked for, and
 * the status and message expected ("%s" stands for the path). When
 * prefix_only is set, the message must only start with the expected text
 * (the rest is Avro C's own wording). */
struct error_case {
    const char *file;
    const char *const *fields;
    size_t nfields;
    const char *key;
    int status;
    const char *message;
    bool prefix_only;
    bool at_open; /* the failure comes from avro_container_reader_new */
};

static const char *const pressure_x[] = {"pressure", "pressure_x"};
static const char *const machine[] = {"machine"};
static const char *const owner[] = {"owner"};
static const char *const tags[] = {"tags"};
static const char *const cycle_twice[] = {"cycle", "ts_ms", "cycle"};
static const char *const value[] = {"value"};

#define CASE(file_, fields_, n_, key_, status_, message_)                                          \
    {                                                                                              \
        .file = (file_), .fields = (fields_), .nfields = (n_), .key = (key_), .status = (status_), \
        .message = (message_)                                                                      \
    }

static const struct error_case err_field_not_in_schema = CASE(
    "main.avro", pressure_x, 2, NULL, TB_SCHEMA, "%s: field 'pressure_x' not in writer schema");
static const struct error_case err_key_not_in_schema =
    CASE("main.avro", wanted, NWANTED, "machine_id", TB_SCHEMA,
         "%s: field 'machine_id' not in writer schema");
static const struct error_case err_string_is_not_a_number =
    CASE("main.avro", machine, 1, NULL, TB_SCHEMA, "%s: field 'machine' is a string, not a number");
static const struct error_case err_nullable_string_is_not_a_number =
    CASE("main.avro", owner, 1, NULL, TB_SCHEMA,
         "%s: field 'owner' is a union (null | string), not a number");
static const struct error_case err_array_is_not_a_number =
    CASE("main.avro", tags, 1, NULL, TB_SCHEMA, "%s: field 'tags' is an array, not a number");
static const struct error_case err_double_key_is_not_a_string = CASE(
    "main.avro", NULL, 0, "pressure", TB_SCHEMA, "%s: field 'pressure' is a double, not a string");
static const struct error_case err_null_key =
    CASE("main.avro", wanted, NWANTED, "unit", TB_PARSE, "%s: record 3: field 'unit' is null");
static const struct error_case err_wanted_twice =
    CASE("main.avro", cycle_twice, 3, NULL, TB_USAGE, "%s: field 'cycle' is wanted twice");
static const struct error_case err_schema_not_a_record =
    CASE("scalar.avro", value, 1, NULL, TB_SCHEMA, "%s: writer schema is a double, not a record");
static const struct error_case err_truncated_file = {.file = "truncated.avro",
                                                     .fields = wanted,
                                                     .nfields = NWANTED,
                                                     .status = TB_PARSE,
                                                     .message = "%s: record ",
                                                     .prefix_only = true};
static const struct error_case err_not_an_avro_file = {.file = "garbage.avro",
                                                       .status = TB_PARSE,
                                                       .message = "%s: not an Avro container file",
                                                       .at_open = true};
static const struct error_case err_empty_file = {.file = "zero-bytes.avro",
                                                 .status = TB_PARSE,
                                                 .message = "%s: not an Avro container file",
                                                 .at_open = true};
static const struct error_case err_missing_file = {.file = "no-such.avro",
                                                   .status = TB_IO,
                                                   .message = "%s: No such file or directory",
                                                   .at_open = true};

static void run_error_case(void **state)
{
    const struct error_case *c = *state;
    char path[PATH_MAX], expected[PATH_MAX + 256], err[1024] = "";
    tmp_path(c->file, path, sizeof(path));
    snprintf(expected, sizeof(expected), c->message, path);
    struct avro_container_reader *r = avro_container_reader_new(path, err, sizeof(err));
    if (c->at_open) {
        assert_null(r);
    } else {
        if (!r)
            fail_msg("open failed: %s", err);
        static char sentinel;
        struct table *t = (struct table *)&sentinel; /* the reader must set it to NULL */
        int rc = avro_container_reader_read_table(r, c->fields, c->nfields, c->key, &t, err,
                                                  sizeof(err));
        assert_null(t);
        assert_int_equal(rc, c->status);
        avro_container_reader_destroy(r);
    }
    if (c->prefix_only) {
        if (strncmp(err, expected, strlen(expected)) != 0 || strlen(err) == strlen(expected))
            fail_msg("message '%s' does not start with '%s' and go on", err, expected);
    } else {
        assert_string_equal(err, expected);
    }
}

#define ERROR_CASE(name)                                                                           \
    {                                                                                              \
        "error: " #name, run_error_case, NULL, NULL, (void *)&err_##name                           \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_c_file_reads_back_values_written),
        cmocka_unit_test(test_one_call_read_gives_table_and_schema),
        cmocka_unit_test(test_schema_json_is_the_writer_schema),
        cmocka_unit_test(test_int_and_long_keys_are_kept_in_decimal),
        cmocka_unit_test(test_container_without_records_gives_no_rows),
        cmocka_unit_test(test_second_read_is_refused),
        cmocka_unit_test(test_python_null_codec_file_reads_back_values_written),
        cmocka_unit_test(test_python_deflate_codec_file_reads_back_values_written),
        ERROR_CASE(field_not_in_schema),
        ERROR_CASE(key_not_in_schema),
        ERROR_CASE(string_is_not_a_number),
        ERROR_CASE(nullable_string_is_not_a_number),
        ERROR_CASE(array_is_not_a_number),
        ERROR_CASE(double_key_is_not_a_string),
        ERROR_CASE(null_key),
        ERROR_CASE(wanted_twice),
        ERROR_CASE(schema_not_a_record),
        ERROR_CASE(truncated_file),
        ERROR_CASE(not_an_avro_file),
        ERROR_CASE(empty_file),
        ERROR_CASE(missing_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
