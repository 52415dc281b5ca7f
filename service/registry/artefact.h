/* Model artefacts: a pipeline and a linear model with their manifest, as one value. */
#ifndef TRIBUTARY_ARTEFACT_H
#define TRIBUTARY_ARTEFACT_H

#include "models/linear.h"
#include "models/pipeline.h"

/* The rest of the artefact's interface, included here so that a caller includes one header:
 * the file format (artefact_encode, artefact_write, artefact_decode, artefact_read) and the JSON
 * description (artefact_manifest_json). */
#include "service/registry/artefact_avro.h"
#include "service/registry/artefact_manifest.h"

#include <stddef.h>
#include <stdint.h>

/* A pipeline and a linear model with their manifest (name, version, creation time, trainer,
 * hyperparameters, metrics, features, label, input schema fingerprint, checksum). The checksum
 * covers the pipeline and the model, not the manifest (see artefact_avro.h for how it is
 * computed). Immutable once built except for the version, hyperparameters and metrics; not
 * thread-safe while those are being set. */
struct artefact;

/* One named number of the manifest's hyperparameters or metrics maps; name is owned by the
 * artefact. */
struct artefact_param {
    const char *name;
    double value;
};

/* The manifest fields a trainer supplies; everything is copied. */
struct artefact_info {
    const char *name;                     /* required, not empty */
    int32_t version;                      /* registry version */
    int64_t created_at_ms;                /* Unix time in milliseconds; 0 means now */
    const char *trainer;                  /* NULL means the model kind's name */
    const char *label;                    /* required */
    const char *input_schema_fingerprint; /* NULL means "" */
};

/* Builds an artefact from a fitted pipeline and model (both copied) and the manifest fields,
 * and computes its checksum; the manifest's features are the pipeline's output features.
 * Returns NULL with a message in err when the name or the label is missing, or the model is
 * not one artefact_read would accept: its nfeatures differs from the pipeline's, its classes
 * or outputs do not fit its kind, or a number is not finite. Free with artefact_destroy. */
struct artefact *artefact_new(const struct artefact_info *info, const struct pipeline *pipeline,
                              const struct linear_model *model, char *err, size_t errsz);

/* Frees the artefact; NULL is a no-op. Pointers returned by the accessors die with it. */
void artefact_destroy(struct artefact *artefact);

/* Sets the registry version (the checksum does not cover the manifest). */
void artefact_set_version(struct artefact *artefact, int32_t version);

/* Sets (adds, or replaces the value of) one hyperparameter or metric; name is copied. */
void artefact_set_hyperparameter(struct artefact *artefact, const char *name, double value);
void artefact_set_metric(struct artefact *artefact, const char *name, double value);

/* Accessors. Strings and the model are owned by the artefact. */
const char *artefact_name(const struct artefact *artefact);
int32_t artefact_version(const struct artefact *artefact);
int64_t artefact_created_at_ms(const struct artefact *artefact);
const char *artefact_trainer(const struct artefact *artefact);
const char *artefact_label(const struct artefact *artefact);
const char *artefact_input_schema_fingerprint(const struct artefact *artefact);
const char *artefact_checksum(const struct artefact *artefact);
const char *artefact_model_kind(const struct artefact *artefact);
size_t artefact_nfeatures(const struct artefact *artefact);
/* Returns the name of feature i (i < artefact_nfeatures). */
const char *artefact_feature(const struct artefact *artefact, size_t i);
/* Returns the pipeline and the model; the model's nfeatures equals artefact_nfeatures, which
 * is the pipeline's output feature count. */
const struct pipeline *artefact_pipeline(const struct artefact *artefact);
const struct linear_model *artefact_model(const struct artefact *artefact);

/* Return the hyperparameters / metrics in the order they were set or stored, with their number
 * in *count. */
const struct artefact_param *artefact_hyperparameters(const struct artefact *artefact,
                                                      size_t *count);
const struct artefact_param *artefact_metrics(const struct artefact *artefact, size_t *count);

/* Looks name up among count params: TB_OK with *value set, or TB_NOTFOUND. */
int artefact_param_find(const struct artefact_param *params, size_t count, const char *name,
                        double *value);

#endif
