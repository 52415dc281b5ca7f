/* Helpers the registry, model_watch and serve tests share: sample model artefacts and a recorder
 * of model_watch events. */
#ifndef TRIBUTARY_TESTS_SUPPORT_REGISTRY_SUPPORT_H
#define TRIBUTARY_TESTS_SUPPORT_REGISTRY_SUPPORT_H

#include "service/registry/artefact.h"
#include "service/registry/model_watch.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* --- model artefacts and model_watch events --------------------------------------------------- */

/* Returns a new artefact of model name at version (0: none yet) with label "y": a pipeline of 2
 * numeric inputs x1, x2 without featurizer stages and a ridge model with intercept 0.5 and
 * coefficients coef0 and -2.25 (coef0 tells artefacts apart). Fails the running test when it
 * cannot be built. The caller frees it with artefact_destroy. */
struct artefact *support_make_artefact(const char *name, int32_t version, double coef0);

/* Returns the encoded bytes (*len of them) of version `version` of support_make_artefact(name)
 * with one byte of a coefficient flipped, which only the checksum can tell; the caller frees
 * them. Fails the running test when it cannot encode them. */
unsigned char *support_corrupt_artefact(const char *name, int32_t version, size_t *len);

/* The events a collector keeps, in arrival order. */
#define SUPPORT_MAX_EVENTS 32

/* One report of a model_watch: a version reported (refused 0, with the artefact's name) or
 * refused (refused 1, with the reason). */
struct support_event {
    int refused;
    int32_t version;
    char name[160]; /* the artefact's, when reported */
    char origin[1024];
    char reason[1024];
};

/* Records what a model_watch reports, from its thread. Read n and events under lock, or after
 * the watch is destroyed; changed is broadcast at every event. */
struct support_collector {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct support_event events[SUPPORT_MAX_EVENTS];
    size_t n;
    int overflow; /* 1 when an event arrived with events full (it is dropped) */
};

/* Returns a new, empty collector (never NULL); free it with support_collector_destroy once no
 * watch reports to it any more. */
struct support_collector *support_collector_new(void);

/* Frees the collector; accepts NULL. */
void support_collector_destroy(struct support_collector *c);

/* Returns how many events the collector holds. */
size_t support_collector_count(struct support_collector *c);

/* Waits until the collector holds at least n events or timeout_ms pass; returns how many it
 * holds then. */
size_t support_collector_wait(struct support_collector *c, size_t n, int timeout_ms);

/* Waits until the newest event is a report (not a refusal) of version, or timeout_ms pass.
 * Returns the number of events then; fails the running test when the wait timed out. */
size_t support_collector_wait_reported(struct support_collector *c, int32_t version,
                                       int timeout_ms);

/* Waits quiet_ms and fails the running test unless the collector still holds exactly n events. */
void support_collector_expect_quiet(struct support_collector *c, size_t n, int quiet_ms);

/* Starts a model_watch with *options, but with support_on_artefact and support_on_refused as
 * callbacks recording into c. Returns the watch (destroy it before c); fails the running test
 * when model_watch_new refuses the options. */
struct model_watch *support_watch_new(const struct model_watch_options *options,
                                      struct support_collector *c);

/* model_watch callbacks whose opaque is a collector: each appends one event. on_artefact
 * destroys the artefact it is given. */
void support_on_artefact(struct artefact *artefact, const char *origin, void *opaque);
void support_on_refused(int32_t version, const char *origin, const char *reason, void *opaque);

#endif
