"""Training-health readings (jaxnet.health) against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import health
from jaxnet.deep import model_forward, model_value_and_grads
from jaxnet.health import NOT_APPLICABLE, Health, hints, layer_health
from jaxnet.params import init_params

NA = NOT_APPLICABLE


def test_dead_fraction_counts_units_zero_on_every_example_exact_zeros_included():
    # unit 0: all < 0; unit 1: one positive; unit 2: exact zeros (relu(0) = 0)
    Z = jnp.array([[-1.0, -0.5, -2.0], [1.0, -1.0, 0.0], [0.0, -0.0, 0.0]])
    assert float(health.dead_fraction(Z)) == 2 / 3


def test_saturated_fraction_uses_one_percent_of_the_largest_slope():
    # sigmoid'(7) = 9.1e-4 < 0.0025 <= sigmoid'(5.9) = 2.7e-3; sigmoid'(0) = 0.25
    Z = jnp.array([[0.0, 7.0, -7.0, 5.9]])
    assert float(health.saturated_fraction(Z, "sigmoid")) == 0.5
    # tanh'(3.1) = 8.1e-3 < 0.01 <= tanh'(2.9) = 1.2e-2
    Z = jnp.array([[0.0, 3.1], [-3.1, 2.9]])
    assert float(health.saturated_fraction(Z, "tanh")) == 0.5


def _net():
    """[2, 3, 1], relu then sigmoid, with hand-picked weights; X (2, 2)."""
    params = [
        {
            "W": jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
            "b": jnp.zeros((3, 1)),
        },
        {"W": jnp.zeros((1, 3)), "b": jnp.zeros((1, 1))},
    ]
    X = jnp.array([[1.0, 2.0], [1.0, 0.0]])
    return params, X


def test_layer_health_by_hand():
    params, X = _net()
    _, caches = model_forward(params, X, ("relu", "sigmoid"))
    # Z[1] rows: [1, 2], [1, 0], [-2, -2]: one unit of three is dead.
    grads = [
        {"W": jnp.array([[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]), "b": jnp.zeros((3, 1))},
        {"W": jnp.array([[0.0, 0.0, 12.0]]), "b": jnp.zeros((1, 1))},
    ]
    h = layer_health(params, grads, caches, ("relu", "sigmoid"), learning_rate=0.1)
    np.testing.assert_array_equal(h.dead, [1 / 3, NA])
    np.testing.assert_array_equal(h.saturated, [NA, NA])  # relu; output layer
    np.testing.assert_allclose(h.grad_norm, [5.0, 12.0], rtol=1e-12)
    np.testing.assert_allclose(h.weight_norm, [2.0, 0.0], rtol=1e-12)
    # ||0.1 dW[1]|| / ||W[1]|| = 0.5 / 2; W[2] = 0: undefined, not inf or NaN
    np.testing.assert_allclose(h.update_ratio, [0.25, NA], rtol=1e-12)
    np.testing.assert_array_equal(h.symmetric, [False, False])  # 1 unit: never


def test_update_ratio_from_the_optimizers_updates():
    params, X = _net()
    _, caches = model_forward(params, X, ("relu", "sigmoid"))
    grads = jax.tree.map(jnp.ones_like, params)
    updates = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)  # 6 x 0.25
    h = layer_health(params, grads, caches, ("relu", "sigmoid"), updates=updates)
    np.testing.assert_allclose(h.update_ratio[0], np.sqrt(1.5) / 2.0, rtol=1e-12)
    with pytest.raises(ValueError, match="exactly one of learning_rate and updates"):
        layer_health(params, grads, caches, ("relu", "sigmoid"))


@pytest.mark.parametrize(
    "W, b, expected",
    [
        (np.zeros((3, 2)), np.zeros((3, 1)), True),  # W initialized to 0
        (np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([[0.5], [0.5]]), True),
        (np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([[0.5], [0.6]]), False),
        (np.array([[1.0, 2.0], [1.0, 2.01]]), np.zeros((2, 1)), False),
        (np.array([[1.0, 2.0]]), np.zeros((1, 1)), False),  # one unit
    ],
)
def test_symmetric_means_every_row_of_W_and_b_equal(W, b, expected):
    spread, top = health.row_stats(W, b)
    assert bool(health.rows_equal(spread, top, W.shape[0])) is expected


def test_zero_weights_give_no_nan_and_a_symmetric_hint(key):
    # W = 0 everywhere: gradients below the output are exactly 0.
    params = init_params(key, [4, 3, 3, 1], method="zeros", dtype=jnp.float32)
    X = jax.random.normal(key, (4, 5), jnp.float32)
    Y = (X[:1] > 0).astype(jnp.float32)
    acts = ("tanh", "tanh", "sigmoid")

    @jax.jit
    def reading(params):
        _, grads = model_value_and_grads(params, X, Y, acts)
        _, caches = model_forward(params, X, acts)
        return layer_health(params, grads, caches, acts, learning_rate=0.5)

    h = reading(params)
    for name, value in h._asdict().items():
        assert np.all(np.isfinite(np.asarray(value, float))), name
    np.testing.assert_array_equal(h.grad_norm[:2], [0.0, 0.0])  # exact zeros
    np.testing.assert_array_equal(h.symmetric, [True, True, False])
    np.testing.assert_array_equal(h.saturated[:2], [0.0, 0.0])  # tanh'(0) = 1
    said = hints(h, acts)
    assert len(said) == 1 and said[0].startswith("symmetric hidden units in layer(s)")
    assert "[1], [2]" in said[0] and "initialized to 0" in said[0]


def test_vmap_gives_the_single_model_readings(key):
    acts = ("relu", "sigmoid")
    X = jax.random.normal(key, (3, 6))
    Y = (X[:1] > 0).astype(X.dtype)
    k1, k2 = jax.random.split(key)
    stacked = [
        {"W": jax.random.normal(k1, (3, 4, 3)), "b": jnp.zeros((3, 4, 1))},
        {"W": jax.random.normal(k2, (3, 1, 4)), "b": jnp.zeros((3, 1, 1))},
    ]

    def reading(params):
        _, grads = model_value_and_grads(params, X, Y, acts)
        _, caches = model_forward(params, X, acts)
        return layer_health(params, grads, caches, acts, learning_rate=0.1)

    batched = jax.jit(jax.vmap(reading))(stacked)
    single = jax.jit(reading)
    for i in range(3):
        one = single(jax.tree.map(lambda x, i=i: x[i], stacked))
        for got, want in zip(batched, one, strict=True):
            # float64, the same operations batched: rtol 1e-12 covers reordering.
            np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=0)


def _readings(**fields) -> Health:
    """A healthy [.., .., 1] three-layer reading with ``fields`` overriding."""
    base = dict(
        dead=[0.1, 0.0, NA],
        saturated=[NA, NA, NA],
        grad_norm=[0.1, 0.2, 0.3],
        weight_norm=[1.0, 1.0, 1.0],
        update_ratio=[1e-3, 1e-3, 1e-3],
        symmetric=[False, False, False],
    )
    base.update(fields)
    return Health(*(np.array(base[f]) for f in Health._fields))


ACTS = ("relu", "relu", "sigmoid")


def test_healthy_readings_give_no_hint():
    assert hints(_readings(), ACTS) == []


def test_every_unit_dead_hint_names_the_layer():
    (said,) = hints(_readings(dead=[0.5, 1.0, NA]), ACTS)
    assert said.startswith("every unit is dead in layer(s) [2]")


def test_vanishing_hint_names_the_sigmoid_stack():
    r = _readings(grad_norm=[1e-6, 1e-3, 0.3], saturated=[0.8, 0.2, NA])
    (said,) = hints(r, ("sigmoid", "sigmoid", "sigmoid"))
    assert said.startswith("vanishing gradients") and "[1], [2]" in said
    assert "80 % of the activations are saturated" in said
    r = _readings(grad_norm=[1e-6, 1e-3, 0.3], saturated=[0.0, 0.0, NA])
    (said,) = hints(r, ("sigmoid", "sigmoid", "sigmoid"))
    assert "no unit is saturated: the small W[l] shrink it" in said
    # a ratio above VANISHING is not vanishing
    assert hints(_readings(grad_norm=[1e-3, 0.5, 1.0]), ACTS) == []


def test_large_update_hint_skips_the_first_point_and_says_from_when():
    first = _readings(update_ratio=[5.0, 1e-3, 1e-3])
    later = _readings(update_ratio=[1e-3, 1e-3, 3.0])
    stacked = Health(*(np.stack(pair) for pair in zip(first, later, strict=True)))
    (said,) = hints(stacked, ACTS, iterations=[0, 100])
    assert said.startswith("updates too large in layer(s) [3] at 1 of 2")
    assert "from iteration 100" in said and "3 times" in said


# --- recorded inside the compiled run (jaxnet.driver) ---------------------
# Runs go through prepare + drive without X (no final-cost program to compile).

ACTS3 = ("relu", "tanh", "sigmoid")


def _data(key, dtype=jnp.float64):
    X = jax.random.normal(key, (6, 24), dtype)
    return X, (X[:1] + X[1:2] > 0).astype(dtype)


def _run(params, X, Y, acts, n, health_every=None, **options):
    from jaxnet.boundary import prepare
    from jaxnet.driver import drive

    options.setdefault("learning_rate", 0.1)
    run = prepare(params, X, Y, activations=acts, **options)
    vmapped = options.get("num_models") is not None
    return drive(
        run.config, run.state, run.hp, run.data, run.Y, num_iterations=n,
        health_every=health_every, vmapped=vmapped,
    )  # fmt: skip


def _leaves_equal(a, b) -> bool:
    def raw(x):  # typed PRNG keys compare through their data
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return all(
        np.array_equal(raw(x), raw(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("batch_size", [None, 10])
def test_recording_changes_no_number_and_reads_the_printed_points(key, batch_size):
    X, Y = _data(key, jnp.float32)  # the float32 path users get
    params = init_params(key, [6, 5, 4, 1], method="he", dtype=jnp.float32)
    kw = dict(batch_size=batch_size, lambd=0.3)
    plain = _run(params, X, Y, ACTS3, 13, first_layer="dense", **kw)
    # Chunks of 1, 4, 8 steps (sized by time; 3 steps an epoch with batches
    # of 10): points fall inside later chunks, and minibatch chunks end
    # inside epochs.
    watched = _run(params, X, Y, ACTS3, 13, 5, first_layer="dense", **kw)
    assert plain.health is None
    np.testing.assert_array_equal(watched.costs, plain.costs)  # bit for bit
    assert _leaves_equal(watched.state, plain.state)
    np.testing.assert_array_equal(watched.health_iterations, [0, 5, 10, 12])
    assert watched.health.grad_norm.shape == (4, 3)
    if batch_size is not None:
        return
    # point 0: the start params, their gradient (with L2), alpha dW
    _, grads = model_value_and_grads(params, X, Y, ACTS3, lambd=0.3)
    _, caches = model_forward(params, X, ACTS3)
    want = layer_health(params, grads, caches, ACTS3, learning_rate=0.1)
    for got, expected in zip(watched.health, want, strict=True):
        # float32, the same formulas compiled in another program: 1e-5
        np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-7)
    # The wide path (W[1] in coordinates, norms from G = X^T X) reads the same.
    gram = _run(params, X, Y, ACTS3, 13, 5, first_layer="gram", **kw)
    for got, expected in zip(gram.health, watched.health, strict=True):
        # float32: two trajectories equal to rounding (~1e-6 after 13 steps),
        # and G-based norms round to ~1e-7 of their terms: 1e-4 covers both.
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_zero_init_run_records_symmetric_units_and_the_hint_says_so(key):
    X, Y = _data(key)
    params = init_params(key, [6, 4, 1], method="zeros", dtype=jnp.float64)
    result = _run(params, X, Y, ("tanh", "sigmoid"), 5, 2, learning_rate=0.5)
    np.testing.assert_array_equal(result.health.symmetric[:, 0], [True] * 3)
    np.testing.assert_array_equal(result.health.update_ratio[0], [NA, NA])  # W = 0
    (said,) = hints(result.health, ("tanh", "sigmoid"), result.health_iterations)
    assert said.startswith("symmetric hidden units in layer(s) [1] at 3 of 3")


def test_a_diverged_run_keeps_only_the_points_of_its_kept_iterations(key):
    X, Y = _data(key)
    params = init_params(key, [6, 8, 1], method="he", dtype=jnp.float64)
    acts = ("relu", "sigmoid")
    result = _run(params, X * 100, Y, acts, 60, health_every=1, learning_rate=50.0)
    assert result.diverged
    np.testing.assert_array_equal(
        result.health_iterations, np.arange(result.iterations_done)
    )


def test_a_sweep_records_each_models_readings(key):
    X, Y = _data(key)
    he = init_params(key, [6, 3, 1], method="he", dtype=jnp.float64)
    zeros = jax.tree.map(jnp.zeros_like, he)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), zeros, he)
    acts = ("relu", "sigmoid")
    result = _run(stacked, X, Y, acts, 4, health_every=3, num_models=2, stacked=True)
    np.testing.assert_array_equal(result.health_iterations, [0, 3])
    np.testing.assert_array_equal(result.health.symmetric[:, :, 0], [[1, 1], [0, 0]])
    # W = 0: every relu unit has Z = 0, dead; the He model's are alive
    np.testing.assert_array_equal(result.health.dead[:, 0, 0], [1.0, 0.0])


def test_health_plot_says_zero_where_a_log_panel_has_only_zeros():
    """W = 0 gives ||dW|| = 0 at every point: the panel says so, not "not
    applicable" (which is for readings that apply to no layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.health_plot import _layer_lines

    fig, ax = plt.subplots()
    its = np.array([0, 10])
    zeros = np.array([[0.0, 0.0], [0.0, 0.0]], dtype=object)
    nones = np.array([[None, None], [None, None]], dtype=object)
    some = np.array([[0.5, None], [0.25, None]], dtype=object)
    assert _layer_lines(ax, its, zeros, log=True) == "zero"
    assert _layer_lines(ax, its, nones, log=True) == "none"
    assert _layer_lines(ax, its, some, log=True) == "drawn"
    plt.close(fig)
