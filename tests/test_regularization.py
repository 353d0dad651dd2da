"""L2 regularization and inverted dropout: hand-written rules against jax.grad.

Tolerances: manual and automatic gradients are both exact up to float64 rounding
(~1e-16 per operation), so they agree to ~1e-14 relative; the brief's 1e-10
relative leaves room for cancellation in the sums over m. atol=1e-13 only
covers entries that are ~0 in both (dead relu units, biases summing to ~0).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.deep import (
    l2_penalty,
    model_cost,
    model_forward,
    model_value_and_grads,
    predict_proba,
)
from jaxnet.train import fit, init_state, make_train_step
from tests.helpers import assert_trees_close

RTOL, ATOL = 1e-10, 1e-13  # see the module docstring
LAYER_DIMS = [[3, 1], [4, 5, 1], [5, 4, 3, 1]]


def _problem(key, layer_dims, m, hidden="relu"):
    """He-scaled params with non-zero biases, X, Y; drawn with numpy from ``key``.

    numpy draws need no per-shape compilation (eager jax.random would compile
    a kernel for every new shape). Non-zero biases make "biases are not
    penalized" a real check.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    params = [
        {
            "W": jnp.asarray(rng.normal(size=(n, n_prev)) * np.sqrt(2 / n_prev)),
            "b": jnp.asarray(0.1 * rng.normal(size=(n, 1))),
        }
        for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=True)
    ]
    X = jnp.asarray(rng.normal(size=(layer_dims[0], m)))
    Y = jnp.asarray((rng.uniform(size=(1, m)) > 0.5).astype(np.float64))
    acts = (hidden,) * (len(layer_dims) - 2) + ("sigmoid",)
    return params, X, Y, acts


@partial(jax.jit, static_argnames="acts")
def manual_and_autodiff(params, X, Y, lambd, keep_prob, dropout_key, *, acts):
    """(J, grads) from the hand-written backward and from jax.value_and_grad.

    One compilation per case (instead of one per eager operation); lambd and
    keep_prob are traced, so they add no compilations.
    """
    kwargs = dict(lambd=lambd, keep_prob=keep_prob, dropout_key=dropout_key)
    manual = model_value_and_grads(params, X, Y, acts, **kwargs)
    auto = jax.value_and_grad(model_cost)(params, X, Y, acts, **kwargs)
    return manual, auto


# ---------------------------------------------------------------- L2


@pytest.mark.parametrize(
    "layer_dims, hidden, m",
    [(dims, hidden, 7) for dims in LAYER_DIMS for hidden in ("relu", "tanh")]
    + [([5, 4, 3, 1], "leaky_relu", 1)],
)
def test_l2_grads_match_autodiff(key, layer_dims, hidden, m):
    params, X, Y, acts = _problem(key, layer_dims, m, hidden)
    # keep_prob = 1 keeps every unit (the mask is all ones): L2 alone, through
    # the same compiled function the dropout cases below reuse.
    (cost, grads), (auto_cost, auto) = manual_and_autodiff(
        params, X, Y, 0.7, 1.0, jax.random.key(3), acts=acts
    )
    assert_trees_close(grads, auto, RTOL, ATOL)
    # Same value as the differentiable cost: one formula, 1e-14 relative.
    np.testing.assert_allclose(cost, auto_cost, rtol=1e-14)


def test_l2_cost_is_cross_entropy_plus_penalty(key):
    """J = cross-entropy + lambda / (2m) sum_l ||W[l]||_F^2, no bias term."""
    params, X, Y, acts = _problem(key, [5, 4, 3, 1], 7)
    lambd, m = 0.7, 7
    penalty = lambd / (2 * m) * sum(float(jnp.sum(p["W"] ** 2)) for p in params)
    diff = model_cost(params, X, Y, acts, lambd=lambd) - model_cost(params, X, Y, acts)
    # Difference of two O(1) values computed in float64: 1e-12 relative.
    np.testing.assert_allclose(diff, penalty, rtol=1e-12)
    np.testing.assert_allclose(l2_penalty(params, lambd, m), penalty, rtol=1e-14)


