/* Helpers the integration tests share: cluster, serve configuration, producing and reading. */
#include "tests/support/kafka_support.h"

#include "service/base/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

const char *const kafka_support_features[KAFKA_SUPPORT_NFEATURES] = {
    "load",      "ambient_temp", "inlet_temp", "outlet_temp", "pressure",
    "vibration", "rpm",          "oil_temp",   "current",     "flow",
};

void kafka_support_reading_features(const struct fleet_reading *r, double *x)
{
    const double v[KAFKA_SUPPORT_NFEATURES] = {
        r->load,      r->ambient_temp, r->inlet_temp, r->outlet_temp, r->pressure,
        r->vibration, r->rpm,          r->oil_temp,   r->current,     r->flow};
    memcpy(x, v, sizeof v);
}

struct embedded_broker *kafka_support_serve_broker(int partitions)
{
    char err[512];
    struct embedded_broker *broker = embedded_broker_new(3, err, sizeof err);
    if (!broker)
        fail_msg("embedded_broker_new: %s", err);
    const char *topics[] = {"telemetry", "predictions", "telemetry.dlq"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        if (embedded_broker_create_topic(broker, topics[i], partitions, err, sizeof err) != TB_OK)
            fail_msg("embedded_broker_create_topic: %s", err);
    return broker;
}

struct config *kafka_support_serve_config(const struct embedded_broker *broker,
                                          const char *const (*settings)[2], size_t nsettings)
{
    const char *const common[][2] = {
        {"kafka.bootstrap.servers", embedded_broker_bootstraps(broker)},
        {"kafka.session.timeout.ms", "6000"},
        {"kafka.heartbeat.interval.ms", "500"},
    };
    size_t ncommon = sizeof common / sizeof common[0];
    struct config *cfg = config_new();
    char err[256];
    for (size_t i = 0; i < ncommon + nsettings; i++) {
        const char *const *kv = i < ncommon ? common[i] : settings[i - ncommon];
        if (config_set(cfg, kv[0], kv[1], "test", err, sizeof err) != TB_OK)
            fail_msg("config_set %s: %s", kv[0], err);
    }
    return cfg;
}

void kafka_support_on_delivered(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status)
{
    (void)opaque;
    (void)tag;
    assert_int_equal(status, RD_KAFKA_RESP_ERR_NO_ERROR);
}

struct kafka_sink *kafka_support_sink_new(const struct embedded_broker *broker, const char *topic,
                                          rd_kafka_topic_t **handle)
{
    char err[256];
    const struct kafka_prop props[] = {{"bootstrap.servers", embedded_broker_bootstraps(broker)}};
    const struct kafka_sink_options options = {.on_delivery = kafka_support_on_delivered};
    struct kafka_sink *sink = kafka_sink_new(props, 1, &options, err, sizeof err);
    if (!sink)
        fail_msg("kafka_sink_new: %s", err);
    *handle = kafka_sink_topic(sink, topic, err, sizeof err);
    if (!*handle)
        fail_msg("kafka_sink_topic %s: %s", topic, err);
    return sink;
}

void kafka_support_produce(struct kafka_sink *sink, rd_kafka_topic_t *handle, const char *key,
                           const void *value, size_t len, rd_kafka_headers_t *headers,
                           int64_t timestamp_ms, uintptr_t tag)
{
    char err[256];
    if (kafka_sink_produce(sink, handle, key, strlen(key), value, len, headers, timestamp_ms, tag,
                           err, sizeof err) != TB_OK)
        fail_msg("kafka_sink_produce: %s", err);
}

void kafka_support_read_all(const struct embedded_broker *broker, const char *topic, int partitions,
                            const char *group, kafka_support_record_fn *on_record, void *opaque)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", embedded_broker_bootstraps(broker), err,
                      sizeof err);
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        fail_msg("rd_kafka_new: %s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    int64_t remaining = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t low, high;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(low, 0);
        remaining += high;
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    /* Up to 300 polls of 100 ms that return nothing, in all. */
    for (int idle = 0; remaining > 0 && idle < 300;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg) {
            idle++;
            continue;
        }
        assert_int_equal(msg->err, RD_KAFKA_RESP_ERR_NO_ERROR);
        remaining--;
        on_record(msg, opaque);
        rd_kafka_message_destroy(msg);
    }
    assert_int_equal(remaining, 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

bool kafka_support_header_text(const rd_kafka_headers_t *headers, const char *name, char *out,
                               size_t outsz)
{
    const void *value = NULL;
    size_t size = 0;
    out[0] = '\0';
    if (!headers ||
        rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    snprintf(out, outsz, "%.*s", (int)size, (const char *)value);
    return true;
}

int64_t kafka_support_header_int(const rd_kafka_headers_t *headers, const char *name)
{
    char text[32];
    if (!kafka_support_header_text(headers, name, text, sizeof text))
        return -1;
    return strtoll(text, NULL, 10);
}
