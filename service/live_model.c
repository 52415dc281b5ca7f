/* Models as the stream workers use them: loaded, checked against the input schema, swapped. */
#include "service/live_model.h"

#include "models/pipeline.h"
#include "service/error.h"
#include "service/mem.h"

#include <stdio.h>

struct live_model *live_model_load(struct artefact *artefact, const char *schema_json,
                                   const char *label, char *err, size_t errsz)
{
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
    if (!plan) {
        artefact_destroy(artefact);
        return NULL;
    }
    struct live_model *model = mem_calloc(1, sizeof *model);
    atomic_init(&model->refs, 1);
    model->artefact = artefact;
    model->plan = plan;
    snprintf(model->version, sizeof model->version, "%d", (int)artefact_version(artefact));
    return model;
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
    live_model_release(slot->current);
    slot->current = NULL;
    pthread_mutex_destroy(&slot->lock);
}
