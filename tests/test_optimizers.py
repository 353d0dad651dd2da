"""Tests for jaxnet.optimizers: optax rules against the lecture's hand-written ones.

All comparisons run in float64. The hand-written references below apply the
same arithmetic as optax in a possibly different order, so they agree to
rounding (~1e-16 relative per step); rtol=1e-12 over a few steps leaves a wide
margin while a wrong rule (a missing bias correction, eps in the wrong place,
the course's (1 - beta) factor) is off by O(1e-3) or more.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.optimizers import OPTIMIZERS, build_optimizer
from jaxnet.params import init_params
from jaxnet.train import (
    accuracy,
    fit,
    init_state,
    make_train_step,
    run_steps,
    update_params,
    value_and_grads,
)
from tests.helpers import assert_trees_close

LAYER_DIMS = [4, 5, 3, 1]
ACTS = ("relu", "tanh", "sigmoid")
NUM_STEPS = 4
RULE_RTOL = 1e-12  # see the module docstring
RULE_ATOL = 1e-14


def _problem(key, m=7):
    """He-scaled params, X, Y drawn with numpy (no per-shape jax compilation)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    params = [
        {
            "W": jnp.asarray(rng.normal(size=(n, n_prev)) * np.sqrt(2 / n_prev)),
            "b": jnp.zeros((n, 1), jnp.float64),
        }
        for n_prev, n in zip(LAYER_DIMS[:-1], LAYER_DIMS[1:], strict=True)
    ]
    X = jnp.asarray(rng.normal(size=(LAYER_DIMS[0], m)))
    Y = jnp.asarray((rng.uniform(size=(1, m)) > 0.5).astype(np.float64))
    return params, X, Y


def _optax_run(optimizer, params, X, Y):
    step = make_train_step(ACTS, optimizer)
    state, costs = run_steps(step, init_state(params, optimizer), X, Y, NUM_STEPS)
    return state.params, costs


def _hand_run(rule, params, X, Y):
    """Apply ``rule(params, grads, slots, t) -> (params, slots)`` NUM_STEPS times.

    The Python loop is unrolled inside one jit: one compilation per rule instead
    of one per eager operation.
    """

    @jax.jit
    def run(params):
        slots = None
        for t in range(1, NUM_STEPS + 1):
            _, grads = value_and_grads(params, X, Y, ACTS)
            params, slots = rule(params, grads, slots, t)
        return params

    return run(params)


