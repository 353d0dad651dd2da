"""Tests for jaxnet.train: the update rule, jit vs eager, scan vs single steps,
fit, manual vs autodiff training, learning a separable set, minibatches,
predict/accuracy, and bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.data.synthetic import two_blobs
from jaxnet.params import course_init_params, init_params
from jaxnet.train import (
    TrainState,
    accuracy,
    fit,
    init_state,
    make_epoch_step,
    make_step,
    make_train_step,
    predict,
    run_steps,
    update_params,
    value_and_grads,
)
from tests.helpers import assert_trees_close

ACTIVATIONS = ("relu", "tanh", "sigmoid")
LAYER_DIMS = [3, 5, 3, 1]


def problem(m=7, seed=0):
    """float64 params (course init, randn / sqrt(n[l-1])), X (3, m), Y (1, m)."""
    params = course_init_params(LAYER_DIMS, seed=seed + 1, scale="sqrt")
    rng = np.random.RandomState(seed)
    X = jnp.asarray(rng.randn(LAYER_DIMS[0], m))
    Y = jnp.asarray((rng.rand(1, m) > 0.5).astype(np.float64))
    return params, X, Y


# ---------------------------------------------------------------- update rule


def test_update_params_is_the_lecture_rule():
    params, X, Y = problem()
    _, grads = value_and_grads(params, X, Y, ACTIVATIONS)
    new = update_params(params, grads, 0.1)
    for p, g, q in zip(params, grads, new, strict=True):
        for name in ("W", "b"):
            # W := W - alpha dW, the same single float64 operation: bit for bit.
            np.testing.assert_array_equal(q[name], p[name] - 0.1 * g[name])
    assert jax.tree.structure(new) == jax.tree.structure(params)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_update_params_equals_optax_sgd_bit_for_bit(dtype):
    params, X, Y = problem()
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    X, Y = X.astype(dtype), Y.astype(dtype)
    optimizer = optax.sgd(0.05)
    grads_of = jax.jit(lambda p: value_and_grads(p, X, Y, ACTIVATIONS)[1])
    ours, theirs, opt_state = params, params, optimizer.init(params)
    for _ in range(3):
        ours = update_params(ours, grads_of(ours), 0.05)
        grads = grads_of(theirs)
        updates, opt_state = optimizer.update(grads, opt_state, theirs)
        theirs = optax.apply_updates(theirs, updates)
    # p + (-(lr g)) and p - lr g round identically: zero tolerance.
    assert_trees_close(ours, theirs, rtol=0, atol=0)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(ours))


# ---------------------------------------------------------------- steps


def make_sgd_step(learning_rate=0.1, **kwargs):
    optimizer = optax.sgd(learning_rate)
    return make_train_step(ACTIVATIONS, optimizer, **kwargs), optimizer


def test_jitted_step_equals_eager_step():
    params, X, Y = problem()
    step, optimizer = make_sgd_step(keep_prob=0.8)  # dropout: the key matters too
    state = init_state(params, optimizer, jax.random.key(1))
    eager_state, eager_cost = step(state, X, Y)
    jit_state, jit_cost = jax.jit(step)(state, X, Y)
    # XLA may fuse and reorder float64 operations: 1e-12 relative.
    np.testing.assert_allclose(jit_cost, eager_cost, rtol=1e-12)
    assert_trees_close(jit_state.params, eager_state.params, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(
        jax.random.key_data(jit_state.key), jax.random.key_data(eager_state.key)
    )
    # The step really moved the params.
    assert not np.allclose(eager_state.params[0]["W"], params[0]["W"])


def test_run_steps_equals_single_steps():
    params, X, Y = problem()
    step, optimizer = make_sgd_step(keep_prob=0.9)
    state = init_state(params, optimizer, jax.random.key(2))
    scanned, costs = jax.jit(lambda s: run_steps(step, s, X, Y, 6))(state)
    one = jax.jit(step)
    looped, looped_costs = state, []
    for _ in range(6):
        looped, cost = one(looped, X, Y)
        looped_costs.append(cost)
    assert costs.shape == (6,)
    # Same compiled step body; scan vs loop may only reorder rounding: 1e-12.
    np.testing.assert_allclose(costs, looped_costs, rtol=1e-12)
    assert_trees_close(scanned.params, looped.params, rtol=1e-12, atol=1e-15)


def test_fit_equals_the_scan():
    params, X, Y = problem()
    key = jax.random.key(3)
    trained, costs = fit(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=8,
        learning_rate=0.1,
        key=key,
    )
    step, optimizer = make_sgd_step(0.1)
    state, scan_costs = jax.jit(lambda s: run_steps(step, s, X, Y, 8))(
        init_state(params, optimizer, key)
    )
    # Cost i is J before update i; float64 rounding only: 1e-12.
    np.testing.assert_allclose(costs, scan_costs, rtol=1e-12)
    assert_trees_close(trained, state.params, rtol=1e-12, atol=1e-15)
    assert costs[-1] < costs[0]


@pytest.mark.parametrize(
    "lambd, keep_prob", [(0.0, 1.0), (0.5, 0.8)], ids=["plain", "l2+dropout"]
)
def test_manual_and_autodiff_training_agree(lambd, keep_prob):
    params, X, Y = problem(m=16)
    kwargs = dict(
        activations=ACTIVATIONS,
        num_iterations=40,
        learning_rate=0.2,
        lambd=lambd,
        keep_prob=keep_prob,
        key=jax.random.key(4),
    )
    manual, manual_costs = fit(params, X, Y, grad="manual", **kwargs)
    auto, auto_costs = fit(params, X, Y, grad="autodiff", **kwargs)
    # Identical dropout masks, gradients equal to ~1e-15 per step; 40 steps
    # of float64 rounding stay far below 1e-10.
    assert_trees_close(manual, auto, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(manual_costs, auto_costs, rtol=1e-10)


def test_two_blobs_learn_in_float32(key):
    X, Y = two_blobs(key, m=200, n_x=2, dtype=jnp.float32)
    params = init_params(jax.random.key(1), [2, 4, 1], method="he")  # float32
    activations = ("relu", "sigmoid")
    trained, costs = fit(
        params, X, Y, activations=activations, num_iterations=300, learning_rate=0.5
    )
    assert costs.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(trained))
    # Separable by x_1 = 0 with a margin of 1: after 300 steps the cost is well
    # under log 2 = 0.69 (measured 0.0013) and every point is right.
    assert costs[0] > 0.3
    assert costs[-1] < 0.1
    assert float(accuracy(trained, X, Y, activations)) >= 0.99


# ---------------------------------------------------------------- minibatches


def test_one_full_minibatch_equals_a_full_batch_step():
    params, X, Y = problem(m=7)
    step, optimizer = make_sgd_step(0.1)
    epoch = make_epoch_step(step, batch_size=7)
    state = init_state(params, optimizer, jax.random.key(5))
    epoch_state, epoch_cost = jax.jit(epoch)(state, X, Y)
    full_state, full_cost = jax.jit(step)(state, X, Y)
    # A permutation of the columns changes only the summation order: 1e-12.
    np.testing.assert_allclose(epoch_cost, full_cost, rtol=1e-12)
    assert_trees_close(epoch_state.params, full_state.params, rtol=1e-12, atol=1e-15)


def test_uneven_minibatches_use_every_example_once():
    # With a linear "step" that adds each batch's column sum to a counter, one
    # epoch must add every column exactly once, whatever the batch split.
    X = jnp.arange(7.0).reshape(1, 7)

    def counting_step(state, Xb, Yb):
        total = state.params[0]["W"] + jnp.sum(Xb)
        return state._replace(params=[{"W": total}]), jnp.sum(Yb)

    epoch = make_epoch_step(counting_step, batch_size=3)  # batches 3, 3, 1
    state = TrainState([{"W": jnp.zeros(())}], None, jax.random.key(6))
    new, cost = epoch(state, X, jnp.ones((1, 7)))
    assert float(new.params[0]["W"]) == 21.0  # 0 + 1 + ... + 6
    # Batch costs weighted by batch size: (3 * 3 + 3 * 3 + 1 * 1) / 7.
    np.testing.assert_allclose(cost, 19 / 7, rtol=1e-15)


def test_fit_with_minibatches_learns():
    params, X, Y = problem(m=20)
    _, costs = fit(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=30,
        learning_rate=0.1,
        batch_size=6,  # batches of 6, 6, 6 and 2
    )
    assert costs.shape == (30,)
    assert np.isfinite(costs).all() and costs[-1] < costs[0]


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_bad_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        make_epoch_step(lambda s, x, y: (s, 0.0), batch_size)


# ---------------------------------------------------------------- predict


def test_predict_and_accuracy_for_a_sigmoid_output():
    # One unit, W = [[1, 0]], b = 0: predicts 1 exactly where x_1 > 0.
    params = [{"W": jnp.array([[1.0, 0.0]]), "b": jnp.zeros((1, 1))}]
    X = jnp.array([[2.0, -1.0, 0.5, -3.0], [5.0, 5.0, -5.0, -5.0]])
    predictions = predict(params, X, ("sigmoid",))
    np.testing.assert_array_equal(predictions, [[1, 0, 1, 0]])
    assert predictions.shape == (1, 4)
    assert float(accuracy(params, X, jnp.array([[1, 0, 0, 0]]), ("sigmoid",))) == 0.75


def test_predict_and_accuracy_for_a_softmax_output():
    # Three classes, logits Z = W X: the class of the largest coordinate.
    params = [{"W": jnp.eye(3), "b": jnp.zeros((3, 1))}]
    X = jnp.array([[3.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 4.0]])
    predictions = predict(params, X, ("softmax",))
    np.testing.assert_array_equal(predictions, [0, 1, 2, 2])
    one_hot = jnp.eye(3)[jnp.array([0, 1, 2, 0])].T  # (3, 4)
    assert float(accuracy(params, X, one_hot, ("softmax",))) == 0.75
    assert float(accuracy(params, X, jnp.array([0, 1, 1, 2]), ("softmax",))) == 0.75


# ---------------------------------------------------------------- bad arguments


def test_unknown_grad_source_raises():
    params, X, Y = problem()
    with pytest.raises(ValueError, match="manual"):
        value_and_grads(params, X, Y, ACTIVATIONS, grad="numeric")
    with pytest.raises(ValueError, match="autodiff"):
        make_train_step(ACTIVATIONS, optax.sgd(0.1), grad="numeric")


@pytest.mark.parametrize("keep_prob", [0.0, -0.5, 1.2])
def test_keep_prob_outside_unit_interval_raises(keep_prob):
    params, X, Y = problem()
    with pytest.raises(ValueError, match=r"keep_prob .* \(0, 1\]") as info:
        fit(
            params, X, Y, activations=ACTIVATIONS, num_iterations=1, keep_prob=keep_prob
        )
    assert str(keep_prob) in str(info.value)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        make_step(ACTIVATIONS, optax.sgd(0.1), keep_prob=keep_prob)


def test_fit_rejects_examples_in_rows():
    params, X, Y = problem()
    with pytest.raises(ValueError, match=r"are examples in rows\?"):
        fit(params, X.T, Y, activations=ACTIVATIONS, num_iterations=1)
