/* Tests for the Avro container reader: files written by Avro C and by
 * Python's avro package (null and deflate codecs) read back to the values
 * written, categorical fields (strings, enums, unions with null) read into
 * dictionaries, and every error names the file and field. */
#include "connectors/avro/avro_container_reader.h"
#include "connectors/files/table.h"
#include "service/base/error.h"
#include "tests/support/support.h"

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
    row[6] = t.rpm_null ? NAN : (double)t.rpm;
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

enum { CAT_ROWS = 500 };
static void write_categories_with_avro_c(const char *name, size_t n);

/* Files shared by the cases: main.avro (C_ROWS records by Avro C),
 * categories.avro (CAT_ROWS records of categorical fields by Avro C),
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
    write_categories_with_avro_c("categories.avro", CAT_ROWS);
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
    int rc = avro_container_reader_read_table(r, fields, n, NULL, 0, key, &t, err, sizeof(err));
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
    int rc = avro_container_reader_read(path, wanted, NWANTED, NULL, 0, "machine", &t, &json, err,
                                        sizeof(err));
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
    assert_int_equal(
        avro_container_reader_read(path, absent, 1, NULL, 0, NULL, &t, &json, err, sizeof(err)),
        TB_SCHEMA);
    assert_null(t);
    assert_null(json);
    tmp_path("no-such.avro", path, sizeof(path));
    t = (struct table *)path;
    json = path;
    assert_int_equal(avro_container_reader_read(path, wanted, NWANTED, NULL, 0, NULL, &t, &json,
                                                err, sizeof(err)),
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
        avro_container_reader_read_table(r, wanted, NWANTED, NULL, 0, NULL, &t, err, sizeof(err)),
        TB_USAGE);
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

/* ---- categorical fields ---- */

/* Strings, enums (one of them used again by name), and both in unions with
 * null, null first and second. */
static const char category_schema[] =
    "{\"type\": \"record\", \"name\": \"Categories\", \"namespace\": \"tributary.test\","
    " \"fields\": ["
    "{\"name\": \"machine\", \"type\": \"string\"},"
    "{\"name\": \"state\", \"type\": {\"type\": \"enum\", \"name\": \"State\","
    " \"symbols\": [\"OK\", \"WARN\", \"FAIL\"]}},"
    "{\"name\": \"grade\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"mode\", \"type\": [{\"type\": \"enum\", \"name\": \"Mode\","
    " \"symbols\": [\"AUTO\", \"MANUAL\"]}, \"null\"]},"
    "{\"name\": \"pressure\", \"type\": \"double\"},"
    "{\"name\": \"previous\", \"type\": \"State\"}]}";

enum { NCATEGORICAL = 5 };

static const char *const state_symbols[] = {"OK", "WARN", "FAIL"};
static const char *const mode_symbols[] = {"AUTO", "MANUAL"};
/* The empty string is a category in Avro (only null is missing). */
static const char *const grades[] = {"B", "A", "", "caf\xc3\xa9"};
static const char *const grades_json[] = {"\"B\"", "\"A\"", "\"\"", "\"caf\\u00e9\""};

/* The categorical fields the tests read, in the order they ask for them. */
static const char *const categorical_wanted[NCATEGORICAL] = {"state", "machine", "grade", "mode",
                                                             "previous"};
static const char *const pressure_only[] = {"pressure"};

struct category_record {
    char machine[16];
    int state;    /* symbol index */
    int grade;    /* index into grades, -1 for null */
    int mode;     /* symbol index, -1 for null */
    int previous; /* symbol index */
    double pressure;
};

static void make_category_record(size_t i, struct category_record *c)
{
    snprintf(c->machine, sizeof(c->machine), "m-%zu", (i * 7) % 11);
    c->state = (int)((2 * i + 1) % 3);
    c->grade = i % 4 == 3 ? -1 : (int)((i / 2) % 4);
    c->mode = i % 3 == 0 ? -1 : (i % 5 < 2 ? 1 : 0);
    c->previous = (int)((i + 2) % 3);
    c->pressure = (double)i * 0.5;
}

/* The strings record i holds, in the order of categorical_wanted; NULL for null. */
static void expected_categories(size_t i, const char *out[NCATEGORICAL], char machine[16])
{
    struct category_record c;
    make_category_record(i, &c);
    memcpy(machine, c.machine, sizeof(c.machine));
    out[0] = state_symbols[c.state];
    out[1] = machine;
    out[2] = c.grade < 0 ? NULL : grades[c.grade];
    out[3] = c.mode < 0 ? NULL : mode_symbols[c.mode];
    out[4] = state_symbols[c.previous];
}

