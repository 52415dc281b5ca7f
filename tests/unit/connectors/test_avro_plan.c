/* Unit tests of the Avro wire primitives and the Avro decoder: datums written by Avro C itself,
 * hand-built edge cases, malformed input, categorical fields (strings and enums to category
 * indices), schema errors, and fingerprints against Python's avro. */
#include "connectors/avro/avro_plan.h"
#include "connectors/avro/avro_wire.h"
#include "service/base/error.h"
#include "service/base/rng.h"
#include "tests/support/support.h"

#include <avro.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#define CHECK_AVRO(call) assert_int_equal((call), 0)

/* ---- helpers ---- */

static int64_t rng_range(uint64_t *state, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_splitmix64(state) % (uint64_t)(hi - lo + 1));
}

static double rng_double(uint64_t *state)
{
    double unit = (double)(rng_splitmix64(state) >> 11) / 9007199254740992.0;
    return (unit - 0.5) * pow(10.0, (double)rng_range(state, -30, 30));
}

static void rng_word(uint64_t *state, char *out, size_t maxlen)
{
    size_t len = (size_t)rng_range(state, 0, (int64_t)maxlen);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)('a' + rng_range(state, 0, 25));
    out[len] = '\0';
}

static avro_schema_t schema_parse(const char *json)
{
    avro_schema_t schema = NULL;
    if (avro_schema_from_json_length(json, strlen(json), &schema))
        fail_msg("test schema does not parse: %s", avro_strerror());
    return schema;
}

/* Encodes value with Avro C into a malloc'd buffer of exactly the datum's size. */
static uint8_t *avro_c_encode(avro_value_t *value, size_t *len)
{
    CHECK_AVRO(avro_value_sizeof(value, len));
    uint8_t *buf = malloc(*len ? *len : 1);
    avro_writer_t writer = avro_writer_memory((const char *)buf, (int64_t)*len);
    CHECK_AVRO(avro_value_write(writer, value));
    assert_int_equal(avro_writer_tell(writer), (int64_t)*len);
    avro_writer_free(writer);
    return buf;
}

/* A fresh generic value of schema; free with value_free. */
struct avro_c_value {
    avro_value_iface_t *iface;
    avro_value_t value;
};

static void value_new(struct avro_c_value *v, avro_schema_t schema)
{
    v->iface = avro_generic_class_from_schema(schema);
    assert_non_null(v->iface);
    CHECK_AVRO(avro_generic_value_new(v->iface, &v->value));
}

static void value_free(struct avro_c_value *v)
{
    avro_value_decref(&v->value);
    avro_value_iface_decref(v->iface);
}

static avro_value_t field_of(avro_value_t *record, const char *name)
{
    avro_value_t field;
    CHECK_AVRO(avro_value_get_by_name(record, name, &field, NULL));
    return field;
}

/* Copies bytes into a heap block of exactly len bytes, so that AddressSanitizer sees any read
 * beyond the datum. */
static uint8_t *exact_copy(const void *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, bytes, len);
    return copy;
}

static struct avro_plan *codec_or_fail(const char *schema, const char *const *fields,
                                       size_t nfields, size_t nrequired)
{
    char err[256] = "";
    struct avro_plan *codec = avro_plan_new(schema, fields, nfields, nrequired, err, sizeof err);
    if (!codec)
        fail_msg("avro_plan_new: %s", err);
    return codec;
}

/* Decodes bytes (copied to an exact-size block) and returns the status; reason is filled. */
static int decode_exact(const struct avro_plan *codec, const void *bytes, size_t len, double *row,
                        char *reason, size_t reasonsz)
{
    uint8_t *copy = exact_copy(bytes, len);
    reason[0] = '\0';
    int status = avro_plan_decode(codec, copy, len, row, reason, reasonsz);
    free(copy);
    return status;
}

static void assert_same_double(double got, double want, const char *what)
{
    if (isnan(want) ? !isnan(got) : got != want)
        fail_msg("%s: decoded %.17g, wrote %.17g", what, got, want);
}

/* ---- the main test schema: features of every numeric type among skipped fields of every
 * complex type ---- */

static const char READING_SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"tributary.test\","
    "\"doc\":\"every numeric feature type between skipped fields of every complex type\","
    "\"fields\":["
    "{\"name\":\"machine\",\"type\":\"string\"},"
    "{\"name\":\"f_int\",\"type\":\"int\"},"
    "{\"name\":\"blob\",\"type\":\"bytes\"},"
    "{\"name\":\"f_long\",\"type\":\"long\"},"
    "{\"name\":\"state\",\"type\":{\"type\":\"enum\",\"name\":\"State\","
    "\"symbols\":[\"OK\",\"WARN\",\"FAIL\"]}},"
    "{\"name\":\"f_float\",\"type\":\"float\"},"
    "{\"name\":\"digest\",\"type\":{\"type\":\"fixed\",\"name\":\"Digest\",\"size\":16}},"
    "{\"name\":\"f_double\",\"type\":\"double\",\"doc\":\"the main sensor\"},"
    "{\"name\":\"location\",\"type\":{\"type\":\"record\",\"name\":\"Location\","
    "\"namespace\":\"tributary.geo\",\"fields\":["
    "{\"name\":\"lat\",\"type\":\"double\"},{\"name\":\"site\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}]}},"
    "{\"name\":\"f_bool\",\"type\":\"boolean\"},"
    "{\"name\":\"history\",\"type\":{\"type\":\"array\",\"items\":\"double\"}},"
    "{\"name\":\"f_nullable\",\"type\":[\"null\",\"double\"]},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"f_nullable_first\",\"type\":[\"float\",\"null\"]},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\",\"tributary.geo.Location\"]},"
    "{\"name\":\"state2\",\"type\":\"State\"},"
    "{\"name\":\"nested\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\","
    "\"items\":[\"null\",\"int\",\"State\"]}}},"
    "{\"name\":\"rul\",\"type\":[\"null\",\"double\"],\"default\":null}]}";

/* Requested in an order unlike the writer's, to check that columns follow the request. */
static const char *const READING_FIELDS[] = {"f_double", "f_int",   "f_nullable_first", "f_long",
                                             "f_bool",   "f_float", "f_nullable",       "rul"};
#define READING_NFIELDS   8
#define READING_NREQUIRED 7

static void fill_location(avro_value_t *location, uint64_t *rng)
{
    char word[24];
    avro_value_t field = field_of(location, "lat");
    CHECK_AVRO(avro_value_set_double(&field, rng_double(rng)));
    field = field_of(location, "site");
    rng_word(rng, word, 20);
    CHECK_AVRO(avro_value_set_string(&field, word));
    field = field_of(location, "tags");
    for (int64_t i = rng_range(rng, 0, 4); i > 0; i--) {
        avro_value_t tag;
        CHECK_AVRO(avro_value_append(&field, &tag, NULL));
        rng_word(rng, word, 10);
        CHECK_AVRO(avro_value_set_string(&tag, word));
    }
}

/* Fills one Reading with random values and stores, per requested column, the double a decoder
 * must produce. Row 0 and 1 use the extremes of each type. */
