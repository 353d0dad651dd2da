"""Tests for jaxnet.params: shapes, determinism, init scales, the zero-init
symmetry problem, and the course's numpy initialization bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.data.synthetic import two_blobs
from jaxnet.params import (
    INIT_SCALES,
    LayerCache,
    course_init_params,
    init_params,
    layer_dims_of,
)
from jaxnet.train import fit
from tests.helpers import assert_trees_close

LAYER_DIMS = [[3, 1], [4, 5, 1], [5, 4, 3, 1]]


@pytest.mark.parametrize("layer_dims", LAYER_DIMS)
@pytest.mark.parametrize("method", sorted(INIT_SCALES))
def test_shapes_match_the_lecture(key, layer_dims, method):
    params = init_params(key, layer_dims, method=method, dtype=jnp.float64)
    assert len(params) == len(layer_dims) - 1
    for l in range(1, len(layer_dims)):
        layer = params[l - 1]
        assert set(layer) == {"W", "b"}
        assert layer["W"].shape == (layer_dims[l], layer_dims[l - 1])
        assert layer["b"].shape == (layer_dims[l], 1)
        assert layer["W"].dtype == layer["b"].dtype == jnp.float64
        np.testing.assert_array_equal(layer["b"], 0.0)
    assert layer_dims_of(params) == tuple(layer_dims)


def test_default_dtype_is_float32(key):
    params = init_params(key, [3, 2, 1])
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def test_same_key_gives_identical_params(key):
    a = init_params(key, [5, 4, 3, 1], method="he")
    b = init_params(key, [5, 4, 3, 1], method="he")
    # Bit for bit: a pure function of the key.
    assert_trees_close(a, b, rtol=0, atol=0)


def test_different_keys_give_different_params(key):
    a = init_params(key, [5, 4, 3, 1], method="he")
    b = init_params(jax.random.key(1), [5, 4, 3, 1], method="he")
    for la, lb in zip(a, b, strict=True):
        assert not np.any(np.asarray(la["W"]) == np.asarray(lb["W"]))


def test_layers_use_independent_draws(key):
    # Same sizes in two layers must not repeat the same matrix.
    params = init_params(key, [4, 4, 4, 1], method="lecun")
    assert not np.allclose(params[0]["W"], params[1]["W"])


@pytest.mark.parametrize(
    "method, expected_std",
    [
        ("small", 0.01),
        ("lecun", 1 / np.sqrt(1000)),
        ("xavier", np.sqrt(2 / (1000 + 500))),
        ("he", np.sqrt(2 / 1000)),
        ("zeros", 0.0),
    ],
)
def test_init_scales_on_a_big_layer(key, method, expected_std):
    (layer,) = init_params(key, [1000, 500], method=method, dtype=jnp.float64)
    W = np.asarray(layer["W"])
    # 500,000 standard-normal draws: the sample std is within ~0.1% of the true
    # one (std error 1/sqrt(2N)) and the mean within ~1.4e-3 std: 2% / 1% bounds
    # never flake yet catch a wrong formula (e.g. 1/n instead of 1/sqrt(n)).
    np.testing.assert_allclose(W.std(), expected_std, rtol=0.02, atol=0)
    assert abs(W.mean()) <= 0.01 * expected_std


@pytest.mark.parametrize("bad", [[3], [], [3, 0, 1], [3, -2, 1], [3, 2.5, 1]])
def test_bad_layer_dims_raise(key, bad):
    with pytest.raises(ValueError, match="layer_dims") as info:
        init_params(key, bad)
    assert str(bad) in str(info.value)


def test_unknown_init_method_lists_known(key):
    with pytest.raises(ValueError, match="unknown init method") as info:
        init_params(key, [3, 1], method="glorot")
    for name in INIT_SCALES:
        assert name in str(info.value)


# ---------------------------------------------------------------- symmetry


def trained_from_zero_weights(hidden):
    params = init_params(
        jax.random.key(0), [2, 3, 1], method="zeros", dtype=jnp.float64
    )
    # m = 41: 21 zeros and 20 ones. With balanced labels the zero point is a
    # stationary point (db[2] = mean(1/2 - y) = 0) and nothing would move at all.
    X, Y = two_blobs(jax.random.key(1), m=41, n_x=2, dtype=jnp.float64)
    trained, costs = fit(
        params,
        X,
        Y,
        activations=(hidden, "sigmoid"),
        num_iterations=50,
        learning_rate=0.5,
    )
    return trained, costs


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_zero_init_keeps_hidden_units_identical(hidden):
    trained, costs = trained_from_zero_weights(hidden)
    W1, b1, W2 = (np.asarray(trained[0]["W"]), trained[0]["b"], trained[1]["W"])
    # Every hidden unit's weight row equals the first one, bit for bit: the
    # three units compute the same function and get the same update forever.
    for row in W1[1:]:
        np.testing.assert_array_equal(row, W1[0])
    np.testing.assert_array_equal(b1, b1[0, 0])
    np.testing.assert_array_equal(W2, W2[0, 0])
    assert np.isfinite(np.asarray(costs)).all()
    if hidden == "tanh":
        # tanh(0) = 0: A[1] = 0, so dW[2] = 0 and dZ[1] = W[2]^T dZ[2] = 0; the
        # hidden layer never moves, only b[2] learns.
        np.testing.assert_array_equal(W1, 0.0)
        np.testing.assert_array_equal(W2, 0.0)
        assert float(trained[1]["b"][0, 0]) != 0.0
    else:
        # sigmoid(0) = 1/2: the weights do move, yet stay identical across units.
        assert np.abs(W1).max() > 1e-3


def test_random_init_breaks_the_symmetry():
    params = init_params(
        jax.random.key(0), [2, 3, 1], method="small", dtype=jnp.float64
    )
    X, Y = two_blobs(jax.random.key(1), m=40, n_x=2, dtype=jnp.float64)
    trained, _ = fit(
        params,
        X,
        Y,
        activations=("tanh", "sigmoid"),
        num_iterations=50,
        learning_rate=0.5,
    )
    W1 = np.asarray(trained[0]["W"])
    assert not np.allclose(W1[0], W1[1]) and not np.allclose(W1[1], W1[2])


# ---------------------------------------------------------------- course init


def notebook_reference(layer_dims, scale):
    """The notebooks' loop, with RandomState(1) standing in for np.random.seed(1)."""
    rng = np.random.RandomState(1)
    params = []
    for l in range(1, len(layer_dims)):
        draw = rng.randn(layer_dims[l], layer_dims[l - 1])
        W = draw * 0.01 if scale == "0.01" else draw / np.sqrt(layer_dims[l - 1])
        params.append({"W": W, "b": np.zeros((layer_dims[l], 1))})
    return params


