"""Tests for jaxnet.losses: the lecture's L1/L2/L3 values, derivatives vs jax.grad,
stability of the logits forms, and shape errors that name both shapes."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxnet.losses import (
    compute_cost,
    compute_cost_from_logits,
    cost_backward,
    cross_entropy,
    cross_entropy_derivative,
    cross_entropy_from_logits,
    cross_entropy_from_logits_derivative,
    l1_loss,
    l1_loss_derivative,
    l2_loss,
    l2_loss_derivative,
    l3_loss,
    softmax_cross_entropy_from_logits,
)

YHAT = jnp.array([0.9, 0.2, 0.1, 0.4, 0.9])
Y = jnp.array([1, 0, 0, 1, 1])

# ---------------------------------------------------------------- lecture values


def test_l1_l2_l3_match_lecture_printout():
    y_hat = jnp.array([0.78, 0.89, 0.12, 0.08, 0.97])
    y = jnp.array([1, 1, 0, 0, 1])
    # The lecture prints Loss1 = 0.5599999999999999 (0.56 to one ulp), 0.0822 and
    # 0.6066693634880955: float64 sums in some order, so agreement to 1e-15.
    np.testing.assert_allclose(l1_loss(y_hat, y), 0.5599999999999999, rtol=1e-15)
    np.testing.assert_allclose(l2_loss(y_hat, y), 0.0822, rtol=1e-15)
    np.testing.assert_allclose(l3_loss(y_hat, y), 0.6066693634880955, rtol=1e-15)


def test_compute_cost_is_mean_cross_entropy():
    AL = jnp.array([[0.8, 0.9, 0.4]])
    Y_ = jnp.array([[1.0, 1.0, 0.0]])
    expected = -(np.log(0.8) + np.log(0.9) + np.log(0.6)) / 3
    # Closed form in float64: rtol 1e-14.
    np.testing.assert_allclose(compute_cost(AL, Y_), expected, rtol=1e-14)
    # From logits z = logit(a) the same cost.
    ZL = jnp.log(AL / (1 - AL))
    np.testing.assert_allclose(compute_cost_from_logits(ZL, Y_), expected, rtol=1e-14)


def test_softmax_cost_with_one_hot_labels():
    ZL = jnp.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    Y_ = jnp.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    log_p = ZL - jnp.log(jnp.sum(jnp.exp(ZL), axis=0, keepdims=True))
    expected = -(log_p[0, 0] + log_p[2, 1]) / 2
    np.testing.assert_allclose(
        softmax_cross_entropy_from_logits(ZL, Y_), expected, rtol=1e-14
    )


def test_cross_entropy_clips_probabilities_zero_and_one():
    # a = 0 with y = 1 (and a = 1 with y = 0) would be log(0) = -inf: clipping at
    # EPS = eps64 gives -log(eps64) = 36.04, large and finite.
    losses = cross_entropy(jnp.array([0.0, 1.0, 1.0]), jnp.array([1.0, 0.0, 1.0]))
    big = -np.log(np.finfo(np.float64).eps)
    np.testing.assert_allclose(losses, [big, big, 0.0], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- derivatives

SHAPES = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5)
# Fixed-size buffer: each jitted pair compiles once (losses are sums of
# elementwise terms, so padding with neutral entries changes no derivative).
BUFFER = 32


def loss_pair(loss, derivative):
    """Jitted (dL/dy_hat by hand, jax.grad of the summed loss) on (BUFFER,)."""

    def pair(y_hat, y):
        total = lambda v: jnp.sum(loss(v, y))  # noqa: E731
        return derivative(y_hat, y), jax.grad(total)(y_hat)

    return jax.jit(pair)


PAIRS = {
    "l1": loss_pair(l1_loss, l1_loss_derivative),
    "l2": loss_pair(l2_loss, l2_loss_derivative),
    "cross_entropy": loss_pair(cross_entropy, cross_entropy_derivative),
    "from_logits": loss_pair(
        cross_entropy_from_logits, cross_entropy_from_logits_derivative
    ),
}


def assert_loss_derivative(name, y_hat, y, pad_value):
    y_hat = np.asarray(y_hat, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()[: y_hat.size]
    padded_hat, padded_y = np.full(BUFFER, pad_value), np.ones(BUFFER)
    padded_hat[: y_hat.size], padded_y[: y.size] = y_hat, y
    manual, reference = PAIRS[name](jnp.asarray(padded_hat), jnp.asarray(padded_y))
    # Same rule evaluated two ways in float64: 1e-12 relative (see activations).
    np.testing.assert_allclose(
        np.asarray(manual)[: y.size], np.asarray(reference)[: y.size], rtol=1e-12
    )


def labels_like(shape):
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))


@st.composite
def predictions_and_labels(draw, elements):
    shape = draw(SHAPES)
    return draw(hnp.arrays(np.float64, shape, elements=elements)), draw(
        labels_like(shape)
    )


@settings(max_examples=50, deadline=None)
@given(data=predictions_and_labels(st.floats(-1e4, 1e4)))
def test_l2_derivative_matches_autodiff(data):
    assert_loss_derivative("l2", *data, pad_value=0.5)


@settings(max_examples=50, deadline=None)
@given(data=predictions_and_labels(st.floats(-1e4, 1e4)))
def test_l1_derivative_matches_autodiff_away_from_the_kink(data):
    y_hat, y = data
    # |y - y_hat| has a kink at y_hat = y: move those entries off it.
    y_hat = np.where(np.abs(y_hat - y) < 1e-6, y + 0.5, y_hat)
    assert_loss_derivative("l1", y_hat, y, pad_value=0.5)


@settings(max_examples=50, deadline=None)
@given(data=predictions_and_labels(st.floats(1e-6, 1 - 1e-6)))
def test_cross_entropy_derivative_matches_autodiff(data):
    # Probabilities strictly inside the clipping range [eps, 1 - eps].
    assert_loss_derivative("cross_entropy", *data, pad_value=0.5)


@settings(max_examples=50, deadline=None)
@given(data=predictions_and_labels(st.floats(-1e4, 1e4)))
def test_cross_entropy_from_logits_derivative_matches_autodiff(data):
    assert_loss_derivative("from_logits", *data, pad_value=0.0)


def test_cost_backward_is_the_lecture_dAL():
    AL = jnp.array([[0.8, 0.3, 0.6]])
    Y_ = jnp.array([[1.0, 0.0, 1.0]])
    expected = -(Y_ / AL) + (1 - Y_) / (1 - AL)
    np.testing.assert_allclose(cost_backward(AL, Y_), expected, rtol=1e-15)
    # It is m times the gradient of J = compute_cost (the 1/m comes in dW, db).
    reference = jax.grad(compute_cost)(AL, Y_) * AL.shape[1]
    np.testing.assert_allclose(cost_backward(AL, Y_), reference, rtol=1e-12)


# ---------------------------------------------------------------- stability

BIG = 1e4


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_binary_cross_entropy_from_logits_is_stable(dtype):
    z = jnp.array([[BIG, -BIG, BIG, -BIG, 0.0]], dtype)
    y = jnp.array([[1.0, 0.0, 0.0, 1.0, 1.0]], dtype)
    losses = cross_entropy_from_logits(z, y)
    assert losses.dtype == dtype
    # Right answers: 0, 0, 1e4, 1e4, log 2 (rtol 1e-6 covers float32).
    np.testing.assert_allclose(
        losses, [[0.0, 0.0, BIG, BIG, np.log(2)]], rtol=1e-6, atol=0
    )
    grad = jax.jit(jax.grad(compute_cost_from_logits))(z, y)
    assert np.all(np.isfinite(grad))
    # dJ/dz = (a - y) / m = [0, 0, 1, -1, -0.5] / 5.
    np.testing.assert_allclose(
        grad, [[0.0, 0.0, 0.2, -0.2, -0.1]], rtol=1e-6, atol=1e-30
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_cross_entropy_from_logits_is_stable(dtype):
    ZL = jnp.array([[BIG, 0.0], [0.0, BIG], [-BIG, 0.0]], dtype)
    Y_ = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype)
    cost = softmax_cross_entropy_from_logits(ZL, Y_)
    # Example 1: -log softmax = 1e4; example 2: 0. Mean 5e3.
    np.testing.assert_allclose(cost, BIG / 2, rtol=1e-6)
    grad = jax.jit(jax.grad(softmax_cross_entropy_from_logits))(ZL, Y_)
    assert np.all(np.isfinite(grad))
    # dJ/dZ = (softmax(Z) - Y) / m.
    np.testing.assert_allclose(
        grad, [[0.5, 0.0], [-0.5, 0.0], [0.0, 0.0]], rtol=1e-6, atol=1e-30
    )


def test_naive_log_of_sigmoid_fails_where_logits_form_holds():
    # log(sigmoid(1000)) computed from probabilities underflows: 1 - a = 0.
    z = 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = 1 / (1 + np.exp(-z))
        naive = -np.log(1 - a)  # the y = 0 loss
    assert np.isinf(naive)
    np.testing.assert_allclose(
        cross_entropy_from_logits(jnp.float64(z), jnp.float64(0.0)), 1000.0, rtol=1e-15
    )


# ---------------------------------------------------------------- shape errors


@pytest.mark.parametrize(
    "fn",
    [
        l1_loss,
        l2_loss,
        l3_loss,
        cross_entropy,
        cross_entropy_from_logits,
        compute_cost,
        compute_cost_from_logits,
        cost_backward,
        softmax_cross_entropy_from_logits,
    ],
)
def test_rank_one_labels_against_row_predictions_raise(fn):
    y_hat = jnp.full((1, 5), 0.5)
    y = jnp.array([1.0, 0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError) as info:
        fn(y_hat, y)
    message = str(info.value)
    assert "(1, 5)" in message and "(5,)" in message


@pytest.mark.parametrize(
    "fn", [l2_loss, cross_entropy, compute_cost, compute_cost_from_logits]
)
def test_mismatched_m_names_both_shapes(fn):
    with pytest.raises(ValueError) as info:
        fn(jnp.full((1, 4), 0.5), jnp.ones((1, 3)))
    message = str(info.value)
    assert "(1, 4)" in message and "(1, 3)" in message


def test_rank_one_labels_hint_at_reshape():
    with pytest.raises(ValueError, match=r"reshape"):
        l2_loss(jnp.full((1, 3), 0.5), jnp.ones(3))


def test_cost_needs_a_matrix():
    with pytest.raises(ValueError, match="examples in columns"):
        compute_cost(YHAT, Y)
