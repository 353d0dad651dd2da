"""Tests for jaxnet.train.fit_until: the lecture's "repeat ... until J < epsilon".

fit_until is one ``lax.while_loop``; each pass computes J at the current
parameters and either stops (J < epsilon, or with ``tol`` J fell by less than
tol) or updates. So, with fit's costs c (c[i] = J before update i):

- it equals fit for the same number of updates (epsilon = 0 never stops it);
- it stops after k updates, k the first index with c[k] < epsilon, returning
  the parameters whose J is c[k] < epsilon <= c[k - 1] = costs[k - 1];
- with tol it stops after the first k >= 1 with c[k - 1] - c[k] < tol.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.deep import model_cost
from jaxnet.params import course_init_params, init_params
from jaxnet.train import UntilResult, fit, fit_until
from tests.helpers import assert_trees_close

ACTIVATIONS = ("relu", "tanh", "sigmoid")
LAYER_DIMS = [3, 5, 3, 1]
EXACT = dict(rtol=1e-12, atol=1e-14)


def problem(m=16, seed=0):
    """float64 params (course init), X (3, m) and separable-ish labels Y (1, m)."""
    params = course_init_params(LAYER_DIMS, seed=seed + 1, scale="sqrt")
    rng = np.random.RandomState(seed)
    X = rng.randn(LAYER_DIMS[0], m)
    Y = (X[:1] + 0.5 * X[1:2] > 0).astype(np.float64)
    return params, jnp.asarray(X), jnp.asarray(Y)


def cost_at(params, X, Y):
    return float(model_cost(params, X, Y, ACTIVATIONS))


@pytest.mark.parametrize("optimizer", [None, "adam"])
def test_epsilon_zero_equals_fit(optimizer):
    params, X, Y = problem()
    kwargs = dict(activations=ACTIVATIONS, learning_rate=0.05, optimizer=optimizer)
    expected, costs = fit(params, X, Y, num_iterations=25, **kwargs)
    result = fit_until(params, X, Y, epsilon=0.0, max_iterations=25, **kwargs)
    assert isinstance(result, UntilResult)
    assert (result.iterations, result.reason) == (25, "max_iterations")
    assert_trees_close(result.params, expected, **EXACT)
    np.testing.assert_allclose(result.costs, costs, **EXACT)
    assert result.costs.shape == (25,) and result.costs.dtype == jnp.float64


def test_stops_at_the_first_cost_below_epsilon():
    params, X, Y = problem()
    kwargs = dict(activations=ACTIVATIONS, learning_rate=0.5)
    _, costs = fit(params, X, Y, num_iterations=60, **kwargs)
    costs = np.asarray(costs)
    k = 40  # stop here: pick epsilon between c[k] and the costs before it
    assert costs[k] < costs[:k].min()
    epsilon = (costs[k] + costs[:k].min()) / 2
    result = fit_until(params, X, Y, epsilon=epsilon, max_iterations=60, **kwargs)
    assert (result.iterations, result.reason) == (k, "epsilon")
    # costs[iterations - 1] >= epsilon > J(returned params): the first J < epsilon.
    assert result.costs[k - 1] >= epsilon > cost_at(result.params, X, Y)
    np.testing.assert_allclose(cost_at(result.params, X, Y), costs[k], **EXACT)
    np.testing.assert_allclose(result.costs[:k], costs[:k], **EXACT)
    assert np.isnan(result.costs[k:]).all()  # the rest of the buffer is unused
    expected, _ = fit(params, X, Y, num_iterations=k, **kwargs)
    assert_trees_close(result.params, expected, **EXACT)


def test_epsilon_above_the_first_cost_updates_nothing():
    params, X, Y = problem()
    J0 = cost_at(params, X, Y)
    result = fit_until(
        params, X, Y, activations=ACTIVATIONS, epsilon=J0 + 1e-9, max_iterations=10
    )
    assert (result.iterations, result.reason) == (0, "epsilon")
    assert_trees_close(result.params, params, rtol=0, atol=0)
    assert np.isnan(result.costs).all()


def test_tol_stops_when_the_cost_stalls():
    params, X, Y = problem()
    kwargs = dict(activations=ACTIVATIONS, learning_rate=0.5)
    _, costs = fit(params, X, Y, num_iterations=200, **kwargs)
    drops = -np.diff(np.asarray(costs))
    tol = float(np.median(drops))  # stalls somewhere in the middle of the run
    k = int(np.argmax(drops < tol)) + 1  # first k with c[k-1] - c[k] < tol
    result = fit_until(params, X, Y, epsilon=0.0, max_iterations=200, tol=tol, **kwargs)
    assert (result.iterations, result.reason) == (k, "stalled")
    assert 1 <= k < 200
    assert result.costs[k - 1] - cost_at(result.params, X, Y) < tol
    assert np.all(-np.diff(np.asarray(result.costs[:k])) >= tol)
    expected, _ = fit(params, X, Y, num_iterations=k, **kwargs)
    assert_trees_close(result.params, expected, **EXACT)


def test_without_tol_a_rising_cost_does_not_stop_the_loop():
    # Regression targets of size ~20 and too large a step: J rises by far more
    # than 1 per iteration. Only epsilon and max_iterations may stop the loop.
    params = init_params(jax.random.key(0), [2, 4, 1], method="he", dtype=jnp.float64)
    X = jnp.asarray(np.random.RandomState(0).randn(2, 12))
    Y = 20.0 + 5.0 * X[:1]
    kwargs = dict(activations=("relu", "linear"), learning_rate=1.0)
    _, costs = fit(params, X, Y, num_iterations=3, **kwargs)
    assert np.diff(np.asarray(costs)).max() > 1.0  # the cost does rise
    result = fit_until(params, X, Y, epsilon=0.0, max_iterations=3, **kwargs)
    assert (result.iterations, result.reason) == (3, "max_iterations")
    np.testing.assert_allclose(result.costs, costs, **EXACT)


def test_max_iterations_reached_with_a_small_learning_rate():
    params, X, Y = problem()
    result = fit_until(
        params, X, Y, activations=ACTIVATIONS, epsilon=1e-3, max_iterations=5,
        learning_rate=1e-4, tol=0.0,
    )  # fmt: skip
    assert (result.iterations, result.reason) == (5, "max_iterations")
    assert np.isfinite(result.costs).all()
    assert cost_at(result.params, X, Y) >= 1e-3


@pytest.mark.parametrize(
    "variant",
    [
        dict(batch_size=5),
        dict(keep_prob=0.8),
        dict(batch_size=4, keep_prob=0.7, lambd=0.1, optimizer="momentum"),
        dict(grad="autodiff", lambd=0.3),
    ],
    ids=["minibatch", "dropout", "minibatch-dropout-l2", "autodiff-l2"],
)
def test_minibatch_dropout_and_l2_variants_equal_fit(variant):
    params, X, Y = problem()
    kwargs = dict(activations=ACTIVATIONS, learning_rate=0.1, **variant)
    key = jax.random.key(3)
    expected, costs = fit(params, X, Y, num_iterations=6, key=key, **kwargs)
    result = fit_until(params, X, Y, epsilon=0.0, max_iterations=6, key=key, **kwargs)
    assert (result.iterations, result.reason) == (6, "max_iterations")
    assert_trees_close(result.params, expected, **EXACT)
    np.testing.assert_allclose(result.costs, costs, **EXACT)


def test_float32_params_keep_their_dtype():
    params, X, Y = problem()
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    result = fit_until(
        params, X, Y, activations=ACTIVATIONS, epsilon=np.float32(0.0),
        max_iterations=np.int64(4), learning_rate=0.1,
    )  # fmt: skip
    assert result.iterations == 4
    assert result.costs.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(result.params))


@pytest.mark.parametrize(
    "bad",
    [
        dict(epsilon=-0.1),
        dict(epsilon=float("nan")),
        dict(epsilon=float("inf")),
        dict(epsilon="0.1"),
        dict(epsilon=True),
        dict(epsilon=None),
        dict(max_iterations=0),
        dict(max_iterations=-3),
        dict(max_iterations=2.5),
        dict(max_iterations=3.0),
        dict(max_iterations=True),
        dict(tol=-1e-3),
        dict(tol=float("nan")),
        dict(learning_rate=0.0),
    ],
    ids=lambda bad: "-".join(f"{k}={v!r}" for k, v in bad.items()),
)
def test_bad_arguments_raise(bad):
    params, X, Y = problem()
    kwargs = {"activations": ACTIVATIONS, "epsilon": 0.1, "max_iterations": 5, **bad}
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        fit_until(params, X, Y, **kwargs)
