/* An in-memory table of named double columns, stored row-major, with an
 * optional string key per row: what the file readers hand to training and
 * batch scoring.
 *
 * Row r, column c is values[r * ncols + c]. Pointers returned by table_values,
 * table_row and table_key stay valid until the next table_append_row or
 * table_destroy (appending may move the storage).
 *
 * A column is numeric or categorical. A categorical column's cells hold codes
 * into the column's dictionary, which the table owns: 0, 1, 2, ... in the
 * order the strings were first interned, as doubles, and NAN for a missing
 * value. Pointers returned by table_dictionary stay valid until the next
 * table_intern on that column or table_destroy. */
#ifndef TRIBUTARY_TABLE_H
#define TRIBUTARY_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct table;

/* Creates an empty table with ncols columns named names[0..ncols-1] (copied);
 * column c is categorical when categorical[c] is true (categorical may be
 * NULL: every column numeric). key_name names the per-row string key (e.g.
 * "machine_id") and is copied; NULL means the rows have no key. Never fails;
 * free with table_destroy. */
struct table *table_new_typed(const char *const *names, const bool *categorical, size_t ncols,
                              const char *key_name);

/* table_new_typed with every column numeric. */
struct table *table_new(const char *const *names, size_t ncols, const char *key_name);

/* Appends one row: values holds ncols doubles (copied). A categorical column's
 * value must be NAN or a code table_intern returned for that column (checked
 * by an assert). key is copied when the table has keys (NULL is stored as ""),
 * and ignored when it has none. */
void table_append_row(struct table *t, const double *values, const char *key);

/* Returns the code of s[0..len) in the dictionary of categorical column c,
 * adding a copy of it (with a NUL after it) as the next code when it is new.
 * Strings are compared byte for byte; s need not be NUL-terminated, and ""
 * is a category like any other. Expected O(1) (a hash table). Never fails. */
double table_intern(struct table *t, size_t c, const char *s, size_t len);

/* Returns column c's dictionary, strings indexed by code, and their number in
 * *count; owned by the table. NULL with *count 0 for a numeric column (and
 * for a categorical column that has interned nothing yet). */
const char *const *table_dictionary(const struct table *t, size_t c, size_t *count);

/* True when column c (c < ncols) is categorical. */
bool table_is_categorical(const struct table *t, size_t c);

size_t table_nrows(const struct table *t);
size_t table_ncols(const struct table *t);

/* Returns the name of column c (c < ncols); owned by the table. */
const char *table_column_name(const struct table *t, size_t c);

/* Returns the index of the first column called name, or -1 if there is none. */
long table_column_index(const struct table *t, const char *name);

/* Returns the whole row-major block (nrows * ncols doubles), owned by the
 * table; NULL when the table has no rows. */
const double *table_values(const struct table *t);

/* Returns row r (r < nrows): ncols doubles owned by the table (NULL when
 * ncols is 0). */
const double *table_row(const struct table *t, size_t r);

/* Returns the key name given to table_new, or NULL when rows have no key. */
const char *table_key_name(const struct table *t);

/* Returns the key of row r (r < nrows), owned by the table; NULL when rows
 * have no key. */
const char *table_key(const struct table *t, size_t r);

/* Copies the columns called names[0..n-1], in that order, into out (nrows * n
 * doubles, row-major, allocated by the caller); a categorical column gives
 * its codes. Returns TB_OK, or TB_NOTFOUND
 * with "column 'x' not in table (have: a, b, c)" in err when a name is absent
 * (out is then unspecified). */
int table_select(const struct table *t, const char *const *names, size_t n, double *out, char *err,
                 size_t errsz);

/* Frees the table and everything it owns; accepts NULL. */
void table_destroy(struct table *t);

#endif
