/* Integration: the models topic on the embedded broker. model_topic_publish produces keyed,
 * headed, decodable records without waiting on the Admin API the embedded broker lacks; a
 * model_watch reading the topic reports the versions already there and new ones once, in order,
 * refuses damaged or foreign records, waits for a topic that does not exist yet, and together
 * with a registry directory reports each version once whichever source shows it first. */
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/registry/model_topic.h"
#include "service/registry/model_watch.h"
#include "service/registry/registry.h"
#include "tests/support/kafka_support.h"
#include "tests/support/registry_support.h"
#include "tests/support/support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PUBLISH_TIMEOUT_MS 20000
#define WAIT_MS            10000 /* the longest any expected event may take */
#define QUIET_MS           1000  /* how long "nothing more" is watched for */

static struct {
    struct embedded_broker *broker;
    char dir[64];
} world;

/* --- artefacts and publishing ----------------------------------------------------------------- */

static const struct kafka_prop *broker_props(size_t *n)
{
    static struct kafka_prop props[2];
    props[0] = (struct kafka_prop){"bootstrap.servers", embedded_broker_bootstraps(world.broker)};
    props[1] = (struct kafka_prop){"fetch.wait.max.ms", "10"};
    *n = 2;
    return props;
}

/* Publishes version `version` of model `name` to topic; returns how long it took. */
static int64_t publish_version(const char *topic, const char *name, int32_t version)
{
    struct artefact *artefact = support_make_artefact(name, version, 1.0);
    size_t nprops;
    const struct kafka_prop *props = broker_props(&nprops);
    char err[512] = "";
    int64_t start = clock_monotonic_ms();
    int rc =
        model_topic_publish(props, nprops, topic, artefact, PUBLISH_TIMEOUT_MS, err, sizeof err);
    if (rc != TB_OK)
        fail_msg("model_topic_publish: %s (%s)", err, tb_strerror(rc));
    artefact_destroy(artefact);
    return clock_monotonic_ms() - start;
}

/* Produces one record by hand (for damaged or foreign records); version_header NULL: none. */
static void produce_raw(const char *topic, const char *key, const void *value, size_t len,
                        const char *version_header)
{
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = kafka_support_sink_new(world.broker, topic, &handle);
    rd_kafka_headers_t *headers = NULL;
    if (version_header) {
        headers = rd_kafka_headers_new(1);
        rd_kafka_header_add(headers, MODEL_TOPIC_HEADER_VERSION, -1, version_header, -1);
    }
    kafka_support_produce(sink, handle, key, value, len, headers, 0, 0);
    assert_int_equal(kafka_sink_wait(sink, 10000), TB_OK);
    kafka_sink_destroy(sink);
}

/* --- what the watch's callbacks saw ----------------------------------------------------------- */

/* Waits until the last event is a report of `version` (or WAIT_MS passed); returns the count. */
static size_t wait_reported(struct support_collector *c, int32_t version)
{
    return support_collector_wait_reported(c, version, WAIT_MS);
}

/* Fails unless the count stays at n for QUIET_MS. */
static void expect_no_more(struct support_collector *c, size_t n)
{
    support_collector_expect_quiet(c, n, QUIET_MS);
}

/* Reported versions strictly increase; refusals are checked by the cases. */
static void expect_increasing(struct support_collector *c)
{
    int32_t previous = 0;
    for (size_t i = 0; i < support_collector_count(c); i++) {
        if (c->events[i].refused)
            continue;
        if (c->events[i].version <= previous)
            fail_msg("event %zu reports version %d after %d", i, (int)c->events[i].version,
                     (int)previous);
        previous = c->events[i].version;
    }
}

static struct model_watch *watch_or_fail(const char *registry, const char *topic, int32_t after,
                                         struct support_collector *c)
{
    size_t nprops;
    const struct kafka_prop *props = broker_props(&nprops);
    const struct model_watch_options options = {.registry = registry,
                                                .name = "rul",
                                                .topic = topic,
                                                .props = props,
                                                .nprops = nprops,
                                                .poll_ms = 50,
                                                .after_version = after};
    return support_watch_new(&options, c);
}

static void expect_topic_origin(const struct support_event *e, const char *topic)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "topic %s partition ", topic);
    if (strncmp(e->origin, prefix, strlen(prefix)) != 0 || !strstr(e->origin, " offset "))
        fail_msg("origin '%s' does not name topic %s, a partition and an offset", e->origin, topic);
}

/* --- reading the topic back ------------------------------------------------------------------- */

