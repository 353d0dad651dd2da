"""Hyperparameters: one home, checked once on the host, never recompiled for.

Every entry point (fit, fit_until, train_loop, sweep) crosses jaxnet.boundary,
so each bad value is tried against all of them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet
from jaxnet import driver
from jaxnet.hyperparams import TrainConfig, check_count, check_number, make_hyperparams
from jaxnet.optimizers import build_optimizer
from jaxnet.params import init_params

ACTS = ("relu", "sigmoid")


def _problem(dtype=jnp.float64, m=8):
    params = init_params(jax.random.key(0), [3, 4, 1], "he", dtype)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, m))
    Y = (rng.uniform(size=(1, m)) > 0.5).astype(np.float64)
    return params, X, Y


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("learning_rate", 0.0, "learning_rate must be a finite number > 0"),
        ("learning_rate", -0.1, "learning_rate must be a finite number > 0"),
        ("learning_rate", float("nan"), "learning_rate must be a finite number > 0"),
        ("learning_rate", float("inf"), "learning_rate must be a finite number > 0"),
        ("learning_rate", np.float32(-1), "learning_rate must be"),
        ("learning_rate", True, "learning_rate must be a number"),
        ("learning_rate", "0.1", "learning_rate must be a number"),
        ("lambd", -1.0, "lambd must be a finite number >= 0"),
        ("lambd", float("nan"), "lambd must be a finite number >= 0"),
        ("lambd", jnp.float32(-2), "lambd must be a finite number >= 0"),
        ("keep_prob", np.float32(0), r"keep_prob must be in \(0, 1\]"),
        ("keep_prob", jnp.asarray(1.5), r"keep_prob must be in \(0, 1\]"),
        ("keep_prob", -0.5, r"keep_prob must be in \(0, 1\]"),
    ],
)
def test_bad_numbers_are_refused_by_every_entry_point(name, value, words):
    params, X, Y = _problem()
    plural = {
        "learning_rate": "learning_rates",
        "lambd": "lambds",
        "keep_prob": "keep_probs",
    }
    calls = [
        lambda: jaxnet.fit(
            params, X, Y, activations=ACTS, num_iterations=2, **{name: value}
        ),
        lambda: jaxnet.train_loop(
            params,
            X,
            Y,
            activations=ACTS,
            num_iterations=2,
            progress=False,
            **{name: value},
        ),
        lambda: jaxnet.fit_until(
            params,
            X,
            Y,
            activations=ACTS,
            epsilon=0.1,
            max_iterations=2,
            **{name: value},
        ),
        lambda: jaxnet.sweep(
            params,
            X,
            Y,
            activations=ACTS,
            num_iterations=2,
            num_models=2,
            **{plural[name]: value},
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=words):
            call()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (3, True),
        (np.int64(4), True),
        (np.int32(2), True),
        (jnp.asarray(2), True),
        (2.5, False),
        (3.0, False),
        (True, False),
        (-3, False),
        (0, False),
        ("4", False),
    ],
)
def test_counts_accept_numpy_ints_and_refuse_the_rest(value, ok):
    params, X, Y = _problem()
    calls = [
        lambda: jaxnet.fit(params, X, Y, activations=ACTS, num_iterations=value),
        lambda: jaxnet.fit(
            params, X, Y, activations=ACTS, num_iterations=2, batch_size=value
        ),
        lambda: jaxnet.train_loop(
            params,
            X,
            Y,
            activations=ACTS,
            num_iterations=2,
            print_every=value,
            progress=False,
        ),
        lambda: jaxnet.sweep(
            params, X, Y, activations=ACTS, num_iterations=value, num_models=2
        ),
    ]
    if isinstance(value, int) and value == 0:
        del calls[2]  # print_every=0 means "never print", as documented
    for call in calls:
        if ok:
            call()
        else:
            with pytest.raises(ValueError, match="must be a positive integer"):
                call()


def test_check_number_and_count_directly():
    assert float(check_number("learning_rate", np.float32(0.5))) == 0.5
    assert float(check_number("keep_prob", jnp.asarray(1.0))) == 1.0
    assert check_count("num_iterations", np.int64(7)) == 7
    with pytest.raises(ValueError, match="shape"):
        check_number("learning_rate", [0.1, 0.2])
    hp = make_hyperparams([0.1, 0.2], 0.0, [1.0, 0.5], num_models=2, dtype=jnp.float32)
    assert hp.learning_rate.shape == hp.lambd.shape == (2,)
    assert hp.keep_prob.dtype == jnp.float32
    with pytest.raises(ValueError, match="3 values but the sweep has 2"):
        make_hyperparams([0.1, 0.2, 0.3], num_models=2)


def test_optimizer_given_wrongly_is_a_clear_error():
    params, X, Y = _problem()
    with pytest.raises(ValueError, match=r"call it, e.g. optax.adam\(learning_rate\)"):
        jaxnet.fit(
            params, X, Y, activations=ACTS, num_iterations=1, optimizer=optax.adam
        )
    with pytest.raises(ValueError, match="unknown optimizer 'Adam'"):
        jaxnet.fit(params, X, Y, activations=ACTS, num_iterations=1, optimizer="Adam")
    # A name is fine: it is the lecture's rule at this learning rate.
    by_name, _ = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=3, optimizer="adam",
        learning_rate=0.01,
    )  # fmt: skip
    by_object, _ = jaxnet.fit(
        params, X, Y, activations=ACTS, num_iterations=3,
        optimizer=optax.adam(0.01),
    )  # fmt: skip
    for a, b in zip(jax.tree.leaves(by_name), jax.tree.leaves(by_object), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_activations_as_a_string_is_a_clear_error():
    params, X, Y = _problem()
    with pytest.raises(ValueError, match="sequence of names, one per layer"):
        jaxnet.fit(params, X, Y, activations="relu", num_iterations=1)


def test_config_is_hashable_and_equal_for_equal_choices():
    update = build_optimizer("gd", 0.1).update
    a = TrainConfig(ACTS, update, "manual", None, False, False)
    b = TrainConfig(
        ACTS, build_optimizer("gd", 0.5).update, "manual", None, False, False
    )
    assert a == b and hash(a) == hash(b)
    with pytest.raises(ValueError, match="grad must be one of"):
        TrainConfig(ACTS, update, "numeric")


class _TraceCounter:
    """Counts the driver's compilations (its cache of compiled chunk programs)."""

    def __init__(self, monkeypatch):
        self.cache = {}
        monkeypatch.setattr(driver, "_COMPILED", self.cache)

    @property
    def count(self) -> int:  # chunk programs (the final cost's is keyed "cost")
        return sum(key[0] != "cost" for key in self.cache)


