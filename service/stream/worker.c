/* Stream-scoring worker: decode, predict, produce, acknowledge, store. */
#include "service/stream/worker.h"

#include "connectors/avro/prediction.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/stream/state_store.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Delivery bookkeeping of one partition within a batch. */
struct worker_partition {
    int32_t partition;
    int64_t last_ok;      /* highest offset with every output before it acknowledged */
    int64_t first_failed; /* lowest offset whose output failed, or -1 */
    int read_past_fence;  /* a record after the partition's fence came (the seek is late) */
};

/* A partition rewound to `offset` after a failed output. Until the consumer
 * delivers that offset again, records after it are not stored: a seek is
 * asynchronous and may not have taken effect yet, or may have been lost. */
struct worker_fence {
    int32_t partition;
    int64_t offset;
};

struct worker {
    int id;
    const struct worker_shared *shared;
    struct kafka_source *source;
    struct kafka_sink *sink;
    rd_kafka_topic_t *output_topic;
    rd_kafka_topic_t *dead_letter_topic;
    struct live_model *model;  /* this worker's reference */
    unsigned generation;       /* of the slot, when model was taken */
    pthread_mutex_t lock;      /* guards store and prequential against metric readers */
    struct state_store *store; /* per-key windows and online models */
    struct metrics_running prequential;
    size_t ninputs;   /* pipeline inputs per record */
    size_t nfields;   /* the plan's columns: the inputs, then the label if any */
    size_t nfeatures; /* pipeline outputs */
    size_t width;     /* model outputs per record */

    /* Per-batch buffers, grown to the largest batch (for the current model) and reused. */
    size_t cap;
    double *row;    /* one decoded record */
    double *inputs; /* row-major, one row of pipeline inputs per decodable record */
    const char **keys;
    size_t *key_lens;
    struct state_store_row *rows; /* key, partition and offset of each decoded record */
    struct grouped_key **grouped; /* its key's entry in the store */
    unsigned char *replay;        /* whether its key has learned from it already */
    double *offsets;              /* what the online model starts from: the registry model's */
    double *online;               /* the online model's prediction */
    double *features;             /* the pipeline's output for those rows */
    double *outputs;              /* the model's: values or class probabilities */
    double *decided;              /* the prediction: a value, or the most probable class */
    double *labels;
    size_t *decoded;       /* batch index of each decoded record */
    const char **reasons;  /* per batch index: the class of its dead letter's reason */
    unsigned char *failed; /* per batch index: its output was refused */
    struct worker_partition *partitions;
    size_t npartitions, partitions_cap;
    struct avro_wire_buf encoded;
    int backoff_ms;              /* pause after a batch with failed outputs; 0 after a clean one */
    struct worker_fence *fences; /* persists across batches; offset -1 is unused */
    size_t nfences, fences_cap;
};

static void worker_on_delivery(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status)
{
    struct worker *w = opaque;
    if (tag >= STATE_STORE_TAG) {
        state_store_on_delivery(w->store, tag, status != RD_KAFKA_RESP_ERR_NO_ERROR);
        if (status != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("checkpoint refused: %s", rd_kafka_err2str(status));
        return;
    }
    if (status != RD_KAFKA_RESP_ERR_NO_ERROR) {
        w->failed[tag] = 1;
        log_warn("delivery failed: %s", rd_kafka_err2str(status));
    }
}

static void worker_reserve(struct worker *w, size_t n)
{
    if (n <= w->cap)
        return;
    w->cap = n;
    w->inputs = mem_realloc(w->inputs, n * (w->ninputs ? w->ninputs : 1) * sizeof *w->inputs);
    w->keys = mem_realloc(w->keys, n * sizeof *w->keys);
    w->key_lens = mem_realloc(w->key_lens, n * sizeof *w->key_lens);
    w->rows = mem_realloc(w->rows, n * sizeof *w->rows);
    w->grouped = mem_realloc(w->grouped, n * sizeof *w->grouped);
    w->replay = mem_realloc(w->replay, n);
    w->offsets = mem_realloc(w->offsets, n * sizeof *w->offsets);
    w->online = mem_realloc(w->online, n * sizeof *w->online);
    w->features = mem_realloc(w->features, n * w->nfeatures * sizeof *w->features);
    w->outputs = mem_realloc(w->outputs, n * w->width * sizeof *w->outputs);
    w->decided = mem_realloc(w->decided, n * sizeof *w->decided);
    w->labels = mem_realloc(w->labels, n * sizeof *w->labels);
    w->decoded = mem_realloc(w->decoded, n * sizeof *w->decoded);
    w->reasons = mem_realloc(w->reasons, n * sizeof *w->reasons);
    w->failed = mem_realloc(w->failed, n);
}

/* A reason's class, for the dead-letter metric's label: reasons carry byte offsets and field
 * names, too many distinct values for a label. */
static const char *worker_reason_class(const char *reason)
{
    static const struct {
        const char *needle, *label;
    } classes[] = {
        {"empty record", "empty"},      {"truncated", "truncated"}, {"is null", "null"},
        {"is NaN", "not_finite"},       {"infinite", "not_finite"}, {"union index", "bad_union"},
        {"trailing", "trailing_bytes"},
    };
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strstr(reason, classes[i].needle))
            return classes[i].label;
    return "malformed";
}

