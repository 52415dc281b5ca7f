/* Service lifecycle: model and schema checks, model watch and hot swap, embedded broker, worker
 * threads. */
#include "service/stream/serve.h"

#include "connectors/kafka/changelog.h"
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_conf.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"
#include "service/http/prom.h"
#include "service/registry/artefact.h"
#include "service/registry/model_watch.h"
#include "service/registry/registry.h"
#include "service/stream/live_model.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>

struct serve_thread {
    struct worker *worker;
    pthread_t thread;
    int started;
    int status;
};

struct serve {
    const struct config *cfg;
    struct embedded_broker *broker; /* NULL when a real Kafka is configured */
    struct kafka_prop *props;       /* cfg's kafka.* plus the resolved bootstrap */
    size_t nprops;
    char *bootstraps;
    char *schema;     /* the input schema's text */
    char *model_name; /* every version served has this name */
    struct live_model_slot models;
    int has_models; /* models was initialised */
    struct model_watch *watch;
    struct worker_stats stats;
    struct state_store_stats state_stats;
    struct prom_registry *registry; /* the service's metrics */
    struct worker_metrics metrics;
    atomic_int stop;
    atomic_int joined;
    atomic_int committed;
    atomic_int nworkers;
    struct worker_shared shared;
    struct serve_thread *threads;
    int nthreads;
};

/* Reads the model to start with: serve.model, or else the latest version of train.model_name
 * in registry.directory. */
static struct artefact *serve_first_artefact(const struct config *cfg, char *err, size_t errsz)
{
    if (cfg->serve.model[0])
        return artefact_read(cfg->serve.model, err, errsz);
    if (!cfg->registry.directory[0]) {
        tb_fail(err, errsz, TB_CONFIG,
                "no model: set serve.model (--model FILE) or registry.directory (--registry DIR)");
        return NULL;
    }
    char path[4096];
    int32_t version = 0;
    if (registry_latest(cfg->registry.directory, cfg->train.model_name, &version, path, sizeof path,
                        err, errsz) != TB_OK)
        return NULL;
    return artefact_read(path, err, errsz);
}

/* Loads the first model and checks it against the input schema once, before any worker
 * starts. */
static int serve_load_model(struct serve *s, char *err, size_t errsz)
{
    const struct config *cfg = s->cfg;
    s->schema = textfile_read(cfg->input.schema, NULL, err, errsz);
    if (!s->schema)
        return TB_IO;
    struct artefact *artefact = serve_first_artefact(cfg, err, errsz);
    if (!artefact)
        return TB_ARTEFACT;
    s->model_name = mem_strdup(artefact_name(artefact));
    char reason[512];
    struct live_model *model = live_model_load(artefact, s->schema, cfg, reason, sizeof reason);
    if (!model)
        return tb_fail(err, errsz, TB_SCHEMA, "%s: %s", cfg->input.schema, reason);
    char fingerprint[17];
    avro_plan_fingerprint(model->plan, fingerprint);
    const char *trained_on = artefact_input_schema_fingerprint(model->artefact);
    if (trained_on[0] && strcmp(trained_on, fingerprint) != 0)
        log_warn("model was trained on input schema %s; %s is %s", trained_on, cfg->input.schema,
                 fingerprint);
    log_info("model '%s' version %s: %s over %zu features", s->model_name, model->version,
             artefact_model_kind(model->artefact), artefact_nfeatures(model->artefact));
    live_model_slot_init(&s->models, model);
    s->has_models = 1;
    return TB_OK;
}

/* A new version from the registry or the models topic: loaded and checked against the input
 * schema, then swapped in; the old one serves until then, and keeps serving if it is refused. */
static void serve_on_artefact(struct artefact *artefact, const char *origin, void *opaque)
{
    struct serve *s = opaque;
    int32_t version = artefact_version(artefact);
    char reason[512];
    struct live_model *model = live_model_load(artefact, s->schema, s->cfg, reason, sizeof reason);
    if (!model) {
        atomic_fetch_add(&s->stats.models_refused, 1);
        log_warn("refused model '%s' version %d from %s: %s; the current version keeps serving",
                 s->model_name, (int)version, origin, reason);
        return;
    }
    if (live_model_slot_swap(&s->models, model)) {
        atomic_fetch_add(&s->stats.models_swapped, 1);
        log_info("model '%s' version %d from %s: every worker takes it at its next batch",
                 s->model_name, (int)version, origin);
    }
}

