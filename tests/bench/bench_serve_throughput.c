/* Benchmark: end-to-end scoring throughput of serve on the embedded broker,
 * against a bare C consume-and-produce passthrough of the same records on the
 * same broker (the floor that Kafka transport sets). Prints both rates and
 * their ratio; never fails on time.
 *
 * Both jobs read the same pre-produced topic in their own consumer group with
 * one worker per core, and each is timed from its first record consumed to its
 * last output acknowledged, so group-join time (seconds on the embedded
 * broker) is left out of both. */
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "models/linear.h"
#include "models/pipeline.h"
#include "models/ridge.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/config/config.h"
#include "service/registry/artefact.h"
#include "service/sim/fleet.h"
#include "service/stream/serve.h"
#include "tests/bench/bench_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTITIONS 16

static const char *const bench_features[] = {
    "load",      "ambient_temp", "inlet_temp", "outlet_temp", "pressure",
    "vibration", "rpm",          "oil_temp",   "current",     "flow",
};
#define NFEATURES (sizeof bench_features / sizeof bench_features[0])

/* Produces n telemetry records and trains the model serve will use. */
static void bench_prepare(const char *bootstrap, long n, const char *model_path)
{
    char err[512];
    const struct kafka_prop props[] = {{"bootstrap.servers", bootstrap}};
    struct kafka_sink *sink = kafka_sink_new(props, 1, NULL, err, sizeof err);
    if (!sink)
        bench_die("producer", err);
    rd_kafka_topic_t *topic = kafka_sink_topic(sink, "telemetry", err, sizeof err);
    if (!topic)
        bench_die("topic", err);
    struct fleet *fleet = fleet_new(1000, 42);
    struct avro_wire_buf buf = {0};
    struct ridge_stats *stats = ridge_stats_new(NFEATURES);
    double sample[NFEATURES] = {0}; /* one reading, to fit the stage-less pipeline on */
    for (long i = 0; i < n; i++) {
        struct fleet_reading r;
        fleet_next(fleet, 1700000000000LL + i, &r);
        avro_wire_buf_reset(&buf);
        fleet_encode(&r, &buf);
        if (kafka_sink_produce(sink, topic, r.machine_id, strlen(r.machine_id), buf.data, buf.len,
                               NULL, 1700000000000LL + i, 0, err, sizeof err) != 0)
            bench_die("produce", err);
        if (i < 20000) {
            const double x[NFEATURES] = {r.load,     r.ambient_temp, r.inlet_temp, r.outlet_temp,
                                         r.pressure, r.vibration,    r.rpm,        r.oil_temp,
                                         r.current,  r.flow};
            ridge_stats_add(stats, x, &r.rul, 1);
            memcpy(sample, x, sizeof sample);
        }
    }
    if (kafka_sink_wait(sink, 60000) != 0)
        bench_die("produce", "records not acknowledged");
    kafka_sink_destroy(sink);
    avro_wire_buf_free(&buf);
    fleet_destroy(fleet);

    struct linear_model model = {0};
    if (ridge_fit(stats, 1.0, &model, err, sizeof err) != 0)
        bench_die("fit", err);
    /* The inputs as they are: a pipeline without stages. */
    struct pipeline_options options = {.numeric = bench_features, .nnumeric = NFEATURES};
    struct pipeline_rows rows = {.nrows = 1, .values = sample};
    struct pipeline *pipeline = pipeline_fit(&options, &rows, NULL, NULL, NULL, err, sizeof err);
    if (!pipeline)
        bench_die("pipeline", err);
    struct artefact_info info = {.name = "bench", .version = 1, .label = "rul"};
    struct artefact *a = artefact_new(&info, pipeline, &model, err, sizeof err);
    if (!a || artefact_write(a, model_path, err, sizeof err) != 0)
        bench_die("artefact", err);
    artefact_destroy(a);
    pipeline_destroy(pipeline);
    linear_model_free(&model);
    ridge_stats_destroy(stats);
}

/* The passthrough floor: consume, produce the same bytes, acknowledge. */
struct passthrough {
    const char *bootstrap;
    long total;
    atomic_long done;
    _Atomic double first_s;
};

static void passthrough_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct passthrough *pt = opaque;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&pt->done, 1);
}

