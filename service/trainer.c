/* Offline training of a ridge model artefact from a file. */
#include "service/trainer.h"

#include "models/artefact.h"
#include "models/ridge.h"
#include "service/dataset.h"
#include "service/error.h"
#include "service/mem.h"

#include <math.h>
#include <string.h>

/* Moves the rows with finite features and label to the front; returns their count. */
static size_t trainer_keep_finite(struct dataset *ds)
{
    size_t p = ds->nfeatures, kept = 0;
    for (size_t r = 0; r < ds->nrows; r++) {
        int finite = isfinite(ds->labels[r]);
        for (size_t c = 0; finite && c < p; c++)
            finite = isfinite(ds->features[r * p + c]);
        if (!finite)
            continue;
        if (kept != r) {
            memmove(&ds->features[kept * p], &ds->features[r * p], p * sizeof *ds->features);
            ds->labels[kept] = ds->labels[r];
        }
        kept++;
    }
    return kept;
}

int trainer_run(const struct config *cfg, struct trainer_summary *summary, char *err, size_t errsz)
{
    int status = TB_OK;
    struct dataset ds = {0};
    struct ridge_stats *stats = NULL;
    struct ridge_model model = {0};
    struct artefact *artefact = NULL;
    double *fitted = NULL;

    if (cfg->train.input[0] == '\0' || cfg->train.output[0] == '\0')
        return tb_fail(err, errsz, TB_CONFIG, "train.input and train.output must be set");
    if (cfg->input.nfeatures == 0)
        return tb_fail(err, errsz, TB_CONFIG, "input.features: no features to train on");
    const char *const *features = (const char *const *)cfg->input.features;
    size_t p = cfg->input.nfeatures;
    status = dataset_load(cfg, cfg->train.input, features, p, 1, &ds, err, errsz);
    if (status != TB_OK)
        goto done;
    size_t total = ds.nrows;
    ds.nrows = trainer_keep_finite(&ds);

    stats = ridge_stats_new(p);
    if (!stats) {
        status = tb_fail(err, errsz, TB_CONFIG,
                         "input.features: %zu features is more than ridge "
                         "supports",
                         p);
        goto done;
    }
    ridge_stats_add(stats, ds.features, ds.labels, ds.nrows);
    status = ridge_fit(stats, cfg->train.l2, &model, err, errsz);
    if (status != TB_OK)
        goto done;

    fitted = mem_alloc((ds.nrows ? ds.nrows : 1) * sizeof *fitted);
    ridge_predict(&model, ds.features, ds.nrows, fitted);
    struct metrics_regression fit;
    metrics_regression_compute(ds.labels, fitted, ds.nrows, &fit);

    char label[256];
    dataset_label_name(cfg, label, sizeof label);
    struct artefact_info info = {
        .name = cfg->train.model_name,
        .version = cfg->train.model_version,
        .trainer = "ridge",
        .label = label,
        .input_schema_fingerprint = ds.fingerprint,
        .features = features,
        .nfeatures = p,
    };
    artefact = artefact_new_ridge(&info, &model, err, errsz);
    if (!artefact) {
        status = TB_ARTEFACT;
        goto done;
    }
    artefact_set_hyperparameter(artefact, "l2", cfg->train.l2);
    if (cfg->train.rul_cap > 0)
        artefact_set_hyperparameter(artefact, "rul_cap", cfg->train.rul_cap);
    artefact_set_metric(artefact, "train_rows", (double)ds.nrows);
    artefact_set_metric(artefact, "train_rows_skipped", (double)(total - ds.nrows));
    artefact_set_metric(artefact, "train_rmse", fit.rmse);
    artefact_set_metric(artefact, "train_mae", fit.mae);
    artefact_set_metric(artefact, "train_r2", fit.r2);
    status = artefact_write(artefact, cfg->train.output, err, errsz);
    if (status != TB_OK)
        goto done;
    summary->rows = ds.nrows;
    summary->skipped = total - ds.nrows;
    summary->fit = fit;

done:
    free(fitted);
    artefact_destroy(artefact);
    ridge_model_free(&model);
    ridge_stats_destroy(stats);
    dataset_free(&ds);
    return status;
}
