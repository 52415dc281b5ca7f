/* Integration: serve on a 3-broker embedded cluster, an 8-partition topic,
 * 200k records and 2 workers, stopped and restarted half way; then a third run
 * over 20k more records while the broker refuses some of its produce requests.
 *
 * The scenario runs once in the group setup; each case then checks one thing a
 * user relies on: every input has exactly one prediction or one dead-letter
 * record, predictions equal offline scoring of the same readings, dead letters
 * carry their reason and origin, the restarted service resumed from the
 * committed offsets without skipping or repeating anything, and an output the
 * broker refused is retried rather than lost. */
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
#include "service/sim/fleet.h"
#include "service/stream/serve.h"
#include "tests/support/kafka_support.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define PARTITIONS 8
#define HALF       100000
#define TOTAL      (2 * HALF) /* the two clean runs */
#define EXTRA      20000      /* the run with refused outputs */
#define ALL        (TOTAL + EXTRA)
#define NFEATURES  KAFKA_SUPPORT_NFEATURES
#define BASE_TS    1700000000000LL /* record i is stamped BASE_TS + i */

/* What the test knows of each input record, and what came out for it. */
struct record {
    double x[NFEATURES];
    double rul;
    unsigned corrupted;
    unsigned predictions;  /* outputs seen on the prediction topic */
    unsigned dead_letters; /* and on the dead-letter topic */
    double predicted;
    int32_t partition; /* as reported by its output */
    int64_t offset;
    char reason[128];
};

static struct {
    char dir[64];
    char model_path[128];
    struct embedded_broker *broker;
    struct record *records;
    struct linear_model model;
    unsigned long long first_run_outputs;
    unsigned long long second_run_outputs;
    unsigned long long third_run_rewound;
} world;

/* Trains the model the service will load, on a fleet other than the stream's. */
static void train_model(void)
{
    struct fleet *fleet = fleet_new(30, 99);
    size_t n = 20000;
    double *x = mem_alloc(n * NFEATURES * sizeof *x);
    double *y = mem_alloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        struct fleet_reading r;
        fleet_next(fleet, BASE_TS, &r);
        kafka_support_reading_features(&r, &x[i * NFEATURES]);
        y[i] = r.rul;
    }
    struct ridge_stats *stats = ridge_stats_new(NFEATURES);
    ridge_stats_add(stats, x, y, n);
    char err[256];
    assert_int_equal(ridge_fit(stats, 1.0, &world.model, err, sizeof err), TB_OK);
    /* The inputs as they are: a pipeline without stages. */
    struct pipeline_options options = {.numeric = kafka_support_features, .nnumeric = NFEATURES};
    struct pipeline_rows rows = {.nrows = n, .values = x};
    struct pipeline *pipeline = pipeline_fit(&options, &rows, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(pipeline);
    struct artefact_info info = {.name = "it-rul", .version = 3, .label = "rul"};
    struct artefact *a = artefact_new(&info, pipeline, &world.model, err, sizeof err);
    assert_non_null(a);
    pipeline_destroy(pipeline);
    assert_int_equal(artefact_write(a, world.model_path, err, sizeof err), TB_OK);
    artefact_destroy(a);
    ridge_stats_destroy(stats);
    fleet_destroy(fleet);
    free(y);
    free(x);
}

/* Produces records [from, to) of the stream; about 1 in 200 is corrupted. */
static void produce_records(struct fleet *fleet, size_t from, size_t to)
{
    rd_kafka_topic_t *topic = NULL;
    struct kafka_sink *sink = kafka_support_sink_new(world.broker, "telemetry", &topic);
    struct avro_wire_buf buf = {0};
    for (size_t i = from; i < to; i++) {
        struct fleet_reading r;
        fleet_next(fleet, BASE_TS + (int64_t)i, &r);
        kafka_support_reading_features(&r, world.records[i].x);
        world.records[i].rul = r.rul;
        avro_wire_buf_reset(&buf);
        fleet_encode(&r, &buf);
        if (i % 200 == 17) {
            fleet_corrupt(fleet, &buf);
            world.records[i].corrupted = 1;
        }
        kafka_support_produce(sink, topic, r.machine_id, buf.data, buf.len, NULL,
                              BASE_TS + (int64_t)i, i);
    }
    assert_int_equal(kafka_sink_wait(sink, 60000), TB_OK);
    avro_wire_buf_free(&buf);
    kafka_sink_destroy(sink);
}

