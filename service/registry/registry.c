/* Model registry: versioned artefact files published with link(), so versions never collide. */
#include "service/registry/registry.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int registry_check_name(const char *name, char *err, size_t errsz)
{
    if (!name || !*name)
        return tb_fail(err, errsz, TB_USAGE, "model name is empty");
    size_t len = strlen(name);
    if (len > REGISTRY_MAX_NAME)
        return tb_fail(err, errsz, TB_USAGE, "model name '%.32s...' is %zu bytes long (at most %d)",
                       name, len, REGISTRY_MAX_NAME);
    if (name[0] == '.')
        return tb_fail(err, errsz, TB_USAGE, "model name '%s' starts with '.'", name);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-')
            continue;
        return tb_fail(err, errsz, TB_USAGE,
                       "model name '%s' has the byte 0x%02x at %zu (allowed: A-Z a-z 0-9 . _ -)",
                       name, c, i);
    }
    return TB_OK;
}

/* The version of a file named "v<N>.avro" (N from 1 to INT32_MAX, no leading zeros), or 0 for
 * any other name. */
static int32_t registry_file_version(const char *file_name)
{
    if (file_name[0] != 'v' || file_name[1] < '1' || file_name[1] > '9')
        return 0;
    int64_t version = 0;
    const char *p = file_name + 1;
    for (; *p >= '0' && *p <= '9'; p++) {
        version = version * 10 + (*p - '0');
        if (version > INT32_MAX)
            return 0;
    }
    return strcmp(p, ".avro") == 0 ? (int32_t)version : 0;
}

static int registry_compare_versions(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Formats dir/name into buf; TB_USAGE when it does not fit. */
static int registry_model_dir(const char *dir, const char *name, char *buf, size_t bufsz, char *err,
                              size_t errsz)
{
    int n = snprintf(buf, bufsz, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= bufsz)
        return tb_fail(err, errsz, TB_USAGE, "registry path '%s/%s' is too long", dir, name);
    return TB_OK;
}

int registry_versions(const char *dir, const char *name, int32_t **versions, size_t *count,
                      char *err, size_t errsz)
{
    *versions = NULL;
    *count = 0;
    int rc = registry_check_name(name, err, errsz);
    if (rc != TB_OK)
        return rc;
    char model_dir[PATH_MAX];
    rc = registry_model_dir(dir, name, model_dir, sizeof model_dir, err, errsz);
    if (rc != TB_OK)
        return rc;
    DIR *d = opendir(model_dir);
    if (!d) {
        if (errno == ENOENT)
            return TB_OK;
        return tb_fail(err, errsz, TB_IO, "registry %s: cannot open %s: %s", dir, model_dir,
                       strerror(errno));
    }
    int32_t *found = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(d);
        if (!entry) {
            if (errno != 0) {
                rc = tb_fail(err, errsz, TB_IO, "registry %s: cannot read %s: %s", dir, model_dir,
                             strerror(errno));
                goto done;
            }
            break;
        }
        if (entry->d_type == DT_DIR)
            continue;
        int32_t version = registry_file_version(entry->d_name);
        if (version == 0)
            continue;
        mem_grow((void **)&found, &cap, n + 1, sizeof *found);
        found[n++] = version;
    }
    if (n > 0)
        qsort(found, n, sizeof *found, registry_compare_versions);
    *versions = found;
    *count = n;
    found = NULL;
done:
    free(found);
    closedir(d);
    return rc;
}

int registry_latest(const char *dir, const char *name, int32_t *version, char *path, size_t pathsz,
                    char *err, size_t errsz)
{
    int32_t *versions = NULL;
    size_t count = 0;
    int rc = registry_versions(dir, name, &versions, &count, err, errsz);
    if (rc != TB_OK)
        return rc;
    if (count == 0)
        return tb_fail(err, errsz, TB_NOTFOUND, "registry %s has no version of model '%s'", dir,
                       name);
    int32_t latest = versions[count - 1];
    free(versions);
    if (path) {
        int n = snprintf(path, pathsz, "%s/%s/v%d.avro", dir, name, (int)latest);
        if (n < 0 || (size_t)n >= pathsz)
            return tb_fail(err, errsz, TB_USAGE, "registry path '%s/%s/v%d.avro' is too long", dir,
                           name, (int)latest);
    }
    if (version)
        *version = latest;
    return TB_OK;
}

