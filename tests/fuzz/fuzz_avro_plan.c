/* libFuzzer target for the Avro decoder: arbitrary bytes against a schema of mixed types. Built
 * with -DFUZZ_REPLAY_MAIN it has a main that replays the files named on its command line, or,
 * with none, its corpus and then generated datums (valid ones, which must be accepted exactly
 * when their features are, and mutated ones) from a fixed seed. */
#include "connectors/avro/avro_plan.h"
#include "connectors/avro/avro_wire.h"
#include "service/base/error.h"
#include "service/base/rng.h"
#include "tests/fuzz/harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every Avro type, nullable features in both union orders, a recursive type, a zero-width
 * array, and named types used again by reference. */
static const char FUZZ_SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"Fuzz\",\"namespace\":\"tributary.fuzz\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"double\"},"
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"b\",\"type\":[\"null\",\"int\"]},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\",\"Z\"]}},"
    "{\"name\":\"c\",\"type\":\"boolean\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}},"
    "{\"name\":\"d\",\"type\":[\"long\",\"null\"]},"
    "{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"P\","
    "\"fields\":[{\"name\":\"k\",\"type\":\"int\"},"
    "{\"name\":\"v\",\"type\":[\"null\",\"float\",\"string\"]}]}}},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":"
    "\"double\"}}},"
    "{\"name\":\"tree\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"val\",\"type\":\"long\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"}}]}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"E\",\"F\",\"P\",\"bytes\"]},"
    "{\"name\":\"z\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"label\",\"type\":[\"null\",\"double\"]}]}";

static const char *const FUZZ_FIELDS[] = {"a", "b", "c", "d", "f", "label"};
#define FUZZ_NFIELDS   6
#define FUZZ_NREQUIRED 5

static struct avro_plan *fuzz_codec_instance;

static struct avro_plan *fuzz_codec(void)
{
    if (!fuzz_codec_instance) {
        char err[256];
        fuzz_codec_instance =
            avro_plan_new(FUZZ_SCHEMA, FUZZ_FIELDS, FUZZ_NFIELDS, FUZZ_NREQUIRED, err, sizeof err);
        if (!fuzz_codec_instance) {
            fprintf(stderr, "fuzz_avro_plan: %s\n", err);
            abort();
        }
    }
    return fuzz_codec_instance;
}

/* Decodes one input; traps when the decoder breaks its contract (an accepted row with a
 * non-finite feature, or a refusal without a reason). Memory errors are the sanitizers' job. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double row[FUZZ_NFIELDS];
    char reason[160] = "";
    int status = avro_plan_decode(fuzz_codec(), data, size, row, reason, sizeof reason);
    if (status == TB_OK) {
        for (size_t j = 0; j < FUZZ_NREQUIRED; j++)
            HARNESS_ASSERT(isfinite(row[j]));
    } else {
        HARNESS_ASSERT(status == TB_PARSE && reason[0] != '\0');
    }
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN

static unsigned gen_below(uint64_t *state, unsigned n)
{
    return (unsigned)(rng_splitmix64(state) % n);
}

static double gen_double(uint64_t *state)
{
    return ((double)(rng_splitmix64(state) >> 11) / 9007199254740992.0 - 0.5) * 1e6;
}

static void gen_text(struct avro_wire_buf *out, uint64_t *state)
{
    char text[24];
    unsigned len = gen_below(state, sizeof text);
    for (unsigned i = 0; i < len; i++)
        text[i] = (char)('a' + gen_below(state, 26));
    avro_wire_put_string(out, text, len);
}

typedef void gen_item_fn(struct avro_wire_buf *out, uint64_t *state, int depth);

/* Writes n items as an array (or, with keys, a map), in one or two blocks; a block is sometimes
 * written with a negative count and its byte size. */
static void gen_blocks(struct avro_wire_buf *out, uint64_t *state, unsigned n, bool keys,
                       gen_item_fn *item, int depth)
{
    unsigned done = 0;
    while (done < n) {
        unsigned count = n - done;
        if (count > 1 && gen_below(state, 2))
            count = 1 + gen_below(state, count - 1);
        struct avro_wire_buf block = {0};
        for (unsigned i = 0; i < count; i++) {
            if (keys)
                gen_text(&block, state);
            item(&block, state, depth);
        }
        if (gen_below(state, 3) == 0) {
            avro_wire_put_long(out, -(int64_t)count);
            avro_wire_put_long(out, (int64_t)block.len);
        } else {
            avro_wire_put_long(out, count);
        }
        avro_wire_put_raw(out, block.data, block.len);
        avro_wire_buf_free(&block);
        done += count;
    }
    avro_wire_put_long(out, 0);
}

static void gen_p(struct avro_wire_buf *out, uint64_t *state, int depth)
{
    (void)depth;
    avro_wire_put_int(out, (int32_t)rng_splitmix64(state));
    unsigned branch = gen_below(state, 3);
    avro_wire_put_union_index(out, branch);
    if (branch == 1)
        avro_wire_put_float(out, (float)gen_double(state));
    else if (branch == 2)
        gen_text(out, state);
}

static void gen_double_item(struct avro_wire_buf *out, uint64_t *state, int depth)
{
    (void)depth;
    avro_wire_put_double(out, gen_double(state));
}

static void gen_double_array(struct avro_wire_buf *out, uint64_t *state, int depth)
{
    gen_blocks(out, state, gen_below(state, 4), false, gen_double_item, depth);
}