def test_l2_adds_lambda_over_m_w_to_dw_only(key):
    """dW[l] += (lambda / m) W[l]; db[l] is unchanged (biases not penalized)."""
    params, X, Y, acts = _problem(key, [5, 4, 3, 1], 7)
    lambd, m = 0.7, 7
    _, plain = model_value_and_grads(params, X, Y, acts)
    _, reg = model_value_and_grads(params, X, Y, acts, lambd=lambd)
    for p, g0, g1 in zip(params, plain, reg, strict=True):
        np.testing.assert_array_equal(g1["b"], g0["b"])
        np.testing.assert_allclose(g1["W"] - g0["W"], lambd / m * p["W"],
                                   rtol=1e-12, atol=1e-15)  # fmt: skip


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("layer_dims", LAYER_DIMS)
@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_dropout_grads_match_autodiff_under_the_same_key(key, layer_dims, hidden):
    """dA[l] = dA[l] * D[l] / keep_prob equals jax.grad with the same masks."""
    params, X, Y, acts = _problem(key, layer_dims, 7, hidden)
    for keep_prob, lambd in ((0.5, 0.0), (0.86, 0.1)):
        (cost, grads), (auto_cost, auto) = manual_and_autodiff(
            params, X, Y, lambd, keep_prob, jax.random.key(3), acts=acts
        )
        assert_trees_close(grads, auto, RTOL, ATOL)
        np.testing.assert_allclose(cost, auto_cost, rtol=1e-14)


def test_dropout_mask_keeps_keep_prob_of_units_scaled_up(key):
    """D[l] is 0 or 1 / keep_prob, 1 with probability keep_prob: E[A D] = A."""
    keep_prob, m, n_h = 0.8, 200, 50
    params, X, _, _ = _problem(key, [4, n_h, n_h, 1], m)
    acts = ("relu", "relu", "sigmoid")
    _, caches = model_forward(params, X, acts, keep_prob=keep_prob,
                              dropout_key=jax.random.key(1))  # fmt: skip
    for cache in caches[:-1]:
        D = np.asarray(cache.D)
        assert D.shape == (n_h, m)
        np.testing.assert_allclose(np.unique(D), [0.0, 1 / keep_prob], rtol=1e-15)
        # 10,000 Bernoulli(0.8) draws: std 0.004, so 0.02 is a 5-sigma bound.
        assert abs(np.mean(D > 0) - keep_prob) < 0.02
    assert caches[-1].D is None, "the output layer must not be dropped"
    np.testing.assert_array_equal(caches[0].A_prev, X)  # nor the input X
    # Two hidden layers get different masks (one key split per layer).
    assert not np.array_equal(caches[0].D, caches[1].D)


def test_dropout_is_off_at_prediction_and_keyed_in_training(key):
    params, X, _, acts = _problem(key, [5, 4, 3, 1], 7)
    AL_plain, _ = model_forward(params, X, acts)
    np.testing.assert_array_equal(predict_proba(params, X, acts), AL_plain)
    k1, k2 = jax.random.key(1), jax.random.key(2)
    a1, _ = model_forward(params, X, acts, keep_prob=0.5, dropout_key=k1)
    a1_again, _ = model_forward(params, X, acts, keep_prob=0.5, dropout_key=k1)
    a2, _ = model_forward(params, X, acts, keep_prob=0.5, dropout_key=k2)
    np.testing.assert_array_equal(a1, a1_again)
    assert not np.allclose(a1, a2)
    assert not np.allclose(a1, AL_plain)
    # keep_prob = 1 keeps every unit: identical to no dropout.
    a_one, _ = model_forward(params, X, acts, keep_prob=1.0, dropout_key=k1)
    np.testing.assert_allclose(a_one, AL_plain, rtol=1e-15)


@pytest.mark.parametrize("keep_prob", [0.0, -0.1, 1.5])
def test_keep_prob_outside_unit_interval_is_an_error(key, keep_prob):
    params, X, Y, acts = _problem(key, [4, 5, 1], 3)
    with pytest.raises(ValueError, match=r"keep_prob .* \(0, 1\]"):
        model_forward(params, X, acts, keep_prob=keep_prob, dropout_key=key)
    with pytest.raises(ValueError, match="keep_prob"):
        fit(params, X, Y, activations=acts, num_iterations=1, keep_prob=keep_prob)
    with pytest.raises(ValueError, match="keep_prob"):
        make_train_step(acts, None, keep_prob=keep_prob)


def test_dropout_train_step_jit_equals_eager(key):
    """The same key gives the same masks, eager or compiled."""
    import optax

    params, X, Y, acts = _problem(key, [5, 4, 3, 1], 7)
    opt = optax.sgd(0.1)
    step = make_train_step(acts, opt, keep_prob=0.8, lambd=0.1)
    state = init_state(params, opt, jax.random.key(5))
    eager, eager_cost = step(state, X, Y)
    jitted, jit_cost = jax.jit(step)(state, X, Y)
    # Same operations; XLA may fuse differently: 1e-13.
    assert_trees_close(jitted.params, eager.params, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jit_cost, eager_cost, rtol=1e-13)
    # The step really dropped units: it differs from a step without dropout.
    plain, _ = make_train_step(acts, opt, lambd=0.1)(state, X, Y)
    assert not np.allclose(plain.params[0]["W"], eager.params[0]["W"])