/* Creates path and its missing parents (mode 0755); an existing directory is fine. */
static int registry_mkdirs(const char *path, char *err, size_t errsz)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return tb_fail(err, errsz, TB_USAGE, "registry path '%s' is empty or too long", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return tb_fail(err, errsz, TB_IO, "registry: cannot create directory %s: %s", buf,
                           strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return tb_fail(err, errsz, TB_IO, "registry: %s is not a directory", path);
    return TB_OK;
}

/* fsyncs a directory, so that the names just made in it survive a crash. */
static int registry_sync_dir(const char *path, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        return tb_fail(err, errsz, TB_IO, "registry: cannot fsync directory %s: %s", path,
                       strerror(saved));
    }
    close(fd);
    return TB_OK;
}

/* Replaces the contents of the open file fd with len bytes and fsyncs it. */
static int registry_write_all(int fd, const char *path, const unsigned char *bytes, size_t len,
                              char *err, size_t errsz)
{
    if (ftruncate(fd, 0) != 0)
        return tb_fail(err, errsz, TB_IO, "registry: cannot truncate %s: %s", path,
                       strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, bytes + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tb_fail(err, errsz, TB_IO, "registry: cannot write %s: %s", path,
                           strerror(errno));
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        return tb_fail(err, errsz, TB_IO, "registry: cannot fsync %s: %s", path, strerror(errno));
    return TB_OK;
}

int registry_publish(const char *dir, struct artefact *artefact, int32_t *version, char *err,
                     size_t errsz)
{
    const char *name = artefact_name(artefact);
    int32_t old_version = artefact_version(artefact);
    int32_t *versions = NULL;
    unsigned char *bytes = NULL;
    int fd = -1;
    char model_dir[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX];
    tmp[0] = '\0';

    int rc = registry_check_name(name, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = registry_model_dir(dir, name, model_dir, sizeof model_dir, err, errsz);
    if (rc != TB_OK)
        goto done;
    struct stat st;
    if (stat(model_dir, &st) != 0) {
        /* The model's first version: its directory entry must be durable too. */
        if ((rc = registry_mkdirs(model_dir, err, errsz)) != TB_OK ||
            (rc = registry_sync_dir(dir, err, errsz)) != TB_OK)
            goto done;
    }
    size_t count = 0;
    rc = registry_versions(dir, name, &versions, &count, err, errsz);
    if (rc != TB_OK)
        goto done;
    int64_t next = count > 0 ? (int64_t)versions[count - 1] + 1 : 1;

    int n = snprintf(tmp, sizeof tmp, "%s/.publish-XXXXXX", model_dir);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        tmp[0] = '\0';
        rc = tb_fail(err, errsz, TB_USAGE, "registry path '%s' is too long", model_dir);
        goto done;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = tb_fail(err, errsz, TB_IO, "registry: cannot create a temporary file in %s: %s",
                     model_dir, strerror(errno));
        tmp[0] = '\0';
        goto done;
    }
    /* mkstemp makes it 0600; a published version is read by the services that load it. */
    fchmod(fd, 0644);

    for (;; next++) {
        if (next > INT32_MAX) {
            rc = tb_fail(err, errsz, TB_USAGE, "registry %s: model '%s' has no version left", dir,
                         name);
            goto done;
        }
        artefact_set_version(artefact, (int32_t)next);
        free(bytes);
        bytes = NULL;
        size_t len = 0;
        rc = artefact_encode(artefact, &bytes, &len, err, errsz);
        if (rc != TB_OK)
            goto done;
        rc = registry_write_all(fd, tmp, bytes, len, err, errsz);
        if (rc != TB_OK)
            goto done;
        snprintf(final, sizeof final, "%s/v%d.avro", model_dir, (int)next);
        if (link(tmp, final) == 0)
            break;
        if (errno != EEXIST) {
            rc = tb_fail(err, errsz, TB_IO, "registry: cannot link %s to %s: %s", tmp, final,
                         strerror(errno));
            goto done;
        }
        /* A concurrent publisher took this version first. */
    }
    close(fd);
    fd = -1;
    unlink(tmp);
    tmp[0] = '\0';
    rc = registry_sync_dir(model_dir, err, errsz);
    if (rc != TB_OK) {
        /* Not known to be durable: take it back rather than report a version that may vanish. */
        unlink(final);
        goto done;
    }
    *version = (int32_t)next;

done:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    if (rc != TB_OK)
        artefact_set_version(artefact, old_version);
    free(bytes);
    free(versions);
    return rc;
}