static void serve_on_refused(int32_t version, const char *origin, const char *reason, void *opaque)
{
    struct serve *s = opaque;
    atomic_fetch_add(&s->stats.models_refused, 1);
    log_warn("refused model '%s' version %d from %s: %s; the current version keeps serving",
             s->model_name, (int)version, origin, reason);
}

/* Watches registry.directory and registry.topic for new versions of the model. */
static int serve_watch_models(struct serve *s, char *err, size_t errsz)
{
    const struct config *cfg = s->cfg;
    if (!cfg->registry.directory[0] && !cfg->registry.topic[0])
        return TB_OK;
    struct model_watch_options options = {
        .registry = cfg->registry.directory,
        .name = s->model_name,
        .topic = cfg->registry.topic,
        .props = s->props,
        .nprops = s->nprops,
        .poll_ms = cfg->registry.poll_ms,
        .after_version = (int32_t)serve_model_version(s),
        .on_artefact = serve_on_artefact,
        .on_refused = serve_on_refused,
        .opaque = s,
    };
    s->watch = model_watch_new(&options, err, errsz);
    return s->watch ? TB_OK : TB_CONFIG;
}

/* With a changelog topic on a Kafka of the user's: the topic must exist with at least the input's
 * partitions, because a key's checkpoint goes to the partition number its records come from
 * (and producing to a missing topic would have the broker create it with its default count). */
static int serve_check_changelog(struct serve *s, char *err, size_t errsz)
{
    const char *changelog = s->cfg->state.changelog_topic;
    if (!changelog[0])
        return TB_OK;
    int nchangelog = 0, ninput = 0;
    int rc =
        changelog_topic_partitions(s->props, s->nprops, changelog, 10000, &nchangelog, err, errsz);
    if (rc == TB_OK)
        rc = changelog_topic_partitions(s->props, s->nprops, s->cfg->input.topic, 10000, &ninput,
                                        err, errsz);
    if (rc != TB_OK)
        return rc;
    if (nchangelog == 0)
        return tb_fail(err, errsz, TB_CONFIG,
                       "state.changelog_topic: topic '%s' does not exist; create it compacted "
                       "(cleanup.policy=compact) with %d partitions, as many as '%s'",
                       changelog, ninput, s->cfg->input.topic);
    if (nchangelog < ninput)
        return tb_fail(err, errsz, TB_CONFIG,
                       "state.changelog_topic: topic '%s' has %d partitions and input '%s' has %d; "
                       "the changelog needs at least as many",
                       changelog, nchangelog, s->cfg->input.topic, ninput);
    return TB_OK;
}

/* Resolves where Kafka is: the configured bootstrap servers, or an embedded
 * broker started here with the topics the service uses. */
static int serve_resolve_kafka(struct serve *s, char *err, size_t errsz)
{
    const struct config *cfg = s->cfg;
    s->props = config_kafka_props(cfg, &s->nprops); /* room for one more: the bootstrap */
    rd_kafka_conf_t *check = kafka_conf_build(NULL, 0, s->props, s->nprops, NULL, 0, err, errsz);
    if (!check)
        return TB_CONFIG;
    rd_kafka_conf_destroy(check);
    const char *bootstrap = config_kafka_get(cfg, "bootstrap.servers");
    if (bootstrap) {
        s->bootstraps = mem_strdup(bootstrap);
        return serve_check_changelog(s, err, errsz);
    }
    s->broker = embedded_broker_new(cfg->broker.brokers, err, errsz);
    if (!s->broker)
        return TB_KAFKA;
    const char *topics[] = {cfg->input.topic, cfg->output.topic, cfg->output.dead_letter_topic};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        if (embedded_broker_create_topic(s->broker, topics[i], cfg->broker.partitions, err,
                                         errsz) != TB_OK)
            return TB_KAFKA;
    }
    if (cfg->registry.topic[0] &&
        embedded_broker_create_topic(s->broker, cfg->registry.topic, 1, err, errsz) != TB_OK)
        return TB_KAFKA;
    if (cfg->state.changelog_topic[0] &&
        embedded_broker_create_topic(s->broker, cfg->state.changelog_topic, cfg->broker.partitions,
                                     err, errsz) != TB_OK)
        return TB_KAFKA;
    s->bootstraps = mem_strdup(embedded_broker_bootstraps(s->broker));
    s->props[s->nprops].key = "bootstrap.servers";
    s->props[s->nprops].value = s->bootstraps;
    s->nprops++;
    log_info("no kafka.bootstrap.servers: embedded broker (%d brokers, %d partitions per topic) "
             "at %s",
             cfg->broker.brokers, cfg->broker.partitions, s->bootstraps);
    return TB_OK;
}

