/* Delimited text files (CSV, TSV, whitespace-separated) to tables. */
#include "connectors/files/csv_reader.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_BYTES = 64 * 1024, MAX_SHOWN_NAMES_BYTES = 512 };

/* The state of one read: the file, the current record split into fields, and
 * where we are for messages. */
struct parser {
    const char *path;
    FILE *fp;
    char delimiter; /* '\0' in whitespace mode */
    char *chunk;    /* bytes read from fp but not yet consumed: chunk[pos..end) */
    size_t pos, end;
    bool eof;
    char *record; /* current record, NUL-terminated; lines of a quoted field joined by '\n' */
    size_t record_len, record_cap;
    size_t lineno;      /* physical lines consumed so far */
    size_t record_line; /* line on which the current record starts */
    char **fields;      /* point into record, each NUL-terminated */
    size_t nfields, fields_cap;
};

static bool is_blank_char(char c, char delimiter)
{
    return (c == ' ' || c == '\t') && c != delimiter;
}

/* Appends the next physical line (without its LF or CRLF) to p->record.
 * Returns 1 when a line was read, 0 at end of file, or TB_IO / TB_PARSE. */
static int read_line(struct parser *p, char *err, size_t errsz)
{
    size_t start = p->record_len;
    bool got = false;
    for (;;) {
        if (p->pos == p->end) {
            if (p->eof)
                break;
            size_t n = fread(p->chunk, 1, CHUNK_BYTES, p->fp);
            if (n == 0) {
                if (ferror(p->fp))
                    return tb_fail(err, errsz, TB_IO, "%s: read failed after line %zu", p->path,
                                   p->lineno);
                p->eof = true;
                break;
            }
            p->pos = 0;
            p->end = n;
        }
        got = true;
        char *from = p->chunk + p->pos;
        char *nl = memchr(from, '\n', p->end - p->pos);
        size_t take = nl ? (size_t)(nl - from) : p->end - p->pos;
        mem_grow((void **)&p->record, &p->record_cap, p->record_len + take + 1, 1);
        memcpy(p->record + p->record_len, from, take);
        p->record_len += take;
        p->pos += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!got)
        return 0;
    p->lineno++;
    if (p->record_len > start && p->record[p->record_len - 1] == '\r')
        p->record_len--;
    p->record[p->record_len] = '\0';
    if (memchr(p->record + start, '\0', p->record_len - start))
        return tb_fail(err, errsz, TB_PARSE, "%s:%zu: contains a NUL byte (not a text file?)",
                       p->path, p->lineno);
    if (p->lineno == 1 && p->record_len >= 3 && memcmp(p->record, "\xEF\xBB\xBF", 3) == 0) {
        memmove(p->record, p->record + 3, p->record_len - 3 + 1);
        p->record_len -= 3;
    }
    return 1;
}

/* True when s ends inside a quoted field, so the record continues on the next
 * line. Follows the same rules as split_delimited. */
static bool record_is_open(const char *s, size_t len, char delimiter)
{
    bool field_start = true, quoted = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < len && s[i + 1] == '"')
                    i++;
                else
                    quoted = false;
            }
        } else if (c == delimiter) {
            field_start = true;
        } else if (field_start && c == '"') {
            quoted = true;
            field_start = false;
        } else if (!(field_start && is_blank_char(c, delimiter))) {
            field_start = false;
        }
    }
    return quoted;
}

static void add_field(struct parser *p, char *field)
{
    mem_grow((void **)&p->fields, &p->fields_cap, p->nfields + 1, sizeof(*p->fields));
    p->fields[p->nfields++] = field;
}

/* Splits p->record in place at the delimiter, unquoting quoted fields ("" is
 * a literal quote; blanks around the quotes are dropped). Returns TB_OK or
 * TB_PARSE. */
