/* Tests for the CSV reader and the table it fills: values written to small
 * files come back exactly, categorical columns give dictionaries and codes,
 * real data sets match Python's reading of them, and every error names the
 * file, line and column. */
#include "connectors/files/csv_reader.h"
#include "connectors/files/table.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *tmpdir;

static int group_setup(void **state)
{
    (void)state;
    tmpdir = support_mkdtemp("tributary-csv");
    return tmpdir ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = support_rmtree(tmpdir);
    free(tmpdir);
    return rc;
}

/* Writes len bytes of content (strlen when len is 0) to tmpdir/name and puts
 * the file's path in path. */
static void write_file(const char *name, const char *content, size_t len, char *path, size_t pathsz)
{
    snprintf(path, pathsz, "%s/%s", tmpdir, name);
    support_write_file(path, content, len == 0 ? strlen(content) : len);
}

/* Reads path with opts, failing the test with the reader's message if it fails. */
static struct table *read_ok(const char *path, const struct csv_reader_options *opts)
{
    char err[1024] = "";
    struct table *t = NULL;
    int rc = csv_reader_read(path, opts, &t, err, sizeof(err));
    if (rc != TB_OK)
        fail_msg("csv_reader_read(%s) failed (%d): %s", path, rc, err);
    assert_non_null(t);
    return t;
}

/* Deterministic values of many magnitudes and signs, exactly representable
 * as what "%.17g" prints. */
static double sample_value(size_t i)
{
    static const double scale[] = {1.0, 1e-3, 1e6, 1e-300, 1e300, 0.1, 123.456};
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    double unit = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
    double v = (unit - 0.5) * scale[i % (sizeof(scale) / sizeof(scale[0]))];
    return i % 11 == 0 ? 0.0 : v;
}

enum { RT_ROWS = 200, RT_COLS = 4 };

static void assert_same_double(double got, double want, const char *what, size_t r, size_t c)
{
    if (!(got == want || (isnan(got) && isnan(want))))
        fail_msg("%s row %zu col %zu: got %.17g, want %.17g", what, r, c, got, want);
}

/* Writes RT_ROWS rows of sample values with a key in column 0, using sep
 * between fields and around them (lead/trail), and checks they read back. */
static void round_trip(const char *name, const char *sep, const char *lead, const char *trail,
                       const struct csv_reader_options *opts)
{
    size_t cap = 0, len = 0;
    char *text = NULL;
    char line[1024];
    for (size_t r = 0; r < RT_ROWS; r++) {
        int n = snprintf(line, sizeof(line), "%smachine-%zu", lead, r % 7);
        for (size_t c = 0; c < RT_COLS; c++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%.17g", sep,
                          sample_value(r * RT_COLS + c));
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\n", trail);
        mem_grow((void **)&text, &cap, len + (size_t)n + 1, 1);
        memcpy(text + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    char path[PATH_MAX];
    write_file(name, text, len, path, sizeof(path));
    free(text);

    struct table *t = read_ok(path, opts);
    assert_int_equal(table_nrows(t), RT_ROWS);
    assert_int_equal(table_ncols(t), RT_COLS);
    assert_string_equal(table_key_name(t), "id");
    for (size_t r = 0; r < RT_ROWS; r++) {
        char want_key[32];
        snprintf(want_key, sizeof(want_key), "machine-%zu", r % 7);
        assert_string_equal(table_key(t, r), want_key);
        for (size_t c = 0; c < RT_COLS; c++)
            assert_same_double(table_row(t, r)[c], sample_value(r * RT_COLS + c), name, r, c);
    }
    table_destroy(t);
}

static const char *const rt_names[] = {"id", "a", "b", "c", "d"};
static const char *const rt_wanted[] = {"a", "b", "c", "d"};

static void test_comma_values_read_equal_values_written(void **state)
{
    (void)state;
    struct csv_reader_options o = {.column_names = rt_names,
                                   .ncolumn_names = 5,
                                   .columns = rt_wanted,
                                   .ncolumns = 4,
                                   .key_column = "id"};
    round_trip("rt_comma.csv", ",", "", "", &o);
}

static void test_whitespace_mode_ignores_runs_and_trailing_blanks(void **state)
{
    (void)state;
    struct csv_reader_options o = {.whitespace = true,
                                   .column_names = rt_names,
                                   .ncolumn_names = 5,
                                   .columns = rt_wanted,
                                   .ncolumns = 4,
                                   .key_column = "id"};
    round_trip("rt_ws.txt", " \t  ", "  ", "  \t ", &o);
}

/* Random decimals of the shapes data files hold, and some that are not:
 * signs, leading zeros, long fractions, exponents. */
static void random_decimal(uint64_t *state, char *buf, size_t bufsz)
{
    static const char digits[] = "0123456789";
    size_t n = 0;
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t x = *state >> 11;
    if (x % 3 == 0)
        buf[n++] = '-';
    else if (x % 17 == 0)
        buf[n++] = '+';
    x /= 17;
    int int_digits = (int)(x % 12), frac_digits = (int)((x / 12) % 22);
    x /= 12 * 22;
    for (int i = 0; i < int_digits; i++, x = x * 2862933555777941757ull + 3037000493ull)
        buf[n++] = digits[(x >> 33) % 10];
    if (frac_digits > 0 || int_digits == 0) {
        buf[n++] = '.';
        for (int i = 0; i < (frac_digits ? frac_digits : 1); i++)
            buf[n++] = digits[((x = x * 2862933555777941757ull + 3037000493ull) >> 33) % 10];
    }
    if ((x >> 20) % 4 == 0)
        n += (size_t)snprintf(buf + n, bufsz - n, "e%d", (int)((x >> 24) % 61) - 30);
    buf[n] = '\0';
}

static void test_numbers_equal_strtod(void **state)
{
    (void)state;
    enum { ROWS = 20000, COLS = 3 };
    char *text = NULL, **cells = mem_calloc(ROWS * COLS, sizeof(char *));
    size_t cap = 0, len = 0;
    uint64_t seed = 42;
    for (size_t i = 0; i < ROWS * COLS; i++) {
        char cell[64];
        random_decimal(&seed, cell, sizeof(cell));
        cells[i] = mem_strdup(cell);
        mem_grow((void **)&text, &cap, len + strlen(cell) + 2, 1);
        len += (size_t)sprintf(text + len, "%s%c", cell, i % COLS == COLS - 1 ? '\n' : ',');
    }
    char path[PATH_MAX];
    write_file("decimals.csv", text, len, path, sizeof(path));
    static const char *const names[] = {"a", "b", "c"};
    struct csv_reader_options o = {
        .column_names = names, .ncolumn_names = 3, .columns = names, .ncolumns = 3};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), ROWS);
    for (size_t i = 0; i < ROWS * COLS; i++) {
        double want = strtod(cells[i], NULL);
        double got = table_row(t, i / COLS)[i % COLS];
        if (memcmp(&got, &want, sizeof(got)) != 0)
            fail_msg("'%s': got %.17g, strtod gives %.17g", cells[i], got, want);
        free(cells[i]);
    }
    free(cells);
    free(text);
    table_destroy(t);
}

