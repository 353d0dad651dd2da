"""Tests for jaxnet.runner: train_loop matches fit, stops safely on divergence,
calls back after each chunk, prints the lecture's cost lines; cost_checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.driver import PROBE_STEPS
from jaxnet.params import course_init_params
from jaxnet.runner import cost_checkpoints, train_loop
from jaxnet.train import fit
from tests.helpers import assert_trees_close

ACTIVATIONS = ("relu", "tanh", "sigmoid")


def problem(m=12):
    params = course_init_params([3, 5, 3, 1], seed=1, scale="sqrt")
    rng = np.random.RandomState(0)
    X = rng.randn(3, m)
    Y = (rng.rand(1, m) > 0.5).astype(np.float64)
    return params, X, Y


def test_costs_and_params_equal_fit():
    params, X, Y = problem()
    config = dict(
        activations=ACTIVATIONS,
        num_iterations=12,
        learning_rate=0.1,
        keep_prob=0.9,  # the key must be threaded the same way through the chunks
        key=jax.random.key(1),
    )
    result = train_loop(params, X, Y, print_every=5, progress=False, **config)
    trained, costs = fit(params, X, Y, **config)
    assert result.iterations_done == 12
    assert not result.diverged and not result.interrupted
    assert result.costs.shape == (12,)
    # Chunks of 5, 5, 2 steps vs one scan of 12: the same float64 steps, only
    # compiled separately: 1e-12.
    np.testing.assert_allclose(result.costs, costs, rtol=1e-12)
    assert_trees_close(result.params, trained, rtol=1e-12, atol=1e-15)
    assert result.compile_seconds > 0 and result.train_seconds > 0


def test_on_chunk_and_printed_lines():
    params, X, Y = problem()
    calls, lines = [], []

    def on_chunk(state, iterations_done):
        calls.append((iterations_done, state.params[0]["W"]))

    result = train_loop(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=12,
        learning_rate=0.1,
        print_every=5,
        progress=False,
        on_chunk=on_chunk,
        print_fn=lines.append,
    )
    # Chunks are sized by time, not by print_every: the first is the short
    # probe (PROBE_STEPS iterations), the last ends the run.
    done = [d for d, _ in calls]
    assert done[0] == PROBE_STEPS and done[-1] == 12 and done == sorted(set(done))
    # The state handed over is the one after that many iterations.
    np.testing.assert_array_equal(calls[-1][1], result.params[0]["W"])
    partial, _ = fit(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=PROBE_STEPS,
        learning_rate=0.1,
    )
    np.testing.assert_allclose(calls[0][1], partial[0]["W"], rtol=1e-12)
    # The lecture's "Cost after iteration i" at every multiple and at the end.
    assert [line.split(":")[0] for line in lines] == [
        f"Cost after iteration {i}" for i in (0, 5, 10, 11)
    ]
    assert lines[0] == f"Cost after iteration 0: {result.costs[0]:.6f}"


def test_divergence_stops_with_the_last_good_params():
    params, X, Y = problem()
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    # learning_rate 1e30 on a float32 relu net: one step makes the weights ~1e29,
    # the next forward pass multiplies two such layers (~1e58 > 3.4e38 = float32
    # max) and the cost is nan. (In float64 the same run stays finite: dead relu
    # units stop the growth.)
    config = dict(activations=("relu", "relu", "sigmoid"), learning_rate=1e30)
    lines = []
    result = train_loop(
        params,
        X,
        Y,
        num_iterations=10,
        print_every=1,
        progress=False,
        print_fn=lines.append,
        **config,
    )
    # The cost of the parameters after one update is already nan, so the last
    # parameters whose cost is finite are the initial ones (issue 9: never keep
    # parameters whose cost is not finite).
    assert result.diverged and result.stop_reason == "non-finite"
    assert result.iterations_done == 0 and len(result.costs) == 0
    assert_trees_close(result.params, params, rtol=0, atol=0)
    _, more_costs = fit(params, X, Y, num_iterations=2, **config)
    assert np.isfinite(np.asarray(more_costs)[0])
    assert not np.isfinite(np.asarray(more_costs)[1])
    assert "not finite at iteration 1" in lines[-1]
    assert "keeping the parameters after 0 iterations" in lines[-1]
    assert "Lower the learning rate" in lines[-1]


def test_an_overflowing_last_update_is_caught_too():
    # lr 1e300 with inputs ~1e10 (float64): J before the update is finite (~3e8)
    # but the update itself overflows W to inf. The chunk's costs are all finite,
    # so only a check of the params catches it; nothing non-finite is kept.
    params, X, Y = problem()
    lines = []
    result = train_loop(
        params,
        X * 1e10,
        Y,
        activations=("relu", "relu", "sigmoid"),
        num_iterations=4,
        learning_rate=1e300,
        print_every=1,  # chunk 0 is the single (finite-cost) iteration 0
        progress=False,
        print_fn=lines.append,
    )
    assert result.diverged and result.iterations_done == 0
    assert_trees_close(result.params, params, rtol=0, atol=0)
    # The probe chunk is that one step: the check of its parameters stops it.
    assert "parameters are not finite after iteration 0" in lines[-1]
    assert "keeping the parameters after 0 iterations" in lines[-1]


def test_an_overflowing_final_update_is_caught_by_the_params_check():
    # One iteration: its cost is finite and no later cost exists, so only the
    # on-device check of the parameters sees the overflow.
    params, X, Y = problem()
    lines = []
    result = train_loop(
        params,
        X * 1e10,
        Y,
        activations=("relu", "relu", "sigmoid"),
        num_iterations=1,
        learning_rate=1e300,
        print_every=1,
        progress=False,
        print_fn=lines.append,
    )
    assert result.diverged and result.iterations_done == 0
    assert_trees_close(result.params, params, rtol=0, atol=0)
    assert "parameters are not finite after iteration 0" in lines[-1]


def test_float32_params_run_in_float32_like_fit():
    # float64 data with float32 params: the run's dtype is the params', as in fit.
    params, X, Y = problem()
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    config = dict(activations=ACTIVATIONS, num_iterations=6, learning_rate=0.1)
    result = train_loop(params, X, Y, print_every=3, progress=False, **config)
    trained, costs = fit(params, X, Y, **config)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(result.params))
    # float32 steps compiled in different programs: 1e-5 relative.
    np.testing.assert_allclose(result.costs, costs, rtol=1e-5)
    assert_trees_close(result.params, trained, rtol=1e-5, atol=1e-7)


def test_bad_arguments_raise():
    params, X, Y = problem()
    with pytest.raises(ValueError, match="num_iterations"):
        train_loop(params, X, Y, activations=ACTIVATIONS, num_iterations=0)
    with pytest.raises(ValueError, match=r"are examples in rows\?"):
        train_loop(params, X.T, Y, activations=ACTIVATIONS, num_iterations=3)


def test_cost_checkpoints():
    costs = np.arange(10.0)
    assert cost_checkpoints(costs, 3) == [[0, 0.0], [3, 3.0], [6, 6.0], [9, 9.0]]
    # The last iteration is always included.
    assert cost_checkpoints(costs, 4) == [[0, 0.0], [4, 4.0], [8, 8.0], [9, 9.0]]
    # every = 0: just the first and the last.
    assert cost_checkpoints(costs, 0) == [[0, 0.0], [9, 9.0]]
    assert cost_checkpoints(np.zeros(0), 5) == []
    # Non-finite costs are left out (JSON has no inf/nan).
    with_nan = np.array([1.0, np.nan, 0.5, np.inf])
    assert cost_checkpoints(with_nan, 1) == [[0, 1.0], [2, 0.5]]
    assert all(isinstance(i, int) for i, _ in cost_checkpoints(costs, 3))
