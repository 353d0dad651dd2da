"""The lecture's "repeat ... until J < epsilon", as one ``lax.while_loop``.

    repeat:
        J, dW, db = forward and backward
        if J < epsilon: stop
        W := W - alpha dW,  b := b - alpha db

``fit_until`` takes the same options as ``fit`` (``TrainOptions``) and returns
the parameters, a fixed-size buffer of the costs, how many updates ran and why
the loop stopped.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnet import memory
from jaxnet.boundary import prepare
from jaxnet.hyperparams import TrainConfig, TrainOptions, check_count, check_number
from jaxnet.params import Params
from jaxnet.trainer import refuse_traced
from jaxnet.wide import FIRST_LAYERS

MAX_ITERATIONS = 2**31 - 1  # the while_loop counts updates in int32


@functools.cache
def until_program(config: TrainConfig, capacity: int):
    """``run(state, hp, data, Y, epsilon, tol) -> (state, costs, count, code)``.

    The lecture's "repeat until J < epsilon" as one ``lax.while_loop``: each
    pass computes J and the update; if J < epsilon (code 1) or J fell by less
    than tol (code 2; tol < 0 disables it) the update is dropped and the loop
    ends; if J or the updated params are NaN or inf (code 3) the update is
    dropped too, so the state kept is the last finite one; after ``capacity``
    updates it ends with code 0. The states in and out are dense; the loop runs
    in the first-layer form's terms.
    """
    form = FIRST_LAYERS[config.first_layer]

    def run(state, hp, data, Y, epsilon, tol):
        step = form.iteration(config, hp)
        state = form.enter(state, data)
        dtype = jax.tree.leaves(state.params)[0].dtype
        costs = jnp.full((capacity,), jnp.nan, dtype)

        def cond(carry):
            _, _, i, code, _ = carry
            return (code == 0) & (i < capacity)

        def body(carry):
            state, costs, i, _, previous = carry
            new_state, cost = step(state, data, Y)
            stalled = (tol >= 0) & (previous - cost < tol)  # tol < 0: rule off
            finite = jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in _floats(new_state)])
            )
            code = jnp.where(cost < epsilon, 1, jnp.where(stalled, 2, 0))
            code = jnp.where(jnp.isfinite(cost), code, 3)
            code = jnp.where((code == 0) & ~finite, 3, code)
            code = code.astype(jnp.int32)
            state = jax.tree.map(
                lambda old, new: jnp.where(code == 0, new, old), state, new_state
            )
            costs = jnp.where(code == 0, costs.at[i].set(cost.astype(dtype)), costs)
            return state, costs, i + (code == 0), code, cost.astype(dtype)

        start = (state, costs, jnp.int32(0), jnp.int32(0), jnp.asarray(jnp.inf, dtype))
        state, costs, count, code, _ = jax.lax.while_loop(cond, body, start)
        return form.leave(state, data), costs, count, code

    return jax.jit(run)


def _floats(state) -> list:
    """The float leaves of a state's params (the form's coordinates)."""
    leaves = jax.tree.leaves(state.params)
    return [x for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]


class UntilResult(NamedTuple):
    """What ``fit_until`` returns.

    Attributes:
        params: the parameters after ``iterations`` updates.
        costs: (max_iterations,) buffer; costs[:iterations] are J before each
            update, the rest NaN.
        iterations: how many updates ran.
        reason: "epsilon" (J < epsilon), "stalled" (J improved by less than
            ``tol`` in one iteration), "non-finite" (J or the next update was
            NaN or inf: ``params`` are the last finite ones, ``iterations`` the
            updates that gave them; lower the learning rate) or
            "max_iterations".
    """

    params: Params
    costs: jax.Array
    iterations: int
    reason: str


def fit_until(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    activations: Sequence[str],
    epsilon: float,
    max_iterations: int,
    tol: float | None = None,
    **options: Unpack[TrainOptions],
) -> UntilResult:
    """The lecture's "repeat ... until J < epsilon", as one ``lax.while_loop``.

    Each iteration computes J at the current parameters; if J < epsilon (or,
    with ``tol``, J fell by less than tol since the previous iteration) the loop
    stops before updating, else it updates. Same options as ``fit``
    (``jaxnet.hyperparams.TrainOptions``).

    ``max_iterations`` is at most ``MAX_ITERATIONS`` = 2**31 - 1 (the loop's
    int32 counter), and its (max_iterations,) cost buffer must fit in memory.

    Returns:
        UntilResult(params, costs buffer, iterations, reason).

    Raises:
        ValueError: an input out of range (see ``jaxnet.boundary.prepare``),
            max_iterations above ``MAX_ITERATIONS``, or a cost buffer larger
            than the memory available (``jaxnet.memory.RunTooLargeError``).
    """
    refuse_traced("fit_until", params, X, Y, epsilon, max_iterations, tol, options)
    max_iterations = check_count("max_iterations", max_iterations)
    if max_iterations > MAX_ITERATIONS:
        raise ValueError(
            f"max_iterations must be at most {MAX_ITERATIONS} (2**31 - 1, the "
            f"loop's int32 counter); got {max_iterations}. Call fit_until again "
            "from the returned params to go on"
        )
    epsilon = float(check_number("epsilon", epsilon))
    tol = -1.0 if tol is None else float(check_number("tol", tol))
    run = prepare(params, X, Y, activations=activations, **options)
    itemsize = jnp.dtype(run.X.dtype).itemsize
    memory.check_memory(
        {"costs buffer": max_iterations * itemsize},
        f"fit_until's cost buffer of max_iterations = {max_iterations}",
        "lower max_iterations and call fit_until again from the returned params",
    )
    program = until_program(run.config, max_iterations)
    state, costs, count, code = program(
        run.state, run.hp, run.data, run.Y, epsilon, tol
    )
    reason = ("max_iterations", "epsilon", "stalled", "non-finite")[int(code)]
    return UntilResult(state.params, costs, int(count), reason)
