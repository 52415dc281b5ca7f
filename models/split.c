/* Train/test and k-fold assignment of rows: random, by group (key), or by time. */
#include "models/split.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Returns a uniform draw from [0, bound), bound >= 1: draws below 2^64 mod bound are rejected, so
 * that the 2^64 - (2^64 mod bound) accepted values cover every residue equally often. */
static uint64_t split_rng_below(uint64_t *rng, uint64_t bound)
{
    uint64_t reject_below = (0 - bound) % bound; /* 2^64 mod bound */
    for (;;) {
        uint64_t r = rng_splitmix64(rng);
        if (r >= reject_below)
            return r % bound;
    }
}

/* Fisher-Yates, from the last item down. */
static void split_shuffle(size_t *items, size_t count, uint64_t *rng)
{
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t)split_rng_below(rng, i);
        size_t swap = items[i - 1];
        items[i - 1] = items[j];
        items[j] = swap;
    }
}

/* Returns 0..count-1 in a new array that the caller frees. */
static size_t *split_identity(size_t count)
{
    size_t *items = mem_alloc((count ? count : 1) * sizeof(*items));
    for (size_t i = 0; i < count; i++)
        items[i] = i;
    return items;
}

/* Where row p of a sequence of n goes when the sequence is cut into k consecutive parts, the
 * first n mod k holding n / k + 1 and the rest n / k: a fold number. */
static void split_deal(const size_t *order, size_t n, size_t k, int *fold)
{
    size_t base = n / k, bigger = n % k, p = 0;
    for (size_t j = 0; j < k; j++) {
        size_t size = base + (j < bigger ? 1 : 0);
        for (size_t end = p + size; p < end; p++)
            fold[order[p]] = (int)j;
    }
}

struct split_keyed_row {
    const char *key;
    size_t row;
};

static int split_keyed_row_compare(const void *a, const void *b)
{
    const struct split_keyed_row *x = a, *y = b;
    int order = strcmp(x->key, y->key);
    if (order != 0)
        return order;
    return (x->row > y->row) - (x->row < y->row);
}

/* Numbers the distinct keys 0..*ngroups-1 in strcmp order, so that the numbering does not depend
 * on the order of the rows. On success returns TB_OK, *group_of_row (n entries) and
 * *rows_of_group (*ngroups entries), both for the caller to free; otherwise TB_USAGE, a message
 * in err and both NULL. */
static int split_number_groups(size_t n, const char *const *keys, size_t **group_of_row,
                               size_t **rows_of_group, size_t *ngroups, char *err, size_t errsz)
{
    int status = TB_OK;
    struct split_keyed_row *sorted = NULL;
    *group_of_row = *rows_of_group = NULL;
    *ngroups = 0;

    if (!keys) {
        status = tb_fail(err, errsz, TB_USAGE, "a group split needs a key for every row");
        goto done;
    }
    sorted = mem_alloc((n ? n : 1) * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        if (!keys[i]) {
            status = tb_fail(err, errsz, TB_USAGE,
                             "a group split needs a key for every row; "
                             "row %zu has none",
                             i);
            goto done;
        }
        sorted[i] = (struct split_keyed_row){keys[i], i};
    }
    qsort(sorted, n, sizeof(*sorted), split_keyed_row_compare);
    *group_of_row = mem_alloc((n ? n : 1) * sizeof(**group_of_row));
    *rows_of_group = mem_calloc(n ? n : 1, sizeof(**rows_of_group));
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i].key, sorted[i - 1].key) != 0)
            (*ngroups)++;
        (*group_of_row)[sorted[i].row] = *ngroups;
        (*rows_of_group)[*ngroups]++;
    }
    if (n > 0)
        (*ngroups)++;

done:
    free(sorted);
    return status;
}

struct split_timed_row {
    double time;
    size_t row;
};

