/* A worker's per-key state: windows and online models, changelog checkpoints, restore, spill. */
#include "service/stream/state_store.h"

#include "connectors/kafka/changelog.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The per-key metrics as the changelog carries them: struct metrics_running's six fields, then
 * struct metrics_running_class's three. */
#define STATE_STORE_NMETRICS 9

/* An input offset held back until the next checkpoint. */
struct state_store_pending {
    int32_t partition;
    int64_t offset;
};

struct state_store {
    const struct config *cfg;
    const struct kafka_prop *props;
    size_t nprops;
    struct kafka_sink *sink;
    struct kafka_source *source;
    struct state_store_stats *stats;
    atomic_int *stop;
    pthread_mutex_t *lock;
    rd_kafka_topic_t *changelog; /* NULL: no checkpoints */
    bool broken; /* state could not be restored or read back: predict only, write nothing */

    const struct pipeline *pipeline;
    const struct online_model *online; /* NULL: none */
    struct grouped_table *table;
    struct pipeline_state *windows;
    struct metrics_running prequential; /* of this store's keys, since it started */
    struct metrics_running_class prequential_class;

    struct state_store_pending *pending;
    size_t npending, pending_cap;
    int64_t last_checkpoint_ms;
    struct grouped_key **inflight; /* the keys of the checkpoint in flight, by tag */
    unsigned char *inflight_failed;
    size_t inflight_cap;

    int spill_fd; /* -1 until the first key is spilled */
    int64_t spill_end;

    double *window_buf; /* one key's window history */
    double *empty_state;
    struct avro_wire_buf encoded;
    struct changelog_scratch scratch;
    size_t restore_bad_model;
};

struct state_store *state_store_new(const struct state_store_options *o, char *err, size_t errsz)
{
    struct state_store *s = mem_calloc(1, sizeof *s);
    s->cfg = o->cfg;
    s->props = o->props;
    s->nprops = o->nprops;
    s->sink = o->sink;
    s->source = o->source;
    s->stats = o->stats;
    s->stop = o->stop;
    s->lock = o->lock;
    s->spill_fd = -1;
    s->last_checkpoint_ms = clock_monotonic_ms();
    if (o->cfg->state.changelog_topic[0]) {
        s->changelog = kafka_sink_topic(o->sink, o->cfg->state.changelog_topic, err, errsz);
        if (!s->changelog) {
            state_store_destroy(s);
            return NULL;
        }
    }
    return s;
}

bool state_store_checkpoints(const struct state_store *s)
{
    return s->changelog != NULL;
}

void state_store_adopt(struct state_store *s, const struct pipeline *pipeline,
                       const struct online_model *online)
{
    s->pipeline = pipeline;
    if (!s->windows || !pipeline_state_fits(s->windows, pipeline)) {
        if (s->windows)
            log_info("the new model reads other inputs or another window: per-key windows start "
                     "afresh");
        pipeline_state_destroy(s->windows);
        s->windows = pipeline_state_new(pipeline);
        free(s->window_buf);
        size_t width = pipeline_state_width(s->windows);
        s->window_buf =
            mem_alloc((width ? width : 1) * (pipeline_spec(pipeline)->window + 1) * sizeof(double));
    }
    size_t state_len = online ? online_state_len(online) : 0;
    bool same = s->table && grouped_state_len(s->table) == state_len &&
                (online ? s->online && online_model_kind(s->online) == online_model_kind(online)
                        : !s->online);
    s->online = online;
    if (same)
        return;
    if (s->table)
        log_info("the online model changed: per-key models start afresh");
    grouped_destroy(s->table);
    s->table = grouped_new(state_len);
    free(s->empty_state);
    s->empty_state = mem_calloc(state_len ? state_len : 1, sizeof(double));
    if (online)
        online_state_init(online, s->empty_state);
}

/* The state can no longer be exact: from now on nothing is learned, checkpointed or committed,
 * and the service stops, to read everything again with the state after a restart. */