/* Queues the dead-letter copy of msg: its original key and bytes, with the
 * reason and the record's origin in headers. */
static void worker_dead_letter(struct worker *w, const rd_kafka_message_t *msg, size_t tag,
                               const char *reason)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%" PRId32, msg->partition);
    snprintf(offset, sizeof offset, "%" PRId64, msg->offset);
    rd_kafka_headers_t *headers = rd_kafka_headers_new(4);
    rd_kafka_header_add(headers, "tributary.error", -1, reason, -1);
    rd_kafka_header_add(headers, "tributary.source.topic", -1, rd_kafka_topic_name(msg->rkt), -1);
    rd_kafka_header_add(headers, "tributary.source.partition", -1, partition, -1);
    rd_kafka_header_add(headers, "tributary.source.offset", -1, offset, -1);
    char err[256];
    if (kafka_sink_produce(w->sink, w->dead_letter_topic, msg->key, msg->key_len, msg->payload,
                           msg->len, headers, rd_kafka_message_timestamp(msg, NULL), tag, err,
                           sizeof err) != TB_OK) {
        w->failed[tag] = 1;
        log_error("dead letter for %d@%" PRId64 ": %s", msg->partition, msg->offset, err);
    }
}

/* Queues the prediction of decoded record j, which is msg. */
static void worker_predict_out(struct worker *w, const rd_kafka_message_t *msg, size_t tag,
                               size_t j)
{
    const struct artefact *a = w->model->artefact;
    const struct linear_model *m = artefact_model(a);
    struct prediction p = {
        .key = msg->key ? msg->key : "",
        .key_len = msg->key ? msg->key_len : 0,
        .event_time_ms = rd_kafka_message_timestamp(msg, NULL),
        .value = w->decided[j],
        .label = w->labels[j],
        .model = artefact_name(a),
        .model_len = strlen(artefact_name(a)),
        .model_version = artefact_version(a),
        .source_partition = msg->partition,
        .source_offset = msg->offset,
        .probabilities = m->nclasses ? &w->outputs[j * w->width] : NULL,
        .nprobabilities = m->nclasses,
    };
    avro_wire_buf_reset(&w->encoded);
    prediction_encode(&p, &w->encoded);
    rd_kafka_headers_t *headers = rd_kafka_headers_new(2);
    rd_kafka_header_add(headers, "tributary.model", -1, p.model, (ssize_t)p.model_len);
    rd_kafka_header_add(headers, "tributary.model.version", -1, w->model->version, -1);
    char err[256];
    if (kafka_sink_produce(w->sink, w->output_topic, msg->key, msg->key_len, w->encoded.data,
                           w->encoded.len, headers, p.event_time_ms, tag, err,
                           sizeof err) != TB_OK) {
        w->failed[tag] = 1;
        log_error("prediction for %d@%" PRId64 ": %s", msg->partition, msg->offset, err);
    }
}

static struct worker_partition *worker_partition(struct worker *w, int32_t partition)
{
    for (size_t i = 0; i < w->npartitions; i++) {
        if (w->partitions[i].partition == partition)
            return &w->partitions[i];
    }
    mem_grow((void **)&w->partitions, &w->partitions_cap, w->npartitions + 1,
             sizeof *w->partitions);
    struct worker_partition *p = &w->partitions[w->npartitions++];
    p->partition = partition;
    p->last_ok = -1;
    p->first_failed = -1;
    p->read_past_fence = 0;
    return p;
}

