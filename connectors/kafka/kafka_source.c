/* Kafka source: consumer group membership, micro-batches, rebalance handling,
 * explicit offset storage and per-partition lag from librdkafka's statistics. */
#include "connectors/kafka/kafka_source.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A partition assigned to this consumer, and its figures if the latest
 * statistics had them. */
struct kafka_source_lag_slot {
    struct kafka_source_partition_lag figures;
    int reported;
};

struct kafka_source {
    rd_kafka_t *consumer;
    char *topic;
    kafka_source_batch_fn *on_batch;
    kafka_source_revoke_fn *on_revoke;
    kafka_source_assign_fn *on_assign;
    void *opaque;
    rd_kafka_message_t **batch; /* records collected and not yet handed over */
    size_t nbatch, batch_cap;
    atomic_int assigned; /* partitions held; read by other threads */
    int commit_interval_ms;
    int64_t last_commit_ms;
    int joined;    /* a rebalance callback has run at least once */
    int held;      /* pause partitions as they are assigned */
    int abandoned; /* never joined: the handle is left undestroyed */
    int closed;
    /* The partitions assigned now, in increasing order, with their latest
     * figures. The polling thread updates them (rebalance and statistics
     * callbacks) while a metrics thread reads them, hence the lock. */
    pthread_mutex_t lag_lock;
    struct kafka_source_lag_slot *lag_slots;
    size_t nlag_slots, lag_slots_cap;
};

/* Hands the collected records to on_batch and destroys them. */
static void kafka_source_hand_over(struct kafka_source *source)
{
    if (source->nbatch == 0)
        return;
    source->on_batch(source->opaque, source->batch, source->nbatch);
    for (size_t i = 0; i < source->nbatch; i++)
        rd_kafka_message_destroy(source->batch[i]);
    source->nbatch = 0;
}

/* Destroys the collected records without handing them over. */
static void kafka_source_drop_batch(struct kafka_source *source)
{
    for (size_t i = 0; i < source->nbatch; i++)
        rd_kafka_message_destroy(source->batch[i]);
    source->nbatch = 0;
}

static void kafka_source_log_partitions(const char *what,
                                        const rd_kafka_topic_partition_list_t *parts)
{
    char line[512];
    size_t len = 0;
    line[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof line - 16; i++)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%d", i ? "," : "",
                                parts->elems[i].partition);
    log_info("%s %d partition%s [%s]", what, parts->cnt, parts->cnt == 1 ? "" : "s", line);
}

/* The result of a periodic (asynchronous) commit. A refused one is not lost:
 * the stored offsets go out again with the next. */
static void kafka_source_committed(rd_kafka_t *rk, rd_kafka_resp_err_t status,
                                   rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    (void)opaque;
    if (status != RD_KAFKA_RESP_ERR_NO_ERROR && status != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_debug("periodic commit: %s", rd_kafka_err2str(status));
}

/* Index of the first slot whose partition is >= partition (the slots are in
 * increasing order); *found says whether it is that partition. Call with
 * lag_lock held. */
static size_t kafka_source_lag_slot_find(const struct kafka_source *source, int32_t partition,
                                         int *found)
{
    size_t low = 0, high = source->nlag_slots;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (source->lag_slots[mid].figures.partition < partition)
            low = mid + 1;
        else
            high = mid;
    }
    *found = low < source->nlag_slots && source->lag_slots[low].figures.partition == partition;
    return low;
}

/* Follows the assignment: adds (assigned) or removes the listed partitions of
 * our topic, after forgetting all others first when `replace` (the eager
 * protocol hands over and takes back the whole assignment at once). A new
 * partition has no figures until the next statistics. */
static void kafka_source_lag_track(struct kafka_source *source,
                                   const rd_kafka_topic_partition_list_t *parts, int assigned,
                                   int replace)
{
    pthread_mutex_lock(&source->lag_lock);
    if (replace)
        source->nlag_slots = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *part = &parts->elems[i];
        if (strcmp(part->topic, source->topic) != 0)
            continue;
        int found;
        size_t at = kafka_source_lag_slot_find(source, part->partition, &found);
        struct kafka_source_lag_slot *slots = source->lag_slots;
        if (assigned && !found) {
            mem_grow((void **)&source->lag_slots, &source->lag_slots_cap, source->nlag_slots + 1,
                     sizeof *source->lag_slots);
            slots = source->lag_slots;
            memmove(&slots[at + 1], &slots[at], (source->nlag_slots - at) * sizeof *slots);
            slots[at] = (struct kafka_source_lag_slot){
                .figures = {.partition = part->partition, .lag = -1, .committed = -1, .high = -1},
            };
            source->nlag_slots++;
        } else if (!assigned && found) {
            memmove(&slots[at], &slots[at + 1], (source->nlag_slots - at - 1) * sizeof *slots);
            source->nlag_slots--;
        }
    }
    pthread_mutex_unlock(&source->lag_lock);
}

