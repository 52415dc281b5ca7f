/* The grouped table: per-key online-model state, with least-recently-seen order and accounting. */
#include "models/grouped.h"

#include "service/base/hash.h"
#include "service/base/mem.h"

#include <stdlib.h>
#include <string.h>

#define GROUPED_MIN_SLOTS 16

struct grouped_table {
    size_t state_len;
    size_t nkeys, nhot;
    size_t nslots;              /* a power of two; at most half of them are used */
    struct grouped_key **slots; /* open addressing, linear probing; NULL is empty */
    struct grouped_key *newest, *oldest;
    struct grouped_key *dirty_head, *dirty_tail;
    size_t bytes;
};

struct grouped_table *grouped_new(size_t state_len)
{
    struct grouped_table *t = mem_calloc(1, sizeof *t);
    t->state_len = state_len;
    t->nslots = GROUPED_MIN_SLOTS;
    t->slots = mem_calloc(t->nslots, sizeof *t->slots);
    t->bytes = sizeof *t + t->nslots * sizeof *t->slots;
    return t;
}

size_t grouped_key_bytes(const struct grouped_table *t, size_t key_len, bool hot)
{
    return sizeof(struct grouped_key) + key_len + (hot ? t->state_len * sizeof(double) : 0);
}

static size_t grouped_slot(const struct grouped_table *t, uint64_t hash, const char *key,
                           size_t len)
{
    size_t mask = t->nslots - 1, i = hash & mask;
    for (; t->slots[i]; i = (i + 1) & mask) {
        const struct grouped_key *k = t->slots[i];
        if (k->hash == hash && k->key_len == len && (len == 0 || memcmp(k->key, key, len) == 0))
            break;
    }
    return i;
}

static void grouped_grow(struct grouped_table *t)
{
    size_t nslots = t->nslots * 2, mask = nslots - 1;
    struct grouped_key **slots = mem_calloc(nslots, sizeof *slots);
    for (size_t i = 0; i < t->nslots; i++) {
        struct grouped_key *k = t->slots[i];
        if (!k)
            continue;
        size_t j = k->hash & mask;
        while (slots[j])
            j = (j + 1) & mask;
        slots[j] = k;
    }
    free(t->slots);
    t->bytes += (nslots - t->nslots) * sizeof *slots;
    t->slots = slots;
    t->nslots = nslots;
}

/* The hot list: unlink, and link as the newest. */
static void grouped_unlink(struct grouped_table *t, struct grouped_key *k)
{
    if (k->newer)
        k->newer->older = k->older;
    else
        t->newest = k->older;
    if (k->older)
        k->older->newer = k->newer;
    else
        t->oldest = k->newer;
    k->newer = k->older = NULL;
}

static void grouped_link_newest(struct grouped_table *t, struct grouped_key *k)
{
    k->older = t->newest;
    k->newer = NULL;
    if (t->newest)
        t->newest->newer = k;
    t->newest = k;
    if (!t->oldest)
        t->oldest = k;
}

struct grouped_key *grouped_find(struct grouped_table *t, const char *key, size_t len)
{
    return t->slots[grouped_slot(t, hash_bytes(key, len), key, len)];
}

struct grouped_key *grouped_get(struct grouped_table *t, const char *key, size_t len, bool *created)
{
    uint64_t hash = hash_bytes(key, len);
    size_t i = grouped_slot(t, hash, key, len);
    struct grouped_key *k = t->slots[i];
    *created = k == NULL;
    if (k) {
        if (k->state && t->newest != k) {
            grouped_unlink(t, k);
            grouped_link_newest(t, k);
        }
        return k;
    }
    if (2 * (t->nkeys + 1) > t->nslots) {
        grouped_grow(t);
        i = grouped_slot(t, hash, key, len);
    }
    k = mem_calloc(1, sizeof *k + len);
    char *bytes = (char *)(k + 1);
    if (len > 0)
        memcpy(bytes, key, len);
    k->key = bytes;
    k->key_len = len;
    k->hash = hash;
    k->partition = -1;
    k->offset = -1;
    k->spill = -1;
    k->state = mem_alloc((t->state_len ? t->state_len : 1) * sizeof(double));
    t->slots[i] = k;
    t->nkeys++;
    t->nhot++;
    t->bytes += grouped_key_bytes(t, len, true);
    grouped_link_newest(t, k);
    return k;
}

