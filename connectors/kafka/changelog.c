/* Changelog entries to and from Avro binary, and restoring partitions of the changelog topic. */
#include "connectors/kafka/changelog.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

void changelog_scratch_free(struct changelog_scratch *scratch)
{
    if (!scratch)
        return;
    free(scratch->values);
    scratch->values = NULL;
    scratch->cap = 0;
}

/* --- encoding --------------------------------------------------------------------------------- */

/* An array of doubles as one block (when not empty) and the end marker. */
static void changelog_put_doubles(struct avro_wire_buf *out, const double *values, size_t n)
{
    if (n > 0) {
        avro_wire_put_long(out, (int64_t)n);
        for (size_t i = 0; i < n; i++)
            avro_wire_put_double(out, values[i]);
    }
    avro_wire_put_long(out, 0);
}

void changelog_encode(const struct changelog_entry *e, struct avro_wire_buf *out)
{
    if (e->tombstone)
        return;
    /* Everything at once: 9 varints at most (three of them block counts) and the payload. */
    avro_wire_buf_reserve(out, (size_t)9 * AVRO_WIRE_MAX_VARINT_BYTES + e->model_len +
                                   8 * (e->nstate + e->nwindow + e->nmetrics));
    avro_wire_put_long(out, e->offset);
    avro_wire_put_string(out, e->model, e->model_len);
    avro_wire_put_long(out, e->records);
    changelog_put_doubles(out, e->state, e->nstate);
    /* An int and a long share their encoding; a width beyond the int range is written as it is,
     * and refused by the decoder rather than cut here. */
    avro_wire_put_long(out, (int64_t)e->window_width);
    changelog_put_doubles(out, e->window, e->nwindow);
    changelog_put_doubles(out, e->metrics, e->nmetrics);
}

/* --- decoding --------------------------------------------------------------------------------- */

/* One value being decoded. */
struct changelog_reader {
    const uint8_t *start, *pos, *end;
    struct changelog_scratch *scratch;
    size_t ndoubles; /* doubles decoded so far into scratch->values */
    char *err;
    size_t errsz;
};

/* Why a varint at r->pos could not be read: the value ends inside it, or it is too long. */
static int changelog_bad_varint(const struct changelog_reader *r, const char *field,
                                const char *type)
{
    size_t left = (size_t)(r->end - r->pos);
    for (size_t i = 0; i < left && i < AVRO_WIRE_MAX_VARINT_BYTES; i++) {
        if (!(r->pos[i] & 0x80))
            return tb_fail(r->err, r->errsz, TB_PARSE, "field '%s': not a valid %s (byte %zu)",
                           field, type, (size_t)(r->pos - r->start));
    }
    if (left < AVRO_WIRE_MAX_VARINT_BYTES)
        return tb_fail(r->err, r->errsz, TB_PARSE,
                       "field '%s': the value ends inside it (byte %zu of %zu)", field,
                       (size_t)(r->pos - r->start), (size_t)(r->end - r->start));
    return tb_fail(r->err, r->errsz, TB_PARSE, "field '%s': not a valid %s (byte %zu)", field, type,
                   (size_t)(r->pos - r->start));
}

static int changelog_read_long(struct changelog_reader *r, const char *field, int64_t *out)
{
    if (avro_wire_read_long(&r->pos, r->end, out) != 0)
        return changelog_bad_varint(r, field, "long");
    return TB_OK;
}

static int changelog_read_string(struct changelog_reader *r, const char *field, const char **s,
                                 size_t *len)
{
    const uint8_t *at = r->pos;
    int64_t n;
    int rc = changelog_read_long(r, field, &n);
    if (rc != TB_OK)
        return rc;
    if (n < 0)
        return tb_fail(r->err, r->errsz, TB_PARSE, "field '%s': negative length %lld", field,
                       (long long)n);
    if ((uint64_t)n > (size_t)(r->end - r->pos))
        return tb_fail(r->err, r->errsz, TB_PARSE,
                       "field '%s': the value ends inside it (%lld bytes from byte %zu of %zu)",
                       field, (long long)n, (size_t)(at - r->start), (size_t)(r->end - r->start));
    *s = (const char *)r->pos;
    *len = (size_t)n;
    r->pos += n;
    return TB_OK;
}