/* Collectors: values the service keeps elsewhere, read at each scrape. */

static void serve_emit_counter(struct prom_sink *sink, void *opaque)
{
    prom_sink_emit(sink, NULL, (double)atomic_load((atomic_ullong *)opaque));
}

static void serve_collect_model(struct prom_sink *sink, void *opaque)
{
    struct serve *s = opaque;
    unsigned generation;
    struct live_model *model = live_model_slot_acquire(&s->models, &generation);
    const char *labels[] = {artefact_name(model->artefact), model->version,
                            artefact_model_kind(model->artefact)};
    prom_sink_emit(sink, labels, 1);
    live_model_release(model);
}

static void serve_collect_assigned(struct prom_sink *sink, void *opaque)
{
    prom_sink_emit(sink, NULL, serve_assigned(opaque));
}

static void serve_collect_table(struct prom_sink *sink, void *opaque, bool bytes)
{
    size_t keys = 0, size = 0;
    serve_table(opaque, &keys, &size);
    prom_sink_emit(sink, NULL, (double)(bytes ? size : keys));
}

static void serve_collect_table_keys(struct prom_sink *sink, void *opaque)
{
    serve_collect_table(sink, opaque, false);
}

static void serve_collect_table_bytes(struct prom_sink *sink, void *opaque)
{
    serve_collect_table(sink, opaque, true);
}

static void serve_collect_prequential(struct prom_sink *sink, void *opaque)
{
    struct metrics_running running = {0};
    serve_prequential(opaque, &running);
    struct metrics_regression e;
    metrics_running_get(&running, &e);
    if (e.count == 0)
        return;
    const char *mae[] = {"mae"}, *rmse[] = {"rmse"};
    prom_sink_emit(sink, mae, e.mae);
    prom_sink_emit(sink, rmse, e.rmse);
}

static void serve_collect_online(struct prom_sink *sink, void *opaque)
{
    struct serve *s = opaque;
    struct metrics_running regression = {0};
    struct metrics_running_class classification = {0};
    for (int i = 0; i < s->nthreads; i++)
        if (s->threads[i].worker)
            worker_online_prequential(s->threads[i].worker, &regression, &classification);
    struct metrics_regression e;
    metrics_running_get(&regression, &e);
    if (e.count > 0) {
        const char *mae[] = {"mae"}, *rmse[] = {"rmse"};
        prom_sink_emit(sink, mae, e.mae);
        prom_sink_emit(sink, rmse, e.rmse);
    }
    if (classification.count > 0) {
        double log_loss, accuracy;
        metrics_running_class_get(&classification, &log_loss, &accuracy);
        const char *ll[] = {"log_loss"}, *acc[] = {"accuracy"};
        prom_sink_emit(sink, ll, log_loss);
        prom_sink_emit(sink, acc, accuracy);
    }
}

static void serve_collect_lag(struct prom_sink *sink, void *opaque)
{
    struct serve *s = opaque;
    struct kafka_source_partition_lag lag[1024];
    for (int i = 0; i < s->nthreads; i++) {
        if (!s->threads[i].worker)
            continue;
        size_t n = worker_lag(s->threads[i].worker, lag, sizeof lag / sizeof lag[0]);
        for (size_t j = 0; j < n && j < sizeof lag / sizeof lag[0]; j++) {
            if (lag[j].lag < 0)
                continue;
            char partition[16];
            snprintf(partition, sizeof partition, "%d", (int)lag[j].partition);
            const char *labels[] = {s->cfg->input.topic, partition};
            prom_sink_emit(sink, labels, (double)lag[j].lag);
        }
    }
}

