/* Unit tests for service/prom: exact renders, escaping, validation, lock-free updates from 8
 * threads and collectors; every render is checked by a strict parser of the text format written
 * here, and by `promtool check metrics` when promtool is on PATH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/http/prom.h"
#include "tests/support/support.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* === A strict parser of the text exposition format 0.0.4 ====================================== */

/* It checks what Prometheus requires of a scrape and more that a good exposition does:
 * - the text ends with a newline; lines are "# HELP name text", "# TYPE name type", other
 *   comments, blank lines or samples "name{label="value",...} value [timestamp]";
 * - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a
 *   "__" prefix and not repeated in a sample; label values and help are UTF-8 with only the
 *   escapes \\ \" \n (\\ \n in help); values are decimal numbers, +Inf, -Inf or NaN;
 * - every sample's family was declared by a # TYPE before it; # HELP and # TYPE at most once per
 *   family and before its samples; a family's samples are contiguous;
 * - no series (name and label set) appears twice;
 * - a counter's values are >= 0; a histogram's series are <name>_bucket (with le), <name>_sum
 *   and <name>_count (without); per label set the buckets' le ascend and end with +Inf, their
 *   counts are >= 0 and do not decrease, and _count equals the +Inf bucket.
 * It is stricter than the format in one way that our renderer never needs: no blanks inside
 * braces and exactly one space before the value and the timestamp. Summaries are refused. */

enum expo_type { EXPO_UNDECLARED, EXPO_COUNTER, EXPO_GAUGE, EXPO_HISTOGRAM, EXPO_UNTYPED };
enum expo_kind { EXPO_PLAIN, EXPO_BUCKET, EXPO_SUM, EXPO_COUNT };

struct expo_family {
    char *name;
    enum expo_type type;
    int has_help;
    int state; /* 0: declared, 1: its samples are being read, 2: its samples are over */
    size_t first_sample;
};

struct expo_sample {
    char *key;   /* the series: name, then "\x1f" label "=" value for each label, sorted */
    char *group; /* the labels other than le, as in key: a histogram child */
    size_t family;
    enum expo_kind kind;
    double le;
    double value;
    size_t line;
};

struct expo {
    struct expo_family *families;
    size_t nfamilies, families_cap;
    struct expo_sample *samples;
    size_t nsamples, samples_cap;
    size_t current; /* the family whose samples are being read, or SIZE_MAX */
};

struct expo_label {
    char *name, *value;
};

/* A growing string. */
struct expo_str {
    char *data;
    size_t len, cap;
};

static void expo_str_add(struct expo_str *s, const char *bytes, size_t n)
{
    mem_grow((void **)&s->data, &s->cap, s->len + n + 1, 1);
    memcpy(s->data + s->len, bytes, n);
    s->len += n;
    s->data[s->len] = '\0';
}

static void expo_str_puts(struct expo_str *s, const char *text)
{
    expo_str_add(s, text, strlen(text));
}

/* Appends "\x1f" name "=" value: one label of a series key. */
static void expo_str_label(struct expo_str *s, const struct expo_label *label)
{
    expo_str_puts(s, "\x1f");
    expo_str_puts(s, label->name);
    expo_str_puts(s, "=");
    expo_str_puts(s, label->value);
}

