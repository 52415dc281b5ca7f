/* Unit tests for connectors/changelog's codec: round trips bit for bit, refusal of truncated,
 * trailing, oversized and inconsistent values, and Python's avro package reading and writing the
 * same bytes with config/schemas/changelog.avsc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connectors/avro/avro_wire.h"
#include "connectors/kafka/changelog.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_PATH "config/schemas/changelog.avsc"

/* --- fixtures --------------------------------------------------------------------------------- */

static double from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

/* An RLS state of 3 features (P, 3 x 3, then w), two window records of 3, four metric sums. */
static const double rls_state[] = {1.5, -0.25, 0.0,  -0.25, 2.0, 0.125,
                                   0.0, 0.125, 0.75, 0.1,   0.2, 0.3};
static const double rls_window[] = {20.5, 101.25, 0.5, 21.0, 100.75, 0.625};
static const double rls_metrics[] = {1234.0, 17.5, 0.03125, 411.0};

static struct changelog_entry rls_entry(void)
{
    return (struct changelog_entry){.key = "press-4",
                                    .key_len = 7,
                                    .partition = 2,
                                    .offset = 40961,
                                    .model = "rls",
                                    .model_len = 3,
                                    .state = rls_state,
                                    .nstate = 12,
                                    .window = rls_window,
                                    .nwindow = 6,
                                    .window_width = 3,
                                    .records = 1234,
                                    .metrics = rls_metrics,
                                    .nmetrics = 4};
}

/* NaNs with payloads and signs, signed zeros, infinities, the extremes, a subnormal. */
static double odd_values[10];

static struct changelog_entry odd_entry(void)
{
    const double values[] = {from_bits(0x7ff8000000000123ull),
                             from_bits(0xfff8000000000000ull),
                             -0.0,
                             0.0,
                             INFINITY,
                             -INFINITY,
                             DBL_MAX,
                             -DBL_MIN,
                             5e-324,
                             from_bits(0x7ff0000000000001ull)};
    memcpy(odd_values, values, sizeof values);
    return (struct changelog_entry){.offset = INT64_MAX,
                                    .model = "mod\xc3\xa8le",
                                    .model_len = 7,
                                    .state = odd_values,
                                    .nstate = 10,
                                    .window = odd_values + 2,
                                    .nwindow = 5,
                                    .window_width = 1,
                                    .records = INT64_MAX,
                                    .metrics = odd_values,
                                    .nmetrics = 3};
}

/* A fresh key: nothing learned, nothing held. */
static struct changelog_entry empty_entry(void)
{
    return (struct changelog_entry){.offset = -1, .model = "", .model_len = 0};
}

/* Big enough for multi-byte lengths and counts: a 300-byte model name, 1000 state doubles,
 * 20 window records of 10. */
static char large_model[300];
static double large_values[1200];

static struct changelog_entry large_entry(void)
{
    for (size_t i = 0; i < sizeof large_model; i++)
        large_model[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < 1200; i++)
        large_values[i] = (double)i * 0.37 - 100.0;
    return (struct changelog_entry){.offset = 1ll << 40,
                                    .model = large_model,
                                    .model_len = sizeof large_model,
                                    .state = large_values,
                                    .nstate = 1000,
                                    .window = large_values + 1000,
                                    .nwindow = 200,
                                    .window_width = 10,
                                    .records = 987654321,
                                    .metrics = NULL,
                                    .nmetrics = 0};
}

enum { NSAMPLES = 4 };

static void samples(struct changelog_entry out[NSAMPLES])
{
    out[0] = rls_entry();
    out[1] = odd_entry();
    out[2] = empty_entry();
    out[3] = large_entry();
}

static struct avro_wire_buf encode(const struct changelog_entry *e)
{
    struct avro_wire_buf buf = {0};
    changelog_encode(e, &buf);
    return buf;
}

