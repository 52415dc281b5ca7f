/* Unit tests for models/pipeline: sklearn and numpy references, window state, specs, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "tests/support/support.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char reference_script[] = "tests/unit/models/pipeline_reference.py";

/* Most words on a line of the reference's files. */
#define MAX_WORDS 256

/* --- reading the reference's files ------------------------------------------------------------ */

/* Splits line at blanks into words (pointers into line); returns their number. */
static size_t split_words(char *line, char **words)
{
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
        assert_true(n < MAX_WORDS);
        words[n++] = w;
    }
    return n;
}

static double parse_number(const char *word)
{
    char *end = NULL;
    double v = strtod(word, &end);
    if (end == word || *end != '\0')
        fail_msg("'%s' is not a number", word);
    return v;
}

/* The small data set as the reference wrote it. Keys are stored back to back in one buffer,
 * without NULs, so that only key_lens delimits them. */
struct dataset {
    size_t nrows, nnumeric, ncategorical;
    char **numeric, **categorical; /* input names */
    char *key_bytes;
    const char **keys;
    size_t *key_lens;
    unsigned char *train;
    double *numbers; /* nrows x nnumeric, NAN when missing */
    char **cats;     /* nrows x ncategorical, NULL when missing */
    /* Per categorical input, the dictionary pipeline_fit sees: the strings in order of first
     * appearance, then one that no row uses. */
    const char ***dict;
    size_t *ndict;
};