static void test_semicolon_delimiter(void **state)
{
    (void)state;
    struct csv_reader_options o = {.delimiter = ';',
                                   .column_names = rt_names,
                                   .ncolumn_names = 5,
                                   .columns = rt_wanted,
                                   .ncolumns = 4,
                                   .key_column = "id"};
    round_trip("rt_semicolon.csv", ";", "", "", &o);
}

static void test_tab_delimiter_keeps_empty_fields(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("tabs.tsv", "a\tb\tc\n1\t\t3\n", 0, path, sizeof(path));
    static const char *const want[] = {"c", "a"};
    struct csv_reader_options o = {
        .delimiter = '\t', .header = true, .columns = want, .ncolumns = 2};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 1);
    assert_true(table_row(t, 0)[0] == 3.0 && table_row(t, 0)[1] == 1.0);
    table_destroy(t);
}

static void test_selects_columns_in_requested_order_and_ignores_strings(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("ai4i_like.csv",
               "UDI,Product ID,Type,Torque [Nm],Machine failure\n"
               "1,M14860,M,42.8,0\n"
               "2,L47181,L,46.3,1\n",
               0, path, sizeof(path));
    static const char *const want[] = {"Machine failure", "Torque [Nm]", "UDI"};
    struct csv_reader_options o = {
        .header = true, .columns = want, .ncolumns = 3, .key_column = "Product ID"};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 2);
    assert_int_equal(table_ncols(t), 3);
    assert_string_equal(table_column_name(t, 0), "Machine failure");
    assert_string_equal(table_column_name(t, 2), "UDI");
    const double want0[] = {0, 42.8, 1}, want1[] = {1, 46.3, 2};
    for (size_t c = 0; c < 3; c++) {
        assert_same_double(table_row(t, 0)[c], want0[c], "row", 0, c);
        assert_same_double(table_row(t, 1)[c], want1[c], "row", 1, c);
    }
    assert_string_equal(table_key(t, 0), "M14860");
    assert_string_equal(table_key(t, 1), "L47181");
    table_destroy(t);
}

static void test_crlf_blank_lines_and_final_line_without_newline(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("crlf.csv", "x,y\r\n\r\n1,2\r\n   \r\n\n3,4\r\n\t\r\n5,6", 0, path, sizeof(path));
    static const char *const want[] = {"x", "y"};
    struct csv_reader_options o = {.header = true, .columns = want, .ncolumns = 2};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 3);
    for (size_t r = 0; r < 3; r++) {
        assert_same_double(table_row(t, r)[0], 2.0 * (double)r + 1, "x", r, 0);
        assert_same_double(table_row(t, r)[1], 2.0 * (double)r + 2, "y", r, 1);
    }
    table_destroy(t);
}

