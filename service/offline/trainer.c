/* Offline training: fit a pipeline and a linear model to a file, evaluate them, then write and
 * publish the artefact. */
#include "service/offline/trainer.h"

#include "models/logistic.h"
#include "models/metrics.h"
#include "models/pipeline.h"
#include "models/ridge.h"
#include "models/softmax.h"
#include "models/split.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"
#include "service/offline/dataset.h"
#include "service/registry/model_topic.h"
#include "service/registry/registry.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long train waits for the models topic to acknowledge a published artefact. */
#define TRAINER_PUBLISH_TIMEOUT_MS 15000

/* Metrics of one evaluation, in the order they are recorded. */
struct trainer_scores {
    size_t count;
    const char *names[8];
    double values[8];
};

struct trainer {
    const struct config *cfg;
    struct pipeline_options options;
    enum linear_kind kind;
    bool derived; /* the label is a derived remaining useful life: report the NASA score */
    struct dataset ds;
    unsigned char *labelled; /* rows with a finite label */
};

static const char *const trainer_impute_names[] = {"none", "mean", "constant"};
static const char *const trainer_scale_names[] = {"none", "standard", "minmax"};

static int trainer_choice(const char *const *names, size_t count, const char *word)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], word) == 0)
            return (int)i;
    return 0;
}

/* The pipeline options of the configuration (config.c has already checked the choices). */
static int trainer_options(const struct config *cfg, struct pipeline_options *o, char *err,
                           size_t errsz)
{
    unsigned stats = 0;
    for (size_t i = 0; i < cfg->pipeline.nwindow_stats; i++) {
        unsigned bit = pipeline_stat_parse(cfg->pipeline.window_stats[i]);
        if (!bit)
            return tb_fail(err, errsz, TB_CONFIG,
                           "pipeline.window_stats: unknown statistic '%s' (mean, std, min, max, "
                           "slope, last, count)",
                           cfg->pipeline.window_stats[i]);
        stats |= bit;
    }
    if (cfg->pipeline.window > 0 && stats == 0)
        return tb_fail(err, errsz, TB_CONFIG, "pipeline.window_stats: empty with a window");
    if (cfg->input.nfeatures + cfg->input.ncategorical == 0)
        return tb_fail(err, errsz, TB_CONFIG,
                       "input.features and input.categorical: no inputs to train on");
    *o = (struct pipeline_options){
        .numeric = (const char *const *)cfg->input.features,
        .nnumeric = cfg->input.nfeatures,
        .categorical = (const char *const *)cfg->input.categorical,
        .ncategorical = cfg->input.ncategorical,
        .impute =
            (enum pipeline_impute)trainer_choice(trainer_impute_names, 3, cfg->pipeline.impute),
        .impute_value = cfg->pipeline.impute_value,
        .impute_indicator = cfg->pipeline.impute_indicator,
        .window = (size_t)cfg->pipeline.window,
        .window_stats = stats,
        .window_columns = (const char *const *)cfg->pipeline.window_columns,
        .nwindow_columns = cfg->pipeline.nwindow_columns,
        .scale = (enum pipeline_scale)trainer_choice(trainer_scale_names, 3, cfg->pipeline.scale),
    };
    return TB_OK;
}

/* Without imputation a record with a missing numeric input never reaches a model (serve
 * dead-letters it, so it does not join a window either): drop such rows the same way, and
 * their entries of mask and y when those are not NULL. Returns how many were dropped. */
static size_t trainer_drop_incomplete(struct dataset *ds, unsigned char *mask, double *y)
{
    size_t p = ds->nnumeric, width = p + ds->ncategorical, kept = 0;
    for (size_t r = 0; r < ds->nrows; r++) {
        bool complete = true;
        for (size_t c = 0; complete && c < p; c++)
            complete = isfinite(ds->inputs[r * width + c]);
        if (!complete)
            continue;
        if (kept != r) {
            memmove(&ds->inputs[kept * width], &ds->inputs[r * width], width * sizeof(double));
            if (ds->keys) {
                ds->keys[kept] = ds->keys[r];
                ds->key_lens[kept] = ds->key_lens[r];
            }
            if (ds->times)
                ds->times[kept] = ds->times[r];
            if (ds->labels)
                ds->labels[kept] = ds->labels[r];
            if (mask)
                mask[kept] = mask[r];
            if (y)
                y[kept] = y[r];
        }
        kept++;
    }
    size_t dropped = ds->nrows - kept;
    ds->nrows = kept;
    return dropped;
}

