/* What the fuzz targets share: an in-memory file and the replay main. */
#include "tests/fuzz/harness.h"

#include "service/base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The Makefile gives the absolute path, so that a replay runs from any directory. */
#ifndef FUZZ_CORPUS_ROOT
#define FUZZ_CORPUS_ROOT "tests/fuzz/corpus"
#endif

const char *harness_file(const void *data, size_t size)
{
    static int fd = -1;
    static char path[32];
    if (fd < 0) {
        fd = memfd_create("harness", MFD_CLOEXEC);
        if (fd < 0) {
            perror("harness_file: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    const unsigned char *bytes = data;
    if (ftruncate(fd, 0) != 0) {
        perror("harness_file: ftruncate");
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fd, bytes + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("harness_file: pwrite");
            abort();
        }
        done += (size_t)n;
    }
    return path;
}

/* Feeds the file at path to target from a heap block of exactly its size. Returns 0, or 1 when
 * it cannot be read. */
static int harness_replay_file(const char *path, harness_target_fn *target)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    unsigned char *bytes = NULL;
    size_t len = 0, cap = 0, got;
    do {
        mem_grow((void **)&bytes, &cap, len + 4096, 1);
        got = fread(bytes + len, 1, cap - len, file);
        len += got;
    } while (got > 0);
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        fprintf(stderr, "%s: read error\n", path);
        free(bytes);
        return 1;
    }
    /* A copy of exactly len bytes (one for an empty file, which is never read). */
    unsigned char *exact = mem_alloc(len ? len : 1);
    memcpy(exact, bytes, len);
    free(bytes);
    target(exact, len);
    free(exact);
    return 0;
}

static int harness_replay_skip_dots(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

/* Replays path, a file or a directory of files (not descended into further); adds the files
 * replayed to *count. Returns the number of paths that could not be read. */
static int harness_replay_path(const char *path, harness_target_fn *target, size_t *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        int failed = harness_replay_file(path, target);
        *count += !failed;
        return failed;
    }
    struct dirent **entries = NULL;
    int n = scandir(path, &entries, harness_replay_skip_dots, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < n; i++) {
        size_t size = strlen(path) + 1 + strlen(entries[i]->d_name) + 1;
        char *file = mem_alloc(size);
        snprintf(file, size, "%s/%s", path, entries[i]->d_name);
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            int failed = harness_replay_file(file, target);
            failures += failed;
            *count += !failed;
        }
        free(file);
        free(entries[i]);
    }
    free(entries);
    return failures;
}

int harness_replay_main(int argc, char **argv, const char *name, harness_target_fn *target)
{
    size_t count = 0;
    int failures = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            failures += harness_replay_path(argv[i], target, &count);
        printf("%s: replayed %zu file(s) from the command line\n", name, count);
    } else {
        size_t size = strlen(FUZZ_CORPUS_ROOT) + 1 + strlen(name) + 1;
        char *dir = mem_alloc(size);
        snprintf(dir, size, "%s/%s", FUZZ_CORPUS_ROOT, name);
        failures += harness_replay_path(dir, target, &count);
        printf("%s: replayed %zu file(s) from %s\n", name, count, dir);
        free(dir);
    }
    if (count == 0)
        fprintf(stderr, "%s: no input to replay\n", name);
    return failures || count == 0 ? 1 : 0;
}
