"""Every JSON record jaxnet writes is strict, runs that diverge are recorded as
such, and an unusable --out or a full disk ends in one line, nothing half-written.
"""

import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import common, learning_rates, regression, vectorization
from jaxnet import strict_json
from jaxnet.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def strict_records(folder: Path) -> list:
    """Every *.json under ``folder``, parsed by a strict parser (no NaN/Infinity)."""
    paths = sorted(folder.rglob("*.json"))
    assert paths, f"no JSON records under {folder}"
    return [strict_json.loads(p.read_text()) for p in paths]


def test_non_finite_numbers_become_null_with_the_reason(tmp_path):
    data = {
        "cost": float("inf"),
        "runs": [1.5, np.float32("nan"), {"J": -np.inf}],
        "W": jnp.asarray([1.0, jnp.inf]),
        "n": np.int64(3),
    }
    path = common.write_json(tmp_path / "m.json", data)
    text = path.read_text()
    for word in ("NaN", "Infinity"):
        assert word not in text
    saved = strict_json.loads(text)
    assert saved["cost"] is None and saved["runs"][1] is None
    assert saved["runs"][2]["J"] is None and saved["W"] == [1.0, None]
    assert saved["n"] == 3 and saved["runs"][0] == 1.5
    assert saved["nonfinite"] == {
        "cost": "inf", "runs/1": "nan", "runs/2/J": "-inf", "W/1": "inf",
    }  # fmt: skip
    with pytest.raises(ValueError, match="NaN"):
        strict_json.loads('{"a": NaN}')  # the parser the tests use is strict


def test_checkpoint_metadata_is_strict_json(tmp_path):
    path = tmp_path / "c.npz"
    params = [{"W": np.ones((1, 2)), "b": np.zeros((1, 1))}]
    save_checkpoint(
        path, params, layer_dims=[2, 1], activations=["sigmoid"],
        metadata={"best_cost": float("nan"), "seed": 0},
    )  # fmt: skip
    with np.load(path) as arrays:
        text = str(arrays["metadata_json"][()])
    strict_json.loads(text)
    _, info = load_checkpoint(path)
    assert info["metadata"]["best_cost"] is None
    assert info["metadata"]["nonfinite"] == {"best_cost": "nan"}


def test_a_diverging_regression_stops_by_the_rules_and_says_so(
    autompg_root, tmp_path, capsys
):
    """--learning-rate 1e6 used to end with cost inf, MAE 6.8e19, exit 0 and
    Infinity in metrics.json."""
    out = tmp_path / "run"
    result = regression.main(
        ["--data", str(autompg_root), "--out", str(out), "--learning-rate", "1e6",
         "--iterations", "50", "--num-seeds", "2", "--no-progress", "--no-plots"]
    )  # fmt: skip
    assert "Lower the learning rate" in capsys.readouterr().out
    (record,) = strict_records(out)
    net = record["models"]["network"]
    assert net["diverged"] is True and net["finished"] is False
    for stop in net["stops"]:
        assert stop["stop_reason"] in ("diverged", "non-finite")
        assert stop["iterations_done"] < 50
        assert "Lower the learning rate" in stop["message"]
    # The kept parameters are the last good ones: finite costs and errors of
    # the order of the data's spread (mpg), not 1e19.
    assert all(math.isfinite(v) for v in net["final_cost"]["values"])
    assert all(0 < v < 100 for v in net["test_mae"]["values"])
    assert record["comparison"]["target_met"] is False
    # A diverged model ends the run with status 3 (issue 19's rule).
    assert result["exit_code"] == common.EXIT_DIVERGED == 3


def test_every_record_of_the_sweep_studies_is_strict(data_root, tmp_path):
    """learning_rates on the cat images with a rate that diverges next to a
    good one, and vectorization: every JSON written parses strictly."""
    learning_rates.main(
        ["--data", str(data_root), "--learning-rates", "0.01,1e6", "--iterations", "30",
         "--out", str(tmp_path / "lr"), "--no-plots"]
    )  # fmt: skip
    (record,) = strict_records(tmp_path / "lr")
    good, bad = record["models"]["alpha=0.01"], record["models"]["alpha=1e+06"]
    assert good["finished"] and good["stopped"] is None
    assert bad["stopped"]["stop_reason"] == "diverged" and not bad["finished"]
    assert math.isfinite(bad["final_cost"]) and record["diverged"] is True
    vectorization.main(
        ["--size", "1000", "--outer-size", "10", "--n-x", "20", "--m", "5",
         "--repeats", "1", "--loop-repeats", "1", "--out", str(tmp_path / "v"),
         "--no-plots"]
    )  # fmt: skip
    strict_records(tmp_path / "v")


def one_line_error(*args) -> str:
    """Run vectorization (it makes its folder first) and return its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "experiments.vectorization", *args, "--no-plots"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), done.stderr
    return line


def test_out_that_is_a_file_or_below_a_file_is_one_line(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me\n")
    line = one_line_error("--out", str(afile))
    assert str(afile) in line and "is a file" in line and "--out" in line
    line = one_line_error("--out", str(afile / "run"))
    assert str(afile / "run") in line and "a part of the path is a file" in line
    assert afile.read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.EROFS, "read-only"), (errno.ENOSPC, "free some space"),
     (errno.EACCES, "may write to")],
)  # fmt: skip
def test_out_on_an_unwritable_filesystem_names_the_path_and_fix(
    tmp_path, monkeypatch, code, fix
):
    def refuse(self, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    out = tmp_path / "run"
    with pytest.raises(common.RunFolderError) as e:
        common.make_run_dir(str(out), "x")
    assert str(out) in str(e.value) and fix in str(e.value)
    assert os.strerror(code) in str(e.value)


def test_a_full_disk_leaves_the_old_record_and_no_half_file(tmp_path, monkeypatch):
    run_dir = common.make_run_dir(str(tmp_path / "run"), "x")
    common.write_json(run_dir / "metrics.json", {"models": {"a": 1}})
    before = (run_dir / "metrics.json").read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])  # half of it, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(common.RunFolderError) as e:
        common.finish_run(run_dir, {"models": {"a": 2}})
    assert "metrics.json" in str(e.value) and "free some space" in str(e.value)
    assert (run_dir / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "metrics.json"]
    monkeypatch.undo()

    # A plot on a full disk: no half PNG either, and the figure is closed.
    plt = common.pyplot()
    fig = plt.figure()
    fig.savefig = lambda path, **k: (
        Path(path).write_bytes(b"\x89PNG half"),
        (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))),
    )
    with pytest.raises(common.RunFolderError, match="free some space"):
        common.save_figure(fig, run_dir / "costs.png")
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "metrics.json"]
    assert json.loads(before)["models"] == {"a": 1}


def test_a_diverging_regularization_sweep_is_recorded_as_such(data_root, tmp_path):
    """A vmapped sweep has no per-model rollback; the study now applies the
    stopping rules per seed (it used to record NaN costs as if all was well)."""
    from experiments import regularization

    out = tmp_path / "run"
    regularization.main(
        ["--data", str(data_root), "--model", "two_layer", "--learning-rate", "1e6",
         "--iterations", "10", "--num-seeds", "2", "--l2", "0.7", "--keep-prob",
         "0.86", "--out", str(out), "--no-plots", "--no-progress"]
    )  # fmt: skip
    (record,) = strict_records(out)
    for result in record["models"]["results"]:
        assert result["diverged"] is True and result["finite"] is True
        assert all(s["iterations_done"] < 10 for s in result["stops"])
        assert all(math.isfinite(v) for v in result["final_cost"]["values"])