static void write_categories_with_avro_c(const char *name, size_t n)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    avro_schema_t schema = parse_schema(category_schema);
    avro_file_writer_t w = NULL;
    if (avro_file_writer_create(path, schema, &w) != 0)
        fail_msg("avro_file_writer_create: %s", avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, f, b;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    for (size_t i = 0; i < n; i++) {
        struct category_record c;
        make_category_record(i, &c);
        avro_value_reset(&rec);
        avro_value_get_by_name(&rec, "machine", &f, NULL);
        assert_int_equal(avro_value_set_string(&f, c.machine), 0);
        avro_value_get_by_name(&rec, "state", &f, NULL);
        assert_int_equal(avro_value_set_enum(&f, c.state), 0);
        avro_value_get_by_name(&rec, "grade", &f, NULL);
        set_union(&f, c.grade < 0 ? 0 : 1, &b);
        assert_int_equal(
            c.grade < 0 ? avro_value_set_null(&b) : avro_value_set_string(&b, grades[c.grade]), 0);
        avro_value_get_by_name(&rec, "mode", &f, NULL);
        set_union(&f, c.mode < 0 ? 1 : 0, &b);
        assert_int_equal(c.mode < 0 ? avro_value_set_null(&b) : avro_value_set_enum(&b, c.mode), 0);
        avro_value_get_by_name(&rec, "pressure", &f, NULL);
        assert_int_equal(avro_value_set_double(&f, c.pressure), 0);
        avro_value_get_by_name(&rec, "previous", &f, NULL);
        assert_int_equal(avro_value_set_enum(&f, c.previous), 0);
        if (avro_file_writer_append_value(w, &rec) != 0)
            fail_msg("append record %zu: %s", i, avro_strerror());
    }
    assert_int_equal(avro_file_writer_close(w), 0);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

/* Writes the same records as JSON lines for the Python writer (an enum is its
 * symbol, a union member its bare value). */
static void write_category_records_json(const char *name, size_t n)
{
    char path[PATH_MAX];
    tmp_path(name, path, sizeof(path));
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++) {
        struct category_record c;
        make_category_record(i, &c);
        char mode[16];
        snprintf(mode, sizeof(mode), c.mode < 0 ? "null" : "\"%s\"",
                 c.mode < 0 ? "" : mode_symbols[c.mode]);
        fprintf(fp,
                "{\"machine\": \"%s\", \"state\": \"%s\", \"grade\": %s, \"mode\": %s, "
                "\"pressure\": %.17g, \"previous\": \"%s\"}\n",
                c.machine, state_symbols[c.state], c.grade < 0 ? "null" : grades_json[c.grade],
                mode, c.pressure, state_symbols[c.previous]);
    }
    assert_int_equal(fclose(fp), 0);
}

/* Checks a table read with pressure_only and categorical_wanted against
 * records 0..nrows-1: each cell names the string written (NAN for null), and
 * each dictionary lists the strings in the order they first appear, worked
 * out here by scanning the expected values. */
static void check_category_table(struct table *t, size_t nrows, const char *what)
{
    assert_int_equal(table_nrows(t), nrows);
    assert_int_equal(table_ncols(t), 1 + NCATEGORICAL);
    assert_string_equal(table_column_name(t, 0), "pressure");
    assert_false(table_is_categorical(t, 0));
    for (size_t j = 0; j < NCATEGORICAL; j++) {
        assert_string_equal(table_column_name(t, 1 + j), categorical_wanted[j]);
        assert_true(table_is_categorical(t, 1 + j));
    }
    const char *first_seen[NCATEGORICAL][16];
    size_t nseen[NCATEGORICAL] = {0};
    for (size_t i = 0; i < nrows; i++) {
        const char *want[NCATEGORICAL];
        char machine[16];
        expected_categories(i, want, machine);
        struct category_record c;
        make_category_record(i, &c);
        assert_same_double(table_row(t, i)[0], c.pressure, what, i, 0);
        for (size_t j = 0; j < NCATEGORICAL; j++) {
            double code = table_row(t, i)[1 + j];
            if (!want[j]) {
                if (!isnan(code))
                    fail_msg("%s record %zu field '%s': code %g, want null", what, i,
                             categorical_wanted[j], code);
                continue;
            }
            size_t k = 0;
            while (k < nseen[j] && strcmp(first_seen[j][k], want[j]) != 0)
                k++;
            if (k == nseen[j]) {
                assert_true(k < 16);
                /* machine names live in a local buffer; keep the dictionary's copy */
                size_t count = 0;
                const char *const *dict = table_dictionary(t, 1 + j, &count);
                assert_true(k < count);
                first_seen[j][nseen[j]++] = dict[k];
                if (strcmp(dict[k], want[j]) != 0)
                    fail_msg("%s field '%s': category %zu is '%s', want '%s'", what,
                             categorical_wanted[j], k, dict[k], want[j]);
            }
            if (code != (double)k)
                fail_msg("%s record %zu field '%s' ('%s'): code %g, want %zu", what, i,
                         categorical_wanted[j], want[j], code, k);
        }
    }
    /* Each category is its bytes and no more: interning its text finds it. */
    for (size_t j = 0; j < NCATEGORICAL; j++) {
        size_t count = 0;
        const char *const *dict = table_dictionary(t, 1 + j, &count);
        assert_int_equal(count, nseen[j]);
        for (size_t k = 0; k < count; k++) {
            double code = table_intern(t, 1 + j, dict[k], strlen(dict[k]));
            if (code != (double)k)
                fail_msg("%s field '%s': '%s' is not category %zu", what, categorical_wanted[j],
                         dict[k], k);
        }
    }
}