static void test_bom_and_spaces_around_header_names(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("bom.csv",
               "\xEF\xBB\xBF  UDI , Air temperature [K] ,\tTorque [Nm]\n1, 298.1 ,42.8\n", 0, path,
               sizeof(path));
    static const char *const want[] = {"UDI", "Air temperature [K]", "Torque [Nm]"};
    struct csv_reader_options o = {.header = true, .columns = want, .ncolumns = 3};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 1);
    assert_same_double(table_row(t, 0)[0], 1.0, "UDI", 0, 0);
    assert_same_double(table_row(t, 0)[1], 298.1, "air", 0, 1);
    assert_same_double(table_row(t, 0)[2], 42.8, "torque", 0, 2);
    table_destroy(t);
}

static void test_quoted_keys_are_unescaped(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("quoted_keys.csv",
               "\"id\",\"x\",note,y\n"
               "\"m \"\"1\"\"\", \"1.5\" ,\"a, b\",2\n"
               "\"m,2\",3,\"line one\r\nline \"\"two\"\"\",4\n",
               0, path, sizeof(path));
    static const char *const want[] = {"x", "y"};
    struct csv_reader_options o = {
        .header = true, .columns = want, .ncolumns = 2, .key_column = "id"};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 2);
    assert_string_equal(table_key(t, 0), "m \"1\"");
    assert_string_equal(table_key(t, 1), "m,2");
    assert_same_double(table_row(t, 0)[0], 1.5, "x", 0, 0);
    assert_same_double(table_row(t, 0)[1], 2.0, "y", 0, 1);
    assert_same_double(table_row(t, 1)[0], 3.0, "x", 1, 0);
    assert_same_double(table_row(t, 1)[1], 4.0, "y", 1, 1);
    table_destroy(t);

    static const char *const no_cols[] = {NULL};
    struct csv_reader_options notes = {
        .header = true, .columns = no_cols, .ncolumns = 0, .key_column = "note"};
    t = read_ok(path, &notes);
    assert_int_equal(table_ncols(t), 0);
    assert_int_equal(table_nrows(t), 2);
    assert_string_equal(table_key(t, 0), "a, b");
    assert_string_equal(table_key(t, 1), "line one\nline \"two\"");
    table_destroy(t);
}

static void test_allow_missing_reads_empty_cells_as_nan(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("missing.csv", "a,b\n1,\n, 2\n  ,\"\"\n", 0, path, sizeof(path));
    static const char *const want[] = {"a", "b"};
    struct csv_reader_options o = {
        .header = true, .columns = want, .ncolumns = 2, .allow_missing = true};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 3);
    assert_same_double(table_row(t, 0)[0], 1.0, "a", 0, 0);
    assert_true(isnan(table_row(t, 0)[1]));
    assert_true(isnan(table_row(t, 1)[0]));
    assert_same_double(table_row(t, 1)[1], 2.0, "b", 1, 1);
    assert_true(isnan(table_row(t, 2)[0]) && isnan(table_row(t, 2)[1]));
    table_destroy(t);
}

static void test_header_with_an_empty_column_names_list(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("header_empty_names.csv", "a,b\n1,2\n", 0, path, sizeof(path));
    static const char *const none[] = {NULL};
    static const char *const want[] = {"b"};
    struct csv_reader_options o = {
        .header = true, .column_names = none, .ncolumn_names = 0, .columns = want, .ncolumns = 1};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 1);
    assert_same_double(table_row(t, 0)[0], 2.0, "b", 0, 0);
    table_destroy(t);
}

static void test_header_only_gives_no_rows(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("header_only.csv", "a,b\n\n", 0, path, sizeof(path));
    static const char *const want[] = {"b"};
    struct csv_reader_options o = {.header = true, .columns = want, .ncolumns = 1};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 0);
    assert_null(table_values(t));
    table_destroy(t);
}

static void test_table_select_and_column_index(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("select.csv", "a,b,c\n1,2,3\n4,5,6\n", 0, path, sizeof(path));
    static const char *const want[] = {"a", "b", "c"};
    struct csv_reader_options o = {.header = true, .columns = want, .ncolumns = 3};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_column_index(t, "c"), 2);
    assert_int_equal(table_column_index(t, "zz"), -1);

    static const char *const pick[] = {"c", "a"};
    double out[4] = {0};
    char err[256] = "";
    assert_int_equal(table_select(t, pick, 2, out, err, sizeof(err)), TB_OK);
    const double expect[] = {3, 1, 6, 4};
    for (size_t i = 0; i < 4; i++)
        assert_same_double(out[i], expect[i], "select", i / 2, i % 2);

    static const char *const bad[] = {"a", "zz"};
    assert_int_equal(table_select(t, bad, 2, out, err, sizeof(err)), TB_NOTFOUND);
    assert_string_equal(err, "column 'zz' not in table (have: a, b, c)");
    table_destroy(t);
}

