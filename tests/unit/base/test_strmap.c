/* Unit tests for service/base/strmap: every answer checked against a plain array searched
 * linearly, through seeded random puts, removes and lookups of short, binary, empty and long keys;
 * removal inside probe chains (one that wraps around the table's end); replacing an index; the
 * count and the iteration; and the bytes, which grow only by doubling the table when it would
 * pass half full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/base/hash.h"
#include "service/base/mem.h"
#include "service/base/rng.h"
#include "service/base/strmap.h"
#include "tests/support/support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One key of the pool a case draws from; the bytes are not NUL-terminated. */
struct key {
    unsigned char *bytes;
    size_t len;
};

/* The caller the map serves: its entries by index, moved down by swap-with-last on removal, as
 * the project's callers do. The plain array is also the reference: key k is at index i exactly
 * when entries[i] holds k. */
struct owner {
    const struct key **entries;
    size_t n, cap;
};

static const void *owner_key_of(const void *opaque, size_t index, size_t *len)
{
    const struct owner *o = opaque;
    /* The map must ask only about the indices it holds, which are those the owner has. */
    assert_true(index < o->n);
    *len = o->entries[index]->len;
    return o->entries[index]->bytes;
}

static bool same_key(const struct key *a, const struct key *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
}

/* The reference: the index of k by linear search, or STRMAP_MISSING. */
static size_t owner_find(const struct owner *o, const struct key *k)
{
    for (size_t i = 0; i < o->n; i++)
        if (same_key(o->entries[i], k))
            return i;
    return STRMAP_MISSING;
}

/* Watches strmap_bytes through puts: it may change only when a new key makes the count pass
 * half of a power-of-two table, i.e. when the count less one is a power of two, and then the
 * table doubles, so each increase is twice the one before, and the next increase comes when
 * the count passes half of the doubled table. */
struct growth {
    size_t bytes;
    size_t step;       /* the last increase; 0 before the first */
    size_t next_count; /* the count at which the next increase must come; 0 before the first */
    size_t grows;
};

