#!/usr/bin/python3
"""Reference features for tests/unit/test_pipeline.c.

Usage:
  pipeline_reference.py data DIR
      writes DIR/inputs.txt: the small random data set, no features.
  pipeline_reference.py random DIR IMPUTE INDICATOR WINDOW STATS COLUMNS SCALE
      writes DIR/inputs.txt, DIR/expected.txt and DIR/fitted.txt for one configuration:
      IMPUTE none | mean | constant:VALUE; INDICATOR 0 | 1; WINDOW records (0: none);
      STATS comma-separated statistic names (or -); COLUMNS comma-separated numeric input
      names or "all"; SCALE none | standard | minmax.
  pipeline_reference.py cmapss DIR TRAIN_FD001 WINDOW
      the FD001 training file keyed by unit, numeric inputs s2 s3 s4, mean imputation, a
      window of mean and std over all three; expected.txt unscaled, fitted.txt with the
      standard scaler's offsets and factors.

inputs.txt: a line of numeric input names, a line of categorical input names, then one line
per row: key ("-" is the empty key), train flag, numeric values ("nan" is missing),
categories ("?" is missing).
expected.txt: a line of feature names, then one line of features per row.
fitted.txt: lines "fill v...", "offset v..." and "factor v..." (offset and factor only with a
scaler). Numbers are repr floats, which round-trip exactly.

The features are computed independently of the C code: imputation, indicators, one-hot
encoding and scaling by scikit-learn (SimpleImputer(add_indicator=True),
OneHotEncoder(handle_unknown="ignore"), StandardScaler, MinMaxScaler); window statistics of
the small data set in exact rational arithmetic (fractions), of C-MAPSS with numpy.
"""
import math
import sys
from fractions import Fraction

import numpy as np

STATS = ["mean", "std", "min", "max", "slope", "last"]
NUMERIC = ["x0", "x1", "x2", "x3"]
CATEGORICAL = ["c0", "c1"]


def make_data():
    """The small data set: 4 interleaved keys, missing values, an unseen category."""
    rng = np.random.RandomState(20240611)
    n = 90
    keys = [["k1", "k10", "unit-7", ""][i] for i in rng.randint(0, 4, size=n)]
    train = rng.rand(n) < 0.7
    train[:3] = True
    x = np.empty((n, 4))
    x[:, 0] = 10.0 + 2.0 * rng.randn(n)
    x[:, 1] = -500.0 + 50.0 * rng.randn(n)
    x[:, 2] = 1e-3 * rng.rand(n)
    x[:, 3] = 1e6 + rng.randn(n)
    x[rng.rand(n) < 0.15, 0] = np.nan
    x[rng.rand(n) < 0.10, 1] = np.nan
    # x3 is missing only outside training: imputed, but no indicator.
    x[(rng.rand(n) < 0.3) & ~train, 3] = np.nan
    x[0, 0] = np.nan  # a training row
    c0_train = ["b", "a", "B", "ab", "abc"]
    c0 = []
    c1 = []
    for i in range(n):
        pool = c0_train if train[i] else c0_train + ["zz"]
        c0.append(None if rng.rand() < 0.1 else pool[rng.randint(len(pool))])
        c1.append(None if rng.rand() < 0.2 else ["on", "off"][rng.randint(2)])
    c0[1] = "abc"
    first_test = int(np.flatnonzero(~train)[0])
    c0[first_test] = "zz"  # a category never seen in training
    return keys, train, x, [c0, c1]


def write_inputs(path, keys, train, x, cats):
    with open(path, "w") as f:
        f.write(" ".join(NUMERIC) + "\n")
        f.write(" ".join(CATEGORICAL) + "\n")
        for i in range(len(keys)):
            fields = [keys[i] or "-", "1" if train[i] else "0"]
            fields += [repr(float(v)) for v in x[i]]
            fields += ["?" if c[i] is None else c[i] for c in cats]
            f.write(" ".join(fields) + "\n")


def exact_window(values, stats):
    """Statistics of values (oldest first) in exact arithmetic, rounded once at the end."""
    n = len(values)
    nan = any(math.isnan(v) for v in values)
    out = []
    if not nan:
        fr = [Fraction(v) for v in values]
        mean = sum(fr) / n
    for s in stats:
        if s == "last":
            out.append(values[-1])
        elif nan:
            out.append(math.nan)
        elif s == "mean":
            out.append(float(mean))
        elif s == "std":
            out.append(math.sqrt(float(sum((v - mean) ** 2 for v in fr) / n)))
        elif s == "min":
            out.append(float(min(fr)))
        elif s == "max":
            out.append(float(max(fr)))
        elif s == "slope":
            if n == 1:
                out.append(0.0)
            else:
                tbar = Fraction(n - 1, 2)
                num = sum((t - tbar) * (v - mean) for t, v in enumerate(fr))
                den = sum((t - tbar) ** 2 for t in range(n))
                out.append(float(num / den))
    return out


def shifted_window(values, stats):
    """Statistics of a numpy window (oldest first) with numpy, deviations from the oldest."""
    out = []
    d = values - values[0]
    for s in stats:
        if s == "mean":
            out.append(float(np.mean(values)))
        elif s == "std":
            out.append(float(np.std(d, ddof=0)))
        else:
            raise ValueError(s)
    return out


