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


def assert_all_gone(pids: list[int], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_signal_to_the_launcher_stops_every_copy(tmp_path, signum):
    """SIGTERM and SIGHUP (terminal closed) stop the copies and their children;
    so does SIGKILL, which the launcher never sees (the watchdog and, on Linux,
    PR_SET_PDEATHSIG do it). Each copy has a child (4 processes in all)."""
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
        launcher.send_signal(signum)
        assert launcher.wait(timeout=20) == (
            -signum if signum == signal.SIGKILL else 128 + signum
        )
        assert_all_gone(recorded_pids(tmp_path), within=2.0)
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


def test_a_command_that_cannot_start_is_one_line(tmp_path, capfd):
    assert main(["--processes", "2", "--", str(tmp_path / "nope")]) == 127
    err = capfd.readouterr().err
    assert err.splitlines() == [
        f"[launch] cannot start {str(tmp_path / 'nope')!r}: [Errno 2] No such file "
        f"or directory: {str(tmp_path / 'nope')!r}"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--processes", "0", "--", "true"], "--processes: expected an integer >= 1"),
        (["--processes", "-2", "--", "true"], "--processes: expected an integer >= 1"),
        (["--processes", "2.5", "--", "true"], "expected an integer >= 1; got '2.5'"),
        (["--processes", "two", "--", "true"], "expected an integer >= 1; got 'two'"),
        (["--processes", "2"], "no command to launch; put it after --"),
        (["--processes", "2", "--"], "no command to launch; put it after --"),
        (["--", "true"], "the following arguments are required: --processes"),
        (
            ["--processes", "1", "--devices-per-process", "0", "--", "true"],
            "--devices-per-process: expected an integer >= 1; got '0'",
        ),
        (
            ["--processes", "1", "--port", "70000", "--", "true"],
            "--port: expected an integer in 1..65535; got '70000'",
        ),
        (
            ["--processes", "1", "--timeout", "nan", "--", "true"],
            "--timeout: expected a number of seconds > 0; got 'nan'",
        ),
    ],
)
def test_argument_mistakes_are_one_line_and_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("python -m jaxnet.launch: error: ") and message in line
    assert captured.out == ""


def test_an_argument_mistake_from_the_shell_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "jaxnet.launch", "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("python -m jaxnet.launch: error: argument --proc")
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"
)
def test_copies_die_with_the_launcher_without_the_watchdog(tmp_path):
    """Kill the watchdog first, then SIGKILL the launcher: PR_SET_PDEATHSIG alone
    must stop the copies (their own children are the watchdog's job)."""
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
        copies = [int(f.read_text().split()[0]) for f in tmp_path.glob("pids-*")]
        (watchdog,) = set(_children(launcher.pid)) - set(copies)
        os.kill(watchdog, signal.SIGKILL)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=20)
        assert_all_gone(copies, within=2.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        for pid in recorded_pids(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.wait()
