"""Smoke test of experiments.digits on a small slice of the real MNIST digits."""

import json
import math

import pytest

from experiments import digits


def test_digits_smoke(data_root, tmp_path):
    out = tmp_path / "run"
    metrics = digits.main(
        [
            "--data", str(data_root), "--out", str(out), "--epochs", "2",
            "--train-size", "500", "--batch-size", "50", "--layer-dims",
            "784,32,10", "--learning-rate", "0.01", "--print-every", "0",
            "--no-progress",
        ]
    )  # fmt: skip
    assert metrics["dataset"]["num_train"] == 500
    assert metrics["dataset"]["num_test"] == 2000  # the held-out split never shrinks
    model = metrics["models"]["digits"]
    assert model["epochs_done"] == 2 and not model["diverged"] and model["finished"]
    assert all(math.isfinite(c) for _, c in model["costs"])
    # Two epochs on 500 digits already beat chance (10 %) by far.
    assert model["test_accuracy"] > 0.5
    assert model["test"]["total"] == 2000
    assert model["test"]["accuracy"] == model["test"]["correct"] / 2000
    assert sorted(model["per_class_accuracy"]) == [str(k) for k in range(10)]
    assert sum(map(sum, model["confusion"])) == 2000
    assert (out / "confusion.png").stat().st_size > 0
    assert (out / "digits.npz").stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["models"]["digits"]["test_accuracy"] == model["test_accuracy"]
    assert saved["config"]["distributed"]["devices"] == 1
    assert saved["config"]["distributed"]["processes"] == 1


def test_train_size_must_divide_by_the_devices(tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit):
        digits.main(["--devices", "4", "--train-size", "802", "--out", str(out)])
    assert "--train-size 802 cannot be split evenly" in capsys.readouterr().err
    assert not out.exists()