/* A non-negative integer field of a statistics object, or -1 when it is
 * missing, not an integer, or one of librdkafka's negative "invalid" values
 * (-1001 for an offset it does not know). */
static int64_t kafka_source_stat(const json_t *object, const char *field)
{
    const json_t *value = json_object_get(object, field);
    if (!json_is_integer(value) || json_integer_value(value) < 0)
        return -1;
    return (int64_t)json_integer_value(value);
}

/* librdkafka's statistics callback, served by the polling thread every
 * statistics.interval.ms. Takes the figures of our assigned partitions from
 * topics.<topic>.partitions.<id> and forgets those of partitions the document
 * does not list; a document that does not parse counts as listing none. It
 * allocates only what jansson needs to parse the document, and nothing that
 * outlives the call. Returns 0: librdkafka frees `json`. */
static int kafka_source_statistics(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    struct kafka_source *source = opaque;
    json_error_t error;
    json_t *root = json_loadb(json, json_len, 0, &error);
    if (!root)
        log_warn("statistics: unreadable JSON at %d:%d: %s", error.line, error.column, error.text);
    /* json_object_get gives NULL for NULL or a non-object, so a document of
     * an unexpected shape simply lists no partitions. */
    const json_t *partitions = json_object_get(
        json_object_get(json_object_get(root, "topics"), source->topic), "partitions");

    pthread_mutex_lock(&source->lag_lock);
    for (size_t i = 0; i < source->nlag_slots; i++)
        source->lag_slots[i].reported = 0;
    const char *key;
    const json_t *stats;
    json_object_foreach((json_t *)partitions, key, stats)
    {
        const json_t *id = json_object_get(stats, "partition");
        /* -1 is librdkafka's internal "unassigned" partition. */
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > INT32_MAX)
            continue;
        int found;
        size_t at = kafka_source_lag_slot_find(source, (int32_t)json_integer_value(id), &found);
        if (!found)
            continue; /* not assigned to us (any more) */
        struct kafka_source_lag_slot *slot = &source->lag_slots[at];
        slot->figures.lag = kafka_source_stat(stats, "consumer_lag");
        slot->figures.committed = kafka_source_stat(stats, "committed_offset");
        slot->figures.high = kafka_source_stat(stats, "hi_offset");
        slot->reported = 1;
    }
    pthread_mutex_unlock(&source->lag_lock);
    json_decref(root);
    return 0;
}