static void state_store_break(struct state_store *s)
{
    s->broken = true;
    s->npending = 0;
    atomic_store(s->stop, 1);
}

/* --- the changelog encoding of a key ---------------------------------------------------------- */

static const char *state_store_model_name(const struct state_store *s)
{
    return s->online ? online_kind_name(online_model_kind(s->online)) : "none";
}

static void state_store_metrics_out(const struct grouped_key *k, double *m)
{
    const struct metrics_running *r = &k->prequential;
    const struct metrics_running_class *c = &k->prequential_class;
    double values[STATE_STORE_NMETRICS] = {
        (double)r->count, r->sum_abs_error, r->sum_squared_error, r->mean_true,    r->m2_true,
        r->nasa_score,    (double)c->count, (double)c->correct,   c->sum_log_loss,
    };
    memcpy(m, values, sizeof values);
}

static void state_store_metrics_in(struct grouped_key *k, const double *m)
{
    k->prequential = (struct metrics_running){
        .count = (size_t)m[0],
        .sum_abs_error = m[1],
        .sum_squared_error = m[2],
        .mean_true = m[3],
        .m2_true = m[4],
        .nasa_score = m[5],
    };
    k->prequential_class = (struct metrics_running_class){
        .count = (size_t)m[6], .correct = (size_t)m[7], .sum_log_loss = m[8]};
}

/* Encodes hot key k into s->encoded. */
static void state_store_encode(struct state_store *s, const struct grouped_key *k)
{
    double metrics[STATE_STORE_NMETRICS];
    state_store_metrics_out(k, metrics);
    size_t width = pipeline_state_width(s->windows);
    size_t nrecords = pipeline_state_get(s->windows, k->key, k->key_len, s->window_buf);
    const char *model = state_store_model_name(s);
    struct changelog_entry e = {
        .key = k->key,
        .key_len = k->key_len,
        .partition = k->partition,
        .offset = k->offset,
        .model = model,
        .model_len = strlen(model),
        .state = k->state,
        .nstate = grouped_state_len(s->table),
        .window = s->window_buf,
        .nwindow = nrecords * width,
        .window_width = width,
        .records = k->records,
        .metrics = metrics,
        .nmetrics = STATE_STORE_NMETRICS,
    };
    avro_wire_buf_reset(&s->encoded);
    changelog_encode(&e, &s->encoded);
}

/* Takes a decoded entry into key k (hot, or made hot). Returns false, leaving k as it was, when
 * the entry is another model's state or a state this model could not have made. */
static bool state_store_take(struct state_store *s, struct grouped_key *k,
                             const struct changelog_entry *e)
{
    const char *model = state_store_model_name(s);
    char why[256] = "";
    if (e->model_len != strlen(model) || memcmp(e->model, model, e->model_len) != 0)
        snprintf(why, sizeof why, "the state is of model '%.*s', this is '%s'", (int)e->model_len,
                 e->model, model);
    else if (e->nstate != grouped_state_len(s->table))
        snprintf(why, sizeof why, "the state has %zu values, the model %zu", e->nstate,
                 grouped_state_len(s->table));
    else if (e->nmetrics != STATE_STORE_NMETRICS)
        snprintf(why, sizeof why, "%zu metrics instead of %d", e->nmetrics, STATE_STORE_NMETRICS);
    else if (s->online)
        online_state_check(s->online, e->state, why, sizeof why);
    if (why[0]) {
        log_warn("changelog entry of key '%.*s' (partition %" PRId32 ") refused: %s",
                 (int)(k->key_len > 64 ? 64 : k->key_len), k->key, e->partition, why);
        return false;
    }
    grouped_warm(s->table, k, e->state);
    k->partition = e->partition;
    k->offset = e->offset;
    k->records = e->records;
    state_store_metrics_in(k, e->metrics);
    size_t width = pipeline_state_width(s->windows);
    if (e->window_width == width && width > 0)
        pipeline_state_put(s->windows, k->key, k->key_len, e->window, e->nwindow / width);
    return true;
}

