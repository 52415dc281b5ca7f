/* `tributary score`: batch scoring of a file with a model artefact, through the same pipeline
 * code as serve. */
#include "connectors/avro/avro_wire.h"
#include "connectors/avro/prediction.h"
#include "models/linear.h"
#include "models/metrics.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/offline/dataset.h"
#include "service/registry/artefact.h"

#include <assert.h>
#include <avro.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct cli_option score_options[] = {
    {"model", "FILE", "serve.model", "model artefact to score with"},
};

static const struct cli_command score_command = {
    "score",
    "tributary score [-c FILE] --model FILE INPUT [OUTPUT.csv|OUTPUT.avro]",
    "Scores every row of INPUT (CSV or Avro container, read as train.* describes)\n"
    "with the artefact's pipeline and model, in file order, the same way serve\n"
    "scores a stream (per-key windows follow input.key). Writes CSV (row, key,\n"
    "prediction, one p_<class> column per class for a classifier, label) to OUTPUT\n"
    "or standard output, or, for OUTPUT.avro, an Avro container of\n"
    "config/schemas/prediction.avsc records (event_time is input.time's value,\n"
    "source_offset the row). With a label, the metrics go to\n"
    "stderr. Without imputation, rows with a missing input are skipped and counted.",
    score_options,
    sizeof score_options / sizeof score_options[0],
    1,
    2,
};

struct score_output {
    FILE *csv;
    avro_file_writer_t avro;
    avro_schema_t schema;
    struct avro_wire_buf buf;
};

static bool score_is_avro(const char *path)
{
    size_t len = path ? strlen(path) : 0;
    return len > 5 && strcmp(path + len - 5, ".avro") == 0;
}

static int score_open(const char *path, struct score_output *out, char *err, size_t errsz)
{
    if (!score_is_avro(path)) {
        out->csv = path ? fopen(path, "w") : stdout;
        if (!out->csv)
            return tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
        return TB_OK;
    }
    avro_schema_t parsed = NULL;
    const char *json = prediction_schema_json();
    if (avro_schema_from_json_length(json, strlen(json), &parsed) != 0)
        return tb_fail(err, errsz, TB_SCHEMA, "prediction.avsc: %s", avro_strerror());
    out->schema = parsed;
    remove(path);
    if (avro_file_writer_create_with_codec(path, out->schema, &out->avro, "deflate", 0) != 0) {
        out->avro = NULL;
        return tb_fail(err, errsz, TB_IO, "%s: %s", path, avro_strerror());
    }
    return TB_OK;
}

static int score_close(struct score_output *out, const char *path, char *err, size_t errsz)
{
    int rc = TB_OK;
    if (out->csv) {
        if (fflush(out->csv) != 0 || ferror(out->csv))
            rc = tb_fail(err, errsz, TB_IO, "%s: write error", path ? path : "stdout");
        if (out->csv != stdout)
            fclose(out->csv);
    }
    if (out->avro && avro_file_writer_close(out->avro) != 0)
        rc = tb_fail(err, errsz, TB_IO, "%s: %s", path, avro_strerror());
    if (out->schema)
        avro_schema_decref(out->schema);
    free(out->buf.data);
    return rc;
}

