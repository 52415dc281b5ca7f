/* Unit tests for service/model_watch on registry directories: new versions reported once and in
 * order, corrupt or foreign files refused, after_version, prompt shutdown, option checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/artefact.h"
#include "models/linear.h"
#include "models/pipeline.h"
#include "service/clock.h"
#include "service/error.h"
#include "service/mem.h"
#include "service/model_watch.h"
#include "service/registry.h"
#include "tests/unit/support.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NAMED_CASE(name, fn)                                                                       \
    {                                                                                              \
        name, fn, make_dir, remove_dir, NULL                                                       \
    }

#define POLL_MS    50
#define WAIT_MS    5000 /* the longest any expected event may take */
#define QUIET_MS   (6 * POLL_MS)
#define MAX_EVENTS 32
#define FLIP_COEF  1234.5678 /* a coefficient to find in the encoded bytes and damage */

/* --- fixtures --------------------------------------------------------------------------------- */

/* Each case gets its own empty directory as *state; the registry is "<it>/registry". */
static int make_dir(void **state)
{
    char *dir = support_mkdtemp("tributary_model_watch");
    if (!dir)
        return -1;
    *state = dir;
    return 0;
}

static int remove_dir(void **state)
{
    char *dir = *state;
    (void)support_rmtree(dir);
    free(dir);
    return 0;
}

static char *registry_of(void **state)
{
    char *path = mem_alloc(1024);
    snprintf(path, 1024, "%s/registry", (const char *)*state);
    return path;
}

/* A fitted model of 2 numeric inputs, no featurizer stages and a ridge model. */
static struct artefact *make_artefact(const char *name, double coef0)
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
    struct artefact_info info = {.name = name, .label = "y"};
    struct artefact *artefact = artefact_new(&info, pipeline, &model, err, sizeof err);
    if (!artefact)
        fail_msg("artefact_new('%s'): %s", name, err);
    pipeline_destroy(pipeline);
    return artefact;
}

/* Publishes a new artefact of model `name` and returns its version. */
static int32_t publish(const char *dir, const char *name)
{
    struct artefact *artefact = make_artefact(name, 1.0);
    char err[512] = "";
    int32_t version = -1;
    if (registry_publish(dir, artefact, &version, err, sizeof err) != TB_OK)
        fail_msg("registry_publish: %s", err);
    artefact_destroy(artefact);
    return version;
}

/* Puts a damaged version `version` of model `name` into the registry, atomically (so that the
 * watcher sees the whole damaged file): one byte of a coefficient flipped, which only the
 * checksum can tell. */
static void put_corrupt_version(const char *dir, const char *name, int32_t version)
{
    struct artefact *artefact = make_artefact(name, FLIP_COEF);
    artefact_set_version(artefact, version);
    unsigned char *bytes = NULL;
    size_t len = 0;
    char err[512] = "";
    assert_int_equal(artefact_encode(artefact, &bytes, &len, err, sizeof err), TB_OK);
    double coef = FLIP_COEF;
    unsigned char needle[8];
    memcpy(needle, &coef, sizeof needle);
    unsigned char *hit = memmem(bytes, len, needle, sizeof needle);
    assert_non_null(hit);
    hit[0] ^= 0x01;
    char tmp[1024], path[1024];
    snprintf(tmp, sizeof tmp, "%s/%s/.corrupt", dir, name);
    snprintf(path, sizeof path, "%s/%s/v%d.avro", dir, name, (int)version);
    support_write_file(tmp, bytes, len);
    assert_int_equal(rename(tmp, path), 0);
    free(bytes);
    artefact_destroy(artefact);
}

/* --- what the callbacks saw ------------------------------------------------------------------- */

struct event {
    int refused;
    int32_t version;
    char name[160]; /* the artefact's, when reported */
    char origin[1024];
    char reason[1024];
};

struct collector {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct event events[MAX_EVENTS];
    size_t n;
    int overflow;
};

static struct collector *collector_new(void)
{
    struct collector *c = mem_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    return c;
}