/* --- the spill file -----------------------------------------------------------------------------
 */

static int state_store_spill_open(struct state_store *s)
{
    const char *dir = s->cfg->state.spill_directory;
    if (!dir[0]) {
        const char *tmpdir = getenv("TMPDIR");
        dir = tmpdir && tmpdir[0] ? tmpdir : "/tmp";
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tributary-spill-XXXXXX", dir);
    s->spill_fd = mkstemp(path);
    if (s->spill_fd < 0) {
        log_error("state.spill_directory: cannot create a spill file in %s: %s", dir,
                  strerror(errno));
        return -1;
    }
    unlink(path);
    s->spill_end = 0;
    return 0;
}

static bool state_store_write_all(int fd, const void *data, size_t len, int64_t at)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
        at += n;
    }
    return true;
}

static bool state_store_read_all(int fd, void *data, size_t len, int64_t at)
{
    char *p = data;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
        at += n;
    }
    return true;
}

/* Moves hot key k to the spill file: a 4-byte length, then its changelog encoding. Returns false
 * (k stays hot) when the file cannot be written. */
static bool state_store_spill(struct state_store *s, struct grouped_key *k)
{
    if (s->spill_fd < 0 && state_store_spill_open(s) != 0)
        return false;
    state_store_encode(s, k);
    uint32_t len = (uint32_t)s->encoded.len;
    int64_t at = s->spill_end;
    if (!state_store_write_all(s->spill_fd, &len, sizeof len, at) ||
        !state_store_write_all(s->spill_fd, s->encoded.data, len, at + (int64_t)sizeof len)) {
        log_error("spill file: %s", strerror(errno));
        return false;
    }
    s->spill_end += (int64_t)sizeof len + len;
    pipeline_state_drop(s->windows, k->key, k->key_len);
    grouped_chill(s->table, k, at);
    atomic_fetch_add(&s->stats->spilled, 1);
    return true;
}

/* Reads cold key k's encoding from the spill file into s->encoded. */
static bool state_store_spilled(struct state_store *s, const struct grouped_key *k)
{
    uint32_t len;
    avro_wire_buf_reset(&s->encoded);
    if (!state_store_read_all(s->spill_fd, &len, sizeof len, k->spill))
        return false;
    avro_wire_buf_reserve(&s->encoded, len);
    if (!state_store_read_all(s->spill_fd, s->encoded.data, len, k->spill + (int64_t)sizeof len))
        return false;
    s->encoded.len = len;
    return true;
}

/* Decodes cold key k's spilled entry into *e (pointing into the store's scratch). Returns TB_OK,
 * or an error with err. */
static int state_store_read_spilled(struct state_store *s, const struct grouped_key *k,
                                    struct changelog_entry *e, char *err, size_t errsz)
{
    if (!state_store_spilled(s, k))
        return tb_fail(err, errsz, TB_IO, "spill file: %s", strerror(errno));
    int rc = changelog_decode(s->encoded.data, s->encoded.len, e, &s->scratch, err, errsz);
    e->partition = k->partition;
    return rc;
}

/* Brings cold key k back from the spill file. A spill that cannot be read back (the file was
 * damaged under us) leaves the key starting afresh, logged: nothing else can be done. */
static void state_store_unspill(struct state_store *s, struct grouped_key *k)
{
    char err[256];
    struct changelog_entry e;
    if (state_store_read_spilled(s, k, &e, err, sizeof err) == TB_OK) {
        if (state_store_take(s, k, &e)) {
            atomic_fetch_add(&s->stats->unspilled, 1);
            return;
        }
        snprintf(err, sizeof err, "refused");
    }
    log_error("key '%.*s': its spilled state cannot be read back (%s); the service stops rather "
              "than learn without it",
              (int)(k->key_len > 64 ? 64 : k->key_len), k->key, err);
    grouped_warm(s->table, k, s->empty_state);
    state_store_break(s);
}

/* --- the record path ----------------------------------------------------------------------------
 */

