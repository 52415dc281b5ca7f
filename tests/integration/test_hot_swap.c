/* Integration: hot swap under load. serve starts from version 1 of a model with per-machine
 * window features in a registry directory; while 60k records stream in, version 2 is published
 * to the directory (after 5k predictions), version 3 to the models topic (after 20k), a version
 * 4 with a bad checksum to the directory (after 30k) and a version 5 that reads a field the
 * input does not have to the topic.
 *
 * Each case then checks what a user relies on: every input has exactly one prediction; each
 * prediction names a published version and equals that version's offline scoring of the same
 * stream (the same pipeline code, windows included, run over the records in order); versions
 * never go backwards within a partition; 3 is reached; 4 and 5 never appear and are counted as
 * refused. */
#include "connectors/avro/prediction.h"
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "models/linear.h"
#include "models/pipeline.h"
#include "models/ridge.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/config/config.h"
#include "service/registry/artefact.h"
#include "service/registry/model_topic.h"
#include "service/registry/registry.h"
#include "service/sim/fleet.h"
#include "service/stream/serve.h"
#include "tests/support/kafka_support.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PARTITIONS 8
#define TOTAL      60000
#define NFEATURES  KAFKA_SUPPORT_NFEATURES
#define NVERSIONS  3               /* the good ones */
#define BASE_TS    1700000000000LL /* record i is stamped BASE_TS + i */
#define MODEL_NAME "swap-rul"

static const char *const windowed[] = {"pressure", "vibration", "oil_temp"};

struct record {
    double x[NFEATURES];
    char key[16];
    int predictions;
    int version;
    double predicted;
    int32_t partition;
    int64_t offset;
};

static struct {
    char dir[64];
    struct embedded_broker *broker;
    struct record *records;
    struct artefact *versions[NVERSIONS]; /* 1, 2, 3 */
    double *expected[NVERSIONS];          /* each version's offline prediction per record */
    unsigned long long swapped, refused;
    int max_version_seen;
} world;

/* Builds version `version` from a training fleet: the window pipeline and ridge with an l2
 * that differs per version, so that the versions predict differently. */
static struct artefact *build_version(int version, const char *const *numeric)
{
    struct fleet *fleet = fleet_new(40, 99);
    size_t n = 20000;
    double *x = mem_alloc(n * NFEATURES * sizeof *x), *y = mem_alloc(n * sizeof *y);
    const char **keys = mem_alloc(n * sizeof *keys);
    size_t *lens = mem_alloc(n * sizeof *lens);
    char(*names)[16] = mem_alloc(n * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        struct fleet_reading r;
        fleet_next(fleet, BASE_TS, &r);
        kafka_support_reading_features(&r, &x[i * NFEATURES]);
        y[i] = r.rul;
        snprintf(names[i], sizeof names[i], "%s", r.machine_id);
        keys[i] = names[i];
        lens[i] = strlen(names[i]);
    }
    char err[256];
    struct pipeline_options options = {
        .numeric = numeric,
        .nnumeric = NFEATURES,
        .window = 5,
        .window_stats = PIPELINE_STAT_MEAN | PIPELINE_STAT_SLOPE,
        .window_columns = windowed,
        .nwindow_columns = 3,
        .scale = PIPELINE_SCALE_STANDARD,
    };
    struct pipeline_rows rows = {.nrows = n, .values = x, .keys = keys, .key_lens = lens};
    struct pipeline *pipeline = pipeline_fit(&options, &rows, NULL, NULL, NULL, err, sizeof err);
    if (!pipeline)
        fail_msg("pipeline_fit: %s", err);
    size_t p = pipeline_nfeatures(pipeline);
    double *features_out = mem_alloc(n * p * sizeof *features_out);
    struct pipeline_state *state = pipeline_state_new(pipeline);
    pipeline_transform(pipeline, state, &rows, features_out);
    pipeline_state_destroy(state);
    struct ridge_stats *stats = ridge_stats_new(p);
    ridge_stats_add(stats, features_out, y, n);
    struct linear_model model = {0};
    assert_int_equal(ridge_fit(stats, pow(10.0, version), &model, err, sizeof err), TB_OK);
    struct artefact_info info = {.name = MODEL_NAME, .version = version, .label = "rul"};
    struct artefact *a = artefact_new(&info, pipeline, &model, err, sizeof err);
    if (!a)
        fail_msg("artefact_new: %s", err);
    linear_model_free(&model);
    ridge_stats_destroy(stats);
    pipeline_destroy(pipeline);
    free(features_out);
    free(names);
    free(lens);
    free(keys);
    free(y);
    free(x);
    fleet_destroy(fleet);
    return a;
}