static void collector_destroy(struct collector *c)
{
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void collector_add(struct collector *c, const struct event *e)
{
    pthread_mutex_lock(&c->lock);
    if (c->n < MAX_EVENTS)
        c->events[c->n++] = *e;
    else
        c->overflow = 1;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static void on_artefact(struct artefact *artefact, const char *origin, void *opaque)
{
    struct event e = {.refused = 0, .version = artefact_version(artefact)};
    snprintf(e.name, sizeof e.name, "%s", artefact_name(artefact));
    snprintf(e.origin, sizeof e.origin, "%s", origin);
    artefact_destroy(artefact);
    collector_add(opaque, &e);
}

static void on_refused(int32_t version, const char *origin, const char *reason, void *opaque)
{
    struct event e = {.refused = 1, .version = version};
    snprintf(e.origin, sizeof e.origin, "%s", origin);
    snprintf(e.reason, sizeof e.reason, "%s", reason);
    collector_add(opaque, &e);
}

static size_t collector_count(struct collector *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Waits until at least n events arrived or WAIT_MS passed; returns how many there are. */
static size_t wait_events(struct collector *c, size_t n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&c->lock);
    while (c->n < n && pthread_cond_timedwait(&c->changed, &c->lock, &deadline) != ETIMEDOUT) {
    }
    size_t got = c->n;
    pthread_mutex_unlock(&c->lock);
    return got;
}

/* Waits for exactly n events: n arrive in time and no more in the next QUIET_MS. */
static void expect_event_count(struct collector *c, size_t n)
{
    size_t got = wait_events(c, n);
    if (got < n)
        fail_msg("%zu events after %d ms, expected %zu", got, WAIT_MS, n);
    usleep(QUIET_MS * 1000);
    got = collector_count(c);
    if (got != n)
        fail_msg("%zu events, expected exactly %zu", got, n);
    assert_false(c->overflow);
}

static void expect_reported(const struct event *e, const char *dir, const char *name,
                            int32_t version)
{
    if (e->refused)
        fail_msg("version %d was refused: %s", (int)e->version, e->reason);
    assert_int_equal(e->version, version);
    assert_string_equal(e->name, name);
    char origin[1024];
    snprintf(origin, sizeof origin, "%s/%s/v%d.avro", dir, name, (int)version);
    assert_string_equal(e->origin, origin);
}

static void expect_refused(const struct event *e, const char *dir, const char *name,
                           int32_t version, const char *reason_part)
{
    if (!e->refused)
        fail_msg("version %d was reported, expected a refusal", (int)e->version);
    assert_int_equal(e->version, version);
    char origin[1024];
    snprintf(origin, sizeof origin, "%s/%s/v%d.avro", dir, name, (int)version);
    assert_string_equal(e->origin, origin);
    if (!strstr(e->reason, reason_part))
        fail_msg("reason '%s' does not say '%s'", e->reason, reason_part);
}

static struct model_watch *watch_or_fail(const char *dir, const char *name, int32_t after,
                                         int poll_ms, struct collector *c)
{
    const struct model_watch_options options = {.registry = dir,
                                                .name = name,
                                                .poll_ms = poll_ms,
                                                .after_version = after,
                                                .on_artefact = on_artefact,
                                                .on_refused = on_refused,
                                                .opaque = c};
    char err[512] = "";
    struct model_watch *watch = model_watch_new(&options, err, sizeof err);
    if (!watch)
        fail_msg("model_watch_new: %s", err);
    return watch;
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_new_versions_in_order_once(void **state)
{
    char *dir = registry_of(state);
    struct collector *c = collector_new();
    /* The registry does not exist yet when the watch starts. */
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    usleep(2 * POLL_MS * 1000);
    assert_int_equal(collector_count(c), 0);
    assert_int_equal(publish(dir, "rul"), 1);
    assert_int_equal(wait_events(c, 1), 1);
    /* Two at once, and another model beside it that is not watched. */
    assert_int_equal(publish(dir, "rul"), 2);
    assert_int_equal(publish(dir, "rul"), 3);
    assert_int_equal(publish(dir, "other"), 1);
    expect_event_count(c, 3);
    for (int32_t v = 1; v <= 3; v++)
        expect_reported(&c->events[v - 1], dir, "rul", v);
    model_watch_destroy(watch);
    collector_destroy(c);
    free(dir);
}

static void test_existing_versions_reported_in_order(void **state)
{
    char *dir = registry_of(state);
    for (int32_t v = 1; v <= 4; v++)
        assert_int_equal(publish(dir, "rul"), v);
    struct collector *c = collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    expect_event_count(c, 4);
    for (int32_t v = 1; v <= 4; v++)
        expect_reported(&c->events[v - 1], dir, "rul", v);
    model_watch_destroy(watch);
    collector_destroy(c);
    free(dir);
}

static void test_corrupt_version_refused(void **state)
{
    char *dir = registry_of(state);
    struct collector *c = collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    assert_int_equal(publish(dir, "rul"), 1);
    assert_int_equal(wait_events(c, 1), 1);
    put_corrupt_version(dir, "rul", 2);
    assert_int_equal(wait_events(c, 2), 2);
    assert_int_equal(publish(dir, "rul"), 3);
    /* The damaged version is refused once, not again at every poll. */
    expect_event_count(c, 3);
    expect_reported(&c->events[0], dir, "rul", 1);
    expect_refused(&c->events[1], dir, "rul", 2, "checksum mismatch");
    char path[1024];
    snprintf(path, sizeof path, "%s/rul/v2.avro", dir);
    assert_non_null(strstr(c->events[1].reason, path));
    expect_reported(&c->events[2], dir, "rul", 3);
    model_watch_destroy(watch);
    collector_destroy(c);
    free(dir);
}

static void test_after_version_honoured(void **state)
{
    char *dir = registry_of(state);
    for (int32_t v = 1; v <= 3; v++)
        assert_int_equal(publish(dir, "rul"), v);
    struct collector *c = collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 2, POLL_MS, c);
    assert_int_equal(wait_events(c, 1), 1);
    assert_int_equal(publish(dir, "rul"), 4);
    expect_event_count(c, 2);
    expect_reported(&c->events[0], dir, "rul", 3);
    expect_reported(&c->events[1], dir, "rul", 4);
    model_watch_destroy(watch);

    /* Serving the newest already: nothing to report. */
    struct collector *quiet = collector_new();
    watch = watch_or_fail(dir, "rul", 4, POLL_MS, quiet);
    usleep(QUIET_MS * 1000);
    model_watch_destroy(watch);
    assert_int_equal(quiet->n, 0);
    collector_destroy(quiet);
    collector_destroy(c);
    free(dir);
}

static void test_foreign_model_refused(void **state)
{
    char *dir = registry_of(state);
    /* Model "other"'s first version, put in model "rul"'s place. */
    assert_int_equal(publish(dir, "other"), 1);
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/other/v1.avro", dir);
    snprintf(to, sizeof to, "%s/rul", dir);
    assert_int_equal(mkdir(to, 0755), 0);
    snprintf(to, sizeof to, "%s/rul/v1.avro", dir);
    assert_int_equal(link(from, to), 0);

    struct collector *c = collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    assert_int_equal(wait_events(c, 1), 1);
    assert_int_equal(publish(dir, "rul"), 2);
    expect_event_count(c, 2);
    expect_refused(&c->events[0], dir, "rul", 1, "it holds model 'other', not 'rul'");
    expect_reported(&c->events[1], dir, "rul", 2);
    model_watch_destroy(watch);
    collector_destroy(c);
    free(dir);
}

static void test_version_differs_from_file_name(void **state)
{
    char *dir = registry_of(state);
    assert_int_equal(publish(dir, "rul"), 1);
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/rul/v1.avro", dir);
    snprintf(to, sizeof to, "%s/rul/v5.avro", dir);
    assert_int_equal(link(from, to), 0);
    struct collector *c = collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    assert_int_equal(wait_events(c, 2), 2);
    assert_int_equal(publish(dir, "rul"), 6);
    expect_event_count(c, 3);
    expect_reported(&c->events[0], dir, "rul", 1);
    expect_refused(&c->events[1], dir, "rul", 5, "it holds version 1, not 5");
    expect_reported(&c->events[2], dir, "rul", 6);
    model_watch_destroy(watch);
    collector_destroy(c);
    free(dir);
}

static void test_destroy_is_prompt(void **state)
{
    char *dir = registry_of(state);
    struct collector *c = collector_new();
    /* A long poll interval: destroy must not wait for it. */
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, 5000, c);
    usleep(200 * 1000);
    int64_t start = clock_monotonic_ms();
    model_watch_destroy(watch);
    int64_t took = clock_monotonic_ms() - start;
    if (took > 1000)
        fail_msg("destroy took %lld ms", (long long)took);

    /* Watching a topic on a broker that is not there: still prompt. */
    const struct kafka_prop props[] = {{"bootstrap.servers", "127.0.0.1:1"}, {"log_level", "0"}};
    const struct model_watch_options options = {.registry = dir,
                                                .name = "rul",
                                                .topic = "models",
                                                .props = props,
                                                .nprops = 2,
                                                .poll_ms = 5000,
                                                .on_artefact = on_artefact,
                                                .opaque = c};
    char err[512] = "";
    watch = model_watch_new(&options, err, sizeof err);
    if (!watch)
        fail_msg("model_watch_new: %s", err);
    usleep(300 * 1000);
    start = clock_monotonic_ms();
    model_watch_destroy(watch);
    took = clock_monotonic_ms() - start;
    if (took > 1500)
        fail_msg("destroy with a topic took %lld ms", (long long)took);
    assert_int_equal(c->n, 0);
    model_watch_destroy(NULL);
    collector_destroy(c);
    free(dir);
}

static void test_options_checked(void **state)
{
    (void)state;
    static const struct kafka_prop bad_props[] = {{"no.such.property", "1"}};
    static const struct {
        const char *what;
        struct model_watch_options options;
        const char *message;
    } cases[] = {
        {"no source",
         {.registry = "", .name = "rul", .topic = NULL, .poll_ms = 10, .on_artefact = on_artefact},
         "neither a registry nor a topic"},
        {"bad name",
         {.registry = "/tmp", .name = "../rul", .poll_ms = 10, .on_artefact = on_artefact},
         "model name '../rul' starts with '.'"},
        {"no name",
         {.registry = "/tmp", .poll_ms = 10, .on_artefact = on_artefact},
         "model name is empty"},
        {"zero interval",
         {.registry = "/tmp", .name = "rul", .poll_ms = 0, .on_artefact = on_artefact},
         "poll interval 0 ms is not positive"},
        {"no callback",
         {.registry = "/tmp", .name = "rul", .poll_ms = 10},
         "no on_artefact callback"},
        {"bad Kafka property",
         {.name = "rul",
          .topic = "models",
          .props = bad_props,
          .nprops = 1,
          .poll_ms = 10,
          .on_artefact = on_artefact},
         "kafka.no.such.property"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        struct model_watch *watch = model_watch_new(&cases[i].options, err, sizeof err);
        if (watch) {
            model_watch_destroy(watch);
            fail_msg("%s: accepted", cases[i].what);
        }
        if (!strstr(err, cases[i].message))
            fail_msg("%s: message '%s' does not say '%s'", cases[i].what, err, cases[i].message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("directory: versions published while watching are reported once, in order",
                   test_new_versions_in_order_once),
        NAMED_CASE("directory: versions already there are reported in order",
                   test_existing_versions_reported_in_order),
        NAMED_CASE("directory: a corrupt version is refused once, the next one reported",
                   test_corrupt_version_refused),
        NAMED_CASE("directory: after_version is honoured", test_after_version_honoured),
        NAMED_CASE("directory: another model's artefact is refused", test_foreign_model_refused),
        NAMED_CASE("directory: a file holding another version than its name is refused",
                   test_version_differs_from_file_name),
        NAMED_CASE("destroy: prompt with a long interval and an unreachable broker",
                   test_destroy_is_prompt),
        NAMED_CASE("new: bad options are refused with a message", test_options_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
