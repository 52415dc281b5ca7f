/* Watches a registry directory and a models topic for new versions of one model, on a thread of
 * its own, and hands each new version to the service that is serving an older one. */
#ifndef TRIBUTARY_MODEL_WATCH_H
#define TRIBUTARY_MODEL_WATCH_H

#include "service/registry/artefact.h"

#include <stddef.h>
#include <stdint.h>

struct kafka_prop; /* connectors/kafka/kafka_conf.h */

struct model_watch_options {
    const char *registry;           /* registry directory; "" or NULL: do not watch one */
    const char *name;               /* model name */
    const char *topic;              /* models topic; "" or NULL: do not watch one */
    const struct kafka_prop *props; /* the user's kafka.* settings, for the topic's reader */
    size_t nprops;
    int poll_ms;           /* directory poll interval, > 0 */
    int32_t after_version; /* report only versions greater than this (the one already serving) */
    /* Called on the watch thread for each new version, in increasing version order: artefact is
     * decoded and checksum-verified and now the callback's (it frees it with
     * artefact_destroy). origin is the file's path or e.g. "topic models partition 0 offset 5". */
    void (*on_artefact)(struct artefact *artefact, const char *origin, void *opaque);
    /* Called on the watch thread when a new version cannot be read or verified, or names another
     * model; version is 0 when not even the version could be read. May be NULL (the refusal is
     * logged either way). */
    void (*on_refused)(int32_t version, const char *origin, const char *reason, void *opaque);
    void *opaque;
    /* The callbacks must not destroy the watch (destroy joins the thread they run on). */
};

struct model_watch;

/* Starts watching. The directory REGISTRY/<name> is listed every poll_ms (it need not exist
 * yet); every version above the highest one reported or refused so far is read, verified and
 * reported (or refused), in increasing order, each at most once. The topic is read from the
 * beginning of each of its partitions (the count taken from the cluster once the topic exists)
 * with no consumer group and no committed offsets; a record whose key is the model name and
 * whose version is above the highest so far is decoded and reported (or refused). A version seen
 * through one source is not reported again through the other. An artefact whose name is not
 * `name`, or whose file name's version differs from its own, is refused.
 * options and the strings in it are copied; props are used only here. Returns the watch (free
 * it with model_watch_destroy) or NULL with a message in err (TB_USAGE-style problems: a bad
 * name, no source, no on_artefact, poll_ms < 1; or a property librdkafka refuses). */
struct model_watch *model_watch_new(const struct model_watch_options *options, char *err,
                                    size_t errsz);

/* Stops the thread (within about poll_ms plus a few hundred milliseconds; no callback runs after
 * this returns), joins it and frees everything; NULL is a no-op. */
void model_watch_destroy(struct model_watch *watch);

#endif
