"""jaxnet.trainer: a pure run(params, X, Y) equal to fit, under jit, vmap, grad.

Equality with ``fit`` is checked in float64 to 1e-12 relative: both run the
same step (``jaxnet.steps.iteration``); only the loop differs (a scan here, a
fori_loop in fit's chunk), which may reorder nothing but can change fusion, so
bit equality is not promised.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet
from tests.helpers import assert_trees_close

ACTS = ["relu", "tanh", "sigmoid"]
DIMS = [4, 5, 3, 1]
N = 15


def data(key, m=30):
    X = jax.random.normal(key, (4, m), jnp.float64)
    Y = (X[:1] + X[1:2] > 0).astype(jnp.float64)
    return X, Y


def softmax_data(key, m=30):
    X = jax.random.normal(key, (4, m), jnp.float64)
    labels = jnp.argmax(X[:3], axis=0)
    return X, jaxnet.one_hot(labels, 3).astype(jnp.float64)


OPTIONS = {
    "default": {},
    "adam": dict(optimizer="adam", learning_rate=0.01),
    "l2_dropout": dict(lambd=0.1, keep_prob=0.8, key=jax.random.key(3)),
    "minibatch_momentum": dict(batch_size=7, optimizer="momentum"),
    "autodiff": dict(grad="autodiff", learning_rate=0.1),
    "optax_own_rate": dict(optimizer=optax.rmsprop(0.01)),
    "optax_injected": dict(
        optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        learning_rate=0.3,
    ),
}


@pytest.mark.parametrize("name", OPTIONS)
def test_trainer_equals_fit(key, name):
    options = OPTIONS[name]
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    expected, expected_costs = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=N, **options
    )
    run = jaxnet.trainer(ACTS, N, **options)
    trained, costs = jax.jit(run)(params, X, Y)
    assert costs.shape == (N,)
    assert_trees_close(trained, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(costs, expected_costs, rtol=1e-12)


def test_trainer_equals_fit_softmax_float32(key):
    X, Y = softmax_data(jax.random.key(1))
    params = jaxnet.init_params(key, [4, 6, 3], dtype=jnp.float32)
    acts = ["relu", "softmax"]
    expected, expected_costs = jaxnet.fit(
        params, X, Y, activations=acts, num_iterations=N, learning_rate=0.1
    )
    trained, costs = jaxnet.trainer(acts, N, learning_rate=0.1)(params, X, Y)
    assert costs.dtype == jnp.float32 and trained[0]["W"].dtype == jnp.float32
    # float32: equal to a few ulps (rtol 1e-5 ~ 80 eps).
    assert_trees_close(trained, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(costs, expected_costs, rtol=1e-5)


def test_vmap_over_learning_rates_equals_fit_at_each(key):
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    run = jaxnet.trainer(ACTS, N, optimizer="adam")
    rates = jnp.array([1e-3, 1e-2, 1e-1])
    trained, costs = jax.jit(jax.vmap(lambda lr: run(params, X, Y, learning_rate=lr)))(
        rates
    )
    for i, rate in enumerate([1e-3, 1e-2, 1e-1]):
        expected, expected_costs = jaxnet.fit(
            params, X, Y, activations=ACTS, num_iterations=N, optimizer="adam",
            learning_rate=rate,
        )  # fmt: skip
        assert_trees_close(jaxnet.unstack(trained, i), expected, 1e-12, 1e-15)
        np.testing.assert_allclose(costs[i], expected_costs, rtol=1e-12)


def test_vmap_over_keys_and_hyperparameters_equals_fit(key):
    X, Y = data(jax.random.key(1))
    run = jaxnet.trainer(ACTS, N, learning_rate=0.1)
    keys = jax.random.split(key, 3)
    lambds = jnp.array([0.0, 0.1, 1.0])
    probs = jnp.array([1.0, 0.9, 0.7])

    def one(k, lambd, keep_prob):
        params = jaxnet.init_params(k, DIMS, dtype=jnp.float64)
        return run(params, X, Y, lambd=lambd, keep_prob=keep_prob, key=k)

    trained, costs = jax.vmap(one)(keys, lambds, probs)
    for i in range(3):
        params = jaxnet.init_params(keys[i], DIMS, dtype=jnp.float64)
        expected, expected_costs = jaxnet.fit(
            params, X, Y, activations=ACTS, num_iterations=N, learning_rate=0.1,
            lambd=float(lambds[i]), keep_prob=float(probs[i]), key=keys[i],
        )  # fmt: skip
        np.testing.assert_allclose(costs[i], expected_costs, rtol=1e-12)
        assert_trees_close(jaxnet.unstack(trained, i), expected, 1e-12, 1e-15)


def test_grad_of_final_cost_wrt_learning_rate_matches_finite_differences(key):
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    run = jaxnet.trainer(ACTS, N, optimizer="momentum")

    def final(lr):
        return run(params, X, Y, learning_rate=lr)[1][-1]

    slope = jax.jit(jax.grad(final))(0.1)
    h = 1e-5  # central difference: error O(h^2 J''') ~ 1e-10, rounding ~1e-11
    numeric = (final(0.1 + h) - final(0.1 - h)) / (2 * h)
    assert abs(float(slope)) > 1e-6
    np.testing.assert_allclose(slope, numeric, rtol=1e-5)


def test_grad_of_final_cost_wrt_initial_params(key):
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    run = jaxnet.trainer(["tanh", "tanh", "sigmoid"], N, learning_rate=0.5)

    def final(p):
        return run(p, X, Y)[1][-1]

    grads = jax.grad(final)(params)
    flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)])
    norm = jnp.linalg.norm(flat)
    assert norm > 1e-6  # a gradient that is not trivially zero
    unit = jax.tree.map(lambda g: g / norm, grads)  # |d| = 1, along the gradient
    h = 1e-5  # central difference: error O(h^2) ~ 1e-10, rounding ~1e-11 / h
    plus = jax.tree.map(lambda p, d: p + h * d, params, unit)
    minus = jax.tree.map(lambda p, d: p - h * d, params, unit)
    numeric = (final(plus) - final(minus)) / (2 * h)
    np.testing.assert_allclose(norm, numeric, rtol=1e-5)  # d.grad = |grad|


def test_run_holds_no_host_work(key):
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    run = jaxnet.trainer(ACTS, N, batch_size=7, keep_prob=0.9)
    jaxpr = str(jax.make_jaxpr(run)(params, X, Y))
    assert "callback" not in jaxpr and "scan" in jaxpr


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(learning_rate=-1.0), "learning_rate must be"),
        (dict(keep_prob=0.0), "keep_prob must be"),
        (dict(grad="numeric"), "grad must be one of"),
        (dict(first_layer="gram"), "dense first layer on one device"),
        (dict(optimizer=optax.adam), "call it"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_trainer_validates_options_when_built(options, words):
    with pytest.raises(ValueError, match=words):
        jaxnet.trainer(ACTS, N, **options)


def test_trainer_validates_names_and_counts_when_built():
    with pytest.raises(ValueError, match="unknown activation"):
        jaxnet.trainer(["gelu_not_registered", "sigmoid"], N)
    with pytest.raises(ValueError, match="num_iterations"):
        jaxnet.trainer(ACTS, 0)
    with pytest.raises(TypeError, match="unknown training option"):
        jaxnet.trainer(ACTS, N, learning_rates=[0.1])


def test_trainer_shape_errors_at_trace_time(key):
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    run = jaxnet.trainer(ACTS, N)
    with pytest.raises(ValueError, match="one activation per layer"):
        run(params[:2], *data(key))
    with pytest.raises(ValueError, match="m = 0"):
        jax.jit(run)(params, jnp.zeros((4, 0)), jnp.zeros((1, 0)))
    fixed = jaxnet.trainer(ACTS, N, optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match="would be ignored"):
        jax.vmap(lambda lr: fixed(params, *data(key), learning_rate=lr))(
            jnp.array([0.1, 0.2])
        )


def test_fit_and_sweep_under_a_tracer_point_to_trainer(key):
    X, Y = data(jax.random.key(1))
    params = jaxnet.init_params(key, DIMS, dtype=jnp.float64)
    kw = dict(activations=ACTS, num_iterations=2)
    calls = {
        "fit": lambda p, lr: jaxnet.fit(p, X, Y, learning_rate=lr, **kw),
        "sweep": lambda p, lr: jaxnet.sweep(p, X, Y, learning_rates=[lr], **kw),
        "train_loop": lambda p, lr: jaxnet.train_loop(p, X, Y, learning_rate=lr, **kw),
        "fit_until": lambda p, lr: jaxnet.fit_until(
            p,
            X,
            Y,
            activations=ACTS,
            epsilon=0.1,
            max_iterations=2,
            learning_rate=lr,
        ),
    }
    for name, call in calls.items():
        for transform in (jax.jit, lambda f: jax.vmap(f, in_axes=(None, 0))):
            lr = 0.1 if transform is jax.jit else jnp.array([0.1, 0.2])
            with pytest.raises(TypeError, match=f"jaxnet.{name} cannot run inside"):
                transform(call)(params, lr)
    with pytest.raises(TypeError, match=r"jaxnet.trainer\(activations"):
        jax.grad(lambda lr: jaxnet.fit(params, X, Y, learning_rate=lr, **kw)[1][-1])(
            0.1
        )
