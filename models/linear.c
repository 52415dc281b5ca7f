/* Batch prediction with a fitted linear model: one BLAS product, then the link function. */
#include "models/linear.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

static const char *const linear_kind_names[] = {
    [LINEAR_RIDGE] = "ridge",
    [LINEAR_LOGISTIC] = "logistic",
    [LINEAR_SOFTMAX] = "softmax",
};

#define LINEAR_NKINDS (sizeof(linear_kind_names) / sizeof(linear_kind_names[0]))

const char *linear_kind_name(enum linear_kind kind)
{
    if ((size_t)kind >= LINEAR_NKINDS)
        return "unknown";
    return linear_kind_names[kind];
}

int linear_kind_parse(const char *name, enum linear_kind *kind)
{
    for (size_t k = 0; k < LINEAR_NKINDS; k++) {
        if (strcmp(name, linear_kind_names[k]) == 0) {
            *kind = (enum linear_kind)k;
            return TB_OK;
        }
    }
    return TB_NOTFOUND;
}

size_t linear_width(const struct linear_model *model)
{
    return model->kind == LINEAR_RIDGE ? 1 : model->nclasses;
}

/* Rows per BLAS call: a batch is one call unless it has more rows than BLAS's int can count. */
static size_t linear_rows_per_call(size_t width)
{
    return (size_t)INT_MAX / (width > 0 ? width : 1);
}

/* score -> [1 - p, p] with p = sigmoid(score), both computed without cancellation: 1 - p is
 * exp(-s) / (1 + exp(-s)), not 1 minus a number close to 1. */
static void linear_sigmoid_pair(double score, double *pair)
{
    if (score >= 0.0) {
        double e = exp(-score);
        pair[1] = 1.0 / (1.0 + e);
        pair[0] = e / (1.0 + e);
    } else {
        double e = exp(score);
        pair[1] = e / (1.0 + e);
        pair[0] = 1.0 / (1.0 + e);
    }
}

/* Replaces the k scores of row by their softmax, after subtracting the largest (so exp never
 * overflows and at least one term is 1). */
static void linear_softmax_row(double *row, size_t k)
{
    double max = row[0];
    for (size_t c = 1; c < k; c++)
        if (row[c] > max)
            max = row[c];
    double sum = 0.0;
    for (size_t c = 0; c < k; c++) {
        row[c] = exp(row[c] - max);
        sum += row[c];
    }
    for (size_t c = 0; c < k; c++)
        row[c] /= sum;
}

void linear_predict(const struct linear_model *model, const double *x, size_t nrows, double *out)
{
    size_t p = model->nfeatures;
    size_t width = linear_width(model);
    assert(p > 0 && p <= INT_MAX && width > 0);
    if (nrows == 0)
        return;
    size_t step = linear_rows_per_call(width);

    switch (model->kind) {
    case LINEAR_RIDGE:
        for (size_t i = 0; i < nrows; i++)
            out[i] = model->intercept[0];
        for (size_t start = 0; start < nrows; start += step) {
            size_t m = nrows - start < step ? nrows - start : step;
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)p, 1.0, x + start * p, (int)p,
                        model->coef, 1, 1.0, out + start, 1);
        }
        break;
    case LINEAR_LOGISTIC:
        /* The score goes where P(classes[1]) will be; the pair is then written over it. */
        assert(model->nclasses == 2 && model->noutputs == 1);
        for (size_t i = 0; i < nrows; i++)
            out[2 * i + 1] = model->intercept[0];
        for (size_t start = 0; start < nrows; start += step) {
            size_t m = nrows - start < step ? nrows - start : step;
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)p, 1.0, x + start * p, (int)p,
                        model->coef, 1, 1.0, out + 2 * start + 1, 2);
        }
        for (size_t i = 0; i < nrows; i++)
            linear_sigmoid_pair(out[2 * i + 1], out + 2 * i);
        break;
    case LINEAR_SOFTMAX:
        assert(model->nclasses >= 2 && model->noutputs == model->nclasses);
        for (size_t i = 0; i < nrows; i++)
            memcpy(out + i * width, model->intercept, width * sizeof(double));
        /* out (m x K) += x (m x p) . coef' (p x K) */
        for (size_t start = 0; start < nrows; start += step) {
            size_t m = nrows - start < step ? nrows - start : step;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)width, (int)p, 1.0,
                        x + start * p, (int)p, model->coef, (int)p, 1.0, out + start * width,
                        (int)width);
        }
        for (size_t i = 0; i < nrows; i++)
            linear_softmax_row(out + i * width, width);
        break;
    }
}

void linear_decide(const struct linear_model *model, const double *out, size_t nrows,
                   double *labels)
{
    if (model->kind == LINEAR_RIDGE) {
        memmove(labels, out, nrows * sizeof(double));
        return;
    }
    size_t k = model->nclasses;
    for (size_t i = 0; i < nrows; i++) {
        const double *row = out + i * k;
        size_t best = 0;
        for (size_t c = 1; c < k; c++)
            if (row[c] > row[best])
                best = c;
        labels[i] = model->classes[best];
    }
}

/* A heap copy of n doubles, or NULL when src is NULL. */
static double *linear_copy_array(const double *src, size_t n)
{
    if (!src)
        return NULL;
    double *copy = mem_alloc((n > 0 ? n : 1) * sizeof(double));
    memcpy(copy, src, n * sizeof(double));
    return copy;
}

void linear_model_copy(struct linear_model *dst, const struct linear_model *src)
{
    struct linear_model copy = *src;
    copy.intercept = linear_copy_array(src->intercept, src->noutputs);
    copy.coef = linear_copy_array(src->coef, src->noutputs * src->nfeatures);
    copy.classes = linear_copy_array(src->classes, src->nclasses);
    *dst = copy;
}

void linear_model_free(struct linear_model *model)
{
    if (!model)
        return;
    free(model->classes);
    free(model->coef);
    free(model->intercept);
    memset(model, 0, sizeof(*model));
}
