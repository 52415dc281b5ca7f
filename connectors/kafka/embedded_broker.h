/* The embedded Kafka-protocol broker: librdkafka's mock cluster on loopback.
 *
 * Any Kafka client can connect to its bootstrap address. It differs from Kafka
 * (see EMBEDDED-BROKER.md in the design notes): each partition keeps only about
 * 5 MiB of record batches and drops older ones silently, group rebalances take
 * seconds (session.timeout.ms minus one second after the first), transactions
 * are accepted but not honoured, and the Admin API mostly times out, so topics
 * are created here with embedded_broker_create_topic. */
#ifndef TRIBUTARY_EMBEDDED_BROKER_H
#define TRIBUTARY_EMBEDDED_BROKER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

struct embedded_broker;

/* Starts a cluster of nbrokers (1..16) brokers on 127.0.0.1 ephemeral ports.
 * Returns the handle (free with embedded_broker_destroy) or NULL with err. */
struct embedded_broker *embedded_broker_new(int nbrokers, char *err, size_t errsz);

/* Creates a topic with `partitions` partitions, replicated on up to three
 * brokers. Creating an existing topic again is an error. Returns TB_OK or
 * TB_KAFKA with err. */
int embedded_broker_create_topic(struct embedded_broker *broker, const char *name, int partitions,
                                 char *err, size_t errsz);

/* The bootstrap list ("127.0.0.1:PORT,..."); valid while the broker lives. */
const char *embedded_broker_bootstraps(const struct embedded_broker *broker);

/* The mock cluster itself, for fault injection in tests. */
rd_kafka_mock_cluster_t *embedded_broker_cluster(struct embedded_broker *broker);

/* Stops the cluster; accepts NULL. */
void embedded_broker_destroy(struct embedded_broker *broker);

#endif