static struct worker_fence *worker_fence(struct worker *w, int32_t partition)
{
    for (size_t i = 0; i < w->nfences; i++) {
        if (w->fences[i].partition == partition)
            return &w->fences[i];
    }
    mem_grow((void **)&w->fences, &w->fences_cap, w->nfences + 1, sizeof *w->fences);
    w->fences[w->nfences] = (struct worker_fence){partition, -1};
    return &w->fences[w->nfences++];
}

/* Seeks back to a partition's fence; a failure is only logged, because the
 * fence keeps what was read past it from being stored, and the seek is tried
 * again with the next batch that reads past it. */
static void worker_rewind(struct worker *w, int32_t partition, int64_t offset)
{
    char err[256];
    if (kafka_source_rewind(w->source, partition, offset, err, sizeof err) != TB_OK)
        log_warn("%s; will try again", err);
}

/* After every output of the batch has a delivery report: stores, per
 * partition, the offset up to which all outputs were acknowledged, and fences
 * and rewinds a partition at its first failed record so that it is processed
 * again. Returns the number of partitions rewound. */
static size_t worker_settle(struct worker *w, rd_kafka_message_t **msgs, size_t n)
{
    w->npartitions = 0;
    for (size_t i = 0; i < n; i++) {
        struct worker_partition *p = worker_partition(w, msgs[i]->partition);
        struct worker_fence *fence = worker_fence(w, msgs[i]->partition);
        int64_t offset = msgs[i]->offset;
        if (fence->offset >= 0) {
            if (offset == fence->offset) {
                fence->offset = -1; /* the re-read has come round */
            } else if (offset > fence->offset) {
                p->read_past_fence = 1;
                continue;
            }
        }
        if (p->first_failed >= 0)
            continue;
        if (w->failed[i])
            p->first_failed = offset;
        else
            p->last_ok = offset;
    }
    size_t rewound = 0;
    int stopping = atomic_load(w->shared->stop);
    for (size_t i = 0; i < w->npartitions; i++) {
        struct worker_partition *p = &w->partitions[i];
        struct worker_fence *fence = worker_fence(w, p->partition);
        if (p->last_ok >= 0)
            state_store_defer(w->store, p->partition, p->last_ok);
        /* When stopping, the unstored records are read again after a restart. */
        if (stopping)
            continue;
        if (p->first_failed >= 0) {
            log_warn("partition %d: an output failed at offset %" PRId64 "; reading it again",
                     p->partition, p->first_failed);
            fence->offset = p->first_failed;
            worker_rewind(w, p->partition, fence->offset);
            rewound++;
        } else if (p->read_past_fence && fence->offset >= 0) {
            worker_rewind(w, p->partition, fence->offset);
            rewound++;
        }
    }
    return rewound;
}

/* A revoked partition's fence goes: its next owner reads from the committed
 * offset, which is at or before the fence, and may commit past it. */
static void worker_on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *revoked, int lost)
{
    struct worker *w = opaque;
    for (int i = 0; i < revoked->cnt; i++)
        worker_fence(w, revoked->elems[i].partition)->offset = -1;
    if (!w->store)
        return;
    pthread_mutex_lock(&w->lock);
    state_store_revoke(w->store, revoked, lost);
    pthread_mutex_unlock(&w->lock);
}

/* Newly assigned partitions' per-key state comes back from the changelog before their first
 * record is processed. */
static void worker_on_assign(void *opaque, const rd_kafka_topic_partition_list_t *assigned)
{
    struct worker *w = opaque;
    if (w->store)
        state_store_assign(w->store, assigned); /* takes the lock itself, entry by entry */
}

/* Paces retries of failed outputs (a broker refusing, or a record too large
 * for the topic): doubles from 100 ms to 10 s while batches keep failing. */
static void worker_back_off(struct worker *w, size_t rewound)
{
    if (rewound == 0) {
        w->backoff_ms = 0;
        return;
    }
    w->backoff_ms = w->backoff_ms ? (w->backoff_ms * 2 > 10000 ? 10000 : w->backoff_ms * 2) : 100;
    for (int slept = 0; slept < w->backoff_ms && !atomic_load(w->shared->stop); slept += 20)
        usleep(20000);
}

/* Takes the slot's current model: the dimensions and buffers follow it, and the per-key state
 * carries over as far as the new version allows (state_store_adopt). */