static void fill_reading(avro_value_t *rec, uint64_t *rng, int row, double want[READING_NFIELDS])
{
    char word[48];
    uint8_t digest[16];
    avro_value_t f, branch, item;

    f = field_of(rec, "machine");
    rng_word(rng, word, 40);
    CHECK_AVRO(avro_value_set_string(&f, word));

    int32_t i32 = row == 0   ? INT32_MIN
                  : row == 1 ? INT32_MAX
                             : (int32_t)rng_range(rng, INT32_MIN, INT32_MAX);
    f = field_of(rec, "f_int");
    CHECK_AVRO(avro_value_set_int(&f, i32));
    want[1] = (double)i32;

    f = field_of(rec, "blob");
    size_t blob_len = (size_t)rng_range(rng, 0, 30);
    for (size_t i = 0; i < blob_len; i++)
        word[i] = (char)rng_splitmix64(rng);
    CHECK_AVRO(avro_value_set_bytes(&f, word, blob_len));

    int64_t i64 = row == 0   ? INT64_MIN
                  : row == 1 ? INT64_MAX
                             : rng_range(rng, -(INT64_C(1) << 53), INT64_C(1) << 53);
    f = field_of(rec, "f_long");
    CHECK_AVRO(avro_value_set_long(&f, i64));
    want[3] = (double)i64;

    f = field_of(rec, "state");
    CHECK_AVRO(avro_value_set_enum(&f, (int)rng_range(rng, 0, 2)));

    float f32 = row == 0   ? -3.4028234663852886e38f
                : row == 1 ? 1.17549435e-38f
                           : (float)rng_double(rng);
    f = field_of(rec, "f_float");
    CHECK_AVRO(avro_value_set_float(&f, f32));
    want[5] = (double)f32;

    f = field_of(rec, "digest");
    for (size_t i = 0; i < sizeof digest; i++)
        digest[i] = (uint8_t)rng_splitmix64(rng);
    CHECK_AVRO(avro_value_set_fixed(&f, digest, sizeof digest));

    double f64 = row == 0 ? -1.7976931348623157e308 : row == 1 ? 4.9e-324 : rng_double(rng);
    f = field_of(rec, "f_double");
    CHECK_AVRO(avro_value_set_double(&f, f64));
    want[0] = f64;

    f = field_of(rec, "location");
    fill_location(&f, rng);

    int flag = (int)rng_range(rng, 0, 1);
    f = field_of(rec, "f_bool");
    CHECK_AVRO(avro_value_set_boolean(&f, flag));
    want[4] = flag;

    f = field_of(rec, "history");
    for (int64_t i = rng_range(rng, 0, 20); i > 0; i--) {
        CHECK_AVRO(avro_value_append(&f, &item, NULL));
        CHECK_AVRO(avro_value_set_double(&item, rng_double(rng)));
    }

    double nullable = rng_double(rng);
    f = field_of(rec, "f_nullable");
    CHECK_AVRO(avro_value_set_branch(&f, 1, &branch));
    CHECK_AVRO(avro_value_set_double(&branch, nullable));
    want[6] = nullable;

    f = field_of(rec, "attrs");
    for (int64_t i = rng_range(rng, 0, 5); i > 0; i--) {
        snprintf(word, sizeof word, "key%d", (int)i);
        CHECK_AVRO(avro_value_add(&f, word, &item, NULL, NULL));
        CHECK_AVRO(
            avro_value_set_long(&item, rng_range(rng, -(INT64_C(1) << 60), INT64_C(1) << 60)));
    }

    float nullable_first = (float)rng_double(rng);
    f = field_of(rec, "f_nullable_first");
    CHECK_AVRO(avro_value_set_branch(&f, 0, &branch));
    CHECK_AVRO(avro_value_set_float(&branch, nullable_first));
    want[2] = (double)nullable_first;

    f = field_of(rec, "note");
    int note = (int)rng_range(rng, 0, 2);
    CHECK_AVRO(avro_value_set_branch(&f, note, &branch));
    if (note == 0) {
        CHECK_AVRO(avro_value_set_null(&branch));
    } else if (note == 1) {
        rng_word(rng, word, 40);
        CHECK_AVRO(avro_value_set_string(&branch, word));
    } else {
        fill_location(&branch, rng);
    }

    f = field_of(rec, "state2");
    CHECK_AVRO(avro_value_set_enum(&f, (int)rng_range(rng, 0, 2)));

    f = field_of(rec, "nested");
    for (int64_t i = rng_range(rng, 0, 3); i > 0; i--) {
        avro_value_t list;
        snprintf(word, sizeof word, "k%d", (int)i);
        CHECK_AVRO(avro_value_add(&f, word, &list, NULL, NULL));
        for (int64_t k = rng_range(rng, 0, 4); k > 0; k--) {
            CHECK_AVRO(avro_value_append(&list, &item, NULL));
            int which = (int)rng_range(rng, 0, 2);
            CHECK_AVRO(avro_value_set_branch(&item, which, &branch));
            if (which == 0)
                CHECK_AVRO(avro_value_set_null(&branch));
            else if (which == 1)
                CHECK_AVRO(avro_value_set_int(&branch, (int32_t)rng_splitmix64(rng)));
            else
                CHECK_AVRO(avro_value_set_enum(&branch, (int)rng_range(rng, 0, 2)));
        }
    }

    f = field_of(rec, "rul");
    if (row % 3 == 2) {
        CHECK_AVRO(avro_value_set_branch(&f, 0, &branch));
        CHECK_AVRO(avro_value_set_null(&branch));
        want[7] = NAN;
    } else {
        double rul = rng_double(rng);
        CHECK_AVRO(avro_value_set_branch(&f, 1, &branch));
        CHECK_AVRO(avro_value_set_double(&branch, rul));
        want[7] = rul;
    }
}

/* One Reading encoded by Avro C; the caller frees the bytes. */
static uint8_t *reading_encode(int row, uint64_t *rng, double want[READING_NFIELDS], size_t *len)
{
    avro_schema_t schema = schema_parse(READING_SCHEMA);
    struct avro_c_value v;
    value_new(&v, schema);
    fill_reading(&v.value, rng, row, want);
    uint8_t *bytes = avro_c_encode(&v.value, len);
    value_free(&v);
    avro_schema_decref(schema);
    return bytes;
}

/* ---- Python reference for the canonical form and the fingerprint ---- */

/* argv: mode path. Mode "canonical": the canonical form of the schema in path, by Python's avro
 * package; mode "text": the text in path as it is. Prints the CRC-64-AVRO of that text as 16 hex
 * digits, then the text. Python's avro 1.11.1 keeps a primitive with extra attributes (such as
 * {"type":"long","logicalType":"timestamp-millis"}) as an object, where the specification's
 * [PRIMITIVES] and [STRIP] rules give the bare name; collapse() applies those two rules to its
 * output so that schemas with logical types can be compared. Exit 3: no avro module. */
static const char PY_REFERENCE[] =
    "import json, sys\n"
    "EMPTY = 0xc15d213aa4d7a795\n"
    "TABLE = []\n"
    "for i in range(256):\n"
    "    fp = i\n"
    "    for _ in range(8):\n"
    "        fp = (fp >> 1) ^ (EMPTY & -(fp & 1))\n"
    "    TABLE.append(fp)\n"
    "def rabin(data):\n"
    "    fp = EMPTY\n"
    "    for b in data:\n"
    "        fp = (fp >> 8) ^ TABLE[(fp ^ b) & 0xff]\n"
    "    return fp\n"
    "PRIMITIVES = {'null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'}\n"
    "def collapse(j):\n"
    "    if isinstance(j, dict):\n"
    "        if list(j) == ['type'] and j['type'] in PRIMITIVES:\n"
    "            return j['type']\n"
    "        return {k: collapse(v) for k, v in j.items()}\n"
    "    if isinstance(j, list):\n"
    "        return [collapse(v) for v in j]\n"
    "    return j\n"
    "mode, path = sys.argv[1], sys.argv[2]\n"
    "text = open(path, encoding='utf-8').read()\n"
    "if mode == 'canonical':\n"
    "    try:\n"
    "        import avro.schema\n"
    "    except ImportError:\n"
    "        sys.exit(3)\n"
    "    text = avro.schema.parse(text).canonical_form\n"
    "    text = json.dumps(collapse(json.loads(text)), separators=(',', ':'))\n"
    "print('%016x' % rabin(text.encode('utf-8')))\n"
    "print(text)\n";