static int expo_fail(char *err, size_t errsz, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int expo_fail(char *err, size_t errsz, size_t line, const char *fmt, ...)
{
    int n = snprintf(err, errsz, "line %zu: ", line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errsz)
        vsnprintf(err + n, errsz - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int expo_is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* The length of the metric name at the start of s (with colons) or label name (without), 0 when
 * s does not start with one. */
static size_t expo_name_len(const char *s, int colons)
{
    size_t n = 0;
    while (expo_is_letter(s[n]) || (colons && s[n] == ':') || (n > 0 && s[n] >= '0' && s[n] <= '9'))
        n++;
    return n;
}

/* Whether s[0..len) is UTF-8: decoded code point by code point, each in the shortest form, no
 * surrogate, none above U+10FFFF. */
static int expo_utf8(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned lead = u[i];
        size_t extra = lead < 0x80       ? 0
                       : lead >> 5 == 6  ? 1
                       : lead >> 4 == 14 ? 2
                       : lead >> 3 == 30 ? 3
                                         : 9;
        if (extra == 9 || i + extra >= len)
            return 0;
        uint32_t cp = extra == 0 ? lead : lead & (0x3Fu >> extra);
        for (size_t k = 1; k <= extra; k++) {
            if (u[i + k] >> 6 != 2)
                return 0;
            cp = cp << 6 | (u[i + k] & 0x3Fu);
        }
        static const uint32_t shortest[] = {0, 0x80, 0x800, 0x10000};
        if (cp < shortest[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return 0;
        i += extra + 1;
    }
    return 1;
}

/* Parses s as a sample value: [+-]digits[.digits][e[+-]digits] (or .digits), +Inf, -Inf, NaN. */
static int expo_number(const char *s, double *out)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0) {
        *out = strcmp(s, "NaN") == 0 ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
        return 0;
    }
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t int_digits = strspn(p, "0123456789");
    p += int_digits;
    size_t frac_digits = 0;
    if (*p == '.') {
        p++;
        frac_digits = strspn(p, "0123456789");
        p += frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t exp_digits = strspn(p, "0123456789");
        if (exp_digits == 0)
            return -1;
        p += exp_digits;
    }
    if (*p)
        return -1;
    *out = strtod(s, NULL);
    return 0;
}

static size_t expo_find_family(const struct expo *x, const char *name)
{
    for (size_t i = 0; i < x->nfamilies; i++)
        if (strcmp(x->families[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* Checks the histogram children of family f (all samples from its first): returns 0 or -1. */
static int expo_check_histogram(struct expo *x, size_t f, char *err, size_t errsz)
{
    struct group {
        const char *key;
        size_t line, nbuckets;
        double last_le, last_count, inf_count, count;
        int has_inf, has_sum, has_count;
    } *groups = NULL;
    size_t ngroups = 0, cap = 0;
    int rc = -1;
    for (size_t i = x->families[f].first_sample; i < x->nsamples; i++) {
        const struct expo_sample *s = &x->samples[i];
        struct group *g = NULL;
        for (size_t k = 0; k < ngroups && !g; k++)
            if (strcmp(groups[k].key, s->group) == 0)
                g = &groups[k];
        if (!g) {
            mem_grow((void **)&groups, &cap, ngroups + 1, sizeof *groups);
            g = &groups[ngroups++];
            memset(g, 0, sizeof *g);
            g->key = s->group;
            g->line = s->line;
        }
        if (s->kind == EXPO_BUCKET) {
            if (g->has_inf) {
                expo_fail(err, errsz, s->line, "a bucket after the +Inf bucket");
                goto done;
            }
            if (g->nbuckets > 0 && !(s->le > g->last_le)) {
                expo_fail(err, errsz, s->line, "le %g does not ascend (after %g)", s->le,
                          g->last_le);
                goto done;
            }
            if (g->nbuckets > 0 && s->value < g->last_count) {
                expo_fail(err, errsz, s->line,
                          "bucket count %g below the previous %g: not cumulative", s->value,
                          g->last_count);
                goto done;
            }
            g->nbuckets++;
            g->last_le = s->le;
            g->last_count = s->value;
            if (isinf(s->le) && s->le > 0) {
                g->has_inf = 1;
                g->inf_count = s->value;
            }
        } else if (s->kind == EXPO_SUM) {
            g->has_sum = 1;
        } else {
            g->has_count = 1;
            g->count = s->value;
        }
    }
    for (size_t k = 0; k < ngroups; k++) {
        const struct group *g = &groups[k];
        const char *name = x->families[f].name;
        if (!g->has_inf) {
            expo_fail(err, errsz, g->line, "histogram %s: a child has no +Inf bucket", name);
            goto done;
        }
        if (!g->has_sum || !g->has_count) {
            expo_fail(err, errsz, g->line, "histogram %s: a child has no _%s", name,
                      g->has_sum ? "count" : "sum");
            goto done;
        }
        if (g->count != g->inf_count) {
            expo_fail(err, errsz, g->line,
                      "histogram %s: _count %g differs from the +Inf bucket %g", name, g->count,
                      g->inf_count);
            goto done;
        }
    }
    rc = 0;
done:
    free(groups);
    return rc;
}

/* Ends the samples of the current family, if any. */
static int expo_close(struct expo *x, char *err, size_t errsz)
{
    if (x->current == SIZE_MAX)
        return 0;
    size_t f = x->current;
    x->current = SIZE_MAX;
    x->families[f].state = 2;
    return x->families[f].type == EXPO_HISTOGRAM ? expo_check_histogram(x, f, err, errsz) : 0;
}

/* The family a # HELP or # TYPE line names, created when new; SIZE_MAX (err set) when its
 * samples have started. */
static size_t expo_declare(struct expo *x, const char *name, size_t line, const char *what,
                           char *err, size_t errsz)
{
    size_t f = expo_find_family(x, name);
    if (f != SIZE_MAX && x->families[f].state != 0) {
        expo_fail(err, errsz, line, "# %s %s after its samples", what, name);
        return SIZE_MAX;
    }
    if (x->current != SIZE_MAX && expo_close(x, err, errsz) != 0)
        return SIZE_MAX;
    if (f == SIZE_MAX) {
        mem_grow((void **)&x->families, &x->families_cap, x->nfamilies + 1, sizeof *x->families);
        f = x->nfamilies++;
        memset(&x->families[f], 0, sizeof x->families[f]);
        x->families[f].name = mem_strdup(name);
    }
    return f;
}

static int expo_meta_line(struct expo *x, const char *l, size_t line, char *err, size_t errsz)
{
    int help = l[2] == 'H';
    const char *p = l + 7;
    size_t n = expo_name_len(p, 1);
    if (n == 0 || p[n] != ' ')
        return expo_fail(err, errsz, line, "# %s needs a metric name and a space",
                         help ? "HELP" : "TYPE");
    char *name = mem_strndup(p, n);
    const char *rest = p + n + 1;
    int rc = -1;
    size_t f = expo_declare(x, name, line, help ? "HELP" : "TYPE", err, errsz);
    if (f == SIZE_MAX)
        goto done;
    if (help) {
        if (x->families[f].has_help) {
            expo_fail(err, errsz, line, "a second # HELP for %s", name);
            goto done;
        }
        for (const char *q = rest; *q; q++) {
            if (*q == '\\' && q[1] != '\\' && q[1] != 'n') {
                expo_fail(err, errsz, line, "invalid escape in # HELP %s", name);
                goto done;
            }
            if (*q == '\\')
                q++;
        }
        if (!expo_utf8(rest, strlen(rest))) {
            expo_fail(err, errsz, line, "# HELP %s is not UTF-8", name);
            goto done;
        }
        x->families[f].has_help = 1;
    } else {
        if (x->families[f].type != EXPO_UNDECLARED) {
            expo_fail(err, errsz, line, "a second # TYPE for %s", name);
            goto done;
        }
        static const char *const types[] = {"", "counter", "gauge", "histogram", "untyped"};
        for (int t = EXPO_COUNTER; t <= EXPO_UNTYPED; t++)
            if (strcmp(rest, types[t]) == 0)
                x->families[f].type = (enum expo_type)t;
        if (x->families[f].type == EXPO_UNDECLARED) {
            expo_fail(err, errsz, line, "# TYPE %s has the unknown or unchecked type '%s'", name,
                      rest);
            goto done;
        }
    }
    rc = 0;
done:
    free(name);
    return rc;
}

static int expo_compare_labels(const void *a, const void *b)
{
    return strcmp(((const struct expo_label *)a)->name, ((const struct expo_label *)b)->name);
}

/* Reads name="value" pairs from *pp (just after '{') up to and past '}'. */
static int expo_labels(const char **pp, struct expo_label **labels, size_t *nlabels, size_t line,
                       char *err, size_t errsz)
{
    const char *p = *pp;
    size_t cap = 0;
    while (*p != '}') {
        size_t n = expo_name_len(p, 0);
        if (n == 0)
            return expo_fail(err, errsz, line, "a label name is missing or invalid at '%.10s'", p);
        if (p[0] == '_' && p[1] == '_')
            return expo_fail(err, errsz, line, "label name '%.*s' starts with __", (int)n, p);
        if (p[n] != '=' || p[n + 1] != '"')
            return expo_fail(err, errsz, line, "want =\" after label name '%.*s'", (int)n, p);
        mem_grow((void **)labels, &cap, *nlabels + 1, sizeof **labels);
        struct expo_label *label = &(*labels)[(*nlabels)++];
        label->name = mem_strndup(p, n);
        label->value = NULL;
        p += n + 2;
        struct expo_str value = {0};
        expo_str_add(&value, "", 0);
        label->value = value.data;
        for (; *p && *p != '"'; p++) {
            if (*p == '\\') {
                p++;
                const char *unescaped = *p == '\\'  ? "\\"
                                        : *p == '"' ? "\""
                                        : *p == 'n' ? "\n"
                                                    : NULL;
                if (!unescaped)
                    return expo_fail(err, errsz, line, "invalid escape in the value of %s",
                                     label->name);
                expo_str_puts(&value, unescaped);
            } else {
                expo_str_add(&value, p, 1);
            }
            label->value = value.data;
        }
        if (*p != '"')
            return expo_fail(err, errsz, line, "the value of label %s is not closed", label->name);
        if (!expo_utf8(value.data, value.len))
            return expo_fail(err, errsz, line, "the value of label %s is not UTF-8", label->name);
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return expo_fail(err, errsz, line, "want , or } after the value of %s", label->name);
    }
    *pp = p + 1;
    qsort(*labels, *nlabels, sizeof **labels, expo_compare_labels);
    for (size_t i = 1; i < *nlabels; i++)
        if (strcmp((*labels)[i - 1].name, (*labels)[i].name) == 0)
            return expo_fail(err, errsz, line, "label %s appears twice", (*labels)[i].name);
    return 0;
}

static int expo_sample_line(struct expo *x, const char *l, size_t line, char *err, size_t errsz)
{
    struct expo_label *labels = NULL;
    size_t nlabels = 0;
    struct expo_str key = {0}, group = {0};
    char *name = NULL, *value_text = NULL;
    int rc = -1;

    size_t n = expo_name_len(l, 1);
    if (n == 0) {
        expo_fail(err, errsz, line, "a sample must start with a metric name: '%.20s'", l);
        goto done;
    }
    name = mem_strndup(l, n);
    const char *p = l + n;
    if (*p == '{') {
        p++;
        if (expo_labels(&p, &labels, &nlabels, line, err, errsz) != 0)
            goto done;
    }
    if (*p != ' ') {
        expo_fail(err, errsz, line, "want one space before the value of %s", name);
        goto done;
    }
    p++;
    size_t vlen = strcspn(p, " ");
    value_text = mem_strndup(p, vlen);
    double value;
    if (expo_number(value_text, &value) != 0) {
        expo_fail(err, errsz, line, "'%s' is not a value", value_text);
        goto done;
    }
    p += vlen;
    if (*p == ' ') {
        p++;
        if (*p == '-')
            p++;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || p[digits]) {
            expo_fail(err, errsz, line, "a timestamp must be an integer alone after the value");
            goto done;
        }
        p += digits;
    }

    /* The family: the name itself, or a histogram's with _bucket, _sum or _count. */
    enum expo_kind kind = EXPO_PLAIN;
    size_t f = expo_find_family(x, name);
    if (f != SIZE_MAX && x->families[f].type == EXPO_HISTOGRAM) {
        expo_fail(err, errsz, line, "histogram %s has a sample without _bucket, _sum or _count",
                  name);
        goto done;
    }
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
    for (int k = EXPO_BUCKET; k <= EXPO_COUNT && f == SIZE_MAX; k++) {
        size_t sl = strlen(suffixes[k]);
        if (n > sl && strcmp(name + n - sl, suffixes[k]) == 0) {
            char *base = mem_strndup(name, n - sl);
            size_t b = expo_find_family(x, base);
            free(base);
            if (b != SIZE_MAX && x->families[b].type == EXPO_HISTOGRAM) {
                f = b;
                kind = (enum expo_kind)k;
            }
        }
    }
    if (f == SIZE_MAX || x->families[f].type == EXPO_UNDECLARED) {
        expo_fail(err, errsz, line, "sample %s has no # TYPE before it", name);
        goto done;
    }
    struct expo_family *family = &x->families[f];
    if (family->state == 2) {
        expo_fail(err, errsz, line, "the samples of %s are not contiguous", family->name);
        goto done;
    }
    if (x->current != f) {
        if (expo_close(x, err, errsz) != 0)
            goto done;
        x->current = f;
        family->state = 1;
        family->first_sample = x->nsamples;
    }

    double le = NAN;
    int has_le = 0;
    expo_str_puts(&key, name);
    expo_str_add(&group, "", 0);
    for (size_t i = 0; i < nlabels; i++) {
        expo_str_label(&key, &labels[i]);
        /* le tells a histogram's buckets apart, but is not part of its child's labels. */
        if (strcmp(labels[i].name, "le") == 0 && family->type == EXPO_HISTOGRAM) {
            has_le = 1;
            if (expo_number(labels[i].value, &le) != 0 || isnan(le)) {
                expo_fail(err, errsz, line, "le=\"%s\" is not a bound", labels[i].value);
                goto done;
            }
        } else {
            expo_str_label(&group, &labels[i]);
        }
    }
    if (kind == EXPO_BUCKET && !has_le) {
        expo_fail(err, errsz, line, "bucket %s has no le", name);
        goto done;
    }
    if (kind != EXPO_BUCKET && has_le) {
        expo_fail(err, errsz, line, "%s has le but is not a bucket", name);
        goto done;
    }
    if ((family->type == EXPO_COUNTER || kind == EXPO_BUCKET || kind == EXPO_COUNT) &&
        !(value >= 0)) {
        expo_fail(err, errsz, line, "%s has the value %s; a count must be >= 0", name, value_text);
        goto done;
    }
    mem_grow((void **)&x->samples, &x->samples_cap, x->nsamples + 1, sizeof *x->samples);
    struct expo_sample *s = &x->samples[x->nsamples++];
    s->key = key.data;
    s->group = group.data;
    key.data = group.data = NULL;
    s->family = f;
    s->kind = kind;
    s->le = le;
    s->value = value;
    s->line = line;
    rc = 0;
done:
    free(group.data);
    free(key.data);
    for (size_t i = 0; i < nlabels; i++) {
        free(labels[i].name);
        free(labels[i].value);
    }
    free(labels);
    free(value_text);
    free(name);
    return rc;
}

static int expo_compare_keys(const void *a, const void *b)
{
    const struct expo_sample *x = *(struct expo_sample *const *)a;
    const struct expo_sample *y = *(struct expo_sample *const *)b;
    return strcmp(x->key, y->key);
}

static void expo_free(struct expo *x)
{
    for (size_t i = 0; i < x->nfamilies; i++)
        free(x->families[i].name);
    free(x->families);
    for (size_t i = 0; i < x->nsamples; i++) {
        free(x->samples[i].key);
        free(x->samples[i].group);
    }
    free(x->samples);
    memset(x, 0, sizeof *x);
}

/* Parses text into *x (freed with expo_free, also after a failure). Returns 0, or -1 with the
 * first broken rule, and its line, in err. Calls nothing of cmocka, so threads may use it. */
static int expo_parse(const char *text, struct expo *x, char *err, size_t errsz)
{
    memset(x, 0, sizeof *x);
    x->current = SIZE_MAX;
    size_t len = strlen(text);
    if (len > 0 && text[len - 1] != '\n')
        return expo_fail(err, errsz, 0, "the text does not end with a newline");
    size_t line = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        char *l = mem_strndup(p, (size_t)(end - p));
        line++;
        int rc = 0;
        if (strncmp(l, "# HELP ", 7) == 0 || strncmp(l, "# TYPE ", 7) == 0)
            rc = expo_meta_line(x, l, line, err, errsz);
        else if (l[0] != '#' && l[0] != '\0')
            rc = expo_sample_line(x, l, line, err, errsz);
        free(l);
        if (rc != 0)
            return rc;
        p = end + 1;
    }
    if (expo_close(x, err, errsz) != 0)
        return -1;
    struct expo_sample **sorted = mem_alloc((x->nsamples + 1) * sizeof *sorted);
    for (size_t i = 0; i < x->nsamples; i++)
        sorted[i] = &x->samples[i];
    qsort(sorted, x->nsamples, sizeof *sorted, expo_compare_keys);
    int rc = 0;
    for (size_t i = 1; i < x->nsamples && rc == 0; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            size_t a = sorted[i - 1]->line, b = sorted[i]->line;
            rc = expo_fail(err, errsz, a > b ? a : b, "the series of line %zu appears again",
                           a < b ? a : b);
        }
    free(sorted);
    return rc;
}

/* The value of the series name{label=value,...} (NULL-terminated pairs) in x; fails the test
 * when x has no such series. */
static double expo_get(const struct expo *x, const char *name, ...)
{
    struct expo_label pairs[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *label; (label = va_arg(ap, const char *)) != NULL && n < 8; n++) {
        pairs[n].name = (char *)label;
        pairs[n].value = va_arg(ap, char *);
    }
    va_end(ap);
    qsort(pairs, n, sizeof *pairs, expo_compare_labels);
    struct expo_str key = {0};
    expo_str_puts(&key, name);
    for (size_t i = 0; i < n; i++)
        expo_str_label(&key, &pairs[i]);
    for (size_t i = 0; i < x->nsamples; i++) {
        if (strcmp(x->samples[i].key, key.data) == 0) {
            free(key.data);
            return x->samples[i].value;
        }
    }
    fail_msg("series %s not found", key.data);
    return NAN;
}

/* === promtool ================================================================================= */

static int promtool_on_path(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char *dirs = mem_strdup(path);
    int found = 0;
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char candidate[4096];
        snprintf(candidate, sizeof candidate, "%s/promtool", *dir ? dir : ".");
        found = access(candidate, X_OK) == 0;
    }
    free(dirs);
    return found;
}

/* Pipes text to `promtool check metrics` and fails the test, quoting what promtool said, unless
 * it exits 0. Returns 0, or -1 when promtool is not on PATH (nothing checked). */
static int promtool_check(const char *text)
{
    if (!promtool_on_path())
        return -1;
    char in_path[] = "/tmp/test_prom_in-XXXXXX", out_path[] = "/tmp/test_prom_out-XXXXXX";
    int in = mkstemp(in_path), out = mkstemp(out_path);
    assert_true(in >= 0 && out >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(in, text, len), (ssize_t)len);
    assert_int_equal(lseek(in, 0, SEEK_SET), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        execlp("promtool", "promtool", "check", "metrics", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char said[4096] = "";
    ssize_t got = pread(out, said, sizeof said - 1, 0);
    said[got > 0 ? got : 0] = '\0';
    close(in);
    close(out);
    unlink(in_path);
    unlink(out_path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("promtool check metrics exited with status %d:\n%s\non:\n%s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), said, text);
    return 0;
}

/* === helpers ================================================================================== */

/* Renders reg, checks the text with the strict parser (into *x when x is not NULL, which the
 * caller then frees with expo_free) and with promtool when it is there; returns the text, which
 * the caller frees. */
static char *render_checked(struct prom_registry *reg, struct expo *x)
{
    size_t len = 0;
    char *text = prom_render(reg, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    struct expo local;
    char err[512] = "";
    if (expo_parse(text, &local, err, sizeof err) != 0)
        fail_msg("the strict parser refused the render: %s\n%s", err, text);
    if (x)
        *x = local;
    else
        expo_free(&local);
    promtool_check(text);
    return text;
}

/* Renders reg and fails the test unless the text is exactly want (and passes the checks). */
static void assert_render(struct prom_registry *reg, const char *want)
{
    char *text = render_checked(reg, NULL);
    if (strcmp(text, want) != 0)
        fail_msg("render differs.\n--- got:\n%s--- want:\n%s---", text, want);
    free(text);
}

/* Captures what is written to standard error (the log) between capture_begin and capture_end,
 * which returns it (the caller frees it). */
struct capture {
    int saved_fd;
    char path[64];
    int fd;
};

static void capture_begin(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/test_prom_log-XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    fflush(stderr);
    c->saved_fd = dup(STDERR_FILENO);
    dup2(c->fd, STDERR_FILENO);
}

static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    struct stat st;
    assert_int_equal(fstat(c->fd, &st), 0);
    char *text = mem_alloc((size_t)st.st_size + 1);
    ssize_t got = pread(c->fd, text, (size_t)st.st_size, 0);
    text[got > 0 ? got : 0] = '\0';
    close(c->fd);
    unlink(c->path);
    return text;
}

static void assert_contains(const char *text, const char *fragment, const char *what)
{
    if (!strstr(text, fragment))
        fail_msg("%s: '%s' not found in:\n%s", what, fragment, text);
}

/* === renders ================================================================================== */

static void test_counter_without_labels(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    struct prom_family *f = prom_counter(reg, "tributary_records_total", "Records read.", NULL, 0);
    assert_non_null(f);
    /* An unlabelled counter is there, at 0, before anything counts. */
    assert_render(reg, "# HELP tributary_records_total Records read.\n"
                       "# TYPE tributary_records_total counter\n"
                       "tributary_records_total 0\n");
    struct prom_metric *m = prom_child(f, NULL);
    assert_ptr_equal(prom_child(f, NULL), m);
    prom_inc(m);
    prom_inc(m);
    prom_add(m, 40);
    assert_render(reg, "# HELP tributary_records_total Records read.\n"
                       "# TYPE tributary_records_total counter\n"
                       "tributary_records_total 42\n");
    prom_add(m, 0.25);
    prom_add(m, 0.5);
    assert_true(prom_value(m) == 42.75);
    assert_render(reg, "# HELP tributary_records_total Records read.\n"
                       "# TYPE tributary_records_total counter\n"
                       "tributary_records_total 42.75\n");
    prom_registry_destroy(reg);
}

static void test_counter_with_labels(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"topic", "outcome"};
    struct prom_family *f =
        prom_counter(reg, "tributary_batches_total", "Batches by outcome.", labels, 2);
    assert_non_null(f);
    /* A labelled family has no child until one is asked for, and renders nothing. */
    assert_render(reg, "");
    struct prom_metric *bad = prom_child(f, (const char *[]){"telemetry", "failed"});
    struct prom_metric *ok = prom_child(f, (const char *[]){"telemetry", "ok"});
    struct prom_metric *alerts = prom_child(f, (const char *[]){"alerts", "ok"});
    assert_true(bad != ok && ok != alerts && bad != alerts);
    assert_ptr_equal(prom_child(f, (const char *[]){"telemetry", "ok"}), ok);
    prom_add(ok, 7);
    prom_inc(bad);
    /* Children sorted by their label values, in the order of the label names. */
    assert_render(reg, "# HELP tributary_batches_total Batches by outcome.\n"
                       "# TYPE tributary_batches_total counter\n"
                       "tributary_batches_total{topic=\"alerts\",outcome=\"ok\"} 0\n"
                       "tributary_batches_total{topic=\"telemetry\",outcome=\"failed\"} 1\n"
                       "tributary_batches_total{topic=\"telemetry\",outcome=\"ok\"} 7\n");
    prom_registry_destroy(reg);
}

static void test_gauge_and_numbers(void **state)
{
    (void)state;
    /* How each value is written, by hand: whole numbers up to 2^53 without exponent, others the
     * shortest decimal that reads back the same, and the three special values. */
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {42, "42"},
        {-7, "-7"},
        {1e6, "1000000"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {1.5e-7, "1.5e-07"},
        {123456.789, "123456.789"},
        {1.0 / 3.0, "0.3333333333333333"},
        {9007199254740992.0, "9007199254740992"},
        {18014398509481984.0, "18014398509481984"}, /* 2^54: 17 digits, %g keeps them plain */
        {1e20, "1e+20"},
        {-1.152921504606847e18, "-1.152921504606847e+18"},
        {1e300, "1e+300"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct prom_registry *reg = prom_registry_new();
        struct prom_metric *m =
            prom_child(prom_gauge(reg, "tributary_level", "A level.", NULL, 0), NULL);
        prom_set(m, cases[i].value);
        char want[256];
        snprintf(want, sizeof want,
                 "# HELP tributary_level A level.\n# TYPE tributary_level gauge\n"
                 "tributary_level %s\n",
                 cases[i].text);
        assert_render(reg, want);
        /* The text reads back as the very same double. */
        double back = 0;
        assert_int_equal(expo_number(cases[i].text, &back), 0);
        assert_true(isnan(cases[i].value) ? isnan(back) : back == cases[i].value);
        prom_registry_destroy(reg);
    }

    /* A gauge goes up and down. */
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"partition"};
    struct prom_family *f = prom_gauge(reg, "tributary_lag_records", "Lag.", labels, 1);
    struct prom_metric *p0 = prom_child(f, (const char *[]){"0"});
    prom_set(p0, 10);
    prom_add(p0, -12.5);
    prom_inc(p0);
    assert_true(prom_value(p0) == -1.5);
    assert_render(reg, "# HELP tributary_lag_records Lag.\n"
                       "# TYPE tributary_lag_records gauge\n"
                       "tributary_lag_records{partition=\"0\"} -1.5\n");
    prom_registry_destroy(reg);
}

static void test_histogram_without_labels(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const double bounds[] = {0.5, 1, 2.5};
    struct prom_family *f = prom_histogram(reg, "tributary_batch_duration_seconds",
                                           "Time to score a batch.", NULL, 0, bounds, 3);
    assert_non_null(f);
    assert_render(reg, "# HELP tributary_batch_duration_seconds Time to score a batch.\n"
                       "# TYPE tributary_batch_duration_seconds histogram\n"
                       "tributary_batch_duration_seconds_bucket{le=\"0.5\"} 0\n"
                       "tributary_batch_duration_seconds_bucket{le=\"1\"} 0\n"
                       "tributary_batch_duration_seconds_bucket{le=\"2.5\"} 0\n"
                       "tributary_batch_duration_seconds_bucket{le=\"+Inf\"} 0\n"
                       "tributary_batch_duration_seconds_sum 0\n"
                       "tributary_batch_duration_seconds_count 0\n");
    struct prom_metric *m = prom_child(f, NULL);
    /* le is inclusive: 0.5 counts in le="0.5", 1 in le="1". Sum 105.5, exact in binary. */
    const double observations[] = {0.25, 0.5, 0.75, 1, 3, 100};
    for (size_t i = 0; i < 6; i++)
        prom_observe(m, observations[i]);
    assert_true(prom_value(m) == 6);
    assert_render(reg, "# HELP tributary_batch_duration_seconds Time to score a batch.\n"
                       "# TYPE tributary_batch_duration_seconds histogram\n"
                       "tributary_batch_duration_seconds_bucket{le=\"0.5\"} 2\n"
                       "tributary_batch_duration_seconds_bucket{le=\"1\"} 4\n"
                       "tributary_batch_duration_seconds_bucket{le=\"2.5\"} 4\n"
                       "tributary_batch_duration_seconds_bucket{le=\"+Inf\"} 6\n"
                       "tributary_batch_duration_seconds_sum 105.5\n"
                       "tributary_batch_duration_seconds_count 6\n");
    /* NaN is above every bound: it counts in +Inf only, and the sum becomes NaN. */
    prom_observe(m, NAN);
    assert_render(reg, "# HELP tributary_batch_duration_seconds Time to score a batch.\n"
                       "# TYPE tributary_batch_duration_seconds histogram\n"
                       "tributary_batch_duration_seconds_bucket{le=\"0.5\"} 2\n"
                       "tributary_batch_duration_seconds_bucket{le=\"1\"} 4\n"
                       "tributary_batch_duration_seconds_bucket{le=\"2.5\"} 4\n"
                       "tributary_batch_duration_seconds_bucket{le=\"+Inf\"} 7\n"
                       "tributary_batch_duration_seconds_sum NaN\n"
                       "tributary_batch_duration_seconds_count 7\n");
    prom_registry_destroy(reg);
}

static void test_histogram_with_labels(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"model"};
    const double bounds[] = {1, INFINITY}; /* the trailing +Inf is the implicit one */
    struct prom_family *f =
        prom_histogram(reg, "tributary_rows_per_batch", "Rows per batch.", labels, 1, bounds, 2);
    assert_non_null(f);
    struct prom_metric *rul = prom_child(f, (const char *[]){"rul"});
    struct prom_metric *anomaly = prom_child(f, (const char *[]){"anomaly"});
    prom_observe(rul, 1);
    prom_observe(rul, 2);
    prom_observe(anomaly, -3);
    /* With no bounds there is only the +Inf bucket. */
    struct prom_family *g =
        prom_histogram(reg, "tributary_payload_bytes", "Payload sizes.", NULL, 0, NULL, 0);
    assert_non_null(g);
    prom_observe(prom_child(g, NULL), 300);
    prom_observe(prom_child(g, NULL), 12);
    assert_render(reg, "# HELP tributary_payload_bytes Payload sizes.\n"
                       "# TYPE tributary_payload_bytes histogram\n"
                       "tributary_payload_bytes_bucket{le=\"+Inf\"} 2\n"
                       "tributary_payload_bytes_sum 312\n"
                       "tributary_payload_bytes_count 2\n"
                       "# HELP tributary_rows_per_batch Rows per batch.\n"
                       "# TYPE tributary_rows_per_batch histogram\n"
                       "tributary_rows_per_batch_bucket{model=\"anomaly\",le=\"1\"} 1\n"
                       "tributary_rows_per_batch_bucket{model=\"anomaly\",le=\"+Inf\"} 1\n"
                       "tributary_rows_per_batch_sum{model=\"anomaly\"} -3\n"
                       "tributary_rows_per_batch_count{model=\"anomaly\"} 1\n"
                       "tributary_rows_per_batch_bucket{model=\"rul\",le=\"1\"} 1\n"
                       "tributary_rows_per_batch_bucket{model=\"rul\",le=\"+Inf\"} 2\n"
                       "tributary_rows_per_batch_sum{model=\"rul\"} 3\n"
                       "tributary_rows_per_batch_count{model=\"rul\"} 2\n");
    prom_registry_destroy(reg);
}

static void test_histogram_exponential_bounds(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    double bounds[4];
    assert_int_equal(prom_buckets_exponential(0.001, 10, 4, bounds), TB_OK);
    struct prom_family *f =
        prom_histogram(reg, "tributary_wait_seconds", "Waits.", NULL, 0, bounds, 4);
    prom_observe(prom_child(f, NULL), 0.05);
    assert_render(reg, "# HELP tributary_wait_seconds Waits.\n"
                       "# TYPE tributary_wait_seconds histogram\n"
                       "tributary_wait_seconds_bucket{le=\"0.001\"} 0\n"
                       "tributary_wait_seconds_bucket{le=\"0.01\"} 0\n"
                       "tributary_wait_seconds_bucket{le=\"0.1\"} 1\n"
                       "tributary_wait_seconds_bucket{le=\"1\"} 1\n"
                       "tributary_wait_seconds_bucket{le=\"+Inf\"} 1\n"
                       "tributary_wait_seconds_sum 0.05\n"
                       "tributary_wait_seconds_count 1\n");
    prom_registry_destroy(reg);
}

static void test_escaping(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"key"};
    struct prom_family *f = prom_gauge(reg, "tributary_key_state",
                                       "Per key \"state\": C:\\data\nsecond line.", labels, 1);
    assert_non_null(f);
    const char *value = "a\\b \"quoted\"\nnext";
    prom_set(prom_child(f, (const char *[]){value}), 1);
    prom_set(prom_child(f, (const char *[]){"plain"}), 2);
    /* Help: backslash and newline escaped, the quote kept; label values: all three escaped. */
    assert_render(reg, "# HELP tributary_key_state Per key \"state\": C:\\\\data\\nsecond line.\n"
                       "# TYPE tributary_key_state gauge\n"
                       "tributary_key_state{key=\"a\\\\b \\\"quoted\\\"\\nnext\"} 1\n"
                       "tributary_key_state{key=\"plain\"} 2\n");
    /* The parser unescapes the value back to the original bytes. */
    struct expo x;
    char *text = render_checked(reg, &x);
    assert_true(expo_get(&x, "tributary_key_state", "key", value, NULL) == 1);
    assert_true(expo_get(&x, "tributary_key_state", "key", "plain", NULL) == 2);
    expo_free(&x);
    free(text);
    prom_registry_destroy(reg);
}

static void test_invalid_utf8_values(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"device"};
    struct prom_family *f =
        prom_counter(reg, "tributary_device_records_total", "Per device.", labels, 1);
    /* 0xFF and 0xFE are never UTF-8, and neither is a lone continuation byte or an overlong
     * "/"; each becomes U+FFFD, so the first two share a child. "é" (C3 A9) stays. */
    struct prom_metric *a = prom_child(f, (const char *[]){"m\xFF"});
    struct prom_metric *b = prom_child(f, (const char *[]){"m\xFE"});
    struct prom_metric *c = prom_child(f, (const char *[]){"x\x80y\xC0\xAF"});
    struct prom_metric *d = prom_child(f, (const char *[]){"caf\xC3\xA9"});
    assert_ptr_equal(a, b);
    assert_ptr_equal(prom_child(f, (const char *[]){"m\xEF\xBF\xBD"}), a);
    assert_true(c != a && d != a && c != d);
    prom_inc(a);
    prom_inc(b);
    prom_inc(c);
    prom_add(d, 3);
    assert_render(
        reg,
        "# HELP tributary_device_records_total Per device.\n"
        "# TYPE tributary_device_records_total counter\n"
        "tributary_device_records_total{device=\"caf\xC3\xA9\"} 3\n"
        "tributary_device_records_total{device=\"m\xEF\xBF\xBD\"} 2\n"
        "tributary_device_records_total{device=\"x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBD\"} 1\n");
    prom_registry_destroy(reg);
}

static void collect_one(struct prom_sink *sink, void *opaque)
{
    prom_sink_emit(sink, NULL, *(const double *)opaque);
}

static void test_families_sorted_by_name(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    double five = 5;
    /* Created in the order c, a, d, b: rendered a, b, c, d, collectors among the others. */
    prom_inc(prom_child(prom_counter(reg, "c_total", "C.", NULL, 0), NULL));
    prom_set(prom_child(prom_gauge(reg, "a_level", "A.", NULL, 0), NULL), 2);
    assert_non_null(prom_collector(reg, "d_level", "D.", PROM_GAUGE, NULL, 0, collect_one, &five));
    prom_observe(prom_child(prom_histogram(reg, "b_seconds", "B.", NULL, 0, NULL, 0), NULL), 4);
    assert_render(reg, "# HELP a_level A.\n# TYPE a_level gauge\na_level 2\n"
                       "# HELP b_seconds B.\n# TYPE b_seconds histogram\n"
                       "b_seconds_bucket{le=\"+Inf\"} 1\nb_seconds_sum 4\nb_seconds_count 1\n"
                       "# HELP c_total C.\n# TYPE c_total counter\nc_total 1\n"
                       "# HELP d_level D.\n# TYPE d_level gauge\nd_level 5\n");
    prom_registry_destroy(reg);
}

/* === validation and misuse ==================================================================== */

enum make_kind {
    MAKE_COUNTER,
    MAKE_GAUGE,
    MAKE_HISTOGRAM,
    MAKE_COLLECTOR_HISTOGRAM,
    MAKE_COLLECTOR_NO_FUNCTION
};

struct bad_family_case {
    const char *what;
    enum make_kind kind;
    const char *name, *help;
    const char *labels[3];
    size_t nlabels;
    double bounds[3];
    size_t nbounds;
    const char *message; /* a fragment of what is logged */
};

static void test_bad_families_refused(void **state)
{
    (void)state;
    static const struct bad_family_case cases[] = {
        {"empty name", MAKE_COUNTER, "", "h", {0}, 0, {0}, 0, "name '' is invalid"},
        {"NULL name", MAKE_GAUGE, NULL, "h", {0}, 0, {0}, 0, "name '(null)' is invalid"},
        {"name starts with a digit",
         MAKE_COUNTER,
         "1st_total",
         "h",
         {0},
         0,
         {0},
         0,
         "name '1st_total' is invalid"},
        {"name has a dash",
         MAKE_GAUGE,
         "queue-depth",
         "h",
         {0},
         0,
         {0},
         0,
         "name 'queue-depth' is invalid"},
        {"name has a space", MAKE_HISTOGRAM, "a b", "h", {0}, 0, {0}, 0, "name 'a b' is invalid"},
        {"name is UTF-8 but not ASCII",
         MAKE_GAUGE,
         "caf\xC3\xA9",
         "h",
         {0},
         0,
         {0},
         0,
         "is invalid"},
        {"empty help", MAKE_COUNTER, "x_total", "", {0}, 0, {0}, 0, "needs help text"},
        {"NULL help", MAKE_COUNTER, "x_total", NULL, {0}, 0, {0}, 0, "needs help text"},
        {"help not UTF-8", MAKE_GAUGE, "x", "bad \xFF", {0}, 0, {0}, 0, "needs help text"},
        {"label starts with a digit",
         MAKE_COUNTER,
         "x_total",
         "h",
         {"1a"},
         1,
         {0},
         0,
         "label name '1a' is invalid"},
        {"label has a colon",
         MAKE_GAUGE,
         "x",
         "h",
         {"a:b"},
         1,
         {0},
         0,
         "label name 'a:b' is invalid"},
        {"empty label", MAKE_GAUGE, "x", "h", {"ok", ""}, 2, {0}, 0, "label name '' is invalid"},
        {"label with __ prefix",
         MAKE_COUNTER,
         "x_total",
         "h",
         {"__name__"},
         1,
         {0},
         0,
         "starts with \"__\""},
        {"label given twice",
         MAKE_GAUGE,
         "x",
         "h",
         {"a", "b", "a"},
         3,
         {0},
         0,
         "label name 'a' is given twice"},
        {"histogram with le",
         MAKE_HISTOGRAM,
         "x_seconds",
         "h",
         {"le"},
         1,
         {1},
         1,
         "cannot have a label named \"le\""},
        {"bounds not increasing",
         MAKE_HISTOGRAM,
         "x_seconds",
         "h",
         {0},
         0,
         {1, 0.5},
         2,
         "bound 1 (0.5) is not above bound 0 (1)"},
        {"bounds repeated", MAKE_HISTOGRAM, "x_seconds", "h", {0}, 0, {1, 1}, 2, "is not above"},
        {"NaN bound", MAKE_HISTOGRAM, "x_seconds", "h", {0}, 0, {NAN}, 1, "want finite"},
        {"-Inf bound", MAKE_HISTOGRAM, "x_seconds", "h", {0}, 0, {-INFINITY, 1}, 2, "want finite"},
        {"+Inf bound not last",
         MAKE_HISTOGRAM,
         "x_seconds",
         "h",
         {0},
         0,
         {1, INFINITY, 2},
         3,
         "want finite"},
        {"name taken",
         MAKE_GAUGE,
         "taken_total",
         "h",
         {0},
         0,
         {0},
         0,
         "the name 'taken_total' is taken by the counter 'taken_total'"},
        {"name is a histogram's _count",
         MAKE_COUNTER,
         "latency_seconds_count",
         "h",
         {0},
         0,
         {0},
         0,
         "'latency_seconds_count' is taken by the histogram 'latency_seconds'"},
        {"histogram whose _bucket is taken",
         MAKE_HISTOGRAM,
         "queue",
         "h",
         {0},
         0,
         {0},
         0,
         "'queue_bucket' is taken by the gauge 'queue_bucket'"},
        {"histogram's own name taken",
         MAKE_HISTOGRAM,
         "latency_seconds",
         "h",
         {0},
         0,
         {0},
         0,
         "'latency_seconds' is taken by the histogram"},
        {"collector of a histogram",
         MAKE_COLLECTOR_HISTOGRAM,
         "x",
         "h",
         {0},
         0,
         {0},
         0,
         "must be a counter or a gauge"},
        {"collector without a function",
         MAKE_COLLECTOR_NO_FUNCTION,
         "x",
         "h",
         {0},
         0,
         {0},
         0,
         "has no collect function"},
    };
    struct prom_registry *reg = prom_registry_new();
    assert_non_null(prom_counter(reg, "taken_total", "Taken.", NULL, 0));
    assert_non_null(prom_histogram(reg, "latency_seconds", "Taken.", NULL, 0, NULL, 0));
    assert_non_null(prom_gauge(reg, "queue_bucket", "Taken.", NULL, 0));
    /* (A gauge named like a bucket is what promtool's linter objects to, so only compare.) */
    char *before = prom_render(reg, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_family_case *c = &cases[i];
        struct capture cap;
        capture_begin(&cap);
        struct prom_family *f = NULL;
        switch (c->kind) {
        case MAKE_COUNTER:
            f = prom_counter(reg, c->name, c->help, c->labels, c->nlabels);
            break;
        case MAKE_GAUGE:
            f = prom_gauge(reg, c->name, c->help, c->labels, c->nlabels);
            break;
        case MAKE_HISTOGRAM:
            f = prom_histogram(reg, c->name, c->help, c->labels, c->nlabels, c->bounds, c->nbounds);
            break;
        case MAKE_COLLECTOR_HISTOGRAM:
            f = prom_collector(reg, c->name, c->help, PROM_HISTOGRAM, NULL, 0, collect_one, NULL);
            break;
        case MAKE_COLLECTOR_NO_FUNCTION:
            f = prom_collector(reg, c->name, c->help, PROM_GAUGE, NULL, 0, NULL, NULL);
            break;
        }
        char *log = capture_end(&cap);
        if (f)
            fail_msg("case '%s': the family was registered", c->what);
        assert_contains(log, c->message, c->what);
        assert_contains(log, "error", c->what);
        free(log);
    }
    /* Nothing was added. */
    char *after = prom_render(reg, NULL);
    assert_string_equal(after, before);
    free(after);
    free(before);
    prom_registry_destroy(reg);
}

static void test_misuse_ignored(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"kind"};
    struct prom_metric *counter =
        prom_child(prom_counter(reg, "tributary_errors_total", "Errors.", NULL, 0), NULL);
    struct prom_metric *histogram =
        prom_child(prom_histogram(reg, "tributary_step_seconds", "Steps.", NULL, 0, NULL, 0), NULL);
    struct prom_family *labelled = prom_gauge(reg, "tributary_queue_depth", "Depth.", labels, 1);
    double one = 1;
    struct prom_family *collector =
        prom_collector(reg, "tributary_things", "Things.", PROM_GAUGE, NULL, 0, collect_one, &one);
    prom_add(counter, 3);

    static const char *const messages[] = {
        "counter 'tributary_errors_total' cannot go down",
        "counter 'tributary_errors_total' cannot go down",
        "prom_set on the counter 'tributary_errors_total' (want a gauge)",
        "prom_observe on the counter 'tributary_errors_total' (want a histogram)",
        "prom_add on the histogram 'tributary_step_seconds' (want a counter or a gauge)",
        "prom_set on the histogram",
        "prom_add on a NULL metric",
        "'tributary_things' is a collector, which has no children",
        "'tributary_queue_depth' needs 1 label values, got none",
        "the value of label 'kind' is NULL",
        "prom_child of a NULL family",
    };
    struct capture cap;
    capture_begin(&cap);
    prom_add(counter, -1);
    prom_add(counter, NAN);
    prom_set(counter, 100);
    prom_observe(counter, 1);
    prom_add(histogram, 1);
    prom_set(histogram, 1);
    prom_add(NULL, 1);
    struct prom_metric *from_collector = prom_child(collector, NULL);
    struct prom_metric *without_values = prom_child(labelled, NULL);
    struct prom_metric *null_value = prom_child(labelled, (const char *[]){NULL});
    struct prom_metric *of_null = prom_child(NULL, NULL);
    char *log = capture_end(&cap);
    assert_null(from_collector);
    assert_null(without_values);
    assert_null(null_value);
    assert_null(of_null);
    const char *cursor = log;
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        const char *at = strstr(cursor, messages[i]);
        if (!at)
            fail_msg("message %zu '%s' not logged (in order) in:\n%s", i, messages[i], log);
        cursor = strchr(at, '\n') ? strchr(at, '\n') + 1 : at;
    }
    free(log);
    assert_true(isnan(prom_value(NULL)));
    /* The counter kept its value and the histogram saw nothing. */
    assert_true(prom_value(counter) == 3);
    assert_true(prom_value(histogram) == 0);
    assert_render(reg, "# HELP tributary_errors_total Errors.\n"
                       "# TYPE tributary_errors_total counter\n"
                       "tributary_errors_total 3\n"
                       "# HELP tributary_step_seconds Steps.\n"
                       "# TYPE tributary_step_seconds histogram\n"
                       "tributary_step_seconds_bucket{le=\"+Inf\"} 0\n"
                       "tributary_step_seconds_sum 0\n"
                       "tributary_step_seconds_count 0\n"
                       "# HELP tributary_things Things.\n"
                       "# TYPE tributary_things gauge\n"
                       "tributary_things 1\n");
    prom_registry_destroy(reg);
}

static void test_bucket_helpers(void **state)
{
    (void)state;
    double out[6];
    /* Closed forms, written out: 0.001 * 10^i and 0.5 + 0.25 i. */
    assert_int_equal(prom_buckets_exponential(0.001, 10, 6, out), TB_OK);
    const double exponential[] = {0.001, 0.01, 0.1, 1, 10, 100};
    for (size_t i = 0; i < 6; i++)
        assert_true(out[i] == exponential[i]);
    assert_int_equal(prom_buckets_exponential(1, 2, 5, out), TB_OK);
    const double doubling[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < 5; i++)
        assert_true(out[i] == doubling[i]);
    assert_int_equal(prom_buckets_linear(0.5, 0.25, 4, out), TB_OK);
    const double linear[] = {0.5, 0.75, 1, 1.25};
    for (size_t i = 0; i < 4; i++)
        assert_true(out[i] == linear[i]);
    assert_int_equal(prom_buckets_linear(-1, 1, 3, out), TB_OK);
    assert_true(out[0] == -1 && out[1] == 0 && out[2] == 1);

    static const struct {
        int exponential;
        double a, b;
        size_t count;
        const char *message;
    } bad[] = {
        {1, 0, 2, 3, "need start > 0"},  {1, -1, 2, 3, "need start > 0"},
        {1, 1, 1, 3, "factor > 1"},      {1, 1, 0.5, 3, "factor > 1"},
        {1, 1, 2, 0, "count >= 1"},      {1, 1, NAN, 3, "factor > 1"},
        {1, 1e300, 1e10, 3, "overflow"}, {0, 0, 0, 3, "width > 0"},
        {0, 0, -1, 3, "width > 0"},      {0, NAN, 1, 3, "finite start"},
        {0, 0, 1, 0, "count >= 1"},      {0, 1e308, 1e308, 3, "overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t k = 0; k < 6; k++)
            out[k] = -42;
        struct capture cap;
        capture_begin(&cap);
        int rc = bad[i].exponential
                     ? prom_buckets_exponential(bad[i].a, bad[i].b, bad[i].count, out)
                     : prom_buckets_linear(bad[i].a, bad[i].b, bad[i].count, out);
        char *log = capture_end(&cap);
        assert_int_equal(rc, TB_USAGE);
        assert_contains(log, bad[i].message, "bucket helper");
        for (size_t k = 0; k < 6; k++)
            assert_true(out[k] == -42);
        free(log);
    }
}

/* === threads ================================================================================== */

#define THREADS 8
#define UPDATES 100000

struct shared {
    struct prom_registry *reg;
    struct prom_metric *requests;   /* counter, no labels: prom_inc */
    struct prom_metric *bytes;      /* counter: prom_add(0.5), the compare-and-swap path */
    struct prom_metric *in_flight;  /* gauge: +1.5 then -0.5 */
    struct prom_metric *work;       /* histogram, bounds 1, 2, 5 */
    struct prom_family *per_worker; /* counter labelled worker and pool */
    pthread_barrier_t start;
    atomic_int running;
    /* The renderer's findings. */
    size_t renders;
    char error[1024];
};

struct worker {
    struct shared *shared;
    int index;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->shared;
    char worker[16];
    snprintf(worker, sizeof worker, "%d", w->index);
    pthread_barrier_wait(&s->start);
    /* Every thread creates the shared child at the same moment, and one of its own. */
    struct prom_metric *mine = prom_child(s->per_worker, (const char *[]){worker, "own"});
    struct prom_metric *common = prom_child(s->per_worker, (const char *[]){"all", "shared"});
    for (int j = 0; j < UPDATES; j++) {
        prom_inc(s->requests);
        prom_add(s->bytes, 0.5);
        prom_add(s->in_flight, 1.5);
        prom_add(s->in_flight, -0.5);
        prom_observe(s->work, (double)(j % 8));
        prom_inc(mine);
        prom_inc(common);
    }
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

/* Renders while the workers run; each render must pass the strict parser, and the counters never
 * go down from one render to the next. */
static void *renderer_main(void *arg)
{
    struct shared *s = arg;
    double last_requests = 0, last_count = 0;
    pthread_barrier_wait(&s->start);
    do {
        char *text = prom_render(s->reg, NULL);
        struct expo x;
        if (expo_parse(text, &x, s->error, sizeof s->error) == 0) {
            for (size_t i = 0; i < x.nsamples; i++) {
                const struct expo_sample *sample = &x.samples[i];
                double *last = strcmp(sample->key, "tributary_requests_total") == 0 ? &last_requests
                               : strcmp(sample->key, "tributary_work_seconds_count") == 0
                                   ? &last_count
                                   : NULL;
                if (last && sample->value < *last)
                    snprintf(s->error, sizeof s->error, "%s went down from %g to %g", sample->key,
                             *last, sample->value);
                if (last)
                    *last = sample->value;
            }
        }
        expo_free(&x);
        free(text);
        s->renders++;
    } while (atomic_load(&s->running) > 0 && !s->error[0]);
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct shared s = {0};
    s.reg = prom_registry_new();
    s.requests =
        prom_child(prom_counter(s.reg, "tributary_requests_total", "Requests.", NULL, 0), NULL);
    s.bytes =
        prom_child(prom_counter(s.reg, "tributary_input_bytes_total", "Bytes.", NULL, 0), NULL);
    s.in_flight = prom_child(prom_gauge(s.reg, "tributary_in_flight", "In flight.", NULL, 0), NULL);
    const double bounds[] = {1, 2, 5};
    s.work = prom_child(
        prom_histogram(s.reg, "tributary_work_seconds", "Work.", NULL, 0, bounds, 3), NULL);
    const char *labels[] = {"worker", "pool"};
    s.per_worker = prom_counter(s.reg, "tributary_worker_steps_total", "Steps.", labels, 2);
    atomic_init(&s.running, THREADS);
    pthread_barrier_init(&s.start, NULL, THREADS + 1);
    pthread_t threads[THREADS], renderer;
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.shared = &s, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    assert_int_equal(pthread_create(&renderer, NULL, renderer_main, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(renderer, NULL);
    pthread_barrier_destroy(&s.start);
    if (s.error[0])
        fail_msg("a render during the updates was wrong: %s", s.error);
    assert_true(s.renders >= 1);
    print_message("  (%zu renders checked during the updates)\n", s.renders);

    struct expo x;
    char *text = render_checked(s.reg, &x);
    const double n = (double)THREADS * UPDATES;
    assert_true(expo_get(&x, "tributary_requests_total", NULL) == n);
    assert_true(expo_get(&x, "tributary_input_bytes_total", NULL) == n / 2);
    assert_true(expo_get(&x, "tributary_in_flight", NULL) == n);
    /* Each thread observes 0..7 in turn, 12500 times each: le 1 holds 0 and 1, le 2 adds 2,
     * le 5 adds 3, 4, 5; the sum is 8 threads x 12500 x (0 + ... + 7) = 8 x 12500 x 28. */
    assert_true(expo_get(&x, "tributary_work_seconds_bucket", "le", "1", NULL) == n * 2 / 8);
    assert_true(expo_get(&x, "tributary_work_seconds_bucket", "le", "2", NULL) == n * 3 / 8);
    assert_true(expo_get(&x, "tributary_work_seconds_bucket", "le", "5", NULL) == n * 6 / 8);
    assert_true(expo_get(&x, "tributary_work_seconds_bucket", "le", "+Inf", NULL) == n);
    assert_true(expo_get(&x, "tributary_work_seconds_count", NULL) == n);
    assert_true(expo_get(&x, "tributary_work_seconds_sum", NULL) == 8.0 * 12500 * 28);
    assert_true(
        expo_get(&x, "tributary_worker_steps_total", "worker", "all", "pool", "shared", NULL) == n);
    for (int i = 0; i < THREADS; i++) {
        char worker[16];
        snprintf(worker, sizeof worker, "%d", i);
        assert_true(expo_get(&x, "tributary_worker_steps_total", "worker", worker, "pool", "own",
                             NULL) == UPDATES);
    }
    /* 3 unlabelled series, 6 of the histogram, 1 + THREADS labelled ones: nothing else. */
    assert_int_equal(x.nsamples, 3 + 6 + 1 + THREADS);
    expo_free(&x);
    free(text);
    prom_registry_destroy(s.reg);
}

#define KEYS 1000

struct creator {
    struct prom_family *family;
    pthread_barrier_t *start;
};

static void *creator_main(void *arg)
{
    struct creator *c = arg;
    pthread_barrier_wait(c->start);
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%03d", k);
        prom_inc(prom_child(c->family, (const char *[]){key}));
    }
    return NULL;
}

static void test_concurrent_child_creation(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"key"};
    struct prom_family *f = prom_counter(reg, "tributary_key_updates_total", "Per key.", labels, 1);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    struct creator c = {.family = f, .start = &start};
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, creator_main, &c), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    struct expo x;
    char *text = render_checked(reg, &x);
    assert_int_equal(x.nsamples, KEYS);
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%03d", k);
        assert_true(expo_get(&x, "tributary_key_updates_total", "key", key, NULL) == THREADS);
    }
    expo_free(&x);
    free(text);
    prom_registry_destroy(reg);
}

/* === collectors =============================================================================== */

struct lag_source {
    double lag[3]; /* per partition */
    int calls;
};

static void collect_lag(struct prom_sink *sink, void *opaque)
{
    struct lag_source *source = opaque;
    source->calls++;
    /* Emitted out of order: the render sorts them. */
    static const int order[] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        char partition[8];
        snprintf(partition, sizeof partition, "%d", order[i]);
        prom_sink_emit(sink, (const char *[]){"telemetry", partition}, source->lag[order[i]]);
    }
}