static struct config *service_config(void)
{
    const char *const settings[][2] = {
        {"input.features", "load,ambient_temp,inlet_temp,outlet_temp,pressure,vibration,rpm,"
                           "oil_temp,current,flow"},
        {"input.label", "rul"},
        {"serve.model", world.model_path},
        {"serve.workers", "2"},
        {"serve.group_id", "it-serve"},
        {"serve.batch_max_records", "5000"},
        {"serve.batch_max_wait_ms", "20"},
    };
    return kafka_support_serve_config(world.broker, settings, sizeof settings / sizeof settings[0]);
}

/* Sums, over the input topic's partitions, the group's committed offsets
 * (*committed) and the end offsets (*end). */
static void group_progress(int64_t *committed, int64_t *end)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", embedded_broker_bootstraps(world.broker), err,
                      sizeof err);
    rd_kafka_conf_set(conf, "group.id", "it-serve", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    *committed = *end = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t low, high;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, "telemetry", p, &low, &high, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        *end += high;
        rd_kafka_topic_partition_list_add(parts, "telemetry", p);
    }
    assert_int_equal(rd_kafka_committed(rk, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < PARTITIONS; p++)
        *committed += parts->elems[p].offset > 0 ? parts->elems[p].offset : 0;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
}

/* Runs the service until it has produced `expect` outputs, or (expect 0)
 * until the group has committed the whole input topic, or 180 s pass; then
 * stops it the way SIGTERM does. Returns the outputs it counted; *rewound (if
 * not NULL) gets the records it had to read again. */
static unsigned long long serve_until(unsigned long long expect, unsigned long long *rewound)
{
    struct config *cfg = service_config();
    char err[512];
    int status = TB_OK;
    struct serve *serve = serve_new(cfg, &status, err, sizeof err);
    if (!serve)
        fail_msg("serve_new: %s", err);
    assert_int_equal(serve_start(serve, err, sizeof err), TB_OK);
    const struct worker_stats *st = serve_stats(serve);
    for (int i = 0; i < 1800; i++) {
        usleep(100000);
        if (expect > 0 && atomic_load(&st->predicted) + atomic_load(&st->dead_lettered) >= expect)
            break;
        int64_t committed, end;
        if (expect == 0 && i % 10 == 9 && (group_progress(&committed, &end), committed == end))
            break;
    }
    serve_stop(serve);
    assert_int_equal(serve_wait(serve), TB_OK);
    unsigned long long outputs = atomic_load(&st->predicted) + atomic_load(&st->dead_lettered);
    if (rewound)
        *rewound = atomic_load(&st->rewound);
    serve_destroy(serve);
    config_destroy(cfg);
    return outputs;
}

/* Records one output (a dead letter when *(int *)dead_letters, else a prediction) against the
 * input record its timestamp names. */