static void kafka_source_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                                   rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_source *source = opaque;
    source->joined = 1;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kafka_source_log_partitions("assigned", parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rc = rd_kafka_assign(rk, parts);
        if (!error && rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Before the partitions count as assigned: whoever asks whether the consumer is
             * ready sees the restore first. */
            if (source->on_assign)
                source->on_assign(source->opaque, parts);
            if (cooperative)
                atomic_fetch_add(&source->assigned, parts->cnt);
            else
                atomic_store(&source->assigned, parts->cnt);
            kafka_source_lag_track(source, parts, 1, !cooperative);
            if (source->held)
                rd_kafka_pause_partitions(rk, parts);
        }
    } else {
        /* Finish the records in hand first, so that their offsets are stored
         * and go out with this commit rather than being re-read by the next
         * owner. */
        int lost = rd_kafka_assignment_lost(rk);
        if (lost)
            kafka_source_drop_batch(source); /* the new owner reads them */
        else
            kafka_source_hand_over(source);
        if (source->on_revoke)
            source->on_revoke(source->opaque, parts, lost);
        /* When closing, the owner committed just before; a second commit now
         * would only meet the rebalance that leaving started. */
        if (!source->closed && !rd_kafka_assignment_lost(rk)) {
            rd_kafka_resp_err_t crc = rd_kafka_commit(rk, NULL, 0);
            if (crc != RD_KAFKA_RESP_ERR_NO_ERROR && crc != RD_KAFKA_RESP_ERR__NO_OFFSET)
                log_warn("commit on revoke: %s", rd_kafka_err2str(crc));
        }
        kafka_source_log_partitions("revoked", parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rc = rd_kafka_assign(rk, NULL);
        if (cooperative)
            atomic_fetch_sub(&source->assigned, parts->cnt);
        else
            atomic_store(&source->assigned, 0);
        kafka_source_lag_track(source, parts, 0, !cooperative);
    }
    if (error) {
        log_error("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error("rebalance: %s", rd_kafka_err2str(rc));
    }
}

struct kafka_source *kafka_source_new(const struct kafka_prop *props, size_t nprops,
                                      const struct kafka_source_options *options, char *err,
                                      size_t errsz)
{
    /* Cooperative rebalancing moves only the partitions that change owner, so
     * a member joining or leaving does not stop the whole group; with the
     * embedded broker, whose rebalances take seconds, it also keeps commits
     * from being refused mid-stream. */
    static const struct kafka_prop defaults[] = {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "10"},
        {"queued.min.messages", "200000"},
    };
    char statistics_interval[16];
    snprintf(statistics_interval, sizeof statistics_interval, "%d",
             options->statistics_interval_ms);
    /* Offsets are committed here, not by librdkafka's timer: periodically at
     * batch boundaries, on revoke and before closing. */
    const struct kafka_prop forced[] = {
        {"group.id", options->group_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* last, so that it is left out when statistics are off */
        {"statistics.interval.ms", statistics_interval},
    };
    int statistics = options->statistics_interval_ms > 0;
    size_t nforced = sizeof forced / sizeof forced[0] - (statistics ? 0 : 1);
    rd_kafka_conf_t *conf = kafka_conf_build(defaults, sizeof defaults / sizeof defaults[0], props,
                                             nprops, forced, nforced, err, errsz);
    if (!conf)
        return NULL;

    struct kafka_source *source = mem_calloc(1, sizeof *source);
    source->topic = mem_strdup(options->topic);
    source->on_batch = options->on_batch;
    source->on_revoke = options->on_revoke;
    source->on_assign = options->on_assign;
    source->opaque = options->opaque;
    source->commit_interval_ms = options->commit_interval_ms;
    source->last_commit_ms = clock_monotonic_ms();
    pthread_mutex_init(&source->lag_lock, NULL);
    rd_kafka_conf_set_opaque(conf, source);
    rd_kafka_conf_set_rebalance_cb(conf, kafka_source_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, kafka_source_committed);
    if (statistics)
        rd_kafka_conf_set_stats_cb(conf, kafka_source_statistics);

    char reason[512];
    source->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    if (!source->consumer) {
        rd_kafka_conf_destroy(conf);
        tb_fail(err, errsz, TB_KAFKA, "consumer: %s", reason);
        goto fail;
    }
    rd_kafka_poll_set_consumer(source->consumer);
    rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subscription, options->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(source->consumer, subscription);
    rd_kafka_topic_partition_list_destroy(subscription);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tb_fail(err, errsz, TB_KAFKA, "subscribe to '%s': %s", options->topic,
                rd_kafka_err2str(rc));
        goto fail;
    }
    return source;

fail:
    if (source->consumer)
        rd_kafka_destroy(source->consumer);
    free(source->lag_slots);
    pthread_mutex_destroy(&source->lag_lock);
    free(source->topic);
    free(source);
    return NULL;
}

int kafka_source_poll_batch(struct kafka_source *source, size_t max_records, int max_wait_ms)
{
    int64_t deadline = clock_monotonic_ms() + max_wait_ms;
    mem_grow((void **)&source->batch, &source->batch_cap, max_records, sizeof *source->batch);
    int timeout_ms = max_wait_ms < 100 ? max_wait_ms : 100;
    while (source->nbatch < max_records) {
        /* Short polls keep shutdown and rebalances responsive. */
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(source->consumer, timeout_ms);
        if (!msg) {
            int64_t left = deadline - clock_monotonic_ms();
            if (left <= 0)
                break;
            timeout_ms = left < 100 ? (int)left : 100;
            continue;
        }
        if (msg->err) {
            int fatal = msg->err == RD_KAFKA_RESP_ERR__FATAL;
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consumer: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            if (fatal) {
                /* Nothing of this batch was processed or stored: it is read
                 * again by whoever owns the partitions next. */
                kafka_source_drop_batch(source);
                return TB_KAFKA;
            }
            continue;
        }
        source->batch[source->nbatch++] = msg;
        /* While records keep coming, look at the clock only now and then. */
        timeout_ms = 0;
        if (source->nbatch % 256 == 0 && clock_monotonic_ms() >= deadline)
            break;
    }
    int n = (int)source->nbatch;
    kafka_source_hand_over(source);
    int64_t now = clock_monotonic_ms();
    if (now - source->last_commit_ms >= source->commit_interval_ms) {
        rd_kafka_commit(source->consumer, NULL, 1);
        source->last_commit_ms = now;
    }
    return n;
}

void kafka_source_store(struct kafka_source *source, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, source->topic, partition)->offset = offset + 1;
    rd_kafka_resp_err_t rc = rd_kafka_offsets_store(source->consumer, list);
    /* A partition revoked meanwhile is refused (ERR__STATE): its new owner
     * re-reads the record, which at-least-once allows. */
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_debug("store offset %d@%lld: %s", partition, (long long)offset, rd_kafka_err2str(rc));
    rd_kafka_topic_partition_list_destroy(list);
}

