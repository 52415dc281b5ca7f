/* The artefact value: building one from a fitted pipeline and model, its manifest, accessors. */
#include "service/registry/artefact.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/registry/artefact_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const artefact_impute_names[3] = {"none", "mean", "constant"};
const char *const artefact_scale_names[3] = {"none", "standard", "minmax"};

void artefact_params_append(struct artefact_params *params, const char *name, double value)
{
    mem_grow((void **)&params->items, &params->cap, params->count + 1, sizeof(*params->items));
    params->items[params->count++] = (struct artefact_param){mem_strdup(name), value};
}

static void artefact_params_set(struct artefact_params *params, const char *name, double value)
{
    for (size_t i = 0; i < params->count; i++) {
        if (strcmp(params->items[i].name, name) == 0) {
            params->items[i].value = value;
            return;
        }
    }
    artefact_params_append(params, name, value);
}

static void artefact_params_release(struct artefact_params *params)
{
    for (size_t i = 0; i < params->count; i++)
        free((char *)params->items[i].name);
    free(params->items);
}

void artefact_destroy(struct artefact *artefact)
{
    if (!artefact)
        return;
    linear_model_free(&artefact->model);
    pipeline_destroy(artefact->pipeline);
    artefact_params_release(&artefact->metrics);
    artefact_params_release(&artefact->hyperparameters);
    free(artefact->input_schema_fingerprint);
    free(artefact->label);
    free(artefact->trainer);
    free(artefact->name);
    free(artefact);
}

int artefact_check_model(const char *origin, const struct linear_model *m,
                         const struct pipeline *pipeline, char *err, size_t errsz)
{
    size_t nfeatures = pipeline_nfeatures(pipeline);
    size_t want_classes = m->kind == LINEAR_RIDGE      ? 0
                          : m->kind == LINEAR_LOGISTIC ? 2
                                                       : m->nclasses;
    size_t want_outputs = m->kind == LINEAR_SOFTMAX ? m->nclasses : 1;
    if (m->nclasses != want_classes || (m->kind == LINEAR_SOFTMAX && m->nclasses < 2))
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: a %s model with %zu classes", origin,
                       linear_kind_name(m->kind), m->nclasses);
    if (m->noutputs != want_outputs || m->nfeatures != nfeatures)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: a model of %zu outputs over %zu features does not fit %zu outputs of "
                       "the pipeline's %zu features",
                       origin, m->noutputs, m->nfeatures, want_outputs, nfeatures);
    for (size_t k = 0; k < m->nclasses; k++)
        if (!isfinite(m->classes[k]) || (k > 0 && !(m->classes[k] > m->classes[k - 1])))
            return tb_fail(err, errsz, TB_ARTEFACT,
                           "%s: classes are not finite and strictly ascending", origin);
    for (size_t k = 0; k < m->noutputs; k++)
        if (!isfinite(m->intercept[k]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: intercept %zu is not finite", origin, k);
    for (size_t i = 0; i < m->noutputs * nfeatures; i++)
        if (!isfinite(m->coef[i]))
            return tb_fail(err, errsz, TB_ARTEFACT, "%s: coefficient %zu (%s) is not finite",
                           origin, i, pipeline_feature_name(pipeline, i % nfeatures));
    return TB_OK;
}

struct artefact *artefact_new(const struct artefact_info *info, const struct pipeline *pipeline,
                              const struct linear_model *model, char *err, size_t errsz)
{
    struct artefact *a = NULL;

    if (!info->name || !info->name[0]) {
        tb_fail(err, errsz, TB_USAGE, "an artefact needs a name");
        goto fail;
    }
    if (!info->label || !info->label[0]) {
        tb_fail(err, errsz, TB_USAGE, "artefact %s needs a label", info->name);
        goto fail;
    }
    if (model->nfeatures != pipeline_nfeatures(pipeline) || !model->coef || !model->intercept) {
        tb_fail(err, errsz, TB_USAGE,
                "artefact %s: the model takes %zu features but the pipeline "
                "makes %zu",
                info->name, model->nfeatures, pipeline_nfeatures(pipeline));
        goto fail;
    }
    if (artefact_check_model(info->name, model, pipeline, err, errsz) != TB_OK)
        goto fail;

    a = mem_calloc(1, sizeof(*a));
    a->pipeline = pipeline_new(pipeline_spec(pipeline), err, errsz);
    if (!a->pipeline)
        goto fail;
    a->name = mem_strdup(info->name);
    a->version = info->version;
    a->created_at_ms = info->created_at_ms ? info->created_at_ms : clock_wall_ms();
    a->trainer = mem_strdup(info->trainer ? info->trainer : linear_kind_name(model->kind));
    a->label = mem_strdup(info->label);
    a->input_schema_fingerprint =
        mem_strdup(info->input_schema_fingerprint ? info->input_schema_fingerprint : "");
    linear_model_copy(&a->model, model);

    if (artefact_content_checksum(a->pipeline, &a->model, a->checksum, err, errsz) != TB_OK)
        goto fail;
    return a;

fail:
    artefact_destroy(a);
    return NULL;
}

void artefact_set_version(struct artefact *artefact, int32_t version)
{
    artefact->version = version;
}

void artefact_set_hyperparameter(struct artefact *artefact, const char *name, double value)
{
    artefact_params_set(&artefact->hyperparameters, name, value);
}

void artefact_set_metric(struct artefact *artefact, const char *name, double value)
{
    artefact_params_set(&artefact->metrics, name, value);
}

const char *artefact_name(const struct artefact *artefact)
{
    return artefact->name;
}

int32_t artefact_version(const struct artefact *artefact)
{
    return artefact->version;
}

int64_t artefact_created_at_ms(const struct artefact *artefact)
{
    return artefact->created_at_ms;
}

const char *artefact_trainer(const struct artefact *artefact)
{
    return artefact->trainer;
}

const char *artefact_label(const struct artefact *artefact)
{
    return artefact->label;
}

const char *artefact_input_schema_fingerprint(const struct artefact *artefact)
{
    return artefact->input_schema_fingerprint;
}

const char *artefact_checksum(const struct artefact *artefact)
{
    return artefact->checksum;
}

const char *artefact_model_kind(const struct artefact *artefact)
{
    return linear_kind_name(artefact->model.kind);
}

size_t artefact_nfeatures(const struct artefact *artefact)
{
    return pipeline_nfeatures(artefact->pipeline);
}

const char *artefact_feature(const struct artefact *artefact, size_t i)
{
    return i < artefact_nfeatures(artefact) ? pipeline_feature_name(artefact->pipeline, i) : NULL;
}

const struct pipeline *artefact_pipeline(const struct artefact *artefact)
{
    return artefact->pipeline;
}

const struct linear_model *artefact_model(const struct artefact *artefact)
{
    return &artefact->model;
}

const struct artefact_param *artefact_hyperparameters(const struct artefact *artefact,
                                                      size_t *count)
{
    *count = artefact->hyperparameters.count;
    return artefact->hyperparameters.items;
}

const struct artefact_param *artefact_metrics(const struct artefact *artefact, size_t *count)
{
    *count = artefact->metrics.count;
    return artefact->metrics.items;
}

int artefact_param_find(const struct artefact_param *params, size_t count, const char *name,
                        double *value)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(params[i].name, name) == 0) {
            *value = params[i].value;
            return TB_OK;
        }
    }
    return TB_NOTFOUND;
}