static void worker_take_model(struct worker *w)
{
    struct live_model *model = live_model_slot_acquire(w->shared->models, &w->generation);
    const struct pipeline *pipeline = artefact_pipeline(model->artefact);
    struct live_model *old = w->model;
    w->model = model;
    state_store_adopt(w->store, pipeline, model->online);
    w->ninputs = pipeline_ninputs(pipeline);
    w->nfields = avro_plan_nfields(model->plan);
    w->nfeatures = pipeline_nfeatures(pipeline);
    w->width = linear_width(artefact_model(model->artefact));
    w->row = mem_realloc(w->row, w->nfields * sizeof *w->row);
    w->cap = 0; /* the per-batch buffers are sized again for this model */
    if (old)
        log_info("now serving %s version %s", artefact_name(model->artefact), model->version);
    live_model_release(old);
}

/* Updates the metrics with a settled batch: its size and time, the latency of each output
 * acknowledged, dead letters by reason, and the prequential error of labelled records. */
static void worker_measure(struct worker *w, rd_kafka_message_t **msgs, size_t n, size_t ndecoded,
                           int64_t started_ms)
{
    const struct worker_metrics *m = w->shared->metrics;
    int64_t now_ms = clock_wall_ms();
    /* An anomaly score is no estimate of the label. */
    bool regression = artefact_model(w->model->artefact)->kind == LINEAR_RIDGE &&
                      !(w->model->online && online_model_kind(w->model->online) == ONLINE_ANOMALY);
    pthread_mutex_lock(&w->lock);
    for (size_t j = 0; j < ndecoded; j++)
        if (regression && !w->failed[w->decoded[j]] && isfinite(w->labels[j]))
            metrics_running_add(&w->prequential, w->labels[j], w->decided[j]);
    pthread_mutex_unlock(&w->lock);
    if (!m)
        return;
    prom_observe(m->batch_records, (double)n);
    prom_observe(m->batch_seconds, (double)(clock_monotonic_ms() - started_ms) / 1000.0);
    for (size_t i = 0; i < n; i++) {
        if (w->failed[i])
            continue;
        if (w->reasons[i]) {
            prom_inc(prom_child(m->dead_lettered, &w->reasons[i]));
            continue;
        }
        int64_t stamp = rd_kafka_message_timestamp(msgs[i], NULL);
        if (stamp > 0)
            prom_observe(m->latency_seconds, (double)(now_ms - stamp) / 1000.0);
    }
}

/* The per-key online model's turn, for the n decoded records of the batch: it starts from the
 * registry model's output (with online.residual), predicts, learns from new records, and its
 * prediction replaces the registry model's. Without an online model only the keys' offsets. */
static void worker_learn(struct worker *w, size_t n)
{
    const struct live_model *model = w->model;
    const struct linear_model *m = artefact_model(model->artefact);
    for (size_t j = 0; j < n; j++)
        w->offsets[j] = live_model_offset(model, &w->outputs[j * w->width]);
    double positive = m->nclasses == 2 ? m->classes[1] : 1.0;
    state_store_learn(w->store, w->grouped, w->replay, w->features, w->labels, w->offsets, positive,
                      n, w->online);
    if (!model->online)
        return;
    for (size_t j = 0; j < n; j++)
        live_model_apply_online(model, w->online[j], &w->outputs[j * w->width], &w->decided[j]);
}

