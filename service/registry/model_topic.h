/* Publishing artefacts to the compacted models topic, where instances on other machines find
 * them. */
#ifndef TRIBUTARY_MODEL_TOPIC_H
#define TRIBUTARY_MODEL_TOPIC_H

#include "service/registry/artefact.h"

#include <stddef.h>

struct kafka_prop; /* connectors/kafka/kafka_conf.h */

/* Header names a models-topic record carries: the model name and its version in decimal. */
#define MODEL_TOPIC_HEADER_NAME    "tributary.model"
#define MODEL_TOPIC_HEADER_VERSION "tributary.model.version"

/* Produces the artefact's encoded bytes (artefact_encode) to `topic` with key = the model name
 * and the two headers above, and waits for the broker's acknowledgement. First, unless the topic
 * exists, it asks for it to be created with the Admin API (compacted, 1 partition, the broker's
 * default replication factor), "already exists" counting as success; a cluster with no
 * controller (the embedded broker) or one that refuses or does not answer is logged and the
 * topic is left to auto-creation. props are the user's kafka.* settings.
 * Returns TB_OK once the record is stored, TB_USAGE for a bad model name or a version below 1
 * (publish to a registry first), TB_ARTEFACT if it cannot be encoded, TB_KAFKA with err when the
 * producer cannot be made or the broker refused the record, TB_TIMEOUT when there is no
 * acknowledgement within timeout_ms (the record is then withdrawn, as far as it can be). */
int model_topic_publish(const struct kafka_prop *props, size_t nprops, const char *topic,
                        const struct artefact *artefact, int timeout_ms, char *err, size_t errsz);

#endif
