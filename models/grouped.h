/* The grouped table: one entry per record key (per machine) with that key's online-model state,
 * the input position it is valid up to, its prequential metrics, and whether it changed since
 * its last checkpoint. Keys are created on first sight. A key is hot (its state in memory) or
 * cold (its state moved out by the caller, who keeps a number saying where); the table keeps the
 * hot keys in least-recently-seen order so that the caller can move the oldest out when memory
 * runs short, and accounts for the bytes it holds. One thread at a time. */
#ifndef TRIBUTARY_GROUPED_H
#define TRIBUTARY_GROUPED_H

#include "models/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One key's entry. The table owns it; the pointer stays valid until the key is dropped. The
 * caller may write state (when hot), partition, offset, records, the metrics and set dirty
 * through grouped_mark; everything else only through the functions. */
struct grouped_key {
    const char *key; /* key_len bytes, not NUL-terminated */
    size_t key_len;
    int32_t partition; /* input partition the key's records come from; -1 until the first */
    int64_t offset;    /* input offset of the last record learned from; -1 for none */
    int64_t records;   /* records learned from in all */
    struct metrics_running prequential;             /* regression: prediction before learning */
    struct metrics_running_class prequential_class; /* classifiers */
    double *state; /* state_len doubles while hot; NULL while cold */
    int64_t spill; /* while cold: the caller's number for where the state went; -1 while hot */
    bool dirty;    /* changed since the last checkpoint */

    /* The table's bookkeeping. */
    struct grouped_key *newer, *older; /* hot keys, most recently seen first */
    struct grouped_key *next_dirty;
    bool listed_dirty;
};

struct grouped_table;

/* Returns an empty table whose keys hold state_len doubles of state each (never NULL). */
struct grouped_table *grouped_new(size_t state_len);

/* The key's entry, or NULL when the table does not hold it. Does not change the order. */
struct grouped_key *grouped_find(struct grouped_table *table, const char *key, size_t len);

/* The key's entry, created when the table does not hold it (hot, state uninitialised: the caller
 * writes it; partition and offset -1; *created says which), and made the most recently seen. A
 * cold key stays cold (state NULL): the caller brings it back with grouped_warm. */
struct grouped_key *grouped_get(struct grouped_table *table, const char *key, size_t len,
                                bool *created);

/* Marks the key changed since its last checkpoint; it joins the list grouped_take_dirty returns. */
void grouped_mark(struct grouped_table *table, struct grouped_key *k);

/* Hands the dirty keys to the caller, in the order they were marked, as a NULL-terminated list
 * through next_dirty, and empties the table's list; their dirty flags stay set until the caller
 * clears them (when their checkpoint is acknowledged; a key the caller cannot checkpoint it
 * marks again). Returns NULL when no key is dirty. */
struct grouped_key *grouped_take_dirty(struct grouped_table *table);

/* The least recently seen hot key, or NULL when none is hot. */
struct grouped_key *grouped_oldest(struct grouped_table *table);

/* Makes a hot key cold: frees its state and records where the caller put it. */
void grouped_chill(struct grouped_table *table, struct grouped_key *k, int64_t spill);

/* Makes a cold key hot again with state (state_len doubles, copied), most recently seen. */
void grouped_warm(struct grouped_table *table, struct grouped_key *k, const double *state);

/* Removes a key, hot or cold. The pointer is invalid afterwards. A dirty key is dropped too: the
 * caller checkpoints first when it matters. */
void grouped_drop(struct grouped_table *table, struct grouped_key *k);

/* Calls fn for every key (in table order, not seen order); fn must not add or drop keys. */
void grouped_each(struct grouped_table *table, void (*fn)(void *opaque, struct grouped_key *k),
                  void *opaque);

/* Keys held (hot and cold), hot keys, and the bytes the table holds (entries, keys, hot states,
 * its index). The index part grows with the number of keys and does not shrink when keys are
 * dropped. */
size_t grouped_keys(const struct grouped_table *table);
size_t grouped_hot(const struct grouped_table *table);
size_t grouped_bytes(const struct grouped_table *table);

/* Bytes a hot key with key_len bytes of key costs, and a cold one. */
size_t grouped_key_bytes(const struct grouped_table *table, size_t key_len, bool hot);

/* Doubles of state per key. */
size_t grouped_state_len(const struct grouped_table *table);

/* Frees the table and every entry; accepts NULL. */
void grouped_destroy(struct grouped_table *table);

#endif
