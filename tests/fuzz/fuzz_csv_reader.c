/* libFuzzer target for the CSV reader: arbitrary bytes as a delimited text file, read with
 * csv_reader_read from an in-memory file. The first byte picks the reader's options, the rest is
 * the file. An accepted file must give the table the options promise; in the one-number-per-line
 * mode every value must also be the one strtod gives for its text. */
#include "connectors/files/csv_reader.h"
#include "connectors/files/table.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/fuzz/harness.h"

#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bits of the first byte. */
enum {
    FUZZ_DELIMITER_MASK = 0x03, /* ',' ';' '\t' or whitespace-separated */
    FUZZ_HEADER = 0x04,         /* a header line, else column_names */
    FUZZ_ALLOW_MISSING = 0x08,
    FUZZ_KEY = 0x10,     /* column k is the key */
    FUZZ_NUMBERS = 0x20, /* one number per line, checked against strtod; other bits ignored */
};

/* The file's columns when there is no header; a, b numeric, c categorical, k the key. */
static const char *const fuzz_names[] = {"k", "a", "b", "c"};
static const char *const fuzz_numeric[] = {"a", "b"};
static const char *const fuzz_categorical[] = {"c"};
static const char *const fuzz_number_column[] = {"v"};

/* Checks an accepted table against the options. */
static void fuzz_check_table(const struct table *t, const struct csv_reader_options *o)
{
    size_t nnumeric = o->ncolumns, ncols = nnumeric + o->ncategorical;
    HARNESS_ASSERT(table_ncols(t) == ncols);
    size_t ncodes = 0;
    if (o->ncategorical)
        (void)table_dictionary(t, nnumeric, &ncodes);
    for (size_t r = 0; r < table_nrows(t); r++) {
        const double *row = table_row(t, r);
        for (size_t c = 0; c < nnumeric; c++)
            HARNESS_ASSERT(isfinite(row[c]) || (o->allow_missing && isnan(row[c])));
        for (size_t c = nnumeric; c < ncols; c++)
            HARNESS_ASSERT(isnan(row[c]) ||
                           (row[c] >= 0 && row[c] < (double)ncodes && row[c] == floor(row[c])));
        if (o->key_column) {
            const char *key = table_key(t, r);
            HARNESS_ASSERT(key && key[0] != '\0' && key[0] != ' ' && key[0] != '\t');
        }
    }
}

/* Whether c is a blank that the whitespace mode skips. */
static bool fuzz_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* In the one-number-per-line mode: compares each row with strtod on the text of its line. */
static void fuzz_check_numbers(const struct table *t, const char *text, size_t len)
{
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    HARNESS_ASSERT(c_locale != (locale_t)0);
    char *copy = mem_strndup(text, len);
    char *line = copy;
    if (strncmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    size_t r = 0;
    while (line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        while (n > 0 && fuzz_is_blank(line[n - 1]))
            line[--n] = '\0';
        while (fuzz_is_blank(*line))
            line++;
        if (*line) {
            HARNESS_ASSERT(r < table_nrows(t));
            char *end = NULL;
            double want = strtod_l(line, &end, c_locale);
            HARNESS_ASSERT(*end == '\0');
            double got = table_row(t, r)[0];
            if (memcmp(&got, &want, sizeof got) != 0) {
                fprintf(stderr, "fuzz_csv_reader: '%s' read as %.17g, strtod gives %.17g\n", line,
                        got, want);
                HARNESS_ASSERT(false);
            }
            r++;
        }
        line = next;
    }
    HARNESS_ASSERT(r == table_nrows(t));
    free(copy);
    freelocale(c_locale);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct csv_reader_options o = {0};
    if (mode & FUZZ_NUMBERS) {
        o = (struct csv_reader_options){.whitespace = true,
                                        .column_names = fuzz_number_column,
                                        .ncolumn_names = 1,
                                        .columns = fuzz_number_column,
                                        .ncolumns = 1};
    } else {
        static const char delimiters[] = {',', ';', '\t', '\0'};
        o.delimiter = delimiters[mode & FUZZ_DELIMITER_MASK];
        o.whitespace = o.delimiter == '\0';
        o.header = mode & FUZZ_HEADER;
        if (!o.header) {
            o.column_names = fuzz_names;
            o.ncolumn_names = 4;
        }
        o.columns = fuzz_numeric;
        o.ncolumns = 2;
        o.categorical = fuzz_categorical;
        o.ncategorical = 1;
        o.key_column = mode & FUZZ_KEY ? "k" : NULL;
        o.allow_missing = mode & FUZZ_ALLOW_MISSING;
    }

    struct table *t = NULL;
    char err[1024] = "";
    int rc = csv_reader_read(harness_file(text, len), &o, &t, err, sizeof err);
    if (rc == TB_OK) {
        HARNESS_ASSERT(t);
        fuzz_check_table(t, &o);
        /* Text with a NUL is refused, so strings are safe to take from here. */
        if (mode & FUZZ_NUMBERS)
            fuzz_check_numbers(t, text, len);
    } else {
        HARNESS_ASSERT(!t && err[0] != '\0');
        HARNESS_ASSERT(rc == TB_PARSE || rc == TB_SCHEMA);
    }
    table_destroy(t);
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
    return harness_replay_main(argc, argv, "csv_reader", LLVMFuzzerTestOneInput);
}
#endif
