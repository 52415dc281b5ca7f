/* Unit tests for service/registry: version numbering, concurrent publishers, what is ignored,
 * refused names and missing registries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "service/registry/registry.h"
#include "tests/support/registry_support.h"
#include "tests/support/support.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUBLISHERS           4
#define PUBLISHES_PER_THREAD 5
#define CONCURRENT_VERSIONS  (PUBLISHERS * PUBLISHES_PER_THREAD)

/* Returns "<case dir>/<relative>"; the caller frees it. */
static char *path_in(void **state, const char *relative)
{
    char *path = mem_alloc(1024);
    snprintf(path, 1024, "%s/%s", (const char *)*state, relative);
    return path;
}

static int32_t publish_or_fail(const char *dir, struct artefact *artefact)
{
    char err[512] = "";
    int32_t version = -1;
    int rc = registry_publish(dir, artefact, &version, err, sizeof err);
    if (rc != TB_OK)
        fail_msg("registry_publish: %s (%s)", err, tb_strerror(rc));
    return version;
}

/* Reads path and checks that it holds version `version` of model `name`. */
static void expect_file_holds(const char *path, const char *name, int32_t version)
{
    char err[512] = "";
    struct artefact *artefact = artefact_read(path, err, sizeof err);
    if (!artefact)
        fail_msg("artefact_read: %s", err);
    assert_string_equal(artefact_name(artefact), name);
    assert_int_equal(artefact_version(artefact), version);
    artefact_destroy(artefact);
}

/* Counts the entries of dir other than "." and "..". */
static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void expect_versions(const char *dir, const char *name, const int32_t *want, size_t nwant)
{
    char err[512] = "";
    int32_t *versions = NULL;
    size_t count = 99;
    assert_int_equal(registry_versions(dir, name, &versions, &count, err, sizeof err), TB_OK);
    assert_int_equal(count, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(versions[i], want[i]);
    free(versions);
}

/* --- publishing ------------------------------------------------------------------------------- */

static void test_publish_numbers_from_one(void **state)
{
    /* The registry directory does not exist yet: publish makes it, and its parent. */
    char *dir = path_in(state, "parent/registry");
    struct artefact *artefact = support_make_artefact("rul", 0, 1.5);
    for (int32_t want = 1; want <= 3; want++) {
        assert_int_equal(publish_or_fail(dir, artefact), want);
        assert_int_equal(artefact_version(artefact), want);
    }
    const int32_t all[] = {1, 2, 3};
    expect_versions(dir, "rul", all, 3);
    for (int32_t v = 1; v <= 3; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/rul/v%d.avro", dir, (int)v);
        expect_file_holds(path, "rul", v);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
    }
    struct stat st;
    char model_dir[1024];
    snprintf(model_dir, sizeof model_dir, "%s/rul", dir);
    assert_int_equal(stat(model_dir, &st), 0);
    mode_t mask = umask(0); /* directories are made 0755 less the umask */
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0755 & ~mask);
    /* Nothing but the three versions: no temporary is left behind. */
    assert_int_equal(count_entries(model_dir), 3);

    char err[512] = "", path[1024] = "";
    int32_t latest = 0;
    assert_int_equal(registry_latest(dir, "rul", &latest, path, sizeof path, err, sizeof err),
                     TB_OK);
    assert_int_equal(latest, 3);
    char want[1024];
    snprintf(want, sizeof want, "%s/rul/v3.avro", dir);
    assert_string_equal(path, want);
    artefact_destroy(artefact);
    free(dir);
}

static void test_models_are_numbered_separately(void **state)
{
    char *dir = path_in(state, "registry");
    struct artefact *a = support_make_artefact("alpha", 0, 1.0);
    struct artefact *b = support_make_artefact("beta", 0, 2.0);
    assert_int_equal(publish_or_fail(dir, a), 1);
    assert_int_equal(publish_or_fail(dir, a), 2);
    assert_int_equal(publish_or_fail(dir, b), 1);
    const int32_t alpha[] = {1, 2}, beta[] = {1};
    expect_versions(dir, "alpha", alpha, 2);
    expect_versions(dir, "beta", beta, 1);
    artefact_destroy(b);
    artefact_destroy(a);
    free(dir);
}

/* --- concurrent publishers -------------------------------------------------------------------- */

struct publisher {
    const char *dir;
    int index;
    int32_t versions[PUBLISHES_PER_THREAD];
    char err[512];
    int rc;
};

static atomic_int readers_stop;