static void worker_on_batch(void *opaque, rd_kafka_message_t **msgs, size_t n)
{
    struct worker *w = opaque;
    struct worker_stats *stats = w->shared->stats;
    int64_t started_ms = clock_monotonic_ms();
    pthread_mutex_lock(&w->lock);
    if (live_model_slot_changed(w->shared->models, w->generation))
        worker_take_model(w);
    size_t q = w->ninputs;
    worker_reserve(w, n);
    memset(w->failed, 0, n);

    size_t ndecoded = 0, ndead = 0;
    for (size_t i = 0; i < n; i++) {
        char reason[256];
        const rd_kafka_message_t *msg = msgs[i];
        int rc = msg->payload ? avro_plan_decode(w->model->plan, msg->payload, msg->len, w->row,
                                                 reason, sizeof reason)
                              : tb_fail(reason, sizeof reason, TB_PARSE, "empty record value");
        if (rc != TB_OK) {
            worker_dead_letter(w, msg, i, reason);
            w->reasons[i] = worker_reason_class(reason);
            ndead++;
            continue;
        }
        w->reasons[i] = NULL;
        memcpy(&w->inputs[ndecoded * q], w->row, q * sizeof *w->row);
        w->labels[ndecoded] = w->nfields > q ? w->row[q] : NAN;
        w->keys[ndecoded] = msg->key ? msg->key : "";
        w->key_lens[ndecoded] = msg->key ? msg->key_len : 0;
        w->rows[ndecoded] = (struct state_store_row){w->keys[ndecoded], w->key_lens[ndecoded],
                                                     msg->partition, msg->offset};
        w->decoded[ndecoded++] = i;
    }
    const struct artefact *a = w->model->artefact;
    struct pipeline_rows rows = {
        .nrows = ndecoded, .values = w->inputs, .keys = w->keys, .key_lens = w->key_lens};
    state_store_begin(w->store, w->rows, ndecoded, w->grouped, w->replay);
    state_store_features(w->store, &rows, w->replay, w->features);
    pthread_mutex_unlock(&w->lock);
    linear_predict(artefact_model(a), w->features, ndecoded, w->outputs);
    linear_decide(artefact_model(a), w->outputs, ndecoded, w->decided);
    pthread_mutex_lock(&w->lock);
    worker_learn(w, ndecoded);
    pthread_mutex_unlock(&w->lock);
    for (size_t j = 0; j < ndecoded; j++) {
        size_t i = w->decoded[j];
        worker_predict_out(w, msgs[i], i, j);
    }
    kafka_sink_wait(w->sink, -1);
    size_t rewound = worker_settle(w, msgs, n);

    size_t nfailed = 0, nfailed_predictions = 0;
    for (size_t i = 0; i < n; i++)
        nfailed += w->failed[i];
    for (size_t j = 0; j < ndecoded; j++)
        nfailed_predictions += w->failed[w->decoded[j]];
    atomic_fetch_add(&stats->consumed, n);
    atomic_fetch_add(&stats->batches, 1);
    atomic_fetch_add(&stats->rewound, nfailed);
    atomic_fetch_add(&stats->predicted, ndecoded - nfailed_predictions);
    atomic_fetch_add(&stats->dead_lettered, ndead - (nfailed - nfailed_predictions));
    worker_measure(w, msgs, n, ndecoded, started_ms);
    pthread_mutex_lock(&w->lock);
    state_store_end(w->store, false);
    pthread_mutex_unlock(&w->lock);
    worker_back_off(w, rewound);
}

struct worker *worker_new(int id, const struct worker_shared *shared, int *status, char *err,
                          size_t errsz)
{
    const struct config *cfg = shared->cfg;
    struct worker *w = mem_calloc(1, sizeof *w);
    w->id = id;
    w->shared = shared;
    pthread_mutex_init(&w->lock, NULL);

    *status = TB_KAFKA; /* the properties were checked by serve: what fails now is Kafka */
    struct kafka_sink_options sink_options = {
        .on_delivery = worker_on_delivery,
        .opaque = w,
        .stop = shared->stop,
        .drain_timeout_ms = cfg->serve.drain_timeout_ms,
    };
    w->sink = kafka_sink_new(shared->props, shared->nprops, &sink_options, err, errsz);
    if (!w->sink)
        goto fail;
    w->output_topic = kafka_sink_topic(w->sink, cfg->output.topic, err, errsz);
    w->dead_letter_topic = kafka_sink_topic(w->sink, cfg->output.dead_letter_topic, err, errsz);
    if (!w->output_topic || !w->dead_letter_topic)
        goto fail;

    struct kafka_source_options options = {
        .group_id = cfg->serve.group_id,
        .topic = cfg->input.topic,
        .commit_interval_ms = cfg->serve.commit_interval_ms,
        .statistics_interval_ms = cfg->serve.statistics_interval_ms,
        .on_batch = worker_on_batch,
        .on_revoke = worker_on_revoke,
        .on_assign = worker_on_assign,
        .opaque = w,
    };
    w->source = kafka_source_new(shared->props, shared->nprops, &options, err, errsz);
    if (!w->source)
        goto fail;
    struct state_store_options store_options = {
        .cfg = cfg,
        .props = shared->props,
        .nprops = shared->nprops,
        .sink = w->sink,
        .source = w->source,
        .stats = shared->state_stats,
        .stop = shared->stop,
        .lock = &w->lock,
    };
    w->store = state_store_new(&store_options, err, errsz);
    if (!w->store)
        goto fail;
    worker_take_model(w);
    *status = TB_OK;
    return w;

fail:
    worker_destroy(w);
    return NULL;
}

