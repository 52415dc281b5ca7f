/* Unit tests for models/grouped: keys created on first sight and found again, least recently seen
 * order, cold and hot keys, the dirty list, deletion that keeps every other key findable, byte
 * accounting, and the running classification metrics the keys carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/grouped.h"
#include "models/metrics.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct grouped_key *get(struct grouped_table *t, const char *key, bool *created)
{
    return grouped_get(t, key, strlen(key), created);
}

static void test_created_once_and_found(void **unused)
{
    (void)unused;
    struct grouped_table *t = grouped_new(3);
    bool created;
    struct grouped_key *a = get(t, "engine-1", &created);
    assert_true(created);
    assert_int_equal(a->partition, -1);
    assert_int_equal(a->offset, -1);
    assert_int_equal(a->spill, -1);
    assert_false(a->dirty);
    assert_memory_equal(a->key, "engine-1", 8);
    a->state[0] = 1.5;
    assert_ptr_equal(get(t, "engine-1", &created), a);
    assert_false(created);
    assert_ptr_equal(grouped_find(t, "engine-1", 8), a);
    assert_null(grouped_find(t, "engine-2", 8));
    assert_null(grouped_find(t, "engine-", 7));
    struct grouped_key *empty = grouped_get(t, "", 0, &created);
    assert_true(created);
    assert_ptr_equal(grouped_find(t, NULL, 0), empty);
    assert_int_equal(grouped_keys(t), 2);
    assert_int_equal(grouped_hot(t), 2);
    assert_int_equal(grouped_state_len(t), 3);
    grouped_destroy(t);
}

static void test_oldest_is_least_recently_seen(void **unused)
{
    (void)unused;
    struct grouped_table *t = grouped_new(1);
    bool created;
    struct grouped_key *a = get(t, "a", &created), *b = get(t, "b", &created);
    struct grouped_key *c = get(t, "c", &created);
    assert_ptr_equal(grouped_oldest(t), a);
    get(t, "a", &created);
    assert_ptr_equal(grouped_oldest(t), b);
    grouped_find(t, "b", 1); /* finding is not seeing */
    assert_ptr_equal(grouped_oldest(t), b);
    grouped_chill(t, b, 42);
    assert_ptr_equal(grouped_oldest(t), c);
    grouped_chill(t, c, 43);
    grouped_chill(t, a, 44);
    assert_null(grouped_oldest(t));
    grouped_destroy(t);
}

static void test_cold_keys_keep_their_place(void **unused)
{
    (void)unused;
    struct grouped_table *t = grouped_new(2);
    bool created;
    struct grouped_key *a = get(t, "a", &created);
    a->state[0] = 3;
    a->state[1] = 4;
    a->offset = 17;
    size_t hot_bytes = grouped_bytes(t);
    grouped_chill(t, a, 1234);
    assert_null(a->state);
    assert_int_equal(a->spill, 1234);
    assert_int_equal(grouped_hot(t), 0);
    assert_int_equal(grouped_keys(t), 1);
    assert_int_equal(hot_bytes - grouped_bytes(t), 2 * sizeof(double));
    assert_int_equal(grouped_key_bytes(t, 1, true) - grouped_key_bytes(t, 1, false),
                     2 * sizeof(double));

    assert_ptr_equal(get(t, "a", &created), a); /* still cold: the caller warms it */
    assert_false(created);
    assert_null(a->state);
    double back[2] = {3, 4};
    grouped_warm(t, a, back);
    assert_non_null(a->state);
    assert_int_equal(a->spill, -1);
    assert_true(a->state[0] == 3 && a->state[1] == 4);
    assert_int_equal(a->offset, 17);
    assert_int_equal(grouped_bytes(t), hot_bytes);
    assert_ptr_equal(grouped_oldest(t), a);
    grouped_destroy(t);
}

static void test_dirty_keys_in_marking_order(void **unused)
{
    (void)unused;
    struct grouped_table *t = grouped_new(1);
    bool created;
    struct grouped_key *a = get(t, "a", &created), *b = get(t, "b", &created);
    struct grouped_key *c = get(t, "c", &created);
    assert_null(grouped_take_dirty(t));
    grouped_mark(t, c);
    grouped_mark(t, a);
    grouped_mark(t, c); /* listed once */
    grouped_mark(t, b);
    grouped_drop(t, a); /* a dropped dirty key leaves the list */
    struct grouped_key *list = grouped_take_dirty(t);
    assert_ptr_equal(list, c);
    assert_ptr_equal(list->next_dirty, b);
    assert_null(list->next_dirty->next_dirty);
    assert_true(c->dirty && b->dirty);
    assert_null(grouped_take_dirty(t));
    grouped_mark(t, b); /* a key that could not be checkpointed is marked again */
    assert_ptr_equal(grouped_take_dirty(t), b);
    grouped_mark(t, c);
    grouped_drop(t, c); /* the tail */
    grouped_mark(t, b);
    assert_ptr_equal(grouped_take_dirty(t), b);
    assert_null(b->next_dirty);
    grouped_destroy(t);
}

