/* Unit tests for service/model_watch on registry directories: new versions reported once and in
 * order, corrupt or foreign files refused, after_version, prompt shutdown, option checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connectors/kafka/kafka_conf.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/registry/model_watch.h"
#include "service/registry/registry.h"
#include "tests/support/registry_support.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POLL_MS  50
#define WAIT_MS  5000 /* the longest any expected event may take */
#define QUIET_MS (6 * POLL_MS)

/* Each case gets its own empty directory as *state; the registry is "<it>/registry". */
static char *registry_of(void **state)
{
    char *path = mem_alloc(1024);
    snprintf(path, 1024, "%s/registry", (const char *)*state);
    return path;
}

/* Publishes a new artefact of model `name` and returns its version. */
static int32_t publish(const char *dir, const char *name)
{
    struct artefact *artefact = support_make_artefact(name, 0, 1.0);
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
    size_t len = 0;
    unsigned char *bytes = support_corrupt_artefact(name, version, &len);
    char tmp[1024], path[1024];
    snprintf(tmp, sizeof tmp, "%s/%s/.corrupt", dir, name);
    snprintf(path, sizeof path, "%s/%s/v%d.avro", dir, name, (int)version);
    support_write_file(tmp, bytes, len);
    assert_int_equal(rename(tmp, path), 0);
    free(bytes);
}

/* --- what the callbacks saw ------------------------------------------------------------------- */

/* Waits until at least n events arrived or WAIT_MS passed; returns how many there are. */
static size_t wait_events(struct support_collector *c, size_t n)
{
    return support_collector_wait(c, n, WAIT_MS);
}

/* Waits for exactly n events: n arrive in time and no more in the next QUIET_MS. */
static void expect_event_count(struct support_collector *c, size_t n)
{
    size_t got = wait_events(c, n);
    if (got < n)
        fail_msg("%zu events after %d ms, expected %zu", got, WAIT_MS, n);
    support_collector_expect_quiet(c, n, QUIET_MS);
    assert_false(c->overflow);
}

static void expect_reported(const struct support_event *e, const char *dir, const char *name,
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

static void expect_refused(const struct support_event *e, const char *dir, const char *name,
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
                                         int poll_ms, struct support_collector *c)
{
    const struct model_watch_options options = {
        .registry = dir, .name = name, .poll_ms = poll_ms, .after_version = after};
    return support_watch_new(&options, c);
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_new_versions_in_order_once(void **state)
{
    char *dir = registry_of(state);
    struct support_collector *c = support_collector_new();
    /* The registry does not exist yet when the watch starts. */
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    usleep(2 * POLL_MS * 1000);
    assert_int_equal(support_collector_count(c), 0);
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
    support_collector_destroy(c);
    free(dir);
}

static void test_existing_versions_reported_in_order(void **state)
{
    char *dir = registry_of(state);
    for (int32_t v = 1; v <= 4; v++)
        assert_int_equal(publish(dir, "rul"), v);
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    expect_event_count(c, 4);
    for (int32_t v = 1; v <= 4; v++)
        expect_reported(&c->events[v - 1], dir, "rul", v);
    model_watch_destroy(watch);
    support_collector_destroy(c);
    free(dir);
}

static void test_corrupt_version_refused(void **state)
{
    char *dir = registry_of(state);
    struct support_collector *c = support_collector_new();
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
    support_collector_destroy(c);
    free(dir);
}

static void test_after_version_honoured(void **state)
{
    char *dir = registry_of(state);
    for (int32_t v = 1; v <= 3; v++)
        assert_int_equal(publish(dir, "rul"), v);
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 2, POLL_MS, c);
    assert_int_equal(wait_events(c, 1), 1);
    assert_int_equal(publish(dir, "rul"), 4);
    expect_event_count(c, 2);
    expect_reported(&c->events[0], dir, "rul", 3);
    expect_reported(&c->events[1], dir, "rul", 4);
    model_watch_destroy(watch);

    /* Serving the newest already: nothing to report. */
    struct support_collector *quiet = support_collector_new();
    watch = watch_or_fail(dir, "rul", 4, POLL_MS, quiet);
    usleep(QUIET_MS * 1000);
    model_watch_destroy(watch);
    assert_int_equal(quiet->n, 0);
    support_collector_destroy(quiet);
    support_collector_destroy(c);
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

    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    assert_int_equal(wait_events(c, 1), 1);
    assert_int_equal(publish(dir, "rul"), 2);
    expect_event_count(c, 2);
    expect_refused(&c->events[0], dir, "rul", 1, "it holds model 'other', not 'rul'");
    expect_reported(&c->events[1], dir, "rul", 2);
    model_watch_destroy(watch);
    support_collector_destroy(c);
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
    struct support_collector *c = support_collector_new();
    struct model_watch *watch = watch_or_fail(dir, "rul", 0, POLL_MS, c);
    assert_int_equal(wait_events(c, 2), 2);
    assert_int_equal(publish(dir, "rul"), 6);
    expect_event_count(c, 3);
    expect_reported(&c->events[0], dir, "rul", 1);
    expect_refused(&c->events[1], dir, "rul", 5, "it holds version 1, not 5");
    expect_reported(&c->events[2], dir, "rul", 6);
    model_watch_destroy(watch);
    support_collector_destroy(c);
    free(dir);
}

static void test_destroy_is_prompt(void **state)
{
    char *dir = registry_of(state);
    struct support_collector *c = support_collector_new();
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
                                                .on_artefact = support_on_artefact,
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
    support_collector_destroy(c);
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
         {.registry = "",
          .name = "rul",
          .topic = NULL,
          .poll_ms = 10,
          .on_artefact = support_on_artefact},
         "neither a registry nor a topic"},
        {"bad name",
         {.registry = "/tmp", .name = "../rul", .poll_ms = 10, .on_artefact = support_on_artefact},
         "model name '../rul' starts with '.'"},
        {"no name",
         {.registry = "/tmp", .poll_ms = 10, .on_artefact = support_on_artefact},
         "model name is empty"},
        {"zero interval",
         {.registry = "/tmp", .name = "rul", .poll_ms = 0, .on_artefact = support_on_artefact},
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
          .on_artefact = support_on_artefact},
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
        TEMP_DIR_CASE("directory: versions published while watching are reported once, in order",
                      test_new_versions_in_order_once),
        TEMP_DIR_CASE("directory: versions already there are reported in order",
                      test_existing_versions_reported_in_order),
        TEMP_DIR_CASE("directory: a corrupt version is refused once, the next one reported",
                      test_corrupt_version_refused),
        TEMP_DIR_CASE("directory: after_version is honoured", test_after_version_honoured),
        TEMP_DIR_CASE("directory: another model's artefact is refused", test_foreign_model_refused),
        TEMP_DIR_CASE("directory: a file holding another version than its name is refused",
                      test_version_differs_from_file_name),
        TEMP_DIR_CASE("destroy: prompt with a long interval and an unreachable broker",
                      test_destroy_is_prompt),
        TEMP_DIR_CASE("new: bad options are refused with a message", test_options_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
