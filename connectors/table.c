/* An in-memory table of named double columns with optional per-row keys. */
#include "connectors/table.h"

#include "service/error.h"
#include "service/mem.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct table {
    char **names;
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

struct table *table_new(const char *const *names, size_t ncols, const char *key_name)
{
    struct table *t = mem_calloc(1, sizeof(*t));
    t->names = mem_calloc(ncols, sizeof(*t->names));
    for (size_t c = 0; c < ncols; c++)
        t->names[c] = mem_strdup(names[c]);
    t->ncols = ncols;
    if (key_name)
        t->key_name = mem_strdup(key_name);
    return t;
}

void table_append_row(struct table *t, const double *values, const char *key)
{
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
            goto cleanup;
        }
        source[j] = (size_t)c;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        const double *row = t->values + r * t->ncols;
        double *dst = out + r * n;
        for (size_t j = 0; j < n; j++)
            dst[j] = row[source[j]];
    }
cleanup:
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
    for (size_t c = 0; c < t->ncols; c++)
        free(t->names[c]);
    free(t->names);
    free(t);
}