static void collect_nothing(struct prom_sink *sink, void *opaque)
{
    (void)sink;
    (*(int *)opaque)++;
}

static void test_collectors(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    struct lag_source lag = {.lag = {5, 0, 12.5}};
    const char *labels[] = {"topic", "partition"};
    assert_non_null(prom_collector(reg, "tributary_consumer_lag_records", "Lag per partition.",
                                   PROM_GAUGE, labels, 2, collect_lag, &lag));
    double keys = 1234;
    assert_non_null(prom_collector(reg, "tributary_table_keys", "Keys in the table.", PROM_GAUGE,
                                   NULL, 0, collect_one, &keys));
    double restored = 7;
    assert_non_null(prom_collector(reg, "tributary_restored_keys_total", "Keys restored.",
                                   PROM_COUNTER, NULL, 0, collect_one, &restored));
    int empty_calls = 0;
    assert_non_null(prom_collector(reg, "tributary_idle_level", "Emits nothing.", PROM_GAUGE, NULL,
                                   0, collect_nothing, &empty_calls));
    /* A collector's name is taken like any other. */
    struct capture cap;
    capture_begin(&cap);
    struct prom_family *again = prom_gauge(reg, "tributary_table_keys", "Again.", NULL, 0);
    char *log = capture_end(&cap);
    assert_null(again);
    assert_contains(log, "'tributary_table_keys' is taken by the gauge", "taken");
    free(log);

    assert_render(reg, "# HELP tributary_consumer_lag_records Lag per partition.\n"
                       "# TYPE tributary_consumer_lag_records gauge\n"
                       "tributary_consumer_lag_records{topic=\"telemetry\",partition=\"0\"} 5\n"
                       "tributary_consumer_lag_records{topic=\"telemetry\",partition=\"1\"} 0\n"
                       "tributary_consumer_lag_records{topic=\"telemetry\",partition=\"2\"} 12.5\n"
                       "# HELP tributary_restored_keys_total Keys restored.\n"
                       "# TYPE tributary_restored_keys_total counter\n"
                       "tributary_restored_keys_total 7\n"
                       "# HELP tributary_table_keys Keys in the table.\n"
                       "# TYPE tributary_table_keys gauge\n"
                       "tributary_table_keys 1234\n");
    /* Collectors run at each render (assert_render rendered once), and read the values then. */
    assert_int_equal(lag.calls, 1);
    assert_int_equal(empty_calls, 1);
    lag.lag[1] = 3;
    keys = 1235;
    struct expo x;
    char *text = render_checked(reg, &x);
    assert_int_equal(lag.calls, 2);
    assert_int_equal(empty_calls, 2);
    assert_true(expo_get(&x, "tributary_consumer_lag_records", "topic", "telemetry", "partition",
                         "1", NULL) == 3);
    assert_true(expo_get(&x, "tributary_table_keys", NULL) == 1235);
    expo_free(&x);
    free(text);
    prom_registry_destroy(reg);
}

