/* The predict request body: JSON instances to pipeline input rows. */
#include "service/stream/predict_request.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

struct predict_request {
    json_t *body; /* holds the strings the keys point into */
    struct pipeline_rows rows;
    double *values;
    const char **keys;
    size_t *key_lens;
};

/* Reads one instance (an object of input fields, with an optional string "key") into row[0..q)
 * and its key. Returns NULL, or the reason it cannot be scored (in why). */
static const char *predict_request_instance(const struct pipeline *pipeline, json_t *instance,
                                            double *row, const char **key, size_t *key_len,
                                            char *why, size_t whysz)
{
    const struct pipeline_spec *spec = pipeline_spec(pipeline);
    if (!json_is_object(instance)) {
        snprintf(why, whysz, "is not a JSON object of input fields");
        return why;
    }
    json_t *k = json_object_get(instance, "key");
    *key = json_is_string(k) ? json_string_value(k) : "";
    *key_len = json_is_string(k) ? json_string_length(k) : 0;
    if (k && !json_is_string(k)) {
        snprintf(why, whysz, "key is not a string");
        return why;
    }
    for (size_t j = 0; j < spec->nnumeric; j++) {
        json_t *v = json_object_get(instance, spec->numeric[j]);
        if (json_is_number(v)) {
            row[j] = json_number_value(v);
        } else if ((!v || json_is_null(v)) && spec->impute != PIPELINE_IMPUTE_NONE) {
            row[j] = NAN;
        } else {
            snprintf(why, whysz, "input '%s' is %s; the model needs a number", spec->numeric[j],
                     v ? "not a number" : "missing");
            return why;
        }
    }
    for (size_t j = 0; j < spec->ncategorical; j++) {
        json_t *v = json_object_get(instance, spec->categorical[j]);
        if (json_is_string(v)) {
            row[spec->nnumeric + j] = (double)pipeline_category_index(
                pipeline, j, json_string_value(v), json_string_length(v));
        } else if (!v || json_is_null(v)) {
            row[spec->nnumeric + j] = NAN;
        } else {
            snprintf(why, whysz, "input '%s' is not a string", spec->categorical[j]);
            return why;
        }
    }
    return NULL;
}

int predict_request_parse(const struct pipeline *pipeline, const void *body, size_t len,
                          struct predict_request **out, char *err, size_t errsz)
{
    struct predict_request *r = NULL;
    json_t *one = NULL; /* the array that holds a lone instance */
    int rc = TB_OK;
    *out = NULL;

    json_error_t error;
    json_t *doc = json_loadb(body, len, 0, &error);
    if (!doc)
        return tb_fail(err, errsz, TB_PARSE, "malformed JSON at line %d: %s", error.line,
                       error.text);
    r = mem_calloc(1, sizeof *r);
    r->body = doc;
    json_t *instances = json_object_get(doc, "instances");
    if (!instances) {
        one = json_array();
        json_array_append(one, doc);
        instances = one;
    }
    size_t n = json_is_array(instances) ? json_array_size(instances) : 0;
    if (n == 0 || n > PREDICT_REQUEST_MAX_INSTANCES) {
        rc = tb_fail(err, errsz, TB_PARSE,
                     "\"instances\" must be an array of 1 to %d instance objects",
                     PREDICT_REQUEST_MAX_INSTANCES);
        goto done;
    }
    size_t q = pipeline_ninputs(pipeline);
    r->values = mem_alloc(n * (q ? q : 1) * sizeof *r->values);
    r->keys = mem_alloc(n * sizeof *r->keys);
    r->key_lens = mem_alloc(n * sizeof *r->key_lens);
    for (size_t i = 0; i < n; i++) {
        char why[512];
        const char *bad =
            predict_request_instance(pipeline, json_array_get(instances, i), r->values + i * q,
                                     &r->keys[i], &r->key_lens[i], why, sizeof why);
        if (bad) {
            rc = tb_fail(err, errsz, TB_PARSE, "instance %zu %s", i, bad);
            goto done;
        }
    }
    r->rows = (struct pipeline_rows){
        .nrows = n, .values = r->values, .keys = r->keys, .key_lens = r->key_lens};
    *out = r;
    r = NULL;

done:
    json_decref(one);
    predict_request_destroy(r);
    return rc;
}

const struct pipeline_rows *predict_request_rows(const struct predict_request *request)
{
    return &request->rows;
}

void predict_request_destroy(struct predict_request *request)
{
    if (!request)
        return;
    free(request->key_lens);
    free(request->keys);
    free(request->values);
    json_decref(request->body);
    free(request);
}
