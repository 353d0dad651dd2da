"""Logistic regression in the lecture's own notation: w (n_x, 1), scalar b.

    Z = w^T X + b                      (1, m)
    A = sigmoid(Z)                     (1, m)
    J = -(1/m) sum(Y log A + (1 - Y) log(1 - A))
    dZ = A - Y                         (1, m)
    dw = (1/m) X dZ^T                  (n_x, 1)
    db = (1/m) sum(dZ)                 scalar

This is the documented exception to the {"W", "b"} layout: it is the L-layer
engine with layer_dims [n_x, 1] and a sigmoid output, seen through W = w^T and
b[1] = [[b]]. ``propagate`` runs the engine's hand-written backward pass and
converts back; ``to_layers``/``from_layers`` convert parameters, so the engine's
``fit`` trains logistic regression too.

``propagate_loops`` is the lecture's slide with explicit for-loops over examples
and features, in plain Python and numpy: a teaching reference (slow; small sizes
only) that the tests prove equal to the vectorized form.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnet.deep import model_value_and_grads
from jaxnet.params import Params

ACTIVATIONS = ("sigmoid",)


def init_logistic(n_x: int, dtype=jnp.float32) -> dict[str, jax.Array]:
    """w = zeros (n_x, 1), b = 0: the course's start for logistic regression."""
    return {"w": jnp.zeros((n_x, 1), dtype), "b": jnp.zeros((), dtype)}


def to_layers(params: dict) -> Params:
    """{"w": (n_x, 1), "b": ()} -> the engine's [{"W": (1, n_x), "b": (1, 1)}]."""
    w, b = jnp.asarray(params["w"]), jnp.asarray(params["b"])
    if w.ndim != 2 or w.shape[1] != 1 or jnp.ndim(b) != 0:
        raise ValueError(
            f"logistic params must be w (n_x, 1) and scalar b; got w {w.shape}, "
            f"b {jnp.shape(b)}"
        )
    return [{"W": w.T, "b": b.reshape(1, 1)}]


def from_layers(layers: Params) -> dict[str, jax.Array]:
    """The engine's [{"W": (1, n_x), "b": (1, 1)}] -> {"w": (n_x, 1), "b": ()}."""
    (layer,) = layers
    return {"w": layer["W"].T, "b": layer["b"].reshape(())}


def logistic_forward(params: dict, X: ArrayLike) -> jax.Array:
    """A = sigmoid(w^T X + b), (1, m), for X (n_x, m)."""
    X = jnp.asarray(X)
    return jax.nn.sigmoid(jnp.dot(params["w"].T, X) + params["b"])


def propagate(params: dict, X: ArrayLike, Y: ArrayLike) -> tuple[jax.Array, dict]:
    """Cost J and gradients {"w": dw (n_x, 1), "b": db ()} (vectorized).

    Args:
        params: {"w": (n_x, 1), "b": scalar}.
        X: (n_x, m). Y: (1, m) of 0/1.

    Returns:
        J (scalar, averaged over m) and grads with the structure of params.
    """
    cost, grads = model_value_and_grads(to_layers(params), X, Y, ACTIVATIONS)
    return cost, from_layers(grads)


def propagate_loops(params: dict, X: ArrayLike, Y: ArrayLike) -> tuple[float, dict]:
    """The lecture's for-loop version of ``propagate`` (plain Python, float64).

    for i = 1..m:  z(i) = w^T x(i) + b;  a(i) = sigmoid(z(i))
                   J += -(y(i) log a(i) + (1 - y(i)) log(1 - a(i)))
                   dz(i) = a(i) - y(i)
                   for j = 1..n_x:  dw_j += x_j(i) dz(i)
                   db += dz(i)
    J /= m;  dw_j /= m;  db /= m
    """
    w = np.asarray(params["w"], dtype=np.float64)[:, 0]
    b = float(params["b"])
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    n_x, m = X.shape
    cost, db = 0.0, 0.0
    dw = [0.0] * n_x
    for i in range(m):
        z = b
        for j in range(n_x):
            z += w[j] * X[j, i]
        a = 1.0 / (1.0 + np.exp(-z))
        y = Y[0, i]
        cost += -(y * np.log(a) + (1 - y) * np.log(1 - a))
        dz = a - y
        for j in range(n_x):
            dw[j] += X[j, i] * dz
        db += dz
    cost /= m
    dw = np.array(dw).reshape(n_x, 1) / m
    return cost, {"w": dw, "b": db / m}
