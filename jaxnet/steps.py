"""One gradient step, an epoch of minibatch steps, and N steps as one scan.

The lecture's gradient descent, for every layer l:

    W[l] := W[l] - alpha dW[l]        b[l] := b[l] - alpha db[l]

The gradient comes from the hand-written backward pass (``grad="manual"``) or
from ``jax.grad`` of the cost (``grad="autodiff"``); both see the same dropout
masks. The update is any optax transformation (plain gradient descent is
``optax.sgd(alpha)``, bit for bit the rule above). Minibatches reshuffle the m
columns every epoch with a ``jax.random`` key; the last, smaller batch is a step
of its own (static shapes, nothing dropped).

The driver runs minibatch epochs step by step (``make_minibatch_chunk``), so a
chunk may end inside an epoch: the state then carries where it is
(``EpochState``: steps done, the key of the epoch's permutation, the cost sum
so far), and the next chunk continues the same epoch exactly.

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


class EpochState(NamedTuple):
    """Where a minibatch run stands inside its current epoch (a pytree).

    Attributes:
        step: minibatch steps of the epoch already done, int32 (), in
            [0, steps per epoch); 0: at an epoch boundary (nothing drawn yet).
        key: the key that drew the epoch's permutation of the m columns (a
            chunk that starts inside the epoch draws it again from this key).
        total: sum of cost * m_b over the epoch's done batches, (), the run's
            dtype; the epoch's cost is total / m once its last batch is done.
    """

    step: jax.Array
    key: jax.Array
    total: jax.Array


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (a pytree).

    Attributes:
        params: the network's parameters.
        opt_state: the optimizer's state (it holds the learning rate).
        key: the ``jax.random`` key for dropout masks and shuffling.
        epoch: a minibatch run's place inside its epoch (``EpochState``), or
            None (full batch, or at the start of an epoch: the driver fills it).
    """

    params: Params
    opt_state: Any
    key: jax.Array
    epoch: EpochState | None = None


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
        return state._replace(params=params, opt_state=opt_state, key=key), cost

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
        perm = _permutation(perm_key, m, mesh)
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


def _permutation(perm_key, m: int, mesh=None) -> jax.Array:
    """The epoch's shuffle of the m columns, (m,), whole on every device."""
    return constrain_replicated(mesh, jax.random.permutation(perm_key, m))


