"""The course's three cat classifiers, reproduced on the real data to the printed
digits: logistic regression, the two-layer net and the 4-layer net.

Each runs the course's exact setup in float64 (same init bit for bit via
course_init_params, same learning rate and iteration count) through
jaxnet.train.fit, and compares the costs the course prints and its accuracies.
Needs the data (``$JAXNET_DATA``); skipped with a reason otherwise.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.data import load_catvnoncat
from jaxnet.logistic import init_logistic, to_layers
from jaxnet.params import course_init_params
from jaxnet.train import accuracy, fit


@pytest.fixture(scope="module")
def cats(data_root):
    data = load_catvnoncat(data_root)
    assert data.X_train.shape == (12288, 209) and data.X_test.shape == (12288, 50)
    assert data.X_train.dtype == np.float64
    return data


def assert_printed_digits(costs, printed, decimals):
    """|cost_i - printed_i| <= half a unit in the last printed decimal."""
    for i, value in printed.items():
        assert abs(float(costs[i]) - value) <= 0.5 * 10.0**-decimals, (
            f"cost after iteration {i}: {float(costs[i])!r}, printed {value}"
        )


def assert_accuracy(params, X, Y, activations, correct, m):
    """Accuracy is exactly correct / m (a count, so no tolerance is needed)."""
    value = float(accuracy(params, X, Y, activations))
    assert round(value * m) == correct, f"{value * m} of {m} right, want {correct}"
    return value


def test_logistic_regression(cats):
    # Course: w, b = zeros; learning_rate 0.005; 2000 iterations. It prints
    # "Cost after iteration i: c" with 6 decimals, and accuracies 99.04306220095694
    # % (207 of 209) and 70.0 % (35 of 50).
    params = to_layers(init_logistic(12288, dtype=jnp.float64))
    activations = ("sigmoid",)
    trained, costs = fit(
        params,
        cats.X_train,
        cats.Y_train,
        activations=activations,
        num_iterations=2000,
        learning_rate=0.005,
    )
    assert_printed_digits(
        costs, {0: 0.693147, 100: 0.584508, 1800: 0.146542, 1900: 0.140872}, 6
    )
    train = assert_accuracy(trained, cats.X_train, cats.Y_train, activations, 207, 209)
    # The course's own expression, 100 - mean(|prediction - Y|) * 100, in float64.
    np.testing.assert_allclose(100 * train, 99.04306220095694, rtol=1e-14)
    assert_accuracy(trained, cats.X_test, cats.Y_test, activations, 35, 50)


def test_two_layer_model(cats):
    # Course: np.random.seed(1), W = randn * 0.01, n_h = 7, relu -> sigmoid,
    # learning_rate 0.0075, 2500 iterations. Its costs are printed with full
    # float64 digits, so we compare to 1e-9 relative (the same float64
    # arithmetic in another order drifts ~1e-12 over 2500 steps). Accuracy 100 %
    # train (209 of 209), 72 % test (36 of 50).
    params = course_init_params([12288, 7, 1], seed=1, scale="0.01")
    activations = ("relu", "sigmoid")
    trained, costs = fit(
        params,
        cats.X_train,
        cats.Y_train,
        activations=activations,
        num_iterations=2500,
        learning_rate=0.0075,
    )
    printed = {0: 0.693049735659989, 100: 0.6464320953428849, 2400: 0.04855478562877019}
    for i, value in printed.items():
        np.testing.assert_allclose(costs[i], value, rtol=1e-9, err_msg=f"iter {i}")
    assert_accuracy(trained, cats.X_train, cats.Y_train, activations, 209, 209)
    assert_accuracy(trained, cats.X_test, cats.Y_test, activations, 36, 50)


def test_deep_model(cats):
    # Course: np.random.seed(1), W = randn / sqrt(n[l-1]), [12288, 20, 7, 5, 1],
    # relu x 3 -> sigmoid, learning_rate 0.0075, 2500 iterations. Costs printed
    # with 6 decimals; accuracy 0.985645933014 train (206 of 209), 0.8 test.
    params = course_init_params([12288, 20, 7, 5, 1], seed=1, scale="sqrt")
    activations = ("relu", "relu", "relu", "sigmoid")
    trained, costs = fit(
        params,
        cats.X_train,
        cats.Y_train,
        activations=activations,
        num_iterations=2500,
        learning_rate=0.0075,
    )
    assert_printed_digits(costs, {0: 0.771749, 100: 0.672053, 2400: 0.092878}, 6)
    train = assert_accuracy(trained, cats.X_train, cats.Y_train, activations, 206, 209)
    np.testing.assert_allclose(train, 0.985645933014, rtol=1e-12)
    assert_accuracy(trained, cats.X_test, cats.Y_test, activations, 40, 50)
