/* Prediction records: the Avro binary encoding of config/schemas/prediction.avsc. */
#ifndef TRIBUTARY_PREDICTION_H
#define TRIBUTARY_PREDICTION_H

#include "connectors/avro/avro_wire.h"

#include <stddef.h>
#include <stdint.h>

/* One model output for one input record. Strings are not owned: on encode
 * they are the caller's, on decode they point into the decoded buffer. */
struct prediction {
    const char *key; /* the input's key (entity id) */
    size_t key_len;
    int64_t event_time_ms; /* the input's timestamp */
    double value;
    double label; /* NAN: the input had none */
    const char *model;
    size_t model_len;
    int32_t model_version;
    int32_t source_partition;
    int64_t source_offset;
    const double *probabilities; /* a classifier's, one per class in the model's order */
    size_t nprobabilities;       /* 0 for a regression */
};

/* Returns the prediction schema (config/schemas/prediction.avsc) as JSON text; static. */
const char *prediction_schema_json(void);

/* Appends the encoding of p to buf. */
void prediction_encode(const struct prediction *p, struct avro_wire_buf *buf);

/* Decodes one prediction from buf[0..len); its probabilities go into
 * probabilities[0..capacity), which out->probabilities then points to. Returns
 * TB_OK, or TB_PARSE when the bytes are not exactly one prediction record or it
 * has more than capacity probabilities. */
int prediction_decode(const void *buf, size_t len, struct prediction *out, double *probabilities,
                      size_t capacity);

#endif
