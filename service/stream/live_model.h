/* Models as the stream workers use them: an artefact with the decode plan of its inputs for
 * the service's input schema, shared by reference count, and the slot through which a new
 * version reaches every worker at its next batch boundary. */
#ifndef TRIBUTARY_LIVE_MODEL_H
#define TRIBUTARY_LIVE_MODEL_H

#include "connectors/avro/avro_plan.h"
#include "models/online.h"
#include "service/config/config.h"
#include "service/registry/artefact.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Immutable once loaded, apart from the reference count. */
struct live_model {
    atomic_int refs;
    struct artefact *artefact;
    /* Decodes the pipeline's inputs (numeric, then categorical as codes of the pipeline's
     * categories) and, when the service has a label, the label last. */
    struct avro_plan *plan;
    /* The per-key online model of online.*, made for this version's features; NULL when
     * online.model is none. */
    struct online_model *online;
    bool residual;    /* the online model learns from the registry model's output as offset */
    char version[16]; /* the version as a header value */
};

/* Checks that the artefact can score records of schema_json (every pipeline input is a field
 * of a fitting type; cfg->input.label, when not "", too) and builds the plan. Numeric inputs are
 * required unless the pipeline imputes them: without imputation a record with a missing one
 * is dead-lettered. Builds the online model of cfg->online for the pipeline's features: refused
 * when its parameters are, when online.indicator is not one of the features (holt), and, with
 * online.residual, when the registry model is not what the online model refines (rls and ftrl
 * refine a ridge model, ftrl_logistic a binary logistic one); ftrl_logistic always needs a
 * binary logistic registry model, whose classes it predicts. Takes the artefact in every case.
 * Returns the model with one reference, or NULL with err saying why it does not fit. */
struct live_model *live_model_load(struct artefact *artefact, const char *schema_json,
                                   const struct config *cfg, char *err, size_t errsz);

/* The offset model->online starts from for one row, given the registry model's outputs for it
 * (its value, or its class probabilities): with online.residual the value, or for a logistic
 * model the logit of its probability (clamped to stay finite); 0 otherwise. */
double live_model_offset(const struct live_model *model, const double *outputs);

/* Puts the online model's prediction p for one row in place of the registry model's: the
 * decided value, or for ftrl_logistic the probabilities [1 - p, p] in outputs and the class. */
void live_model_apply_online(const struct live_model *model, double p, double *outputs,
                             double *decided);

/* Takes one more reference; returns model. */
struct live_model *live_model_hold(struct live_model *model);

/* Drops a reference, freeing the model with the last one; NULL is a no-op. */
void live_model_release(struct live_model *model);

/* The model being served, swapped as a whole. Thread-safe. */
struct live_model_slot {
    pthread_mutex_t lock;
    struct live_model *current; /* the slot's reference */
    atomic_uint generation;     /* bumped by every swap */
};

/* Starts the slot with model (its reference passes to the slot). */
void live_model_slot_init(struct live_model_slot *slot, struct live_model *model);

/* Makes model the current one if its version is above the current one's, taking its
 * reference; returns true then. Otherwise releases it and returns false: versions never go
 * backwards. */
bool live_model_slot_swap(struct live_model_slot *slot, struct live_model *model);

/* Returns a new reference to the current model and sets *generation to the slot's. A worker
 * calls it again only when live_model_slot_changed says so, which costs one atomic load. */
struct live_model *live_model_slot_acquire(struct live_model_slot *slot, unsigned *generation);

/* Whether the slot has swapped since the acquire that gave generation. */
bool live_model_slot_changed(struct live_model_slot *slot, unsigned generation);

/* Releases the slot's model and the lock; NULL is a no-op. */
void live_model_slot_destroy(struct live_model_slot *slot);

#endif
