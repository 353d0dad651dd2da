"""Tests for jaxnet.linear_regression: closed-form least squares and the metrics."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.data import load_autompg
from jaxnet.linear_regression import (
    least_squares,
    mean_absolute_error,
    predict_linear,
    root_mean_squared_error,
)


def _data(seed=0, n_x=3, m=40, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m)) * np.arange(1, n_x + 1)[:, None] + 5.0
    w = rng.normal(size=(n_x, 1))
    Y = w.T @ X - 2.5 + noise * rng.normal(size=(1, m))
    return X, Y, w


def test_recovers_exact_weights_and_intercept():
    X, Y, w_true = _data()
    w, b = least_squares(X, Y)
    assert w.shape == (3, 1) and b.shape == () and w.dtype == jnp.float64
    np.testing.assert_allclose(w, w_true, rtol=1e-10)
    np.testing.assert_allclose(b, -2.5, rtol=1e-10)
    np.testing.assert_allclose(predict_linear(w, b, X), Y, rtol=1e-10)


def test_matches_numpy_lstsq_with_a_ones_row_and_normal_equations():
    X, Y, _ = _data(seed=1, n_x=4, m=25, noise=0.3)
    w, b = least_squares(X, Y)
    A = np.vstack([X, np.ones((1, X.shape[1]))]).T
    theta, *_ = np.linalg.lstsq(A, Y.T, rcond=None)
    np.testing.assert_allclose(w, theta[:-1], rtol=1e-9)
    np.testing.assert_allclose(b, theta[-1, 0], rtol=1e-9)
    residual = predict_linear(w, b, X) - Y  # orthogonal to every input row and 1
    np.testing.assert_allclose(X @ residual.T, 0.0, atol=1e-9)
    np.testing.assert_allclose(residual.sum(), 0.0, atol=1e-10)


def test_collinear_one_hot_columns_give_unique_predictions():
    X, Y, _ = _data(seed=2, n_x=2, m=30, noise=0.2)
    group = np.arange(30) % 3
    onehot = np.eye(3)[group].T  # rows sum to 1: collinear with the intercept
    full = np.vstack([X, onehot])
    reduced = np.vstack([X, onehot[1:]])  # reference coding, full rank
    w_full, b_full = least_squares(full, Y)
    w_red, b_red = least_squares(reduced, Y)
    assert np.isfinite(w_full).all()
    np.testing.assert_allclose(
        predict_linear(w_full, b_full, full),
        predict_linear(w_red, b_red, reduced),
        rtol=1e-9,
    )


def test_integer_inputs_are_promoted_and_one_example_works():
    w, b = least_squares(np.array([[1, 2, 3, 4]]), np.array([[3, 5, 7, 9]]))
    np.testing.assert_allclose(w, [[2.0]], rtol=1e-12)
    np.testing.assert_allclose(b, 1.0, rtol=1e-12)
    w1, b1 = least_squares(np.ones((2, 1)), np.array([[4.0]]))
    np.testing.assert_allclose(predict_linear(w1, b1, np.ones((2, 1))), [[4.0]])


def test_metrics_values():
    Y = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    Y_hat = jnp.array([[2.0, 2.0, 1.0, 4.0]])
    assert float(mean_absolute_error(Y_hat, Y)) == 0.75
    np.testing.assert_allclose(root_mean_squared_error(Y_hat, Y), np.sqrt(5 / 4))
    assert float(mean_absolute_error(Y, Y)) == 0.0


@pytest.mark.parametrize(
    ("Y_hat", "Y"),
    [
        (np.zeros((4, 1)), np.zeros((1, 4))),  # would broadcast to (4, 4)
        (np.zeros(4), np.zeros((1, 4))),
        (np.zeros((2, 4)), np.zeros((2, 4))),
        (np.zeros((1, 0)), np.zeros((1, 0))),
    ],
)
def test_metrics_refuse_mismatched_shapes(Y_hat, Y):
    for metric in (mean_absolute_error, root_mean_squared_error):
        with pytest.raises(ValueError, match=r"both \(1, m\)"):
            metric(Y_hat, Y)


def test_bad_shapes_are_refused():
    X, Y, _ = _data()
    with pytest.raises(ValueError, match=r"X \(n_x, m\) and Y \(1, m\)"):
        least_squares(X, Y.T)
    with pytest.raises(ValueError, match=r"X \(n_x, m\) and Y \(1, m\)"):
        least_squares(X.T, Y)
    w, b = least_squares(X, Y)
    with pytest.raises(ValueError, match=r"w \(n_x, 1\)"):
        predict_linear(w.T, b, X)
    with pytest.raises(ValueError, match="scalar b"):
        predict_linear(w, jnp.zeros((1, 1)), X)


def test_auto_mpg_baseline(autompg_root):
    """Held-out error of the closed-form fit on the real data, three splits."""
    maes, rmses = [], []
    for seed in range(3):
        d = load_autompg(autompg_root, seed=seed)
        w, b = least_squares(d.X_train, d.Y_train)
        Y_hat = predict_linear(w, b, d.X_test)
        maes.append(float(mean_absolute_error(Y_hat, d.Y_test)))
        rmses.append(float(root_mean_squared_error(Y_hat, d.Y_test)))
    assert 2.0 < np.mean(maes) < 3.0, maes
    assert np.all(np.array(rmses) >= np.array(maes)), (rmses, maes)