def test_new_hyperparameter_values_reuse_the_compiled_program(monkeypatch):
    params, X, Y = _problem(m=9)
    traces = _TraceCounter(monkeypatch)
    common = dict(activations=ACTS, num_iterations=7, lambd=0.1, keep_prob=0.9)
    for lr in (0.1, 0.01, 0.001):
        jaxnet.fit(params, X, Y, learning_rate=lr, **common)
    for lr in (np.float32(0.2), 0.02):
        jaxnet.fit(params, X, Y, optimizer=build_optimizer("adam", lr), **common)
    for lambd, keep_prob in ((0.3, 0.5), (1.0, 0.7)):
        jaxnet.fit(params, X, Y, **{**common, "lambd": lambd, "keep_prob": keep_prob})
    # One program for gd (all lr, lambd, keep_prob values), one for adam.
    assert traces.count == 2
    before = traces.count
    for _ in range(2):
        jaxnet.train_loop(
            params, X, Y, learning_rate=0.05, print_every=None, progress=False,
            **common,
        )  # fmt: skip
    # train_loop compiles one program, whatever its chunk lengths.
    after_first = traces.count
    jaxnet.train_loop(
        params, X, Y, learning_rate=0.07, print_every=None, progress=False, **common
    )  # fmt: skip
    assert traces.count == after_first and after_first - before == 1