def steps_per_iteration(batch_size: int | None, m: int) -> int:
    """Steps in one iteration: 1 (full batch) or ceil(m / batch_size) (an epoch)."""
    return 1 if batch_size is None else -(-m // batch_size)


def start_epoch(state: TrainState) -> TrainState:
    """``state`` with an ``EpochState`` at an epoch boundary if it has none (a
    sweep's state, whose key is (N,), gets (N,) leaves)."""
    if state.epoch is not None:
        return state
    shape = jnp.shape(state.key)
    dtype = jax.tree.leaves(state.params)[0].dtype
    zero = EpochState(jnp.zeros(shape, jnp.int32), state.key, jnp.zeros(shape, dtype))
    return state._replace(epoch=zero)


def make_minibatch_chunk(
    step: Callable,
    batch_size: int,
    take: Callable = take_columns,
    mesh=None,
    observe: "Observer | None" = None,
) -> Callable:
    """Minibatch epochs run step by step: ``run(state, X, Y, position, num_steps,
    capacity) -> (state, costs (capacity,))``.

    The same steps, keys and batches as ``make_epoch_step``'s epochs, one
    minibatch at a time, so a chunk may start and end inside an epoch:
    ``state.epoch`` (see ``EpochState``; ``start_epoch`` makes the first) says
    where. ``position`` is ``state.epoch.step`` as an unbatched int32 (in a
    sweep every model is at the same step, so the branches below stay branches
    under ``vmap``). At an epoch's first step the key is split and the columns
    permuted exactly as ``make_epoch_step`` does; the epoch's cost, the batch
    costs weighted by batch size (sum cost * m_b / m, summed one batch after
    the other), is written when its last batch is done.

    With an ``Observer`` the steps run in segments, each up to the end of the
    next recorded epoch, and the state that ends a recorded epoch is probed
    and kept at the epoch's index, as its cost is; the run returns the records
    too. The steps and their order are the same.

    Returns:
        The state after ``num_steps`` (traced, <= capacity) steps and a buffer
        whose first entries are the costs of the epochs completed in the chunk
        (the rest NaN); the epoch.step it leaves is unbatched. With
        ``observe``: also the records, each leaf (capacity, ...).
    """
    batch_size = check_count("batch_size", batch_size)

    def run(state: TrainState, X, Y, position, num_steps, capacity: int):
        m = Y.shape[1]
        num_full, rest = divmod(m, batch_size)
        per_epoch = steps_per_iteration(batch_size, m)
        dtype = jax.tree.leaves(state.params)[0].dtype
        inner, epoch = state._replace(epoch=None), state.epoch
        perm = jax.lax.cond(
            position == 0,
            lambda key: jnp.arange(m),  # drawn at the epoch's first step
            lambda key: _permutation(key, m, mesh),
            epoch.key,  # type: ignore[union-attr]  # start_epoch made it
        )

        def full(inner, perm, pos):
            index = jax.lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size)
            index = constrain_examples(mesh, index)  # identity without a mesh
            inner, cost = step(inner, take(X, index), Y[:, index])
            return inner, cost.astype(dtype) * batch_size

        def last(inner, perm, pos):
            index = constrain_replicated(mesh, perm[m - rest :])
            index = constrain_examples(mesh, index)
            inner, cost = step(inner, take(X, index), Y[:, index])
            return inner, cost.astype(dtype) * rest

        def new_epoch(inner, epoch, perm):
            key, perm_key = jax.random.split(inner.key)
            perm = _permutation(perm_key, m, mesh)
            return inner._replace(key=key), epoch._replace(key=perm_key), perm

        def body(i, carry):
            inner, epoch, perm, costs, count = carry
            pos = (position + i) % per_epoch
            inner, epoch, perm = jax.lax.cond(
                pos == 0, new_epoch, lambda *a: a, inner, epoch, perm
            )
            if not rest:
                inner, weighted = full(inner, perm, pos)
            elif not num_full:
                inner, weighted = last(inner, perm, pos)
            else:
                inner, weighted = jax.lax.cond(
                    pos < num_full, full, last, inner, perm, pos
                )
            total = epoch.total + weighted
            end = pos == per_epoch - 1
            costs = costs.at[count].set(jnp.where(end, total / m, costs[count]))
            epoch = EpochState(
                jnp.where(end, 0, pos + 1).astype(jnp.int32),
                epoch.key,
                jnp.where(end, jnp.zeros_like(total), total),
            )
            return inner, epoch, perm, costs, count + end.astype(jnp.int32)

        costs = jnp.full((capacity,), jnp.nan, dtype)
        start = (inner, epoch, perm, costs, jnp.int32(0))
        if observe is None:
            inner, epoch, _, costs, _ = jax.lax.fori_loop(0, num_steps, body, start)
            return inner._replace(epoch=epoch), costs

        def segment(carry):
            """Steps i .. up to the end of the next recorded epoch kp (epochs
            counted in the chunk), then its reading if it was reached."""
            loop, records, i = carry
            kp = observe.next_point((position + i) // per_epoch)
            stop = (kp + 1) * per_epoch - position  # the step after kp's last
            end = jnp.minimum(stop, num_steps)
            loop = jax.lax.fori_loop(i, end, body, loop)
            records = _probed(observe, records, kp, loop[0], end == stop)
            return loop, records, end

        records = _records(observe, inner, capacity)
        carry = (start, records, jnp.int32(0))
        carry = jax.lax.while_loop(lambda c: c[2] < num_steps, segment, carry)
        (inner, epoch, _, costs, _), records, _ = carry
        return inner._replace(epoch=epoch), costs, records

    return run


def iteration(
    config: TrainConfig,
    hp: Hyperparams,
    gradients: Callable = value_and_grads,
    take: Callable = take_columns,
    *,
    chunk: bool = False,
    observe: "Observer | None" = None,
) -> Callable:
    """One iteration, ``(state, X, Y) -> (state, cost)``: a step, or an epoch.

    ``gradients`` and ``take`` are those of ``gradient_step`` and
    ``make_epoch_step`` (``jaxnet.wide`` passes its own). With ``chunk``: the
    driver's chunk of steps instead, ``run(state, X, Y, position, num_steps,
    capacity) -> (state, costs (capacity,))`` (``run_up_to`` of the step, or
    ``make_minibatch_chunk``: epochs step by step); with ``observe`` (see
    those two) the chunk returns (state, costs, records).
    """
    step = gradient_step(config, gradients)

    def one(state, X, Y):
        return step(state, hp, X, Y)

    if config.batch_size is None:
        if chunk:
            return lambda state, X, Y, position, n, capacity: run_up_to(
                one, state, X, Y, n, capacity, observe
            )
        return one
    if chunk:
        return make_minibatch_chunk(one, config.batch_size, take, config.mesh, observe)
    return make_epoch_step(one, config.batch_size, take, config.mesh)


def run_steps(step: Callable, state: TrainState, X, Y, num_steps: int):
    """Apply ``step(state, X, Y)`` num_steps times as one ``lax.scan``.

    Returns:
        The final state and the costs, (num_steps,): cost i is J before update i.
    """
    return jax.lax.scan(lambda s, _: step(s, X, Y), state, None, length=num_steps)


def run_up_to(
    step: Callable,
    state: TrainState,
    X,
    Y,
    num_steps,
    capacity: int,
    observe: "Observer | None" = None,
):
    """Apply ``step`` num_steps (traced, <= capacity) times; one program for all.

    With an ``Observer`` the steps run in segments from one recorded point to
    the next, and the state that starts a recorded iteration is probed and
    kept at its index (records[i]: before step i, as costs[i]); the steps and
    their order are the same.

    Returns:
        The final state and a cost buffer (capacity,) whose first num_steps
        entries are the costs (the rest NaN); with ``observe`` also the records,
        each leaf (capacity, ...).
    """
    dtype = jax.tree.leaves(state.params)[0].dtype

    def body(i, carry):
        state, costs = carry
        state, cost = step(state, X, Y)
        return state, costs.at[i].set(cost.astype(dtype))

    costs = jnp.full((capacity,), jnp.nan, dtype)
    if observe is None:
        return jax.lax.fori_loop(0, num_steps, body, (state, costs))

    def segment(carry):
        """The reading before step j if j is a recorded point, then steps j ..
        up to the next point."""
        loop, records, j = carry
        records = _probed(observe, records, j, loop[0], observe.next_point(j) == j)
        end = jnp.minimum(observe.next_point(j + 1), num_steps)
        return jax.lax.fori_loop(j, end, body, loop), records, end

    carry = ((state, costs), _records(observe, state, capacity), jnp.int32(0))
    (state, costs), records, _ = jax.lax.while_loop(
        lambda c: c[2] < num_steps, segment, carry
    )
    return state, costs, records


class Observer(NamedTuple):
    """What a chunk records between its steps (the driver's health readings).

    Attributes:
        probe: ``probe(state) -> record``, a pytree of arrays (the state
            without its ``EpochState``).
        next_point: ``next_point(k) -> k'``, int32: the first iteration index
            of the chunk >= k that is a recorded point (beyond the chunk when
            none is left in it). Unbatched in a sweep, so the loops and
            branches built on it stay loops and branches under ``vmap``.
    """

    probe: Callable
    next_point: Callable


def _records(observe: Observer, state: TrainState, capacity: int):
    """A zero buffer for ``capacity`` records of the observer's probe."""
    shapes = jax.eval_shape(observe.probe, state._replace(epoch=None))
    return jax.tree.map(lambda s: jnp.zeros((capacity, *s.shape), s.dtype), shapes)


def _probed(observe: Observer, records, index, state: TrainState, keep):
    """``records`` with entry ``index`` set to the probe of ``state`` where
    ``keep`` (a traced bool: the probe runs only then, in a ``lax.cond``)."""
    state = state._replace(epoch=None)
    blank = jax.tree.map(lambda buf: jnp.zeros(buf.shape[1:], buf.dtype), records)
    record = jax.lax.cond(keep, observe.probe, lambda state: blank, state)
    return jax.tree.map(
        lambda buf, r: buf.at[index].set(jnp.where(keep, r, buf[index])),
        records,
        record,
    )
