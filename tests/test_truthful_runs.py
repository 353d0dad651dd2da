"""Runs that tell the truth (issue 19): what a run reports is what it returns.

- The final cost is J of the returned and saved parameters (diverged runs too).
- A model's numbers do not depend on the other models run beside it.
- A diverged run exits with status 3; a collapsed network gets a hint.
- ``--predict --model`` uses that model; ``--help`` shows real defaults once.
- The progress bar is on stderr, off when stderr is not a terminal unless
  --progress, and reaches its end; metrics.json holds the whole cost curve.

The cat runs are short (20 or 300 iterations) on the real data.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from experiments import cat_classifier, records
from jaxnet.checkpoint import load_checkpoint
from jaxnet.data import load_catvnoncat
from jaxnet.deep import model_cost
from jaxnet.runner import train_loop
from jaxnet.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = (
    "activations", "cat_classifier", "digits", "learning_rates", "regression",
    "regularization", "search", "vectorization",
)  # fmt: skip
# alpha = 0.5: logistic regression diverges at iteration 2 (J = 134.5 > 100 x J_0)
# and keeps its parameters after 1 iteration; the networks train on.
HOT = ["--iterations", "20", "--learning-rate", "0.5", "--print-every", "0"]
QUIET = ["--no-plots", "--no-progress"]


@pytest.fixture(scope="module")
def hot_run(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cat") / "runs" / "cat_classifier-all"
    return out, cat_classifier.main([*HOT, *QUIET, "--out", str(out)])


def saved_cost(path: Path, data) -> float:
    """J of a checkpoint's params on the training set, as the run computes it."""
    params, info = load_checkpoint(path)
    dtype = params[0]["W"].dtype
    params = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in params]
    X, Y = jnp.asarray(data.X_train, dtype), jnp.asarray(data.Y_train, dtype)
    return float(model_cost(params, X, Y, info["activations"]))


def test_final_cost_is_the_cost_of_the_saved_params(hot_run, data_root):
    out, metrics = hot_run
    data = load_catvnoncat(data_root)
    models = metrics["models"]
    assert models["logistic"]["diverged"] and not models["deep"]["diverged"]
    for name, m in models.items():
        expected = saved_cost(out / f"{name}.npz", data)
        # Same float32 forward pass, jitted there and eager here: a few ulps.
        np.testing.assert_allclose(m["final_cost"], expected, rtol=1e-5)
        last_recorded = m["cost_curve"]["J"][-1]  # J before the last update
        if name == "logistic":  # the case: 52.55 kept, 0.693 reported
            assert abs(m["final_cost"] - last_recorded) > 1.0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["models"]["logistic"]["final_cost"] == models["logistic"]["final_cost"]


def test_the_library_reports_the_cost_of_the_returned_params():
    X = jax.random.normal(jax.random.key(1), (3, 16))
    Y = (X[:1] > 0).astype(X.dtype)
    params = [{"W": jnp.full((1, 3), 0.1), "b": jnp.zeros((1, 1))}]
    acts = ["sigmoid"]
    result = train_loop(
        params, X, Y, activations=acts, num_iterations=5, learning_rate=0.5,
        lambd=0.3, print_every=0, progress=False,
    )  # fmt: skip
    expected = model_cost(result.params, X, Y, acts, lambd=0.3)
    np.testing.assert_allclose(result.final_cost, expected, rtol=1e-12)
    assert abs(result.final_cost - result.costs[-1]) > 1e-6  # the old off-by-one
    out = sweep(
        params, X, Y, activations=acts, num_iterations=5,
        learning_rates=[0.1, 0.5],
    )  # fmt: skip
    for i in range(2):
        one = jax.tree.map(lambda leaf, i=i: leaf[i], out.params)
        np.testing.assert_allclose(
            out.run.final_cost[i], model_cost(one, X, Y, acts), rtol=1e-12
        )


