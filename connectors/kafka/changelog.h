/* Changelog: per-key state checkpoints (config/schemas/changelog.avsc) to and from Avro binary,
 * and restoring a worker's partitions from the changelog topic. */
#ifndef TRIBUTARY_CHANGELOG_H
#define TRIBUTARY_CHANGELOG_H

#include "connectors/avro/avro_wire.h"
#include "connectors/kafka/kafka_conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most doubles one entry may hold (state, window and metrics together): 128 MiB of them. */
#define CHANGELOG_MAX_DOUBLES ((size_t)1 << 24)

/* One key's checkpoint. Nothing is owned: on encode the pointers are the caller's; on decode and
 * restore they point into the record and the scratch (see changelog_decode). */
struct changelog_entry {
    const char *key; /* the Kafka key, not part of the encoded value */
    size_t key_len;
    int32_t partition; /* input (and changelog) partition, not part of the encoded value */
    int64_t offset;    /* input offset of the last record this state has learned (-1: none) */
    const char *model; /* the online model kind name, e.g. "rls" */
    size_t model_len;
    const double *state; /* online model state */
    size_t nstate;
    const double *window;  /* window history: records oldest first, flattened */
    size_t nwindow;        /* a multiple of window_width (0 when window_width is 0) */
    size_t window_width;   /* doubles per window record, at most INT32_MAX */
    int64_t records;       /* records of this key learned in all (>= 0) */
    const double *metrics; /* per-key running prequential sums */
    size_t nmetrics;
    bool tombstone; /* a deleted key (Kafka null value): encodes to nothing */
};

/* Where changelog_decode puts the doubles it decodes. Start from `struct changelog_scratch s =
 * {0};`, reuse it for entry after entry (each decode overwrites the previous one's doubles), and
 * release it with changelog_scratch_free. */
struct changelog_scratch {
    double *values;
    size_t cap; /* doubles allocated */
};

/* Frees the scratch's memory and leaves it empty and reusable; accepts NULL. */
void changelog_scratch_free(struct changelog_scratch *scratch);

/* Appends the Avro binary of e's value (a tributary.KeyState: offset, model, records, state,
 * window_width, window, metrics; key and partition travel as the Kafka key and partition) to out.
 * A tombstone appends nothing: produce it as a null value. Never fails. */
void changelog_encode(const struct changelog_entry *e, struct avro_wire_buf *out);

/* Decodes value[0..len), which must be exactly one KeyState, into *e: e->model points into value,
 * e->state, e->window and e->metrics into scratch (both must outlive the use of *e); e->key is
 * NULL, e->key_len 0, e->partition -1 and e->tombstone false (a tombstone is a null value, which
 * is not decoded). Returns TB_OK, or TB_PARSE with err naming the field and the fault: the
 * value ends early, a length or count is negative (Avro's negative block counts, with a byte size
 * that matches, are accepted), more than CHANGELOG_MAX_DOUBLES doubles, an offset below -1,
 * a negative record count, a window that does not divide into records of window_width, or bytes
 * after the record. On failure *e is unspecified. */
int changelog_decode(const void *value, size_t len, struct changelog_entry *e,
                     struct changelog_scratch *scratch, char *err, size_t errsz);

/* Called by changelog_restore with each entry in partition order; e and everything it points to
 * are valid only during the call. */
typedef void changelog_entry_fn(void *opaque, const struct changelog_entry *e);

/* Finds how many partitions `topic` has without creating it: the embedded broker creates any
 * topic that a Metadata request names (with 4 partitions, whatever the client asks), so the
 * request asks for all topics. props are the user's kafka.* properties. Returns TB_OK with
 * *partitions the count, or 0 when the topic does not exist; TB_USAGE for no topic; TB_CONFIG
 * when props are refused; TB_KAFKA with err when the cluster does not answer within timeout_ms.
 * A worker can check with it that the changelog has at least the input's partitions before it
 * produces checkpoints to them. */
int changelog_topic_partitions(const struct kafka_prop *props, size_t nprops, const char *topic,
                               int timeout_ms, int *partitions, char *err, size_t errsz);

/* Reads partitions[0..npartitions) of `topic`, each from its beginning up to the high watermark
 * it has when the restore starts, with a short-lived consumer of its own (assign(), no group
 * membership, no commits), and calls fn(opaque, entry) for each entry in offset order within
 * its partition; partitions are read at once, so the entries of different partitions interleave.
 * The entry's key and partition are the record's; a null value is passed with tombstone true and
 * nothing else (offset -1, records 0, no model, empty arrays). A later entry for a key replaces
 * an earlier one: that is fn's business. A record that does not decode, or has no key, is logged
 * (log_warn with its partition, offset and reason), counted in *nbad (which may be NULL) and
 * skipped. Does not create the topic; a topic or partition that does not exist, or is empty,
 * restores nothing.
 * props are the user's kafka.* properties (bootstrap servers among them). On top of them the
 * restore consumer has group.id "tributary-changelog-restore" and isolation.level
 * read_uncommitted unless props say otherwise (librdkafka wants a group for assign(); it is never
 * joined), and always fetch.wait.max.ms 10, no auto commit, auto.offset.reset earliest.
 * Returns TB_OK once every partition is read to its high watermark (or, under read_committed, to
 * its last stable offset); TB_USAGE for no topic, a negative or repeated partition, or
 * timeout_ms < 1; TB_CONFIG when props are refused; TB_KAFKA with err when the cluster does not
 * answer, or the partitions are not all read, within timeout_ms (the entries before that point
 * have been passed to fn; err names the partitions missing and how far they got). */
int changelog_restore(const struct kafka_prop *props, size_t nprops, const char *topic,
                      const int32_t *partitions, size_t npartitions, int timeout_ms,
                      changelog_entry_fn *fn, void *opaque, size_t *nbad, char *err, size_t errsz);

#endif