static void assert_same_doubles(const double *got, size_t ngot, const double *want, size_t nwant,
                                const char *field)
{
    if (ngot != nwant)
        fail_msg("%s: %zu doubles, want %zu", field, ngot, nwant);
    for (size_t i = 0; i < nwant; i++) {
        if (to_bits(got[i]) != to_bits(want[i]))
            fail_msg("%s[%zu]: bits %016llx, want %016llx", field, i,
                     (unsigned long long)to_bits(got[i]), (unsigned long long)to_bits(want[i]));
    }
}

/* Fails unless got holds want's value fields, doubles bit for bit. */
static void assert_same_value(const struct changelog_entry *got, const struct changelog_entry *want)
{
    assert_int_equal(got->offset, want->offset);
    assert_int_equal(got->model_len, want->model_len);
    assert_memory_equal(got->model, want->model, want->model_len);
    assert_int_equal(got->records, want->records);
    assert_same_doubles(got->state, got->nstate, want->state, want->nstate, "state");
    assert_int_equal(got->window_width, want->window_width);
    assert_same_doubles(got->window, got->nwindow, want->window, want->nwindow, "window");
    assert_same_doubles(got->metrics, got->nmetrics, want->metrics, want->nmetrics, "metrics");
    assert_false(got->tombstone);
}

/* Decodes bytes, which must be accepted, and compares them with want. */
static void decode_and_compare(const uint8_t *bytes, size_t len, const struct changelog_entry *want,
                               struct changelog_scratch *scratch)
{
    struct changelog_entry got;
    memset(&got, 0xA5, sizeof got);
    char err[256] = "";
    int rc = changelog_decode(bytes, len, &got, scratch, err, sizeof err);
    if (rc != TB_OK)
        fail_msg("decode: %s (%s)", tb_strerror(rc), err);
    assert_same_value(&got, want);
    assert_null(got.key);
    assert_int_equal(got.key_len, 0);
    assert_int_equal(got.partition, -1);
}

/* Expects value[0..len) to be refused with TB_PARSE and a message containing `fragment`. */
static void expect_refused(const void *value, size_t len, const char *fragment)
{
    /* A copy of exactly len bytes, so that a read past it is a sanitizer error. */
    uint8_t *copy = mem_alloc(len ? len : 1);
    memcpy(copy, value, len);
    struct changelog_scratch scratch = {0};
    struct changelog_entry got;
    char err[256] = "";
    int rc = changelog_decode(copy, len, &got, &scratch, err, sizeof err);
    changelog_scratch_free(&scratch);
    free(copy);
    if (rc != TB_PARSE)
        fail_msg("%zu bytes: %s (%s), want TB_PARSE with \"%s\"", len, tb_strerror(rc), err,
                 fragment);
    if (!strstr(err, fragment))
        fail_msg("%zu bytes: message \"%s\" lacks \"%s\"", len, err, fragment);
}

/* --- round trips ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    (void)state;
    struct changelog_entry s[NSAMPLES];
    samples(s);
    for (size_t i = 0; i < NSAMPLES; i++) {
        struct avro_wire_buf buf = encode(&s[i]);
        struct changelog_scratch scratch = {0};
        decode_and_compare(buf.data, buf.len, &s[i], &scratch);
        changelog_scratch_free(&scratch);
        avro_wire_buf_free(&buf);
    }
}

static void test_round_trip_empty(void **state)
{
    (void)state;
    /* Seven fields, each a single byte: offset -1 (0x01), then zeros. */
    struct changelog_entry e = empty_entry();
    struct avro_wire_buf buf = encode(&e);
    static const uint8_t want[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(buf.len, sizeof want);
    assert_memory_equal(buf.data, want, sizeof want);
    struct changelog_scratch scratch = {0};
    struct changelog_entry got;
    char err[256] = "";
    assert_int_equal(changelog_decode(buf.data, buf.len, &got, &scratch, err, sizeof err), TB_OK);
    assert_null(got.state);
    assert_null(got.window);
    assert_null(got.metrics);
    assert_int_equal(got.nstate + got.nwindow + got.nmetrics, 0);
    assert_int_equal(got.window_width, 0);
    assert_int_equal(got.offset, -1);
    /* An empty value needs no scratch. */
    assert_null(scratch.values);
    avro_wire_buf_free(&buf);
}