static char **copy_words(char **words, size_t n)
{
    char **copy = mem_alloc((n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        copy[i] = mem_strdup(words[i]);
    return copy;
}

static void dataset_read(const char *dir, struct dataset *d)
{
    memset(d, 0, sizeof(*d));
    char path[1024];
    snprintf(path, sizeof(path), "%s/inputs.txt", dir);
    size_t len = 0;
    char *text = support_read_file(path, &len), *cursor = text, *line;
    char *words[MAX_WORDS];

    line = support_next_line(&cursor);
    assert_non_null(line);
    d->nnumeric = split_words(line, words);
    d->numeric = copy_words(words, d->nnumeric);
    line = support_next_line(&cursor);
    assert_non_null(line);
    d->ncategorical = split_words(line, words);
    d->categorical = copy_words(words, d->ncategorical);

    size_t key_cap = 0, key_used = 0, lens_cap = 0, offsets_cap = 0, train_cap = 0;
    size_t numbers_cap = 0, cats_cap = 0;
    size_t *key_offsets = NULL;
    while ((line = support_next_line(&cursor))) {
        size_t n = split_words(line, words);
        if (n == 0)
            continue;
        assert_int_equal(n, 2 + d->nnumeric + d->ncategorical);
        size_t i = d->nrows++;
        mem_grow((void **)&d->key_lens, &lens_cap, d->nrows, sizeof(size_t));
        mem_grow((void **)&key_offsets, &offsets_cap, d->nrows, sizeof(size_t));
        mem_grow((void **)&d->train, &train_cap, d->nrows, 1);
        mem_grow((void **)&d->numbers, &numbers_cap, d->nrows * d->nnumeric, sizeof(double));
        mem_grow((void **)&d->cats, &cats_cap, d->nrows * d->ncategorical, sizeof(char *));
        size_t klen = strcmp(words[0], "-") == 0 ? 0 : strlen(words[0]);
        mem_grow((void **)&d->key_bytes, &key_cap, key_used + klen + 1, 1);
        memcpy(d->key_bytes + key_used, words[0], klen);
        key_offsets[i] = key_used;
        d->key_lens[i] = klen;
        key_used += klen;
        d->train[i] = (unsigned char)(strcmp(words[1], "1") == 0);
        for (size_t j = 0; j < d->nnumeric; j++)
            d->numbers[i * d->nnumeric + j] = parse_number(words[2 + j]);
        for (size_t j = 0; j < d->ncategorical; j++) {
            const char *w = words[2 + d->nnumeric + j];
            d->cats[i * d->ncategorical + j] = strcmp(w, "?") == 0 ? NULL : mem_strdup(w);
        }
    }
    free(text);
    assert_true(d->nrows > 0);
    d->keys = mem_alloc(d->nrows * sizeof(char *));
    for (size_t i = 0; i < d->nrows; i++)
        d->keys[i] = d->key_bytes + key_offsets[i];
    free(key_offsets);

    d->dict = mem_calloc(d->ncategorical ? d->ncategorical : 1, sizeof(char **));
    d->ndict = mem_calloc(d->ncategorical ? d->ncategorical : 1, sizeof(size_t));
    for (size_t j = 0; j < d->ncategorical; j++) {
        d->dict[j] = mem_alloc((d->nrows + 1) * sizeof(char *));
        for (size_t i = 0; i < d->nrows; i++) {
            const char *c = d->cats[i * d->ncategorical + j];
            size_t k = 0;
            while (c && k < d->ndict[j] && strcmp(d->dict[j][k], c) != 0)
                k++;
            if (c && k == d->ndict[j])
                d->dict[j][d->ndict[j]++] = c;
        }
        d->dict[j][d->ndict[j]++] = "never-used";
    }
}

static void dataset_free(struct dataset *d)
{
    for (size_t j = 0; j < d->ncategorical; j++)
        free(d->dict[j]);
    free(d->ndict);
    free(d->dict);
    for (size_t i = 0; i < d->nrows * d->ncategorical; i++)
        free(d->cats[i]);
    free(d->cats);
    free(d->numbers);
    free(d->train);
    free(d->key_lens);
    free(d->keys);
    free(d->key_bytes);
    for (size_t j = 0; j < d->ncategorical; j++)
        free(d->categorical[j]);
    free(d->categorical);
    for (size_t j = 0; j < d->nnumeric; j++)
        free(d->numeric[j]);
    free(d->numeric);
}

/* Input rows with categorical codes for pipeline_fit (indices into d->dict) or, with a
 * pipeline, for pipeline_transform (pipeline_category_index). */
static double *dataset_values(const struct dataset *d, const struct pipeline *pipeline)
{
    size_t ninputs = d->nnumeric + d->ncategorical;
    double *values = mem_alloc(d->nrows * ninputs * sizeof(double));
    for (size_t i = 0; i < d->nrows; i++) {
        memcpy(values + i * ninputs, d->numbers + i * d->nnumeric, d->nnumeric * sizeof(double));
        for (size_t j = 0; j < d->ncategorical; j++) {
            const char *c = d->cats[i * d->ncategorical + j];
            double code = NAN;
            if (c && pipeline) {
                code = (double)pipeline_category_index(pipeline, j, c, strlen(c));
            } else if (c) {
                size_t k = 0;
                while (strcmp(d->dict[j][k], c) != 0)
                    k++;
                code = (double)k;
            }
            values[i * ninputs + d->nnumeric + j] = code;
        }
    }
    return values;
}

static struct pipeline_rows dataset_rows(const struct dataset *d, const double *values,
                                         size_t start, size_t count)
{
    size_t ninputs = d->nnumeric + d->ncategorical;
    return (struct pipeline_rows){.nrows = count,
                                  .values = values + start * ninputs,
                                  .keys = d->keys + start,
                                  .key_lens = d->key_lens + start};
}

/* Runs the reference in mode "data" and reads the data set it writes. */
static void dataset_load(struct dataset *d)
{
    if (access(reference_script, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", reference_script);
    char *dir = support_mkdtemp("tributary_pipeline");
    assert_non_null(dir);
    free(support_python(reference_script, "data", dir, NULL));
    dataset_read(dir, d);
    assert_int_equal(support_rmtree(dir), 0);
    free(dir);
}

/* A matrix with named columns, as the reference writes expected.txt. */
struct table {
    size_t nrows, ncols;
    char **names;
    double *values;
};

static void table_read(const char *path, struct table *t)
{
    memset(t, 0, sizeof(*t));
    size_t len = 0, cap = 0;
    char *text = support_read_file(path, &len), *cursor = text, *line;
    char *words[MAX_WORDS];
    line = support_next_line(&cursor);
    assert_non_null(line);
    t->ncols = split_words(line, words);
    t->names = copy_words(words, t->ncols);
    while ((line = support_next_line(&cursor))) {
        size_t n = split_words(line, words);
        if (n == 0)
            continue;
        assert_int_equal(n, t->ncols);
        mem_grow((void **)&t->values, &cap, (t->nrows + 1) * t->ncols, sizeof(double));
        for (size_t c = 0; c < n; c++)
            t->values[t->nrows * t->ncols + c] = parse_number(words[c]);
        t->nrows++;
    }
    free(text);
}

static void table_free(struct table *t)
{
    for (size_t c = 0; c < t->ncols; c++)
        free(t->names[c]);
    free(t->names);
    free(t->values);
}

/* fitted.txt: "fill ...", "offset ...", "factor ..." lines. */
struct fitted {
    size_t nfill, noffset, nfactor;
    double fill[MAX_WORDS], offset[MAX_WORDS], factor[MAX_WORDS];
};

static void fitted_read(const char *path, struct fitted *f)
{
    memset(f, 0, sizeof(*f));
    size_t len = 0;
    char *text = support_read_file(path, &len), *cursor = text, *line;
    char *words[MAX_WORDS];
    while ((line = support_next_line(&cursor))) {
        size_t n = split_words(line, words);
        if (n == 0)
            continue;
        double *into = strcmp(words[0], "fill") == 0     ? f->fill
                       : strcmp(words[0], "offset") == 0 ? f->offset
                                                         : f->factor;
        size_t *count = into == f->fill ? &f->nfill : into == f->offset ? &f->noffset : &f->nfactor;
        for (size_t k = 1; k < n; k++)
            into[k - 1] = parse_number(words[k]);
        *count = n - 1;
    }
    free(text);
}

/* --- comparing -------------------------------------------------------------------------------- */

/* Fails unless got and want are both NaN or within 1e-9 relative. With unit_floor, values are in
 * scaled units, whose natural size is 1: the difference is then held to 1e-9 of max(|got|,
 * |want|, 1), since x - mean cancels to values far smaller than the rounding of the mean. */
static void assert_value(double got, double want, bool unit_floor, const char *what)
{
    if (isnan(want) || isnan(got)) {
        if (!(isnan(want) && isnan(got)))
            fail_msg("%s: got %.17g, want %.17g", what, got, want);
        return;
    }
    if (unit_floor) {
        double scale = fmax(1.0, fmax(fabs(got), fabs(want)));
        if (!(fabs(got - want) <= 1e-9 * scale))
            fail_msg("%s: got %.17g, want %.17g (difference %.3g > 1e-9 of %.3g)", what, got, want,
                     fabs(got - want), scale);
        return;
    }
    support_assert_close(got, want, 1e-9, what);
}

/* Fails unless two feature matrices are identical bit for bit (NaNs included). */
static void assert_same_features(const double *a, const double *b, size_t nrows, size_t ncols,
                                 const char *what)
{
    for (size_t i = 0; i < nrows * ncols; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0)
            fail_msg("%s: row %zu feature %zu: %.17g versus %.17g", what, i / ncols, i % ncols,
                     a[i], b[i]);
}

/* --- configurations --------------------------------------------------------------------------- */

/* One configuration, in the words the reference takes. */
struct reference_case {
    const char *impute; /* none, mean or constant:VALUE */
    bool indicator;
    size_t window;
    const char *stats;   /* comma-separated statistic names, "-" for none */
    const char *columns; /* comma-separated numeric input names, or "all" */
    const char *scale;   /* none, standard or minmax */
};

struct options_storage {
    struct pipeline_options options;
    char columns[256];
    const char *column_names[16];
};

static void make_options(const struct reference_case *rc, const struct dataset *d,
                         struct options_storage *s)
{
    memset(s, 0, sizeof(*s));
    struct pipeline_options *o = &s->options;
    o->numeric = (const char *const *)d->numeric;
    o->nnumeric = d->nnumeric;
    o->categorical = (const char *const *)d->categorical;
    o->ncategorical = d->ncategorical;
    if (strcmp(rc->impute, "none") == 0) {
        o->impute = PIPELINE_IMPUTE_NONE;
    } else if (strcmp(rc->impute, "mean") == 0) {
        o->impute = PIPELINE_IMPUTE_MEAN;
    } else {
        assert_true(strncmp(rc->impute, "constant:", 9) == 0);
        o->impute = PIPELINE_IMPUTE_CONSTANT;
        o->impute_value = parse_number(rc->impute + 9);
    }
    o->impute_indicator = rc->indicator;
    o->window = rc->window;

    char stats[256];
    snprintf(stats, sizeof(stats), "%s", rc->stats);
    char *save = NULL;
    for (char *w = strtok_r(stats, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "-") == 0)
            continue;
        unsigned bit = pipeline_stat_parse(w);
        if (bit == 0)
            fail_msg("unknown statistic '%s'", w);
        o->window_stats |= bit;
    }
    if (strcmp(rc->columns, "all") != 0) {
        snprintf(s->columns, sizeof(s->columns), "%s", rc->columns);
        for (char *w = strtok_r(s->columns, ",", &save); w; w = strtok_r(NULL, ",", &save))
            s->column_names[o->nwindow_columns++] = w;
        o->window_columns = s->column_names;
    }
    o->scale = strcmp(rc->scale, "none") == 0       ? PIPELINE_SCALE_NONE
               : strcmp(rc->scale, "standard") == 0 ? PIPELINE_SCALE_STANDARD
                                                    : PIPELINE_SCALE_MINMAX;
}

static struct pipeline *fit_or_fail(const struct pipeline_options *o, const struct dataset *d,
                                    const unsigned char *train_mask)
{
    double *values = dataset_values(d, NULL);
    struct pipeline_rows rows = dataset_rows(d, values, 0, d->nrows);
    char err[256] = "";
    struct pipeline *p = pipeline_fit(o, &rows, train_mask, (const char *const *const *)d->dict,
                                      d->ndict, err, sizeof(err));
    free(values);
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    return p;
}

/* Transforms all rows of d in one call with a fresh state; the caller frees the result. */
static double *transform_all(const struct pipeline *p, const struct dataset *d)
{
    double *values = dataset_values(d, p);
    double *out = mem_alloc(d->nrows * pipeline_nfeatures(p) * sizeof(double));
    struct pipeline_state *state = pipeline_state_new(p);
    struct pipeline_rows rows = dataset_rows(d, values, 0, d->nrows);
    pipeline_transform(p, state, &rows, out);
    pipeline_state_destroy(state);
    free(values);
    return out;
}

/* The configuration most tests use: every stage, every statistic. */
static const struct reference_case full_case = {
    "mean", true, 4, "mean,std,min,max,slope,last,count", "all", "standard"};

/* --- against scikit-learn --------------------------------------------------------------------- */

static void test_reference(void **state)
{
    const struct reference_case *rc = *state;
    if (access(reference_script, R_OK) != 0)
        fail_msg("%s not found: run the tests from the repository root", reference_script);
    char *dir = support_mkdtemp("tributary_pipeline");
    assert_non_null(dir);
    char window[32], path[1024];
    snprintf(window, sizeof(window), "%zu", rc->window);
    free(support_python(reference_script, "random", dir, rc->impute, rc->indicator ? "1" : "0",
                        window, rc->stats, rc->columns, rc->scale, NULL));
    struct dataset d;
    dataset_read(dir, &d);
    struct table expected;
    snprintf(path, sizeof(path), "%s/expected.txt", dir);
    table_read(path, &expected);
    struct fitted fitted;
    snprintf(path, sizeof(path), "%s/fitted.txt", dir);
    fitted_read(path, &fitted);
    assert_int_equal(expected.nrows, d.nrows);

    struct options_storage opts;
    make_options(rc, &d, &opts);
    struct pipeline *p = fit_or_fail(&opts.options, &d, d.train);
    const struct pipeline_spec *spec = pipeline_spec(p);

    /* Names, in order. */
    assert_int_equal(pipeline_ninputs(p), d.nnumeric + d.ncategorical);
    assert_int_equal(pipeline_nfeatures(p), expected.ncols);
    for (size_t f = 0; f < expected.ncols; f++)
        assert_string_equal(pipeline_feature_name(p, f), expected.names[f]);
    assert_null(pipeline_feature_name(p, expected.ncols));

    /* What was fitted: SimpleImputer's statistics_, the scaler's mean_/scale_ or data_min_/
     * scale_. */
    char what[128];
    assert_int_equal(fitted.nfill, d.nnumeric);
    for (size_t j = 0; j < d.nnumeric; j++) {
        snprintf(what, sizeof(what), "fill of %s", d.numeric[j]);
        assert_value(spec->fill[j], fitted.fill[j], false, what);
    }
    bool scaled = strcmp(rc->scale, "none") != 0;
    if (scaled) {
        assert_int_equal(fitted.noffset, spec->nscaled);
        assert_int_equal(fitted.nfactor, spec->nscaled);
        for (size_t c = 0; c < spec->nscaled; c++) {
            snprintf(what, sizeof(what), "offset of %s", expected.names[c]);
            assert_value(spec->offset[c], fitted.offset[c], false, what);
            snprintf(what, sizeof(what), "factor of %s", expected.names[c]);
            assert_value(spec->factor[c], fitted.factor[c], false, what);
        }
    }

    /* Every feature of every row. */
    double *out = transform_all(p, &d);
    size_t nf = expected.ncols;
    for (size_t i = 0; i < d.nrows; i++)
        for (size_t f = 0; f < nf; f++) {
            snprintf(what, sizeof(what), "row %zu (key '%.*s') %s", i, (int)d.key_lens[i],
                     d.keys[i], expected.names[f]);
            assert_value(out[i * nf + f], expected.values[i * nf + f], scaled && f < spec->nscaled,
                         what);
        }

    free(out);
    pipeline_destroy(p);
    table_free(&expected);
    dataset_free(&d);
    assert_int_equal(support_rmtree(dir), 0);
    free(dir);
}

/* --- scaler ----------------------------------------------------------------------------------- */

static void test_scaler_zero_spread(void **state)
{
    (void)state;
    /* Columns: exactly constant; constant but for one ulp (a variance within scikit-learn's
     * rounding bound of 0); a small real spread; a range below 10 eps; a range above it.
     * Powers of two keep every mean and variance exact, so both sides compute the same
     * numbers. */
    enum { N = 4, P = 5 };
    static const char *const names[P] = {"v0", "v1", "v2", "v3", "v4"};
    static const double columns[P][N] = {
        {518.67, 518.67, 518.67, 518.67}, {1.0, 1.0, 1.0, 1.0 + 0x1p-52},
        {1.0, 1.0, 1.0, 1.0 + 0x1p-20},   {0.0, 0x1p-53, 0.0, 0.0},
        {0.0, 0x1p-40, 0.0, 0.0},
    };
    double values[N * P];
    /* The rows as a Python list, each number printed so that it reads back exactly. */
    char code[2048];
    int len = snprintf(code, sizeof(code),
                       "import numpy as np\n"
                       "from sklearn.preprocessing import MinMaxScaler, StandardScaler\n"
                       "x = np.array([");
    for (size_t i = 0; i < N * P; i++) {
        values[i] = columns[i % P][i / P];
        len += snprintf(code + len, sizeof(code) - (size_t)len, "%.17g,", values[i]);
    }
    snprintf(code + len, sizeof(code) - (size_t)len,
             "]).reshape(%d, %d)\n"
             "s = StandardScaler().fit(x)\n"
             "m = MinMaxScaler().fit(x)\n"
             "for v in list(s.mean_) + list(1 / s.scale_) + list(m.data_min_) + list(m.scale_):\n"
             "    print(repr(float(v)))\n",
             N, P);
    char *out = support_python("-c", code, NULL), *cursor = out, *line;
    double want[4 * P];
    size_t got = 0;
    while ((line = support_next_line(&cursor)) && got < 4 * P)
        want[got++] = parse_number(line);
    assert_int_equal(got, 4 * P);
    free(out);

    struct pipeline_options o = {.numeric = names, .nnumeric = P, .impute = PIPELINE_IMPUTE_NONE};
    struct pipeline_rows rows = {.nrows = N, .values = values};
    const enum pipeline_scale scales[] = {PIPELINE_SCALE_STANDARD, PIPELINE_SCALE_MINMAX};
    for (size_t s = 0; s < 2; s++) {
        o.scale = scales[s];
        char err[256] = "";
        struct pipeline *p = pipeline_fit(&o, &rows, NULL, NULL, NULL, err, sizeof(err));
        if (!p)
            fail_msg("pipeline_fit: %s", err);
        for (size_t c = 0; c < P; c++) {
            char what[64];
            snprintf(what, sizeof(what), "%s offset of %s", s ? "minmax" : "standard", names[c]);
            support_assert_close(pipeline_spec(p)->offset[c], want[2 * P * s + c], 1e-12, what);
            snprintf(what, sizeof(what), "%s factor of %s", s ? "minmax" : "standard", names[c]);
            support_assert_close(pipeline_spec(p)->factor[c], want[2 * P * s + P + c], 1e-12, what);
        }
        /* The constant columns are not blown up. */
        assert_true(pipeline_spec(p)->factor[0] == 1.0);
        assert_true(pipeline_spec(p)->factor[s ? 3 : 1] == 1.0);
        pipeline_destroy(p);
    }
}

/* --- the window state ------------------------------------------------------------------------- */

static void test_state_carries_over_calls(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    struct options_storage opts;
    make_options(&full_case, &d, &opts);
    struct pipeline *p = fit_or_fail(&opts.options, &d, d.train);
    size_t nf = pipeline_nfeatures(p);
    double *whole = transform_all(p, &d);
    double *values = dataset_values(&d, p);
    double *out = mem_alloc(d.nrows * nf * sizeof(double));

    const size_t cuts[] = {1, 37, d.nrows - 1};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        struct pipeline_state *s = pipeline_state_new(p);
        struct pipeline_rows first = dataset_rows(&d, values, 0, cuts[k]);
        struct pipeline_rows rest = dataset_rows(&d, values, cuts[k], d.nrows - cuts[k]);
        pipeline_transform(p, s, &first, out);
        pipeline_transform(p, s, &rest, out + cuts[k] * nf);
        char what[64];
        snprintf(what, sizeof(what), "split after row %zu", cuts[k]);
        assert_same_features(out, whole, d.nrows, nf, what);
        pipeline_state_destroy(s);
    }

    /* One row per call, and an empty call in between. */
    struct pipeline_state *s = pipeline_state_new(p);
    for (size_t i = 0; i < d.nrows; i++) {
        struct pipeline_rows one = dataset_rows(&d, values, i, 1);
        struct pipeline_rows none = dataset_rows(&d, values, i, 0);
        pipeline_transform(p, s, &one, out + i * nf);
        pipeline_transform(p, s, &none, NULL);
    }
    assert_same_features(out, whole, d.nrows, nf, "one row per call");
    assert_int_equal(pipeline_state_keys(s), 4);
    pipeline_state_destroy(s);

    free(out);
    free(values);
    free(whole);
    pipeline_destroy(p);
    dataset_free(&d);
}

static void test_state_serves_new_version(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    struct options_storage opts;
    make_options(&full_case, &d, &opts);
    struct pipeline *old = fit_or_fail(&opts.options, &d, d.train);
    /* The new version: other training rows (so other fills), other statistics and scaler. */
    unsigned char *mask = mem_alloc(d.nrows);
    for (size_t i = 0; i < d.nrows; i++)
        mask[i] = (unsigned char)(i % 3 != 0);
    opts.options.window_stats = PIPELINE_STAT_MEAN | PIPELINE_STAT_LAST;
    opts.options.scale = PIPELINE_SCALE_MINMAX;
    struct pipeline *next = fit_or_fail(&opts.options, &d, mask);
    assert_true(pipeline_spec(old)->fill[0] != pipeline_spec(next)->fill[0]);
    assert_true(pipeline_nfeatures(old) != pipeline_nfeatures(next));

    size_t cut = d.nrows / 2, nf = pipeline_nfeatures(next);
    double *old_values = dataset_values(&d, old), *next_values = dataset_values(&d, next);
    double *old_out = mem_alloc(d.nrows * pipeline_nfeatures(old) * sizeof(double));
    double *out = mem_alloc(d.nrows * nf * sizeof(double));
    struct pipeline_state *s = pipeline_state_new(old);
    struct pipeline_rows first = dataset_rows(&d, old_values, 0, cut);
    pipeline_transform(old, s, &first, old_out);
    assert_true(pipeline_state_fits(s, next));
    struct pipeline_rows rest = dataset_rows(&d, next_values, cut, d.nrows - cut);
    pipeline_transform(next, s, &rest, out);

    /* As if the new version had seen every record: the history holds raw inputs, and each
     * version imputes them with its own fills. */
    double *want = transform_all(next, &d);
    assert_same_features(out, want + cut * nf, d.nrows - cut, nf, "history kept across versions");

    pipeline_state_destroy(s);
    free(want);
    free(out);
    free(old_out);
    free(next_values);
    free(old_values);
    pipeline_destroy(next);
    pipeline_destroy(old);
    free(mask);
    dataset_free(&d);
}

static void test_state_fits(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    struct options_storage opts;
    make_options(&full_case, &d, &opts);
    struct pipeline *base = fit_or_fail(&opts.options, &d, d.train);
    struct pipeline_state *s = pipeline_state_new(base);
    assert_true(pipeline_state_fits(s, base));

    /* Same numeric inputs and window: fits, whatever else differs. */
    struct options_storage other;
    make_options(&full_case, &d, &other);
    other.options.window_stats = PIPELINE_STAT_COUNT;
    other.options.impute = PIPELINE_IMPUTE_CONSTANT;
    other.options.impute_value = -3.0;
    other.options.scale = PIPELINE_SCALE_NONE;
    static const char *const x2_only[] = {"x2"};
    other.options.window_columns = x2_only;
    other.options.nwindow_columns = 1;
    struct pipeline *p = fit_or_fail(&other.options, &d, NULL);
    assert_true(pipeline_state_fits(s, p));
    pipeline_destroy(p);

    /* Another window. */
    make_options(&full_case, &d, &other);
    other.options.window = 5;
    p = fit_or_fail(&other.options, &d, d.train);
    assert_false(pipeline_state_fits(s, p));
    pipeline_destroy(p);

    /* The numeric inputs in another order, and fewer of them (the categorical inputs follow
     * the numeric ones in a row, so the data set is relabelled rather than reordered). */
    const char *swapped[] = {d.numeric[1], d.numeric[0], d.numeric[2], d.numeric[3]};
    make_options(&full_case, &d, &other);
    other.options.numeric = swapped;
    p = fit_or_fail(&other.options, &d, d.train);
    assert_false(pipeline_state_fits(s, p));
    pipeline_destroy(p);
    const char *renamed[] = {d.numeric[0], d.numeric[1], d.numeric[2], "x9"};
    other.options.numeric = renamed;
    p = fit_or_fail(&other.options, &d, d.train);
    assert_false(pipeline_state_fits(s, p));
    pipeline_destroy(p);

    /* A pipeline without a window fits a state without one. */
    make_options(&full_case, &d, &other);
    other.options.window = 0;
    p = fit_or_fail(&other.options, &d, d.train);
    assert_false(pipeline_state_fits(s, p));
    struct pipeline_state *s0 = pipeline_state_new(p);
    assert_true(pipeline_state_fits(s0, p));
    assert_false(pipeline_state_fits(s0, base));
    pipeline_state_destroy(s0);
    pipeline_destroy(p);

    pipeline_state_destroy(s);
    pipeline_state_destroy(NULL);
    pipeline_destroy(base);
    pipeline_destroy(NULL);
    dataset_free(&d);
}

static void test_state_grows_only_for_new_keys(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    struct options_storage opts;
    make_options(&full_case, &d, &opts);
    opts.options.scale = PIPELINE_SCALE_NONE;
    struct pipeline *p = fit_or_fail(&opts.options, &d, d.train);
    size_t nf = pipeline_nfeatures(p), ninputs = pipeline_ninputs(p);
    size_t count_col = pipeline_spec(p)->nscaled - 1;
    assert_string_equal(pipeline_feature_name(p, count_col), "window_count_4");
    double *values = dataset_values(&d, p);
    double *out = mem_alloc(d.nrows * nf * sizeof(double));
    struct pipeline_state *s = pipeline_state_new(p);
    size_t empty = pipeline_state_bytes(s);
    assert_int_equal(pipeline_state_keys(s), 0);

    struct pipeline_rows all = dataset_rows(&d, values, 0, d.nrows);
    pipeline_transform(p, s, &all, out);
    assert_int_equal(pipeline_state_keys(s), 4);
    size_t full = pipeline_state_bytes(s);
    /* Each key holds at least its ring: window records of every numeric input. */
    assert_true(full >= empty + 4 * (4 * d.nnumeric * sizeof(double)));
    pipeline_transform(p, s, &all, out);
    assert_int_equal(pipeline_state_bytes(s), full);
    assert_int_equal(pipeline_state_keys(s), 4);

    /* 100 new keys: the table grows past its first size and every key keeps its history. */
    char names[100][8];
    const char *keys[100];
    size_t lens[100];
    double *many = mem_alloc(100 * ninputs * sizeof(double));
    for (size_t i = 0; i < 100; i++) {
        lens[i] = (size_t)snprintf(names[i], sizeof(names[i]), "new%zu", i);
        keys[i] = names[i];
        memcpy(many + i * ninputs, values, ninputs * sizeof(double));
    }
    struct pipeline_rows fresh = {.nrows = 100, .values = many, .keys = keys, .key_lens = lens};
    double *fresh_out = mem_alloc(100 * nf * sizeof(double));
    pipeline_transform(p, s, &fresh, fresh_out);
    pipeline_transform(p, s, &fresh, fresh_out);
    assert_int_equal(pipeline_state_keys(s), 104);
    assert_true(pipeline_state_bytes(s) > full + 100 * 4 * d.nnumeric * sizeof(double));
    /* The second record of each new key sees a window of two, after the table's rehashes. */
    for (size_t i = 0; i < 100; i++)
        assert_true(fresh_out[i * nf + count_col] == 2.0);

    pipeline_state_destroy(s);
    free(fresh_out);
    free(many);
    free(out);
    free(values);
    pipeline_destroy(p);
    dataset_free(&d);
}

static void test_null_keys_share_one_history(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    struct options_storage opts;
    make_options(&full_case, &d, &opts);
    opts.options.scale = PIPELINE_SCALE_NONE;
    struct pipeline *p = fit_or_fail(&opts.options, &d, d.train);
    size_t nf = pipeline_nfeatures(p), count_col = pipeline_spec(p)->nscaled - 1;
    assert_string_equal(pipeline_feature_name(p, count_col), "window_count_4");
    double *values = dataset_values(&d, p);
    double *a = mem_alloc(d.nrows * nf * sizeof(double));
    double *b = mem_alloc(d.nrows * nf * sizeof(double));

    struct pipeline_state *s = pipeline_state_new(p);
    struct pipeline_rows rows = {.nrows = d.nrows, .values = values};
    pipeline_transform(p, s, &rows, a);
    assert_int_equal(pipeline_state_keys(s), 1);
    for (size_t i = 0; i < d.nrows; i++)
        assert_true(a[i * nf + count_col] == (double)(i + 1 < 4 ? i + 1 : 4));
    pipeline_state_destroy(s);

    /* NULL keys in a key array, and empty keys, are the same key. */
    const char **keys = mem_alloc(d.nrows * sizeof(char *));
    size_t *lens = mem_calloc(d.nrows, sizeof(size_t));
    for (size_t i = 0; i < d.nrows; i++)
        keys[i] = i % 2 ? NULL : "ignored beyond its length 0";
    s = pipeline_state_new(p);
    rows.keys = keys;
    rows.key_lens = lens;
    pipeline_transform(p, s, &rows, b);
    assert_int_equal(pipeline_state_keys(s), 1);
    assert_same_features(b, a, d.nrows, nf, "NULL and empty keys");
    pipeline_state_destroy(s);

    free(lens);
    free(keys);
    free(b);
    free(a);
    free(values);
    pipeline_destroy(p);
    dataset_free(&d);
}

/* --- closed forms ----------------------------------------------------------------------------- */

static void test_window_closed_forms(void **state)
{
    (void)state;
    /* One key, values 3 + 2t for t = 0..6 and a window of 5: the last row's window holds
     * t = 2..6, so mean 11, std 2 sqrt((5^2 - 1) / 12) = 2 sqrt(2), min 7, max 15, slope 2,
     * last 15, count 5. The first row's window is itself: std and slope 0, count 1. */
    static const char *const names[] = {"v"};
    struct pipeline_options o = {.numeric = names,
                                 .nnumeric = 1,
                                 .impute = PIPELINE_IMPUTE_NONE,
                                 .window = 5,
                                 .window_stats = PIPELINE_STAT_ALL};
    double values[7];
    for (size_t t = 0; t < 7; t++)
        values[t] = 3.0 + 2.0 * (double)t;
    struct pipeline_rows rows = {.nrows = 7, .values = values};
    char err[256] = "";
    struct pipeline *p = pipeline_fit(&o, &rows, NULL, NULL, NULL, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    static const char *const want_names[] = {"v",       "v_mean_5",  "v_std_5",  "v_min_5",
                                             "v_max_5", "v_slope_5", "v_last_5", "window_count_5"};
    assert_int_equal(pipeline_nfeatures(p), 8);
    for (size_t f = 0; f < 8; f++)
        assert_string_equal(pipeline_feature_name(p, f), want_names[f]);
    double out[7 * 8];
    struct pipeline_state *s = pipeline_state_new(p);
    pipeline_transform(p, s, &rows, out);
    const double first[8] = {3, 3, 0, 3, 3, 0, 3, 1};
    const double last[8] = {15, 11, 2 * sqrt(2.0), 7, 15, 2, 15, 5};
    for (size_t f = 0; f < 8; f++) {
        support_assert_close(out[f], first[f], 1e-15, want_names[f]);
        support_assert_close(out[6 * 8 + f], last[f], 1e-15, want_names[f]);
    }
    pipeline_state_destroy(s);
    pipeline_destroy(p);
}

static void test_stat_names(void **state)
{
    (void)state;
    static const char *const names[] = {"mean", "std", "min", "max", "slope", "last", "count"};
    static const unsigned bits[] = {PIPELINE_STAT_MEAN, PIPELINE_STAT_STD,   PIPELINE_STAT_MIN,
                                    PIPELINE_STAT_MAX,  PIPELINE_STAT_SLOPE, PIPELINE_STAT_LAST,
                                    PIPELINE_STAT_COUNT};
    unsigned all = 0;
    for (size_t k = 0; k < 7; k++) {
        assert_int_equal(pipeline_stat_parse(names[k]), bits[k]);
        assert_string_equal(pipeline_stat_name(bits[k]), names[k]);
        all |= bits[k];
    }
    assert_int_equal(all, PIPELINE_STAT_ALL);
    assert_int_equal(pipeline_stat_parse("median"), 0);
    assert_int_equal(pipeline_stat_parse("Mean"), 0);
    assert_int_equal(pipeline_stat_parse(""), 0);
    assert_null(pipeline_stat_name(0));
    assert_null(pipeline_stat_name(PIPELINE_STAT_MEAN | PIPELINE_STAT_STD));
    assert_null(pipeline_stat_name(1u << 7));
}

/* --- specs ------------------------------------------------------------------------------------ */

/* A valid hand-made spec whose arrays a test may change. */
struct spec_fixture {
    struct pipeline_spec spec;
    char *numeric[2];
    char *categorical[1];
    size_t ncategories[1];
    char *categories0[3];
    char **categories[1];
    double fill[2];
    bool indicator[2];
    size_t window_columns[2];
    double offset[8], factor[8];
};

static void spec_fixture_init(struct spec_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->numeric[0] = (char *)"a";
    f->numeric[1] = (char *)"b";
    f->categorical[0] = (char *)"c";
    f->ncategories[0] = 3;
    f->categories0[0] = (char *)"x";
    f->categories0[1] = (char *)"y";
    f->categories0[2] = (char *)"z";
    f->categories[0] = f->categories0;
    f->fill[0] = 1.5;
    f->fill[1] = -2.0;
    f->indicator[0] = true;
    f->window_columns[0] = 0;
    f->window_columns[1] = 1;
    for (size_t c = 0; c < 8; c++) {
        f->offset[c] = 0.25 * (double)c;
        f->factor[c] = 2.0;
    }
    f->spec = (struct pipeline_spec){.nnumeric = 2,
                                     .numeric = f->numeric,
                                     .ncategorical = 1,
                                     .categorical = f->categorical,
                                     .ncategories = f->ncategories,
                                     .categories = f->categories,
                                     .impute = PIPELINE_IMPUTE_MEAN,
                                     .fill = f->fill,
                                     .indicator = f->indicator,
                                     .window = 3,
                                     .window_stats = PIPELINE_STAT_MEAN | PIPELINE_STAT_STD |
                                                     PIPELINE_STAT_COUNT,
                                     .nwindow_columns = 2,
                                     .window_columns = f->window_columns,
                                     .scale = PIPELINE_SCALE_STANDARD,
                                     .nscaled = 8,
                                     .offset = f->offset,
                                     .factor = f->factor};
}

static void test_spec_fixture_is_valid(void **state)
{
    (void)state;
    struct spec_fixture f;
    spec_fixture_init(&f);
    char err[256] = "";
    struct pipeline *p = pipeline_new(&f.spec, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_new: %s", err);
    static const char *const names[] = {"a",       "b",        "a_missing", "a_mean_3",
                                        "a_std_3", "b_mean_3", "b_std_3",   "window_count_3",
                                        "c=x",     "c=y",      "c=z"};
    assert_int_equal(pipeline_nfeatures(p), 11);
    assert_int_equal(pipeline_ninputs(p), 3);
    for (size_t k = 0; k < 11; k++)
        assert_string_equal(pipeline_feature_name(p, k), names[k]);

    /* Deep-copied: changing the caller's arrays changes nothing. */
    f.numeric[0] = (char *)"changed";
    f.offset[0] = 99.0;
    assert_string_equal(pipeline_spec(p)->numeric[0], "a");
    assert_true(pipeline_spec(p)->offset[0] == 0.0);
    pipeline_destroy(p);
}

static void mutate_duplicate_numeric(struct spec_fixture *f)
{
    f->numeric[1] = (char *)"a";
}
static void mutate_duplicate_across(struct spec_fixture *f)
{
    f->categorical[0] = (char *)"b";
}
static void mutate_empty_name(struct spec_fixture *f)
{
    f->numeric[0] = (char *)"";
}
static void mutate_null_names(struct spec_fixture *f)
{
    f->spec.numeric = NULL;
}
static void mutate_categories_unsorted(struct spec_fixture *f)
{
    f->categories0[1] = (char *)"zz";
}
static void mutate_categories_duplicate(struct spec_fixture *f)
{
    f->categories0[1] = (char *)"x";
}
static void mutate_category_null(struct spec_fixture *f)
{
    f->categories0[1] = NULL;
}
static void mutate_window_too_large(struct spec_fixture *f)
{
    f->spec.window = PIPELINE_MAX_WINDOW + 1;
}
static void mutate_no_stats(struct spec_fixture *f)
{
    f->spec.window_stats = 0;
}
static void mutate_unknown_stat(struct spec_fixture *f)
{
    f->spec.window_stats |= 1u << 7;
}
static void mutate_stats_without_window(struct spec_fixture *f)
{
    f->spec.window = 0;
}
static void mutate_window_column_range(struct spec_fixture *f)
{
    f->window_columns[1] = 2;
}
static void mutate_window_columns_order(struct spec_fixture *f)
{
    f->window_columns[0] = 1;
    f->window_columns[1] = 0;
}
static void mutate_nscaled(struct spec_fixture *f)
{
    f->spec.nscaled = 7;
}
static void mutate_fill_nan(struct spec_fixture *f)
{
    f->fill[1] = NAN;
}
static void mutate_constant_fill(struct spec_fixture *f)
{
    f->spec.impute = PIPELINE_IMPUTE_CONSTANT;
    f->spec.impute_value = 1.5;
}
static void mutate_constant_infinite(struct spec_fixture *f)
{
    f->spec.impute = PIPELINE_IMPUTE_CONSTANT;
    f->spec.impute_value = INFINITY;
    f->fill[0] = f->fill[1] = INFINITY;
}
static void mutate_none_indicator(struct spec_fixture *f)
{
    f->spec.impute = PIPELINE_IMPUTE_NONE;
    f->fill[0] = f->fill[1] = NAN;
}
static void mutate_none_fill(struct spec_fixture *f)
{
    f->spec.impute = PIPELINE_IMPUTE_NONE;
    f->indicator[0] = false;
    f->spec.nscaled = 7;
    f->fill[1] = NAN;
}
static void mutate_unknown_impute(struct spec_fixture *f)
{
    f->spec.impute = (enum pipeline_impute)7;
}
static void mutate_unknown_scale(struct spec_fixture *f)
{
    f->spec.scale = (enum pipeline_scale)9;
}
static void mutate_offset_infinite(struct spec_fixture *f)
{
    f->offset[3] = INFINITY;
}
static void mutate_factor_zero(struct spec_fixture *f)
{
    f->factor[7] = 0.0;
}
static void mutate_factor_nan(struct spec_fixture *f)
{
    f->factor[0] = NAN;
}
static void mutate_none_scale_numbers(struct spec_fixture *f)
{
    f->spec.scale = PIPELINE_SCALE_NONE;
}
static void mutate_feature_collision(struct spec_fixture *f)
{
    f->numeric[1] = (char *)"a_missing";
}

struct spec_error_case {
    void (*mutate)(struct spec_fixture *f);
    const char *fragment;
};

static void test_new_refuses_bad_specs(void **state)
{
    (void)state;
    static const struct spec_error_case cases[] = {
        {mutate_duplicate_numeric, "input name 'a' is used twice"},
        {mutate_duplicate_across, "input name 'b' is used twice"},
        {mutate_empty_name, "numeric input 0 has no name"},
        {mutate_null_names, "2 numeric inputs but no names"},
        {mutate_categories_unsorted,
         "categorical input 'c': categories not strictly ascending ('zz' then 'z')"},
        {mutate_categories_duplicate,
         "categorical input 'c': categories not strictly ascending ('x' then 'x')"},
        {mutate_category_null, "categorical input 'c': category 1 is NULL"},
        {mutate_window_too_large, "window of 100001 records is larger than 100000"},
        {mutate_no_stats, "window of 3 records has no statistics"},
        {mutate_unknown_stat, "window statistics 0xc3 include unknown bits"},
        {mutate_stats_without_window, "window statistics or columns without a window"},
        {mutate_window_column_range, "window column 1 is input 2, but there are 2 numeric inputs"},
        {mutate_window_columns_order, "window columns not strictly ascending (0 after 1)"},
        {mutate_nscaled, "scale: nscaled is 7, but 8 columns come before the one-hot ones"},
        {mutate_fill_nan, "impute: fill of 'b' is not finite (nan)"},
        {mutate_constant_fill, "impute: fill of 'b' is -2, not the constant 1.5"},
        {mutate_constant_infinite, "impute: the constant is not finite (inf)"},
        {mutate_none_indicator, "impute: indicator for 'a' without imputation"},
        {mutate_none_fill, "impute: fill of 'a' is 1.5, but without imputation it must be NaN"},
        {mutate_unknown_impute, "impute: unknown method 7"},
        {mutate_unknown_scale, "scale: unknown method 9"},
        {mutate_offset_infinite, "scale: offset of column 'a_mean_3' is not finite (inf)"},
        {mutate_factor_zero,
         "scale: factor of column 'window_count_3' is 0, not a positive finite number"},
        {mutate_factor_nan, "scale: factor of column 'a' is nan, not a positive finite number"},
        {mutate_none_scale_numbers, "scale: column 'a' has offset 0 and factor 2, but "
                                    "without scaling they must be 0 and 1"},
        {mutate_feature_collision, "feature name 'a_missing' is produced twice"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct spec_fixture f;
        spec_fixture_init(&f);
        cases[k].mutate(&f);
        char err[256] = "";
        struct pipeline *p = pipeline_new(&f.spec, err, sizeof(err));
        if (p) {
            pipeline_destroy(p);
            fail_msg("case %zu: accepted, want \"%s\"", k, cases[k].fragment);
        }
        if (!strstr(err, cases[k].fragment))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", k, err, cases[k].fragment);
    }
    char err[256] = "";
    assert_null(pipeline_new(NULL, err, sizeof(err)));
    assert_string_equal(err, "no pipeline spec");
}

static void test_spec_round_trip(void **state)
{
    (void)state;
    struct dataset d;
    dataset_load(&d);
    static const struct reference_case cases[] = {
        {"mean", true, 4, "mean,std,min,max,slope,last,count", "all", "standard"},
        {"constant:-1", true, 3, "slope,count", "x3,x1", "minmax"},
        {"none", false, 0, "-", "all", "none"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct options_storage opts;
        make_options(&cases[k], &d, &opts);
        struct pipeline *p = fit_or_fail(&opts.options, &d, d.train);
        char err[256] = "";
        struct pipeline *q = pipeline_new(pipeline_spec(p), err, sizeof(err));
        if (!q)
            fail_msg("case %zu: pipeline_new of a fitted spec: %s", k, err);
        assert_int_equal(pipeline_nfeatures(q), pipeline_nfeatures(p));
        for (size_t f = 0; f < pipeline_nfeatures(p); f++)
            assert_string_equal(pipeline_feature_name(q, f), pipeline_feature_name(p, f));
        double *a = transform_all(p, &d), *b = transform_all(q, &d);
        assert_same_features(b, a, d.nrows, pipeline_nfeatures(p), "copied spec");
        free(b);
        free(a);
        pipeline_destroy(q);
        pipeline_destroy(p);
    }
    dataset_free(&d);
}

static void test_category_index(void **state)
{
    (void)state;
    /* Ascending in strcmp (byte) order: uppercase before lowercase, prefixes first. */
    char *categories[] = {"", "B", "a", "ab", "abc", "b"};
    char **per_input[] = {categories};
    size_t ncategories[] = {6};
    char *names[] = {"c"};
    struct pipeline_spec spec = {.ncategorical = 1,
                                 .categorical = names,
                                 .ncategories = ncategories,
                                 .categories = per_input};
    char err[256] = "";
    struct pipeline *p = pipeline_new(&spec, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_new: %s", err);
    for (size_t k = 0; k < 6; k++)
        assert_int_equal(pipeline_category_index(p, 0, categories[k], strlen(categories[k])), k);
    assert_int_equal(pipeline_category_index(p, 0, NULL, 0), 0);
    assert_int_equal(pipeline_category_index(p, 0, "abX", 2), 3); /* bytes, not a C string */
    static const char *const unknown[] = {"A", "aa", "abcd", "c", "bb", "\x7f", " "};
    for (size_t k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++)
        assert_int_equal(pipeline_category_index(p, 0, unknown[k], strlen(unknown[k])), -1);
    assert_int_equal(pipeline_category_index(p, 0, "a\0", 2), -1);
    assert_int_equal(pipeline_category_index(p, 1, "a", 1), -1);
    static const char *const want_names[] = {"c=", "c=B", "c=a", "c=ab", "c=abc", "c=b"};
    for (size_t k = 0; k < 6; k++)
        assert_string_equal(pipeline_feature_name(p, k), want_names[k]);

    /* One-hot: a known code sets its column, -1 and NaN set none. */
    double in[] = {2, -1, NAN, 5};
    double out[4 * 6];
    struct pipeline_rows rows = {.nrows = 4, .values = in};
    pipeline_transform(p, NULL, &rows, out);
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < 6; k++) {
            double want = (i == 0 && k == 2) || (i == 3 && k == 5) ? 1.0 : 0.0;
            assert_true(out[i * 6 + k] == want);
        }
    pipeline_destroy(p);
}

/* --- fit errors ------------------------------------------------------------------------------- */

struct fit_fixture {
    const char *numeric[3];
    const char *categorical[1];
    const char *dictionary[3];
    const char *const *dictionaries[1];
    size_t ndictionary[1];
    const char *window_columns[2];
    double values[4 * 4];
    unsigned char train[4];
    struct pipeline_options options;
    struct pipeline_rows rows;
};

static void fit_fixture_init(struct fit_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->numeric[0] = "s1";
    f->numeric[1] = "s2";
    f->numeric[2] = "s3";
    f->categorical[0] = "c";
    f->dictionary[0] = "q";
    f->dictionary[1] = "p";
    f->dictionary[2] = "r";
    f->dictionaries[0] = f->dictionary;
    f->ndictionary[0] = 3;
    f->window_columns[0] = "s2";
    f->window_columns[1] = "s1";
    /* s3 has a value only in row 3, which is not a training row. */
    const double values[4 * 4] = {1, 2, NAN, 0, 3, NAN, NAN, 1, 5, 6, NAN, NAN, 7, 8, 9, 2};
    memcpy(f->values, values, sizeof(values));
    f->train[0] = f->train[1] = f->train[2] = 1;
    f->options = (struct pipeline_options){.numeric = f->numeric,
                                           .nnumeric = 3,
                                           .categorical = f->categorical,
                                           .ncategorical = 1,
                                           .impute = PIPELINE_IMPUTE_CONSTANT,
                                           .impute_value = 0.0,
                                           .impute_indicator = true,
                                           .window = 2,
                                           .window_stats = PIPELINE_STAT_MEAN,
                                           .window_columns = f->window_columns,
                                           .nwindow_columns = 2,
                                           .scale = PIPELINE_SCALE_STANDARD};
    f->rows = (struct pipeline_rows){.nrows = 4, .values = f->values};
}

static struct pipeline *fit_fixture_fit(struct fit_fixture *f, char *err, size_t errsz)
{
    return pipeline_fit(&f->options, &f->rows, f->train, f->dictionaries, f->ndictionary, err,
                        errsz);
}

static void test_fit_fixture_is_valid(void **state)
{
    (void)state;
    struct fit_fixture f;
    fit_fixture_init(&f);
    char err[256] = "";
    struct pipeline *p = fit_fixture_fit(&f, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    /* Window columns named s2, s1 come out in input order; s2 and s3 miss values in training
     * rows, s1 does not; the dictionary's 'q' and 'p' come out sorted, and 'r', used only by a
     * row that is not a training row, is left out. */
    static const char *const names[] = {"s1",        "s2",        "s3",  "s2_missing", "s3_missing",
                                        "s1_mean_2", "s2_mean_2", "c=p", "c=q"};
    assert_int_equal(pipeline_nfeatures(p), 9);
    for (size_t k = 0; k < 9; k++)
        assert_string_equal(pipeline_feature_name(p, k), names[k]);
    const struct pipeline_spec *spec = pipeline_spec(p);
    assert_int_equal(spec->nwindow_columns, 2);
    assert_int_equal(spec->window_columns[0], 0);
    assert_int_equal(spec->window_columns[1], 1);
    assert_int_equal(pipeline_category_index(p, 0, "p", 1), 0);
    assert_int_equal(pipeline_category_index(p, 0, "q", 1), 1);
    assert_int_equal(pipeline_category_index(p, 0, "r", 1), -1);
    pipeline_destroy(p);

    /* Without a window, window statistics and columns are ignored. */
    f.options.window = 0;
    f.options.window_columns = (const char *const[]){"nonsense"};
    f.options.nwindow_columns = 1;
    p = fit_fixture_fit(&f, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit without a window: %s", err);
    assert_int_equal(pipeline_spec(p)->window_stats, 0);
    assert_int_equal(pipeline_spec(p)->nwindow_columns, 0);
    assert_int_equal(pipeline_nfeatures(p), 7);
    pipeline_destroy(p);
}

static void fit_bad_column(struct fit_fixture *f)
{
    f->window_columns[1] = "x";
}
static void fit_categorical_column(struct fit_fixture *f)
{
    f->window_columns[1] = "c";
}
static void fit_column_twice(struct fit_fixture *f)
{
    f->window_columns[1] = "s2";
}
static void fit_mean_without_values(struct fit_fixture *f)
{
    f->options.impute = PIPELINE_IMPUTE_MEAN;
}
static void fit_no_training_rows(struct fit_fixture *f)
{
    f->train[0] = f->train[1] = f->train[2] = 0;
}
static void fit_no_rows(struct fit_fixture *f)
{
    f->rows.nrows = 0;
}
static void fit_window_too_large(struct fit_fixture *f)
{
    f->options.window = PIPELINE_MAX_WINDOW + 1;
}
static void fit_no_stats(struct fit_fixture *f)
{
    f->options.window_stats = 0;
}
static void fit_code_out_of_range(struct fit_fixture *f)
{
    f->values[3 * 4 + 3] = 3; /* row 3 is not a training row: still refused */
}
static void fit_code_fraction(struct fit_fixture *f)
{
    f->values[1 * 4 + 3] = 0.5;
}
static void fit_code_negative(struct fit_fixture *f)
{
    f->values[0 * 4 + 3] = -1;
}
static void fit_infinite(struct fit_fixture *f)
{
    f->values[1 * 4 + 0] = -INFINITY;
}
static void fit_duplicate_input(struct fit_fixture *f)
{
    f->categorical[0] = "s3";
}
static void fit_constant_nan(struct fit_fixture *f)
{
    f->options.impute_value = NAN;
}
static void fit_no_finite_rows(struct fit_fixture *f)
{
    f->options.impute = PIPELINE_IMPUTE_NONE;
}
static void fit_missing_dictionary(struct fit_fixture *f)
{
    f->dictionaries[0] = NULL;
}
static void fit_null_dictionary_entry(struct fit_fixture *f)
{
    f->dictionary[1] = NULL;
}

struct fit_error_case {
    void (*mutate)(struct fit_fixture *f);
    const char *fragment;
};

static void test_fit_refuses_bad_options(void **state)
{
    (void)state;
    static const struct fit_error_case cases[] = {
        {fit_bad_column, "window column 'x' is not a numeric input"},
        {fit_categorical_column, "window column 'c' is not a numeric input"},
        {fit_column_twice, "window column 's2' is listed twice"},
        {fit_mean_without_values, "impute: input 's3' has no value in the training rows"},
        {fit_no_training_rows, "no training rows"},
        {fit_no_rows, "no training rows"},
        {fit_window_too_large, "window of 100001 records is larger than 100000"},
        {fit_no_stats, "window of 2 records has no statistics"},
        {fit_code_out_of_range,
         "categorical input 'c': row 3 has code 3, not an index into its 3 dictionary entries"},
        {fit_code_fraction, "categorical input 'c': row 1 has code 0.5"},
        {fit_code_negative, "categorical input 'c': row 0 has code -1"},
        {fit_infinite, "input 's1' is infinite in row 1"},
        {fit_duplicate_input, "input name 's3' is used twice"},
        {fit_constant_nan, "impute: the constant is not finite (nan)"},
        {fit_no_finite_rows, "scale: no training row has finite features"},
        {fit_missing_dictionary, "categorical input 'c' has no dictionary"},
        {fit_null_dictionary_entry, "categorical input 'c': dictionary entry 1 is NULL"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fit_fixture f;
        fit_fixture_init(&f);
        cases[k].mutate(&f);
        char err[256] = "";
        struct pipeline *p = fit_fixture_fit(&f, err, sizeof(err));
        if (p) {
            pipeline_destroy(p);
            fail_msg("case %zu: fitted, want \"%s\"", k, cases[k].fragment);
        }
        if (!strstr(err, cases[k].fragment))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", k, err, cases[k].fragment);
    }
}

/* --- pipeline_peek ---------------------------------------------------------------------------- */

/* Keys of the peek tests: histories use the first PEEK_KNOWN (the last of them, "zeta", for two
 * records only, so that its ring is not full), queries may also use the others, which no state
 * holds. */
static const char *const peek_keys[] = {"alpha",   "beta", "gamma", "delta",
                                        "epsilon", "zeta", "eta",   "theta"};
#define PEEK_KNOWN  6
#define PEEK_INPUTS 4 /* x0 x1 x2 c */

/* Random input rows with their keys. */
struct peek_batch {
    size_t n;
    double *values; /* n x PEEK_INPUTS */
    const char **keys;
    size_t *lens;
};

/* Fills b with n rows whose keys are drawn from peek_keys[first..first + nkeys): x0, x1 and x2
 * on different scales, each missing with probability missing, and a category code c (an index
 * into the dictionary of peek_fit, missing one time in ten). */
static void peek_random(struct peek_batch *b, size_t n, size_t first, size_t nkeys, double missing)
{
    b->n = n;
    b->values = mem_alloc(n * PEEK_INPUTS * sizeof(double));
    b->keys = mem_alloc(n * sizeof(char *));
    b->lens = mem_alloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        size_t k = first + (size_t)(support_rng_uniform() * (double)nkeys);
        b->keys[i] = peek_keys[k];
        b->lens[i] = strlen(peek_keys[k]);
        double *row = b->values + i * PEEK_INPUTS;
        row[0] = 100.0 + 10.0 * support_rng_normal();
        row[1] = support_rng_normal();
        row[2] = 1000.0 * support_rng_uniform();
        for (size_t j = 0; j < 3; j++)
            if (support_rng_uniform() < missing)
                row[j] = NAN;
        row[3] = support_rng_uniform() < 0.1 ? NAN : floor(3.0 * support_rng_uniform());
    }
}

/* A history: n random rows of the first PEEK_KNOWN - 1 keys, but for two rows of "zeta". */
static void peek_history(struct peek_batch *b, size_t n, double missing)
{
    peek_random(b, n, 0, PEEK_KNOWN - 1, missing);
    const size_t zeta[] = {n / 10, n / 2};
    for (size_t k = 0; k < 2; k++) {
        b->keys[zeta[k]] = peek_keys[PEEK_KNOWN - 1];
        b->lens[zeta[k]] = strlen(peek_keys[PEEK_KNOWN - 1]);
    }
}

static void peek_batch_free(struct peek_batch *b)
{
    free(b->lens);
    free(b->keys);
    free(b->values);
}

static struct pipeline_rows peek_rows(const struct peek_batch *b)
{
    return (struct pipeline_rows){
        .nrows = b->n, .values = b->values, .keys = b->keys, .key_lens = b->lens};
}

/* One configuration of the peek tests. */
struct peek_case {
    enum pipeline_impute impute;
    bool indicator;
    size_t window;
    unsigned stats;
    enum pipeline_scale scale;
};

static const char *const peek_dictionary[] = {"red", "green", "blue"};

/* Fits a pipeline of configuration pc to history (codes: indices into peek_dictionary). */
static struct pipeline *peek_fit(const struct peek_case *pc, const struct peek_batch *history)
{
    static const char *const numeric[] = {"x0", "x1", "x2"};
    static const char *const categorical[] = {"c"};
    const char *const *dictionaries[] = {peek_dictionary};
    const size_t ndictionary[] = {3};
    struct pipeline_options o = {.numeric = numeric,
                                 .nnumeric = 3,
                                 .categorical = categorical,
                                 .ncategorical = 1,
                                 .impute = pc->impute,
                                 .impute_value = -1.0,
                                 .impute_indicator = pc->indicator,
                                 .window = pc->window,
                                 .window_stats = pc->stats,
                                 .scale = pc->scale};
    struct pipeline_rows rows = peek_rows(history);
    char err[256] = "";
    struct pipeline *p = pipeline_fit(&o, &rows, NULL, dictionaries, ndictionary, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    return p;
}

/* Turns b's category codes from indices into peek_dictionary into p's codes. */
static void peek_recode(const struct pipeline *p, struct peek_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        double *code = &b->values[i * PEEK_INPUTS + 3];
        if (!isnan(*code)) {
            const char *name = peek_dictionary[(size_t)*code];
            *code = (double)pipeline_category_index(p, 0, name, strlen(name));
        }
    }
}

/* Returns a new state that has transformed history. */
static struct pipeline_state *peek_state(const struct pipeline *p, const struct peek_batch *history)
{
    double *out = mem_alloc(history->n * pipeline_nfeatures(p) * sizeof(double));
    struct pipeline_state *s = pipeline_state_new(p);
    struct pipeline_rows rows = peek_rows(history);
    pipeline_transform(p, s, &rows, out);
    free(out);
    return s;
}

static const struct peek_case peek_cases[] = {
    {PIPELINE_IMPUTE_MEAN, true, 4, PIPELINE_STAT_ALL, PIPELINE_SCALE_STANDARD},
    {PIPELINE_IMPUTE_NONE, false, 3,
     PIPELINE_STAT_MEAN | PIPELINE_STAT_STD | PIPELINE_STAT_LAST | PIPELINE_STAT_COUNT,
     PIPELINE_SCALE_MINMAX},
    {PIPELINE_IMPUTE_CONSTANT, true, 1, PIPELINE_STAT_ALL, PIPELINE_SCALE_NONE},
    {PIPELINE_IMPUTE_MEAN, false, 7, PIPELINE_STAT_MIN | PIPELINE_STAT_MAX | PIPELINE_STAT_SLOPE,
     PIPELINE_SCALE_STANDARD},
};

/* Peeks at a random query (known keys, unknown keys, keys repeated) on one of two states built
 * from the same history and transforms it on the other: the same features, bit for bit; and the
 * peeked state then transforms exactly as the one that was never peeked at. */
static void test_peek_equals_transform(void **state)
{
    const struct peek_case *pc = *state;
    support_rng_seed(20240611 + pc->window);
    struct peek_batch history, query;
    peek_history(&history, 200, 0.125);
    peek_random(&query, 40, 0, sizeof(peek_keys) / sizeof(peek_keys[0]), 0.125);
    struct pipeline *p = peek_fit(pc, &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);

    struct pipeline_state *peeked = peek_state(p, &history), *twin = peek_state(p, &history);
    assert_int_equal(pipeline_state_keys(peeked), PEEK_KNOWN);
    size_t bytes = pipeline_state_bytes(peeked);
    double *got = mem_alloc(query.n * nf * sizeof(double));
    double *again = mem_alloc(query.n * nf * sizeof(double));
    double *want = mem_alloc(query.n * nf * sizeof(double));
    struct pipeline_rows rows = peek_rows(&query);

    pipeline_peek(p, peeked, &rows, got);
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, query.n, nf, "peek versus transform on a twin state");
    /* The query used keys the state does not hold: none was added, nothing grew. */
    assert_int_equal(pipeline_state_keys(twin), PEEK_KNOWN + 2);
    assert_int_equal(pipeline_state_keys(peeked), PEEK_KNOWN);
    assert_int_equal(pipeline_state_bytes(peeked), bytes);

    /* Peeking again, and peeking at no rows, change nothing either. */
    struct pipeline_rows none = {.nrows = 0, .values = query.values};
    pipeline_peek(p, peeked, &none, NULL);
    pipeline_peek(p, peeked, &rows, again);
    assert_same_features(again, got, query.n, nf, "second peek");

    /* Now the query becomes history of the peeked state: as if it had never been peeked at. */
    pipeline_transform(p, peeked, &rows, again);
    assert_same_features(again, want, query.n, nf, "transform after peeking");
    assert_int_equal(pipeline_state_keys(peeked), PEEK_KNOWN + 2);
    assert_int_equal(pipeline_state_bytes(peeked), pipeline_state_bytes(twin));
    pipeline_transform(p, peeked, &rows, got);
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, query.n, nf, "the next batch");

    free(want);
    free(again);
    free(got);
    pipeline_state_destroy(twin);
    pipeline_state_destroy(peeked);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* Rows of keys the state does not hold start from an empty window, as in a new state; none of
 * them is added to the state. */
static void test_peek_unknown_keys(void **state)
{
    (void)state;
    support_rng_seed(99);
    struct peek_batch history, query;
    peek_history(&history, 200, 0.125);
    peek_random(&query, 30, PEEK_KNOWN, 2, 0.125);
    /* "alph", the first 4 bytes of "alphabet": a prefix of the known "alpha", yet another key. */
    for (size_t i = 0; i < query.n; i += 3) {
        query.keys[i] = "alphabet";
        query.lens[i] = 4;
    }
    struct pipeline *p = peek_fit(&peek_cases[0], &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);
    double *got = mem_alloc(query.n * nf * sizeof(double));
    double *want = mem_alloc(query.n * nf * sizeof(double));
    struct pipeline_rows rows = peek_rows(&query);

    struct pipeline_state *fresh = pipeline_state_new(p);
    pipeline_transform(p, fresh, &rows, want);
    assert_int_equal(pipeline_state_keys(fresh), 3);
    pipeline_state_destroy(fresh);

    struct pipeline_state *s = peek_state(p, &history);
    size_t bytes = pipeline_state_bytes(s);
    pipeline_peek(p, s, &rows, got);
    assert_same_features(got, want, query.n, nf, "unknown keys versus a new state");
    assert_int_equal(pipeline_state_keys(s), PEEK_KNOWN);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    pipeline_state_destroy(s);

    /* And on a state with no key at all. */
    struct pipeline_state *empty = pipeline_state_new(p);
    bytes = pipeline_state_bytes(empty);
    pipeline_peek(p, empty, &rows, got);
    assert_same_features(got, want, query.n, nf, "an empty state");
    assert_int_equal(pipeline_state_keys(empty), 0);
    assert_int_equal(pipeline_state_bytes(empty), bytes);
    pipeline_state_destroy(empty);

    free(want);
    free(got);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* Rows of one key in one peek call see each other: checked against the window statistics of the
 * key's records (its history, then the query) computed here, and against a twin state. */
static void test_peek_repeated_key(void **state)
{
    (void)state;
    enum { WINDOW = 4, NQUERY = 9, COUNT_COL = 3 + 3 * 4 };
    const struct peek_case pc = {PIPELINE_IMPUTE_NONE, false, WINDOW,
                                 PIPELINE_STAT_MEAN | PIPELINE_STAT_MIN | PIPELINE_STAT_MAX |
                                     PIPELINE_STAT_LAST | PIPELINE_STAT_COUNT,
                                 PIPELINE_SCALE_NONE};
    support_rng_seed(4242);
    struct peek_batch history, query;
    peek_history(&history, 60, 0.0);
    peek_random(&query, NQUERY, 1, 1, 0.0); /* all "beta" */
    struct pipeline *p = peek_fit(&pc, &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);
    assert_string_equal(pipeline_feature_name(p, 3), "x0_mean_4");
    assert_string_equal(pipeline_feature_name(p, 3 + 4 + 3), "x1_last_4");
    assert_string_equal(pipeline_feature_name(p, COUNT_COL), "window_count_4");

    /* beta's records, oldest first: column j of record m is seq[m * 3 + j]. */
    double seq[(60 + NQUERY) * 3];
    size_t nseq = 0;
    for (size_t i = 0; i < history.n; i++)
        if (strcmp(history.keys[i], "beta") == 0)
            memcpy(seq + 3 * nseq++, history.values + i * PEEK_INPUTS, 3 * sizeof(double));
    size_t nhistory = nseq;
    assert_true(nhistory > WINDOW);
    for (size_t i = 0; i < NQUERY; i++)
        memcpy(seq + 3 * nseq++, query.values + i * PEEK_INPUTS, 3 * sizeof(double));

    /* The query's keys as NUL-terminated strings (key_lens NULL). */
    struct pipeline_rows rows = {.nrows = NQUERY, .values = query.values, .keys = query.keys};
    double *got = mem_alloc(NQUERY * nf * sizeof(double));
    double *want = mem_alloc(NQUERY * nf * sizeof(double));
    struct pipeline_state *s = peek_state(p, &history), *twin = peek_state(p, &history);
    pipeline_peek(p, s, &rows, got);
    char what[64];
    for (size_t i = 0; i < NQUERY; i++) {
        size_t m = nhistory + i, first = m + 1 - WINDOW;
        const double *row = got + i * nf;
        assert_true(row[COUNT_COL] == WINDOW);
        for (size_t j = 0; j < 3; j++) {
            double sum = 0.0, lo = INFINITY, hi = -INFINITY;
            for (size_t t = first; t <= m; t++) {
                sum += seq[3 * t + j];
                lo = fmin(lo, seq[3 * t + j]);
                hi = fmax(hi, seq[3 * t + j]);
            }
            snprintf(what, sizeof(what), "query row %zu: mean of x%zu", i, j);
            support_assert_close(row[3 + 4 * j], sum / WINDOW, 1e-12, what);
            assert_true(row[3 + 4 * j + 1] == lo);
            assert_true(row[3 + 4 * j + 2] == hi);
            assert_true(row[3 + 4 * j + 3] == seq[3 * m + j]);
        }
    }
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, NQUERY, nf, "one key repeated");
    pipeline_transform(p, s, &rows, got);
    assert_same_features(got, want, NQUERY, nf, "transform after peeking");
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);

    /* Without keys every row has the empty key; a key array of empty strings is the same. */
    struct pipeline_rows history_rows = {.nrows = history.n, .values = history.values};
    double *history_out = mem_alloc(history.n * nf * sizeof(double));
    s = pipeline_state_new(p);
    twin = pipeline_state_new(p);
    pipeline_transform(p, s, &history_rows, history_out);
    pipeline_transform(p, twin, &history_rows, history_out);
    const char *empty_keys[NQUERY];
    for (size_t i = 0; i < NQUERY; i++)
        empty_keys[i] = "";
    rows.keys = empty_keys;
    pipeline_peek(p, s, &rows, got);
    assert_int_equal(pipeline_state_keys(s), 1);
    rows.keys = NULL;
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, NQUERY, nf, "the empty key");
    for (size_t i = 0; i < NQUERY; i++)
        assert_true(got[i * nf + COUNT_COL] == WINDOW);
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);

    free(history_out);
    free(want);
    free(got);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* A pipeline without a window: state may be NULL, and each row's features are its own. */
static void test_peek_without_window(void **state)
{
    (void)state;
    const struct peek_case pc = {PIPELINE_IMPUTE_MEAN, true, 0, 0, PIPELINE_SCALE_STANDARD};
    support_rng_seed(7);
    struct peek_batch history, query;
    peek_history(&history, 100, 0.125);
    peek_random(&query, 25, 0, sizeof(peek_keys) / sizeof(peek_keys[0]), 0.125);
    struct pipeline *p = peek_fit(&pc, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);
    assert_int_equal(nf, 3 + 3 + 3); /* x0 x1 x2, their indicators, c=blue c=green c=red */
    double *got = mem_alloc(query.n * nf * sizeof(double));
    double *want = mem_alloc(query.n * nf * sizeof(double));
    struct pipeline_rows rows = peek_rows(&query);

    pipeline_transform(p, NULL, &rows, want);
    pipeline_peek(p, NULL, &rows, got);
    assert_same_features(got, want, query.n, nf, "no window, state NULL");
    /* One row at a time gives the same: no row depends on another. */
    for (size_t i = 0; i < query.n; i++) {
        struct pipeline_rows one = {.nrows = 1, .values = query.values + i * PEEK_INPUTS};
        pipeline_peek(p, NULL, &one, got + i * nf);
    }
    assert_same_features(got, want, query.n, nf, "no window, one row per call");
    /* A state that fits the pipeline (it has no window either) is accepted and left alone. */
    struct pipeline_state *s = pipeline_state_new(p);
    size_t bytes = pipeline_state_bytes(s);
    pipeline_peek(p, s, &rows, got);
    assert_same_features(got, want, query.n, nf, "no window, with a state");
    assert_int_equal(pipeline_state_keys(s), 0);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    struct pipeline_rows none = {.nrows = 0, .values = query.values};
    pipeline_peek(p, NULL, &none, NULL);
    pipeline_state_destroy(s);

    free(want);
    free(got);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* What one thread of test_peek_concurrent does: peek at query on the shared state, many times. */
struct peek_reader {
    pthread_t thread;
    const struct pipeline *pipeline;
    const struct pipeline_state *state;
    struct pipeline_rows rows;
    double *out;
    const double *want;
    size_t mismatches;
};

static void *peek_reader_run(void *arg)
{
    struct peek_reader *r = arg;
    size_t n = r->rows.nrows * pipeline_nfeatures(r->pipeline);
    for (int round = 0; round < 50; round++) {
        pipeline_peek(r->pipeline, r->state, &r->rows, r->out);
        if (memcmp(r->out, r->want, n * sizeof(double)) != 0)
            r->mismatches++;
    }
    return NULL;
}

/* Threads that share a state may peek at once (as under a read lock): each gets what one thread
 * alone gets, every time (run under SANITIZE=thread, a write to the state would be a race). */
static void test_peek_concurrent(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    support_rng_seed(31337);
    struct peek_batch history, query;
    peek_history(&history, 200, 0.125);
    peek_random(&query, 40, 0, sizeof(peek_keys) / sizeof(peek_keys[0]), 0.125);
    struct pipeline *p = peek_fit(&peek_cases[0], &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);
    struct pipeline_state *s = peek_state(p, &history);
    struct pipeline_rows rows = peek_rows(&query);
    double *want = mem_alloc(query.n * nf * sizeof(double));
    pipeline_peek(p, s, &rows, want);

    struct peek_reader readers[THREADS];
    for (size_t t = 0; t < THREADS; t++) {
        readers[t] = (struct peek_reader){.pipeline = p, .state = s, .rows = rows, .want = want};
        readers[t].out = mem_alloc(query.n * nf * sizeof(double));
        assert_int_equal(pthread_create(&readers[t].thread, NULL, peek_reader_run, &readers[t]), 0);
    }
    for (size_t t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(readers[t].thread, NULL), 0);
        assert_int_equal(readers[t].mismatches, 0);
        free(readers[t].out);
    }
    assert_int_equal(pipeline_state_keys(s), PEEK_KNOWN);

    free(want);
    pipeline_state_destroy(s);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* --- checkpoint, eviction and restore of a key's history ------------------------------------- */

#define PEEK_NKEYS (sizeof(peek_keys) / sizeof(peek_keys[0]))

/* A value that no test writes: what a buffer is filled with to see what a call wrote. */
static const double untouched = -8.25e300;

static void fill_untouched(double *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = untouched;
}

/* Fails unless a[0..n) and b[0..n) are the same bits (NaNs included). */
static void assert_same_doubles(const double *a, const double *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0)
            fail_msg("%s: double %zu: %.17g versus %.17g", what, i, a[i], b[i]);
}

/* Copies the raw numeric inputs (x0 x1 x2) of b's rows whose key is key, oldest first, into
 * records (room for b->n x 3 doubles) straight from the input rows; returns their number. */
static size_t key_records(const struct peek_batch *b, const char *key, double *records)
{
    size_t n = 0, len = strlen(key);
    for (size_t i = 0; i < b->n; i++)
        if (b->lens[i] == len && memcmp(b->keys[i], key, len) == 0)
            memcpy(records + 3 * n++, b->values + i * PEEK_INPUTS, 3 * sizeof(double));
    return n;
}

/* Fails unless features a and b differ somewhere: the check that a history made a difference. */
static void assert_some_feature_differs(const double *a, const double *b, size_t n,
                                        const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0)
            return;
    fail_msg("%s: every feature is the same", what);
}

/* After a stream of transforms, get returns each key's last `window` records (fewer for a key
 * with fewer), oldest first, as the raw inputs went in (NaN included), compared with the input
 * rows themselves; a key the state does not hold gives 0 and leaves out alone. */
static void test_state_get_raw_inputs(void **state)
{
    const struct peek_case *pc = *state;
    support_rng_seed(777 + pc->window);
    struct peek_batch history;
    peek_history(&history, 200, 0.125);
    struct pipeline *p = peek_fit(pc, &history);
    peek_recode(p, &history);
    struct pipeline_state *s = peek_state(p, &history);
    size_t w = pc->window, keys = pipeline_state_keys(s), bytes = pipeline_state_bytes(s);
    assert_int_equal(pipeline_state_width(s), 3);

    /* out has room for a full window and a margin that get must not touch. */
    size_t room = (w + 4) * 3;
    double *out = mem_alloc(room * sizeof(double));
    double *records = mem_alloc(history.n * 3 * sizeof(double));
    size_t nans = 0, shorter = 0, longer = 0;
    char what[96];
    for (size_t k = 0; k < PEEK_NKEYS; k++) {
        const char *key = peek_keys[k];
        size_t n = key_records(&history, key, records), want = n < w ? n : w;
        assert_true((n > 0) == (k < PEEK_KNOWN));
        fill_untouched(out, room);
        size_t got = pipeline_state_get(s, key, strlen(key), out);
        snprintf(what, sizeof(what), "key '%s' (%zu records, window %zu)", key, n, w);
        if (got != want)
            fail_msg("%s: get returned %zu records, want %zu", what, got, want);
        assert_same_doubles(out, records + (n - want) * 3, want * 3, what);
        for (size_t i = want * 3; i < room; i++)
            if (memcmp(&out[i], &untouched, sizeof(double)) != 0)
                fail_msg("%s: get wrote double %zu, past its %zu records", what, i, want);
        for (size_t i = 0; i < want * 3; i++)
            nans += isnan(out[i]) ? 1 : 0;
        shorter += n > 0 && n < w;
        longer += n > w;
    }
    /* The comparison covered missing values, full rings and (but for tiny windows) short ones. */
    assert_true(nans > 0);
    assert_true(longer > 0);
    if (w > 2)
        assert_true(shorter > 0);
    /* A prefix of a held key is another key, which the state does not hold. */
    fill_untouched(out, room);
    assert_int_equal(pipeline_state_get(s, "alph", 4, out), 0);
    assert_true(memcmp(&out[0], &untouched, sizeof(double)) == 0);
    /* get only reads. */
    assert_int_equal(pipeline_state_keys(s), keys);
    assert_int_equal(pipeline_state_bytes(s), bytes);

    free(records);
    free(out);
    pipeline_state_destroy(s);
    pipeline_destroy(p);
    peek_batch_free(&history);
}

/* A state restored key by key with put transforms the next rows exactly as the state whose
 * histories it was given: from get's records, from every raw record of each key (more than the
 * window for most keys, fewer for "zeta"), and put over other histories of the same keys. */
static void test_state_put_restores(void **state)
{
    const struct peek_case *pc = *state;
    support_rng_seed(4711 + pc->window);
    struct peek_batch history, other, query;
    peek_history(&history, 200, 0.125);
    peek_history(&other, 120, 0.125);
    peek_random(&query, 40, 0, PEEK_NKEYS, 0.125);
    struct pipeline *p = peek_fit(pc, &history);
    peek_recode(p, &history);
    peek_recode(p, &other);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p), w = pc->window;

    struct pipeline_state *original = peek_state(p, &history);
    enum { FROM_GET, FROM_ROWS, REPLACED, NRESTORED };
    static const char *const names[NRESTORED] = {"records from get", "every raw record of a key",
                                                 "put over other histories"};
    struct pipeline_state *restored[NRESTORED] = {pipeline_state_new(p), pipeline_state_new(p),
                                                  peek_state(p, &other)};
    assert_int_equal(pipeline_state_keys(restored[REPLACED]), PEEK_KNOWN);
    double *records = mem_alloc(history.n * 3 * sizeof(double));
    double *saved = mem_alloc(w * 3 * sizeof(double));
    size_t shorter = 0, longer = 0;
    for (size_t k = 0; k < PEEK_KNOWN; k++) {
        const char *key = peek_keys[k];
        size_t n = pipeline_state_get(original, key, strlen(key), saved);
        size_t m = key_records(&history, key, records);
        pipeline_state_put(restored[FROM_GET], key, strlen(key), saved, n);
        pipeline_state_put(restored[FROM_ROWS], key, strlen(key), records, m);
        pipeline_state_put(restored[REPLACED], key, strlen(key), saved, n);
        shorter += m < w;
        longer += m > w;
    }
    assert_true(longer > 0);
    if (w > 2)
        assert_true(shorter > 0);

    double *want = mem_alloc(query.n * nf * sizeof(double));
    double *got = mem_alloc(query.n * nf * sizeof(double));
    struct pipeline_rows rows = peek_rows(&query);
    for (size_t r = 0; r < NRESTORED; r++) {
        assert_int_equal(pipeline_state_keys(restored[r]), pipeline_state_keys(original));
        assert_int_equal(pipeline_state_bytes(restored[r]), pipeline_state_bytes(original));
    }
    /* Two batches: the restored rings also go on turning as the original's. */
    for (int batch = 0; batch < 2; batch++) {
        pipeline_transform(p, original, &rows, want);
        for (size_t r = 0; r < NRESTORED; r++) {
            pipeline_transform(p, restored[r], &rows, got);
            char what[96];
            snprintf(what, sizeof(what), "%s, batch %d", names[r], batch);
            assert_same_features(got, want, query.n, nf, what);
        }
    }
    /* The histories mattered (but for a window of 1, which holds only the row itself): a state
     * without them gives other features for the first batch. */
    if (w > 1) {
        struct pipeline_state *fresh = pipeline_state_new(p), *again = peek_state(p, &history);
        pipeline_transform(p, fresh, &rows, got);
        pipeline_transform(p, again, &rows, want);
        assert_some_feature_differs(got, want, query.n * nf, "fresh state versus history");
        pipeline_state_destroy(again);
        pipeline_state_destroy(fresh);
    }

    free(got);
    free(want);
    free(saved);
    free(records);
    for (size_t r = 0; r < NRESTORED; r++)
        pipeline_state_destroy(restored[r]);
    pipeline_state_destroy(original);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&other);
    peek_batch_free(&history);
}

/* put of no records keeps the key with an empty history; put of more than the window keeps the
 * newest; a state without a window ignores put, get and drop. */
static void test_state_put_edges(void **state)
{
    (void)state;
    enum { W = 4 };
    const struct peek_case pc = {PIPELINE_IMPUTE_MEAN, false, W, PIPELINE_STAT_ALL,
                                 PIPELINE_SCALE_NONE};
    support_rng_seed(606);
    struct peek_batch history, query;
    peek_history(&history, 100, 0.125);
    peek_random(&query, 30, 0, PEEK_KNOWN, 0.125);
    struct pipeline *p = peek_fit(&pc, &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p), count_col = pipeline_spec(p)->nscaled - 1;
    assert_string_equal(pipeline_feature_name(p, count_col), "window_count_4");
    struct pipeline_rows rows = peek_rows(&query);
    double out[(W + 4) * 3];

    /* No records for a held key: still held, same size, an empty history, like a dropped key
     * for the rows that follow. */
    struct pipeline_state *s = peek_state(p, &history), *twin = peek_state(p, &history);
    size_t keys = pipeline_state_keys(s), bytes = pipeline_state_bytes(s);
    pipeline_state_put(s, "beta", 4, NULL, 0);
    assert_true(pipeline_state_has(s, "beta", 4));
    assert_int_equal(pipeline_state_keys(s), keys);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    fill_untouched(out, sizeof(out) / sizeof(out[0]));
    assert_int_equal(pipeline_state_get(s, "beta", 4, out), 0);
    assert_true(memcmp(&out[0], &untouched, sizeof(double)) == 0);
    pipeline_state_drop(twin, "beta", 4);
    double *got = mem_alloc(query.n * nf * sizeof(double));
    double *want = mem_alloc(query.n * nf * sizeof(double));
    pipeline_transform(p, s, &rows, got);
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, query.n, nf, "empty history versus dropped key");
    size_t first_beta = 0;
    while (first_beta < query.n && strcmp(query.keys[first_beta], "beta") != 0)
        first_beta++;
    assert_true(first_beta < query.n);
    assert_true(got[first_beta * nf + count_col] == 1.0); /* a window of one */

    /* No records for a new key: the key is added. */
    pipeline_state_put(s, "omega", 5, NULL, 0);
    assert_true(pipeline_state_has(s, "omega", 5));
    assert_int_equal(pipeline_state_keys(s), keys + 1);
    assert_true(pipeline_state_bytes(s) > bytes);
    assert_int_equal(pipeline_state_get(s, "omega", 5, out), 0);

    /* 2 W + 1 records (with a NaN among the kept ones): the newest W come back. */
    double many[(2 * W + 1) * 3];
    for (size_t i = 0; i < (2 * W + 1) * 3; i++)
        many[i] = 0.5 * (double)i - 3.0;
    many[(2 * W) * 3 + 1] = NAN;
    pipeline_state_put(s, "omega", 5, many, 2 * W + 1);
    fill_untouched(out, sizeof(out) / sizeof(out[0]));
    assert_int_equal(pipeline_state_get(s, "omega", 5, out), W);
    assert_same_doubles(out, many + (W + 1) * 3, W * 3, "newest W of 2 W + 1 records");
    assert_true(memcmp(&out[W * 3], &untouched, sizeof(double)) == 0);
    /* And fewer replace them. */
    pipeline_state_put(s, "omega", 5, many, 2);
    assert_int_equal(pipeline_state_get(s, "omega", 5, out), 2);
    assert_same_doubles(out, many, 2 * 3, "2 records over a full ring");
    assert_int_equal(pipeline_state_keys(s), keys + 1);
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);
    pipeline_destroy(p);

    /* Without a window a state holds no history: put, get and drop do nothing. */
    const struct peek_case none = {PIPELINE_IMPUTE_MEAN, true, 0, 0, PIPELINE_SCALE_STANDARD};
    p = peek_fit(&none, &history);
    s = pipeline_state_new(p);
    bytes = pipeline_state_bytes(s);
    assert_int_equal(pipeline_state_width(s), 0);
    pipeline_state_put(s, "alpha", 5, many, 3);
    pipeline_state_put(s, "beta", 4, NULL, 0);
    assert_false(pipeline_state_has(s, "alpha", 5));
    assert_false(pipeline_state_has(s, "beta", 4));
    assert_int_equal(pipeline_state_keys(s), 0);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    fill_untouched(out, sizeof(out) / sizeof(out[0]));
    assert_int_equal(pipeline_state_get(s, "alpha", 5, out), 0);
    assert_true(memcmp(&out[0], &untouched, sizeof(double)) == 0);
    pipeline_state_drop(s, "alpha", 5);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    pipeline_state_destroy(s);

    free(want);
    free(got);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* Copies into out the rows of b but for those of key. */
static void peek_without(const struct peek_batch *b, const char *key, struct peek_batch *out)
{
    out->n = 0;
    out->values = mem_alloc(b->n * PEEK_INPUTS * sizeof(double));
    out->keys = mem_alloc(b->n * sizeof(char *));
    out->lens = mem_alloc(b->n * sizeof(size_t));
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->keys[i], key) == 0)
            continue;
        memcpy(out->values + out->n * PEEK_INPUTS, b->values + i * PEEK_INPUTS,
               PEEK_INPUTS * sizeof(double));
        out->keys[out->n] = b->keys[i];
        out->lens[out->n++] = b->lens[i];
    }
}