static int split_delimited(struct parser *p, char *err, size_t errsz)
{
    const char d = p->delimiter;
    char *r = p->record, *w = p->record; /* read and write positions; w <= r throughout */
    char *end = p->record + p->record_len;
    p->nfields = 0;
    for (;;) {
        add_field(p, w);
        char *q = r;
        while (q < end && is_blank_char(*q, d))
            q++;
        if (q < end && *q == '"') {
            r = q + 1;
            for (;;) {
                if (r == end)
                    return tb_fail(err, errsz, TB_PARSE,
                                   "%s:%zu: field %zu: quoted field not closed at end of file",
                                   p->path, p->record_line, p->nfields);
                if (*r == '"') {
                    if (r + 1 < end && r[1] == '"') {
                        *w++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                *w++ = *r++;
            }
            while (r < end && is_blank_char(*r, d))
                r++;
            if (r < end && *r != d)
                return tb_fail(err, errsz, TB_PARSE, "%s:%zu: field %zu: text after closing quote",
                               p->path, p->record_line, p->nfields);
        } else {
            while (r < end && *r != d)
                *w++ = *r++;
        }
        bool more = r < end; /* r is at a delimiter */
        *w++ = '\0';
        if (!more)
            return TB_OK;
        r++;
    }
}

/* Splits p->record in place at runs of spaces and tabs. */
static void split_whitespace(struct parser *p)
{
    char *r = p->record, *end = p->record + p->record_len;
    p->nfields = 0;
    for (;;) {
        while (r < end && is_blank_char(*r, '\0'))
            r++;
        if (r == end)
            return;
        add_field(p, r);
        while (r < end && !is_blank_char(*r, '\0'))
            r++;
        if (r < end)
            *r++ = '\0';
    }
}

/* Reads the next non-blank record into p->fields. Returns 1 when there is
 * one, 0 at end of file, or TB_IO / TB_PARSE. */
static int next_record(struct parser *p, char *err, size_t errsz)
{
    for (;;) {
        p->record_len = 0;
        int rc = read_line(p, err, errsz);
        if (rc <= 0)
            return rc;
        bool blank = true;
        for (size_t i = 0; i < p->record_len && blank; i++)
            blank = is_blank_char(p->record[i], p->delimiter);
        if (!blank)
            break;
    }
    p->record_line = p->lineno;
    if (p->delimiter == '\0') {
        split_whitespace(p);
        return 1;
    }
    if (memchr(p->record, '"', p->record_len)) {
        while (record_is_open(p->record, p->record_len, p->delimiter)) {
            mem_grow((void **)&p->record, &p->record_cap, p->record_len + 2, 1);
            p->record[p->record_len++] = '\n';
            int rc = read_line(p, err, errsz);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return tb_fail(err, errsz, TB_PARSE,
                               "%s:%zu: quoted field not closed at end of file", p->path,
                               p->record_line);
        }
    }
    int rc = split_delimited(p, err, errsz);
    return rc < 0 ? rc : 1;
}

/* Trims spaces and tabs from both ends of a NUL-terminated field, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
    return s;
}

/* Writes "a, b, c" into buf, truncating to fit. */
static void format_names(const char *const *names, size_t n, char *buf, size_t bufsz)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < bufsz; i++) {
        int k = snprintf(buf + used, bufsz - used, "%s%s", i ? ", " : "", names[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* Finds the one column called name among names; returns TB_OK and *index, or
 * TB_SCHEMA when it is absent or appears more than once. */
static int find_column(const char *path, bool header, const char *const *names, size_t n,
                       const char *name, size_t *index, char *err, size_t errsz)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            if (found++ == 0)
                *index = i;
        }
    }
    const char *where = header ? "header" : "column_names";
    if (found == 1)
        return TB_OK;
    if (found > 1)
        return tb_fail(err, errsz, TB_SCHEMA, "%s: column '%s' appears %zu times in %s", path, name,
                       found, where);
    char have[MAX_SHOWN_NAMES_BYTES];
    format_names(names, n, have, sizeof(have));
    return tb_fail(err, errsz, TB_SCHEMA, "%s: column '%s' not in %s (have: %s)", path, name, where,
                   have);
}

static int check_options(const char *path, const struct csv_reader_options *o, char *err,
                         size_t errsz)
{
    if (o->header && o->ncolumn_names > 0)
        return tb_fail(err, errsz, TB_USAGE, "%s: give either a header or column_names, not both",
                       path);
    if (!o->header && (!o->column_names || o->ncolumn_names == 0))
        return tb_fail(err, errsz, TB_USAGE, "%s: no header and no column_names", path);
    if (!o->whitespace && (o->delimiter == '"' || o->delimiter == '\r' || o->delimiter == '\n'))
        return tb_fail(err, errsz, TB_USAGE, "%s: the delimiter cannot be a quote or line end",
                       path);
    if (o->ncolumns > 0 && !o->columns)
        return tb_fail(err, errsz, TB_USAGE, "%s: ncolumns is %zu but columns is NULL", path,
                       o->ncolumns);
    if (o->ncategorical > 0 && !o->categorical)
        return tb_fail(err, errsz, TB_USAGE, "%s: ncategorical is %zu but categorical is NULL",
                       path, o->ncategorical);
    for (size_t j = 0; j < o->ncolumns; j++)
        for (size_t k = 0; k < j; k++)
            if (strcmp(o->columns[j], o->columns[k]) == 0)
                return tb_fail(err, errsz, TB_USAGE, "%s: column '%s' is wanted twice", path,
                               o->columns[j]);
    for (size_t j = 0; j < o->ncategorical; j++) {
        for (size_t k = 0; k < j; k++)
            if (strcmp(o->categorical[j], o->categorical[k]) == 0)
                return tb_fail(err, errsz, TB_USAGE, "%s: column '%s' is wanted twice", path,
                               o->categorical[j]);
        for (size_t k = 0; k < o->ncolumns; k++)
            if (strcmp(o->categorical[j], o->columns[k]) == 0)
                return tb_fail(err, errsz, TB_USAGE,
                               "%s: column '%s' is both numeric and categorical", path,
                               o->categorical[j]);
    }
    return TB_OK;
}

/* Parses the common short decimal ("518.67", "-0.0007", "1e-3") without
 * strtod, which dominates reading time otherwise. Exact: when the digits form
 * an integer m <= 2^53 and the power of ten is at most 22, both m and 10^k are
 * doubles, so m * 10^k or m / 10^k is one correctly rounded operation, the
 * same result strtod gives (Clinger's fast path). Returns false for anything
 * else, which then goes to strtod. */
static bool parse_short_decimal(const char *s, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (FLT_EVAL_METHOD != 0) /* x87 would round twice */
        return false;
    const char *p = s;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    uint64_t mantissa = 0;
    int significant = 0, exp10 = 0;
    bool any_digit = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        any_digit = true;
        if (mantissa == 0 && *p == '0')
            continue;
        if (++significant > 19)
            return false;
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            any_digit = true;
            exp10--;
            if (mantissa == 0 && *p == '0')
                continue;
            if (++significant > 19)
                return false;
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        }
    }
    if (!any_digit)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        bool exp_negative = *p == '-';
        if (*p == '-' || *p == '+')
            p++;
        int e = 0, exp_digits = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++exp_digits > 4)
                return false;
            e = e * 10 + (*p - '0');
        }
        if (exp_digits == 0)
            return false;
        exp10 += exp_negative ? -e : e;
    }
    if (*p != '\0' || mantissa > (UINT64_C(1) << 53))
        return false;
    double v = (double)mantissa;
    if (mantissa != 0) {
        if (exp10 < -22 || exp10 > 22)
            return false;
        v = exp10 < 0 ? v / pow10[-exp10] : v * pow10[exp10];
    }
    *out = negative ? -v : v;
    return true;
}