def test_a_model_gives_the_same_numbers_whatever_runs_beside_it(
    hot_run, tmp_path, data_root
):
    _, together = hot_run
    alone = cat_classifier.main([*HOT, *QUIET, "--model", "deep", "--out",
                                 str(tmp_path / "deep")])  # fmt: skip
    a, b = together["models"]["deep"], alone["models"]["deep"]
    assert a["cost_curve"] == b["cost_curve"]  # every iteration, exactly
    assert a["final_cost"] == b["final_cost"]
    assert a["test"] == b["test"] and a["train"] == b["train"]


def test_model_keys_come_from_the_seed_and_the_name():
    def data(seed, name):
        return jax.random.key_data(records.model_key(seed, name))

    assert jnp.array_equal(data(0, "deep"), data(0, "deep"))
    assert not jnp.array_equal(data(0, "deep"), data(0, "two_layer"))
    assert not jnp.array_equal(data(0, "deep"), data(1, "deep"))


def test_a_diverged_run_exits_with_status_3(data_root, tmp_path):
    env = {**os.environ, "JAXNET_DATA": str(data_root)}
    argv = [sys.executable, "-m", "experiments.cat_classifier", "--model",
            "logistic", *HOT, *QUIET, "--out", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "diverged: logistic (exit status 3)" in proc.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["logistic"]["diverged"] is True


def test_a_finished_run_exits_0_and_the_rule_is_in_help(hot_run):
    _, metrics = hot_run
    assert metrics["exit_code"] == 3  # logistic diverged
    text = cat_classifier.build_parser().format_help()
    assert "3 a model diverged" in " ".join(text.split())


def test_a_collapsed_network_gets_a_hint(data_root, tmp_path, capsys):
    # alpha = 0.5 kills every ReLU of the two-layer net: J flatlines at 0.643974.
    metrics = cat_classifier.main([
        "--model", "two_layer", "--iterations", "300", "--learning-rate", "0.5",
        "--print-every", "0", *QUIET, "--out", str(tmp_path / "run"),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    c = metrics["models"]["two_layer"]["collapse"]
    assert c["dead_layers"] == [1] and c["one_class"] == "non-cat"
    assert c["flat_iterations"] >= 0.2 * 300
    assert "every ReLU unit of hidden layer 1 is dead" in c["hint"]
    assert c["hint"] in printed
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["models"]["two_layer"]["collapse"]["hint"] == c["hint"]


def test_collapse_needs_dead_units_or_one_class_and_a_flat_cost():
    X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8)))
    acts = ["relu", "sigmoid"]
    live = [{"W": jnp.eye(2), "b": jnp.ones((2, 1)) * 5},
            {"W": jnp.ones((1, 2)), "b": jnp.zeros((1, 1))}]  # fmt: skip
    dead = [{"W": jnp.zeros((2, 2)), "b": -jnp.ones((2, 1))}, live[1]]
    falling = np.linspace(0.7, 0.5, 100)
    flat = np.concatenate([falling[:50], np.full(50, 0.5)])
    both = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    ones = np.ones(8, int)
    assert records.collapse(falling, live, X, acts, both, ["a", "b"]) is None
    # One class while the cost still falls: still learning, not collapsed.
    assert records.collapse(falling, live, X, acts, ones, ["a", "b"]) is None
    one = records.collapse(flat, live, X, acts, ones, ["a", "b"])
    assert one["one_class"] == "b" and one["flat_iterations"] == 50
    assert records.collapse(falling, dead, X, acts, both, ["a", "b"])[
        "dead_layers"
    ] == [1]