static void test_tombstone_encodes_nothing(void **state)
{
    (void)state;
    struct changelog_entry e = rls_entry();
    e.tombstone = true;
    struct avro_wire_buf buf = encode(&e);
    assert_int_equal(buf.len, 0);
    /* Appending: what the buffer held stays, nothing is added. */
    avro_wire_put_raw(&buf, "abc", 3);
    changelog_encode(&e, &buf);
    assert_int_equal(buf.len, 3);
    avro_wire_buf_free(&buf);
    /* And a zero-length value is no entry. */
    expect_refused("", 0, "field 'offset': the value ends inside it");
}

static void test_encode_appends(void **state)
{
    (void)state;
    struct changelog_entry a = rls_entry(), b = odd_entry();
    struct avro_wire_buf one = encode(&a), two = encode(&b), both = {0};
    changelog_encode(&a, &both);
    changelog_encode(&b, &both);
    assert_int_equal(both.len, one.len + two.len);
    assert_memory_equal(both.data, one.data, one.len);
    assert_memory_equal(both.data + one.len, two.data, two.len);
    avro_wire_buf_free(&both);
    avro_wire_buf_free(&two);
    avro_wire_buf_free(&one);
}

static void test_scratch_reuse(void **state)
{
    (void)state;
    /* One scratch for entry after entry, small and large: each decode stands on its own. */
    struct changelog_entry s[NSAMPLES];
    samples(s);
    struct avro_wire_buf bufs[NSAMPLES];
    for (size_t i = 0; i < NSAMPLES; i++)
        bufs[i] = encode(&s[i]);
    struct changelog_scratch scratch = {0};
    const size_t order[] = {0, 3, 2, 1, 3, 0, 0, 2};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        size_t i = order[k];
        decode_and_compare(bufs[i].data, bufs[i].len, &s[i], &scratch);
        /* A refused value in between leaves the next decode whole. */
        expect_refused(bufs[i].data, bufs[i].len - 1, "field 'metrics'");
    }
    assert_true(scratch.cap >= 1200);
    changelog_scratch_free(&scratch);
    assert_null(scratch.values);
    assert_int_equal(scratch.cap, 0);
    changelog_scratch_free(&scratch);
    changelog_scratch_free(NULL);
    for (size_t i = 0; i < NSAMPLES; i++)
        avro_wire_buf_free(&bufs[i]);
}

/* --- refusals --------------------------------------------------------------------------------- */

static void test_refuses_every_truncation(void **state)
{
    (void)state;
    struct changelog_entry s[NSAMPLES];
    samples(s);
    for (size_t i = 0; i < NSAMPLES; i++) {
        struct avro_wire_buf buf = encode(&s[i]);
        for (size_t len = 0; len < buf.len; len++)
            expect_refused(buf.data, len, "field '");
        /* The first and the last field are named. */
        expect_refused(buf.data, 0, "field 'offset': the value ends inside it (byte 0 of 0)");
        expect_refused(buf.data, buf.len - 1, "field 'metrics': the value ends inside it");
        avro_wire_buf_free(&buf);
    }
}

static void test_refuses_trailing_bytes(void **state)
{
    (void)state;
    struct changelog_entry e = rls_entry();
    struct avro_wire_buf buf = encode(&e);
    const uint8_t extra[] = {0x00, 0x02, 0xff};
    for (size_t k = 0; k < sizeof extra; k++) {
        struct avro_wire_buf longer = {0};
        avro_wire_put_raw(&longer, buf.data, buf.len);
        avro_wire_put_raw(&longer, &extra[k], 1);
        expect_refused(longer.data, longer.len, "1 bytes after the end of the record");
        avro_wire_buf_free(&longer);
    }
    struct avro_wire_buf twice = {0};
    avro_wire_put_raw(&twice, buf.data, buf.len);
    avro_wire_put_raw(&twice, buf.data, buf.len);
    char want[64];
    snprintf(want, sizeof want, "%zu bytes after the end of the record", buf.len);
    expect_refused(twice.data, twice.len, want);
    avro_wire_buf_free(&twice);
    avro_wire_buf_free(&buf);
}