int kafka_source_rewind(struct kafka_source *source, int32_t partition, int64_t offset, char *err,
                        size_t errsz)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, source->topic, partition)->offset = offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(source->consumer, list, 0);
    int status = TB_OK;
    if (error) {
        status = tb_fail(err, errsz, TB_KAFKA, "rewind partition %d to %lld: %s", partition,
                         (long long)offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR &&
               /* With no timeout, librdkafka marks a seek it accepted as still in progress. */
               list->elems[0].err != RD_KAFKA_RESP_ERR__IN_PROGRESS) {
        status = tb_fail(err, errsz, TB_KAFKA, "rewind partition %d to %lld: %s", partition,
                         (long long)offset, rd_kafka_err2str(list->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return status;
}

int kafka_source_commit(struct kafka_source *source, int timeout_ms, char *err, size_t errsz)
{
    /* Through a queue, so that the wait is bounded (a synchronous commit waits
     * as long as it takes to find a coordinator). */
    rd_kafka_queue_t *queue = rd_kafka_queue_new(source->consumer);
    rd_kafka_resp_err_t rc = rd_kafka_commit_queue(source->consumer, NULL, queue, NULL, NULL);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, timeout_ms);
        rc = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(queue);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return tb_fail(err, errsz, TB_KAFKA, "commit: %s", rd_kafka_err2str(rc));
    return TB_OK;
}

void kafka_source_hold(struct kafka_source *source, int hold)
{
    if (source->held == hold)
        return;
    source->held = hold;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(source->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (hold)
        rd_kafka_pause_partitions(source->consumer, parts);
    else
        rd_kafka_resume_partitions(source->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

size_t kafka_source_lag(struct kafka_source *source, struct kafka_source_partition_lag *out,
                        size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&source->lag_lock);
    for (size_t i = 0; i < source->nlag_slots; i++) {
        if (!source->lag_slots[i].reported)
            continue;
        if (n < cap)
            out[n] = source->lag_slots[i].figures;
        n++;
    }
    pthread_mutex_unlock(&source->lag_lock);
    return n;
}

int kafka_source_joined(const struct kafka_source *source)
{
    return source->joined;
}

int kafka_source_assigned(const struct kafka_source *source)
{
    return atomic_load(&source->assigned);
}

/* librdkafka 2.0.2 aborts when a cooperative-sticky consumer is destroyed
 * before its first assignment (an assert on the assignor's missing state,
 * librdkafka issue 4312, fixed in 2.3.0). So a consumer that has not joined
 * yet is given up to 10 s to do so; records that arrive meanwhile are
 * dropped unprocessed (nothing of them is stored, so their partition's next
 * owner reads them). Returns whether it joined. */
static int kafka_source_await_join(struct kafka_source *source)
{
    int64_t deadline = clock_monotonic_ms() + 10000;
    while (!source->joined && clock_monotonic_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(source->consumer, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
    return source->joined;
}

void kafka_source_close(struct kafka_source *source)
{
    if (source->closed)
        return;
    source->closed = 1;
    if (!kafka_source_await_join(source)) {
        log_warn("consumer never joined its group; leaving its handle undestroyed (librdkafka "
                 "2.0.2 aborts destroying such a consumer)");
        source->abandoned = 1;
        return;
    }
    /* rd_kafka_consumer_close can wait for ever for a coordinator that is
     * gone; closing through a queue lets us give up after 5 s. */
    rd_kafka_queue_t *queue = rd_kafka_queue_new(source->consumer);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(source->consumer, queue);
    if (error) {
        log_warn("consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    int64_t deadline = clock_monotonic_ms() + 5000;
    while (!rd_kafka_consumer_closed(source->consumer) && clock_monotonic_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, 100);
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            kafka_source_rebalance(
                source->consumer, rd_kafka_event_error(ev),
                (rd_kafka_topic_partition_list_t *)rd_kafka_event_topic_partition_list(ev), source);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(queue);
    if (!rd_kafka_consumer_closed(source->consumer)) {
        log_warn("consumer did not close within 5 s (broker unreachable?); leaving its handle "
                 "undestroyed");
        source->abandoned = 1;
    }
}

void kafka_source_destroy(struct kafka_source *source)
{
    if (!source)
        return;
    if (!source->closed)
        kafka_source_close(source);
    kafka_source_drop_batch(source); /* rd_kafka_destroy waits for every message */
    if (!source->abandoned)
        rd_kafka_destroy(source->consumer);
    free(source->lag_slots);
    pthread_mutex_destroy(&source->lag_lock);
    free(source->batch);
    free(source->topic);
    free(source);
}
