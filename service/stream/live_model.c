/* Models as the stream workers use them: loaded, checked against the input schema, swapped. */
#include "service/stream/live_model.h"

#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The online model of cfg->online for the artefact's features, in *out (NULL for none). */
static int live_model_online(const struct artefact *artefact, const struct config *cfg,
                             struct online_model **out, char *err, size_t errsz)
{
    const struct online_config *oc = &cfg->online;
    *out = NULL;
    if (strcmp(oc->model, "none") == 0)
        return TB_OK;
    struct online_params p;
    enum online_kind kind;
    if (online_kind_parse(oc->model, &kind) != TB_OK)
        return tb_fail(err, errsz, TB_CONFIG, "online.model: unknown model '%s'", oc->model);
    online_params_default(&p, kind);
    p.forgetting = oc->forgetting;
    p.delta = oc->delta;
    p.alpha = oc->alpha;
    p.beta = oc->beta;
    p.l1 = oc->l1;
    p.l2 = oc->l2;
    p.stat = strcmp(oc->stat, "ewma") == 0 ? ONLINE_EWMA : ONLINE_WELFORD;
    p.ewma_alpha = oc->ewma_alpha;
    p.score = strcmp(oc->score, "zmax") == 0 ? ONLINE_SCORE_ZMAX : ONLINE_SCORE_MAHALANOBIS;
    p.warmup = (size_t)(oc->warmup > 0 ? oc->warmup : 1);
    p.level_alpha = oc->level_alpha;
    p.trend_beta = oc->trend_beta;
    p.threshold = oc->threshold;
    p.direction = strcmp(oc->direction, "down") == 0 ? -1 : 1;
    p.horizon = oc->horizon;
    const struct pipeline *pipeline = artefact_pipeline(artefact);
    size_t nfeatures = pipeline_nfeatures(pipeline);
    if (kind == ONLINE_HOLT) {
        size_t j = 0;
        while (j < nfeatures && strcmp(pipeline_feature_name(pipeline, j), oc->indicator) != 0)
            j++;
        if (j == nfeatures)
            return tb_fail(err, errsz, TB_CONFIG,
                           "online.indicator: '%s' is not a feature of model '%s' version %d",
                           oc->indicator, artefact_name(artefact), (int)artefact_version(artefact));
        p.indicator = j;
    }
    const struct linear_model *m = artefact_model(artefact);
    bool logistic = m->kind == LINEAR_LOGISTIC;
    if (kind == ONLINE_FTRL_LOGISTIC && !logistic)
        return tb_fail(err, errsz, TB_CONFIG,
                       "online.model: ftrl_logistic predicts the classes of a binary logistic "
                       "model, and model '%s' is %s",
                       artefact_name(artefact), linear_kind_name(m->kind));
    if (oc->residual && (kind == ONLINE_RLS || kind == ONLINE_FTRL_LINEAR) &&
        m->kind != LINEAR_RIDGE)
        return tb_fail(err, errsz, TB_CONFIG,
                       "online.residual: %s learns a regression model's residual, and model '%s' "
                       "is %s (set online.residual: false to learn alone)",
                       oc->model, artefact_name(artefact), linear_kind_name(m->kind));
    *out = online_new(&p, nfeatures, err, errsz);
    return *out ? TB_OK : TB_CONFIG;
}

struct live_model *live_model_load(struct artefact *artefact, const char *schema_json,
                                   const struct config *cfg, char *err, size_t errsz)
{
    const char *label = cfg->input.label;
    struct online_model *online = NULL;
    if (live_model_online(artefact, cfg, &online, err, errsz) != TB_OK)
        goto fail;
    const struct pipeline_spec *spec = pipeline_spec(artefact_pipeline(artefact));
    size_t nfields = spec->nnumeric + spec->ncategorical + (label[0] ? 1 : 0), k = 0;
    struct avro_plan_field *fields = mem_calloc(nfields ? nfields : 1, sizeof *fields);
    for (size_t i = 0; i < spec->nnumeric; i++)
        fields[k++] = (struct avro_plan_field){.name = spec->numeric[i],
                                               .required = spec->impute == PIPELINE_IMPUTE_NONE};
    for (size_t j = 0; j < spec->ncategorical; j++)
        fields[k++] = (struct avro_plan_field){
            .name = spec->categorical[j],
            .categorical = true,
            .categories = (const char *const *)spec->categories[j],
            .ncategories = spec->ncategories[j],
        };
    if (label[0])
        fields[k++] = (struct avro_plan_field){.name = label};
    struct avro_plan *plan = avro_plan_new_fields(schema_json, fields, nfields, err, errsz);
    free(fields);
    if (!plan)
        goto fail;
    struct live_model *model = mem_calloc(1, sizeof *model);
    atomic_init(&model->refs, 1);
    model->artefact = artefact;
    model->plan = plan;
    model->online = online;
    model->residual = cfg->online.residual;
    snprintf(model->version, sizeof model->version, "%d", (int)artefact_version(artefact));
    return model;

fail:
    online_destroy(online);
    artefact_destroy(artefact);
    return NULL;
}

double live_model_offset(const struct live_model *model, const double *outputs)
{
    if (!model->online || !model->residual)
        return 0;
    if (artefact_model(model->artefact)->kind != LINEAR_LOGISTIC)
        return outputs[0];
    double p = fmin(fmax(outputs[1], 1e-15), 1.0 - 1e-15);
    return log(p) - log1p(-p);
}

void live_model_apply_online(const struct live_model *model, double p, double *outputs,
                             double *decided)
{
    if (!online_classifier(model->online)) {
        *decided = p;
        return;
    }
    const struct linear_model *m = artefact_model(model->artefact);
    outputs[0] = 1.0 - p;
    outputs[1] = p;
    *decided = p >= 0.5 ? m->classes[1] : m->classes[0];
}

struct live_model *live_model_hold(struct live_model *model)
{
    atomic_fetch_add(&model->refs, 1);
    return model;
}

void live_model_release(struct live_model *model)
{
    if (!model || atomic_fetch_sub(&model->refs, 1) != 1)
        return;
    avro_plan_destroy(model->plan);
    online_destroy(model->online);
    artefact_destroy(model->artefact);
    free(model);
}

void live_model_slot_init(struct live_model_slot *slot, struct live_model *model)
{
    pthread_mutex_init(&slot->lock, NULL);
    slot->current = model;
    atomic_init(&slot->generation, 0);
}

bool live_model_slot_swap(struct live_model_slot *slot, struct live_model *model)
{
    pthread_mutex_lock(&slot->lock);
    bool newer = artefact_version(model->artefact) > artefact_version(slot->current->artefact);
    struct live_model *old = newer ? slot->current : model;
    if (newer) {
        slot->current = model;
        atomic_fetch_add(&slot->generation, 1);
    }
    pthread_mutex_unlock(&slot->lock);
    live_model_release(old);
    return newer;
}

struct live_model *live_model_slot_acquire(struct live_model_slot *slot, unsigned *generation)
{
    pthread_mutex_lock(&slot->lock);
    struct live_model *model = live_model_hold(slot->current);
    *generation = atomic_load(&slot->generation);
    pthread_mutex_unlock(&slot->lock);
    return model;
}

bool live_model_slot_changed(struct live_model_slot *slot, unsigned generation)
{
    return atomic_load(&slot->generation) != generation;
}

void live_model_slot_destroy(struct live_model_slot *slot)
{
    if (!slot)
        return;
    live_model_release(slot->current);
    slot->current = NULL;
    pthread_mutex_destroy(&slot->lock);
}