/* Streams the records at about 10k per second. */
static void *produce_stream(void *arg)
{
    (void)arg;
    rd_kafka_topic_t *topic = NULL;
    struct kafka_sink *sink = kafka_support_sink_new(world.broker, "telemetry", &topic);
    struct fleet *fleet = fleet_new(200, 2026);
    struct avro_wire_buf buf = {0};
    for (size_t i = 0; i < TOTAL; i++) {
        struct fleet_reading r;
        fleet_next(fleet, BASE_TS + (int64_t)i, &r);
        kafka_support_reading_features(&r, world.records[i].x);
        snprintf(world.records[i].key, sizeof world.records[i].key, "%s", r.machine_id);
        avro_wire_buf_reset(&buf);
        fleet_encode(&r, &buf);
        kafka_support_produce(sink, topic, r.machine_id, buf.data, buf.len, NULL,
                              BASE_TS + (int64_t)i, i);
        if (i % 1000 == 999)
            usleep(100000);
    }
    assert_int_equal(kafka_sink_wait(sink, 60000), TB_OK);
    avro_wire_buf_free(&buf);
    fleet_destroy(fleet);
    kafka_sink_destroy(sink);
    return NULL;
}

static void publish_to_topic(struct artefact *a)
{
    char err[256];
    const struct kafka_prop props[] = {
        {"bootstrap.servers", embedded_broker_bootstraps(world.broker)}};
    if (model_topic_publish(props, 1, "models", a, 15000, err, sizeof err) != TB_OK)
        fail_msg("model_topic_publish: %s", err);
}

/* Version 4: version 3's bytes with a coefficient changed, written where the directory
 * watch finds it. */
static void publish_corrupt_version(void)
{
    char err[256], path[256];
    artefact_set_version(world.versions[2], 4);
    unsigned char *buf;
    size_t len;
    assert_int_equal(artefact_encode(world.versions[2], &buf, &len, err, sizeof err), TB_OK);
    artefact_set_version(world.versions[2], 3);
    buf[len - 16 - 9] ^= 0x40; /* inside the last coefficient, before the sync marker */
    snprintf(path, sizeof path, "%s/%s/v4.avro", world.dir, MODEL_NAME);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(buf);
}

/* Waits (up to 60 s) until the service has acknowledged `count` predictions. */
static void wait_for_predictions(const struct worker_stats *st, unsigned long long count)
{
    for (int i = 0; i < 600 && atomic_load(&st->predicted) < count; i++)
        usleep(100000);
}

static struct config *service_config(void)
{
    const char *const settings[][2] = {
        {"registry.directory", world.dir},
        {"registry.topic", "models"},
        {"registry.poll_ms", "100"},
        {"train.model_name", MODEL_NAME},
        {"serve.workers", "2"},
        {"serve.group_id", "it-swap"},
        {"serve.batch_max_records", "500"},
        {"serve.batch_max_wait_ms", "20"},
    };
    return kafka_support_serve_config(world.broker, settings, sizeof settings / sizeof settings[0]);
}

