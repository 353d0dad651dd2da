"""Tests for jaxnet.activations: the lecture's printed values, derivatives vs
jax.grad (kinks and saturated units included), numerical stability at +-1e4, and
errors for unknown names."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxnet.activations import (
    ACTIVATIONS,
    get_activation,
    leaky_relu,
    leaky_relu_derivative,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    softmax,
    softplus,
    tanh,
    tanh_derivative,
)

# ---------------------------------------------------------------- lecture values


def test_sigmoid_matches_lecture_printout():
    # Lecture: z = np.array([-2, -1, 0, 1, 2]), printed to 8 decimals, so
    # agreement to 5e-9 is "to the printed digits".
    x = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(
        sigmoid(x),
        [0.11920292, 0.26894142, 0.5, 0.73105858, 0.88079708],
        rtol=0,
        atol=5e-9,
    )


def test_sigmoid_derivative_matches_lecture_printout():
    # sigma'(z) = s (1 - s), printed to 8 decimals.
    x = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(
        sigmoid_derivative(x),
        [0.10499359, 0.19661193, 0.25, 0.19661193, 0.10499359],
        rtol=0,
        atol=5e-9,
    )


def test_softmax_per_row_matches_lecture_printout():
    # The lecture's softmax sums over axis 1 (rows); printed to 9 significant
    # digits, hence rtol 5e-9.
    x = jnp.array([[0.0, 9.0, 3.0, 0.0], [3.0, 0.0, 8.0, 1.0]])
    expected = [
        [1.23074356e-04, 9.97281837e-01, 2.47201452e-03, 1.23074356e-04],
        [6.68456877e-03, 3.32805082e-04, 9.92077968e-01, 9.04658008e-04],
    ]
    s = softmax(x, axis=1)
    np.testing.assert_allclose(s, expected, rtol=5e-9, atol=0)
    # Each row sums to 1 (float64 rounding: 1e-15).
    np.testing.assert_allclose(jnp.sum(s, axis=1), [1.0, 1.0], rtol=0, atol=1e-15)


def test_softmax_columns_for_networks():
    # Networks normalize logits (K, m) per column: axis=0 is the transpose of the
    # lecture's per-row result.
    x = jnp.array([[0.0, 9.0, 3.0, 0.0], [3.0, 0.0, 8.0, 1.0]])
    np.testing.assert_allclose(
        softmax(x.T, axis=0), softmax(x, axis=1).T, rtol=1e-15, atol=0
    )


def test_activation_values_at_simple_points():
    z = jnp.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    # Exact closed forms, float64 rounding only (1e-15).
    np.testing.assert_allclose(relu(z), [0.0, 0.0, 0.0, 0.5, 3.0], rtol=0, atol=0)
    np.testing.assert_allclose(
        leaky_relu(z), [-0.03, -0.005, 0.0, 0.5, 3.0], rtol=1e-15, atol=0
    )
    np.testing.assert_allclose(
        leaky_relu(z, slope=0.2), [-0.6, -0.1, 0.0, 0.5, 3.0], rtol=1e-15, atol=0
    )
    np.testing.assert_allclose(tanh(z), np.tanh(np.asarray(z)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(
        softplus(z), np.log1p(np.exp(np.asarray(z))), rtol=1e-15, atol=0
    )


# ---------------------------------------------------------------- derivatives

# Values: anywhere in [-1e4, 1e4]; hypothesis tries the bounds and 0 itself.
SMOOTH_VALUES = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
# Away from the kink of relu / leaky_relu at 0: |z| >= 1e-6.
KINK_FREE_VALUES = st.one_of(st.floats(1e-6, 1e4), st.floats(-1e4, -1e-6))
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# Every drawn array is flattened into one fixed-size buffer (padded with 1.0), so
# each function compiles once instead of once per drawn shape; the functions are
# elementwise, and shape preservation is tested separately below.
BUFFER = 64


def elementwise_pair(derivative, f):
    """Jitted (g'(z) by hand, jax.vmap(jax.grad(g))(z)) on a flat (BUFFER,) z."""
    return jax.jit(lambda z: (derivative(z), jax.vmap(jax.grad(f))(z)))


def assert_derivative_matches_autodiff(pair, z, atol=0.0):
    z = np.asarray(z, np.float64).ravel()
    padded = np.ones(BUFFER)
    padded[: z.size] = z
    manual, reference = (np.asarray(v)[: z.size] for v in pair(jnp.asarray(padded)))
    # Both are exact up to rounding of the same float64 expression: 1e-12
    # relative leaves ~1e4 ulps of room and still flags any real mistake.
    np.testing.assert_allclose(manual, reference, rtol=1e-12, atol=atol)
    return manual


PAIRS = {name: elementwise_pair(d, f) for name, (f, d) in ACTIVATIONS.items()}


@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
@settings(max_examples=50, deadline=None)
@given(z=hnp.arrays(np.float64, SHAPES, elements=SMOOTH_VALUES))
def test_smooth_derivatives_match_autodiff(name, z):
    assert_derivative_matches_autodiff(PAIRS[name], z)


@settings(max_examples=50, deadline=None)
@given(z=hnp.arrays(np.float64, SHAPES, elements=SMOOTH_VALUES))
def test_tanh_derivative_matches_autodiff(z):
    # tanh is written so that jax.grad of it works from q = e^(-2|z|) without
    # cancellation (see jaxnet.activations.tanh): no absolute slack is needed any
    # more (jnp.tanh's rule (1 + a)(1 - a) needed 4 * eps64 for |z| ~ 5..19).
    assert_derivative_matches_autodiff(PAIRS["tanh"], z)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
@settings(max_examples=50, deadline=None)
@given(z=hnp.arrays(np.float64, SHAPES, elements=KINK_FREE_VALUES))
def test_kinked_derivatives_match_autodiff_away_from_zero(name, z):
    assert_derivative_matches_autodiff(PAIRS[name], z)


@jax.jit
def leaky_pair(z, slope):
    """(leaky_relu' by hand, by jax.grad) for a non-default, traced slope."""
    manual = leaky_relu_derivative(z, slope=slope)
    reference = jax.vmap(jax.grad(lambda v: leaky_relu(v, slope=slope)))(z)
    return manual, reference


@settings(max_examples=50, deadline=None)
@given(
    z=hnp.arrays(np.float64, SHAPES, elements=KINK_FREE_VALUES),
    slope=st.floats(0.05, 0.5),
)
def test_leaky_relu_derivative_with_non_default_slope(z, slope):
    manual = assert_derivative_matches_autodiff(lambda v: leaky_pair(v, slope), z)
    # The slope really is used (not the default 0.01) on the negative side.
    flat = np.asarray(z).ravel()
    np.testing.assert_allclose(manual[flat < 0], slope, rtol=1e-15)
    np.testing.assert_array_equal(manual[flat > 0], 1.0)


def test_values_at_kinks_are_the_documented_choice():
    # relu'(0) = 0 (np.heaviside(0, 0)); leaky_relu'(0) = slope.
    zero = jnp.zeros((2, 3))
    np.testing.assert_array_equal(ACTIVATIONS["relu"].derivative(zero), 0.0)
    np.testing.assert_array_equal(leaky_relu_derivative(zero), 0.01)
    np.testing.assert_array_equal(leaky_relu_derivative(zero, slope=0.3), 0.3)


# ---------------------------------------------------------------- kinks


def kink_points(dtype):
    """0, -0.0 and +-tiny values: the smallest normal and subnormal numbers."""
    info = np.finfo(dtype)
    tiny = [info.smallest_subnormal, info.tiny, 1e-30, 1.0]
    return np.array([0.0, -0.0] + tiny + [-t for t in tiny], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_autodiff_at_zero_is_the_documented_value(dtype):
    # Z = 0 happens in training (b = 0 at init, dead units): jax.grad of the
    # forward must give the documented relu'(0) = 0, exactly, as relu_derivative.
    z = jnp.asarray(kink_points(dtype))
    manual = relu_derivative(z)
    for reference in (jax.vmap(jax.grad(relu))(z), PAIRS["relu"](z)[1]):
        assert reference.dtype == dtype
        np.testing.assert_array_equal(reference, manual)
    np.testing.assert_array_equal(manual[:2], [0.0, 0.0])  # z = 0 and -0.0


SLOPES = [0.0, 0.01, 0.3, 1.0, 2.5, -0.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_autodiff_at_zero_is_the_slope(dtype):
    z = jnp.asarray(kink_points(dtype))
    for slope in SLOPES:
        manual = leaky_relu_derivative(z, slope=slope)
        eager = jax.vmap(jax.grad(lambda v, s=slope: leaky_relu(v, slope=s)))(z)
        np.testing.assert_array_equal(eager, manual, err_msg=f"slope {slope}")
        np.testing.assert_array_equal(leaky_pair(z, slope)[1], manual)
        np.testing.assert_array_equal(manual[:2], np.array([slope] * 2, dtype))


# ---------------------------------------------------------------- saturation

# The hand-written derivatives of sigmoid, tanh and softplus agree with jax.grad
# of the forwards to ULPS units in the last place, for every z the grid holds:
# both sides evaluate the same q = e^(-|z|) or e^(-2|z|) (or, for sigmoid, the
# same a (1 - a)) through at most ~6 correctly rounded operations without
# cancellation. Measured on CPU: <= 2.5 ulps (5.6e-16 in float64, 2.4e-7 in
# float32). Below the smallest normal number there is no relative precision
# (and XLA's CPU flushes subnormals to 0), hence atol = finfo.tiny.
ULPS = 8


def saturation_grid(dtype):
    """z over [-1e4, 1e4], dense where the units saturate (|z| up to 60)."""
    low = -300 if dtype == np.float64 else -30
    magnitudes = np.concatenate([np.logspace(low, 4, 800), np.linspace(0, 60, 3001)])
    return np.concatenate([magnitudes, -magnitudes, [-0.0]]).astype(dtype)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smooth_derivatives_agree_with_autodiff_when_saturated(name, dtype):
    forward, derivative = ACTIVATIONS[name]
    z = jnp.asarray(saturation_grid(dtype))
    manual, reference = jax.jit(
        lambda v: (derivative(v), jax.vmap(jax.grad(forward))(v))
    )(z)
    info = np.finfo(dtype)
    np.testing.assert_allclose(manual, reference, rtol=ULPS * info.eps, atol=info.tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_backward_with_any_upstream_gradient(dtype):
    # Inside a network the upstream dA multiplies in before jax's rule finishes;
    # with jnp.tanh that changed where its cancellation happened (and FMA fusion
    # changed it again), so saturated layers disagreed by up to 0.2 relative.
    z = saturation_grid(dtype)
    dA = np.random.default_rng(0).normal(size=z.shape).astype(dtype)
    vjp = jax.jit(lambda v, g: jax.vjp(tanh, v)[1](g)[0])
    manual = dA * np.asarray(tanh_derivative(z))
    info = np.finfo(dtype)
    atol = 8 * info.tiny * np.abs(dA).max()  # subnormal intermediates, see above
    np.testing.assert_allclose(vjp(z, dA), manual, rtol=ULPS * info.eps, atol=atol)


def test_tanh_derivative_is_accurate_where_one_minus_a_squared_is_not():
    # Reference: 1 / cosh(z)^2 in numpy (libm's cosh, <= 1 ulp); cosh^2 overflows
    # to inf past |z| ~ 355, where the true value is below 1e-308 anyway.
    z = np.concatenate([np.linspace(0, 40, 4001), [100.0, 300.0]])
    with np.errstate(over="ignore"):
        reference = 1 / np.cosh(z) ** 2
    tol = {"rtol": ULPS * np.finfo(np.float64).eps, "atol": np.finfo(np.float64).tiny}
    np.testing.assert_allclose(tanh_derivative(z), reference, **tol)
    np.testing.assert_allclose(tanh_derivative(-z), reference, **tol)
    np.testing.assert_allclose(
        jax.vmap(jax.grad(tanh))(jnp.asarray(z)), reference, **tol
    )
    # The lecture's 1 - a^2 from the rounded a = tanh(18) keeps no correct digit
    # (tanh'(18) = 9.3e-16 is below the spacing of floats near 1).
    a = np.tanh(18.0)
    assert abs((1 - a * a) - reference[1800]) > 0.01 * reference[1800]


def test_tanh_values_match_numpy():
    z = np.concatenate([np.linspace(-25, 25, 5001), [-1e4, 1e4, -0.0, 1e-300]])
    np.testing.assert_allclose(tanh(z), np.tanh(z), rtol=4 * np.finfo(float).eps)
    assert np.signbit(tanh(-0.0))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_activations_keep_shape_and_dtype(name, dtype):
    forward, derivative = ACTIVATIONS[name]
    z = jnp.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
    for out in (forward(z), derivative(z)):
        assert out.shape == (3, 4)
        assert out.dtype == dtype


# ---------------------------------------------------------------- stability


BIG = 1e4


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sigmoid_and_softplus_are_finite_at_extremes(dtype):
    z = jnp.array([-BIG, -1000.0, 0.0, 1000.0, BIG], dtype)
    s = sigmoid(z)
    assert s.dtype == dtype
    # sigma(-1e4) underflows to exactly 0, sigma(1e4) rounds to exactly 1.
    np.testing.assert_array_equal(s, np.array([0.0, 0.0, 0.5, 1.0, 1.0], dtype))
    sp = softplus(z)
    # softplus(z) = z + log(1 + e^-z) = z for z >= 1000 in either precision.
    np.testing.assert_array_equal(sp, np.array([0.0, 0.0, np.log(2), 1e3, BIG], dtype))
    for f in (sigmoid, softplus):
        g = jax.vmap(jax.grad(f))(z)
        assert np.all(np.isfinite(g)), (f.__name__, g)
    # softplus' = sigma: 0 at -1e4, 1 at 1e4.
    np.testing.assert_array_equal(
        jax.vmap(jax.grad(softplus))(z), np.array([0, 0, 0.5, 1, 1], dtype)
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_is_finite_for_huge_logits(dtype):
    x = jnp.array([[BIG, 0.0, -BIG], [0.0, 0.0, 0.0]], dtype)
    s = softmax(x, axis=1)
    assert s.dtype == dtype
    # [e^0, e^-1e4, e^-2e4] / sum = [1, 0, 0]; the uniform row is exactly 1/3.
    np.testing.assert_allclose(
        s, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6, atol=0
    )
    grad = jax.jit(jax.grad(lambda v: softmax(v, axis=1)[0, 1]))(x)
    assert np.all(np.isfinite(grad))


def test_naive_lecture_softplus_overflows_ours_does_not():
    # The lecture's np.log(1 + np.exp(x)) at x = 1000 overflows to inf.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        naive = np.log(1 + np.exp(1000.0))
    assert np.isinf(naive)
    assert float(softplus(jnp.float64(1000.0))) == 1000.0


def test_naive_lecture_softmax_is_nan_ours_is_not():
    x = np.array([[1000.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x_exp = np.exp(x)
        naive = x_exp / np.sum(x_exp, axis=1, keepdims=True)
    assert np.isnan(naive[0, 0])
    np.testing.assert_array_equal(softmax(jnp.asarray(x), axis=1), [[1.0, 0.0]])


def test_naive_lecture_sigmoid_warns_ours_is_silent():
    # The lecture's 1 / (1 + np.exp(-x)) at x = -1000: np.exp(1000) overflows.
    with pytest.warns(RuntimeWarning, match="overflow"):
        naive = 1 / (1 + np.exp(-np.float64(-1000.0)))
    assert naive == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = sigmoid(jnp.float64(-1000.0))
        grad = jax.grad(sigmoid)(jnp.float64(-1000.0))
    assert float(ours) == 0.0 and float(grad) == 0.0


# ---------------------------------------------------------------- names


def test_get_activation_returns_the_table_entry():
    for name, entry in ACTIVATIONS.items():
        assert get_activation(name) is entry
    assert get_activation("sigmoid").forward is sigmoid


@pytest.mark.parametrize("bad", ["Relu", "swish", "", None])
def test_unknown_activation_lists_known_names(bad):
    with pytest.raises(ValueError, match="unknown activation") as info:
        get_activation(bad)
    for name in ACTIVATIONS:
        assert name in str(info.value)
