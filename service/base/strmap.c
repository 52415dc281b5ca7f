/* The string-to-index table: linear probing over hashes, keys read back from the caller. */
#include "service/base/strmap.h"

#include "service/base/hash.h"
#include "service/base/mem.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* Slots of a new map; a power of two. */
#define STRMAP_MIN_SLOTS 8

/* One slot. Keeping the hash here lets a probe pass other keys without reading the caller's
 * entries, and lets the table grow without hashing any key again. */
struct strmap_slot {
    uint64_t hash;
    size_t entry; /* the caller's index + 1; 0 marks an empty slot, so that calloc empties */
};

struct strmap {
    strmap_key_fn *key_of;
    const void *owner;
    struct strmap_slot *slots;
    size_t nslots; /* a power of two */
    size_t count;  /* slots in use; 2 * count <= nslots, so every probe ends at an empty slot */
};

static bool strmap_is_power_of_two(size_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

struct strmap *strmap_new(strmap_key_fn *key_of, const void *owner)
{
    assert(key_of);
    struct strmap *map = mem_calloc(1, sizeof *map);
    map->key_of = key_of;
    map->owner = owner;
    map->nslots = STRMAP_MIN_SLOTS;
    map->slots = mem_calloc(map->nslots, sizeof *map->slots);
    assert(strmap_is_power_of_two(map->nslots));
    return map;
}

void strmap_destroy(struct strmap *map)
{
    if (!map)
        return;
    free(map->slots);
    free(map);
}

/* Whether the caller's entry index has the key key[0..len). */
static bool strmap_entry_is(const struct strmap *map, size_t index, const void *key, size_t len)
{
    size_t entry_len;
    const void *entry_key = map->key_of(map->owner, index, &entry_len);
    return entry_len == len && (len == 0 || memcmp(entry_key, key, len) == 0);
}

/* Returns the slot that holds the key with this hash and bytes, or the empty slot that ends its
 * probe sequence (where a put would place it). Only reads the map. Inline: a lookup is on every
 * record's path, and a call here cost it one instruction in twenty. */
static inline size_t strmap_probe(const struct strmap *map, uint64_t hash, const void *key,
                                  size_t len)
{
    size_t mask = map->nslots - 1, i = (size_t)hash & mask;
    size_t passed = 0; /* slots in use that the probe went past */
    for (; map->slots[i].entry != 0; i = (i + 1) & mask) {
        const struct strmap_slot *slot = &map->slots[i];
        if (slot->hash == hash) {
            if (strmap_entry_is(map, slot->entry - 1, key, len))
                break;
            /* Two keys with one 64-bit hash are rare; an entry whose key no longer hashes to
             * what its slot says is the caller's bug (an entry moved without a put). */
            size_t other_len;
            const void *other = map->key_of(map->owner, slot->entry - 1, &other_len);
            assert(hash_bytes(other, other_len) == slot->hash);
            (void)other;
        }
        passed++;
        assert(passed <= map->count);
    }
    return i;
}

/* The empty slot where a key with this hash goes, for a key the map does not hold. */
static size_t strmap_free_slot(const struct strmap *map, uint64_t hash)
{
    size_t mask = map->nslots - 1, i = (size_t)hash & mask;
    while (map->slots[i].entry != 0)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the table and places every slot in use again, by the hash it keeps. */
static void strmap_grow(struct strmap *map)
{
    struct strmap_slot *old = map->slots;
    size_t nold = map->nslots, moved = 0;
    map->nslots = 2 * nold;
    map->slots = mem_calloc(map->nslots, sizeof *map->slots);
    assert(strmap_is_power_of_two(map->nslots));
    for (size_t i = 0; i < nold; i++) {
        if (old[i].entry == 0)
            continue;
        map->slots[strmap_free_slot(map, old[i].hash)] = old[i];
        moved++;
    }
    assert(moved == map->count);
    free(old);
}

size_t strmap_get_hashed(const struct strmap *map, uint64_t hash, const void *key, size_t len)
{
    size_t entry = map->slots[strmap_probe(map, hash, key, len)].entry;
    return entry != 0 ? entry - 1 : STRMAP_MISSING;
}

size_t strmap_get(const struct strmap *map, const void *key, size_t len)
{
    return strmap_get_hashed(map, hash_bytes(key, len), key, len);
}

size_t strmap_put(struct strmap *map, const void *key, size_t len, size_t index)
{
    assert(index != STRMAP_MISSING);
    uint64_t hash = hash_bytes(key, len);
    size_t i = strmap_probe(map, hash, key, len);
    if (map->slots[i].entry != 0) {
        size_t before = map->slots[i].entry - 1;
        map->slots[i].entry = index + 1;
        return before;
    }
    if (2 * (map->count + 1) > map->nslots) {
        strmap_grow(map);
        i = strmap_free_slot(map, hash);
    }
    map->slots[i] = (struct strmap_slot){.hash = hash, .entry = index + 1};
    map->count++;
    assert(2 * map->count <= map->nslots);
    return STRMAP_MISSING;
}

size_t strmap_remove(struct strmap *map, const void *key, size_t len)
{
    size_t hole = strmap_probe(map, hash_bytes(key, len), key, len);
    if (map->slots[hole].entry == 0)
        return STRMAP_MISSING;
    size_t index = map->slots[hole].entry - 1;
    assert(map->count > 0);
    map->count--;
    /* The keys after the hole, up to the next empty slot, may have been placed by probing past
     * it. One whose home slot is not cyclically in (hole, j] could no longer be reached from its
     * home across an empty hole, so it moves into the hole, and the hole moves to j. Afterwards
     * every key is again reached from its home without crossing an empty slot. */
    size_t mask = map->nslots - 1;
    for (size_t j = (hole + 1) & mask; map->slots[j].entry != 0; j = (j + 1) & mask) {
        size_t home = (size_t)map->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            map->slots[hole] = map->slots[j];
            hole = j;
        }
    }
    map->slots[hole] = (struct strmap_slot){0};
    return index;
}

size_t strmap_next(const struct strmap *map, size_t *cursor)
{
    for (; *cursor < map->nslots; (*cursor)++)
        if (map->slots[*cursor].entry != 0)
            return map->slots[(*cursor)++].entry - 1;
    return STRMAP_MISSING;
}

size_t strmap_count(const struct strmap *map)
{
    return map->count;
}

size_t strmap_bytes(const struct strmap *map)
{
    return sizeof *map + map->nslots * sizeof *map->slots;
}