static void *publisher_run(void *arg)
{
    struct publisher *p = arg;
    /* An artefact per thread: setting the version is not thread-safe. */
    struct artefact *artefact = support_make_artefact("shared", 0, 100.0 + p->index);
    for (int i = 0; i < PUBLISHES_PER_THREAD && p->rc == TB_OK; i++)
        p->rc = registry_publish(p->dir, artefact, &p->versions[i], p->err, sizeof p->err);
    artefact_destroy(artefact);
    return NULL;
}

struct reader {
    const char *dir;
    int reads;
    int failures;
    char first_failure[2048];
};

/* Reads every listed version again and again while the publishers run: none may be partial. */
static void *reader_run(void *arg)
{
    struct reader *r = arg;
    while (!atomic_load(&readers_stop)) {
        char err[512] = "";
        int32_t *versions = NULL;
        size_t count = 0;
        if (registry_versions(r->dir, "shared", &versions, &count, err, sizeof err) != TB_OK) {
            if (r->failures++ == 0)
                snprintf(r->first_failure, sizeof r->first_failure, "%s", err);
            continue;
        }
        for (size_t i = 0; i < count; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/shared/v%d.avro", r->dir, (int)versions[i]);
            struct artefact *artefact = artefact_read(path, err, sizeof err);
            r->reads++;
            if (!artefact || artefact_version(artefact) != versions[i]) {
                if (r->failures++ == 0)
                    snprintf(r->first_failure, sizeof r->first_failure, "%s: %s", path,
                             artefact ? "wrong version" : err);
            }
            artefact_destroy(artefact);
        }
        free(versions);
    }
    return NULL;
}

static void test_concurrent_publishers(void **state)
{
    char *dir = path_in(state, "registry");
    struct publisher publishers[PUBLISHERS];
    pthread_t threads[PUBLISHERS], reader_thread;
    struct reader reader = {.dir = dir};
    atomic_store(&readers_stop, 0);
    assert_int_equal(pthread_create(&reader_thread, NULL, reader_run, &reader), 0);
    for (int t = 0; t < PUBLISHERS; t++) {
        publishers[t] = (struct publisher){.dir = dir, .index = t, .rc = TB_OK};
        assert_int_equal(pthread_create(&threads[t], NULL, publisher_run, &publishers[t]), 0);
    }
    for (int t = 0; t < PUBLISHERS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    atomic_store(&readers_stop, 1);
    assert_int_equal(pthread_join(reader_thread, NULL), 0);

    /* Every publish got a version, all distinct, together exactly 1..20. */
    int seen[CONCURRENT_VERSIONS + 1] = {0};
    for (int t = 0; t < PUBLISHERS; t++) {
        if (publishers[t].rc != TB_OK)
            fail_msg("publisher %d: %s", t, publishers[t].err);
        int32_t previous = 0;
        for (int i = 0; i < PUBLISHES_PER_THREAD; i++) {
            int32_t v = publishers[t].versions[i];
            assert_in_range(v, 1, CONCURRENT_VERSIONS);
            assert_true(v > previous); /* one publisher's versions grow */
            previous = v;
            seen[v]++;
        }
    }
    for (int v = 1; v <= CONCURRENT_VERSIONS; v++) {
        if (seen[v] != 1)
            fail_msg("version %d was given %d times", v, seen[v]);
    }

    /* Each file holds its own version and its publisher's model (the coefficient that tells
     * the publishers apart, as the little-endian IEEE 754 double that Avro writes). */
    for (int t = 0; t < PUBLISHERS; t++) {
        double coef0 = 100.0 + t;
        unsigned char needle[8];
        memcpy(needle, &coef0, sizeof needle);
        for (int i = 0; i < PUBLISHES_PER_THREAD; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/shared/v%d.avro", dir, (int)publishers[t].versions[i]);
            expect_file_holds(path, "shared", publishers[t].versions[i]);
            size_t len = 0;
            unsigned char *bytes = support_read_file(path, &len);
            if (!memmem(bytes, len, needle, sizeof needle))
                fail_msg("%s does not hold publisher %d's model", path, t);
            free(bytes);
        }
    }
    char model_dir[1024];
    snprintf(model_dir, sizeof model_dir, "%s/shared", dir);
    assert_int_equal(count_entries(model_dir), CONCURRENT_VERSIONS);
    if (reader.failures > 0)
        fail_msg("a concurrent reader failed %d of %d reads, first: %s", reader.failures,
                 reader.reads, reader.first_failure);
    free(dir);
}

/* --- what is ignored -------------------------------------------------------------------------- */

static void test_junk_and_temporaries_ignored(void **state)
{
    char *dir = path_in(state, "registry");
    char *model_dir = path_in(state, "registry/m");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(model_dir, 0755), 0);
    static const char *const junk[] = {
        "v0.avro",           "v01.avro",     "v007.avro", "v1.avro.tmp", ".publish-a1B2c3",
        ".v4.avro",          "v2.avro~",     "v.avro",    "x3.avro",     "v3.avr",
        "V4.avro",           "v-1.avro",     "v+5.avro",  "v 6.avro",    "v2147483648.avro",
        "v99999999999.avro", "v5.avro.avro", "v5avro",    "notes.txt",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", model_dir, junk[i]);
        support_write_file(path, "junk", 4);
    }
    /* A directory with a version's name is not a version either. */
    char subdir[1024];
    snprintf(subdir, sizeof subdir, "%s/v8.avro", model_dir);
    assert_int_equal(mkdir(subdir, 0755), 0);

    expect_versions(dir, "m", NULL, 0);
    char err[512] = "";
    int32_t latest = -1;
    assert_int_equal(registry_latest(dir, "m", &latest, NULL, 0, err, sizeof err), TB_NOTFOUND);
    assert_int_equal(latest, -1);

    struct artefact *artefact = support_make_artefact("m", 0, 3.0);
    assert_int_equal(publish_or_fail(dir, artefact), 1);
    assert_int_equal(publish_or_fail(dir, artefact), 2);
    /* The largest version a file name can carry still counts; a later one does not fit. */
    char big[1024];
    snprintf(big, sizeof big, "%s/v2147483647.avro", model_dir);
    support_write_file(big, "junk", 4);
    const int32_t want[] = {1, 2, 2147483647};
    expect_versions(dir, "m", want, 3);
    size_t entries = count_entries(model_dir);
    int32_t version = 0;
    assert_int_equal(registry_publish(dir, artefact, &version, err, sizeof err), TB_USAGE);
    assert_non_null(strstr(err, "no version left"));
    assert_int_equal(artefact_version(artefact), 2);     /* what it was before the failure */
    assert_int_equal(count_entries(model_dir), entries); /* and no temporary left */
    assert_int_equal(unlink(big), 0);

    /* A gap is not filled: the next version follows the highest. */
    char ten[1024], two[1024];
    snprintf(ten, sizeof ten, "%s/v10.avro", model_dir);
    snprintf(two, sizeof two, "%s/v2.avro", model_dir);
    assert_int_equal(link(two, ten), 0);
    assert_int_equal(publish_or_fail(dir, artefact), 11);
    const int32_t after[] = {1, 2, 10, 11};
    expect_versions(dir, "m", after, 4);
    expect_file_holds(ten, "m", 2); /* the registry goes by file name, not contents */
    artefact_destroy(artefact);
    free(model_dir);
    free(dir);
}