/* drop takes a key away as if it had never come: has is false, keys and bytes are what they were
 * before it was added, every other key transforms as before, and the key starts afresh. */
static void test_state_drop(void **state)
{
    (void)state;
    support_rng_seed(1312);
    struct peek_batch history, query, omega;
    peek_history(&history, 200, 0.125);
    peek_random(&query, 40, 0, PEEK_NKEYS, 0.125);
    peek_random(&omega, 10, 0, 1, 0.125);
    for (size_t i = 0; i < omega.n; i++) {
        omega.keys[i] = "omega";
        omega.lens[i] = 5;
    }
    struct pipeline *p = peek_fit(&peek_cases[0], &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    peek_recode(p, &omega);
    size_t nf = pipeline_nfeatures(p);
    double *got = mem_alloc((query.n + omega.n) * nf * sizeof(double));
    double *want = mem_alloc((query.n + omega.n) * nf * sizeof(double));
    struct pipeline_rows rows = peek_rows(&query), omega_rows = peek_rows(&omega);

    /* A key added by transform, then dropped: back to where the state was. */
    struct pipeline_state *s = peek_state(p, &history), *twin = peek_state(p, &history);
    size_t keys = pipeline_state_keys(s), bytes = pipeline_state_bytes(s);
    pipeline_transform(p, s, &omega_rows, got);
    assert_true(pipeline_state_has(s, "omega", 5));
    assert_int_equal(pipeline_state_keys(s), keys + 1);
    assert_true(pipeline_state_bytes(s) > bytes);
    pipeline_state_drop(s, "omega", 5);
    assert_false(pipeline_state_has(s, "omega", 5));
    assert_int_equal(pipeline_state_keys(s), keys);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    /* Likewise a key added by put. */
    double records[3] = {1.0, NAN, 2.0};
    pipeline_state_put(s, "omega", 5, records, 1);
    pipeline_state_drop(s, "omega", 5);
    assert_int_equal(pipeline_state_keys(s), keys);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    /* Keys not held, among them a prefix of a held one: ignored; so is a second drop. */
    pipeline_state_drop(s, "omega", 5);
    pipeline_state_drop(s, "alph", 4);
    pipeline_state_drop(s, NULL, 0);
    assert_int_equal(pipeline_state_keys(s), keys);
    assert_int_equal(pipeline_state_bytes(s), bytes);
    assert_true(pipeline_state_has(s, "alpha", 5));
    pipeline_transform(p, s, &rows, got);
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, query.n, nf, "after adding and dropping a key");
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);

    /* A key of the history dropped: as a state that never saw its rows, the key included (its
     * next rows start a new window). */
    struct peek_batch without;
    peek_without(&history, "beta", &without);
    assert_true(without.n < history.n);
    s = peek_state(p, &history);
    twin = peek_state(p, &without);
    pipeline_state_drop(s, "beta", 4);
    assert_false(pipeline_state_has(s, "beta", 4));
    for (size_t k = 0; k < PEEK_KNOWN; k++)
        assert_true(pipeline_state_has(s, peek_keys[k], strlen(peek_keys[k])) == (k != 1));
    assert_int_equal(pipeline_state_keys(s), PEEK_KNOWN - 1);
    assert_int_equal(pipeline_state_keys(s), pipeline_state_keys(twin));
    assert_int_equal(pipeline_state_bytes(s), pipeline_state_bytes(twin));
    pipeline_transform(p, s, &rows, got);
    pipeline_transform(p, twin, &rows, want);
    assert_same_features(got, want, query.n, nf, "dropped versus never seen");
    /* ... and the other keys' features are those of a state that keeps beta. */
    struct pipeline_state *kept = peek_state(p, &history);
    pipeline_transform(p, kept, &rows, want);
    size_t others = 0;
    for (size_t i = 0; i < query.n; i++)
        if (strcmp(query.keys[i], "beta") != 0) {
            assert_same_features(got + i * nf, want + i * nf, 1, nf, "another key after a drop");
            others++;
        }
    assert_true(others > 0 && others < query.n);
    pipeline_state_destroy(kept);
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);

    free(want);
    free(got);
    peek_batch_free(&without);
    pipeline_destroy(p);
    peek_batch_free(&omega);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* The empty key (rows without keys, NULL or "" with length 0) is checkpointed, restored and
 * dropped like any other, beside other keys. */
