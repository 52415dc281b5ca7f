/* Integration: per-partition consumer lag from librdkafka's statistics (kafka_source_lag) on the
 * embedded broker.
 *
 * The scenario runs once in the group setup. 400 records go to a 4-partition topic, 40, 80, 120
 * and 160 to partitions 0..3. A source in a group, with statistics every 100 ms, processes (stores
 * and commits) only the first 10, 20, 30 and 40 of them and stops; a second one resumes from the
 * group's committed offsets and processes everything; then a third member joins and takes some
 * partitions over from it. A thread reads kafka_source_lag all along, as the service's metrics
 * thread does. A last source, with statistics off, reports nothing. Each case then checks one
 * thing that the metrics endpoint relies on.
 *
 * The expected figures come from the broker (rd_kafka_query_watermark_offsets) and from what the
 * test itself stored and committed, never from the statistics. librdkafka 2.0.2's consumer_lag is
 * the end offset minus the *committed* offset, so the lag is checked against what was committed
 * (offsets stored but not committed do not count). */
#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_conf.h"
#include "connectors/kafka/kafka_source.h"
#include "service/base/error.h"
#include "service/base/log.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define TOPIC      "lag-input"
#define PARTITIONS 4
#define WAIT_MS    60000 /* for a condition that the cluster reaches in seconds */

/* Records produced to partition p, and how many of them the first run processes. */
static const int64_t produced[PARTITIONS] = {40, 80, 120, 160};
static const int64_t processed_first[PARTITIONS] = {10, 20, 30, 40};

/* What one source has processed: per partition, the next offset to process and the first offset
 * not to process. A record is processed, that is its offset stored, only when it is the next one
 * and below the limit; the others are passed over. */
struct progress {
    struct kafka_source *source;
    int64_t next[PARTITIONS];
    int64_t limit[PARTITIONS];
    size_t handed_over;
};

/* A snapshot of kafka_source_lag: how many partitions it reported, and the first PARTITIONS. */
struct snapshot {
    size_t n;
    struct kafka_source_partition_lag lag[PARTITIONS];
};

static struct {
    struct embedded_broker *broker;
    int64_t high[PARTITIONS]; /* the broker's high watermarks after producing */

    struct snapshot part_processed; /* the first run, with only part processed */
    struct snapshot resumed;        /* the second run, everything stored, nothing committed yet */
    struct snapshot all_processed;  /* the second run, after everything was processed */
    struct snapshot first_member;   /* the second run's source, after another member joined */
    struct snapshot second_member;  /* and the member that joined */
    int first_member_assigned;      /* kafka_source_assigned of each then */
    int second_member_assigned;
    size_t short_n; /* kafka_source_lag into a buffer of 2 */
    struct kafka_source_partition_lag short_out[3];
    size_t statistics_off_n; /* kafka_source_lag of a source without statistics */
    int statistics_off_assigned;

    /* the reader thread */
    pthread_t reader;
    struct kafka_source *watched;
    atomic_int stop;
    atomic_ullong reads, nonempty_reads, malformed_reads;
    char malformed[256]; /* the first malformed snapshot, described */
} world;