static void test_categorical_fields_read_strings_and_enum_symbols(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmp_path("categories.avro", path, sizeof(path));
    struct avro_container_reader *r = open_ok(path);
    char err[1024] = "";
    struct table *t = NULL;
    int rc = avro_container_reader_read_table(r, pressure_only, 1, categorical_wanted, NCATEGORICAL,
                                              "machine", &t, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("read_table: %s", err);
    check_category_table(t, CAT_ROWS, path);
    /* The fixed values: first appearance, nulls, "" as a category, UTF-8 kept. */
    static const char *const state_order[] = {"WARN", "OK", "FAIL"};
    size_t count = 0;
    const char *const *dict = table_dictionary(t, 1, &count);
    assert_int_equal(count, 3);
    for (size_t k = 0; k < 3; k++)
        assert_string_equal(dict[k], state_order[k]);
    dict = table_dictionary(t, 3, &count);
    assert_int_equal(count, 4);
    assert_string_equal(dict[0], "B");
    assert_string_equal(dict[2], "");
    assert_string_equal(dict[3], "caf\xc3\xa9");
    assert_true(isnan(table_row(t, 3)[3])); /* grade of record 3 is null */
    assert_true(isnan(table_row(t, 0)[4])); /* mode of record 0 is null */
    assert_string_equal(table_key(t, 1), "m-7");
    table_destroy(t);
    avro_container_reader_destroy(r);

    /* The one-call form reads the same. */
    char *json = NULL;
    rc = avro_container_reader_read(path, pressure_only, 1, categorical_wanted, NCATEGORICAL, NULL,
                                    &t, &json, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("avro_container_reader_read: %s", err);
    check_category_table(t, CAT_ROWS, path);
    free(json);
    table_destroy(t);
}

/* A file written by Python's avro package (deflate) reads the same. */
static void test_categorical_fields_of_a_python_file(void **state)
{
    (void)state;
    char records[PATH_MAX], path[PATH_MAX];
    write_category_records_json("categories.jsonl", CAT_ROWS);
    tmp_path("categories.jsonl", records, sizeof(records));
    tmp_path("categories-python.avro", path, sizeof(path));
    char *out =
        support_python("-c", python_writer, category_schema, records, path, "deflate", NULL);
    assert_string_equal(out, "deflate\n");
    free(out);
    struct avro_container_reader *r = open_ok(path);
    char err[1024] = "";
    struct table *t = NULL;
    int rc = avro_container_reader_read_table(r, pressure_only, 1, categorical_wanted, NCATEGORICAL,
                                              NULL, &t, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("read_table: %s", err);
    check_category_table(t, CAT_ROWS, path);
    table_destroy(t);
    avro_container_reader_destroy(r);
}

/* In the telemetry file: a nullable string that is never null, and no numeric
 * field at all. */
static void test_categorical_only_nullable_string(void **state)
{
    (void)state;
    char path[PATH_MAX], err[1024] = "";
    tmp_path("main.avro", path, sizeof(path));
    static const char *const owner_machine[] = {"owner", "machine"};
    struct avro_container_reader *r = open_ok(path);
    struct table *t = NULL;
    int rc =
        avro_container_reader_read_table(r, NULL, 0, owner_machine, 2, NULL, &t, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("read_table: %s", err);
    assert_int_equal(table_nrows(t), C_ROWS);
    size_t count = 0;
    const char *const *dict = table_dictionary(t, 0, &count);
    assert_int_equal(count, 1);
    assert_string_equal(dict[0], "ops");
    assert_true(table_intern(t, 0, "ops", 3) == 0);
    dict = table_dictionary(t, 1, &count);
    assert_int_equal(count, 17); /* m-000 .. m-016 */
    for (size_t i = 0; i < C_ROWS; i++) {
        struct telemetry rec;
        make_record(i, &rec);
        assert_true(table_row(t, i)[0] == 0);
        assert_true(table_row(t, i)[1] == (double)(i % 17));
        assert_string_equal(dict[i % 17], rec.machine);
    }
    table_destroy(t);
    avro_container_reader_destroy(r);
}

/* One error case: the file (in tmpdir), the fields and key asked for, and
 * the status and message expected ("%s" stands for the path). When
 * prefix_only is set, the message must only start with the expected text
 * (the rest is Avro C's own wording). */
struct error_case {
    const char *file;
    const char *const *fields;
    size_t nfields;
    const char *const *categorical;
    size_t ncategorical;
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

static const char *const state_only[] = {"state"};
static const char *const mode_only[] = {"mode"};
static const char *const unit_only[] = {"unit"};
static const char *const colour[] = {"colour"};
static const char *const machine_twice[] = {"machine", "grade", "machine"};

#define CAT_CASE(file_, fields_, n_, cat_, ncat_, status_, message_)                               \
    {                                                                                              \
        .file = (file_), .fields = (fields_), .nfields = (n_), .categorical = (cat_),              \
        .ncategorical = (ncat_), .status = (status_), .message = (message_)                        \
    }

static const struct error_case err_double_is_not_a_category =
    CAT_CASE("categories.avro", NULL, 0, pressure_only, 1, TB_SCHEMA,
             "%s: field 'pressure' is a double, not a string or an enum");
static const struct error_case err_array_is_not_a_category =
    CAT_CASE("main.avro", NULL, 0, tags, 1, TB_SCHEMA,
             "%s: field 'tags' is an array, not a string or an enum");
static const struct error_case err_nullable_long_is_not_a_category =
    CAT_CASE("main.avro", NULL, 0, unit_only, 1, TB_SCHEMA,
             "%s: field 'unit' is a union (null | long), not a string or an enum");
static const struct error_case err_enum_is_not_a_number =
    CAT_CASE("categories.avro", state_only, 1, NULL, 0, TB_SCHEMA,
             "%s: field 'state' is an enum, not a number");
static const struct error_case err_nullable_enum_is_not_a_number =
    CAT_CASE("categories.avro", mode_only, 1, NULL, 0, TB_SCHEMA,
             "%s: field 'mode' is a union (enum | null), not a number");
static const struct error_case err_category_not_in_schema =
    CAT_CASE("categories.avro", pressure_only, 1, colour, 1, TB_SCHEMA,
             "%s: field 'colour' not in writer schema");
static const struct error_case err_number_and_category =
    CAT_CASE("categories.avro", pressure_only, 1, pressure_only, 1, TB_USAGE,
             "%s: field 'pressure' is wanted both as a number and as a category");
static const struct error_case err_category_wanted_twice = CAT_CASE(
    "categories.avro", NULL, 0, machine_twice, 3, TB_USAGE, "%s: field 'machine' is wanted twice");

static void run_error_case(void **state)
{
    const struct error_case *c = *state;
    char path[PATH_MAX], expected[PATH_MAX + 256], err[1024] = "";
    tmp_path(c->file, path, sizeof(path));
    assert_memory_equal(c->message, "%s", 2); /* every message starts with the path */
    snprintf(expected, sizeof(expected), "%s%s", path, c->message + 2);
    struct avro_container_reader *r = avro_container_reader_new(path, err, sizeof(err));
    if (c->at_open) {
        assert_null(r);
    } else {
        if (!r)
            fail_msg("open failed: %s", err);
        static char sentinel;
        struct table *t = (struct table *)&sentinel; /* the reader must set it to NULL */
        int rc = avro_container_reader_read_table(r, c->fields, c->nfields, c->categorical,
                                                  c->ncategorical, c->key, &t, err, sizeof(err));
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
        cmocka_unit_test(test_categorical_fields_read_strings_and_enum_symbols),
        cmocka_unit_test(test_categorical_fields_of_a_python_file),
        cmocka_unit_test(test_categorical_only_nullable_string),
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
        ERROR_CASE(double_is_not_a_category),
        ERROR_CASE(array_is_not_a_category),
        ERROR_CASE(nullable_long_is_not_a_category),
        ERROR_CASE(enum_is_not_a_number),
        ERROR_CASE(nullable_enum_is_not_a_number),
        ERROR_CASE(category_not_in_schema),
        ERROR_CASE(number_and_category),
        ERROR_CASE(category_wanted_twice),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
