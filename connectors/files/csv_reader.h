/* Reads a delimited text file (CSV, TSV, or whitespace-separated like NASA
 * C-MAPSS) into a table of the wanted numeric columns, for offline training
 * and batch scoring.
 *
 * Lines end in LF or CRLF; the last line may lack one. Blank lines (empty, or
 * only spaces and tabs that are not the delimiter) are skipped; line numbers
 * in messages count them. A UTF-8 byte order mark at the start is skipped. In
 * delimiter mode a field may be quoted ("a, ""b""" is a, "b"), and a quoted
 * field may span lines. Only the wanted columns are converted, so other
 * columns may hold anything. Numbers are parsed as in the "C" locale whatever
 * the process locale, and spaces around them are ignored. */
#ifndef TRIBUTARY_CSV_READER_H
#define TRIBUTARY_CSV_READER_H

#include "connectors/files/table.h"

#include <stdbool.h>
#include <stddef.h>

struct csv_reader_options {
    /* Field separator, e.g. ',' ';' '\t'; '\0' means ','. Ignored when
     * whitespace is set. Not '"', '\r' or '\n'. */
    char delimiter;
    /* Runs of spaces and tabs separate fields and blanks at either end of a
     * line are ignored; no quoting. */
    bool whitespace;
    /* The first non-blank line names the columns (names are trimmed of spaces
     * and tabs). Exactly one of header and column_names (ncolumn_names > 0)
     * must be given. */
    bool header;
    const char *const *column_names; /* names of the columns when there is no header */
    size_t ncolumn_names;
    /* The columns to read as doubles, in the order the table will have them
     * (no repeats; none at all gives a table that only counts rows and keys). */
    const char *const *columns;
    size_t ncolumns;
    /* The columns to read as strings into categorical table columns, placed
     * after the numeric columns in this order (no repeats, and none of them
     * also in columns). A cell is trimmed of spaces and tabs; an empty one is
     * missing (NAN) whatever allow_missing says; the rest are interned in the
     * column's dictionary (see table_intern). NULL and 0 for none. */
    const char *const *categorical;
    size_t ncategorical;
    /* A column kept as a string per row (trimmed, must not be empty); may
     * also be one of the wanted columns. NULL for none. */
    const char *key_column;
    /* An empty wanted numeric cell reads as NAN instead of being an error. */
    bool allow_missing;
};

/* Reads the file at path. Every line must have as many fields as the header
 * (or column_names), and every wanted numeric cell must be a finite number.
 *
 * Returns TB_OK and sets *out to a table (columns named as opts->columns, then
 * the categorical columns named as opts->categorical, key named
 * opts->key_column) that the caller frees with table_destroy. On failure
 * sets *out to NULL, writes a message naming the file, line and column into
 * err, e.g.
 *   "data.csv:17: column 'torque': 'abc' is not a number",
 *   "data.csv:3: expected 14 fields, found 13",
 *   "data.csv: column 'foo' not in header (have: a, b, c)",
 * and returns TB_IO (cannot open or read), TB_PARSE (malformed content),
 * TB_SCHEMA (a named column is absent from, or repeated in, the header) or
 * TB_USAGE (inconsistent options, e.g. "data.csv: column 'Type' is both
 * numeric and categorical"). */
int csv_reader_read(const char *path, const struct csv_reader_options *opts, struct table **out,
                    char *err, size_t errsz);

#endif