static int64_t sum_of(const int64_t *v)
{
    int64_t sum = 0;
    for (int p = 0; p < PARTITIONS; p++)
        sum += v[p];
    return sum;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    assert_int_equal(msg->err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Produces produced[p] records to each partition p, then reads the high watermarks back from the
 * broker into world.high. */
static void produce_records(void)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       embedded_broker_bootstraps(world.broker), err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!producer)
        fail_msg("producer: %s", err);
    for (int p = 0; p < PARTITIONS; p++) {
        for (int64_t i = 0; i < produced[p]; i++) {
            char value[32];
            int len = snprintf(value, sizeof value, "p%d-r%lld", p, (long long)i);
            assert_int_equal(
                rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(p),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_VALUE(value, (size_t)len), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t low;
        assert_int_equal(
            rd_kafka_query_watermark_offsets(producer, TOPIC, p, &low, &world.high[p], 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(low, 0);
        assert_int_equal(world.high[p], produced[p]);
    }
    rd_kafka_destroy(producer);
}

static void on_batch(void *opaque, rd_kafka_message_t **msgs, size_t n)
{
    struct progress *progress = opaque;
    for (size_t i = 0; i < n; i++) {
        int32_t p = msgs[i]->partition;
        assert_true(p >= 0 && p < PARTITIONS);
        progress->handed_over++;
        if (msgs[i]->offset == progress->next[p] && msgs[i]->offset < progress->limit[p]) {
            kafka_source_store(progress->source, p, msgs[i]->offset);
            progress->next[p]++;
        }
    }
}

/* A source in `group` reading TOPIC, with statistics every statistics_interval_ms (0: off), that
 * processes each partition up to progress->limit. */
static struct kafka_source *source_new(const char *group, int statistics_interval_ms,
                                       struct progress *progress)
{
    const struct kafka_prop props[] = {
        {"bootstrap.servers", embedded_broker_bootstraps(world.broker)},
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "500"},
    };
    const struct kafka_source_options options = {
        .group_id = group,
        .topic = TOPIC,
        .commit_interval_ms = 3600 * 1000, /* the test commits when it wants to */
        .on_batch = on_batch,
        .opaque = progress,
        .statistics_interval_ms = statistics_interval_ms,
    };
    char err[256];
    struct kafka_source *source =
        kafka_source_new(props, sizeof props / sizeof props[0], &options, err, sizeof err);
    if (!source)
        fail_msg("kafka_source_new: %s", err);
    progress->source = source;
    return source;
}

static void commit(struct kafka_source *source)
{
    char err[256];
    if (kafka_source_commit(source, 10000, err, sizeof err) != TB_OK)
        fail_msg("kafka_source_commit: %s", err);
}

static void take_snapshot(struct kafka_source *source, struct snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    snap->n = kafka_source_lag(source, snap->lag, PARTITIONS);
}

/* Whether snap has figures for exactly `assigned` partitions, each of which has as committed
 * offset committed[partition] and as high watermark world.high[partition]: the statistics have
 * caught up with the commits and the fetches. */
static int settled(const struct snapshot *snap, int assigned, const int64_t *committed)
{
    if (assigned <= 0 || snap->n != (size_t)assigned)
        return 0;
    for (size_t i = 0; i < snap->n; i++) {
        const struct kafka_source_partition_lag *l = &snap->lag[i];
        if (l->partition < 0 || l->partition >= PARTITIONS ||
            l->committed != committed[l->partition] || l->high != world.high[l->partition])
            return 0;
    }
    return 1;
}

static void describe(const struct snapshot *snap, char *out, size_t outsz)
{
    size_t len = (size_t)snprintf(out, outsz, "%zu partitions:", snap->n);
    for (size_t i = 0; i < snap->n && i < PARTITIONS && len < outsz; i++)
        len += (size_t)snprintf(out + len, outsz - len, " [%d lag %lld committed %lld high %lld]",
                                snap->lag[i].partition, (long long)snap->lag[i].lag,
                                (long long)snap->lag[i].committed, (long long)snap->lag[i].high);
}

/* Polls source (which serves its callbacks, statistics among them) until its statistics report
 * every assigned partition with committed offset committed[p] and the broker's high watermark,
 * or WAIT_MS pass; the last snapshot goes to *snap either way. */
static void poll_until_settled(struct kafka_source *source, const int64_t *committed,
                               struct snapshot *snap)
{
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        assert_true(kafka_source_poll_batch(source, 1000, 50) >= 0);
        take_snapshot(source, snap);
        if (settled(snap, kafka_source_assigned(source), committed))
            return;
    }
    char text[512];
    describe(snap, text, sizeof text);
    print_message("statistics did not settle in %d ms: %s\n", WAIT_MS, text);
}

/* Polls until progress has processed each partition up to progress->limit, or WAIT_MS pass. */
static void poll_until_processed(struct progress *progress)
{
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        int done = 1;
        for (int p = 0; p < PARTITIONS; p++)
            done &= progress->next[p] >= progress->limit[p];
        if (done)
            return;
        assert_true(kafka_source_poll_batch(progress->source, 1000, 50) >= 0);
    }
    fail_msg("records were not processed within %d ms", WAIT_MS);
}

/* The metrics thread's view: every snapshot must be in increasing partition order, within the
 * topic, and each lag either unknown or the high watermark minus the committed offset (there are
 * no transactions here, so the last stable offset that consumer_lag uses is the high watermark). */
static void *reader_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&world.stop)) {
        struct snapshot snap;
        take_snapshot(world.watched, &snap);
        int bad = snap.n > PARTITIONS;
        for (size_t i = 0; !bad && i < snap.n; i++) {
            const struct kafka_source_partition_lag *l = &snap.lag[i];
            bad = l->partition < 0 || l->partition >= PARTITIONS ||
                  (i > 0 && l->partition <= snap.lag[i - 1].partition) || l->lag < -1 ||
                  (l->lag >= 0 && l->lag != l->high - l->committed);
        }
        if (bad && atomic_fetch_add(&world.malformed_reads, 1) == 0)
            describe(&snap, world.malformed, sizeof world.malformed);
        atomic_fetch_add(&world.reads, 1);
        if (snap.n > 0)
            atomic_fetch_add(&world.nonempty_reads, 1);
        usleep(200);
    }
    return NULL;
}

