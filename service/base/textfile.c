/* Whole small text files: read into memory, written atomically. */
#include "service/base/textfile.h"
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <unistd.h>

#include "service/base/error.h"
#include "service/base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

char *textfile_read(const char *path, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t size = 0, cap = 4096;
    char *text = mem_alloc(cap);
    size_t got;
    while ((got = fread(text + size, 1, cap - size - 1, f)) > 0) {
        size += got;
        if (cap - size - 1 == 0)
            mem_grow((void **)&text, &cap, cap * 2, 1);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        tb_fail(err, errsz, TB_IO, "%s: read error", path);
        return NULL;
    }
    text[size] = '\0';
    if (len)
        *len = size;
    return text;
}

/* fsyncs the directory that holds path, so that a rename into it is durable. */
static int textfile_sync_directory(const char *path, char *err, size_t errsz)
{
    char *copy = mem_strdup(path);
    const char *dir = dirname(copy);
    int rc = TB_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot fsync directory %s: %s", path, dir,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}

int textfile_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errsz)
{
    size_t tmp_size = strlen(path) + 32;
    char *tmp = mem_alloc(tmp_size);
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    bool tmp_exists = false;
    int rc = TB_OK;
    /* O_TRUNC, not O_EXCL: in a container every run has the same pid, and a temporary left by a
     * crash must not block the next write. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    tmp_exists = true;
    for (const char *p = data; len > 0;) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tb_fail(err, errsz, TB_IO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
            goto done;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot fsync %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    int close_rc = close(fd);
    fd = -1;
    if (close_rc != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "%s: cannot rename %s over it: %s", path, tmp,
                     strerror(errno));
        goto done;
    }
    tmp_exists = false;
    rc = textfile_sync_directory(path, err, errsz);
done:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    free(tmp);
    return rc;
}
