/* Model watch: one thread that lists a registry directory every poll interval and reads a
 * models topic, reporting each new version of one model once, in increasing order. */
#include "service/registry/model_watch.h"

#include "connectors/kafka/kafka_conf.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/registry/model_topic.h"
#include "service/registry/registry.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest single wait, so that a stop request is seen promptly while reading the topic. */
#define MODEL_WATCH_SLICE_MS 100
/* How often to look for a models topic that does not exist yet, and how long each look may
 * block. */
#define MODEL_WATCH_METADATA_EVERY_MS   1000
#define MODEL_WATCH_METADATA_TIMEOUT_MS 500

struct model_watch {
    /* Copied options. */
    char *registry; /* NULL: no directory */
    char *name;
    char *topic; /* NULL: no topic */
    int poll_ms;
    void (*on_artefact)(struct artefact *artefact, const char *origin, void *opaque);
    void (*on_refused)(int32_t version, const char *origin, const char *reason, void *opaque);
    void *opaque;

    /* Owned by the watch thread while it runs. */
    int32_t highest;           /* the highest version reported or refused, or after_version */
    char last_scan_error[512]; /* so that a persisting directory problem is logged once */
    rd_kafka_t *consumer;      /* NULL without a topic */
    rd_kafka_topic_t *topic_handle;
    rd_kafka_queue_t *queue; /* every partition's records arrive here */
    int32_t npartitions;     /* partitions being read; 0 until the topic is found */
    int topic_missing_logged;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock; /* with wake: lets destroy interrupt a directory-only sleep */
    pthread_cond_t wake;
    atomic_int stop;
};

static int model_watch_stopping(struct model_watch *watch)
{
    return atomic_load(&watch->stop);
}

/* Waits up to ms, returning early when a stop is requested. */
static void model_watch_sleep(struct model_watch *watch, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&watch->lock);
    while (!model_watch_stopping(watch) &&
           pthread_cond_timedwait(&watch->wake, &watch->lock, &deadline) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&watch->lock);
}

static void model_watch_report(struct model_watch *watch, struct artefact *artefact,
                               const char *origin)
{
    watch->highest = artefact_version(artefact);
    log_info("model '%s' version %d found in %s", watch->name, (int)watch->highest, origin);
    watch->on_artefact(artefact, origin, watch->opaque);
}

/* Refuses a version. A registry file's version (its name) is then passed over for good: the
 * file will not change. A topic record's claimed version is not trusted that far: a record
 * claiming version 2^31-1 must not hide every later version, and each record is read once
 * anyway. */
static void model_watch_refuse(struct model_watch *watch, int32_t version, bool from_registry,
                               const char *origin, const char *reason)
{
    if (from_registry && version > watch->highest)
        watch->highest = version;
    log_warn("model '%s' version %d from %s refused: %s", watch->name, (int)version, origin,
             reason);
    if (watch->on_refused)
        watch->on_refused(version, origin, reason, watch->opaque);
}

/* Reports (or refuses) a decoded artefact that claims to be version `expected` (0: any) of the
 * watched model; takes the artefact over. */
static void model_watch_consider(struct model_watch *watch, struct artefact *artefact,
                                 int32_t expected, bool from_registry, const char *origin)
{
    int32_t version = artefact_version(artefact);
    char reason[512];
    if (strcmp(artefact_name(artefact), watch->name) != 0) {
        snprintf(reason, sizeof reason, "it holds model '%s', not '%s'", artefact_name(artefact),
                 watch->name);
        model_watch_refuse(watch, expected != 0 ? expected : version, from_registry, origin,
                           reason);
        artefact_destroy(artefact);
    } else if (expected != 0 && version != expected) {
        snprintf(reason, sizeof reason, "it holds version %d, not %d", (int)version, (int)expected);
        model_watch_refuse(watch, expected, from_registry, origin, reason);
        artefact_destroy(artefact);
    } else {
        model_watch_report(watch, artefact, origin);
    }
}

/* Lists the model's directory and reads every version above the highest so far, in order. */
static void model_watch_scan(struct model_watch *watch)
{
    int32_t *versions = NULL;
    size_t count = 0;
    char err[512];
    if (registry_versions(watch->registry, watch->name, &versions, &count, err, sizeof err) !=
        TB_OK) {
        if (strcmp(err, watch->last_scan_error) != 0)
            log_warn("model watch: %s", err);
        snprintf(watch->last_scan_error, sizeof watch->last_scan_error, "%s", err);
        return;
    }
    watch->last_scan_error[0] = '\0';
    for (size_t i = 0; i < count && !model_watch_stopping(watch); i++) {
        if (versions[i] <= watch->highest)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s/v%d.avro", watch->registry, watch->name,
                 (int)versions[i]);
        struct artefact *artefact = artefact_read(path, err, sizeof err);
        if (!artefact)
            model_watch_refuse(watch, versions[i], true, path, err);
        else
            model_watch_consider(watch, artefact, versions[i], true, path);
    }
    free(versions);
}

