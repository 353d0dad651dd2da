"""Tests for jaxnet.wide: the gram first layer (W[1] = s W[1]_0 + C X^T) trains
exactly like the dense one on the cat-shaped models, and is chosen only where
it is exact and cheaper.

The cat data is used when $JAXNET_DATA is set; otherwise a synthetic set of the
same shape (12288 pixel values in [0, 1] per column, m = 209, labels that a
linear rule separates). Equality is checked in float64 to 1e-10 relative: the
costs entry by entry, the parameters leaf by leaf against the leaf's largest
entry (an entry near 0 has no meaningful relative error).
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.boundary import prepare
from jaxnet.driver import chunk_program
from jaxnet.optimizers import build_optimizer
from jaxnet.params import course_init_params, init_params
from jaxnet.runner import train_loop
from jaxnet.steps import TrainState, value_and_grads
from jaxnet.sweep import init_stacked_params, sweep
from jaxnet.train import fit, fit_until
from jaxnet.wide import (
    FIRST_LAYERS,
    choose_first_layer,
    gram_value_and_grads,
    materialize,
    to_gram,
)

# The course's three cat models: layer sizes, initialization, learning rate.
CAT_MODELS = {
    "logistic": ([12288, 1], None, 0.005),
    "two_layer": ([12288, 7, 1], "0.01", 0.0075),
    "deep": ([12288, 20, 7, 5, 1], "sqrt", 0.0075),
}
EXACT = 1e-10


@functools.cache
def cat_data() -> tuple[np.ndarray, np.ndarray]:
    """X (12288, 209) and Y (1, 209): the cat set, or a synthetic stand-in.

    The stand-in is image-like: pixels in [0, 1] around 0.45 (in steps of
    1/255), driven by 10 latent factors plus noise, labelled by two of the
    factors; the course's models train on it as smoothly as on the cat set.
    """
    if os.environ.get("JAXNET_DATA"):
        from jaxnet.data import load_catvnoncat

        data = load_catvnoncat()
        return data.X_train, data.Y_train
    rng = np.random.RandomState(0)
    factors, patterns = rng.randn(10, 209), rng.randn(12288, 10)
    pixels = 0.45 + 0.1 * (patterns @ factors) / np.sqrt(10)
    X = np.round(255 * np.clip(pixels + 0.1 * rng.randn(12288, 209), 0, 1)) / 255
    Y = (factors[0] + 0.5 * factors[1] > 0).astype(np.float64).reshape(1, -1)
    return X, Y


def cat_model(name: str, dtype=jnp.float64):
    """(params, activations, learning rate) of a course model, in dtype."""
    dims, scale, learning_rate = CAT_MODELS[name]
    if scale is None:  # logistic regression starts from zeros (W[1]_0 = 0)
        params = init_params(jax.random.key(0), dims, "zeros", dtype)
    else:
        params = course_init_params(dims, seed=1, scale=scale, dtype=dtype)
    activations = ("relu",) * (len(dims) - 2) + ("sigmoid",)
    return params, activations, learning_rate


@functools.cache
def cat_run(name, first_layer, num_iterations, dtype=jnp.float64, **hyper):
    """fit() of a course model on the cat-shaped data (cached across tests)."""
    params, activations, learning_rate = cat_model(name, dtype)
    X, Y = cat_data()
    trained, costs = fit(
        params, jnp.asarray(X, dtype), jnp.asarray(Y, dtype),
        activations=activations, num_iterations=num_iterations,
        learning_rate=learning_rate, first_layer=first_layer,
        key=jax.random.key(1), **hyper,
    )  # fmt: skip
    return jax.tree.map(np.asarray, trained), np.asarray(costs)


def max_relative(actual, expected) -> float:
    """max over leaves of max|actual - expected| / max|expected| (0/0 = 0)."""
    worst = 0.0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        scale = np.max(np.abs(e))
        worst = max(worst, float(np.max(np.abs(a - e)) / scale) if scale else 0.0)
    return worst


def assert_same_run(gram, dense, tol=EXACT):
    (gram_params, gram_costs), (dense_params, dense_costs) = gram, dense
    assert jax.tree.structure(gram_params) == jax.tree.structure(dense_params)
    assert gram_params[0]["W"].shape == dense_params[0]["W"].shape
    np.testing.assert_allclose(gram_costs, dense_costs, rtol=tol, atol=0)
    assert max_relative(gram_params, dense_params) < tol


# ------------------------------------------------------- the cat models, exact


@pytest.mark.parametrize(
    "name, num_iterations",
    [("logistic", 2000), ("two_layer", 2500), ("deep", 300)],
)
def test_gram_equals_dense_on_the_cat_models(name, num_iterations):
    gram = cat_run(name, "gram", num_iterations)
    dense = cat_run(name, "dense", num_iterations)
    assert_same_run(gram, dense)
    assert gram[1][-1] < gram[1][0]  # it trains


@pytest.mark.parametrize(
    "name, num_iterations, hyper",
    [
        ("deep", 40, dict(optimizer="momentum", lambd=0.7, keep_prob=0.86)),
        (
            "deep",
            8,
            dict(
                optimizer="nesterov",
                lambd=0.7,
                keep_prob=0.8,
                batch_size=64,
                grad="autodiff",
            ),
        ),  # fmt: skip
        ("two_layer", 15, dict(lambd=0.7, batch_size=50)),  # 4 batches + 9 left
    ],
)
def test_gram_equals_dense_with_regularization_optimizers_and_batches(
    name, num_iterations, hyper
):
    gram = cat_run(name, "gram", num_iterations, **hyper)
    dense = cat_run(name, "dense", num_iterations, **hyper)
    assert_same_run(gram, dense)


@pytest.mark.parametrize("name, num_iterations", [("logistic", 2000), ("deep", 50)])
def test_float32_both_paths_round_the_float64_run(name, num_iterations):
    # Both float32 runs are roundings of the float64 trajectory. Measured on the
    # synthetic set (docs/wide_inputs.md): costs within 1e-5 relative for both;
    # parameters within 6e-6 (dense) and 2.3e-4 (gram, logistic: X^T X squares
    # X's condition number) of the largest weight. On the real cat data the deep
    # model's float32 runs (either path) leave the float64 trajectory after
    # 70-280 iterations, where the cost crawls along its plateau and rounding
    # decides which way it goes: 50 here. The logistic model is convex.
    reference = cat_run(name, "dense", num_iterations)
    for first_layer in ("dense", "gram"):
        params, costs = cat_run(name, first_layer, num_iterations, jnp.float32)
        assert params[0]["W"].dtype == np.float32
        np.testing.assert_allclose(costs, reference[1], rtol=1e-4)
        assert max_relative(params, reference[0]) < 1e-2


# ---------------------------------------------------------------- the rule


def start_state(params, transform) -> TrainState:
    return TrainState(params, transform.init(params), jax.random.key(0))


@pytest.mark.parametrize(
    "optimizer, expected",
    [("gd", "gram"), ("momentum", "gram"), ("nesterov", "gram"),
     ("adam", "dense"), ("rmsprop", "dense")],
)  # fmt: skip
def test_auto_picks_gram_for_the_cat_shapes_only_with_linear_optimizers(
    optimizer, expected
):
    params, activations, _ = cat_model("deep")
    X, Y = cat_data()
    run = prepare(
        params, X, Y, activations=activations, learning_rate=0.01,
        optimizer=optimizer, grad="manual", lambd=0.0, keep_prob=1.0,
        batch_size=None, key=None,
    )  # fmt: skip
    assert run.config.first_layer == expected
    assert run.state.params[0]["W"].shape == (20, 12288)  # callers see W[1]
    assert (run.data is run.X) == (expected == "dense")


def test_the_rule_weighs_the_flops():
    gd, raw = build_optimizer("gd", 0.01), optax.sgd(0.01)

    def choice(dims, m, optimizer=gd, **options):
        state = start_state(init_params(jax.random.key(0), dims), optimizer)
        X = jnp.zeros((dims[0], m))
        return choose_first_layer("auto", optimizer, state, X, **options)

    cat = [12288, 20, 7, 5, 1]
    assert choice(cat, 209) == "gram"
    # Full batch: gram iff 4 m <= n_x (12288 = 4 x 3072).
    assert choice(cat, 3072) == "gram" and choice(cat, 3073) == "dense"
    assert choice([784, 25, 10], 1000) == "dense"  # MNIST-like
    # L2 on minibatches recomputes <C G, C> per batch: batches of 1 lose.
    assert choice(cat, 209, batch_size=64, l2=True) == "gram"
    assert choice(cat, 209, batch_size=1, l2=True) == "dense"
    assert choice(cat, 209, batch_size=1) == "gram"
    # A raw optax transformation cannot be checked for linearity: dense.
    assert choice(cat, 209, optimizer=raw) == "dense"


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_explicit_gram_with_adam_or_rmsprop_raises(optimizer):
    params, activations, _ = cat_model("two_layer")
    X, Y = cat_data()
    with pytest.raises(ValueError, match=r"would not be exact.*sqrt\(S\).*'dense'"):
        fit(params, X, Y, activations=activations, num_iterations=1,
            optimizer=optimizer, first_layer="gram")  # fmt: skip
    with pytest.raises(ValueError, match="first_layer must be one of"):
        fit(params, X, Y, activations=activations, num_iterations=1,
            first_layer="direct")  # fmt: skip


def test_the_compiled_program_takes_the_data_as_arguments():
    # Closing over X would let XLA fold X^T X at compile time (40 s for the cat
    # set): the chunk program must hold no large constants.
    params, activations, _ = cat_model("deep")
    X, Y = cat_data()
    run = prepare(
        params, X, Y, activations=activations, learning_rate=0.01, optimizer="gd",
        grad="manual", lambd=0.1, keep_prob=1.0, batch_size=None, key=None,
    )  # fmt: skip
    assert run.config.first_layer == "gram"
    state = FIRST_LAYERS["gram"].enter(run.state, run.data)
    args = (state, run.hp, run.data, run.Y, jnp.asarray(3, jnp.int32))
    traced = chunk_program(run.config, 4).trace(*args)
    assert all(np.size(c) < 1000 for c in traced.jaxpr.consts)


# ------------------------------------------------- the identity, step by step

N_X, M = 300, 24  # small and wide: 4 m <= n_x


def small_problem(dims=(N_X, 6, 5, 1), seed=0):
    """params (lecun, float64), X (N_X, M) in [0, 1), Y (1, M), activations."""
    rng = np.random.RandomState(seed)
    X = jnp.asarray(rng.rand(N_X, M))
    Y = jnp.asarray((rng.rand(1, M) > 0.5).astype(np.float64))
    params = init_params(jax.random.key(seed), list(dims), "lecun", jnp.float64)
    return params, X, Y, ("relu", "tanh", "sigmoid")[-(len(dims) - 1) :]


def test_materialize_inverts_to_gram_exactly():
    params, X, _, _ = small_problem()
    train_params, data = to_gram(params, X)
    assert train_params[0]["C"].shape == (6, M) and train_params[0]["s"].shape == ()
    np.testing.assert_array_equal(
        materialize(train_params, data)[0]["W"], params[0]["W"]
    )
    # and a general point: s W0 + C X^T
    moved = [{**train_params[0], "s": jnp.asarray(0.5), "C": jnp.ones((6, M))},
             *train_params[1:]]  # fmt: skip
    expected = 0.5 * params[0]["W"] + jnp.ones((6, M)) @ X.T
    np.testing.assert_allclose(materialize(moved, data)[0]["W"], expected, rtol=1e-14)


@pytest.mark.parametrize("grad", ["manual", "autodiff"])
@pytest.mark.parametrize("dims", [(N_X, 1), (N_X, 6, 5, 1)])
def test_coordinate_gradient_maps_to_the_dense_gradient(grad, dims):
    # At a general point (s, C), the coordinates (g_s, g_C) of the gradient map
    # to the dense dW[1] = g_s W0 + g_C X^T, with L2 and dropout, on all m
    # columns and on a batch of them.
    params, X, Y, activations = small_problem(dims)
    train_params, data = to_gram(params, X)
    C = jnp.asarray(np.random.RandomState(1).randn(dims[1], M) * 0.01)
    train_params = [{**train_params[0], "s": jnp.asarray(0.8), "C": C},
                    *train_params[1:]]  # fmt: skip
    dense = materialize(train_params, data)
    options = dict(grad=grad, activations=activations, lambd=0.3, keep_prob=0.8,
                   dropout_key=jax.random.key(4))  # fmt: skip

    @jax.jit
    def both(index):
        ours = gram_value_and_grads(
            train_params, data._replace(index=index), Y[:, index], **options
        )
        theirs = value_and_grads(dense, X[:, index], Y[:, index], **options)
        return ours, theirs

    for index in (jnp.arange(M), jnp.array([5, 0, 17, 9, 23, 2, 11])):
        (cost, coords), (dense_cost, grads) = both(index)
        np.testing.assert_allclose(cost, dense_cost, rtol=1e-12)
        mapped = materialize(coords, data)
        for ours, theirs in zip(mapped, grads, strict=True):
            np.testing.assert_allclose(ours["W"], theirs["W"], rtol=1e-9, atol=1e-13)
            np.testing.assert_allclose(ours["b"], theirs["b"], rtol=1e-9, atol=1e-13)


# ------------------------------------------- every entry point, callers see W[1]


def test_sweep_gram_equals_dense():
    # Each model keeps its own W[1]_0 and P = W[1]_0 X; G is shared.
    _, X, Y, activations = small_problem()
    keys = jax.random.split(jax.random.key(3), 3)
    stacked = init_stacked_params(keys, [N_X, 6, 5, 1], "lecun", jnp.float64)
    hyper = dict(activations=activations, num_iterations=15, keys=keys,
                 learning_rates=[0.01, 0.05, 0.1], lambds=[0.0, 0.2, 0.5],
                 optimizer="momentum")  # fmt: skip
    gram = sweep(stacked, X, Y, first_layer="gram", **hyper)
    dense = sweep(stacked, X, Y, first_layer="dense", **hyper)
    assert gram.params[0]["W"].shape == (3, 6, N_X)
    assert_same_run((gram.params, gram.costs), (dense.params, dense.costs))
    np.testing.assert_array_equal(gram.train_accuracy, dense.train_accuracy)


def test_train_loop_hands_out_dense_states_and_resumes():
    params, X, Y, activations = small_problem()
    hyper = dict(activations=activations, learning_rate=0.05, keep_prob=0.8,
                 key=jax.random.key(5))  # fmt: skip
    watch = dict(progress=False, print_every=None, first_layer="gram")
    seen = []
    full = train_loop(params, X, Y, num_iterations=30, **watch, **hyper,
                      on_chunk=lambda state, done: seen.append(state))  # fmt: skip
    assert seen and all(state.params[0]["W"].shape == (6, N_X) for state in seen)
    dense = fit(params, X, Y, num_iterations=30, first_layer="dense", **hyper)
    assert_same_run((full.params, full.costs), dense)
    # Resume a gram run from a dense state it handed out (gd: no moments).
    half = train_loop(params, X, Y, num_iterations=12, **watch, **hyper)
    rest = train_loop(params, X, Y, num_iterations=30, **watch, **hyper,
                      resume_from=(half.state, 12, half.costs))  # fmt: skip
    assert_same_run((rest.params, rest.costs), (full.params, full.costs))


def test_a_momentum_state_resumes_dense_under_auto_and_refuses_gram():
    params, X, Y, activations = small_problem()
    hyper = dict(activations=activations, learning_rate=0.05, optimizer="momentum",
                 progress=False, print_every=None)  # fmt: skip
    full = train_loop(params, X, Y, num_iterations=20, first_layer="gram", **hyper)
    half = train_loop(params, X, Y, num_iterations=10, first_layer="gram", **hyper)
    start = (half.state, 10, half.costs)
    rest = train_loop(params, X, Y, num_iterations=20, resume_from=start, **hyper)
    assert_same_run((rest.params, rest.costs), (full.params, full.costs))
    with pytest.raises(ValueError, match="momentum whose W\\[1\\] lies outside"):
        train_loop(params, X, Y, num_iterations=20, resume_from=start,
                   first_layer="gram", **hyper)  # fmt: skip


def test_divergence_rolls_back_to_the_same_parameters():
    # A linear output with too large a step (alpha = 0.03 > 2 / 75, 75 being the
    # largest eigenvalue of X X^T / m): J passes 100 x max(J_0, 1) = 100 at
    # iteration 13 (J = 101.4), inside a later chunk, so the driver replays that
    # chunk up to the last good iteration, in coordinates. (J_0 is the run's
    # first cost, not the chunk's: the limit does not move with the chunks.)
    params, X, Y, _ = small_problem(dims=(N_X, 1))
    Y = X[:3].sum(axis=0, keepdims=True)
    hyper = dict(activations=("linear",), num_iterations=40, learning_rate=0.03,
                 progress=False, print_every=None, print_fn=[].append)  # fmt: skip
    gram = train_loop(params, X, Y, first_layer="gram", **hyper)
    dense = train_loop(params, X, Y, first_layer="dense", **hyper)
    assert gram.stop_reason == dense.stop_reason == "diverged"
    assert gram.iterations_done == dense.iterations_done == 12
    assert_same_run((gram.params, gram.costs), (dense.params, dense.costs))


def test_fit_until_gram_equals_dense():
    params, X, Y, activations = small_problem()
    hyper = dict(activations=activations, epsilon=0.3, max_iterations=400,
                 learning_rate=0.1)  # fmt: skip
    gram = fit_until(params, X, Y, first_layer="gram", **hyper)
    dense = fit_until(params, X, Y, first_layer="dense", **hyper)
    assert gram.reason == dense.reason == "epsilon"
    assert gram.iterations == dense.iterations
    assert max_relative(gram.params, dense.params) < EXACT
