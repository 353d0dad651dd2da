"""Losses L(y_hat, y), the cost J, and their hand-written derivatives.

The lecture's losses between a prediction y_hat and a label y (sums over all
entries, as its L1, L2 and L3 code does):

    L1(y_hat, y) = sum |y - y_hat|                 dL1/dy_hat = sign(y_hat - y)
    L2(y_hat, y) = sum (y - y_hat)^2               dL2/dy_hat = 2 (y_hat - y)
    L3(y_hat, y) = -sum (y log y_hat + (1 - y) log(1 - y_hat))

Note: the lecture's printed formula (3) reads (1 - y)(1 - log y_hat); that is a
misprint. Its code (and the cost J on the same slides) uses (1 - y) log(1 - y_hat),
which is what is implemented here and what gives its printed 0.6066693634880955.

The cost is the mean of the per-example loss over the m columns:

    J = (1/m) sum_i L(a(i), y(i))                       (binary, Y is (1, m))
    dA = -(y / a) + (1 - y) / (1 - a)                   (derivative of L w.r.t. a)

From logits z (a = sigmoid(z)) the same loss is computed without ever forming
log(0): L = -(y log_sigmoid(z) + (1 - y) log_sigmoid(-z)), with dL/dz = a - y.
For K classes, J = -(1/m) sum_i sum_k Y_ki log softmax(Z)_ki, with dL/dZ = A - Y
for one-hot columns (A sum_k Y_k - Y for any labels).

Shapes are checked statically (free under jit): y_hat and y must have the same
shape, so a rank-1 y against a (1, m) y_hat raises instead of broadcasting to an
(m, m) matrix. Integer and bool inputs are promoted to JAX's default float; the
labels take the dtype of the predictions.

Label values are not checked here (that would need the values, inside jit):
``jaxnet.validation.check_training_data`` checks them once, on the host.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnet.activations import promote_to_float, sigmoid


def probability_eps(dtype) -> float:
    """EPS used to clip probabilities a into [EPS, 1 - EPS] before taking logs.

    It is the dtype's machine epsilon (2.2e-16 in float64, 1.2e-7 in float32),
    the smallest value for which 1 - EPS is still below 1 in that dtype. It only
    changes a when a is within EPS of 0 or 1, where log would give -inf.
    """
    return float(jnp.finfo(dtype).eps)


def check_same_shape(y_hat: jax.Array, y: jax.Array, what: str = "y_hat and y"):
    """Raise ValueError naming both shapes unless y_hat.shape == y.shape."""
    if jnp.shape(y_hat) != jnp.shape(y):
        hint = ""
        if jnp.ndim(y) == 1 and jnp.ndim(y_hat) == 2:
            hint = " (reshape the labels to (1, m): y.reshape(1, -1))"
        raise ValueError(
            f"{what} must have the same shape; got y_hat {jnp.shape(y_hat)} and "
            f"y {jnp.shape(y)}{hint}"
        )


def _as_float_pair(y_hat: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    y_hat = promote_to_float(y_hat)
    y = jnp.asarray(y).astype(y_hat.dtype)
    check_same_shape(y_hat, y)
    return y_hat, y


def l1_loss(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """L1 = sum_j |y_j - y_hat_j| (a scalar), lecture formula (1)."""
    y_hat, y = _as_float_pair(y_hat, y)
    return jnp.sum(jnp.abs(y - y_hat))


def l1_loss_derivative(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """dL1/dy_hat = sign(y_hat - y), elementwise (0 where y_hat == y)."""
    y_hat, y = _as_float_pair(y_hat, y)
    return jnp.sign(y_hat - y)


def l2_loss(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """L2 = sum_j (y_j - y_hat_j)^2 (a scalar), lecture formula (2)."""
    y_hat, y = _as_float_pair(y_hat, y)
    return jnp.sum((y - y_hat) ** 2)


def l2_loss_derivative(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """dL2/dy_hat = 2 (y_hat - y), elementwise."""
    y_hat, y = _as_float_pair(y_hat, y)
    return 2 * (y_hat - y)


def cross_entropy(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """Per-entry binary cross-entropy L(a, y) = -(y log a + (1 - y) log(1 - a)).

    a is clipped into [EPS, 1 - EPS] (``probability_eps``) so a = 0 or 1 gives a
    large finite loss instead of inf or NaN. For training prefer
    ``cross_entropy_from_logits``, which needs no clipping.

    Args:
        y_hat: probabilities a in [0, 1], any shape, e.g. AL (1, m).
        y: labels in {0, 1}, same shape as y_hat.

    Returns:
        Losses with the shape of y_hat.
    """
    y_hat, y = _as_float_pair(y_hat, y)
    eps = probability_eps(y_hat.dtype)
    a = jnp.clip(y_hat, eps, 1 - eps)
    return -(y * jnp.log(a) + (1 - y) * jnp.log1p(-a))


def cross_entropy_derivative(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """dL/da = -(y / a) + (1 - y) / (1 - a), with a clipped as in cross_entropy."""
    y_hat, y = _as_float_pair(y_hat, y)
    eps = probability_eps(y_hat.dtype)
    a = jnp.clip(y_hat, eps, 1 - eps)
    return -(y / a) + (1 - y) / (1 - a)


def l3_loss(y_hat: ArrayLike, y: ArrayLike) -> jax.Array:
    """L3 = -sum_j (y_j log y_hat_j + (1 - y_j) log(1 - y_hat_j)), a scalar."""
    return jnp.sum(cross_entropy(y_hat, y))


def cross_entropy_from_logits(z: ArrayLike, y: ArrayLike) -> jax.Array:
    """Per-entry binary cross-entropy of a = sigmoid(z), computed from z.

    L = -(y log_sigmoid(z) + (1 - y) log_sigmoid(-z)): finite and exact for any
    finite z (z = +-1e4 included), where log(sigmoid(z)) would give log(0).

    Args:
        z: logits, any shape, e.g. ZL (1, m).
        y: labels in {0, 1} (or soft labels in [0, 1]), same shape as z.

    Returns:
        Losses with the shape of z.
    """
    z, y = _as_float_pair(z, y)
    return -y * jax.nn.log_sigmoid(z) - (1 - y) * jax.nn.log_sigmoid(-z)


def cross_entropy_from_logits_derivative(z: ArrayLike, y: ArrayLike) -> jax.Array:
    """dL/dz = sigmoid(z) - y = a - y (the lecture's dZ = A - Y), elementwise.

    Evaluated as (1 - y) sigmoid(z) - y sigmoid(-z), the same value since
    sigmoid(-z) = 1 - sigmoid(z), but without the cancellation in a - 1 when
    y = 1 and a rounds to 1 (z > ~9): full relative precision for any z.
    """
    z, y = _as_float_pair(z, y)
    return (1 - y) * sigmoid(z) - y * sigmoid(-z)


def _check_labels_matrix(y_hat: jax.Array, y: jax.Array, name: str):
    if jnp.ndim(y_hat) != 2:
        raise ValueError(
            f"{name} must be a matrix (n_y, m) with examples in columns; got shape "
            f"{jnp.shape(y_hat)}"
        )
    check_same_shape(y_hat, y, what=f"{name} and Y")


def compute_cost(AL: ArrayLike, Y: ArrayLike) -> jax.Array:
    """J = -(1/m) sum_i (y(i) log a(i) + (1 - y(i)) log(1 - a(i))), a scalar.

    Args:
        AL: output probabilities, (1, m).
        Y: labels in {0, 1}, (1, m).

    Returns:
        The cost J, averaged over the m columns (axis 1).
    """
    AL, Y = promote_to_float(AL), jnp.asarray(Y)
    _check_labels_matrix(AL, Y, "AL")
    m = AL.shape[1]
    return jnp.sum(cross_entropy(AL, Y)) / m


def cost_backward(AL: ArrayLike, Y: ArrayLike) -> jax.Array:
    """dAL = -(Y / AL) + (1 - Y) / (1 - AL), (1, m): dL/dAL per example.

    As in the lecture, the 1/m of J is applied later, in dW and db.
    """
    AL, Y = promote_to_float(AL), jnp.asarray(Y)
    _check_labels_matrix(AL, Y, "AL")
    return cross_entropy_derivative(AL, Y)


def compute_cost_from_logits(ZL: ArrayLike, Y: ArrayLike) -> jax.Array:
    """J from the output logits ZL (1, m), stable for any finite ZL; a scalar."""
    ZL, Y = promote_to_float(ZL), jnp.asarray(Y)
    _check_labels_matrix(ZL, Y, "ZL")
    m = ZL.shape[1]
    return jnp.sum(cross_entropy_from_logits(ZL, Y)) / m


def softmax_cross_entropy_from_logits(ZL: ArrayLike, Y: ArrayLike) -> jax.Array:
    """Categorical cost J = -(1/m) sum_i sum_k Y_ki log softmax(ZL)_ki, a scalar.

    log softmax is computed as ZL - logsumexp(ZL, axis=0): finite for logits of
    +-1e4.

    For any labels dJ/dZL = (1/m) (softmax(ZL) sum_k Y_k - Y), the lecture's
    collapsed (1/m) (A - Y) when the columns sum to 1 (one-hot, soft targets);
    the softmax row of ``jaxnet.outputs.OUTPUTS`` computes the general form.
    ``check_training_data`` refuses columns that are not distributions before
    training (all-zero or multi-hot columns are usually label mistakes).

    Args:
        ZL: logits, (K, m), one column per example.
        Y: one-hot (or soft) labels, (K, m).

    Returns:
        The cost J, summed over the K classes (axis 0) and averaged over m.
    """
    ZL, Y = promote_to_float(ZL), jnp.asarray(Y)
    _check_labels_matrix(ZL, Y, "ZL")
    Y = Y.astype(ZL.dtype)
    m = ZL.shape[1]
    log_probs = ZL - jax.nn.logsumexp(ZL, axis=0, keepdims=True)
    return -jnp.sum(Y * log_probs) / m