static void test_state_empty_key(void **state)
{
    (void)state;
    enum { W = 4 };
    support_rng_seed(2718);
    struct peek_batch history, query;
    peek_history(&history, 50, 0.125);
    peek_random(&query, 12, 0, PEEK_KNOWN, 0.125);
    struct pipeline *p = peek_fit(&peek_cases[0], &history);
    peek_recode(p, &history);
    peek_recode(p, &query);
    size_t nf = pipeline_nfeatures(p);
    struct pipeline_rows keyless = {.nrows = history.n, .values = history.values};
    struct pipeline_rows next = {.nrows = query.n, .values = query.values};
    double *got = mem_alloc(history.n * nf * sizeof(double));
    double *want = mem_alloc(history.n * nf * sizeof(double));

    /* Rows without keys: get of NULL and of "" both return the last W rows. */
    struct pipeline_state *s = pipeline_state_new(p);
    size_t empty_bytes = pipeline_state_bytes(s);
    pipeline_transform(p, s, &keyless, got);
    assert_int_equal(pipeline_state_keys(s), 1);
    assert_true(pipeline_state_has(s, NULL, 0));
    assert_true(pipeline_state_has(s, "", 0));
    double a[W * 3], b[W * 3], last[W * 3];
    for (size_t t = 0; t < W; t++)
        memcpy(last + t * 3, history.values + (history.n - W + t) * PEEK_INPUTS,
               3 * sizeof(double));
    assert_int_equal(pipeline_state_get(s, NULL, 0, a), W);
    assert_int_equal(pipeline_state_get(s, "", 0, b), W);
    assert_same_doubles(a, last, W * 3, "empty key (NULL)");
    assert_same_doubles(b, last, W * 3, "empty key (\"\")");

    /* Restored under "" into a fresh state: the next keyless rows get the same features. */
    struct pipeline_state *restored = pipeline_state_new(p);
    pipeline_state_put(restored, "", 0, a, W);
    assert_true(pipeline_state_has(restored, NULL, 0));
    pipeline_transform(p, s, &next, want);
    pipeline_transform(p, restored, &next, got);
    assert_same_features(got, want, query.n, nf, "empty key restored");
    pipeline_state_destroy(restored);

    /* Dropped: the state is as new. */
    pipeline_state_drop(s, NULL, 0);
    assert_false(pipeline_state_has(s, "", 0));
    assert_int_equal(pipeline_state_keys(s), 0);
    assert_int_equal(pipeline_state_bytes(s), empty_bytes);
    pipeline_state_destroy(s);

    /* Beside other keys: dropping the empty key leaves them, dropping one of them leaves it. */
    s = peek_state(p, &history);
    struct pipeline_rows with_keys = peek_rows(&query);
    pipeline_state_put(s, NULL, 0, a, W);
    assert_int_equal(pipeline_state_keys(s), PEEK_KNOWN + 1);
    pipeline_state_drop(s, "", 0);
    assert_false(pipeline_state_has(s, NULL, 0));
    for (size_t k = 0; k < PEEK_KNOWN; k++)
        assert_true(pipeline_state_has(s, peek_keys[k], strlen(peek_keys[k])));
    struct pipeline_state *twin = peek_state(p, &history);
    pipeline_transform(p, s, &with_keys, got);
    pipeline_transform(p, twin, &with_keys, want);
    assert_same_features(got, want, query.n, nf, "other keys after dropping the empty key");
    pipeline_state_put(s, "", 0, a, W);
    pipeline_state_drop(s, "alpha", 5);
    assert_int_equal(pipeline_state_get(s, NULL, 0, b), W);
    assert_same_doubles(b, a, W * 3, "empty key after dropping another");
    pipeline_state_destroy(twin);
    pipeline_state_destroy(s);

    free(want);
    free(got);
    pipeline_destroy(p);
    peek_batch_free(&query);
    peek_batch_free(&history);
}

