/* Benchmark: per-key online learning (rls, ftrl, ftrl_logistic, anomaly, holt) over a grouped
 * table of 100,000 keys, record by record in random key order, as the service does it: updates
 * per second on one thread, and the bytes each key costs.
 *
 * The stream (seeded; the recipe is bench_stream's comment): 2,000,000 records of key, 16
 * features and a label, so each key sees about 20. Per record the key's entry is looked up with
 * grouped_get (a new key's state set by online_state_init) and online_step predicts, then learns.
 * The service also marks the key dirty and adds to its prequential metrics; those are left out.
 *
 * Written to BENCH_SCRATCH (else BENCH_DIR, else the current directory) for
 * tests/bench/bench_online_peers.py, which run.sh runs right after this program: the stream
 * (online-keys.u32, online-x.f64, online-y.f64; little-endian), and per model the states of every
 * key (by key number) just before the last BENCH_SLICE records (online-KIND-snapshot.f64), after
 * all of them (online-KIND-final.f64), the predictions of those last records
 * (online-KIND-pred.f64), and one line of figures in online-ours.txt. The peers time plain numpy
 * on those last records from the snapshot, check that they compute what this program computed,
 * and print the ratios. Never fails on time; exits 1 only when the data cannot be written. Usage:
 * bench_online [records [keys [slice]]]. */
#include "models/grouped.h"
#include "models/online.h"
#include "service/base/mem.h"
#include "service/base/rng.h"
#include "tests/bench/bench_support.h"

#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_RECORDS  2000000
#define BENCH_KEYS     100000
#define BENCH_FEATURES 16
#define BENCH_SLICE    200000 /* the last records, which the peers replay and time */
#define BENCH_SEED     42
#define BENCH_KEY_LEN  10 /* "key-000042" */

/* The stream, from splitmix64 seeded with BENCH_SEED: first each key k in order draws its own
 * weights w_k (BENCH_FEATURES uniforms on [-1, 1]) and intercept b_k (one more); then each record
 * draws its key (next() % keys), 18 standard normals e, and has x_j = e_j, except the health
 * indicator x_0 = 0.5 c + e_0 with c the key's earlier records (it drifts up towards holt's
 * threshold 10), the regression label y = w_k . x + b_k + 0.1 e_16 (e_17 unused) and the
 * classification label y > 0. */
static void bench_stream(size_t n, size_t nkeys, uint32_t *keys, double *x, double *y)
{
    const size_t p = BENCH_FEATURES;
    uint64_t state = BENCH_SEED;
    double *weights = mem_alloc(nkeys * (p + 1) * sizeof(double));
    uint32_t *seen = mem_calloc(nkeys, sizeof(uint32_t));
    for (size_t j = 0; j < nkeys * (p + 1); j++)
        weights[j] = 2.0 * bench_uniform(&state) - 1.0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = (uint32_t)(rng_splitmix64(&state) % nkeys);
        double e[BENCH_FEATURES + 2], *xi = x + i * p;
        const double *w = weights + (size_t)key * (p + 1);
        bench_normals(&state, e, p + 2);
        memcpy(xi, e, p * sizeof(double));
        xi[0] += 0.5 * (double)seen[key]++;
        double target = w[p] + 0.1 * e[p];
        for (size_t j = 0; j < p; j++)
            target += w[j] * xi[j];
        keys[i] = key;
        y[i] = target;
    }
    free(seen);
    free(weights);
}

/* Writes every key's state by key number to dir/online-KIND-WHAT.f64; a key the table has not
 * seen yet gets a fresh state. */
static void bench_write_states(const char *dir, const char *kind, const char *what,
                               struct grouped_table *table, const struct online_model *m,
                               const char *names, size_t nkeys)
{
    char name[256];
    snprintf(name, sizeof name, "online-%s-%s.f64", kind, what);
    size_t len = online_state_len(m);
    double *fresh = mem_alloc(len * sizeof(double));
    online_state_init(m, fresh);
    FILE *f = bench_open(dir, name, "wb");
    for (size_t i = 0; i < nkeys; i++) {
        struct grouped_key *k = grouped_find(table, names + i * BENCH_KEY_LEN, BENCH_KEY_LEN);
        fwrite(k ? k->state : fresh, sizeof(double), len, f);
    }
    bench_close(f, name);
    free(fresh);
}

/* One record as the service handles it: the key's entry (a new key gets a fresh state), then
 * predict and learn. Returns the prediction. */
static double bench_record(struct grouped_table *table, const struct online_model *m,
                           const char *key, const double *x, double y)
{
    bool created;
    struct grouped_key *k = grouped_get(table, key, BENCH_KEY_LEN, &created);
    if (created)
        online_state_init(m, k->state);
    return online_step(m, k->state, x, y, 0.0);
}

