"""Hyperparameter sweeps: N models trained at once, one compiled ``vmap`` of a scan.

The lecture's idea -> code -> experiment loop, fast: instead of N runs of

    repeat num_iterations times:
        W[l] := W[l] - alpha dW[l],   b[l] := b[l] - alpha db[l]

one after another, ``sweep`` maps the whole ``lax.scan`` run over a leading model
axis with ``jax.vmap``. What may differ per model:

    learning_rates   alpha                    (N,)
    lambds           L2 strength lambd        (N,)
    keep_probs       inverted-dropout keep    (N,)
    keys             dropout / shuffle keys   (N,) keys
    params           initial parameters       stacked: every leaf (N, ...)

Each model sees exactly what ``jaxnet.train.fit`` would give it with the same
arguments, so a sweep equals N separate runs (tested in float64). Where the data
X is shared, vmap turns the N first-layer products W[1] X into one larger product
(N * n[1], n[0]) x (n[0], m), which keeps the CPU's vector units busier than N
small ones.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxnet.deep import check_activations, check_inputs
from jaxnet.params import Params, init_params
from jaxnet.train import accuracy, check_keep_prob, init_state, make_step, run_steps


class SweepResult(NamedTuple):
    """What ``sweep`` returns; index i is model i.

    Attributes:
        params: the trained parameters, stacked: W[l] (N, n[l], n[l-1]), b[l]
            (N, n[l], 1).
        costs: cost before every update, (N, num_iterations).
        train_accuracy: fraction right on (X, Y) after training, (N,).
        test_accuracy: the same on (X_test, Y_test), (N,), or None.
    """

    params: Params
    costs: jax.Array
    train_accuracy: jax.Array
    test_accuracy: jax.Array | None


def init_stacked_params(
    keys: jax.Array, layer_dims: Sequence[int], method: str = "small", dtype=jnp.float32
) -> Params:
    """One ``init_params`` per key, stacked: leaf i of every array is model i.

    Args:
        keys: N ``jax.random`` keys, (N,).
        layer_dims: [n[0], ..., n[L]].
        method, dtype: as for ``jaxnet.params.init_params``.

    Returns:
        Params with W[l] (N, n[l], n[l-1]) and b[l] (N, n[l], 1).
    """
    return jax.vmap(lambda k: init_params(k, layer_dims, method, dtype))(keys)


def unstack(params: Params, i: int) -> Params:
    """Model i of stacked params: W[l] (n[l], n[l-1]), b[l] (n[l], 1)."""
    return jax.tree.map(lambda leaf: leaf[i], params)


def _as_column(values, n: int | None, dtype, name: str):
    """None stays None; a scalar or a length-N sequence becomes an (N,) array."""
    if values is None:
        return None
    values = jnp.asarray(values, dtype)
    if values.ndim == 0:
        return values if n is None else jnp.full((n,), values)
    if values.ndim != 1 or (n is not None and values.shape[0] != n):
        raise ValueError(
            f"{name} must be a scalar or have shape ({n},); got {values.shape}"
        )
    return values


@partial(
    jax.jit,
    static_argnames=(
        "activations",
        "num_iterations",
        "grad",
        "batch_size",
        "make_optimizer",
        "stacked",
    ),
)
def _sweep(
    params,
    X,
    Y,
    X_test,
    Y_test,
    keys,
    learning_rates,
    lambds,
    keep_probs,
    *,
    activations,
    num_iterations,
    grad,
    batch_size,
    make_optimizer,
    stacked,
):
    def run_one(p, key, learning_rate, lambd, keep_prob):
        optimizer = make_optimizer(learning_rate)
        step = make_step(
            activations,
            optimizer,
            grad=grad,
            lambd=lambd,
            keep_prob=1.0 if keep_prob is None else keep_prob,
            batch_size=batch_size,
            dropout=keep_prob is not None,
        )
        state, costs = run_steps(
            step, init_state(p, optimizer, key), X, Y, num_iterations
        )
        train_acc = accuracy(state.params, X, Y, activations)
        test_acc = (
            None
            if X_test is None
            else accuracy(state.params, X_test, Y_test, activations)
        )
        return state.params, costs, train_acc, test_acc

    # None (lambd or keep_prob not swept) is an empty pytree: its axis is moot.
    in_axes = (0 if stacked else None, 0, 0, 0, 0)
    return jax.vmap(run_one, in_axes)(params, keys, learning_rates, lambds, keep_probs)


def sweep(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    activations: Sequence[str],
    num_iterations: int,
    learning_rates=0.0075,
    lambds=None,
    keep_probs=None,
    keys: jax.Array | None = None,
    num_models: int | None = None,
    stacked: bool | None = None,
    grad: str = "manual",
    batch_size: int | None = None,
    make_optimizer: Callable[..., optax.GradientTransformation] = optax.sgd,
    X_test: ArrayLike | None = None,
    Y_test: ArrayLike | None = None,
) -> SweepResult:
    """Train N models in one compiled call: ``vmap`` over a whole ``fit`` run.

    Model i trains exactly as ``fit(params_i, X, Y, learning_rate=lr[i],
    lambd=lambd[i], keep_prob=keep_prob[i], key=keys[i], ...)`` would. Every
    hyperparameter is a scalar (shared) or a length-N sequence (swept); N comes
    from whichever is a sequence, from ``keys``, from stacked params or from
    ``num_models``, and all must agree.

    Args:
        params: one Params shared by all models, or stacked Params (leading axis
            N on every leaf, e.g. from ``init_stacked_params``). Their dtype sets
            the run's dtype.
        X: (n_x, m), shared by all models. Y: (n[L], m).
        activations: one name per layer.
        num_iterations: gradient steps (full batch) or epochs (with batch_size).
        learning_rates: alpha, scalar or (N,); passed to ``make_optimizer``.
        lambds: L2 strength, scalar or (N,); None: no L2 term at all.
        keep_probs: inverted-dropout keep probability, scalar or (N,); None: no
            dropout. A swept 1.0 draws all-ones masks: the same numbers as ``fit``
            without dropout.
        keys: (N,) ``jax.random`` keys for dropout and shuffling; default: N
            copies of ``jax.random.key(0)``, ``fit``'s default.
        num_models: N, when nothing else says it.
        stacked: whether params carry the model axis; default: guessed from the
            rank of the first W (3 means stacked).
        grad: "manual" (hand-written backward) or "autodiff" (jax.grad).
        batch_size: minibatch size (None: full batch).
        make_optimizer: learning rate -> optax transformation (default
            ``optax.sgd``, the lecture's plain gradient descent).
        X_test, Y_test: optional held-out set for ``test_accuracy``.

    Returns:
        SweepResult(params (stacked), costs (N, num_iterations), train_accuracy
        (N,), test_accuracy (N,) or None).
    """
    activations = check_activations(activations, len(params))
    if stacked is None:
        stacked = jnp.ndim(params[0]["W"]) == 3
    dtype = params[0]["W"].dtype
    X, Y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
    sizes = {
        name: len(v)
        for name, v in [
            ("learning_rates", learning_rates),
            ("lambds", lambds),
            ("keep_probs", keep_probs),
            ("keys", keys),
        ]
        if v is not None and np.ndim(v) == 1
    }
    if stacked:
        sizes["params"] = params[0]["W"].shape[0]
    if num_models is not None:
        sizes["num_models"] = num_models
    if len(set(sizes.values())) != 1:
        raise ValueError(
            "cannot tell the number of models N: give a length-N sequence, keys, "
            f"stacked params or num_models, all agreeing; got sizes {sizes or 'none'}"
        )
    (n,) = set(sizes.values())
    check_inputs(unstack(params, 0) if stacked else params, X, Y)
    if keys is None:
        keys = jnp.stack([jax.random.key(0)] * n)
    if keep_probs is not None:
        for keep_prob in jnp.atleast_1d(jnp.asarray(keep_probs)).tolist():
            check_keep_prob(keep_prob)
    if X_test is not None:
        X_test, Y_test = jnp.asarray(X_test, dtype), jnp.asarray(Y_test, dtype)
    return SweepResult(
        *_sweep(
            params,
            X,
            Y,
            X_test,
            Y_test,
            keys,
            _as_column(learning_rates, n, dtype, "learning_rates"),
            _as_column(lambds, n, dtype, "lambds"),
            _as_column(keep_probs, n, dtype, "keep_probs"),
            activations=activations,
            num_iterations=num_iterations,
            grad=grad,
            batch_size=batch_size,
            make_optimizer=make_optimizer,
            stacked=stacked,
        )
    )
