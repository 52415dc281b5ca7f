/* A worker's per-key state: for every machine (record key) of its partitions, the window
 * history and the online model, learned record by record, checkpointed to the changelog topic
 * with the input offset each key's state covers, restored from it when partitions are
 * assigned, and moved to a spill file when it outgrows its memory limit.
 *
 * Exactness. Input offsets are stored for commit only after a checkpoint that covers every record
 * learned before them has been acknowledged by the broker (state_store_defer holds them until
 * then), and each key's checkpoint carries the offset of the last record it learned. A record
 * read again after a crash or a rebalance (at-least-once delivery) whose offset is at or below
 * its key's checkpointed offset is a replay: it gets a prediction from the key's current state
 * and teaches nothing. So state after any number of crashes equals the state of one run that
 * read every record once, provided a key's records all come from one partition (keyed
 * partitioning). Without a changelog topic none of this happens: offsets are stored as soon as
 * outputs are acknowledged and state lives only in memory.
 *
 * Memory limit (state.max_bytes, per worker). After each batch, while the bytes of the table and
 * the window history exceed it, the least recently seen machine's state (model, window, metrics:
 * its changelog encoding) is appended to the worker's spill file and dropped from memory; the key
 * keeps a small entry saying where it went, and its next record brings it back first. The spill
 * file is anonymous (unlinked at once) and lives as long as the worker. A key that is dirty when
 * it is spilled is checkpointed from the spill file.
 *
 * One thread at a time (the worker's); the counters may be read from any thread. */
#ifndef TRIBUTARY_STATE_STORE_H
#define TRIBUTARY_STATE_STORE_H

#include "connectors/kafka/kafka_conf.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "models/grouped.h"
#include "models/online.h"
#include "models/pipeline.h"
#include "service/config/config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Delivery tags at or above this one belong to the store's changelog records. */
#define STATE_STORE_TAG ((uintptr_t)1 << 62)

/* Counters of every store of a service; read from any thread. */
struct state_store_stats {
    atomic_ullong checkpointed; /* changelog entries acknowledged */
    atomic_ullong restored;     /* changelog entries read back on assignment */
    atomic_ullong spilled;      /* keys moved to a spill file */
    atomic_ullong unspilled;    /* keys brought back from it */
    atomic_ullong replayed;     /* records at or below their key's offset: not learned again */
    atomic_ullong learned;      /* records an online model learned from */
    atomic_int restoring;       /* stores reading the changelog now */
};

struct state_store_options {
    const struct config *cfg;
    const struct kafka_prop *props; /* kafka.* with the bootstrap servers resolved */
    size_t nprops;
    struct kafka_sink
        *sink; /* produces the checkpoints (delivery reports: state_store_on_delivery) */
    struct kafka_source *source; /* the offsets the store holds back go to it */
    struct state_store_stats *stats;
    atomic_int *stop; /* set when the state cannot be restored: the service must stop */
    /* The owner's lock around the store (held by the caller of every function but
     * state_store_assign, which takes it entry by entry); released while waiting for the
     * broker, so that readers are not kept waiting behind the network. */
    pthread_mutex_t *lock;
};

struct state_store;

/* A row of a batch as the store sees it. */
struct state_store_row {
    const char *key;
    size_t key_len;
    int32_t partition;
    int64_t offset;
};

/* Creates the store (no model yet: see state_store_adopt). Returns NULL with err when the sink
 * cannot open the changelog topic. The spill file is made when the first key is spilled; when it
 * cannot be, that is logged and memory goes over the limit. */
struct state_store *state_store_new(const struct state_store_options *options, char *err,
                                    size_t errsz);

/* Serves `pipeline` and `online` (NULL: no online model; both outlive their use, until the next
 * adopt): window histories carry over when the pipeline reads the same inputs with the same
 * window, online states when the online model has the same kind and state length; otherwise
 * that part of every key starts afresh (logged). */
void state_store_adopt(struct state_store *store, const struct pipeline *pipeline,
                       const struct online_model *online);

/* Whether offsets go through state_store_defer (a changelog topic is configured). */
bool state_store_checkpoints(const struct state_store *store);