/* The records the stress test gives key i: count i % (W + 2) (none, fewer than, as many as and
 * more than the window), each value telling key, record and input apart. */
#define STRESS_W 3
static size_t stress_records(size_t i, double *records)
{
    size_t count = i % (STRESS_W + 2);
    for (size_t t = 0; t < count; t++)
        for (size_t j = 0; j < 3; j++)
            records[t * 3 + j] = (double)i * 100.0 + (double)t * 10.0 + (double)j;
    return count;
}

/* Fails unless s holds exactly the keys of ids[0..n) (with their records when check_records). */
static void stress_check_held(const struct pipeline_state *s, char (*names)[24], const size_t *lens,
                              const size_t *ids, size_t n, bool check_records)
{
    assert_int_equal(pipeline_state_keys(s), n);
    double want[(STRESS_W + 1) * 3], got[STRESS_W * 3];
    for (size_t r = 0; r < n; r++) {
        size_t i = ids[r];
        if (!pipeline_state_has(s, names[i], lens[i]))
            fail_msg("key '%s' is no longer found (%zu keys held)", names[i], n);
        if (!check_records)
            continue;
        size_t count = stress_records(i, want), kept = count < STRESS_W ? count : STRESS_W;
        if (pipeline_state_get(s, names[i], lens[i], got) != kept)
            fail_msg("key '%s': a history of other length", names[i]);
        assert_same_doubles(got, want + (count - kept) * 3, kept * 3, names[i]);
    }
}

