"""Chunks of minibatch steps: a run may stop inside an epoch and resume exactly.

The driver runs minibatch epochs step by step (``jaxnet.steps.EpochState``
says where a run is inside its epoch), so its chunks, sized by time, end
wherever the time runs out. These tests stop runs at chosen steps and check
that nothing about the run changes: the steps equal the epochs of
``make_epoch_step``, a resumed run equals the unstopped one bit for bit (also
through a checkpoint's arrays), and costs stay one per completed epoch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.driver import PROBE_STEPS, _steps_per_chunk
from jaxnet.params import init_params
from jaxnet.runner import train_loop
from jaxnet.runstate import StateMismatchError, restore_state, state_arrays
from jaxnet.steps import TrainState
from jaxnet.train import fit, make_step, run_steps

ACTIVATIONS = ("relu", "tanh", "softmax")
M, BATCH = 23, 5  # batches of 5, 5, 5, 5 and 3: five steps per epoch
PER_EPOCH = 5


def problem(dtype):
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(4, M)), dtype)
    Y = jnp.asarray(np.eye(3)[rng.integers(0, 3, M)].T, dtype)
    params = init_params(jax.random.key(3), [4, 6, 5, 3], "he", dtype)
    return params, X, Y


# Adam (moments in the state), dropout (keys per step) and uneven batches: every
# part of the state a resumed run must carry. (One optax object: its update rule
# is part of the compiled program's key, so the runs below share programs.)
OPTIONS = dict(
    activations=ACTIVATIONS, optimizer=optax.adam(0.01), keep_prob=0.8,
    batch_size=BATCH, key=jax.random.key(7),
)  # fmt: skip


def stop_after(chunks: int) -> dict:
    """should_stop and on_chunk arguments that stop a run after ``chunks``
    chunks (should_stop is also polled while compiling: poll counts vary)."""
    done = []
    return dict(
        should_stop=lambda: len(done) >= chunks,
        on_chunk=lambda state, iterations: done.append(iterations),
    )


def run(params, X, Y, epochs, **kwargs):
    options = {**OPTIONS, **kwargs}
    return train_loop(
        params, X, Y, num_iterations=epochs, print_every=None, progress=False,
        unit="epoch", **options,
    )  # fmt: skip


def assert_same_run(a, b):
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(a.costs, b.costs)
    assert a.iterations_done == b.iterations_done and a.position == b.position


def test_the_probe_chunk_is_one_minibatch_step():
    params, X, Y = problem(jnp.float64)
    result = run(params, X, Y, 3, **stop_after(1))  # after the probe
    assert PROBE_STEPS == 1
    assert result.interrupted and result.iterations_done == 0
    assert result.position == 1 and int(result.state.epoch.step) == 1
    assert result.costs.shape == (0,)  # no epoch completed: no epoch cost yet
    assert result.message == "stopped after epoch 0 and 1 of 5 minibatch steps"


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_stopped_inside_an_epoch_and_resumed_equals_the_unstopped_run(dtype):
    params, X, Y = problem(dtype)
    whole = run(params, X, Y, 8)
    assert whole.iterations_done == 8 and whole.position == 0
    assert whole.costs.shape == (8,)
    # Chunks of 1, 4, 16 steps (tiny steps: the growth cap sizes them): stops
    # after steps 1 (inside epoch 0) and 21 (inside epoch 4).
    for chunks, where in ((1, (0, 1)), (3, (4, 1))):
        part = run(params, X, Y, 8, **stop_after(chunks))
        assert part.interrupted and (part.iterations_done, part.position) == where
        assert part.costs.shape == (part.iterations_done,)
        np.testing.assert_array_equal(part.costs, whole.costs[: where[0]])
        # Through a checkpoint's arrays (what --resume reads back), restored
        # against a fresh start state as runs.train_checkpointed does.
        arrays = state_arrays(part.state, part.costs)
        template = TrainState(params, OPTIONS["optimizer"].init(params), OPTIONS["key"])
        state, costs = restore_state(template, part.params, arrays)
        resumed = run(params, X, Y, 8, resume_from=(state, part.iterations_done, costs))
        assert_same_run(resumed, whole)


def test_steps_are_the_epochs_of_make_epoch_step():
    # fit runs the driver's step-by-step chunk; make_step's epoch is the
    # reference definition (permute, scan the full batches, then the last).
    params, X, Y = problem(jnp.float64)
    trained, costs = fit(params, X, Y, num_iterations=3, **OPTIONS)
    epoch = make_step(
        ACTIVATIONS, OPTIONS["optimizer"], batch_size=BATCH, keep_prob=0.8
    )
    start = TrainState(params, OPTIONS["optimizer"].init(params), OPTIONS["key"])
    state, ref_costs = jax.jit(lambda s: run_steps(epoch, s, X, Y, 3))(start)
    # The same steps, keys and batches: the parameters are bit for bit equal.
    for a, b in zip(
        jax.tree.leaves(trained), jax.tree.leaves(state.params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The epoch cost sums its batches one after the other instead of with one
    # reduction: float64 rounding, 1e-14 relative.
    np.testing.assert_allclose(costs, ref_costs, rtol=1e-14)


def test_a_checkpoint_with_a_bad_epoch_state_is_refused():
    params, X, Y = problem(jnp.float64)
    part = run(params, X, Y, 2, **stop_after(1))
    arrays = state_arrays(part.state, part.costs)
    assert int(arrays["epoch_step"]) == 1
    for name, value in [
        ("epoch_step", np.float32(1)),
        ("epoch_total", np.float64(np.nan)),
        ("epoch_step", np.int32(-1)),
    ]:
        with pytest.raises(StateMismatchError, match=name):
            restore_state(part.state, part.params, {**arrays, name: value})
    bad = dict(arrays)
    del bad["epoch_key"]
    with pytest.raises(StateMismatchError, match="epoch_key is missing"):
        restore_state(part.state, part.params, bad)
    # A step past the epoch's end: the driver names the batch size.
    state, costs = restore_state(
        part.state, part.params, {**arrays, "epoch_step": np.int32(PER_EPOCH)}
    )
    with pytest.raises(ValueError, match="another batch size"):
        run(params, X, Y, 2, resume_from=(state, 0, costs))


def test_chunks_grow_by_measured_time_at_most_fourfold():
    assert _steps_per_chunk(1e-3, 0.5, 1 << 16, 1) == 4  # 500 fit; 4 x 1
    assert _steps_per_chunk(1e-3, 0.5, 1 << 16, 400) == 500  # the budget
    assert _steps_per_chunk(1.0, 0.5, 1 << 16, 64) == 1  # a step over budget
    assert _steps_per_chunk(1e-9, 0.5, 100, 1000) == 100  # the capacity


def test_a_sweep_in_chunks_of_minibatch_steps_equals_one_call():
    # A sweep's models share the step position (one branch for all under vmap);
    # chunked (a progress callback) or in one call, the same numbers.
    from jaxnet.sweep import sweep

    params, X, Y = problem(jnp.float64)
    keys = jax.random.split(jax.random.key(2), 3)
    kwargs = dict(
        activations=ACTIVATIONS, num_iterations=3, learning_rates=[0.1, 0.05, 0.01],
        keys=keys, batch_size=BATCH, keep_probs=0.8,
    )  # fmt: skip
    one = sweep(params, X, Y, **kwargs)
    seen = []
    chunked = sweep(params, X, Y, on_chunk=lambda s, d, c: seen.append(d), **kwargs)
    assert len(seen) >= 3 and seen[0] == 0  # the one-step probe ends no epoch
    assert np.asarray(chunked.run.state.epoch.step).tolist() == [0, 0, 0]
    pairs = zip(
        jax.tree.leaves(one.params), jax.tree.leaves(chunked.params), strict=True
    )
    for a, b in pairs:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(one.costs, chunked.costs)


def test_a_stop_during_compilation_ends_the_run_before_its_first_step():
    # The program compiles in a helper thread while should_stop is polled: a
    # stop 0.1 s after the first poll does not wait for the compilation.
    import time

    params, X, Y = problem(jnp.float64)
    first = []

    def should_stop():
        first.append(time.monotonic())
        return time.monotonic() - first[0] > 0.1

    fresh = optax.adam(0.02)  # a new program, compiled now
    result = run(params, X, Y, 3, should_stop=should_stop, optimizer=fresh)
    assert result.interrupted and result.iterations_done == 0
    assert result.position == 0 and result.train_seconds == 0.0
    assert result.message == "stopped after epoch 0"
    whole = run(params, X, Y, 3, optimizer=optax.adam(0.03))
    assert result.compile_seconds < whole.compile_seconds  # it was cut short
