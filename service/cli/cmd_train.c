/* `tributary train`: fit a pipeline and a model to a file, evaluate, write and publish. */
#include "service/base/error.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/offline/trainer.h"
#include "service/registry/artefact.h"

#include <stdio.h>

static const struct cli_option train_options[] = {
    {"input", "FILE", "train.input", "CSV or Avro container file to train on"},
    {"output", "FILE", "train.output", "artefact file to write"},
    {"publish", "REGISTRY", "registry.directory",
     "publish the next version into this registry directory"},
    {"model", "KIND", "train.model", "ridge, logistic or softmax"},
    {"l2", "L2", "train.l2", "L2 penalty on the coefficients (not the intercepts)"},
    {"name", "NAME", "train.model_name", "model name recorded in the artefact"},
    {"version", "N", "train.model_version", "model version recorded (the registry assigns one)"},
};

static const struct cli_command train_command = {
    "train",
    "tributary train -c FILE [OPTIONS]",
    "Fits the pipeline (pipeline.*: imputation, per-key rolling windows, one-hot\n"
    "encoding, scaling) and the model (train.model: ridge regression, binary\n"
    "logistic or multinomial softmax regression, L2 on the coefficients) to\n"
    "train.input, on every labelled row or on the training side of train.split.\n"
    "Records in the manifest the metrics on the training rows, the holdout, the\n"
    "cross-validation folds (train.folds) and train.test_input. Writes the\n"
    "artefact to train.output, and with --publish to the registry directory as\n"
    "its next version (and to registry.topic when kafka.bootstrap.servers is set).",
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
    int status = 0, rc = TB_OK;
    struct trainer_summary summary;
    struct artefact *artefact = trainer_run(cfg, &summary, &rc, err, sizeof err);
    if (!artefact) {
        fprintf(stderr, "tributary train: %s\n", err);
        status = rc == TB_CONFIG ? 2 : 1;
    } else {
        printf("train: %s version %d (%s, %zu features) fitted on %zu rows of %s; %zu held out, "
               "%zu skipped\n",
               artefact_name(artefact), (int)artefact_version(artefact),
               artefact_model_kind(artefact), artefact_nfeatures(artefact), summary.rows,
               cfg->train.input, summary.held_out, summary.skipped);
        size_t count = 0;
        const struct artefact_param *metrics = artefact_metrics(artefact, &count);
        for (size_t i = 0; i < count; i++)
            printf("  %-24s %.6g\n", metrics[i].name, metrics[i].value);
        if (cfg->train.output[0])
            printf("wrote %s\n", cfg->train.output);
        if (summary.published)
            printf("published %s version %d to %s\n", artefact_name(artefact),
                   (int)summary.published, cfg->registry.directory);
        artefact_destroy(artefact);
    }
    config_destroy(cfg);
    return status;
}