/* Fits the model of kind t->kind to the m rows of x and y. */
static int trainer_fit_model(const struct trainer *t, const double *x, const double *y, size_t m,
                             size_t p, struct linear_model *model, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    int iterations = 0;
    if (t->kind == LINEAR_LOGISTIC) {
        struct logistic_options o = {cfg->train.l2, cfg->train.tol, cfg->train.max_iter};
        return logistic_fit(x, y, m, p, &o, model, &iterations, err, errsz);
    }
    if (t->kind == LINEAR_SOFTMAX) {
        struct softmax_options o = {cfg->train.l2, cfg->train.tol, cfg->train.max_iter};
        return softmax_fit(x, y, m, p, &o, model, &iterations, err, errsz);
    }
    struct ridge_stats *stats = ridge_stats_new(p);
    if (!stats)
        return tb_fail(err, errsz, TB_CONFIG, "%zu features is more than ridge supports", p);
    ridge_stats_add(stats, x, y, m);
    int rc = ridge_fit(stats, cfg->train.l2, model, err, errsz);
    ridge_stats_destroy(stats);
    return rc;
}

/* Fits the pipeline and the model on the rows marked in train; *x_out receives the features
 * of every row (nrows x pipeline_nfeatures), for evaluation. */
static int trainer_fit(const struct trainer *t, const unsigned char *train,
                       struct pipeline **pipeline_out, struct linear_model *model, double **x_out,
                       char *err, size_t errsz)
{
    const struct dataset *ds = &t->ds;
    size_t q = ds->ncategorical, n = ds->nrows;
    const char *const **dictionaries = mem_calloc(q ? q : 1, sizeof *dictionaries);
    size_t *sizes = mem_calloc(q ? q : 1, sizeof *sizes);
    for (size_t j = 0; j < q; j++)
        dictionaries[j] = dataset_dictionary(ds, j, &sizes[j]);
    struct pipeline_rows rows = {
        .nrows = n, .values = ds->inputs, .keys = ds->keys, .key_lens = ds->key_lens};
    double *x = NULL, *xs = NULL, *ys = NULL;
    int rc = TB_OK;
    struct pipeline *pipeline = pipeline_fit(&t->options, &rows, train, q ? dictionaries : NULL,
                                             q ? sizes : NULL, err, errsz);
    if (!pipeline) {
        rc = TB_CONFIG;
        goto done;
    }
    size_t p = pipeline_nfeatures(pipeline), m = 0;
    x = mem_alloc((n ? n : 1) * p * sizeof *x);
    dataset_features(ds, pipeline, x);
    xs = mem_alloc((n ? n : 1) * p * sizeof *xs);
    ys = mem_alloc((n ? n : 1) * sizeof *ys);
    for (size_t r = 0; r < n; r++) {
        if (!train[r])
            continue;
        memcpy(&xs[m * p], &x[r * p], p * sizeof *x);
        ys[m++] = ds->labels[r];
    }
    if (m == 0) {
        rc = tb_fail(err, errsz, TB_CONFIG, "no labelled rows to train on");
        goto done;
    }
    rc = trainer_fit_model(t, xs, ys, m, p, model, err, errsz);
    if (rc != TB_OK)
        goto done;
    *pipeline_out = pipeline;
    pipeline = NULL;
    *x_out = x;
    x = NULL;
done:
    free(ys);
    free(xs);
    free(x);
    pipeline_destroy(pipeline);
    free(sizes);
    free(dictionaries);
    return rc;
}

