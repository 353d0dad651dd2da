"""Sweeps: N vmapped models equal N separate ``fit`` runs (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.params import init_params
from jaxnet.sweep import init_stacked_params, sweep, unstack
from jaxnet.train import accuracy, fit
from tests.helpers import assert_trees_close

DIMS = [4, 5, 3, 1]
ACTS = ("relu", "tanh", "sigmoid")
STEPS = 30
# vmap batches the same float64 products; only summation order may differ, so
# 30 steps of ~1e-16 relative rounding stay far below 1e-9.
RTOL, ATOL = 1e-9, 1e-12


def _data(key, m=11):
    kx, ky = jax.random.split(key)
    X = jax.random.normal(kx, (DIMS[0], m), jnp.float64)
    Y = (jax.random.uniform(ky, (1, m)) > 0.5).astype(jnp.float64)
    return X, Y


def _assert_matches_fit(result, inits, X, Y, runs):
    for i, (p0, kwargs) in enumerate(zip(inits, runs, strict=True)):
        params, costs = fit(p0, X, Y, activations=ACTS, num_iterations=STEPS, **kwargs)
        assert_trees_close(unstack(result.params, i), params, RTOL, ATOL)
        np.testing.assert_allclose(result.costs[i], costs, RTOL, ATOL)
        np.testing.assert_allclose(
            result.train_accuracy[i], accuracy(params, X, Y, ACTS), RTOL, ATOL
        )


def test_sweep_over_seeds_lr_and_lambd_equals_separate_runs(key):
    X, Y = _data(key)
    keys = jax.random.split(jax.random.key(1), 2)
    stacked = init_stacked_params(keys, DIMS, "he", jnp.float64)
    # nonzero lambdas only: fit compiles a separate program for lambd = 0
    lrs, lambds = [0.1, 0.03], [0.3, 1.0]
    result = sweep(
        stacked,
        X,
        Y,
        activations=ACTS,
        num_iterations=STEPS,
        learning_rates=lrs,
        lambds=lambds,
        keys=keys,
    )
    assert result.costs.shape == (2, STEPS)
    assert result.params[0]["W"].shape == (2, 5, 4)
    inits = [init_params(k, DIMS, "he", jnp.float64) for k in keys]
    runs = [
        dict(learning_rate=lr, lambd=la, key=k)
        for lr, la, k in zip(lrs, lambds, keys, strict=True)
    ]
    _assert_matches_fit(result, inits, X, Y, runs)
    # different hyperparameters really give different runs
    assert not np.allclose(result.costs[0], result.costs[1])


def test_sweep_over_keep_prob_equals_separate_runs(key):
    grad = "autodiff"  # the manual backward is covered by the other tests
    X, Y = _data(key)
    p0 = init_params(jax.random.key(2), DIMS, "he", jnp.float64)
    keys = jax.random.split(jax.random.key(3), 2)
    keep_probs = [0.8, 0.5]
    result = sweep(
        p0,
        X,
        Y,
        activations=ACTS,
        num_iterations=STEPS,
        learning_rates=0.05,
        keep_probs=keep_probs,
        keys=keys,
        grad=grad,
        X_test=X[:, :5],
        Y_test=Y[:, :5],
    )
    runs = [
        dict(learning_rate=0.05, keep_prob=kp, key=k, grad=grad)
        for kp, k in zip(keep_probs, keys, strict=True)
    ]
    _assert_matches_fit(result, [p0] * 2, X, Y, runs)
    assert result.test_accuracy.shape == (2,)


def test_sweep_with_minibatches_equals_separate_runs(key):
    X, Y = _data(key, m=13)
    p0 = init_params(jax.random.key(4), DIMS, "he", jnp.float64)
    keys = jax.random.split(jax.random.key(5), 2)
    result = sweep(
        p0,
        X,
        Y,
        activations=ACTS,
        num_iterations=STEPS,
        learning_rates=[0.1, 0.02],
        keys=keys,
        batch_size=4,
    )
    runs = [
        dict(learning_rate=lr, key=k, batch_size=4)
        for lr, k in zip([0.1, 0.02], keys, strict=True)
    ]
    _assert_matches_fit(result, [p0] * 2, X, Y, runs)


def test_sweep_runs_in_float32_and_keeps_the_dtype(key):
    X, Y = _data(key)
    p0 = init_params(key, DIMS, "he", jnp.float32)
    result = sweep(
        p0, X, Y, activations=ACTS, num_iterations=5, learning_rates=[0.1, 0.2]
    )
    assert result.params[0]["W"].dtype == jnp.float32
    assert result.costs.dtype == jnp.float32
    assert np.all(np.isfinite(result.costs))


def test_sweep_rejects_disagreeing_sizes(key):
    X, Y = _data(key)
    p0 = init_params(key, DIMS, "he", jnp.float64)
    with pytest.raises(ValueError, match="number of models"):
        sweep(
            p0,
            X,
            Y,
            activations=ACTS,
            num_iterations=2,
            learning_rates=[0.1, 0.2],
            lambds=[0.1, 0.2, 0.3],
        )
    with pytest.raises(ValueError, match="number of models"):
        sweep(p0, X, Y, activations=ACTS, num_iterations=2, learning_rates=0.1)
    with pytest.raises(ValueError, match="keep_prob"):
        sweep(p0, X, Y, activations=ACTS, num_iterations=2, keep_probs=[0.5, 1.5])


def test_init_stacked_params_equals_per_key_init():
    keys = jax.random.split(jax.random.key(7), 2)
    stacked = init_stacked_params(keys, DIMS, "xavier", jnp.float64)
    for i, k in enumerate(keys):
        assert_trees_close(
            unstack(stacked, i), init_params(k, DIMS, "xavier", jnp.float64), 0, 0
        )