static bool is_power_of_two(size_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

static void growth_start(struct growth *g, const struct strmap *map)
{
    *g = (struct growth){.bytes = strmap_bytes(map)};
    assert_true(g->bytes > 0);
}

/* Checks the bytes after an operation; added says whether it added a key. */
static void growth_check(struct growth *g, const struct strmap *map, bool added)
{
    size_t bytes = strmap_bytes(map), count = strmap_count(map);
    if (bytes == g->bytes) {
        if (added && g->next_count != 0 && count == g->next_count)
            fail_msg("%zu keys fill more than half the table, yet it did not grow", count);
        return;
    }
    if (!added)
        fail_msg("bytes went from %zu to %zu without a new key", g->bytes, bytes);
    if (bytes < g->bytes || !is_power_of_two(count - 1))
        fail_msg("bytes went from %zu to %zu at the put of key %zu (want growth only after a "
                 "power of two)",
                 g->bytes, bytes, count);
    if (g->next_count != 0 && count != g->next_count)
        fail_msg("the table grew at %zu keys, want at %zu", count, g->next_count);
    size_t step = bytes - g->bytes;
    if (g->step != 0 && step != 2 * g->step)
        fail_msg("the table grew by %zu bytes after %zu the time before (want doubling)", step,
                 g->step);
    g->step = step;
    g->next_count = 2 * (count - 1) + 1;
    g->bytes = bytes;
    g->grows++;
}

/* Adds k (not held) at the end of the owner's entries and to the map. */
static void add_key(struct owner *o, struct strmap *map, struct growth *g, const struct key *k)
{
    mem_grow((void **)&o->entries, &o->cap, o->n + 1, sizeof *o->entries);
    o->entries[o->n++] = k;
    assert_int_equal(strmap_put(map, k->bytes, k->len, o->n - 1), STRMAP_MISSING);
    growth_check(g, map, true);
}

/* Removes k from the map and from the owner (the last entry moves into its place); returns the
 * index the map gave, checked against the reference. */
static size_t remove_key(struct owner *o, struct strmap *map, struct growth *g, const struct key *k)
{
    size_t want = owner_find(o, k), got = strmap_remove(map, k->bytes, k->len);
    assert_int_equal(got, want);
    if (got != STRMAP_MISSING) {
        size_t last = o->n - 1;
        if (got != last) {
            const struct key *moved = o->entries[last];
            assert_int_equal(strmap_put(map, moved->bytes, moved->len, got), last);
            o->entries[got] = moved;
        }
        o->n--;
    }
    growth_check(g, map, false);
    return got;
}

/* Every key of the pool is found at the reference's index or is missing, the count is the
 * reference's, and an iteration visits each index the reference has once. */
static void check_all(const struct owner *o, const struct strmap *map, const struct key *pool,
                      size_t npool)
{
    assert_int_equal(strmap_count(map), o->n);
    bool *seen = mem_calloc(o->n ? o->n : 1, sizeof *seen);
    size_t cursor = 0, visited = 0;
    for (size_t index; (index = strmap_next(map, &cursor)) != STRMAP_MISSING; visited++) {
        if (index >= o->n || seen[index])
            fail_msg("the iteration gave index %zu (of %zu) twice or out of range", index, o->n);
        seen[index] = true;
    }
    assert_int_equal(visited, o->n);
    assert_int_equal(strmap_next(map, &cursor), STRMAP_MISSING); /* and stays at the end */
    free(seen);
    for (size_t p = 0; p < npool; p++) {
        size_t want = owner_find(o, &pool[p]);
        size_t got = strmap_get(map, pool[p].bytes, pool[p].len);
        if (got != want)
            fail_msg("pool key %zu (%zu bytes): map says %zu, reference %zu", p, pool[p].len, got,
                     want);
        assert_int_equal(strmap_get_hashed(map, hash_bytes(pool[p].bytes, pool[p].len),
                                           pool[p].bytes, pool[p].len),
                         want);
    }
}

static void owner_free(struct owner *o)
{
    free(o->entries);
}

static void pool_free(struct key *pool, size_t npool)
{
    for (size_t p = 0; p < npool; p++)
        free(pool[p].bytes);
    free(pool);
}

/* --- random operations against the reference ------------------------------------------------ */

/* A random case: a pool of distinct keys, then ops random operations on pool keys. */
struct random_case {
    uint64_t seed;
    size_t npool;
    size_t prefix_len;       /* every key starts with this many bytes 'p' */
    size_t min_len, max_len; /* then has a tail of a length uniform in [min_len, max_len] */
    unsigned alphabet;       /* of tail bytes 0 .. alphabet-1 (0 is NUL) */
    size_t ops;
    size_t check_every; /* a full check of the pool after this many operations */
};

static size_t uniform_below(struct rng *r, size_t n)
{
    return (size_t)(rng_next(r) % n);
}

/* A pool of npool distinct keys (a short alphabet repeats keys, which are drawn again). */
static struct key *make_pool(struct rng *r, const struct random_case *c)
{
    struct key *pool = mem_calloc(c->npool, sizeof *pool);
    for (size_t p = 0; p < c->npool;) {
        struct key *k = &pool[p];
        k->len = c->prefix_len + c->min_len + uniform_below(r, c->max_len - c->min_len + 1);
        k->bytes = mem_alloc(k->len);
        memset(k->bytes, 'p', c->prefix_len);
        for (size_t b = c->prefix_len; b < k->len; b++)
            k->bytes[b] = (unsigned char)uniform_below(r, c->alphabet);
        bool repeated = false;
        for (size_t q = 0; q < p && !repeated; q++)
            repeated = same_key(&pool[q], k);
        if (repeated)
            free(k->bytes);
        else
            p++;
    }
    return pool;
}

static void test_random_against_reference(void **state)
{
    const struct random_case *c = *state;
    struct rng r;
    rng_seed(&r, c->seed);
    struct key *pool = make_pool(&r, c);
    struct owner o = {0};
    struct strmap *map = strmap_new(owner_key_of, &o);
    struct growth g;
    growth_start(&g, map);
    size_t puts = 0, removes = 0, hits = 0, max_held = 0;
    for (size_t op = 0; op < c->ops; op++) {
        const struct key *k = &pool[uniform_below(&r, c->npool)];
        size_t held = owner_find(&o, k), roll = uniform_below(&r, 100);
        if (roll < 50) {
            if (held == STRMAP_MISSING) {
                add_key(&o, map, &g, k);
                puts++;
            } else {
                /* A put of a held key with the index it has changes nothing. */
                assert_int_equal(strmap_put(map, k->bytes, k->len, held), held);
                growth_check(&g, map, false);
            }
        } else if (roll < 80) {
            removes += remove_key(&o, map, &g, k) != STRMAP_MISSING;
        } else {
            size_t got = strmap_get(map, k->bytes, k->len);
            assert_int_equal(got, held);
            hits += got != STRMAP_MISSING;
        }
        assert_int_equal(strmap_count(map), o.n);
        max_held = o.n > max_held ? o.n : max_held;
        if (op % c->check_every == c->check_every - 1)
            check_all(&o, map, pool, c->npool);
    }
    check_all(&o, map, pool, c->npool);
    /* The case did what it is for: keys came and went, lookups hit, and the table grew. */
    assert_true(puts > 0 && removes > 0 && hits > 0);
    assert_true(g.grows > 0);
    assert_true(max_held > c->npool / 2);
    /* Removing every key leaves an empty map of the same size. */
    size_t bytes = strmap_bytes(map);
    while (o.n > 0)
        remove_key(&o, map, &g, o.entries[uniform_below(&r, o.n)]);
    check_all(&o, map, pool, c->npool);
    assert_int_equal(strmap_count(map), 0);
    assert_int_equal(strmap_bytes(map), bytes);
    strmap_destroy(map);
    owner_free(&o);
    pool_free(pool, c->npool);
}

static const struct random_case random_cases[] = {
    /* Every key of up to 3 bytes of 2 values (the empty key too), much coming and going. */
    {.seed = 1,
     .npool = 15,
     .min_len = 0,
     .max_len = 3,
     .alphabet = 2,
     .ops = 4000,
     .check_every = 1},
    /* Binary keys: NUL bytes anywhere, keys that are prefixes of others. */
    {.seed = 2,
     .npool = 400,
     .min_len = 0,
     .max_len = 6,
     .alphabet = 3,
     .ops = 20000,
     .check_every = 97},
    {.seed = 3,
     .npool = 3000,
     .min_len = 1,
     .max_len = 24,
     .alphabet = 256,
     .ops = 60000,
     .check_every = 4999},
    /* Long keys that differ only in their last few bytes, or in length. */
    {.seed = 4,
     .npool = 30,
     .prefix_len = 20000,
     .min_len = 0,
     .max_len = 3,
     .alphabet = 3,
     .ops = 3000,
     .check_every = 211},
};

/* --- fixed cases -------------------------------------------------------------------------- */

/* Keys that differ only after a NUL byte, or by trailing NULs, and the empty key: all distinct,
 * so a comparison that stops at a NUL (strcmp) conflates them. */
static void test_nul_bytes_and_empty_key(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } raw[] = {{"", 0},     {"\0", 1},   {"\0\0", 2},   {"a", 1},   {"a\0", 2},
               {"a\0b", 3}, {"a\0c", 3}, {"a\0b\0", 4}, {"\0a", 2}, {"b", 1}};
    enum { N = sizeof raw / sizeof raw[0] };
    struct key keys[N];
    struct owner o = {0};
    struct strmap *map = strmap_new(owner_key_of, &o);
    struct growth g;
    growth_start(&g, map);
    assert_int_equal(strmap_get(map, NULL, 0), STRMAP_MISSING);
    for (size_t i = 0; i < N; i++) {
        keys[i] = (struct key){.bytes = (unsigned char *)raw[i].bytes, .len = raw[i].len};
        add_key(&o, map, &g, &keys[i]);
    }
    check_all(&o, map, keys, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(strmap_get(map, raw[i].bytes, raw[i].len), i);
    /* The empty key may be given as NULL. */
    assert_int_equal(strmap_get(map, NULL, 0), 0);
    assert_int_equal(strmap_get_hashed(map, hash_bytes(NULL, 0), NULL, 0), 0);
    /* Removing "a\0b" leaves "a\0c" and "a\0b\0" alone. */
    assert_int_equal(remove_key(&o, map, &g, &keys[5]), 5);
    assert_int_equal(strmap_get(map, "a\0b", 3), STRMAP_MISSING);
    check_all(&o, map, keys, N);
    assert_int_equal(remove_key(&o, map, &g, &keys[0]), 0);
    assert_int_equal(strmap_get(map, NULL, 0), STRMAP_MISSING);
    check_all(&o, map, keys, N);
    assert_int_equal(strmap_count(map), N - 2);
    strmap_destroy(map);
    owner_free(&o);
}

/* Candidate keys "chain-N" whose hash has the given low ten bits: they share a home slot in
 * every table of up to 1024 slots. */
static void chain_keys(unsigned low_bits, size_t n, char names[][24], struct key *keys)
{
    size_t found = 0;
    for (unsigned i = 0; found < n; i++) {
        int len = snprintf(names[found], 24, "chain-%u", i);
        if ((hash_bytes(names[found], (size_t)len) & 1023u) != low_bits)
            continue;
        keys[found] = (struct key){.bytes = (unsigned char *)names[found], .len = (size_t)len};
        found++;
    }
}

/* A probe chain that wraps around the end of the table: three keys whose home is the last slot
 * (in the last slot, then slots 0 and 1) and two whose home is slot 0 (pushed to slots 2 and 3).
 * Removing any of them must shift the rest back so that each is still found; a shift that
 * compares slot numbers without wrapping, or that moves a key before its home, loses some. */
static void test_remove_in_wrapping_chain(void **state)
{
    (void)state;
    enum { LAST = 3, FIRST = 2, N = LAST + FIRST };
    char names[N][24];
    struct key keys[N];
    chain_keys(1023u, LAST, names, keys);
    chain_keys(0u, FIRST, names + LAST, keys + LAST);
    for (size_t first = 0; first < N; first++) {
        for (size_t second = 0; second < N; second++) {
            if (second == first)
                continue;
            struct owner o = {0};
            struct strmap *map = strmap_new(owner_key_of, &o);
            struct growth g;
            growth_start(&g, map);
            for (size_t i = 0; i < N; i++)
                add_key(&o, map, &g, &keys[i]);
            check_all(&o, map, keys, N);
            assert_int_not_equal(remove_key(&o, map, &g, &keys[first]), STRMAP_MISSING);
            check_all(&o, map, keys, N);
            assert_int_not_equal(remove_key(&o, map, &g, &keys[second]), STRMAP_MISSING);
            check_all(&o, map, keys, N);
            /* Put back, they are found again, at the end of the owner's entries. */
            add_key(&o, map, &g, &keys[first]);
            add_key(&o, map, &g, &keys[second]);
            check_all(&o, map, keys, N);
            assert_int_equal(strmap_get(map, keys[second].bytes, keys[second].len), N - 1);
            strmap_destroy(map);
            owner_free(&o);
        }
    }
}

/* Many keys of one home slot and others between them, removed in a seeded random order, with
 * every key checked after each removal: long chains, interleaved. */
static void test_remove_in_long_chains(void **state)
{
    (void)state;
    enum { PER_HOME = 12, HOMES = 4, N = PER_HOME * HOMES };
    static const unsigned homes[HOMES] = {1023u, 0u, 1u, 5u};
    char names[N][24];
    struct key keys[N];
    for (size_t h = 0; h < HOMES; h++)
        chain_keys(homes[h], PER_HOME, names + h * PER_HOME, keys + h * PER_HOME);
    struct rng r;
    rng_seed(&r, 11);
    for (int round = 0; round < 20; round++) {
        struct owner o = {0};
        struct strmap *map = strmap_new(owner_key_of, &o);
        struct growth g;
        growth_start(&g, map);
        for (size_t i = 0; i < N; i++)
            add_key(&o, map, &g, &keys[(i * 7 + (size_t)round) % N]);
        check_all(&o, map, keys, N);
        while (o.n > 0) {
            remove_key(&o, map, &g, o.entries[uniform_below(&r, o.n)]);
            check_all(&o, map, keys, N);
        }
        strmap_destroy(map);
        owner_free(&o);
    }
}

/* A put of a held key replaces its index and returns the one before; a remove of a key the map
 * does not hold changes nothing. */
static void test_put_replaces_remove_missing(void **state)
{
    (void)state;
    struct key a = {(unsigned char *)"alpha", 5}, b = {(unsigned char *)"beta", 4};
    struct key a_again = {(unsigned char *)"alpha", 5};
    const struct key *entries[] = {&a, &b, &a_again};
    struct owner o = {.entries = entries, .n = 3};
    struct strmap *map = strmap_new(owner_key_of, &o);
    assert_int_equal(strmap_put(map, "alpha", 5, 0), STRMAP_MISSING);
    assert_int_equal(strmap_put(map, "beta", 4, 1), STRMAP_MISSING);
    size_t bytes = strmap_bytes(map);
    assert_int_equal(strmap_put(map, "alpha", 5, 2), 0);
    assert_int_equal(strmap_get(map, "alpha", 5), 2);
    assert_int_equal(strmap_count(map), 2);
    assert_int_equal(strmap_remove(map, "alph", 4), STRMAP_MISSING);
    assert_int_equal(strmap_remove(map, "alpha!", 6), STRMAP_MISSING);
    assert_int_equal(strmap_remove(map, "", 0), STRMAP_MISSING);
    assert_int_equal(strmap_count(map), 2);
    assert_int_equal(strmap_bytes(map), bytes);
    assert_int_equal(strmap_remove(map, "alpha", 5), 2);
    assert_int_equal(strmap_remove(map, "alpha", 5), STRMAP_MISSING);
    assert_int_equal(strmap_get(map, "beta", 4), 1);
    assert_int_equal(strmap_count(map), 1);
    strmap_destroy(map);
    strmap_destroy(NULL);
}

/* Growth from empty to 100 000 keys: every key is found with its index after each doubling,
 * the bytes double with the table, and no doubling happens early or late (growth_check). */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct key *keys = mem_calloc(N, sizeof *keys);
    char(*names)[16] = mem_alloc(N * sizeof *names);
    struct owner o = {0};
    struct strmap *map = strmap_new(owner_key_of, &o);
    struct growth g;
    growth_start(&g, map);
    size_t empty = g.bytes, grows = 0;
    for (size_t i = 0; i < N; i++) {
        keys[i].len = (size_t)snprintf(names[i], sizeof names[i], "m-%zu", i);
        keys[i].bytes = (unsigned char *)names[i];
        add_key(&o, map, &g, &keys[i]);
        if (g.grows == grows)
            continue;
        grows = g.grows;
        for (size_t k = 0; k <= i; k++)
            assert_int_equal(strmap_get(map, keys[k].bytes, keys[k].len), k);
    }
    assert_int_equal(strmap_count(map), N);
    /* 100 000 keys at most half of a power of two need 2^18 slots, which cost an index each at
     * least: the bytes say so. */
    assert_true(g.grows > 0);
    assert_true(strmap_bytes(map) >= ((size_t)1 << 18) * sizeof(size_t));
    assert_true(strmap_bytes(map) > empty);
    strmap_destroy(map);
    owner_free(&o);
    free(names);
    free(keys);
}