/* Asserts that cell is NAN (want NULL) or the code of want in dict. */
static void assert_category(const struct table *t, size_t r, size_t c, const char *want)
{
    double code = table_row(t, r)[c];
    if (!want) {
        if (!isnan(code))
            fail_msg("row %zu column '%s': code %g, want missing", r, table_column_name(t, c),
                     code);
        return;
    }
    size_t count = 0;
    const char *const *dict = table_dictionary(t, c, &count);
    if (isnan(code) || code < 0 || code >= (double)count || code != floor(code))
        fail_msg("row %zu column '%s': code %g is not in a dictionary of %zu", r,
                 table_column_name(t, c), code, count);
    if (strcmp(dict[(size_t)code], want) != 0)
        fail_msg("row %zu column '%s': '%s', want '%s'", r, table_column_name(t, c),
                 dict[(size_t)code], want);
}

static void assert_dictionary(const struct table *t, size_t c, const char *const *want, size_t n)
{
    size_t count = 0;
    const char *const *dict = table_dictionary(t, c, &count);
    assert_int_equal(count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(dict[i], want[i]);
}

/* Categorical columns come after the numeric ones, trimmed, in dictionaries of
 * first appearance; empty cells (quoted or not) are missing even without
 * allow_missing; the key column may also be categorical. */
static void test_categorical_columns_hold_codes_into_dictionaries(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("categorical.csv",
               "id,Type,speed,site\n"
               "m1, M ,1.5,north\n"
               "m2,L,2,\"south\"\n"
               "m3,,3,  \n"
               "m4,\"M\",4,\"\"\n"
               "m5,H,5,\" north\"\n"
               "m1,\"a, b\",6,North\n",
               0, path, sizeof(path));
    static const char *const numeric[] = {"speed"};
    static const char *const categorical[] = {"site", "Type", "id"};
    struct csv_reader_options o = {.header = true,
                                   .columns = numeric,
                                   .ncolumns = 1,
                                   .categorical = categorical,
                                   .ncategorical = 3,
                                   .key_column = "id"};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 6);
    assert_int_equal(table_ncols(t), 4);
    static const char *const names[] = {"speed", "site", "Type", "id"};
    for (size_t c = 0; c < 4; c++) {
        assert_string_equal(table_column_name(t, c), names[c]);
        assert_int_equal(table_is_categorical(t, c), c > 0);
    }
    static const double speed[] = {1.5, 2, 3, 4, 5, 6};
    static const char *const site[] = {"north", "south", NULL, NULL, "north", "North"};
    static const char *const type[] = {"M", "L", NULL, "M", "H", "a, b"};
    static const char *const id[] = {"m1", "m2", "m3", "m4", "m5", "m1"};
    for (size_t r = 0; r < 6; r++) {
        assert_same_double(table_row(t, r)[0], speed[r], "speed", r, 0);
        assert_category(t, r, 1, site[r]);
        assert_category(t, r, 2, type[r]);
        assert_category(t, r, 3, id[r]);
        assert_string_equal(table_key(t, r), id[r]);
    }
    static const char *const site_dict[] = {"north", "south", "North"};
    static const char *const type_dict[] = {"M", "L", "H", "a, b"};
    static const char *const id_dict[] = {"m1", "m2", "m3", "m4", "m5"};
    assert_dictionary(t, 1, site_dict, 3);
    assert_dictionary(t, 2, type_dict, 4);
    assert_dictionary(t, 3, id_dict, 5);
    /* codes are small integers in order of first appearance */
    assert_true(table_row(t, 4)[2] == 2.0 && table_row(t, 5)[1] == 2.0);
    size_t count = 9;
    assert_null(table_dictionary(t, 0, &count));
    assert_int_equal(count, 0);
    table_destroy(t);
}

/* A column can be read only as a category, in whitespace mode too. */
static void test_categorical_only_in_whitespace_mode(void **state)
{
    (void)state;
    char path[PATH_MAX];
    write_file("categorical.txt", "  1 OK x\n2 WARN   y \n3 OK z\n", 0, path, sizeof(path));
    static const char *const names[] = {"n", "state", "tag"};
    static const char *const categorical[] = {"state"};
    struct csv_reader_options o = {.whitespace = true,
                                   .column_names = names,
                                   .ncolumn_names = 3,
                                   .categorical = categorical,
                                   .ncategorical = 1};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_ncols(t), 1);
    assert_int_equal(table_nrows(t), 3);
    static const char *const dict[] = {"OK", "WARN"};
    assert_dictionary(t, 0, dict, 2);
    assert_category(t, 0, 0, "OK");
    assert_category(t, 1, 0, "WARN");
    assert_category(t, 2, 0, "OK");
    table_destroy(t);
}

