/* Service lifecycle: model and schema checks, embedded broker, worker threads. */
#include "service/serve.h"

#include "connectors/embedded_broker.h"
#include "connectors/kafka_conf.h"
#include "models/artefact.h"
#include "service/error.h"
#include "service/log.h"
#include "service/mem.h"
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
    char *model_name;
    int model_version;
    struct avro_plan *plan;
    struct worker_stats stats;
    char **features; /* the model's, as the plan decodes them */
    size_t nfeatures;
    atomic_int stop;
    atomic_int joined;
    atomic_int committed;
    atomic_int nworkers;
    struct worker_shared shared;
    struct serve_thread *threads;
    int nthreads;
};

/* Checks the artefact once before any worker loads it, and builds the decode
 * plan for its features (plus the configured label). */
static int serve_check_model(struct serve *s, char *err, size_t errsz)
{
    const struct config *cfg = s->cfg;
    if (cfg->serve.model[0] == '\0')
        return tb_fail(err, errsz, TB_CONFIG, "serve.model: no model artefact configured");
    int status = TB_OK;
    char *schema = NULL;
    const char **fields = NULL;
    struct artefact *model = artefact_read(cfg->serve.model, err, errsz);
    if (!model)
        return TB_ARTEFACT;

    size_t nfeatures = artefact_nfeatures(model);
    if (cfg->input.nfeatures > 0) {
        int same = cfg->input.nfeatures == nfeatures;
        for (size_t i = 0; same && i < nfeatures; i++)
            same = strcmp(cfg->input.features[i], artefact_feature(model, i)) == 0;
        if (!same) {
            status = tb_fail(err, errsz, TB_CONFIG,
                             "input.features differ from the features model '%s' was trained on "
                             "(%zu features, first '%s')",
                             cfg->serve.model, nfeatures, artefact_feature(model, 0));
            goto done;
        }
    }
    size_t nfields = nfeatures + (cfg->input.label[0] ? 1 : 0);
    fields = mem_calloc(nfields, sizeof *fields);
    for (size_t i = 0; i < nfeatures; i++)
        fields[i] = artefact_feature(model, i);
    if (cfg->input.label[0])
        fields[nfeatures] = cfg->input.label;
    schema = textfile_read(cfg->input.schema, NULL, err, errsz);
    if (!schema) {
        status = TB_IO;
        goto done;
    }
    char reason[512];
    s->plan = avro_plan_new(schema, fields, nfields, nfeatures, reason, sizeof reason);
    if (!s->plan) {
        status = tb_fail(err, errsz, TB_SCHEMA, "%s: %s", cfg->input.schema, reason);
        goto done;
    }
    char fingerprint[17];
    avro_plan_fingerprint(s->plan, fingerprint);
    const char *trained_on = artefact_input_schema_fingerprint(model);
    if (trained_on[0] && strcmp(trained_on, fingerprint) != 0)
        log_warn("model was trained on input schema %s; %s is %s", trained_on, cfg->input.schema,
                 fingerprint);
    s->features = mem_calloc(nfeatures, sizeof *s->features);
    for (size_t i = 0; i < nfeatures; i++)
        s->features[i] = mem_strdup(artefact_feature(model, i));
    s->nfeatures = nfeatures;
    s->model_name = mem_strdup(artefact_name(model));
    s->model_version = artefact_version(model);
    log_info("model '%s' version %d: %s over %zu features", s->model_name, s->model_version,
             artefact_model_kind(model), nfeatures);

done:
    free(schema);
    free(fields);
    artefact_destroy(model);
    return status;
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
    int status = serve_check_model(s, err, errsz);
    if (status == TB_OK)
        status = serve_resolve_kafka(s, err, errsz);
    if (status != TB_OK) {
        serve_destroy(s);
        *out = NULL;
        return status;
    }
    s->shared = (struct worker_shared){
        .cfg = cfg,
        .props = s->props,
        .nprops = s->nprops,
        .plan = s->plan,
        .features = (const char *const *)s->features,
        .nfeatures = s->nfeatures,
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

int serve_model_version(const struct serve *s)
{
    return s->model_version;
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
    avro_plan_destroy(s->plan);
    embedded_broker_destroy(s->broker);
    free(s->bootstraps);
    free(s->props);
    for (size_t i = 0; i < s->nfeatures; i++)
        free(s->features[i]);
    free(s->features);
    free(s->model_name);
    free(s);
}
