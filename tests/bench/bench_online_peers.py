# Peers of bench_online: per-key online learning in Python on the very stream bench_online wrote
# to BENCH_SCRATCH. Run by tests/bench/run.sh right after bench_online, as /usr/bin/python3 with
# BENCH_SCRATCH set; prints one line per model with both rates, the ratio tributary / peer and
# both sides' bytes per key, and exits 1 when the numpy code does not compute what tributary did.
#
# The numpy peer is the plainest fair Python: a dict from the key (a str) to that key's state,
# a list [count, numpy arrays...] (holt: [count, level, trend] as Python floats, faster than numpy
# for three numbers), and per record a dict lookup (a new key gets a fresh state) and the same
# predict-then-learn update as models/online.c, written with numpy's vector operations. It replays
# the last records of the stream (the slice bench_online timed separately) from bench_online's
# states just before them, so that both time the very same updates in steady state: every key
# held, about 20 records learned each. Building the dict and the record lists is not timed; each
# record's key is a str of its own, as a key read from a message would be, so the lookup hashes
# it. Then the numpy predictions of the slice and every key's final state must equal
# bench_online's within 1e-9 (relative, or absolute below 1), and so must a handful of keys
# replayed from nothing over their whole history.
#
# scikit-learn's SGDRegressor / SGDClassifier.partial_fit, one estimator per key, is the library
# way; it costs ~0.1 ms a call, so it runs on a subset only: every record of keys 0..999 in stream
# order (~20k records, ~20 per key as in the whole stream), predict then partial_fit. It is SGD,
# not RLS or FTRL, so its results are not compared.
import math
import os
import sys
import time
import tracemalloc
import warnings

# One thread, as bench_online: set before numpy loads OpenBLAS (17 x 17 products never use more).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import sklearn
    from sklearn.linear_model import SGDClassifier, SGDRegressor
except ImportError:
    sklearn = None

FEATURES = 16
# The hyperparameters bench_online.c sets (bench_params) and online.c's defaults for the rest.
FORGETTING, DELTA = 0.99, 1.0                       # rls
ALPHA, BETA = 0.1, 1.0                              # ftrl, ftrl_logistic; l1 = l2 = 0
WARMUP, MIN_STD = 10, 1e-9                          # anomaly: welford, mahalanobis
INDICATOR, LEVEL_ALPHA, TREND_BETA = 0, 0.3, 0.1    # holt
THRESHOLD, DIRECTION, HORIZON = 10.0, 1, 1000.0
TOLERANCE = 1e-9
CHECK_KEYS = 8          # keys replayed from nothing over their whole history
SKLEARN_KEYS = 1000     # the subset of keys scikit-learn learns
SKLEARN_MEMORY_KEYS = 200  # estimators built under tracemalloc to measure their size
DIM = FEATURES + 1      # rls and ftrl: the features and the intercept's constant 1, last


def key_name(i):
    return "key-%06d" % i


# --- the per-key states, and conversions from and to online.c's flat layout ---------------------
# from_c splits a (keys x state_len) array of online.c states into [counts, arrays...], one row per
# key; numpy_peer copies each key's rows into a state of its own. to_c stacks states back.

UPPER = np.triu_indices(DIM)  # rls: online.c keeps P's upper triangle, row by row


def rls_fresh():
    return [0, np.zeros(DIM), np.eye(DIM) / DELTA]


def rls_from_c(c):
    p = np.zeros((len(c), DIM, DIM))
    p[:, UPPER[0], UPPER[1]] = c[:, 1 + DIM:]
    p += np.triu(p, 1).transpose(0, 2, 1)
    return [c[:, 0], c[:, 1:1 + DIM], p]


def rls_to_c(states):
    return np.hstack((np.array([[s[0]] for s in states], dtype=float),
                      np.stack([s[1] for s in states]),
                      np.stack([s[2] for s in states])[:, UPPER[0], UPPER[1]]))


def ftrl_fresh():
    return [0, np.zeros(DIM), np.zeros(DIM), np.zeros(DIM)]


def ftrl_from_c(c):
    return [c[:, 0], c[:, 1:1 + DIM], c[:, 1 + DIM:1 + 2 * DIM], c[:, 1 + 2 * DIM:]]


def anomaly_fresh():
    return [0, np.zeros(FEATURES), np.zeros(FEATURES)]


def anomaly_from_c(c):
    return [c[:, 0], c[:, 1:1 + FEATURES], c[:, 1 + FEATURES:]]


def arrays_to_c(states):
    """ftrl and anomaly: [count, arrays...] side by side."""
    return np.hstack([np.array([[s[0]] for s in states], dtype=float)]
                     + [np.stack([s[i] for s in states]) for i in range(1, len(states[0]))])


