/* Regression metrics over batches and running streams. */
#include "models/metrics.h"

#include <math.h>

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

double metrics_running_nasa_score(const struct metrics_running *running)
{
    return running->nasa_score;
}