/* Starts the reader on source, which must outlive reader_stop. */
static void reader_start(struct kafka_source *source)
{
    world.watched = source;
    atomic_store(&world.stop, 0);
    assert_int_equal(pthread_create(&world.reader, NULL, reader_main, NULL), 0);
}

static void reader_stop(void)
{
    atomic_store(&world.stop, 1);
    assert_int_equal(pthread_join(world.reader, NULL), 0);
}

static void close_source(struct kafka_source *source)
{
    commit(source);
    kafka_source_close(source);
    kafka_source_destroy(source);
}

static int scenario_setup(void **state)
{
    (void)state;
    log_set_level(getenv("TEST_LOG_INFO") ? LOG_INFO : LOG_WARN);
    char err[256];
    world.broker = embedded_broker_new(3, err, sizeof err);
    if (!world.broker)
        fail_msg("embedded_broker_new: %s", err);
    if (embedded_broker_create_topic(world.broker, TOPIC, PARTITIONS, err, sizeof err) != TB_OK)
        fail_msg("embedded_broker_create_topic: %s", err);
    produce_records();

    /* The first run processes (stores and commits) only part of each partition. It receives
     * more (librdkafka prefetches), but does not process it, and stops. */
    struct progress first = {0};
    memcpy(first.limit, processed_first, sizeof first.limit);
    struct kafka_source *source = source_new("lag-group", 100, &first);
    reader_start(source);
    poll_until_processed(&first);
    commit(source);
    poll_until_settled(source, first.next, &world.part_processed);
    world.short_out[2].partition = -7; /* must stay untouched */
    world.short_n = kafka_source_lag(source, world.short_out, 2);
    reader_stop();
    close_source(source);

    /* The second run resumes from the group's committed offsets and processes everything. */
    struct progress second = {0};
    memcpy(second.next, processed_first, sizeof second.next);
    memcpy(second.limit, world.high, sizeof second.limit);
    source = source_new("lag-group", 100, &second);
    reader_start(source);
    poll_until_processed(&second);
    poll_until_settled(source, processed_first, &world.resumed);
    commit(source);
    poll_until_settled(source, second.next, &world.all_processed);

    /* Another member joins: the cooperative rebalance moves some partitions to it. Both are
     * polled (by this one thread) until each reports exactly its own share. */
    struct progress third = {0};
    memcpy(third.next, world.high, sizeof third.next);
    memcpy(third.limit, world.high, sizeof third.limit);
    struct kafka_source *joining = source_new("lag-group", 100, &third);
    for (int waited = 0; waited < 2 * WAIT_MS; waited += 100) {
        assert_true(kafka_source_poll_batch(source, 1000, 50) >= 0);
        assert_true(kafka_source_poll_batch(joining, 1000, 50) >= 0);
        take_snapshot(source, &world.first_member);
        take_snapshot(joining, &world.second_member);
        world.first_member_assigned = kafka_source_assigned(source);
        world.second_member_assigned = kafka_source_assigned(joining);
        if (world.first_member_assigned + world.second_member_assigned == PARTITIONS &&
            settled(&world.first_member, world.first_member_assigned, world.high) &&
            settled(&world.second_member, world.second_member_assigned, world.high))
            break;
    }
    reader_stop();
    close_source(joining);
    close_source(source);

    /* A source without statistics, alone in its group (so it has every partition). */
    struct progress quiet = {0};
    struct kafka_source *silent = source_new("lag-quiet", 0, &quiet);
    for (int waited = 0; waited < WAIT_MS && kafka_source_assigned(silent) < PARTITIONS;
         waited += 100)
        assert_true(kafka_source_poll_batch(silent, 1000, 100) >= 0);
    /* Ten times the interval the others had, for statistics that should not come. */
    for (int i = 0; i < 10; i++)
        assert_true(kafka_source_poll_batch(silent, 1000, 100) >= 0);
    world.statistics_off_assigned = kafka_source_assigned(silent);
    world.statistics_off_n = kafka_source_lag(silent, NULL, 0);
    close_source(silent);
    return 0;
}

static int scenario_teardown(void **state)
{
    (void)state;
    embedded_broker_destroy(world.broker);
    return 0;
}

/* Fails unless snap lists partitions 0..PARTITIONS-1 in order, each with the broker's high
 * watermark, the committed offset committed[p] and a lag of the one minus the other. */