def holt_fresh():
    return [0, 0.0, 0.0]


def holt_from_c(c):
    return [c[:, 0], c[:, 1], c[:, 2]]


def holt_to_c(states):
    return np.array(states, dtype=float)


def own_state(count, *parts):
    """A key's state of its own from its rows of from_c's parts: a copy of each array, a float of
    each number (holt)."""
    return [int(count)] + [p.copy() if p.ndim else float(p) for p in parts]


# --- the record loops: what is timed ------------------------------------------------------------

def run_rls(states, keys, rows, labels, out):
    """Exponentially weighted RLS on rows [x, 1]: u = P x, k = u / (lambda + x'u),
    w += k (y - w.x), P = (P - k u') / lambda."""
    dot, inverse = np.dot, 1.0 / FORGETTING
    for key, x, y in zip(keys, rows, labels):
        state = states.get(key)
        if state is None:
            state = states[key] = rls_fresh()
        w, p = state[1], state[2]
        prediction = dot(w, x)
        u = dot(p, x)
        k = u / (FORGETTING + dot(x, u))
        w += k * (y - prediction)
        p -= k[:, None] * u
        p *= inverse
        state[0] += 1
        out.append(prediction)


def run_ftrl(states, keys, rows, labels, out, logistic=False):
    """FTRL-Proximal (McMahan et al. 2013, algorithm 1) with l1 = l2 = 0 on rows [x, 1]:
    g = (p - y) x, z += g - (sqrt(n + g^2) - sqrt(n)) / alpha w, n += g^2,
    w = -z alpha / (beta + sqrt(n)); p = w.x, or its sigmoid for the logistic loss."""
    dot, sqrt, exp = np.dot, np.sqrt, math.exp
    for key, x, y in zip(keys, rows, labels):
        state = states.get(key)
        if state is None:
            state = states[key] = ftrl_fresh()
        z, n, w = state[1], state[2], state[3]
        t = dot(w, x)
        if not logistic:
            prediction = t
        elif t >= 0:
            prediction = 1.0 / (1.0 + exp(-t))
        else:
            e = exp(t)
            prediction = e / (1.0 + e)
        g = (prediction - y) * x
        n_new = n + g * g
        root = sqrt(n_new)
        z += g - (root - sqrt(n)) / ALPHA * w
        state[2] = n_new
        state[3] = -z / ((BETA + root) / ALPHA)
        state[0] += 1
        out.append(prediction)


def run_ftrl_logistic(states, keys, rows, labels, out):
    run_ftrl(states, keys, rows, labels, out, logistic=True)


def run_anomaly(states, keys, rows, labels, out):
    """Welford mean and population variance per feature; the score of x against the records
    before it is sqrt(sum_j z_j^2), z_j = (x_j - mean_j) / max(std_j, min_std), 0 in warmup."""
    dot, sqrt, maximum = np.dot, np.sqrt, np.maximum
    for key, x in zip(keys, rows):
        state = states.get(key)
        if state is None:
            state = states[key] = anomaly_fresh()
        count, mean, m2 = state
        if count >= WARMUP:
            z = (x - mean) / maximum(sqrt(m2 / count), MIN_STD)
            score = math.sqrt(dot(z, z))
        else:
            score = 0.0
        count += 1
        delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
        state[0] = count
        out.append(score)


def run_holt(states, keys, values, labels, out):
    """Holt's linear trend on the indicator, learned first; then the steps until the level
    reaches the threshold (0 when past it, the horizon when the trend points away)."""
    a, b, s = LEVEL_ALPHA, TREND_BETA, float(DIRECTION)
    for key, v in zip(keys, values):
        state = states.get(key)
        if state is None:
            state = states[key] = holt_fresh()
        if state[0] == 0:
            level, trend = v, 0.0
        else:
            old, trend = state[1], state[2]
            level = a * v + (1.0 - a) * (old + trend)
            trend = b * (level - old) + (1.0 - b) * trend
        state[0] += 1
        state[1], state[2] = level, trend
        gap, rate = s * (THRESHOLD - level), s * trend
        if gap <= 0.0:
            out.append(0.0)
        elif rate <= 0.0:
            out.append(HORIZON)
        else:
            steps = gap / rate
            out.append(steps if steps < HORIZON else HORIZON)


# kind: (loop, from C, to C, the rows it reads: "affine" [x, 1], "x" or "indicator",
# label: "y" or "class")
MODELS = {
    "rls": (run_rls, rls_from_c, rls_to_c, "affine", "y"),
    "ftrl": (run_ftrl, ftrl_from_c, arrays_to_c, "affine", "y"),
    "ftrl_logistic": (run_ftrl_logistic, ftrl_from_c, arrays_to_c, "affine", "class"),
    "anomaly": (run_anomaly, anomaly_from_c, arrays_to_c, "x", "y"),
    "holt": (run_holt, holt_from_c, holt_to_c, "indicator", "y"),
}