static char *write_temp(const char *text)
{
    char *path = NULL;
    FILE *fp = support_temp_file("test_avro_plan", &path);
    size_t len = strlen(text);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Runs the Python reference; fills fingerprint[17] and canonical (malloc'd). Skips the test when
 * Python or its avro package is missing. */
static void python_reference(const char *mode, const char *input, char fingerprint[17],
                             char **canonical)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    char *script = write_temp(PY_REFERENCE);
    char *data = write_temp(input);
    int status = 0;
    char *out = support_python_status(&status, script, mode, data, NULL);
    unlink(script);
    unlink(data);
    free(script);
    free(data);
    if (status == 3) {
        free(out);
        skip();
    }
    assert_int_equal(status, 0);
    char *newline = strchr(out, '\n');
    assert_non_null(newline);
    assert_int_equal(newline - out, 16);
    memcpy(fingerprint, out, 16);
    fingerprint[16] = '\0';
    char *text = newline + 1;
    text[strcspn(text, "\n")] = '\0';
    *canonical = strdup(text);
    free(out);
}

/* Checks the codec's canonical form and fingerprint of schema against Python's. */
static void check_fingerprint_against_python(const char *schema)
{
    struct avro_plan *codec = codec_or_fail(schema, NULL, 0, 0);
    char want_fp[17], got_fp[17];
    char *want_text = NULL;
    python_reference("canonical", schema, want_fp, &want_text);
    assert_string_equal(avro_plan_canonical_form(codec), want_text);
    avro_plan_fingerprint(codec, got_fp);
    assert_string_equal(got_fp, want_fp);
    free(want_text);
    avro_plan_destroy(codec);
}

/* ---- wire primitives ---- */

static const char WIRE_SCHEMA[] = "{\"type\":\"record\",\"name\":\"W\",\"fields\":["
                                  "{\"name\":\"l\",\"type\":\"long\"},"
                                  "{\"name\":\"i\",\"type\":\"int\"},"
                                  "{\"name\":\"d\",\"type\":\"double\"},"
                                  "{\"name\":\"f\",\"type\":\"float\"},"
                                  "{\"name\":\"s\",\"type\":\"string\"},"
                                  "{\"name\":\"b\",\"type\":\"boolean\"},"
                                  "{\"name\":\"y\",\"type\":\"bytes\"},"
                                  "{\"name\":\"u\",\"type\":[\"null\",\"long\"]}]}";

struct wire_values {
    int64_t l;
    int32_t i;
    double d;
    float f;
    const char *s;
    int b;
    const char *y;
    int64_t u;
};

static const struct wire_values WIRE_CASES[] = {
    {0, 0, 0.0, 0.0f, "", 0, "", 0},
    {-1, -1, -0.0, -0.0f, "a", 1, "\x01", -1},
    {1, 1, 1.5, 1.5f, "hello", 0, "xyz", 1},
    {63, 63, 1e300, 3e38f, "caf\xc3\xa9", 1, "", 63},
    {64, 64, -2.5e-310, 1e-45f, "x", 0, "0123456789", 64},
    {-64, -64, INFINITY, -INFINITY, "tab\there", 1, "q", -64},
    {-65, -65, 3.141592653589793, 2.7182817f, "y", 0, "", -65},
    {INT64_MAX, INT32_MAX, 1.0 / 3.0, 1.0f / 3.0f, "long string of some length", 1, "zz",
     INT64_MAX},
    {INT64_MIN, INT32_MIN, -1e-300, -1e-30f, "z", 0, "", INT64_MIN},
    {INT64_C(1) << 35, 1 << 28, 6.02e23, 6.02e23f, "end", 1, "end", -(INT64_C(1) << 49)},
};

/* avro_wire_put_* writes exactly the bytes Avro C writes for the same values. */
static void test_wire_put_matches_avro_c(void **state)
{
    (void)state;
    avro_schema_t schema = schema_parse(WIRE_SCHEMA);
    struct avro_wire_buf buf = {0};
    for (size_t c = 0; c < sizeof WIRE_CASES / sizeof WIRE_CASES[0]; c++) {
        const struct wire_values *w = &WIRE_CASES[c];
        struct avro_c_value v;
        avro_value_t f, branch;
        value_new(&v, schema);
        f = field_of(&v.value, "l");
        CHECK_AVRO(avro_value_set_long(&f, w->l));
        f = field_of(&v.value, "i");
        CHECK_AVRO(avro_value_set_int(&f, w->i));
        f = field_of(&v.value, "d");
        CHECK_AVRO(avro_value_set_double(&f, w->d));
        f = field_of(&v.value, "f");
        CHECK_AVRO(avro_value_set_float(&f, w->f));
        f = field_of(&v.value, "s");
        CHECK_AVRO(avro_value_set_string(&f, w->s));
        f = field_of(&v.value, "b");
        CHECK_AVRO(avro_value_set_boolean(&f, w->b));
        f = field_of(&v.value, "y");
        CHECK_AVRO(avro_value_set_bytes(&f, (void *)w->y, strlen(w->y)));
        f = field_of(&v.value, "u");
        CHECK_AVRO(avro_value_set_branch(&f, 1, &branch));
        CHECK_AVRO(avro_value_set_long(&branch, w->u));
        size_t len;
        uint8_t *want = avro_c_encode(&v.value, &len);

        avro_wire_buf_reset(&buf);
        avro_wire_put_long(&buf, w->l);
        avro_wire_put_int(&buf, w->i);
        avro_wire_put_double(&buf, w->d);
        avro_wire_put_float(&buf, w->f);
        avro_wire_put_string(&buf, w->s, strlen(w->s));
        avro_wire_put_boolean(&buf, w->b);
        avro_wire_put_bytes(&buf, w->y, strlen(w->y));
        avro_wire_put_union_index(&buf, 1);
        avro_wire_put_long(&buf, w->u);
        assert_int_equal(buf.len, len);
        assert_memory_equal(buf.data, want, len);
        free(want);
        value_free(&v);
    }
    avro_wire_buf_free(&buf);
    assert_null(buf.data);
    avro_schema_decref(schema);
}

/* The readers return what was written, consume exactly the datum, and read nothing past it. */
static void test_wire_read_round_trip(void **state)
{
    (void)state;
    struct avro_wire_buf buf = {0};
    for (size_t c = 0; c < sizeof WIRE_CASES / sizeof WIRE_CASES[0]; c++) {
        const struct wire_values *w = &WIRE_CASES[c];
        avro_wire_buf_reset(&buf);
        avro_wire_put_long(&buf, w->l);
        avro_wire_put_int(&buf, w->i);
        avro_wire_put_double(&buf, w->d);
        avro_wire_put_float(&buf, w->f);
        avro_wire_put_string(&buf, w->s, strlen(w->s));
        avro_wire_put_boolean(&buf, w->b);
        avro_wire_put_bytes(&buf, w->y, strlen(w->y));
        uint8_t *copy = exact_copy(buf.data, buf.len);
        const uint8_t *pos = copy, *end = copy + buf.len;
        int64_t l;
        int32_t i;
        double d;
        float f;
        const char *s;
        const uint8_t *y;
        size_t s_len, y_len;
        bool b;
        assert_int_equal(avro_wire_read_long(&pos, end, &l), 0);
        assert_int_equal(avro_wire_read_int(&pos, end, &i), 0);
        assert_int_equal(avro_wire_read_double(&pos, end, &d), 0);
        assert_int_equal(avro_wire_read_float(&pos, end, &f), 0);
        assert_int_equal(avro_wire_read_string(&pos, end, &s, &s_len), 0);
        assert_int_equal(avro_wire_read_boolean(&pos, end, &b), 0);
        assert_int_equal(avro_wire_read_bytes(&pos, end, &y, &y_len), 0);
        assert_true(pos == end);
        assert_true(l == w->l);
        assert_int_equal(i, w->i);
        assert_memory_equal(&d, &w->d, sizeof d);
        assert_memory_equal(&f, &w->f, sizeof f);
        assert_int_equal(s_len, strlen(w->s));
        assert_memory_equal(s, w->s, s_len);
        assert_int_equal(b, w->b);
        assert_int_equal(y_len, strlen(w->y));
        if (y_len)
            assert_memory_equal(y, w->y, y_len);
        /* every proper prefix fails for the value it cuts, leaving pos where it was */
        for (size_t cut = 0; cut < buf.len; cut++) {
            uint8_t *prefix = exact_copy(buf.data, cut);
            const uint8_t *p = prefix, *e = prefix + cut;
            int failed = avro_wire_read_long(&p, e, &l) || avro_wire_read_int(&p, e, &i) ||
                         avro_wire_read_double(&p, e, &d) || avro_wire_read_float(&p, e, &f) ||
                         avro_wire_read_string(&p, e, &s, &s_len) ||
                         avro_wire_read_boolean(&p, e, &b) ||
                         avro_wire_read_bytes(&p, e, &y, &y_len);
            assert_true(failed);
            assert_true(p <= e);
            free(prefix);
        }
        free(copy);
    }
    avro_wire_buf_free(&buf);
}

struct varint_case {
    const char *name;
    uint8_t bytes[12];
    size_t len;
    int ok;
    int64_t value;
};

/* Varints at the edges of the 10-byte, 64-bit limits. Values by the zig-zag definition. */
static const struct varint_case VARINT_CASES[] = {
    {"zero", {0x00}, 1, 1, 0},
    {"minus one", {0x01}, 1, 1, -1},
    {"int64 max", {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 1, INT64_MAX},
    {"int64 min", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 1, INT64_MIN},
    {"padded zero (10 bytes)",
     {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
     10,
     1,
     0},
    {"10th byte overflows", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, 0, 0},
    {"11 bytes", {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 11, 0, 0},
    {"ends inside", {0x80, 0x80}, 2, 0, 0},
    {"empty", {0}, 0, 0, 0},
};

static void test_wire_varint_limits(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof VARINT_CASES / sizeof VARINT_CASES[0]; c++) {
        const struct varint_case *v = &VARINT_CASES[c];
        uint8_t *copy = exact_copy(v->bytes, v->len);
        const uint8_t *pos = copy;
        int64_t value = 12345;
        int status = avro_wire_read_long(&pos, copy + v->len, &value);
        if (v->ok) {
            if (status != 0 || value != v->value || pos != copy + v->len)
                fail_msg("%s: read %d, value %lld", v->name, status, (long long)value);
        } else {
            if (status != -1 || pos != copy || value != 12345)
                fail_msg("%s: accepted or moved", v->name);
        }
        free(copy);
    }
}

/* Ints outside 32 bits, negative and overlong lengths, and non-0/1 booleans are refused. */
static void test_wire_rejects_invalid_values(void **state)
{
    (void)state;
    struct avro_wire_buf buf = {0};
    int32_t i;
    const uint8_t *pos, *data;
    size_t len;
    bool flag;

    avro_wire_put_long(&buf, (int64_t)INT32_MAX + 1);
    pos = buf.data;
    assert_int_equal(avro_wire_read_int(&pos, buf.data + buf.len, &i), -1);
    assert_true(pos == buf.data);

    avro_wire_buf_reset(&buf);
    avro_wire_put_long(&buf, (int64_t)INT32_MIN - 1);
    pos = buf.data;
    assert_int_equal(avro_wire_read_int(&pos, buf.data + buf.len, &i), -1);

    avro_wire_buf_reset(&buf);
    avro_wire_put_long(&buf, -3); /* a negative length */
    avro_wire_put_raw(&buf, "abc", 3);
    pos = buf.data;
    assert_int_equal(avro_wire_read_bytes(&pos, buf.data + buf.len, &data, &len), -1);
    assert_true(pos == buf.data);

    avro_wire_buf_reset(&buf);
    avro_wire_put_long(&buf, 4); /* one more than there is */
    avro_wire_put_raw(&buf, "abc", 3);
    pos = buf.data;
    assert_int_equal(avro_wire_read_bytes(&pos, buf.data + buf.len, &data, &len), -1);

    avro_wire_buf_reset(&buf);
    avro_wire_put_long(&buf, INT64_MAX); /* a length that would wrap a pointer */
    pos = buf.data;
    assert_int_equal(avro_wire_read_bytes(&pos, buf.data + buf.len, &data, &len), -1);

    const uint8_t two = 2;
    pos = &two;
    assert_int_equal(avro_wire_read_boolean(&pos, &two + 1, &flag), -1);
    avro_wire_buf_free(&buf);
}

/* A buffer grows across many writes and keeps everything written. */
static void test_wire_buffer_grows(void **state)
{
    (void)state;
    struct avro_wire_buf buf = {0};
    for (int64_t v = -50000; v < 50000; v++)
        avro_wire_put_long(&buf, v * 977);
    const uint8_t *pos = buf.data, *end = buf.data + buf.len;
    for (int64_t v = -50000; v < 50000; v++) {
        int64_t got;
        assert_int_equal(avro_wire_read_long(&pos, end, &got), 0);
        assert_true(got == v * 977);
    }
    assert_true(pos == end);
    avro_wire_buf_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_true(buf.cap > 0);
    avro_wire_buf_free(&buf);
    avro_wire_buf_free(NULL);
}

/* ---- decoding ---- */

/* 60 random Readings written by Avro C decode to the values written. */
static void test_decode_avro_c_records(void **state)
{
    (void)state;
    struct avro_plan *codec =
        codec_or_fail(READING_SCHEMA, READING_FIELDS, READING_NFIELDS, READING_NREQUIRED);
    assert_int_equal(avro_plan_nfields(codec), READING_NFIELDS);
    uint64_t rng = 42;
    for (int row = 0; row < 60; row++) {
        double want[READING_NFIELDS], got[READING_NFIELDS];
        size_t len;
        uint8_t *bytes = reading_encode(row, &rng, want, &len);
        char reason[128];
        int status = decode_exact(codec, bytes, len, got, reason, sizeof reason);
        if (status != TB_OK)
            fail_msg("row %d: %s", row, reason);
        for (size_t j = 0; j < READING_NFIELDS; j++)
            assert_same_double(got[j], want[j], READING_FIELDS[j]);
        free(bytes);
    }
    avro_plan_destroy(codec);
}

/* Every proper prefix of a datum is refused as truncated, naming a field, without a crash. */
static void test_decode_truncated_at_every_length(void **state)
{
    (void)state;
    struct avro_plan *codec =
        codec_or_fail(READING_SCHEMA, READING_FIELDS, READING_NFIELDS, READING_NREQUIRED);
    uint64_t rng = 7;
    for (int row = 0; row < 4; row++) {
        double want[READING_NFIELDS], got[READING_NFIELDS];
        size_t len;
        uint8_t *bytes = reading_encode(row, &rng, want, &len);
        for (size_t cut = 0; cut < len; cut++) {
            char reason[128];
            int status = decode_exact(codec, bytes, cut, got, reason, sizeof reason);
            if (status != TB_PARSE || !strstr(reason, "truncated at byte ") ||
                !strstr(reason, " in field '"))
                fail_msg("row %d cut at %zu of %zu: status %d, '%s'", row, cut, len, status,
                         reason);
        }
        free(bytes);
    }
    avro_plan_destroy(codec);
}

static const char TWO_DOUBLES[] = "{\"type\":\"record\",\"name\":\"P\",\"fields\":["
                                  "{\"name\":\"a\",\"type\":\"double\"},"
                                  "{\"name\":\"b\",\"type\":\"double\"}]}";

static const char SENSOR_SCHEMA[] = "{\"type\":\"record\",\"name\":\"S\",\"fields\":["
                                    "{\"name\":\"pressure\",\"type\":[\"null\",\"double\"]},"
                                    "{\"name\":\"speed\",\"type\":\"float\"},"
                                    "{\"name\":\"rul\",\"type\":[\"null\",\"double\"]}]}";

/* Encodes a SENSOR_SCHEMA record with Avro C; a NULL pointer writes null. */
static uint8_t *sensor_encode(const double *pressure, float speed, const double *rul, size_t *len)
{
    avro_schema_t schema = schema_parse(SENSOR_SCHEMA);
    struct avro_c_value v;
    avro_value_t f, branch;
    value_new(&v, schema);
    f = field_of(&v.value, "pressure");
    CHECK_AVRO(avro_value_set_branch(&f, pressure ? 1 : 0, &branch));
    CHECK_AVRO(pressure ? avro_value_set_double(&branch, *pressure) : avro_value_set_null(&branch));
    f = field_of(&v.value, "speed");
    CHECK_AVRO(avro_value_set_float(&f, speed));
    f = field_of(&v.value, "rul");
    CHECK_AVRO(avro_value_set_branch(&f, rul ? 1 : 0, &branch));
    CHECK_AVRO(rul ? avro_value_set_double(&branch, *rul) : avro_value_set_null(&branch));
    uint8_t *bytes = avro_c_encode(&v.value, len);
    value_free(&v);
    avro_schema_decref(schema);
    return bytes;
}

static const char *const SENSOR_FIELDS[] = {"pressure", "speed", "rul"};

struct sensor_case {
    const char *name;
    int pressure_null, rul_null;
    double pressure;
    float speed;
    int status;
    const char *reason;
};

static const struct sensor_case SENSOR_CASES[] = {
    {"all present", 0, 0, 2.5, 0.5f, TB_OK, ""},
    {"null label gives NaN", 0, 1, 2.5, 0.5f, TB_OK, ""},
    {"null feature", 1, 0, 0, 0.5f, TB_PARSE, "feature 'pressure' is null"},
    {"NaN feature", 0, 0, NAN, 0.5f, TB_PARSE, "feature 'pressure' is NaN"},
    {"infinite feature", 0, 0, -INFINITY, 0.5f, TB_PARSE, "feature 'pressure' is infinite"},
    {"NaN float feature", 0, 0, 1.0, NAN, TB_PARSE, "feature 'speed' is NaN"},
    {"infinite float feature", 0, 0, 1.0, INFINITY, TB_PARSE, "feature 'speed' is infinite"},
};

/* Null, NaN and infinite features are refused by name; a null label is NAN. */
static void test_decode_feature_values(void **state)
{
    (void)state;
    struct avro_plan *codec = codec_or_fail(SENSOR_SCHEMA, SENSOR_FIELDS, 3, 2);
    for (size_t c = 0; c < sizeof SENSOR_CASES / sizeof SENSOR_CASES[0]; c++) {
        const struct sensor_case *k = &SENSOR_CASES[c];
        double rul = 17.0, row[3];
        size_t len;
        uint8_t *bytes = sensor_encode(k->pressure_null ? NULL : &k->pressure, k->speed,
                                       k->rul_null ? NULL : &rul, &len);
        char reason[128];
        int status = decode_exact(codec, bytes, len, row, reason, sizeof reason);
        if (status != k->status || (k->status != TB_OK && strcmp(reason, k->reason) != 0))
            fail_msg("%s: status %d, reason '%s'", k->name, status, reason);
        if (status == TB_OK) {
            assert_same_double(row[0], k->pressure, k->name);
            assert_same_double(row[1], (double)k->speed, k->name);
            assert_same_double(row[2], k->rul_null ? NAN : rul, k->name);
        }
        free(bytes);
    }
    avro_plan_destroy(codec);
}

/* A hand-written byte case: schema, features, bytes, and the exact outcome. */
struct bytes_case {
    const char *name;
    const char *schema;
    const char *fields[3];
    size_t nfields, nrequired;
    uint8_t bytes[24];
    size_t len;
    int status;
    const char *reason;
};

#define D_1_0 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f /* 1.0 little-endian */

static const char LABELLED[] = "{\"type\":\"record\",\"name\":\"L\",\"fields\":["
                               "{\"name\":\"a\",\"type\":\"double\"},"
                               "{\"name\":\"rul\",\"type\":[\"null\",\"double\"]}]}";
static const char TYPED[] = "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                            "{\"name\":\"i\",\"type\":\"int\"},"
                            "{\"name\":\"flag\",\"type\":\"boolean\"},"
                            "{\"name\":\"s\",\"type\":\"string\"},"
                            "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                            "\"symbols\":[\"A\",\"B\"]}}]}";
static const char BLOCKS[] =
    "{\"type\":\"record\",\"name\":\"B\",\"fields\":["
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"nulls\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"v\",\"type\":\"long\"}]}";

static const struct bytes_case BYTES_CASES[] = {
    {"truncated double names the offset",
     TWO_DOUBLES,
     {"a", "b"},
     2,
     2,
     {D_1_0, 0, 0, 0, 0, 0, 0, 0},
     15,
     TB_PARSE,
     "truncated at byte 8 in field 'b'"},
    {"trailing bytes",
     TWO_DOUBLES,
     {"a", "b"},
     2,
     2,
     {D_1_0, D_1_0, 1, 2, 3},
     19,
     TB_PARSE,
     "3 trailing bytes after the record"},
    {"one trailing byte",
     TWO_DOUBLES,
     {"b"},
     1,
     1,
     {D_1_0, D_1_0, 9},
     17,
     TB_PARSE,
     "1 trailing byte after the record"},
    {"union index 5",
     LABELLED,
     {"a", "rul"},
     2,
     1,
     {D_1_0, 0x0a},
     9,
     TB_PARSE,
     "union index 5 out of range in field 'rul'"},
    {"union index -1",
     LABELLED,
     {"a", "rul"},
     2,
     1,
     {D_1_0, 0x01},
     9,
     TB_PARSE,
     "union index -1 out of range in field 'rul'"},
    {"skipped union index 2",
     LABELLED,
     {"a"},
     1,
     1,
     {D_1_0, 0x04},
     9,
     TB_PARSE,
     "union index 2 out of range in field 'rul'"},
    {"label null", LABELLED, {"a", "rul"}, 2, 1, {D_1_0, 0x00}, 9, TB_OK, ""},
    {"empty datum",
     LABELLED,
     {"a", "rul"},
     2,
     1,
     {0},
     0,
     TB_PARSE,
     "truncated at byte 0 in field 'a'"},
    {"int beyond 32 bits",
     TYPED,
     {"i"},
     1,
     1,
     {0x80, 0x80, 0x80, 0x80, 0x10},
     5,
     TB_PARSE,
     "int 2147483648 out of range at byte 0 in field 'i'"},
    {"11-byte varint",
     TYPED,
     {"i"},
     1,
     1,
     {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
     11,
     TB_PARSE,
     "malformed varint (over 10 bytes or 64 bits) at byte 0 in field 'i'"},
    {"boolean byte 2",
     TYPED,
     {"flag"},
     1,
     1,
     {0x02, 0x02},
     2,
     TB_PARSE,
     "invalid boolean byte 0x02 at byte 1 in field 'flag'"},
    {"negative string length",
     TYPED,
     {"i"},
     1,
     1,
     {0x02, 0x01, 0x03},
     3,
     TB_PARSE,
     "negative length -2 at byte 2 in field 's'"},
    {"string longer than the datum",
     TYPED,
     {"i"},
     1,
     1,
     {0x02, 0x01, 0x08, 'a', 'b'},
     5,
     TB_PARSE,
     "truncated at byte 2 in field 's'"},
    {"enum index 2 of 2",
     TYPED,
     {"i"},
     1,
     1,
     {0x02, 0x01, 0x00, 0x04},
     4,
     TB_PARSE,
     "enum index 2 out of range in field 'e'"},
    {"all of TYPED", TYPED, {"flag", "i"}, 2, 2, {0x03, 0x01, 0x02, 'o', 0x02}, 5, TB_OK, ""},
    {"array count beyond the datum",
     BLOCKS,
     {"v"},
     1,
     1,
     {0x80, 0x01, 0x02},
     3,
     TB_PARSE,
     "truncated at byte 2 in field 'xs'"},
    {"array block count INT64_MIN",
     BLOCKS,
     {"v"},
     1,
     1,
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
     10,
     TB_PARSE,
     "invalid block count -9223372036854775808 at byte 0 in field 'xs'"},
    {"negative block size",
     BLOCKS,
     {"v"},
     1,
     1,
     {0x01, 0x01, 0x02},
     3,
     TB_PARSE,
     "negative block size -1 at byte 1 in field 'xs'"},
    {"block size beyond the datum",
     BLOCKS,
     {"v"},
     1,
     1,
     {0x01, 0x0a, 0x02},
     3,
     TB_PARSE,
     "truncated at byte 1 in field 'xs'"},
    /* 2^62 nulls take no bytes: skipped at once, not one by one */
    {"huge block of nulls",
     BLOCKS,
     {"v"},
     1,
     1,
     {0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x54},
     13,
     TB_OK,
     ""},
};

/* Hand-written bytes give the exact reasons a dead-letter record would carry. */
static void test_decode_malformed_bytes(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof BYTES_CASES / sizeof BYTES_CASES[0]; c++) {
        const struct bytes_case *k = &BYTES_CASES[c];
        struct avro_plan *codec = codec_or_fail(k->schema, k->fields, k->nfields, k->nrequired);
        double row[3];
        char reason[128];
        int status = decode_exact(codec, k->bytes, k->len, row, reason, sizeof reason);
        if (status != k->status || strcmp(reason, k->reason) != 0)
            fail_msg("%s: status %d, reason '%s', expected '%s'", k->name, status, reason,
                     k->reason);
        avro_plan_destroy(codec);
    }
}

/* Arrays and maps written in blocks with negative counts (which carry their byte size) are
 * skipped; Avro C reads the same bytes to the same values, which shows they are valid Avro. */
static void test_decode_negative_block_counts(void **state)
{
    (void)state;
    static const char schema_json[] =
        "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
        "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"double\"}},"
        "{\"name\":\"x\",\"type\":\"double\"},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
        "{\"name\":\"r\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
        "\"name\":\"Q\",\"fields\":[{\"name\":\"s\",\"type\":\"string\"}]}}},"
        "{\"name\":\"y\",\"type\":[\"null\",\"long\"]}]}";
    struct avro_wire_buf buf = {0};
    avro_wire_put_long(&buf, -3); /* a: 3 doubles in 24 bytes, then 2 in a counted block */
    avro_wire_put_long(&buf, 24);
    for (int i = 0; i < 3; i++)
        avro_wire_put_double(&buf, i + 0.5);
    avro_wire_put_long(&buf, 2);
    avro_wire_put_double(&buf, 10.0);
    avro_wire_put_double(&buf, 11.0);
    avro_wire_put_long(&buf, 0);
    avro_wire_put_double(&buf, 2.5); /* x */
    avro_wire_put_long(&buf, -2);    /* m: "k"->"v", "kk"->"vv" in 1+1+1+1 + 1+2+1+2 bytes */
    avro_wire_put_long(&buf, 10);
    avro_wire_put_string(&buf, "k", 1);
    avro_wire_put_string(&buf, "v", 1);
    avro_wire_put_string(&buf, "kk", 2);
    avro_wire_put_string(&buf, "vv", 2);
    avro_wire_put_long(&buf, 0);
    avro_wire_put_long(&buf, -1); /* r: one record {s:"hey"} in 4 bytes, then one more */
    avro_wire_put_long(&buf, 4);
    avro_wire_put_string(&buf, "hey", 3);
    avro_wire_put_long(&buf, 1);
    avro_wire_put_string(&buf, "", 0);
    avro_wire_put_long(&buf, 0);
    avro_wire_put_union_index(&buf, 1); /* y */
    avro_wire_put_long(&buf, -7);

    const char *const fields[] = {"x", "y"};
    struct avro_plan *codec = codec_or_fail(schema_json, fields, 2, 2);
    double row[2];
    char reason[128];
    int status = decode_exact(codec, buf.data, buf.len, row, reason, sizeof reason);
    if (status != TB_OK)
        fail_msg("%s", reason);
    assert_same_double(row[0], 2.5, "x");
    assert_same_double(row[1], -7.0, "y");

    avro_schema_t schema = schema_parse(schema_json);
    struct avro_c_value v;
    value_new(&v, schema);
    avro_reader_t reader = avro_reader_memory((const char *)buf.data, (int64_t)buf.len);
    CHECK_AVRO(avro_value_read(reader, &v.value));
    avro_value_t f, branch;
    double x;
    int64_t y;
    size_t count;
    f = field_of(&v.value, "a");
    CHECK_AVRO(avro_value_get_size(&f, &count));
    assert_int_equal(count, 5);
    f = field_of(&v.value, "m");
    CHECK_AVRO(avro_value_get_size(&f, &count));
    assert_int_equal(count, 2);
    f = field_of(&v.value, "r");
    CHECK_AVRO(avro_value_get_size(&f, &count));
    assert_int_equal(count, 2);
    f = field_of(&v.value, "x");
    CHECK_AVRO(avro_value_get_double(&f, &x));
    assert_same_double(x, 2.5, "Avro C x");
    f = field_of(&v.value, "y");
    CHECK_AVRO(avro_value_get_current_branch(&f, &branch));
    CHECK_AVRO(avro_value_get_long(&branch, &y));
    assert_true(y == -7);
    avro_reader_free(reader);
    value_free(&v);
    avro_schema_decref(schema);
    avro_plan_destroy(codec);
    avro_wire_buf_free(&buf);
}

static const char LIST_SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"Top\",\"fields\":["
    "{\"name\":\"list\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"v\",\"type\":\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}},"
    "{\"name\":\"x\",\"type\":\"double\"}]}";

/* A recursive type is skipped through its references; a list of 100 nodes written by Avro C
 * decodes, and a datum nested past the limit is refused instead of exhausting the stack. */
static void test_decode_recursive_schema(void **state)
{
    (void)state;
    const char *const fields[] = {"x"};
    struct avro_plan *codec = codec_or_fail(LIST_SCHEMA, fields, 1, 1);

    avro_schema_t schema = schema_parse(LIST_SCHEMA);
    struct avro_c_value v;
    value_new(&v, schema);
    avro_value_t node = field_of(&v.value, "list"), f;
    for (int i = 0; i < 100; i++) {
        f = field_of(&node, "v");
        CHECK_AVRO(avro_value_set_long(&f, i * 1000));
        f = field_of(&node, "next");
        avro_value_t branch;
        CHECK_AVRO(avro_value_set_branch(&f, i < 99 ? 1 : 0, &branch));
        if (i == 99)
            CHECK_AVRO(avro_value_set_null(&branch));
        node = branch;
    }
    f = field_of(&v.value, "x");
    CHECK_AVRO(avro_value_set_double(&f, -0.125));
    size_t len;
    uint8_t *bytes = avro_c_encode(&v.value, &len);
    double row[1];
    char reason[128];
    if (decode_exact(codec, bytes, len, row, reason, sizeof reason) != TB_OK)
        fail_msg("%s", reason);
    assert_same_double(row[0], -0.125, "x");
    free(bytes);
    value_free(&v);
    avro_schema_decref(schema);

    /* 100000 nested nodes: v = 0, next = branch 1, ... */
    struct avro_wire_buf deep = {0};
    for (int i = 0; i < 100000; i++) {
        avro_wire_put_long(&deep, 0);
        avro_wire_put_union_index(&deep, 1);
    }
    avro_wire_put_long(&deep, 0);
    avro_wire_put_union_index(&deep, 0);
    avro_wire_put_double(&deep, 1.0);
    int status = decode_exact(codec, deep.data, deep.len, row, reason, sizeof reason);
    assert_int_equal(status, TB_PARSE);
    assert_non_null(strstr(reason, "nested deeper than 512 levels"));
    assert_non_null(strstr(reason, "in field 'list'"));
    avro_wire_buf_free(&deep);
    avro_plan_destroy(codec);
}

/* A reason buffer that is NULL or small is respected. */
static void test_decode_small_reason_buffer(void **state)
{
    (void)state;
    const char *const fields[] = {"a", "b"};
    struct avro_plan *codec = codec_or_fail(TWO_DOUBLES, fields, 2, 2);
    const uint8_t bytes[] = {D_1_0};
    double row[2];
    char reason[8];
    memset(reason, 'x', sizeof reason);
    assert_int_equal(avro_plan_decode(codec, bytes, sizeof bytes, row, reason, 5), TB_PARSE);
    assert_string_equal(reason, "trun");
    assert_int_equal(reason[5], 'x');
    assert_int_equal(avro_plan_decode(codec, bytes, sizeof bytes, row, NULL, 0), TB_PARSE);
    assert_int_equal(avro_plan_decode(codec, NULL, 0, row, NULL, 0), TB_PARSE);
    avro_plan_destroy(codec);
}

/* ---- building codecs ---- */

struct new_case {
    const char *name;
    const char *schema;
    const char *fields[3];
    size_t nfields, nrequired;
    const char *message; /* the message must contain this */
};

static const struct new_case NEW_CASES[] = {
    {"missing field",
     READING_SCHEMA,
     {"f_int", "pressure"},
     2,
     2,
     "feature 'pressure' is not in the schema of record 'Reading'"},
    {"missing label",
     READING_SCHEMA,
     {"f_int", "label"},
     2,
     1,
     "optional field 'label' is not in the schema"},
    {"string field",
     READING_SCHEMA,
     {"machine"},
     1,
     1,
     "feature 'machine' has type \"string\"; it must be int, long, float, double, boolean, or a "
     "union of null with one of those"},
    {"nullable string field",
     READING_SCHEMA,
     {"note"},
     1,
     0,
     "optional field 'note' has type [\"null\",\"string\",\"tributary.geo.Location\"]; it "
     "must be"},
    {"enum field",
     READING_SCHEMA,
     {"state2"},
     1,
     1,
     "feature 'state2' has type \"tributary.test.State\"; it must be"},
    {"union of two numbers",
     "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"u\","
     "\"type\":[\"int\",\"double\"]}]}",
     {"u"},
     1,
     1,
     "feature 'u' has type [\"int\",\"double\"]"},
    {"union of three",
     "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"u\","
     "\"type\":[\"null\",\"int\",\"double\"]}]}",
     {"u"},
     1,
     1,
     "feature 'u' has type [\"null\",\"int\",\"double\"]"},
    {"non-record schema", "\"int\"", {"x"}, 1, 1, "schema is of type int, not a record"},
    {"array schema",
     "{\"type\":\"array\",\"items\":\"double\"}",
     {"x"},
     1,
     1,
     "schema is of type array, not a record"},
    {"invalid JSON", "{\"type\":\"record\",", {"x"}, 1, 1, "schema does not parse: "},
    {"unknown type",
     "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\","
     "\"type\":\"decimal\"}]}",
     {"x"},
     1,
     1,
     "schema does not parse: "},
    {"field requested twice", TWO_DOUBLES, {"a", "b", "a"}, 3, 2, "field 'a' is requested twice"},
    {"duplicate field in the schema",
     "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
     "{\"name\":\"x\",\"type\":\"int\"},"
     "{\"name\":\"x\",\"type\":\"long\"}]}",
     {"x"},
     1,
     1,
     "field 'x' appears twice in the schema"},
    {"more required than fields", TWO_DOUBLES, {"a"}, 1, 2, "nrequired exceeds nfields"},
};

static void test_new_errors(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof NEW_CASES / sizeof NEW_CASES[0]; c++) {
        const struct new_case *k = &NEW_CASES[c];
        char err[256] = "";
        struct avro_plan *codec =
            avro_plan_new(k->schema, k->fields, k->nfields, k->nrequired, err, sizeof err);
        if (codec || !strstr(err, k->message))
            fail_msg("%s: %s, message '%s'", k->name, codec ? "accepted" : "refused", err);
    }
}

/* Nullable unions of each numeric type, null first or second, decode in the requested order; a
 * record with no fields gives rows of no columns. */
static void test_new_accepts_every_numeric_type(void **state)
{
    (void)state;
    static const char schema[] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                                 "{\"name\":\"a\",\"type\":[\"boolean\",\"null\"]},"
                                 "{\"name\":\"b\",\"type\":[\"null\",\"long\"]},"
                                 "{\"name\":\"c\",\"type\":[\"null\",\"int\"]},"
                                 "{\"name\":\"d\",\"type\":[\"float\",\"null\"]}]}";
    const char *const fields[] = {"d", "c", "b", "a"};
    struct avro_plan *codec = codec_or_fail(schema, fields, 4, 4);
    const uint8_t bytes[] = {0x00, 0x01, 0x02, 0x7f, 0x02, 0x03, 0x00, 0x00, 0x00, 0xc0, 0x3f};
    double row[4];
    char reason[128];
    if (decode_exact(codec, bytes, sizeof bytes, row, reason, sizeof reason) != TB_OK)
        fail_msg("%s", reason);
    assert_same_double(row[0], 1.5, "d");
    assert_same_double(row[1], -2.0, "c");
    assert_same_double(row[2], -64.0, "b");
    assert_same_double(row[3], 1.0, "a");
    avro_plan_destroy(codec);

    codec = codec_or_fail("{\"type\":\"record\",\"name\":\"E\",\"fields\":[]}", NULL, 0, 0);
    assert_int_equal(avro_plan_nfields(codec), 0);
    assert_int_equal(avro_plan_decode(codec, NULL, 0, NULL, reason, sizeof reason), TB_OK);
    assert_int_equal(avro_plan_decode(codec, bytes, 1, NULL, reason, sizeof reason), TB_PARSE);
    assert_string_equal(reason, "1 trailing byte after the record");
    avro_plan_destroy(codec);
    avro_plan_destroy(NULL);
}

/* ---- categorical fields ---- */

static const char CATEGORY_SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"C\",\"namespace\":\"tributary.test\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Colour\","
    "\"symbols\":[\"RED\",\"GREEN\",\"BLUE\",\"CYAN\"]}},"
    "{\"name\":\"ns\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"x\",\"type\":\"double\"},"
    "{\"name\":\"ne\",\"type\":[\"Colour\",\"null\"]},"
    "{\"name\":\"n\",\"type\":\"long\"}]}";

/* Columns, in an order unlike the writer's: x, s, e, ns, ne, n. */
static const char *const S_CATEGORIES[] = {"b", "a", "zz", ""};
static const char *const E_CATEGORIES[] = {"BLUE", "RED", "MAGENTA"};
static const char *const NS_CATEGORIES[] = {"caf\xc3\xa9", "tea"};
static const char *const NE_CATEGORIES[] = {"GREEN"};
static const struct avro_plan_field CATEGORY_FIELDS[] = {
    {.name = "x", .required = true},
    {.name = "s",
     .required = true,
     .categorical = true,
     .categories = S_CATEGORIES,
     .ncategories = 4},
    {.name = "e",
     .required = true,
     .categorical = true,
     .categories = E_CATEGORIES,
     .ncategories = 3},
    {.name = "ns", .categorical = true, .categories = NS_CATEGORIES, .ncategories = 2},
    {.name = "ne", .categorical = true, .categories = NE_CATEGORIES, .ncategories = 1},
    {.name = "n"},
};
#define CATEGORY_NFIELDS 6

/* Values the strings are drawn from: the categories and near misses. */
static const char *const STRING_POOL[] = {"a",           "b",    "zz",  "",    "z",
                                          "zzz",         "A",    "B ",  "ab",  "ba",
                                          "caf\xc3\xa9", "cafe", "tea", "TEA", "te"};
static const char *const COLOURS[] = {"RED", "GREEN", "BLUE", "CYAN"};

static struct avro_plan *fields_or_fail(const char *schema, const struct avro_plan_field *fields,
                                        size_t nfields)
{
    char err[256] = "";
    struct avro_plan *codec = avro_plan_new_fields(schema, fields, nfields, err, sizeof err);
    if (!codec)
        fail_msg("avro_plan_new_fields: %s", err);
    return codec;
}

/* The index of value among categories by a plain scan, or -1. */
static double category_index(const char *value, const char *const *categories, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(value, categories[k]) == 0)
            return (double)k;
    return -1;
}

/* One random C record encoded by Avro C, with the row a decoder must produce. */
static uint8_t *category_encode(uint64_t *rng, double want[CATEGORY_NFIELDS], size_t *len)
{
    avro_schema_t schema = schema_parse(CATEGORY_SCHEMA);
    struct avro_c_value v;
    avro_value_t f, branch, item;
    value_new(&v, schema);
    size_t npool = sizeof STRING_POOL / sizeof STRING_POOL[0];

    const char *text = STRING_POOL[rng_range(rng, 0, (int64_t)npool - 1)];
    f = field_of(&v.value, "s");
    CHECK_AVRO(avro_value_set_string(&f, text));
    want[1] = category_index(text, S_CATEGORIES, 4);

    f = field_of(&v.value, "attrs");
    for (int64_t i = rng_range(rng, 0, 3); i > 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "k%d", (int)i);
        CHECK_AVRO(avro_value_add(&f, key, &item, NULL, NULL));
        CHECK_AVRO(avro_value_set_string(&item, STRING_POOL[rng_range(rng, 0, 4)]));
    }

    int colour = (int)rng_range(rng, 0, 3);
    f = field_of(&v.value, "e");
    CHECK_AVRO(avro_value_set_enum(&f, colour));
    want[2] = category_index(COLOURS[colour], E_CATEGORIES, 3);

    f = field_of(&v.value, "ns");
    if (rng_range(rng, 0, 3) == 0) {
        CHECK_AVRO(avro_value_set_branch(&f, 0, &branch));
        CHECK_AVRO(avro_value_set_null(&branch));
        want[3] = NAN;
    } else {
        text = STRING_POOL[rng_range(rng, 0, (int64_t)npool - 1)];
        CHECK_AVRO(avro_value_set_branch(&f, 1, &branch));
        CHECK_AVRO(avro_value_set_string(&branch, text));
        want[3] = category_index(text, NS_CATEGORIES, 2);
    }

    double x = rng_double(rng);
    f = field_of(&v.value, "x");
    CHECK_AVRO(avro_value_set_double(&f, x));
    want[0] = x;

    f = field_of(&v.value, "ne");
    if (rng_range(rng, 0, 3) == 0) {
        CHECK_AVRO(avro_value_set_branch(&f, 1, &branch));
        CHECK_AVRO(avro_value_set_null(&branch));
        want[4] = NAN;
    } else {
        colour = (int)rng_range(rng, 0, 3);
        CHECK_AVRO(avro_value_set_branch(&f, 0, &branch));
        CHECK_AVRO(avro_value_set_enum(&branch, colour));
        want[4] = category_index(COLOURS[colour], NE_CATEGORIES, 1);
    }

    int64_t n = rng_range(rng, -1000, 1000);
    f = field_of(&v.value, "n");
    CHECK_AVRO(avro_value_set_long(&f, n));
    want[5] = (double)n;

    uint8_t *bytes = avro_c_encode(&v.value, len);
    value_free(&v);
    avro_schema_decref(schema);
    return bytes;
}

/* 300 random records written by Avro C: strings and enum symbols decode to their index among
 * the categories (found by a scan here), -1 when absent, NAN for null; every proper prefix of
 * the first records is refused as truncated. */
static void test_categorical_decode_avro_c_records(void **state)
{
    (void)state;
    struct avro_plan *codec = fields_or_fail(CATEGORY_SCHEMA, CATEGORY_FIELDS, CATEGORY_NFIELDS);
    assert_int_equal(avro_plan_nfields(codec), CATEGORY_NFIELDS);
    uint64_t rng = 99;
    bool seen_unknown = false, seen_known = false, seen_null = false;
    for (int row = 0; row < 300; row++) {
        double want[CATEGORY_NFIELDS], got[CATEGORY_NFIELDS];
        size_t len;
        uint8_t *bytes = category_encode(&rng, want, &len);
        char reason[128];
        if (decode_exact(codec, bytes, len, got, reason, sizeof reason) != TB_OK)
            fail_msg("row %d: %s", row, reason);
        for (size_t j = 0; j < CATEGORY_NFIELDS; j++) {
            assert_same_double(got[j], want[j], CATEGORY_FIELDS[j].name);
            seen_unknown |= j >= 1 && j <= 4 && want[j] == -1;
            seen_known |= j >= 1 && j <= 4 && want[j] >= 0;
            seen_null |= isnan(want[j]);
        }
        for (size_t cut = 0; row < 5 && cut < len; cut++) {
            int status = decode_exact(codec, bytes, cut, got, reason, sizeof reason);
            if (status != TB_PARSE || !strstr(reason, "truncated at byte "))
                fail_msg("row %d cut at %zu: status %d, '%s'", row, cut, status, reason);
        }
        free(bytes);
    }
    assert_true(seen_unknown && seen_known && seen_null);
    avro_plan_destroy(codec);
}

static const char ONE_STRING[] = "{\"type\":\"record\",\"name\":\"O\",\"fields\":["
                                 "{\"name\":\"s\",\"type\":\"string\"}]}";

/* 2000 categories in a hash: each decodes to its index, and 2000 near misses to -1. */
static void test_categorical_many_categories(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*names)[24] = calloc(N, sizeof *names);
    const char **categories = calloc(N, sizeof *categories);
    for (size_t k = 0; k < N; k++) {
        snprintf(names[k], sizeof names[k], "machine-%zu", (k * 7919) % 100003);
        categories[k] = names[k];
    }
    struct avro_plan_field field = {.name = "s",
                                    .required = true,
                                    .categorical = true,
                                    .categories = categories,
                                    .ncategories = N};
    struct avro_plan *codec = fields_or_fail(ONE_STRING, &field, 1);
    /* The plan keeps its own copy: change ours. */
    for (size_t k = 0; k < N; k++)
        names[k][0] = 'X';
    struct avro_wire_buf buf = {0};
    char reason[128];
    double row[1];
    for (size_t k = 0; k < 2 * N; k++) {
        char value[32];
        if (k < N)
            snprintf(value, sizeof value, "machine-%zu", (k * 7919) % 100003);
        else
            snprintf(value, sizeof value, "machine-%zu ", ((k - N) * 7919) % 100003);
        avro_wire_buf_reset(&buf);
        avro_wire_put_string(&buf, value, strlen(value));
        if (decode_exact(codec, buf.data, buf.len, row, reason, sizeof reason) != TB_OK)
            fail_msg("%s: %s", value, reason);
        double want = k < N ? (double)k : -1;
        if (row[0] != want)
            fail_msg("'%s': decoded %g, want %g", value, row[0], want);
    }
    avro_wire_buf_free(&buf);
    avro_plan_destroy(codec);
    free(categories);
    free(names);
}

