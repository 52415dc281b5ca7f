/* Integration: the changelog topic on the embedded broker. Entries produced with
 * kafka_sink_produce_to land in the partitions asked for; changelog_restore reads exactly the
 * partitions it is given, each in order up to its end, passes tombstones on, counts and logs what
 * does not decode, restores nothing (and creates nothing) for an empty partition or a topic that
 * does not exist, refuses bad arguments, gives up on a dead broker within its timeout, and reads
 * ~20k entries quickly. */
#include "connectors/avro/avro_wire.h"
#include "connectors/kafka/changelog.h"
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "tests/support/kafka_support.h"
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

#define PARTITIONS 4
#define RESTORE_MS 10000 /* the restore timeout the cases give */
#define BULK       20000 /* entries in the timed restore */

static struct {
    struct embedded_broker *broker;
    struct kafka_prop props[1];
} world;

/* --- producing -------------------------------------------------------------------------------- */

/* A sink for topic whose delivery reports must all be successes; *handle is its topic handle. */
static struct kafka_sink *sink_new(const char *topic, rd_kafka_topic_t **handle)
{
    return kafka_support_sink_new(world.broker, topic, handle);
}

/* Produces value[0..len) (NULL: a null value) under key[0..keylen) (NULL: none) to partition. */
static void produce_to(struct kafka_sink *sink, rd_kafka_topic_t *handle, int32_t partition,
                       const char *key, size_t keylen, const void *value, size_t len)
{
    char err[256];
    int rc = kafka_sink_produce_to(sink, handle, partition, key, keylen, value, len, NULL, 0, 0,
                                   err, sizeof err);
    if (rc != TB_OK)
        fail_msg("kafka_sink_produce_to partition %d: %s", (int)partition, err);
}

static void produce_entry(struct kafka_sink *sink, rd_kafka_topic_t *handle,
                          const struct changelog_entry *e)
{
    struct avro_wire_buf buf = {0};
    changelog_encode(e, &buf);
    produce_to(sink, handle, e->partition, e->key, e->key_len, e->tombstone ? NULL : buf.data,
               buf.len);
    avro_wire_buf_free(&buf);
}

static void wait_delivered(struct kafka_sink *sink)
{
    assert_int_equal(kafka_sink_wait(sink, 30000), TB_OK);
}

static void create_topic(const char *topic, int partitions)
{
    char err[256];
    if (embedded_broker_create_topic(world.broker, topic, partitions, err, sizeof err) != TB_OK)
        fail_msg("%s", err);
}

/* --- what a restore passes on ----------------------------------------------------------------- */

/* One entry as the callback saw it: key, partition, tombstone, and its value re-encoded (so that
 * comparing bytes compares every value field, doubles bit for bit). */
struct seen {
    int32_t partition;
    char *key;
    size_t key_len;
    bool tombstone;
    struct avro_wire_buf value;
};

struct collector {
    struct seen *items;
    size_t n, cap;
};

static void collect(void *opaque, const struct changelog_entry *e)
{
    struct collector *c = opaque;
    mem_grow((void **)&c->items, &c->cap, c->n + 1, sizeof *c->items);
    struct seen *s = &c->items[c->n++];
    *s = (struct seen){.partition = e->partition,
                       .key = mem_strndup(e->key, e->key_len),
                       .key_len = e->key_len,
                       .tombstone = e->tombstone};
    changelog_encode(e, &s->value);
    if (e->tombstone)
        assert_true(e->offset == -1 && e->nstate == 0 && e->nwindow == 0 && e->nmetrics == 0);
}

static void collector_free(struct collector *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].key);
        avro_wire_buf_free(&c->items[i].value);
    }
    free(c->items);
    *c = (struct collector){0};
}

/* Restores partitions of topic into c; returns the status, *nbad and err as given. */
static int restore(const char *topic, const int32_t *partitions, size_t n, struct collector *c,
                   size_t *nbad, char *err, size_t errsz)
{
    return changelog_restore(world.props, 1, topic, partitions, n, RESTORE_MS, collect, c, nbad,
                             err, errsz);
}

/* Fails unless the entries of partition p in c are exactly want[0..nwant) (the entries of p among
 * them, in order). */
