/* Helpers every cmocka test shares: references, data, files, comparisons, random numbers. */
#include "tests/support/support.h"

#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/rng.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* Runs python3 with the NULL-terminated argv (without "python3" itself); returns its standard
 * output and puts its exit status in *exit_status and its standard error (a heap string) in
 * *errors. */
static char *run_python(const char *const *args, int *exit_status, char **errors)
{
    size_t argc = 1; /* "python3" */
    while (args[argc - 1])
        argc++;
    const char **argv = mem_alloc((argc + 1) * sizeof(*argv));
    argv[0] = "python3";
    memcpy(argv + 1, args, argc * sizeof(*argv)); /* the rest and the NULL */

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

/* first and the rest of args (up to NULL) as a NULL-terminated array; the caller frees it. */
static const char **python_args(const char *first, va_list args)
{
    va_list count;
    va_copy(count, args);
    size_t argc = 1;
    while (va_arg(count, const char *))
        argc++;
    va_end(count);
    const char **argv = mem_alloc((argc + 1) * sizeof(*argv));
    argv[0] = first;
    for (size_t i = 1; i < argc; i++)
        argv[i] = va_arg(args, const char *);
    argv[argc] = NULL;
    return argv;
}

/* support_python over a NULL-terminated heap array of arguments, which it frees. */
static char *python_checked(const char **args)
{
    int exit_status = 0;
    char *errors = NULL;
    char *out = run_python(args, &exit_status, &errors);
    if (exit_status != 0) {
        /* The message is formatted before fail_msg, which does not return, so nothing leaks. */
        size_t nerr = strlen(errors);
        const char *err_tail = nerr > 1500 ? errors + nerr - 1500 : errors;
        char message[3072];
        snprintf(message, sizeof(message),
                 "%s %s exited with status %d\n--- stdout ---\n%.800s\n--- stderr ---\n%s",
                 python_path, args[0], exit_status, out, err_tail);
        free(errors);
        free(out);
        free(args);
        fail_msg("%s", message);
    }
    fputs(errors, stderr);
    free(errors);
    free(args);
    return out;
}

char *support_python(const char *arg, ...)
{
    va_list args;
    va_start(args, arg);
    const char **argv = python_args(arg, args);
    va_end(args);
    return python_checked(argv);
}

char *support_python_status(int *exit_status, const char *arg, ...)
{
    va_list args;
    va_start(args, arg);
    const char **argv = python_args(arg, args);
    va_end(args);
    char *errors = NULL;
    char *out = run_python(argv, exit_status, &errors);
    free(argv);
    fputs(errors, stderr);
    free(errors);
    return out;
}

json_t *support_python_json_lines(const char *code, const char *path, char *const *args,
                                  size_t nargs)
{
    const char **argv = mem_alloc((nargs + 4) * sizeof(*argv));
    argv[0] = "-c";
    argv[1] = code;
    argv[2] = path;
    for (size_t i = 0; i < nargs; i++)
        argv[3 + i] = args[i];
    argv[3 + nargs] = NULL;
    char *out = python_checked(argv);
    json_t *lines = json_array();
    char *cursor = out, *line;
    while ((line = support_next_line(&cursor))) {
        json_error_t jerr;
        json_t *value = json_loads(line, JSON_DECODE_ANY, &jerr);
        if (!value) {
            char message[512];
            snprintf(message, sizeof message, "Python printed \"%.200s\": %s", line, jerr.text);
            json_decref(lines);
            free(out);
            fail_msg("%s", message);
        }
        json_array_append_new(lines, value);
    }
    free(out);
    if (json_array_size(lines) != nargs) {
        size_t got = json_array_size(lines);
        json_decref(lines);
        fail_msg("Python printed %zu lines for %zu arguments", got, nargs);
    }
    return lines;
}

/* The bytes that hex spells, *len of them (and a spare byte), into *bytes (the caller frees
 * them); returns the index of the first digit that is not hex (the length when it is odd), or -1
 * when all is well (and *bytes is NULL then). */
static ptrdiff_t decode_hex(const char *hex, uint8_t **bytes, size_t *len)
{
    size_t n = strlen(hex);
    *bytes = NULL;
    if (n % 2 != 0)
        return (ptrdiff_t)n;
    uint8_t *out = mem_alloc(n / 2 + 1);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)hex[i])) {
            free(out);
            return (ptrdiff_t)i;
        }
        unsigned digit = isdigit((unsigned char)hex[i]) ? (unsigned)(hex[i] - '0')
                                                        : (unsigned)(tolower(hex[i]) - 'a' + 10);
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(digit << 4);
        else
            out[i / 2] |= (uint8_t)digit;
    }
    *bytes = out;
    *len = n / 2;
    return -1;
}

