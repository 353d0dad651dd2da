"""Smoke test of experiments.digits on a small slice of the real MNIST digits."""

import json
import math

from experiments import digits


def test_digits_smoke(data_root, tmp_path):
    out = tmp_path / "run"
    metrics = digits.main(
        [
            "--data", str(data_root), "--out", str(out), "--num-epochs", "2",
            "--train-size", "500", "--batch-size", "50", "--layer-dims",
            "784,32,10", "--learning-rate", "0.01", "--print-every", "0",
            "--no-progress",
        ]
    )  # fmt: skip
    assert metrics["num_train"] == 500
    assert metrics["num_test"] == 2000  # the held-out split never shrinks
    assert metrics["epochs_done"] == 2 and not metrics["diverged"]
    assert all(math.isfinite(c) for _, c in metrics["costs"])
    # Two epochs on 500 digits already beat chance (10 %) by far.
    assert metrics["test_accuracy"] > 0.5
    assert sorted(metrics["per_class_accuracy"]) == [str(k) for k in range(10)]
    assert sum(map(sum, metrics["confusion"])) == 2000
    assert (out / "confusion.png").stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"]