struct record {
    int32_t partition;
    int64_t offset;
    char key[64];
    char header_name[64];
    char header_version[16];
    struct artefact *artefact;
};

/* Reads every record of topic, in partition order; returns their number. */
static size_t read_topic(const char *topic, struct record *records, size_t max)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", embedded_broker_bootstraps(world.broker), err,
                      sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->topic_cnt, 1);
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    size_t n = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t low, high;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        if (high == low)
            continue;
        assert_int_equal(rd_kafka_consume_start(rkt, p, RD_KAFKA_OFFSET_BEGINNING), 0);
        for (int64_t next = low; next < high;) {
            rd_kafka_message_t *msg = rd_kafka_consume(rkt, p, 10000);
            assert_non_null(msg);
            assert_int_equal(msg->err, RD_KAFKA_RESP_ERR_NO_ERROR);
            assert_true(n < max);
            struct record *r = &records[n++];
            r->partition = msg->partition;
            r->offset = msg->offset;
            snprintf(r->key, sizeof r->key, "%.*s", (int)msg->key_len, (const char *)msg->key);
            rd_kafka_headers_t *headers = NULL;
            (void)rd_kafka_message_headers(msg, &headers); /* stays NULL when there are none */
            kafka_support_header_text(headers, MODEL_TOPIC_HEADER_NAME, r->header_name,
                                      sizeof r->header_name);
            kafka_support_header_text(headers, MODEL_TOPIC_HEADER_VERSION, r->header_version,
                                      sizeof r->header_version);
            r->artefact = artefact_decode(msg->payload, msg->len, "record", err, sizeof err);
            if (!r->artefact)
                fail_msg("%s", err);
            next = msg->offset + 1;
            rd_kafka_message_destroy(msg);
        }
        rd_kafka_consume_stop(rkt, p);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return n;
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_publish_record(void **state)
{
    (void)state;
    /* The embedded broker cannot create topics through the Admin API (a request waits for a
     * controller it never names): publishing must not sit out the Admin timeout. */
    int64_t took = publish_version("models-publish", "rul", 1);
    if (took > 5000)
        fail_msg("publishing took %lld ms", (long long)took);
    publish_version("models-publish", "rul", 2);
    publish_version("models-publish", "other", 1);

    struct record records[8];
    size_t n = read_topic("models-publish", records, 8);
    assert_int_equal(n, 3);
    int32_t rul_partition = -1, rul_versions = 0;
    for (size_t i = 0; i < n; i++) {
        struct record *r = &records[i];
        assert_string_equal(r->key, artefact_name(r->artefact));
        assert_string_equal(r->header_name, artefact_name(r->artefact));
        char version[16];
        snprintf(version, sizeof version, "%d", (int)artefact_version(r->artefact));
        assert_string_equal(r->header_version, version);
        if (strcmp(r->key, "rul") == 0) {
            /* One key, one partition, in publishing order. */
            if (rul_partition >= 0)
                assert_int_equal(r->partition, rul_partition);
            rul_partition = r->partition;
            assert_int_equal(artefact_version(r->artefact), ++rul_versions);
        }
        artefact_destroy(r->artefact);
    }
    assert_int_equal(rul_versions, 2);
}

static void test_publish_refusals(void **state)
{
    (void)state;
    size_t nprops;
    const struct kafka_prop *props = broker_props(&nprops);
    char err[512] = "";
    struct artefact *unversioned = support_make_artefact("rul", 0, 1.0);
    assert_int_equal(
        model_topic_publish(props, nprops, "models", unversioned, 1000, err, sizeof err), TB_USAGE);
    assert_non_null(strstr(err, "model 'rul' has version 0"));
    artefact_set_version(unversioned, 1);
    assert_int_equal(model_topic_publish(props, nprops, "", unversioned, 1000, err, sizeof err),
                     TB_USAGE);
    assert_non_null(strstr(err, "no models topic"));
    struct artefact *badly_named = support_make_artefact("a b", 1, 1.0);
    assert_int_equal(
        model_topic_publish(props, nprops, "models", badly_named, 1000, err, sizeof err), TB_USAGE);
    assert_non_null(strstr(err, "model name 'a b'"));
    const struct kafka_prop bad[] = {{"no.such.property", "1"}};
    assert_int_equal(model_topic_publish(bad, 1, "models", unversioned, 1000, err, sizeof err),
                     TB_KAFKA);
    assert_non_null(strstr(err, "no.such.property"));
    artefact_destroy(badly_named);
    artefact_destroy(unversioned);
}

