/* Helpers the integration tests share: the embedded cluster and serve's configuration for it,
 * fleet readings as feature rows, producing to and reading back from its topics, and headers. */
#ifndef TRIBUTARY_TESTS_SUPPORT_KAFKA_SUPPORT_H
#define TRIBUTARY_TESTS_SUPPORT_KAFKA_SUPPORT_H

#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "service/config/config.h"
#include "service/sim/fleet.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The numeric fields of a fleet reading that the tests' models use, and their names. */
#define KAFKA_SUPPORT_NFEATURES 10
extern const char *const kafka_support_features[KAFKA_SUPPORT_NFEATURES];

/* Writes the KAFKA_SUPPORT_NFEATURES fields of r named by kafka_support_features, in that order,
 * to x. */
void kafka_support_reading_features(const struct fleet_reading *r, double *x);

/* Starts an embedded cluster of 3 brokers with the topics serve uses by default, "telemetry",
 * "predictions" and "telemetry.dlq", of `partitions` partitions each. Returns the broker (free
 * with embedded_broker_destroy); fails the running test when it cannot. */
struct embedded_broker *kafka_support_serve_broker(int partitions);

/* Returns a new configuration (free with config_destroy) for serve on broker: its bootstrap
 * servers, a session timeout of 6000 ms and heartbeats every 500 ms (so that the group settles
 * quickly), then the nsettings {key, value} pairs of settings. Fails the running test when a
 * setting is refused. */
struct config *kafka_support_serve_config(const struct embedded_broker *broker,
                                          const char *const (*settings)[2], size_t nsettings);

/* A kafka_sink delivery callback that fails the running test unless the broker stored the
 * record. */
void kafka_support_on_delivered(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status);

/* Returns a producer to broker whose delivery reports go to kafka_support_on_delivered (free
 * with kafka_sink_destroy), and in *handle its handle for topic, which the sink owns. Fails the
 * running test when either cannot be made. */
struct kafka_sink *kafka_support_sink_new(const struct embedded_broker *broker, const char *topic,
                                          rd_kafka_topic_t **handle);

/* Queues one record as kafka_sink_produce does (key is a string; headers, which may be NULL,
 * are taken over); fails the running test when it cannot be queued. */
void kafka_support_produce(struct kafka_sink *sink, rd_kafka_topic_t *handle, const char *key,
                           const void *value, size_t len, rd_kafka_headers_t *headers,
                           int64_t timestamp_ms, uintptr_t tag);

/* Called by kafka_support_read_all with each record it reads, which it destroys after. */
typedef void kafka_support_record_fn(const rd_kafka_message_t *msg, void *opaque);

/* Reads every record of partitions 0 .. partitions - 1 of topic, from offset 0 to the end
 * offsets found at the start, with a consumer of group `group` that commits nothing, and calls
 * on_record(msg, opaque) for each. Fails the running test when a partition does not start at
 * offset 0, a record is an error, or records are still missing after 30 s without any. */
void kafka_support_read_all(const struct embedded_broker *broker, const char *topic, int partitions,
                            const char *group, kafka_support_record_fn *on_record, void *opaque);

/* Copies the value of the last header called name into out (NUL-terminated, cut to outsz - 1
 * bytes) and returns true; returns false with out "" when there is none (headers may be NULL). */
bool kafka_support_header_text(const rd_kafka_headers_t *headers, const char *name, char *out,
                               size_t outsz);

/* Returns the value of the last header called name read as a decimal integer, or -1 when there
 * is none. */
int64_t kafka_support_header_int(const rd_kafka_headers_t *headers, const char *name);

#endif