struct count_each {
    size_t keys;
    double sum;
};

static void count_key(void *opaque, struct grouped_key *k)
{
    struct count_each *c = opaque;
    c->keys++;
    if (k->state)
        c->sum += k->state[0];
}

/* Thousands of keys, dropped in a seeded random order with some cold: after each hundred drops
 * every remaining key is still found, with its own state, and the bytes are what the keys left
 * cost. This is what catches a deletion that breaks probe chains. */
static void test_drop_keeps_every_other_key(void **unused)
{
    (void)unused;
    enum { N = 5000 };
    struct grouped_table *t = grouped_new(4);
    size_t empty_bytes = grouped_bytes(t);
    char(*names)[16] = mem_alloc(N * sizeof *names);
    size_t order[N];
    bool created;
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%zu", i);
        struct grouped_key *k = get(t, names[i], &created);
        assert_true(created);
        k->state[0] = (double)i;
        if (i % 7 == 0)
            grouped_chill(t, k, (int64_t)i);
        order[i] = i;
    }
    size_t grown_bytes = grouped_bytes(t);
    size_t key_bytes = 0;
    for (size_t i = 0; i < N; i++)
        key_bytes += grouped_key_bytes(t, strlen(names[i]), i % 7 != 0);
    size_t index_bytes = grown_bytes - key_bytes;
    assert_true(index_bytes > empty_bytes);

    support_rng_seed(7);
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(support_rng_uniform() * (double)(i + 1));
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    bool *gone = mem_calloc(N, sizeof *gone);
    for (size_t d = 0; d < N; d++) {
        size_t i = order[d];
        struct grouped_key *k = grouped_find(t, names[i], strlen(names[i]));
        assert_non_null(k);
        key_bytes -= grouped_key_bytes(t, k->key_len, k->state != NULL);
        grouped_drop(t, k);
        gone[i] = true;
        if (d % 100 != 99 && d != N - 1)
            continue;
        for (size_t r = 0; r < N; r++) {
            struct grouped_key *left = grouped_find(t, names[r], strlen(names[r]));
            if (gone[r]) {
                assert_null(left);
                continue;
            }
            assert_non_null(left);
            if (r % 7 == 0)
                assert_int_equal(left->spill, (int64_t)r);
            else
                assert_true(left->state[0] == (double)r);
        }
        assert_int_equal(grouped_keys(t), N - d - 1);
        assert_int_equal(grouped_bytes(t), index_bytes + key_bytes);
    }
    struct count_each c = {0};
    grouped_each(t, count_key, &c);
    assert_int_equal(c.keys, 0);
    assert_null(grouped_oldest(t));
    assert_int_equal(grouped_hot(t), 0);
    free(gone);
    free(names);
    grouped_destroy(t);
}

static void test_each_visits_every_key(void **unused)
{
    (void)unused;
    struct grouped_table *t = grouped_new(1);
    bool created;
    for (int i = 1; i <= 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        get(t, name, &created)->state[0] = i;
    }
    grouped_chill(t, grouped_find(t, "k40", 3), 0);
    struct count_each c = {0};
    grouped_each(t, count_key, &c);
    assert_int_equal(c.keys, 40);
    assert_true(c.sum == 39 * 40 / 2);
    grouped_destroy(t);
}

/* The running binary metrics against sums written out here: log-loss of p for a positive label
 * is -log p, of a negative one -log(1 - p), clipped at DBL_EPSILON. */
static void test_running_classification(void **unused)
{
    (void)unused;
    struct metrics_running_class m = {0}, other = {0};
    double loss, accuracy;
    metrics_running_class_get(&m, &loss, &accuracy);
    assert_true(isnan(loss) && isnan(accuracy));
    metrics_running_class_add(&m, 1, 0.8);
    metrics_running_class_add(&m, 0, 0.3);
    metrics_running_class_add(&m, 1, 0.4);
    metrics_running_class_add(&other, 0, 1.0);
    metrics_running_class_merge(&m, &other);
    metrics_running_class_get(&m, &loss, &accuracy);
    double expected = (-log(0.8) - log(0.7) - log(0.4) - log(DBL_EPSILON)) / 4;
    assert_true(fabs(loss - expected) < 1e-12);
    assert_true(accuracy == 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_created_once_and_found),
        cmocka_unit_test(test_oldest_is_least_recently_seen),
        cmocka_unit_test(test_cold_keys_keep_their_place),
        cmocka_unit_test(test_dirty_keys_in_marking_order),
        cmocka_unit_test(test_drop_keeps_every_other_key),
        cmocka_unit_test(test_each_visits_every_key),
        cmocka_unit_test(test_running_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
