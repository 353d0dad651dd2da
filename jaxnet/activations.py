"""Activation functions g(z) and their derivatives g'(z), written by hand.

Every function is elementwise, pure, jit-able and keeps the shape of its input;
float inputs keep their dtype, integer and bool inputs (the lecture's
``sigmoid(np.array([1, 2, 3]))``) are promoted to JAX's default float. Each
derivative sits right below its forward, as in the lecture:

    sigmoid:    g(z) = 1 / (1 + e^-z)          g'(z) = a (1 - a)
    tanh:       g(z) = tanh(z)                 g'(z) = 1 - a^2
    relu:       g(z) = max(0, z)               g'(z) = 1 if z > 0 else 0
    leaky_relu: g(z) = z if z > 0 else s z     g'(z) = 1 if z > 0 else s
    softplus:   g(z) = log(1 + e^z)            g'(z) = 1 / (1 + e^-z)

Kinks (documented choice): relu'(0) = 0, as the lecture's ``np.heaviside(x, 0)``;
leaky_relu'(0) = slope, as its "0.01 if z <= 0". The forwards are written as
``where(z <= 0, ...)`` so that ``jax.grad`` of each forward gives exactly these
values at z = 0 and -0.0 too (``jnp.maximum(z, 0)`` would give 0.5 there).

The forwards are also written so that jax.grad of them is well-conditioned: each
hand-written derivative agrees with ``jax.vmap(jax.grad(g))`` to 8 ulps (rtol
8 eps: 1.8e-15 in float64, 9.5e-7 in float32; measured <= 2.5 ulps) for every z
in [-1e4, 1e4], saturated units included, with an absolute floor at the dtype's
smallest normal number, below which no relative precision exists. tanh and
softplus are computed from q = e^(-2|z|) or e^(-|z|), which never overflows and
carries the tail of g' with full relative precision.

Stability: the lecture's ``1 / (1 + np.exp(-z))`` overflows for z = -1000 and its
``np.log(1 + np.exp(z))`` is inf at z = 1000; nothing here overflows.

``softmax`` is not elementwise, so it is not in the ``ACTIVATIONS`` table; it
normalizes over a stated axis (the lecture: rows; networks: columns, axis=0).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

LEAKY_RELU_SLOPE = 0.01
# Below this |z|, tanh is jnp.tanh; above, (1 - q) / (1 + q) (see ``tanh``).
TANH_SPLIT = 0.5


def promote_to_float(x: ArrayLike) -> jax.Array:
    """x as a jax array; integer and bool arrays become JAX's default float.

    The default float is ``jnp.result_type(float)``: float32, or float64 with
    ``jax_enable_x64``. Float (and complex) arrays keep their dtype.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _sign_and_abs(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(s, u) with s = -1 for z < 0 else +1 and u = s z = |z|.

    Unlike ``jnp.abs``, d u / d z = s is +1 at z = 0 and -0.0, so the odd and
    even extensions below are differentiated through exact sign flips.
    """
    s = jnp.where(z < 0, -jnp.ones_like(z), jnp.ones_like(z))
    return s, s * z


def sigmoid(z: ArrayLike) -> jax.Array:
    """sigma(z) = 1 / (1 + e^-z), lecture formula (1); any shape.

    ``jax.nn.sigmoid``: exp(-z) overflows to inf for z < -709 (float64), and
    1 / (1 + inf) = 0 is the right limit, without a warning.
    """
    return jax.nn.sigmoid(promote_to_float(z))


def sigmoid_derivative(z: ArrayLike) -> jax.Array:
    """sigma'(z) = a (1 - a) with a = sigma(z), lecture formula (2); any shape.

    The same expression jax.grad uses for ``jax.nn.sigmoid``, so the two agree
    bit for bit. For z > ~20 both carry a's rounding (absolute error <= eps),
    which is immaterial next to the O(1) gradients of unsaturated units.
    """
    a = sigmoid(z)
    return a * (1 - a)


def tanh(z: ArrayLike) -> jax.Array:
    """tanh(z) = (e^z - e^-z) / (e^z + e^-z); any shape.

    Computed as sign(z) (1 - q) / (1 + q) with q = e^(-2|z|) (the lecture's
    formula with numerator and denominator divided by e^|z|, so q <= 1 never
    overflows), and as ``jnp.tanh`` for |z| < 0.5, where 1 - q would cancel.
    Values agree with ``np.tanh`` to ~2 ulps.

    Why not just ``jnp.tanh``: jax.grad of it computes (1 + a)(1 - a) from the
    rounded a, whose absolute error ~1e-16 is the whole of tanh'(z) once
    |z| > ~15 (float64), and for z < 0 it cancels; the result then depends on
    the upstream gradient and on compiler fusion (FMA), so hand-written and
    autodiff gradients of saturated tanh layers differed by up to 0.2 relative.
    Here autodiff goes through e^(-2|z|) and has no cancellation.
    """
    z = promote_to_float(z)
    s, u = _sign_and_abs(z)
    q = jnp.exp(-2 * u)
    return s * jnp.where(u < TANH_SPLIT, jnp.tanh(u), (1 - q) / (1 + q))


def tanh_derivative(z: ArrayLike) -> jax.Array:
    """tanh'(z) = 1 - a^2 = 4 / (e^z + e^-z)^2 with a = tanh(z); any shape.

    Evaluated as 4 q / (1 + q)^2 with q = e^(-2|z|): no overflow, no
    cancellation, a few ulps from the true value for every z (1 - a^2 loses all
    digits once a rounds near +-1); it underflows to 0 only past |z| ~ 370
    (float64) or ~50 (float32). Agrees with ``jax.grad(tanh)`` to 8 ulps for
    |z| <= 1e4 (measured: <= 2.5 ulps, 5.6e-16 in float64), far inside the 1e-10
    of ``check_gradients``.
    """
    z = promote_to_float(z)
    q = jnp.exp(-2 * jnp.abs(z))
    return 4 * q / ((1 + q) * (1 + q))


def relu(z: ArrayLike) -> jax.Array:
    """ReLU(z) = max(0, z); any shape.

    Written as ``where(z <= 0, 0, z)``: jax.grad of it is 0 at z = 0 (the
    documented relu'(0) = 0), and a NaN input stays NaN.
    """
    z = promote_to_float(z)
    return jnp.where(z <= 0, jnp.zeros_like(z), z)


def relu_derivative(z: ArrayLike) -> jax.Array:
    """ReLU'(z) = 1 if z > 0 else 0 (0 at the kink, as np.heaviside(z, 0))."""
    z = promote_to_float(z)
    return jnp.where(z <= 0, jnp.zeros_like(z), jnp.ones_like(z))


def check_slope(slope) -> None:
    """Raise ValueError unless a host slope is a finite real scalar.

    Any finite slope is allowed (0 gives relu, 1 the identity, > 1 and < 0 are
    valid too). Traced slopes (inside jit or vmap) are not checked.
    """
    try:
        value = np.asarray(slope)
    except jax.errors.TracerArrayConversionError:
        return
    if value.ndim != 0 or value.dtype.kind not in "iuf" or not np.isfinite(value):
        raise ValueError(
            f"leaky_relu slope must be a finite real number (e.g. 0.01); got {slope!r}"
        )


def leaky_relu(z: ArrayLike, slope: float = LEAKY_RELU_SLOPE) -> jax.Array:
    """LeakyReLU(z) = z if z > 0 else slope * z; any shape, any finite slope.

    Written as ``where(z <= 0, slope * z, z)``, so jax.grad of it is the slope
    at z = 0, matching ``leaky_relu_derivative``.

    Raises:
        ValueError: slope is not a finite real scalar (checked unless traced).
    """
    check_slope(slope)
    z = promote_to_float(z)
    return jnp.where(z <= 0, jnp.asarray(slope, z.dtype) * z, z)


def leaky_relu_derivative(z: ArrayLike, slope: float = LEAKY_RELU_SLOPE) -> jax.Array:
    """LeakyReLU'(z) = 1 if z > 0 else slope (slope at the kink z = 0)."""
    check_slope(slope)
    z = promote_to_float(z)
    return jnp.where(z <= 0, jnp.full_like(z, slope), jnp.ones_like(z))


def softplus(z: ArrayLike) -> jax.Array:
    """SoftPlus(z) = log(1 + e^z) = max(z, 0) + log(1 + e^-|z|); any shape.

    The second form is ``jnp.logaddexp(0, z)``'s, value for value (never
    overflows). It is written out so that jax.grad of it, 1 - q / (1 + q) for
    z >= 0 and q / (1 + q) for z < 0 with q = e^-|z|, is accurate to a few ulps:
    jnp.logaddexp's own rule exp(z - softplus(z)) loses |z| ulps.
    """
    z = promote_to_float(z)
    s, u = _sign_and_abs(z)
    return jnp.where(z >= 0, z, jnp.zeros_like(z)) + jnp.log1p(jnp.exp(-u))


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
        x: scores, any shape (integers and bools become the default float).
        axis: the axis summed over; the result sums to 1 along it.

    Returns:
        Probabilities with the shape of ``x`` and its (float) dtype.
    """
    x = promote_to_float(x)
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    exp = jnp.exp(shifted)
    return exp / jnp.sum(exp, axis=axis, keepdims=True)


class Activation(NamedTuple):
    """An activation g and its hand-written derivative g', both elementwise."""

    forward: Callable[[ArrayLike], jax.Array]
    derivative: Callable[[ArrayLike], jax.Array]


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