static void collect_badly(struct prom_sink *sink, void *opaque)
{
    (void)opaque;
    prom_sink_emit(sink, (const char *[]){"b"}, 2);
    prom_sink_emit(sink, (const char *[]){"a"}, 1);
    prom_sink_emit(sink, (const char *[]){"b"}, 99); /* the same series again */
    prom_sink_emit(sink, (const char *[]){"c"}, -1); /* a counter cannot be negative */
    prom_sink_emit(sink, (const char *[]){"d"}, NAN);
    prom_sink_emit(sink, NULL, 5);
    prom_sink_emit(sink, (const char *[]){NULL}, 5);
    prom_sink_emit(NULL, (const char *[]){"e"}, 5);
}

static void test_collector_mistakes_dropped(void **state)
{
    (void)state;
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"shard"};
    assert_non_null(prom_collector(reg, "tributary_shard_records_total", "Per shard.", PROM_COUNTER,
                                   labels, 1, collect_badly, NULL));
    struct capture cap;
    capture_begin(&cap);
    size_t len = 0;
    char *text = prom_render(reg, &len);
    char *log = capture_end(&cap);
    assert_string_equal(text, "# HELP tributary_shard_records_total Per shard.\n"
                              "# TYPE tributary_shard_records_total counter\n"
                              "tributary_shard_records_total{shard=\"a\"} 1\n"
                              "tributary_shard_records_total{shard=\"b\"} 2\n");
    assert_contains(log, "emitted the counter value -1; dropped", "negative");
    assert_contains(log, "emitted the counter value nan; dropped", "NaN");
    assert_contains(log, "emitted no label values (want 1); dropped", "no values");
    assert_contains(log, "emitted a NULL value of label 'shard'; dropped", "NULL value");
    assert_contains(log, "prom_sink_emit with a NULL sink", "NULL sink");
    assert_contains(log, "emitted one series twice; the second is dropped", "duplicate");
    free(log);
    free(text);
    /* And the same render passes the checks. */
    capture_begin(&cap);
    struct expo x;
    text = prom_render(reg, NULL);
    free(capture_end(&cap));
    char err[512];
    assert_int_equal(expo_parse(text, &x, err, sizeof err), 0);
    expo_free(&x);
    promtool_check(text);
    free(text);
    prom_registry_destroy(reg);
}