static bool trainer_is_class(const struct linear_model *model, double label)
{
    for (size_t k = 0; k < model->nclasses; k++)
        if (model->classes[k] == label)
            return true;
    return false;
}

/* Scores the model on the rows marked in mask of x (features) and y (labels). */
static void trainer_score(const struct trainer *t, const struct linear_model *model,
                          const double *x, const double *y, const unsigned char *mask, size_t n,
                          struct trainer_scores *out)
{
    size_t p = model->nfeatures, width = linear_width(model), m = 0, unseen = 0;
    double *xs = mem_alloc((n ? n : 1) * p * sizeof *xs);
    double *ys = mem_alloc((n ? n : 1) * sizeof *ys);
    for (size_t r = 0; r < n; r++) {
        if (!mask[r])
            continue;
        /* A class the model never saw in training cannot be scored against its probabilities. */
        if (model->nclasses > 0 && !trainer_is_class(model, y[r])) {
            unseen++;
            continue;
        }
        memcpy(&xs[m * p], &x[r * p], p * sizeof *x);
        ys[m++] = y[r];
    }
    double *predicted = mem_alloc((m ? m : 1) * width * sizeof *predicted);
    linear_predict(model, xs, m, predicted);
    *out = (struct trainer_scores){0};
    if (model->kind == LINEAR_RIDGE) {
        struct metrics_regression r;
        metrics_regression_compute(ys, predicted, m, &r);
        *out = (struct trainer_scores){3, {"rmse", "mae", "r2"}, {r.rmse, r.mae, r.r2}};
        if (t->derived) {
            out->names[out->count] = "nasa_score";
            out->values[out->count++] = metrics_nasa_score(ys, predicted, m);
        }
    } else {
        struct metrics_classification c;
        metrics_classification_compute(ys, predicted, model->classes, model->nclasses, m, &c);
        *out =
            (struct trainer_scores){6,
                                    {"accuracy", "precision", "recall", "f1", "auc", "log_loss"},
                                    {c.accuracy, c.precision, c.recall, c.f1, c.auc, c.log_loss}};
    }
    out->names[out->count] = "rows";
    out->values[out->count++] = (double)m;
    if (model->nclasses > 0) {
        out->names[out->count] = "rows_unseen_class";
        out->values[out->count++] = (double)unseen;
    }
    free(predicted);
    free(ys);
    free(xs);
}

static void trainer_record(struct artefact *artefact, const char *prefix,
                           const struct trainer_scores *scores)
{
    char name[64];
    for (size_t i = 0; i < scores->count; i++) {
        snprintf(name, sizeof name, "%s_%s", prefix, scores->names[i]);
        artefact_set_metric(artefact, name, scores->values[i]);
    }
}

/* Assigns the rows marked in rows to train.folds folds (fold[r], -1 for the rows not marked), split
 * as method says: the folds split the eligible rows only, so that each has its share of them.
 * Returns TB_OK, or split_kfold's error with err. */
static int trainer_assign_folds(const struct trainer *t, const unsigned char *rows,
                                enum split_method method, int *fold, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    const struct dataset *ds = &t->ds;
    size_t n = ds->nrows, m = 0;
    size_t *index = mem_alloc((n ? n : 1) * sizeof *index); /* of the eligible rows */
    const char **keys = ds->keys ? mem_alloc((n ? n : 1) * sizeof *keys) : NULL;
    double *times = ds->times ? mem_alloc((n ? n : 1) * sizeof *times) : NULL;
    int *subfold = mem_alloc((n ? n : 1) * sizeof *subfold);
    for (size_t r = 0; r < n; r++) {
        fold[r] = -1;
        if (!rows[r])
            continue;
        if (keys)
            keys[m] = ds->keys[r];
        if (times)
            times[m] = ds->times[r];
        index[m++] = r;
    }
    int rc = split_kfold(method, m, keys, times, cfg->train.folds, (uint64_t)cfg->train.seed,
                         subfold, err, errsz);
    for (size_t i = 0; rc == TB_OK && i < m; i++)
        fold[index[i]] = subfold[i];
    free(subfold);
    free(times);
    free(keys);
    free(index);
    return rc;
}

