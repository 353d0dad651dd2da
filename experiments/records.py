"""What a run records about each model: its key, its whole cost curve, and
whether it collapsed.

- ``model_key(seed, name)``: each model's ``jax.random`` key comes from the
  seed and the model's own name, fold_in(key(seed), crc32(name)), so a model
  gets the same numbers whichever other models run beside it (``--model deep``
  equals the deep row of the run of all three). crc32 is stable across
  processes and Python versions, unlike ``hash()``.
- ``cost_curve(costs)``: the cost of every iteration for metrics.json. Runs of
  at most ``MAX_CURVE_POINTS`` iterations keep every one; longer runs keep
  every k-th, k = ceil(n / MAX_CURVE_POINTS), plus the last, so 10^6
  iterations keep 100,001 points (the curve of a descent changes little over
  k = 10 iterations, and the last value is exact). Non-finite costs are null.
- ``collapse(...)``: the signs, in the lecture's terms, that a network
  collapsed to a constant prediction (all hidden ReLU units dead, every
  prediction one class, the cost flat for a long stretch), and a hint.
"""

import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.deep import model_cost, model_forward

MAX_CURVE_POINTS = 100_000
FLAT_RTOL = 1e-6  # |J_i - J_last| <= FLAT_RTOL * max(1, |J_last|): no change
FLAT_FRACTION = 0.2  # flat over at least this share of the run is "long"


def model_key(seed: int, name: str) -> jax.Array:
    """fold_in(key(seed), crc32(name)): the model's key, whoever runs beside it."""
    return jax.random.fold_in(jax.random.key(int(seed)), zlib.crc32(name.encode()))


def cost_curve(costs) -> dict:
    """{"iterations": n, "every": k, "J": [...]}: J at iterations 0, k, 2k, ...
    and at n - 1 (k = 1 up to ``MAX_CURVE_POINTS`` iterations; see the module
    doc). costs: (n,) numpy, costs[i] is J before update i."""
    costs = np.asarray(costs, np.float64).reshape(-1)
    n = len(costs)
    every = max(1, math.ceil(n / MAX_CURVE_POINTS))
    its = list(range(0, n, every))
    if n and its[-1] != n - 1:
        its.append(n - 1)
    values = [float(c) if math.isfinite(c) else None for c in costs[its]]
    return {"iterations": n, "every": every, "J": values}


def mean_curve(rows) -> dict:
    """``cost_curve`` of the mean over models (seeds) of their cost rows; rows
    may differ in length (a stopped model's row is cut), each iteration's mean
    is over the rows that reach it."""
    rows = [np.asarray(r, np.float64).reshape(-1) for r in rows]
    n = max((len(r) for r in rows), default=0)
    padded = np.full((len(rows), n), np.nan)
    for out, r in zip(padded, rows, strict=True):
        out[: len(r)] = r
    counts = np.sum(~np.isnan(padded), axis=0)
    sums = np.nansum(padded, axis=0)
    return cost_curve(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))


def stacked_cost(params, X, Y, activations, lambd=None) -> np.ndarray:
    """J of every model of stacked params (leaves (N, ...)) on (X, Y), (N,):
    one forward pass each, no dropout, plus lambd / (2m) sum ||W||^2 if lambd."""
    acts = tuple(activations)
    X, Y = jnp.asarray(X), jnp.asarray(Y)

    def one(p):
        return model_cost(p, X, Y, acts, lambd=lambd)

    return np.asarray(jax.vmap(one)(params))


def sweep_final_costs(run_final, params, stops, X, Y, activations, lambd=None):
    """J of the params a sweep returns, (N,): the driver's
    (``RunResult.final_cost``) unless a model was stopped and trained again
    alone (``stops``), then J of the kept ``params``, computed here."""
    if run_final is not None and not any(stops):
        return np.asarray(run_final)
    return stacked_cost(params, X, Y, activations, lambd)


def curve_points(curve: dict) -> tuple[np.ndarray, np.ndarray]:
    """The (iterations, J) arrays of a ``cost_curve`` record (null -> NaN)."""
    n, every = int(curve["iterations"]), int(curve["every"])
    its = list(range(0, n, every))
    if n and its[-1] != n - 1:
        its.append(n - 1)
    J = np.array([np.nan if v is None else v for v in curve["J"]], np.float64)
    return np.asarray(its[: len(J)]), J


def flat_stretch(costs) -> int:
    """How many of the last iterations have the last cost, to FLAT_RTOL."""
    costs = np.asarray(costs, np.float64).reshape(-1)
    if not len(costs) or not math.isfinite(costs[-1]):
        return 0
    same = np.abs(costs - costs[-1]) <= FLAT_RTOL * max(1.0, abs(costs[-1]))
    changed = np.flatnonzero(~same)
    return len(costs) - (int(changed[-1]) + 1 if len(changed) else 0)


def dead_units(params, X, activations) -> list[dict]:
    """Per hidden relu layer l: units whose A[l] is 0 on every example of X."""
    _, caches = model_forward(params, jnp.asarray(X), activations)
    out = []
    for l in range(1, len(caches)):  # caches[l].A_prev is A[l], a hidden layer
        if activations[l - 1] != "relu":
            continue
        A = np.asarray(caches[l].A_prev)
        dead = int(np.sum(np.all(A == 0, axis=1)))
        out.append({"layer": l, "dead": dead, "units": int(A.shape[0])})
    return out


def collapse(costs, params, X, activations, predictions, classes) -> dict | None:
    """The collapse record of a model, or None when it did not collapse.

    A model collapsed when every unit of some hidden relu layer is dead (no
    signal passes it: A[l] = 0, so dZ[l] = 0 and nothing below it learns), or
    when it predicts one class for every training example and its cost has
    not changed over the last FLAT_FRACTION of the run (a model still on its
    way down, predicting one class for now, has not collapsed).

    Args:
        costs: the run's costs, (n,).
        params, X, activations: the trained model and its training inputs
            (n_x, m).
        predictions: its class predictions on X, (m,) integers.
        classes: the class names, indexed by prediction.

    Returns:
        {"dead_layers", "one_class", "flat_iterations", "hint"} or None.
    """
    layers = dead_units(params, X, activations)
    dead = [d["layer"] for d in layers if d["dead"] == d["units"]]
    predicted = np.unique(np.asarray(predictions).reshape(-1))
    one = classes[int(predicted[0])] if len(predicted) == 1 else None
    costs = np.asarray(costs, np.float64).reshape(-1)
    flat = flat_stretch(costs)
    long_flat = len(costs) > 0 and flat >= max(2, FLAT_FRACTION * len(costs))
    if not dead and not (one is not None and long_flat):
        return None
    signs = []
    if dead:
        which = ", ".join(str(layer) for layer in dead)
        signs.append(
            f"every ReLU unit of hidden layer {which} is dead (A = 0 on all "
            f"{np.shape(X)[1]} training examples, so dZ = 0 and no gradient "
            "reaches the layers below)"
        )
    if one is not None:
        signs.append(f'it predicts "{one}" for every training example')
    if long_flat:
        signs.append(
            f"the cost has not changed for the last {flat} iterations "
            f"(J = {costs[-1]:.6f})"
        )
    advice = (
        "A learning rate too large kills ReLUs: try a smaller --learning-rate, "
        "another --init, or --hidden leaky_relu."
        if dead
        else "Try a smaller --learning-rate."
    )
    hint = f"collapsed to a constant prediction: {'; '.join(signs)}. {advice}"
    return {
        "dead_layers": dead,
        "dead_units": layers,
        "one_class": one,
        "flat_iterations": flat,
        "hint": hint,
    }