void state_store_begin(struct state_store *s, const struct state_store_row *rows, size_t n,
                       struct grouped_key **keys, unsigned char *replay)
{
    for (size_t i = 0; i < n; i++) {
        bool created;
        struct grouped_key *k = grouped_get(s->table, rows[i].key, rows[i].key_len, &created);
        if (created)
            memcpy(k->state, s->empty_state, grouped_state_len(s->table) * sizeof(double));
        else if (!k->state)
            state_store_unspill(s, k);
        keys[i] = k;
        replay[i] = s->broken || (k->partition == rows[i].partition && rows[i].offset <= k->offset);
        /* At once, so that a record that comes twice in one batch (a rewind's seek overtaken by
         * records already fetched) is learned once. */
        if (!replay[i]) {
            k->partition = rows[i].partition;
            k->offset = rows[i].offset;
        }
    }
}

void state_store_features(struct state_store *s, const struct pipeline_rows *rows,
                          const unsigned char *replay, double *out)
{
    size_t q = pipeline_ninputs(s->pipeline), f = pipeline_nfeatures(s->pipeline);
    for (size_t start = 0; start < rows->nrows;) {
        size_t end = start + 1;
        while (end < rows->nrows && replay[end] == replay[start])
            end++;
        for (size_t i = start; i < end && replay[start]; i++) {
            struct pipeline_rows one = {
                .nrows = 1,
                .values = rows->values + i * q,
                .keys = rows->keys + i,
                .key_lens = rows->key_lens + i,
            };
            pipeline_peek(s->pipeline, s->windows, &one, out + i * f);
        }
        if (!replay[start]) {
            struct pipeline_rows run = {
                .nrows = end - start,
                .values = rows->values + start * q,
                .keys = rows->keys + start,
                .key_lens = rows->key_lens + start,
            };
            pipeline_transform(s->pipeline, s->windows, &run, out + start * f);
        }
        start = end;
    }
}

void state_store_learn(struct state_store *s, struct grouped_key **keys,
                       const unsigned char *replay, const double *features, const double *labels,
                       const double *offsets, double positive, size_t n, double *out)
{
    size_t f = pipeline_nfeatures(s->pipeline);
    size_t replayed = 0, learned = 0;
    for (size_t i = 0; i < n; i++) {
        struct grouped_key *k = keys[i];
        const double *x = features + i * f;
        if (replay[i]) {
            out[i] = s->online ? online_predict(s->online, k->state, x, offsets[i]) : NAN;
            replayed++;
            continue;
        }
        grouped_mark(s->table, k);
        if (!s->online) {
            out[i] = NAN;
            continue;
        }
        double before = online_learned(s->online, k->state);
        double y = labels[i];
        if (online_classifier(s->online) && isfinite(y))
            y = y == positive ? 1.0 : 0.0;
        out[i] = online_step(s->online, k->state, x, y, offsets[i]);
        if (online_learned(s->online, k->state) > before) {
            k->records++;
            learned++;
        }
        if (!isfinite(labels[i]) || !isfinite(out[i]))
            continue;
        if (online_classifier(s->online)) {
            metrics_running_class_add(&k->prequential_class, y, out[i]);
            metrics_running_class_add(&s->prequential_class, y, out[i]);
        } else if (online_supervised(s->online) || online_model_kind(s->online) == ONLINE_HOLT) {
            metrics_running_add(&k->prequential, labels[i], out[i]);
            metrics_running_add(&s->prequential, labels[i], out[i]);
        }
    }
    atomic_fetch_add(&s->stats->replayed, replayed);
    atomic_fetch_add(&s->stats->learned, learned);
}

void state_store_defer(struct state_store *s, int32_t partition, int64_t offset)
{
    if (s->broken)
        return;
    if (!s->changelog) {
        kafka_source_store(s->source, partition, offset);
        return;
    }
    for (size_t i = 0; i < s->npending; i++) {
        if (s->pending[i].partition == partition) {
            if (offset > s->pending[i].offset)
                s->pending[i].offset = offset;
            return;
        }
    }
    mem_grow((void **)&s->pending, &s->pending_cap, s->npending + 1, sizeof *s->pending);
    s->pending[s->npending++] = (struct state_store_pending){partition, offset};
}

