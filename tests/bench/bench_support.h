/* Helpers the benchmark programs share: clocks, fatal errors, where the peers' files go, writing
 * them, and seeded synthetic data. Header only, because the Makefile builds each
 * tests/bench/bench_*.c alone against the library; every function is static inline, so a program
 * carries only those it calls. */
#ifndef TRIBUTARY_BENCH_SUPPORT_H
#define TRIBUTARY_BENCH_SUPPORT_H

#include "service/base/clock.h"
#include "service/base/rng.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Wall-clock seconds on the monotonic clock, for rates. */
static inline double bench_now(void)
{
    return clock_monotonic_s();
}

/* The process's CPU seconds (all threads), for work timed against peers that use the same clock. */
static inline double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints "PROGRAM: what: err" to stderr and exits with status 1. */
static inline _Noreturn void bench_die(const char *what, const char *err)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, err);
    exit(1);
}

/* The directory for files the peers read: $BENCH_SCRATCH, else $BENCH_DIR, else ".". */
static inline const char *bench_scratch_dir(void)
{
    const char *dir = getenv("BENCH_SCRATCH");
    if (!dir)
        dir = getenv("BENCH_DIR");
    return dir ? dir : ".";
}

/* Exits through bench_die unless the machine is little-endian, the byte order the peers read the
 * raw data files in. */
static inline void bench_require_little_endian(void)
{
    const uint16_t one = 1;
    if (*(const unsigned char *)&one != 1)
        bench_die("data", "the data files are little-endian; this machine is big-endian");
}

/* Opens dir/name for writing (mode as fopen's), or exits through bench_die. */
static inline FILE *bench_open(const char *dir, const char *name, const char *mode)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (!f)
        bench_die("open", path);
    return f;
}

/* Closes f, which bench_open opened as name, or exits through bench_die when anything written to
 * it failed. */
static inline void bench_close(FILE *f, const char *name)
{
    if (ferror(f) | fclose(f))
        bench_die("write", name);
}

/* Writes n items of size bytes to dir/name in the machine's byte order (see
 * bench_require_little_endian), or exits through bench_die. */
static inline void bench_write(const char *dir, const char *name, const void *values, size_t size,
                               size_t n)
{
    FILE *f = bench_open(dir, name, "wb");
    fwrite(values, size, n, f);
    bench_close(f, name);
}

/* Uniform on (0, 1] from the splitmix64 stream *state: never 0, so its logarithm is finite. */
static inline double bench_uniform(uint64_t *state)
{
    return (double)((rng_splitmix64(state) >> 11) + 1) * 0x1.0p-53;
}

/* Fills out[0..n) with standard normal values from the splitmix64 stream *state (Box-Muller, two
 * per pair of uniforms). */
static inline void bench_normals(uint64_t *state, double *out, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        double radius = sqrt(-2.0 * log(bench_uniform(state)));
        double angle = 2.0 * M_PI * bench_uniform(state);
        out[i] = radius * cos(angle);
        if (i + 1 < n)
            out[i + 1] = radius * sin(angle);
    }
}

#endif
