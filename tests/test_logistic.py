"""Tests for jaxnet.logistic: the vectorized propagate equals the lecture's
for-loops and jax.grad, parameter conversion round-trips, bad shapes raise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.deep import predict_proba
from jaxnet.logistic import (
    from_layers,
    init_logistic,
    logistic_forward,
    propagate,
    propagate_loops,
    to_layers,
)


def random_problem(n_x=4, m=6, seed=0):
    rng = np.random.RandomState(seed)
    params = {"w": jnp.asarray(rng.randn(n_x, 1)), "b": jnp.asarray(rng.randn())}
    X = jnp.asarray(rng.randn(n_x, m))
    Y = jnp.asarray((rng.rand(1, m) > 0.5).astype(np.float64))
    return params, X, Y


def lecture_cost(params, X, Y):
    """J = -(1/m) sum(Y log A + (1 - Y) log(1 - A)), A = sigmoid(w^T X + b)."""
    A = logistic_forward(params, X)
    return -jnp.mean(Y * jnp.log(A) + (1 - Y) * jnp.log(1 - A))


def test_course_propagate_example():
    # The course notebook's check: w = [[1], [2]], b = 2, X, Y below print
    # dw = [[0.99845601] [2.39507239]], db = 0.00145557813678,
    # cost = 5.801545319394553. The course computes J from A = sigmoid(z), where
    # log(1 - A) loses ~1e-13 for A near 1; ours comes from the logits, so the
    # cost agrees to 1e-12 and the gradients to the printed digits.
    params = {"w": jnp.array([[1.0], [2.0]]), "b": jnp.array(2.0)}
    X = jnp.array([[1.0, 2.0, -1.0], [3.0, 4.0, -3.2]])
    Y = jnp.array([[1.0, 0.0, 1.0]])
    cost, grads = propagate(params, X, Y)
    np.testing.assert_allclose(cost, 5.801545319394553, rtol=1e-12)
    np.testing.assert_allclose(grads["w"], [[0.99845601], [2.39507239]], atol=5e-9)
    np.testing.assert_allclose(grads["b"], 0.00145557813678, rtol=0, atol=5e-15)


@pytest.mark.parametrize("n_x, m, seed", [(1, 1, 0), (4, 6, 1), (3, 10, 2)])
def test_propagate_equals_the_lecture_loops(n_x, m, seed):
    params, X, Y = random_problem(n_x, m, seed)
    cost, grads = propagate(params, X, Y)
    loop_cost, loop_grads = propagate_loops(params, X, Y)
    # Same float64 sums, vectorized vs one term at a time: 1e-12.
    np.testing.assert_allclose(cost, loop_cost, rtol=1e-12)
    np.testing.assert_allclose(grads["w"], loop_grads["w"], rtol=1e-12)
    np.testing.assert_allclose(grads["b"], loop_grads["b"], rtol=1e-12)
    assert grads["w"].shape == (n_x, 1) and jnp.ndim(grads["b"]) == 0


def test_propagate_equals_autodiff_of_the_lecture_cost():
    params, X, Y = random_problem(5, 8, 3)
    cost, grads = propagate(params, X, Y)
    ref_cost, ref_grads = jax.value_and_grad(lecture_cost)(params, X, Y)
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-13)
    # dw, db are sums over m with possible cancellation; 1e-12 of the leaf's
    # largest entry (float64 rounding is ~1e-16 of it).
    scale = np.abs(ref_grads["w"]).max()
    np.testing.assert_allclose(grads["w"], ref_grads["w"], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(grads["b"], ref_grads["b"], rtol=1e-12)


def test_to_layers_and_back():
    params, X, _ = random_problem(4, 6, 4)
    layers = to_layers(params)
    assert len(layers) == 1
    assert layers[0]["W"].shape == (1, 4) and layers[0]["b"].shape == (1, 1)
    np.testing.assert_array_equal(layers[0]["W"], params["w"].T)
    back = from_layers(layers)
    assert back["w"].shape == (4, 1) and back["b"].shape == ()
    np.testing.assert_array_equal(back["w"], params["w"])
    np.testing.assert_array_equal(back["b"], params["b"])
    # The engine sees the same model: z = w^T X + b = W X + b.
    np.testing.assert_allclose(
        predict_proba(layers, X, ("sigmoid",)), logistic_forward(params, X), rtol=1e-15
    )


def test_init_logistic_is_zeros():
    params = init_logistic(5, dtype=jnp.float64)
    assert params["w"].shape == (5, 1) and params["b"].shape == ()
    np.testing.assert_array_equal(params["w"], 0.0)
    assert float(params["b"]) == 0.0
    assert init_logistic(3)["w"].dtype == jnp.float32


@pytest.mark.parametrize(
    "w_shape, b_shape",
    [((4,), ()), ((1, 4), ()), ((4, 2), ()), ((4, 1), (1,)), ((4, 1), (1, 1))],
)
def test_wrong_parameter_shapes_raise(w_shape, b_shape):
    params = {"w": jnp.zeros(w_shape), "b": jnp.zeros(b_shape)}
    with pytest.raises(ValueError, match=r"w \(n_x, 1\) and scalar b") as info:
        to_layers(params)
    assert str(w_shape) in str(info.value)


def test_wrong_data_shapes_raise():
    params, X, Y = random_problem(4, 6, 5)
    with pytest.raises(ValueError, match=r"are examples in rows\?"):
        propagate(params, X.T, Y)
    with pytest.raises(ValueError, match="reshape labels"):
        propagate(params, X, Y[0])