void grouped_mark(struct grouped_table *t, struct grouped_key *k)
{
    k->dirty = true;
    if (k->listed_dirty)
        return;
    k->listed_dirty = true;
    k->next_dirty = NULL;
    if (t->dirty_tail)
        t->dirty_tail->next_dirty = k;
    else
        t->dirty_head = k;
    t->dirty_tail = k;
}

struct grouped_key *grouped_take_dirty(struct grouped_table *t)
{
    struct grouped_key *head = t->dirty_head;
    for (struct grouped_key *k = head; k; k = k->next_dirty)
        k->listed_dirty = false;
    t->dirty_head = t->dirty_tail = NULL;
    return head;
}

struct grouped_key *grouped_oldest(struct grouped_table *t)
{
    return t->oldest;
}

void grouped_chill(struct grouped_table *t, struct grouped_key *k, int64_t spill)
{
    if (!k->state)
        return;
    grouped_unlink(t, k);
    free(k->state);
    k->state = NULL;
    k->spill = spill;
    t->nhot--;
    t->bytes -= t->state_len * sizeof(double);
}

void grouped_warm(struct grouped_table *t, struct grouped_key *k, const double *state)
{
    if (!k->state) {
        k->state = mem_alloc((t->state_len ? t->state_len : 1) * sizeof(double));
        t->nhot++;
        t->bytes += t->state_len * sizeof(double);
        grouped_link_newest(t, k);
    }
    memcpy(k->state, state, t->state_len * sizeof(double));
    k->spill = -1;
}

/* Removes the entry in slot i and shifts the entries after it back, so that every remaining key
 * is still found by probing from its home slot (no tombstones). */
static void grouped_unslot(struct grouped_table *t, size_t i)
{
    size_t mask = t->nslots - 1;
    t->slots[i] = NULL;
    for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = t->slots[j]->hash & mask;
        /* The entry at j may move to the hole at i when its home is not in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        t->slots[i] = t->slots[j];
        t->slots[j] = NULL;
        i = j;
    }
}

void grouped_drop(struct grouped_table *t, struct grouped_key *k)
{
    grouped_unslot(t, grouped_slot(t, k->hash, k->key, k->key_len));
    if (k->listed_dirty) {
        struct grouped_key **p = &t->dirty_head, *prev = NULL;
        while (*p != k) {
            prev = *p;
            p = &(*p)->next_dirty;
        }
        *p = k->next_dirty;
        if (t->dirty_tail == k)
            t->dirty_tail = prev;
    }
    bool hot = k->state != NULL;
    if (hot) {
        grouped_unlink(t, k);
        t->nhot--;
    }
    t->bytes -= grouped_key_bytes(t, k->key_len, hot);
    t->nkeys--;
    free(k->state);
    free(k);
}

void grouped_each(struct grouped_table *t, void (*fn)(void *opaque, struct grouped_key *k),
                  void *opaque)
{
    for (size_t i = 0; i < t->nslots; i++)
        if (t->slots[i])
            fn(opaque, t->slots[i]);
}

size_t grouped_keys(const struct grouped_table *t)
{
    return t->nkeys;
}

size_t grouped_hot(const struct grouped_table *t)
{
    return t->nhot;
}

size_t grouped_bytes(const struct grouped_table *t)
{
    return t->bytes;
}

size_t grouped_state_len(const struct grouped_table *t)
{
    return t->state_len;
}

void grouped_destroy(struct grouped_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nslots; i++) {
        if (t->slots[i]) {
            free(t->slots[i]->state);
            free(t->slots[i]);
        }
    }
    free(t->slots);
    free(t);
}
