/* Offline training: a file in; a fitted pipeline and model, evaluated, out as an artefact
 * written to a file and/or published to the registry and the models topic. */
#ifndef TRIBUTARY_TRAINER_H
#define TRIBUTARY_TRAINER_H

#include "service/config/config.h"
#include "service/registry/artefact.h"

#include <stddef.h>
#include <stdint.h>

struct trainer_summary {
    size_t rows;       /* rows the final model was fitted on */
    size_t skipped;    /* rows left out: no label, or a missing input without imputation */
    size_t held_out;   /* rows of the train.split holdout */
    int32_t published; /* the registry version, 0 when not published */
};

/* Fits the pipeline (pipeline.*) and the model (train.model) to train.input: on every
 * labelled row, or on the training side of train.split. Records in the manifest the metrics
 * on the training rows (train_*), on the holdout (holdout_*), over train.folds folds (cv_*,
 * the mean over folds) and on train.test_input (test_*): RMSE, MAE, R2 (and the NASA score
 * for a derived remaining-useful-life label) for ridge; accuracy, precision, recall, F1, AUC
 * and log-loss for classifiers. Writes the artefact to train.output when set, and publishes
 * it as the next version in registry.directory when set, and then to registry.topic when
 * kafka.bootstrap.servers is set too.
 * Returns the artefact (the caller frees it with artefact_destroy) with *summary filled, or
 * NULL with *status (TB_CONFIG for a configuration error) and a message in err. */
struct artefact *trainer_run(const struct config *cfg, struct trainer_summary *summary, int *status,
                             char *err, size_t errsz);

#endif
