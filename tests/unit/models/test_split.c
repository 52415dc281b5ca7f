/* Unit tests for models/split: sizes and folds against scikit-learn, the documented shuffle
 * reimplemented in Python, no key on both sides, time order, determinism, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/split.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The references. The splitmix64 stream, the rejection draw and the Fisher-Yates order are
 * written from split.h's contract in Python integers, so that agreement means a seed gives the
 * same split wherever the C code runs. Sizes and GroupKFold come from scikit-learn itself. Each
 * mode prints one line of integers. */
static const char reference_script[] =
    "import sys, math\n"
    "M = (1 << 64) - 1\n"
    "class Rng:\n"
    "    def __init__(self, seed): self.state = seed & M\n"
    "    def next(self):\n"
    "        self.state = (self.state + 0x9E3779B97F4A7C15) & M\n"
    "        z = self.state\n"
    "        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M\n"
    "        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M\n"
    "        return z ^ (z >> 31)\n"
    "    def below(self, bound):\n"
    "        while True:\n"
    "            r = self.next()\n"
    "            if r >= (1 << 64) % bound: return r % bound\n"
    "    def shuffle(self, items):\n"
    "        for i in range(len(items), 1, -1):\n"
    "            j = self.below(i)\n"
    "            items[i - 1], items[j] = items[j], items[i - 1]\n"
    "def rows(path):\n"
    "    keys, times = [], []\n"
    "    for line in open(path):\n"
    "        k, t = line.rstrip('\\n').split(',')\n"
    "        keys.append(k); times.append(float(t))\n"
    "    return keys, times\n"
    "def out(values): print(' '.join(str(int(v)) for v in values))\n"
    "mode = sys.argv[1]\n"
    "if mode == 'tts':\n"
    "    import numpy as np\n"
    "    from sklearn.model_selection import train_test_split\n"
    "    n, f = int(sys.argv[2]), float(sys.argv[3])\n"
    "    train, test = train_test_split(np.arange(n), test_size=f, random_state=0)\n"
    "    out([len(test)])\n"
    "elif mode == 'kfold_sizes':\n"
    "    import numpy as np\n"
    "    from sklearn.model_selection import KFold\n"
    "    n, k = int(sys.argv[2]), int(sys.argv[3])\n"
    "    kf = KFold(n_splits=k, shuffle=True, random_state=0)\n"
    "    out([len(t) for _, t in kf.split(np.zeros((n, 1)))])\n"
    "elif mode == 'random_holdout':\n"
    "    n, f, seed = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])\n"
    "    order = list(range(n)); Rng(seed).shuffle(order)\n"
    "    t = math.ceil(f * n)\n"
    "    test = [0] * n\n"
    "    for p in range(t): test[order[p]] = 1\n"
    "    out(test)\n"
    "elif mode == 'random_kfold':\n"
    "    n, k, seed = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
    "    order = list(range(n)); Rng(seed).shuffle(order)\n"
    "    fold = [0] * n; p = 0\n"
    "    for j in range(k):\n"
    "        for _ in range(n // k + (1 if j < n % k else 0)):\n"
    "            fold[order[p]] = j; p += 1\n"
    "    out(fold)\n"
    "elif mode == 'group_holdout':\n"
    "    keys, _ = rows(sys.argv[2])\n"
    "    f, seed = float(sys.argv[3]), int(sys.argv[4])\n"
    "    groups = sorted(set(keys), key=lambda k: k.encode())\n"
    "    Rng(seed).shuffle(groups)\n"
    "    target = math.ceil(f * len(keys)); chosen = set(); total = 0\n"
    "    for g in groups:\n"
    "        if total >= target: break\n"
    "        chosen.add(g); total += keys.count(g)\n"
    "    out([1 if k in chosen else 0 for k in keys])\n"
    "elif mode == 'group_kfold_sizes':\n"
    "    import numpy as np\n"
    "    from sklearn.model_selection import GroupKFold\n"
    "    keys, _ = rows(sys.argv[2])\n"
    "    k = int(sys.argv[3])\n"
    "    splits = GroupKFold(n_splits=k).split(np.zeros((len(keys), 1)), groups=np.array(keys))\n"
    "    out([len(t) for _, t in splits])\n"
    "elif mode == 'time_holdout':\n"
    "    import numpy as np\n"
    "    _, times = rows(sys.argv[2])\n"
    "    f = float(sys.argv[3])\n"
    "    order = np.argsort(np.array(times), kind='stable')\n"
    "    test = np.zeros(len(times), dtype=int)\n"
    "    test[order[len(times) - math.ceil(f * len(times)):]] = 1\n"
    "    out(test)\n"
    "elif mode == 'time_kfold':\n"
    "    import numpy as np\n"
    "    _, times = rows(sys.argv[2])\n"
    "    k = int(sys.argv[3])\n"
    "    order = np.argsort(np.array(times), kind='stable')\n"
    "    fold = np.zeros(len(times), dtype=int)\n"
    "    for j, block in enumerate(np.array_split(order, k)): fold[block] = j\n"
    "    out(fold)\n"
    "else:\n"
    "    sys.exit('unknown mode ' + mode)\n";

