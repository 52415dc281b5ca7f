/* A stream-scoring worker: one consumer in the group, one producer, one loaded
 * model; it scores each micro-batch with one BLAS call and stores an input
 * offset only once the record's prediction or dead-letter copy is acknowledged. */
#ifndef TRIBUTARY_WORKER_H
#define TRIBUTARY_WORKER_H

#include "connectors/kafka/kafka_conf.h"
#include "connectors/kafka/kafka_source.h"
#include "models/metrics.h"
#include "models/pipeline.h"
#include "service/config/config.h"
#include "service/http/prom.h"
#include "service/stream/live_model.h"
#include "service/stream/state_store.h"

#include <stdatomic.h>
#include <stddef.h>

/* Counters shared by every worker of a service; read from any thread. */
struct worker_stats {
    atomic_ullong consumed;      /* records taken from the input topic */
    atomic_ullong predicted;     /* predictions acknowledged by the broker */
    atomic_ullong dead_lettered; /* dead-letter copies acknowledged */
    atomic_ullong rewound;       /* records to be read again after a failed delivery */
    atomic_ullong batches;
    atomic_ullong models_swapped; /* new model versions taken into service */
    atomic_ullong models_refused; /* new versions that failed to load or to fit the input */
};

/* The service's Prometheus metrics that workers update as they go. */
struct worker_metrics {
    struct prom_metric *batch_records;   /* histogram: records per micro-batch */
    struct prom_metric *batch_seconds;   /* histogram: a batch from poll to settled outputs */
    struct prom_metric *latency_seconds; /* histogram: record timestamp to acknowledged output */
    struct prom_family *dead_lettered;   /* counter, label "reason": acknowledged dead letters */
};

/* What every worker of a service shares; all of it outlives the workers. */
struct worker_shared {
    const struct config *cfg;
    const struct kafka_prop *props; /* kafka.* with the bootstrap servers resolved */
    size_t nprops;
    struct live_model_slot *models; /* the model to serve; workers take a new one between batches */
    struct worker_stats *stats;
    struct state_store_stats *state_stats;
    const struct worker_metrics *metrics;
    atomic_int *stop;      /* set to ask every worker to drain and leave */
    atomic_int *joined;    /* workers that have had their first assignment */
    atomic_int *committed; /* workers that made their final commit */
    atomic_int *nworkers;  /* workers started */
};

struct worker;

/* Creates worker number `id` with the current model of shared->models, and joins
 * the consumer group. Returns the worker (free with worker_destroy), or NULL
 * with *status (TB_CONFIG or TB_KAFKA) and err. */
struct worker *worker_new(int id, const struct worker_shared *shared, int *status, char *err,
                          size_t errsz);

/* Reads nothing until every worker of the service has joined the group (or
 * 15 s have passed), then polls micro-batches and scores them until
 * *shared->stop is set, or until the consumer fails fatally, in which case it
 * sets *shared->stop itself so that the whole service stops and can be
 * restarted from the committed offsets. On the way out it commits what was
 * stored, waits (up to 5 s) until every worker of the service has done the
 * same, and only then leaves the group: the first worker to leave starts a
 * rebalance, during which the others' commits would be refused. Returns TB_OK
 * or TB_KAFKA. */
int worker_run(struct worker *worker);

/* Partitions currently assigned to this worker. */
int worker_assigned(const struct worker *worker);

/* The keys the worker's per-key state holds, and its bytes in memory. Thread-safe. */
void worker_table(struct worker *worker, size_t *keys, size_t *bytes);

/* When the worker's window history holds the key of the one row, computes the row's features
 * with pipeline as if the record joined that history (pipeline_peek: the history is left as it
 * is) and returns true; otherwise returns false and writes nothing. Thread-safe. */
bool worker_peek(struct worker *worker, const struct pipeline *pipeline,
                 const struct pipeline_rows *row, double *out);

/* The consumer lag of the worker's partitions, from the latest librdkafka statistics
 * (kafka_source_lag: the count, which may exceed cap). Thread-safe. */
size_t worker_lag(struct worker *worker, struct kafka_source_partition_lag *out, size_t cap);

/* Adds to *into the prequential error of the worker's predictions so far: each prediction of
 * a record that carried a label, against that label, the prediction made before the record's
 * label could be learned from (regression models; classifiers add nothing yet). Thread-safe. */
void worker_prequential(struct worker *worker, struct metrics_running *into);

/* The online model's prediction for one row of the key (state_store_predict); false when the
 * worker does not hold the key. Thread-safe. */
bool worker_online_predict(struct worker *worker, const struct online_model *online,
                           const char *key, size_t len, const double *x, double offset,
                           double *out);

/* Copies what the worker knows of one key (state_store_key); false when it holds no such key.
 * Thread-safe. */
bool worker_key(struct worker *worker, const char *key, size_t len, struct grouped_key *out);

/* Adds the worker's online models' prequential metrics (state_store_prequential). Thread-safe. */
void worker_online_prequential(struct worker *worker, struct metrics_running *regression,
                               struct metrics_running_class *classification);

/* Frees the worker; accepts NULL. */
void worker_destroy(struct worker *worker);

#endif
