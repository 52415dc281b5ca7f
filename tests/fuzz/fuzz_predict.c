/* libFuzzer target for the body of POST /v1/models/{name}/predict: arbitrary bytes through
 * predict_request_parse, as the handler parses them, for two fixed models, and the rows it
 * accepts on through the pipeline and the model as the handler scores them. One model imputes,
 * keeps a window per key and has a categorical input; the other needs every input. */
#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/stream/predict_request.h"
#include "tests/fuzz/harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A pipeline, its model and the window history the workers would hold. */
struct fuzz_model {
    struct pipeline *pipeline;
    struct linear_model model;
    struct pipeline_state *state;
};

static struct fuzz_model fuzz_models[2];
static bool fuzz_ready;

static char fuzz_x1[] = "x1", fuzz_x2[] = "x2", fuzz_x3[] = "x3", fuzz_mode[] = "mode";
static char fuzz_h[] = "H", fuzz_l[] = "L", fuzz_m[] = "M";

/* Builds the model: its pipeline from spec, and a model of kind with nclasses classes (0 for
 * ridge) over the pipeline's features, with small made-up coefficients. */
static void fuzz_model_init(struct fuzz_model *m, const struct pipeline_spec *spec,
                            enum linear_kind kind, size_t nclasses)
{
    char err[512] = "";
    m->pipeline = pipeline_new(spec, err, sizeof err);
    if (!m->pipeline) {
        fprintf(stderr, "fuzz_predict: pipeline_new: %s\n", err);
        abort();
    }
    size_t p = pipeline_nfeatures(m->pipeline);
    size_t noutputs = kind == LINEAR_SOFTMAX ? nclasses : 1;
    m->model =
        (struct linear_model){.kind = kind,
                              .nfeatures = p,
                              .noutputs = noutputs,
                              .nclasses = nclasses,
                              .intercept = mem_calloc(noutputs, sizeof(double)),
                              .coef = mem_calloc(noutputs * p, sizeof(double)),
                              .classes = nclasses ? mem_calloc(nclasses, sizeof(double)) : NULL};
    for (size_t i = 0; i < noutputs * p; i++)
        m->model.coef[i] = (double)(i % 7) / 8.0 - 0.375;
    for (size_t k = 0; k < nclasses; k++)
        m->model.classes[k] = (double)k;
    m->state = pipeline_state_new(m->pipeline);
    /* A history for key "m-1", so that peeking meets a key the workers hold. */
    const double history[] = {1.0, 2.0, 3.0, 1.5, NAN, 3.5};
    size_t width = pipeline_state_width(m->state);
    if (width == 3)
        pipeline_state_put(m->state, "m-1", 3, history, 2);
}

