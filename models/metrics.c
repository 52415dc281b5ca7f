/* Regression metrics over batches and running streams; classification metrics over batches. */
#include "models/metrics.h"

#include "service/base/mem.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static double metrics_nasa_term(double y_true, double y_pred)
{
    double d = y_pred - y_true;
    return d < 0.0 ? expm1(-d / 13.0) : expm1(d / 10.0);
}

/* The R2 rule shared by the batch and running versions (scikit-learn's r2_score with
 * force_finite). */
static double metrics_r2(size_t count, double ss_res, double ss_tot)
{
    if (count < 2)
        return NAN;
    if (ss_tot == 0.0)
        return ss_res == 0.0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
}

void metrics_regression_compute(const double *y_true, const double *y_pred, size_t n,
                                struct metrics_regression *out)
{
    out->count = n;
    if (n == 0) {
        out->rmse = out->mae = out->r2 = NAN;
        return;
    }
    double sum_abs = 0.0, sum_sq = 0.0, mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = y_pred[i] - y_true[i];
        sum_abs += fabs(e);
        sum_sq += e * e;
        mean += y_true[i];
    }
    mean /= (double)n;
    double ss_tot = 0.0;
    for (size_t i = 0; i < n; i++)
        ss_tot += (y_true[i] - mean) * (y_true[i] - mean);
    out->rmse = sqrt(sum_sq / (double)n);
    out->mae = sum_abs / (double)n;
    out->r2 = metrics_r2(n, sum_sq, ss_tot);
}

double metrics_nasa_score(const double *y_true, const double *y_pred, size_t n)
{
    double score = 0.0;
    for (size_t i = 0; i < n; i++)
        score += metrics_nasa_term(y_true[i], y_pred[i]);
    return score;
}

void metrics_running_reset(struct metrics_running *running)
{
    *running = (struct metrics_running){0};
}

void metrics_running_add(struct metrics_running *running, double y_true, double y_pred)
{
    double e = y_pred - y_true;
    running->count++;
    running->sum_abs_error += fabs(e);
    running->sum_squared_error += e * e;
    running->nasa_score += metrics_nasa_term(y_true, y_pred);
    double before = y_true - running->mean_true;
    running->mean_true += before / (double)running->count;
    running->m2_true += before * (y_true - running->mean_true);
}

void metrics_running_merge(struct metrics_running *into, const struct metrics_running *from)
{
    if (from->count == 0)
        return;
    if (into->count == 0) {
        *into = *from;
        return;
    }
    double na = (double)into->count, nb = (double)from->count, n = na + nb;
    double d = from->mean_true - into->mean_true;
    into->m2_true += from->m2_true + d * d * na * nb / n;
    into->mean_true += d * nb / n;
    into->count += from->count;
    into->sum_abs_error += from->sum_abs_error;
    into->sum_squared_error += from->sum_squared_error;
    into->nasa_score += from->nasa_score;
}

void metrics_running_get(const struct metrics_running *running, struct metrics_regression *out)
{
    size_t n = running->count;
    out->count = n;
    if (n == 0) {
        out->rmse = out->mae = out->r2 = NAN;
        return;
    }
    out->rmse = sqrt(running->sum_squared_error / (double)n);
    out->mae = running->sum_abs_error / (double)n;
    out->r2 = metrics_r2(n, running->sum_squared_error, running->m2_true);
}

void metrics_running_class_add(struct metrics_running_class *running, double y_true, double p)
{
    bool positive = y_true != 0.0;
    double q = fmin(fmax(positive ? p : 1.0 - p, DBL_EPSILON), 1.0 - DBL_EPSILON);
    running->count++;
    running->correct += positive == (p >= 0.5);
    running->sum_log_loss -= log(q);
}

void metrics_running_class_merge(struct metrics_running_class *into,
                                 const struct metrics_running_class *from)
{
    into->count += from->count;
    into->correct += from->correct;
    into->sum_log_loss += from->sum_log_loss;
}

void metrics_running_class_get(const struct metrics_running_class *running, double *log_loss,
                               double *accuracy)
{
    double n = (double)running->count;
    *log_loss = running->count ? running->sum_log_loss / n : NAN;
    *accuracy = running->count ? (double)running->correct / n : NAN;
}

double metrics_running_nasa_score(const struct metrics_running *running)
{
    return running->nasa_score;
}

/* One row's score for one class and whether that class is the row's true one. */
struct metrics_scored {
    double score;
    bool positive;
};

/* Orders by score, highest first; NaN (outside the contract) after every number, so that the
 * order is still total. */
static int metrics_scored_descending(const void *a, const void *b)
{
    double x = ((const struct metrics_scored *)a)->score;
    double y = ((const struct metrics_scored *)b)->score;
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x < y) - (x > y);
}

