# Peers of bench_train: scikit-learn fitted on the very data bench_train wrote to BENCH_SCRATCH, timed
# (.fit only) and checked against the coefficients bench_train wrote; prints times and ratios.
# Run by tests/bench/run.sh right after bench_train, as /usr/bin/python3 with BENCH_SCRATCH set.
import os
import sys
import time
import warnings

import numpy as np
import sklearn
import threadpoolctl
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge

RIDGE_REPEATS = 3  # as bench_train: the best of three ridge fits


def row(label, value):
    """One line of the table, aligned with bench_train's."""
    print("  %-52s %s" % (label, value))


def load(name):
    directory = os.environ.get("BENCH_SCRATCH") or os.environ.get("BENCH_DIR") or "."
    return np.fromfile(os.path.join(directory, name), dtype="<f8")


def difference(intercept, coef, reference):
    """max |diff| / max |coef| over [intercept, coef], as bench_train prints it."""
    fitted = np.concatenate(([intercept], np.ravel(coef)))
    return np.max(np.abs(fitted - reference)) / np.max(np.abs(reference))


def logistic_objective(intercept, coef, x, y):
    """sum_i log(1 + exp(-s_i (b + w . x_i))) + ||w||^2 / 2: what both fits minimise (C = l2 = 1)."""
    margin = np.where(y > 0, 1.0, -1.0) * (x @ np.ravel(coef) + intercept)
    return np.sum(np.logaddexp(0.0, -margin)) + 0.5 * np.dot(np.ravel(coef), np.ravel(coef))


def timed_fit(model, x, y):
    """Fits model; returns the seconds .fit took and the convergence warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(x, y)
        seconds = time.perf_counter() - start
    return seconds, [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def has_solver(solver):
    """Whether the installed LogisticRegression accepts solver (newton-cholesky: sklearn >= 1.2)."""
    try:
        LogisticRegression(solver=solver).fit([[0.0], [1.0]], [0, 1])
    except ValueError:  # sklearn's InvalidParameterError is a ValueError
        return False
    return True


def main():
    ridge_ours, _, logistic_ours = load("train-times.f64")
    coef_ridge = load("train-coef-ridge.f64")
    coef_logistic = load("train-coef-logistic.f64")
    p = coef_ridge.size - 1
    x = load("train-x.f64").reshape(-1, p)
    y_ridge = load("train-y-ridge.f64")
    y_logistic = load("train-y-logistic.f64")
    blas = ", ".join(
        "%s %s, core %s, %d threads"
        % (b["internal_api"], b["version"], b["architecture"], b["num_threads"])
        for b in threadpoolctl.threadpool_info()
        if b["user_api"] == "blas"
    )
    print("scikit-learn %s, numpy %s; BLAS: %s" % (sklearn.__version__, np.__version__, blas))

    seconds = np.inf
    for _ in range(RIDGE_REPEATS):
        ridge = Ridge(alpha=1.0)
        fit_s, _ = timed_fit(ridge, x, y_ridge)
        seconds = min(seconds, fit_s)
    print("ridge: sklearn Ridge(alpha=1.0, solver=%r) (best of %d)" % (ridge.solver, RIDGE_REPEATS))
    row("sklearn Ridge.fit", "%9.3f s" % seconds)
    row("ratio sklearn / tributary", "%9.2f" % (seconds / ridge_ours))
    row("coef vs tributary: max |diff| / max |coef|",
        "%9.1e" % difference(ridge.intercept_, ridge.coef_, coef_ridge))

    solvers = ["lbfgs"] + (["newton-cholesky"] if has_solver("newton-cholesky") else [])
    for solver in solvers:
        model = LogisticRegression(C=1.0, tol=1e-10, solver=solver, max_iter=10000)
        seconds, caught = timed_fit(model, x, y_logistic)
        print("logistic: sklearn LogisticRegression(C=1.0, tol=1e-10, solver=%r)" % solver)
        row("sklearn %s .fit (%d iterations)" % (solver, model.n_iter_[0]), "%9.3f s" % seconds)
        row("ratio sklearn / tributary", "%9.2f" % (seconds / logistic_ours))
        row("coef vs tributary: max |diff| / max |coef|",
            "%9.1e" % difference(model.intercept_[0], model.coef_, coef_logistic))
        ours = logistic_objective(coef_logistic[0], coef_logistic[1:], x, y_logistic)
        theirs = logistic_objective(model.intercept_[0], model.coef_, x, y_logistic)
        row("objective vs tributary: (sklearn - ours) / ours", "%9.1e" % ((theirs - ours) / ours))
        for w in caught:
            print("  warning: %s" % " ".join(str(w.message).split())[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