/* Drops, in random order (seeded), thousands of keys, and adds new ones in between: after every
 * drop each remaining key is still found (a lookup that a wrong backward shift would break), the
 * dropped one is not, and the bytes go down by its history's size (the same for every key but
 * for its length); the keys keep their records throughout. */
static void test_state_drop_many_keys(void **state)
{
    (void)state;
    enum { NFIRST = 4000, NLATER = 2000, NALL = NFIRST + NLATER };
    const struct peek_case pc = {PIPELINE_IMPUTE_MEAN, false, STRESS_W, PIPELINE_STAT_MEAN,
                                 PIPELINE_SCALE_NONE};
    support_rng_seed(8675309);
    struct peek_batch history;
    peek_history(&history, 50, 0.0);
    struct pipeline *p = peek_fit(&pc, &history);
    struct pipeline_state *s = pipeline_state_new(p);

    /* Keys of 2 to 16 bytes: "k<i>" padded with a random number of '.'. */
    char(*names)[24] = mem_alloc(NALL * sizeof(*names));
    size_t *lens = mem_alloc(NALL * sizeof(size_t));
    size_t *held = mem_alloc(NALL * sizeof(size_t)); /* key ids, in the order they go */
    for (size_t i = 0; i < NALL; i++) {
        int len = snprintf(names[i], sizeof(names[i]), "k%zu", i);
        size_t pad = (size_t)(support_rng_uniform() * 12.0);
        memset(names[i] + len, '.', pad);
        lens[i] = (size_t)len + pad;
        names[i][lens[i]] = '\0';
    }
    double records[(STRESS_W + 1) * 3];
    for (size_t i = 0; i < NFIRST; i++) {
        pipeline_state_put(s, names[i], lens[i], records, stress_records(i, records));
        held[i] = i;
    }
    size_t nheld = NFIRST, full_bytes = pipeline_state_bytes(s);
    stress_check_held(s, names, lens, held, nheld, true);

    /* Shuffles held[0..nheld) (Fisher-Yates) and drops keys from the front of it. */
    size_t base = 0; /* history bytes less the key's length: the same for every key */
    size_t rounds[2] = {NFIRST / 2, NFIRST / 2 + NLATER};
    for (int round = 0; round < 2; round++) {
        for (size_t r = nheld; r > 1; r--) {
            size_t k = (size_t)(support_rng_uniform() * (double)r), t = held[r - 1];
            held[r - 1] = held[k];
            held[k] = t;
        }
        for (size_t d = 0; d < rounds[round]; d++) {
            size_t i = held[0], before = pipeline_state_bytes(s);
            pipeline_state_drop(s, names[i], lens[i]);
            if (pipeline_state_has(s, names[i], lens[i]))
                fail_msg("key '%s' is still found after its drop", names[i]);
            size_t freed = before - pipeline_state_bytes(s);
            if (base == 0)
                base = freed - lens[i];
            if (freed != base + lens[i])
                fail_msg("dropping '%s' (%zu bytes) freed %zu bytes, not %zu", names[i], lens[i],
                         freed, base + lens[i]);
            memmove(held, held + 1, --nheld * sizeof(size_t));
            stress_check_held(s, names, lens, held, nheld, d % 500 == 0);
        }
        stress_check_held(s, names, lens, held, nheld, true);
        if (round == 0) /* new keys fill the holes the drops left */
            for (size_t i = NFIRST; i < NALL; i++) {
                pipeline_state_put(s, names[i], lens[i], records, stress_records(i, records));
                held[nheld++] = i;
            }
    }
    assert_int_equal(nheld, 0);
    assert_true(base > 3 * STRESS_W * sizeof(double));
    /* Every history's bytes went: the first keys, put back, make the state as big as before. */
    for (size_t i = 0; i < NFIRST; i++)
        pipeline_state_put(s, names[i], lens[i], records, stress_records(i, records));
    assert_int_equal(pipeline_state_bytes(s), full_bytes);
    for (size_t i = 0; i < NFIRST; i++)
        held[i] = i;
    stress_check_held(s, names, lens, held, NFIRST, true);

    pipeline_state_destroy(s);
    free(held);
    free(lens);
    free(names);
    pipeline_destroy(p);
    peek_batch_free(&history);
}

