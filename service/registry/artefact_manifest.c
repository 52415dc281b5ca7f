/* The artefact's manifest rendered as indented JSON with jansson. */
#include "service/registry/artefact_manifest.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A JSON string for s; jansson refuses invalid UTF-8, which then shows as '?'. */
static json_t *artefact_json_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *ascii = mem_strdup(s);
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(ascii);
    free(ascii);
    return j;
}

static json_t *artefact_json_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Sets obj[key] to value (taken), the key shown as artefact_json_string shows a string: jansson
 * refuses a key that is not UTF-8, and a file may hold one. Returns 0, or -1 when jansson fails. */
static int artefact_json_set_new(json_t *obj, const char *key, json_t *value)
{
    json_t *name = artefact_json_string(key);
    int rc = name ? json_object_set_new(obj, json_string_value(name), value) : -1;
    if (!name)
        json_decref(value);
    json_decref(name);
    return rc;
}

static json_t *artefact_json_params(const struct artefact_params *params)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < params->count; i++) {
        if (artefact_json_set_new(obj, params->items[i].name,
                                  artefact_json_number(params->items[i].value)) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static void artefact_format_time(int64_t ms, char *out, size_t outsz)
{
    int64_t secs = ms / 1000, millis = ms % 1000;
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, outsz, "%" PRId64 " ms", ms);
        return;
    }
    size_t len = strlen(out);
    snprintf(out + len, outsz - len, ".%03dZ", (int)millis);
}

static json_t *artefact_json_strings(const char *const *strings, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++) {
        if (json_array_append_new(array, artefact_json_string(strings[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *artefact_json_numbers(const double *values, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++) {
        if (json_array_append_new(array, artefact_json_number(values[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* The pipeline's inputs and stages, without the fitted numbers. */
static json_t *artefact_json_pipeline(const struct pipeline_spec *spec)
{
    json_t *root = json_object(), *categorical = json_object(), *stats = json_array(),
           *columns = json_array();
    if (!root || !categorical || !stats || !columns)
        goto fail;
    for (size_t j = 0; j < spec->ncategorical; j++)
        if (artefact_json_set_new(categorical, spec->categorical[j],
                                  artefact_json_strings((const char *const *)spec->categories[j],
                                                        spec->ncategories[j])) != 0)
            goto fail;
    for (unsigned bit = 1; bit <= PIPELINE_STAT_COUNT; bit <<= 1)
        if ((spec->window_stats & bit) &&
            json_array_append_new(stats, json_string(pipeline_stat_name(bit))) != 0)
            goto fail;
    for (size_t i = 0; i < spec->nwindow_columns; i++)
        if (json_array_append_new(columns,
                                  artefact_json_string(spec->numeric[spec->window_columns[i]])))
            goto fail;
    if (json_object_set_new(
            root, "numeric",
            artefact_json_strings((const char *const *)spec->numeric, spec->nnumeric)) != 0 ||
        json_object_set(root, "categorical", categorical) != 0 ||
        json_object_set_new(root, "impute", json_string(artefact_impute_names[spec->impute])) ||
        json_object_set_new(root, "window", json_integer((json_int_t)spec->window)) != 0 ||
        json_object_set(root, "window_stats", stats) != 0 ||
        json_object_set(root, "window_columns", columns) != 0 ||
        json_object_set_new(root, "scale", json_string(artefact_scale_names[spec->scale])) != 0)
        goto fail;
    json_decref(categorical);
    json_decref(stats);
    json_decref(columns);
    return root;

fail:
    json_decref(columns);
    json_decref(stats);
    json_decref(categorical);
    json_decref(root);
    return NULL;
}

int artefact_manifest_json(const struct artefact *artefact, char **json_out)
{
    const struct artefact *a = artefact;
    const struct linear_model *m = &a->model;
    char when[64];
    int rc = TB_NOMEM;
    json_t *root = json_object(), *features = json_array(), *model = json_object();
    *json_out = NULL;
    if (!root || !features || !model)
        goto done;
    for (size_t i = 0; i < pipeline_nfeatures(a->pipeline); i++)
        if (json_array_append_new(features,
                                  artefact_json_string(pipeline_feature_name(a->pipeline, i))))
            goto done;
    if (json_object_set_new(model, "kind", json_string(linear_kind_name(m->kind))) != 0 ||
        json_object_set_new(model, "classes", artefact_json_numbers(m->classes, m->nclasses)) ||
        json_object_set_new(model, "intercepts",
                            artefact_json_numbers(m->intercept, m->noutputs)) != 0 ||
        json_object_set_new(model, "n_coefficients",
                            json_integer((json_int_t)m->noutputs * (json_int_t)m->nfeatures)) != 0)
        goto done;

    artefact_format_time(a->created_at_ms, when, sizeof(when));
    if (json_object_set_new(root, "name", artefact_json_string(a->name)) != 0 ||
        json_object_set_new(root, "version", json_integer(a->version)) != 0 ||
        json_object_set_new(root, "created_at", json_string(when)) != 0 ||
        json_object_set_new(root, "created_at_ms", json_integer(a->created_at_ms)) != 0 ||
        json_object_set_new(root, "trainer", artefact_json_string(a->trainer)) != 0 ||
        json_object_set_new(root, "hyperparameters", artefact_json_params(&a->hyperparameters)) !=
            0 ||
        json_object_set_new(root, "metrics", artefact_json_params(&a->metrics)) != 0 ||
        json_object_set(root, "features", features) != 0 ||
        json_object_set_new(root, "label", artefact_json_string(a->label)) != 0 ||
        json_object_set_new(root, "input_schema_fingerprint",
                            artefact_json_string(a->input_schema_fingerprint)) != 0 ||
        json_object_set_new(root, "checksum", json_string(a->checksum)) != 0 ||
        json_object_set_new(root, "pipeline", artefact_json_pipeline(pipeline_spec(a->pipeline))) ||
        json_object_set(root, "model", model) != 0)
        goto done;

    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (*json_out)
        rc = TB_OK;

done:
    json_decref(model);
    json_decref(features);
    json_decref(root);
    return rc;
}