/* Starts reading every partition of the topic from its beginning, once the topic exists. */
static void model_watch_start_topic(struct model_watch *watch)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(watch->consumer, 0, watch->topic_handle, &md,
                                               MODEL_WATCH_METADATA_TIMEOUT_MS);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
        int32_t n = md->topics[0].partition_cnt;
        for (int32_t p = 0; p < n; p++) {
            if (rd_kafka_consume_start_queue(watch->topic_handle, p, RD_KAFKA_OFFSET_BEGINNING,
                                             watch->queue) != 0) {
                log_warn("models topic '%s': cannot read partition %d: %s", watch->topic, (int)p,
                         rd_kafka_err2str(rd_kafka_last_error()));
                for (int32_t q = 0; q < p; q++)
                    rd_kafka_consume_stop(watch->topic_handle, q);
                goto done;
            }
        }
        watch->npartitions = n;
        log_info("models topic '%s': reading %d partition%s from the beginning for model '%s'",
                 watch->topic, (int)n, n == 1 ? "" : "s", watch->name);
    } else if (!watch->topic_missing_logged) {
        rd_kafka_resp_err_t why = rc != RD_KAFKA_RESP_ERR_NO_ERROR ? rc
                                  : md->topic_cnt == 1             ? md->topics[0].err
                                                       : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        log_info("models topic '%s' is not available yet (%s); looking again every %d ms",
                 watch->topic, rd_kafka_err2str(why), MODEL_WATCH_METADATA_EVERY_MS);
        watch->topic_missing_logged = 1;
    }
done:
    if (md)
        rd_kafka_metadata_destroy(md);
}

/* The version in a record's header, or 0 when it has none that parses. */
static int32_t model_watch_header_version(rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *headers = NULL;
    const void *value = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, MODEL_TOPIC_HEADER_VERSION, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value || size == 0 || size > 10)
        return 0;
    int64_t version = 0;
    for (size_t i = 0; i < size; i++) {
        char c = ((const char *)value)[i];
        if (c < '0' || c > '9')
            return 0;
        version = version * 10 + (c - '0');
    }
    return version <= INT32_MAX ? (int32_t)version : 0;
}

/* Handles one record of the models topic. */
static void model_watch_record(struct model_watch *watch, rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("models topic '%s': %s", watch->topic, rd_kafka_message_errstr(msg));
        return;
    }
    size_t name_len = strlen(watch->name);
    if (msg->key_len != name_len || memcmp(msg->key, watch->name, name_len) != 0)
        return;
    /* Skip what is known to be old without decoding it. */
    int32_t hinted = model_watch_header_version(msg);
    if (hinted != 0 && hinted <= watch->highest)
        return;
    char origin[320];
    snprintf(origin, sizeof origin, "topic %s partition %d offset %lld", watch->topic,
             (int)msg->partition, (long long)msg->offset);
    char err[512];
    struct artefact *artefact = artefact_decode(msg->payload, msg->len, origin, err, sizeof err);
    if (!artefact) {
        model_watch_refuse(watch, hinted, false, origin, err);
        return;
    }
    if (artefact_version(artefact) <= watch->highest) {
        artefact_destroy(artefact);
        return;
    }
    model_watch_consider(watch, artefact, 0, false, origin);
}

static void *model_watch_run(void *arg)
{
    struct model_watch *watch = arg;
    char thread_name[24];
    snprintf(thread_name, sizeof thread_name, "watch-%s", watch->name);
    log_set_thread_name(thread_name);

    int64_t next_scan_ms = clock_monotonic_ms();
    int64_t next_metadata_ms = next_scan_ms;
    while (!model_watch_stopping(watch)) {
        int64_t now = clock_monotonic_ms();
        if (watch->registry && now >= next_scan_ms) {
            model_watch_scan(watch);
            next_scan_ms = clock_monotonic_ms() + watch->poll_ms;
        }
        if (watch->consumer && watch->npartitions == 0 && now >= next_metadata_ms) {
            model_watch_start_topic(watch);
            next_metadata_ms = clock_monotonic_ms() + MODEL_WATCH_METADATA_EVERY_MS;
        }
        if (model_watch_stopping(watch))
            break;
        /* Wait for the next thing to do, in slices when reading the topic. */
        now = clock_monotonic_ms();
        int64_t wait_ms = watch->registry ? next_scan_ms - now : MODEL_WATCH_SLICE_MS;
        if (watch->consumer && watch->npartitions == 0 && next_metadata_ms - now < wait_ms)
            wait_ms = next_metadata_ms - now;
        if (wait_ms < 0)
            wait_ms = 0;
        if (watch->npartitions > 0) {
            rd_kafka_message_t *msg = rd_kafka_consume_queue(
                watch->queue,
                (int)(wait_ms < MODEL_WATCH_SLICE_MS ? wait_ms : MODEL_WATCH_SLICE_MS));
            if (msg) {
                model_watch_record(watch, msg);
                rd_kafka_message_destroy(msg);
            }
        } else {
            model_watch_sleep(watch, wait_ms);
        }
    }
    return NULL;
}