static void expect_partition(const struct collector *c, int32_t p,
                             const struct changelog_entry *want, size_t nwant)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct seen *s = &c->items[i];
        if (s->partition != p)
            continue;
        while (k < nwant && want[k].partition != p)
            k++;
        if (k == nwant)
            fail_msg("partition %d: an entry for '%.40s' more than were produced", (int)p, s->key);
        const struct changelog_entry *w = &want[k++];
        if (s->key_len != w->key_len || memcmp(s->key, w->key, w->key_len) != 0)
            fail_msg("partition %d: key '%.40s', want '%.40s'", (int)p, s->key, w->key);
        assert_int_equal(s->tombstone, w->tombstone);
        struct avro_wire_buf value = {0};
        changelog_encode(w, &value);
        assert_int_equal(s->value.len, value.len);
        assert_memory_equal(s->value.data, value.data, value.len);
        avro_wire_buf_free(&value);
    }
    while (k < nwant && want[k].partition != p)
        k++;
    if (k != nwant)
        fail_msg("partition %d: the entry for '%.40s' did not arrive", (int)p, want[k].key);
}

/* Runs fn with the standard error going to a file, and returns what was written there (the
 * caller frees it). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char *path = NULL;
    FILE *file = support_temp_file("changelog-stderr", &path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(file), STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fclose(file);
    size_t len = 0;
    char *text = support_read_file(path, &len);
    unlink(path);
    free(path);
    return text;
}

/* --- cases ------------------------------------------------------------------------------------ */

static const double state_a[] = {1.0, 0.5, -0.0, 2.0}, state_b[] = {3.25, -1.5, 0.0, 1e-300};
static const double window_a[] = {10.0, 20.0, 11.0, 21.0}, metrics_a[] = {5.0, 0.25};

static struct changelog_entry entry(const char *key, int32_t partition, int64_t offset,
                                    const double *state)
{
    return (struct changelog_entry){.key = key,
                                    .key_len = strlen(key),
                                    .partition = partition,
                                    .offset = offset,
                                    .model = "rls",
                                    .model_len = 3,
                                    .state = state,
                                    .nstate = 4,
                                    .window = window_a,
                                    .nwindow = 4,
                                    .window_width = 2,
                                    .records = offset + 1,
                                    .metrics = metrics_a,
                                    .nmetrics = 2};
}

/* The argument of restore_mixed, run with the standard error captured. */
struct mixed_run {
    int32_t partitions[2];
    struct collector c;
    size_t nbad;
    int rc;
    char err[512];
    int64_t took_ms;
};

static void restore_mixed(void *arg)
{
    struct mixed_run *run = arg;
    int64_t start = clock_monotonic_ms();
    run->rc = restore("changelog-mixed", run->partitions, 2, &run->c, &run->nbad, run->err,
                      sizeof run->err);
    run->took_ms = clock_monotonic_ms() - start;
}