def window_features(keys, imputed, columns, stats, count, window, compute):
    """For each row, the window features over the last `window` rows of its key."""
    history = {}
    rows = []
    for i, key in enumerate(keys):
        history.setdefault(key, []).append(i)
        idx = history[key][-window:]
        feats = []
        for j in columns:
            feats += compute(imputed[idx, j], stats)
        if count:
            feats.append(float(len(idx)))
        rows.append(feats)
    return np.array(rows, dtype=float).reshape(len(keys), -1)


def write_matrix(path, names, matrix):
    with open(path, "w") as f:
        f.write(" ".join(names) + "\n")
        for row in matrix:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")


def write_fitted(path, fill, scaler):
    with open(path, "w") as f:
        f.write("fill " + " ".join(repr(float(v)) for v in fill) + "\n")
        if scaler is not None:
            offset, factor = scaler
            f.write("offset " + " ".join(repr(float(v)) for v in offset) + "\n")
            f.write("factor " + " ".join(repr(float(v)) for v in factor) + "\n")


def fit_scaler(kind, features, train):
    """Fits kind on the training rows with all-finite features; returns the scaler, offsets,
    factors (offset and factor such that x' = (x - offset) * factor)."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    rows = train & np.all(np.isfinite(features), axis=1)
    if kind == "standard":
        scaler = StandardScaler().fit(features[rows])
        return scaler, scaler.mean_, 1.0 / scaler.scale_
    scaler = MinMaxScaler().fit(features[rows])
    return scaler, scaler.data_min_, scaler.scale_


def random_case(out_dir, impute, indicator, window, stats_arg, columns_arg, scale):
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    keys, train, x, cats = make_data()
    write_inputs(out_dir + "/inputs.txt", keys, train, x, cats)
    n = len(keys)

    names = list(NUMERIC)
    if impute == "none":
        imputed = x.copy()
        fill = [math.nan] * len(NUMERIC)
        blocks = [imputed]
    else:
        if impute == "mean":
            imputer = SimpleImputer(strategy="mean", add_indicator=bool(indicator))
        else:
            value = float(impute.split(":", 1)[1])
            imputer = SimpleImputer(strategy="constant", fill_value=value,
                                    add_indicator=bool(indicator))
        imputer.fit(x[train])
        out = imputer.transform(x)
        imputed = out[:, : len(NUMERIC)]
        fill = imputer.statistics_
        blocks = [out]
        if indicator:
            names += [NUMERIC[j] + "_missing" for j in imputer.indicator_.features_]

    if window > 0:
        stats = [s for s in stats_arg.split(",") if s != "count"]
        stats = [s for s in STATS if s in stats]  # column order is the statistics' order
        count = "count" in stats_arg.split(",")
        if columns_arg == "all":
            columns = list(range(len(NUMERIC)))
        else:
            columns = sorted(NUMERIC.index(c) for c in columns_arg.split(","))
        for j in columns:
            names += ["%s_%s_%d" % (NUMERIC[j], s, window) for s in stats]
        if count:
            names.append("window_count_%d" % window)
        blocks.append(window_features(keys, imputed, columns, stats, count, window,
                                      exact_window))
    features = np.hstack(blocks)

    scaler = None
    if scale != "none":
        model, offset, factor = fit_scaler(scale, features, train)
        features = model.transform(features)
        scaler = (offset, factor)

    onehot = []
    for name, values in zip(CATEGORICAL, cats):
        column = np.array(["\x01missing" if v is None else v for v in values], dtype=object)
        known = np.array([v for v, t in zip(values, train) if t and v is not None],
                         dtype=object)
        encoder = OneHotEncoder(handle_unknown="ignore").fit(known.reshape(-1, 1))
        encoded = encoder.transform(column.reshape(-1, 1))
        onehot.append(encoded.toarray() if hasattr(encoded, "toarray") else encoded)
        names += ["%s=%s" % (name, c) for c in encoder.categories_[0]]
    features = np.hstack([features] + onehot)
    assert features.shape == (n, len(names))

    write_matrix(out_dir + "/expected.txt", names, features)
    write_fitted(out_dir + "/fitted.txt", fill, scaler)


def cmapss_case(out_dir, path, window):
    data = np.loadtxt(path)
    keys = [str(int(u)) for u in data[:, 0]]
    x = data[:, 6:9]  # s2 s3 s4
    inputs = ["s2", "s3", "s4"]
    stats = ["mean", "std"]
    names = list(inputs)
    for name in inputs:
        names += ["%s_%s_%d" % (name, s, window) for s in stats]
    windows = window_features(keys, x, range(3), stats, False, window, shifted_window)
    features = np.hstack([x, windows])
    write_matrix(out_dir + "/expected.txt", names, features)
    train = np.ones(len(keys), dtype=bool)
    _, offset, factor = fit_scaler("standard", features, train)
    write_fitted(out_dir + "/fitted.txt", np.mean(x, axis=0), (offset, factor))


def main():
    mode, out_dir = sys.argv[1], sys.argv[2]
    if mode == "data":
        write_inputs(out_dir + "/inputs.txt", *make_data())
    elif mode == "random":
        impute, indicator, window, stats, columns, scale = sys.argv[3:9]
        random_case(out_dir, impute, int(indicator), int(window), stats, columns, scale)
    elif mode == "cmapss":
        cmapss_case(out_dir, sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
