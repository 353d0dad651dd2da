"""experiments.activations: a smoke run on the real cats and the flower."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from experiments import activations
from tests.conftest import _dataset_root


@pytest.fixture
def cats_root():
    """Root holding catvnoncat/ (the smoke run needs no other data set)."""
    return _dataset_root("catvnoncat")


def test_activations_smoke(cats_root, tmp_path):
    out = tmp_path / "run"
    metrics = activations.main(
        [
            "--data", str(cats_root), "--out", str(out), "--iterations", "3",
            "--num-seeds", "2", "--activations", "sigmoid,relu", "--no-progress",
        ]
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"config", "dataset", "models"}
    assert list(saved["models"]) == [
        "cats/sigmoid", "cats/relu", "flower/sigmoid", "flower/relu",
    ]  # fmt: skip
    assert saved["dataset"]["cats"]["train_size"] == 209
    assert saved["dataset"]["flower"]["test_size"] == 400
    assert saved["config"]["settings"]["cats"]["iterations"] == 3
    assert saved["models"]["cats/relu"]["activations"] == ["relu"] * 3 + ["sigmoid"]
    for m in saved["models"].values():
        assert m["finite"]
        assert len(m["final_cost"]["values"]) == 2  # one per seed
        assert all(math.isfinite(v) for v in m["final_cost"]["values"])
        assert 0 <= m["test_accuracy"]["mean"] <= 1
        assert m["iterations_to_level"]["reached"] == "0/2"  # 3 iterations
    assert saved["table"] == metrics["table"]
    with Image.open(out / "activations.png") as image:
        assert image.size[0] > 100 and image.size[1] > 100


def test_iterations_to_reach_a_level():
    costs = np.array([[0.7, 0.5, 0.3, 0.1], [0.7, 0.6, 0.6, 0.6]])
    assert activations.iterations_to(costs, 0.4) == [2, None]


def test_unknown_activation_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        activations.main(["--activations", "relu,swish"])
    assert "hidden activations must be among" in capsys.readouterr().err