/* === the parser itself ======================================================================== */

static void test_parser_accepts_valid_text(void **state)
{
    (void)state;
    /* Written by hand: every construct the format allows and the parser checks. */
    const char *text = "# A comment that is neither HELP nor TYPE.\n"
                       "\n"
                       "# TYPE untyped_thing untyped\n"
                       "untyped_thing 1 1700000000000\n"
                       "# HELP req_total Requests with \\\\ and \\n.\n"
                       "# TYPE req_total counter\n"
                       "req_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\",} 10\n"
                       "req_total{code=\"500\",path=\"/\"} 0 -5\n"
                       "# TYPE temp gauge\n"
                       "temp -Inf\n"
                       "# TYPE lat histogram\n"
                       "# HELP lat Latency.\n"
                       "lat_bucket{le=\"0.1\"} 1\n"
                       "lat_bucket{le=\"1e1\"} 2\n"
                       "lat_bucket{le=\"+Inf\"} 2\n"
                       "lat_sum 3.5e-1\n"
                       "lat_count 2\n"
                       "lat_bucket{x=\"y\",le=\"+Inf\"} 0\n"
                       "lat_count{x=\"y\"} 0\n"
                       "lat_sum{x=\"y\"} NaN\n"
                       "# TYPE empty_total counter\n";
    struct expo x;
    char err[512] = "";
    if (expo_parse(text, &x, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_int_equal(x.nsamples, 12);
    assert_true(expo_get(&x, "req_total", "path", "/a\"b\\c\nd", "code", "200", NULL) == 10);
    assert_true(expo_get(&x, "lat_bucket", "le", "1e1", NULL) == 2);
    assert_true(isinf(expo_get(&x, "temp", NULL)));
    expo_free(&x);
}

static void test_parser_rejects_broken_rules(void **state)
{
    (void)state;
    static const struct {
        const char *what, *text, *message;
    } cases[] = {
        {"no final newline", "# TYPE a gauge\na 1", "does not end with a newline"},
        {"sample without TYPE", "a 1\n", "line 1: sample a has no # TYPE"},
        {"TYPE after the samples", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n",
         "line 5: # TYPE a after its samples"},
        {"HELP after the samples", "# TYPE a gauge\na 1\n# HELP a late\n",
         "line 3: # HELP a after its samples"},
        {"second TYPE", "# TYPE a gauge\n# TYPE a counter\n", "a second # TYPE for a"},
        {"second HELP", "# HELP a x\n# HELP a y\n", "a second # HELP for a"},
        {"unknown type", "# TYPE a meter\n", "unknown or unchecked type 'meter'"},
        {"summary", "# TYPE a summary\n", "unknown or unchecked type 'summary'"},
        {"samples not contiguous",
         "# TYPE a gauge\n# TYPE b gauge\na{x=\"1\"} 1\nb 1\na{x=\"2\"} 2\n",
         "line 5: the samples of a are not contiguous"},
        {"duplicate series", "# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
         "line 3: the series of line 2 appears again"},
        {"bad metric name", "# TYPE a gauge\n1a 1\n", "must start with a metric name"},
        {"bad name in TYPE", "# TYPE a-b gauge\n", "# TYPE needs a metric name"},
        {"bad label name", "# TYPE a gauge\na{1x=\"1\"} 1\n", "label name is missing or invalid"},
        {"__ label", "# TYPE a gauge\na{__x=\"1\"} 1\n", "starts with __"},
        {"repeated label", "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", "label x appears twice"},
        {"bad escape in a value", "# TYPE a gauge\na{x=\"\\t\"} 1\n", "invalid escape"},
        {"bad escape in help", "# HELP a tab\\t\n", "invalid escape in # HELP a"},
        {"value not closed", "# TYPE a gauge\na{x=\"1} 1\n", "is not closed"},
        {"value not UTF-8", "# TYPE a gauge\na{x=\"\xFF\"} 1\n", "is not UTF-8"},
        {"overlong UTF-8", "# TYPE a gauge\na{x=\"\xC0\xAF\"} 1\n", "is not UTF-8"},
        {"surrogate", "# TYPE a gauge\na{x=\"\xED\xA0\x80\"} 1\n", "is not UTF-8"},
        {"cut UTF-8", "# TYPE a gauge\na{x=\"\xE2\x82\"} 1\n", "is not UTF-8"},
        {"bad value", "# TYPE a gauge\na 0x10\n", "'0x10' is not a value"},
        {"Inf without sign", "# TYPE a gauge\na Inf\n", "'Inf' is not a value"},
        {"two spaces", "# TYPE a gauge\na  1\n", "'' is not a value"},
        {"trailing text", "# TYPE a gauge\na 1 2 3\n", "a timestamp must be an integer"},
        {"negative counter", "# TYPE a_total counter\na_total -1\n",
         "a_total has the value -1; a count must be >= 0"},
        {"NaN counter", "# TYPE a_total counter\na_total NaN\n", "a count must be >= 0"},
        {"histogram sample without suffix", "# TYPE h histogram\nh 1\n",
         "histogram h has a sample without _bucket"},
        {"bucket without le", "# TYPE h histogram\nh_bucket 1\n", "bucket h_bucket has no le"},
        {"le on _sum", "# TYPE h histogram\nh_sum{le=\"1\"} 1\n", "h_sum has le but is not"},
        {"le not a number", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
         "le=\"x\" is not a bound"},
        {"buckets not ascending",
         "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n",
         "line 3: le 1 does not ascend (after 2)"},
        {"buckets not cumulative",
         "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
         "line 3: bucket count 1 below the previous 2"},
        {"no +Inf bucket", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n",
         "a child has no +Inf bucket"},
        {"bucket after +Inf", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"5\"} 1\n",
         "a bucket after the +Inf bucket"},
        {"no _count", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\n",
         "a child has no _count"},
        {"no _sum", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
         "a child has no _sum"},
        {"_count differs from +Inf",
         "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 3\n",
         "_count 3 differs from the +Inf bucket 2"},
        {"one child incomplete",
         "# TYPE h histogram\nh_bucket{a=\"1\",le=\"+Inf\"} 1\nh_sum{a=\"1\"} 0\nh_count{a=\"1\"} "
         "1\nh_bucket{a=\"2\",le=\"+Inf\"} 1\nh_sum{a=\"2\"} 0\n",
         "line 5: histogram h: a child has no _count"},
        {"negative bucket", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} -1\n",
         "a count must be >= 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct expo x;
        char err[512] = "";
        int rc = expo_parse(cases[i].text, &x, err, sizeof err);
        expo_free(&x);
        if (rc == 0)
            fail_msg("case '%s' was accepted", cases[i].what);
        assert_contains(err, cases[i].message, cases[i].what);
    }
}

static void test_promtool(void **state)
{
    (void)state;
    if (!promtool_on_path()) {
        print_message("  promtool is not on PATH: `promtool check metrics` was not run "
                      "(Debian's prometheus package provides it)\n");
        skip();
    }
    /* One registry with every kind, labels, escapes and special values, through promtool. */
    struct prom_registry *reg = prom_registry_new();
    const char *labels[] = {"path", "code"};
    struct prom_family *requests =
        prom_counter(reg, "tributary_http_requests_total", "HTTP requests.", labels, 2);
    prom_add(prom_child(requests, (const char *[]){"/predict", "200"}), 12);
    prom_add(prom_child(requests, (const char *[]){"/we\"ird\\path\n", "404"}), 0.5);
    struct prom_family *level = prom_gauge(reg, "tributary_model_version", "Model.\\n", NULL, 0);
    prom_set(prom_child(level, NULL), -INFINITY);
    double bounds[5];
    assert_int_equal(prom_buckets_exponential(0.0005, 2, 5, bounds), TB_OK);
    const char *hlabels[] = {"stage"};
    struct prom_family *h = prom_histogram(reg, "tributary_stage_duration_seconds",
                                           "Stage durations.", hlabels, 1, bounds, 5);
    for (int i = 0; i < 50; i++)
        prom_observe(prom_child(h, (const char *[]){i % 2 ? "decode" : "predict"}), i * 0.0003);
    struct lag_source lag = {.lag = {1, 2, 3}};
    const char *lag_labels[] = {"topic", "partition"};
    prom_collector(reg, "tributary_consumer_lag_records", "Lag.", PROM_GAUGE, lag_labels, 2,
                   collect_lag, &lag);
    char *text = render_checked(reg, NULL); /* which runs promtool */
    assert_int_equal(promtool_check(text), 0);
    free(text);
    prom_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("counter: no labels, at 0 before use, whole and fractional increments",
                   test_counter_without_labels, NULL),
        NAMED_CASE("counter: labels, children sorted by value, no child renders nothing",
                   test_counter_with_labels, NULL),
        NAMED_CASE("gauge: set/add/inc, numbers written as Prometheus reads them",
                   test_gauge_and_numbers, NULL),
        NAMED_CASE("histogram: cumulative buckets, le inclusive, _sum, _count, NaN to +Inf",
                   test_histogram_without_labels, NULL),
        NAMED_CASE("histogram: labels before le, no bounds, a trailing +Inf bound ignored",
                   test_histogram_with_labels, NULL),
        NAMED_CASE("histogram: exponential bounds render as short decimals",
                   test_histogram_exponential_bounds, NULL),
        NAMED_CASE("escaping: label values (\\ \" newline) and help (\\ newline)", test_escaping,
                   NULL),
        NAMED_CASE("label values: invalid UTF-8 becomes U+FFFD", test_invalid_utf8_values, NULL),
        NAMED_CASE("render: families sorted by name, collectors among them",
                   test_families_sorted_by_name, NULL),
        NAMED_CASE("validation: bad names, labels, help, bounds and taken names refused, logged",
                   test_bad_families_refused, NULL),
        NAMED_CASE("misuse: wrong-kind updates and negative counter steps ignored, logged",
                   test_misuse_ignored, NULL),
        NAMED_CASE("buckets: exponential and linear closed forms; bad arguments refused",
                   test_bucket_helpers, NULL),
        NAMED_CASE("threads: 8 x 100k updates give exact totals while a thread renders",
                   test_concurrent_updates, NULL),
        NAMED_CASE("threads: 8 threads create the same 1000 children at once",
                   test_concurrent_child_creation, NULL),
        NAMED_CASE("collectors: read at each render, sorted, without labels, empty omitted",
                   test_collectors, NULL),
        NAMED_CASE("collectors: duplicate, negative counter and missing values dropped, logged",
                   test_collector_mistakes_dropped, NULL),
        NAMED_CASE("parser: accepts a hand-written text with every construct",
                   test_parser_accepts_valid_text, NULL),
        NAMED_CASE("parser: refuses each broken rule, naming it and its line",
                   test_parser_rejects_broken_rules, NULL),
        NAMED_CASE("promtool check metrics accepts a render of every kind", test_promtool, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
