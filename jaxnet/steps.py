"""One gradient step, an epoch of minibatch steps, and N steps as one scan.

The lecture's gradient descent, for every layer l:

    W[l] := W[l] - alpha dW[l]        b[l] := b[l] - alpha db[l]

The gradient comes from the hand-written backward pass (``grad="manual"``) or
from ``jax.grad`` of the cost (``grad="autodiff"``); both see the same dropout
masks. The update is any optax transformation (plain gradient descent is
``optax.sgd(alpha)``, bit for bit the rule above). Minibatches reshuffle the m
columns every epoch with a ``jax.random`` key; the last, smaller batch is a step
of its own (static shapes, nothing dropped).

Everything here is pure and traceable; ``jaxnet.driver`` compiles it.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.distributed import constrain_examples, constrain_replicated
from jaxnet.hyperparams import GRAD_SOURCES, Hyperparams, TrainConfig, check_count
from jaxnet.params import Grads, Params


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (a pytree).

    Attributes:
        params: the network's parameters.
        opt_state: the optimizer's state (it holds the learning rate).
        key: the ``jax.random`` key for dropout masks and shuffling.
    """

    params: Params
    opt_state: Any
    key: jax.Array


def init_state(params: Params, optimizer, key=None) -> TrainState:
    """The starting TrainState: params, the optimizer's state, and a key."""
    key = jax.random.key(0) if key is None else key
    return TrainState(params, optimizer.init(params), key)


GRADIENTS: dict[str, Callable] = {
    "manual": model_value_and_grads,
    "autodiff": jax.value_and_grad(model_cost),
}


def value_and_grads(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    activations: Sequence[str],
    *,
    grad: str = "manual",
    lambd=None,
    keep_prob=1.0,
    dropout_key=None,
) -> tuple[jax.Array, Grads]:
    """The cost J and its gradient, from the hand-written backward or jax.grad.

    Args:
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
        X: (n_x, m). Y: (n[L], m).
        activations: one name per layer.
        grad: "manual" (the lecture's backward pass) or "autodiff" (jax.grad).
        lambd: L2 strength, or None for no L2 term.
        keep_prob, dropout_key: inverted dropout (no dropout without a key).

    Returns:
        J (scalar) and grads with the structure of params.
    """
    if grad not in GRADIENTS:
        raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")
    kwargs = dict(lambd=lambd, keep_prob=keep_prob, dropout_key=dropout_key)
    return GRADIENTS[grad](params, X, Y, activations, **kwargs)


def gradient_step(config: TrainConfig, gradients: Callable = value_and_grads):
    """One update on a batch: ``step(state, hp, X, Y) -> (state, cost)``.

    The cost is J before the update. L2 and dropout enter only when the config
    turns them on, with their strengths taken from ``hp`` (traced). ``gradients``
    has the signature of ``value_and_grads``; ``jaxnet.wide`` passes its own,
    for params and X in another form.
    """

    def step(state: TrainState, hp: Hyperparams, X, Y):
        key, dropout_key = jax.random.split(state.key)
        cost, grads = gradients(
            state.params,
            X,
            Y,
            config.activations,
            grad=config.grad,
            lambd=hp.lambd if config.l2 else None,
            keep_prob=hp.keep_prob if config.dropout else 1.0,
            dropout_key=dropout_key if config.dropout else None,
        )
        updates, opt_state = config.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, key), cost

    return step


def take_columns(X, index):
    """The batch's examples: X[:, index], (n_x, m_b)."""
    return X[:, index]


def make_epoch_step(
    step: Callable, batch_size: int, take: Callable = take_columns, mesh=None
) -> Callable:
    """One epoch of minibatch steps: ``epoch(state, X, Y) -> (state, mean cost)``.

    The m columns are permuted with a fresh key, cut into m // batch_size full
    batches (scanned) and, if m % batch_size > 0, one last smaller batch; every
    example is used exactly once per epoch. The epoch's cost is the mean of the
    batch costs weighted by batch size.

    Args:
        step: ``step(state, X, Y) -> (state, cost)`` on one batch.
        batch_size: examples per batch, a positive integer.
        take: ``take(X, index)``, the step's data for the batch's columns index
            (m_b,) (``jaxnet.wide`` passes its own for its data).
        mesh: the mesh whose devices split the examples (data parallel), or
            None. The permutation is whole on every device, and each batch's
            column indices are split over them, so every array gathered with
            them (X's, Y's, the gram data's columns) is split too and the
            devices share each step's work; without the constraints XLA would
            compute every batch whole on every device.
    """
    batch_size = check_count("batch_size", batch_size)

    def epoch(state: TrainState, X, Y):
        m = Y.shape[1]
        key, perm_key = jax.random.split(state.key)
        state = state._replace(key=key)
        perm = jax.random.permutation(perm_key, m)
        perm = constrain_replicated(mesh, perm)  # the global shuffle, on each device
        num_full, rest = divmod(m, batch_size)
        total: jax.Array | int = 0  # takes the costs' dtype

        def batch_step(state, index):
            index = constrain_examples(mesh, index)  # identity without a mesh
            return step(state, take(X, index), Y[:, index])

        if num_full:
            batches = perm[: num_full * batch_size].reshape(num_full, batch_size)
            state, costs = jax.lax.scan(batch_step, state, batches)
            total = total + jnp.sum(costs) * batch_size
        if rest:
            index = constrain_replicated(mesh, perm[m - rest :])  # (see there)
            state, cost = batch_step(state, index)
            total = total + cost * rest
        return state, total / m

    return epoch


def iteration(
    config: TrainConfig,
    hp: Hyperparams,
    gradients: Callable = value_and_grads,
    take: Callable = take_columns,
) -> Callable:
    """One iteration, ``(state, X, Y) -> (state, cost)``: a step, or an epoch.

    ``gradients`` and ``take`` are those of ``gradient_step`` and
    ``make_epoch_step`` (``jaxnet.wide`` passes its own).
    """
    step = gradient_step(config, gradients)

    def one(state, X, Y):
        return step(state, hp, X, Y)

    if config.batch_size is None:
        return one
    return make_epoch_step(one, config.batch_size, take, config.mesh)


def run_steps(step: Callable, state: TrainState, X, Y, num_steps: int):
    """Apply ``step(state, X, Y)`` num_steps times as one ``lax.scan``.

    Returns:
        The final state and the costs, (num_steps,): cost i is J before update i.
    """
    return jax.lax.scan(lambda s, _: step(s, X, Y), state, None, length=num_steps)


def run_up_to(step: Callable, state: TrainState, X, Y, num_steps, capacity: int):
    """Apply ``step`` num_steps (traced, <= capacity) times; one program for all.

    Returns:
        The final state and a cost buffer (capacity,) whose first num_steps
        entries are the costs (the rest NaN).
    """
    dtype = jax.tree.leaves(state.params)[0].dtype

    def body(i, carry):
        state, costs = carry
        state, cost = step(state, X, Y)
        return state, costs.at[i].set(cost.astype(dtype))

    costs = jnp.full((capacity,), jnp.nan, dtype)
    return jax.lax.fori_loop(0, num_steps, body, (state, costs))