static int split_timed_row_compare(const void *a, const void *b)
{
    const struct split_timed_row *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Returns in *order (for the caller to free) the rows from the earliest time to the latest, rows
 * with equal times in row order; TB_OK, or TB_USAGE with a message and *order NULL. */
static int split_time_order(size_t n, const double *times, size_t **order, char *err, size_t errsz)
{
    int status = TB_OK;
    struct split_timed_row *sorted = NULL;
    *order = NULL;

    if (!times) {
        status = tb_fail(err, errsz, TB_USAGE, "a time split needs a time for every row");
        goto done;
    }
    sorted = mem_alloc((n ? n : 1) * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        if (isnan(times[i])) {
            status = tb_fail(err, errsz, TB_USAGE,
                             "a time split needs a time for every row; row %zu "
                             "has NaN",
                             i);
            goto done;
        }
        sorted[i] = (struct split_timed_row){times[i], i};
    }
    qsort(sorted, n, sizeof(*sorted), split_timed_row_compare);
    *order = mem_alloc((n ? n : 1) * sizeof(**order));
    for (size_t i = 0; i < n; i++)
        (*order)[i] = sorted[i].row;

done:
    free(sorted);
    return status;
}

int split_parse(const char *name, enum split_method *out)
{
    static const enum split_method methods[] = {SPLIT_RANDOM, SPLIT_GROUP, SPLIT_TIME};
    for (size_t i = 0; name && i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(name, split_name(methods[i])) == 0) {
            *out = methods[i];
            return TB_OK;
        }
    }
    return TB_CONFIG;
}

const char *split_name(enum split_method m)
{
    switch (m) {
    case SPLIT_RANDOM:
        return "random";
    case SPLIT_GROUP:
        return "group";
    case SPLIT_TIME:
        return "time";
    }
    return "unknown";
}