/* --- C-MAPSS ---------------------------------------------------------------------------------- */

/* Reads C-MAPSS train_FD001.txt (unit cycle setting1..3 s1..s21) into keys (the unit as text,
 * in one buffer) and rows of s2 s3 s4. */
static size_t read_fd001(double **values_out, char **key_bytes_out, const char ***keys_out,
                         size_t **lens_out)
{
    enum { COLS = SUPPORT_FD001_COLS };
    size_t n = 0;
    double *all = support_read_fd001(&n, NULL);
    double *values = mem_alloc((n ? n : 1) * 3 * sizeof(double));
    size_t *lens = mem_alloc((n ? n : 1) * sizeof(size_t));
    size_t *offsets = mem_alloc((n ? n : 1) * sizeof(size_t));
    size_t bytes_cap = 0, bytes_used = 0;
    char *bytes = NULL;
    for (size_t i = 0; i < n; i++) {
        const double *v = all + i * COLS;
        memcpy(values + i * 3, v + 6, 3 * sizeof(double));
        char key[32];
        size_t len = (size_t)snprintf(key, sizeof(key), "%.0f", v[0]);
        mem_grow((void **)&bytes, &bytes_cap, bytes_used + len, 1);
        memcpy(bytes + bytes_used, key, len);
        lens[i] = len;
        offsets[i] = bytes_used;
        bytes_used += len;
    }
    free(all);
    const char **keys = mem_alloc((n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        keys[i] = bytes + offsets[i];
    free(offsets);
    *values_out = values;
    *key_bytes_out = bytes;
    *keys_out = keys;
    *lens_out = lens;
    return n;
}

static void test_cmapss_fd001(void **state)
{
    (void)state;
    char data_path[1024], path[1100];
    support_data_path("cmapss/train_FD001.txt", data_path, sizeof(data_path));
    double *values = NULL;
    char *key_bytes = NULL;
    const char **keys = NULL;
    size_t *lens = NULL;
    size_t n = read_fd001(&values, &key_bytes, &keys, &lens);
    assert_int_equal(n, 20631);

    char *dir = support_mkdtemp("tributary_pipeline");
    assert_non_null(dir);
    free(support_python(reference_script, "cmapss", dir, data_path, "30", NULL));
    struct table expected;
    snprintf(path, sizeof(path), "%s/expected.txt", dir);
    table_read(path, &expected);
    struct fitted fitted;
    snprintf(path, sizeof(path), "%s/fitted.txt", dir);
    fitted_read(path, &fitted);
    assert_int_equal(expected.nrows, n);

    static const char *const names[] = {"s2", "s3", "s4"};
    struct pipeline_options o = {.numeric = names,
                                 .nnumeric = 3,
                                 .impute = PIPELINE_IMPUTE_MEAN,
                                 .window = 30,
                                 .window_stats = PIPELINE_STAT_MEAN | PIPELINE_STAT_STD,
                                 .scale = PIPELINE_SCALE_NONE};
    struct pipeline_rows rows = {.nrows = n, .values = values, .keys = keys, .key_lens = lens};
    char err[256] = "";
    struct pipeline *p = pipeline_fit(&o, &rows, NULL, NULL, NULL, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    size_t nf = pipeline_nfeatures(p);
    assert_int_equal(nf, expected.ncols);
    for (size_t f = 0; f < nf; f++)
        assert_string_equal(pipeline_feature_name(p, f), expected.names[f]);
    char what[96];
    for (size_t j = 0; j < 3; j++) {
        snprintf(what, sizeof(what), "mean of %s", names[j]);
        assert_value(pipeline_spec(p)->fill[j], fitted.fill[j], false, what);
    }

    double *out = mem_alloc(n * nf * sizeof(double));
    struct pipeline_state *s = pipeline_state_new(p);
    pipeline_transform(p, s, &rows, out);
    assert_int_equal(pipeline_state_keys(s), 100);
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < nf; f++) {
            snprintf(what, sizeof(what), "row %zu (unit %.*s) %s", i, (int)lens[i], keys[i],
                     expected.names[f]);
            assert_value(out[i * nf + f], expected.values[i * nf + f], false, what);
        }
    pipeline_state_destroy(s);
    pipeline_destroy(p);

    /* The standard scaler over those features, as StandardScaler fits it. */
    o.scale = PIPELINE_SCALE_STANDARD;
    p = pipeline_fit(&o, &rows, NULL, NULL, NULL, err, sizeof(err));
    if (!p)
        fail_msg("pipeline_fit: %s", err);
    assert_int_equal(fitted.noffset, nf);
    for (size_t c = 0; c < nf; c++) {
        snprintf(what, sizeof(what), "offset of %s", expected.names[c]);
        assert_value(pipeline_spec(p)->offset[c], fitted.offset[c], false, what);
        snprintf(what, sizeof(what), "factor of %s", expected.names[c]);
        assert_value(pipeline_spec(p)->factor[c], fitted.factor[c], false, what);
    }
    pipeline_destroy(p);

    free(out);
    table_free(&expected);
    assert_int_equal(support_rmtree(dir), 0);
    free(dir);
    free(lens);
    free(keys);
    free(key_bytes);
    free(values);
}

/* The configurations checked against the reference: impute, indicator, window, statistics,
 * window columns, scale. */
static const struct reference_case reference_cases[] = {
    {"mean", true, 4, "mean,std,min,max,slope,last,count", "all", "standard"},
    {"mean", true, 5, "mean,std,min,max,slope,last,count", "all", "none"},
    {"constant:-1.5", false, 3, "mean,slope,last", "x3,x0", "minmax"},
    {"none", true, 2, "mean,std,min,last,count", "all", "standard"},
    {"mean", true, 0, "-", "all", "none"},
    {"constant:2", true, 1, "std,slope,min,count", "x1", "minmax"},
};

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("sklearn: mean+indicator, window 4 of every statistic, standard", test_reference,
                   (void *)&reference_cases[0]),
        NAMED_CASE("sklearn: mean+indicator, window 5 of every statistic, unscaled", test_reference,
                   (void *)&reference_cases[1]),
        NAMED_CASE("sklearn: constant, window 3 mean/slope/last of x3,x0, minmax", test_reference,
                   (void *)&reference_cases[2]),
        NAMED_CASE("sklearn: no imputation (NaN features, scaler skips them), window 2",
                   test_reference, (void *)&reference_cases[3]),
        NAMED_CASE("sklearn: mean+indicator, no window, unscaled", test_reference,
                   (void *)&reference_cases[4]),
        NAMED_CASE("sklearn: window of 1 record, minmax", test_reference,
                   (void *)&reference_cases[5]),
        NAMED_CASE("window statistics of a straight line: closed forms", test_window_closed_forms,
                   NULL),
        NAMED_CASE("scaler: zero spread up to rounding, as scikit-learn", test_scaler_zero_spread,
                   NULL),
        NAMED_CASE("state carries over: split calls equal one call", test_state_carries_over_calls,
                   NULL),
        NAMED_CASE("state serves a new version with other fills", test_state_serves_new_version,
                   NULL),
        NAMED_CASE("pipeline_state_fits: same numeric inputs and window", test_state_fits, NULL),
        NAMED_CASE("state grows only for new keys", test_state_grows_only_for_new_keys, NULL),
        NAMED_CASE("NULL and empty keys share one history", test_null_keys_share_one_history, NULL),
        NAMED_CASE("statistic names parse and print", test_stat_names, NULL),
        NAMED_CASE("pipeline_new: a hand-made spec, deep-copied", test_spec_fixture_is_valid, NULL),
        NAMED_CASE("pipeline_new refuses bad specs, naming the problem", test_new_refuses_bad_specs,
                   NULL),
        NAMED_CASE("pipeline_new of pipeline_spec transforms identically", test_spec_round_trip,
                   NULL),
        NAMED_CASE("category index: binary search in byte order", test_category_index, NULL),
        NAMED_CASE("pipeline_fit: window column order, ignored without a window",
                   test_fit_fixture_is_valid, NULL),
        NAMED_CASE("pipeline_fit refuses bad options, naming the problem",
                   test_fit_refuses_bad_options, NULL),
        NAMED_CASE("C-MAPSS FD001: window 30 mean/std of s2 s3 s4 by unit vs numpy",
                   test_cmapss_fd001, NULL),
        NAMED_CASE("peek = transform on a twin state, state unchanged: mean+indicator, window 4, "
                   "every statistic, standard",
                   test_peek_equals_transform, (void *)&peek_cases[0]),
        NAMED_CASE("peek = transform on a twin state, state unchanged: no imputation (NaN), "
                   "window 3, minmax",
                   test_peek_equals_transform, (void *)&peek_cases[1]),
        NAMED_CASE("peek = transform on a twin state, state unchanged: constant, window 1",
                   test_peek_equals_transform, (void *)&peek_cases[2]),
        NAMED_CASE("peek = transform on a twin state, state unchanged: window 7, some rings not "
                   "full",
                   test_peek_equals_transform, (void *)&peek_cases[3]),
        NAMED_CASE("peek: keys unknown to the state start empty and are not added",
                   test_peek_unknown_keys, NULL),
        NAMED_CASE("peek: rows of one key in one call see each other (vs direct statistics)",
                   test_peek_repeated_key, NULL),
        NAMED_CASE("peek: a pipeline without a window, state NULL", test_peek_without_window, NULL),
        NAMED_CASE("peek: threads sharing a state peek at once", test_peek_concurrent, NULL),
        NAMED_CASE("state get: each key's last W raw inputs, oldest first: window 4",
                   test_state_get_raw_inputs, (void *)&peek_cases[0]),
        NAMED_CASE("state get: each key's last W raw inputs, oldest first: window 3, NaN kept",
                   test_state_get_raw_inputs, (void *)&peek_cases[1]),
        NAMED_CASE("state get: each key's last W raw inputs, oldest first: window 1",
                   test_state_get_raw_inputs, (void *)&peek_cases[2]),
        NAMED_CASE("state get: each key's last W raw inputs, oldest first: window 7",
                   test_state_get_raw_inputs, (void *)&peek_cases[3]),
        NAMED_CASE("state put: a restored state transforms as the original: window 4",
                   test_state_put_restores, (void *)&peek_cases[0]),
        NAMED_CASE("state put: a restored state transforms as the original: window 3",
                   test_state_put_restores, (void *)&peek_cases[1]),
        NAMED_CASE("state put: a restored state transforms as the original: window 1",
                   test_state_put_restores, (void *)&peek_cases[2]),
        NAMED_CASE("state put: a restored state transforms as the original: window 7",
                   test_state_put_restores, (void *)&peek_cases[3]),
        NAMED_CASE("state put: no records, more than the window, no window", test_state_put_edges,
                   NULL),
        NAMED_CASE("state drop: as if the key never came; other keys unaffected", test_state_drop,
                   NULL),
        NAMED_CASE("state get/put/drop of the empty key", test_state_empty_key, NULL),
        NAMED_CASE("state drop: thousands of keys in random order, the rest still found",
                   test_state_drop_many_keys, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