/* One error case: the file's content (len 0: strlen), the options, and the
 * status and message expected ("%s" stands for the path). */
struct error_case {
    const char *content;
    size_t len;
    struct csv_reader_options opts;
    int status;
    const char *message;
};

static const char *const abc[] = {"a", "b", "c"};
static const char *const a_only[] = {"a"};
static const char *const b_only[] = {"b"};
static const char *const torque[] = {"torque"};
static const char *const foo[] = {"foo"};
static const char *const a_twice[] = {"a", "a"};
static const char *const xy[] = {"x", "y"};

#define HEADER_OPTS(cols, n)                                                                       \
    {                                                                                              \
        .header = true, .columns = (cols), .ncolumns = (n)                                         \
    }

static const struct error_case err_not_a_number = {"a,torque\n1,2\n\n3,abc\n", 0,
                                                   HEADER_OPTS(torque, 1), TB_PARSE,
                                                   "%s:4: column 'torque': 'abc' is not a number"};
static const struct error_case err_field_count = {"a,b,c\n1,2,3\n1,2\n", 0, HEADER_OPTS(a_only, 1),
                                                  TB_PARSE, "%s:3: expected 3 fields, found 2"};
static const struct error_case err_trailing_comma = {"a,b,c\n1,2,3,\n", 0, HEADER_OPTS(a_only, 1),
                                                     TB_PARSE, "%s:2: expected 3 fields, found 4"};
static const struct error_case err_not_in_header = {
    "a,b,c\n1,2,3\n", 0, HEADER_OPTS(foo, 1), TB_SCHEMA,
    "%s: column 'foo' not in header (have: a, b, c)"};
static const struct error_case err_not_in_names = {
    "1 2\n",
    0,
    {.whitespace = true, .column_names = xy, .ncolumn_names = 2, .columns = foo, .ncolumns = 1},
    TB_SCHEMA,
    "%s: column 'foo' not in column_names (have: x, y)"};
static const struct error_case err_key_not_in_header = {
    "a,b,c\n1,2,3\n",
    0,
    {.header = true, .columns = a_only, .ncolumns = 1, .key_column = "id"},
    TB_SCHEMA,
    "%s: column 'id' not in header (have: a, b, c)"};
static const struct error_case err_empty_value = {"a,b\n1,\n", 0, HEADER_OPTS(b_only, 1), TB_PARSE,
                                                  "%s:2: column 'b': empty value"};
static const struct error_case err_overflow = {"a,b\n1,1e999\n", 0, HEADER_OPTS(b_only, 1),
                                               TB_PARSE,
                                               "%s:2: column 'b': '1e999' is not a finite number"};
static const struct error_case err_nan_text = {
    "a,b\n1,nan\n",
    0,
    {.header = true, .columns = b_only, .ncolumns = 1, .allow_missing = true},
    TB_PARSE,
    "%s:2: column 'b': 'nan' is not a finite number"};
static const struct error_case err_hex = {"a,b\n1,0x10\n", 0, HEADER_OPTS(b_only, 1), TB_PARSE,
                                          "%s:2: column 'b': '0x10' is not a number"};
static const struct error_case err_trailing_garbage = {"a,b\n1,2.5kg\n", 0, HEADER_OPTS(b_only, 1),
                                                       TB_PARSE,
                                                       "%s:2: column 'b': '2.5kg' is not a number"};
static const struct error_case err_unclosed_quote = {
    "a,b\n1,\"2\n3,4\n", 0, HEADER_OPTS(b_only, 1), TB_PARSE,
    "%s:2: quoted field not closed at end of file"};
static const struct error_case err_text_after_quote = {"a,b\n1,\"2\"x\n", 0, HEADER_OPTS(b_only, 1),
                                                       TB_PARSE,
                                                       "%s:2: field 2: text after closing quote"};
static const struct error_case err_lines_count_quoted_newlines = {
    "a,b\n\"x\ny\",1\n2,zz\n", 0, HEADER_OPTS(b_only, 1), TB_PARSE,
    "%s:4: column 'b': 'zz' is not a number"};
static const struct error_case err_empty_file = {"", 0, HEADER_OPTS(a_only, 1), TB_PARSE,
                                                 "%s: empty file, expected a header line"};
static const struct error_case err_repeated_in_header = {
    "a,b,a\n1,2,3\n", 0, HEADER_OPTS(a_only, 1), TB_SCHEMA,
    "%s: column 'a' appears 2 times in header"};
static const struct error_case err_wanted_twice = {"a,b\n1,2\n", 0, HEADER_OPTS(a_twice, 2),
                                                   TB_USAGE, "%s: column 'a' is wanted twice"};
static const struct error_case err_header_and_names = {
    "a,b\n1,2\n",
    0,
    {.header = true, .column_names = abc, .ncolumn_names = 3, .columns = a_only, .ncolumns = 1},
    TB_USAGE,
    "%s: give either a header or column_names, not both"};
