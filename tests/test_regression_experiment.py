"""experiments.regression on the real Auto MPG data: a smoke run and the target."""

import json
import math

from PIL import Image

from experiments import regression


def test_regression_smoke(autompg_root, tmp_path):
    out = tmp_path / "run"
    metrics = regression.main(
        [
            "--data", str(autompg_root), "--out", str(out), "--iterations", "3",
            "--num-seeds", "2", "--print-every", "1", "--no-progress",
        ]
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"config", "dataset", "models"}
    assert set(saved["models"]) == {"network", "least_squares"}
    dataset = saved["dataset"]
    assert (dataset["train_size"], dataset["test_size"]) == (318, 80)
    assert dataset["dropped_missing_mpg"] == 8
    assert dataset["imputed_horsepower"] == 6
    net = saved["models"]["network"]
    assert net["layer_dims"] == [9, 32, 16, 1]
    assert net["activations"] == ["relu", "relu", "linear"]
    assert net["seeds"] == [0, 1]
    for name, model in saved["models"].items():
        for key in ("test_mae", "test_rmse", "train_mae", "train_rmse"):
            assert len(model[key]["values"]) == 2  # one per seed
            assert all(math.isfinite(v) and v > 0 for v in model[key]["values"])
            assert model[key] == metrics["models"][name][key]
    assert saved["models"]["least_squares"]["test_mae"]["std"] == 0.0
    assert [i for i, _ in net["costs"][0]] == [0, 1, 2]
    assert saved["config"]["iterations"] == 3
    with Image.open(out / "regression.png") as image:
        assert image.size[0] > 100 and image.size[1] > 100


def test_default_network_beats_least_squares_by_the_target(autompg_root, tmp_path):
    metrics = regression.main(
        ["--data", str(autompg_root), "--out", str(tmp_path), "--no-plots",
         "--no-progress", "--print-every", "0"]
    )  # fmt: skip
    net = metrics["models"]["network"]["test_mae"]
    ls = metrics["models"]["least_squares"]["test_mae"]
    assert len(net["values"]) == 5
    assert net["mean"] <= regression.TARGET_RATIO * ls["mean"]
    assert metrics["comparison"]["target_met"]
    # The references of the issue: least squares ~2.3-2.7, the net ~1.7-2.1 mpg
    # on held-out splits; this split is a little harder for both.
    assert 2.2 < ls["mean"] < 3.0 and 1.6 < net["mean"] < 2.5
