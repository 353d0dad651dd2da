"""The softmax output for K classes: labels, cost, dZ = A - Y, prediction.

Gradient tolerances as in test_regularization: manual and jax.grad agree to
float64 rounding, checked at 1e-10 relative (atol 1e-13 for entries ~0 in both).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.deep import model_cost, model_value_and_grads, predict_proba
from jaxnet.labels import labels_from_one_hot, one_hot
from jaxnet.losses import compute_cost_from_logits, softmax_cross_entropy_from_logits
from jaxnet.optimizers import build_optimizer
from jaxnet.params import init_params
from jaxnet.train import accuracy, fit, predict
from tests.helpers import assert_trees_close

RTOL, ATOL = 1e-10, 1e-13  # see the module docstring


def _problem(key, layer_dims, m, hidden="relu"):
    """Params, X and one-hot Y (K, m) drawn with numpy (no per-shape compiles)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    params = [
        {
            "W": jnp.asarray(rng.normal(size=(n, n_prev)) * np.sqrt(2 / n_prev)),
            "b": jnp.asarray(0.1 * rng.normal(size=(n, 1))),
        }
        for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=True)
    ]
    X = jnp.asarray(rng.normal(size=(layer_dims[0], m)))
    labels = rng.integers(0, layer_dims[-1], size=m)
    Y = one_hot(labels, layer_dims[-1], dtype=jnp.float64)
    acts = (hidden,) * (len(layer_dims) - 2) + ("softmax",)
    return params, X, Y, acts


@partial(jax.jit, static_argnames="acts")
def manual_and_autodiff(params, X, Y, lambd, keep_prob, dropout_key, *, acts):
    """(J, grads) from the hand-written backward and from jax.value_and_grad."""
    kwargs = dict(lambd=lambd, keep_prob=keep_prob, dropout_key=dropout_key)
    manual = model_value_and_grads(params, X, Y, acts, **kwargs)
    auto = jax.value_and_grad(model_cost)(params, X, Y, acts, **kwargs)
    return manual, auto


@pytest.mark.parametrize(
    "layer_dims, hidden, m",
    [
        ([3, 4], "relu", 7),  # a single softmax layer: dZ = A - Y directly
        ([4, 5, 3], "relu", 7),
        ([4, 5, 3], "tanh", 1),
        ([5, 4, 3, 10], "relu", 7),
        ([5, 4, 3, 2], "sigmoid", 7),  # K = 2 is a valid softmax too
    ],
)
def test_softmax_grads_match_autodiff(key, layer_dims, hidden, m):
    params, X, Y, acts = _problem(key, layer_dims, m, hidden)
    # Plain (keep_prob = 1 keeps every unit), then with L2 and dropout on top;
    # lambd and keep_prob are traced, so both share one compilation.
    for lambd, keep_prob in ((0.0, 1.0), (0.3, 0.7)):
        (cost, grads), (auto_cost, auto) = manual_and_autodiff(
            params, X, Y, lambd, keep_prob, jax.random.key(1), acts=acts
        )
        assert_trees_close(grads, auto, RTOL, ATOL)
        np.testing.assert_allclose(cost, auto_cost, rtol=1e-14)


def test_softmax_is_stable_for_logits_of_1e4():
    """Logits [1e4, -1e4, 0]: no inf or NaN, and the exact cost and gradient."""
    params = [{"W": jnp.array([[1e4], [-1e4], [0.0]]), "b": jnp.zeros((3, 1))}]
    X = jnp.ones((1, 2))
    Y = one_hot([0, 1], 3, dtype=jnp.float64)  # right, then badly wrong
    acts = ("softmax",)
    cost, grads = model_value_and_grads(params, X, Y, acts)
    # Example 1: -log softmax_0 = log(1 + e^-1e4 + e^-2e4) = 0 in float64;
    # example 2: -log softmax_1 = 2e4 + log(1 + ...) = 2e4. J = (0 + 2e4) / 2.
    np.testing.assert_allclose(cost, 1e4, rtol=1e-15)
    # dZ = A - Y = [[0, 1], [0, -1], [0, 0]], dW = dZ X^T / m, db likewise.
    np.testing.assert_allclose(grads[0]["W"], [[0.5], [-0.5], [0.0]], atol=1e-300)
    np.testing.assert_allclose(grads[0]["b"], [[0.5], [-0.5], [0.0]], atol=1e-300)
    auto = jax.grad(model_cost)(params, X, Y, acts)
    assert_trees_close(grads, auto, RTOL, ATOL)
    probs = predict_proba(params, X, acts)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(jnp.sum(probs, axis=0), 1.0, rtol=1e-15)