static void on_output(const rd_kafka_message_t *msg, void *dead_letters)
{
    int64_t ts = rd_kafka_message_timestamp(msg, NULL);
    assert_true(ts >= BASE_TS && ts < BASE_TS + ALL);
    struct record *rec = &world.records[ts - BASE_TS];
    if (*(const int *)dead_letters) {
        rd_kafka_headers_t *headers;
        assert_int_equal(rd_kafka_message_headers(msg, &headers), RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_true(
            kafka_support_header_text(headers, "tributary.error", rec->reason, sizeof rec->reason));
        rec->partition = (int32_t)kafka_support_header_int(headers, "tributary.source.partition");
        rec->offset = kafka_support_header_int(headers, "tributary.source.offset");
        rec->dead_letters++;
    } else {
        struct prediction p;
        assert_int_equal(prediction_decode(msg->payload, msg->len, &p, NULL, 0), TB_OK);
        assert_int_equal(p.event_time_ms, ts);
        assert_int_equal(p.model_version, 3);
        rec->partition = p.source_partition;
        rec->offset = p.source_offset;
        rec->predicted = p.value;
        rec->predictions++;
        /* the label travels with the prediction */
        assert_true(fabs(p.label - rec->rul) < 1e-12);
    }
}

/* Reads every record of `topic` from the beginning to its end. */
static void read_outputs(const char *topic, int dead_letters)
{
    kafka_support_read_all(world.broker, topic, PARTITIONS, "it-reader", on_output, &dead_letters);
}

static int scenario_setup(void **state)
{
    (void)state;
    log_set_level(getenv("TEST_LOG_INFO") ? LOG_INFO : LOG_WARN);
    snprintf(world.dir, sizeof world.dir, "/tmp/tributary-it-XXXXXX");
    assert_non_null(mkdtemp(world.dir));
    snprintf(world.model_path, sizeof world.model_path, "%s/model.avro", world.dir);
    world.broker = kafka_support_serve_broker(PARTITIONS);
    world.records = mem_calloc(ALL, sizeof *world.records);
    train_model();

    struct fleet *fleet = fleet_new(500, 2024);
    produce_records(fleet, 0, HALF);
    world.first_run_outputs = serve_until(HALF, NULL);
    produce_records(fleet, HALF, TOTAL);
    world.second_run_outputs = serve_until(HALF, NULL);
    produce_records(fleet, TOTAL, ALL);
    /* The next 12 produce requests fail for good (ApiKey 0 is Produce). */
    rd_kafka_resp_err_t refusals[12];
    for (int i = 0; i < 12; i++)
        refusals[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    rd_kafka_mock_push_request_errors_array(embedded_broker_cluster(world.broker), 0, 12, refusals);
    serve_until(0, &world.third_run_rewound);
    fleet_destroy(fleet);

    read_outputs("predictions", 0);
    read_outputs("telemetry.dlq", 1);
    return 0;
}

static int scenario_teardown(void **state)
{
    (void)state;
    embedded_broker_destroy(world.broker);
    linear_model_free(&world.model);
    free(world.records);
    remove(world.model_path);
    rmdir(world.dir);
    return 0;
}

static void every_input_has_exactly_one_output(void **state)
{
    (void)state;
    size_t missing = 0, duplicated = 0, predicted = 0, dead = 0, corrupted = 0;
    for (size_t i = 0; i < TOTAL; i++) {
        corrupted += world.records[i].corrupted;
        unsigned outputs = world.records[i].predictions + world.records[i].dead_letters;
        missing += outputs == 0 ? 1 : 0;
        duplicated += outputs > 1 ? 1 : 0;
        predicted += world.records[i].predictions;
        dead += world.records[i].dead_letters;
    }
    assert_int_equal(missing, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(predicted + dead, TOTAL);
    assert_int_equal(dead, corrupted);
}

static int compare_offsets(const void *a, const void *b)
{
    const struct record *x = *(const struct record *const *)a;
    const struct record *y = *(const struct record *const *)b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void outputs_cover_every_source_offset_once(void **state)
{
    (void)state;
    struct record **order = mem_alloc(TOTAL * sizeof *order);
    for (size_t i = 0; i < TOTAL; i++)
        order[i] = &world.records[i];
    qsort(order, TOTAL, sizeof *order, compare_offsets);
    /* Per partition, the source offsets named by the outputs are 0, 1, 2, ... */
    int32_t partition = -1;
    int64_t expect = 0;
    int partitions_seen = 0;
    for (size_t i = 0; i < TOTAL; i++) {
        if (order[i]->partition != partition) {
            partition = order[i]->partition;
            expect = 0;
            partitions_seen++;
        }
        assert_int_equal(order[i]->offset, expect);
        expect++;
    }
    assert_int_equal(partitions_seen, PARTITIONS);
    free(order);
}

static void predictions_equal_offline_scoring(void **state)
{
    (void)state;
    double *x = mem_alloc(TOTAL * NFEATURES * sizeof *x);
    double *y = mem_alloc(TOTAL * sizeof *y);
    for (size_t i = 0; i < TOTAL; i++)
        memcpy(&x[i * NFEATURES], world.records[i].x, sizeof world.records[i].x);
    linear_predict(&world.model, x, TOTAL, y);
    size_t compared = 0, corrupted = 0;
    for (size_t i = 0; i < TOTAL; i++) {
        corrupted += world.records[i].corrupted;
        if (world.records[i].predictions != 1)
            continue;
        double want = y[i], got = world.records[i].predicted;
        if (fabs(got - want) > 1e-9 * fmax(1.0, fabs(want)))
            fail_msg("record %zu: streamed prediction %.17g, offline %.17g", i, got, want);
        compared++;
    }
    assert_int_equal(compared, TOTAL - corrupted);
    free(y);
    free(x);
}

static void dead_letters_carry_reason_and_origin(void **state)
{
    (void)state;
    for (size_t i = 0; i < TOTAL; i++) {
        const struct record *r = &world.records[i];
        if (!r->corrupted) {
            assert_int_equal(r->dead_letters, 0);
            continue;
        }
        assert_int_equal(r->dead_letters, 1);
        assert_true(strlen(r->reason) > 0);
        /* the reasons the decoder gives for the three kinds of damage */
        assert_true(strstr(r->reason, "NaN") || strstr(r->reason, "truncated") ||
                    strstr(r->reason, "trailing") || strstr(r->reason, "invalid") ||
                    strstr(r->reason, "length") || strstr(r->reason, "varint") ||
                    strstr(r->reason, "union"));
    }
}

static void refused_outputs_are_retried_not_lost(void **state)
{
    (void)state;
    /* The broker did refuse outputs, and the service read those records again. */
    assert_true(world.third_run_rewound > 0);
    size_t covered = 0, repeated = 0;
    for (size_t i = TOTAL; i < ALL; i++) {
        const struct record *r = &world.records[i];
        unsigned outputs = r->predictions + r->dead_letters;
        covered += outputs >= 1 ? 1 : 0;
        repeated += outputs > 1 ? 1 : 0;
        if (r->corrupted)
            assert_int_equal(r->predictions, 0);
        else
            assert_int_equal(r->dead_letters, 0);
    }
    /* At-least-once: none lost; those after a refused one in its partition may repeat. */
    assert_int_equal(covered, EXTRA);
    print_message("refused-output run: %llu records read again, %zu outputs repeated\n",
                  world.third_run_rewound, repeated);
}

static void restart_resumes_from_committed_offsets(void **state)
{
    (void)state;
    /* Each run produced exactly its half: the second neither re-read the first
     * half (its offsets were committed on the way out) nor skipped anything. */
    assert_int_equal(world.first_run_outputs, HALF);
    assert_int_equal(world.second_run_outputs, HALF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_input_has_exactly_one_output),
        cmocka_unit_test(outputs_cover_every_source_offset_once),
        cmocka_unit_test(predictions_equal_offline_scoring),
        cmocka_unit_test(dead_letters_carry_reason_and_origin),
        cmocka_unit_test(restart_resumes_from_committed_offsets),
        cmocka_unit_test(refused_outputs_are_retried_not_lost),
    };
    return cmocka_run_group_tests(tests, scenario_setup, scenario_teardown);
}