static void test_restore_two_of_four(void **state)
{
    (void)state;
    const char *topic = "changelog-mixed";
    create_topic(topic, PARTITIONS);
    static char long_key[10001];
    memset(long_key, 'k', sizeof long_key - 1);
    memcpy(long_key, "machine-with-a-long-name", 24);
    /* In production order; every partition has entries, 1 and 3 have the special ones. */
    struct changelog_entry want[] = {
        entry("m-0", 0, 10, state_a), entry("m-1", 1, 11, state_a),
        entry("m-2", 2, 12, state_a), entry("m-3", 3, 13, state_a),
        entry("m-5", 1, 15, state_b), entry("m-1", 1, 21, state_b), /* m-1 replaced */
        entry("m-4", 0, 14, state_b), entry(long_key, 3, 23, state_b),
        entry("m-3", 3, -1, state_a), entry("m-6", 2, 16, state_a),
        entry("m-7", 3, 17, state_a), entry("m-1", 1, 31, state_a), /* replaced again */
    };
    want[8].tombstone = true; /* m-3 deleted */
    want[8].offset = -1;
    want[8].nstate = want[8].nwindow = want[8].nmetrics = 0;
    want[8].window_width = 0;
    want[8].records = 0;
    want[8].model_len = 0;
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = sink_new(topic, &handle);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        produce_entry(sink, handle, &want[i]);
        /* Garbage after the third entry of partition 1, and a keyless entry in partition 3. */
        if (i == 4)
            produce_to(sink, handle, 1, "m-9", 3, "not an entry", 12);
        if (i == 7) {
            struct avro_wire_buf buf = {0};
            changelog_encode(&want[7], &buf);
            produce_to(sink, handle, 3, NULL, 0, buf.data, buf.len);
            avro_wire_buf_free(&buf);
        }
    }
    wait_delivered(sink);
    kafka_sink_destroy(sink);

    struct mixed_run run = {.partitions = {3, 1}};
    char *log = capture_stderr(restore_mixed, &run);
    if (run.rc != TB_OK)
        fail_msg("restore: %s (%s)", tb_strerror(run.rc), run.err);
    print_message("restored partitions 3 and 1 (%zu entries) in %lld ms\n", run.c.n,
                  (long long)run.took_ms);
    /* 4 entries of partition 1 and 4 of partition 3, none of 0 and 2. */
    assert_int_equal(run.c.n, 8);
    for (size_t i = 0; i < run.c.n; i++)
        assert_true(run.c.items[i].partition == 1 || run.c.items[i].partition == 3);
    expect_partition(&run.c, 1, want, sizeof want / sizeof want[0]);
    expect_partition(&run.c, 3, want, sizeof want / sizeof want[0]);
    /* The garbage is offset 2 of partition 1 ('n' is offset 55, 'o' a model length of -56), the
     * keyless entry offset 2 of partition 3. */
    assert_int_equal(run.nbad, 2);
    if (!strstr(
            log,
            "changelog 'changelog-mixed' partition 1 offset 2: field 'model': negative length -56; "
            "entry skipped") ||
        !strstr(log, "changelog 'changelog-mixed' partition 3 offset 2: no key; entry skipped"))
        fail_msg("the log lacks the skipped entries:\n%s", log);
    free(log);
    collector_free(&run.c);

    /* Partitions 0 and 2, and all four: the same entries again, nothing bad in 0 and 2. */
    struct collector c = {0};
    size_t nbad = 99;
    char err[512] = "";
    const int32_t even[] = {0, 2};
    assert_int_equal(restore(topic, even, 2, &c, &nbad, err, sizeof err), TB_OK);
    assert_int_equal(nbad, 0);
    assert_int_equal(c.n, 4);
    expect_partition(&c, 0, want, sizeof want / sizeof want[0]);
    expect_partition(&c, 2, want, sizeof want / sizeof want[0]);
    collector_free(&c);
    const int32_t all[] = {2, 0, 1, 3};
    assert_int_equal(restore(topic, all, 4, &c, &nbad, err, sizeof err), TB_OK);
    assert_int_equal(nbad, 2);
    assert_int_equal(c.n, sizeof want / sizeof want[0]);
    for (int32_t p = 0; p < PARTITIONS; p++)
        expect_partition(&c, p, want, sizeof want / sizeof want[0]);
    collector_free(&c);
}

static void test_restore_sees_later_entries(void **state)
{
    (void)state;
    const char *topic = "changelog-later";
    create_topic(topic, 2);
    struct changelog_entry want[] = {entry("a", 1, 1, state_a), entry("b", 1, 2, state_a),
                                     entry("a", 1, 3, state_b)};
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = sink_new(topic, &handle);
    produce_entry(sink, handle, &want[0]);
    produce_entry(sink, handle, &want[1]);
    wait_delivered(sink);
    const int32_t one[] = {1};
    struct collector c = {0};
    size_t nbad = 0;
    char err[512] = "";
    assert_int_equal(restore(topic, one, 1, &c, &nbad, err, sizeof err), TB_OK);
    expect_partition(&c, 1, want, 2);
    collector_free(&c);
    /* A restore reads to the end that the partition has when it starts. */
    produce_entry(sink, handle, &want[2]);
    wait_delivered(sink);
    kafka_sink_destroy(sink);
    assert_int_equal(restore(topic, one, 1, &c, &nbad, err, sizeof err), TB_OK);
    expect_partition(&c, 1, want, 3);
    collector_free(&c);
}