static void assert_every_partition(const struct snapshot *snap, const int64_t *committed)
{
    char text[512];
    describe(snap, text, sizeof text);
    print_message("%s\n", text);
    assert_int_equal(snap->n, PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++) {
        const struct kafka_source_partition_lag *l = &snap->lag[p];
        assert_int_equal(l->partition, p);
        assert_int_equal(l->high, world.high[p]);
        assert_int_equal(l->committed, committed[p]);
        assert_int_equal(l->lag, world.high[p] - committed[p]);
    }
}

static void lag_is_what_is_left_after_the_committed_offset(void **state)
{
    (void)state;
    /* The mock cluster does report consumer_lag (not -1) once offsets are committed. */
    assert_every_partition(&world.part_processed, processed_first);
}

static void lags_sum_to_the_records_not_processed(void **state)
{
    (void)state;
    int64_t sum = 0;
    for (size_t i = 0; i < world.part_processed.n && i < PARTITIONS; i++)
        sum += world.part_processed.lag[i].lag;
    assert_int_equal(world.part_processed.n, PARTITIONS);
    assert_int_equal(sum, sum_of(produced) - sum_of(processed_first)); /* 400 - 100 */
}

static void a_short_buffer_gets_the_count_and_the_first_partitions(void **state)
{
    (void)state;
    assert_int_equal(world.short_n, PARTITIONS);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(world.short_out[i].partition, i);
        assert_int_equal(world.short_out[i].lag, world.high[i] - processed_first[i]);
    }
    assert_int_equal(world.short_out[2].partition, -7);
}

static void offsets_stored_but_not_committed_do_not_count(void **state)
{
    (void)state;
    /* The second run has stored every offset; the committed ones, which it read from the group,
     * are still the first run's. */
    assert_every_partition(&world.resumed, processed_first);
}

static void lag_is_zero_once_everything_is_processed(void **state)
{
    (void)state;
    assert_every_partition(&world.all_processed, world.high);
}

static void each_member_reports_only_its_own_partitions(void **state)
{
    (void)state;
    char first[512], second[512];
    describe(&world.first_member, first, sizeof first);
    describe(&world.second_member, second, sizeof second);
    print_message("first member (%d assigned) %s\nsecond member (%d assigned) %s\n",
                  world.first_member_assigned, first, world.second_member_assigned, second);
    /* Both have a share, together all of them; the first had them all before. */
    assert_true(world.first_member_assigned > 0);
    assert_true(world.second_member_assigned > 0);
    assert_int_equal(world.first_member_assigned + world.second_member_assigned, PARTITIONS);
    assert_int_equal(world.first_member.n, world.first_member_assigned);
    assert_int_equal(world.second_member.n, world.second_member_assigned);
    int seen[PARTITIONS] = {0};
    const struct snapshot *members[] = {&world.first_member, &world.second_member};
    for (int m = 0; m < 2; m++) {
        for (size_t i = 0; i < members[m]->n; i++) {
            const struct kafka_source_partition_lag *l = &members[m]->lag[i];
            assert_true(l->partition >= 0 && l->partition < PARTITIONS);
            seen[l->partition]++;
            /* The newcomer read the committed offsets from the group: nothing is left. */
            assert_int_equal(l->committed, world.high[l->partition]);
            assert_int_equal(l->lag, 0);
        }
    }
    for (int p = 0; p < PARTITIONS; p++)
        assert_int_equal(seen[p], 1);
}

static void a_concurrent_reader_sees_whole_snapshots(void **state)
{
    (void)state;
    print_message("%llu reads, %llu with partitions\n", atomic_load(&world.reads),
                  atomic_load(&world.nonempty_reads));
    if (atomic_load(&world.malformed_reads) > 0)
        fail_msg("%llu malformed reads, the first: %s", atomic_load(&world.malformed_reads),
                 world.malformed);
    assert_true(atomic_load(&world.nonempty_reads) > 0);
}

static void nothing_is_reported_without_statistics(void **state)
{
    (void)state;
    assert_int_equal(world.statistics_off_assigned, PARTITIONS);
    assert_int_equal(world.statistics_off_n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lag_is_what_is_left_after_the_committed_offset),
        cmocka_unit_test(lags_sum_to_the_records_not_processed),
        cmocka_unit_test(a_short_buffer_gets_the_count_and_the_first_partitions),
        cmocka_unit_test(offsets_stored_but_not_committed_do_not_count),
        cmocka_unit_test(lag_is_zero_once_everything_is_processed),
        cmocka_unit_test(each_member_reports_only_its_own_partitions),
        cmocka_unit_test(a_concurrent_reader_sees_whole_snapshots),
        cmocka_unit_test(nothing_is_reported_without_statistics),
    };
    return cmocka_run_group_tests(tests, scenario_setup, scenario_teardown);
}
