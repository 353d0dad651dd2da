"""The local launcher: variables per copy, relayed output, and no orphans.

The copies are small stdlib-only scenarios of ``tests/distributed_worker.py``
(no JAX), so each test takes about a second.
"""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxnet.launch import TIMEOUT_STATUS, launch, main

ROOT = Path(__file__).resolve().parents[1]
WORKER = [sys.executable, "-m", "tests.distributed_worker"]


@pytest.fixture(autouse=True)
def in_repository(monkeypatch):
    monkeypatch.chdir(ROOT)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def recorded_pids(folder: Path) -> list[int]:
    return [int(p) for f in folder.glob("pids-*") for p in f.read_text().split()]


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "processes outlived the launcher"


def test_each_copy_gets_its_variables_and_a_prefix(monkeypatch):
    monkeypatch.setenv(
        "XLA_FLAGS",
        "--xla_cpu_use_thunk_runtime=true --xla_force_host_platform_device_count=9",
    )
    out = io.StringIO()
    assert launch([*WORKER, "echo_env"], 2, devices_per_process=3, out=out) == 0
    lines = sorted(out.getvalue().splitlines())
    assert [line[:4] for line in lines] == ["[0] ", "[1] "]
    envs = [json.loads(line[4:]) for line in lines]
    assert [env["JAXNET_PROCESS_ID"] for env in envs] == ["0", "1"]
    assert {env["JAXNET_NUM_PROCESSES"] for env in envs} == {"2"}
    (coordinator,) = {env["JAXNET_COORDINATOR"] for env in envs}
    assert coordinator.startswith("127.0.0.1:")
    assert envs[0]["XLA_FLAGS"] == (
        "--xla_cpu_use_thunk_runtime=true --xla_force_host_platform_device_count=3"
    )


def test_log_dir_shows_process_0_and_files_the_others(tmp_path, capfd):
    assert launch([*WORKER, "echo_env"], 2, log_dir=tmp_path) == 0
    shown = capfd.readouterr().out
    assert json.loads(shown)["JAXNET_PROCESS_ID"] == "0"
    logged = (tmp_path / "process-1.log").read_text()
    assert json.loads(logged)["JAXNET_PROCESS_ID"] == "1"


def test_a_failing_copy_stops_the_others_and_their_children(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL", "1")
    start = time.monotonic()
    status = launch([*WORKER, "sleep_or_fail", str(tmp_path)], 2, grace=2, timeout=60)
    assert status == 3
    assert time.monotonic() - start < 30
    assert len(recorded_pids(tmp_path)) == 4  # 2 copies, each with a child
    assert_all_gone(recorded_pids(tmp_path))


def test_timeout_stops_everything(tmp_path):
    status = launch([*WORKER, "sleep_or_fail", str(tmp_path)], 2, grace=1, timeout=2)
    assert status == TIMEOUT_STATUS
    assert_all_gone(recorded_pids(tmp_path))


def test_sigterm_to_the_launcher_stops_every_copy(tmp_path):
    args = [sys.executable, "-m", "jaxnet.launch", "--processes", "2", "--"]
    launcher = subprocess.Popen(
        [*args, *WORKER, "sleep_or_fail", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(recorded_pids(tmp_path)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(recorded_pids(tmp_path)) == 4, "the copies did not start"
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=20) == 128 + signal.SIGTERM
        assert_all_gone(recorded_pids(tmp_path))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        for pid in recorded_pids(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.wait()


def test_main_returns_the_command_status():
    command = [sys.executable, "-c", "import sys; sys.exit(5)"]
    assert main(["--processes", "1", "--", *command]) == 5
    with pytest.raises(ValueError, match="no command"):
        main(["--processes", "1"])