static const struct error_case err_no_names = {
    "1,2\n", 0, {.columns = a_only, .ncolumns = 1}, TB_USAGE, "%s: no header and no column_names"};
static const struct error_case err_empty_key = {
    "id,a\n,1\n",
    0,
    {.header = true, .columns = a_only, .ncolumns = 1, .key_column = "id"},
    TB_PARSE,
    "%s:2: column 'id': empty key"};
static const struct error_case err_nul_byte = {"a,b\n1,2\n3,\0\n", 11, HEADER_OPTS(b_only, 1),
                                               TB_PARSE,
                                               "%s:3: contains a NUL byte (not a text file?)"};
static const struct error_case err_whitespace_short_line = {
    "1 2 3  \n4 5  \n",
    0,
    {.whitespace = true, .column_names = abc, .ncolumn_names = 3, .columns = abc, .ncolumns = 3},
    TB_PARSE,
    "%s:2: expected 3 fields, found 2"};

static const char *const b_c[] = {"b", "c"};
static const char *const kind_only[] = {"kind"};
static const char *const c_only[] = {"c"};
static const char *const c_twice[] = {"c", "c"};
static const struct error_case err_both_numeric_and_categorical = {
    "a,b,c\n1,2,3\n",
    0,
    {.header = true, .columns = b_c, .ncolumns = 2, .categorical = c_only, .ncategorical = 1},
    TB_USAGE,
    "%s: column 'c' is both numeric and categorical"};
static const struct error_case err_categorical_wanted_twice = {
    "a,b,c\n1,2,3\n",
    0,
    {.header = true, .columns = a_only, .ncolumns = 1, .categorical = c_twice, .ncategorical = 2},
    TB_USAGE,
    "%s: column 'c' is wanted twice"};
static const struct error_case err_categorical_not_in_header = {
    "a,b,c\n1,2,3\n",
    0,
    {.header = true, .columns = a_only, .ncolumns = 1, .categorical = kind_only, .ncategorical = 1},
    TB_SCHEMA,
    "%s: column 'kind' not in header (have: a, b, c)"};
static const struct error_case err_categorical_field_count = {
    "a,b,c\n1,x,3\n1,y\n",
    0,
    {.header = true, .categorical = b_only, .ncategorical = 1},
    TB_PARSE,
    "%s:3: expected 3 fields, found 2"};
static const struct error_case err_categorical_list_null = {
    "a,b,c\n1,2,3\n",
    0,
    {.header = true, .ncategorical = 1},
    TB_USAGE,
    "%s: ncategorical is 1 but categorical is NULL"};

static void run_error_case(void **state)
{
    const struct error_case *c = *state;
    char path[PATH_MAX], expected[PATH_MAX + 256], err[1024] = "";
    write_file("error_case.csv", c->content, c->len, path, sizeof(path));
    assert_memory_equal(c->message, "%s", 2); /* every message starts with the path */
    snprintf(expected, sizeof(expected), "%s%s", path, c->message + 2);
    static char sentinel;
    struct table *t = (struct table *)&sentinel; /* the reader must set it to NULL */
    int rc = csv_reader_read(path, &c->opts, &t, err, sizeof(err));
    assert_null(t);
    assert_string_equal(err, expected);
    assert_int_equal(rc, c->status);
}

static void test_missing_file_names_the_file(void **state)
{
    (void)state;
    char path[PATH_MAX], expected[PATH_MAX + 64], err[1024] = "";
    snprintf(path, sizeof(path), "%s/no-such-file.csv", tmpdir);
    snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
    struct table *t = NULL;
    struct csv_reader_options o = HEADER_OPTS(a_only, 1);
    assert_int_equal(csv_reader_read(path, &o, &t, err, sizeof(err)), TB_IO);
    assert_null(t);
    assert_string_equal(err, expected);
}

/* Parses n numbers from the line at *cursor into out and moves *cursor to the
 * next line. */
static void parse_numbers(char **cursor, double *out, size_t n)
{
    char *s = *cursor;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        out[i] = strtod(s, &end);
        if (end == s)
            fail_msg("python output: expected %zu numbers, got %zu: %.200s", n, i, *cursor);
        s = end;
    }
    char *nl = strchr(s, '\n');
    *cursor = nl ? nl + 1 : s + strlen(s);
}

/* Takes the next line of python output (without its newline) from *cursor. */
static char *next_line(char **cursor)
{
    char *line = *cursor;
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    *cursor = nl + 1;
    return line;
}

/* Compares a table with python's count, first row, last row and column sums
 * (summed in row order, so equal to the last bit when every value is). */
