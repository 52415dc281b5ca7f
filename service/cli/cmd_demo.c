/* `tributary demo`: the whole path on the embedded broker, shown live. */
#include "connectors/avro/prediction.h"
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_source.h"
#include "models/metrics.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/signals.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/offline/trainer.h"
#include "service/registry/artefact.h"
#include "service/sim/simulator.h"
#include "service/stream/serve.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_option demo_options[] = {
    {"seconds", "S", "demo.seconds", "how long the live part runs"},
    {"rate", "R", "simulate.rate", "live telemetry records per second"},
};

static const struct cli_command demo_command = {
    "demo",
    "tributary demo [-c config/demo.yaml] [--seconds S]",
    "Runs tributary's main job with no Kafka: starts the embedded broker, simulates\n"
    "a fleet's history to an Avro file, trains a ridge model on per-machine window\n"
    "features and publishes it to the registry, serves it over a live stream of\n"
    "telemetry (with a few corrupt records that must end in the dead-letter topic),\n"
    "retrains and publishes a new version half way (serve swaps it in without a\n"
    "restart), and shows records in, predictions out and the running error against\n"
    "the true remaining life, until --seconds pass or Ctrl-C.",
    demo_options,
    sizeof demo_options / sizeof demo_options[0],
    0,
    0,
};

/* The latest prediction of one machine, copied out of its record. */
struct demo_sample {
    char key[16]; /* "" until one is seen */
    char model[64];
    int version;
    double predicted, true_rul;
    int partition;
    long long offset;
};

/* The demo's own view of the prediction topic. */
struct demo_monitor {
    struct metrics_running error;
    long long seen;
    struct demo_sample samples[4];
};

static void demo_on_predictions(void *opaque, rd_kafka_message_t **msgs, size_t n)
{
    struct demo_monitor *m = opaque;
    for (size_t i = 0; i < n; i++) {
        struct prediction p;
        double probabilities[16];
        if (prediction_decode(msgs[i]->payload, msgs[i]->len, &p, probabilities, 16) != TB_OK)
            continue;
        m->seen++;
        if (!isnan(p.label))
            metrics_running_add(&m->error, p.label, p.value);
        for (int s = 0; s < 4; s++) {
            char want[16];
            snprintf(want, sizeof want, "m-%06d", s * 7);
            if (p.key_len != strlen(want) || memcmp(p.key, want, p.key_len) != 0)
                continue;
            struct demo_sample *sample = &m->samples[s];
            memcpy(sample->key, want, sizeof want);
            snprintf(sample->model, sizeof sample->model, "%.*s", (int)p.model_len, p.model);
            sample->version = p.model_version;
            sample->predicted = p.value;
            sample->true_rul = p.label;
            sample->partition = p.source_partition;
            sample->offset = (long long)p.source_offset;
        }
    }
}

struct demo_simulation {
    const struct config *cfg;
    const struct kafka_prop *props;
    size_t nprops;
    atomic_int stop;
    struct simulator_report report;
    int status;
    char err[512];
};

static void *demo_simulate(void *arg)
{
    struct demo_simulation *sim = arg;
    log_set_thread_name("simulator");
    sim->status = simulator_run(sim->cfg, NULL, sim->props, sim->nprops, &sim->stop, &sim->report,
                                sim->err, sizeof sim->err);
    return NULL;
}

static void demo_show(double t, const struct demo_simulation *sim, struct serve *serve,
                      const struct demo_monitor *mon, double rate)
{
    const struct worker_stats *st = serve_stats(serve);
    struct metrics_regression e;
    metrics_running_get(&mon->error, &e);
    printf("%5.0fs  sent %8lld  consumed %8llu  predicted %8llu  dead-lettered %4llu  "
           "%6.0f rec/s  model v%d  MAE %6.2f  RMSE %6.2f cycles\n",
           t, atomic_load(&sim->report.produced), atomic_load(&st->consumed),
           atomic_load(&st->predicted), atomic_load(&st->dead_lettered), rate,
           serve_model_version(serve), e.mae, e.rmse);
    fflush(stdout);
}

static void demo_show_samples(const struct demo_monitor *mon)
{
    for (int s = 0; s < 4; s++) {
        const struct demo_sample *p = &mon->samples[s];
        if (!p->key[0])
            continue;
        printf("        %s  predicted RUL %6.1f  true RUL %5.0f  (model %s v%d, partition %d "
               "offset %lld)\n",
               p->key, p->predicted, p->true_rul, p->model, p->version, p->partition, p->offset);
    }
    fflush(stdout);
}

