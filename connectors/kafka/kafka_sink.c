/* Kafka sink: producer, per-record delivery tracking, topic handle cache. */
#include "connectors/kafka/kafka_sink.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct kafka_sink_topic {
    char *name;
    rd_kafka_topic_t *handle;
};

struct kafka_sink {
    rd_kafka_t *producer;
    struct kafka_sink_options options;
    int64_t drain_deadline_ms; /* once a stop is seen: when to give up on the broker */
    size_t in_flight;          /* queued records with no delivery report yet */
    struct kafka_sink_topic *topics;
    size_t ntopics, topics_cap;
};

static void kafka_sink_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct kafka_sink *sink = opaque;
    sink->in_flight--;
    if (sink->options.on_delivery)
        sink->options.on_delivery(sink->options.opaque, (uintptr_t)msg->_private, msg->err);
}

struct kafka_sink *kafka_sink_new(const struct kafka_prop *props, size_t nprops,
                                  const struct kafka_sink_options *options, char *err, size_t errsz)
{
    static const struct kafka_prop defaults[] = {
        {"compression.type", "lz4"},
        {"acks", "all"},
        {"linger.ms", "5"},
    };
    /* Offsets are stored on delivery reports: every record must have one. */
    static const struct kafka_prop forced[] = {{"delivery.report.only.error", "false"}};
    rd_kafka_conf_t *conf = kafka_conf_build(defaults, sizeof defaults / sizeof defaults[0], props,
                                             nprops, forced, 1, err, errsz);
    if (!conf)
        return NULL;
    struct kafka_sink *sink = mem_calloc(1, sizeof *sink);
    if (options)
        sink->options = *options;
    rd_kafka_conf_set_opaque(conf, sink);
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_sink_report);
    char reason[512];
    sink->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    if (!sink->producer) {
        tb_fail(err, errsz, TB_KAFKA, "producer: %s", reason);
        goto fail;
    }
    return sink;

fail:
    rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only when it succeeds */
    free(sink);
    return NULL;
}

rd_kafka_topic_t *kafka_sink_topic(struct kafka_sink *sink, const char *name, char *err,
                                   size_t errsz)
{
    for (size_t i = 0; i < sink->ntopics; i++) {
        if (strcmp(sink->topics[i].name, name) == 0)
            return sink->topics[i].handle;
    }
    rd_kafka_topic_t *handle = rd_kafka_topic_new(sink->producer, name, NULL);
    if (!handle) {
        tb_fail(err, errsz, TB_KAFKA, "topic '%s': %s", name,
                rd_kafka_err2str(rd_kafka_last_error()));
        return NULL;
    }
    mem_grow((void **)&sink->topics, &sink->topics_cap, sink->ntopics + 1, sizeof *sink->topics);
    struct kafka_sink_topic *t = &sink->topics[sink->ntopics++];
    t->name = mem_strdup(name);
    t->handle = handle;
    return handle;
}

/* True once a stop was requested and the drain timeout has passed since. */
static int kafka_sink_drain_over(struct kafka_sink *sink)
{
    if (!sink->options.stop || !atomic_load(sink->options.stop))
        return 0;
    if (sink->drain_deadline_ms == 0)
        sink->drain_deadline_ms = clock_monotonic_ms() + sink->options.drain_timeout_ms;
    return clock_monotonic_ms() >= sink->drain_deadline_ms;
}

int kafka_sink_produce(struct kafka_sink *sink, rd_kafka_topic_t *topic, const void *key,
                       size_t keylen, const void *value, size_t valuelen,
                       rd_kafka_headers_t *headers, int64_t timestamp_ms, uintptr_t tag, char *err,
                       size_t errsz)
{
    return kafka_sink_produce_to(sink, topic, RD_KAFKA_PARTITION_UA, key, keylen, value, valuelen,
                                 headers, timestamp_ms, tag, err, errsz);
}

int kafka_sink_produce_to(struct kafka_sink *sink, rd_kafka_topic_t *topic, int32_t partition,
                          const void *key, size_t keylen, const void *value, size_t valuelen,
                          rd_kafka_headers_t *headers, int64_t timestamp_ms, uintptr_t tag,
                          char *err, size_t errsz)
{
    for (;;) {
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            sink->producer, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
            RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
            sink->in_flight++;
            return TB_OK;
        }
        if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL || kafka_sink_drain_over(sink)) {
            if (headers)
                rd_kafka_headers_destroy(headers);
            char where[32] = "";
            if (partition != RD_KAFKA_PARTITION_UA)
                snprintf(where, sizeof where, " partition %d", (int)partition);
            return tb_fail(err, errsz, rc == RD_KAFKA_RESP_ERR__QUEUE_FULL ? TB_TIMEOUT : TB_KAFKA,
                           "produce to '%s'%s: %s", rd_kafka_topic_name(topic), where,
                           rd_kafka_err2str(rc));
        }
        rd_kafka_poll(sink->producer, 10);
    }
}

int kafka_sink_wait(struct kafka_sink *sink, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : clock_monotonic_ms() + timeout_ms;
    while (sink->in_flight > 0) {
        if (kafka_sink_drain_over(sink)) {
            /* The purged records get failure reports on the next polls. */
            log_warn("giving up on %zu unacknowledged records", sink->in_flight);
            rd_kafka_purge(sink->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            for (int i = 0; i < 20 && sink->in_flight > 0; i++)
                rd_kafka_poll(sink->producer, 50);
            return TB_TIMEOUT;
        }
        int64_t left = deadline - clock_monotonic_ms();
        if (left <= 0)
            return TB_TIMEOUT;
        /* flush, unlike poll, sends what linger.ms would hold back: the
         * caller is waiting for exactly these records. */
        rd_kafka_flush(sink->producer, left < 100 ? (int)left : 100);
    }
    return TB_OK;
}

rd_kafka_t *kafka_sink_handle(struct kafka_sink *sink)
{
    return sink->producer;
}

void kafka_sink_destroy(struct kafka_sink *sink)
{
    if (!sink)
        return;
    rd_kafka_flush(sink->producer,
                   sink->options.drain_timeout_ms > 0 ? sink->options.drain_timeout_ms : 10000);
    if (sink->in_flight > 0) {
        log_warn("producer closing with %zu records not acknowledged", sink->in_flight);
        rd_kafka_purge(sink->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(sink->producer, 100);
    }
    for (size_t i = 0; i < sink->ntopics; i++) {
        rd_kafka_topic_destroy(sink->topics[i].handle);
        free(sink->topics[i].name);
    }
    free(sink->topics);
    rd_kafka_destroy(sink->producer);
    free(sink);
}