uint8_t *support_python_hex(const char *code, const char *path, const char *arg, size_t *len)
{
    char *out = support_python("-c", code, path, arg, NULL);
    char *cursor = out, *line = support_next_line(&cursor);
    uint8_t *bytes = NULL;
    ptrdiff_t bad = line ? decode_hex(line, &bytes, len) : 0;
    if (bad >= 0) {
        char message[512];
        snprintf(message, sizeof message, "Python printed \"%.200s\", not hex (digit %td)",
                 line ? line : "", bad);
        free(out);
        fail_msg("%s", message);
    }
    free(out);
    return bytes;
}

char *support_to_hex(const void *bytes, size_t len)
{
    const uint8_t *b = bytes;
    char *hex = mem_alloc(2 * len + 1);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    hex[2 * len] = '\0';
    return hex;
}

uint8_t *support_from_hex(const char *hex, size_t *len)
{
    uint8_t *bytes = NULL;
    ptrdiff_t bad = decode_hex(hex, &bytes, len);
    if (bad >= 0)
        fail_msg("\"%.200s\" is not hex (digit %td)", hex, bad);
    return bytes;
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

double *support_read_fd001(size_t *n, double **rul)
{
    enum { COLS = SUPPORT_FD001_COLS };
    char path[1024];
    support_data_path("cmapss/train_FD001.txt", path, sizeof(path));
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("%s: %s", path, strerror(errno));
    size_t nrows = 0, cap = 0;
    double *rows = NULL;
    char line[1024];
    while (fgets(line, sizeof(line), fp)) {
        double v[COLS];
        char *p = line, *end = NULL;
        size_t k = 0;
        for (; k < COLS; k++, p = end) {
            v[k] = strtod(p, &end);
            if (end == p)
                break;
        }
        if (k == 0)
            continue; /* a blank line */
        if (k != COLS) {
            fclose(fp);
            free(rows);
            fail_msg("%s, row %zu: %zu numbers, not %d", path, nrows + 1, k, COLS);
        }
        mem_grow((void **)&rows, &cap, (nrows + 1) * COLS, sizeof(double));
        memcpy(rows + nrows * COLS, v, sizeof(v));
        nrows++;
    }
    fclose(fp);
    if (rul) {
        /* A unit's rows are consecutive, in the order of its cycles. */
        double *labels = mem_alloc((nrows ? nrows : 1) * sizeof(double));
        for (size_t first = 0, end = 0; first < nrows; first = end) {
            double last = rows[first * COLS + 1];
            for (end = first + 1; end < nrows && rows[end * COLS] == rows[first * COLS]; end++)
                last = fmax(last, rows[end * COLS + 1]);
            for (size_t i = first; i < end; i++)
                labels[i] = last - rows[i * COLS + 1];
        }
        *rul = labels;
    }
    *n = nrows;
    return rows;
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

int support_setup_temp_dir(void **state)
{
    char name[256];
    snprintf(name, sizeof name, "tributary_%s", program_invocation_short_name);
    char *dir = support_mkdtemp(name);
    if (!dir)
        return -1;
    *state = dir;
    return 0;
}

int support_teardown_temp_dir(void **state)
{
    char *dir = *state;
    (void)support_rmtree(dir);
    free(dir);
    return 0;
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

void support_assert_close_floor(double got, double want, double rel, double floor, const char *what)
{
    double diff = fabs(got - want), scale = fmax(fabs(got), fabs(want));
    if (!(diff <= fmax(rel * scale, floor)))
        fail_msg("%s: got %.17g, want %.17g (difference %.3g > max(%.3g relative, %.3g))", what,
                 got, want, diff, rel, floor);
}

void support_expect_fit_error(const char *fit_name, int rc, const char *err,
                              const struct linear_model *model, int want_rc,
                              const char *const *fragments)
{
    if (rc != want_rc)
        fail_msg("%s returned %d (%s), want %d; message: %s", fit_name, rc, tb_strerror(rc),
                 want_rc, err);
    assert_int_equal(model->nfeatures, 99);
    assert_null(model->coef);
    assert_null(model->intercept);
    assert_null(model->classes);
    for (const char *const *f = fragments; *f; f++)
        if (!strstr(err, *f))
            fail_msg("message \"%s\" lacks \"%s\"", err, *f);
}

/* The state of the splitmix64 generator. */
static uint64_t support_rng_state;

void support_rng_seed(uint64_t seed)
{
    support_rng_state = seed;
}

double support_rng_uniform(void)
{
    return (double)(rng_splitmix64(&support_rng_state) >> 11) * 0x1.0p-53; /* [0, 1) */
}

double support_rng_normal(void)
{
    double u = support_rng_uniform(), v = support_rng_uniform();
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Reads the number at *cursor and moves past it; fails the test, naming file, when there is
 * none. */
static double next_number(char **cursor, const char *file)
{
    char *end = NULL;
    double v = strtod(*cursor, &end);
    if (end == *cursor)
        fail_msg("%s: a number is missing", file);
    *cursor = end;
    return v;
}

/* Reads count numbers into a new array (at least one element); the caller frees it. */
static double *read_numbers(char **cursor, size_t count, const char *file)
{
    double *v = mem_alloc((count > 0 ? count : 1) * sizeof(double));
    for (size_t i = 0; i < count; i++)
        v[i] = next_number(cursor, file);
    return v;
}

/* Reads a number that must be a whole count. */
static size_t next_count(char **cursor, const char *file)
{
    double v = next_number(cursor, file);
    assert_true(v >= 0 && v == floor(v));
    return (size_t)v;
}

void support_classifier_reference(const char *model, const struct support_classifier_case *c,
                                  double max_grad_over_n, struct support_classifier_reference *ref)
{
    const char *script = "tests/unit/models/classifier_reference.py";
    if (access(script, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", script);
    char ai4i[1024];
    const char *dataset =
        c->dataset ? c->dataset : support_data_path("ai4i/ai4i2020.csv", ai4i, sizeof(ai4i));
    char *dir = support_mkdtemp("tributary_classifier");
    assert_non_null(dir);
    char l2_text[32], path[1024];
    snprintf(l2_text, sizeof(l2_text), "%.17g", c->l2);
    free(support_python(script, model, dataset, dir, l2_text, NULL));

    size_t len = 0;
    snprintf(path, sizeof(path), "%s/data.txt", dir);
    char *text = support_read_file(path, &len), *cursor = text;
    ref->n = next_count(&cursor, path);
    ref->p = next_count(&cursor, path);
    ref->x = mem_alloc(ref->n * ref->p * sizeof(double));
    ref->y = mem_alloc(ref->n * sizeof(double));
    for (size_t i = 0; i < ref->n; i++) {
        for (size_t j = 0; j < ref->p; j++)
            ref->x[i * ref->p + j] = next_number(&cursor, path);
        ref->y[i] = next_number(&cursor, path);
    }
    free(text);

    snprintf(path, sizeof(path), "%s/fit-0.txt", dir);
    text = support_read_file(path, &len);
    cursor = text;
    ref->grad_over_n = next_number(&cursor, path);
    ref->nclasses = next_count(&cursor, path);
    ref->classes = read_numbers(&cursor, ref->nclasses, path);
    ref->noutputs = next_count(&cursor, path);
    ref->intercept = read_numbers(&cursor, ref->noutputs, path);
    ref->coef = read_numbers(&cursor, ref->noutputs * ref->p, path);
    ref->prob = read_numbers(&cursor, ref->n * ref->nclasses, path);
    free(text);
    assert_int_equal(support_rmtree(dir), 0);
    free(dir);
    /* The reference is only a reference if it sits at the optimum. */
    if (!(ref->grad_over_n <= max_grad_over_n))
        fail_msg("scikit-learn stopped with max |gradient| / n = %g", ref->grad_over_n);
}

void support_classifier_reference_free(struct support_classifier_reference *ref)
{
    free(ref->prob);
    free(ref->coef);
    free(ref->intercept);
    free(ref->classes);
    free(ref->y);
    free(ref->x);
}