static void *passthrough_worker(void *arg)
{
    struct passthrough *pt = arg;
    char err[256];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", pt->bootstrap, err, sizeof err);
    rd_kafka_conf_set(cc, "group.id", "bench-passthrough", err, sizeof err);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", err, sizeof err);
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "10", err, sizeof err);
    rd_kafka_conf_set(cc, "queued.min.messages", "200000", err, sizeof err);
    rd_kafka_conf_set(cc, "partition.assignment.strategy", "cooperative-sticky", err, sizeof err);
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", pt->bootstrap, err, sizeof err);
    rd_kafka_conf_set(pc, "compression.type", "lz4", err, sizeof err);
    rd_kafka_conf_set(pc, "linger.ms", "5", err, sizeof err);
    rd_kafka_conf_set_opaque(pc, pt);
    rd_kafka_conf_set_dr_msg_cb(pc, passthrough_delivered);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    rd_kafka_topic_t *out = rd_kafka_topic_new(producer, "passthrough", NULL);
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, "telemetry", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);

    while (atomic_load(&pt->done) < pt->total) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 50);
        if (msg && !msg->err) {
            double unset = 0;
            atomic_compare_exchange_strong(&pt->first_s, &unset, bench_now());
            while (rd_kafka_produce(out, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, msg->payload,
                                    msg->len, msg->key, msg->key_len, NULL) != 0)
                rd_kafka_poll(producer, 10);
        }
        if (msg)
            rd_kafka_message_destroy(msg);
        rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 10000);
    rd_kafka_topic_destroy(out);
    rd_kafka_destroy(producer);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return NULL;
}

static double bench_passthrough(const char *bootstrap, long n, int workers)
{
    struct passthrough pt = {.bootstrap = bootstrap, .total = n};
    pthread_t threads[64];
    for (int i = 0; i < workers; i++)
        pthread_create(&threads[i], NULL, passthrough_worker, &pt);
    while (atomic_load(&pt.done) < n)
        usleep(1000);
    double seconds = bench_now() - atomic_load(&pt.first_s);
    for (int i = 0; i < workers; i++)
        pthread_join(threads[i], NULL);
    return (double)n / seconds;
}

static double bench_serve(const char *bootstrap, long n, int workers, const char *model_path)
{
    struct config *cfg = config_new();
    char err[512], value[32];
    snprintf(value, sizeof value, "%d", workers);
    const char *settings[][2] = {
        {"kafka.bootstrap.servers", bootstrap},
        {"input.label", "rul"},
        {"serve.model", model_path},
        {"serve.workers", value},
        {"serve.group_id", "bench-serve"},
        {"serve.batch_max_records", "10000"},
        {"serve.batch_max_wait_ms", "20"},

    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (config_set(cfg, settings[i][0], settings[i][1], "bench", err, sizeof err) != 0)
            bench_die("config", err);
    int status = 0;
    struct serve *serve = serve_new(cfg, &status, err, sizeof err);
    if (!serve || serve_start(serve, err, sizeof err) != 0)
        bench_die("serve", err);
    const struct worker_stats *st = serve_stats(serve);
    while (atomic_load(&st->consumed) == 0)
        usleep(200);
    double first = bench_now();
    while ((long)(atomic_load(&st->predicted) + atomic_load(&st->dead_lettered)) < n)
        usleep(1000);
    double seconds = bench_now() - first;
    serve_destroy(serve);
    config_destroy(cfg);
    return (double)n / seconds;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 400000;
    int workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    log_set_level(LOG_ERROR);
    char err[512];
    struct embedded_broker *broker = embedded_broker_new(1, err, sizeof err);
    if (!broker)
        bench_die("broker", err);
    const char *topics[] = {"telemetry", "predictions", "telemetry.dlq", "passthrough"};
    for (int i = 0; i < 4; i++)
        if (embedded_broker_create_topic(broker, topics[i], PARTITIONS, err, sizeof err) != 0)
            bench_die("topic", err);
    const char *bootstrap = embedded_broker_bootstraps(broker);
    char model_path[] = "/tmp/tributary-bench-model.avro";
    bench_prepare(bootstrap, n, model_path);

    double floor_rate = bench_passthrough(bootstrap, n, workers);
    double serve_rate = bench_serve(bootstrap, n, workers, model_path);
    printf("serve throughput (embedded broker, %ld records, %d partitions, %d workers)\n", n,
           PARTITIONS, workers);
    printf("  passthrough (bare consume+produce, C)  %10.0f records/s\n", floor_rate);
    printf("  tributary serve (decode+ridge+encode)  %10.0f records/s\n", serve_rate);
    printf("  ratio serve / passthrough              %10.2f\n", serve_rate / floor_rate);
    remove(model_path);
    embedded_broker_destroy(broker);
    return 0;
}
