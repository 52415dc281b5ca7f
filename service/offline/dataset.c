/* Offline data loading: files to pipeline input rows, with derived run-to-failure labels. */
#include "service/offline/dataset.h"

#include "connectors/avro/avro_container_reader.h"
#include "connectors/avro/avro_plan.h"
#include "connectors/files/csv_reader.h"
#include "connectors/files/table.h"
#include "service/base/error.h"
#include "service/base/mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int dataset_is_avro(const struct config *cfg, const char *path)
{
    if (strcmp(cfg->train.format, "auto") != 0)
        return strcmp(cfg->train.format, "avro") == 0;
    size_t len = strlen(path);
    return len > 5 && strcmp(path + len - 5, ".avro") == 0;
}

/* Whether the label is the index of the first flag set among train.label_flags. */
static bool dataset_flags_label(const struct config *cfg)
{
    return cfg->train.nlabel_flags > 0;
}

bool dataset_derives_label(const struct config *cfg)
{
    return !dataset_flags_label(cfg) && cfg->train.rul_key[0] && cfg->train.rul_time[0];
}

bool dataset_has_label(const struct config *cfg)
{
    return cfg->input.label[0] || dataset_flags_label(cfg) || dataset_derives_label(cfg);
}

void dataset_label_name(const struct config *cfg, char *buf, size_t bufsz)
{
    if (dataset_flags_label(cfg)) {
        size_t used = (size_t)snprintf(buf, bufsz, "first set of (");
        for (size_t i = 0; i < cfg->train.nlabel_flags && used < bufsz; i++)
            used += (size_t)snprintf(buf + used, bufsz - used, "%s%s", i ? ", " : "",
                                     cfg->train.label_flags[i]);
        if (used < bufsz)
            snprintf(buf + used, bufsz - used, "), 0 for none");
        return;
    }
    if (!dataset_derives_label(cfg)) {
        snprintf(buf, bufsz, "%s", cfg->input.label);
        return;
    }
    int n = snprintf(buf, bufsz, "max(%s by %s) - %s", cfg->train.rul_time, cfg->train.rul_key,
                     cfg->train.rul_time);
    if (cfg->train.rul_cap > 0 && n > 0 && (size_t)n < bufsz)
        snprintf(buf + n, bufsz - (size_t)n, ", capped at %g", cfg->train.rul_cap);
}

/* Remaining life per row: the largest time seen for the row's key minus the
 * row's time. Keys are few and usually contiguous, so a linear table with a
 * cursor on the last key found is enough. */
static void dataset_derive_rul(const double *key, const double *time, size_t n, double cap,
                               double *out)
{
    double *keys = mem_alloc(n * sizeof *keys);
    double *max_time = mem_alloc(n * sizeof *max_time);
    size_t nkeys = 0, last = 0;
    size_t *slot = mem_alloc(n * sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        if (!(nkeys > 0 && keys[last] == key[i])) {
            for (last = 0; last < nkeys && keys[last] != key[i]; last++)
                ;
            if (last == nkeys) {
                keys[nkeys] = key[i];
                max_time[nkeys++] = time[i];
            }
        }
        if (time[i] > max_time[last])
            max_time[last] = time[i];
        slot[i] = last;
    }
    for (size_t i = 0; i < n; i++) {
        double rul = max_time[slot[i]] - time[i];
        out[i] = cap > 0 && rul > cap ? cap : rul;
    }
    free(slot);
    free(max_time);
    free(keys);
}

/* Returns the index of name in cols[0..*n), appending it when absent. */
static size_t dataset_column(const char **cols, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(cols[i], name) == 0)
            return i;
    cols[*n] = name;
    return (*n)++;
}

/* Reads the Avro container at path into *table: columns cols[0..ncols), then the request's
 * categorical ones; the writer schema's fingerprint goes into fingerprint ("" when no plan can be
 * made of it). Returns TB_OK, or an error with err. */
