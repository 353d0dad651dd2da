"""Training: gradient steps and whole runs compiled as one ``lax.scan``.

The lecture's gradient descent, for every layer l:

    W[l] := W[l] - alpha dW[l]        b[l] := b[l] - alpha db[l]

``update_params`` writes that out; ``optimizer=`` takes any
``optax.GradientTransformation`` (sgd, sgd with momentum, adam ...) instead.
Plain gradient descent is ``optax.sgd(alpha)``, bit for bit the same update.

The gradient comes from the hand-written backward pass (``grad="manual"``) or
from ``jax.grad`` of the cost (``grad="autodiff"``); both see the same dropout
masks. A run of N iterations is one ``lax.scan``: one compilation, no Python and
no host round-trip per step. Minibatches reshuffle the m columns every epoch with
a ``jax.random`` key; the last, smaller batch is a step of its own (static
shapes, nothing dropped).
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxnet.deep import (
    check_activations,
    check_keep_prob,
    model_cost,
    model_value_and_grads,
    predict_proba,
)
from jaxnet.params import Grads, Params

GRAD_SOURCES = ("manual", "autodiff")


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (a pytree)."""

    params: Params
    opt_state: Any
    key: jax.Array


def update_params(params: Params, grads: Grads, learning_rate) -> Params:
    """W[l] := W[l] - alpha dW[l], b[l] := b[l] - alpha db[l] for every layer."""
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)


def value_and_grads(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    activations: Sequence[str],
    *,
    grad: str = "manual",
    lambd=0.0,
    keep_prob=1.0,
    dropout_key=None,
) -> tuple[jax.Array, Grads]:
    """The cost J and its gradient, from the hand-written backward or jax.grad.

    Args:
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
        X: (n_x, m). Y: (n[L], m).
        activations: one name per layer.
        grad: "manual" (the lecture's backward pass) or "autodiff" (jax.grad).
        lambd: L2 strength. keep_prob, dropout_key: inverted dropout.

    Returns:
        J (scalar) and grads with the structure of params.
    """
    kwargs = dict(lambd=lambd, keep_prob=keep_prob, dropout_key=dropout_key)
    if grad == "manual":
        return model_value_and_grads(params, X, Y, activations, **kwargs)
    if grad == "autodiff":
        return jax.value_and_grad(model_cost)(params, X, Y, activations, **kwargs)
    raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")


def make_train_step(
    activations: Sequence[str],
    optimizer: optax.GradientTransformation,
    *,
    grad: str = "manual",
    lambd=0.0,
    keep_prob=1.0,
    dropout: bool | None = None,
) -> Callable:
    """One gradient step on a batch: ``step(state, X, Y) -> (state, cost)``.

    Args:
        activations: one name per layer.
        optimizer: an optax transformation, e.g. ``optax.sgd(0.0075)``.
        grad: "manual" or "autodiff".
        lambd: L2 strength (may be a traced value in sweeps).
        keep_prob: probability of keeping a hidden unit (may be traced).
        dropout: apply dropout masks; default: keep_prob is not the literal 1.

    Returns:
        A pure function; jit it, or scan it with ``run_steps``.
    """
    activations = tuple(activations)
    if grad not in GRAD_SOURCES:
        raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")
    check_keep_prob(keep_prob)
    if dropout is None:
        dropout = not (isinstance(keep_prob, int | float) and keep_prob == 1)

    def step(state: TrainState, X, Y):
        key, dropout_key = jax.random.split(state.key)
        cost, grads = value_and_grads(
            state.params,
            X,
            Y,
            activations,
            grad=grad,
            lambd=lambd,
            keep_prob=keep_prob,
            dropout_key=dropout_key if dropout else None,
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, key), cost

    return step


