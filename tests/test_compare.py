"""``python -m experiments.compare`` on real run folders of the cat classifier.

Three runs, as a user makes them: the three models with default flags (30
iterations); the three at alpha = 0.5 for 300 iterations (logistic diverges,
the networks collapse); and the deep model stopped by a real SIGINT, then a
copy of it resumed to the end.
"""

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from experiments import cat_classifier, compare

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--no-plots", "--no-progress", "--print-every", "0"]


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    default, hot, stopped = base / "default", base / "hot", base / "stopped"
    metrics = {
        "default": cat_classifier.main(
            ["--iterations", "30", *QUIET, "--out", str(default)]
        ),
        "hot": cat_classifier.main(
            ["--iterations", "300", "--learning-rate", "0.5", *QUIET, "--out", str(hot)]
        ),
    }
    # The deep model, stopped by a real Ctrl-C once it has saved a checkpoint.
    env = {**os.environ, "JAXNET_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "experiments.cat_classifier", "--model", "deep",
            "--iterations", "120000", *QUIET, "--out", str(stopped)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (stopped / "deep.npz").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    metrics["stopped"] = json.loads((stopped / "metrics.json").read_text())
    return base, metrics


def table(*folders, extra=()) -> dict:
    return compare.main([*map(str, folders), *extra])


def row(result, run, model) -> dict:
    (found,) = [r for r in result["rows"] if r["run"] == run and r["model"] == model]
    return found


def test_compare_three_runs_one_interrupted(runs, tmp_path, capsys):
    base, metrics = runs
    png = tmp_path / "curves.png"
    result = table(base / "default", base / "hot", base / "stopped",
                   extra=["--out", str(png)])  # fmt: skip
    printed = capsys.readouterr().out
    # The flags that differ, and only those, are columns.
    flags = [h for h in result["header"] if h.startswith("--")]
    assert flags == ["--iterations", "--learning-rate", "--model"]
    assert len(result["rows"]) == 3 + 3 + 1
    for run in ("default", "hot", "stopped"):
        for model, m in metrics[run]["models"].items():
            r = row(result, run, model)
            assert r["final cost"] == f"{m['final_cost']:.6f}"
            assert r["test acc"] == f"{100 * m['test_accuracy']:.2f}%"
            assert r["iterations"] == str(m["iterations_done"])
            assert r["train s"] == f"{m['train_seconds']:.2f}"
    assert row(result, "hot", "logistic")["stop reason"] == "diverged"
    assert row(result, "hot", "two_layer")["stop reason"].endswith("(collapsed)")
    assert row(result, "default", "deep")["stop reason"] == "finished"
    stopped = row(result, "stopped", "deep")
    assert stopped["stop reason"] == "interrupted"
    assert 0 < int(stopped["iterations"]) < 120000
    assert row(result, "hot", "deep")["--learning-rate"] == "0.5"
    assert row(result, "default", "deep")["--learning-rate"] == "0.0075"  # its own
    assert f"cost curves (7): {png}" in printed
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_compare_reads_a_resumed_run(runs, tmp_path, capsys):
    base, _ = runs
    resumed = tmp_path / "resumed"
    shutil.copytree(base / "stopped", resumed)
    done = cat_classifier.main(["--resume", str(resumed), "--no-progress"])
    assert done["models"]["deep"]["iterations_done"] == 120000
    result = table(base / "stopped", resumed, extra=["--no-plots"])
    r = row(result, "resumed", "deep")
    assert r["stop reason"] == "finished" and r["iterations"] == "120000"
    curve = done["models"]["deep"]["cost_curve"]
    assert curve["iterations"] == 120000 and curve["every"] == 2  # the rule


def test_compare_csv_is_the_same_table(runs, capsys):
    base, _ = runs
    result = table(base / "default", base / "hot", extra=["--csv", "--no-plots"])
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed[0][:2] == ["run", "model"] and "test acc %" in parsed[0]
    assert len(parsed) == 1 + len(result["rows"]) == 7
    cost = parsed[0].index("final cost")
    assert [p[cost] for p in parsed[1:]] == [r["final cost"] for r in result["rows"]]


def test_a_killed_run_is_read_from_its_checkpoint(runs, tmp_path):
    base, metrics = runs
    folder = tmp_path / "killed"
    folder.mkdir()
    shutil.copy(base / "stopped" / "deep.npz", folder)  # no metrics.json
    r = row(table(folder, extra=["--no-plots"]), "killed", "deep")
    assert r["iterations"] == str(
        metrics["stopped"]["models"]["deep"]["iterations_done"]
    )
    assert r["stop reason"] == "not recorded"


@pytest.mark.parametrize("content", [None, "{not json", '{"config": {}}'])
def test_a_folder_with_no_run_is_refused_in_one_line(tmp_path, content):
    folder = tmp_path / "empty"
    folder.mkdir()
    if content is not None:
        (folder / "metrics.json").write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.compare", str(folder), "--no-plots"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(folder) in lines[0]
    assert "Traceback" not in proc.stderr


def test_compare_reads_another_experiments_folder(runs, tmp_path):
    from experiments import learning_rates

    base, _ = runs
    out = tmp_path / "rates"
    metrics = learning_rates.main(["--synthetic", "--iterations", "30", "--no-plots",
                                   "--out", str(out)])  # fmt: skip
    result = table(out, base / "default", extra=["--no-plots"])
    for name, m in metrics["models"].items():
        r = row(result, "rates", name)
        # learning_rates records percent; the table shows every run alike.
        assert r["test acc"] == f"{m['test_accuracy']:.2f}%"
        assert r["final cost"] == f"{m['final_cost']:.6f}"
        assert r["iterations"] == "30"
        rates = metrics["config"]["learning_rates"]
        assert r["--learning-rates"] == ",".join(f"{a:g}" for a in rates)