void state_store_on_delivery(struct state_store *s, uintptr_t tag, int failed)
{
    size_t i = (size_t)(tag - STATE_STORE_TAG);
    if (i < s->inflight_cap)
        s->inflight_failed[i] = (unsigned char)(failed != 0);
}

/* Produces the changed keys to the changelog and waits for the broker; on success stores the
 * held-back offsets. Returns false when an entry was refused (its key stays changed). */
static bool state_store_checkpoint(struct state_store *s)
{
    if (s->broken)
        return false;
    s->last_checkpoint_ms = clock_monotonic_ms();
    struct grouped_key *dirty = grouped_take_dirty(s->table);
    size_t n = 0;
    for (struct grouped_key *k = dirty; k; k = k->next_dirty) {
        if (n == s->inflight_cap) {
            mem_grow((void **)&s->inflight, &s->inflight_cap, n + 1, sizeof *s->inflight);
            s->inflight_failed = mem_realloc(s->inflight_failed, s->inflight_cap);
        }
        s->inflight[n] = k;
        s->inflight_failed[n] = 1; /* until its delivery report says otherwise */
        n++;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        struct grouped_key *k = s->inflight[i];
        char err[256];
        bool encoded = true;
        if (k->state)
            state_store_encode(s, k);
        else
            encoded = state_store_spilled(s, k);
        if (!encoded || kafka_sink_produce_to(s->sink, s->changelog, k->partition, k->key,
                                              k->key_len, s->encoded.data, s->encoded.len, NULL, 0,
                                              STATE_STORE_TAG + i, err, sizeof err) != TB_OK) {
            log_error("checkpoint of partition %" PRId32 ": %s", k->partition,
                      encoded ? err : "its spilled state cannot be read back");
        }
    }
    /* Readers of the table may go on while the broker answers: only delivery reports, which
     * touch nothing they read, change the store meanwhile. */
    if (n > 0) {
        pthread_mutex_unlock(s->lock);
        kafka_sink_wait(s->sink, -1);
        pthread_mutex_lock(s->lock);
    }
    size_t acknowledged = 0;
    for (size_t i = 0; i < n; i++) {
        struct grouped_key *k = s->inflight[i];
        if (s->inflight_failed[i]) {
            grouped_mark(s->table, k);
            ok = false;
        } else {
            k->dirty = false;
            acknowledged++;
        }
    }
    atomic_fetch_add(&s->stats->checkpointed, acknowledged);
    if (!ok) {
        log_warn("a checkpoint was refused: offsets stay uncommitted until the next one succeeds");
        return false;
    }
    for (size_t i = 0; i < s->npending; i++)
        kafka_source_store(s->source, s->pending[i].partition, s->pending[i].offset);
    s->npending = 0;
    return true;
}

/* Spills the least recently seen keys while memory is over the limit. */
static void state_store_trim(struct state_store *s)
{
    size_t limit = (size_t)s->cfg->state.max_bytes;
    if (limit == 0)
        return;
    struct grouped_key *k;
    while (grouped_bytes(s->table) + pipeline_state_bytes(s->windows) > limit &&
           (k = grouped_oldest(s->table)) != NULL) {
        if (!state_store_spill(s, k))
            return;
    }
}

bool state_store_end(struct state_store *s, bool force)
{
    bool ok = true;
    if (s->changelog && (force || clock_monotonic_ms() - s->last_checkpoint_ms >=
                                      s->cfg->state.checkpoint_interval_ms))
        ok = state_store_checkpoint(s);
    state_store_trim(s);
    return ok;
}

/* --- rebalances ---------------------------------------------------------------------------------
 */

struct state_store_revoked {
    const rd_kafka_topic_partition_list_t *parts;
    struct grouped_key **drop;
    size_t ndrop, cap;
};

