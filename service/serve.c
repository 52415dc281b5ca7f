/* Service lifecycle: model and schema checks, model watch and hot swap, embedded broker, worker
 * threads. */
#include "service/serve.h"

#include "connectors/embedded_broker.h"
#include "connectors/kafka_conf.h"
#include "models/artefact.h"
#include "service/error.h"
#include "service/live_model.h"
#include "service/log.h"
#include "service/mem.h"
#include "service/model_watch.h"
#include "service/registry.h"
#include "service/textfile.h"

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
    struct live_model *model =
        live_model_load(artefact, s->schema, cfg->input.label, reason, sizeof reason);
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
    struct live_model *model =
        live_model_load(artefact, s->schema, s->cfg->input.label, reason, sizeof reason);
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
        return TB_OK;
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
    s->bootstraps = mem_strdup(embedded_broker_bootstraps(s->broker));
    s->props[s->nprops].key = "bootstrap.servers";
    s->props[s->nprops].value = s->bootstraps;
    s->nprops++;
    log_info("no kafka.bootstrap.servers: embedded broker (%d brokers, %d partitions per topic) "
             "at %s",
             cfg->broker.brokers, cfg->broker.partitions, s->bootstraps);
    return TB_OK;
}

int serve_new(const struct config *cfg, struct serve **out, char *err, size_t errsz)
{
    /* Each worker thread runs its own BLAS calls on its own batch: OpenBLAS's
     * own threads would only compete with the workers for the cores. */
    openblas_set_num_threads(1);
    struct serve *s = mem_calloc(1, sizeof *s);
    s->cfg = cfg;
    int status = serve_load_model(s, err, errsz);
    if (status == TB_OK)
        status = serve_resolve_kafka(s, err, errsz);
    if (status == TB_OK)
        status = serve_watch_models(s, err, errsz);
    if (status != TB_OK) {
        serve_destroy(s);
        *out = NULL;
        return status;
    }
    s->shared = (struct worker_shared){
        .cfg = cfg,
        .props = s->props,
        .nprops = s->nprops,
        .models = &s->models,
        .stats = &s->stats,
        .stop = &s->stop,
        .joined = &s->joined,
        .committed = &s->committed,
        .nworkers = &s->nworkers,
    };
    *out = s;
    return TB_OK;
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
    free(s);
}