/* Fits on the rows marked in train and scores on those marked in test into *scores. Returns TB_OK,
 * or trainer_fit's error with err. */
static int trainer_fold_scores(const struct trainer *t, const unsigned char *train,
                               const unsigned char *test, struct trainer_scores *scores, char *err,
                               size_t errsz)
{
    struct pipeline *pipeline = NULL;
    struct linear_model model = {0};
    double *x = NULL;
    int rc = trainer_fit(t, train, &pipeline, &model, &x, err, errsz);
    if (rc != TB_OK)
        goto done;
    trainer_score(t, &model, x, t->ds.labels, test, t->ds.nrows, scores);
done:
    free(x);
    linear_model_free(&model);
    pipeline_destroy(pipeline);
    return rc;
}

/* k-fold cross-validation of the rows in `rows` (the training side of the holdout), split as
 * train.split says (random when it is none); with time folds, fold j is predicted by a model of
 * the folds before it (forward chaining). A fold whose model cannot be fitted (one class only,
 * say) is skipped with a warning. Records the mean over folds of each metric as cv_<metric>. */
static int trainer_cross_validate(const struct trainer *t, const unsigned char *rows,
                                  struct artefact *artefact, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    size_t n = t->ds.nrows;
    enum split_method method = SPLIT_RANDOM;
    if (strcmp(cfg->train.split, "none") != 0)
        split_parse(cfg->train.split, &method);
    int *fold = mem_alloc((n ? n : 1) * sizeof *fold);
    unsigned char *train = mem_alloc(n ? n : 1), *test = mem_alloc(n ? n : 1);
    struct trainer_scores sum = {0};
    int scored = 0; /* folds */
    int rc = trainer_assign_folds(t, rows, method, fold, err, errsz);
    if (rc != TB_OK)
        goto done;
    for (int j = 0; j < cfg->train.folds; j++) {
        size_t ntrain = 0, ntest = 0;
        for (size_t r = 0; r < n; r++) {
            bool before = method == SPLIT_TIME ? fold[r] < j : fold[r] != j;
            train[r] = fold[r] >= 0 && before;
            test[r] = fold[r] == j;
            ntrain += train[r];
            ntest += test[r];
        }
        if (ntrain == 0 || ntest == 0)
            continue;
        struct trainer_scores scores;
        char why[512];
        if (trainer_fold_scores(t, train, test, &scores, why, sizeof why) != TB_OK) {
            log_warn("cross-validation fold %d skipped: %s", j + 1, why);
            continue;
        }
        sum.count = scores.count;
        for (size_t i = 0; i < scores.count; i++) {
            sum.names[i] = scores.names[i];
            sum.values[i] += scores.values[i];
        }
        scored++;
    }
    if (scored > 0) {
        for (size_t i = 0; i < sum.count; i++)
            sum.values[i] /= scored;
        trainer_record(artefact, "cv", &sum);
        artefact_set_metric(artefact, "cv_folds", scored);
    }
done:
    free(test);
    free(train);
    free(fold);
    return rc;
}

/* Reads one number per line of path into a new array (*count entries). */
static int trainer_read_labels(const char *path, double **out, size_t *count, char *err,
                               size_t errsz)
{
    size_t len = 0;
    char *text = textfile_read(path, &len, err, errsz);
    if (!text)
        return TB_IO;
    int rc = TB_OK;
    size_t n = 0, cap = 0, line = 0;
    double *values = NULL;
    for (char *p = text; rc == TB_OK && *p;) {
        char *end = strchr(p, '\n');
        if (end)
            *end = '\0';
        line++;
        char *cursor = p;
        while (*cursor == ' ' || *cursor == '\t' || *cursor == '\r')
            cursor++;
        if (*cursor) {
            errno = 0;
            char *after = NULL;
            double v = strtod(cursor, &after);
            while (*after == ' ' || *after == '\t' || *after == '\r')
                after++;
            if (after == cursor || *after || errno || !isfinite(v)) {
                rc = tb_fail(err, errsz, TB_PARSE, "%s:%zu: '%s' is not a number", path, line,
                             cursor);
                break;
            }
            mem_grow((void **)&values, &cap, n + 1, sizeof *values);
            values[n++] = v;
        }
        p = end ? end + 1 : p + strlen(p);
    }
    if (rc != TB_OK)
        goto done;
    *out = values;
    values = NULL;
    *count = n;
done:
    free(values);
    free(text);
    return rc;
}