/* Reads an array of doubles, in as many blocks as it comes, into the scratch after the doubles
 * already there; *first is the index of its first double and *n its length. */
static int changelog_read_doubles(struct changelog_reader *r, const char *field, size_t *first,
                                  size_t *n)
{
    *first = r->ndoubles;
    *n = 0;
    for (;;) {
        int64_t count;
        int rc = changelog_read_long(r, field, &count);
        if (rc != TB_OK)
            return rc;
        if (count == 0)
            return TB_OK;
        if (count < 0) {
            /* Avro's block of -count items preceded by its size in bytes. */
            int64_t block_bytes;
            if (count == INT64_MIN)
                return tb_fail(r->err, r->errsz, TB_PARSE, "field '%s': invalid block count",
                               field);
            count = -count;
            rc = changelog_read_long(r, field, &block_bytes);
            if (rc != TB_OK)
                return rc;
            if ((uint64_t)count > INT64_MAX / 8 || block_bytes != count * 8)
                return tb_fail(r->err, r->errsz, TB_PARSE,
                               "field '%s': a block of %lld doubles claims %lld bytes", field,
                               (long long)count, (long long)block_bytes);
        }
        if ((uint64_t)count > CHANGELOG_MAX_DOUBLES - r->ndoubles)
            return tb_fail(r->err, r->errsz, TB_PARSE,
                           "field '%s': more than the %zu doubles an entry may hold", field,
                           CHANGELOG_MAX_DOUBLES);
        /* Checked before growing, so that a forged count cannot make us allocate. */
        if ((uint64_t)count > (size_t)(r->end - r->pos) / 8)
            return tb_fail(r->err, r->errsz, TB_PARSE,
                           "field '%s': the value ends inside it (%lld doubles from byte %zu of "
                           "%zu)",
                           field, (long long)count, (size_t)(r->pos - r->start),
                           (size_t)(r->end - r->start));
        size_t need = r->ndoubles + (size_t)count;
        if (need > r->scratch->cap)
            mem_grow((void **)&r->scratch->values, &r->scratch->cap, need, sizeof(double));
        for (int64_t i = 0; i < count; i++)
            (void)avro_wire_read_double(&r->pos, r->end, &r->scratch->values[r->ndoubles++]);
        *n += (size_t)count;
    }
}

int changelog_decode(const void *value, size_t len, struct changelog_entry *e,
                     struct changelog_scratch *scratch, char *err, size_t errsz)
{
    struct changelog_reader r = {.start = value,
                                 .pos = value,
                                 .end = (const uint8_t *)value + len,
                                 .scratch = scratch,
                                 .err = err,
                                 .errsz = errsz};
    *e = (struct changelog_entry){.partition = -1};
    size_t state_at, window_at, metrics_at;
    int64_t width;
    int rc;
    if ((rc = changelog_read_long(&r, "offset", &e->offset)) != TB_OK ||
        (rc = changelog_read_string(&r, "model", &e->model, &e->model_len)) != TB_OK ||
        (rc = changelog_read_long(&r, "records", &e->records)) != TB_OK ||
        (rc = changelog_read_doubles(&r, "state", &state_at, &e->nstate)) != TB_OK ||
        (rc = changelog_read_long(&r, "window_width", &width)) != TB_OK ||
        (rc = changelog_read_doubles(&r, "window", &window_at, &e->nwindow)) != TB_OK ||
        (rc = changelog_read_doubles(&r, "metrics", &metrics_at, &e->nmetrics)) != TB_OK)
        return rc;
    if (r.pos != r.end)
        return tb_fail(err, errsz, TB_PARSE, "%zu bytes after the end of the record",
                       (size_t)(r.end - r.pos));
    if (e->offset < -1)
        return tb_fail(err, errsz, TB_PARSE, "field 'offset': %lld is not an offset",
                       (long long)e->offset);
    if (e->records < 0)
        return tb_fail(err, errsz, TB_PARSE, "field 'records': negative count %lld",
                       (long long)e->records);
    if (width < 0 || width > INT32_MAX)
        return tb_fail(err, errsz, TB_PARSE, "field 'window_width': %lld is not a width",
                       (long long)width);
    e->window_width = (size_t)width;
    if (width == 0 ? e->nwindow != 0 : e->nwindow % e->window_width != 0)
        return tb_fail(err, errsz, TB_PARSE,
                       "field 'window': %zu doubles do not make records of window_width %zu",
                       e->nwindow, e->window_width);
    /* Pointers only now: the scratch may have moved while it grew. */
    e->state = e->nstate ? scratch->values + state_at : NULL;
    e->window = e->nwindow ? scratch->values + window_at : NULL;
    e->metrics = e->nmetrics ? scratch->values + metrics_at : NULL;
    return TB_OK;
}

