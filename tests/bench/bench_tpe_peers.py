# Peer of bench_tpe: Optuna's TPESampler on the same test functions, budgets and seeds, with the
# median best loss and the sampler's own CPU time per trial (study.ask, the trial.suggest_* calls
# and study.tell; the objective excluded), then the ratios tributary / Optuna. Reads the functions'
# budgets and tributary's figures from BENCH_SCRATCH/tpe-ours.txt, which bench_tpe wrote.
# Run by tests/bench/run.sh right after bench_tpe, as /usr/bin/python3 with BENCH_SCRATCH set.
# The seeds run in two processes at once (each study is single-threaded and timed by its own
# process's CPU clock), which keeps the section near one minute.
#
# Settings: TPESampler(seed=s, n_startup_trials=20), every other setting Optuna's default
# (n_ei_candidates 24, prior_weight 1.0, gamma min(ceil(0.1 n), 25), univariate, magic clip,
# no endpoints), in-memory storage. tributary runs hyperopt's defaults (n_startup 20, gamma
# ceil(0.25 sqrt(n)) <= 25). Where Optuna has no counterpart of a hyperopt kind, the closest
# domain stands in: quniform(a, b, 1) over integers is suggest_int, qloguniform(8, 1024, 8) is 8 *
# suggest_int(1, 128, log=True), normal(0.9, 0.05) is suggest_float over mu +- 4 sigma.
#
# Debian's Optuna 3.1 leaves log(sigma) out of each kernel's log-density (optuna issue #5109, fixed
# upstream by pull request #5110 in November 2023), so its l(x) / g(x) is not the textbook one:
# its figures are those of that sampler, not of a corrected Optuna nor of hyperopt.
import math
import multiprocessing
import os
import sys
import time

import numpy as np

try:
    import optuna
except ImportError:
    optuna = None


def branin(p):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    x1, x2 = p["x1"], p["x2"]
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def sphere4(p):
    return (p["x1"] - 1.5) ** 2 + (p["x2"] + 2) ** 2 + (p["x3"] - 0.5) ** 2 + (p["x4"] - 3) ** 2


HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                              [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650],
                              [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(p):
    x = np.array([p["x%d" % i] for i in range(1, 7)])
    return -float(np.sum(HARTMANN_ALPHA * np.exp(-np.sum(HARTMANN_A * (x - HARTMANN_P) ** 2,
                                                             axis=1))))


def conditional(p):
    shared = 0.5 * (p["scale"] - 0.25) ** 2
    if p["family"] == "linear":
        return shared + 0.6 + 0.05 * (math.log10(p["alpha"]) + 2) ** 2
    if p["family"] == "tree":
        return shared + 0.3 + 0.02 * (p["depth"] - 9) ** 2 + 0.2 * (math.log10(p["lr"]) + 1.5) ** 2
    if p["kernel"] == "rbf":
        return shared + 0.05 * (math.log10(p["C"]) - 1) ** 2 + 0.05 * (math.log10(p["gamma"]) + 2) ** 2
    return shared + 0.2 + 0.05 * math.log10(p["C"]) ** 2 + 0.1 * (p["degree"] - 3) ** 2


def mixed(p):
    return ((math.log10(p["lr"]) + 3) ** 2 + ((p["depth"] - 7) / 3) ** 2
            + 0.25 * math.log2(p["batch"] / 64) ** 2 + 100 * (p["momentum"] - 0.95) ** 2
            + ((p["units"] - 40) / 30) ** 2)


# The spaces, define-by-run, as tests/unit/models/tpe_functions.h defines them.
def suggest_uniform(names, low, high):
    return lambda t: {n: t.suggest_float(n, low, high) for n in names}


def suggest_conditional(t):
    p = {"family": t.suggest_categorical("family", ["linear", "tree", "svm"])}
    if p["family"] == "linear":
        p["alpha"] = t.suggest_float("alpha", 1e-6, 10, log=True)
    elif p["family"] == "tree":
        p["depth"] = t.suggest_int("depth", 1, 16)
        p["lr"] = t.suggest_float("lr", 1e-3, 1, log=True)
    else:
        p["C"] = t.suggest_float("C", 1e-3, 1e3, log=True)
        p["kernel"] = t.suggest_categorical("kernel", ["rbf", "poly"])
        if p["kernel"] == "rbf":
            p["gamma"] = t.suggest_float("gamma", 1e-5, 10, log=True)
        else:
            p["degree"] = t.suggest_int("degree", 2, 5)
    p["scale"] = t.suggest_float("scale", 0, 1)
    return p


def suggest_mixed(t):
    return {"lr": t.suggest_float("lr", 1e-6, 1, log=True),
            "depth": t.suggest_int("depth", 1, 12),
            "batch": 8 * t.suggest_int("batch_k", 1, 128, log=True),
            "momentum": t.suggest_float("momentum", 0.9 - 4 * 0.05, 0.9 + 4 * 0.05),
            "units": t.suggest_int("units", 1, 100)}


PROBLEMS = {
    "branin": (lambda t: {"x1": t.suggest_float("x1", -5, 10), "x2": t.suggest_float("x2", 0, 15)},
               branin),
    "sphere4": (suggest_uniform(["x1", "x2", "x3", "x4"], -5, 5), sphere4),
    "hartmann6": (suggest_uniform(["x%d" % i for i in range(1, 7)], 0, 1), hartmann6),
    "conditional": (suggest_conditional, conditional),
    "mixed": (suggest_mixed, mixed),
}


def run(job):
    """Runs one study (name, seed, trials); returns its best loss and the sampler's CPU seconds."""
    name, seed, trials = job
    suggest, objective = PROBLEMS[name]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed,
                                                                   n_startup_trials=20))
    spent, best = 0.0, math.inf
    for _ in range(trials):
        start = time.process_time()
        trial = study.ask()
        params = suggest(trial)
        spent += time.process_time() - start
        loss = objective(params)
        best = min(best, loss)
        start = time.process_time()
        study.tell(trial, loss)
        spent += time.process_time() - start
    return best, spent


def main():
    directory = os.environ.get("BENCH_SCRATCH") or os.environ.get("BENCH_DIR") or "."
    with open(os.path.join(directory, "tpe-ours.txt")) as f:
        ours = [line.split() for line in f if line.strip()]
    if optuna is None:
        print("  (Optuna is not installed: apt-get install python3-optuna; no peer figures)")
        return 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("Optuna %s TPESampler(seed=s, n_startup_trials=20), other settings default"
          % optuna.__version__)
    print("  %-12s %12s %12s %16s   ratios tributary / Optuna: %s, %s"
          % ("function", "known min", "median best", "sampler", "gap to min", "time per trial"))
    with multiprocessing.Pool(2) as pool:
        for name, trials, seeds, minimum, our_median, our_us in ours:
            trials, seeds = int(trials), int(seeds)
            minimum, our_median, our_us = float(minimum), float(our_median), float(our_us)
            results = pool.map(run, [(name, seed, trials) for seed in range(seeds)])
            median = float(np.median([best for best, _ in results]))
            us = 1e6 * sum(spent for _, spent in results) / (seeds * trials)
            print("  %-12s %12.6g %12.6g %13.1f us   %10.3f %16.4f"
                  % (name, minimum, median, us, (our_median - minimum) / (median - minimum),
                     our_us / us), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