/* An entry allocated on its own, named by its address. */
struct named {
    size_t len;
    char key[16];
};

static const void *named_key_of(const void *owner, size_t index, size_t *len)
{
    (void)owner;
    const struct named *n = strmap_address_of_index(index);
    *len = n->len;
    return n->key;
}

/* Entries named by their addresses, as callers whose entries never move do: found by key, each
 * visited once by the iteration (which is all such a caller has to free them), and gone once
 * removed. */
static void test_addresses_as_indices(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct named *entries[N];
    struct strmap *map = strmap_new(named_key_of, NULL);
    for (size_t i = 0; i < N; i++) {
        entries[i] = mem_calloc(1, sizeof *entries[i]);
        entries[i]->len = (size_t)snprintf(entries[i]->key, sizeof entries[i]->key, "n%zu", i);
        assert_int_equal(
            strmap_put(map, entries[i]->key, entries[i]->len, strmap_index_of_address(entries[i])),
            STRMAP_MISSING);
    }
    for (size_t i = 0; i < N; i += 2) {
        size_t index = strmap_remove(map, entries[i]->key, entries[i]->len);
        assert_ptr_equal(strmap_address_of_index(index), entries[i]);
        free(entries[i]);
        entries[i] = NULL;
    }
    char key[16];
    for (size_t i = 0; i < N; i++) {
        size_t len = (size_t)snprintf(key, sizeof key, "n%zu", i);
        size_t index = strmap_get(map, key, len);
        if (i % 2 == 0)
            assert_int_equal(index, STRMAP_MISSING);
        else
            assert_ptr_equal(strmap_address_of_index(index), entries[i]);
    }
    size_t cursor = 0, visited = 0;
    for (size_t index; (index = strmap_next(map, &cursor)) != STRMAP_MISSING; visited++) {
        struct named *n = strmap_address_of_index(index);
        size_t i = (size_t)strtoul(n->key + 1, NULL, 10);
        assert_ptr_equal(entries[i], n);
        entries[i] = NULL; /* a second visit would fail the line above */
        free(n);
    }
    assert_int_equal(visited, N / 2);
    strmap_destroy(map);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("random: every key of up to 3 bytes of 2 values", test_random_against_reference,
                   (void *)&random_cases[0]),
        NAMED_CASE("random: binary keys of up to 6 bytes of 3 values (NULs, prefixes)",
                   test_random_against_reference, (void *)&random_cases[1]),
        NAMED_CASE("random: 3000 binary keys of 1 to 24 bytes", test_random_against_reference,
                   (void *)&random_cases[2]),
        NAMED_CASE("random: keys of 20000 bytes alike but for the last 0 to 3",
                   test_random_against_reference, (void *)&random_cases[3]),
        NAMED_CASE("NUL bytes and the empty key", test_nul_bytes_and_empty_key, NULL),
        NAMED_CASE("removal in a chain that wraps around the table's end",
                   test_remove_in_wrapping_chain, NULL),
        NAMED_CASE("removal in long interleaved chains", test_remove_in_long_chains, NULL),
        NAMED_CASE("put replaces an index, remove of a missing key",
                   test_put_replaces_remove_missing, NULL),
        NAMED_CASE("growth to 100000 keys", test_growth, NULL),
        NAMED_CASE("addresses as indices", test_addresses_as_indices, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
