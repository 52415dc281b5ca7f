/* What the files of the artefact module share and callers do not see: the artefact's fields,
 * the model check that building and reading both apply, and the checksum. */
#ifndef TRIBUTARY_ARTEFACT_INT_H
#define TRIBUTARY_ARTEFACT_INT_H

#include "service/registry/artefact.h"

#include <stddef.h>
#include <stdint.h>

/* "crc32:" and 8 hex digits, without the NUL. */
#define ARTEFACT_CHECKSUM_LEN 14

struct artefact_params {
    struct artefact_param *items;
    size_t count, cap;
};

struct artefact {
    char *name;
    int32_t version;
    int64_t created_at_ms;
    char *trainer;
    char *label;
    char *input_schema_fingerprint;
    char checksum[ARTEFACT_CHECKSUM_LEN + 1];
    struct artefact_params hyperparameters;
    struct artefact_params metrics;
    struct pipeline *pipeline;
    struct linear_model model;
};

/* The names of enum pipeline_impute and enum pipeline_scale, indexed by their values, as the
 * file stores them and the manifest shows them. */
extern const char *const artefact_impute_names[3];
extern const char *const artefact_scale_names[3];

/* Appends a parameter whose name is not among params yet; name is copied. */
void artefact_params_append(struct artefact_params *params, const char *name, double value);

/* Checks that the model's shape fits its kind and the pipeline, and that its numbers are
 * finite. Returns TB_OK, or TB_ARTEFACT with a message in err that starts with origin. */
int artefact_check_model(const char *origin, const struct linear_model *m,
                         const struct pipeline *pipeline, char *err, size_t errsz);

/* Writes the checksum of a pipeline and a model ("crc32:" and 8 hex digits over their Avro
 * encodings, see artefact_avro.h) into out. Returns TB_OK, or TB_ARTEFACT / TB_NOMEM with a
 * message in err when Avro C cannot build or encode the records. Defined in artefact_avro.c. */
int artefact_content_checksum(const struct pipeline *pipeline, const struct linear_model *model,
                              char out[ARTEFACT_CHECKSUM_LEN + 1], char *err, size_t errsz);

#endif