/* --- the topic -------------------------------------------------------------------------------- */

/* Milliseconds left until deadline_ms, at least 1 (librdkafka reads 0 as "do not wait"). */
static int changelog_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - clock_monotonic_ms();
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* A consumer for reading the changelog by assignment: never joins its group, commits nothing. */
static int changelog_consumer_new(const struct kafka_prop *props, size_t nprops, rd_kafka_t **out,
                                  char *err, size_t errsz)
{
    static const struct kafka_prop defaults[] = {
        /* librdkafka refuses assign() without a group; it is never joined. */
        {"group.id", "tributary-changelog-restore"},
        /* Checkpoints are written outside transactions; read_committed would stop at the last
         * stable offset, short of the high watermark while another worker's transaction is open. */
        {"isolation.level", "read_uncommitted"},
    };
    static const struct kafka_prop forced[] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* The end of a partition is known by its high watermark, or else by this event. */
        {"enable.partition.eof", "true"},
        /* Should the broker drop the oldest batches under us, restore what is left. */
        {"auto.offset.reset", "earliest"},
        /* The embedded broker answers a fetch that finds nothing new only when the whole wait
         * is over; a restore is on the path of a rebalance and must not idle. */
        {"fetch.wait.max.ms", "10"},
    };
    rd_kafka_conf_t *conf =
        kafka_conf_build(defaults, sizeof defaults / sizeof defaults[0], props, nprops, forced,
                         sizeof forced / sizeof forced[0], err, errsz);
    if (!conf)
        return TB_CONFIG;
    char reason[512];
    *out = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        return tb_fail(err, errsz, TB_KAFKA, "changelog consumer: %s", reason);
    }
    return TB_OK;
}

/* The partition count of topic from a Metadata request for all topics (naming the topic would
 * create it on a broker that auto-creates); 0 when it does not exist. */
static int changelog_partition_count(rd_kafka_t *rk, const char *topic, int64_t deadline_ms,
                                     int *count, char *err, size_t errsz)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 1, NULL, &md, changelog_left_ms(deadline_ms));
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tb_fail(err, errsz, TB_KAFKA, "changelog '%s': no metadata: %s", topic,
                       rd_kafka_err2str(rc));
    *count = 0;
    int status = TB_OK;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0)
            continue;
        if (t->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            *count = t->partition_cnt;
        else if (t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            status = tb_fail(err, errsz, TB_KAFKA, "changelog '%s': %s", topic,
                             rd_kafka_err2str(t->err));
        break;
    }
    rd_kafka_metadata_destroy(md);
    return status;
}

int changelog_topic_partitions(const struct kafka_prop *props, size_t nprops, const char *topic,
                               int timeout_ms, int *partitions, char *err, size_t errsz)
{
    if (!topic || !*topic)
        return tb_fail(err, errsz, TB_USAGE, "no changelog topic given");
    int64_t deadline_ms = clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_t *rk = NULL;
    int rc = changelog_consumer_new(props, nprops, &rk, err, errsz);
    if (rc != TB_OK)
        return rc;
    rc = changelog_partition_count(rk, topic, deadline_ms, partitions, err, errsz);
    rd_kafka_destroy(rk);
    return rc;
}

