#!/usr/bin/python3
"""Reference computations for tests/unit/test_online.c, written independently of models/online.c.

Usage: online_reference.py COMMAND DATA.csv ARGS...

DATA.csv has no header. Every command prints lines "NAME v1 v2 ..." of repr
floats (which round-trip exactly).

rls DATA DELTA FORGETTING
    DATA columns: features, label y, offset. The state of exponentially
    weighted RLS after all n rows, in closed form: with X1 = [X, 1],
    t = y - offset, weights q_i = lambda^(n-1-i) and Q = diag(q),
        w = (lambda^n delta I + X1' Q X1)^-1 X1' Q t.
    (RLS keeps P_n^-1 = lambda P_{n-1}^-1 + x_n x_n' and P_0^-1 = delta I, so
    P_n^-1 = lambda^n delta I + sum_i lambda^(n-1-i) x_i x_i', and
    w_n = P_n sum_i lambda^(n-1-i) x_i t_i.) Prints "closed w..." (intercept
    last) and, when lambda is 1, "sklearn w..." from
    Ridge(alpha=delta, fit_intercept=False, solver="cholesky") on [X, 1].

rls_prequential DATA DELTA FORGETTING
    Prints "predictions p_0 ... p_{n-1}": p_i = offset_i + w_{<i} . [x_i, 1],
    w_{<i} the closed form above over rows 0..i-1 (0 for i = 0).

logistic DATA L2
    DATA columns: features, label (0 or 1). Fits
    LogisticRegression(C=1/(n*L2), solver="newton-cholesky", tol=1e-12):
    scikit-learn minimises C sum_i logloss_i + ||w||^2 / 2, i.e.
    sum_i logloss_i + (n L2 / 2) ||w||^2, the batch objective FTRL's per-record
    L2 approaches. Prints "intercept", "coef", "objective" (of that objective,
    at scikit-learn's solution) and "gradmax" (max |gradient| / n of it there,
    which is ~0 only if the C scaling is right).

ridge DATA L2
    DATA columns: features, label. Ridge(alpha=n*L2, fit_intercept=True):
    the minimiser of sum_i (y_i - w.x_i - b)^2 / 2 + (n L2 / 2) ||w||^2.
    Prints "intercept", "coef", "objective", "gradmax" as for logistic.

anomaly DATA STAT EWMA_ALPHA SCORE WARMUP MIN_STD
    DATA columns: features. STAT welford|ewma, SCORE zmax|mahalanobis. Prints
    "scores" (record i against the statistics of records 0..i-1, 0 while
    i < WARMUP), "mean" and "var" after all rows. Welford statistics are
    numpy's mean and population variance of the prefix; EWMA ones are the
    weighted mean and variance with weights a(1-a)^(t-k) for k >= 1 and
    (1-a)^t for record 0 of records 0..t.

holt DATA LEVEL_ALPHA TREND_BETA THRESHOLD DIRECTION HORIZON
    DATA: one column, the indicator. Prints "rul", the remaining useful life
    after learning each record, by the plain recursion of Holt's method.
"""
import sys
import warnings

import numpy as np


def emit(name, values):
    print(name, " ".join(repr(float(v)) for v in np.atleast_1d(values)))


def load(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


def rls_closed(x1, t, delta, lam):
    n, d = x1.shape
    q = lam ** np.arange(n - 1, -1, -1, dtype=float)
    a = (lam**n) * delta * np.eye(d) + x1.T @ (q[:, None] * x1)
    return np.linalg.solve(a, x1.T @ (q * t))


def cmd_rls(args):
    data = load(args[0])
    delta, lam = float(args[1]), float(args[2])
    x, y, offset = data[:, :-2], data[:, -2], data[:, -1]
    x1 = np.hstack([x, np.ones((x.shape[0], 1))])
    emit("closed", rls_closed(x1, y - offset, delta, lam))
    if lam == 1.0:
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=delta, fit_intercept=False, solver="cholesky")
        emit("sklearn", model.fit(x1, y - offset).coef_)