static int dataset_read_avro(const char *path, const char **cols, size_t ncols,
                             const struct dataset_request *request, const char *key_name,
                             struct table **table, char fingerprint[17], char *err, size_t errsz)
{
    struct avro_plan *plan = NULL;
    struct avro_container_reader *reader = avro_container_reader_new(path, err, errsz);
    if (!reader)
        return TB_IO;
    int rc = avro_container_reader_read_table(reader, cols, ncols, request->categorical,
                                              request->ncategorical, key_name, table, err, errsz);
    if (rc != TB_OK)
        goto done;
    char reason[256];
    plan =
        avro_plan_new(avro_container_reader_schema_json(reader), cols, 0, 0, reason, sizeof reason);
    if (plan)
        avro_plan_fingerprint(plan, fingerprint);
done:
    avro_plan_destroy(plan);
    avro_container_reader_destroy(reader);
    return rc;
}

/* Reads the CSV file at path, with the configuration's CSV options, into *table: columns
 * cols[0..ncols), then the request's categorical ones. Returns TB_OK, or an error with err. */
static int dataset_read_csv(const struct config *cfg, const char *path, const char **cols,
                            size_t ncols, const struct dataset_request *request,
                            const char *key_name, struct table **table, char *err, size_t errsz)
{
    const char *delimiter = cfg->train.csv_delimiter;
    struct csv_reader_options options = {
        .delimiter = strcmp(delimiter, "whitespace") == 0 ? ',' : delimiter[0],
        .whitespace = strcmp(delimiter, "whitespace") == 0,
        .header = cfg->train.csv_header,
        .column_names = (const char *const *)cfg->train.csv_columns,
        .ncolumn_names = cfg->train.ncsv_columns,
        .columns = cols,
        .ncolumns = ncols,
        .categorical = request->categorical,
        .ncategorical = request->ncategorical,
        .key_column = key_name,
        .allow_missing = true, /* the pipeline decides: impute, or skip the row */
    };
    return csv_reader_read(path, &options, table, err, errsz);
}

int dataset_load(const struct config *cfg, const char *path, const struct dataset_request *request,
                 struct dataset *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    int flags = request->want_label && dataset_flags_label(cfg);
    int derive = request->want_label && dataset_derives_label(cfg);
    if (request->want_label && !derive && !flags && cfg->input.label[0] == '\0')
        return tb_fail(err, errsz, TB_CONFIG,
                       "no label: set input.label, train.label_flags, or train.rul_key and "
                       "train.rul_time");

    /* Numeric columns to read: the inputs, then what the label and the time need. */
    size_t p = request->nnumeric, ncols = 0, nflags = flags ? cfg->train.nlabel_flags : 0;
    const char **cols = mem_calloc(p + 4 + nflags, sizeof *cols);
    size_t *flag_col = NULL;
    struct table *table = NULL;
    int rc = TB_OK;
    for (size_t i = 0; i < p; i++)
        dataset_column(cols, &ncols, request->numeric[i]);
    if (ncols != p) {
        rc = tb_fail(err, errsz, TB_CONFIG, "input.features: a field is listed twice");
        goto done;
    }
    size_t key_col = 0, time_col = 0, label_col = 0, rows_time = 0;
    flag_col = mem_calloc(nflags ? nflags : 1, sizeof *flag_col);
    for (size_t i = 0; i < nflags; i++)
        flag_col[i] = dataset_column(cols, &ncols, cfg->train.label_flags[i]);
    if (derive) {
        key_col = dataset_column(cols, &ncols, cfg->train.rul_key);
        time_col = dataset_column(cols, &ncols, cfg->train.rul_time);
    } else if (request->want_label && !flags) {
        label_col = dataset_column(cols, &ncols, cfg->input.label);
    }
    if (cfg->input.time[0])
        rows_time = dataset_column(cols, &ncols, cfg->input.time);
    const char *key_name = cfg->input.key[0] ? cfg->input.key : derive ? cfg->train.rul_key : NULL;
    if (dataset_is_avro(cfg, path))
        rc = dataset_read_avro(path, cols, ncols, request, key_name, &table, out->fingerprint, err,
                               errsz);
    else
        rc = dataset_read_csv(cfg, path, cols, ncols, request, key_name, &table, err, errsz);
    if (rc != TB_OK)
        goto done;

    /* The table's columns: ncols numeric ones, then the q categorical ones. */
    size_t n = table_nrows(table), q = request->ncategorical, width = ncols + q;
    const double *values = table_values(table);
    out->table = table;
    table = NULL;
    out->nrows = n;
    out->nnumeric = p;
    out->ncategorical = q;
    out->inputs = mem_alloc((n ? n : 1) * (p + q) * sizeof *out->inputs);
    for (size_t r = 0; r < n; r++) {
        memcpy(&out->inputs[r * (p + q)], &values[r * width], p * sizeof *values);
        memcpy(&out->inputs[r * (p + q) + p], &values[r * width + ncols], q * sizeof *values);
    }
    if (key_name) {
        out->keys = mem_alloc((n ? n : 1) * sizeof *out->keys);
        out->key_lens = mem_alloc((n ? n : 1) * sizeof *out->key_lens);
        for (size_t r = 0; r < n; r++) {
            out->keys[r] = table_key(out->table, r);
            out->key_lens[r] = strlen(out->keys[r]);
        }
    }
    if (cfg->input.time[0]) {
        out->times = mem_alloc((n ? n : 1) * sizeof *out->times);
        for (size_t r = 0; r < n; r++)
            out->times[r] = values[r * width + rows_time];
    }
    if (request->want_label) {
        out->labels = mem_alloc((n ? n : 1) * sizeof *out->labels);
        if (flags) {
            for (size_t r = 0; r < n; r++) {
                out->labels[r] = 0;
                for (size_t i = 0; i < nflags; i++) {
                    double flag = values[r * width + flag_col[i]];
                    if (!isfinite(flag)) {
                        out->labels[r] = NAN;
                        break;
                    }
                    if (flag != 0 && out->labels[r] == 0)
                        out->labels[r] = (double)(i + 1);
                }
            }
        } else if (derive) {
            double *key = mem_alloc((n ? n : 1) * sizeof *key);
            double *time = mem_alloc((n ? n : 1) * sizeof *time);
            for (size_t r = 0; r < n; r++) {
                key[r] = values[r * width + key_col];
                time[r] = values[r * width + time_col];
            }
            dataset_derive_rul(key, time, n, cfg->train.rul_cap, out->labels);
            free(time);
            free(key);
        } else {
            for (size_t r = 0; r < n; r++)
                out->labels[r] = values[r * width + label_col];
        }
    }
done:
    table_destroy(table);
    free(flag_col);
    free(cols);
    return rc;
}

