/* An in-memory table of named double columns (numeric, or codes into a
 * per-column dictionary of strings) with optional per-row keys. */
#include "connectors/files/table.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/strmap.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A categorical column's dictionary: its strings by code, and an index from string to code. */
struct table_dict {
    char **strings; /* by code, each NUL-terminated; what table_dictionary returns */
    size_t strings_cap;
    size_t *lengths; /* by code: bytes of the string, without the NUL that follows them */
    size_t lengths_cap;
    size_t count;
    struct strmap *index; /* NULL before the first intern */
};

struct table {
    char **names;
    struct table_dict *dicts; /* ncols; NULL when every column is numeric */
    bool *categorical;        /* ncols */
    size_t ncols;
    size_t nrows;
    double *values; /* nrows * ncols, row-major */
    size_t values_cap;
    char *key_name;  /* NULL: rows have no key */
    char *key_bytes; /* every key, each NUL-terminated, back to back */
    size_t key_len;  /* bytes used in key_bytes */
    size_t key_cap;
    size_t *key_offset; /* key of row r starts at key_bytes + key_offset[r] */
    size_t key_offset_cap;
};

struct table *table_new_typed(const char *const *names, const bool *categorical, size_t ncols,
                              const char *key_name)
{
    struct table *t = mem_calloc(1, sizeof(*t));
    t->names = mem_calloc(ncols, sizeof(*t->names));
    t->categorical = mem_calloc(ncols, sizeof(*t->categorical));
    for (size_t c = 0; c < ncols; c++) {
        t->names[c] = mem_strdup(names[c]);
        t->categorical[c] = categorical && categorical[c];
        if (t->categorical[c] && !t->dicts)
            t->dicts = mem_calloc(ncols, sizeof(*t->dicts));
    }
    t->ncols = ncols;
    if (key_name)
        t->key_name = mem_strdup(key_name);
    return t;
}

struct table *table_new(const char *const *names, size_t ncols, const char *key_name)
{
    return table_new_typed(names, NULL, ncols, key_name);
}

static const void *dict_key_of(const void *owner, size_t code, size_t *len)
{
    const struct table_dict *d = owner;
    *len = d->lengths[code];
    return d->strings[code];
}

double table_intern(struct table *t, size_t c, const char *s, size_t len)
{
    assert(c < t->ncols && t->categorical[c]);
    struct table_dict *d = &t->dicts[c];
    if (!d->index)
        d->index = strmap_new(dict_key_of, d);
    size_t code = strmap_get(d->index, s, len);
    if (code != STRMAP_MISSING)
        return (double)code;
    code = d->count;
    mem_grow((void **)&d->strings, &d->strings_cap, code + 1, sizeof(*d->strings));
    mem_grow((void **)&d->lengths, &d->lengths_cap, code + 1, sizeof(*d->lengths));
    d->strings[code] = mem_strndup(s, len);
    d->lengths[code] = len;
    strmap_put(d->index, s, len, code);
    d->count++;
    return (double)code;
}

const char *const *table_dictionary(const struct table *t, size_t c, size_t *count)
{
    assert(c < t->ncols);
    if (!t->categorical[c] || t->dicts[c].count == 0) {
        *count = 0;
        return NULL;
    }
    *count = t->dicts[c].count;
    return (const char *const *)t->dicts[c].strings;
}

bool table_is_categorical(const struct table *t, size_t c)
{
    assert(c < t->ncols);
    return t->categorical[c];
}

/* True when every categorical value of the row is NAN or a code of its
 * column's dictionary. */
static bool row_codes_valid(const struct table *t, const double *values)
{
    if (!t->dicts)
        return true;
    for (size_t c = 0; c < t->ncols; c++) {
        if (!t->categorical[c] || isnan(values[c]))
            continue;
        double v = values[c];
        if (!(v >= 0 && v < (double)t->dicts[c].count && v == floor(v)))
            return false;
    }
    return true;
}

void table_append_row(struct table *t, const double *values, const char *key)
{
    assert(row_codes_valid(t, values));
    size_t need = (t->nrows + 1) * t->ncols;
    mem_grow((void **)&t->values, &t->values_cap, need, sizeof(*t->values));
    if (t->ncols > 0)
        memcpy(t->values + t->nrows * t->ncols, values, t->ncols * sizeof(*values));
    if (t->key_name) {
        const char *k = key ? key : "";
        size_t len = strlen(k) + 1;
        mem_grow((void **)&t->key_bytes, &t->key_cap, t->key_len + len, 1);
        memcpy(t->key_bytes + t->key_len, k, len);
        mem_grow((void **)&t->key_offset, &t->key_offset_cap, t->nrows + 1, sizeof(*t->key_offset));
        t->key_offset[t->nrows] = t->key_len;
        t->key_len += len;
    }
    t->nrows++;
}

size_t table_nrows(const struct table *t)
{
    return t->nrows;
}

size_t table_ncols(const struct table *t)
{
    return t->ncols;
}

const char *table_column_name(const struct table *t, size_t c)
{
    assert(c < t->ncols);
    return t->names[c];
}

long table_column_index(const struct table *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->names[c], name) == 0)
            return (long)c;
    return -1;
}

const double *table_values(const struct table *t)
{
    return t->nrows > 0 ? t->values : NULL;
}

const double *table_row(const struct table *t, size_t r)
{
    assert(r < t->nrows);
    return t->ncols > 0 ? t->values + r * t->ncols : NULL;
}

const char *table_key_name(const struct table *t)
{
    return t->key_name;
}

const char *table_key(const struct table *t, size_t r)
{
    assert(r < t->nrows);
    return t->key_name ? t->key_bytes + t->key_offset[r] : NULL;
}

/* Writes "a, b, c" (the column names) into buf, truncating to fit. */
static void format_names(const struct table *t, char *buf, size_t bufsz)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t c = 0; c < t->ncols && used < bufsz; c++) {
        int n = snprintf(buf + used, bufsz - used, "%s%s", c ? ", " : "", t->names[c]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int table_select(const struct table *t, const char *const *names, size_t n, double *out, char *err,
                 size_t errsz)
{
    int status = TB_OK;
    size_t *source = mem_calloc(n, sizeof(*source)); /* column of t feeding output column j */
    for (size_t j = 0; j < n; j++) {
        long c = table_column_index(t, names[j]);
        if (c < 0) {
            char have[512];
            format_names(t, have, sizeof(have));
            status = tb_fail(err, errsz, TB_NOTFOUND, "column '%s' not in table (have: %s)",
                             names[j], have);
            goto done;
        }
        source[j] = (size_t)c;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        const double *row = t->values + r * t->ncols;
        double *dst = out + r * n;
        for (size_t j = 0; j < n; j++)
            dst[j] = row[source[j]];
    }
done:
    free(source);
    return status;
}

void table_destroy(struct table *t)
{
    if (!t)
        return;
    free(t->key_offset);
    free(t->key_bytes);
    free(t->key_name);
    free(t->values);
    for (size_t c = 0; c < t->ncols; c++) {
        if (t->dicts) {
            struct table_dict *d = &t->dicts[c];
            strmap_destroy(d->index);
            for (size_t code = 0; code < d->count; code++)
                free(d->strings[code]);
            free(d->lengths);
            free(d->strings);
        }
        free(t->names[c]);
    }
    free(t->dicts);
    free(t->categorical);
    free(t->names);
    free(t);
}