/* Registers the service's metrics; the workers update the histograms and dead letters. */
static void serve_register_metrics(struct serve *s)
{
    struct prom_registry *r = s->registry = prom_registry_new();
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"tributary_records_consumed_total", "Records taken from the input topic",
         offsetof(struct worker_stats, consumed)},
        {"tributary_records_predicted_total", "Predictions acknowledged by the broker",
         offsetof(struct worker_stats, predicted)},
        {"tributary_records_rewound_total", "Records to be read again after a failed delivery",
         offsetof(struct worker_stats, rewound)},
        {"tributary_batches_total", "Micro-batches scored", offsetof(struct worker_stats, batches)},
        {"tributary_model_swaps_total", "New model versions taken into service",
         offsetof(struct worker_stats, models_swapped)},
        {"tributary_models_refused_total",
         "New model versions refused (not loadable, or not fitting the input)",
         offsetof(struct worker_stats, models_refused)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        prom_collector(r, counters[i].name, counters[i].help, PROM_COUNTER, NULL, 0,
                       serve_emit_counter, (char *)&s->stats + counters[i].offset);
    static const struct {
        const char *name, *help;
        size_t offset;
    } state_counters[] = {
        {"tributary_state_checkpointed_total", "Per-key checkpoints acknowledged by the changelog",
         offsetof(struct state_store_stats, checkpointed)},
        {"tributary_state_restored_total", "Changelog entries read back on assignment",
         offsetof(struct state_store_stats, restored)},
        {"tributary_state_spilled_total", "Keys moved to a spill file at state.max_bytes",
         offsetof(struct state_store_stats, spilled)},
        {"tributary_state_unspilled_total", "Spilled keys brought back by their next record",
         offsetof(struct state_store_stats, unspilled)},
        {"tributary_state_replayed_total",
         "Records read again at or below their key's checkpoint: predicted, not learned again",
         offsetof(struct state_store_stats, replayed)},
        {"tributary_online_learned_total", "Records the per-key online models learned from",
         offsetof(struct state_store_stats, learned)},
    };
    for (size_t i = 0; i < sizeof state_counters / sizeof state_counters[0]; i++)
        prom_collector(r, state_counters[i].name, state_counters[i].help, PROM_COUNTER, NULL, 0,
                       serve_emit_counter, (char *)&s->state_stats + state_counters[i].offset);
    const char *reason[] = {"reason"};
    s->metrics.dead_lettered =
        prom_counter(r, "tributary_records_dead_lettered_total",
                     "Dead-letter copies acknowledged, by the class of their reason", reason, 1);
    double bounds[16];
    prom_buckets_exponential(1, 4, 10, bounds);
    s->metrics.batch_records =
        prom_child(prom_histogram(r, "tributary_batch_records", "Records per micro-batch", NULL, 0,
                                  bounds, 10),
                   NULL);
    prom_buckets_exponential(0.0005, 2, 16, bounds);
    s->metrics.batch_seconds =
        prom_child(prom_histogram(r, "tributary_batch_seconds",
                                  "Time of a micro-batch from poll to its settled outputs", NULL, 0,
                                  bounds, 16),
                   NULL);
    prom_buckets_exponential(0.001, 2, 16, bounds);
    s->metrics.latency_seconds =
        prom_child(prom_histogram(r, "tributary_end_to_end_seconds",
                                  "From a record's timestamp to its output's acknowledgement", NULL,
                                  0, bounds, 16),
                   NULL);
    const char *model[] = {"name", "version", "kind"};
    prom_collector(r, "tributary_model_info", "The model being served (value 1)", PROM_GAUGE, model,
                   3, serve_collect_model, s);
    prom_collector(r, "tributary_partitions_assigned", "Input partitions assigned to the workers",
                   PROM_GAUGE, NULL, 0, serve_collect_assigned, s);
    prom_collector(r, "tributary_key_table_keys",
                   "Keys (machines) with per-key state in the workers, spilled ones included",
                   PROM_GAUGE, NULL, 0, serve_collect_table_keys, s);
    prom_collector(r, "tributary_key_table_bytes",
                   "Bytes of per-key state in the workers' memory (online models, windows)",
                   PROM_GAUGE, NULL, 0, serve_collect_table_bytes, s);
    const char *partition[] = {"topic", "partition"};
    prom_collector(r, "tributary_consumer_lag",
                   "Records of the input behind the group's committed offset, per partition "
                   "(librdkafka statistics, every serve.statistics_interval_ms)",
                   PROM_GAUGE, partition, 2, serve_collect_lag, s);
    const char *metric[] = {"metric"};
    prom_collector(r, "tributary_prequential_error",
                   "Error of predictions against the labels their records carried, before "
                   "learning from them",
                   PROM_GAUGE, metric, 1, serve_collect_prequential, s);
    prom_collector(r, "tributary_online_prequential",
                   "Prequential metrics of the per-key online models: each labelled record's "
                   "prediction made before its key's model learned from it",
                   PROM_GAUGE, metric, 1, serve_collect_online, s);
}

