"""The L-layer network engine, built from the lecture's forward/backward blocks.

One engine serves every model: logistic regression is layer_dims [n_x, 1] with
activations ("sigmoid",), the shallow network is [n_x, n_h, 1] with (g, "sigmoid"),
and the deep network any longer list. For K classes the output is "softmax";
for regression (prediction of real values) it is "linear" with the squared
error. The outputs are rows of ``jaxnet.outputs.OUTPUTS``.

Forward, layer l = 1..L (shapes for m examples in columns):

    Z[l] = W[l] A[l-1] + b[l]           (n[l], m) = (n[l], n[l-1]) (n[l-1], m)
                                                  + (n[l], 1) broadcast
    A[l] = g[l](Z[l])                   (n[l], m);  A[0] = X

Backward, l = L..1:

    dZ[L] = A[L] - Y                    (every output in jaxnet.outputs.OUTPUTS;
                                         softmax: A[L] sum_k Y_k - Y, the same
                                         for one-hot columns)
    dZ[l] = dA[l] * g[l]'(Z[l])         (elementwise)
    dW[l] = (1/m) dZ[l] A[l-1]^T        (n[l], n[l-1])
    db[l] = (1/m) sum(dZ[l], axis=1, keepdims=True)        (n[l], 1)
    dA[l-1] = W[l]^T dZ[l]              (n[l-1], m)

dZ[L] = A[L] - Y is the lecture's dA[L] * sigma'(Z[L]) with
dA[L] = -(Y/A[L]) + (1-Y)/(1-A[L]) collapsed: the same value, but it never
divides by A[L] or 1 - A[L], which are 0 when the output saturates.

Hyperparameters of the lecture handled here:
    L2:       J += lambd / (2m) * sum_l ||W[l]||^2,   dW[l] += (lambd / m) W[l]
    dropout:  inverted dropout on hidden activations, A[l] = A[l] * D[l] / keep_prob,
              D[l] ~ Bernoulli(keep_prob); backward dA[l] = dA[l] * D[l] / keep_prob.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnet.activations import get_activation
from jaxnet.hyperparams import check_number
from jaxnet.outputs import OUTPUTS, get_output
from jaxnet.params import Grads, LayerCache, Params
from jaxnet.shapes import (
    check_activations,
    check_dropout,
    check_examples,
    check_inputs,
    check_output_units,
    forward_of,
)

OUTPUT_ACTIVATIONS = tuple(OUTPUTS)


def linear_forward(A_prev: ArrayLike, W: ArrayLike, b: ArrayLike) -> jax.Array:
    """Z = W A_prev + b, b broadcast over the m columns.

    Args:
        A_prev: activations of layer l-1, (n[l-1], m).
        W: weights, (n[l], n[l-1]).
        b: biases, (n[l], 1).

    Returns:
        Z: (n[l], m).
    """
    return jnp.dot(W, A_prev) + b


def linear_backward(dZ: jax.Array, cache: LayerCache) -> tuple[jax.Array, dict]:
    """Backward of Z = W A_prev + b for the cost J averaged over m.

    dW = (1/m) dZ A_prev^T, db = (1/m) sum(dZ, axis=1, keepdims=True),
    dA_prev = W^T dZ.

    Args:
        dZ: gradient of J (times m) w.r.t. Z, (n[l], m).
        cache: the layer's forward cache (A_prev, W, b, Z).

    Returns:
        dA_prev (n[l-1], m) and grads {"W": dW (n[l], n[l-1]), "b": db (n[l], 1)}.
    """
    m = cache.A_prev.shape[1]
    dW = jnp.dot(dZ, cache.A_prev.T) / m
    db = jnp.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = jnp.dot(cache.W.T, dZ)
    return dA_prev, {"W": dW, "b": db}


def linear_activation_forward(
    A_prev: ArrayLike, W: ArrayLike, b: ArrayLike, activation: str
) -> tuple[jax.Array, LayerCache]:
    """A = g(W A_prev + b) for a named activation g (``ACTIVATIONS`` or ``OUTPUTS``).

    Returns:
        A (n[l], m) and the layer's cache (A_prev, W, b, Z).
    """
    A_prev = jnp.asarray(A_prev)
    Z = linear_forward(A_prev, W, b)
    A = forward_of(activation)(Z)
    # W and b are cached as given (ArrayLike); the backward reads .T and shapes.
    return A, LayerCache(A_prev, W, b, Z)  # type: ignore[arg-type]


def linear_activation_backward(
    dA: jax.Array, cache: LayerCache, activation: str
) -> tuple[jax.Array, dict]:
    """dZ = dA * g'(Z), then ``linear_backward``: the lecture's generic block.

    Args:
        dA: gradient w.r.t. this layer's activations, (n[l], m).
        cache: the layer's forward cache.
        activation: name of g in ``ACTIVATIONS``.

    Returns:
        dA_prev (n[l-1], m) and grads {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
    """
    dZ = dA * get_activation(activation).derivative(cache.Z)
    return linear_backward(dZ, cache)


def activations_for(
    num_layers: int, hidden: str = "relu", output: str = "sigmoid"
) -> tuple[str, ...]:
    """("relu", ..., "relu", "sigmoid"): the lecture's usual choice for L layers."""
    return (hidden,) * (num_layers - 1) + (output,)


def dropout_mask(key, keep_prob, shape, dtype) -> jax.Array:
    """Inverted-dropout mask D / keep_prob: 1/keep_prob w.p. keep_prob, else 0."""
    keep = jax.random.bernoulli(key, keep_prob, shape)
    return keep.astype(dtype) / jnp.asarray(keep_prob, dtype)


def model_forward(
    params: Params,
    X: ArrayLike,
    activations: Sequence[str],
    *,
    keep_prob: float = 1.0,
    dropout_key=None,
) -> tuple[jax.Array, list[LayerCache]]:
    """Forward pass through all L layers, keeping every layer's cache.

    Args:
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
        X: inputs, (n_x, m), examples in columns.
        activations: one name per layer, the last one of ``OUTPUTS``.
        keep_prob: probability of keeping a hidden unit (inverted dropout).
            Never applied to X or the output. Anything but a concrete 1 needs a
            ``dropout_key`` (a traced keep_prob too: its value is unknown).
        dropout_key: ``jax.random`` key for the masks, or None for no dropout.

    Returns:
        AL (n[L], m) and the list of L caches; cache l-1 holds D[l] (already
        divided by keep_prob) when dropout was applied to A[l].

    Raises:
        ValueError (at trace time, free under jit): shapes that do not chain,
            an output layer with too few units (softmax with K = 1), keep_prob
            != 1 or traced without a dropout_key.
    """
    X = jnp.asarray(X)
    check_inputs(params, X)
    activations = check_activations(activations, len(params))
    check_output_units(params, activations[-1])
    check_dropout(keep_prob, dropout_key)
    if dropout_key is not None and not isinstance(keep_prob, jax.core.Tracer):
        check_number("keep_prob", keep_prob)
    num_layers = len(params)
    keys = (
        jax.random.split(dropout_key, num_layers) if dropout_key is not None else None
    )
    return forward_layers(X, params, activations, keep_prob=keep_prob, keys=keys)


def forward_layers(
    A, layers: Params, activations: Sequence[str], *, keep_prob, keys, start: int = 0
) -> tuple[jax.Array, list[LayerCache]]:
    """Layers start+1..L from A[start]: the forward loop of ``model_forward``.

    Layer l (counted from 0 in ``layers``' global numbering) uses
    activations[l] and, with ``keys``, the dropout key keys[l] on every hidden
    layer. ``jaxnet.wide`` starts it at layer 2 (start=1) from A[1].

    Returns:
        A[L] and the caches of the layers run.
    """
    num_layers = start + len(layers)
    caches = []
    for l, layer in enumerate(layers, start=start):
        A, cache = linear_activation_forward(A, layer["W"], layer["b"], activations[l])
        if keys is not None and l < num_layers - 1:
            D = dropout_mask(keys[l], keep_prob, A.shape, A.dtype)
            A = A * D
            cache = cache._replace(D=D)
        caches.append(cache)
    return A, caches


def output_cost(ZL: jax.Array, Y: jax.Array, output: str) -> jax.Array:
    """The output's cost J from its logits ZL (n[L], m), stable for any ZL."""
    return get_output(output).cost(ZL, Y)


def l2_penalty(params: Params, lambd, m: int) -> jax.Array:
    """lambd / (2m) * sum_l ||W[l]||_F^2 (biases are not penalized)."""
    return lambd / (2 * m) * sum(jnp.sum(jnp.square(layer["W"])) for layer in params)


def _total_cost(params, caches, X, Y, activations, lambd) -> jax.Array:
    check_inputs(params, X, Y)
    cost = output_cost(caches[-1].Z, Y, activations[-1])
    if lambd is not None:
        cost = cost + l2_penalty(params, lambd, X.shape[1])
    return cost


def model_backward(
    AL: jax.Array,
    Y: ArrayLike,
    caches: Sequence[LayerCache],
    activations: Sequence[str],
    *,
    lambd=None,
) -> Grads:
    """Hand-written backward pass of the output's cost (plus optional L2).

    dZ[L] = AL - Y (computed by the output's row in ``OUTPUTS``; for softmax
    AL sum_k Y_k - Y, exact for any labels, the lecture's AL - Y for one-hot
    columns); then for
    l = L-1..1: dA[l] = W[l+1]^T dZ[l+1] (times the dropout mask D[l] /
    keep_prob if one was applied), dZ[l] = dA[l] * g'(Z[l]),
    and dW, db from ``linear_backward``; with L2, dW[l] += (lambd / m) W[l].

    Args:
        AL: output activations, (n[L], m).
        Y: labels, (n[L], m): 0/1 for sigmoid, one-hot columns for softmax
            (or any other labels: soft targets, label smoothing, all-zero or
            weighted columns; the gradient is exact for all), real values for
            linear.
        caches: the L caches of ``model_forward``.
        activations: the names used in the forward pass.
        lambd: L2 regularization strength; None leaves the term out.

    Returns:
        Grads with the structure of params: [{"W": dW[l], "b": db[l]}, ...].
    """
    check_examples(AL.shape[1])
    Y = jnp.asarray(Y).astype(AL.dtype)
    dZ = get_output(activations[-1]).dZ(caches[-1].Z, AL, Y)  # = AL - Y
    dZ1, upper = backward_to_first_layer(dZ, caches, activations)
    _, first = linear_backward(dZ1, caches[0])
    return add_l2_grads([first, *upper], caches, lambd)


def backward_to_first_layer(
    dZ: jax.Array, caches: Sequence[LayerCache], activations: Sequence[str]
) -> tuple[jax.Array, Grads]:
    """From dZ[L] down to dZ[1]: the backward loop of ``model_backward``.

    For l = L..2: dW[l], db[l], dA[l-1] from ``linear_backward``; then
    dA[l-1] times the mask D[l-1] if dropout was applied, and
    dZ[l-1] = dA[l-1] * g[l-1]'(Z[l-1]). Of layer 1 only the cache's Z and D
    are read (``jaxnet.wide`` has no W[1] to cache).

    Returns:
        dZ[1] (n[1], m) and the grads of layers 2..L.
    """
    grads: list[Any] = [None] * (len(caches) - 1)
    for l in reversed(range(1, len(caches))):
        dA, grads[l - 1] = linear_backward(dZ, caches[l])
        below = caches[l - 1]
        dA = dA if below.D is None else dA * below.D
        dZ = dA * get_activation(activations[l - 1]).derivative(below.Z)
    return dZ, grads


def add_l2_grads(grads: Grads, caches: Sequence[LayerCache], lambd) -> Grads:
    """dW[l] += (lambd / m) W[l] for each layer (None: no L2 term)."""
    if lambd is None:
        return grads
    return [
        {"W": g["W"] + (lambd / cache.Z.shape[1]) * cache.W, "b": g["b"]}
        for g, cache in zip(grads, caches, strict=True)
    ]


def model_cost(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    activations: Sequence[str],
    *,
    lambd=None,
    keep_prob: float = 1.0,
    dropout_key=None,
) -> jax.Array:
    """The cost J(params) as one differentiable function (for ``jax.grad``).

    J = the output's cost (cross-entropy, or squared error for "linear")
    averaged over m, plus lambd / (2m) sum ||W||^2 when lambd is not None.

    Raises:
        ValueError: as ``model_forward``, and m = 0 (J would be 0/0).
    """
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    _, caches = model_forward(
        params, X, activations, keep_prob=keep_prob, dropout_key=dropout_key
    )
    return _total_cost(params, caches, X, Y, activations, lambd)


def model_value_and_grads(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    activations: Sequence[str],
    *,
    lambd=None,
    keep_prob: float = 1.0,
    dropout_key=None,
) -> tuple[jax.Array, Grads]:
    """J and its gradient from the hand-written backward pass (one forward).

    Same arguments and same value as ``model_cost``; the gradient equals
    ``jax.grad(model_cost)`` under the same dropout key.
    """
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    AL, caches = model_forward(
        params, X, activations, keep_prob=keep_prob, dropout_key=dropout_key
    )
    cost = _total_cost(params, caches, X, Y, activations, lambd)
    return cost, model_backward(AL, Y, caches, activations, lambd=lambd)


def predict_proba(
    params: Params, X: ArrayLike, activations: Sequence[str]
) -> jax.Array:
    """Output probabilities AL (n[L], m), no dropout."""
    AL, _ = model_forward(params, X, activations)
    return AL
