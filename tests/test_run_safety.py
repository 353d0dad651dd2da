"""Runs that never lose work: signals, SIGKILL + resume, run folders, flags.

Each scenario runs the real command in a subprocess on the real cat data, as a
user would, and sends real signals. The model is the course's L-layer network
with fewer iterations so a scenario takes seconds.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jaxnet.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# float64 so that resumed and uninterrupted runs can be compared bit for bit.
FLAGS = ["--model", "deep", "--dtype", "float64", "--no-plots", "--no-progress"]


def command(*args) -> list[str]:
    return [sys.executable, "-m", "experiments.cat_classifier", *FLAGS, *args]


def start(data_root, *args) -> subprocess.Popen:
    env = {**os.environ, "JAXNET_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command(*args),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run(data_root, *args, timeout=240) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAXNET_DATA": str(data_root)}
    return subprocess.run(
        command(*args), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen, timeout=120.0) -> None:
    """Wait until ``path`` exists (the first checkpoint), or fail."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before writing {path}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {path} after {timeout} s")
        time.sleep(0.05)


def final_state(run_dir: Path):
    params, info = load_checkpoint(run_dir / "deep.npz")
    return params, info


@pytest.mark.exclusive
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_a_signal_stops_within_a_second_and_keeps_the_work(
    data_root, tmp_path, signum, code
):
    out = tmp_path / "run"
    proc = start(data_root, "--iterations", "100000", "--out", str(out))
    lines = []  # (time, line) as the run prints them

    def read():
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(out / "deep.npz", proc)
        time.sleep(1.0)  # let it train a little past the first checkpoint
        sent = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=60)
        exited = time.monotonic() - sent
        reader.join(timeout=10)
    finally:
        proc.kill()
    output = "\n".join(line for _, line in lines)
    assert proc.returncode == code, output
    stopped = [t - sent for t, line in lines if line.startswith("stopped after")]
    assert stopped, output
    # Training stops at the end of the running chunk (chunks are sized to
    # ~0.5 s); 2 s leaves room for a loaded machine.
    assert stopped[0] < 2.0, f"training stopped {stopped[0]:.2f} s after the signal"
    # Then the checkpoint, the metrics, the table, and Python's exit.
    assert exited < 8.0, f"exited {exited:.2f} s after the signal"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    assert metrics["signal"] == signal.Signals(signum).name
    deep = metrics["models"]["deep"]
    assert deep["interrupted"] and not deep["finished"]
    assert deep["iterations_done"] > 0
    _, info = final_state(out)
    assert info["metadata"]["iterations_done"] == deep["iterations_done"]
    assert "--resume" in output
    name = signal.Signals(signum).name
    print(f"{name}: training stopped {stopped[0]:.2f} s, exit {exited:.2f} s after")


@pytest.mark.parametrize(
    ("flags", "exact"),
    [
        # gd takes the exact wide-input path (jaxnet.wide), ~10,000 iterations a
        # second. Its checkpoint holds the coordinates (s, C), their optimizer
        # state and W[1]_0 besides the dense W[1], and resume continues in
        # them: bit for bit (tests/test_wide_resume.py kills it more often).
        (["--course-init", "--iterations", "20000"], True),
        # Adam takes the direct path: the same operations from the same saved
        # state, bit for bit.
        (
            ["--iterations", "600", "--optimizer", "adam", "--learning-rate", "5e-4"],
            True,
        ),
    ],
)
def test_sigkill_then_resume_equals_the_uninterrupted_run(
    data_root, tmp_path, flags, exact
):
    iterations = flags
    whole = tmp_path / "whole"
    done = run(data_root, *iterations, "--out", str(whole))
    assert done.returncode == 0, done.stdout + done.stderr

    killed = tmp_path / "killed"
    proc = start(data_root, *iterations, "--out", str(killed))
    try:
        wait_for(killed / "deep.npz", proc)
        time.sleep(np.random.default_rng().uniform(0.0, 0.4))  # a random moment
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    _, info = final_state(killed)
    assert not info["metadata"]["finished"], "SIGKILL came after the run finished"
    resumed = run(data_root, "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming at iteration" in resumed.stdout

    a_params, a_info = final_state(whole)
    b_params, b_info = final_state(killed)
    assert b_info["metadata"]["finished"]

    def compare(a, b):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            scale = np.max(np.abs(a))
            assert np.max(np.abs(np.asarray(a) - b)) <= 1e-12 * scale

    for a, b in zip(a_params, b_params, strict=True):
        for name in ("W", "b"):
            compare(a[name], b[name])
    compare(a_info["extra"]["costs"], b_info["extra"]["costs"])
    a_metrics = json.loads((whole / "metrics.json").read_text())["models"]["deep"]
    b_metrics = json.loads((killed / "metrics.json").read_text())["models"]["deep"]
    for key in ("train", "test", "iterations_done"):
        assert a_metrics[key] == b_metrics[key]
    compare(a_metrics["final_cost"], b_metrics["final_cost"])


def test_resume_refuses_other_flags(data_root, tmp_path):
    out = tmp_path / "run"
    first = run(data_root, "--iterations", "5", "--out", str(out))
    assert first.returncode == 0, first.stderr
    again = run(data_root, "--resume", str(out), "--learning-rate", "0.1")
    assert again.returncode == 2
    assert "--learning-rate" in again.stderr and "differ" in again.stderr


def test_a_folder_holding_a_run_is_not_reused_silently(data_root, tmp_path):
    out = tmp_path / "run"
    assert run(data_root, "--iterations", "3", "--out", str(out)).returncode == 0
    stale = out / "costs.png"
    stale.write_bytes(b"old")
    again = run(data_root, "--iterations", "3", "--out", str(out))
    assert again.returncode == 1
    assert "--overwrite" in again.stderr and "--resume" in again.stderr
    assert run(data_root, "--iterations", "3", "--out", str(out), "--overwrite")
    assert not stale.exists()  # --no-plots: the old plot is gone, not kept
    mode = (out / "metrics.json").stat().st_mode & 0o777
    assert mode == 0o644 and (out / "deep.npz").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--iterations", "0"], "iterations must be a positive integer"),
        (["--iterations", "2.5"], "iterations must be a positive integer"),
        (["--learning-rate", "0"], "learning_rate must be a finite number > 0"),
        (["--learning-rate", "nan"], "learning_rate must be a finite number > 0"),
        (["--keep-prob", "1.5"], "keep_prob must be in (0, 1]"),
        (["--l2", "-1"], "lambd must be a finite number >= 0"),
        (["--course-init"], "only in float64"),
        (["--model", "logistic", "--layer-dims", "12288,5,1"], "--layer-dims"),
        (["--optimizer", "sgd"], "invalid choice"),
    ],
)
def test_bad_flags_are_usage_errors_and_create_no_folder(tmp_path, args, words):
    out = tmp_path / "run"
    env = {**os.environ, "JAXNET_DATA": str(tmp_path / "nowhere")}
    flags = ["--no-plots", "--out", str(out), *args]
    if "--course-init" in args:
        flags = ["--no-plots", "--out", str(out), "--course-init"]
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cat_classifier", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
    assert not out.exists()


