/* The grouped table: per-key online-model state, with least-recently-seen order and accounting. */
#include "models/grouped.h"

#include "service/base/mem.h"
#include "service/base/strmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct grouped_table {
    size_t state_len;
    size_t nhot;
    /* Key -> the entry's address (entries never move), which grouped_each and destroy iterate
     * over too. */
    struct strmap *index;
    struct grouped_key *newest, *oldest;
    struct grouped_key *dirty_head, *dirty_tail;
    size_t key_bytes; /* the entries, their keys and hot states */
};

static const void *grouped_key_of(const void *owner, size_t index, size_t *len)
{
    (void)owner;
    const struct grouped_key *k = strmap_address_of_index(index);
    *len = k->key_len;
    return k->key;
}

struct grouped_table *grouped_new(size_t state_len)
{
    struct grouped_table *t = mem_calloc(1, sizeof *t);
    t->state_len = state_len;
    t->index = strmap_new(grouped_key_of, NULL);
    return t;
}

size_t grouped_key_bytes(const struct grouped_table *t, size_t key_len, bool hot)
{
    return sizeof(struct grouped_key) + key_len + (hot ? t->state_len * sizeof(double) : 0);
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
    size_t index = strmap_get(t->index, key, len);
    return index != STRMAP_MISSING ? strmap_address_of_index(index) : NULL;
}

struct grouped_key *grouped_get(struct grouped_table *t, const char *key, size_t len, bool *created)
{
    struct grouped_key *k = grouped_find(t, key, len);
    *created = k == NULL;
    if (k) {
        if (k->state && t->newest != k) {
            grouped_unlink(t, k);
            grouped_link_newest(t, k);
        }
        return k;
    }
    k = mem_calloc(1, sizeof *k + len);
    char *bytes = (char *)(k + 1);
    if (len > 0)
        memcpy(bytes, key, len);
    k->key = bytes;
    k->key_len = len;
    k->partition = -1;
    k->offset = -1;
    k->spill = -1;
    k->state = mem_alloc((t->state_len ? t->state_len : 1) * sizeof(double));
    strmap_put(t->index, k->key, len, strmap_index_of_address(k));
    t->nhot++;
    t->key_bytes += grouped_key_bytes(t, len, true);
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
    t->key_bytes -= t->state_len * sizeof(double);
}

void grouped_warm(struct grouped_table *t, struct grouped_key *k, const double *state)
{
    if (!k->state) {
        k->state = mem_alloc((t->state_len ? t->state_len : 1) * sizeof(double));
        t->nhot++;
        t->key_bytes += t->state_len * sizeof(double);
        grouped_link_newest(t, k);
    }
    memcpy(k->state, state, t->state_len * sizeof(double));
    k->spill = -1;
}

void grouped_drop(struct grouped_table *t, struct grouped_key *k)
{
    size_t removed = strmap_remove(t->index, k->key, k->key_len);
    assert(removed == strmap_index_of_address(k));
    (void)removed;
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
    t->key_bytes -= grouped_key_bytes(t, k->key_len, hot);
    free(k->state);
    free(k);
}

void grouped_each(struct grouped_table *t, void (*fn)(void *opaque, struct grouped_key *k),
                  void *opaque)
{
    size_t cursor = 0;
    for (size_t index; (index = strmap_next(t->index, &cursor)) != STRMAP_MISSING;)
        fn(opaque, strmap_address_of_index(index));
}

size_t grouped_keys(const struct grouped_table *t)
{
    return strmap_count(t->index);
}

size_t grouped_hot(const struct grouped_table *t)
{
    return t->nhot;
}

size_t grouped_bytes(const struct grouped_table *t)
{
    return sizeof *t + strmap_bytes(t->index) + t->key_bytes;
}

size_t grouped_state_len(const struct grouped_table *t)
{
    return t->state_len;
}

void grouped_destroy(struct grouped_table *t)
{
    if (!t)
        return;
    size_t cursor = 0;
    for (size_t index; (index = strmap_next(t->index, &cursor)) != STRMAP_MISSING;) {
        struct grouped_key *k = strmap_address_of_index(index);
        free(k->state);
        free(k);
    }
    strmap_destroy(t->index);
    free(t);
}