static void compare_with_python(const struct table *t, char **cursor, const char *what)
{
    size_t nc = table_ncols(t), nr = table_nrows(t);
    double count = 0;
    parse_numbers(cursor, &count, 1);
    assert_int_equal(nr, (size_t)count);
    double *first = mem_alloc(nc * sizeof(double)), *last = mem_alloc(nc * sizeof(double));
    double *sums = mem_alloc(nc * sizeof(double)), *mine = mem_calloc(nc, sizeof(double));
    parse_numbers(cursor, first, nc);
    parse_numbers(cursor, last, nc);
    parse_numbers(cursor, sums, nc);
    for (size_t r = 0; r < nr; r++)
        for (size_t c = 0; c < nc; c++)
            mine[c] += table_row(t, r)[c];
    for (size_t c = 0; c < nc; c++) {
        assert_same_double(table_row(t, 0)[c], first[c], what, 0, c);
        assert_same_double(table_row(t, nr - 1)[c], last[c], what, nr - 1, c);
        assert_same_double(mine[c], sums[c], what, nr, c);
    }
    free(mine);
    free(sums);
    free(last);
    free(first);
}

static const char cmapss_script[] =
    "import sys\n"
    "rows = [[float(x) for x in line.split()] for line in open(sys.argv[1]) if line.strip()]\n"
    "sums = [0.0] * len(rows[0])\n"
    "for r in rows:\n"
    "    for i, v in enumerate(r):\n"
    "        sums[i] += v\n"
    "print(len(rows))\n"
    "for r in (rows[0], rows[-1], sums):\n"
    "    print(' '.join(repr(v) for v in r))\n";

static void test_cmapss_fd001_matches_python(void **state)
{
    (void)state;
    char path[PATH_MAX];
    support_data_path("cmapss/train_FD001.txt", path, sizeof(path));
    const char *names[26] = {"unit", "cycle", "setting1", "setting2", "setting3"};
    char sensor[21][8];
    for (int i = 0; i < 21; i++) {
        snprintf(sensor[i], sizeof(sensor[i]), "s%d", i + 1);
        names[5 + i] = sensor[i];
    }
    struct csv_reader_options o = {.whitespace = true,
                                   .column_names = names,
                                   .ncolumn_names = 26,
                                   .columns = names,
                                   .ncolumns = 26,
                                   .key_column = "unit"};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 20631);
    assert_string_equal(table_column_name(t, 25), "s21");
    assert_string_equal(table_key(t, 0), "1");
    assert_string_equal(table_key(t, table_nrows(t) - 1), "100");

    char *out = support_python("-c", cmapss_script, path, NULL);
    char *cursor = out;
    compare_with_python(t, &cursor, "train_FD001");
    free(out);
    table_destroy(t);
}

static const char ai4i_script[] = "import csv, sys\n"
                                  "cols = sys.argv[2].split('|')\n"
                                  "with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n"
                                  "    recs = list(csv.DictReader(f))\n"
                                  "rows = [[float(r[c]) for c in cols] for r in recs]\n"
                                  "sums = [0.0] * len(cols)\n"
                                  "for r in rows:\n"
                                  "    for i, v in enumerate(r):\n"
                                  "        sums[i] += v\n"
                                  "print(len(rows))\n"
                                  "for r in (rows[0], rows[-1], sums):\n"
                                  "    print(' '.join(repr(v) for v in r))\n"
                                  "print(recs[0]['Product ID'])\n"
                                  "print(recs[-1]['Product ID'])\n";

static void test_ai4i_2020_matches_python(void **state)
{
    (void)state;
    char path[PATH_MAX];
    support_data_path("ai4i/ai4i2020.csv", path, sizeof(path));
    static const char *const want[] = {"Air temperature [K]",
                                       "Process temperature [K]",
                                       "Rotational speed [rpm]",
                                       "Torque [Nm]",
                                       "Tool wear [min]",
                                       "Machine failure",
                                       "TWF",
                                       "UDI"};
    struct csv_reader_options o = {
        .header = true, .columns = want, .ncolumns = 8, .key_column = "Product ID"};
    struct table *t = read_ok(path, &o);
    assert_int_equal(table_nrows(t), 10000);

    char *out = support_python("-c", ai4i_script, path,
                               "Air temperature [K]|Process temperature [K]|Rotational speed "
                               "[rpm]|Torque [Nm]|Tool wear [min]|Machine failure|TWF|UDI",
                               NULL);
    char *cursor = out;
    compare_with_python(t, &cursor, "ai4i2020");
    assert_string_equal(table_key(t, 0), next_line(&cursor));
    assert_string_equal(table_key(t, table_nrows(t) - 1), next_line(&cursor));
    free(out);
    table_destroy(t);
}

/* Counts the Type column of AI4I with Python's csv module: the categories in
 * order of first appearance and their counts, then every row's value. */
static const char ai4i_type_script[] =
    "import csv, sys\n"
    "with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n"
    "    values = [r['Type'].strip() for r in csv.DictReader(f)]\n"
    "order, counts = [], {}\n"
    "for v in values:\n"
    "    if v not in counts:\n"
    "        order.append(v)\n"
    "        counts[v] = 0\n"
    "    counts[v] += 1\n"
    "print('|'.join(order))\n"
    "print(' '.join(str(counts[v]) for v in order))\n"
    "print('\\n'.join(values))\n";

