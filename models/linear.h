/* The fitted form of the linear models (ridge regression, binary logistic regression,
 * multinomial softmax regression) and their batch prediction: one BLAS matrix product per
 * batch, then the link function. */
#ifndef TRIBUTARY_LINEAR_H
#define TRIBUTARY_LINEAR_H

#include <stddef.h>

enum linear_kind {
    LINEAR_RIDGE,    /* prediction = intercept + coef . x */
    LINEAR_LOGISTIC, /* P(classes[1]) = sigmoid(intercept + coef . x) */
    LINEAR_SOFTMAX,  /* P(classes[k]) = softmax_k(intercept[k] + coef[k] . x) */
};

/* A fitted model; a plain value whose arrays linear_model_free releases.
 *   ridge:    noutputs 1, nclasses 0, classes NULL;
 *   logistic: noutputs 1 (the score of classes[1]), nclasses 2;
 *   softmax:  noutputs = nclasses >= 2 (one row of coef per class). */
struct linear_model {
    enum linear_kind kind;
    size_t nfeatures;
    size_t noutputs;
    size_t nclasses;
    double *intercept; /* noutputs */
    double *coef;      /* noutputs x nfeatures, row-major */
    double *classes;   /* nclasses label values, ascending; NULL for ridge */
};

/* Returns "ridge", "logistic" or "softmax". */
const char *linear_kind_name(enum linear_kind kind);

/* Sets *kind from its name; returns TB_OK, or TB_NOTFOUND for an unknown name. */
int linear_kind_parse(const char *name, enum linear_kind *kind);

/* Doubles per row that linear_predict writes: 1 for ridge, nclasses for classifiers. */
size_t linear_width(const struct linear_model *model);

/* Predicts nrows rows of x (row-major, nrows x nfeatures) with one BLAS call: into out
 * (row-major, nrows x linear_width) the ridge value, or the probability of each class in
 * classes order. Never fails. */
void linear_predict(const struct linear_model *model, const double *x, size_t nrows, double *out);

/* From linear_predict's output, writes per row the predicted value: for ridge the value, for a
 * classifier the class value with the highest probability (the first on a tie). */
void linear_decide(const struct linear_model *model, const double *out, size_t nrows,
                   double *labels);

/* Deep-copies src into *dst. Never fails. */
void linear_model_copy(struct linear_model *dst, const struct linear_model *src);

/* Frees the arrays and zeroes the struct (a second call is harmless); NULL is a no-op. */
void linear_model_free(struct linear_model *model);

#endif