static void gen_node(struct avro_wire_buf *out, uint64_t *state, int depth)
{
    avro_wire_put_long(out, (int64_t)rng_splitmix64(state));
    gen_blocks(out, state, depth < 4 ? gen_below(state, 3) : 0, false, gen_node, depth + 1);
}

/* Writes a valid datum of FUZZ_SCHEMA; returns whether its features are all present and
 * finite, that is whether the decoder must accept it. */
static bool gen_datum(struct avro_wire_buf *out, uint64_t *state)
{
    bool acceptable = true;
    double a = gen_below(state, 50) ? gen_double(state) : (gen_below(state, 2) ? NAN : INFINITY);
    acceptable &= isfinite(a);
    avro_wire_put_double(out, a);
    gen_text(out, state);
    bool b_null = gen_below(state, 30) == 0;
    acceptable &= !b_null;
    avro_wire_put_union_index(out, b_null ? 0 : 1);
    if (!b_null)
        avro_wire_put_int(out, (int32_t)rng_splitmix64(state));
    avro_wire_put_long(out, gen_below(state, 3));
    avro_wire_put_boolean(out, gen_below(state, 2));
    uint32_t fixed = (uint32_t)rng_splitmix64(state);
    avro_wire_put_raw(out, &fixed, 4);
    bool d_null = gen_below(state, 30) == 0;
    acceptable &= !d_null;
    avro_wire_put_union_index(out, d_null ? 1 : 0);
    if (!d_null)
        avro_wire_put_long(out, (int64_t)rng_splitmix64(state));
    gen_blocks(out, state, gen_below(state, 4), false, gen_p, 0);
    float f = (float)gen_double(state);
    avro_wire_put_float(out, f);
    gen_blocks(out, state, gen_below(state, 3), true, gen_double_array, 0);
    gen_node(out, state, 0);
    unsigned u = gen_below(state, 5);
    avro_wire_put_union_index(out, u);
    if (u == 1)
        avro_wire_put_long(out, gen_below(state, 3));
    else if (u == 2)
        avro_wire_put_raw(out, &fixed, 4);
    else if (u == 3)
        gen_p(out, state, 0);
    else if (u == 4)
        gen_text(out, state);
    unsigned nulls = gen_below(state, 4);
    if (nulls) {
        avro_wire_put_long(out, nulls);
        avro_wire_put_long(out, 0);
    } else {
        avro_wire_put_long(out, 0);
    }
    bool label = gen_below(state, 2);
    avro_wire_put_union_index(out, label ? 1 : 0);
    if (label)
        avro_wire_put_double(out, gen_double(state));
    return acceptable;
}

/* Truncates, flips, inserts or overwrites bytes, or replaces the datum with noise. */
static void gen_mutate(struct avro_wire_buf *buf, uint64_t *state)
{
    unsigned kind = gen_below(state, 5);
    if (kind == 0 && buf->len > 0) {
        buf->len = gen_below(state, (unsigned)buf->len);
    } else if (kind == 1 && buf->len > 0) {
        buf->data[gen_below(state, (unsigned)buf->len)] ^= (uint8_t)(1u << gen_below(state, 8));
    } else if (kind == 2) {
        size_t at = gen_below(state, (unsigned)buf->len + 1);
        avro_wire_put_raw(buf, "", 1);
        memmove(buf->data + at + 1, buf->data + at, buf->len - 1 - at);
        buf->data[at] = (uint8_t)rng_splitmix64(state);
    } else if (kind == 3 && buf->len > 0) {
        for (unsigned n = 1 + gen_below(state, 4); n > 0; n--)
            buf->data[gen_below(state, (unsigned)buf->len)] = (uint8_t)rng_splitmix64(state);
    } else {
        avro_wire_buf_reset(buf);
        for (unsigned n = gen_below(state, 64); n > 0; n--) {
            uint8_t byte = (uint8_t)rng_splitmix64(state);
            avro_wire_put_raw(buf, &byte, 1);
        }
    }
}

/* Feeds the decoder from an exact-size copy, so that a sanitizer sees any read past the end. */
static int replay(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    double row[FUZZ_NFIELDS];
    int status = avro_plan_decode(fuzz_codec(), copy, len, row, NULL, 0);
    free(copy);
    return status;
}

int main(int argc, char **argv)
{
    int failures = harness_replay_main(argc, argv, "avro_plan", LLVMFuzzerTestOneInput);
    if (argc == 1) {
        uint64_t state = 20240601;
        struct avro_wire_buf buf = {0};
        unsigned accepted = 0, refused = 0, mutated = 0;
        for (unsigned i = 0; i < 20000; i++) {
            avro_wire_buf_reset(&buf);
            bool acceptable = gen_datum(&buf, &state);
            int status = replay(buf.data, buf.len);
            if ((status == TB_OK) != acceptable) {
                fprintf(stderr, "fuzz_avro_plan: generated datum %u: status %d, expected %s\n", i,
                        status, acceptable ? "TB_OK" : "TB_PARSE");
                failures++;
            }
            accepted += status == TB_OK;
            refused += status != TB_OK;
            for (unsigned k = 0; k < 4; k++) {
                gen_mutate(&buf, &state);
                replay(buf.data, buf.len);
                mutated++;
            }
        }
        avro_wire_buf_free(&buf);
        printf("fuzz_avro_plan: %u valid datums (%u accepted, %u refused), %u mutated inputs\n",
               accepted + refused, accepted, refused, mutated);
    }
    avro_plan_destroy(fuzz_codec_instance);
    return failures ? 1 : 0;
}

#endif
