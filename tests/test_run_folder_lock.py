"""One run per folder: a run holds an exclusive lock on its --out folder.

Real processes, real races: two runs started together into one --out, a
--resume of a folder whose run is still training, and a SIGKILLed run whose
lock the OS must drop. Plus the in-process rules of ``make_run_dir``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import common

ROOT = Path(__file__).resolve().parents[1]


def env(data_root=None) -> dict:
    extra = {"JAXNET_DATA": str(data_root)} if data_root else {}
    return {**os.environ, **extra, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}


def test_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    """Another process holds the lock: make_run_dir refuses, naming its PID."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "from experiments import common; import sys, time; "
         f"common.make_run_dir({str(out)!r}, 'x'); print('locked', flush=True); "
         "time.sleep(60)"],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        for resume in (False, True):
            with pytest.raises(common.RunFolderError) as e:
                common.make_run_dir(str(out), "x", overwrite=True, resume=resume)
            assert str(holder.pid) in str(e.value) and "in use" in str(e.value)
        holder.kill()  # the OS drops the lock of a killed process
        holder.wait(10)
        path = common.make_run_dir(str(out), "x", resume=True)
        assert (path / common.LOCK_FILE).read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        common.release_run_dir(out)


def test_the_lock_is_released_at_the_end_of_the_run(tmp_path):
    """finish_run releases the folder: resuming it in the same process works,
    and another process can then take it."""
    out = tmp_path / "run"
    run_dir = common.make_run_dir(str(out), "x")
    common.finish_run(run_dir, {"models": {}})
    code = (
        "from experiments import common; "
        f"common.make_run_dir({str(out)!r}, 'x', resume=True); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip() == "ok", done.stderr


def cat_command(*args) -> list[str]:
    return [
        sys.executable, "-m", "experiments.cat_classifier", "--model", "deep",
        "--no-plots", "--no-progress", *args,
    ]  # fmt: skip


def test_two_runs_started_together_into_one_folder_exactly_one_runs(
    data_root, tmp_path
):
    """3 tries of two cat_classifier runs started at the same moment into one
    --out: every time one trains and one is refused with one line."""
    for trial in range(3):
        out = tmp_path / f"run{trial}"
        cmd = cat_command("--iterations", "20", "--out", str(out))
        procs = [
            subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env(data_root),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        results = [(p.wait(240), *p.communicate()) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        (refused,) = [err for code, _, err in results if code == 1]
        line = refused.strip()
        assert "\n" not in line and line.startswith("error: "), refused
        assert "in use by another run" in line or "already holds a run" in line
        saved = json.loads((out / "metrics.json").read_text())
        assert saved["models"]["deep"]["finished"] is True


def test_resume_of_a_running_folder_is_refused_then_works_after_sigkill(
    data_root, tmp_path
):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cat_command("--iterations", "1000000", "--out", str(out)), cwd=ROOT,
        env=env(data_root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "deep.npz").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        resume = subprocess.run(
            cat_command("--resume", str(out)), cwd=ROOT, env=env(data_root),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resume.returncode == 1, resume.stderr
        assert resume.stderr.strip().count("\n") == 0, resume.stderr
        assert f"process {proc.pid}" in resume.stderr, resume.stderr
        assert proc.poll() is None  # the running run was left alone
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # The OS dropped the lock with the process: resume is accepted now. It
        # is stopped with SIGINT once it has resumed (a million iterations).
        again = subprocess.Popen(
            cat_command("--resume", str(out)), cwd=ROOT, env=env(data_root),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            for line in again.stdout:
                if "resuming at" in line:
                    break
            again.send_signal(signal.SIGINT)
            rest = again.communicate(timeout=120)[0]
        finally:
            again.kill()
        assert again.returncode == 130, rest
        assert json.loads((out / "metrics.json").read_text())["interrupted"] is True
    finally:
        proc.kill()


STUDIES = {  # module -> flags that reach make_run_dir quickly
    "cat_classifier": ["--model", "deep", "--iterations", "1"],
    "digits": ["--epochs", "1"],
    "regularization": ["--iterations", "1"],
    "regression": ["--iterations", "1"],
    "activations": ["--datasets", "flower", "--iterations", "1"],
    "learning_rates": ["--synthetic", "--iterations", "1"],
    "vectorization": ["--size", "10"],
}


def test_every_study_refuses_a_folder_in_use(data_root, autompg_root, tmp_path):
    """The lock is taken in make_run_dir, which every study goes through: each
    refuses a folder another process holds, naming it, and writes nothing."""
    import importlib

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "from experiments import common; import time; "
         f"common.make_run_dir({str(out)!r}, 'x'); print('locked', flush=True); "
         "time.sleep(120)"],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        for name, flags in STUDIES.items():
            study = importlib.import_module(f"experiments.{name}")
            data = str(autompg_root if name == "regression" else data_root)
            no_data = name in ("vectorization", "activations", "learning_rates")
            data_flags = [] if no_data else ["--data", data]
            with pytest.raises(common.RunFolderError, match=str(holder.pid)):
                study.main([*flags, *data_flags, "--out", str(out), "--no-plots"])
            assert sorted(p.name for p in out.iterdir()) == [common.LOCK_FILE], name
    finally:
        holder.kill()