/* Parses the reference's line of integers into values (at most max); returns how many. */
static size_t parse_ints(const char *text, long *values, size_t max)
{
    size_t count = 0;
    char *end = NULL;
    for (;;) {
        long v = strtol(text, &end, 10);
        if (end == text)
            break;
        assert_true(count < max);
        values[count++] = v;
        text = end;
    }
    return count;
}

/* Runs the reference in mode with up to three more arguments (NULL ends them early) and returns
 * its integers in a new array of exactly expected entries. */
static long *reference(const char *mode, const char *a, const char *b, const char *c,
                       size_t expected)
{
    char *text = support_python("-c", reference_script, mode, a, b, c, NULL);
    long *values = mem_alloc((expected + 1) * sizeof(*values));
    size_t got = parse_ints(text, values, expected + 1);
    free(text);
    assert_int_equal(got, expected);
    return values;
}

static uint64_t rng_state;

static double rng_uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* Rows of a fleet: machine keys of skewed sizes (some equal), times with ties. */
struct fleet {
    size_t n;
    char (*key_text)[24];
    const char **keys;
    double *times;
    char *path; /* the rows as "key,time" lines, for the reference */
};

static void fleet_make(struct fleet *f, size_t n, size_t machines, uint64_t seed)
{
    f->n = n;
    f->key_text = mem_alloc(n * sizeof(*f->key_text));
    f->keys = mem_alloc(n * sizeof(*f->keys));
    f->times = mem_alloc(n * sizeof(*f->times));
    rng_state = seed;
    FILE *fp = support_temp_file("tributary_split", &f->path);
    for (size_t i = 0; i < n; i++) {
        double u = rng_uniform();
        snprintf(f->key_text[i], sizeof(f->key_text[i]), "m%02zu",
                 (size_t)(u * u * (double)machines));
        f->keys[i] = f->key_text[i];
        f->times[i] = floor(50.0 * rng_uniform());
        fprintf(fp, "%s,%.17g\n", f->keys[i], f->times[i]);
    }
    assert_int_equal(fclose(fp), 0);
}

/* keys keys ("k000", ...) of exactly per_key rows each, interleaved, so that every key ties on
 * size with every other; times are the row numbers. */
