"""Decision boundaries: a grid over the plane, and training that photographs it.

A network on two inputs (x1, x2) splits the plane where its output crosses 1/2:

    A[L](x) = sigma(Z[L](x)) > 0.5   <=>   class 1

``grid(X, resolution, margin)`` lays a resolution x resolution grid of points
over the data (X's range plus a margin), as the columns of one (2, r*r) input.
``snapshot_trainer`` builds a pure run that trains as ``jaxnet.trainer`` does
(the same step, ``jaxnet.steps.iteration``) and, at chosen iterations (every
k, or any increasing list), evaluates A[L] on those points inside the compiled
run: a ``lax.scan`` over the snapshots around a loop of the steps between
them, so the whole film is one program with no Python loop per iteration and
no host round trip. Snapshot i is the output of the params after its[i]
updates (its[0] = 0: the initial params).
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnet.deep import predict_proba
from jaxnet.hyperparams import TrainOptions, check_count
from jaxnet.params import Params
from jaxnet.steps import run_steps
from jaxnet.trainer import pure_options, pure_start


class Grid(NamedTuple):
    """Points covering the plane around a data set.

    Attributes:
        points: the grid as examples in columns, (2, r * r); column
            i * r + j is the point (x[j], y[i]).
        x: the first coordinate's values, (r,), increasing.
        y: the second coordinate's values, (r,), increasing.

    ``values.reshape(r, r)`` of anything computed per point (A[L] (1, r * r))
    is laid out as ``matplotlib``'s ``contourf(x, y, values)`` expects: row i
    is y[i].
    """

    points: jax.Array
    x: jax.Array
    y: jax.Array


def grid(X: ArrayLike, resolution: int = 100, margin: float = 1.0) -> Grid:
    """A resolution x resolution grid over X's range widened by ``margin``.

    Args:
        X: points in the plane, (2, m), examples in columns.
        resolution: points per axis r (>= 2).
        margin: added on each side of [min, max] of each coordinate (>= 0).

    Returns:
        Grid(points (2, r * r), x (r,), y (r,)), in X's float dtype.

    Raises:
        ValueError: X is not (2, m) with m >= 1 and finite values, resolution
            is not an integer >= 2, or margin is negative or not finite.
    """
    r = check_count("resolution", resolution)
    if r < 2:
        raise ValueError(f"resolution must be an integer >= 2; got {r}")
    margin = float(margin)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0; got {margin}")
    X = jnp.asarray(X)
    if X.ndim != 2 or X.shape[0] != 2 or X.shape[1] < 1:
        raise ValueError(
            f"X must be (2, m) points in the plane, examples in columns; got shape "
            f"{X.shape}"
        )
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.result_type(float))
    if not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError("X has non-finite values (NaN or inf); repair them first")
    low = jnp.min(X, axis=1) - margin
    high = jnp.max(X, axis=1) + margin
    x = jnp.linspace(low[0], high[0], r, dtype=X.dtype)
    y = jnp.linspace(low[1], high[1], r, dtype=X.dtype)
    xx, yy = jnp.meshgrid(x, y)  # (r, r), row i is y[i]
    return Grid(jnp.stack([xx.reshape(-1), yy.reshape(-1)]), x, y)


def snapshot_iterations(num_iterations: int, at) -> np.ndarray:
    """The iterations at which ``snapshot_trainer`` photographs the network.

    Args:
        num_iterations: the run's length n.
        at: an integer k (every k iterations: 0, k, 2k, ... <= n) or a
            sequence of iterations, strictly increasing, in [0, n].

    Returns:
        The iterations, (S,) int64, in increasing order.

    Raises:
        ValueError: k not a positive integer, or a sequence that is empty, not
            strictly increasing, or outside [0, n].
    """
    n = check_count("num_iterations", num_iterations)
    if np.ndim(at) == 0:
        k = check_count("every", at)
        return np.arange(n // k + 1, dtype=np.int64) * k
    its = np.asarray(at)
    if (
        its.size == 0
        or not np.issubdtype(its.dtype, np.integer)
        or np.any(np.diff(its) <= 0)
        or its[0] < 0
        or its[-1] > n
    ):
        raise ValueError(
            f"snapshot iterations must be integers, strictly increasing, in [0, "
            f"{n}]; got {its.tolist()}"
        )
    return its.astype(np.int64)


class SnapshotRun(NamedTuple):
    """What a snapshot run returns.

    Attributes:
        params: the trained params after num_iterations updates.
        costs: J before every update, (num_iterations,).
        snapshots: A[L] on the points after ``its[i]`` updates, (S, n[L], p),
            its = ``snapshot_iterations(num_iterations, at)``.
    """

    params: Params
    costs: jax.Array
    snapshots: jax.Array


def snapshot_trainer(
    activations: Sequence[str],
    num_iterations: int,
    at,
    **options: Unpack[TrainOptions],
) -> Callable[..., SnapshotRun]:
    """Build ``run(params, X, Y, points) -> SnapshotRun``, pure and jittable.

    Training is ``jaxnet.trainer``'s with the same options (one optimizer
    state carried through the whole run); after ``its[i]`` updates (``its =
    snapshot_iterations(num_iterations, at)``) the output A[L] (no dropout) is
    evaluated on ``points``. The run is a ``lax.scan`` over the snapshots; the
    steps between two of them run in a ``lax.fori_loop`` whose length is a
    scanned value, so any schedule (every k, or denser early on) is one
    program. Iterations after the last snapshot run without one.

    Args:
        activations: one name per layer, the last an output.
        num_iterations: gradient steps (full batch) or epochs (batch_size).
        at: snapshot every ``at`` iterations (an integer), or at these
            iterations (a strictly increasing sequence in [0, num_iterations]).
        **options: as for ``jaxnet.trainer`` (learning_rate, optimizer, grad,
            lambd, keep_prob, batch_size, key; no first_layer or mesh).

    Returns:
        ``run(params, X, Y, points)``: params L dicts {"W": (n[l], n[l-1]),
        "b": (n[l], 1)}, X (n_x, m), Y (n[L], m), points (n_x, p) (a
        ``Grid``'s points for a plane); gives a ``SnapshotRun``.

    Raises:
        ValueError: a bad ``at`` (see ``snapshot_iterations``), an option out
            of range, or first_layer / mesh that the pure run cannot honour.
    """
    n = check_count("num_iterations", num_iterations)
    its = snapshot_iterations(n, at)
    gaps = np.diff(its, prepend=0).astype(np.int32)  # steps before snapshot i
    tail = n - int(its[-1])
    pure = pure_options("snapshot_trainer", activations, options)

    def run(params: Params, X, Y, points) -> SnapshotRun:
        step, state, X, Y = pure_start(pure, params, X, Y)
        dtype = X.dtype
        points = jnp.asarray(points, dtype)

        def one(i, carry):
            state, costs, done = carry
            state, cost = step(state, X, Y)
            return state, costs.at[done + i].set(cost.astype(dtype)), done

        def block(carry, gap):
            state, costs, done = carry
            state, costs, _ = jax.lax.fori_loop(0, gap, one, (state, costs, done))
            snapshot = predict_proba(state.params, points, pure.names)
            return (state, costs, done + gap), snapshot

        costs = jnp.full((n,), jnp.nan, dtype)
        start = (state, costs, jnp.int32(0))
        (state, costs, done), snapshots = jax.lax.scan(block, start, jnp.asarray(gaps))
        if tail:
            state, rest = run_steps(step, state, X, Y, tail)
            costs = jax.lax.dynamic_update_slice(costs, rest.astype(dtype), (n - tail,))
        return SnapshotRun(state.params, costs, snapshots)

    return run
