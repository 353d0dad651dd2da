"""Tests for jaxnet.shallow: the two-layer model is the engine with [n_x, n_h, 1],
and its gradients are the lecture's explicit two-layer formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.activations import ACTIVATIONS
from jaxnet.data.synthetic import planar_flower
from jaxnet.deep import model_value_and_grads
from jaxnet.shallow import HIDDEN_ACTIVATIONS, init_shallow, shallow_activations
from jaxnet.train import accuracy, fit


def test_shallow_activations():
    assert shallow_activations() == ("tanh", "sigmoid")
    for hidden in HIDDEN_ACTIVATIONS:
        assert shallow_activations(hidden) == (hidden, "sigmoid")
    assert set(HIDDEN_ACTIVATIONS) == set(ACTIVATIONS)


def test_unknown_hidden_activation_raises():
    with pytest.raises(ValueError, match="unknown activation") as info:
        shallow_activations("softmax")
    assert "tanh" in str(info.value)


def test_init_shallow_shapes_and_scale(key):
    params = init_shallow(key, 200, 50, dtype=jnp.float64)
    assert [p["W"].shape for p in params] == [(50, 200), (1, 50)]
    assert [p["b"].shape for p in params] == [(50, 1), (1, 1)]
    np.testing.assert_array_equal(params[0]["b"], 0.0)
    # W = randn * 0.01: 10,000 draws give a sample std within ~1% of 0.01.
    np.testing.assert_allclose(np.std(params[0]["W"]), 0.01, rtol=0.05)
    assert init_shallow(key, 3, 2)[0]["W"].dtype == jnp.float32


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_grads_are_the_lecture_two_layer_formulas(hidden):
    rng = np.random.RandomState(0)
    n_x, n_h, m = 3, 5, 7
    W1, b1 = rng.randn(n_h, n_x), rng.randn(n_h, 1)
    W2, b2 = rng.randn(1, n_h), rng.randn(1, 1)
    X, Y = rng.randn(n_x, m), (rng.rand(1, m) > 0.5).astype(np.float64)
    g, g_prime = {
        "tanh": (np.tanh, lambda Z: 1 - np.tanh(Z) ** 2),
        "relu": (lambda Z: np.maximum(Z, 0), lambda Z: (Z > 0).astype(float)),
    }[hidden]
    # The lecture, in numpy:
    Z1 = W1 @ X + b1
    A1 = g(Z1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dW2 = dZ2 @ A1.T / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = W2.T @ dZ2 * g_prime(Z1)
    dW1 = dZ1 @ X.T / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    cost = -np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))

    params = [
        {"W": jnp.asarray(W1), "b": jnp.asarray(b1)},
        {"W": jnp.asarray(W2), "b": jnp.asarray(b2)},
    ]
    J, grads = model_value_and_grads(params, X, Y, shallow_activations(hidden))
    # The same float64 formulas (numpy vs XLA): 1e-12 relative, with an absolute
    # 1e-14 for entries that cancel to ~0 in the sums over m.
    np.testing.assert_allclose(J, cost, rtol=1e-12)
    for ours, theirs in [
        (grads[0]["W"], dW1),
        (grads[0]["b"], db1),
        (grads[1]["W"], dW2),
        (grads[1]["b"], db2),
    ]:
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_planar_flower_is_learned_by_a_tanh_hidden_layer(key):
    # The course's planar data set: not linearly separable (logistic regression
    # gets 41% on this draw), while n_h = 4 tanh units reach 90.5% after 2000
    # steps at lr 1.2 in float32 (cost 0.24); bounds 0.8 and 0.35 leave margin.
    X, Y = planar_flower(key, m=400, dtype=jnp.float32)
    params = init_shallow(jax.random.key(3), 2, 4)
    activations = shallow_activations("tanh")
    trained, costs = fit(
        params, X, Y, activations=activations, num_iterations=2000, learning_rate=1.2
    )
    assert costs[-1] < 0.35 < costs[0]
    assert float(accuracy(trained, X, Y, activations)) > 0.8
