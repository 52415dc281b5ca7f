/* Unit tests for connectors/prediction: the embedded schema, encode/decode round trips, refusal of
 * malformed bytes, and Python's avro package reading and writing the same records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connectors/avro/avro_wire.h"
#include "connectors/avro/prediction.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <avro.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the probabilities of the samples below, and then some. */
enum { CAPACITY = 8 };

/* --- fixtures --------------------------------------------------------------------------------- */

static const double three_probabilities[] = {0.125, 0.625, 0.25};

static struct prediction regression(void)
{
    return (struct prediction){.key = "engine-17",
                               .key_len = 9,
                               .event_time_ms = 1700000000123,
                               .value = 112.375,
                               .label = 118.0,
                               .model = "rul-fd001",
                               .model_len = 9,
                               .model_version = 3,
                               .source_partition = 2,
                               .source_offset = 40961};
}

static struct prediction classifier(void)
{
    return (struct prediction){.key = "press-4",
                               .key_len = 7,
                               .event_time_ms = 1700000060000,
                               .value = 2.0,
                               .label = 1.0,
                               .model = "wear-fleet",
                               .model_len = 10,
                               .model_version = 12,
                               .source_partition = 0,
                               .source_offset = 7,
                               .probabilities = three_probabilities,
                               .nprobabilities = 3};
}

static struct prediction unlabelled(void)
{
    struct prediction p = classifier();
    p.label = NAN;
    return p;
}

static struct avro_wire_buf encode(const struct prediction *p)
{
    struct avro_wire_buf buf = {0};
    prediction_encode(p, &buf);
    assert_true(buf.len > 0);
    return buf;
}

/* Fails unless got equals want field by field (doubles bit for bit, NaN labels both NaN). */
static void assert_same_prediction(const struct prediction *got, const struct prediction *want)
{
    assert_int_equal(got->key_len, want->key_len);
    assert_memory_equal(got->key, want->key, want->key_len);
    assert_int_equal(got->event_time_ms, want->event_time_ms);
    assert_memory_equal(&got->value, &want->value, sizeof(double));
    if (isnan(want->label))
        assert_true(isnan(got->label));
    else
        assert_memory_equal(&got->label, &want->label, sizeof(double));
    assert_int_equal(got->model_len, want->model_len);
    assert_memory_equal(got->model, want->model, want->model_len);
    assert_int_equal(got->model_version, want->model_version);
    assert_int_equal(got->source_partition, want->source_partition);
    assert_int_equal(got->source_offset, want->source_offset);
    assert_int_equal(got->nprobabilities, want->nprobabilities);
    if (want->nprobabilities > 0)
        assert_memory_equal(got->probabilities, want->probabilities,
                            want->nprobabilities * sizeof(double));
}

/* Encodes p, decodes it with room for CAPACITY probabilities and compares. */
static void round_trip(const struct prediction *p)
{
    struct avro_wire_buf buf = encode(p);
    double probabilities[CAPACITY];
    struct prediction got;
    memset(&got, 0xA5, sizeof(got));
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, CAPACITY), TB_OK);
    assert_same_prediction(&got, p);
    /* Strings point into the decoded bytes, probabilities into the caller's buffer. */
    assert_true((const uint8_t *)got.key > buf.data &&
                (const uint8_t *)got.key + got.key_len <= buf.data + buf.len);
    assert_true((const uint8_t *)got.model > buf.data &&
                (const uint8_t *)got.model + got.model_len <= buf.data + buf.len);
    assert_ptr_equal(got.probabilities, probabilities);
    avro_wire_buf_free(&buf);
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_schema_file_matches_embedded(void **state)
{
    (void)state;
    size_t size = 0;
    unsigned char *text = support_read_file("config/schemas/prediction.avsc", &size);
    avro_schema_t from_file = NULL, embedded = NULL;
    if (avro_schema_from_json_length((const char *)text, size, &from_file) != 0) {
        print_error("config/schemas/prediction.avsc: %s\n", avro_strerror());
        fail();
    }
    const char *json = prediction_schema_json();
    if (avro_schema_from_json_length(json, strlen(json), &embedded) != 0) {
        print_error("prediction_schema_json(): %s\n", avro_strerror());
        fail();
    }
    assert_true(avro_schema_equal(from_file, embedded));
    avro_schema_decref(embedded);
    avro_schema_decref(from_file);
    free(text);
}