def test_help_shows_every_flag_with_help_and_default():
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cat_classifier", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flag in (
        "--iterations",
        "--learning-rate",
        "--optimizer",
        "--momentum",
        "--print-every",
        "--resume",
        "--overwrite",
        "--layer-dims",
    ):
        assert flag in text  # fmt: skip
    assert "(default: 100)" in text and "comma-separated" in text


def test_missing_data_is_one_clean_message_and_no_folder(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "JAXNET_DATA": str(tmp_path / "nowhere")}
    for module in ("cat_classifier", "digits", "regularization", "learning_rates"):
        done = subprocess.run(
            [sys.executable, "-m", f"experiments.{module}", "--out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1, (module, done.stderr)
        assert done.stderr.startswith("error: dataset"), (module, done.stderr)
        assert "Traceback" not in done.stderr
        assert not out.exists(), module


@pytest.mark.exclusive
def test_a_second_ctrl_c_exits_at_once_and_leaves_a_readable_checkpoint(
    data_root, tmp_path
):
    out = tmp_path / "run"
    proc = start(data_root, "--iterations", "100000", "--out", str(out))
    try:
        wait_for(out / "deep.npz", proc)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    params, info = final_state(out)  # whole, never half-written
    assert all(np.isfinite(layer["W"]).all() for layer in params)
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path):
    from experiments.runs import check_resumable

    saved = {"data": "aaaa", "flags": {"learning_rate": 0.1}}
    with pytest.raises(ValueError, match="trained on other data"):
        check_resumable(tmp_path, saved, {"data": "bbbb", "flags": saved["flags"]})
    with pytest.raises(ValueError, match=r"--learning-rate 0.1 -> 0.2"):
        check_resumable(
            tmp_path, saved, {"data": "aaaa", "flags": {"learning_rate": 0.2}}
        )
    check_resumable(tmp_path, saved, dict(saved))  # the same run: fine


def test_digits_and_regularization_resume(data_root, tmp_path):
    from experiments import digits, regularization

    out = tmp_path / "digits"
    flags = ["--data", str(data_root), "--epochs", "2", "--train-size", "400",
             "--layer-dims", "784,16,10", "--print-every", "0", "--no-progress",
             "--no-plots"]  # fmt: skip
    first = digits.main([*flags, "--out", str(out)])
    again = digits.main(["--resume", str(out), "--no-progress", "--no-plots"])
    assert again["models"]["digits"]["test"] == first["models"]["digits"]["test"]
    assert again["config"]["flags"] == first["config"]["flags"]

    out = tmp_path / "regularization"
    flags = ["--data", str(data_root), "--iterations", "3", "--num-seeds", "2",
             "--model", "two_layer", "--print-every", "0", "--no-progress",
             "--no-plots"]  # fmt: skip
    first = regularization.main([*flags, "--out", str(out)])
    again = regularization.main(["--resume", str(out), "--no-progress", "--no-plots"])
    assert again["models"]["results"] == first["models"]["results"]


def test_predict_without_a_checkpoint_uses_the_newest_run(
    data_root, tmp_path, monkeypatch, capsys
):
    from PIL import Image

    from experiments import cat_classifier
    from jaxnet.data import load_catvnoncat

    monkeypatch.chdir(tmp_path)  # runs/ is relative to the working directory
    with pytest.raises(FileNotFoundError, match="train one first"):
        cat_classifier.main(["--predict", "x.png"])
    run_dir = tmp_path / "runs" / "cat_classifier-20260101-000000"
    cat_classifier.main(
        ["--model", "deep", "--iterations", "2", "--data", str(data_root), "--out",
         str(run_dir), "--no-plots", "--no-progress"]
    )  # fmt: skip
    data = load_catvnoncat(data_root / "catvnoncat")
    Image.fromarray(data.test_images[0]).resize((90, 60)).save("wide.png")
    result = cat_classifier.main(["--predict", "wide.png"])
    printed = capsys.readouterr().out
    assert (
        f"newest run's deep model: {Path('runs') / run_dir.name / 'deep.npz'}"
        in printed
    )
    assert "not square" in printed and 0 <= result["probability"] <= 1