# --- helpers ------------------------------------------------------------------------------------

def scratch(name):
    directory = os.environ.get("BENCH_SCRATCH") or os.environ.get("BENCH_DIR") or "."
    return os.path.join(directory, name)


def load(name, dtype="<f8"):
    return np.fromfile(scratch(name), dtype=dtype)


def difference(ours, theirs):
    """max |a - b| / max(1, |b|): relative where values are large, absolute where small."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    if ours.shape != theirs.shape:
        return math.inf
    return float(np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)), initial=0.0))


def records_for(kind, x, y, indices):
    """The rows and labels a loop reads, for the stream's records at indices (not timed)."""
    _, _, _, rows_kind, label_kind = MODELS[kind]
    if rows_kind == "affine":
        rows = list(np.hstack((x[indices], np.ones((len(indices), 1)))))
    elif rows_kind == "x":
        rows = list(x[indices])
    else:
        rows = x[indices, INDICATOR].tolist()
    labels = y[indices] if label_kind == "y" else (y[indices] > 0.0).astype(float)
    return rows, labels.tolist()


def record_keys(ids):
    """One str of its own per record, as a key decoded from a message is (not timed)."""
    return [key_name(int(i)) for i in ids]


def rate_text(rate):
    return "%.3g" % rate


# --- the numpy peer -----------------------------------------------------------------------------

def numpy_peer(kind, ours, ids, x, y):
    """Times the numpy loop on the slice from bench_online's snapshot and checks it. Returns
    (updates per second, bytes per key, check text, agrees)."""
    loop, from_c, to_c, _, _ = MODELS[kind]
    nkeys, slice_n = int(ours["keys"]), int(ours["slice"])
    state_len = int(ours["state_len"])
    parts = from_c(load("online-%s-snapshot.f64" % kind).reshape(nkeys, state_len))

    # The dict as the peer would hold it after the earlier records, measured by tracemalloc: the
    # key strings, the dict and the states.
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    names = [key_name(i) for i in range(nkeys)]
    states = {name: own_state(*rows) for name, *rows in zip(names, *parts)}
    del names
    bytes_per_key = (tracemalloc.get_traced_memory()[0] - before) / nkeys
    tracemalloc.stop()
    del parts

    start_slice = len(ids) - slice_n
    indices = np.arange(start_slice, len(ids))
    keys = record_keys(ids[indices])
    rows, labels = records_for(kind, x, y, indices)
    predictions = []
    start = time.perf_counter()
    loop(states, keys, rows, labels, predictions)
    seconds = time.perf_counter() - start
    rate = slice_n / seconds

    # The same computation: every prediction of the slice, every key's final state, and a few
    # keys from nothing over all their records.
    final = load("online-%s-final.f64" % kind).reshape(nkeys, state_len)
    pred_diff = difference(predictions, load("online-%s-pred.f64" % kind))
    state_diff = difference(to_c([states[key_name(i)] for i in range(nkeys)]), final)
    checked = np.unique(ids)[:CHECK_KEYS]
    history = np.flatnonzero(np.isin(ids, checked))
    rows, labels = records_for(kind, x, y, history)
    fresh = {}
    loop(fresh, record_keys(ids[history]), rows, labels, [])
    fresh_diff = difference(to_c([fresh[key_name(i)] for i in checked]), final[checked])
    replayed = len(history)
    worst = max(pred_diff, state_diff, fresh_diff)
    agrees = worst <= TOLERANCE
    text = ("%s (max diff %.1e: %d predictions %.1e, %d final states %.1e, %d keys from nothing "
            "over %d records %.1e)" % ("agree" if agrees else "DISAGREE", worst, slice_n,
                                      pred_diff, nkeys, state_diff, len(checked), replayed,
                                      fresh_diff))
    return rate, bytes_per_key, text, agrees


# --- the scikit-learn peer ----------------------------------------------------------------------

def sklearn_estimator(classifier):
    if classifier:
        return SGDClassifier(loss="log_loss", penalty=None)
    return SGDRegressor(penalty=None)


def sklearn_run(estimators, keys, rows, labels, classifier, out):
    """Predict (0 or 0.5 before a key's first fit), then partial_fit, per record."""
    classes = np.array([0.0, 1.0])
    for key, x, y in zip(keys, rows, labels):
        estimator = estimators.get(key)
        if estimator is None:
            estimator = estimators[key] = sklearn_estimator(classifier)
        x = x.reshape(1, -1)
        if not hasattr(estimator, "coef_"):
            prediction = 0.5 if classifier else 0.0
        elif classifier:
            prediction = estimator.predict_proba(x)[0, 1]
        else:
            prediction = estimator.predict(x)[0]
        if classifier:
            estimator.partial_fit(x, [y], classes=classes)
        else:
            estimator.partial_fit(x, [y])
        out.append(prediction)