static void test_round_trip_regression(void **state)
{
    (void)state;
    struct prediction p = regression();
    round_trip(&p);
    /* A regression needs no room for probabilities. */
    struct avro_wire_buf buf = encode(&p);
    struct prediction got;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, NULL, 0), TB_OK);
    assert_same_prediction(&got, &p);
    avro_wire_buf_free(&buf);
}

static void test_round_trip_probabilities(void **state)
{
    (void)state;
    struct prediction p = classifier();
    round_trip(&p);
    /* Exactly as many as the capacity is enough. */
    struct avro_wire_buf buf = encode(&p);
    double probabilities[3];
    struct prediction got;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, 3), TB_OK);
    assert_same_prediction(&got, &p);
    avro_wire_buf_free(&buf);
}

static void test_round_trip_null_label(void **state)
{
    (void)state;
    struct prediction p = unlabelled();
    round_trip(&p);
    p.nprobabilities = 0;
    p.probabilities = NULL;
    round_trip(&p);

    /* A null label is union branch 0 with no value: 8 bytes shorter than a labelled record. */
    struct prediction labelled = p;
    labelled.label = 0.0;
    struct avro_wire_buf with = encode(&labelled), without = encode(&p);
    assert_int_equal(with.len, without.len + 8);
    avro_wire_buf_free(&without);
    avro_wire_buf_free(&with);
}

static void test_round_trip_edges(void **state)
{
    (void)state;
    /* Empty strings, a key with a NUL inside (lengths, not terminators), extreme integers,
     * signed zero and infinities. */
    const double odd[] = {-0.0, INFINITY, 1e-300, -5e-324};
    struct prediction p = {.key = "a\0b",
                           .key_len = 3,
                           .event_time_ms = INT64_MIN,
                           .value = -0.0,
                           .label = -INFINITY,
                           .model = "",
                           .model_len = 0,
                           .model_version = INT32_MIN,
                           .source_partition = INT32_MAX,
                           .source_offset = INT64_MAX,
                           .probabilities = odd,
                           .nprobabilities = 4};
    struct avro_wire_buf buf = encode(&p);
    double probabilities[CAPACITY];
    struct prediction got;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, CAPACITY), TB_OK);
    assert_same_prediction(&got, &p);
    avro_wire_buf_free(&buf);

    p.key = "";
    p.key_len = 0;
    p.event_time_ms = -1;
    round_trip(&p);
}

static void test_decode_refuses_truncation(void **state)
{
    (void)state;
    const struct prediction samples[] = {regression(), classifier(), unlabelled()};
    for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
        struct avro_wire_buf buf = encode(&samples[s]);
        for (size_t len = 0; len < buf.len; len++) {
            /* A copy of exactly len bytes, so that a read past it is a sanitizer error. */
            uint8_t *cut = mem_alloc(len ? len : 1);
            memcpy(cut, buf.data, len);
            double probabilities[CAPACITY];
            struct prediction got;
            int rc = prediction_decode(cut, len, &got, probabilities, CAPACITY);
            free(cut);
            if (rc != TB_PARSE) {
                print_error("sample %zu cut to %zu of %zu bytes: %d, want TB_PARSE\n", s, len,
                            buf.len, rc);
                fail();
            }
        }
        avro_wire_buf_free(&buf);
    }
}