static void test_ai4i_type_as_categorical_matches_python(void **state)
{
    (void)state;
    char path[PATH_MAX];
    support_data_path("ai4i/ai4i2020.csv", path, sizeof(path));
    static const char *const numeric[] = {"Torque [Nm]"};
    static const char *const categorical[] = {"Type"};
    struct csv_reader_options o = {.header = true,
                                   .columns = numeric,
                                   .ncolumns = 1,
                                   .categorical = categorical,
                                   .ncategorical = 1,
                                   .key_column = "Product ID"};
    struct table *t = read_ok(path, &o);
    size_t nrows = table_nrows(t);
    assert_int_equal(nrows, 10000);
    assert_true(table_is_categorical(t, 1));
    assert_string_equal(table_column_name(t, 1), "Type");

    /* the dictionary is exactly M, L, H in order of first appearance */
    static const char *const mlh[] = {"M", "L", "H"};
    assert_dictionary(t, 1, mlh, 3);

    char *out = support_python("-c", ai4i_type_script, path, NULL);
    char *cursor = out;
    char *order = next_line(&cursor);
    assert_string_equal(order, "M|L|H");
    double want_counts[3];
    parse_numbers(&cursor, want_counts, 3);
    size_t counts[3] = {0};
    for (size_t r = 0; r < nrows; r++) {
        double code = table_row(t, r)[1];
        assert_true(code == 0 || code == 1 || code == 2);
        counts[(size_t)code]++;
        assert_category(t, r, 1, next_line(&cursor));
    }
    for (size_t k = 0; k < 3; k++)
        if ((double)counts[k] != want_counts[k])
            fail_msg("Type '%s': %zu rows, Python counts %g", mlh[k], counts[k], want_counts[k]);
    assert_int_equal(counts[0] + counts[1] + counts[2], nrows);
    free(out);
    table_destroy(t);
}

#define ERROR_CASE(name)                                                                           \
    {                                                                                              \
        "error: " #name, run_error_case, NULL, NULL, (void *)&err_##name                           \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comma_values_read_equal_values_written),
        cmocka_unit_test(test_whitespace_mode_ignores_runs_and_trailing_blanks),
        cmocka_unit_test(test_numbers_equal_strtod),
        cmocka_unit_test(test_semicolon_delimiter),
        cmocka_unit_test(test_tab_delimiter_keeps_empty_fields),
        cmocka_unit_test(test_selects_columns_in_requested_order_and_ignores_strings),
        cmocka_unit_test(test_crlf_blank_lines_and_final_line_without_newline),
        cmocka_unit_test(test_bom_and_spaces_around_header_names),
        cmocka_unit_test(test_quoted_keys_are_unescaped),
        cmocka_unit_test(test_allow_missing_reads_empty_cells_as_nan),
        cmocka_unit_test(test_header_only_gives_no_rows),
        cmocka_unit_test(test_header_with_an_empty_column_names_list),
        cmocka_unit_test(test_table_select_and_column_index),
        cmocka_unit_test(test_missing_file_names_the_file),
        cmocka_unit_test(test_categorical_columns_hold_codes_into_dictionaries),
        cmocka_unit_test(test_categorical_only_in_whitespace_mode),
        ERROR_CASE(not_a_number),
        ERROR_CASE(field_count),
        ERROR_CASE(trailing_comma),
        ERROR_CASE(not_in_header),
        ERROR_CASE(not_in_names),
        ERROR_CASE(key_not_in_header),
        ERROR_CASE(empty_value),
        ERROR_CASE(overflow),
        ERROR_CASE(nan_text),
        ERROR_CASE(hex),
        ERROR_CASE(trailing_garbage),
        ERROR_CASE(unclosed_quote),
        ERROR_CASE(text_after_quote),
        ERROR_CASE(lines_count_quoted_newlines),
        ERROR_CASE(empty_file),
        ERROR_CASE(repeated_in_header),
        ERROR_CASE(wanted_twice),
        ERROR_CASE(header_and_names),
        ERROR_CASE(no_names),
        ERROR_CASE(empty_key),
        ERROR_CASE(nul_byte),
        ERROR_CASE(whitespace_short_line),
        ERROR_CASE(both_numeric_and_categorical),
        ERROR_CASE(categorical_wanted_twice),
        ERROR_CASE(categorical_not_in_header),
        ERROR_CASE(categorical_field_count),
        ERROR_CASE(categorical_list_null),
        cmocka_unit_test(test_cmapss_fd001_matches_python),
        cmocka_unit_test(test_ai4i_2020_matches_python),
        cmocka_unit_test(test_ai4i_type_as_categorical_matches_python),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
