/* Embedded broker: owns a librdkafka handle whose mock cluster serves clients. */
#include "connectors/kafka/embedded_broker.h"

#include "connectors/kafka/kafka_conf.h"
#include "service/base/error.h"
#include "service/base/mem.h"

struct embedded_broker {
    rd_kafka_t *owner; /* the handle the mock cluster lives in */
    rd_kafka_mock_cluster_t *cluster;
    int nbrokers;
};

struct embedded_broker *embedded_broker_new(int nbrokers, char *err, size_t errsz)
{
    if (nbrokers < 1 || nbrokers > 16) {
        tb_fail(err, errsz, TB_USAGE, "broker count %d is out of range (1..16)", nbrokers);
        return NULL;
    }
    /* The owner never talks to a cluster itself; quiet its own logging. */
    static const struct kafka_prop owner_props[] = {{"log_level", "3"}};
    rd_kafka_t *owner = NULL;
    rd_kafka_conf_t *conf = kafka_conf_build(NULL, 0, owner_props, 1, NULL, 0, err, errsz);
    if (!conf)
        goto fail;
    char reason[256];
    owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    if (!owner) {
        tb_fail(err, errsz, TB_KAFKA, "embedded broker: %s", reason);
        goto fail;
    }
    conf = NULL; /* the owner has it */
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(owner, nbrokers);
    if (!cluster) {
        tb_fail(err, errsz, TB_KAFKA, "embedded broker: could not start the mock cluster");
        goto fail;
    }
    struct embedded_broker *broker = mem_calloc(1, sizeof *broker);
    broker->owner = owner;
    broker->cluster = cluster;
    broker->nbrokers = nbrokers;
    return broker;

fail:
    if (owner)
        rd_kafka_destroy(owner);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return NULL;
}

int embedded_broker_create_topic(struct embedded_broker *broker, const char *name, int partitions,
                                 char *err, size_t errsz)
{
    int replication = broker->nbrokers < 3 ? broker->nbrokers : 3;
    rd_kafka_resp_err_t rc =
        rd_kafka_mock_topic_create(broker->cluster, name, partitions, replication);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tb_fail(err, errsz, TB_KAFKA, "topic '%s': %s", name, rd_kafka_err2str(rc));
    return TB_OK;
}

const char *embedded_broker_bootstraps(const struct embedded_broker *broker)
{
    return rd_kafka_mock_cluster_bootstraps(broker->cluster);
}

rd_kafka_mock_cluster_t *embedded_broker_cluster(struct embedded_broker *broker)
{
    return broker->cluster;
}

void embedded_broker_destroy(struct embedded_broker *broker)
{
    if (!broker)
        return;
    rd_kafka_mock_cluster_destroy(broker->cluster);
    rd_kafka_destroy(broker->owner);
    free(broker);
}