static void fleet_make_equal(struct fleet *f, size_t keys, size_t per_key)
{
    size_t n = keys * per_key;
    f->n = n;
    f->key_text = mem_alloc(n * sizeof(*f->key_text));
    f->keys = mem_alloc(n * sizeof(*f->keys));
    f->times = mem_alloc(n * sizeof(*f->times));
    FILE *fp = support_temp_file("tributary_split", &f->path);
    for (size_t i = 0; i < n; i++) {
        snprintf(f->key_text[i], sizeof(f->key_text[i]), "k%03zu", (i * 7) % keys);
        f->keys[i] = f->key_text[i];
        f->times[i] = (double)i;
        fprintf(fp, "%s,%.17g\n", f->keys[i], f->times[i]);
    }
    assert_int_equal(fclose(fp), 0);
}

static void fleet_free(struct fleet *f)
{
    unlink(f->path);
    free(f->path);
    free(f->times);
    free(f->keys);
    free(f->key_text);
}

static char *format_size(size_t v, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%zu", v);
    return buf;
}

static size_t count_test(const unsigned char *test, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += test[i];
    return count;
}

/* Fails unless every key's rows are all on one side. */
static void assert_keys_one_side(const struct fleet *f, const unsigned char *test)
{
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = i + 1; j < f->n; j++)
            if (strcmp(f->keys[i], f->keys[j]) == 0 && test[i] != test[j])
                fail_msg("key %s is on both sides (rows %zu and %zu)", f->keys[i], i, j);
}

/* Fails unless every key's rows are all in one fold. */
static void assert_keys_one_fold(const struct fleet *f, const int *fold)
{
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = i + 1; j < f->n; j++)
            if (strcmp(f->keys[i], f->keys[j]) == 0 && fold[i] != fold[j])
                fail_msg("key %s is in folds %d and %d", f->keys[i], fold[i], fold[j]);
}

static void test_parse_and_name(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum split_method method;
    } names[] = {{"random", SPLIT_RANDOM}, {"group", SPLIT_GROUP}, {"time", SPLIT_TIME}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        enum split_method m = (enum split_method) - 1;
        assert_int_equal(split_parse(names[i].name, &m), TB_OK);
        assert_int_equal(m, names[i].method);
        assert_string_equal(split_name(names[i].method), names[i].name);
    }
    enum split_method m = SPLIT_TIME;
    assert_int_equal(split_parse("Random", &m), TB_CONFIG);
    assert_int_equal(split_parse("", &m), TB_CONFIG);
    assert_int_equal(split_parse(NULL, &m), TB_CONFIG);
    assert_int_equal(m, SPLIT_TIME);
    assert_string_equal(split_name((enum split_method)42), "unknown");
}

/* Test sizes of random holdouts equal train_test_split's, including fractions whose product with
 * n is not exact in binary (0.3 * 10, 0.7 * 10) and a tiny one that rounds up to one row. */
static void test_random_holdout_sizes(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *fraction;
    } cases[] = {{10, "0.3"}, {10, "0.7"}, {100, "0.25"}, {7, "0.5"}, {3, "0.1"}, {1001, "0.2"}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c].n;
        double fraction = strtod(cases[c].fraction, NULL);
        char nbuf[32];
        long *want =
            reference("tts", format_size(n, nbuf, sizeof(nbuf)), cases[c].fraction, NULL, 1);
        unsigned char *test = mem_alloc(n);
        char err[256] = "";
        assert_int_equal(
            split_holdout(SPLIT_RANDOM, n, NULL, NULL, fraction, 9, test, err, sizeof(err)), TB_OK);
        if (count_test(test, n) != (size_t)want[0])
            fail_msg("n %zu, fraction %s: %zu test rows, train_test_split has %ld", n,
                     cases[c].fraction, count_test(test, n), want[0]);
        free(test);
        free(want);
    }
}

/* The exact rows equal the documented algorithm run in Python's integers, for seeds small, large
 * and 2^64 - 1: the same split on any machine. */
