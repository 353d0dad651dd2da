"""Smoke and artifact tests of ``python -m experiments.cat_classifier`` on real data."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from experiments import cat_classifier
from jaxnet.checkpoint import load_checkpoint

MODEL_KEYS = {
    "layer_dims",
    "iterations",
    "learning_rate",
    "costs",
    "train_accuracy",
    "test_accuracy",
    "compile_seconds",
    "train_seconds",
}


@pytest.fixture(scope="module")
def run(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cat_run")
    argv = [
        "--iterations",
        "3",
        "--print-every",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    metrics = cat_classifier.main(argv)
    return out, metrics


def test_main_returns_finite_metrics_for_all_three_models(run):
    _, metrics = run
    assert set(metrics["models"]) == {"logistic", "two_layer", "deep"}
    for m in metrics["models"].values():
        assert m["iterations_done"] == 3
        assert math.isfinite(m["final_cost"])
        assert 0 <= m["train_accuracy"] <= 1 and 0 <= m["test_accuracy"] <= 1


def test_metrics_json_schema(run):
    out, _ = run
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"config", "dataset", "models"}
    assert saved["dataset"]["train_size"] == 209
    assert saved["dataset"]["test_size"] == 50
    assert saved["models"]["deep"]["layer_dims"] == [12288, 20, 7, 5, 1]
    for m in saved["models"].values():
        assert set(m) >= MODEL_KEYS
        # costs: [iteration, cost] every print-every iterations plus the last.
        assert [i for i, _ in m["costs"]] == [0, 2]
        assert all(math.isfinite(c) for _, c in m["costs"])


def test_checkpoints_round_trip_and_plots_open(run):
    out, metrics = run
    for name, m in metrics["models"].items():
        params, info = load_checkpoint(out / f"{name}.npz")
        assert info["layer_dims"] == m["layer_dims"]
        assert info["activations"] == m["activations"]
        assert info["metadata"]["iterations_done"] == 3
        # numpy alone reads it: W1, b1, ... are plain arrays.
        with np.load(out / f"{name}.npz", allow_pickle=False) as raw:
            np.testing.assert_array_equal(raw["W1"], params[0]["W"])
    for png in ("costs.png", "misclassified.png"):
        with Image.open(out / png) as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_health_readings_in_metrics_and_health_png(run):
    out, _ = run
    saved = json.loads((out / "metrics.json").read_text())
    deep = saved["models"]["deep"]["health"]
    assert deep["iterations"] == [0, 2]  # the printed points
    assert set(deep["readings"]) == {
        "dead", "saturated", "grad_norm", "weight_norm", "update_ratio", "symmetric",
    }  # fmt: skip
    for values in deep["readings"].values():
        assert np.shape(values) == (2, 4)  # points x layers
    assert deep["readings"]["dead"][0][3] is None  # the output: not applicable
    assert all(0 <= d <= 1 for d in deep["readings"]["dead"][0][:3])
    assert deep["hints"] == []  # the course's deep model starts healthy
    # logistic regression starts from W = 0: no ratio yet, not inf or NaN
    assert saved["models"]["logistic"]["health"]["readings"]["update_ratio"][0] == [
        None
    ]
    with Image.open(out / "health.png") as image:
        assert image.size[0] > 100 and image.size[1] > 100


def test_predict_own_image(run, data_root, tmp_path):
    from jaxnet.data import load_catvnoncat

    out, _ = run
    data = load_catvnoncat(data_root / "catvnoncat")
    image_path = tmp_path / "cat.png"
    Image.fromarray(data.test_images[1]).resize((100, 80)).save(image_path)
    result = cat_classifier.main(
        ["--predict", str(image_path), "--checkpoint", str(out / "deep.npz")]
    )
    assert 0 <= result["probability"] <= 1
    assert result["label"] in ("cat", "non-cat")


def test_predict_rejects_a_file_that_is_not_an_image(run, tmp_path):
    out, _ = run
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="PNG or JPEG"):
        cat_classifier.main(
            ["--predict", str(bad), "--checkpoint", str(out / "deep.npz")]
        )


def test_diverging_run_keeps_last_good_checkpoint(data_root, tmp_path):
    # A learning rate of 1e30 overflows the two-layer relu net (float32) to inf/NaN in
    # a few chunks; the run must stop and leave finite parameters on disk.
    metrics = cat_classifier.main(
        [
            "--model",
            "two_layer",
            "--iterations",
            "40",
            "--print-every",
            "2",
            "--learning-rate",
            "1e30",
            "--init",
            "he",
            "--out",
            str(tmp_path),
            "--no-plots",
            "--no-progress",
        ]
    )
    m = metrics["models"]["two_layer"]
    assert m["diverged"]
    assert m["iterations_done"] < 40
    params, info = load_checkpoint(tmp_path / "two_layer.npz")
    assert info["metadata"]["iterations_done"] == m["iterations_done"]
    assert all(np.all(np.isfinite(v)) for layer in params for v in layer.values())


def test_devices_that_do_not_divide_the_cat_set_are_a_usage_error(
    data_root, tmp_path, capsys
):
    out = tmp_path / "never"
    with pytest.raises(SystemExit):
        cat_classifier.main(["--devices", "2", "--out", str(out), "--no-progress"])
    message = capsys.readouterr().err
    assert "m = 209" in message and "1, 11, 19, 209" in message
    assert "experiments.digits --devices 2" in message
    assert not out.exists()  # refused before any run folder


def test_metrics_record_the_devices_and_processes(run):
    out, _ = run
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["distributed"]["devices"] == 1
    assert config["distributed"]["processes"] == 1
    assert config["process_count"] == 1