/* Marks the last row of each key of ds in mask and gives it the key's label from labels, keys
 * in order of first appearance. */
static int trainer_last_per_key(const struct dataset *ds, const double *labels, size_t nlabels,
                                const char *path, unsigned char *mask, double *y, char *err,
                                size_t errsz)
{
    size_t n = ds->nrows, nkeys = 0, cursor = 0;
    size_t *last = mem_alloc((n ? n : 1) * sizeof *last); /* per key, its last row */
    for (size_t r = 0; r < n; r++) {
        if (!(nkeys > 0 && strcmp(ds->keys[last[cursor]], ds->keys[r]) == 0)) {
            for (cursor = 0; cursor < nkeys && strcmp(ds->keys[last[cursor]], ds->keys[r]) != 0;
                 cursor++)
                ;
            if (cursor == nkeys)
                nkeys++;
        }
        last[cursor] = r;
    }
    int rc = TB_OK;
    if (nkeys != nlabels)
        rc = tb_fail(err, errsz, TB_CONFIG, "%s has %zu labels but the test file has %zu keys",
                     path, nlabels, nkeys);
    for (size_t k = 0; rc == TB_OK && k < nkeys; k++) {
        mask[last[k]] = 1;
        y[last[k]] = labels[k];
    }
    free(last);
    return rc;
}

/* Scores the model on train.test_input: every labelled row, or with train.test_labels the
 * last row of each key. */
static int trainer_test_file(const struct trainer *t, const struct pipeline *pipeline,
                             const struct linear_model *model, struct artefact *artefact, char *err,
                             size_t errsz)
{
    const struct config *cfg = t->cfg;
    bool per_key = cfg->train.test_labels[0] != '\0';
    if (!per_key && t->derived)
        return tb_fail(err, errsz, TB_CONFIG,
                       "train.test_input: a derived label needs train.test_labels (the test "
                       "file's machines do not run to failure)");
    struct dataset_request request = {
        .numeric = t->options.numeric,
        .nnumeric = t->options.nnumeric,
        .categorical = t->options.categorical,
        .ncategorical = t->options.ncategorical,
        .want_label = !per_key,
    };
    struct dataset test = {0};
    double *x = NULL, *y = NULL, *labels = NULL;
    unsigned char *mask = NULL;
    size_t nlabels = 0;
    int rc = dataset_load(cfg, cfg->train.test_input, &request, &test, err, errsz);
    if (rc != TB_OK)
        goto done;
    size_t n = test.nrows;
    if (per_key && !test.keys) {
        rc = tb_fail(err, errsz, TB_CONFIG, "train.test_labels needs input.key");
        goto done;
    }
    /* Which rows are scored, and against what, is settled on the whole file: a key whose last
     * record lacks an input is then left out, not judged on an earlier record. */
    mask = mem_calloc(n ? n : 1, 1);
    y = mem_calloc(n ? n : 1, sizeof *y);
    if (per_key) {
        rc = trainer_read_labels(cfg->train.test_labels, &labels, &nlabels, err, errsz);
        if (rc == TB_OK)
            rc = trainer_last_per_key(&test, labels, nlabels, cfg->train.test_labels, mask, y, err,
                                      errsz);
        if (rc != TB_OK)
            goto done;
    } else {
        for (size_t r = 0; r < n; r++) {
            mask[r] = isfinite(test.labels[r]);
            y[r] = test.labels[r];
        }
    }
    size_t scored = 0;
    for (size_t r = 0; r < n; r++)
        scored += mask[r];
    if (t->options.impute == PIPELINE_IMPUTE_NONE)
        trainer_drop_incomplete(&test, mask, y);
    n = test.nrows;
    for (size_t r = 0; r < n; r++)
        scored -= mask[r];
    artefact_set_metric(artefact, "test_rows_skipped", (double)scored);
    x = mem_alloc((n ? n : 1) * pipeline_nfeatures(pipeline) * sizeof *x);
    dataset_features(&test, pipeline, x);
    struct trainer_scores scores;
    trainer_score(t, model, x, y, mask, n, &scores);
    trainer_record(artefact, "test", &scores);

done:
    free(labels);
    free(mask);
    free(y);
    free(x);
    dataset_free(&test);
    return rc;
}