def sklearn_peer(classifier, ids, x, y):
    """Returns (records, updates per second, bytes per key) of partial_fit per key on the records
    of keys 0..SKLEARN_KEYS-1."""
    indices = np.flatnonzero(ids < SKLEARN_KEYS)
    keys = record_keys(ids[indices])
    rows = list(x[indices])
    labels = ((y[indices] > 0.0).astype(float) if classifier else y[indices]).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn_run({}, keys[:1], rows[:1], labels[:1], classifier, [])  # first-call caches
        start = time.perf_counter()
        sklearn_run({}, keys, rows, labels, classifier, [])
        seconds = time.perf_counter() - start

        # The size of a key's estimator after it learned: built apart, under tracemalloc.
        some = [key_name(i) for i in range(SKLEARN_MEMORY_KEYS)]
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        estimators = {}
        sklearn_run(estimators, some, [x[0]] * len(some), [float(y[0] > 0.0)] * len(some),
                    classifier, [])
        bytes_per_key = (tracemalloc.get_traced_memory()[0] - before) / len(some)
        tracemalloc.stop()
    return len(indices), len(indices) / seconds, bytes_per_key


def main():
    with open(scratch("online-ours.txt")) as f:
        fields = ["kind", "records", "keys", "held", "slice", "state_len", "all_rate", "slice_rate",
                  "table_bytes", "heap_bytes"]
        ours = {line.split()[0]: dict(zip(fields, line.split())) for line in f if line.strip()}
    ids = load("online-keys.u32", dtype="<u4")
    x = load("online-x.f64").reshape(-1, FEATURES)
    y = load("online-y.f64")
    first = next(iter(ours.values()))
    print("peers (Python %s, numpy %s): per key a dict entry of numpy arrays (holt: 3 floats), "
          "record by record" % (sys.version.split()[0], np.__version__))
    print("  the last %s of the %s records, replayed from tributary's states before them; "
          "updates/s on one thread, bytes per key as held (numpy: tracemalloc)"
          % (first["slice"], first["records"]))
    header = "  %-14s %12s %12s %9s   %11s %11s   %s"
    print(header % ("model", "tributary", "numpy", "ratio", "bytes/key", "bytes/key", "check"))
    print(header % ("", "updates/s", "updates/s", "ours/peer", "tributary", "numpy", ""))
    status = 0
    for kind in MODELS:
        if kind not in ours:
            print("  %-14s (bench_online wrote no figures)" % kind)
            status = 1
            continue
        rate, bytes_per_key, text, agrees = numpy_peer(kind, ours[kind], ids, x, y)
        our_rate = float(ours[kind]["slice_rate"])
        print("  %-14s %12s %12s %9.1f   %11.0f %11.0f   %s"
              % (kind, rate_text(our_rate), rate_text(rate), our_rate / rate,
                 float(ours[kind]["table_bytes"]), bytes_per_key, text))
        if not agrees:
            status = 1

    if sklearn is None:
        print("  (scikit-learn is not installed: no partial_fit figures)")
        return status
    print("scikit-learn %s, one estimator per key, predict then partial_fit per record: a SUBSET, "
          "every record of keys 0..%d (partial_fit costs ~0.1 ms a call); SGD, so not compared"
          % (sklearn.__version__, SKLEARN_KEYS - 1))
    print(header % ("model", "tributary", "sklearn", "ratio", "bytes/key", "bytes/key", "peer"))
    print(header % ("", "updates/s", "updates/s", "ours/peer", "tributary", "sklearn", ""))
    peers = {False: "SGDRegressor(penalty=None)", True: "SGDClassifier(loss='log_loss', "
             "penalty=None)"}
    measured = {}
    for kind, classifier in (("rls", False), ("ftrl", False), ("ftrl_logistic", True)):
        if kind not in ours:
            continue
        if classifier not in measured:
            measured[classifier] = sklearn_peer(classifier, ids, x, y)
        records, rate, bytes_per_key = measured[classifier]
        our_rate = float(ours[kind]["slice_rate"])
        print("  %-14s %12s %12s %9.0f   %11.0f %11.0f   %s on %d records"
              % (kind, rate_text(our_rate), rate_text(rate), our_rate / rate,
                 float(ours[kind]["table_bytes"]), bytes_per_key, peers[classifier], records))
    if status:
        print("  FAILED: the numpy peer does not compute what tributary computed (above)")
    return status


if __name__ == "__main__":
    sys.exit(main())