/* Returns the ROC AUC of the n rows in scored (which it reorders), or NaN when they are all
 * positive or all negative. Walking the scores from the highest down, each run of equal scores
 * is one step of the ROC curve; the trapezoid under a step from (fp0, tp0) to (fp1, tp1) is
 * (fp1 - fp0) * (tp0 + tp1) / 2 in counts, which is scikit-learn's roc_curve followed by auc,
 * kept in (exact, below 2^53) integer counts until one division at the end. */
static double metrics_binary_auc(struct metrics_scored *scored, size_t n)
{
    qsort(scored, n, sizeof(*scored), metrics_scored_descending);
    double tp = 0.0, fp = 0.0, tp_before = 0.0, fp_before = 0.0, twice_area = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (scored[i].positive)
            tp += 1.0;
        else
            fp += 1.0;
        if (i + 1 == n || scored[i + 1].score != scored[i].score) {
            twice_area += (fp - fp_before) * (tp + tp_before);
            tp_before = tp;
            fp_before = fp;
        }
    }
    if (tp == 0.0 || fp == 0.0)
        return NAN;
    return twice_area / (2.0 * tp * fp);
}

static double metrics_ratio_or_zero(size_t numerator, size_t denominator)
{
    return denominator == 0 ? 0.0 : (double)numerator / (double)denominator;
}

static double metrics_f1(double precision, double recall)
{
    double sum = precision + recall;
    return sum == 0.0 ? 0.0 : 2.0 * precision * recall / sum;
}

void metrics_classification_compute(const double *y_true, const double *proba,
                                    const double *classes, size_t nclasses, size_t n,
                                    struct metrics_classification *out)
{
    size_t *label = NULL, *true_count = NULL, *predicted_count = NULL, *hit_count = NULL;
    struct metrics_scored *scored = NULL;

    out->count = n;
    out->nclasses = nclasses;
    out->accuracy = out->precision = out->recall = out->f1 = out->auc = out->log_loss = NAN;
    if (n == 0 || nclasses < 2)
        return;

    label = mem_alloc(n * sizeof(*label)); /* index into classes of each row's true class */
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        while (c < nclasses && classes[c] != y_true[i])
            c++;
        if (c == nclasses)
            goto done;
        label[i] = c;
    }

    true_count = mem_calloc(nclasses, sizeof(*true_count));
    predicted_count = mem_calloc(nclasses, sizeof(*predicted_count));
    hit_count = mem_calloc(nclasses, sizeof(*hit_count)); /* predicted and true */
    const double eps = DBL_EPSILON;
    double loss_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *row = proba + i * nclasses;
        size_t best = 0;
        double clipped_sum = 0.0;
        for (size_t c = 0; c < nclasses; c++) {
            if (row[c] > row[best])
                best = c;
            clipped_sum += fmin(fmax(row[c], eps), 1.0 - eps);
        }
        true_count[label[i]]++;
        predicted_count[best]++;
        if (best == label[i])
            hit_count[best]++;
        double p_true = fmin(fmax(row[label[i]], eps), 1.0 - eps);
        loss_sum -= log(p_true / clipped_sum);
    }

    size_t hits = 0;
    for (size_t c = 0; c < nclasses; c++)
        hits += hit_count[c];
    out->accuracy = (double)hits / (double)n;
    out->log_loss = loss_sum / (double)n;

    if (nclasses == 2) {
        out->precision = metrics_ratio_or_zero(hit_count[1], predicted_count[1]);
        out->recall = metrics_ratio_or_zero(hit_count[1], true_count[1]);
        out->f1 = metrics_f1(out->precision, out->recall);
    } else {
        double precision_sum = 0.0, recall_sum = 0.0, f1_sum = 0.0;
        size_t present = 0; /* classes true or predicted somewhere: never 0, as n > 0 */
        for (size_t c = 0; c < nclasses; c++) {
            if (true_count[c] == 0 && predicted_count[c] == 0)
                continue;
            double precision = metrics_ratio_or_zero(hit_count[c], predicted_count[c]);
            double recall = metrics_ratio_or_zero(hit_count[c], true_count[c]);
            precision_sum += precision;
            recall_sum += recall;
            f1_sum += metrics_f1(precision, recall);
            present++;
        }
        out->precision = precision_sum / (double)present;
        out->recall = recall_sum / (double)present;
        out->f1 = f1_sum / (double)present;
    }

    /* Binary: the positive class's column only. Multiclass: every class against the rest; an
     * undefined (NaN) class makes the mean NaN. */
    scored = mem_alloc(n * sizeof(*scored));
    size_t first_class = nclasses == 2 ? 1 : 0;
    double auc_sum = 0.0;
    for (size_t c = first_class; c < nclasses; c++) {
        for (size_t i = 0; i < n; i++)
            scored[i] = (struct metrics_scored){proba[i * nclasses + c], label[i] == c};
        auc_sum += metrics_binary_auc(scored, n);
    }
    out->auc = auc_sum / (double)(nclasses - first_class);

done:
    free(scored);
    free(hit_count);
    free(predicted_count);
    free(true_count);
    free(label);
}
