"""Smoke test of experiments.regularization on the real cat / non-cat data."""

import json
import math

from experiments import regularization


def test_regularization_smoke(data_root, tmp_path):
    out = tmp_path / "run"
    metrics = regularization.main(
        [
            "--data", str(data_root), "--out", str(out), "--iterations", "3",
            "--num-seeds", "2", "--model", "two_layer", "--l2", "0.7",
            "--keep-prob", "0.8", "--print-every", "2", "--no-plots",
            "--no-progress",
        ]
    )  # fmt: skip
    names = [r["setting"] for r in metrics["models"]["results"]]
    assert names == ["none", "L2 lambda=0.7", "dropout keep_prob=0.8"]
    for r in metrics["models"]["results"]:
        assert r["finite"]
        assert len(r["test_accuracy"]["values"]) == 2  # one per seed
        assert all(math.isfinite(v) for v in r["final_cost"]["values"])
        assert 0 <= r["train_accuracy"]["mean"] <= 1
    # Two seeds are two different initializations.
    costs = metrics["models"]["results"][0]["final_cost"]["values"]
    assert costs[0] != costs[1]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["models"]["table"] == metrics["models"]["table"]