/* Begins a batch: finds each row's key (creating it, or bringing it back from the spill file) and
 * writes into replay[i] whether row i is a replay (see above). keys[i] gets row i's entry, valid
 * until state_store_end. */
void state_store_begin(struct state_store *store, const struct state_store_row *rows, size_t n,
                       struct grouped_key **keys, unsigned char *replay);

/* The features of the batch's rows (pipeline_transform for new records, pipeline_peek for
 * replays, which leave the window as it is) into out (n x nfeatures). */
void state_store_features(struct state_store *store, const struct pipeline_rows *rows,
                          const unsigned char *replay, double *out);

/* The online model's step for each row in order (the rows state_store_begin saw): predicts with
 * offsets[i] (the registry model's value or logit for the row, 0 without residual learning),
 * learns from new records (labels[i], NAN when unlabelled; a classifier learns 1 for the label
 * `positive` and 0 for any other) and keeps each key's record count and prequential metrics; a
 * replay only predicts. Writes n predictions into out. positive: the label value that counts as
 * the positive class for a classifier's metrics. Without an online model only the bookkeeping. */
void state_store_learn(struct state_store *store, struct grouped_key **keys,
                       const unsigned char *replay, const double *features, const double *labels,
                       const double *offsets, double positive, size_t n, double *out);

/* Holds back `partition`'s offset (as kafka_source_store takes it) until the next checkpoint. */
void state_store_defer(struct state_store *store, int32_t partition, int64_t offset);

/* Ends a batch: when checkpoint_interval_ms has passed since the last checkpoint (or `force`),
 * checkpoints the changed keys, waits for the broker, and on success stores the held-back
 * offsets; then moves keys to the spill file while over the memory limit. A checkpoint that fails
 * keeps its keys changed and its offsets held back, to try again. Returns false when it failed. */
bool state_store_end(struct state_store *store, bool force);

/* For the worker's delivery callback: a report whose tag is >= STATE_STORE_TAG. */
void state_store_on_delivery(struct state_store *store, uintptr_t tag, int failed);

/* Partitions revoked: checkpoints everything, stores the offsets, and forgets the keys of those
 * partitions (their next owner restores them). Without a changelog it keeps them. With lost (the
 * group has already given them to another member) it writes nothing: it forgets those keys and
 * their held-back offsets. */
void state_store_revoke(struct state_store *store, const rd_kafka_topic_partition_list_t *parts,
                        bool lost);

/* Partitions assigned: reads their keys back from the changelog before any record is processed.
 * When that fails the state cannot be exact: it logs, sets *stop and returns false, and from then
 * on the store only predicts: it learns nothing, writes no checkpoint and stores no offset, so that
 * everything is read again, with the state, after a restart. The same happens when a spilled key
 * cannot be read back. */
bool state_store_assign(struct state_store *store, const rd_kafka_topic_partition_list_t *parts);

/* Keys held (hot and spilled) and bytes in memory (table and windows). */
void state_store_size(const struct state_store *store, size_t *keys, size_t *bytes);

/* When the store holds the key of the one row (rows->keys[0]) with a window history that fits
 * pipeline, computes the row's features as pipeline_peek does, as if the record were that key's
 * next (a spilled key's history is read from the spill file), leaves everything as it was and
 * returns true; false otherwise. For real-time requests. */
bool state_store_peek(struct state_store *store, const struct pipeline *pipeline,
                      const struct pipeline_rows *row, double *out);

/* When the store holds the key with a state for `online` (of the kind and size the store serves),
 * writes into *out online_predict of that state for the row x with offset, without changing
 * anything (a spilled key's state is read from the spill file, not brought back), and returns
 * true; false otherwise. For real-time requests. */
bool state_store_predict(struct state_store *store, const struct online_model *online,
                         const char *key, size_t len, const double *x, double offset, double *out);

/* Copies what the store knows of one key into *out (state not included); false when it holds no
 * such key. */
bool state_store_key(struct state_store *store, const char *key, size_t len,
                     struct grouped_key *out);

/* Adds every key's prequential metrics to *regression and *classification. */
void state_store_prequential(const struct state_store *store, struct metrics_running *regression,
                             struct metrics_running_class *classification);

/* Frees the store; accepts NULL. Checkpoint first (state_store_end with force). */
void state_store_destroy(struct state_store *store);

#endif
