"""Activation functions g(z) and their derivatives g'(z), written by hand.

Every function is elementwise, pure, jit-able and keeps the shape and dtype of
its input. Each derivative sits right below its forward, as in the lecture:

    sigmoid:    g(z) = 1 / (1 + e^-z)          g'(z) = a (1 - a)
    tanh:       g(z) = tanh(z)                 g'(z) = 1 - a^2
    relu:       g(z) = max(0, z)               g'(z) = 1 if z > 0 else 0
    leaky_relu: g(z) = z if z > 0 else s z     g'(z) = 1 if z > 0 else s
    softplus:   g(z) = log(1 + e^z)            g'(z) = 1 / (1 + e^-z)

Values at kinks (documented choice): relu'(0) = 0, as the lecture's
``np.heaviside(x, 0)``; leaky_relu'(0) = slope, as the lecture's "0.01 if z <= 0".

Stability: the lecture's ``1 / (1 + np.exp(-z))`` overflows for z = -1000 and its
``np.log(1 + np.exp(z))`` is inf at z = 1000. Here sigmoid is ``jax.nn.sigmoid``
(computed without overflow) and softplus is ``logaddexp(0, z)``, finite and
exact for every finite input.

``softmax`` is not elementwise, so it is not in the ``ACTIVATIONS`` table; it
normalizes over a stated axis (the lecture: rows; networks: columns, axis=0).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

LEAKY_RELU_SLOPE = 0.01


def sigmoid(z: ArrayLike) -> jax.Array:
    """sigma(z) = 1 / (1 + e^-z), lecture formula (1); any shape."""
    return jax.nn.sigmoid(z)


def sigmoid_derivative(z: ArrayLike) -> jax.Array:
    """sigma'(z) = a (1 - a) with a = sigma(z), lecture formula (2); any shape."""
    a = sigmoid(z)
    return a * (1 - a)


def tanh(z: ArrayLike) -> jax.Array:
    """tanh(z) = (e^z - e^-z) / (e^z + e^-z); any shape."""
    return jnp.tanh(z)


def tanh_derivative(z: ArrayLike) -> jax.Array:
    """tanh'(z) = 1 - a^2 with a = tanh(z); any shape."""
    a = tanh(z)
    return 1 - a * a


def relu(z: ArrayLike) -> jax.Array:
    """ReLU(z) = max(0, z); any shape."""
    z = jnp.asarray(z)
    return jnp.maximum(z, jnp.zeros_like(z))


def relu_derivative(z: ArrayLike) -> jax.Array:
    """ReLU'(z) = 1 if z > 0 else 0 (0 at the kink, as np.heaviside(z, 0))."""
    z = jnp.asarray(z)
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


def leaky_relu(z: ArrayLike, slope: float = LEAKY_RELU_SLOPE) -> jax.Array:
    """LeakyReLU(z) = z if z > 0 else slope * z; any shape."""
    z = jnp.asarray(z)
    return jnp.where(z > 0, z, slope * z)


def leaky_relu_derivative(z: ArrayLike, slope: float = LEAKY_RELU_SLOPE) -> jax.Array:
    """LeakyReLU'(z) = 1 if z > 0 else slope (slope at the kink z = 0)."""
    z = jnp.asarray(z)
    return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))


def softplus(z: ArrayLike) -> jax.Array:
    """SoftPlus(z) = log(1 + e^z), computed as logaddexp(0, z) (never overflows)."""
    z = jnp.asarray(z)
    return jnp.logaddexp(jnp.zeros_like(z), z)


def softplus_derivative(z: ArrayLike) -> jax.Array:
    """SoftPlus'(z) = e^z / (1 + e^z) = 1 / (1 + e^-z) = sigma(z)."""
    return sigmoid(z)


def softmax(x: ArrayLike, axis: int = -1) -> jax.Array:
    """softmax(x)_i = e^(x_i) / sum_j e^(x_j), normalized along ``axis``.

    The lecture applies it per row (``axis=1`` for an (m, n) matrix); the
    networks apply it per column (``axis=0`` for logits of shape (K, m)). The
    maximum along ``axis`` is subtracted first, which leaves the result unchanged
    and keeps every exponent <= 0, so logits of +-1e4 give no inf or NaN.

    Args:
        x: scores, any shape.
        axis: the axis summed over; the result sums to 1 along it.

    Returns:
        Probabilities with the shape and dtype of ``x``.
    """
    x = jnp.asarray(x)
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    exp = jnp.exp(shifted)
    return exp / jnp.sum(exp, axis=axis, keepdims=True)


class Activation(NamedTuple):
    """An activation g and its hand-written derivative g', both elementwise."""

    forward: callable
    derivative: callable


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, sigmoid_derivative),
    "tanh": Activation(tanh, tanh_derivative),
    "relu": Activation(relu, relu_derivative),
    "leaky_relu": Activation(leaky_relu, leaky_relu_derivative),
    "softplus": Activation(softplus, softplus_derivative),
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name; an unknown name lists the known ones.

    Raises:
        ValueError: ``name`` is not in ``ACTIVATIONS``.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(
            f"unknown activation {name!r}; known activations: {known}"
        ) from None
