/* Test helpers around model artefacts and model_watch: sample artefacts and a recorder of events.
 */
#include "tests/support/registry_support.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/registry/model_watch.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* The coefficient support_corrupt_artefact damages: distinct enough to find in the bytes. */
#define FLIP_COEF 1234.5678

struct artefact *support_make_artefact(const char *name, int32_t version, double coef0)
{
    char x1[] = "x1", x2[] = "x2";
    char *numeric[] = {x1, x2};
    double fill[] = {NAN, NAN};
    bool indicator[] = {false, false};
    double offset[] = {0.0, 0.0}, factor[] = {1.0, 1.0};
    struct pipeline_spec spec = {.nnumeric = 2,
                                 .numeric = numeric,
                                 .impute = PIPELINE_IMPUTE_NONE,
                                 .fill = fill,
                                 .indicator = indicator,
                                 .scale = PIPELINE_SCALE_NONE,
                                 .nscaled = 2,
                                 .offset = offset,
                                 .factor = factor};
    char err[512] = "";
    struct pipeline *pipeline = pipeline_new(&spec, err, sizeof err);
    if (!pipeline)
        fail_msg("pipeline_new: %s", err);
    double intercept[] = {0.5}, coef[] = {coef0, -2.25};
    struct linear_model model = {
        .kind = LINEAR_RIDGE, .nfeatures = 2, .noutputs = 1, .intercept = intercept, .coef = coef};
    struct artefact_info info = {.name = name, .version = version, .label = "y"};
    struct artefact *artefact = artefact_new(&info, pipeline, &model, err, sizeof err);
    if (!artefact)
        fail_msg("artefact_new('%s'): %s", name, err);
    pipeline_destroy(pipeline);
    return artefact;
}

unsigned char *support_corrupt_artefact(const char *name, int32_t version, size_t *len)
{
    struct artefact *artefact = support_make_artefact(name, version, FLIP_COEF);
    unsigned char *bytes = NULL;
    char err[512] = "";
    assert_int_equal(artefact_encode(artefact, &bytes, len, err, sizeof err), TB_OK);
    double coef = FLIP_COEF;
    unsigned char needle[8];
    memcpy(needle, &coef, sizeof needle);
    unsigned char *hit = memmem(bytes, *len, needle, sizeof needle);
    assert_non_null(hit);
    hit[0] ^= 0x01;
    artefact_destroy(artefact);
    return bytes;
}

struct support_collector *support_collector_new(void)
{
    struct support_collector *c = mem_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    return c;
}

void support_collector_destroy(struct support_collector *c)
{
    if (!c)
        return;
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Appends e (or notes the overflow) and wakes the waiters. */
static void collector_add(struct support_collector *c, const struct support_event *e)
{
    pthread_mutex_lock(&c->lock);
    if (c->n < SUPPORT_MAX_EVENTS)
        c->events[c->n++] = *e;
    else
        c->overflow = 1;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

size_t support_collector_count(struct support_collector *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Whether the newest event is a report of *(const int32_t *)arg. */
static bool newest_reports(const struct support_collector *c, const void *arg)
{
    int32_t version = *(const int32_t *)arg;
    return c->n > 0 && !c->events[c->n - 1].refused && c->events[c->n - 1].version == version;
}

/* Whether the collector holds at least *(const size_t *)arg events. */
static bool holds_at_least(const struct support_collector *c, const void *arg)
{
    return c->n >= *(const size_t *)arg;
}

/* Waits until done(c, arg), tested under the lock at the start and after every event, or
 * timeout_ms pass; returns whether done holds, and the number of events in *count. */
static bool collector_wait(struct support_collector *c, int timeout_ms,
                           bool (*done)(const struct support_collector *, const void *),
                           const void *arg, size_t *count)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    while (!done(c, arg) && pthread_cond_timedwait(&c->changed, &c->lock, &deadline) != ETIMEDOUT) {
    }
    bool ok = done(c, arg);
    *count = c->n;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

size_t support_collector_wait(struct support_collector *c, size_t n, int timeout_ms)
{
    size_t count = 0;
    (void)collector_wait(c, timeout_ms, holds_at_least, &n, &count);
    return count;
}

size_t support_collector_wait_reported(struct support_collector *c, int32_t version, int timeout_ms)
{
    size_t count = 0;
    if (!collector_wait(c, timeout_ms, newest_reports, &version, &count))
        fail_msg("version %d was not reported within %d ms (%zu events)", (int)version, timeout_ms,
                 count);
    return count;
}

void support_collector_expect_quiet(struct support_collector *c, size_t n, int quiet_ms)
{
    usleep((useconds_t)quiet_ms * 1000);
    size_t got = support_collector_count(c);
    if (got != n)
        fail_msg("%zu events, expected exactly %zu", got, n);
}

void support_on_artefact(struct artefact *artefact, const char *origin, void *opaque)
{
    struct support_event e = {.refused = 0, .version = artefact_version(artefact)};
    snprintf(e.name, sizeof e.name, "%s", artefact_name(artefact));
    snprintf(e.origin, sizeof e.origin, "%s", origin);
    artefact_destroy(artefact);
    collector_add(opaque, &e);
}

void support_on_refused(int32_t version, const char *origin, const char *reason, void *opaque)
{
    struct support_event e = {.refused = 1, .version = version};
    snprintf(e.origin, sizeof e.origin, "%s", origin);
    snprintf(e.reason, sizeof e.reason, "%s", reason);
    collector_add(opaque, &e);
}

struct model_watch *support_watch_new(const struct model_watch_options *options,
                                      struct support_collector *c)
{
    struct model_watch_options recorded = *options;
    recorded.on_artefact = support_on_artefact;
    recorded.on_refused = support_on_refused;
    recorded.opaque = c;
    char err[512] = "";
    struct model_watch *watch = model_watch_new(&recorded, err, sizeof err);
    if (!watch)
        fail_msg("model_watch_new: %s", err);
    return watch;
}
