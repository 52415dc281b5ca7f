/* `tributary score`: batch scoring of a file with a model artefact. */
#include "models/artefact.h"
#include "models/metrics.h"
#include "models/ridge.h"
#include "service/cli.h"
#include "service/commands.h"
#include "service/dataset.h"
#include "service/error.h"
#include "service/mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct cli_option score_options[] = {
    {"model", "FILE", "serve.model", "model artefact to score with"},
};

static const struct cli_command score_command = {
    "score",
    "tributary score [-c FILE] --model FILE INPUT [OUTPUT.csv]",
    "Scores every row of INPUT (CSV or Avro container, read as train.* describes)\n"
    "with the model, the same way serve scores a stream, and writes CSV with\n"
    "columns row,prediction and, when the configuration names a label, label;\n"
    "to OUTPUT or standard output. With a label, RMSE, MAE and R2 go to stderr.",
    score_options,
    sizeof score_options / sizeof score_options[0],
    1,
    2,
};

static int score_run(const struct config *cfg, const char *input, const char *output, char *err,
                     size_t errsz)
{
    int status = TB_OK;
    struct dataset ds = {0};
    double *scores = NULL;
    const char **features = NULL;
    FILE *out = NULL;
    struct artefact *model = artefact_read(cfg->serve.model, err, errsz);
    if (!model)
        return TB_ARTEFACT;
    size_t p = artefact_nfeatures(model);
    features = mem_calloc(p, sizeof *features);
    for (size_t i = 0; i < p; i++)
        features[i] = artefact_feature(model, i);
    int want_label = cfg->input.label[0] || (cfg->train.rul_key[0] && cfg->train.rul_time[0]);
    status = dataset_load(cfg, input, features, p, want_label, &ds, err, errsz);
    if (status != TB_OK)
        goto done;
    scores = mem_alloc((ds.nrows ? ds.nrows : 1) * sizeof *scores);
    ridge_predict(artefact_ridge(model), ds.features, ds.nrows, scores);

    out = output ? fopen(output, "w") : stdout;
    if (!out) {
        status = tb_fail(err, errsz, TB_IO, "%s: %s", output, strerror(errno));
        goto done;
    }
    fprintf(out, want_label ? "row,prediction,label\n" : "row,prediction\n");
    for (size_t r = 0; r < ds.nrows; r++) {
        if (want_label)
            fprintf(out, "%zu,%.17g,%.17g\n", r, scores[r], ds.labels[r]);
        else
            fprintf(out, "%zu,%.17g\n", r, scores[r]);
    }
    if (fflush(out) != 0 || ferror(out)) {
        status = tb_fail(err, errsz, TB_IO, "%s: write error", output ? output : "stdout");
        goto done;
    }
    if (want_label) {
        struct metrics_regression m;
        metrics_regression_compute(ds.labels, scores, ds.nrows, &m);
        fprintf(stderr, "score: %zu rows, RMSE %.4f, MAE %.4f, R2 %.4f\n", m.count, m.rmse, m.mae,
                m.r2);
    }

done:
    if (out && out != stdout)
        fclose(out);
    free(scores);
    free(features);
    dataset_free(&ds);
    artefact_destroy(model);
    return status;
}

int cmd_score(int argc, char **argv)
{
    int first_arg, exit_code;
    struct config *cfg = cli_start(argc, argv, &score_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024];
    int status = 0;
    int rc;
    if (cfg->serve.model[0] == '\0') {
        fprintf(stderr, "tributary score: no model: give --model FILE (serve.model)\n");
        status = 2;
    } else if ((rc = score_run(cfg, argv[first_arg],
                               first_arg + 1 < argc ? argv[first_arg + 1] : NULL, err,
                               sizeof err)) != TB_OK) {
        fprintf(stderr, "tributary score: %s\n", err);
        status = rc == TB_CONFIG ? 2 : 1;
    }
    config_destroy(cfg);
    return status;
}
