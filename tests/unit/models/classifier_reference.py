#!/usr/bin/python3
"""Reference fits for tests/unit/test_logistic.c and tests/unit/test_softmax.c.

Usage: classifier_reference.py MODEL DATASET OUTDIR L2 [L2 ...]

MODEL is "logistic" (binary) or "softmax" (multinomial). DATASET is
"breast_cancer" or "wine" (scikit-learn's copies), or the path of the AI4I 2020
CSV, whose features are Air temperature [K], Process temperature [K], Rotational
speed [rpm], Torque [Nm] and Tool wear [min]; its label is Machine failure for
logistic, and for softmax the failure mode: 0 when Machine failure is 0, else 1 +
the index of the first of TWF, HDF, PWF, OSF, RNF that is 1 (rows with Machine
failure 1 and no mode flag are dropped). Every feature is standardised with the
data's mean and population standard deviation, and that standardised data is
what both this script and the C test fit.

Writes, as whitespace-separated repr floats (which round-trip exactly):
  OUTDIR/data.txt    nrows nfeatures, then per row the features and the label;
  OUTDIR/fit-I.txt   for the I-th L2 (from 0): the largest component of the
                     objective's gradient at scikit-learn's solution divided by
                     nrows (computed here with numpy, so the test can tell that
                     the reference is at the optimum); nclasses and the classes;
                     noutputs; the noutputs intercepts; the noutputs x nfeatures
                     coefficients; the nrows x nclasses predicted probabilities.

The fits are LogisticRegression(C=1/L2, penalty="l2", fit_intercept=True): the
objective sum_i log-loss_i + (L2/2) ||W||^2, solved to rounding. Binary fits use
solver="newton-cholesky" (tol=1e-12), multinomial ones solver="sag" (tol=1e-14,
random_state=0). Not lbfgs: scipy's L-BFGS-B also stops when the objective's
relative decrease falls below 2.2e-9 (its ftol, which scikit-learn does not
expose), which leaves coefficients about 1e-4 from the optimum whatever tol is.
Not newton-cg for multinomial either: its line search stalls at gradients of
about 1e-10 * nrows on wine, leaving near-zero coefficients off by ~1e-8.
"""
import csv
import sys
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression

AI4I_FEATURES = [
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
]
AI4I_MODES = ["TWF", "HDF", "PWF", "OSF", "RNF"]


def load_ai4i(path, model):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in AI4I_FEATURES] for r in rows])
    failure = np.array([int(r["Machine failure"]) for r in rows])
    if model == "logistic":
        return x, failure.astype(float)
    modes = np.array([[int(r[m]) for m in AI4I_MODES] for r in rows])
    label = np.where(failure == 0, 0, 1 + np.argmax(modes, axis=1))
    keep = (failure == 0) | (modes.sum(axis=1) > 0)
    return x[keep], label[keep].astype(float)


def load(dataset, model):
    if dataset == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
    elif dataset == "wine":
        x, y = load_wine(return_X_y=True)
    else:
        x, y = load_ai4i(dataset, model)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, y.astype(float)


def gradient_max_over_n(x, y, clf, l2):
    """max |gradient| / n of the penalised objective at clf's coefficients."""
    n = x.shape[0]
    onehot = (y[:, None] == clf.classes_[None, :]).astype(float)
    if clf.coef_.shape[0] == 1:
        score = x @ clf.coef_[0] + clf.intercept_[0]
        resid = 1.0 / (1.0 + np.exp(-score)) - onehot[:, 1]
        grad = np.concatenate([[resid.sum()], x.T @ resid + l2 * clf.coef_[0]])
    else:
        score = x @ clf.coef_.T + clf.intercept_
        score -= score.max(axis=1, keepdims=True)
        prob = np.exp(score)
        prob /= prob.sum(axis=1, keepdims=True)
        resid = prob - onehot
        grad = np.concatenate([resid.sum(axis=0), (resid.T @ x + l2 * clf.coef_).ravel()])
    return float(np.abs(grad).max()) / n


def fit(x, y, model, l2):
    if model == "logistic":
        clf = LogisticRegression(C=1.0 / l2, penalty="l2", fit_intercept=True,
                                 solver="newton-cholesky", tol=1e-12, max_iter=200)
    else:
        clf = LogisticRegression(C=1.0 / l2, penalty="l2", fit_intercept=True,
                                 multi_class="multinomial", solver="sag", tol=1e-14,
                                 max_iter=100000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x, y)
    return clf


def write_numbers(f, values):
    f.write(" ".join(repr(float(v)) for v in np.ravel(values)))
    f.write("\n")


def main():
    model, dataset, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
    l2s = [float(a) for a in sys.argv[4:]]
    if model not in ("logistic", "softmax") or not l2s:
        sys.exit(__doc__)
    x, y = load(dataset, model)
    with open(f"{outdir}/data.txt", "w") as f:
        f.write(f"{x.shape[0]} {x.shape[1]}\n")
        for row, label in zip(x, y):
            write_numbers(f, np.append(row, label))
    for i, l2 in enumerate(l2s):
        clf = fit(x, y, model, l2)
        with open(f"{outdir}/fit-{i}.txt", "w") as f:
            write_numbers(f, [gradient_max_over_n(x, y, clf, l2)])
            write_numbers(f, np.append(len(clf.classes_), clf.classes_))
            write_numbers(f, [clf.coef_.shape[0]])
            write_numbers(f, clf.intercept_)
            for row in clf.coef_:
                write_numbers(f, row)
            for row in clf.predict_proba(x):
                write_numbers(f, row)


if __name__ == "__main__":
    main()