int worker_run(struct worker *w)
{
    char name[24];
    snprintf(name, sizeof name, "worker-%d", w->id);
    log_set_thread_name(name);
    const struct config *cfg = w->shared->cfg;
    int status = TB_OK;
    int joined = 0, held = 1;
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    kafka_source_hold(w->source, 1);
    while (!atomic_load(w->shared->stop)) {
        if (held) {
            if (!joined && kafka_source_joined(w->source)) {
                joined = 1;
                atomic_fetch_add(w->shared->joined, 1);
            }
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (atomic_load(w->shared->joined) >= cfg->serve.workers ||
                now.tv_sec - started.tv_sec >= 15) {
                kafka_source_hold(w->source, 0);
                held = 0;
            }
        }
        int n = kafka_source_poll_batch(w->source, (size_t)cfg->serve.batch_max_records,
                                        cfg->serve.batch_max_wait_ms);
        if (n < 0) {
            log_error("consumer failed; the service stops");
            atomic_store(w->shared->stop, 1);
            status = TB_KAFKA;
            break;
        }
    }
    pthread_mutex_lock(&w->lock);
    if (!state_store_end(w->store, true))
        log_warn("the final checkpoint failed: the records since the last one will be read again");
    pthread_mutex_unlock(&w->lock);
    char err[256];
    if (kafka_source_commit(w->source, 3000, err, sizeof err) != TB_OK)
        log_warn("%s", err);
    atomic_fetch_add(w->shared->committed, 1);
    for (int waited_ms = 0;
         atomic_load(w->shared->committed) < atomic_load(w->shared->nworkers) && waited_ms < 5000;
         waited_ms += 10)
        usleep(10000);
    kafka_source_close(w->source);
    log_info("left the group");
    return status;
}

void worker_table(struct worker *w, size_t *keys, size_t *bytes)
{
    pthread_mutex_lock(&w->lock);
    state_store_size(w->store, keys, bytes);
    pthread_mutex_unlock(&w->lock);
}

bool worker_peek(struct worker *w, const struct pipeline *pipeline, const struct pipeline_rows *row,
                 double *out)
{
    pthread_mutex_lock(&w->lock);
    bool held = row->keys && state_store_peek(w->store, pipeline, row, out);
    pthread_mutex_unlock(&w->lock);
    return held;
}

size_t worker_lag(struct worker *w, struct kafka_source_partition_lag *out, size_t cap)
{
    return w->source ? kafka_source_lag(w->source, out, cap) : 0;
}

void worker_prequential(struct worker *w, struct metrics_running *into)
{
    pthread_mutex_lock(&w->lock);
    metrics_running_merge(into, &w->prequential);
    pthread_mutex_unlock(&w->lock);
}

bool worker_online_predict(struct worker *w, const struct online_model *online, const char *key,
                           size_t len, const double *x, double offset, double *out)
{
    pthread_mutex_lock(&w->lock);
    bool held = state_store_predict(w->store, online, key, len, x, offset, out);
    pthread_mutex_unlock(&w->lock);
    return held;
}

bool worker_key(struct worker *w, const char *key, size_t len, struct grouped_key *out)
{
    pthread_mutex_lock(&w->lock);
    bool held = state_store_key(w->store, key, len, out);
    pthread_mutex_unlock(&w->lock);
    return held;
}

void worker_online_prequential(struct worker *w, struct metrics_running *regression,
                               struct metrics_running_class *classification)
{
    pthread_mutex_lock(&w->lock);
    state_store_prequential(w->store, regression, classification);
    pthread_mutex_unlock(&w->lock);
}

int worker_assigned(const struct worker *w)
{
    return w->source ? kafka_source_assigned(w->source) : 0;
}

void worker_destroy(struct worker *w)
{
    if (!w)
        return;
    /* The source and the sink may still call back into the store while they close. */
    kafka_source_destroy(w->source);
    kafka_sink_destroy(w->sink);
    state_store_destroy(w->store);
    live_model_release(w->model);
    avro_wire_buf_free(&w->encoded);
    pthread_mutex_destroy(&w->lock);
    free(w->fences);
    free(w->partitions);
    free(w->failed);
    free(w->reasons);
    free(w->decoded);
    free(w->labels);
    free(w->decided);
    free(w->outputs);
    free(w->features);
    free(w->online);
    free(w->offsets);
    free(w->replay);
    free(w->grouped);
    free(w->rows);
    free(w->key_lens);
    free(w->keys);
    free(w->inputs);
    free(w->row);
    free(w);
}