/* A hand-built categorical case: the bytes and the exact outcome. */
struct category_bytes_case {
    const char *name;
    uint8_t bytes[16];
    size_t len;
    int status;
    const char *reason; /* TB_OK: ignored */
    double s, e, ns;    /* TB_OK: the row */
};

static const char SMALL_CATEGORIES[] =
    "{\"type\":\"record\",\"name\":\"K\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"ns\",\"type\":[\"null\",\"string\"]}]}";
static const char *const SMALL_S[] = {"a", "a\xff"};
static const char *const SMALL_E[] = {"C", "A"};
static const char *const SMALL_NS[] = {"x"};

/* s "a" is 0x02 'a'; e symbol k is 2k; ns null is 0x00, ns "x" is 0x02 0x02 'x'. */
static const struct category_bytes_case CATEGORY_BYTES_CASES[] = {
    {"known values", {0x02, 'a', 0x00, 0x02, 0x02, 'x'}, 6, TB_OK, "", 0, 1, 0},
    {"byte-exact: a NUL after the bytes is another string",
     {0x04, 'a', 0x00, 0x04, 0x00},
     5,
     TB_OK,
     "",
     -1,
     0,
     NAN},
    {"byte-exact: a high byte matters", {0x04, 'a', 0xff, 0x02, 0x00}, 5, TB_OK, "", 1, -1, NAN},
    {"byte-exact: case matters", {0x02, 'A', 0x02, 0x00}, 4, TB_OK, "", -1, -1, NAN},
    {"empty string", {0x00, 0x00, 0x02, 0x00, 'z'}, 4, TB_OK, "", -1, 1, -1},
    {"enum index out of range",
     {0x02, 'a', 0x06, 0x00},
     4,
     TB_PARSE,
     "enum index 3 out of range in field 'e'",
     0,
     0,
     0},
    {"negative enum index",
     {0x02, 'a', 0x01, 0x00},
     4,
     TB_PARSE,
     "enum index -1 out of range in field 'e'",
     0,
     0,
     0},
    {"union index out of range",
     {0x02, 'a', 0x00, 0x04},
     4,
     TB_PARSE,
     "union index 2 out of range in field 'ns'",
     0,
     0,
     0},
    {"negative string length",
     {0x01, 'a', 0x00, 0x00},
     4,
     TB_PARSE,
     "negative length -1 at byte 0 in field 's'",
     0,
     0,
     0},
    {"string cut short",
     {0x02, 'a', 0x00, 0x02, 0x04, 'x'},
     6,
     TB_PARSE,
     "truncated at byte 4 in field 'ns'",
     0,
     0,
     0},
    {"trailing byte",
     {0x02, 'a', 0x00, 0x00, 0x00},
     5,
     TB_PARSE,
     "1 trailing byte after the record",
     0,
     0,
     0},
};

