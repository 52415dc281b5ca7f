/* Offline data for train and score: a CSV or Avro container file read into a
 * feature matrix and a label vector, as the configuration describes it. */
#ifndef TRIBUTARY_DATASET_H
#define TRIBUTARY_DATASET_H

#include "service/config.h"

#include <stddef.h>

struct dataset {
    size_t nrows, nfeatures;
    double *features;     /* row-major nrows x nfeatures */
    double *labels;       /* nrows entries; NULL when no label was asked for */
    char fingerprint[17]; /* the Avro writer schema's, "" for CSV */
};

/* Reads `path` (format from cfg->train.format, or its extension when "auto";
 * CSV options from cfg->train.csv_*) into out, taking the named features in
 * order and, when want_label, the label: cfg->input.label, or derived from
 * run-to-failure data when cfg->train.rul_key and rul_time are set (max time
 * of the key minus the row's time, capped at rul_cap when that is > 0).
 * Returns TB_OK, or an error with err naming the file, line or column. */
int dataset_load(const struct config *cfg, const char *path, const char *const *features,
                 size_t nfeatures, int want_label, struct dataset *out, char *err, size_t errsz);

/* The label's name as recorded in an artefact ("rul" or "max(cycle by unit) -
 * cycle, capped at 125"), written into buf. */
void dataset_label_name(const struct config *cfg, char *buf, size_t bufsz);

/* Frees the arrays; accepts a zeroed dataset. */
void dataset_free(struct dataset *ds);

#endif