const char *const *dataset_dictionary(const struct dataset *ds, size_t j, size_t *count)
{
    return table_dictionary(ds->table, table_ncols(ds->table) - ds->ncategorical + j, count);
}

void dataset_free(struct dataset *ds)
{
    if (!ds)
        return;
    free(ds->inputs);
    free(ds->keys);
    free(ds->key_lens);
    free(ds->times);
    free(ds->labels);
    table_destroy(ds->table);
    memset(ds, 0, sizeof *ds);
}

void dataset_features(const struct dataset *ds, const struct pipeline *pipeline, double *out)
{
    size_t p = ds->nnumeric, q = ds->ncategorical, width = p + q;
    double *rows = mem_alloc((ds->nrows ? ds->nrows : 1) * (width ? width : 1) * sizeof *rows);
    memcpy(rows, ds->inputs, ds->nrows * width * sizeof *rows);
    for (size_t j = 0; j < q; j++) {
        /* Map each dictionary code to the pipeline's code once, then every row. */
        size_t count = 0;
        const char *const *dictionary = dataset_dictionary(ds, j, &count);
        double *code = mem_alloc((count ? count : 1) * sizeof *code);
        for (size_t c = 0; c < count; c++)
            code[c] =
                (double)pipeline_category_index(pipeline, j, dictionary[c], strlen(dictionary[c]));
        for (size_t r = 0; r < ds->nrows; r++) {
            double *cell = &rows[r * width + p + j];
            if (!isnan(*cell))
                *cell = code[(size_t)*cell];
        }
        free(code);
    }
    struct pipeline_state *state = pipeline_state_new(pipeline);
    struct pipeline_rows batch = {
        .nrows = ds->nrows, .values = rows, .keys = ds->keys, .key_lens = ds->key_lens};
    pipeline_transform(pipeline, state, &batch, out);
    pipeline_state_destroy(state);
    free(rows);
}
