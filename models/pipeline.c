/* Featurizers: fitting and applying the impute, per-key window, one-hot and scale stages. */
#include "models/pipeline.h"

#include "service/base/error.h"
#include "service/base/hash.h"
#include "service/base/mem.h"
#include "service/base/strmap.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statistics computed per window column; count is once per row. */
#define PIPELINE_STAT_PER_COLUMN (PIPELINE_STAT_ALL & ~(unsigned)PIPELINE_STAT_COUNT)

static const char *const pipeline_stat_names[] = {"mean",  "std",  "min",  "max",
                                                  "slope", "last", "count"};
#define PIPELINE_NSTATS (sizeof(pipeline_stat_names) / sizeof(pipeline_stat_names[0]))

struct pipeline {
    struct pipeline_spec spec; /* deep copy; arrays of length 0 are NULL */
    size_t ninputs;
    size_t nfeatures;
    size_t onehot_start;   /* first one-hot feature; equals spec.nscaled */
    size_t **category_len; /* [j][k]: strlen of category k of categorical input j */
    char **feature_names;  /* nfeatures */
};

/* One key's history: the raw numeric inputs of its last `window` records. Allocated as one
 * block: the struct, then ring (nnumeric x window doubles, column-major: input j of the record
 * in slot s is ring[j * window + s]), then the key bytes. */
struct pipeline_history {
    size_t key_len;
    size_t count; /* records in the ring, at most window */
    size_t next;  /* slot the next record goes to: count until the ring is full, then the oldest */
    double ring[];
};

struct pipeline_state {
    size_t nnumeric;
    char **numeric; /* copies of the numeric input names, for pipeline_state_fits */
    size_t window;
    struct strmap *index; /* key -> its history's address (histories never move) */
    double *scratch;      /* window doubles: one column's window, oldest first */
    size_t bytes;         /* everything the state allocated but the index */
};

/* --- small helpers ---------------------------------------------------------------------------- */