static void state_store_collect_revoked(void *opaque, struct grouped_key *k)
{
    struct state_store_revoked *r = opaque;
    for (int i = 0; i < r->parts->cnt; i++) {
        if (r->parts->elems[i].partition == k->partition) {
            mem_grow((void **)&r->drop, &r->cap, r->ndrop + 1, sizeof *r->drop);
            r->drop[r->ndrop++] = k;
            return;
        }
    }
}

void state_store_revoke(struct state_store *s, const rd_kafka_topic_partition_list_t *parts,
                        bool lost)
{
    if (!s->changelog || !s->table)
        return;
    if (lost)
        log_warn("revoke: the group gave these partitions to another member already; their keys "
                 "are dropped without a checkpoint");
    else if (!state_store_checkpoint(s))
        log_error("revoke: the last checkpoint failed; the next owner reads the records since the "
                  "previous one again");
    struct state_store_revoked r = {.parts = parts};
    grouped_each(s->table, state_store_collect_revoked, &r);
    for (size_t i = 0; i < r.ndrop; i++) {
        pipeline_state_drop(s->windows, r.drop[i]->key, r.drop[i]->key_len);
        grouped_drop(s->table, r.drop[i]);
    }
    /* Offsets of revoked partitions that a failed checkpoint still holds are not ours to store. */
    size_t kept = 0;
    for (size_t i = 0; i < s->npending; i++) {
        bool revoked = false;
        for (int j = 0; j < parts->cnt; j++)
            revoked |= parts->elems[j].partition == s->pending[i].partition;
        if (!revoked)
            s->pending[kept++] = s->pending[i];
    }
    s->npending = kept;
    free(r.drop);
    if (r.ndrop && !lost)
        log_info("revoke: %zu keys checkpointed and handed over", r.ndrop);
}

static void state_store_take_entry(struct state_store *s, const struct changelog_entry *e)
{
    if (e->tombstone) {
        struct grouped_key *k = grouped_find(s->table, e->key, e->key_len);
        if (k) {
            pipeline_state_drop(s->windows, e->key, e->key_len);
            grouped_drop(s->table, k);
        }
        return;
    }
    bool created;
    struct grouped_key *k = grouped_get(s->table, e->key, e->key_len, &created);
    if (!state_store_take(s, k, e)) {
        s->restore_bad_model++;
        if (created)
            grouped_drop(s->table, k);
        return;
    }
    k->dirty = false;
    atomic_fetch_add(&s->stats->restored, 1);
}

/* The store's lock is taken entry by entry, so that readers are never kept waiting behind the
 * network for long; they may see a restore half done, which /readyz reports as not ready. */
static void state_store_on_entry(void *opaque, const struct changelog_entry *e)
{
    struct state_store *s = opaque;
    pthread_mutex_lock(s->lock);
    state_store_take_entry(s, e);
    if (s->cfg->state.max_bytes > 0 && grouped_bytes(s->table) + pipeline_state_bytes(s->windows) >
                                           (size_t)s->cfg->state.max_bytes)
        state_store_trim(s);
    pthread_mutex_unlock(s->lock);
}

bool state_store_assign(struct state_store *s, const rd_kafka_topic_partition_list_t *parts)
{
    if (!s->changelog || parts->cnt == 0)
        return true;
    int32_t *partitions = mem_alloc((size_t)parts->cnt * sizeof *partitions);
    for (int i = 0; i < parts->cnt; i++)
        partitions[i] = parts->elems[i].partition;
    atomic_fetch_add(&s->stats->restoring, 1);
    int64_t started = clock_monotonic_ms();
    unsigned long long before = atomic_load(&s->stats->restored);
    size_t nbad = 0;
    char err[512];
    s->restore_bad_model = 0;
    int rc = changelog_restore(s->props, s->nprops, s->cfg->state.changelog_topic, partitions,
                               (size_t)parts->cnt, s->cfg->state.restore_timeout_ms,
                               state_store_on_entry, s, &nbad, err, sizeof err);
    free(partitions);
    atomic_fetch_sub(&s->stats->restoring, 1);
    if (rc != TB_OK) {
        log_error("cannot restore per-key state from '%s': %s; the service stops rather than "
                  "learn without it",
                  s->cfg->state.changelog_topic, err);
        pthread_mutex_lock(s->lock);
        state_store_break(s);
        pthread_mutex_unlock(s->lock);
        return false;
    }
    log_info("restored %llu changelog entries (%zu keys held) for %d partitions in %" PRId64
             " ms%s",
             atomic_load(&s->stats->restored) - before, grouped_keys(s->table), parts->cnt,
             clock_monotonic_ms() - started,
             nbad || s->restore_bad_model ? "; some entries were refused (logged)" : "");
    return true;
}

