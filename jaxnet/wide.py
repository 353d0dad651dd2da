"""An exact fast path for wide inputs (n_x much larger than m): W[1] in coordinates.

Gradient descent moves W[1] only along itself (the L2 shrink) and along
dW[1] = (1/m) dZ[1] X^T, whose rows lie in the row space of X^T. So, always,

    W[1] = s W[1]_0 + C X^T                     s: a scalar, C: (n[1], m)
    Z[1] = W[1] X + b[1] = s P + C G + b[1]     P = W[1]_0 X (n[1], m), G = X^T X (m, m)

The first layer trains as {"s", "C", "b"}, and the optimizer is fed the
coordinates of dW[1] = (1/m) dZ[1] X^T + (lambd/m) W[1] (not the chain rule's
gradient with respect to C):

    g_s = (lambd/m) s          g_C = (1/m) dZ[1] + (lambd/m) C

A minibatch B (m_b columns) uses Z[1]_B = s P[:, B] + C G[:, B] + b[1] and puts
(1/m_b) dZ[1]_B into the columns B of g_C. This is exact when the update is a
fixed linear combination of past gradients with scalar weights (gd, momentum,
nesterov: ``optimizers.is_linear``), because it then commutes with the linear
map (s, C) -> s W[1]_0 + C X^T, and its state lives in coordinates too. Adam
and RMSprop divide each entry by its own sqrt(S): not linear, not exact.
Dropout (hidden layers only, never X), layers 2..L and the backward down to
dZ[1] are the lecture's blocks. The L2 term uses

    ||W[1]||^2 = s^2 ||W[1]_0||^2 + 2 s <P, C> + <C G, C>

First-layer FLOPs per iteration (epoch); the rest of the network is unchanged:

    dense   4 n[1] n_x m     Z[1] = W[1] X and dW[1] = dZ[1] X^T / m
    gram    2 n[1] m^2       C G (+ 2 n[1] m^2 per minibatch for <C G, C> with L2)

plus, once, G and P, and 2 n[1] m n_x to materialize W[1] = s W[1]_0 + C X^T
when parameters leave the run. See docs/wide_inputs.md.

Resuming: the dense W[1] is rounded once when it is materialized, and a run
that re-entered coordinates from it would start from s = 1, C = 0 at a W[1]_0
that differs from the original by that rounding; on an oscillating trajectory
such a difference grows. A run is therefore resumed from what it carries,
``Carried(form, state in coordinates, W[1]_0)``: ``jaxnet.driver.drive`` hands
it to ``on_chunk`` (next to the dense state) and returns it, checkpoints store
it (``jaxnet.runstate.carried_arrays``), and a ``Carried`` passed as the start
of a run (``train_loop(resume_from=...)``) continues in the same coordinates
against G and P rebuilt from X and W[1]_0 by the same operations: bit for bit
the run that was never stopped.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnet.deep import (
    add_l2_grads,
    backward_to_first_layer,
    dropout_mask,
    forward_layers,
    l2_penalty,
    output_cost,
)
from jaxnet.optimizers import is_linear
from jaxnet.outputs import get_output
from jaxnet.params import LayerCache, Params
from jaxnet.shapes import forward_of
from jaxnet.steps import TrainState, iteration

FIRST_LAYER_CHOICES = ("auto", "dense", "gram")
GRAM_MARGIN = 8  # "auto" wants the gram first layer at least this much cheaper


class GramData(NamedTuple):
    """What the gram path's compiled program takes in place of X (a pytree).

    Attributes:
        X: the inputs (n_x, m), used only to materialize W[1].
        W0: W[1]_0, (n[1], n_x).   G: X^T X, (m, m).   P: W0 X, (n[1], m).
        W0_sq: ||W0||_F^2, a scalar.
        index: the minibatch's columns (m_b,); None: all m, in order.
    """

    X: jax.Array
    W0: jax.Array
    G: jax.Array
    P: jax.Array
    W0_sq: jax.Array
    # The field shadows tuple.index; it is only read as data.index.
    index: jax.Array | None = None  # type: ignore[assignment]


def gram_data(W0: ArrayLike, X: ArrayLike) -> GramData:
    """G = X^T X, P = W0 X and ||W0||^2; W0 (n[1], n_x) or stacked (N, n[1], n_x)."""
    W0, X = jnp.asarray(W0), jnp.asarray(X)
    return GramData(X, W0, X.T @ X, W0 @ X, jnp.sum(jnp.square(W0), axis=(-2, -1)))


def _coordinates(tree: Params, data: GramData, s: float) -> Params:
    """A params-shaped tree whose W[1] is s W0 (and C = 0), in coordinates.

    s and C (n[1], m) are made like W0_sq and P (on a mesh, on their devices:
    C's columns are the examples', as P's are).
    """
    dtype = tree[0]["W"].dtype
    first = {
        "s": jnp.full_like(data.W0_sq, s, dtype=dtype),
        "C": jnp.zeros_like(data.P, dtype=dtype),
    }
    return [{**first, "b": tree[0]["b"]}, *tree[1:]]


def to_gram(params: Params, X: ArrayLike) -> tuple[Params, GramData]:
    """([{"s": 1, "C": 0 (n[1], m), "b"}, layers 2..L], GramData with W0 = W[1])."""
    data = gram_data(params[0]["W"], X)
    return _coordinates(params, data, 1.0), data


def materialize(train_params: Params, data: GramData) -> Params:
    """The lecture's params: W[1] = s W0 + C X^T, (n[1], n_x); the rest as is."""
    first = train_params[0]
    W = first["s"] * data.W0 + first["C"] @ data.X.T
    return [{"W": W, "b": first["b"]}, *train_params[1:]]


class Carried(NamedTuple):
    """A run's state in its first-layer form's terms: what resumes it bit for bit.

    Attributes:
        form: its row of ``FIRST_LAYERS``, "dense" or "gram".
        state: the TrainState the compiled program steps. "gram": params
            [{"s": (), "C": (n[1], m), "b": (n[1], 1)}, layers 2..L] and the
            optimizer's params-shaped moments in the same coordinates;
            "dense": the dense state itself.
        W0: "gram": W[1]_0, (n[1], n_x), from which and X the form's data
            (G, P, ||W0||^2) is rebuilt exactly (``carried_data``); "dense": None.
    """

    form: str
    state: TrainState
    W0: jax.Array | None = None


def carried_data(carried: Carried, X: ArrayLike):
    """The form's data for a carried state (X for "dense"), made from W[1]_0 and
    X by the operations that made it at the run's start, so bit for bit the same."""
    return FIRST_LAYERS[carried.form].data([{"W": carried.W0}], X)


def carried_dense(carried: Carried, data) -> TrainState:
    """The dense state of a carried one (W[1] and its moments materialized)."""
    return FIRST_LAYERS[carried.form].leave(carried.state, data)


def _shaped_like(like) -> Callable:
    treedef = jax.tree.structure(like)
    # mypy cannot resolve jaxlib's PyTreeDef stub (shown as PyTreeDef?).
    return lambda node: jax.tree.structure(node) == treedef  # type: ignore[operator]


def _map_param_trees(fn: Callable, opt_state, like) -> Any:
    """``fn`` on every subtree of the optimizer state shaped like ``like``
    (the params): momentum's trace, say."""
    is_params = _shaped_like(like)
    return jax.tree.map(
        lambda node: fn(node) if is_params(node) else node, opt_state, is_leaf=is_params
    )


def _enter(state: TrainState, data: GramData) -> TrainState:
    """A dense state in coordinates (its moments' W[1] must be 0)."""
    moments = functools.partial(_coordinates, data=data, s=0.0)
    opt = _map_param_trees(moments, state.opt_state, state.params)
    return TrainState(_coordinates(state.params, data, 1.0), opt, state.key)


def _leave(state: TrainState, data: GramData) -> TrainState:
    """The dense state: params and optimizer moments materialized."""
    dense = functools.partial(materialize, data=data)
    opt = _map_param_trees(dense, state.opt_state, state.params)
    return TrainState(dense(state.params), opt, state.key)


def moments_in_span(state: TrainState) -> bool:
    """Whether a dense state can enter coordinates: the optimizer's params-shaped
    moments (momentum's trace) have W[1] = 0 (true at the start of a run)."""
    is_params = _shaped_like(state.params)
    trees = jax.tree.leaves(state.opt_state, is_leaf=is_params)
    return not any(jnp.any(tree[0]["W"]) for tree in trees if is_params(tree))


def _forward_from_Z1(Z1, upper, activations, keep_prob, keys):
    """A[L], layer 1's dropout mask and the caches of layers 2..L, from Z[1]."""
    A, D1 = forward_of(activations[0])(Z1), None
    if keys is not None and upper:
        D1 = dropout_mask(keys[0], keep_prob, A.shape, A.dtype)
        A = A * D1
    A, caches = forward_layers(
        A, upper, activations, keep_prob=keep_prob, keys=keys, start=1
    )
    return A, D1, caches


def _rest_cost(Z1, upper, Y, activations, lambd, keep_prob, keys):
    """J without layer 1's L2 term, and the forward's results."""
    AL, D1, caches = _forward_from_Z1(Z1, upper, activations, keep_prob, keys)
    cost = output_cost(caches[-1].Z if caches else Z1, Y, activations[-1])
    if lambd is not None:
        cost = cost + l2_penalty(upper, lambd, Y.shape[1])
    return cost, (AL, D1, caches)


def _rest_manual(Z1, upper, Y, activations, lambd, keep_prob, keys):
    """J, dJ/dZ[1] = dZ[1] / m and grads of layers 2..L: the lecture's backward
    (``linear_backward``, dA * D, dZ = dA * g'(Z)) stopped at dZ[1]."""
    cost, (AL, D1, caches) = _rest_cost(
        Z1, upper, Y, activations, lambd, keep_prob, keys
    )
    # Layer 1: only Z and D are read.
    first = LayerCache(None, None, None, Z1, D1)  # type: ignore[arg-type]
    all_caches = [first, *caches]
    dZ = get_output(activations[-1]).dZ(all_caches[-1].Z, AL, Y)  # = AL - Y
    dZ1, grads = backward_to_first_layer(dZ, all_caches, activations)
    return cost, dZ1 / Y.shape[1], add_l2_grads(grads, caches, lambd)


def _rest_autodiff(Z1, upper, Y, activations, lambd, keep_prob, keys):
    """Same as ``_rest_manual``, from ``jax.value_and_grad`` in (Z[1], layers 2..L)."""

    def cost_of(Z1, upper):
        return _rest_cost(Z1, upper, Y, activations, lambd, keep_prob, keys)[0]

    cost, (dJ_dZ1, grads) = jax.value_and_grad(cost_of, argnums=(0, 1))(Z1, upper)
    return cost, dJ_dZ1, grads


REST_GRADIENTS = {"manual": _rest_manual, "autodiff": _rest_autodiff}


def gram_value_and_grads(
    train_params, data: GramData, Y, activations, *, grad="manual", lambd=None,
    keep_prob=1.0, dropout_key=None,
):  # fmt: skip
    """J and the coordinates of its gradient (``steps.value_and_grads``' signature).

    Args:
        train_params: [{"s": (), "C": (n[1], m), "b": (n[1], 1)}, layers 2..L].
        data: GramData; ``data.index`` selects the batch's m_b columns.
        Y: the batch's labels, (n[L], m_b).
        activations, grad, lambd, keep_prob, dropout_key: as for the dense path
            (the same dropout masks for the same key).

    Returns:
        J (scalar) and [{"s": g_s, "C": g_C (n[1], m), "b": db[1]}, grads 2..L].
    """
    (first, *upper), index = train_params, data.index
    s, C = first["s"], first["C"]
    P, G = (data.P, data.G) if index is None else (data.P[:, index], data.G[:, index])
    CG = C @ G
    Z1 = s * P + CG + first["b"]
    L = len(upper) + 1
    keys = None if dropout_key is None else jax.random.split(dropout_key, L)
    rest = REST_GRADIENTS[grad]
    cost, dJ_dZ1, grads = rest(Z1, upper, Y, activations, lambd, keep_prob, keys)
    g_C = dJ_dZ1 if index is None else jnp.zeros_like(C).at[:, index].set(dJ_dZ1)
    g_s = jnp.zeros_like(s)
    if lambd is not None:
        m = Y.shape[1]
        CG_all = CG if index is None else C @ data.G
        W1_sq = s * s * data.W0_sq + 2 * s * jnp.sum(data.P * C) + jnp.sum(CG_all * C)
        cost = cost + lambd / (2 * m) * W1_sq
        g_s, g_C = (lambd / m) * s, g_C + (lambd / m) * C
    db = jnp.sum(dJ_dZ1, axis=1, keepdims=True)
    return cost, [{"s": g_s, "C": g_C, "b": db}, *grads]


class FirstLayer(NamedTuple):
    """One form of the first layer: how a run holds, steps and returns W[1].

    Attributes:
        data: (params, X) -> what the compiled program takes as its data.
        enter: (dense state, data) -> the state the program steps.
        leave: (program's state, data) -> the dense state callers see.
        iteration: (config, hp) -> ``(state, data, Y) -> (state, cost)``.
        model_axes: the data's ``vmap`` axes in a sweep (None: shared); on a
            mesh they are split over the devices as the models are.
        example_axes: the data's example axes, split over a mesh's devices in
            data-parallel runs (None: copied to every device). The columns of
            G = X^T X and P = W0 X belong to the examples as X's do, so a
            device computes C G[:, its columns] and needs only C whole;
            W0 (n[1], n_x) is copied.
        anchor: data -> what, with X, rebuilds the data (``Carried.W0``):
            W[1]_0 for "gram", None for "dense".
    """

    data: Callable
    enter: Callable
    leave: Callable
    iteration: Callable
    model_axes: Any
    example_axes: Any
    anchor: Callable


def _same(state, data):
    return state


FIRST_LAYERS: dict[str, FirstLayer] = {
    "dense": FirstLayer(
        lambda params, X: X, _same, _same, iteration, None, -1, lambda data: None
    ),
    "gram": FirstLayer(
        lambda params, X: gram_data(params[0]["W"], X),
        _enter,
        _leave,
        functools.partial(
            iteration,
            gradients=gram_value_and_grads,
            take=lambda data, index: data._replace(index=index),
        ),
        # vmap axis specs shaped like GramData (ints and None, not arrays).
        GramData(None, 0, None, 0, 0, None),  # type: ignore[arg-type]
        GramData(-1, None, -1, -1, None, None),  # type: ignore[arg-type]
        lambda data: data.W0,
    ),
}


def first_layer_flops(n_x: int, n1: int, m: int, batch_size=None, l2=False) -> dict:
    """First-layer FLOPs of one iteration (epoch) in each form (see module doc)."""
    batches = 1 if batch_size is None else -(-m // batch_size)
    extra = 2 * n1 * m * m * batches if l2 and batches > 1 else 0
    return {"dense": 4 * n1 * n_x * m, "gram": 2 * n1 * m * m + extra}


def choose_first_layer(
    first_layer: str,
    optimizer,
    state: TrainState,
    X,
    *,
    batch_size=None,
    l2=False,
    in_span: bool | None = None,
) -> str:
    """The run's first-layer form, "dense" or "gram"; validated on the host.

    "auto" picks gram when it is exact (the optimizer is linear: gd, momentum,
    nesterov; and the start state's moments have W[1] = 0, always true unless
    resuming with momentum from a dense state; ``in_span=True`` says the state
    was carried in coordinates, see ``Carried``) and its first layer needs at
    most 1/GRAM_MARGIN of the dense FLOPs: 4 m <= n_x (G then takes at most a
    quarter of X's memory), or 4 m (1 + m / b) <= n_x with L2 on minibatches of b.

    Raises:
        ValueError: an unknown choice, or "gram" where it would not be exact.
    """
    if first_layer not in FIRST_LAYER_CHOICES:
        raise ValueError(
            f"first_layer must be one of {FIRST_LAYER_CHOICES}; got {first_layer!r}"
        )
    n1, n_in = jnp.shape(state.params[0]["W"])[-2:]
    if first_layer == "dense" or jnp.shape(X)[:1] != (n_in,) or jnp.ndim(X) != 2:
        return "dense"  # (a wrongly shaped X: the dense path says how, at trace)
    n_x, m = jnp.shape(X)
    linear = is_linear(optimizer)
    in_span = moments_in_span(state) if in_span is None else in_span
    if first_layer == "gram" and not (linear and in_span):
        why = (
            "the resumed optimizer state has a momentum whose W[1] lies outside "
            "s W[1]_0 + C X^T"
            if linear
            else "the optimizer scales each entry of dW[1] by its own running "
            "statistics (Adam, RMSprop: dW / sqrt(S)), or is an optax transformation "
            "not built by name, so W[1] would leave s W[1]_0 + C X^T"
        )
        raise ValueError(
            f"first_layer='gram' would not be exact: {why}. It is exact for gd, "
            "momentum and nesterov, whose update is a fixed linear combination of "
            "past gradients. Use first_layer='dense' or 'auto'"
        )
    if first_layer == "gram":
        return "gram"
    flops = first_layer_flops(n_x, n1, m, batch_size, l2)
    cheaper = GRAM_MARGIN * flops["gram"] <= flops["dense"]
    return "gram" if linear and in_span and cheaper else "dense"