static void test_categorical_bytes_cases(void **state)
{
    (void)state;
    const struct avro_plan_field fields[] = {
        {.name = "ns", .categorical = true, .categories = SMALL_NS, .ncategories = 1},
        {.name = "s",
         .required = true,
         .categorical = true,
         .categories = SMALL_S,
         .ncategories = 2},
        {.name = "e",
         .required = true,
         .categorical = true,
         .categories = SMALL_E,
         .ncategories = 2},
    };
    struct avro_plan *codec = fields_or_fail(SMALL_CATEGORIES, fields, 3);
    for (size_t c = 0; c < sizeof CATEGORY_BYTES_CASES / sizeof CATEGORY_BYTES_CASES[0]; c++) {
        const struct category_bytes_case *k = &CATEGORY_BYTES_CASES[c];
        double row[3];
        char reason[128];
        int status = decode_exact(codec, k->bytes, k->len, row, reason, sizeof reason);
        if (status != k->status || (status != TB_OK && strcmp(reason, k->reason) != 0))
            fail_msg("%s: status %d, reason '%s'", k->name, status, reason);
        if (status == TB_OK) {
            assert_same_double(row[0], k->ns, k->name);
            assert_same_double(row[1], k->s, k->name);
            assert_same_double(row[2], k->e, k->name);
        }
    }
    avro_plan_destroy(codec);
}

