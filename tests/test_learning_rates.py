"""experiments.learning_rates: the course's numbers, and a smoke run without data."""

import math

import pytest

from experiments import learning_rates


def test_reproduces_the_course_learning_rate_comparison(data_root, tmp_path):
    metrics = learning_rates.main(
        ["--data", str(data_root), "--out", str(tmp_path), "--no-plots"]
    )
    runs = list(metrics["models"].values())
    assert [r["learning_rate"] for r in runs] == [0.01, 0.001, 0.0001]
    # Accuracies are counts / 209 (or / 50): exact float64 values are expected,
    # so the tolerance (1e-9 %) only absorbs the last bit of 100 * mean.
    expected_train = [99.52153110047847, 88.99521531100478, 68.42105263157895]
    expected_test = [68.0, 64.0, 36.0]
    for run, train, test in zip(runs, expected_train, expected_test, strict=True):
        assert run["train_accuracy"] == pytest.approx(train, abs=1e-9)
        assert run["test_accuracy"] == pytest.approx(test, abs=1e-9)
    # w = 0 gives J = log 2 at the first iteration for every alpha.
    assert runs[0]["costs"][0][1] == pytest.approx(math.log(2), rel=1e-12)
    assert (tmp_path / "metrics.json").is_file()


def test_smoke_synthetic_with_plot(tmp_path):
    metrics = learning_rates.main(
        [
            "--synthetic",
            "--iterations",
            "3",
            "--learning-rates",
            "0.5,0.05",
            "--out",
            str(tmp_path),
        ]
    )
    assert len(list(metrics["models"].values())) == 2
    for run in list(metrics["models"].values()):
        assert math.isfinite(run["final_cost"])
        assert 0 <= run["train_accuracy"] <= 100
    assert (tmp_path / "costs.png").stat().st_size > 0