def test_two_class_softmax_is_the_sigmoid_cost():
    """softmax([z, 0]) = [sigmoid(z), 1 - sigmoid(z)]: the same cross-entropy."""
    z = jnp.array([[-3.0, 0.5, 2.0, 40.0]])
    y = jnp.array([[0.0, 1.0, 1.0, 0.0]])
    logits = jnp.concatenate([z, jnp.zeros_like(z)])
    Y = jnp.concatenate([y, 1 - y])
    # Two formulas for the same float64 value: 1e-13 relative.
    np.testing.assert_allclose(
        softmax_cross_entropy_from_logits(logits, Y),
        compute_cost_from_logits(z, y),
        rtol=1e-13,
    )


def test_predict_returns_the_argmax_class(key):
    params, X, Y, acts = _problem(key, [4, 5, 3], 9)
    AL = np.asarray(predict_proba(params, X, acts))
    pred = np.asarray(predict(params, X, acts))
    assert pred.shape == (9,)
    np.testing.assert_array_equal(pred, AL.argmax(axis=0))
    labels = np.asarray(labels_from_one_hot(Y))
    expected = np.mean(pred == labels)
    # One-hot (K, m) and integer labels (m,) give the same accuracy.
    assert float(accuracy(params, X, Y, acts)) == pytest.approx(expected)
    assert float(accuracy(params, X, labels, acts)) == pytest.approx(expected)


def test_one_hot_layout_and_round_trip():
    Y = one_hot(np.array([2, 0, 1, 2]), 3)
    assert Y.shape == (3, 4) and Y.dtype == jnp.float32
    np.testing.assert_array_equal(Y, [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    np.testing.assert_array_equal(labels_from_one_hot(Y), [2, 0, 1, 2])
    # (1, m) rows of labels are accepted too.
    np.testing.assert_array_equal(one_hot(np.array([[2, 0, 1, 2]]), 3), Y)


@pytest.mark.parametrize(
    "labels, k, match",
    [
        ([0, 3], 3, r"0\.\.2 .* found \[3\]"),
        ([-1, 0], 3, r"found \[-1\]"),
        ([0.0, 1.5], 3, "integers"),
        ([[0, 1], [1, 0]], 3, "shape"),
        ([0, 1], 1, "num_classes"),
    ],
)
def test_one_hot_rejects_bad_labels(labels, k, match):
    with pytest.raises(ValueError, match=match):
        one_hot(np.array(labels), k)


def test_integer_labels_against_a_softmax_output_say_how_to_fix(key):
    params, X, _, acts = _problem(key, [4, 5, 3], 6)
    with pytest.raises(ValueError, match="one_hot"):
        model_cost(params, X, jnp.arange(6) % 3, acts)


def test_softmax_network_learns_three_blobs_in_float32(key):
    """K = 3 Gaussian blobs, minibatches and Adam: accuracy >= 0.95."""
    rng = np.random.default_rng(0)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    labels = rng.integers(0, 3, size=150)
    X = jnp.asarray((centers[labels] + rng.normal(size=(150, 2))).T, jnp.float32)
    Y = one_hot(labels, 3)
    params = init_params(key, [2, 8, 3], method="he", dtype=jnp.float32)
    acts = ("relu", "softmax")
    params, costs = fit(
        params, X, Y, activations=acts, num_iterations=30, batch_size=32,
        optimizer=build_optimizer("adam", 0.05), key=key,
    )  # fmt: skip
    assert params[0]["W"].dtype == jnp.float32
    assert float(costs[-1]) < 0.3 < float(costs[0])
    assert float(accuracy(params, X, labels, acts)) >= 0.95