/* Converts one wanted cell (trimmed in place). Returns TB_OK or TB_PARSE. */
static int parse_cell(const struct parser *p, const char *column, char *cell, bool allow_missing,
                      locale_t c_locale, double *out, char *err, size_t errsz)
{
    char *s = trim(cell);
    if (*s == '\0') {
        if (allow_missing) {
            *out = NAN;
            return TB_OK;
        }
        return tb_fail(err, errsz, TB_PARSE, "%s:%zu: column '%s': empty value", p->path,
                       p->record_line, column);
    }
    if (parse_short_decimal(s, out))
        return TB_OK;
    char *end = NULL;
    double v = strtod_l(s, &end, c_locale);
    /* strtod also takes hexadecimal ("0x1p3"), which no data file means. */
    if (end == s || *end != '\0' || strpbrk(s, "xX"))
        return tb_fail(err, errsz, TB_PARSE, "%s:%zu: column '%s': '%.40s' is not a number",
                       p->path, p->record_line, column, s);
    if (!isfinite(v))
        return tb_fail(err, errsz, TB_PARSE, "%s:%zu: column '%s': '%.40s' is not a finite number",
                       p->path, p->record_line, column, s);
    *out = v;
    return TB_OK;
}

int csv_reader_read(const char *path, const struct csv_reader_options *opts, struct table **out,
                    char *err, size_t errsz)
{
    struct parser p = {.path = path};
    locale_t c_locale = (locale_t)0;
    char **header_names = NULL; /* copies of the header's names (header mode only) */
    size_t nheader = 0;
    size_t *want = NULL; /* field index of each wanted column, numeric then categorical */
    const char **table_names = NULL; /* numeric then categorical column names */
    bool *categorical = NULL;        /* per table column */
    double *row = NULL;
    struct table *t = NULL;
    size_t key_index = 0;
    const char *const *names = opts->column_names; /* the file's columns */
    size_t nnames = opts->ncolumn_names;
    int rc = TB_OK;

    *out = NULL;
    rc = check_options(path, opts, err, errsz);
    if (rc < 0)
        goto done;
    p.delimiter = opts->whitespace ? '\0' : (opts->delimiter ? opts->delimiter : ',');
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) {
        rc =
            tb_fail(err, errsz, TB_IO, "%s: cannot create the C locale: %s", path, strerror(errno));
        goto done;
    }
    p.fp = fopen(path, "rb");
    if (!p.fp) {
        rc = tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    p.chunk = mem_alloc(CHUNK_BYTES);

    if (opts->header) {
        rc = next_record(&p, err, errsz);
        if (rc < 0)
            goto done;
        if (rc == 0) {
            rc = tb_fail(err, errsz, TB_PARSE, "%s: empty file, expected a header line", path);
            goto done;
        }
        nheader = p.nfields;
        header_names = mem_calloc(nheader, sizeof(*header_names));
        for (size_t i = 0; i < nheader; i++)
            header_names[i] = mem_strdup(trim(p.fields[i]));
        names = (const char *const *)header_names;
        nnames = nheader;
    }

    size_t nnumeric = opts->ncolumns, ncols = nnumeric + opts->ncategorical;
    want = mem_calloc(ncols, sizeof(*want));
    table_names = mem_calloc(ncols, sizeof(*table_names));
    categorical = mem_calloc(ncols, sizeof(*categorical));
    for (size_t j = 0; j < ncols; j++) {
        table_names[j] = j < nnumeric ? opts->columns[j] : opts->categorical[j - nnumeric];
        categorical[j] = j >= nnumeric;
        rc = find_column(path, opts->header, names, nnames, table_names[j], &want[j], err, errsz);
        if (rc < 0)
            goto done;
    }
    if (opts->key_column) {
        rc = find_column(path, opts->header, names, nnames, opts->key_column, &key_index, err,
                         errsz);
        if (rc < 0)
            goto done;
    }

    t = table_new_typed(table_names, categorical, ncols, opts->key_column);
    row = mem_calloc(ncols, sizeof(*row));
    while ((rc = next_record(&p, err, errsz)) == 1) {
        if (p.nfields != nnames) {
            rc = tb_fail(err, errsz, TB_PARSE, "%s:%zu: expected %zu fields, found %zu", path,
                         p.record_line, nnames, p.nfields);
            goto done;
        }
        for (size_t j = 0; j < nnumeric; j++) {
            rc = parse_cell(&p, opts->columns[j], p.fields[want[j]], opts->allow_missing, c_locale,
                            &row[j], err, errsz);
            if (rc < 0)
                goto done;
        }
        for (size_t j = nnumeric; j < ncols; j++) {
            const char *s = trim(p.fields[want[j]]);
            size_t len = strlen(s);
            row[j] = len == 0 ? NAN : table_intern(t, j, s, len);
        }
        const char *key = NULL;
        if (opts->key_column) {
            key = trim(p.fields[key_index]);
            if (*key == '\0') {
                rc = tb_fail(err, errsz, TB_PARSE, "%s:%zu: column '%s': empty key", path,
                             p.record_line, opts->key_column);
                goto done;
            }
        }
        table_append_row(t, row, key);
    }
    if (rc < 0)
        goto done;
    rc = TB_OK;
    *out = t;
    t = NULL;

done:
    table_destroy(t);
    free(row);
    free(categorical);
    free(table_names);
    free(want);
    for (size_t i = 0; i < nheader; i++)
        free(header_names[i]);
    free(header_names);
    free(p.fields);
    free(p.record);
    free(p.chunk);
    if (p.fp)
        fclose(p.fp);
    if (c_locale != (locale_t)0)
        freelocale(c_locale);
    return rc;
}