def make_epoch_step(step: Callable, batch_size: int) -> Callable:
    """One epoch of minibatch steps: ``epoch(state, X, Y) -> (state, mean cost)``.

    The m columns are permuted with a fresh key, cut into m // batch_size full
    batches (scanned) and, if m % batch_size > 0, one last smaller batch; every
    example is used exactly once per epoch. The epoch's cost is the mean of the
    batch costs weighted by batch size.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")

    def epoch(state: TrainState, X, Y):
        m = X.shape[1]
        key, perm_key = jax.random.split(state.key)
        state = state._replace(key=key)
        perm = jax.random.permutation(perm_key, m)
        X, Y = X[:, perm], Y[:, perm]
        num_full, rest = divmod(m, batch_size)
        total = jnp.zeros((), X.dtype)
        if num_full:
            cut = num_full * batch_size

            def batches(a):
                return (
                    a[:, :cut].reshape(a.shape[0], num_full, batch_size).swapaxes(0, 1)
                )

            state, costs = jax.lax.scan(
                lambda s, xy: step(s, *xy), state, (batches(X), batches(Y))
            )
            total = total + jnp.sum(costs) * batch_size
        if rest:
            state, cost = step(state, X[:, m - rest :], Y[:, m - rest :])
            total = total + cost * rest
        return state, total / m

    return epoch


def run_steps(step: Callable, state: TrainState, X, Y, num_steps: int):
    """Apply ``step`` num_steps times as one ``lax.scan``.

    Returns:
        The final state and the costs, (num_steps,): cost i is J before update i.
    """
    return jax.lax.scan(lambda s, _: step(s, X, Y), state, None, length=num_steps)


def make_optimizer(optimizer, learning_rate) -> optax.GradientTransformation:
    """``optimizer`` if given, else plain gradient descent ``optax.sgd(alpha)``."""
    return optimizer if optimizer is not None else optax.sgd(learning_rate)


def make_step(
    activations: Sequence[str],
    optimizer: optax.GradientTransformation,
    *,
    grad: str = "manual",
    lambd=0.0,
    keep_prob=1.0,
    batch_size: int | None = None,
    dropout: bool | None = None,
) -> Callable:
    """One iteration: a full-batch step, or an epoch of minibatches."""
    step = make_train_step(
        activations,
        optimizer,
        grad=grad,
        lambd=lambd,
        keep_prob=keep_prob,
        dropout=dropout,
    )
    return step if batch_size is None else make_epoch_step(step, batch_size)


def init_state(params: Params, optimizer, key=None) -> TrainState:
    """The starting TrainState: params, the optimizer's state, and a key."""
    key = jax.random.key(0) if key is None else key
    return TrainState(params, optimizer.init(params), key)


@partial(
    jax.jit,
    static_argnames=(
        "activations",
        "num_iterations",
        "optimizer",
        "grad",
        "batch_size",
    ),
)
def _fit(
    params,
    X,
    Y,
    key,
    learning_rate,
    lambd,
    keep_prob,
    *,
    activations,
    num_iterations,
    optimizer,
    grad,
    batch_size,
):
    optimizer = make_optimizer(optimizer, learning_rate)
    step = make_step(
        activations,
        optimizer,
        grad=grad,
        lambd=lambd,
        keep_prob=keep_prob,
        batch_size=batch_size,
        dropout=keep_prob is not None,
    )
    state, costs = run_steps(
        step, init_state(params, optimizer, key), X, Y, num_iterations
    )
    return state.params, costs


def fit(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    activations: Sequence[str],
    num_iterations: int,
    learning_rate: float = 0.0075,
    optimizer: optax.GradientTransformation | None = None,
    grad: str = "manual",
    lambd: float = 0.0,
    keep_prob: float = 1.0,
    batch_size: int | None = None,
    key=None,
) -> tuple[Params, jax.Array]:
    """Train for num_iterations as one compiled ``lax.scan`` (pure, no printing).

    Args:
        params: initial parameters (their dtype sets the run's dtype).
        X: (n_x, m). Y: (n[L], m).
        activations: one name per layer.
        num_iterations: gradient steps (full batch) or epochs (with batch_size).
        learning_rate: alpha for plain gradient descent (ignored with optimizer).
        optimizer: any optax transformation; default ``optax.sgd(learning_rate)``.
        grad: "manual" or "autodiff".
        lambd: L2 regularization strength.
        keep_prob: inverted-dropout keep probability for hidden layers (1 = off).
        batch_size: minibatch size (None = full batch, the lecture's default).
        key: ``jax.random`` key for shuffling and dropout.

    Returns:
        The trained params and the costs, (num_iterations,).
    """
    activations = check_activations(activations, len(params))
    check_keep_prob(keep_prob)
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    key = jax.random.key(0) if key is None else key
    dtype = params[0]["W"].dtype
    return _fit(
        params,
        X.astype(dtype),
        Y.astype(dtype),
        key,
        jnp.asarray(learning_rate, dtype),
        jnp.asarray(lambd, dtype) if lambd else None,
        jnp.asarray(keep_prob, dtype) if keep_prob != 1 else None,
        activations=activations,
        num_iterations=num_iterations,
        optimizer=optimizer,
        grad=grad,
        batch_size=batch_size,
    )


def predict(params: Params, X: ArrayLike, activations: Sequence[str]) -> jax.Array:
    """Predicted labels: (AL > 0.5) as 0/1, (1, m); argmax class (m,) for softmax."""
    AL = predict_proba(params, X, activations)
    if activations[-1] == "softmax":
        return jnp.argmax(AL, axis=0)
    return (AL > 0.5).astype(jnp.int32)


def accuracy(params: Params, X: ArrayLike, Y: ArrayLike, activations) -> jax.Array:
    """Fraction of examples predicted right, in [0, 1].

    Y is (1, m) of 0/1 for a sigmoid output, or one-hot (K, m) / integer labels
    (m,) for softmax.
    """
    predictions = predict(params, X, activations)
    Y = jnp.asarray(Y)
    if activations[-1] == "softmax":
        labels = jnp.argmax(Y, axis=0) if Y.ndim == 2 else Y
        correct = predictions == labels
    else:
        correct = predictions == Y.astype(predictions.dtype)
    return jnp.mean(correct.astype(jnp.result_type(float)))