/* Frees what model_watch_new made; the thread is not running. */
static void model_watch_free(struct model_watch *watch)
{
    if (watch->topic_handle) {
        for (int32_t p = 0; p < watch->npartitions; p++)
            rd_kafka_consume_stop(watch->topic_handle, p);
    }
    if (watch->queue)
        rd_kafka_queue_destroy(watch->queue);
    if (watch->topic_handle)
        rd_kafka_topic_destroy(watch->topic_handle);
    if (watch->consumer)
        rd_kafka_destroy(watch->consumer);
    pthread_cond_destroy(&watch->wake);
    pthread_mutex_destroy(&watch->lock);
    free(watch->topic);
    free(watch->name);
    free(watch->registry);
    free(watch);
}

/* Makes the topic's reader: no consumer group (so nothing is joined or committed), every
 * partition read from its beginning. */
static int model_watch_make_consumer(struct model_watch *watch, const struct kafka_prop *props,
                                     size_t nprops, char *err, size_t errsz)
{
    static const struct kafka_prop forced[] = {
        {"group.id", ""}, /* a group.id among the user's settings must not make a group */
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "false"},
        {"auto.offset.reset", "earliest"},
    };
    rd_kafka_conf_t *conf = kafka_conf_build(NULL, 0, props, nprops, forced,
                                             sizeof forced / sizeof forced[0], err, errsz);
    if (!conf)
        return TB_CONFIG;
    char reason[512];
    watch->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    if (!watch->consumer) {
        rd_kafka_conf_destroy(conf);
        return tb_fail(err, errsz, TB_KAFKA, "models topic '%s': consumer: %s", watch->topic,
                       reason);
    }
    watch->topic_handle = rd_kafka_topic_new(watch->consumer, watch->topic, NULL);
    if (!watch->topic_handle)
        return tb_fail(err, errsz, TB_KAFKA, "models topic '%s': %s", watch->topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
    watch->queue = rd_kafka_queue_new(watch->consumer);
    return TB_OK;
}

struct model_watch *model_watch_new(const struct model_watch_options *options, char *err,
                                    size_t errsz)
{
    int has_registry = options->registry && *options->registry;
    int has_topic = options->topic && *options->topic;
    if (registry_check_name(options->name, err, errsz) != TB_OK)
        return NULL;
    if (!has_registry && !has_topic) {
        tb_fail(err, errsz, TB_USAGE, "model watch '%s': neither a registry nor a topic to watch",
                options->name);
        return NULL;
    }
    if (!options->on_artefact) {
        tb_fail(err, errsz, TB_USAGE, "model watch '%s': no on_artefact callback", options->name);
        return NULL;
    }
    if (options->poll_ms < 1) {
        tb_fail(err, errsz, TB_USAGE, "model watch '%s': poll interval %d ms is not positive",
                options->name, options->poll_ms);
        return NULL;
    }

    struct model_watch *watch = mem_calloc(1, sizeof *watch);
    pthread_mutex_init(&watch->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watch->wake, &attr);
    pthread_condattr_destroy(&attr);
    watch->registry = has_registry ? mem_strdup(options->registry) : NULL;
    watch->name = mem_strdup(options->name);
    watch->topic = has_topic ? mem_strdup(options->topic) : NULL;
    watch->poll_ms = options->poll_ms;
    watch->on_artefact = options->on_artefact;
    watch->on_refused = options->on_refused;
    watch->opaque = options->opaque;
    watch->highest = options->after_version;

    if (has_topic &&
        model_watch_make_consumer(watch, options->props, options->nprops, err, errsz) != TB_OK)
        goto fail;
    int rc = pthread_create(&watch->thread, NULL, model_watch_run, watch);
    if (rc != 0) {
        tb_fail(err, errsz, TB_IO, "model watch '%s': cannot start a thread: %s", watch->name,
                strerror(rc));
        goto fail;
    }
    watch->thread_started = 1;
    return watch;

fail:
    model_watch_free(watch);
    return NULL;
}

void model_watch_destroy(struct model_watch *watch)
{
    if (!watch)
        return;
    pthread_mutex_lock(&watch->lock);
    atomic_store(&watch->stop, 1);
    pthread_cond_broadcast(&watch->wake);
    pthread_mutex_unlock(&watch->lock);
    if (watch->thread_started)
        pthread_join(watch->thread, NULL);
    model_watch_free(watch);
}