static void test_restore_nothing(void **state)
{
    (void)state;
    create_topic("changelog-empty", 2);
    struct collector c = {0};
    size_t nbad = 99;
    char err[512] = "";
    /* Empty partitions, and one the topic does not have. */
    const int32_t partitions[] = {0, 1, 5};
    int64_t start = clock_monotonic_ms();
    assert_int_equal(restore("changelog-empty", partitions, 3, &c, &nbad, err, sizeof err), TB_OK);
    int64_t took_empty = clock_monotonic_ms() - start;
    assert_int_equal(c.n, 0);
    assert_int_equal(nbad, 0);
    /* A topic that does not exist restores nothing and is not created by it. */
    nbad = 99;
    start = clock_monotonic_ms();
    assert_int_equal(restore("changelog-missing", partitions, 3, &c, &nbad, err, sizeof err),
                     TB_OK);
    int64_t took_missing = clock_monotonic_ms() - start;
    assert_int_equal(c.n, 0);
    assert_int_equal(nbad, 0);
    print_message("empty partitions: %lld ms, missing topic: %lld ms\n", (long long)took_empty,
                  (long long)took_missing);
    if (took_empty > 2000 || took_missing > 2000)
        fail_msg("restoring nothing took %lld and %lld ms", (long long)took_empty,
                 (long long)took_missing);
    int count = -1;
    assert_int_equal(changelog_topic_partitions(world.props, 1, "changelog-missing", 5000, &count,
                                                err, sizeof err),
                     TB_OK);
    assert_int_equal(count, 0);
    assert_int_equal(changelog_topic_partitions(world.props, 1, "changelog-empty", 5000, &count,
                                                err, sizeof err),
                     TB_OK);
    assert_int_equal(count, 2);
    /* No partitions at all: nothing to do, not even a connection. */
    nbad = 99;
    assert_int_equal(restore("changelog-empty", NULL, 0, &c, &nbad, err, sizeof err), TB_OK);
    assert_int_equal(nbad, 0);
}

static void test_restore_refusals(void **state)
{
    (void)state;
    struct collector c = {0};
    size_t nbad = 0;
    char err[512] = "";
    const int32_t negative[] = {0, -1}, twice[] = {1, 0, 1};
    assert_int_equal(restore("changelog-empty", negative, 2, &c, &nbad, err, sizeof err), TB_USAGE);
    assert_string_equal(err, "changelog 'changelog-empty': partition -1");
    assert_int_equal(restore("changelog-empty", twice, 3, &c, &nbad, err, sizeof err), TB_USAGE);
    assert_string_equal(err, "changelog 'changelog-empty': partition 1 given twice");
    assert_int_equal(restore("", twice, 1, &c, &nbad, err, sizeof err), TB_USAGE);
    assert_string_equal(err, "no changelog topic given");
    assert_int_equal(changelog_restore(world.props, 1, "changelog-empty", twice, 1, 0, collect, &c,
                                       &nbad, err, sizeof err),
                     TB_USAGE);
    assert_string_equal(err, "changelog 'changelog-empty': timeout 0 ms");
    const struct kafka_prop bad[] = {{"no.such.property", "1"}};
    assert_int_equal(changelog_restore(bad, 1, "changelog-empty", twice, 1, 1000, collect, &c,
                                       &nbad, err, sizeof err),
                     TB_CONFIG);
    assert_non_null(strstr(err, "no.such.property"));
    assert_int_equal(c.n, 0);
}

static void test_restore_dead_broker(void **state)
{
    (void)state;
    const struct kafka_prop props[] = {{"bootstrap.servers", "127.0.0.1:1"}, {"log_level", "0"}};
    const int32_t partitions[] = {0};
    struct collector c = {0};
    size_t nbad = 0;
    char err[512] = "";
    int64_t start = clock_monotonic_ms();
    assert_int_equal(changelog_restore(props, 2, "changelog-empty", partitions, 1, 1500, collect,
                                       &c, &nbad, err, sizeof err),
                     TB_KAFKA);
    int64_t took = clock_monotonic_ms() - start;
    assert_non_null(strstr(err, "changelog 'changelog-empty': no metadata: "));
    if (took < 1400 || took > 4000)
        fail_msg("gave up after %lld ms", (long long)took);
    int count = -1;
    assert_int_equal(
        changelog_topic_partitions(props, 2, "changelog-empty", 500, &count, err, sizeof err),
        TB_KAFKA);
}