def _zeros(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="gd, momentum, nesterov, rmsprop, adam"):
        build_optimizer("sgd_nesterov", 0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(learning_rate=0.1, momentum=1.0), "momentum"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_optimizer("momentum", **kwargs)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_name_gives_a_transformation(name):
    opt = build_optimizer(name, 0.01)
    assert isinstance(opt, optax.GradientTransformation)


def test_gd_is_the_lectures_update_params(key):
    """W := W - alpha dW: optax.sgd and update_params give the same params."""
    params, X, Y = _problem(key)
    alpha = 0.3
    got, _ = _optax_run(build_optimizer("gd", alpha), params, X, Y)
    expected = _hand_run(
        lambda p, g, s, t: (update_params(p, g, alpha), s), params, X, Y
    )
    # Same operations (p + (-alpha g) vs p - alpha g: negation is exact); only the
    # compiled scan vs eager evaluation could round differently: 1e-14.
    assert_trees_close(got, expected, rtol=1e-14, atol=1e-15)


def test_fit_default_optimizer_equals_gd(key):
    params, X, Y = _problem(key)
    kwargs = dict(activations=ACTS, num_iterations=NUM_STEPS, learning_rate=0.3)
    p_default, c_default = fit(params, X, Y, **kwargs)
    p_gd, c_gd = fit(params, X, Y, optimizer=build_optimizer("gd", 0.3), **kwargs)
    # The same update; alpha is a traced array in one and a constant in the
    # other, which XLA may fold differently: 1e-14 relative (seen: 1.6e-16).
    assert_trees_close(p_gd, p_default, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(c_gd, c_default, rtol=1e-14)


def test_momentum_matches_hand_written(key):
    """v := beta v + dW; W := W - alpha v (optax's form, no (1 - beta))."""
    params, X, Y = _problem(key)
    alpha, beta = 0.1, 0.9

    def rule(p, g, v, t):
        v = _zeros(g) if v is None else v
        v = jax.tree.map(lambda v_, g_: beta * v_ + g_, v, g)
        return jax.tree.map(lambda p_, v_: p_ - alpha * v_, p, v), v

    got, _ = _optax_run(
        build_optimizer("momentum", alpha, momentum=beta), *(params, X, Y)
    )
    assert_trees_close(got, _hand_run(rule, params, X, Y), RULE_RTOL, RULE_ATOL)


def test_adam_matches_the_course_rule(key):
    """v, S with bias correction; W := W - alpha v_hat / (sqrt(S_hat) + eps)."""
    params, X, Y = _problem(key)
    alpha, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8

    def rule(p, g, slots, t):
        v, s = (_zeros(g), _zeros(g)) if slots is None else slots
        v = jax.tree.map(lambda v_, g_: b1 * v_ + (1 - b1) * g_, v, g)
        s = jax.tree.map(lambda s_, g_: b2 * s_ + (1 - b2) * g_**2, s, g)

        def upd(p_, v_, s_):
            v_hat, s_hat = v_ / (1 - b1**t), s_ / (1 - b2**t)
            return p_ - alpha * v_hat / (jnp.sqrt(s_hat) + eps)

        return jax.tree.map(upd, p, v, s), (v, s)

    got, _ = _optax_run(build_optimizer("adam", alpha, b1=b1, b2=b2), params, X, Y)
    assert_trees_close(got, _hand_run(rule, params, X, Y), RULE_RTOL, RULE_ATOL)


def test_rmsprop_matches_the_course_rule(key):
    """S := rho S + (1 - rho) dW^2; W := W - alpha dW / (sqrt(S) + eps)."""
    params, X, Y = _problem(key)
    alpha, rho, eps = 0.01, 0.9, 1e-8

    def rule(p, g, s, t):
        s = _zeros(g) if s is None else s
        s = jax.tree.map(lambda s_, g_: rho * s_ + (1 - rho) * g_**2, s, g)
        new = jax.tree.map(lambda p_, g_, s_: p_ - alpha * g_ / (jnp.sqrt(s_) + eps),
                           p, g, s)  # fmt: skip
        return new, s

    got, _ = _optax_run(build_optimizer("rmsprop", alpha, decay=rho), params, X, Y)
    assert_trees_close(got, _hand_run(rule, params, X, Y), RULE_RTOL, RULE_ATOL)


def test_adam_with_manual_or_autodiff_gradients_agree(key):
    """The optimizer only sees gradients: the hand-written ones or jax.grad's."""
    params, X, Y = _problem(key)
    kwargs = dict(
        activations=ACTS,
        num_iterations=NUM_STEPS,
        optimizer=build_optimizer("adam", 0.01),
    )
    p_manual, _ = fit(params, X, Y, grad="manual", **kwargs)
    p_auto, _ = fit(params, X, Y, grad="autodiff", **kwargs)
    # Gradients agree to ~1e-15; Adam divides by sqrt(S_hat) ~ |dW|, which keeps
    # relative errors relative: 1e-10 is generous.
    assert_trees_close(p_manual, p_auto, rtol=1e-10, atol=1e-13)


def test_adam_learns_a_separable_set_in_float32(key):
    k1, k2 = jax.random.split(key)
    X = jax.random.normal(k1, (2, 64), jnp.float32)
    Y = (X[0:1] + X[1:2] > 0).astype(jnp.float32)
    params = init_params(k2, [2, 4, 1], method="he", dtype=jnp.float32)
    acts = ("relu", "sigmoid")
    params, costs = fit(
        params, X, Y, activations=acts, num_iterations=100,
        optimizer=build_optimizer("adam", 0.05),
    )  # fmt: skip
    assert params[0]["W"].dtype == jnp.float32
    assert float(costs[-1]) < 0.2 < float(costs[0])
    assert float(accuracy(params, X, Y, acts)) >= 0.95