/* A required categorical field refuses null by name; an optional one gives NAN; with no
 * categories every value is unknown. */
static void test_categorical_null_and_no_categories(void **state)
{
    (void)state;
    static const char schema[] =
        "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
        "{\"name\":\"a\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"b\",\"type\":[{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"P\",\"Q\"]},"
        "\"null\"]}]}";
    const struct avro_plan_field required[] = {
        {.name = "a", .required = true, .categorical = true},
        {.name = "b", .required = true, .categorical = true},
    };
    const struct avro_plan_field optional[] = {
        {.name = "a", .categorical = true},
        {.name = "b", .categorical = true},
    };
    struct avro_plan *strict = fields_or_fail(schema, required, 2);
    struct avro_plan *lenient = fields_or_fail(schema, optional, 2);
    const uint8_t a_null[] = {0x00, 0x00, 0x02};      /* a null, b Q */
    const uint8_t b_null[] = {0x02, 0x02, 'P', 0x02}; /* a "P", b null */
    double row[2];
    char reason[128];
    assert_int_equal(decode_exact(strict, a_null, sizeof a_null, row, reason, sizeof reason),
                     TB_PARSE);
    assert_string_equal(reason, "feature 'a' is null");
    assert_int_equal(decode_exact(strict, b_null, sizeof b_null, row, reason, sizeof reason),
                     TB_PARSE);
    assert_string_equal(reason, "feature 'b' is null");
    assert_int_equal(decode_exact(lenient, a_null, sizeof a_null, row, reason, sizeof reason),
                     TB_OK);
    assert_same_double(row[0], NAN, "a");
    assert_same_double(row[1], -1, "b");
    assert_int_equal(decode_exact(lenient, b_null, sizeof b_null, row, reason, sizeof reason),
                     TB_OK);
    assert_same_double(row[0], -1, "a");
    assert_same_double(row[1], NAN, "b");
    avro_plan_destroy(lenient);
    avro_plan_destroy(strict);
}