static void test_restore_fetch_refused(void **state)
{
    (void)state;
    const char *topic = "changelog-stuck";
    create_topic(topic, 2);
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = sink_new(topic, &handle);
    for (int64_t i = 0; i < 3; i++) {
        struct changelog_entry e = entry("a", 1, i, state_a);
        produce_entry(sink, handle, &e);
    }
    wait_delivered(sink);
    kafka_sink_destroy(sink);
    /* Every fetch is refused (ApiKey 1 is Fetch) until the errors are cleared. */
    rd_kafka_mock_cluster_t *cluster = embedded_broker_cluster(world.broker);
    enum { NERRORS = 10000 };
    rd_kafka_resp_err_t *refusals = mem_alloc(NERRORS * sizeof *refusals);
    for (size_t i = 0; i < NERRORS; i++)
        refusals[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    rd_kafka_mock_push_request_errors_array(cluster, 1, NERRORS, refusals);
    free(refusals);
    const int32_t both[] = {0, 1};
    struct collector c = {0};
    size_t nbad = 0;
    char err[512] = "";
    int64_t start = clock_monotonic_ms();
    int rc = changelog_restore(world.props, 1, topic, both, 2, 1500, collect, &c, &nbad, err,
                               sizeof err);
    int64_t took = clock_monotonic_ms() - start;
    rd_kafka_mock_clear_request_errors(cluster, 1);
    assert_int_equal(rc, TB_KAFKA);
    print_message("%s\n", err);
    /* Partition 0 is empty, so only 1 is missing. */
    if (!strstr(err, "changelog 'changelog-stuck' not restored within 1500 ms: partition 1 at "
                     "offset 0 of 3 (last error: "))
        fail_msg("message: %s", err);
    if (took < 1400 || took > 4000)
        fail_msg("gave up after %lld ms", (long long)took);
    assert_int_equal(c.n, 0);
    /* With the broker well again, the same restore succeeds. */
    assert_int_equal(restore(topic, both, 2, &c, &nbad, err, sizeof err), TB_OK);
    assert_int_equal(c.n, 3);
    collector_free(&c);
}

static void test_produce_to_missing_partition(void **state)
{
    (void)state;
    const char *topic = "changelog-narrow";
    create_topic(topic, 2);
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = sink_new(topic, &handle);
    struct changelog_entry e = entry("a", 1, 1, state_a);
    produce_entry(sink, handle, &e);
    wait_delivered(sink);
    /* The producer now knows the topic has 2 partitions. */
    char err[256] = "";
    assert_int_equal(
        kafka_sink_produce_to(sink, handle, 2, "a", 1, "x", 1, NULL, 0, 0, err, sizeof err),
        TB_KAFKA);
    assert_string_equal(err, "produce to 'changelog-narrow' partition 2: Local: Unknown partition");
    kafka_sink_destroy(sink);
}

/* Counts a bulk restore's entries and checks each partition's come in production order. */
struct bulk {
    size_t n, per_partition[PARTITIONS];
    int64_t last_offset[PARTITIONS];
    size_t out_of_order;
};

static void count_bulk(void *opaque, const struct changelog_entry *e)
{
    struct bulk *b = opaque;
    b->n++;
    if (e->partition < 0 || e->partition >= PARTITIONS || e->nstate != 20 || e->nwindow != 12) {
        b->out_of_order++;
        return;
    }
    b->per_partition[e->partition]++;
    if (e->offset <= b->last_offset[e->partition])
        b->out_of_order++;
    b->last_offset[e->partition] = e->offset;
}

static void test_restore_bulk_timed(void **state)
{
    (void)state;
    const char *topic = "changelog-bulk";
    create_topic(topic, PARTITIONS);
    rd_kafka_topic_t *handle = NULL;
    struct kafka_sink *sink = sink_new(topic, &handle);
    double values[36];
    struct avro_wire_buf buf = {0};
    size_t bytes = 0;
    support_rng_seed(7);
    for (size_t i = 0; i < BULK; i++) {
        for (size_t k = 0; k < 36; k++)
            values[k] = support_rng_normal();
        char key[32];
        snprintf(key, sizeof key, "machine-%05zu", i % 5000);
        /* offset = i: increasing within each partition, as a worker's checkpoints are. */
        struct changelog_entry e = {.key = key,
                                    .key_len = strlen(key),
                                    .partition = (int32_t)(i % PARTITIONS),
                                    .offset = (int64_t)i,
                                    .model = "rls",
                                    .model_len = 3,
                                    .state = values,
                                    .nstate = 20,
                                    .window = values + 20,
                                    .nwindow = 12,
                                    .window_width = 4,
                                    .records = (int64_t)i,
                                    .metrics = values + 32,
                                    .nmetrics = 4};
        avro_wire_buf_reset(&buf);
        changelog_encode(&e, &buf);
        bytes += buf.len;
        produce_to(sink, handle, e.partition, e.key, e.key_len, buf.data, buf.len);
    }
    avro_wire_buf_free(&buf);
    wait_delivered(sink);
    kafka_sink_destroy(sink);

    struct bulk b = {.last_offset = {-1, -1, -1, -1}};
    const int32_t all[] = {0, 1, 2, 3};
    size_t nbad = 0;
    char err[512] = "";
    double start = clock_monotonic_s();
    int rc = changelog_restore(world.props, 1, topic, all, PARTITIONS, RESTORE_MS, count_bulk, &b,
                               &nbad, err, sizeof err);
    double took = clock_monotonic_s() - start;
    if (rc != TB_OK)
        fail_msg("restore: %s", err);
    print_message("restored %zu entries (%.1f MB of values) from %d partitions in %.0f ms\n", b.n,
                  (double)bytes / 1e6, PARTITIONS, took * 1e3);
    assert_int_equal(b.n, BULK);
    assert_int_equal(nbad, 0);
    assert_int_equal(b.out_of_order, 0);
    for (int p = 0; p < PARTITIONS; p++)
        assert_int_equal(b.per_partition[p], BULK / PARTITIONS);
    if (took > 2.0)
        fail_msg("the restore took %.0f ms", took * 1e3);

    /* Half of them: two partitions. */
    struct bulk half = {.last_offset = {-1, -1, -1, -1}};
    const int32_t two[] = {1, 2};
    start = clock_monotonic_s();
    rc = changelog_restore(world.props, 1, topic, two, 2, RESTORE_MS, count_bulk, &half, &nbad, err,
                           sizeof err);
    took = clock_monotonic_s() - start;
    assert_int_equal(rc, TB_OK);
    print_message("restored %zu entries from 2 partitions in %.0f ms\n", half.n, took * 1e3);
    assert_int_equal(half.n, BULK / 2);
    assert_int_equal(half.per_partition[0] + half.per_partition[3], 0);
    assert_int_equal(half.out_of_order, 0);
}

static int world_setup(void **state)
{
    (void)state;
    log_set_level(getenv("TEST_LOG_INFO") ? LOG_INFO : LOG_WARN);
    char err[256];
    world.broker = embedded_broker_new(3, err, sizeof err);
    if (!world.broker) {
        fprintf(stderr, "embedded broker: %s\n", err);
        return -1;
    }
    world.props[0] =
        (struct kafka_prop){"bootstrap.servers", embedded_broker_bootstraps(world.broker)};
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    embedded_broker_destroy(world.broker);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("restore: two of four partitions, in order, tombstone passed, bad counted",
                   test_restore_two_of_four, NULL),
        NAMED_CASE("restore: reads to the end the partition has when it starts",
                   test_restore_sees_later_entries, NULL),
        NAMED_CASE("restore: empty and missing partitions and topics give nothing, create nothing",
                   test_restore_nothing, NULL),
        NAMED_CASE("restore: bad partitions, topic, timeout and properties are refused",
                   test_restore_refusals, NULL),
        NAMED_CASE("restore: a dead broker is an error within the timeout",
                   test_restore_dead_broker, NULL),
        NAMED_CASE(
            "restore: refused fetches are an error within the timeout, naming what is missing",
            test_restore_fetch_refused, NULL),
        NAMED_CASE("produce_to: a partition the topic lacks is refused at once",
                   test_produce_to_missing_partition, NULL),
        NAMED_CASE("restore: 20000 entries from 4 partitions, timed", test_restore_bulk_timed,
                   NULL),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