static char *format_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_name(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert(len >= 0);
    char *name = mem_alloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(name, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return name;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a string that occurs more than once among a[0..na) and b[0..nb), or NULL. */
static const char *find_duplicate(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na + nb < 2)
        return NULL;
    const char **all = mem_alloc((na + nb) * sizeof(*all));
    for (size_t i = 0; i < na; i++)
        all[i] = a[i];
    for (size_t i = 0; i < nb; i++)
        all[na + i] = b[i];
    qsort(all, na + nb, sizeof(*all), compare_strings);
    const char *duplicate = NULL;
    for (size_t i = 1; i < na + nb && !duplicate; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            duplicate = all[i];
    free(all);
    return duplicate;
}

/* Checks that the input names are present, non-empty and unique; TB_CONFIG otherwise. */
static int check_input_names(const char *const *numeric, size_t nnumeric,
                             const char *const *categorical, size_t ncategorical, char *err,
                             size_t errsz)
{
    if (nnumeric > 0 && !numeric)
        return tb_fail(err, errsz, TB_CONFIG, "%zu numeric inputs but no names", nnumeric);
    if (ncategorical > 0 && !categorical)
        return tb_fail(err, errsz, TB_CONFIG, "%zu categorical inputs but no names", ncategorical);
    for (size_t j = 0; j < nnumeric; j++)
        if (!numeric[j] || !numeric[j][0])
            return tb_fail(err, errsz, TB_CONFIG, "numeric input %zu has no name", j);
    for (size_t j = 0; j < ncategorical; j++)
        if (!categorical[j] || !categorical[j][0])
            return tb_fail(err, errsz, TB_CONFIG, "categorical input %zu has no name", j);
    const char *duplicate = find_duplicate(numeric, nnumeric, categorical, ncategorical);
    if (duplicate)
        return tb_fail(err, errsz, TB_CONFIG, "input name '%s' is used twice", duplicate);
    return TB_OK;
}

static size_t count_bits(unsigned mask)
{
    size_t n = 0;
    for (; mask; mask &= mask - 1)
        n++;
    return n;
}

/* Columns before the one-hot ones: numeric inputs, indicators, window columns. */
static size_t spec_nscaled(const struct pipeline_spec *s)
{
    size_t n = s->nnumeric;
    for (size_t j = 0; j < s->nnumeric; j++)
        n += s->indicator[j] ? 1 : 0;
    if (s->window > 0)
        n += s->nwindow_columns * count_bits(s->window_stats & PIPELINE_STAT_PER_COLUMN) +
             ((s->window_stats & PIPELINE_STAT_COUNT) ? 1 : 0);
    return n;
}

/* Orders byte strings as memcmp over the common prefix, then the shorter first; for strings
 * without NUL bytes this is strcmp's order. */
static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t common = alen < blen ? alen : blen;
    int c = common ? memcmp(a, b, common) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* --- the spec --------------------------------------------------------------------------------- */

/* Checks everything about a spec that does not need its feature names. */
static int spec_check(const struct pipeline_spec *s, char *err, size_t errsz)
{
    if (!s)
        return tb_fail(err, errsz, TB_USAGE, "no pipeline spec");
    int rc = check_input_names((const char *const *)s->numeric, s->nnumeric,
                               (const char *const *)s->categorical, s->ncategorical, err, errsz);
    if (rc != TB_OK)
        return rc;

    if (s->ncategorical > 0 && (!s->ncategories || !s->categories))
        return tb_fail(err, errsz, TB_CONFIG, "%zu categorical inputs but no categories",
                       s->ncategorical);
    for (size_t j = 0; j < s->ncategorical; j++) {
        const char *name = s->categorical[j];
        if (s->ncategories[j] > 0 && !s->categories[j])
            return tb_fail(err, errsz, TB_CONFIG, "categorical input '%s': %zu categories missing",
                           name, s->ncategories[j]);
        for (size_t k = 0; k < s->ncategories[j]; k++) {
            const char *category = s->categories[j][k];
            if (!category)
                return tb_fail(err, errsz, TB_CONFIG,
                               "categorical input '%s': category %zu is NULL", name, k);
            if (k > 0 && strcmp(s->categories[j][k - 1], category) >= 0)
                return tb_fail(err, errsz, TB_CONFIG,
                               "categorical input '%s': categories not strictly ascending ('%s' "
                               "then '%s')",
                               name, s->categories[j][k - 1], category);
        }
    }

    if (s->nnumeric > 0 && (!s->fill || !s->indicator))
        return tb_fail(err, errsz, TB_CONFIG,
                       "impute: %zu numeric inputs but no fills or indicators", s->nnumeric);
    switch (s->impute) {
    case PIPELINE_IMPUTE_NONE:
        for (size_t j = 0; j < s->nnumeric; j++) {
            if (!isnan(s->fill[j]))
                return tb_fail(err, errsz, TB_CONFIG,
                               "impute: fill of '%s' is %g, but without imputation it must be NaN",
                               s->numeric[j], s->fill[j]);
            if (s->indicator[j])
                return tb_fail(err, errsz, TB_CONFIG,
                               "impute: indicator for '%s' without imputation", s->numeric[j]);
        }
        break;
    case PIPELINE_IMPUTE_MEAN:
        for (size_t j = 0; j < s->nnumeric; j++)
            if (!isfinite(s->fill[j]))
                return tb_fail(err, errsz, TB_CONFIG, "impute: fill of '%s' is not finite (%g)",
                               s->numeric[j], s->fill[j]);
        break;
    case PIPELINE_IMPUTE_CONSTANT:
        if (!isfinite(s->impute_value))
            return tb_fail(err, errsz, TB_CONFIG, "impute: the constant is not finite (%g)",
                           s->impute_value);
        for (size_t j = 0; j < s->nnumeric; j++)
            if (s->fill[j] != s->impute_value)
                return tb_fail(err, errsz, TB_CONFIG,
                               "impute: fill of '%s' is %g, not the constant %g", s->numeric[j],
                               s->fill[j], s->impute_value);
        break;
    default:
        return tb_fail(err, errsz, TB_CONFIG, "impute: unknown method %d", (int)s->impute);
    }

    if (s->window > PIPELINE_MAX_WINDOW)
        return tb_fail(err, errsz, TB_CONFIG, "window of %zu records is larger than %d", s->window,
                       PIPELINE_MAX_WINDOW);
    if (s->window == 0) {
        if (s->window_stats != 0 || s->nwindow_columns != 0)
            return tb_fail(err, errsz, TB_CONFIG, "window statistics or columns without a window");
    } else {
        if (s->window_stats == 0)
            return tb_fail(err, errsz, TB_CONFIG, "window of %zu records has no statistics",
                           s->window);
        if (s->window_stats & ~(unsigned)PIPELINE_STAT_ALL)
            return tb_fail(err, errsz, TB_CONFIG, "window statistics 0x%x include unknown bits",
                           s->window_stats);
        if (s->nwindow_columns > 0 && !s->window_columns)
            return tb_fail(err, errsz, TB_CONFIG, "%zu window columns but no indices",
                           s->nwindow_columns);
        for (size_t c = 0; c < s->nwindow_columns; c++) {
            if (s->window_columns[c] >= s->nnumeric)
                return tb_fail(err, errsz, TB_CONFIG,
                               "window column %zu is input %zu, but there are %zu numeric inputs",
                               c, s->window_columns[c], s->nnumeric);
            if (c > 0 && s->window_columns[c] <= s->window_columns[c - 1])
                return tb_fail(err, errsz, TB_CONFIG,
                               "window columns not strictly ascending (%zu after %zu)",
                               s->window_columns[c], s->window_columns[c - 1]);
        }
    }

    if (s->scale != PIPELINE_SCALE_NONE && s->scale != PIPELINE_SCALE_STANDARD &&
        s->scale != PIPELINE_SCALE_MINMAX)
        return tb_fail(err, errsz, TB_CONFIG, "scale: unknown method %d", (int)s->scale);
    size_t nscaled = spec_nscaled(s);
    if (s->nscaled != nscaled)
        return tb_fail(err, errsz, TB_CONFIG,
                       "scale: nscaled is %zu, but %zu columns come before the one-hot ones",
                       s->nscaled, nscaled);
    if (s->nscaled > 0 && (!s->offset || !s->factor))
        return tb_fail(err, errsz, TB_CONFIG, "scale: %zu columns but no offsets or factors",
                       s->nscaled);
    return TB_OK;
}

/* Deep-copies src (already checked) into dst; arrays of length 0 become NULL. */
static void spec_copy(struct pipeline_spec *dst, const struct pipeline_spec *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->nnumeric = src->nnumeric;
    dst->ncategorical = src->ncategorical;
    if (src->nnumeric > 0) {
        dst->numeric = mem_alloc(src->nnumeric * sizeof(char *));
        for (size_t j = 0; j < src->nnumeric; j++)
            dst->numeric[j] = mem_strdup(src->numeric[j]);
        dst->fill = mem_alloc(src->nnumeric * sizeof(double));
        memcpy(dst->fill, src->fill, src->nnumeric * sizeof(double));
        dst->indicator = mem_alloc(src->nnumeric * sizeof(bool));
        memcpy(dst->indicator, src->indicator, src->nnumeric * sizeof(bool));
    }
    if (src->ncategorical > 0) {
        dst->categorical = mem_alloc(src->ncategorical * sizeof(char *));
        dst->ncategories = mem_alloc(src->ncategorical * sizeof(size_t));
        dst->categories = mem_calloc(src->ncategorical, sizeof(char **));
        for (size_t j = 0; j < src->ncategorical; j++) {
            dst->categorical[j] = mem_strdup(src->categorical[j]);
            dst->ncategories[j] = src->ncategories[j];
            if (src->ncategories[j] == 0)
                continue;
            dst->categories[j] = mem_alloc(src->ncategories[j] * sizeof(char *));
            for (size_t k = 0; k < src->ncategories[j]; k++)
                dst->categories[j][k] = mem_strdup(src->categories[j][k]);
        }
    }
    dst->impute = src->impute;
    dst->impute_value = src->impute_value;
    dst->window = src->window;
    dst->window_stats = src->window_stats;
    dst->nwindow_columns = src->nwindow_columns;
    if (src->nwindow_columns > 0) {
        dst->window_columns = mem_alloc(src->nwindow_columns * sizeof(size_t));
        memcpy(dst->window_columns, src->window_columns, src->nwindow_columns * sizeof(size_t));
    }
    dst->scale = src->scale;
    dst->nscaled = src->nscaled;
    if (src->nscaled > 0) {
        dst->offset = mem_alloc(src->nscaled * sizeof(double));
        memcpy(dst->offset, src->offset, src->nscaled * sizeof(double));
        dst->factor = mem_alloc(src->nscaled * sizeof(double));
        memcpy(dst->factor, src->factor, src->nscaled * sizeof(double));
    }
}

/* Frees what spec_copy allocated. */
static void spec_release(struct pipeline_spec *s)
{
    free(s->factor);
    free(s->offset);
    free(s->window_columns);
    for (size_t j = 0; s->categories && j < s->ncategorical; j++) {
        for (size_t k = 0; s->categories[j] && k < s->ncategories[j]; k++)
            free(s->categories[j][k]);
        free(s->categories[j]);
    }
    free(s->categories);
    free(s->ncategories);
    for (size_t j = 0; s->categorical && j < s->ncategorical; j++)
        free(s->categorical[j]);
    free(s->categorical);
    free(s->indicator);
    free(s->fill);
    for (size_t j = 0; s->numeric && j < s->nnumeric; j++)
        free(s->numeric[j]);
    free(s->numeric);
    memset(s, 0, sizeof(*s));
}

/* Sets the pipeline's layout and feature names from its (checked) spec. */
static void pipeline_layout(struct pipeline *p)
{
    const struct pipeline_spec *s = &p->spec;
    p->ninputs = s->nnumeric + s->ncategorical;
    p->onehot_start = s->nscaled;
    p->nfeatures = s->nscaled;
    for (size_t j = 0; j < s->ncategorical; j++)
        p->nfeatures += s->ncategories[j];

    p->feature_names = mem_calloc(p->nfeatures, sizeof(char *));
    size_t f = 0;
    for (size_t j = 0; j < s->nnumeric; j++)
        p->feature_names[f++] = mem_strdup(s->numeric[j]);
    for (size_t j = 0; j < s->nnumeric; j++)
        if (s->indicator[j])
            p->feature_names[f++] = format_name("%s_missing", s->numeric[j]);
    for (size_t c = 0; c < s->nwindow_columns; c++)
        for (size_t b = 0; b < PIPELINE_NSTATS; b++)
            if ((s->window_stats & PIPELINE_STAT_PER_COLUMN) & (1u << b))
                p->feature_names[f++] = format_name("%s_%s_%zu", s->numeric[s->window_columns[c]],
                                                    pipeline_stat_names[b], s->window);
    if (s->window > 0 && (s->window_stats & PIPELINE_STAT_COUNT))
        p->feature_names[f++] = format_name("window_count_%zu", s->window);
    assert(f == s->nscaled);

    if (s->ncategorical > 0)
        p->category_len = mem_calloc(s->ncategorical, sizeof(size_t *));
    for (size_t j = 0; j < s->ncategorical; j++) {
        if (s->ncategories[j] > 0)
            p->category_len[j] = mem_alloc(s->ncategories[j] * sizeof(size_t));
        for (size_t k = 0; k < s->ncategories[j]; k++) {
            p->category_len[j][k] = strlen(s->categories[j][k]);
            p->feature_names[f++] = format_name("%s=%s", s->categorical[j], s->categories[j][k]);
        }
    }
    assert(f == p->nfeatures);
}

/* Checks the scale numbers and the uniqueness of the feature names of a laid-out pipeline. */
static int pipeline_check(const struct pipeline *p, char *err, size_t errsz)
{
    const struct pipeline_spec *s = &p->spec;
    for (size_t c = 0; c < s->nscaled; c++) {
        const char *name = p->feature_names[c];
        if (s->scale == PIPELINE_SCALE_NONE) {
            if (s->offset[c] != 0.0 || s->factor[c] != 1.0)
                return tb_fail(err, errsz, TB_CONFIG,
                               "scale: column '%s' has offset %g and factor %g, but without "
                               "scaling they must be 0 and 1",
                               name, s->offset[c], s->factor[c]);
            continue;
        }
        if (!isfinite(s->offset[c]))
            return tb_fail(err, errsz, TB_CONFIG, "scale: offset of column '%s' is not finite (%g)",
                           name, s->offset[c]);
        if (!(isfinite(s->factor[c]) && s->factor[c] > 0.0))
            return tb_fail(err, errsz, TB_CONFIG,
                           "scale: factor of column '%s' is %g, not a positive finite number", name,
                           s->factor[c]);
    }
    const char *duplicate =
        find_duplicate((const char *const *)p->feature_names, p->nfeatures, NULL, 0);
    if (duplicate)
        return tb_fail(err, errsz, TB_CONFIG, "feature name '%s' is produced twice", duplicate);
    return TB_OK;
}

struct pipeline *pipeline_new(const struct pipeline_spec *spec, char *err, size_t errsz)
{
    struct pipeline *result = NULL, *p = NULL;
    if (spec_check(spec, err, errsz) != TB_OK)
        goto done;
    p = mem_calloc(1, sizeof(*p));
    spec_copy(&p->spec, spec);
    pipeline_layout(p);
    if (pipeline_check(p, err, errsz) != TB_OK)
        goto done;
    result = p;
    p = NULL;
done:
    pipeline_destroy(p);
    return result;
}

void pipeline_destroy(struct pipeline *pipeline)
{
    if (!pipeline)
        return;
    for (size_t f = 0; pipeline->feature_names && f < pipeline->nfeatures; f++)
        free(pipeline->feature_names[f]);
    free(pipeline->feature_names);
    for (size_t j = 0; pipeline->category_len && j < pipeline->spec.ncategorical; j++)
        free(pipeline->category_len[j]);
    free(pipeline->category_len);
    spec_release(&pipeline->spec);
    free(pipeline);
}

const struct pipeline_spec *pipeline_spec(const struct pipeline *pipeline)
{
    return &pipeline->spec;
}

size_t pipeline_ninputs(const struct pipeline *pipeline)
{
    return pipeline->ninputs;
}

size_t pipeline_nfeatures(const struct pipeline *pipeline)
{
    return pipeline->nfeatures;
}

const char *pipeline_feature_name(const struct pipeline *pipeline, size_t i)
{
    return i < pipeline->nfeatures ? pipeline->feature_names[i] : NULL;
}

long pipeline_category_index(const struct pipeline *pipeline, size_t j, const char *bytes,
                             size_t len)
{
    if (j >= pipeline->spec.ncategorical || (len > 0 && !bytes))
        return -1;
    const char *const *categories = (const char *const *)pipeline->spec.categories[j];
    const size_t *lens = pipeline->category_len[j];
    size_t lo = 0, hi = pipeline->spec.ncategories[j];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_bytes(categories[mid], lens[mid], bytes, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

unsigned pipeline_stat_parse(const char *name)
{
    for (size_t b = 0; name && b < PIPELINE_NSTATS; b++)
        if (strcmp(name, pipeline_stat_names[b]) == 0)
            return 1u << b;
    return 0;
}

const char *pipeline_stat_name(unsigned stat)
{
    for (size_t b = 0; b < PIPELINE_NSTATS; b++)
        if (stat == 1u << b)
            return pipeline_stat_names[b];
    return NULL;
}

/* --- the window state ------------------------------------------------------------------------- */

static size_t history_size(const struct pipeline_state *s, size_t key_len)
{
    return sizeof(struct pipeline_history) + s->nnumeric * s->window * sizeof(double) + key_len;
}

static const char *history_key(const struct pipeline_state *s, const struct pipeline_history *h)
{
    return (const char *)(h->ring + s->nnumeric * s->window);
}

static const void *state_key_of(const void *owner, size_t index, size_t *len)
{
    const struct pipeline_history *h = strmap_address_of_index(index);
    *len = h->key_len;
    return history_key(owner, h);
}

/* The ring's invariants, which every function that reads or writes a history relies on: the
 * next slot is in the window, the ring holds at most a window, and until it is full it fills
 * from slot 0 (so a history's oldest record is at slot 0, or at next once it is full). */
static bool history_ring_ok(size_t window, const struct pipeline_history *h)
{
    return h->next < window && h->count <= window && (h->count == window || h->next == h->count);
}

struct pipeline_state *pipeline_state_new(const struct pipeline *pipeline)
{
    struct pipeline_state *s = mem_calloc(1, sizeof(*s));
    s->nnumeric = pipeline->spec.nnumeric;
    s->window = pipeline->spec.window;
    s->bytes = sizeof(*s);
    if (s->nnumeric > 0) {
        s->numeric = mem_alloc(s->nnumeric * sizeof(char *));
        s->bytes += s->nnumeric * sizeof(char *);
        for (size_t j = 0; j < s->nnumeric; j++) {
            s->numeric[j] = mem_strdup(pipeline->spec.numeric[j]);
            s->bytes += strlen(s->numeric[j]) + 1;
        }
    }
    s->index = strmap_new(state_key_of, s);
    if (s->window > 0) {
        s->scratch = mem_alloc(s->window * sizeof(double));
        s->bytes += s->window * sizeof(double);
    }
    return s;
}

void pipeline_state_destroy(struct pipeline_state *state)
{
    if (!state)
        return;
    free(state->scratch);
    size_t cursor = 0;
    for (size_t index; (index = strmap_next(state->index, &cursor)) != STRMAP_MISSING;)
        free(strmap_address_of_index(index));
    strmap_destroy(state->index);
    for (size_t j = 0; j < state->nnumeric; j++)
        free(state->numeric[j]);
    free(state->numeric);
    free(state);
}

bool pipeline_state_fits(const struct pipeline_state *state, const struct pipeline *pipeline)
{
    if (!state || !pipeline || state->window != pipeline->spec.window ||
        state->nnumeric != pipeline->spec.nnumeric)
        return false;
    for (size_t j = 0; j < state->nnumeric; j++)
        if (strcmp(state->numeric[j], pipeline->spec.numeric[j]) != 0)
            return false;
    return true;
}

size_t pipeline_state_keys(const struct pipeline_state *state)
{
    return strmap_count(state->index);
}

size_t pipeline_state_bytes(const struct pipeline_state *state)
{
    return state->bytes + strmap_bytes(state->index);
}

/* Returns the history of the key with hash (hash_bytes) and bytes key[0..len) in s, or NULL when
 * s holds none. Only reads s. */
static struct pipeline_history *state_find(const struct pipeline_state *s, uint64_t hash,
                                           const char *key, size_t len)
{
    size_t index = strmap_get_hashed(s->index, hash, key, len);
    return index != STRMAP_MISSING ? strmap_address_of_index(index) : NULL;
}

bool pipeline_state_has(const struct pipeline_state *state, const char *key, size_t len)
{
    return strmap_get(state->index, key, len) != STRMAP_MISSING;
}

/* Adds an empty history for a key that s does not hold and returns it. */
static struct pipeline_history *state_insert(struct pipeline_state *s, const char *key, size_t len)
{
    size_t size = history_size(s, len);
    struct pipeline_history *h = mem_alloc(size);
    h->key_len = len;
    h->count = 0;
    h->next = 0;
    if (len > 0)
        memcpy((char *)history_key(s, h), key, len);
    strmap_put(s->index, key, len, strmap_index_of_address(h));
    s->bytes += size;
    return h;
}

/* Returns the history of key[0..len), creating an empty one for a key not seen before. */
static struct pipeline_history *state_history(struct pipeline_state *s, const char *key, size_t len)
{
    struct pipeline_history *h = state_find(s, hash_bytes(key, len), key, len);
    return h ? h : state_insert(s, key, len);
}

/* Returns overlay's history of key[0..len), creating it for a key not seen before as a copy of
 * base's history of that key (empty when base has none). Only reads base, which has overlay's
 * numeric inputs and window. */
static struct pipeline_history *overlay_history(struct pipeline_state *overlay,
                                                const struct pipeline_state *base, const char *key,
                                                size_t len)
{
    uint64_t hash = hash_bytes(key, len);
    struct pipeline_history *h = state_find(overlay, hash, key, len);
    if (h)
        return h;
    h = state_insert(overlay, key, len);
    const struct pipeline_history *from = state_find(base, hash, key, len);
    if (from) {
        assert(history_ring_ok(base->window, from));
        h->count = from->count;
        h->next = from->next;
        memcpy(h->ring, from->ring, overlay->nnumeric * overlay->window * sizeof(double));
    }
    return h;
}

/* Appends a record's raw numeric inputs to a history, dropping the oldest when it is full. */
static void history_push(const struct pipeline_state *s, struct pipeline_history *h,
                         const double *numeric)
{
    assert(history_ring_ok(s->window, h));
    for (size_t j = 0; j < s->nnumeric; j++)
        h->ring[j * s->window + h->next] = numeric[j];
    h->next = h->next + 1 == s->window ? 0 : h->next + 1;
    if (h->count < s->window)
        h->count++;
    assert(history_ring_ok(s->window, h));
}

/* --- checkpoint and restore ------------------------------------------------------------------- */

size_t pipeline_state_width(const struct pipeline_state *state)
{
    return state->window > 0 ? state->nnumeric : 0;
}

size_t pipeline_state_get(const struct pipeline_state *state, const char *key, size_t len,
                          double *out)
{
    if (state->window == 0)
        return 0;
    const struct pipeline_history *h = state_find(state, hash_bytes(key, len), key, len);
    if (!h)
        return 0;
    assert(history_ring_ok(state->window, h));
    size_t window = state->window, width = state->nnumeric;
    size_t slot = (h->next + window - h->count) % window; /* the oldest record */
    for (size_t t = 0; t < h->count; t++) {
        for (size_t j = 0; j < width; j++)
            out[t * width + j] = h->ring[j * window + slot];
        slot = slot + 1 == window ? 0 : slot + 1;
    }
    return h->count;
}

void pipeline_state_put(struct pipeline_state *state, const char *key, size_t len,
                        const double *records, size_t count)
{
    if (state->window == 0)
        return;
    struct pipeline_history *h = state_history(state, key, len);
    size_t window = state->window, width = state->nnumeric;
    size_t kept = count < window ? count : window;
    /* The kept records fill slots 0..kept-1, so the next one goes to slot kept (mod window). */
    if (kept > 0 && width > 0) {
        assert(records); /* the contract allows NULL only for no records or no columns */
        const double *newest = records + (count - kept) * width;
        for (size_t t = 0; t < kept; t++)
            for (size_t j = 0; j < width; j++)
                h->ring[j * window + t] = newest[t * width + j];
    }
    h->count = kept;
    h->next = kept == window ? 0 : kept;
    assert(history_ring_ok(state->window, h));
}

void pipeline_state_drop(struct pipeline_state *state, const char *key, size_t len)
{
    size_t index = strmap_remove(state->index, key, len);
    if (index == STRMAP_MISSING)
        return;
    struct pipeline_history *h = strmap_address_of_index(index);
    state->bytes -= history_size(state, h->key_len);
    free(h);
}

/* --- transform -------------------------------------------------------------------------------- */

/* Writes the statistics of v[0..n) (oldest first, n >= 1) chosen by stats, in bit order, to out;
 * returns the number written. Sums run over deviations from the oldest value, so that a window of
 * equal values has std and slope exactly 0 and large offsets do not cost precision. */
static size_t window_statistics(const double *v, size_t n, unsigned stats, double *out)
{
    bool has_nan = false;
    double shift = v[0], sum = 0.0;
    for (size_t t = 0; t < n; t++) {
        has_nan |= isnan(v[t]);
        sum += v[t] - shift;
    }
    double dbar = sum / (double)n;
    double std = 0.0, lo = v[0], hi = v[0], slope = 0.0;
    if (stats & PIPELINE_STAT_STD) {
        double ss = 0.0;
        for (size_t t = 0; t < n; t++) {
            double d = v[t] - shift - dbar;
            ss += d * d;
        }
        std = sqrt(ss / (double)n);
    }
    if (stats & (PIPELINE_STAT_MIN | PIPELINE_STAT_MAX))
        for (size_t t = 1; t < n; t++) {
            lo = v[t] < lo ? v[t] : lo;
            hi = v[t] > hi ? v[t] : hi;
        }
    if ((stats & PIPELINE_STAT_SLOPE) && n > 1) {
        /* sum((t - tbar)(v - vbar)) / sum((t - tbar)^2), the latter n (n^2 - 1) / 12. */
        double tbar = (double)(n - 1) / 2.0, sxy = 0.0;
        for (size_t t = 0; t < n; t++)
            sxy += ((double)t - tbar) * (v[t] - shift - dbar);
        slope = sxy / ((double)n * ((double)n * (double)n - 1.0) / 12.0);
    }
    if (has_nan)
        std = lo = hi = slope = NAN;

    size_t k = 0;
    if (stats & PIPELINE_STAT_MEAN)
        out[k++] = has_nan ? NAN : shift + dbar;
    if (stats & PIPELINE_STAT_STD)
        out[k++] = std;
    if (stats & PIPELINE_STAT_MIN)
        out[k++] = lo;
    if (stats & PIPELINE_STAT_MAX)
        out[k++] = hi;
    if (stats & PIPELINE_STAT_SLOPE)
        out[k++] = slope;
    if (stats & PIPELINE_STAT_LAST)
        out[k++] = v[n - 1];
    return k;
}

/* Computes the features of one record (in: ninputs values, categorical codes being the
 * pipeline's) into out (nfeatures values). h is its key's history, which already holds the
 * record (NULL when the pipeline has no window); scratch holds window doubles. */
static void row_features(const struct pipeline *p, const struct pipeline_history *h,
                         double *scratch, const double *in, double *out)
{
    const struct pipeline_spec *s = &p->spec;
    size_t f = 0;
    for (size_t j = 0; j < s->nnumeric; j++)
        out[f++] = isnan(in[j]) ? s->fill[j] : in[j];
    for (size_t j = 0; j < s->nnumeric; j++)
        if (s->indicator[j])
            out[f++] = isnan(in[j]) ? 1.0 : 0.0;

    if (s->window > 0) {
        assert(h); /* the caller passes the key's history whenever the pipeline has a window */
        assert(history_ring_ok(s->window, h));
        size_t n = h->count, oldest = (h->next + s->window - n) % s->window;
        for (size_t c = 0; c < s->nwindow_columns; c++) {
            size_t j = s->window_columns[c];
            const double *ring = h->ring + j * s->window;
            for (size_t t = 0, slot = oldest; t < n; t++) {
                scratch[t] = isnan(ring[slot]) ? s->fill[j] : ring[slot];
                slot = slot + 1 == s->window ? 0 : slot + 1;
            }
            f += window_statistics(scratch, n, s->window_stats, out + f);
        }
        if (s->window_stats & PIPELINE_STAT_COUNT)
            out[f++] = (double)n;
    }
    assert(f == p->onehot_start);

    for (size_t j = 0; j < s->ncategorical; j++) {
        double code = in[s->nnumeric + j];
        for (size_t k = 0; k < s->ncategories[j]; k++)
            out[f + k] = 0.0;
        if (code >= 0.0 && code < (double)s->ncategories[j] && code == floor(code))
            out[f + (size_t)code] = 1.0;
        f += s->ncategories[j];
    }

    if (s->scale != PIPELINE_SCALE_NONE)
        for (size_t c = 0; c < s->nscaled; c++)
            out[c] = (out[c] - s->offset[c]) * s->factor[c];
}

/* Adds a record to its key's history in state (unless the pipeline has no window), then
 * computes its features into out, as row_features. */
static void transform_row(const struct pipeline *p, struct pipeline_state *state, const double *in,
                          const char *key, size_t key_len, double *out)
{
    struct pipeline_history *h = NULL;
    if (p->spec.window > 0) {
        h = state_history(state, key, key_len);
        history_push(state, h, in);
    }
    row_features(p, h, p->spec.window > 0 ? state->scratch : NULL, in, out);
}

/* The key of row i: NULL keys and NULL key arrays are the empty key. */
static const char *row_key(const struct pipeline_rows *rows, size_t i, size_t *len)
{
    const char *key = rows->keys ? rows->keys[i] : NULL;
    *len = !key ? 0 : rows->key_lens ? rows->key_lens[i] : strlen(key);
    return key;
}

void pipeline_transform(const struct pipeline *pipeline, struct pipeline_state *state,
                        const struct pipeline_rows *rows, double *out)
{
    assert(pipeline && rows);
    assert(pipeline->spec.window == 0 || pipeline_state_fits(state, pipeline));
    for (size_t i = 0; i < rows->nrows; i++) {
        size_t key_len = 0;
        const char *key = row_key(rows, i, &key_len);
        transform_row(pipeline, state, rows->values + i * pipeline->ninputs, key, key_len,
                      out + i * pipeline->nfeatures);
    }
}

void pipeline_peek(const struct pipeline *pipeline, const struct pipeline_state *state,
                   const struct pipeline_rows *rows, double *out)
{
    assert(pipeline && rows);
    assert(pipeline->spec.window == 0 || pipeline_state_fits(state, pipeline));
    /* The rows join copies of their keys' histories in an overlay, which the call owns: state
     * is only read, so callers holding a read lock may peek at once. */
    struct pipeline_state *overlay = NULL;
    if (pipeline->spec.window > 0 && rows->nrows > 0)
        overlay = pipeline_state_new(pipeline);
    for (size_t i = 0; i < rows->nrows; i++) {
        const double *in = rows->values + i * pipeline->ninputs;
        struct pipeline_history *h = NULL;
        if (overlay) {
            size_t key_len = 0;
            const char *key = row_key(rows, i, &key_len);
            h = overlay_history(overlay, state, key, key_len);
            history_push(overlay, h, in);
        }
        row_features(pipeline, h, overlay ? overlay->scratch : NULL, in,
                     out + i * pipeline->nfeatures);
    }
    pipeline_state_destroy(overlay);
}

/* --- fit -------------------------------------------------------------------------------------- */

/* Checks the options that do not depend on the rows. */
static int check_options(const struct pipeline_options *o, char *err, size_t errsz)
{
    int rc =
        check_input_names(o->numeric, o->nnumeric, o->categorical, o->ncategorical, err, errsz);
    if (rc != TB_OK)
        return rc;
    if (o->impute != PIPELINE_IMPUTE_NONE && o->impute != PIPELINE_IMPUTE_MEAN &&
        o->impute != PIPELINE_IMPUTE_CONSTANT)
        return tb_fail(err, errsz, TB_CONFIG, "impute: unknown method %d", (int)o->impute);
    if (o->impute == PIPELINE_IMPUTE_CONSTANT && !isfinite(o->impute_value))
        return tb_fail(err, errsz, TB_CONFIG, "impute: the constant is not finite (%g)",
                       o->impute_value);
    if (o->scale != PIPELINE_SCALE_NONE && o->scale != PIPELINE_SCALE_STANDARD &&
        o->scale != PIPELINE_SCALE_MINMAX)
        return tb_fail(err, errsz, TB_CONFIG, "scale: unknown method %d", (int)o->scale);
    if (o->window > PIPELINE_MAX_WINDOW)
        return tb_fail(err, errsz, TB_CONFIG, "window of %zu records is larger than %d", o->window,
                       PIPELINE_MAX_WINDOW);
    if (o->window > 0 && o->window_stats == 0)
        return tb_fail(err, errsz, TB_CONFIG, "window of %zu records has no statistics", o->window);
    if (o->window > 0 && (o->window_stats & ~(unsigned)PIPELINE_STAT_ALL))
        return tb_fail(err, errsz, TB_CONFIG, "window statistics 0x%x include unknown bits",
                       o->window_stats);
    if (o->window > 0 && o->nwindow_columns > 0 && !o->window_columns)
        return tb_fail(err, errsz, TB_CONFIG, "%zu window columns but no names",
                       o->nwindow_columns);
    return TB_OK;
}

/* Sets spec->window_columns (ascending input indices) from the options' names. */
static int fit_window_columns(const struct pipeline_options *o, struct pipeline_spec *spec,
                              char *err, size_t errsz)
{
    if (o->window == 0)
        return TB_OK;
    bool *chosen = mem_calloc(o->nnumeric, sizeof(bool));
    int rc = TB_OK;
    for (size_t c = 0; c < o->nwindow_columns && rc == TB_OK; c++) {
        const char *name = o->window_columns[c];
        size_t j = 0;
        while (j < o->nnumeric && (!name || strcmp(name, o->numeric[j]) != 0))
            j++;
        if (j == o->nnumeric)
            rc = tb_fail(err, errsz, TB_CONFIG, "window column '%s' is not a numeric input",
                         name ? name : "(null)");
        else if (chosen[j])
            rc = tb_fail(err, errsz, TB_CONFIG, "window column '%s' is listed twice", name);
        else
            chosen[j] = true;
    }
    if (rc == TB_OK) {
        spec->window_columns = mem_alloc((o->nnumeric ? o->nnumeric : 1) * sizeof(size_t));
        for (size_t j = 0; j < o->nnumeric; j++)
            if (chosen[j] || o->nwindow_columns == 0)
                spec->window_columns[spec->nwindow_columns++] = j;
    }
    free(chosen);
    return rc;
}

/* Sets fills and indicators from the training rows. */
static int fit_impute(const struct pipeline_options *o, const struct pipeline_rows *rows,
                      const unsigned char *train_mask, struct pipeline_spec *spec, char *err,
                      size_t errsz)
{
    size_t ninputs = o->nnumeric + o->ncategorical;
    for (size_t j = 0; j < o->nnumeric; j++) {
        double sum = 0.0;
        size_t present = 0;
        bool missing = false;
        for (size_t i = 0; i < rows->nrows; i++) {
            if (train_mask && !train_mask[i])
                continue;
            double v = rows->values[i * ninputs + j];
            if (isnan(v)) {
                missing = true;
            } else if (isinf(v)) {
                return tb_fail(err, errsz, TB_CONFIG, "input '%s' is infinite in row %zu",
                               o->numeric[j], i);
            } else {
                sum += v;
                present++;
            }
        }
        switch (o->impute) {
        case PIPELINE_IMPUTE_MEAN:
            if (present == 0)
                return tb_fail(err, errsz, TB_CONFIG,
                               "impute: input '%s' has no value in the training rows",
                               o->numeric[j]);
            spec->fill[j] = sum / (double)present;
            break;
        case PIPELINE_IMPUTE_CONSTANT:
            spec->fill[j] = o->impute_value;
            break;
        default:
            spec->fill[j] = NAN;
            break;
        }
        spec->indicator[j] = o->impute_indicator && o->impute != PIPELINE_IMPUTE_NONE && missing;
    }
    return TB_OK;
}

/* Sets the categories of categorical input j (strings borrowed from the dictionary) and
 * code_map, the pipeline code of each dictionary code (-1 for one unused by training rows). */
static int fit_categories(const struct pipeline_options *o, const struct pipeline_rows *rows,
                          const unsigned char *train_mask, size_t j, const char *const *dictionary,
                          size_t ndictionary, struct pipeline_spec *spec, long *code_map, char *err,
                          size_t errsz)
{
    const char *name = o->categorical[j];
    size_t ninputs = o->nnumeric + o->ncategorical;
    if (ndictionary > 0 && !dictionary)
        return tb_fail(err, errsz, TB_CONFIG, "categorical input '%s' has no dictionary", name);
    for (size_t k = 0; k < ndictionary; k++)
        if (!dictionary[k])
            return tb_fail(err, errsz, TB_CONFIG,
                           "categorical input '%s': dictionary entry %zu is NULL", name, k);
    for (size_t k = 0; k < ndictionary; k++)
        code_map[k] = -1; /* -1: not used by a training row (yet) */
    for (size_t i = 0; i < rows->nrows; i++) {
        double code = rows->values[i * ninputs + o->nnumeric + j];
        if (isnan(code))
            continue;
        if (!(code >= 0.0 && code < (double)ndictionary && code == floor(code)))
            return tb_fail(err, errsz, TB_CONFIG,
                           "categorical input '%s': row %zu has code %g, not an index into its "
                           "%zu dictionary entries",
                           name, i, code, ndictionary);
        if (!train_mask || train_mask[i])
            code_map[(size_t)code] = 0;
    }

    size_t n = 0;
    const char **categories = mem_alloc((ndictionary ? ndictionary : 1) * sizeof(char *));
    for (size_t k = 0; k < ndictionary; k++)
        if (code_map[k] == 0)
            categories[n++] = dictionary[k];
    qsort(categories, n, sizeof(*categories), compare_strings);
    size_t unique = 0;
    for (size_t k = 0; k < n; k++)
        if (unique == 0 || strcmp(categories[unique - 1], categories[k]) != 0)
            categories[unique++] = categories[k];
    for (size_t k = 0; k < ndictionary; k++) {
        const char **found =
            bsearch(&dictionary[k], categories, unique, sizeof(*categories), compare_strings);
        code_map[k] = found ? (long)(found - categories) : -1;
    }
    spec->ncategories[j] = unique;
    spec->categories[j] = (char **)categories;
    return TB_OK;
}

/* Runs the window stage over all rows and sets the scaler's offsets and factors from the
 * training rows whose features before the one-hot ones are all finite. p is unscaled. */
static int fit_scaler(struct pipeline *p, enum pipeline_scale scale,
                      const struct pipeline_rows *rows, const unsigned char *train_mask,
                      long *const *code_maps, char *err, size_t errsz)
{
    struct pipeline_spec *s = &p->spec;
    size_t nscaled = s->nscaled;
    struct pipeline_state *state = pipeline_state_new(p);
    double *in = mem_alloc((p->ninputs ? p->ninputs : 1) * sizeof(double));
    double *out = mem_alloc((p->nfeatures ? p->nfeatures : 1) * sizeof(double));
    /* Standard: running mean and sum of squared deviations (Welford). Minmax: min and max. */
    double *first = mem_alloc(nscaled * sizeof(double));
    double *second = mem_alloc(nscaled * sizeof(double));
    size_t n = 0;
    int rc = TB_OK;

    for (size_t i = 0; i < rows->nrows; i++) {
        const double *row = rows->values + i * p->ninputs;
        memcpy(in, row, s->nnumeric * sizeof(double));
        for (size_t j = 0; j < s->ncategorical; j++) {
            double code = row[s->nnumeric + j];
            in[s->nnumeric + j] = isnan(code) ? NAN : (double)code_maps[j][(size_t)code];
        }
        size_t key_len = 0;
        const char *key = row_key(rows, i, &key_len);
        transform_row(p, state, in, key, key_len, out);
        if (train_mask && !train_mask[i])
            continue;
        bool finite = true;
        for (size_t c = 0; c < nscaled && finite; c++)
            finite = isfinite(out[c]);
        if (!finite)
            continue;
        n++;
        for (size_t c = 0; c < nscaled; c++) {
            double x = out[c];
            if (scale == PIPELINE_SCALE_STANDARD) {
                double delta = x - (n == 1 ? 0.0 : first[c]);
                first[c] = n == 1 ? x : first[c] + delta / (double)n;
                second[c] = n == 1 ? 0.0 : second[c] + delta * (x - first[c]);
            } else {
                first[c] = n == 1 || x < first[c] ? x : first[c];
                second[c] = n == 1 || x > second[c] ? x : second[c];
            }
        }
    }
    if (n == 0 && nscaled > 0) {
        rc = tb_fail(err, errsz, TB_NUMERIC,
                     "scale: no training row has finite features to fit the scaler on");
        goto done;
    }

    for (size_t c = 0; c < nscaled; c++) {
        double factor = 1.0;
        if (scale == PIPELINE_SCALE_STANDARD) {
            /* scikit-learn's test for a constant column: a variance within rounding of 0. */
            double mean = first[c], var = second[c] / (double)n, nd = (double)n;
            double bound =
                nd * DBL_EPSILON * var + (nd * mean * DBL_EPSILON) * (nd * mean * DBL_EPSILON);
            if (!(var <= bound))
                factor = 1.0 / sqrt(var);
            s->offset[c] = mean;
        } else {
            /* As scikit-learn's MinMaxScaler: a range below 10 eps counts as 0. */
            double range = second[c] - first[c];
            if (!(range < 10.0 * DBL_EPSILON))
                factor = 1.0 / range;
            s->offset[c] = first[c];
        }
        /* A spread so small that its inverse overflows is treated as none. */
        s->factor[c] = isfinite(factor) ? factor : 1.0;
    }
    s->scale = scale;

done:
    free(second);
    free(first);
    free(out);
    free(in);
    pipeline_state_destroy(state);
    return rc;
}

struct pipeline *pipeline_fit(const struct pipeline_options *options,
                              const struct pipeline_rows *rows, const unsigned char *train_mask,
                              const char *const *const *dictionaries, const size_t *ndictionary,
                              char *err, size_t errsz)
{
    struct pipeline *result = NULL, *p = NULL;
    /* The spec handed to pipeline_new: arrays owned here, strings borrowed. */
    struct pipeline_spec spec = {0};
    long **code_maps = NULL;
    const struct pipeline_options *o = options;
    size_t ntrain = 0;

    if (!options || !rows) {
        tb_fail(err, errsz, TB_USAGE, "pipeline_fit needs options and rows");
        goto done;
    }
    if (check_options(o, err, errsz) != TB_OK)
        goto done;
    if (rows->nrows > 0 && !rows->values) {
        tb_fail(err, errsz, TB_USAGE, "%zu rows but no values", rows->nrows);
        goto done;
    }
    if (o->ncategorical > 0 && (!dictionaries || !ndictionary)) {
        tb_fail(err, errsz, TB_USAGE, "categorical inputs but no dictionaries");
        goto done;
    }
    for (size_t i = 0; i < rows->nrows; i++)
        ntrain += !train_mask || train_mask[i];
    if (ntrain == 0) {
        tb_fail(err, errsz, TB_USAGE, "no training rows");
        goto done;
    }

    spec.nnumeric = o->nnumeric;
    spec.numeric = (char **)o->numeric;
    spec.ncategorical = o->ncategorical;
    spec.categorical = (char **)o->categorical;
    spec.impute = o->impute;
    spec.impute_value = o->impute == PIPELINE_IMPUTE_CONSTANT ? o->impute_value : 0.0;
    spec.window = o->window;
    spec.window_stats = o->window > 0 ? o->window_stats : 0;
    spec.fill = mem_alloc((o->nnumeric ? o->nnumeric : 1) * sizeof(double));
    spec.indicator = mem_alloc((o->nnumeric ? o->nnumeric : 1) * sizeof(bool));
    spec.ncategories = mem_calloc(o->ncategorical, sizeof(size_t));
    spec.categories = mem_calloc(o->ncategorical, sizeof(char **));
    code_maps = mem_calloc(o->ncategorical, sizeof(long *));

    if (fit_window_columns(o, &spec, err, errsz) != TB_OK ||
        fit_impute(o, rows, train_mask, &spec, err, errsz) != TB_OK)
        goto done;
    for (size_t j = 0; j < o->ncategorical; j++) {
        code_maps[j] = mem_alloc((ndictionary[j] ? ndictionary[j] : 1) * sizeof(long));
        if (fit_categories(o, rows, train_mask, j, dictionaries[j], ndictionary[j], &spec,
                           code_maps[j], err, errsz) != TB_OK)
            goto done;
    }

    /* Unscaled first: the scaler is fitted on the features this pipeline computes. */
    spec.scale = PIPELINE_SCALE_NONE;
    spec.nscaled = spec_nscaled(&spec);
    spec.offset = mem_calloc(spec.nscaled, sizeof(double));
    spec.factor = mem_alloc((spec.nscaled ? spec.nscaled : 1) * sizeof(double));
    for (size_t c = 0; c < spec.nscaled; c++)
        spec.factor[c] = 1.0;
    p = pipeline_new(&spec, err, errsz);
    if (!p)
        goto done;
    if (o->scale != PIPELINE_SCALE_NONE &&
        fit_scaler(p, o->scale, rows, train_mask, code_maps, err, errsz) != TB_OK)
        goto done;
    result = p;
    p = NULL;

done:
    pipeline_destroy(p);
    for (size_t j = 0; code_maps && j < o->ncategorical; j++)
        free(code_maps[j]);
    free(code_maps);
    free(spec.factor);
    free(spec.offset);
    free(spec.window_columns);
    for (size_t j = 0; spec.categories && j < o->ncategorical; j++)
        free(spec.categories[j]);
    free(spec.categories);
    free(spec.ncategories);
    free(spec.indicator);
    free(spec.fill);
    return result;
}
