/* The JSON body of POST /v1/models/{name}/predict, read into input rows of the served model's
 * pipeline: the part of the request that comes from outside, kept apart from the handler so
 * that it can be tested and fuzzed without a server. */
#ifndef TRIBUTARY_PREDICT_REQUEST_H
#define TRIBUTARY_PREDICT_REQUEST_H

#include "models/pipeline.h"

#include <stddef.h>

/* The most instances one request may carry. */
#define PREDICT_REQUEST_MAX_INSTANCES 10000

/* A parsed body; immutable. */
struct predict_request;

/* Parses body[0..len): {"instances": [<instance>, ...]} with 1 to PREDICT_REQUEST_MAX_INSTANCES
 * instances, or one instance object on its own (an object without "instances"). An instance is
 * an object with a number for each numeric input of pipeline (null or absent only when the
 * pipeline imputes: NAN), a string, null or nothing for each categorical input, and an optional
 * string "key"; other members are ignored. Returns TB_OK and sets *out (free it with
 * predict_request_destroy); or TB_PARSE, *out NULL and in err the reason, which is what the
 * client is told in a 400 reply: "malformed JSON at line 1: ...", "\"instances\" must be an
 * array of 1 to 10000 instance objects", "instance 2 is not a JSON object of input fields",
 * "instance 0 key is not a string", "instance 1 input 'x1' is missing; the model needs a
 * number", "instance 0 input 'mode' is not a string". pipeline must outlive the request. */
int predict_request_parse(const struct pipeline *pipeline, const void *body, size_t len,
                          struct predict_request **out, char *err, size_t errsz);

/* The instances as rows for pipeline_transform or pipeline_peek: nrows >= 1 rows of
 * pipeline_ninputs values (numeric inputs as given or NAN; categorical ones as codes of
 * pipeline_category_index, -1 for a category the pipeline does not know, NAN when missing), and
 * each row's key (the instance's "key" as bytes, which may hold NULs; "" with length 0 when it
 * has none). Owned by request. */
const struct pipeline_rows *predict_request_rows(const struct predict_request *request);

/* Frees the request; NULL is a no-op. */
void predict_request_destroy(struct predict_request *request);

#endif
