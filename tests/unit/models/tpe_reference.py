# Reference for tests/unit/test_tpe.c: the log-densities of TPE's "below" and "above" models, l(x)
# and g(x), computed with numpy and scipy from the formulas of hyperopt's tpe.py (ap_split_trials,
# adaptive_parzen_normal, linear_forgetting_weights, GMM1_lpdf, LGMM1_lpdf, the categorical
# pseudo-counts), written independently of models/tpe.c.
#
# Usage: tpe_reference.py FILE, where FILE has lines
#   options N_STARTUP GAMMA MAX_BELOW N_CANDIDATES PRIOR_WEIGHT LINEAR_FORGETTING
#   param KIND LOW HIGH Q MU SIGMA NOPTIONS [P_0 ... P_{NOPTIONS-1}]   (in space order)
#   trial ID ok|failed LOSS V_0 ... V_{P-1}                            (nan where inactive)
#   probe PARAM_INDEX VALUE
# and prints "LOG_BELOW LOG_ABOVE" for every probe, in order.
import math
import sys

import numpy as np
from scipy.special import logsumexp, ndtr


def forgetting(n, keep):
    """hyperopt's linear_forgetting_weights: the oldest n - keep ramp up from 1/n."""
    if keep == 0 or n <= keep:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - keep), np.ones(keep)])


def parzen(obs, prior_weight, prior_mu, prior_sigma, keep):
    """hyperopt's adaptive_parzen_normal: weights, means and widths, the prior among them."""
    obs = np.asarray(obs, dtype=float)
    n = obs.size
    if n == 0:
        mus, sigmas, weights, at = np.array([prior_mu]), np.array([prior_sigma]), np.ones(1), 0
    elif n == 1:
        at = 0 if prior_mu < obs[0] else 1
        mus = np.insert(obs, at, prior_mu)
        sigmas = np.insert(np.array([0.5 * prior_sigma]), at, prior_sigma)
        weights = np.ones(2)
    else:
        order = np.argsort(obs, kind="stable")
        at = int(np.searchsorted(obs[order], prior_mu, side="left"))
        mus = np.insert(obs[order], at, prior_mu)
        gaps = np.diff(mus)
        sigmas = np.empty(n + 1)
        sigmas[1:-1] = np.maximum(gaps[:-1], gaps[1:])
        sigmas[0], sigmas[-1] = gaps[0], gaps[-1]
        weights = np.insert(forgetting(n, keep)[order], at, 1.0)
    sigmas = np.clip(sigmas, prior_sigma / min(100.0, 1.0 + mus.size), prior_sigma)
    sigmas[at] = prior_sigma
    weights[at] = prior_weight
    return weights / weights.sum(), mus, sigmas


def mass(a, b, mus, sigmas):
    """P(a < X < b) for each normal component, without cancellation in the upper tail."""
    za, zb = (a - mus) / sigmas, (b - mus) / sigmas
    return np.where(za > 0, ndtr(-za) - ndtr(-zb), ndtr(zb) - ndtr(za))


def numeric_log_density(kind, low, high, q, weights, mus, sigmas, x):
    """GMM1_lpdf / LGMM1_lpdf of a value, the truncation mass divided out for every kind."""
    log_kind = kind in ("loguniform", "qloguniform")
    lo, hi = (math.log(low), math.log(high)) if log_kind else (low, high)
    if kind == "normal":
        p_accept = 1.0
    else:
        p_accept = np.sum(weights * mass(lo, hi, mus, sigmas))
    if kind in ("quniform", "qloguniform"):
        a, b = max(x - q / 2.0, low), min(x + q / 2.0, high)
        if not a < b:
            return -math.inf
        if log_kind:
            a, b = math.log(a), math.log(b)
        return math.log(np.sum(weights * mass(a, b, mus, sigmas))) - math.log(p_accept)
    t = math.log(x) if log_kind else x
    z = (t - mus) / sigmas
    terms = np.log(weights) - np.log(sigmas) - 0.5 * z * z - 0.5 * math.log(2 * math.pi)
    value = logsumexp(terms) - math.log(p_accept)
    return value - math.log(x) if log_kind else value


def main():
    options, params, trials, probes = None, [], [], []
    with open(sys.argv[1]) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "options":
                options = [float(v) for v in w[1:]]
            elif w[0] == "param":
                nopt = int(w[7])
                params.append(
                    dict(kind=w[1], low=float(w[2]), high=float(w[3]), q=float(w[4]),
                         mu=float(w[5]), sigma=float(w[6]),
                         p=np.array([float(v) for v in w[8:8 + nopt]])))
            elif w[0] == "trial":
                trials.append((int(w[1]), w[2], float(w[3]), [float(v) for v in w[4:]]))
            elif w[0] == "probe":
                probes.append((int(w[1]), float(w[2])))
    _, gamma, max_below, _, prior_weight, keep = options
    keep = int(keep)
    trials.sort(key=lambda t: t[0])
    losses = np.array([t[2] if t[1] == "ok" else math.inf for t in trials])
    n_below = min(int(np.ceil(gamma * np.sqrt(len(losses)))), int(max_below))
    below_ids = set(np.argsort(losses, kind="stable")[:n_below].tolist())

    for index, x in probes:
        par = params[index]
        kind = par["kind"]
        groups = ([], [])
        for position, (_, _, _, values) in enumerate(trials):
            v = values[index]
            if not math.isnan(v):
                groups[0 if position in below_ids else 1].append(v)
        out = []
        for obs in groups:
            if kind in ("choice", "randint"):
                if kind == "choice":
                    k = par["p"].size
                    prior = k * prior_weight * par["p"]
                    cats = np.asarray(obs, dtype=int)
                    c = int(x)
                else:
                    k = int(par["high"] - par["low"])
                    prior = np.full(k, prior_weight)
                    cats = np.asarray(obs, dtype=int) - int(par["low"])
                    c = int(x - par["low"])
                counts = np.bincount(cats, weights=forgetting(len(obs), keep), minlength=k)
                p = (counts + prior) / np.sum(counts + prior)
                out.append(math.log(p[c]))
                continue
            if kind == "normal":
                prior_mu, prior_sigma = par["mu"], par["sigma"]
                t = np.asarray(obs, dtype=float)
            elif kind in ("loguniform", "qloguniform"):
                lo, hi = math.log(par["low"]), math.log(par["high"])
                prior_mu, prior_sigma = 0.5 * (lo + hi), hi - lo
                t = np.log(np.maximum(np.asarray(obs, dtype=float), par["low"]))
            else:
                prior_mu, prior_sigma = 0.5 * (par["low"] + par["high"]), par["high"] - par["low"]
                t = np.asarray(obs, dtype=float)
            weights, mus, sigmas = parzen(t, prior_weight, prior_mu, prior_sigma, keep)
            out.append(numeric_log_density(kind, par["low"], par["high"], par["q"], weights, mus,
                                           sigmas, x))
        print("%.17g %.17g" % tuple(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
