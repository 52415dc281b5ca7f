/* `tributary train`: ridge regression from a file into a model artefact. */
#include "service/cli.h"
#include "service/commands.h"
#include "service/error.h"
#include "service/trainer.h"

#include <stdio.h>

static const struct cli_option train_options[] = {
    {"input", "FILE", "train.input", "CSV or Avro container file to train on"},
    {"output", "FILE", "train.output", "artefact file to write"},
    {"l2", "ALPHA", "train.l2", "L2 penalty on the coefficients (not the intercept)"},
    {"name", "NAME", "train.model_name", "model name recorded in the artefact"},
    {"version", "N", "train.model_version", "model version recorded in the artefact"},
};

static const struct cli_command train_command = {
    "train",
    "tributary train -c FILE [OPTIONS]",
    "Fits ridge regression (an unpenalised intercept and L2 on the coefficients,\n"
    "solved by Cholesky on the centred Gram matrix) to the input.features and the\n"
    "label of train.input, and writes a model artefact (an Avro container with the\n"
    "manifest, config/schemas/model.avsc) atomically to train.output. Rows whose\n"
    "features or label are missing or not finite are left out and counted.",
    train_options,
    sizeof train_options / sizeof train_options[0],
    0,
    0,
};

int cmd_train(int argc, char **argv)
{
    int first_arg, exit_code;
    struct config *cfg = cli_start(argc, argv, &train_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024];
    int status = 0;
    struct trainer_summary summary;
    int rc = trainer_run(cfg, &summary, err, sizeof err);
    if (rc != TB_OK) {
        fprintf(stderr, "tributary train: %s\n", err);
        status = rc == TB_CONFIG ? 2 : 1;
    } else {
        printf("train: %s version %d from %zu rows of %s (%zu skipped): training RMSE %.4g, "
               "MAE %.4g, R2 %.4f -> %s\n",
               cfg->train.model_name, cfg->train.model_version, summary.rows, cfg->train.input,
               summary.skipped, summary.fit.rmse, summary.fit.mae, summary.fit.r2,
               cfg->train.output);
    }
    config_destroy(cfg);
    return status;
}