/* The five models with the benchmark's hyperparameters; the peers use the same. */
static void bench_params(enum online_kind kind, struct online_params *p)
{
    online_params_default(p, kind);
    p->forgetting = 0.99; /* rls */
    p->delta = 1.0;
    p->alpha = 0.1; /* ftrl, ftrl_logistic */
    p->beta = 1.0;
    p->stat = ONLINE_WELFORD; /* anomaly */
    p->score = ONLINE_SCORE_MAHALANOBIS;
    p->warmup = 10;
    p->indicator = 0; /* holt */
    p->threshold = 10.0;
    p->direction = 1;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : BENCH_RECORDS;
    size_t nkeys = argc > 2 ? (size_t)atol(argv[2]) : BENCH_KEYS;
    size_t slice = argc > 3 ? (size_t)atol(argv[3]) : BENCH_SLICE;
    if (n < 1 || n > 100000000 || nkeys < 1 || nkeys > 1000000 || slice < 1 || slice > n)
        bench_die("usage", "bench_online [records (1..1e8) [keys (1..1e6) [slice (1..records)]]]");
    const char *dir = bench_scratch_dir();
    bench_require_little_endian();

    const size_t p = BENCH_FEATURES;
    uint32_t *keys = mem_alloc(n * sizeof(uint32_t));
    double *x = mem_alloc(n * p * sizeof(double));
    double *y = mem_alloc(n * sizeof(double));
    double *y_class = mem_alloc(n * sizeof(double));
    double *predictions = mem_alloc(slice * sizeof(double));
    char *names = mem_alloc(nkeys * BENCH_KEY_LEN + 1);
    for (size_t i = 0; i < nkeys; i++)
        snprintf(names + i * BENCH_KEY_LEN, BENCH_KEY_LEN + 1, "key-%06u", (unsigned)(i % 1000000));
    bench_stream(n, nkeys, keys, x, y);
    for (size_t i = 0; i < n; i++)
        y_class[i] = y[i] > 0.0 ? 1.0 : 0.0;
    bench_write(dir, "online-keys.u32", keys, sizeof(uint32_t), n);
    bench_write(dir, "online-x.f64", x, sizeof(double), n * p);
    bench_write(dir, "online-y.f64", y, sizeof(double), n);
    FILE *ours = bench_open(dir, "online-ours.txt", "w");

    printf("per-key online learning (tributary): %zu records of %zu keys x %zu features in random "
           "key order, seed %d; grouped_get + online_step per record, one thread\n",
           n, nkeys, p, BENCH_SEED);
    printf("  rls forgetting 0.99 delta 1; ftrl alpha 0.1 beta 1; anomaly welford mahalanobis "
           "warmup 10; holt indicator 0 threshold 10 direction +1\n");
    printf("  %-14s %7s %16s %16s %12s %12s\n", "model", "state", "all records", "last records",
           "table bytes", "malloc'd");
    printf("  %-14s %7s %16s %16s %12s %12s\n", "", "doubles", "updates/s", "updates/s", "per key",
           "per key");
    const enum online_kind kinds[] = {ONLINE_RLS, ONLINE_FTRL_LINEAR, ONLINE_FTRL_LOGISTIC,
                                      ONLINE_ANOMALY, ONLINE_HOLT};
    double sink = 0.0; /* the predictions of the first records, so that none is optimised away */
    for (size_t c = 0; c < sizeof kinds / sizeof kinds[0]; c++) {
        const char *kind = online_kind_name(kinds[c]);
        struct online_params params;
        bench_params(kinds[c], &params);
        char err[256];
        struct online_model *m = online_new(&params, p, err, sizeof err);
        if (!m)
            bench_die("online_new", err);
        const double *labels = kinds[c] == ONLINE_FTRL_LOGISTIC ? y_class : y;

        size_t heap_before = mallinfo2().uordblks;
        struct grouped_table *table = grouped_new(online_state_len(m));
        size_t start_slice = n - slice;
        double start = bench_now();
        for (size_t i = 0; i < start_slice; i++)
            sink += bench_record(table, m, names + (size_t)keys[i] * BENCH_KEY_LEN, x + i * p,
                                 labels[i]);
        double first_s = bench_now() - start;
        bench_write_states(dir, kind, "snapshot", table, m, names, nkeys);
        start = bench_now();
        for (size_t i = start_slice; i < n; i++)
            predictions[i - start_slice] = bench_record(
                table, m, names + (size_t)keys[i] * BENCH_KEY_LEN, x + i * p, labels[i]);
        double slice_s = bench_now() - start;
        size_t heap_after = mallinfo2().uordblks;

        size_t held = grouped_keys(table);
        double table_bytes = (double)grouped_bytes(table) / (double)held;
        /* NAN where glibc's malloc is not the one in use (a sanitizer's allocator) */
        double heap_bytes =
            heap_after > heap_before ? (double)(heap_after - heap_before) / (double)held : NAN;
        double all_rate = (double)n / (first_s + slice_s), slice_rate = (double)slice / slice_s;
        printf("  %-14s %7zu %16.4g %16.4g %12.0f %12.0f\n", kind, online_state_len(m), all_rate,
               slice_rate, table_bytes, heap_bytes);
        /* kind, records, keys (the state files' rows), keys held, slice, state doubles,
         * updates/s over all records and over the slice, table and malloc'd bytes per key */
        fprintf(ours, "%s %zu %zu %zu %zu %zu %.17g %.17g %.17g %.17g\n", kind, n, nkeys, held,
                slice, online_state_len(m), all_rate, slice_rate, table_bytes, heap_bytes);
        bench_write_states(dir, kind, "final", table, m, names, nkeys);
        char name[256];
        snprintf(name, sizeof name, "online-%s-pred.f64", kind);
        bench_write(dir, name, predictions, sizeof(double), slice);
        grouped_destroy(table);
        online_destroy(m);
    }
    printf("  (last records: the last %zu, which the peers replay from the same states; table "
           "bytes: grouped_bytes / keys, i.e. entry, key, state and index; malloc'd: the heap "
           "growth, mallinfo2)\n",
           slice);
    if (!isfinite(sink))
        printf("  (some predictions were not finite)\n");
    bench_close(ours, "online-ours.txt");
    free(names);
    free(predictions);
    free(y_class);
    free(y);
    free(x);
    free(keys);
    return 0;
}
