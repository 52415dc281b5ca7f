/* Offline data loading: files to matrices, with derived run-to-failure labels. */
#include "service/dataset.h"

#include "connectors/avro_container_reader.h"
#include "connectors/avro_plan.h"
#include "connectors/csv_reader.h"
#include "connectors/table.h"
#include "service/error.h"
#include "service/mem.h"

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

static int dataset_derives_label(const struct config *cfg)
{
    return cfg->train.rul_key[0] && cfg->train.rul_time[0];
}

void dataset_label_name(const struct config *cfg, char *buf, size_t bufsz)
{
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

int dataset_load(const struct config *cfg, const char *path, const char *const *features,
                 size_t nfeatures, int want_label, struct dataset *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    int derive = want_label && dataset_derives_label(cfg);
    if (want_label && !derive && cfg->input.label[0] == '\0')
        return tb_fail(err, errsz, TB_CONFIG,
                       "no label: set input.label, or train.rul_key and train.rul_time");

    /* Columns to read: the features, then what the label needs. */
    size_t ncols = nfeatures;
    const char **cols = mem_calloc(nfeatures + 2, sizeof *cols);
    memcpy(cols, features, nfeatures * sizeof *cols);
    if (derive) {
        cols[ncols++] = cfg->train.rul_key;
        cols[ncols++] = cfg->train.rul_time;
    } else if (want_label) {
        cols[ncols++] = cfg->input.label;
    }

    struct table *table = NULL;
    int status;
    if (dataset_is_avro(cfg, path)) {
        struct avro_container_reader *reader = avro_container_reader_new(path, err, errsz);
        status =
            reader ? avro_container_reader_read_table(reader, cols, ncols, NULL, &table, err, errsz)
                   : TB_IO;
        if (status == TB_OK) {
            char reason[256];
            struct avro_plan *plan =
                avro_plan_new(avro_container_reader_schema_json(reader), features, nfeatures,
                              nfeatures, reason, sizeof reason);
            if (plan)
                avro_plan_fingerprint(plan, out->fingerprint);
            avro_plan_destroy(plan);
        }
        avro_container_reader_destroy(reader);
    } else {
        const char *delimiter = cfg->train.csv_delimiter;
        struct csv_reader_options options = {
            .delimiter = strcmp(delimiter, "whitespace") == 0 ? ',' : delimiter[0],
            .whitespace = strcmp(delimiter, "whitespace") == 0,
            .header = cfg->train.csv_header,
            .column_names = (const char *const *)cfg->train.csv_columns,
            .ncolumn_names = cfg->train.ncsv_columns,
            .columns = cols,
            .ncolumns = ncols,
        };
        status = csv_reader_read(path, &options, &table, err, errsz);
    }
    free(cols);
    if (status != TB_OK)
        return status;

    size_t n = table_nrows(table);
    const double *values = table_values(table);
    out->nrows = n;
    out->nfeatures = nfeatures;
    out->features = mem_alloc(n * nfeatures * sizeof *out->features);
    for (size_t r = 0; r < n; r++)
        memcpy(&out->features[r * nfeatures], &values[r * ncols], nfeatures * sizeof *values);
    if (want_label) {
        out->labels = mem_alloc(n * sizeof *out->labels);
        if (derive) {
            double *key = mem_alloc(n * sizeof *key);
            double *time = mem_alloc(n * sizeof *time);
            for (size_t r = 0; r < n; r++) {
                key[r] = values[r * ncols + nfeatures];
                time[r] = values[r * ncols + nfeatures + 1];
            }
            dataset_derive_rul(key, time, n, cfg->train.rul_cap, out->labels);
            free(time);
            free(key);
        } else {
            for (size_t r = 0; r < n; r++)
                out->labels[r] = values[r * ncols + nfeatures];
        }
    }
    table_destroy(table);
    return TB_OK;
}

void dataset_free(struct dataset *ds)
{
    free(ds->features);
    free(ds->labels);
    ds->features = ds->labels = NULL;
    ds->nrows = 0;
}
