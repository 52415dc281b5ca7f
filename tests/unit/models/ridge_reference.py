#!/usr/bin/python3
"""Reference fit for tests/unit/test_ridge.c.

Usage: ridge_reference.py DATA.csv ALPHA

DATA.csv has no header; every column but the last is a feature, the last is the
label. Fits scikit-learn's Ridge(alpha, fit_intercept=True, solver="cholesky")
and prints the intercept, then each coefficient, one per line, as repr floats
(which round-trip exactly).
"""
import sys

import numpy as np
from sklearn.linear_model import Ridge


def main():
    path, alpha = sys.argv[1], float(sys.argv[2])
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    x, y = data[:, :-1], data[:, -1]
    model = Ridge(alpha=alpha, fit_intercept=True, solver="cholesky").fit(x, y)
    print(repr(float(model.intercept_)))
    for c in model.coef_:
        print(repr(float(c)))


if __name__ == "__main__":
    main()