@pytest.mark.parametrize(
    "layer_dims, scale",
    [([5, 4, 1], "0.01"), ([12288, 7, 1], "0.01"), ([6, 5, 4, 3, 1], "sqrt")],
)
def test_course_init_params_matches_the_notebooks_bit_for_bit(layer_dims, scale):
    ours = course_init_params(layer_dims, seed=1, scale=scale)
    reference = notebook_reference(layer_dims, scale)
    assert_trees_close(ours, reference, rtol=0, atol=0)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(ours))


def test_course_init_params_known_first_values():
    # np.random.seed(1); np.random.randn(2, 2) starts 1.62434536, -0.61175641
    # (the values printed throughout the course), times 0.01.
    W = np.asarray(course_init_params([2, 2, 1])[0]["W"])
    np.testing.assert_allclose(W[0], [0.0162434536, -0.0061175641], rtol=1e-8)


def test_course_init_params_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    course_init_params([3, 2, 1])
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_course_init_params_rejects_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        course_init_params([3, 1], scale="he")


def test_layer_cache_is_a_named_pytree():
    cache = LayerCache(
        jnp.ones((3, 2)), jnp.ones((1, 3)), jnp.ones((1, 1)), jnp.ones((1, 2))
    )
    assert cache.D is None
    assert len(jax.tree.leaves(cache)) == 4
    doubled = jax.tree.map(lambda x: 2 * x, cache)
    assert isinstance(doubled, LayerCache)
    np.testing.assert_array_equal(doubled.A_prev, 2.0)
