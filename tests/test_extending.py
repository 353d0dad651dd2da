"""register_activation / register_output: one call, checked, usable everywhere.

Also runs the recipe in docs/extending.md (its python blocks, in order), so the
page cannot rot.
"""

import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet
from jaxnet import extend
from jaxnet.activations import ACTIVATIONS
from jaxnet.checkpoint import load_checkpoint, save_checkpoint
from jaxnet.outputs import OUTPUTS
from jaxnet.validation import InputError
from tests.helpers import assert_trees_close

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
C, K = 0.7978845608028654, 0.044715


@pytest.fixture(autouse=True)
def tables():
    """Restore ACTIVATIONS and OUTPUTS after each test (registrations are global)."""
    saved = dict(ACTIVATIONS), dict(OUTPUTS)
    yield
    for table, old in zip((ACTIVATIONS, OUTPUTS), saved, strict=True):
        table.clear()
        table.update(old)
    extend._forget_programs()


def gelu(z):
    return 0.5 * z * (1 + jnp.tanh(C * (z + K * z**3)))


def gelu_derivative(z):
    t = jnp.tanh(C * (z + K * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * C * (1 + 3 * K * z * z)


def swish(z):
    return z * jax.nn.sigmoid(z)


def swish_derivative(z):
    s = jax.nn.sigmoid(z)
    return s + z * s * (1 - s)


def poisson_cost(Z, Y):
    return jnp.sum(jnp.exp(Z) - Y * Z) / Z.shape[1]


def counts(Y):
    if ((Y < 0) | (np.round(Y) != Y)).any():
        raise InputError("poisson targets must be counts")


def register_poisson(name="poisson", **changes):
    row = dict(
        forward=jnp.exp,
        cost=poisson_cost,
        dZ=lambda Z, A, Y: A - Y,
        predict=lambda A: A,
        label_check=counts,
    )
    jaxnet.register_output(name, **{**row, **changes})


def test_doc_recipe_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5  # activation, refusal, output, optax, checkpoint, trainer
    namespace: dict = {"__name__": "extending_doc"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert "gelu" in ACTIVATIONS and "poisson" in OUTPUTS
    assert "disagrees with jax.grad" in capsys.readouterr().out


@pytest.mark.parametrize(
    "forward, derivative",
    [(gelu, gelu_derivative), (swish, swish_derivative)],
)
def test_registered_activation_matches_autodiff_in_a_network(key, forward, derivative):
    jaxnet.register_activation("mine", forward, derivative)
    params = jaxnet.init_params(key, [4, 5, 3, 1], dtype=jnp.float64)
    X = jax.random.normal(jax.random.key(1), (4, 7), jnp.float64)
    Y = (X[:1] > 0).astype(jnp.float64)
    acts = ["mine", "mine", "sigmoid"]
    cost, grads = jaxnet.model_value_and_grads(params, X, Y, acts)
    expected = jax.grad(jaxnet.model_cost)(params, X, Y, acts)
    assert_trees_close(grads, expected, rtol=1e-10, atol=1e-12)  # float64


@pytest.mark.parametrize(
    "derivative, where",
    [
        (lambda z: 0.5 * gelu_derivative(z), "z = "),  # a missing factor
        (lambda z: gelu_derivative(z) + 1e-5, "z = "),  # off by 1e-5 everywhere
        (lambda z: jnp.where(z < 0, 0.0, gelu_derivative(z)), "z = -"),  # z < 0
        (lambda z: 0.5 * (1 + jnp.tanh(C * z)), "z = "),  # no chain rule
    ],
)
def test_wrong_derivative_is_refused_with_the_measured_error(derivative, where):
    with pytest.raises(InputError, match="disagrees with jax.grad") as caught:
        jaxnet.register_activation("bad", gelu, derivative)
    message = str(caught.value)
    assert where in message and re.search(r"by \d", message)
    assert "bad" not in ACTIVATIONS


def test_activation_name_and_callables_are_checked():
    jaxnet.register_activation("gelu", gelu, gelu_derivative)
    with pytest.raises(InputError, match="already registered.*replace=True"):
        jaxnet.register_activation("gelu", gelu, gelu_derivative)
    jaxnet.register_activation("gelu", swish, swish_derivative, replace=True)
    assert ACTIVATIONS["gelu"].forward is swish
    with pytest.raises(InputError, match="built-in"):
        jaxnet.register_activation("relu", gelu, gelu_derivative, replace=True)
    with pytest.raises(InputError, match="derivative must be a function"):
        jaxnet.register_activation("g2", gelu, 3.0)
    with pytest.raises(InputError, match="identifier"):
        jaxnet.register_activation("", gelu, gelu_derivative)


def test_activation_that_promotes_float32_is_refused():
    # Under jax_enable_x64 (on in the tests) a numpy float64 constant promotes.
    with pytest.raises(InputError, match="keep its input's shape and dtype"):
        jaxnet.register_activation(
            "promoting", lambda z: z * np.float64(1.0), lambda z: jnp.ones_like(z)
        )


def test_replacing_a_row_does_not_reuse_compiled_programs(key):
    params = jaxnet.init_params(key, [2, 3, 1], dtype=jnp.float64)
    X = jax.random.normal(key, (2, 6), jnp.float64)
    Y = (X[:1] > 0).astype(jnp.float64)
    options = dict(activations=["mine", "sigmoid"], num_iterations=3)
    jaxnet.register_activation("mine", gelu, gelu_derivative)
    _, first = jaxnet.fit(params, X, Y, **options)
    jaxnet.register_activation("mine", swish, swish_derivative, replace=True)
    _, second = jaxnet.fit(params, X, Y, **options)
    ACTIVATIONS.pop("mine")
    jaxnet.register_activation("swish", swish, swish_derivative)
    _, expected = jaxnet.fit(
        params, X, Y, **{**options, "activations": ["swish", "sigmoid"]}
    )
    np.testing.assert_array_equal(second, expected)
    assert not np.array_equal(first, second)


def test_registered_rows_work_in_every_entry_point(key):
    jaxnet.register_activation("gelu", gelu, gelu_derivative)
    register_poisson()
    acts = ["gelu", "poisson"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8))  # wide: 4 m <= n_x, so "auto" may use gram
    Y = rng.poisson(np.exp(0.3 * X[:1])).astype(np.float64)
    params = jaxnet.init_params(key, [40, 5, 1], dtype=jnp.float64)
    options = dict(activations=acts, num_iterations=20, learning_rate=0.01)
    dense, dense_costs = jaxnet.fit(params, X, Y, first_layer="dense", **options)
    gram, gram_costs = jaxnet.fit(params, X, Y, first_layer="gram", **options)
    # The gram form is exact arithmetic in other coordinates: equal to rounding.
    assert_trees_close(gram, dense, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gram_costs, dense_costs, rtol=1e-12)
    swept = jaxnet.sweep(
        params,
        X,
        Y,
        learning_rates=[0.01, 0.02],
        **{k: v for k, v in options.items() if k != "learning_rate"},
    )
    np.testing.assert_allclose(swept.costs[0], dense_costs, rtol=1e-12)
    loop = jaxnet.train_loop(params, X, Y, print_every=0, progress=False, **options)
    np.testing.assert_allclose(loop.costs, dense_costs, rtol=1e-12)
    until = jaxnet.fit_until(
        params,
        X,
        Y,
        activations=acts,
        epsilon=0.0,
        max_iterations=20,
        learning_rate=0.01,
    )
    assert int(until.iterations) == 20
    run = jaxnet.trainer(acts, 20, learning_rate=0.01)
    np.testing.assert_allclose(run(params, X, Y)[1], dense_costs, rtol=1e-12)
    # The row's label check guards every entry point.
    with pytest.raises(InputError, match="poisson targets must be counts"):
        jaxnet.fit(params, X, Y + 0.5, **options)


def test_wrong_dZ_is_refused_and_right_one_accepted():
    with pytest.raises(InputError, match=r"dZ disagrees with m \* jax.grad"):
        register_poisson("bad", dZ=lambda Z, A, Y: (A - Y) / Z.shape[1])  # extra 1/m
    with pytest.raises(InputError, match="dZ disagrees"):
        register_poisson("bad", dZ=lambda Z, A, Y: Y - A)  # sign
    with pytest.raises(InputError, match="scalar"):
        register_poisson("bad", cost=lambda Z, Y: jnp.exp(Z) - Y * Z)
    with pytest.raises(InputError, match="refused every candidate.*test_labels"):
        register_poisson(
            "bad", label_check=lambda Y: (_ for _ in ()).throw(InputError("never"))
        )
    assert "bad" not in OUTPUTS
    register_poisson(test_labels=np.array([[0.0, 1.0, 2.0, 3.0, 7.0]]))
    assert OUTPUTS["poisson"].label_check is counts


def test_custom_classifier_output_min_units_and_accuracy(key):
    # A hinge output: labels 0/1 as t = 2y - 1, J = (1/m) sum max(0, 1 - t z).
    def hinge_cost(Z, Y):
        return jnp.sum(jax.nn.relu(1 - (2 * Y - 1) * Z)) / Z.shape[1]

    def hinge_dZ(Z, A, Y):
        t = 2 * Y - 1
        return jnp.where(1 - t * Z > 0, -t, 0.0)

    jaxnet.register_output(
        "hinge", forward=lambda Z: Z, cost=hinge_cost, dZ=hinge_dZ,
        predict=lambda A: (A > 0).astype(jnp.int32),
        label_check=jaxnet.validation.binary_labels, classifier=True, min_units=1,
    )  # fmt: skip
    X = jax.random.normal(key, (2, 50), jnp.float64)
    Y = (X[:1] + X[1:] > 0).astype(jnp.float64)
    params = jaxnet.init_params(key, [2, 4, 1], dtype=jnp.float64)
    params, costs = jaxnet.fit(
        params, X, Y, activations=["relu", "hinge"], num_iterations=200,
        learning_rate=0.1,
    )  # fmt: skip
    assert costs[-1] < 0.5 * costs[0]
    assert float(jaxnet.accuracy(params, X, Y, ["relu", "hinge"])) > 0.8
    with pytest.raises(InputError, match="0 or 1"):
        jaxnet.fit(params, X, 2 * Y, activations=["relu", "hinge"], num_iterations=1)


def test_validation_and_checkpoints_read_the_one_table(tmp_path, key):
    register_poisson("counts2")
    assert not hasattr(jaxnet.validation, "LABEL_CHECKS")
    params = jaxnet.init_params(key, [2, 3, 1])
    path = save_checkpoint(
        tmp_path / "c.npz",
        params,
        layer_dims=[2, 3, 1],
        activations=["relu", "counts2"],
    )
    assert load_checkpoint(path)[1]["activations"] == ["relu", "counts2"]


def test_checkpoint_with_unregistered_activation_says_how_to_register(tmp_path, key):
    jaxnet.register_activation("gelu", gelu, gelu_derivative)
    params = jaxnet.init_params(key, [2, 3, 1])
    path = save_checkpoint(
        tmp_path / "g.npz",
        params,
        layer_dims=[2, 3, 1],
        activations=["gelu", "sigmoid"],
    )
    # A fresh process, as a user loading it later: gelu is not registered there.
    code = (
        "import sys\nfrom jaxnet.checkpoint import load_checkpoint\n"
        "try:\n    load_checkpoint(sys.argv[1])\n"
        "except ValueError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert "unknown activation 'gelu' for layer 1" in out
    assert "jaxnet.register_activation(name, forward, derivative)" in out


def test_experiments_hidden_choices_include_a_registered_activation():
    from experiments import cli

    jaxnet.register_activation("gelu", gelu, gelu_derivative)
    parser = cli.build_parser("prog", None, hidden="relu")
    assert parser.parse_args(["--hidden", "gelu"]).hidden == "gelu"
    ACTIVATIONS.pop("gelu")
    with pytest.raises(SystemExit):
        parser.parse_args(["--hidden", "gelu"])


def test_experiment_trains_with_a_registered_hidden_activation(autompg_root, tmp_path):
    import json

    from experiments import regression

    jaxnet.register_activation("swish", swish, swish_derivative)
    out = tmp_path / "run"
    regression.main(
        [
            "--data", str(autompg_root), "--out", str(out), "--hidden", "swish",
            "--iterations", "3", "--num-seeds", "1", "--no-progress", "--no-plots",
        ]
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["models"]["network"]["activations"] == ["swish", "swish", "linear"]