static void test_decode_refuses_trailing_bytes(void **state)
{
    (void)state;
    const struct prediction samples[] = {regression(), classifier()};
    for (size_t s = 0; s < 2; s++) {
        struct avro_wire_buf buf = encode(&samples[s]);
        double probabilities[CAPACITY];
        struct prediction got;
        const uint8_t extra[] = {0x00, 0x02, 0xff};
        for (size_t k = 0; k < sizeof(extra); k++) {
            struct avro_wire_buf longer = {0};
            avro_wire_put_raw(&longer, buf.data, buf.len);
            avro_wire_put_raw(&longer, &extra[k], 1);
            assert_int_equal(
                prediction_decode(longer.data, longer.len, &got, probabilities, CAPACITY),
                TB_PARSE);
            avro_wire_buf_free(&longer);
        }
        /* Two records back to back are not one record. */
        struct avro_wire_buf twice = {0};
        avro_wire_put_raw(&twice, buf.data, buf.len);
        avro_wire_put_raw(&twice, buf.data, buf.len);
        assert_int_equal(prediction_decode(twice.data, twice.len, &got, probabilities, CAPACITY),
                         TB_PARSE);
        avro_wire_buf_free(&twice);
        avro_wire_buf_free(&buf);
    }
}

static void test_decode_refuses_excess_probabilities(void **state)
{
    (void)state;
    struct prediction p = classifier();
    struct avro_wire_buf buf = encode(&p);
    /* A guard after the capacity shows that nothing is written past it. */
    double probabilities[3] = {-1.0, -1.0, -1.0};
    struct prediction got;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, 2), TB_PARSE);
    assert_true(probabilities[2] == -1.0);
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, NULL, 0), TB_PARSE);
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, 3), TB_OK);
    assert_int_equal(got.nprobabilities, 3);
    avro_wire_buf_free(&buf);

    /* The capacity holds across blocks: 2 + 2 items do not fit in 3. */
    static const uint8_t tail[] = {0x04, 0,    0, 0,    0,    0,    0, 0xd0, 0x3f, 0,    0,   0,
                                   0,    0,    0, 0xe0, 0x3f, 0x04, 0, 0,    0,    0,    0,   0,
                                   0xd0, 0x3f, 0, 0,    0,    0,    0, 0,    0xe0, 0x3f, 0x00};
    struct prediction r = regression();
    struct avro_wire_buf blocks = encode(&r);
    blocks.len--; /* drop the empty array's terminating 0 */
    avro_wire_put_raw(&blocks, tail, sizeof(tail));
    double four[4];
    assert_int_equal(prediction_decode(blocks.data, blocks.len, &got, four, 3), TB_PARSE);
    assert_int_equal(prediction_decode(blocks.data, blocks.len, &got, four, 4), TB_OK);
    assert_int_equal(got.nprobabilities, 4);
    avro_wire_buf_free(&blocks);
}

static void test_decode_blocks_and_negative_counts(void **state)
{
    (void)state;
    /* Avro lets a writer split an array into blocks, and give a block's count as negative
     * followed by its size in bytes. By hand: a block of -2 items (zig-zag 0x03) of 16 bytes
     * (0x20) holding 0.25 and 0.5, a block of 1 item (0x02) holding 0.25, then the end (0x00). */
    static const uint8_t tail[] = {0x03, 0x20, 0, 0, 0, 0,    0,    0,    0xd0, 0x3f,
                                   0,    0,    0, 0, 0, 0,    0xe0, 0x3f, 0x02, 0,
                                   0,    0,    0, 0, 0, 0xd0, 0x3f, 0x00};
    struct prediction p = regression();
    struct avro_wire_buf buf = encode(&p);
    assert_int_equal(buf.data[buf.len - 1], 0x00);
    buf.len--;
    avro_wire_put_raw(&buf, tail, sizeof(tail));
    double probabilities[CAPACITY];
    struct prediction got;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, CAPACITY), TB_OK);
    p.probabilities = (const double[]){0.25, 0.5, 0.25};
    p.nprobabilities = 3;
    assert_same_prediction(&got, &p);
    avro_wire_buf_free(&buf);
}