/* --- refusals --------------------------------------------------------------------------------- */

static void test_names_checked(void **state)
{
    (void)state;
    char long_ok[REGISTRY_MAX_NAME + 1], too_long[REGISTRY_MAX_NAME + 2];
    memset(long_ok, 'a', REGISTRY_MAX_NAME);
    long_ok[REGISTRY_MAX_NAME] = '\0';
    memset(too_long, 'b', REGISTRY_MAX_NAME + 1);
    too_long[REGISTRY_MAX_NAME + 1] = '\0';
    static const struct {
        const char *name;
        const char *message; /* NULL: accepted */
    } cases[] = {
        {"rul", NULL},
        {"a.b_c-D9", NULL},
        {"x", NULL},
        {"9lives", NULL},
        {"model.", NULL},
        {"", "model name is empty"},
        {".hidden", "starts with '.'"},
        {"..", "starts with '.'"},
        {"a/b", "has the byte 0x2f at 1"},
        {"../etc", "starts with '.'"},
        {"a b", "has the byte 0x20 at 1"},
        {"caf\xc3\xa9", "has the byte 0xc3 at 3"},
        {"tab\t", "has the byte 0x09 at 3"},
        {"star*", "has the byte 0x2a at 4"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = registry_check_name(cases[i].name, err, sizeof err);
        if (!cases[i].message) {
            if (rc != TB_OK)
                fail_msg("'%s' was refused: %s", cases[i].name, err);
        } else if (rc != TB_USAGE || !strstr(err, cases[i].message)) {
            fail_msg("'%s': status %d, message '%s', wanted '%s'", cases[i].name, rc, err,
                     cases[i].message);
        }
    }
    assert_int_equal(registry_check_name(long_ok, err, sizeof err), TB_OK);
    assert_int_equal(registry_check_name(too_long, err, sizeof err), TB_USAGE);
    assert_non_null(strstr(err, "is 129 bytes long (at most 128)"));
    assert_int_equal(registry_check_name(NULL, err, sizeof err), TB_USAGE);
    assert_string_equal(err, "model name is empty");
}

static void test_bad_names_refused(void **state)
{
    char *dir = path_in(state, "registry");
    static const char *const names[] = {".hidden", "a/b", "../escape", "a b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct artefact *artefact = support_make_artefact(names[i], 0, 1.0);
        artefact_set_version(artefact, 7);
        char err[512] = "";
        int32_t version = -1;
        assert_int_equal(registry_publish(dir, artefact, &version, err, sizeof err), TB_USAGE);
        if (!strstr(err, names[i]))
            fail_msg("the message for '%s' does not name it: %s", names[i], err);
        assert_int_equal(version, -1);
        assert_int_equal(artefact_version(artefact), 7);
        artefact_destroy(artefact);

        int32_t dummy[1];
        int32_t *versions = dummy;
        size_t count = 5;
        err[0] = '\0';
        assert_int_equal(registry_versions(dir, names[i], &versions, &count, err, sizeof err),
                         TB_USAGE);
        assert_null(versions);
        assert_int_equal(count, 0);
        assert_true(err[0] != '\0');
        err[0] = '\0';
        assert_int_equal(registry_latest(dir, names[i], NULL, NULL, 0, err, sizeof err), TB_USAGE);
        assert_true(err[0] != '\0');
    }
    /* Nothing was created, not even the registry directory. */
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    free(dir);
}

static void test_latest_of_missing_or_empty(void **state)
{
    char *missing = path_in(state, "nowhere");
    char err[512] = "", path[64] = "untouched";
    int32_t version = -1;
    assert_int_equal(registry_latest(missing, "rul", &version, path, sizeof path, err, sizeof err),
                     TB_NOTFOUND);
    char want[1024];
    snprintf(want, sizeof want, "registry %s has no version of model 'rul'", missing);
    assert_string_equal(err, want);
    assert_int_equal(version, -1);
    assert_string_equal(path, "untouched");
    expect_versions(missing, "rul", NULL, 0);

    /* An existing registry and model directory with nothing in it. */
    char *empty = path_in(state, "empty/rul");
    char *registry = path_in(state, "empty");
    assert_int_equal(mkdir(registry, 0755), 0);
    assert_int_equal(mkdir(empty, 0755), 0);
    err[0] = '\0';
    assert_int_equal(registry_latest(registry, "rul", &version, NULL, 0, err, sizeof err),
                     TB_NOTFOUND);
    assert_non_null(strstr(err, "has no version of model 'rul'"));
    free(registry);
    free(empty);
    free(missing);
}

static void test_latest_path_too_small(void **state)
{
    char *dir = path_in(state, "registry");
    struct artefact *artefact = support_make_artefact("rul", 0, 1.0);
    assert_int_equal(publish_or_fail(dir, artefact), 1);
    char err[512] = "", path[8];
    assert_int_equal(registry_latest(dir, "rul", NULL, path, sizeof path, err, sizeof err),
                     TB_USAGE);
    assert_non_null(strstr(err, "is too long"));
    artefact_destroy(artefact);
    free(dir);
}

static void test_publish_where_a_file_is_in_the_way(void **state)
{
    /* The registry path is a regular file: nothing can be created under it. */
    char *dir = path_in(state, "registry");
    support_write_file(dir, "not a directory", 15);
    struct artefact *artefact = support_make_artefact("rul", 0, 1.0);
    artefact_set_version(artefact, 4);
    char err[512] = "";
    int32_t version = -1;
    assert_int_equal(registry_publish(dir, artefact, &version, err, sizeof err), TB_IO);
    assert_non_null(strstr(err, "cannot create directory"));
    assert_non_null(strstr(err, dir));
    assert_int_equal(version, -1);
    assert_int_equal(artefact_version(artefact), 4);
    artefact_destroy(artefact);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_DIR_CASE("publish: versions 1, 2, 3 into a new registry, files read back",
                      test_publish_numbers_from_one),
        TEMP_DIR_CASE("publish: each model has its own numbering",
                      test_models_are_numbered_separately),
        TEMP_DIR_CASE(
            "publish: 4 threads x 5 get 1..20 once each, readers never see a partial file",
            test_concurrent_publishers),
        TEMP_DIR_CASE("versions: junk, temporaries and directories are ignored, gaps kept",
                      test_junk_and_temporaries_ignored),
        TEMP_DIR_CASE("names: allowed characters, leading dot, length", test_names_checked),
        TEMP_DIR_CASE("names: publish, versions and latest refuse a bad name, create nothing",
                      test_bad_names_refused),
        TEMP_DIR_CASE("latest: a missing or empty registry is not found, with a message",
                      test_latest_of_missing_or_empty),
        TEMP_DIR_CASE("latest: a path buffer too small is refused", test_latest_path_too_small),
        TEMP_DIR_CASE("publish: a file in the registry's place fails and keeps the version",
                      test_publish_where_a_file_is_in_the_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
