"""Ctrl-C stops every experiment within about a second, and resumes exactly.

Real commands in subprocesses, real signals at random moments after training
started (the first checkpoint, or the first printed cost of a sweep). The
promise, on an idle 2-core machine: training stops <= STOP_BOUND s after the
signal, and the process has exited <= EXIT_BOUND s after it (checkpoint,
evaluation and metrics.json written; plots are skipped after a stop).
Chunks are sized by measured wall time, so the stop bound holds under load
too; the exit includes compilations and interpreter teardown, which a loaded
machine slows down, so its bound is scaled by the load measured at the time
(``load_factor``; 1 on an idle machine).
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
from tests.test_run_safety import ROOT

STOP_BOUND = 1.5  # seconds, signal -> "stopped after ..." printed
EXIT_BOUND = 1.5  # seconds, signal -> process exited (idle machine)


def load_factor() -> float:
    """How many times over the CPUs are busy (1-minute load / cores), >= 1."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


class Run:
    """An experiment in a subprocess, its output lines timestamped."""

    def __init__(self, data_root, module, *args):
        env = {**os.environ, "JAXNET_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"experiments.{module}", "--no-progress", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip()))

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_until_training(self, out: Path, timeout=240.0):
        """Until the first checkpoint exists or a cost is printed."""
        deadline = time.monotonic() + timeout
        while not (
            list(out.glob("*.npz"))
            or any(line.startswith("Cost after") for _, line in self.lines)
        ):
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended before training:\n{self.output}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"no training after {timeout} s:\n{self.output}")
            time.sleep(0.02)

    def interrupt(self, signum=signal.SIGINT) -> tuple[float, float]:
        """Send the signal; (seconds to "stopped after", seconds to exit)."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        self.proc.wait(timeout=120)
        exited = time.monotonic() - sent
        self.reader.join(timeout=10)
        # "stopped after ..." when training was running; a signal between two
        # models (evaluating one) stops before the next: the record's line.
        stopped = [
            t - sent
            for t, line in self.lines
            if "stopped after" in line or "stopped with the work" in line
        ]
        assert stopped, self.output
        return stopped[0], exited


CASES = {
    "cat_classifier": ("cat_classifier", []),
    "digits": ("digits", []),
    "digits-batch-1": ("digits", ["--batch-size", "1", "--epochs", "10"]),
    "digits-batch-8000": ("digits", ["--batch-size", "8000"]),
    "regularization": ("regularization", []),
}


@pytest.mark.exclusive
@pytest.mark.parametrize("case", list(CASES))
def test_ctrl_c_stops_and_exits_within_the_bound(data_root, tmp_path, case):
    module, args = CASES[case]
    out = tmp_path / "run"
    run = Run(data_root, module, *args, "--out", str(out))
    try:
        run.wait_until_training(out)
        time.sleep(np.random.default_rng().uniform(0.0, 1.0))  # a random moment
        load = load_factor()
        stopped, exited = run.interrupt()
    finally:
        run.proc.kill()
    print(
        f"{case}: stopped {stopped:.2f} s, exited {exited:.2f} s after SIGINT "
        f"(load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    assert run.proc.returncode == 130, run.output
    assert json.loads((out / "metrics.json").read_text())["interrupted"] is True
    assert stopped <= STOP_BOUND, f"training stopped {stopped:.2f} s after SIGINT"
    assert exited <= EXIT_BOUND * load, (
        f"exited {exited:.2f} s after SIGINT (bound {EXIT_BOUND} s x load {load:.1f})"
    )
    assert not list(out.glob("*.png"))  # a stopped run leaves at once


# ------------------------------------------- stopped inside an epoch, resumed

# 1000 digits in batches of 4: 250 steps an epoch, so a stop almost always
# falls inside an epoch; a small network keeps the steps short.
DIGITS = ["--train-size", "1000", "--layer-dims", "784,16,10", "--batch-size",
          "4", "--print-every", "0", "--no-plots"]  # fmt: skip


def final(run_dir: Path):
    params, info = load_checkpoint(run_dir / "digits.npz")
    model = json.loads((run_dir / "metrics.json").read_text())["models"]["digits"]
    return params, info, model


# Two of the four (signal, dtype) pairs keep CI short: each signal and each dtype
# is covered; the in-process tests in test_chunks cover both dtypes at two stops.
@pytest.mark.parametrize(
    ("signum", "dtype"),
    [(signal.SIGKILL, "float64"), (signal.SIGINT, "float32")],
)
def test_digits_stopped_inside_an_epoch_resumes_bit_for_bit(
    data_root, tmp_path, dtype, signum
):
    flags = [*DIGITS, "--dtype", dtype, "--epochs", "200"]  # a few seconds
    env = {**os.environ, "JAXNET_DATA": str(data_root)}

    def digits(*args):
        done = subprocess.run(
            [sys.executable, "-m", "experiments.digits", "--no-progress", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    whole = tmp_path / "whole"
    digits(*flags, "--out", str(whole))

    stopped = tmp_path / "stopped"
    run = Run(data_root, "digits", *flags, "--out", str(stopped))
    try:
        run.wait_until_training(stopped)
        time.sleep(np.random.default_rng().uniform(0.0, 0.5))
        run.proc.send_signal(signum)
        run.proc.wait(timeout=120)
    finally:
        run.proc.kill()
    _, info = load_checkpoint(stopped / "digits.npz")
    assert not info["metadata"]["finished"], "the signal came after the run ended"
    inside = int(info["extra"]["epoch_step"])
    assert 0 < inside < 250, f"the checkpoint is at an epoch boundary ({inside})"
    if signum == signal.SIGINT:
        assert run.proc.returncode == 130, run.output
        _, _, model = final(stopped)
        assert model["steps_into_epoch"] == inside
        assert model["epochs_done"] == info["metadata"]["iterations_done"]
        assert len(info["extra"]["costs"]) == model["epochs_done"]
    printed = digits("--resume", str(stopped))
    assert f"and {inside} minibatch steps" in printed

    a_params, a_info, a_model = final(whole)
    b_params, b_info, b_model = final(stopped)
    assert b_info["metadata"]["finished"]
    for a, b in zip(a_params, b_params, strict=True):
        for name in ("W", "b"):
            np.testing.assert_array_equal(a[name], b[name])
    for name in ("costs", "key", "opt_1", "opt_2"):
        np.testing.assert_array_equal(a_info["extra"][name], b_info["extra"][name])
    for key in ("costs", "train", "test", "confusion", "epochs_done"):
        assert a_model[key] == b_model[key], key