static void trainer_hyperparameters(const struct trainer *t, struct artefact *artefact)
{
    const struct config *cfg = t->cfg;
    artefact_set_hyperparameter(artefact, "l2", cfg->train.l2);
    if (t->kind != LINEAR_RIDGE) {
        artefact_set_hyperparameter(artefact, "max_iter", cfg->train.max_iter);
        artefact_set_hyperparameter(artefact, "tol", cfg->train.tol);
    }
    if (cfg->pipeline.window > 0)
        artefact_set_hyperparameter(artefact, "window", cfg->pipeline.window);
    if (strcmp(cfg->pipeline.impute, "constant") == 0)
        artefact_set_hyperparameter(artefact, "impute_value", cfg->pipeline.impute_value);
    if (t->derived && cfg->train.rul_cap > 0)
        artefact_set_hyperparameter(artefact, "rul_cap", cfg->train.rul_cap);
    if (strcmp(cfg->train.split, "none") != 0)
        artefact_set_hyperparameter(artefact, "test_fraction", cfg->train.test_fraction);
    if (cfg->train.folds >= 2)
        artefact_set_hyperparameter(artefact, "folds", cfg->train.folds);
    if (strcmp(cfg->train.split, "none") != 0 || cfg->train.folds >= 2)
        artefact_set_hyperparameter(artefact, "seed", (double)cfg->train.seed);
}

/* Publishes the artefact to the registry (which sets its version) and the models topic, then
 * writes train.output, as the configuration says. */
static int trainer_publish(const struct config *cfg, struct artefact *artefact,
                           struct trainer_summary *summary, char *err, size_t errsz)
{
    int rc = TB_OK;
    if (cfg->registry.directory[0]) {
        rc = registry_publish(cfg->registry.directory, artefact, &summary->published, err, errsz);
        if (rc == TB_OK && cfg->registry.topic[0] && config_kafka_get(cfg, "bootstrap.servers")) {
            size_t nprops = 0;
            char why[512];
            struct kafka_prop *props = config_kafka_props(cfg, &nprops);
            rc = model_topic_publish(props, nprops, cfg->registry.topic, artefact,
                                     TRAINER_PUBLISH_TIMEOUT_MS, why, sizeof why);
            free(props);
            if (rc != TB_OK)
                tb_fail(err, errsz, rc,
                        "published version %d to %s, but not to the models topic '%s': %s",
                        (int)summary->published, cfg->registry.directory, cfg->registry.topic, why);
        }
    }
    if (rc == TB_OK && cfg->train.output[0])
        rc = artefact_write(artefact, cfg->train.output, err, errsz);
    return rc;
}

