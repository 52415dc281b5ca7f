/* Offline data for train and score: a CSV or Avro container file read into pipeline input
 * rows, keys, times and labels, as the configuration describes it. */
#ifndef TRIBUTARY_DATASET_H
#define TRIBUTARY_DATASET_H

#include "models/pipeline.h"
#include "service/config/config.h"

#include <stdbool.h>
#include <stddef.h>

/* What to read besides the configuration's key, time and label. */
struct dataset_request {
    const char *const *numeric; /* numeric inputs, in order */
    size_t nnumeric;
    const char *const *categorical; /* string or enum inputs, in order */
    size_t ncategorical;
    bool want_label; /* cfg->input.label, or derived from run-to-failure data */
};

struct dataset {
    size_t nrows, nnumeric, ncategorical;
    /* nrows x (nnumeric + ncategorical), row-major: numeric values (NAN missing), then
     * categorical codes into dataset_dictionary (NAN missing): the rows of models/pipeline.h
     * before the codes are mapped to a pipeline's categories. */
    double *inputs;
    const char **keys;    /* nrows keys (input.key, else train.rul_key); NULL: none */
    size_t *key_lens;     /* their lengths */
    double *times;        /* nrows values of input.time; NULL: none */
    double *labels;       /* nrows labels, NAN when missing; NULL when not wanted */
    char fingerprint[17]; /* the Avro writer schema's, "" for CSV */
    struct table *table;  /* owns the keys and dictionaries */
};

/* Reads `path` (format from cfg->train.format, or its extension when "auto"; CSV options from
 * cfg->train.csv_*) into out. The label is 1 + the index of the first of cfg->train.label_flags
 * that is not 0 (0 when none is, NAN when one is missing) when those are set; else derived
 * from run-to-failure data when cfg->train.rul_key and rul_time are set (max time of the key
 * minus the row's time, capped at rul_cap when that is > 0); else cfg->input.label. Returns TB_OK,
 * or an error with err naming the file, line or column. */
int dataset_load(const struct config *cfg, const char *path, const struct dataset_request *request,
                 struct dataset *out, char *err, size_t errsz);

/* The dictionary of categorical input j: strings indexed by code, their number in *count. */
const char *const *dataset_dictionary(const struct dataset *ds, size_t j, size_t *count);

/* Runs the rows of ds through the pipeline, in file order with a fresh window state, into out
 * (nrows x pipeline_nfeatures, row-major): categorical codes are first mapped from the file's
 * dictionaries to the pipeline's categories. The pipeline's inputs must be the dataset's
 * (the request that loaded it named them). Never fails. */
void dataset_features(const struct dataset *ds, const struct pipeline *pipeline, double *out);

/* The label's name as recorded in an artefact ("rul" or "max(cycle by unit) -
 * cycle, capped at 125"), written into buf. */
void dataset_label_name(const struct config *cfg, char *buf, size_t bufsz);

/* Whether the configuration derives the label from run-to-failure data (and not from
 * train.label_flags, which come first). */
bool dataset_derives_label(const struct config *cfg);

/* Whether the configuration names a label at all: input.label, train.label_flags or a derived
 * remaining useful life. */
bool dataset_has_label(const struct config *cfg);

/* Frees everything and zeroes ds; accepts a zeroed dataset, and NULL. */
void dataset_free(struct dataset *ds);

#endif