/* How far the restore of one requested partition is. */
struct changelog_progress {
    int32_t partition;
    int64_t next; /* the offset to read next */
    int64_t high; /* the high watermark at the start: where reading stops */
    bool done;
};

/* One restore in progress. */
struct changelog_restore {
    const char *topic;
    struct changelog_progress *progress;
    size_t nprogress;
    size_t open; /* partitions not done yet */
    size_t last; /* the progress entry of the previous record (records come in runs) */
    changelog_entry_fn *fn;
    void *opaque;
    struct changelog_scratch scratch;
    size_t bad;
    char last_error[256]; /* the consumer's latest error event, for a timeout's message */
};

static struct changelog_progress *changelog_find(struct changelog_restore *rs, int32_t partition)
{
    if (rs->progress[rs->last].partition == partition)
        return &rs->progress[rs->last];
    for (size_t i = 0; i < rs->nprogress; i++) {
        if (rs->progress[i].partition == partition) {
            rs->last = i;
            return &rs->progress[i];
        }
    }
    return NULL;
}

static void changelog_mark_done(struct changelog_restore *rs, struct changelog_progress *p)
{
    if (!p->done) {
        p->done = true;
        rs->open--;
    }
}

/* Passes one record to the callback, or counts it as bad. */
static void changelog_deliver(struct changelog_restore *rs, const rd_kafka_message_t *msg)
{
    struct changelog_entry e = {.offset = -1, .tombstone = true};
    char reason[256] = "no key";
    bool ok = msg->key != NULL;
    if (ok && msg->payload)
        ok = changelog_decode(msg->payload, msg->len, &e, &rs->scratch, reason, sizeof reason) ==
             TB_OK;
    if (!ok) {
        rs->bad++;
        log_warn("changelog '%s' partition %d offset %lld: %s; entry skipped", rs->topic,
                 (int)msg->partition, (long long)msg->offset, reason);
        return;
    }
    e.key = msg->key;
    e.key_len = msg->key_len;
    e.partition = msg->partition;
    rs->fn(rs->opaque, &e);
}

/* Handles one message or event of the consumer. */
static void changelog_consume(struct changelog_restore *rs, const rd_kafka_message_t *msg)
{
    struct changelog_progress *p = msg->rkt ? changelog_find(rs, msg->partition) : NULL;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* At the high watermark, or at the last stable offset under read_committed. */
        if (p)
            changelog_mark_done(rs, p);
        return;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(rs->last_error, sizeof rs->last_error, "%s", rd_kafka_message_errstr(msg));
        log_debug("changelog '%s': %s", rs->topic, rs->last_error);
        return;
    }
    /* Records past the starting high watermark are the next owner's business. */
    if (!p || p->done || msg->offset >= p->high)
        return;
    changelog_deliver(rs, msg);
    p->next = msg->offset + 1;
    if (p->next >= p->high)
        changelog_mark_done(rs, p);
}

/* The timeout's message: what is missing, and the consumer's latest complaint. */
static int changelog_timed_out(const struct changelog_restore *rs, int timeout_ms, char *err,
                               size_t errsz)
{
    char missing[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < rs->nprogress && used < sizeof missing; i++) {
        const struct changelog_progress *p = &rs->progress[i];
        if (p->done)
            continue;
        int n =
            snprintf(missing + used, sizeof missing - used, "%spartition %d at offset %lld of %lld",
                     used ? ", " : "", (int)p->partition, (long long)p->next, (long long)p->high);
        used += n > 0 ? (size_t)n : 0;
    }
    return tb_fail(err, errsz, TB_KAFKA, "changelog '%s' not restored within %d ms: %s%s%s%s",
                   rs->topic, timeout_ms, missing, rs->last_error[0] ? " (last error: " : "",
                   rs->last_error, rs->last_error[0] ? ")" : "");
}