def cmd_rls_prequential(args):
    data = load(args[0])
    delta, lam = float(args[1]), float(args[2])
    x, y, offset = data[:, :-2], data[:, -2], data[:, -1]
    x1 = np.hstack([x, np.ones((x.shape[0], 1))])
    out = []
    for i in range(x1.shape[0]):
        w = rls_closed(x1[:i], y[:i] - offset[:i], delta, lam)
        out.append(offset[i] + x1[i] @ w)
    emit("predictions", out)


def cmd_logistic(args):
    from sklearn.linear_model import LogisticRegression

    data = load(args[0])
    l2 = float(args[1])
    x, y = data[:, :-1], data[:, -1]
    n = x.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = LogisticRegression(
            C=1.0 / (n * l2), solver="newton-cholesky", tol=1e-12, max_iter=1000
        ).fit(x, y)
    b, w = clf.intercept_[0], clf.coef_[0]
    t = x @ w + b
    objective = np.sum(np.logaddexp(0.0, t) - y * t) + n * l2 / 2 * (w @ w)
    r = 1.0 / (1.0 + np.exp(-t)) - y
    grad = np.concatenate([[r.sum()], x.T @ r + n * l2 * w])
    emit("intercept", b)
    emit("coef", w)
    emit("objective", objective)
    emit("gradmax", np.max(np.abs(grad)) / n)


def cmd_ridge(args):
    from sklearn.linear_model import Ridge

    data = load(args[0])
    l2 = float(args[1])
    x, y = data[:, :-1], data[:, -1]
    n = x.shape[0]
    model = Ridge(alpha=n * l2, fit_intercept=True, solver="cholesky").fit(x, y)
    b, w = model.intercept_, model.coef_
    r = x @ w + b - y
    objective = 0.5 * (r @ r) + n * l2 / 2 * (w @ w)
    grad = np.concatenate([[r.sum()], x.T @ r + n * l2 * w])
    emit("intercept", b)
    emit("coef", w)
    emit("objective", objective)
    emit("gradmax", np.max(np.abs(grad)) / n)


def weighted_stats(x, stat, a):
    """Mean and population variance of the rows of x (t + 1 of them)."""
    if stat == "welford":
        return x.mean(axis=0), x.var(axis=0)
    t = x.shape[0] - 1
    wts = a * (1.0 - a) ** (t - np.arange(t + 1, dtype=float))
    wts[0] = (1.0 - a) ** t
    mean = wts @ x
    return mean, wts @ (x - mean) ** 2


def cmd_anomaly(args):
    x = load(args[0])
    stat, a, score = args[1], float(args[2]), args[3]
    warmup, min_std = int(args[4]), float(args[5])
    scores = []
    for i in range(x.shape[0]):
        if i < warmup:
            scores.append(0.0)
            continue
        mean, var = weighted_stats(x[:i], stat, a)
        z = (x[i] - mean) / np.maximum(np.sqrt(var), min_std)
        scores.append(np.max(np.abs(z)) if score == "zmax" else np.sqrt(z @ z))
    emit("scores", scores)
    mean, var = weighted_stats(x, stat, a)
    emit("mean", mean)
    emit("var", var)


def cmd_holt(args):
    series = load(args[0])[:, 0]
    a, b, threshold = float(args[1]), float(args[2]), float(args[3])
    direction, horizon = int(args[4]), float(args[5])
    level = trend = None
    out = []
    for v in series:
        if level is None:
            level, trend = v, 0.0
        else:
            previous = level
            level = a * v + (1 - a) * (level + trend)
            trend = b * (level - previous) + (1 - b) * trend
        if direction > 0:
            reached, away = level >= threshold, trend <= 0
        else:
            reached, away = level <= threshold, trend >= 0
        if reached:
            out.append(0.0)
        elif away:
            out.append(horizon)
        else:
            out.append(min((threshold - level) / trend, horizon))
    emit("rul", out)


COMMANDS = {
    "rls": cmd_rls,
    "rls_prequential": cmd_rls_prequential,
    "logistic": cmd_logistic,
    "ridge": cmd_ridge,
    "anomaly": cmd_anomaly,
    "holt": cmd_holt,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](sys.argv[2:])
