/* Models topic: creates the compacted topic when it can and produces artefacts to it, one record
 * per version, keyed by model name. */
#include "service/registry/model_topic.h"

#include "connectors/kafka/kafka_conf.h"
#include "connectors/kafka/kafka_sink.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/registry/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest the topic check and creation may take, whatever timeout the caller gives. */
#define MODEL_TOPIC_ADMIN_MAX_MS 10000

/* What the delivery report said. */
struct model_topic_delivery {
    int reported;
    rd_kafka_resp_err_t status;
};

static void model_topic_on_delivery(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status)
{
    (void)tag;
    struct model_topic_delivery *delivery = opaque;
    delivery->reported = 1;
    delivery->status = status;
}

/* True when the cluster's controller is one of its brokers. librdkafka's mock cluster reports a
 * controller id that no broker has, and an Admin request then waits for it until it times out. */
static int model_topic_has_controller(rd_kafka_t *rk, const rd_kafka_metadata_t *md)
{
    int32_t controller = rd_kafka_controllerid(rk, 0);
    for (int i = 0; i < md->broker_cnt; i++) {
        if (md->brokers[i].id == controller)
            return 1;
    }
    return 0;
}

/* Asks for a compacted topic of one partition unless it exists. Never fails: whatever goes
 * wrong is logged, and producing then auto-creates the topic or fails on its own. */
static void model_topic_ensure(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    /* All topics: a request naming the topic would auto-create it, uncompacted. */
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_debug("models topic '%s': no metadata (%s); not creating it", topic,
                  rd_kafka_err2str(rc));
        return;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0 &&
            md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            return;
        }
    }
    int has_controller = model_topic_has_controller(rk, md);
    rd_kafka_metadata_destroy(md);
    if (!has_controller) {
        log_debug("models topic '%s': the cluster has no controller (as the embedded broker); "
                  "leaving the topic to auto-creation",
                  topic);
        return;
    }

    char reason[512];
    rd_kafka_NewTopic_t *new_topic = rd_kafka_NewTopic_new(topic, 1, -1, reason, sizeof reason);
    if (!new_topic) {
        log_warn("models topic '%s': cannot ask for it: %s", topic, reason);
        return;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *event = NULL;
    if (rd_kafka_NewTopic_set_config(new_topic, "cleanup.policy", "compact") !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, reason, sizeof reason) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, reason, sizeof reason) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("models topic '%s': cannot ask for it: %s", topic, reason);
        goto done;
    }
    rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
    /* The request times out by itself; the margin only covers its way back. */
    event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
    rc = !event ? RD_KAFKA_RESP_ERR__TIMED_OUT : rd_kafka_event_error(event);
    const char *why = event && rd_kafka_event_error_string(event)
                          ? rd_kafka_event_error_string(event)
                          : rd_kafka_err2str(rc);
    const rd_kafka_CreateTopics_result_t *result =
        event ? rd_kafka_event_CreateTopics_result(event) : NULL;
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && result) {
        size_t n = 0;
        const rd_kafka_topic_result_t **topics = rd_kafka_CreateTopics_result_topics(result, &n);
        for (size_t i = 0; i < n; i++) {
            rc = rd_kafka_topic_result_error(topics[i]);
            why = rd_kafka_topic_result_error_string(topics[i])
                      ? rd_kafka_topic_result_error_string(topics[i])
                      : rd_kafka_err2str(rc);
        }
    }
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
        log_info("models topic '%s': created (compacted, 1 partition)", topic);
    else if (rc == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        log_debug("models topic '%s': already exists", topic);
    else if (rc == RD_KAFKA_RESP_ERR__TIMED_OUT || rc == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
             rc == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION)
        log_debug("models topic '%s': CreateTopics is not supported or not answered (%s); "
                  "leaving the topic to auto-creation",
                  topic, why);
    else
        log_warn("models topic '%s': not created (%s); producing anyway", topic, why);

done:
    if (event)
        rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(new_topic);
}

int model_topic_publish(const struct kafka_prop *props, size_t nprops, const char *topic,
                        const struct artefact *artefact, int timeout_ms, char *err, size_t errsz)
{
    const char *name = artefact_name(artefact);
    int32_t version = artefact_version(artefact);
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct kafka_sink *sink = NULL;
    int64_t deadline_ms = clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    int rc = registry_check_name(name, err, errsz);
    if (rc != TB_OK)
        goto done;
    if (!topic || !*topic) {
        rc = tb_fail(err, errsz, TB_USAGE, "model '%s': no models topic given", name);
        goto done;
    }
    if (version < 1) {
        rc = tb_fail(err, errsz, TB_USAGE,
                     "model '%s' has version %d; models-topic versions start at 1 (publish to "
                     "a registry first)",
                     name, (int)version);
        goto done;
    }
    rc = artefact_encode(artefact, &bytes, &len, err, errsz);
    if (rc != TB_OK)
        goto done;

    struct model_topic_delivery delivery = {0};
    /* Once the wait is over, what is still queued is withdrawn at once. */
    const struct kafka_sink_options options = {
        .on_delivery = model_topic_on_delivery, .opaque = &delivery, .drain_timeout_ms = 1};
    sink = kafka_sink_new(props, nprops, &options, err, errsz);
    if (!sink) {
        rc = TB_KAFKA;
        goto done;
    }
    int admin_ms = timeout_ms / 2;
    if (admin_ms > MODEL_TOPIC_ADMIN_MAX_MS)
        admin_ms = MODEL_TOPIC_ADMIN_MAX_MS;
    if (admin_ms > 0)
        model_topic_ensure(kafka_sink_handle(sink), topic, admin_ms);
    rd_kafka_topic_t *handle = kafka_sink_topic(sink, topic, err, errsz);
    if (!handle) {
        rc = TB_KAFKA;
        goto done;
    }
    char version_text[16];
    snprintf(version_text, sizeof version_text, "%d", (int)version);
    rd_kafka_headers_t *headers = rd_kafka_headers_new(2);
    rd_kafka_header_add(headers, MODEL_TOPIC_HEADER_NAME, -1, name, (ssize_t)strlen(name));
    rd_kafka_header_add(headers, MODEL_TOPIC_HEADER_VERSION, -1, version_text,
                        (ssize_t)strlen(version_text));
    rc = kafka_sink_produce(sink, handle, name, strlen(name), bytes, len, headers, clock_wall_ms(),
                            0, err, errsz);
    if (rc != TB_OK)
        goto done;
    int64_t left_ms = deadline_ms - clock_monotonic_ms();
    if (kafka_sink_wait(sink, left_ms > 0 ? (int)left_ms : 0) != TB_OK || !delivery.reported) {
        rc = tb_fail(err, errsz, TB_TIMEOUT,
                     "model '%s' version %d: topic '%s' did not acknowledge it within %d ms", name,
                     (int)version, topic, timeout_ms);
        goto done;
    }
    if (delivery.status != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tb_fail(err, errsz, TB_KAFKA, "model '%s' version %d: topic '%s' refused it: %s", name,
                     (int)version, topic, rd_kafka_err2str(delivery.status));
        goto done;
    }
    log_info("published model '%s' version %d to topic '%s' (%zu bytes)", name, (int)version, topic,
             len);

done:
    kafka_sink_destroy(sink);
    free(bytes);
    return rc;
}
