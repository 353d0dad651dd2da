"""Minibatch epochs: every example exactly once, reshuffled, all compiled.

A recording "step" stands in for a gradient step: its state is a TrainState
whose params hold visit counts and the order of the examples it saw, so an
epoch's bookkeeping is checked directly (X's single row holds example indices).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.train import TrainState, fit, make_epoch_step, run_steps
from tests.helpers import assert_trees_close


def _recording_step(state: TrainState, X, Y):
    """Count each example seen, append it to the order; cost = mean index."""
    seen = X[0].astype(jnp.int32)
    counts = state.params["counts"].at[seen].add(1)
    order = jax.lax.dynamic_update_slice(
        state.params["order"], seen, (state.params["pos"],)
    )
    params = {"counts": counts, "order": order, "pos": state.params["pos"] + seen.size}
    # Y must travel with X: a mismatch would make this non-zero.
    mismatch = jnp.sum(jnp.abs(X[0] - Y[0]))
    return state._replace(params=params), jnp.mean(X[0]) + mismatch


def _start(m, key):
    params = {
        "counts": jnp.zeros(m, jnp.int32),
        "order": jnp.zeros(m, jnp.int32),
        "pos": jnp.zeros((), jnp.int32),
    }
    return TrainState(params, None, key)


def _indices(m):
    X = jnp.arange(m, dtype=jnp.float64).reshape(1, m)
    return X, X


@pytest.mark.parametrize(
    "m, batch_size",
    [(10, 3), (12, 4), (7, 1), (5, 8), (64, 64), (33, 16)],
)
def test_an_epoch_sees_every_example_exactly_once(key, m, batch_size):
    X, Y = _indices(m)
    epoch = jax.jit(make_epoch_step(_recording_step, batch_size))
    state, cost = epoch(_start(m, key), X, Y)
    np.testing.assert_array_equal(state.params["counts"], np.ones(m))
    assert sorted(np.asarray(state.params["order"]).tolist()) == list(range(m))
    # The epoch cost is the batch costs weighted by batch size: here the mean
    # index, (m - 1) / 2, exactly when the last partial batch is weighted right.
    np.testing.assert_allclose(cost, (m - 1) / 2, rtol=1e-14)


def test_epochs_reshuffle_with_the_key(key):
    m = 50
    X, Y = _indices(m)
    epoch = jax.jit(make_epoch_step(_recording_step, 8))
    state1, _ = epoch(_start(m, key), X, Y)
    state1_again, _ = epoch(_start(m, key), X, Y)
    # Second epoch: starts from the key the first one left behind.
    state2, _ = epoch(_start(m, state1.key), X, Y)
    order1 = np.asarray(state1.params["order"])
    np.testing.assert_array_equal(order1, state1_again.params["order"])
    assert not np.array_equal(order1, np.asarray(state2.params["order"]))
    assert not np.array_equal(order1, np.arange(m))  # actually shuffled


def test_many_epochs_are_one_compiled_scan_without_python_per_step(key):
    """The Python step is traced a fixed number of times, whatever the epochs."""
    traces = []

    def counting_step(state, X, Y):
        traces.append(X.shape[1])
        return _recording_step(state, X, Y)

    m = 10
    X, Y = _indices(m)
    epoch = make_epoch_step(counting_step, 3)
    state, costs = jax.jit(lambda s: run_steps(epoch, s, X, Y, 6))(_start(m, key))
    # One trace for the scanned full batches (3) and one for the last batch (1).
    assert sorted(traces) == [1, 3]
    np.testing.assert_array_equal(state.params["counts"], 6 * np.ones(m))
    assert costs.shape == (6,)


@pytest.mark.parametrize("batch_size", [0, -2, 2.5])
def test_bad_batch_size_is_an_error(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        make_epoch_step(_recording_step, batch_size)


def test_one_batch_of_all_m_is_full_batch_gradient_descent(key):
    """batch_size = m only permutes columns: the gradient (a mean) is unchanged."""
    rng = np.random.default_rng(0)
    params = [
        {"W": jnp.asarray(rng.normal(size=(4, 3))), "b": jnp.zeros((4, 1))},
        {"W": jnp.asarray(rng.normal(size=(1, 4))), "b": jnp.zeros((1, 1))},
    ]
    X = jnp.asarray(rng.normal(size=(3, 16)))
    Y = jnp.asarray((rng.uniform(size=(1, 16)) > 0.5).astype(np.float64))
    kwargs = dict(activations=("tanh", "sigmoid"), num_iterations=5)
    kwargs["optimizer"] = optax.sgd(0.5)
    p_full, c_full = fit(params, X, Y, **kwargs)
    p_mini, c_mini = fit(params, X, Y, batch_size=16, key=key, **kwargs)
    # Same sums in a different order: float64 rounding only, 1e-12.
    assert_trees_close(p_mini, p_full, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_mini, c_full, rtol=1e-12)
    # Smaller batches take more steps per epoch: a different path.
    p_small, _ = fit(params, X, Y, batch_size=5, key=key, **kwargs)
    assert not np.allclose(p_small[0]["W"], p_full[0]["W"])
