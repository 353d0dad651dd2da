"""Tests for the linear output (regression): A[L] = Z[L], J = (1/2m) sum (A - Y)^2.

The hand-written backward (dZ[L] = A[L] - Y, then the same blocks as the
classifiers) is compared with jax.grad of ``model_cost`` in float64 for several
architectures, with L2 and dropout, directly and through ``check_gradients``;
then every entry point (fit, fit_until, train_loop, sweep) trains a small
synthetic regression, predict returns the values, and accuracy refuses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import check_gradients, relative_difference
from jaxnet.deep import model_cost, model_forward, model_value_and_grads
from jaxnet.outputs import squared_error_cost
from jaxnet.params import init_params
from jaxnet.runner import train_loop
from jaxnet.sweep import init_stacked_params, sweep
from jaxnet.train import accuracy, fit, fit_until, predict

# (layer_dims, hidden activation): one layer (linear regression), a shallow
# net, and a deep net with two outputs (multi-output regression).
ARCHITECTURES = [
    ([3, 1], None),
    ([4, 5, 1], "tanh"),
    ([4, 5, 1], "sigmoid"),
    ([5, 4, 3, 2], "relu"),
    ([5, 4, 3, 2], "leaky_relu"),
    ([5, 6, 2], "softplus"),
]


def activations_of(layer_dims, hidden):
    return (hidden,) * (len(layer_dims) - 2) + ("linear",)


def regression_problem(layer_dims, m, seed=0, dtype=jnp.float64):
    """Params (He init), X (n_x, m), real targets Y (n[L], m) of size ~3."""
    key_p, key_x, key_y = jax.random.split(jax.random.key(seed), 3)
    params = init_params(key_p, layer_dims, method="he", dtype=dtype)
    X = jax.random.normal(key_x, (layer_dims[0], m), dtype)
    Y = 3.0 * jax.random.normal(key_y, (layer_dims[-1], m), dtype) + 1.0
    return params, X, Y


def assert_leaves_relatively_close(actual, expected, tol=1e-10):
    paths = jax.tree.leaves_with_path(actual)
    for (path, a), e in zip(paths, jax.tree.leaves(expected), strict=True):
        error = relative_difference(a, e)
        assert error <= tol, f"leaf {jax.tree_util.keystr(path)}: {error:.3e}"


# ---------------------------------------------------------------- the cost


def test_squared_error_cost_is_half_the_mean_l2_loss():
    ZL = jnp.array([[1.0, 2.0, 4.0], [0.5, -1.0, 0.0]])
    Y = jnp.array([[1.5, 2.0, 2.0], [0.0, 0.0, 0.0]])
    # (1/(2*3)) * (0.25 + 0 + 4 + 0.25 + 1 + 0) = 5.5 / 6
    np.testing.assert_allclose(squared_error_cost(ZL, Y), 5.5 / 6, rtol=1e-15)


def test_linear_output_is_the_identity():
    params, X, _ = regression_problem([4, 5, 1], m=7)
    AL, caches = model_forward(params, X, ("tanh", "linear"))
    np.testing.assert_array_equal(AL, caches[-1].Z)  # A[L] = Z[L], no squashing


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize(("layer_dims", "hidden"), ARCHITECTURES)
def test_manual_gradient_equals_jax_grad(layer_dims, hidden, m):
    params, X, Y = regression_problem(layer_dims, m)
    acts = activations_of(layer_dims, hidden)
    cost, grads = model_value_and_grads(params, X, Y, acts)
    expected = jax.grad(model_cost)(params, X, Y, acts)
    np.testing.assert_allclose(cost, model_cost(params, X, Y, acts), rtol=1e-14)
    assert_leaves_relatively_close(grads, expected)


@pytest.mark.parametrize(("layer_dims", "hidden"), ARCHITECTURES[1:])
def test_manual_gradient_with_l2_and_dropout_equals_jax_grad(layer_dims, hidden):
    params, X, Y = regression_problem(layer_dims, m=9, seed=1)
    acts = activations_of(layer_dims, hidden)
    kwargs = dict(lambd=0.7, keep_prob=0.6, dropout_key=jax.random.key(5))
    cost, grads = model_value_and_grads(params, X, Y, acts, **kwargs)
    expected_cost, expected = jax.value_and_grad(model_cost)(
        params, X, Y, acts, **kwargs
    )
    np.testing.assert_allclose(cost, expected_cost, rtol=1e-14)
    assert_leaves_relatively_close(grads, expected)


@pytest.mark.parametrize(("layer_dims", "hidden"), ARCHITECTURES[::2])
def test_check_gradients_passes_for_the_linear_output(layer_dims, hidden):
    params, X, Y = regression_problem(layer_dims, m=6, seed=2)
    acts = activations_of(layer_dims, hidden)
    result = check_gradients(
        lambda p: model_cost(p, X, Y, acts, lambd=0.1),
        params,
        lambda p: model_value_and_grads(p, X, Y, acts, lambd=0.1)[1],
    )
    assert result.passed, str(result)
    assert max(leaf.autodiff_error for leaf in result.leaves) <= 1e-10


def test_check_gradients_catches_a_wrong_output_gradient():
    # dZ[L] = 2 (A - Y) (forgetting the 1/2 in J) is off by a factor of 2.
    params, X, Y = regression_problem([4, 5, 1], m=6)
    acts = ("tanh", "linear")

    def doubled(p):
        return jax.tree.map(lambda g: 2 * g, model_value_and_grads(p, X, Y, acts)[1])

    result = check_gradients(lambda p: model_cost(p, X, Y, acts), params, doubled)
    assert not result.passed
    assert len(result.failed_leaves) == 4


# ---------------------------------------------------------------- training


def synthetic_regression(m=64, dtype=jnp.float32):
    """y = 2 sin(x1) + x2 - 1 on x in [-2, 2]^2: X (2, m), Y (1, m)."""
    X = jax.random.uniform(jax.random.key(0), (2, m), dtype, -2.0, 2.0)
    Y = 2.0 * jnp.sin(X[:1]) + X[1:2] - 1.0
    return X, Y


LAYER_DIMS = [2, 16, 1]
ACTS = ("tanh", "linear")


def start_params(dtype=jnp.float32):
    return init_params(jax.random.key(1), LAYER_DIMS, method="xavier", dtype=dtype)


def test_fit_trains_a_regression_in_float32():
    X, Y = synthetic_regression()
    params = start_params()
    trained, costs = fit(
        params, X, Y, activations=ACTS, num_iterations=300, learning_rate=0.01,
        optimizer="adam",
    )  # fmt: skip
    assert costs.dtype == jnp.float32
    assert float(costs[-1]) < 0.05 * float(costs[0])
    assert float(model_cost(trained, X, Y, ACTS)) < 0.05


def test_fit_with_manual_and_autodiff_gradients_agree():
    X, Y = synthetic_regression(dtype=jnp.float64)
    params = start_params(jnp.float64)
    kwargs = dict(activations=ACTS, num_iterations=20, learning_rate=0.05)
    manual, c1 = fit(params, X, Y, **kwargs)
    auto, c2 = fit(params, X, Y, grad="autodiff", **kwargs)
    np.testing.assert_allclose(c1, c2, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(manual), jax.tree.leaves(auto), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_fit_until_reaches_epsilon_on_a_regression():
    X, Y = synthetic_regression()
    result = fit_until(
        start_params(), X, Y, activations=ACTS, epsilon=0.05, max_iterations=2000,
        learning_rate=0.01, optimizer="adam",
    )  # fmt: skip
    assert result.reason == "epsilon"
    assert 0 < result.iterations < 2000
    assert float(model_cost(result.params, X, Y, ACTS)) < 0.05
    assert float(result.costs[result.iterations - 1]) >= 0.05


def test_train_loop_trains_a_regression():
    X, Y = synthetic_regression()
    lines = []
    result = train_loop(
        start_params(), X, Y, activations=ACTS, num_iterations=300,
        learning_rate=0.01, optimizer="adam", print_every=100, progress=False,
        print_fn=lines.append,
    )  # fmt: skip
    assert result.iterations_done == 300 and not result.diverged
    assert result.costs[-1] < 0.05 * result.costs[0]
    assert lines[0].startswith("Cost after iteration 0:")


def test_sweep_trains_seeds_of_a_regression(capsys):
    X, Y = synthetic_regression()
    keys = jax.random.split(jax.random.key(2), 3)
    params = init_stacked_params(keys, LAYER_DIMS, method="xavier")
    result = sweep(
        params, X, Y, activations=ACTS, num_iterations=300,
        learning_rates=[0.003, 0.01, 0.01], optimizer="adam", keys=keys,
        print_every=100,
    )  # fmt: skip
    assert result.costs.shape == (3, 300)
    assert result.train_accuracy is None and result.test_accuracy is None
    final, first = np.asarray(result.costs[:, -1]), np.asarray(result.costs[:, 0])
    assert np.all(final < 0.2 * first)
    assert len(set(final.tolist())) == 3  # three different starts, three results
    # The mean cost is printed at every multiple of print_every and at the end.
    printed = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == [f"Cost after iteration {i}" for i in (0, 100, 200, 299)]


# ---------------------------------------------------------------- predict


def test_predict_returns_the_values():
    params, X, _ = regression_problem([5, 4, 3, 2], m=7)
    acts = activations_of([5, 4, 3, 2], "relu")
    values = predict(params, X, acts)
    assert values.shape == (2, 7)
    AL, _ = model_forward(params, X, acts)
    np.testing.assert_array_equal(values, AL)


def test_accuracy_on_a_linear_output_raises_a_clear_error():
    params, X, Y = regression_problem([4, 5, 1], m=7)
    with pytest.raises(ValueError, match="accuracy is for classifiers"):
        accuracy(params, X, Y, ("tanh", "linear"))