struct serve *serve_new(const struct config *cfg, int *status, char *err, size_t errsz)
{
    /* Each worker thread runs its own BLAS calls on its own batch: OpenBLAS's
     * own threads would only compete with the workers for the cores. */
    openblas_set_num_threads(1);
    struct serve *s = mem_calloc(1, sizeof *s);
    s->cfg = cfg;
    *status = serve_load_model(s, err, errsz);
    if (*status != TB_OK)
        goto fail;
    serve_register_metrics(s);
    *status = serve_resolve_kafka(s, err, errsz);
    if (*status != TB_OK)
        goto fail;
    *status = serve_watch_models(s, err, errsz);
    if (*status != TB_OK)
        goto fail;
    s->shared = (struct worker_shared){
        .cfg = cfg,
        .props = s->props,
        .nprops = s->nprops,
        .models = &s->models,
        .stats = &s->stats,
        .state_stats = &s->state_stats,
        .metrics = &s->metrics,
        .stop = &s->stop,
        .joined = &s->joined,
        .committed = &s->committed,
        .nworkers = &s->nworkers,
    };
    return s;

fail:
    serve_destroy(s);
    return NULL;
}

static void *serve_thread_main(void *arg)
{
    struct serve_thread *t = arg;
    t->status = worker_run(t->worker);
    return NULL;
}

int serve_start(struct serve *s, char *err, size_t errsz)
{
    int n = s->cfg->serve.workers;
    int status = TB_OK;
    s->threads = mem_calloc((size_t)n, sizeof *s->threads);
    for (int i = 0; i < n; i++) {
        struct serve_thread *t = &s->threads[i];
        t->worker = worker_new(i + 1, &s->shared, &status, err, errsz);
        s->nthreads = i + 1;
        if (!t->worker)
            goto fail;
        atomic_fetch_add(&s->nworkers, 1);
        if (pthread_create(&t->thread, NULL, serve_thread_main, t) != 0) {
            atomic_fetch_sub(&s->nworkers, 1);
            status = tb_fail(err, errsz, TB_NOMEM, "could not start worker thread %d", i + 1);
            goto fail;
        }
        t->started = 1;
    }
    log_info("serving '%s' -> '%s' (dead letters: '%s') with %d worker%s in group '%s'",
             s->cfg->input.topic, s->cfg->output.topic, s->cfg->output.dead_letter_topic, n,
             n == 1 ? "" : "s", s->cfg->serve.group_id);
    return TB_OK;

fail:
    serve_stop(s);
    serve_wait(s);
    return status;
}

void serve_stop(struct serve *s)
{
    atomic_store(&s->stop, 1);
}

int serve_stopping(const struct serve *s)
{
    return atomic_load(&s->stop);
}

int serve_wait(struct serve *s)
{
    int status = TB_OK;
    for (int i = 0; i < s->nthreads; i++) {
        struct serve_thread *t = &s->threads[i];
        if (!t->started)
            continue;
        pthread_join(t->thread, NULL);
        t->started = 0;
        if (t->status != TB_OK && status == TB_OK)
            status = t->status;
    }
    return status;
}

bool serve_restoring(const struct serve *s)
{
    return atomic_load(&((struct serve *)s)->state_stats.restoring) > 0;
}

bool serve_key(struct serve *s, const char *key, size_t len, struct grouped_key *out)
{
    for (int i = 0; i < s->nthreads; i++)
        if (s->threads[i].worker && worker_key(s->threads[i].worker, key, len, out))
            return true;
    return false;
}

const char *serve_bootstraps(const struct serve *s)
{
    return s->bootstraps;
}

int serve_assigned(const struct serve *s)
{
    int total = 0;
    for (int i = 0; i < s->nthreads; i++)
        total += worker_assigned(s->threads[i].worker);
    return total;
}

void serve_table(struct serve *s, size_t *keys, size_t *bytes)
{
    *keys = *bytes = 0;
    for (int i = 0; i < s->nthreads; i++) {
        size_t k = 0, b = 0;
        if (s->threads[i].worker)
            worker_table(s->threads[i].worker, &k, &b);
        *keys += k;
        *bytes += b;
    }
}

