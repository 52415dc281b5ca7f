/* Helpers the cmocka unit tests share: Python references, shared data, temporary files. */
#include "tests/unit/support.h"

#include "service/mem.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static const char python_path[] = "/usr/bin/python3";

/* Reads fd to its end into a NUL-terminated heap string; *len is its length. */
static char *read_to_end(int fd, size_t *len)
{
    size_t cap = 0;
    char *text = NULL;
    *len = 0;
    for (;;) {
        mem_grow((void **)&text, &cap, *len + 65536, 1);
        ssize_t n = read(fd, text + *len, cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *len += (size_t)n;
    }
    text[*len] = '\0';
    return text;
}

/* Runs python3 with first and the rest of args (up to NULL); returns its standard output and puts
 * its exit status in *exit_status and its standard error (a heap string) in *errors. */
static char *run_python(const char *first, va_list args, int *exit_status, char **errors)
{
    va_list count;
    va_copy(count, args);
    size_t argc = 2; /* "python3" and first */
    while (va_arg(count, const char *))
        argc++;
    va_end(count);
    const char **argv = mem_alloc((argc + 1) * sizeof(*argv));
    argv[0] = "python3";
    argv[1] = first;
    for (size_t i = 2; i < argc; i++)
        argv[i] = va_arg(args, const char *);
    argv[argc] = NULL;

    /* Standard error goes to a file, so that neither stream can fill its pipe and block Python
     * while this process waits on the other. */
    FILE *err_file = tmpfile();
    assert_non_null(err_file);
    int out_pipe[2];
    assert_int_equal(pipe(out_pipe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(fileno(err_file), STDERR_FILENO);
        close(out_pipe[0]);
        close(out_pipe[1]);
        execv(python_path, (char *const *)argv);
        _exit(127);
    }
    close(out_pipe[1]);
    size_t len = 0;
    char *out = read_to_end(out_pipe[0], &len);
    close(out_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

    assert_int_equal(fflush(err_file), 0);
    assert_int_equal(lseek(fileno(err_file), 0, SEEK_SET), 0);
    *errors = read_to_end(fileno(err_file), &len);
    fclose(err_file);
    free(argv);
    return out;
}

char *support_python(const char *arg, ...)
{
    va_list args;
    va_start(args, arg);
    int exit_status = 0;
    char *errors = NULL;
    char *out = run_python(arg, args, &exit_status, &errors);
    va_end(args);
    if (exit_status != 0) {
        /* The message is formatted before fail_msg, which does not return, so nothing leaks. */
        size_t nerr = strlen(errors);
        const char *err_tail = nerr > 1500 ? errors + nerr - 1500 : errors;
        char message[3072];
        snprintf(message, sizeof(message),
                 "%s %s exited with status %d\n--- stdout ---\n%.800s\n--- stderr ---\n%s",
                 python_path, arg, exit_status, out, err_tail);
        free(errors);
        free(out);
        fail_msg("%s", message);
    }
    fputs(errors, stderr);
    free(errors);
    return out;
}

char *support_python_status(int *exit_status, const char *arg, ...)
{
    va_list args;
    va_start(args, arg);
    char *errors = NULL;
    char *out = run_python(arg, args, exit_status, &errors);
    va_end(args);
    fputs(errors, stderr);
    free(errors);
    return out;
}

char *support_next_line(char **cursor)
{
    char *line = *cursor;
    if (*line == '\0')
        return NULL;
    size_t len = strcspn(line, "\n");
    *cursor = line[len] == '\n' ? line + len + 1 : line + len;
    line[len] = '\0';
    return line;
}

const char *support_data_path(const char *relative, char *buf, size_t bufsz)
{
    const char *dir = getenv("TRIBUTARY_DATA");
    snprintf(buf, bufsz, "%s/%s", dir && *dir ? dir : "../shared/data", relative);
    if (access(buf, R_OK) != 0)
        fail_msg("%s not readable: set TRIBUTARY_DATA or run from the repository root", buf);
    return buf;
}

/* $TMPDIR/name-XXXXXX, or /tmp/name-XXXXXX; the caller frees it. */
static char *temp_template(const char *name)
{
    const char *tmpdir = getenv("TMPDIR");
    const char *dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
    size_t size = strlen(dir) + strlen(name) + sizeof("/-XXXXXX");
    char *path = mem_alloc(size);
    snprintf(path, size, "%s/%s-XXXXXX", dir, name);
    return path;
}

char *support_mkdtemp(const char *name)
{
    char *path = temp_template(name);
    if (!mkdtemp(path)) {
        int saved = errno;
        free(path);
        errno = saved;
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int support_rmtree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

FILE *support_temp_file(const char *name, char **path)
{
    *path = temp_template(name);
    int fd = mkstemp(*path);
    if (fd < 0)
        fail_msg("cannot create %s: %s", *path, strerror(errno));
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    return fp;
}

void support_write_file(const char *path, const void *bytes, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

void *support_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    size_t cap = 0;
    char *bytes = NULL;
    *len = 0;
    for (;;) {
        mem_grow((void **)&bytes, &cap, *len + 65536, 1);
        size_t n = fread(bytes + *len, 1, cap - *len - 1, fp);
        if (n == 0)
            break;
        *len += n;
    }
    assert_false(ferror(fp));
    fclose(fp);
    bytes[*len] = '\0';
    return bytes;
}

void support_assert_close(double got, double want, double rel, const char *what)
{
    double diff = fabs(got - want), scale = fmax(fabs(got), fabs(want));
    if (!(diff <= rel * scale))
        fail_msg("%s: got %.17g, want %.17g (relative difference %.3g > %.3g)", what, got, want,
                 scale > 0 ? diff / scale : diff, rel);
}