struct new_fields_case {
    const char *name;
    struct avro_plan_field field;
    const char *message; /* the message must contain this */
};

static const char *const DUPLICATE_CATEGORIES[] = {"x", "y", "x"};
static const char *const NULL_CATEGORY[] = {"x", NULL};

static const struct new_fields_case NEW_FIELDS_CASES[] = {
    {"categorical double",
     {.name = "x", .required = true, .categorical = true},
     "feature 'x' has type \"double\"; a categorical field must be string, enum, or a union of "
     "null with one of those"},
    {"categorical long, optional",
     {.name = "n", .categorical = true},
     "optional field 'n' has type \"long\"; a categorical field must be"},
    {"categorical map", {.name = "attrs", .categorical = true}, "field 'attrs' has type {\"type\""},
    {"numeric enum",
     {.name = "e", .required = true},
     "feature 'e' has type {\"name\":\"tributary.test.Colour\",\"type\":\"enum\""},
    {"numeric nullable enum",
     {.name = "ne"},
     "optional field 'ne' has type [\"tributary.test.Colour\",\"null\"]; it must be int"},
    {"numeric string", {.name = "s", .required = true}, "feature 's' has type \"string\"; it must"},
    {"categorical not in schema",
     {.name = "colour", .categorical = true},
     "optional field 'colour' is not in the schema of record 'C'"},
    {"category listed twice",
     {.name = "s", .categorical = true, .categories = DUPLICATE_CATEGORIES, .ncategories = 3},
     "categorical field 's': category 'x' is listed twice"},
    {"NULL category",
     {.name = "s", .categorical = true, .categories = NULL_CATEGORY, .ncategories = 2},
     "categorical field 's': category 1 is NULL"},
    {"NULL categories",
     {.name = "s", .categorical = true, .ncategories = 2},
     "categorical field 's': categories is NULL"},
    {"NULL name", {.name = NULL}, "field name 0 is NULL"},
};

