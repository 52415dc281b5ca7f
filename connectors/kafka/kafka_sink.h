/* Kafka sink: a producer whose every record is tracked until the broker has
 * acknowledged it (or definitively refused it). */
#ifndef TRIBUTARY_KAFKA_SINK_H
#define TRIBUTARY_KAFKA_SINK_H

#include "connectors/kafka/kafka_conf.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct kafka_sink;

/* Called once per produced record, from kafka_sink_wait or kafka_sink_produce
 * (which polls when the local queue is full), with the `tag` given to
 * kafka_sink_produce and the broker's verdict (RD_KAFKA_RESP_ERR_NO_ERROR when
 * the record is stored). */
typedef void kafka_sink_delivery_fn(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status);

struct kafka_sink_options {
    kafka_sink_delivery_fn *on_delivery; /* may be NULL */
    void *opaque;
    /* When *stop becomes true, the sink waits for the broker at most
     * drain_timeout_ms longer; then what is still queued is purged (reported
     * as failed). NULL: wait as long as librdkafka's message.timeout.ms. */
    const atomic_int *stop;
    int drain_timeout_ms;
};

/* Creates a producer. Defaults (overridable by props): lz4 compression,
 * acks=all, linger.ms=5; every record gets a delivery report whatever props
 * say. options may be NULL. Returns the sink (free with kafka_sink_destroy) or
 * NULL with err naming the bad property. */
struct kafka_sink *kafka_sink_new(const struct kafka_prop *props, size_t nprops,
                                  const struct kafka_sink_options *options, char *err,
                                  size_t errsz);

/* A topic handle, created on first use and owned by the sink; NULL with err
 * when librdkafka refuses the name. */
rd_kafka_topic_t *kafka_sink_topic(struct kafka_sink *sink, const char *name, char *err,
                                   size_t errsz);

/* Queues one record (key and value are copied; headers, which may be NULL, are
 * taken over in every case). When the local queue is full it serves delivery
 * reports until there is room. Returns TB_OK, or TB_KAFKA with err when the
 * record cannot be queued at all, or TB_TIMEOUT when a stop was requested and
 * the queue stayed full past the drain timeout (then no delivery report will
 * follow). */
int kafka_sink_produce(struct kafka_sink *sink, rd_kafka_topic_t *topic, const void *key,
                       size_t keylen, const void *value, size_t valuelen,
                       rd_kafka_headers_t *headers, int64_t timestamp_ms, uintptr_t tag, char *err,
                       size_t errsz);

/* As kafka_sink_produce, but to partition `partition` of topic (RD_KAFKA_PARTITION_UA: the one
 * the topic's partitioner picks from the key, which is what kafka_sink_produce does). A partition
 * the topic does not have fails at once (TB_KAFKA) when the producer already knows the topic's
 * partition count, else in the delivery report. A null value (value NULL, valuelen 0) is a
 * tombstone. */
int kafka_sink_produce_to(struct kafka_sink *sink, rd_kafka_topic_t *topic, int32_t partition,
                          const void *key, size_t keylen, const void *value, size_t valuelen,
                          rd_kafka_headers_t *headers, int64_t timestamp_ms, uintptr_t tag,
                          char *err, size_t errsz);

/* Serves delivery reports until every queued record has one, or timeout_ms
 * passes (-1: no limit), or the drain timeout after a stop request passes, in
 * which case the records still queued are purged and reported as failed.
 * Returns TB_OK when every record has its report, else TB_TIMEOUT. */
int kafka_sink_wait(struct kafka_sink *sink, int timeout_ms);

/* The underlying producer handle (for statistics and tests). */
rd_kafka_t *kafka_sink_handle(struct kafka_sink *sink);

/* Flushes for up to the drain timeout (10 s when none was given), purges
 * what is left, then frees everything; accepts NULL. */
void kafka_sink_destroy(struct kafka_sink *sink);

#endif