struct artefact *trainer_run(const struct config *cfg, struct trainer_summary *summary, int *status,
                             char *err, size_t errsz)
{
    struct trainer t = {.cfg = cfg};
    struct pipeline *pipeline = NULL;
    struct linear_model model = {0};
    struct artefact *artefact = NULL;
    unsigned char *train = NULL, *test = NULL;
    double *x = NULL;
    int rc = TB_OK;
    *summary = (struct trainer_summary){0};

    if (cfg->train.input[0] == '\0') {
        rc = tb_fail(err, errsz, TB_CONFIG, "train.input is not set");
        goto done;
    }
    if (!cfg->train.output[0] && !cfg->registry.directory[0]) {
        rc = tb_fail(err, errsz, TB_CONFIG,
                     "nowhere to put the model: set train.output or registry.directory "
                     "(--publish)");
        goto done;
    }
    if (cfg->train.test_fraction >= 1) {
        rc = tb_fail(err, errsz, TB_CONFIG, "train.test_fraction: %g is not below 1",
                     cfg->train.test_fraction);
        goto done;
    }
    rc = linear_kind_parse(cfg->train.model, &t.kind);
    if (rc == TB_OK)
        rc = trainer_options(cfg, &t.options, err, errsz);
    if (rc != TB_OK)
        goto done;
    t.derived = dataset_derives_label(cfg);
    struct dataset_request request = {
        .numeric = t.options.numeric,
        .nnumeric = t.options.nnumeric,
        .categorical = t.options.categorical,
        .ncategorical = t.options.ncategorical,
        .want_label = true,
    };
    rc = dataset_load(cfg, cfg->train.input, &request, &t.ds, err, errsz);
    if (rc != TB_OK)
        goto done;
    size_t total = t.ds.nrows;
    if (t.options.impute == PIPELINE_IMPUTE_NONE)
        trainer_drop_incomplete(&t.ds, NULL, NULL);
    size_t n = t.ds.nrows, nlabelled = 0;
    t.labelled = mem_alloc(n ? n : 1);
    for (size_t r = 0; r < n; r++)
        nlabelled += t.labelled[r] = isfinite(t.ds.labels[r]);

    train = mem_alloc(n ? n : 1);
    test = mem_calloc(n ? n : 1, 1);
    enum split_method method;
    bool holdout = strcmp(cfg->train.split, "none") != 0;
    if (holdout) {
        split_parse(cfg->train.split, &method);
        rc = split_holdout(method, n, t.ds.keys, t.ds.times, cfg->train.test_fraction,
                           (uint64_t)cfg->train.seed, test, err, errsz);
        if (rc != TB_OK) {
            rc = TB_CONFIG;
            goto done;
        }
    }
    for (size_t r = 0; r < n; r++) {
        train[r] = t.labelled[r] && !test[r];
        test[r] = t.labelled[r] && test[r];
        summary->rows += train[r];
        summary->held_out += test[r];
    }
    summary->skipped = total - nlabelled;
    rc = trainer_fit(&t, train, &pipeline, &model, &x, err, errsz);
    if (rc != TB_OK)
        goto done;

    char label[256];
    dataset_label_name(cfg, label, sizeof label);
    struct artefact_info info = {
        .name = cfg->train.model_name,
        .version = cfg->train.model_version,
        .label = label,
        .input_schema_fingerprint = t.ds.fingerprint,
    };
    artefact = artefact_new(&info, pipeline, &model, err, errsz);
    if (!artefact) {
        rc = TB_ARTEFACT;
        goto done;
    }
    trainer_hyperparameters(&t, artefact);
    artefact_set_metric(artefact, "train_rows_skipped", (double)summary->skipped);
    struct trainer_scores scores;
    trainer_score(&t, &model, x, t.ds.labels, train, n, &scores);
    trainer_record(artefact, "train", &scores);
    if (holdout) {
        trainer_score(&t, &model, x, t.ds.labels, test, n, &scores);
        trainer_record(artefact, "holdout", &scores);
    }
    if (cfg->train.folds >= 2) {
        rc = trainer_cross_validate(&t, train, artefact, err, errsz);
        if (rc != TB_OK)
            goto done;
    }
    if (cfg->train.test_input[0]) {
        rc = trainer_test_file(&t, pipeline, &model, artefact, err, errsz);
        if (rc != TB_OK)
            goto done;
    }
    rc = trainer_publish(cfg, artefact, summary, err, errsz);

done:
    free(x);
    free(test);
    free(train);
    free(t.labelled);
    dataset_free(&t.ds);
    linear_model_free(&model);
    pipeline_destroy(pipeline);
    if (rc != TB_OK) {
        artefact_destroy(artefact);
        artefact = NULL;
        *status = rc;
    }
    return artefact;
}