static void test_new_fields_errors(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof NEW_FIELDS_CASES / sizeof NEW_FIELDS_CASES[0]; c++) {
        const struct new_fields_case *k = &NEW_FIELDS_CASES[c];
        char err[256] = "";
        struct avro_plan *codec =
            avro_plan_new_fields(CATEGORY_SCHEMA, &k->field, 1, err, sizeof err);
        if (codec || !strstr(err, k->message))
            fail_msg("%s: %s, message '%s'", k->name, codec ? "accepted" : "refused", err);
    }
    static const char bad_unions[] = "{\"type\":\"record\",\"name\":\"U\",\"fields\":["
                                     "{\"name\":\"three\",\"type\":[\"null\",\"string\",\"int\"]},"
                                     "{\"name\":\"two\",\"type\":[\"string\",\"int\"]},"
                                     "{\"name\":\"bytes\",\"type\":[\"null\",\"bytes\"]}]}";
    static const char *const names[] = {"three", "two", "bytes"};
    for (size_t c = 0; c < 3; c++) {
        struct avro_plan_field field = {.name = names[c], .categorical = true};
        char err[256] = "";
        struct avro_plan *codec = avro_plan_new_fields(bad_unions, &field, 1, err, sizeof err);
        if (codec || !strstr(err, "a categorical field must be"))
            fail_msg("%s: %s, message '%s'", names[c], codec ? "accepted" : "refused", err);
    }
    char err[256] = "";
    assert_null(avro_plan_new_fields(CATEGORY_SCHEMA, NULL, 1, err, sizeof err));
    assert_string_equal(err, "avro_plan_new_fields: fields is NULL");
    assert_null(avro_plan_new_fields(NULL, CATEGORY_FIELDS, 1, err, sizeof err));
    assert_string_equal(err, "avro_plan_new_fields: no schema");
}

/* ---- fingerprints ---- */

static void test_fingerprint_matches_python(void **state)
{
    (void)state;
    check_fingerprint_against_python(READING_SCHEMA);
    check_fingerprint_against_python(LIST_SCHEMA);
}

/* The project's telemetry schema, when the tree has it. */
static void test_fingerprint_telemetry_schema(void **state)
{
    (void)state;
    FILE *file = fopen("config/schemas/telemetry.avsc", "r");
    if (!file)
        skip();
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';
    check_fingerprint_against_python(text);
}

struct canonical_case {
    const char *name;
    const char *schema;
    const char *canonical; /* written by hand from the specification's rules */
};

/* Where Python's avro 1.11.1 departs from the specification, the canonical form is checked
 * against a hand-written one and the fingerprint against Python's Rabin code over that text. */
static const struct canonical_case CANONICAL_CASES[] = {
    {"logical types are stripped to their primitive",
     "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
     "{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
     "{\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
     "\"precision\":9,\"scale\":2}},{\"name\":\"n\",\"type\":{\"type\":\"int\"}}]}",
     "{\"name\":\"R\",\"type\":\"record\",\"fields\":[{\"name\":\"ts\",\"type\":\"long\"},"
     "{\"name\":\"amount\",\"type\":\"bytes\"},{\"name\":\"n\",\"type\":\"int\"}]}"},
    {"a fixed is defined once, then named",
     "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"ns\",\"fields\":["
     "{\"name\":\"a\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":4,\"doc\":\"d\"}},"
     "{\"name\":\"b\",\"type\":[\"null\",\"F\"]}]}",
     "{\"name\":\"ns.R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":{\"name\":"
     "\"ns.F\",\"type\":\"fixed\",\"size\":4}},{\"name\":\"b\",\"type\":[\"null\",\"ns.F\"]}]}"},
    {"an empty namespace is the null namespace",
     "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"outer\",\"fields\":["
     "{\"name\":\"q\",\"type\":{\"type\":\"record\",\"name\":\"Q\",\"namespace\":\"\","
     "\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
     "\"symbols\":[\"X\",\"Y\"]}}]}}]}",
     "{\"name\":\"outer.R\",\"type\":\"record\",\"fields\":[{\"name\":\"q\",\"type\":{\"name\":"
     "\"Q\",\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":{\"name\":\"E\",\"type\":"
     "\"enum\",\"symbols\":[\"X\",\"Y\"]}}]}}]}"},
};

static void test_fingerprint_spec_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof CANONICAL_CASES / sizeof CANONICAL_CASES[0]; c++) {
        const struct canonical_case *k = &CANONICAL_CASES[c];
        struct avro_plan *codec = codec_or_fail(k->schema, NULL, 0, 0);
        if (strcmp(avro_plan_canonical_form(codec), k->canonical) != 0)
            fail_msg("%s: canonical form %s", k->name, avro_plan_canonical_form(codec));
        char want[17], got[17];
        char *text = NULL;
        python_reference("text", k->canonical, want, &text);
        avro_plan_fingerprint(codec, got);
        assert_string_equal(got, want);
        free(text);
        avro_plan_destroy(codec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_put_matches_avro_c),
        cmocka_unit_test(test_wire_read_round_trip),
        cmocka_unit_test(test_wire_varint_limits),
        cmocka_unit_test(test_wire_rejects_invalid_values),
        cmocka_unit_test(test_wire_buffer_grows),
        cmocka_unit_test(test_decode_avro_c_records),
        cmocka_unit_test(test_decode_truncated_at_every_length),
        cmocka_unit_test(test_decode_feature_values),
        cmocka_unit_test(test_decode_malformed_bytes),
        cmocka_unit_test(test_decode_negative_block_counts),
        cmocka_unit_test(test_decode_recursive_schema),
        cmocka_unit_test(test_decode_small_reason_buffer),
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test(test_new_accepts_every_numeric_type),
        cmocka_unit_test(test_categorical_decode_avro_c_records),
        cmocka_unit_test(test_categorical_many_categories),
        cmocka_unit_test(test_categorical_bytes_cases),
        cmocka_unit_test(test_categorical_null_and_no_categories),
        cmocka_unit_test(test_new_fields_errors),
        cmocka_unit_test(test_fingerprint_matches_python),
        cmocka_unit_test(test_fingerprint_telemetry_schema),
        cmocka_unit_test(test_fingerprint_spec_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