static void test_decode_refuses_bad_label_branch(void **state)
{
    (void)state;
    /* The union index follows key, event_time and prediction: it is the first byte in which
     * the record with a null label (branch 0) and the one with a label (branch 1, zig-zag 0x02)
     * differ. */
    struct prediction p = regression();
    struct avro_wire_buf labelled = encode(&p);
    p.label = NAN;
    struct avro_wire_buf buf = encode(&p);
    size_t at = 0;
    while (at < buf.len && buf.data[at] == labelled.data[at])
        at++;
    assert_true(at < buf.len);
    assert_int_equal(buf.data[at], 0x00);
    assert_int_equal(labelled.data[at], 0x02);
    avro_wire_buf_free(&labelled);
    double probabilities[CAPACITY];
    struct prediction got;
    const uint8_t bad[] = {0x04 /* 2 */, 0x01 /* -1 */, 0x7f /* -64 */};
    for (size_t k = 0; k < sizeof(bad); k++) {
        buf.data[at] = bad[k];
        assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, CAPACITY),
                         TB_PARSE);
    }
    buf.data[at] = 0x00;
    assert_int_equal(prediction_decode(buf.data, buf.len, &got, probabilities, CAPACITY), TB_OK);
    avro_wire_buf_free(&buf);
}

/* Decodes each hex argument with the schema of the file in argv[1], and prints one JSON object
 * per line, event_time as milliseconds, with the count of bytes left over. */
static const char python_decoder[] =
    "import datetime, io, json, sys\n"
    "import avro.io, avro.schema\n"
    "schema = avro.schema.parse(open(sys.argv[1]).read())\n"
    "epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "for arg in sys.argv[2:]:\n"
    "    data = bytes.fromhex(arg)\n"
    "    buf = io.BytesIO(data)\n"
    "    rec = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(buf))\n"
    "    rec['event_time'] = (rec['event_time'] - epoch) // datetime.timedelta(milliseconds=1)\n"
    "    rec['left_over'] = len(data) - buf.tell()\n"
    "    print(json.dumps(rec))\n";

/* Fails unless Python's record (a JSON object) holds the values of want. */
static void assert_python_record(json_t *rec, const struct prediction *want)
{
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "left_over")), 0);
    const char *key = json_string_value(json_object_get(rec, "key"));
    assert_non_null(key);
    assert_int_equal(strlen(key), want->key_len);
    assert_memory_equal(key, want->key, want->key_len);
    assert_int_equal(json_integer_value(json_object_get(rec, "event_time")), want->event_time_ms);
    assert_true(json_number_value(json_object_get(rec, "prediction")) == want->value);
    json_t *label = json_object_get(rec, "label");
    if (isnan(want->label))
        assert_true(json_is_null(label));
    else
        assert_true(json_is_number(label) && json_number_value(label) == want->label);
    const char *model = json_string_value(json_object_get(rec, "model"));
    assert_non_null(model);
    assert_int_equal(strlen(model), want->model_len);
    assert_memory_equal(model, want->model, want->model_len);
    assert_int_equal(json_integer_value(json_object_get(rec, "model_version")),
                     want->model_version);
    assert_int_equal(json_integer_value(json_object_get(rec, "source_partition")),
                     want->source_partition);
    assert_int_equal(json_integer_value(json_object_get(rec, "source_offset")),
                     want->source_offset);
    json_t *probabilities = json_object_get(rec, "probabilities");
    assert_int_equal(json_array_size(probabilities), want->nprobabilities);
    for (size_t k = 0; k < want->nprobabilities; k++)
        assert_true(json_number_value(json_array_get(probabilities, k)) == want->probabilities[k]);
}

