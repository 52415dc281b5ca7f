/* The project's one string-to-index table: maps byte strings to size_t indices that name the
 * caller's entries, which the caller keeps. An index is a position in an array of the caller's;
 * where entries are allocated one by one and never move, it may be the entry's address
 * (strmap_index_of_address), which spares each lookup a dependent load from an array of pointers
 * (about a fifth of the time of a lookup among 100 000 keys, measured on the grouped table); with
 * strmap_next such a caller needs no array at all.
 *
 * Open addressing with linear probing over a power-of-two number of slots, at most half of them
 * used; a slot holds a key's hash and its index, and the key bytes stay in the caller's entry,
 * which the map reads back through a function the caller gives it. Removal shifts the entries
 * after the hole back (no tombstones), so that lookups stay as short after many removals as after
 * none. One thread at a time; readers may share a map that no one writes. */
#ifndef TRIBUTARY_STRMAP_H
#define TRIBUTARY_STRMAP_H

#include <stddef.h>
#include <stdint.h>

/* What strmap_get, strmap_put and strmap_remove return for a key the map does not hold. It is
 * never an index: strmap_put refuses it (asserted). */
#define STRMAP_MISSING SIZE_MAX

/* Returns the key of the caller's entry that index names, key_len bytes, and stores key_len in
 * *len; owner is what the caller gave strmap_new. The map calls it only for indices it holds (put
 * and not yet removed), to compare a key whose hash matches, so it must answer for every such
 * index whenever the map is used: a caller that moves an entry in its array gives it its new
 * index with strmap_put before the old place is reused. */
typedef const void *strmap_key_fn(const void *owner, size_t index, size_t *len);

struct strmap;

/* The index that names an entry by its address, and the address an index names: for callers
 * whose entries are allocated one by one and never move. */
static inline size_t strmap_index_of_address(const void *entry)
{
    return (size_t)(uintptr_t)entry;
}

static inline void *strmap_address_of_index(size_t index)
{
    return (void *)(uintptr_t)index;
}

/* Returns an empty map that reads keys with key_of(owner, index, &len) (never NULL; free it
 * with strmap_destroy). owner is not owned by the map. */
struct strmap *strmap_new(strmap_key_fn *key_of, const void *owner);

/* Returns the index of key[0..len), or STRMAP_MISSING when the map does not hold it. Keys are
 * compared byte for byte: they may hold NUL bytes, and the empty key (key may then be NULL) is a
 * key like any other. Only reads the map. */
size_t strmap_get(const struct strmap *map, const void *key, size_t len);

/* strmap_get for a caller that has hashed the key already: hash must be hash_bytes(key, len)
 * (service/base/hash.h), e.g. to look one key up in two maps for the price of one hash. */
size_t strmap_get_hashed(const struct strmap *map, uint64_t hash, const void *key, size_t len);

/* Maps key[0..len) to index (which must not be STRMAP_MISSING), replacing the index the map
 * held for it. Returns that earlier index, or STRMAP_MISSING when the key is new. May grow the
 * table; never fails (memory as service/base/mem.h). key is only read during the call: the map
 * keeps no pointer to it. */
size_t strmap_put(struct strmap *map, const void *key, size_t len, size_t index);

/* Removes key[0..len) and returns the index it had, or STRMAP_MISSING (the map unchanged) when
 * the map does not hold it. The table keeps its size, so strmap_bytes does not drop. */
size_t strmap_remove(struct strmap *map, const void *key, size_t len);

/* Iterates over the indices the map holds, in no particular order: set *cursor to 0, then each
 * call returns the next index and advances *cursor, until it returns STRMAP_MISSING. The map must
 * not change during an iteration; the caller may free the entries it visits (to destroy them
 * all: the iteration reads no key). */
size_t strmap_next(const struct strmap *map, size_t *cursor);

/* The number of keys held. */
size_t strmap_count(const struct strmap *map);

/* The bytes the map has allocated (its struct and its slots, not the caller's keys), for memory
 * accounting: 16 bytes a slot on 64-bit machines, 2 to 4 slots a key. Grows when the table
 * doubles, which happens when a put would fill more than half of it; never shrinks. */
size_t strmap_bytes(const struct strmap *map);

/* Frees the map (not the caller's entries); accepts NULL. */
void strmap_destroy(struct strmap *map);

#endif