/* Moves whole groups to test in a seeded shuffled order until at least target rows are test. */
static int split_holdout_group(size_t n, const char *const *keys, size_t target, uint64_t seed,
                               unsigned char *test, char *err, size_t errsz)
{
    size_t *group_of_row = NULL, *rows_of_group = NULL, *order = NULL, ngroups = 0;
    unsigned char *group_in_test = NULL;
    int status = split_number_groups(n, keys, &group_of_row, &rows_of_group, &ngroups, err, errsz);
    if (status != TB_OK)
        goto done;
    if (ngroups < 2) {
        status = tb_fail(err, errsz, TB_USAGE,
                         "a group split needs at least 2 distinct keys; all %zu rows have one", n);
        goto done;
    }
    order = split_identity(ngroups);
    uint64_t rng = seed; /* a splitmix64 state */
    split_shuffle(order, ngroups, &rng);
    group_in_test = mem_calloc(ngroups, 1);
    size_t test_rows = 0, moved = 0;
    while (test_rows < target) {
        group_in_test[order[moved]] = 1;
        test_rows += rows_of_group[order[moved]];
        moved++;
    }
    if (moved == ngroups) {
        status = tb_fail(err, errsz, TB_USAGE,
                         "the train side would be empty: all %zu keys had to go to test to reach "
                         "%zu of %zu rows",
                         ngroups, target, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        test[i] = group_in_test[group_of_row[i]];

done:
    free(group_in_test);
    free(order);
    free(rows_of_group);
    free(group_of_row);
    return status;
}

int split_holdout(enum split_method m, size_t n, const char *const *keys, const double *times,
                  double test_fraction, uint64_t seed, unsigned char *test, char *err, size_t errsz)
{
    size_t *order = NULL;
    int status = TB_OK;

    if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
        status = tb_fail(err, errsz, TB_USAGE,
                         "test fraction %g is not between 0 and 1 (both "
                         "excluded)",
                         test_fraction);
        goto done;
    }
    if (n == 0) {
        status = tb_fail(err, errsz, TB_USAGE, "no rows to split");
        goto done;
    }
    size_t target = (size_t)ceil(test_fraction * (double)n);
    if (target >= n) {
        status = tb_fail(err, errsz, TB_USAGE,
                         "the train side would be empty: test fraction %g of %zu rows is %zu",
                         test_fraction, n, target);
        goto done;
    }

    switch (m) {
    case SPLIT_RANDOM: {
        order = split_identity(n);
        uint64_t rng = seed; /* a splitmix64 state */
        split_shuffle(order, n, &rng);
        for (size_t p = 0; p < n; p++)
            test[order[p]] = p < target;
        break;
    }
    case SPLIT_GROUP:
        status = split_holdout_group(n, keys, target, seed, test, err, errsz);
        break;
    case SPLIT_TIME:
        status = split_time_order(n, times, &order, err, errsz);
        if (status != TB_OK)
            goto done;
        for (size_t p = 0; p < n; p++)
            test[order[p]] = p >= n - target;
        break;
    default:
        status = tb_fail(err, errsz, TB_USAGE, "unknown split method %d", (int)m);
        break;
    }

done:
    free(order);
    return status;
}

struct split_weighted_group {
    size_t rows;
    size_t position; /* in the seeded shuffle, which breaks ties between equal row counts */
    size_t group;
};

static int split_weighted_group_compare(const void *a, const void *b)
{
    const struct split_weighted_group *x = a, *y = b;
    if (x->rows != y->rows)
        return x->rows > y->rows ? -1 : 1;
    return (x->position > y->position) - (x->position < y->position);
}

/* GroupKFold: the groups, most rows first, each into the lightest fold so far. */
static int split_kfold_group(size_t n, const char *const *keys, int k, uint64_t seed, int *fold,
                             char *err, size_t errsz)
{
    size_t *group_of_row = NULL, *rows_of_group = NULL, *shuffled = NULL, ngroups = 0;
    size_t *fold_rows = NULL;
    struct split_weighted_group *weighted = NULL;
    int *fold_of_group = NULL;
    int status = split_number_groups(n, keys, &group_of_row, &rows_of_group, &ngroups, err, errsz);
    if (status != TB_OK)
        goto done;
    if ((size_t)k > ngroups) {
        status = tb_fail(err, errsz, TB_USAGE, "%d folds are more than the %zu distinct keys", k,
                         ngroups);
        goto done;
    }
    shuffled = split_identity(ngroups);
    uint64_t rng = seed; /* a splitmix64 state */
    split_shuffle(shuffled, ngroups, &rng);
    weighted = mem_alloc(ngroups * sizeof(*weighted));
    for (size_t p = 0; p < ngroups; p++)
        weighted[p] = (struct split_weighted_group){rows_of_group[shuffled[p]], p, shuffled[p]};
    qsort(weighted, ngroups, sizeof(*weighted), split_weighted_group_compare);

    fold_rows = mem_calloc((size_t)k, sizeof(*fold_rows));
    fold_of_group = mem_alloc(ngroups * sizeof(*fold_of_group));
    for (size_t g = 0; g < ngroups; g++) {
        int lightest = 0;
        for (int j = 1; j < k; j++)
            if (fold_rows[j] < fold_rows[lightest])
                lightest = j;
        fold_rows[lightest] += weighted[g].rows;
        fold_of_group[weighted[g].group] = lightest;
    }
    for (size_t i = 0; i < n; i++)
        fold[i] = fold_of_group[group_of_row[i]];

done:
    free(fold_of_group);
    free(fold_rows);
    free(weighted);
    free(shuffled);
    free(rows_of_group);
    free(group_of_row);
    return status;
}

int split_kfold(enum split_method m, size_t n, const char *const *keys, const double *times, int k,
                uint64_t seed, int *fold, char *err, size_t errsz)
{
    size_t *order = NULL;
    int status = TB_OK;

    if (k < 2) {
        status = tb_fail(err, errsz, TB_USAGE, "%d folds: k-fold needs at least 2", k);
        goto done;
    }
    if (m != SPLIT_GROUP && (size_t)k > n) {
        status = tb_fail(err, errsz, TB_USAGE, "%d folds are more than the %zu rows", k, n);
        goto done;
    }

    switch (m) {
    case SPLIT_RANDOM: {
        order = split_identity(n);
        uint64_t rng = seed; /* a splitmix64 state */
        split_shuffle(order, n, &rng);
        split_deal(order, n, (size_t)k, fold);
        break;
    }
    case SPLIT_GROUP:
        status = split_kfold_group(n, keys, k, seed, fold, err, errsz);
        break;
    case SPLIT_TIME:
        status = split_time_order(n, times, &order, err, errsz);
        if (status != TB_OK)
            goto done;
        split_deal(order, n, (size_t)k, fold);
        break;
    default:
        status = tb_fail(err, errsz, TB_USAGE, "unknown split method %d", (int)m);
        break;
    }

done:
    free(order);
    return status;
}