static void test_publish_times_out_without_broker(void **state)
{
    (void)state;
    const struct kafka_prop props[] = {{"bootstrap.servers", "127.0.0.1:1"}, {"log_level", "0"}};
    struct artefact *artefact = support_make_artefact("rul", 1, 1.0);
    char err[512] = "";
    int64_t start = clock_monotonic_ms();
    assert_int_equal(model_topic_publish(props, 2, "models", artefact, 1500, err, sizeof err),
                     TB_TIMEOUT);
    int64_t took = clock_monotonic_ms() - start;
    assert_string_equal(err, "model 'rul' version 1: topic 'models' did not acknowledge it "
                             "within 1500 ms");
    if (took < 1400 || took > 4000)
        fail_msg("gave up after %lld ms", (long long)took);
    artefact_destroy(artefact);
}

static void test_watch_reads_latest_then_new(void **state)
{
    (void)state;
    publish_version("models-watch", "rul", 1);
    publish_version("models-watch", "other", 7); /* another key: ignored */
    publish_version("models-watch", "rul", 2);
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(NULL, "models-watch", 0, c);
    size_t n = wait_reported(c, 2);
    expect_no_more(c, n);
    assert_in_range(n, 1, 2); /* at least the latest; what compaction kept before it */
    expect_increasing(c);
    for (size_t i = 0; i < n; i++) {
        assert_false(c->events[i].refused);
        assert_string_equal(c->events[i].name, "rul");
        expect_topic_origin(&c->events[i], "models-watch");
    }
    publish_version("models-watch", "rul", 3);
    assert_int_equal(wait_reported(c, 3), n + 1);
    expect_no_more(c, n + 1);
    /* Stopping is prompt while the topic's partitions are being read. */
    int64_t start = clock_monotonic_ms();
    model_watch_destroy(watch);
    int64_t took = clock_monotonic_ms() - start;
    if (took > 1000)
        fail_msg("destroy took %lld ms", (long long)took);
    support_collector_destroy(c);
}

static void test_watch_after_version(void **state)
{
    (void)state;
    for (int32_t v = 1; v <= 3; v++)
        publish_version("models-after", "rul", v);
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(NULL, "models-after", 3, c);
    expect_no_more(c, 0);
    publish_version("models-after", "rul", 4);
    assert_int_equal(wait_reported(c, 4), 1);
    expect_no_more(c, 1);
    model_watch_destroy(watch);
    support_collector_destroy(c);
}

static void test_watch_refuses_bad_records(void **state)
{
    (void)state;
    const char *topic = "models-bad";
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(NULL, topic, 0, c);
    /* Not an artefact, and no version header: refused as version 0. */
    produce_raw(topic, "rul", "garbage", 7, NULL);
    /* Version 5 with a damaged coefficient. */
    size_t len = 0;
    unsigned char *bytes = support_corrupt_artefact("rul", 5, &len);
    produce_raw(topic, "rul", bytes, len, "5");
    free(bytes);
    /* Another model's version 7 under this model's key. */
    struct artefact *foreign = support_make_artefact("other", 7, 1.0);
    char err[512] = "";
    assert_int_equal(artefact_encode(foreign, &bytes, &len, err, sizeof err), TB_OK);
    produce_raw(topic, "rul", bytes, len, "7");
    free(bytes);
    artefact_destroy(foreign);
    /* A damaged version 6: refused too (a refused record's claim raises nothing). */
    bytes = support_corrupt_artefact("rul", 6, &len);
    produce_raw(topic, "rul", bytes, len, "6");
    free(bytes);
    /* Garbage claiming the highest version there is must not hide the versions after it. */
    produce_raw(topic, "rul", "garbage", 7, "2147483647");
    publish_version(topic, "rul", 8);

    assert_int_equal(wait_reported(c, 8), 6);
    expect_no_more(c, 6);
    for (size_t i = 0; i < 6; i++)
        expect_topic_origin(&c->events[i], topic);
    assert_true(c->events[0].refused);
    assert_int_equal(c->events[0].version, 0);
    assert_true(c->events[0].reason[0] != '\0');
    assert_true(c->events[1].refused);
    assert_int_equal(c->events[1].version, 5);
    if (!strstr(c->events[1].reason, "checksum mismatch"))
        fail_msg("reason: %s", c->events[1].reason);
    /* The reason starts with the origin. */
    assert_int_equal(strncmp(c->events[1].reason, c->events[1].origin, strlen(c->events[1].origin)),
                     0);
    assert_true(c->events[2].refused);
    assert_int_equal(c->events[2].version, 7);
    assert_string_equal(c->events[2].reason, "it holds model 'other', not 'rul'");
    assert_true(c->events[3].refused);
    assert_int_equal(c->events[3].version, 6);
    assert_true(c->events[4].refused);
    assert_int_equal(c->events[4].version, 2147483647);
    assert_false(c->events[5].refused);
    assert_string_equal(c->events[5].name, "rul");
    model_watch_destroy(watch);
    support_collector_destroy(c);
}