/* Writes ",field", quoted as CSV requires when it holds a comma, a quote or a line break. */
static void score_csv_field(FILE *out, const char *field)
{
    if (!strpbrk(field, ",\"\r\n")) {
        fprintf(out, ",%s", field);
        return;
    }
    fputs(",\"", out);
    for (const char *c = field; *c; c++) {
        if (*c == '"')
            fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static void score_csv_header(FILE *out, const struct dataset *ds, const struct linear_model *m,
                             bool label)
{
    fputs(ds->keys ? "row,key,prediction" : "row,prediction", out);
    for (size_t k = 0; k < m->nclasses; k++)
        fprintf(out, ",p_%.17g", m->classes[k]);
    fputs(label ? ",label\n" : "\n", out);
}

/* Writes one scored row, with the model's nclasses probabilities (NULL for a regression);
 * TB_OK or TB_IO. */
static int score_row(struct score_output *out, const struct dataset *ds, const struct artefact *a,
                     size_t r, size_t row, double decided, const double *probabilities,
                     double label, char *err, size_t errsz)
{
    const struct linear_model *m = artefact_model(a);
    assert(probabilities || m->nclasses == 0);
    if (out->csv) {
        fprintf(out->csv, "%zu", row);
        if (ds->keys)
            score_csv_field(out->csv, ds->keys[r]);
        fprintf(out->csv, ",%.17g", decided);
        for (size_t k = 0; k < m->nclasses; k++)
            fprintf(out->csv, ",%.17g", probabilities[k]);
        if (ds->labels)
            fprintf(out->csv, ",%.17g", label);
        fputc('\n', out->csv);
        return TB_OK;
    }
    const char *name = artefact_name(a);
    struct prediction p = {
        .key = ds->keys ? ds->keys[r] : "",
        .key_len = ds->keys ? ds->key_lens[r] : 0,
        .event_time_ms = ds->times && isfinite(ds->times[r]) ? (int64_t)ds->times[r] : 0,
        .value = decided,
        .label = ds->labels ? label : NAN,
        .model = name,
        .model_len = strlen(name),
        .model_version = artefact_version(a),
        .source_partition = -1,
        .source_offset = (int64_t)row,
        .probabilities = probabilities,
        .nprobabilities = m->nclasses,
    };
    avro_wire_buf_reset(&out->buf);
    prediction_encode(&p, &out->buf);
    if (avro_file_writer_append_encoded(out->avro, out->buf.data, (int64_t)out->buf.len) != 0)
        return tb_fail(err, errsz, TB_IO, "cannot append to the Avro output: %s", avro_strerror());
    return TB_OK;
}

static void score_report(const struct linear_model *m, const double *y, const double *predicted,
                         const double *decided, size_t n)
{
    if (m->kind == LINEAR_RIDGE) {
        struct metrics_regression r;
        metrics_regression_compute(y, decided, n, &r);
        fprintf(stderr, "score: %zu rows, RMSE %.4f, MAE %.4f, R2 %.4f\n", r.count, r.rmse, r.mae,
                r.r2);
        return;
    }
    struct metrics_classification c;
    metrics_classification_compute(y, predicted, m->classes, m->nclasses, n, &c);
    fprintf(stderr,
            "score: %zu rows, accuracy %.4f, precision %.4f, recall %.4f, F1 %.4f, AUC %.4f, "
            "log-loss %.4f\n",
            c.count, c.accuracy, c.precision, c.recall, c.f1, c.auc, c.log_loss);
}

static int score_run(const struct config *cfg, const char *input, const char *output, char *err,
                     size_t errsz)
{
    struct dataset ds = {0};
    struct score_output out = {0};
    double *x = NULL, *predicted = NULL, *decided = NULL, *y = NULL;
    int rc = TB_OK;
    struct artefact *a = artefact_read(cfg->serve.model, err, errsz);
    if (!a)
        return TB_ARTEFACT;
    const struct pipeline *pipeline = artefact_pipeline(a);
    const struct pipeline_spec *spec = pipeline_spec(pipeline);
    const struct linear_model *m = artefact_model(a);
    struct dataset_request request = {
        .numeric = (const char *const *)spec->numeric,
        .nnumeric = spec->nnumeric,
        .categorical = (const char *const *)spec->categorical,
        .ncategorical = spec->ncategorical,
        .want_label = dataset_has_label(cfg),
    };
    rc = dataset_load(cfg, input, &request, &ds, err, errsz);
    if (rc != TB_OK)
        goto done;
    size_t n = ds.nrows, width = linear_width(m), kept = 0, skipped = 0;
    size_t p = pipeline_nfeatures(pipeline), w = ds.nnumeric + ds.ncategorical;
    /* Rows with a missing input the pipeline does not impute are skipped, as serve
     * dead-letters them; the rest keep their row numbers. */
    size_t *row_of = mem_alloc((n ? n : 1) * sizeof *row_of);
    for (size_t r = 0; r < n; r++) {
        bool complete = true;
        for (size_t c = 0; spec->impute == PIPELINE_IMPUTE_NONE && complete && c < ds.nnumeric; c++)
            complete = isfinite(ds.inputs[r * w + c]);
        if (!complete) {
            skipped++;
            continue;
        }
        memmove(&ds.inputs[kept * w], &ds.inputs[r * w], w * sizeof(double));
        if (ds.keys) {
            ds.keys[kept] = ds.keys[r];
            ds.key_lens[kept] = ds.key_lens[r];
        }
        if (ds.times)
            ds.times[kept] = ds.times[r];
        if (ds.labels)
            ds.labels[kept] = ds.labels[r];
        row_of[kept++] = r;
    }
    ds.nrows = n = kept;
    x = mem_alloc((n ? n : 1) * p * sizeof *x);
    predicted = mem_alloc((n ? n : 1) * width * sizeof *predicted);
    decided = mem_alloc((n ? n : 1) * sizeof *decided);
    dataset_features(&ds, pipeline, x);
    linear_predict(m, x, n, predicted);
    linear_decide(m, predicted, n, decided);

    rc = score_open(output, &out, err, errsz);
    if (rc == TB_OK && out.csv)
        score_csv_header(out.csv, &ds, m, ds.labels != NULL);
    for (size_t r = 0; rc == TB_OK && r < n; r++)
        rc = score_row(&out, &ds, a, r, row_of[r], decided[r],
                       m->nclasses ? &predicted[r * width] : NULL, ds.labels ? ds.labels[r] : NAN,
                       err, errsz);
    int close_rc = score_close(&out, output, err, errsz);
    if (rc == TB_OK)
        rc = close_rc;
    free(row_of);
    if (rc != TB_OK)
        goto done;
    if (skipped)
        fprintf(stderr,
                "score: %zu rows skipped: a missing input, and the pipeline does not "
                "impute\n",
                skipped);
    if (ds.labels) {
        /* Only rows with a label count. */
        size_t nl = 0;
        y = mem_alloc((n ? n : 1) * sizeof *y);
        for (size_t r = 0; r < n; r++) {
            if (!isfinite(ds.labels[r]))
                continue;
            y[nl] = ds.labels[r];
            decided[nl] = decided[r];
            memmove(&predicted[nl * width], &predicted[r * width], width * sizeof(double));
            nl++;
        }
        score_report(m, y, predicted, decided, nl);
    }

done:
    free(y);
    free(decided);
    free(predicted);
    free(x);
    dataset_free(&ds);
    artefact_destroy(a);
    return rc;
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