static void fuzz_init(void)
{
    char *numeric[] = {fuzz_x1, fuzz_x2, fuzz_x3};
    char *categorical[] = {fuzz_mode};
    char *modes[] = {fuzz_h, fuzz_l, fuzz_m};
    char **categories[] = {modes};
    size_t ncategories[] = {3};

    /* Imputing by the mean with indicators for x1 and x3, a window of 3 over x1 and x3 with every
     * statistic, standard scaling of the 3 + 2 + 2 x 6 + 1 columns before the one-hot ones. */
    double fill[] = {1.0, 2.0, 3.0};
    bool indicator[] = {true, false, true};
    size_t window_columns[] = {0, 2};
    double offset[18], factor[18];
    for (size_t i = 0; i < 18; i++) {
        offset[i] = 0.25 * (double)i;
        factor[i] = 1.0 + 0.5 * (double)i;
    }
    struct pipeline_spec imputing = {.nnumeric = 3,
                                     .numeric = numeric,
                                     .ncategorical = 1,
                                     .categorical = categorical,
                                     .ncategories = ncategories,
                                     .categories = categories,
                                     .impute = PIPELINE_IMPUTE_MEAN,
                                     .fill = fill,
                                     .indicator = indicator,
                                     .window = 3,
                                     .window_stats = PIPELINE_STAT_ALL,
                                     .nwindow_columns = 2,
                                     .window_columns = window_columns,
                                     .scale = PIPELINE_SCALE_STANDARD,
                                     .nscaled = 18,
                                     .offset = offset,
                                     .factor = factor};
    fuzz_model_init(&fuzz_models[0], &imputing, LINEAR_SOFTMAX, 3);

    double no_fill[] = {NAN, NAN};
    bool no_indicator[] = {false, false};
    double zero[] = {0.0, 0.0}, one[] = {1.0, 1.0};
    struct pipeline_spec strict = {.nnumeric = 2,
                                   .numeric = numeric,
                                   .ncategorical = 1,
                                   .categorical = categorical,
                                   .ncategories = ncategories,
                                   .categories = categories,
                                   .impute = PIPELINE_IMPUTE_NONE,
                                   .fill = no_fill,
                                   .indicator = no_indicator,
                                   .scale = PIPELINE_SCALE_NONE,
                                   .nscaled = 2,
                                   .offset = zero,
                                   .factor = one};
    fuzz_model_init(&fuzz_models[1], &strict, LINEAR_RIDGE, 0);
    fuzz_ready = true;
}

/* Checks the rows of an accepted body and scores them as the handler does. */
static void fuzz_score(const struct fuzz_model *m, const struct predict_request *request)
{
    const struct pipeline_rows *rows = predict_request_rows(request);
    const struct pipeline_spec *spec = pipeline_spec(m->pipeline);
    size_t n = rows->nrows, q = pipeline_ninputs(m->pipeline);
    HARNESS_ASSERT(n >= 1 && n <= PREDICT_REQUEST_MAX_INSTANCES);
    for (size_t i = 0; i < n; i++) {
        HARNESS_ASSERT(rows->keys[i] != NULL);
        for (size_t j = 0; j < spec->nnumeric; j++) {
            double v = rows->values[i * q + j];
            HARNESS_ASSERT(isfinite(v) || (isnan(v) && spec->impute != PIPELINE_IMPUTE_NONE));
        }
        for (size_t j = 0; j < spec->ncategorical; j++) {
            double code = rows->values[i * q + spec->nnumeric + j];
            HARNESS_ASSERT(isnan(code) || (code >= -1 && code < (double)spec->ncategories[j] &&
                                           code == floor(code)));
        }
    }
    size_t p = pipeline_nfeatures(m->pipeline), width = linear_width(&m->model);
    double *features = mem_alloc(n * p * sizeof *features);
    double *outputs = mem_alloc(n * width * sizeof *outputs);
    double *decided = mem_alloc(n * sizeof *decided);
    pipeline_peek(m->pipeline, m->state, rows, features);
    linear_predict(&m->model, features, n, outputs);
    linear_decide(&m->model, outputs, n, decided);
    free(decided);
    free(outputs);
    free(features);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready)
        fuzz_init();
    for (size_t k = 0; k < 2; k++) {
        struct predict_request *request = NULL;
        char err[512] = "";
        int rc =
            predict_request_parse(fuzz_models[k].pipeline, data, size, &request, err, sizeof err);
        if (rc == TB_OK) {
            HARNESS_ASSERT(request);
            fuzz_score(&fuzz_models[k], request);
        } else {
            HARNESS_ASSERT(rc == TB_PARSE && !request && err[0] != '\0');
        }
        predict_request_destroy(request);
    }
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
    int status = harness_replay_main(argc, argv, "predict", LLVMFuzzerTestOneInput);
    for (size_t k = 0; fuzz_ready && k < 2; k++) {
        pipeline_state_destroy(fuzz_models[k].state);
        linear_model_free(&fuzz_models[k].model);
        pipeline_destroy(fuzz_models[k].pipeline);
    }
    return status;
}
#endif
