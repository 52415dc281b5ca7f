/* Offline training: a file in, a ridge model artefact out. */
#ifndef TRIBUTARY_TRAINER_H
#define TRIBUTARY_TRAINER_H

#include "models/metrics.h"
#include "service/config.h"

#include <stddef.h>

struct trainer_summary {
    size_t rows;                   /* rows trained on */
    size_t skipped;                /* rows left out: a feature or the label missing or not finite */
    struct metrics_regression fit; /* on the training rows */
};

/* Fits ridge regression (cfg->train.l2) to cfg->input.features and the label of
 * cfg->train.input, and writes the artefact to cfg->train.output atomically,
 * with the training metrics in its manifest. Returns TB_OK with *summary
 * filled, or an error with err. */
int trainer_run(const struct config *cfg, struct trainer_summary *summary, char *err, size_t errsz);

#endif
