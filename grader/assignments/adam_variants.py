"""Trusted models of the ways real code writes Adam, to name which one a student's trajectory
follows. The handout's one-step test fixes the update itself; it leaves open when the step
counter advances and where weight decay goes, and ASSIGNMENTS.md ("Fairness decisions") says
which of those earn the points. Everything here runs in the parent on plain arrays."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from grader.kinds.base import rel_error

# When t advances: once per step(), once per layer update call, once per parameter (all accepted).
COUNTERS = {"step": "t counted once per step()", "layer": "t counted once per layer update",
            "parameter": "t counted once per parameter"}


@dataclass(frozen=True)
class Decay:
    name: str
    verdict: str  # "pass", "flag" (points and a note for the TA) or "fail"
    says: str  # how the report names it


DECAYS = (
    Decay("decoupled", "pass", "decoupled weight decay (theta - lr*update - wd*theta, or wd applied before the update)"),
    Decay("after", "pass", "decoupled weight decay applied after the update ((theta - lr*update) * (1 - wd))"),
    Decay("coupled", "flag", "coupled weight decay: wd*theta is added to the gradient before the moments, so this "
                             "AdamW equals Adam + L2"),
    Decay("lr_scaled", "flag", "decoupled weight decay scaled by the learning rate (theta - lr*(update + wd*theta), "
                               "PyTorch's AdamW form; the handout's SGD rule uses wd*theta)"),
    Decay("none", "fail", "no weight decay at all: the parameters equal Adam without weight decay"),
    Decay("flipped", "fail", "weight decay with a flipped sign (theta grows by wd*theta instead of shrinking)"),
    Decay("flipped_coupled", "fail", "coupled weight decay with a flipped sign (the gradient gets -wd*theta)"),
)


@dataclass(frozen=True)
class Match:
    counter: str
    decay: Decay
    error: float


def simulate(arrays: dict[str, np.ndarray], params: dict, counter: str, decay: str, bias_first: bool) -> dict:
    """Parameters after `steps` Adam steps on a network of fc layers w0, b0, w1, b1, ... whose
    gradients at each step are given (gw{step}_{j}, gb{step}_{j})."""
    lr, b1, b2 = params["lr"], params.get("beta1", 0.9), params.get("beta2", 0.999)
    eps, wd, t = params.get("eps", 1e-8), params.get("weight_decay", 0.0), params.get("t", 0)
    layers = sum(1 for k in arrays if k[0] == "w" and k[1:].isdigit())
    theta = {k: arrays[k].astype(np.float64).copy() for k in arrays if k[0] in "wb" and k[1:].isdigit()}
    m = {k: np.zeros_like(v) for k, v in theta.items()}
    v = {k: np.zeros_like(x) for k, x in theta.items()}
    for step in range(params["steps"]):
        if counter == "step":
            t += 1
        for j in range(layers):
            if counter == "layer":
                t += 1
            order = (f"b{j}", f"w{j}") if bias_first else (f"w{j}", f"b{j}")
            for key in order:
                if counter == "parameter":
                    t += 1
                g = arrays[f"g{key[0]}{step}_{j}"]
                if decay == "coupled":
                    g = g + wd * theta[key]
                elif decay == "flipped_coupled":
                    g = g - wd * theta[key]
                m[key] = b1 * m[key] + (1 - b1) * g
                v[key] = b2 * v[key] + (1 - b2) * g * g
                update = (m[key] / (1 - b1 ** t)) / (np.sqrt(v[key] / (1 - b2 ** t)) + eps)
                old = theta[key]
                if decay == "decoupled":
                    theta[key] = old - lr * update - wd * old
                elif decay == "after":
                    theta[key] = (old - lr * update) * (1 - wd)
                elif decay == "lr_scaled":
                    theta[key] = old - lr * (update + wd * old)
                elif decay == "flipped":
                    theta[key] = old - lr * update + wd * old
                else:  # none, coupled, flipped_coupled: the decay (if any) is in the gradient
                    theta[key] = old - lr * update
    return theta


def classify(got: dict[str, np.ndarray], arrays: dict[str, np.ndarray], params: dict, tol: float) -> Match:
    """The first variant (accepted ones first) the student's parameters follow within `tol`,
    else the closest one (its error is then above `tol`). With weight decay 0 only the counters
    are told apart."""
    decays = DECAYS if params.get("weight_decay", 0.0) else DECAYS[:1]
    best: Match | None = None
    for decay, counter, bias_first in product(decays, COUNTERS, (False, True)):
        want = simulate(arrays, params, counter, decay.name, bias_first)
        error = max((rel_error(got.get(k, np.full(1, np.nan)), w) for k, w in want.items()), default=np.inf)
        if error <= tol:
            return Match(counter, decay, error)
        if best is None or error < best.error:
            best = Match(counter, decay, error)
    return best