int changelog_restore(const struct kafka_prop *props, size_t nprops, const char *topic,
                      const int32_t *partitions, size_t npartitions, int timeout_ms,
                      changelog_entry_fn *fn, void *opaque, size_t *nbad, char *err, size_t errsz)
{
    struct changelog_restore rs = {.topic = topic, .fn = fn, .opaque = opaque};
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *assignment = NULL;
    int64_t start_ms = clock_monotonic_ms();
    int64_t deadline_ms = start_ms + (timeout_ms > 0 ? timeout_ms : 0);
    int count = 0;
    rd_kafka_resp_err_t kerr;
    int rc = TB_OK;
    if (!topic || !*topic) {
        rc = tb_fail(err, errsz, TB_USAGE, "no changelog topic given");
        goto done;
    }
    if (timeout_ms < 1) {
        rc = tb_fail(err, errsz, TB_USAGE, "changelog '%s': timeout %d ms", topic, timeout_ms);
        goto done;
    }
    for (size_t i = 0; i < npartitions; i++) {
        if (partitions[i] < 0) {
            rc = tb_fail(err, errsz, TB_USAGE, "changelog '%s': partition %d", topic,
                         (int)partitions[i]);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (partitions[j] == partitions[i]) {
                rc = tb_fail(err, errsz, TB_USAGE, "changelog '%s': partition %d given twice",
                             topic, (int)partitions[i]);
                goto done;
            }
        }
    }
    if (npartitions == 0)
        goto done;

    rc = changelog_consumer_new(props, nprops, &rk, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = changelog_partition_count(rk, topic, deadline_ms, &count, err, errsz);
    if (rc != TB_OK)
        goto done;

    rs.progress = mem_calloc(npartitions, sizeof *rs.progress);
    rs.nprogress = npartitions;
    assignment = rd_kafka_topic_partition_list_new((int)npartitions);
    for (size_t i = 0; i < npartitions; i++) {
        struct changelog_progress *p = &rs.progress[i];
        *p = (struct changelog_progress){.partition = partitions[i], .done = true};
        if (partitions[i] >= count)
            continue; /* a partition the topic does not have holds nothing */
        int64_t low = 0, high = 0;
        kerr = rd_kafka_query_watermark_offsets(rk, topic, p->partition, &low, &high,
                                                changelog_left_ms(deadline_ms));
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tb_fail(err, errsz, TB_KAFKA, "changelog '%s' partition %d: no watermarks: %s",
                         topic, (int)p->partition, rd_kafka_err2str(kerr));
            goto done;
        }
        if (high <= low)
            continue;
        p->next = low;
        p->high = high;
        p->done = false;
        rs.open++;
        rd_kafka_topic_partition_list_add(assignment, topic, p->partition)->offset = low;
    }
    if (rs.open == 0)
        goto done;
    kerr = rd_kafka_assign(rk, assignment);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tb_fail(err, errsz, TB_KAFKA, "changelog '%s': assign: %s", topic,
                     rd_kafka_err2str(kerr));
        goto done;
    }
    while (rs.open > 0 && clock_monotonic_ms() < deadline_ms) {
        int left = changelog_left_ms(deadline_ms);
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, left < 100 ? left : 100);
        if (!msg)
            continue;
        changelog_consume(&rs, msg);
        rd_kafka_message_destroy(msg);
    }
    if (rs.open > 0) {
        rc = changelog_timed_out(&rs, timeout_ms, err, errsz);
        goto done;
    }
    log_debug("changelog '%s': restored %zu partitions in %lld ms (%zu bad entries)", topic,
              npartitions, (long long)(clock_monotonic_ms() - start_ms), rs.bad);

done:
    if (rk) {
        /* Never subscribed: closing only drops the assignment. */
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (assignment)
        rd_kafka_topic_partition_list_destroy(assignment);
    free(rs.progress);
    changelog_scratch_free(&rs.scratch);
    if (nbad)
        *nbad = rs.bad;
    return rc;
}