def test_predict_uses_the_model_asked_for(hot_run, tmp_path, monkeypatch, capsys):
    out, _ = hot_run
    image = tmp_path / "grey.png"
    Image.new("RGB", (64, 64), (120, 130, 140)).save(image)
    monkeypatch.chdir(out.parent.parent)  # holds runs/cat_classifier-all

    def predict(*flags):
        return cat_classifier.main(["--predict", str(image), *flags])["probability"]

    asked = predict("--model", "logistic")  # the newest run's logistic model
    assert "using the newest run's logistic model" in capsys.readouterr().out
    assert asked == predict("--checkpoint", str(out / "logistic.npz"))
    assert asked != predict("--checkpoint", str(out / "deep.npz"))  # not deep's
    with pytest.raises(ValueError, match="holds the deep model, not --model logistic"):
        predict("--model", "logistic", "--checkpoint", str(out / "deep.npz"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_shows_real_defaults_once(name):
    parser = importlib.import_module(f"experiments.{name}").build_parser()
    text = parser.format_help()
    assert "None" not in text
    for action in parser._actions:
        assert (action.help or "").count("(default:") <= 1, action.option_strings
    assert "exit status" in text


def test_metrics_hold_the_whole_cost_curve(hot_run):
    out, metrics = hot_run
    for name, m in metrics["models"].items():
        _, info = load_checkpoint(out / f"{name}.npz")
        costs = info["extra"]["costs"]
        assert m["cost_curve"]["every"] == 1
        assert len(m["cost_curve"]["J"]) == m["iterations_done"] == len(costs)
        np.testing.assert_array_equal(m["cost_curve"]["J"], costs.astype(float))


def test_long_curves_are_decimated_by_the_documented_rule():
    n = 250_001
    curve = records.cost_curve(np.arange(n, dtype=float))
    every = -(-n // records.MAX_CURVE_POINTS)
    assert curve["every"] == every == 3
    its, J = records.curve_points(curve)
    assert its[-1] == n - 1 and J[-1] == n - 1  # the last iteration is kept
    np.testing.assert_array_equal(J, its)
    assert len(J) <= records.MAX_CURVE_POINTS + 1
    assert records.cost_curve([1.0, float("nan")])["J"] == [1.0, None]


def test_progress_bar_on_stderr_only_when_asked_and_it_reaches_the_end(
    data_root, tmp_path
):
    env = {**os.environ, "JAXNET_DATA": str(data_root)}
    base = [sys.executable, "-m", "experiments.cat_classifier", "--model",
            "logistic", "--iterations", "20", "--print-every", "5",
            "--no-plots"]  # fmt: skip
    piped = subprocess.run([*base, "--out", str(tmp_path / "a")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=240)  # fmt: skip
    asked = subprocess.run([*base, "--progress", "--out", str(tmp_path / "b")],
                           cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=240)  # fmt: skip
    assert piped.returncode == asked.returncode == 0, piped.stderr + asked.stderr
    assert "it/s" not in piped.stderr and "s/it" not in piped.stderr  # no bar
    assert "20/20" in asked.stderr  # the bar is drawn at its end
    for proc in (piped, asked):
        assert "Cost after iteration 19" in proc.stdout
        assert "it/s" not in proc.stdout and "20/20" not in proc.stdout


def test_the_seed_sweeps_give_a_model_the_same_numbers_beside_others(tmp_path):
    # activations (like regularization and regression) keys each seed's model by
    # key(seed) alone: the relu row does not depend on the other activations.
    from experiments import activations

    def relu_row(names, out):
        metrics = activations.main([
            "--datasets", "flower", "--activations", names, "--iterations", "20",
            "--num-seeds", "2", *QUIET, "--out", str(tmp_path / out),
        ])  # fmt: skip
        return metrics["models"]["flower/relu"]

    alone, beside = relu_row("relu", "a"), relu_row("tanh,relu", "b")
    assert alone["cost_curve"] == beside["cost_curve"]
    assert alone["final_cost"] == beside["final_cost"]


def test_sweep_helpers_cost_and_mean_curve():
    X = jax.random.normal(jax.random.key(2), (3, 10))
    Y = (X[:1] > 0).astype(X.dtype)
    params = [{"W": jnp.stack([jnp.full((1, 3), 0.1), jnp.full((1, 3), -0.2)]),
               "b": jnp.zeros((2, 1, 1))}]  # fmt: skip
    J = records.stacked_cost(params, X, Y, ["sigmoid"], lambd=0.5)
    for i in range(2):
        one = jax.tree.map(lambda leaf, i=i: leaf[i], params)
        np.testing.assert_allclose(
            J[i], model_cost(one, X, Y, ["sigmoid"], lambd=0.5), rtol=1e-12
        )
    # A stopped seed's shorter row: each iteration's mean is over those reaching it.
    curve = records.mean_curve([np.array([1.0, 2.0, 3.0]), np.array([3.0])])
    assert curve["J"] == [2.0, 2.0, 3.0]
