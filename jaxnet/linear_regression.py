"""Ordinary least squares in closed form: the baseline for regression.

Same notation as ``logistic.py``: w (n_x, 1), scalar b, and Y_hat = w^T X + b.

    (w, b) = argmin sum_j (w^T x_j + b - y_j)^2

solved on centred data, which makes the intercept exact and keeps the system
well conditioned:

    Xc = X - mean_x,  yc = Y - mean_y
    w  = lstsq(Xc^T, yc^T)            (minimum-norm, SVD-based)
    b  = mean_y - w^T mean_x

``jnp.linalg.lstsq`` gives the minimum-norm w when columns are collinear (e.g. a
complete one-hot group beside the intercept); predictions are unique either way.
The metrics use the lecture's argument order (y_hat, y), as ``l1_loss`` does.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _check_xy(X: jax.Array, Y: jax.Array) -> None:
    if X.ndim != 2 or Y.ndim != 2 or Y.shape != (1, X.shape[1]):
        raise ValueError(
            f"expected X (n_x, m) and Y (1, m) with examples as columns; got X "
            f"{X.shape} and Y {Y.shape}"
        )
    if X.shape[1] < 1:
        raise ValueError("need at least one example (m >= 1)")


def least_squares(X: ArrayLike, Y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Fit Y ~ w^T X + b by ordinary least squares, with an intercept.

    Args:
        X: inputs, examples as columns, (n_x, m); integers are promoted.
        Y: targets, (1, m).

    Returns:
        w: weights, (n_x, 1).
        b: intercept, scalar ().
    """
    dtype = jnp.result_type(float, X, Y)
    X, Y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
    _check_xy(X, Y)
    x_mean = jnp.mean(X, axis=1, keepdims=True)
    y_mean = jnp.mean(Y)
    w, *_ = jnp.linalg.lstsq((X - x_mean).T, (Y - y_mean).T)
    b = y_mean - jnp.sum(w * x_mean)
    return w, b


def predict_linear(w: ArrayLike, b: ArrayLike, X: ArrayLike) -> jax.Array:
    """Y_hat = w^T X + b.

    Args:
        w: weights, (n_x, 1).
        b: intercept, scalar.
        X: inputs, (n_x, m).

    Returns:
        predictions, (1, m).
    """
    w, X = jnp.asarray(w), jnp.asarray(X)
    if w.ndim != 2 or w.shape[1] != 1 or X.ndim != 2 or X.shape[0] != w.shape[0]:
        raise ValueError(
            f"expected w (n_x, 1) and X (n_x, m); got w {w.shape} and X {X.shape}"
        )
    if jnp.ndim(b) != 0:
        raise ValueError(f"expected a scalar b; got shape {jnp.shape(b)}")
    return jnp.dot(w.T, X) + b


def _residuals(Y_hat: ArrayLike, Y: ArrayLike) -> jax.Array:
    dtype = jnp.result_type(float, Y_hat, Y)
    Y_hat, Y = jnp.asarray(Y_hat, dtype), jnp.asarray(Y, dtype)
    if Y_hat.shape != Y.shape or Y.ndim != 2 or Y.shape[0] != 1 or Y.shape[1] < 1:
        raise ValueError(
            f"expected Y_hat and Y both (1, m) with m >= 1; got {Y_hat.shape} and "
            f"{Y.shape}"
        )
    return Y_hat - Y


def mean_absolute_error(Y_hat: ArrayLike, Y: ArrayLike) -> jax.Array:
    """MAE = (1/m) sum_j |y_hat_j - y_j|, a scalar in the units of Y.

    Args:
        Y_hat: predictions, (1, m).
        Y: targets, (1, m).

    Returns:
        scalar (), averaged over the m examples (axis 1).
    """
    return jnp.mean(jnp.abs(_residuals(Y_hat, Y)))


def root_mean_squared_error(Y_hat: ArrayLike, Y: ArrayLike) -> jax.Array:
    """RMSE = sqrt((1/m) sum_j (y_hat_j - y_j)^2), a scalar in the units of Y.

    Args:
        Y_hat: predictions, (1, m).
        Y: targets, (1, m).

    Returns:
        scalar (), averaged over the m examples (axis 1) before the root.
    """
    return jnp.sqrt(jnp.mean(_residuals(Y_hat, Y) ** 2))
