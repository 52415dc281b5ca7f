/* Builds librdkafka configurations from layered key/value properties. */
#ifndef TRIBUTARY_KAFKA_CONF_H
#define TRIBUTARY_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

struct kafka_prop {
    const char *key;
    const char *value;
};

/* Builds a configuration from three layers applied in order, each overriding
 * the one before: `defaults` (our choices, e.g. lz4 compression), `props` (the
 * user's kafka.* settings, passed through as-is) and `forced` (settings the
 * caller's correctness depends on, e.g. manual offset storage). Every layer may
 * be empty. librdkafka's log lines are routed to our log.
 * Returns a new configuration that the caller owns (rd_kafka_new takes it over,
 * or free it with rd_kafka_conf_destroy), or NULL with err naming the property
 * that librdkafka refused. */
rd_kafka_conf_t *kafka_conf_build(const struct kafka_prop *defaults, size_t ndefaults,
                                  const struct kafka_prop *props, size_t nprops,
                                  const struct kafka_prop *forced, size_t nforced, char *err,
                                  size_t errsz);

#endif