void serve_prequential(struct serve *s, struct metrics_running *into)
{
    for (int i = 0; i < s->nthreads; i++)
        if (s->threads[i].worker)
            worker_prequential(s->threads[i].worker, into);
}

void serve_peek(struct serve *s, const struct pipeline *pipeline, const struct pipeline_rows *rows,
                double *out)
{
    size_t p = pipeline_nfeatures(pipeline), width = pipeline_ninputs(pipeline);
    struct pipeline_state *fresh = NULL;
    for (size_t r = 0; r < rows->nrows; r++) {
        struct pipeline_rows row = {
            .nrows = 1,
            .values = rows->values + r * width,
            .keys = rows->keys ? rows->keys + r : NULL,
            .key_lens = rows->keys ? rows->key_lens + r : NULL,
        };
        bool held = false;
        for (int i = 0; !held && i < s->nthreads; i++)
            held = s->threads[i].worker &&
                   worker_peek(s->threads[i].worker, pipeline, &row, out + r * p);
        if (held)
            continue;
        if (!fresh)
            fresh = pipeline_state_new(pipeline);
        pipeline_peek(pipeline, fresh, &row, out + r * p);
    }
    pipeline_state_destroy(fresh);
}

double serve_online_predict(struct serve *s, const struct live_model *model, const char *key,
                            size_t len, const double *x, double offset)
{
    double out;
    for (int i = 0; i < s->nthreads; i++)
        if (s->threads[i].worker &&
            worker_online_predict(s->threads[i].worker, model->online, key, len, x, offset, &out))
            return out;
    size_t n = online_state_len(model->online);
    double *fresh = mem_alloc(n * sizeof *fresh);
    online_state_init(model->online, fresh);
    out = online_predict(model->online, fresh, x, offset);
    free(fresh);
    return out;
}

int serve_reload(struct serve *s, int *version, bool *swapped, char *err, size_t errsz)
{
    *swapped = false;
    int rc;
    struct artefact *artefact = serve_first_artefact(s->cfg, err, errsz);
    if (!artefact) {
        rc = TB_ARTEFACT;
        goto fail;
    }
    if (strcmp(artefact_name(artefact), s->model_name) != 0) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "the artefact holds model '%s', not '%s'",
                     artefact_name(artefact), s->model_name);
        goto fail;
    }
    *version = (int)artefact_version(artefact);
    char reason[512];
    struct live_model *model = live_model_load(artefact, s->schema, s->cfg, reason, sizeof reason);
    artefact = NULL; /* live_model_load took it */
    if (!model) {
        rc = tb_fail(err, errsz, TB_SCHEMA, "version %d does not fit %s: %s", *version,
                     s->cfg->input.schema, reason);
        goto fail;
    }
    *swapped = live_model_slot_swap(&s->models, model);
    if (*swapped) {
        atomic_fetch_add(&s->stats.models_swapped, 1);
        log_info("model '%s' version %d reloaded: every worker takes it at its next batch",
                 s->model_name, *version);
    }
    return TB_OK;

fail:
    artefact_destroy(artefact);
    atomic_fetch_add(&s->stats.models_refused, 1);
    return rc;
}

struct prom_registry *serve_registry(struct serve *s)
{
    return s->registry;
}

struct live_model *serve_acquire_model(struct serve *s)
{
    unsigned generation;
    return live_model_slot_acquire(&s->models, &generation);
}

const struct state_store_stats *serve_state_stats(const struct serve *s)
{
    return &s->state_stats;
}

const struct worker_stats *serve_stats(const struct serve *s)
{
    return &s->stats;
}

const char *serve_model_name(const struct serve *s)
{
    return s->model_name;
}

int serve_model_version(struct serve *s)
{
    unsigned generation;
    struct live_model *model = live_model_slot_acquire(&s->models, &generation);
    int version = (int)artefact_version(model->artefact);
    live_model_release(model);
    return version;
}

void serve_destroy(struct serve *s)
{
    if (!s)
        return;
    serve_stop(s);
    serve_wait(s);
    for (int i = 0; i < s->nthreads; i++)
        worker_destroy(s->threads[i].worker);
    free(s->threads);
    model_watch_destroy(s->watch);
    if (s->has_models)
        live_model_slot_destroy(&s->models);
    embedded_broker_destroy(s->broker);
    free(s->bootstraps);
    free(s->props);
    free(s->model_name);
    free(s->schema);
    prom_registry_destroy(s->registry);
    free(s);
}