static void test_python_decodes_ours(void **state)
{
    (void)state;
    const struct prediction samples[] = {regression(), classifier(), unlabelled()};
    enum { N = sizeof(samples) / sizeof(samples[0]) };
    char *hex[N];
    for (size_t s = 0; s < N; s++) {
        struct avro_wire_buf buf = encode(&samples[s]);
        hex[s] = support_to_hex(buf.data, buf.len);
        avro_wire_buf_free(&buf);
    }
    json_t *records =
        support_python_json_lines(python_decoder, "config/schemas/prediction.avsc", hex, N);
    for (size_t s = 0; s < N; s++)
        assert_python_record(json_array_get(records, s), &samples[s]);
    json_decref(records);
    for (size_t s = 0; s < N; s++)
        free(hex[s]);
}

/* Encodes one record with Python's avro package and the file's schema, and prints it in hex. */
static const char python_encoder[] =
    "import datetime, io, json, sys\n"
    "import avro.io, avro.schema\n"
    "schema = avro.schema.parse(open(sys.argv[1]).read())\n"
    "rec = json.loads(sys.argv[2])\n"
    "epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "rec['event_time'] = epoch + datetime.timedelta(milliseconds=rec['event_time'])\n"
    "buf = io.BytesIO()\n"
    "avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))\n"
    "print(buf.getvalue().hex())\n";

static void test_python_encodes_we_decode(void **state)
{
    (void)state;
    const char *records[] = {
        "{\"key\": \"press-4\", \"event_time\": 1700000060000, \"prediction\": 2.0, "
        "\"label\": 1.0, \"model\": \"wear-fleet\", \"model_version\": 12, "
        "\"source_partition\": 0, \"source_offset\": 7, "
        "\"probabilities\": [0.125, 0.625, 0.25]}",
        "{\"key\": \"engine-17\", \"event_time\": 1700000000123, \"prediction\": 112.375, "
        "\"label\": null, \"model\": \"rul-fd001\", \"model_version\": 3, "
        "\"source_partition\": 2, \"source_offset\": 40961, \"probabilities\": []}",
    };
    struct prediction want[2] = {classifier(), regression()};
    want[1].label = NAN;
    for (size_t r = 0; r < 2; r++) {
        size_t len = 0;
        uint8_t *bytes =
            support_python_hex(python_encoder, "config/schemas/prediction.avsc", records[r], &len);
        double probabilities[CAPACITY];
        struct prediction got;
        assert_int_equal(prediction_decode(bytes, len, &got, probabilities, CAPACITY), TB_OK);
        assert_same_prediction(&got, &want[r]);
        /* And our encoding of the same record is byte for byte Python's. */
        struct avro_wire_buf ours = encode(&want[r]);
        assert_int_equal(ours.len, len);
        assert_memory_equal(ours.data, bytes, len);
        avro_wire_buf_free(&ours);
        free(bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("schema: config/schemas/prediction.avsc equals the embedded one",
                   test_schema_file_matches_embedded, NULL),
        NAMED_CASE("round trip: a regression with a label, no probabilities",
                   test_round_trip_regression, NULL),
        NAMED_CASE("round trip: a classifier's probabilities", test_round_trip_probabilities, NULL),
        NAMED_CASE("round trip: a null label", test_round_trip_null_label, NULL),
        NAMED_CASE("round trip: empty strings, extreme integers, odd doubles",
                   test_round_trip_edges, NULL),
        NAMED_CASE("decode: every truncation is refused", test_decode_refuses_truncation, NULL),
        NAMED_CASE("decode: trailing bytes are refused", test_decode_refuses_trailing_bytes, NULL),
        NAMED_CASE("decode: more probabilities than capacity are refused",
                   test_decode_refuses_excess_probabilities, NULL),
        NAMED_CASE("decode: arrays in blocks, with a negative count",
                   test_decode_blocks_and_negative_counts, NULL),
        NAMED_CASE("decode: a label branch other than 0 or 1 is refused",
                   test_decode_refuses_bad_label_branch, NULL),
        NAMED_CASE("python avro decodes what we encode", test_python_decodes_ours, NULL),
        NAMED_CASE("python avro encodes what we decode, the same bytes",
                   test_python_encodes_we_decode, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