/* Trains on the history, publishes the next version and says how it tested. */
static int demo_train(const struct config *cfg, const char *step, char *err, size_t errsz)
{
    struct trainer_summary trained;
    int status = TB_OK;
    struct artefact *model = trainer_run(cfg, &trained, &status, err, errsz);
    if (!model)
        return status;
    size_t nmetrics = 0;
    const struct artefact_param *metrics = artefact_metrics(model, &nmetrics);
    double rmse = NAN, r2 = NAN;
    artefact_param_find(metrics, nmetrics, "holdout_rmse", &rmse);
    artefact_param_find(metrics, nmetrics, "holdout_r2", &r2);
    printf("%s %s (l2 %g) on %zu rows, %zu features from %d-reading windows; on %zu readings of "
           "machines it never saw: RMSE %.1f cycles, R2 %.3f -> published %s version %d to %s\n",
           step, artefact_model_kind(model), cfg->train.l2, trained.rows, artefact_nfeatures(model),
           cfg->pipeline.window, trained.held_out, rmse, r2, artefact_name(model),
           (int)trained.published, cfg->registry.directory);
    artefact_destroy(model);
    return TB_OK;
}

static int demo_run(struct config *cfg, char *err, size_t errsz)
{
    int status = TB_OK;
    struct embedded_broker *broker = NULL;
    struct serve *serve = NULL;
    struct kafka_source *monitor = NULL;
    struct kafka_prop *props = NULL;
    size_t nprops = 0;
    struct demo_monitor mon = {0};
    struct demo_simulation sim = {0};
    pthread_t sim_thread;
    int sim_started = 0;

    printf("== tributary demo: embedded broker, simulated fleet, model registry, live scoring, hot "
           "swap\n\n");
    broker = embedded_broker_new(cfg->broker.brokers, err, errsz);
    if (!broker)
        return TB_KAFKA;
    const char *topics[] = {cfg->input.topic, cfg->output.topic, cfg->output.dead_letter_topic,
                            cfg->registry.topic, cfg->state.changelog_topic};
    for (size_t i = 0; i < 5; i++) {
        if (!topics[i][0])
            continue;
        status = embedded_broker_create_topic(broker, topics[i],
                                              i != 3 ? cfg->broker.partitions : 1, err, errsz);
        if (status != TB_OK)
            goto done;
    }
    config_kafka_set(cfg, "bootstrap.servers", embedded_broker_bootstraps(broker));
    printf("1. embedded broker: %d brokers at %s; topics %s, %s, %s (%d partitions), %s\n",
           cfg->broker.brokers, embedded_broker_bootstraps(broker), topics[0], topics[1], topics[2],
           cfg->broker.partitions, topics[3]);

    /* History: a fleet's past, with the true remaining life of every reading. */
    struct simulator_report history = {0};
    atomic_int never = 0;
    long long live_count = cfg->simulate.count;
    cfg->simulate.count = cfg->simulate.history_count;
    status = simulator_run(cfg, cfg->train.input, NULL, 0, &never, &history, err, errsz);
    cfg->simulate.count = live_count;
    if (status != TB_OK)
        goto done;
    printf("2. simulated %lld readings of history from %d machines -> %s\n",
           atomic_load(&history.produced), cfg->simulate.machines, cfg->train.input);

    status = demo_train(cfg, "3. trained", err, errsz);
    if (status != TB_OK)
        goto done;

    serve = serve_new(cfg, &status, err, errsz);
    if (!serve)
        goto done;
    status = serve_start(serve, err, errsz);
    if (status != TB_OK)
        goto done;
    printf("4. serving with %d workers in group '%s'\n", cfg->serve.workers, cfg->serve.group_id);

    props = config_kafka_props(cfg, &nprops);
    struct kafka_source_options monitor_options = {
        .group_id = "tributary-demo-monitor",
        .topic = cfg->output.topic,
        .commit_interval_ms = 1000,
        .on_batch = demo_on_predictions,
        .opaque = &mon,
    };
    monitor = kafka_source_new(props, nprops, &monitor_options, err, errsz);
    if (!monitor) {
        status = TB_KAFKA;
        goto done;
    }

    cfg->simulate.seed += 1; /* a live fleet other than the one trained on */
    sim.cfg = cfg;
    sim.props = props;
    sim.nprops = nprops;
    if (pthread_create(&sim_thread, NULL, demo_simulate, &sim) != 0) {
        status = tb_fail(err, errsz, TB_NOMEM, "could not start the simulator thread");
        goto done;
    }
    sim_started = 1;
    printf("5. simulating live telemetry at %.0f records/s with %.1f%% corrupt records, for %.0f "
           "s (Ctrl-C stops)\n\n",
           cfg->simulate.rate, 100.0 * cfg->simulate.bad_ratio, cfg->demo.seconds);

    double start = clock_monotonic_s(), last = start;
    unsigned long long last_consumed = 0;
    int ticks = 0, retrained = 0;
    while (!signals_stop_requested() && !serve_stopping(serve) &&
           clock_monotonic_s() - start < cfg->demo.seconds) {
        kafka_source_poll_batch(monitor, 10000, 100);
        double now = clock_monotonic_s();
        if (now - last >= 1.0) {
            unsigned long long consumed = atomic_load(&serve_stats(serve)->consumed);
            demo_show(now - start, &sim, serve, &mon,
                      (double)(consumed - last_consumed) / (now - last));
            if (++ticks % 5 == 0)
                demo_show_samples(&mon);
            last_consumed = consumed;
            last = now;
        }
        if (!retrained && now - start >= cfg->demo.seconds / 2) {
            /* A data scientist tries a stronger penalty and publishes the result: serve
             * swaps it in at its next batch, with no restart and no record lost. */
            retrained = 1;
            cfg->train.l2 *= 100;
            printf("\n");
            status = demo_train(cfg, "6. retrained", err, errsz);
            if (status != TB_OK)
                goto done;
            printf("\n");
        }
    }

    /* Drain: stop the source, let serve finish what was sent, then stop it. */
    atomic_store(&sim.stop, 1);
    pthread_join(sim_thread, NULL);
    sim_started = 0;
    long long sent = atomic_load(&sim.report.produced) - atomic_load(&sim.report.refused);
    const struct worker_stats *st = serve_stats(serve);
    double drain_start = clock_monotonic_s();
    while (clock_monotonic_s() - drain_start < 10.0 &&
           (long long)(atomic_load(&st->predicted) + atomic_load(&st->dead_lettered)) < sent)
        kafka_source_poll_batch(monitor, 10000, 100);
    while (clock_monotonic_s() - drain_start < 12.0 &&
           mon.seen < (long long)atomic_load(&st->predicted))
        kafka_source_poll_batch(monitor, 10000, 100);
    serve_stop(serve);
    serve_wait(serve);

    struct metrics_regression e;
    metrics_running_get(&mon.error, &e);
    long long predicted = (long long)atomic_load(&st->predicted);
    long long dead = (long long)atomic_load(&st->dead_lettered);
    long long outputs = predicted + dead;
    printf("\n== done: sent %lld records (%lld deliberately corrupt); predicted %lld, "
           "dead-lettered %lld: ",
           sent, atomic_load(&sim.report.corrupted), predicted, dead);
    if (outputs == sent)
        printf("every record accounted for\n");
    else if (outputs > sent)
        printf("%lld outputs more than records, re-deliveries after a rebalance or a retry "
               "(delivery is at-least-once)\n",
               outputs - sent);
    else
        printf("%lld records NOT accounted for\n", sent - outputs);
    printf("   live error of '%s' v%d over %zu predictions: MAE %.2f, RMSE %.2f cycles of "
           "remaining life\n",
           serve_model_name(serve), serve_model_version(serve), e.count, e.mae, e.rmse);
    const struct state_store_stats *ss = serve_state_stats(serve);
    if (strcmp(cfg->online.model, "none") != 0)
        printf("   per-machine %s models (on the fleet model's residual): learned from %llu "
               "records; %llu checkpoints to '%s'\n",
               cfg->online.model, atomic_load(&ss->learned), atomic_load(&ss->checkpointed),
               cfg->state.changelog_topic);
    if (sim.status != TB_OK)
        status = tb_fail(err, errsz, sim.status, "simulator: %s", sim.err);
    else if (outputs < sent)
        status =
            tb_fail(err, errsz, TB_KAFKA, "%lld records sent, %lld accounted for", sent, outputs);

done:
    if (sim_started) {
        atomic_store(&sim.stop, 1);
        pthread_join(sim_thread, NULL);
    }
    if (monitor)
        kafka_source_close(monitor);
    kafka_source_destroy(monitor);
    serve_destroy(serve);
    free(props);
    embedded_broker_destroy(broker);
    return status;
}

int cmd_demo(int argc, char **argv)
{
    int first_arg, exit_code; /* no positional arguments */
    struct config *cfg = cli_start(argc, argv, &demo_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024];
    signals_install();
    int status = demo_run(cfg, err, sizeof err);
    if (status != TB_OK)
        fprintf(stderr, "tributary demo: %s\n", err);
    config_destroy(cfg);
    return status == TB_OK ? 0 : 1;
}