/* Records one prediction against the input record it names. */
static void on_prediction(const rd_kafka_message_t *msg, void *opaque)
{
    (void)opaque;
    struct prediction p;
    assert_int_equal(prediction_decode(msg->payload, msg->len, &p, NULL, 0), TB_OK);
    int64_t i = p.event_time_ms - BASE_TS;
    assert_true(i >= 0 && i < TOTAL);
    rd_kafka_headers_t *headers;
    assert_int_equal(rd_kafka_message_headers(msg, &headers), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(kafka_support_header_int(headers, "tributary.model.version"), p.model_version);
    struct record *rec = &world.records[i];
    rec->predictions++;
    rec->version = p.model_version;
    rec->predicted = p.value;
    rec->partition = p.source_partition;
    rec->offset = p.source_offset;
    if (p.model_version > world.max_version_seen)
        world.max_version_seen = p.model_version;
}

/* Reads the whole prediction topic. */
static void read_predictions(void)
{
    kafka_support_read_all(world.broker, "predictions", PARTITIONS, "it-swap-reader", on_prediction,
                           NULL);
}

/* Each version's offline scoring of the stream: the records in production order, one window
 * state per version. A key's records keep their order within its partition, so this is the
 * order serve saw them in, key by key. */
static void score_offline(void)
{
    double *x = mem_alloc(TOTAL * NFEATURES * sizeof *x);
    const char **keys = mem_alloc(TOTAL * sizeof *keys);
    size_t *lens = mem_alloc(TOTAL * sizeof *lens);
    for (size_t i = 0; i < TOTAL; i++) {
        memcpy(&x[i * NFEATURES], world.records[i].x, sizeof world.records[i].x);
        keys[i] = world.records[i].key;
        lens[i] = strlen(keys[i]);
    }
    struct pipeline_rows rows = {.nrows = TOTAL, .values = x, .keys = keys, .key_lens = lens};
    for (int v = 0; v < NVERSIONS; v++) {
        const struct pipeline *pipeline = artefact_pipeline(world.versions[v]);
        double *out = mem_alloc(TOTAL * pipeline_nfeatures(pipeline) * sizeof *out);
        struct pipeline_state *state = pipeline_state_new(pipeline);
        pipeline_transform(pipeline, state, &rows, out);
        pipeline_state_destroy(state);
        world.expected[v] = mem_alloc(TOTAL * sizeof *world.expected[v]);
        linear_predict(artefact_model(world.versions[v]), out, TOTAL, world.expected[v]);
        free(out);
    }
    free(lens);
    free(keys);
    free(x);
}

static int scenario_setup(void **state)
{
    (void)state;
    log_set_level(getenv("TEST_LOG_INFO") ? LOG_INFO : LOG_WARN);
    snprintf(world.dir, sizeof world.dir, "/tmp/tributary-swap-XXXXXX");
    assert_non_null(mkdtemp(world.dir));
    char err[512];
    world.broker = kafka_support_serve_broker(PARTITIONS);
    assert_int_equal(embedded_broker_create_topic(world.broker, "models", 1, err, sizeof err),
                     TB_OK);
    world.records = mem_calloc(TOTAL, sizeof *world.records);
    for (int v = 0; v < NVERSIONS; v++)
        world.versions[v] = build_version(v + 1, kafka_support_features);
    int32_t version = 0;
    assert_int_equal(registry_publish(world.dir, world.versions[0], &version, err, sizeof err),
                     TB_OK);
    assert_int_equal(version, 1);

    struct config *cfg = service_config();
    int status = TB_OK;
    struct serve *serve = serve_new(cfg, &status, err, sizeof err);
    if (!serve)
        fail_msg("serve_new: %s", err);
    assert_int_equal(serve_start(serve, err, sizeof err), TB_OK);
    /* Stream only once the group has settled, so that every version meets live records. */
    for (int i = 0; i < 300 && serve_assigned(serve) < PARTITIONS; i++)
        usleep(100000);
    assert_int_equal(serve_assigned(serve), PARTITIONS);
    pthread_t producer;
    assert_int_equal(pthread_create(&producer, NULL, produce_stream, NULL), 0);

    /* Each publication waits until the stream has moved on under the version before. */
    const struct worker_stats *st = serve_stats(serve);
    wait_for_predictions(st, 5000);
    assert_int_equal(registry_publish(world.dir, world.versions[1], &version, err, sizeof err),
                     TB_OK);
    assert_int_equal(version, 2);
    wait_for_predictions(st, 20000);
    publish_to_topic(world.versions[2]);
    wait_for_predictions(st, 30000);
    publish_corrupt_version();
    /* Version 5 reads a field the input schema does not have. */
    const char *renamed[NFEATURES];
    memcpy(renamed, kafka_support_features, sizeof renamed);
    renamed[0] = "torque";
    struct artefact *bad = build_version(5, renamed);
    publish_to_topic(bad);
    artefact_destroy(bad);

    pthread_join(producer, NULL);
    wait_for_predictions(st, TOTAL);
    serve_stop(serve);
    assert_int_equal(serve_wait(serve), TB_OK);
    world.swapped = atomic_load(&st->models_swapped);
    world.refused = atomic_load(&st->models_refused);
    serve_destroy(serve);
    config_destroy(cfg);

    read_predictions();
    score_offline();
    return 0;
}

static int scenario_teardown(void **state)
{
    (void)state;
    embedded_broker_destroy(world.broker);
    for (int v = 0; v < NVERSIONS; v++) {
        artefact_destroy(world.versions[v]);
        free(world.expected[v]);
    }
    free(world.records);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", world.dir);
    return system(command) == 0 ? 0 : -1;
}

static void every_input_has_exactly_one_prediction(void **state)
{
    (void)state;
    for (size_t i = 0; i < TOTAL; i++)
        if (world.records[i].predictions != 1)
            fail_msg("record %zu has %d predictions", i, world.records[i].predictions);
}

static void versions_are_published_ones_and_reach_the_last(void **state)
{
    (void)state;
    size_t per_version[NVERSIONS + 1] = {0};
    for (size_t i = 0; i < TOTAL; i++) {
        int v = world.records[i].version;
        if (v < 1 || v > NVERSIONS)
            fail_msg("record %zu was scored by version %d", i, v);
        per_version[v]++;
    }
    print_message("predictions by version: v1 %zu, v2 %zu, v3 %zu\n", per_version[1],
                  per_version[2], per_version[3]);
    assert_int_equal(world.max_version_seen, 3);
    assert_true(per_version[1] > 0);
    assert_true(per_version[3] > 0);
}

static int by_source_offset(const void *a, const void *b)
{
    const struct record *x = *(const struct record *const *)a,
                        *y = *(const struct record *const *)b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void versions_never_go_backwards_within_a_partition(void **state)
{
    (void)state;
    const struct record **order = mem_alloc(TOTAL * sizeof *order);
    for (size_t i = 0; i < TOTAL; i++)
        order[i] = &world.records[i];
    qsort(order, TOTAL, sizeof *order, by_source_offset);
    for (size_t i = 1; i < TOTAL; i++)
        if (order[i]->partition == order[i - 1]->partition &&
            order[i]->version < order[i - 1]->version)
            fail_msg("partition %d: offset %lld has version %d after offset %lld had %d",
                     order[i]->partition, (long long)order[i]->offset, order[i]->version,
                     (long long)order[i - 1]->offset, order[i - 1]->version);
    free(order);
}

static void predictions_equal_their_versions_offline_scoring(void **state)
{
    (void)state;
    for (size_t i = 0; i < TOTAL; i++) {
        const struct record *rec = &world.records[i];
        double want = world.expected[rec->version - 1][i];
        if (fabs(rec->predicted - want) > 1e-9 * fmax(1.0, fabs(want)))
            fail_msg("record %zu (%s, version %d): streamed %.17g, offline %.17g", i, rec->key,
                     rec->version, rec->predicted, want);
    }
}

static void broken_versions_are_refused_and_counted(void **state)
{
    (void)state;
    assert_int_equal(world.swapped, 2);
    assert_int_equal(world.refused, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_input_has_exactly_one_prediction),
        cmocka_unit_test(versions_are_published_ones_and_reach_the_last),
        cmocka_unit_test(versions_never_go_backwards_within_a_partition),
        cmocka_unit_test(predictions_equal_their_versions_offline_scoring),
        cmocka_unit_test(broken_versions_are_refused_and_counted),
    };
    return cmocka_run_group_tests(tests, scenario_setup, scenario_teardown);
}
