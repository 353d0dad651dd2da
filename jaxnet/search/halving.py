"""Successive halving: spend a budget on many candidates, keep the promising ones.

All n candidates train for r_0 = ``min_iterations`` iterations (epochs with
minibatches); the best n // eta by dev cost go on to r_1 = eta r_0, the best
of those to eta^2 r_0, ..., until one candidate is left or the full
``num_iterations`` R is reached (the last rung is cut to R). For n = 128, eta
= 2, r_0 = 1, R = 8:

    rung  trains to  candidates  candidate-iterations
    0     1          128         128
    1     2          64          64
    2     4          32          64
    3     8          16          64          total 320 = 40 full runs of 8

Compaction: a rung's survivors are gathered out of the vmapped state with one
index per leaf (``jax.tree.map(lambda leaf: leaf[kept], state)``: params,
optimizer state, keys, epoch position, and the hyperparameters likewise), so
the next rung's program is vmapped over the survivors only and the dropped
candidates cost nothing more. A new batch size means a new compiled program
(one per rung and shape group, a second or two each); the numbers of every
survivor are unchanged by the gather (it copies, computes nothing).
"""

import math

import numpy as np

from jaxnet.hyperparams import check_count
from jaxnet.search.space import SpaceError


def check_eta(eta) -> float | None:
    """eta as a float > 1, or None (no halving).

    Raises:
        SpaceError: not a number, not finite, or <= 1 (nothing would be dropped).
    """
    if eta is None:
        return None
    if isinstance(eta, bool | np.bool_ | str | bytes):
        raise SpaceError(f"eta must be a number > 1 (keep 1/eta per rung); got {eta!r}")
    try:
        value = float(eta)
    except (TypeError, ValueError):
        raise SpaceError(
            f"eta must be a number > 1 (keep 1/eta per rung); got {eta!r}"
        ) from None
    if not (math.isfinite(value) and value > 1):
        raise SpaceError(
            f"eta must be a number > 1 (each rung keeps the best 1/eta); got {eta!r}"
        )
    return value


def schedule(
    num_candidates: int, eta: float | None, min_iterations: int, num_iterations: int
) -> list[tuple[int, int]]:
    """The rungs: [(train to this iteration, candidates training)], in order.

    Without eta: one rung, every candidate to num_iterations.

    Raises:
        SpaceError: num_iterations (the budget of one full run) smaller than
            one chunk of ``min_iterations``.
    """
    n = check_count("num_candidates", num_candidates)
    R = check_count("num_iterations", num_iterations)
    r = check_count("min_iterations", min_iterations)
    if r > R:
        raise SpaceError(
            f"num_iterations = {R} is smaller than one chunk (min_iterations = {r}): "
            f"give num_iterations >= {r} or a smaller min_iterations"
        )
    if eta is None:
        return [(R, n)]
    rungs = []
    until = r
    while True:
        rungs.append((min(until, R), n))
        if until >= R or n <= 1:
            return rungs
        n = max(1, int(n // eta))
        until = R if n == 1 else max(until + 1, int(round(until * eta)))


def keep_best(dev_costs: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` lowest dev costs, best first (NaN and inf last;
    ties keep the lower index: a stable sort)."""
    costs = np.where(np.isfinite(dev_costs), dev_costs, np.inf)
    return np.argsort(costs, kind="stable")[:count]