static void test_watch_waits_for_topic(void **state)
{
    (void)state;
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(NULL, "models-late", 0, c);
    usleep(1500 * 1000);
    publish_version("models-late", "rul", 1);
    assert_int_equal(wait_reported(c, 1), 1);
    expect_no_more(c, 1);
    model_watch_destroy(watch);
    support_collector_destroy(c);
}

static void test_watch_directory_and_topic(void **state)
{
    (void)state;
    const char *topic = "models-both";
    char registry[128];
    snprintf(registry, sizeof registry, "%s/registry", world.dir);
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(registry, topic, 0, c);
    size_t nprops;
    const struct kafka_prop *props = broker_props(&nprops);
    char err[512] = "";
    /* Versions 1..3 in both places, as `tributary train --publish` would. */
    for (int32_t v = 1; v <= 3; v++) {
        struct artefact *artefact = support_make_artefact("rul", 0, 1.0);
        int32_t version = 0;
        assert_int_equal(registry_publish(registry, artefact, &version, err, sizeof err), TB_OK);
        assert_int_equal(version, v);
        assert_int_equal(model_topic_publish(props, nprops, topic, artefact, PUBLISH_TIMEOUT_MS,
                                             err, sizeof err),
                         TB_OK);
        artefact_destroy(artefact);
    }
    assert_int_equal(wait_reported(c, 3), 3);
    /* Version 4 appears on the topic first; the directory's own version 4, published after it,
     * is not reported again, and its version 5 is. */
    publish_version(topic, "rul", 4);
    assert_int_equal(wait_reported(c, 4), 4);
    assert_true(strncmp(c->events[3].origin, "topic ", 6) == 0);
    struct artefact *artefact = support_make_artefact("rul", 0, 1.0);
    int32_t version = 0;
    assert_int_equal(registry_publish(registry, artefact, &version, err, sizeof err), TB_OK);
    artefact_destroy(artefact);
    assert_int_equal(version, 4); /* the directory's own numbering */
    artefact = support_make_artefact("rul", 0, 1.0);
    assert_int_equal(registry_publish(registry, artefact, &version, err, sizeof err), TB_OK);
    artefact_destroy(artefact);
    assert_int_equal(version, 5);
    assert_int_equal(wait_reported(c, 5), 5);
    char want[256];
    snprintf(want, sizeof want, "%s/rul/v5.avro", registry);
    assert_string_equal(c->events[4].origin, want);
    expect_no_more(c, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_false(c->events[i].refused);
        assert_int_equal(c->events[i].version, (int32_t)i + 1);
    }
    model_watch_destroy(watch);
    support_collector_destroy(c);
    (void)support_rmtree(registry);
}

static int world_setup(void **state)
{
    (void)state;
    log_set_level(getenv("TEST_LOG_INFO") ? LOG_INFO : LOG_WARN);
    snprintf(world.dir, sizeof world.dir, "/tmp/tributary-models-XXXXXX");
    if (!mkdtemp(world.dir))
        return -1;
    char err[256];
    world.broker = embedded_broker_new(1, err, sizeof err);
    if (!world.broker) {
        fprintf(stderr, "embedded broker: %s\n", err);
        return -1;
    }
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    embedded_broker_destroy(world.broker);
    (void)support_rmtree(world.dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("publish: keyed by model, version headers, decodable, no Admin wait",
                   test_publish_record, NULL),
        NAMED_CASE("publish: version 0, a bad name, no topic, a bad property are refused",
                   test_publish_refusals, NULL),
        NAMED_CASE("publish: no broker is a timeout within the limit",
                   test_publish_times_out_without_broker, NULL),
        NAMED_CASE("watch: the latest version already there, then a new one, once each",
                   test_watch_reads_latest_then_new, NULL),
        NAMED_CASE("watch: after_version is honoured on the topic", test_watch_after_version, NULL),
        NAMED_CASE("watch: garbage, damaged and foreign records refused, the next reported",
                   test_watch_refuses_bad_records, NULL),
        NAMED_CASE("watch: a topic created after the start is found", test_watch_waits_for_topic,
                   NULL),
        NAMED_CASE("watch: directory and topic together report each version once",
                   test_watch_directory_and_topic, NULL),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