static void test_random_holdout_matches_reference(void **state)
{
    (void)state;
    static const char *const seeds[] = {"0", "42", "18446744073709551615"};
    enum { N = 257 };
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        long *want = reference("random_holdout", "257", "0.3", seeds[s], N);
        unsigned char test[N];
        char err[256] = "";
        assert_int_equal(split_holdout(SPLIT_RANDOM, N, NULL, NULL, 0.3,
                                       strtoull(seeds[s], NULL, 10), test, err, sizeof(err)),
                         TB_OK);
        for (size_t i = 0; i < N; i++)
            if (test[i] != want[i])
                fail_msg("seed %s, row %zu: test %d, reference %ld", seeds[s], i, test[i], want[i]);
        free(want);
    }
}

static void test_random_holdout_seeds(void **state)
{
    (void)state;
    enum { N = 200 };
    unsigned char a[N], b[N], c[N];
    char err[256] = "";
    assert_int_equal(split_holdout(SPLIT_RANDOM, N, NULL, NULL, 0.25, 1, a, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(split_holdout(SPLIT_RANDOM, N, NULL, NULL, 0.25, 1, b, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(split_holdout(SPLIT_RANDOM, N, NULL, NULL, 0.25, 2, c, err, sizeof(err)),
                     TB_OK);
    assert_memory_equal(a, b, N);
    assert_memory_not_equal(a, c, N);
    assert_int_equal(count_test(c, N), 50);
}

static void test_random_kfold(void **state)
{
    (void)state;
    enum { N = 103, K = 5 };
    int fold[N], again[N], other[N];
    char err[256] = "";
    assert_int_equal(split_kfold(SPLIT_RANDOM, N, NULL, NULL, K, 77, fold, err, sizeof(err)),
                     TB_OK);
    long *want = reference("random_kfold", "103", "5", "77", N);
    for (size_t i = 0; i < N; i++)
        if (fold[i] != want[i])
            fail_msg("row %zu: fold %d, reference %ld", i, fold[i], want[i]);
    free(want);

    long *sizes = reference("kfold_sizes", "103", "5", NULL, K);
    for (int j = 0; j < K; j++) {
        size_t count = 0;
        for (size_t i = 0; i < N; i++)
            count += fold[i] == j;
        if (count != (size_t)sizes[j])
            fail_msg("fold %d has %zu rows, KFold's has %ld", j, count, sizes[j]);
    }
    free(sizes);

    assert_int_equal(split_kfold(SPLIT_RANDOM, N, NULL, NULL, K, 77, again, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(split_kfold(SPLIT_RANDOM, N, NULL, NULL, K, 78, other, err, sizeof(err)),
                     TB_OK);
    assert_memory_equal(fold, again, sizeof(fold));
    assert_memory_not_equal(fold, other, sizeof(fold));
}

/* One row per fold: every position of the shuffle shows, the first two included. */
static void test_random_kfold_one_row_per_fold(void **state)
{
    (void)state;
    enum { N = 12 };
    static const char *const seeds[] = {"1", "2", "3", "4", "5", "6"};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        int fold[N];
        char err[256] = "";
        assert_int_equal(split_kfold(SPLIT_RANDOM, N, NULL, NULL, N, strtoull(seeds[s], NULL, 10),
                                     fold, err, sizeof(err)),
                         TB_OK);
        long *want = reference("random_kfold", "12", "12", seeds[s], N);
        for (size_t i = 0; i < N; i++)
            if (fold[i] != want[i])
                fail_msg("seed %s, row %zu: fold %d, reference %ld", seeds[s], i, fold[i], want[i]);
        free(want);
    }
}

static void test_group_holdout(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 400, 30, 11);
    unsigned char *test = mem_alloc(f.n), *again = mem_alloc(f.n), *other = mem_alloc(f.n);
    char err[256] = "";
    assert_int_equal(split_holdout(SPLIT_GROUP, f.n, f.keys, NULL, 0.2, 5, test, err, sizeof(err)),
                     TB_OK);
    assert_keys_one_side(&f, test);
    size_t test_rows = count_test(test, f.n);
    assert_true(test_rows >= 80 && test_rows < f.n);

    long *want = reference("group_holdout", f.path, "0.2", "5", f.n);
    for (size_t i = 0; i < f.n; i++)
        if (test[i] != want[i])
            fail_msg("row %zu (key %s): test %d, reference %ld", i, f.keys[i], test[i], want[i]);
    free(want);

    assert_int_equal(split_holdout(SPLIT_GROUP, f.n, f.keys, NULL, 0.2, 5, again, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(split_holdout(SPLIT_GROUP, f.n, f.keys, NULL, 0.2, 6, other, err, sizeof(err)),
                     TB_OK);
    assert_memory_equal(test, again, f.n);
    assert_memory_not_equal(test, other, f.n);
    assert_keys_one_side(&f, other);
    free(other);
    free(again);
    free(test);
    fleet_free(&f);
}

/* Ten keys of ten rows and a target of 30: exactly three keys reach it, so a fourth is not
 * moved. */
static void test_group_holdout_exact_target(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make_equal(&f, 10, 10);
    unsigned char *test = mem_alloc(f.n);
    char err[256] = "";
    assert_int_equal(split_holdout(SPLIT_GROUP, f.n, f.keys, NULL, 0.3, 8, test, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(count_test(test, f.n), 30);
    assert_keys_one_side(&f, test);
    long *want = reference("group_holdout", f.path, "0.3", "8", f.n);
    for (size_t i = 0; i < f.n; i++)
        if (test[i] != want[i])
            fail_msg("row %zu (key %s): test %d, reference %ld", i, f.keys[i], test[i], want[i]);
    free(want);
    free(test);
    fleet_free(&f);
}

/* A key's side depends on the keys and the seed, not on where its rows are: the rows reversed
 * give every key the same side. */
static void test_group_holdout_ignores_row_order(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 300, 25, 3);
    const char **reversed = mem_alloc(f.n * sizeof(*reversed));
    for (size_t i = 0; i < f.n; i++)
        reversed[i] = f.keys[f.n - 1 - i];
    unsigned char *test = mem_alloc(f.n), *test_reversed = mem_alloc(f.n);
    char err[256] = "";
    assert_int_equal(split_holdout(SPLIT_GROUP, f.n, f.keys, NULL, 0.3, 99, test, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(
        split_holdout(SPLIT_GROUP, f.n, reversed, NULL, 0.3, 99, test_reversed, err, sizeof(err)),
        TB_OK);
    for (size_t i = 0; i < f.n; i++)
        assert_int_equal(test[i], test_reversed[f.n - 1 - i]);
    free(test_reversed);
    free(test);
    free(reversed);
    fleet_free(&f);
}

/* GroupKFold's fold sizes, fold by fold, for skewed keys and for keys of equal sizes. */
struct group_kfold_case {
    size_t n, machines, equal_keys, per_key;
    int k;
};

static void test_group_kfold_sizes(void **state)
{
    const struct group_kfold_case *c = *state;
    struct fleet f;
    if (c->equal_keys)
        fleet_make_equal(&f, c->equal_keys, c->per_key);
    else
        fleet_make(&f, c->n, c->machines, 21);
    int *fold = mem_alloc(f.n * sizeof(*fold));
    char err[256] = "";
    assert_int_equal(split_kfold(SPLIT_GROUP, f.n, f.keys, NULL, c->k, 4, fold, err, sizeof(err)),
                     TB_OK);
    assert_keys_one_fold(&f, fold);
    char kbuf[32];
    snprintf(kbuf, sizeof(kbuf), "%d", c->k);
    long *sizes = reference("group_kfold_sizes", f.path, kbuf, NULL, (size_t)c->k);
    for (int j = 0; j < c->k; j++) {
        size_t count = 0;
        for (size_t i = 0; i < f.n; i++) {
            assert_true(fold[i] >= 0 && fold[i] < c->k);
            count += fold[i] == j;
        }
        if (count != (size_t)sizes[j])
            fail_msg("fold %d has %zu rows, GroupKFold's has %ld", j, count, sizes[j]);
    }
    free(sizes);
    free(fold);
    fleet_free(&f);
}

static const struct group_kfold_case group_skewed_5 = {.n = 500, .machines = 40, .k = 5};
static const struct group_kfold_case group_skewed_3 = {.n = 211, .machines = 12, .k = 3};
static const struct group_kfold_case group_few_keys = {.n = 60, .machines = 4, .k = 2};
static const struct group_kfold_case group_equal = {.equal_keys = 13, .per_key = 6, .k = 4};

/* Keys of equal size: the seed chooses which goes where; the fold sizes stay GroupKFold's. */
static void test_group_kfold_seeds(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make_equal(&f, 20, 5);
    int *a = mem_alloc(f.n * sizeof(int)), *b = mem_alloc(f.n * sizeof(int)),
        *c = mem_alloc(f.n * sizeof(int));
    char err[256] = "";
    assert_int_equal(split_kfold(SPLIT_GROUP, f.n, f.keys, NULL, 3, 1, a, err, sizeof(err)), TB_OK);
    assert_int_equal(split_kfold(SPLIT_GROUP, f.n, f.keys, NULL, 3, 1, b, err, sizeof(err)), TB_OK);
    assert_int_equal(split_kfold(SPLIT_GROUP, f.n, f.keys, NULL, 3, 2, c, err, sizeof(err)), TB_OK);
    assert_memory_equal(a, b, f.n * sizeof(int));
    assert_memory_not_equal(a, c, f.n * sizeof(int));
    assert_keys_one_fold(&f, c);
    size_t size_a[3] = {0}, size_c[3] = {0};
    for (size_t i = 0; i < f.n; i++) {
        size_a[a[i]]++;
        size_c[c[i]]++;
    }
    assert_memory_equal(size_a, size_c, sizeof(size_a));
    free(c);
    free(b);
    free(a);
    fleet_free(&f);
}

static void test_time_holdout(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 333, 10, 8);
    unsigned char *test = mem_alloc(f.n);
    char err[256] = "";
    assert_int_equal(split_holdout(SPLIT_TIME, f.n, NULL, f.times, 0.25, 0, test, err, sizeof(err)),
                     TB_OK);
    assert_int_equal(count_test(test, f.n), (size_t)ceil(0.25 * 333));
    double latest_train = -INFINITY, earliest_test = INFINITY;
    for (size_t i = 0; i < f.n; i++) {
        if (test[i])
            earliest_test = fmin(earliest_test, f.times[i]);
        else
            latest_train = fmax(latest_train, f.times[i]);
    }
    assert_true(latest_train <= earliest_test);

    /* Which rows at the cut go to test: numpy's stable argsort says. */
    long *want = reference("time_holdout", f.path, "0.25", NULL, f.n);
    for (size_t i = 0; i < f.n; i++)
        if (test[i] != want[i])
            fail_msg("row %zu (time %g): test %d, reference %ld", i, f.times[i], test[i], want[i]);
    free(want);
    free(test);
    fleet_free(&f);
}

static void test_time_kfold(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 101, 10, 14);
    int *fold = mem_alloc(f.n * sizeof(*fold));
    char err[256] = "";
    assert_int_equal(split_kfold(SPLIT_TIME, f.n, NULL, f.times, 4, 0, fold, err, sizeof(err)),
                     TB_OK);
    for (size_t i = 0; i < f.n; i++)
        for (size_t j = 0; j < f.n; j++)
            if (fold[i] < fold[j] && f.times[i] > f.times[j])
                fail_msg("row %zu (time %g, fold %d) is later than row %zu (time %g, fold %d)", i,
                         f.times[i], fold[i], j, f.times[j], fold[j]);
    long *want = reference("time_kfold", f.path, "4", NULL, f.n);
    for (size_t i = 0; i < f.n; i++)
        if (fold[i] != want[i])
            fail_msg("row %zu (time %g): fold %d, reference %ld", i, f.times[i], fold[i], want[i]);
    free(want);
    free(fold);
    fleet_free(&f);
}

/* A refused call: its status and the message a user reads. */
struct refusal {
    const char *what;
    int kfold; /* 0: split_holdout, 1: split_kfold */
    enum split_method method;
    size_t n;
    int keyed, timed, nan_time, null_key, one_key;
    double fraction;
    int k;
    const char *message;
};

static const struct refusal refusals[] = {
    {"fraction 0", 0, SPLIT_RANDOM, 10, 0, 0, 0, 0, 0, 0.0, 0,
     "test fraction 0 is not between 0 and 1 (both excluded)"},
    {"fraction 1", 0, SPLIT_RANDOM, 10, 0, 0, 0, 0, 0, 1.0, 0,
     "test fraction 1 is not between 0 and 1 (both excluded)"},
    {"fraction NaN", 0, SPLIT_TIME, 10, 0, 1, 0, 0, 0, NAN, 0,
     "test fraction nan is not between 0 and 1 (both excluded)"},
    {"no rows", 0, SPLIT_RANDOM, 0, 0, 0, 0, 0, 0, 0.5, 0, "no rows to split"},
    {"train empty", 0, SPLIT_RANDOM, 4, 0, 0, 0, 0, 0, 0.9, 0,
     "the train side would be empty: test fraction 0.9 of 4 rows is 4"},
    {"group without keys", 0, SPLIT_GROUP, 10, 0, 0, 0, 0, 0, 0.2, 0,
     "a group split needs a key for every row"},
    {"group with a NULL key", 0, SPLIT_GROUP, 10, 1, 0, 0, 1, 0, 0.2, 0,
     "a group split needs a key for every row; row 3 has none"},
    {"group with one key", 0, SPLIT_GROUP, 10, 1, 0, 0, 0, 1, 0.2, 0,
     "a group split needs at least 2 distinct keys; all 10 rows have one"},
    {"group takes every key", 0, SPLIT_GROUP, 10, 1, 0, 0, 0, 0, 0.85, 0,
     "the train side would be empty: all 2 keys had to go to test to reach 9 of 10 rows"},
    {"time without times", 0, SPLIT_TIME, 10, 0, 0, 0, 0, 0, 0.2, 0,
     "a time split needs a time for every row"},
    {"time with NaN", 0, SPLIT_TIME, 10, 0, 1, 1, 0, 0, 0.2, 0,
     "a time split needs a time for every row; row 3 has NaN"},
    {"unknown method", 0, (enum split_method)7, 10, 0, 0, 0, 0, 0, 0.2, 0,
     "unknown split method 7"},
    {"k 1", 1, SPLIT_RANDOM, 10, 0, 0, 0, 0, 0, 0, 1, "1 folds: k-fold needs at least 2"},
    {"k above n", 1, SPLIT_TIME, 10, 0, 1, 0, 0, 0, 0, 11, "11 folds are more than the 10 rows"},
    {"k above keys", 1, SPLIT_GROUP, 10, 1, 0, 0, 0, 0, 0, 3,
     "3 folds are more than the 2 distinct keys"},
    {"kfold group without keys", 1, SPLIT_GROUP, 10, 0, 0, 0, 0, 0, 0, 2,
     "a group split needs a key for every row"},
    {"kfold time with NaN", 1, SPLIT_TIME, 10, 0, 1, 1, 0, 0, 0, 2,
     "a time split needs a time for every row; row 3 has NaN"},
};

static void test_refusal(void **state)
{
    const struct refusal *r = *state;
    /* Keys: rows 0..7 are "a" and 8..9 "b" (or all "a"); times 0..9. */
    const char *keys[10];
    double times[10];
    for (size_t i = 0; i < 10; i++) {
        keys[i] = r->one_key || i < 8 ? "a" : "b";
        times[i] = (double)i;
    }
    if (r->null_key)
        keys[3] = NULL;
    if (r->nan_time)
        times[3] = NAN;
    unsigned char test[10];
    int fold[10];
    char err[256] = "";
    int status =
        r->kfold ? split_kfold(r->method, r->n, r->keyed ? keys : NULL, r->timed ? times : NULL,
                               r->k, 1, fold, err, sizeof(err))
                 : split_holdout(r->method, r->n, r->keyed ? keys : NULL, r->timed ? times : NULL,
                                 r->fraction, 1, test, err, sizeof(err));
    assert_int_equal(status, TB_USAGE);
    assert_string_equal(err, r->message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("parse and name: the three names round-trip, others refused",
                   test_parse_and_name, NULL),
        NAMED_CASE("random holdout: test sizes equal train_test_split's", test_random_holdout_sizes,
                   NULL),
        NAMED_CASE("random holdout: rows equal the documented shuffle in Python",
                   test_random_holdout_matches_reference, NULL),
        NAMED_CASE("random holdout: same seed same rows, another seed others",
                   test_random_holdout_seeds, NULL),
        NAMED_CASE("random kfold: reference folds, KFold's sizes, seeds", test_random_kfold, NULL),
        NAMED_CASE("group holdout: no key on both sides, reference rows, seeds", test_group_holdout,
                   NULL),
        NAMED_CASE("random kfold: 12 folds of one row equal the reference",
                   test_random_kfold_one_row_per_fold, NULL),
        NAMED_CASE("group holdout: keys that reach the target exactly stop there",
                   test_group_holdout_exact_target, NULL),
        NAMED_CASE("group holdout: a key's side does not depend on row order",
                   test_group_holdout_ignores_row_order, NULL),
        NAMED_CASE("group kfold: GroupKFold's sizes, 500 rows, 40 skewed keys, k 5",
                   test_group_kfold_sizes, (void *)&group_skewed_5),
        NAMED_CASE("group kfold: GroupKFold's sizes, 211 rows, 12 skewed keys, k 3",
                   test_group_kfold_sizes, (void *)&group_skewed_3),
        NAMED_CASE("group kfold: GroupKFold's sizes, 60 rows, 4 keys, k 2", test_group_kfold_sizes,
                   (void *)&group_few_keys),
        NAMED_CASE("group kfold: GroupKFold's sizes, 13 keys of 6 rows, k 4",
                   test_group_kfold_sizes, (void *)&group_equal),
        NAMED_CASE("group kfold: seeds move equal keys, sizes stay", test_group_kfold_seeds, NULL),
        NAMED_CASE("time holdout: the latest rows are test, ties as a stable sort",
                   test_time_holdout, NULL),
        NAMED_CASE("time kfold: consecutive blocks in time order", test_time_kfold, NULL),
#define REFUSAL_CASE(i) NAMED_CASE(refusals[i].what, test_refusal, (void *)&refusals[i])
        REFUSAL_CASE(0),
        REFUSAL_CASE(1),
        REFUSAL_CASE(2),
        REFUSAL_CASE(3),
        REFUSAL_CASE(4),
        REFUSAL_CASE(5),
        REFUSAL_CASE(6),
        REFUSAL_CASE(7),
        REFUSAL_CASE(8),
        REFUSAL_CASE(9),
        REFUSAL_CASE(10),
        REFUSAL_CASE(11),
        REFUSAL_CASE(12),
        REFUSAL_CASE(13),
        REFUSAL_CASE(14),
        REFUSAL_CASE(15),
        REFUSAL_CASE(16),
#undef REFUSAL_CASE
    };
    _Static_assert(sizeof(refusals) / sizeof(refusals[0]) == 17, "one case per refusal");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
