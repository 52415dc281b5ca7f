/* Model artefacts: one Avro container file holding a manifest and a model, with a checksum. */
#ifndef TRIBUTARY_ARTEFACT_H
#define TRIBUTARY_ARTEFACT_H

#include "models/linear.h"
#include "models/pipeline.h"

#include <stddef.h>
#include <stdint.h>

/* A pipeline and a linear model with their manifest (name, version, creation time, trainer,
 * hyperparameters, metrics, features, label, input schema fingerprint, checksum). The file
 * format is the Avro schema of config/schemas/model.avsc; the checksum is "crc32:" and 8
 * lowercase hex digits of the CRC-32 (zlib polynomial) of the Avro binary encoding of the
 * pipeline record followed by the model record. Immutable once built except for the version,
 * hyperparameters and metrics; not thread-safe while those are being set. */
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

/* Returns the artefact schema (the meaning of config/schemas/model.avsc) as JSON text; static. */
const char *artefact_schema_json(void);

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

/* Writes the artefact to path atomically: to "path.tmp.<pid>", fsynced, renamed over path, and
 * the directory fsynced, so a reader sees the old file or the new one, never a partial one.
 * Returns TB_OK, or TB_IO / TB_ARTEFACT with a message in err; on failure no temporary file is
 * left and path is untouched. */
int artefact_write(const struct artefact *artefact, const char *path, char *err, size_t errsz);

/* Encodes the artefact as the bytes of an Avro container file (what artefact_write writes).
 * Returns TB_OK with *buf (the caller frees it with free) and *len, or TB_ARTEFACT with err. */
int artefact_encode(const struct artefact *artefact, unsigned char **buf, size_t *len, char *err,
                    size_t errsz);

/* Decodes and verifies the bytes of an artefact file, as artefact_read does; origin (a path,
 * or e.g. "models topic partition 0 offset 7") starts every message in err. */
struct artefact *artefact_decode(const void *buf, size_t len, const char *origin, char *err,
                                 size_t errsz);

/* Reads and verifies an artefact: an Avro container of the artefact schema with exactly one
 * record, a pipeline that pipeline_new accepts, a model kind this build knows, one coefficient
 * per output and feature, finite numbers, and a checksum that matches the pipeline and model
 * records. Returns a new artefact (free with artefact_destroy),
 * or NULL with a message in err that starts with path, e.g. "m.avro: checksum mismatch
 * (manifest crc32:..., content crc32:...)". */
struct artefact *artefact_read(const char *path, char *err, size_t errsz);

/* Renders the manifest as indented JSON: every manifest field, created_at also as ISO 8601 UTC,
 * the pipeline's inputs and stages (categories, window, impute and scale methods, not the
 * fitted numbers), and the model's kind, classes and number of coefficients. Non-finite
 * metrics become null. On success returns TB_OK and sets *json_out, which the caller frees with
 * free(); returns TB_NOMEM (and *json_out = NULL) if jansson fails. */
int artefact_manifest_json(const struct artefact *artefact, char **json_out);

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