static void test_refuses_bad_lengths_and_counts(void **state)
{
    (void)state;
    /* offset 0, model of length -1. */
    static const uint8_t negative_length[] = {0x00, 0x01, 'r', 'l', 's'};
    expect_refused(negative_length, sizeof negative_length, "field 'model': negative length -1");
    /* A model longer than the value. */
    static const uint8_t long_model[] = {0x00, 0x10, 'r', 'l', 's', 0, 0, 0};
    expect_refused(long_model, sizeof long_model, "field 'model': the value ends inside it");
    /* A varint of 11 bytes, and one whose 10th byte overflows 64 bits. */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    expect_refused(eleven, sizeof eleven, "field 'offset': not a valid long");
    static const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    expect_refused(overflow, sizeof overflow, "field 'offset': not a valid long");
    /* State counts: INT64_MIN (zig-zag all ones), more than the cap, more than the bytes. */
    static const uint8_t min_count[] = {0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    expect_refused(min_count, sizeof min_count, "field 'state': invalid block count");
    struct avro_wire_buf buf = {0};
    avro_wire_put_raw(&buf, "\x00\x00\x00", 3);
    avro_wire_put_long(&buf, (int64_t)CHANGELOG_MAX_DOUBLES + 1);
    avro_wire_put_double(&buf, 1.0);
    char want[128];
    snprintf(want, sizeof want, "field 'state': more than the %zu doubles an entry may hold",
             CHANGELOG_MAX_DOUBLES);
    expect_refused(buf.data, buf.len, want);
    avro_wire_buf_reset(&buf);
    avro_wire_put_raw(&buf, "\x00\x00\x00", 3);
    avro_wire_put_long(&buf, INT64_MAX);
    expect_refused(buf.data, buf.len, want);
    avro_wire_buf_reset(&buf);
    avro_wire_put_raw(&buf, "\x00\x00\x00", 3);
    avro_wire_put_long(&buf, 3);
    avro_wire_put_double(&buf, 1.0);
    avro_wire_put_double(&buf, 2.0);
    expect_refused(buf.data, buf.len, "field 'state': the value ends inside it (3 doubles");
    /* A negative block count whose byte size does not match its doubles. */
    avro_wire_buf_reset(&buf);
    avro_wire_put_raw(&buf, "\x00\x00\x00", 3);
    avro_wire_put_long(&buf, -2);
    avro_wire_put_long(&buf, 15);
    avro_wire_put_double(&buf, 1.0);
    avro_wire_put_double(&buf, 2.0);
    avro_wire_put_raw(&buf, "\x00\x00\x00\x00", 4);
    expect_refused(buf.data, buf.len, "field 'state': a block of 2 doubles claims 15 bytes");
    avro_wire_buf_free(&buf);
}

static void test_blocks_with_negative_counts(void **state)
{
    (void)state;
    /* Avro lets a writer split an array into blocks and give a block's count as negative,
     * followed by its size in bytes: the rls entry's metrics as a block of -3 (24 bytes) and one
     * of 1. */
    struct changelog_entry e = rls_entry();
    e.metrics = NULL;
    e.nmetrics = 0;
    struct avro_wire_buf buf = encode(&e);
    assert_int_equal(buf.data[buf.len - 1], 0x00);
    buf.len--;
    avro_wire_put_long(&buf, -3);
    avro_wire_put_long(&buf, 24);
    for (size_t i = 0; i < 3; i++)
        avro_wire_put_double(&buf, rls_metrics[i]);
    avro_wire_put_long(&buf, 1);
    avro_wire_put_double(&buf, rls_metrics[3]);
    avro_wire_put_long(&buf, 0);
    struct changelog_scratch scratch = {0};
    struct changelog_entry want = rls_entry();
    decode_and_compare(buf.data, buf.len, &want, &scratch);
    changelog_scratch_free(&scratch);
    avro_wire_buf_free(&buf);
}

static void test_refuses_inconsistent_values(void **state)
{
    (void)state;
    const struct {
        int64_t offset, records;
        size_t width, nwindow;
        const char *fragment;
    } cases[] = {
        {-2, 0, 3, 6, "field 'offset': -2 is not an offset"},
        {5, -1, 3, 6, "field 'records': negative count -1"},
        {5, 0, SIZE_MAX, 6, "field 'window_width': -1 is not a width"},
        {5, 0, (size_t)INT32_MAX + 1, 6, "field 'window_width': 2147483648 is not a width"},
        {5, 0, 4, 6, "field 'window': 6 doubles do not make records of window_width 4"},
        {5, 0, 0, 6, "field 'window': 6 doubles do not make records of window_width 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct changelog_entry e = rls_entry();
        e.offset = cases[i].offset;
        e.records = cases[i].records;
        e.window_width = cases[i].width;
        e.nwindow = cases[i].nwindow;
        struct avro_wire_buf buf = encode(&e);
        expect_refused(buf.data, buf.len, cases[i].fragment);
        avro_wire_buf_free(&buf);
    }
    /* The edges that are fine: offset -1, no records, a window of width 6 holding one record. */
    struct changelog_entry e = rls_entry();
    e.offset = -1;
    e.records = 0;
    e.window_width = 6;
    struct avro_wire_buf buf = encode(&e);
    struct changelog_scratch scratch = {0};
    decode_and_compare(buf.data, buf.len, &e, &scratch);
    changelog_scratch_free(&scratch);
    avro_wire_buf_free(&buf);
}

/* --- Python's avro ---------------------------------------------------------------------------- */

/* Decodes each hex argument with the schema of the file in argv[1] and prints one JSON object per
 * line: the model as the hex of its UTF-8, doubles as the hex of their little-endian bits, and the
 * count of bytes left over. */
static const char python_decoder[] =
    "import io, json, struct, sys\n"
    "import avro.io, avro.schema\n"
    "schema = avro.schema.parse(open(sys.argv[1]).read())\n"
    "for arg in sys.argv[2:]:\n"
    "    data = bytes.fromhex(arg)\n"
    "    buf = io.BytesIO(data)\n"
    "    rec = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(buf))\n"
    "    for f in ('state', 'window', 'metrics'):\n"
    "        rec[f] = [struct.pack('<d', v).hex() for v in rec[f]]\n"
    "    rec['model'] = rec['model'].encode('utf-8').hex()\n"
    "    rec['left_over'] = len(data) - buf.tell()\n"
    "    print(json.dumps(rec))\n";

/* Encodes the record given as JSON in argv[2] (model and doubles in hex, as above) with the
 * schema of the file in argv[1] and prints its bytes in hex. */
static const char python_encoder[] =
    "import io, json, struct, sys\n"
    "import avro.io, avro.schema\n"
    "schema = avro.schema.parse(open(sys.argv[1]).read())\n"
    "rec = json.loads(sys.argv[2])\n"
    "for f in ('state', 'window', 'metrics'):\n"
    "    rec[f] = [struct.unpack('<d', bytes.fromhex(h))[0] for h in rec[f]]\n"
    "rec['model'] = bytes.fromhex(rec['model']).decode('utf-8')\n"
    "buf = io.BytesIO()\n"
    "avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))\n"
    "print(buf.getvalue().hex())\n";

static json_t *hex_doubles(const double *values, size_t n)
{
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = avro_wire_le64(to_bits(values[i]));
        char *hex = support_to_hex(&bits, 8);
        json_array_append_new(array, json_string(hex));
        free(hex);
    }
    return array;
}

/* The entry as the JSON the Python scripts speak; the caller frees it. */
static char *python_json(const struct changelog_entry *e)
{
    char *model = support_to_hex(e->model, e->model_len);
    json_t *rec = json_pack(
        "{s:I, s:s, s:I, s:o, s:I, s:o, s:o}", "offset", (json_int_t)e->offset, "model", model,
        "records", (json_int_t)e->records, "state", hex_doubles(e->state, e->nstate),
        "window_width", (json_int_t)e->window_width, "window", hex_doubles(e->window, e->nwindow),
        "metrics", hex_doubles(e->metrics, e->nmetrics));
    assert_non_null(rec);
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(rec);
    free(model);
    return text;
}

static void test_python_decodes_ours(void **state)
{
    (void)state;
    struct changelog_entry s[NSAMPLES];
    samples(s);
    char *hex[NSAMPLES];
    for (size_t i = 0; i < NSAMPLES; i++) {
        struct avro_wire_buf buf = encode(&s[i]);
        hex[i] = support_to_hex(buf.data, buf.len);
        avro_wire_buf_free(&buf);
    }
    json_t *records = support_python_json_lines(python_decoder, SCHEMA_PATH, hex, NSAMPLES);
    for (size_t i = 0; i < NSAMPLES; i++) {
        json_t *got = json_array_get(records, i);
        assert_int_equal(json_integer_value(json_object_get(got, "left_over")), 0);
        json_object_del(got, "left_over");
        /* Python's record, field by field, is the one we meant. */
        char *want_text = python_json(&s[i]);
        json_error_t jerr;
        json_t *want = json_loads(want_text, 0, &jerr);
        assert_non_null(want);
        if (!json_equal(got, want)) {
            char *got_text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("sample %zu: Python read %.300s, want %.300s", i, got_text, want_text);
        }
        json_decref(want);
        free(want_text);
    }
    json_decref(records);
    for (size_t i = 0; i < NSAMPLES; i++)
        free(hex[i]);
}

static void test_python_encodes_we_decode(void **state)
{
    (void)state;
    struct changelog_entry s[NSAMPLES];
    samples(s);
    for (size_t i = 0; i < NSAMPLES; i++) {
        char *rec = python_json(&s[i]);
        size_t len = 0;
        uint8_t *bytes = support_python_hex(python_encoder, SCHEMA_PATH, rec, &len);
        struct changelog_scratch scratch = {0};
        decode_and_compare(bytes, len, &s[i], &scratch);
        /* And our encoding of the same entry is byte for byte Python's. */
        struct avro_wire_buf ours = encode(&s[i]);
        assert_int_equal(ours.len, len);
        assert_memory_equal(ours.data, bytes, len);
        avro_wire_buf_free(&ours);
        changelog_scratch_free(&scratch);
        free(bytes);
        free(rec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("round trip: rls, odd doubles (NaN payloads, -0.0), empty, large; bit for bit",
                   test_round_trip, NULL),
        NAMED_CASE("round trip: an empty entry is seven bytes and needs no scratch",
                   test_round_trip_empty, NULL),
        NAMED_CASE("encode: a tombstone is nothing; an empty value is no entry",
                   test_tombstone_encodes_nothing, NULL),
        NAMED_CASE("encode: appends to what the buffer holds", test_encode_appends, NULL),
        NAMED_CASE("decode: one scratch serves entry after entry", test_scratch_reuse, NULL),
        NAMED_CASE("decode: every truncation is refused, naming the field",
                   test_refuses_every_truncation, NULL),
        NAMED_CASE("decode: trailing bytes are refused", test_refuses_trailing_bytes, NULL),
        NAMED_CASE("decode: negative lengths, bad varints, oversized counts are refused",
                   test_refuses_bad_lengths_and_counts, NULL),
        NAMED_CASE("decode: arrays in blocks with a negative count are read",
                   test_blocks_with_negative_counts, NULL),
        NAMED_CASE("decode: impossible offsets, counts, widths and windows are refused",
                   test_refuses_inconsistent_values, NULL),
        NAMED_CASE("python avro decodes what we encode", test_python_decodes_ours, NULL),
        NAMED_CASE("python avro encodes what we decode, the same bytes",
                   test_python_encodes_we_decode, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