/* --- readers ------------------------------------------------------------------------------------
 */

void state_store_size(const struct state_store *s, size_t *keys, size_t *bytes)
{
    *keys = s->table ? grouped_keys(s->table) : 0;
    *bytes = (s->table ? grouped_bytes(s->table) : 0) +
             (s->windows ? pipeline_state_bytes(s->windows) : 0);
}

bool state_store_peek(struct state_store *s, const struct pipeline *pipeline,
                      const struct pipeline_rows *row, double *out)
{
    const char *key = row->keys[0];
    size_t len = row->key_lens[0];
    if (!s->windows || !pipeline_state_fits(s->windows, pipeline))
        return false;
    if (pipeline_state_has(s->windows, key, len)) {
        pipeline_peek(pipeline, s->windows, row, out);
        return true;
    }
    struct grouped_key *k = s->table ? grouped_find(s->table, key, len) : NULL;
    char err[256];
    struct changelog_entry e;
    size_t width = pipeline_state_width(s->windows);
    if (!k || k->state || state_store_read_spilled(s, k, &e, err, sizeof err) != TB_OK ||
        e.window_width != width)
        return false;
    struct pipeline_state *one = pipeline_state_new(pipeline);
    if (width > 0)
        pipeline_state_put(one, key, len, e.window, e.nwindow / width);
    pipeline_peek(pipeline, one, row, out);
    pipeline_state_destroy(one);
    return true;
}

bool state_store_predict(struct state_store *s, const struct online_model *online, const char *key,
                         size_t len, const double *x, double offset, double *out)
{
    struct grouped_key *k = s->table && s->online ? grouped_find(s->table, key, len) : NULL;
    if (!k || online_model_kind(online) != online_model_kind(s->online) ||
        online_state_len(online) != grouped_state_len(s->table))
        return false;
    if (k->state) {
        *out = online_predict(online, k->state, x, offset);
        return true;
    }
    char err[256];
    struct changelog_entry e;
    if (state_store_read_spilled(s, k, &e, err, sizeof err) != TB_OK ||
        e.nstate != grouped_state_len(s->table))
        return false;
    *out = online_predict(online, e.state, x, offset);
    return true;
}

bool state_store_key(struct state_store *s, const char *key, size_t len, struct grouped_key *out)
{
    struct grouped_key *k = s->table ? grouped_find(s->table, key, len) : NULL;
    if (!k)
        return false;
    *out = *k;
    out->state = NULL;
    return true;
}

void state_store_prequential(const struct state_store *s, struct metrics_running *regression,
                             struct metrics_running_class *classification)
{
    metrics_running_merge(regression, &s->prequential);
    metrics_running_class_merge(classification, &s->prequential_class);
}

void state_store_destroy(struct state_store *s)
{
    if (!s)
        return;
    if (s->spill_fd >= 0)
        close(s->spill_fd);
    grouped_destroy(s->table);
    pipeline_state_destroy(s->windows);
    changelog_scratch_free(&s->scratch);
    avro_wire_buf_free(&s->encoded);
    free(s->inflight_failed);
    free(s->inflight);
    free(s->pending);
    free(s->window_buf);
    free(s->empty_state);
    free(s);
}
