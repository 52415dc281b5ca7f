/* Kafka source: one consumer in a consumer group, read in micro-batches.
 *
 * Offsets are never stored automatically: the caller stores an offset only
 * once the record's outputs are acknowledged (kafka_source_store). Stored
 * offsets are committed asynchronously every commit_interval_ms (at a batch
 * boundary), synchronously on revoke, and by kafka_source_commit, which the
 * owner calls before kafka_source_close. A source is used by one thread,
 * except for kafka_source_lag, which any thread may call. */
#ifndef TRIBUTARY_KAFKA_SOURCE_H
#define TRIBUTARY_KAFKA_SOURCE_H

#include "connectors/kafka/kafka_conf.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

struct kafka_source;

/* Processes a micro-batch. The messages stay owned by the source (it destroys
 * each exactly once after this returns). Called from kafka_source_poll_batch,
 * and from inside a rebalance with the records collected so far, before the
 * revoked partitions' offsets are committed. */
typedef void kafka_source_batch_fn(void *opaque, rd_kafka_message_t **msgs, size_t n);

/* Called (with the same opaque) when partitions are taken away, after the
 * records in hand were handed over and before their offsets are committed.
 * lost is non-zero when the group already gave them to another member (this
 * one was thrown out, e.g. after a session timeout): then the records in hand
 * were dropped, not handed over, nothing will be committed, and the owner
 * must not write anything more on those partitions' behalf. */
typedef void kafka_source_revoke_fn(void *opaque, const rd_kafka_topic_partition_list_t *revoked,
                                    int lost);

/* Called (with the same opaque) when partitions are assigned, before any of their records is
 * handed over: the place to restore state kept for them elsewhere. */
typedef void kafka_source_assign_fn(void *opaque, const rd_kafka_topic_partition_list_t *assigned);

struct kafka_source_options {
    const char *group_id;
    const char *topic;
    int commit_interval_ms;
    kafka_source_batch_fn *on_batch;
    kafka_source_revoke_fn *on_revoke; /* may be NULL */
    kafka_source_assign_fn *on_assign; /* may be NULL */
    void *opaque;
    /* How often librdkafka reports the statistics that kafka_source_lag
     * reads (its statistics.interval.ms); 0 turns them off. */
    int statistics_interval_ms;
};

/* One partition assigned to this consumer, as librdkafka's latest statistics
 * saw it. Offsets are Kafka's: `committed` is the next record the group will
 * read. Each figure is -1 when librdkafka does not know it (yet). */
struct kafka_source_partition_lag {
    int32_t partition;
    /* librdkafka's consumer_lag: the end offset (high watermark, or the last
     * stable offset under isolation.level=read_committed, the default) minus
     * the committed offset; -1 until the group has committed an offset for
     * the partition. Offsets stored but not yet committed do not count. */
    int64_t lag;
    int64_t committed; /* committed_offset */
    int64_t high;      /* hi_offset, the high watermark */
};

/* Creates a consumer in options->group_id subscribed to options->topic. props
 * are the user's kafka.* settings. Returns the source (free with
 * kafka_source_destroy after kafka_source_close) or NULL with err. */
struct kafka_source *kafka_source_new(const struct kafka_prop *props, size_t nprops,
                                      const struct kafka_source_options *options, char *err,
                                      size_t errsz);

/* Collects up to max_records records for at most max_wait_ms in all, then
 * hands them to on_batch. Consumer errors are logged, not returned as records.
 * Returns the number of records handed over (0 when none arrived), or TB_KAFKA
 * on a fatal consumer error. */
int kafka_source_poll_batch(struct kafka_source *source, size_t max_records, int max_wait_ms);

/* Marks `partition` of the subscribed topic processed up to and including
 * `offset` (the next committed position is offset + 1). */
void kafka_source_store(struct kafka_source *source, int32_t partition, int64_t offset);

/* Asks for `partition` to be read again from `offset` on (used when an output
 * for that record could not be delivered, so that it is processed again
 * rather than skipped). The seek is asynchronous: records already fetched may
 * still arrive first, so the caller must not store offsets after `offset`
 * until that offset comes round again. Returns TB_OK, or TB_KAFKA with err
 * when the seek was refused at once (e.g. the partition is no longer ours). */
int kafka_source_rewind(struct kafka_source *source, int32_t partition, int64_t offset, char *err,
                        size_t errsz);

/* Commits the stored offsets now and waits up to timeout_ms for the answer.
 * Returns TB_OK (also when there was nothing to commit) or TB_KAFKA with err
 * (refused, or no answer in time). */
int kafka_source_commit(struct kafka_source *source, int timeout_ms, char *err, size_t errsz);

/* While held, partitions assigned to this consumer are paused as they arrive,
 * so that no record is read; releasing resumes them from where they were. A
 * service holds its consumers until all of them have joined the group, so
 * that records are not read by one member only to be handed to another a
 * rebalance later (which re-reads whatever that rebalance kept from being
 * committed). A new source is not held. */
void kafka_source_hold(struct kafka_source *source, int hold);

/* True once the consumer has had its first assignment (possibly empty). */
int kafka_source_joined(const struct kafka_source *source);

/* Number of partitions currently assigned to this consumer. */
int kafka_source_assigned(const struct kafka_source *source);

/* Copies the latest statistics' figures for the partitions of the topic that
 * are assigned to this consumer now, in increasing partition order, into
 * out[0 .. cap) (out may be NULL when cap is 0). Returns how many partitions
 * there are, which may exceed cap. A partition is left out until statistics
 * that include it arrive after its assignment, and drops out as soon as it
 * is revoked. Returns 0 when statistics are off (statistics_interval_ms 0).
 * Thread-safe: a metrics thread may call it while the owner polls. */
size_t kafka_source_lag(struct kafka_source *source, struct kafka_source_partition_lag *out,
                        size_t cap);

/* Leaves the group: revokes and closes, waiting at most 5 s for the broker
 * (commit with kafka_source_commit first: the revoke does not commit when
 * closing). A consumer that could not close, or never joined its group, is
 * left undestroyed by kafka_source_destroy, because librdkafka 2.0.2 can
 * block or abort destroying it. Call once before kafka_source_destroy. */
void kafka_source_close(struct kafka_source *source);

/* Frees the consumer; accepts NULL. */
void kafka_source_destroy(struct kafka_source *source);

#endif
