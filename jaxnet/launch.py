"""Run N copies of a command as one multi-process JAX program on this machine.

    python -m jaxnet.launch --processes 2 --devices-per-process 2 -- \\
        python -m experiments.digits --devices 4

Copy i gets JAXNET_COORDINATOR=127.0.0.1:PORT (a free port unless --port),
JAXNET_NUM_PROCESSES=N and JAXNET_PROCESS_ID=i, which
``jaxnet.distributed.initialize_from_env`` reads, and with --devices-per-process
K an XLA_FLAGS that forces K host (CPU) devices. Output lines are prefixed
"[i] "; with --log-dir DIR only process 0 writes to the terminal and process i
to DIR/process-i.log.

If a copy fails, on Ctrl-C, on SIGTERM, on SIGHUP (the terminal was closed) or
after --timeout, every copy is stopped with its own children (SIGTERM to its
process group, SIGKILL after a grace period), and the launcher exits with the
first non-zero status (124 for the timeout, 128 + signal for a signal: 129 for
SIGHUP, 130 for Ctrl-C, 143 for SIGTERM; 127 if the command cannot be started).

The copies also die with the launcher when it is killed outright (SIGKILL, a
crash), in two independent ways:

- a watchdog: a small stdlib-only Python process in its own session reads a pipe
  whose only writer is the launcher. When the launcher ends for any reason the
  kernel closes the pipe; unless the launcher said "done" first, the watchdog
  stops every copy's process group (SIGTERM, then SIGKILL after the grace
  period), so the copies' own children go too. It works on every POSIX system.
- on Linux, each copy also asks the kernel for SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``, set in the child before the command starts).
  The kernel sends it when the *thread* that started the copy ends; `launch`
  starts and waits for its copies in the calling thread, so that thread lives as
  long as the copies. This covers a copy even if the watchdog is killed too, but
  not the copy's own children (that is the watchdog's job).

Command-line mistakes (``--processes 0``, a non-integer, no command) end in one
line ``python -m jaxnet.launch: error: ...`` and exit status 2.
"""

import argparse
import contextlib
import ctypes
import math
import operator
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jaxnet.distributed import ENV_VARS, FORCE_DEVICES_FLAG

TIMEOUT_STATUS = 124
NOT_STARTED_STATUS = 127
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # stop the copies, exit 128 + signum
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# The watchdog (see the module docstring), run as ``python -I -c`` so that it
# imports only the standard library. stdin: "+PGID" per copy, "done" at the end.
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
grace, groups = float(sys.argv[1]), set()
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    if line.startswith("+"):
        groups.add(int(line[1:]))
def alive(group):
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    return True
if any(map(alive, groups)):
    print("[launch] the launcher is gone; stopping its copies", file=sys.stderr)
for sig in (signal.SIGTERM, signal.SIGKILL):
    for group in groups:
        try:
            os.killpg(group, sig)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while any(map(alive, groups)) and time.monotonic() < deadline:
        time.sleep(0.05)
"""


class _SignalledError(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.status = 128 + signum


class _Watchdog:
    """Stops the copies' process groups if the launcher dies without saying done."""

    def __init__(self, grace: float):
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, repr(float(grace))],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # no Ctrl-C or hang-up from the terminal
        )

    def _say(self, line: str) -> None:
        with contextlib.suppress(OSError):  # it is gone: nothing to tell
            self._proc.stdin.write(f"{line}\n".encode())  # type: ignore[union-attr]  # stdin=PIPE
            self._proc.stdin.flush()  # type: ignore[union-attr]  # stdin=PIPE

    def watch(self, group: int) -> None:
        self._say(f"+{group}")

    def done(self) -> None:
        """The copies are stopped; let the watchdog exit without acting."""
        self._say("done")
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]  # stdin=PIPE
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a preexec_fn: SIGTERM this child when the launcher dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent, sigterm = os.getpid(), int(signal.SIGTERM)

    def set_parent_death_signal() -> None:  # runs in the child, before exec
        if prctl(PR_SET_PDEATHSIG, sigterm, 0, 0, 0) == 0 and os.getppid() != parent:
            os.kill(os.getpid(), sigterm)  # the launcher died before the prctl

    return set_parent_death_signal


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def process_env(
    process_id: int,
    processes: int,
    coordinator: str,
    devices_per_process: int | None = None,
    base: dict | None = None,
) -> dict:
    """The environment of copy process_id: base plus the JAXNET_* variables."""
    env = dict(os.environ if base is None else base)
    coordinator_var, count_var, id_var = ENV_VARS
    env.update(
        {
            coordinator_var: coordinator,
            count_var: str(processes),
            id_var: str(process_id),
        }
    )
    if devices_per_process is not None:
        flags = env.get("XLA_FLAGS", "").split()
        flags = [f for f in flags if not f.startswith(FORCE_DEVICES_FLAG)]
        flags.append(f"{FORCE_DEVICES_FLAG}={devices_per_process}")
        env["XLA_FLAGS"] = " ".join(flags)
    return env


def _stream(pipe, prefix: str, out, lock: threading.Lock) -> None:
    for raw in iter(pipe.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            out.write(f"{prefix}{line}\n")
            out.flush()
    pipe.close()


def _output(process_id: int, log_dir):
    """Where copy process_id writes: a pipe to relay, the terminal, or its log."""
    if log_dir is None:
        return subprocess.PIPE
    if process_id == 0:
        return None
    return open(Path(log_dir) / f"process-{process_id}.log", "wb")  # noqa: SIM115


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM each copy's process group, then SIGKILL what is left after grace s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        if all(proc.poll() is not None for proc in procs):
            return


def launch(
    command: Sequence[str],
    processes: int,
    *,
    devices_per_process: int | None = None,
    port: int | None = None,
    host: str = "127.0.0.1",
    log_dir: str | Path | None = None,
    timeout: float | None = None,
    grace: float = 5.0,
    out=None,
) -> int:
    """Start the copies, relay their output, wait; see the module docstring.

    Returns:
        0 if every copy succeeded, else the first non-zero status.
    """
    if not command:
        raise ValueError("no command to launch; put it after --")
    processes = operator.index(processes)
    if processes < 1:
        raise ValueError(f"--processes must be >= 1; got {processes}")
    out = sys.stdout if out is None else out
    coordinator = f"{host}:{port or free_port(host)}"
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    threads: list[threading.Thread] = []
    status = 0

    def on_signal(signum, frame):
        raise _SignalledError(signum)

    in_main = threading.current_thread() is threading.main_thread()
    old = {}
    if in_main:
        old = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    watchdog = None
    try:
        watchdog = _Watchdog(grace)
        die_with_parent = _die_with_parent()
        for i in range(processes):  # every copy before any thread (preexec_fn)
            env = process_env(i, processes, coordinator, devices_per_process)
            target = _output(i, log_dir)
            try:
                proc = subprocess.Popen(
                    list(command),
                    env=env,
                    stdout=target,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            except OSError as e:
                print(f"[launch] cannot start {command[0]!r}: {e}", file=sys.stderr)
                status = NOT_STARTED_STATUS
                break
            finally:
                if target not in (subprocess.PIPE, None):
                    target.close()  # the child holds its own descriptor
            procs.append(proc)
            watchdog.watch(proc.pid)  # its process group (new session)
        for i, proc in enumerate(procs):
            if proc.stdout is not None:
                args = (proc.stdout, f"[{i}] ", out, lock)
                thread = threading.Thread(target=_stream, args=args, daemon=True)
                thread.start()
                threads.append(thread)
        start = time.monotonic()
        while status == 0 and any(proc.poll() is None for proc in procs):
            if timeout is not None and time.monotonic() - start > timeout:
                print(f"[launch] timed out after {timeout} s", file=sys.stderr)
                status = TIMEOUT_STATUS
            time.sleep(0.05)
            for i, proc in enumerate(procs):
                code = proc.poll()
                if status == 0 and code:
                    status = code if code > 0 else 128 - code
                    print(
                        f"[launch] process {i} exited with status {code}; "
                        "stopping the others",
                        file=sys.stderr,
                    )
    except KeyboardInterrupt:
        status = 128 + signal.SIGINT
    except _SignalledError as stop:
        status = stop.status
    finally:
        for signum in old:  # a second SIGTERM or SIGHUP must not cut the clean-up
            signal.signal(signum, signal.SIG_IGN)
        _stop(procs, grace)
        if watchdog is not None:
            watchdog.done()
        for signum, handler in old.items():
            signal.signal(signum, handler)
        for thread in threads:
            thread.join(timeout=grace)
    if status == 0:
        codes = [proc.returncode for proc in procs if proc.returncode]
        status = next((c if c > 0 else 128 - c for c in codes), 0)
    return status


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _integer(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high]."""
    bounds = f">= {low}" if high is None else f"in {low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"expected an integer {bounds}; got {text!r}"
            )
        return value

    return parse


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds > 0; got {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m jaxnet.launch",
        description="Run N copies of a command as one multi-process JAX program.",
    )
    parser.add_argument(
        "--processes", type=_integer(1), required=True, help="how many copies (>= 1)"
    )
    parser.add_argument(
        "--devices-per-process",
        type=_integer(1),
        default=None,
        help="force this many host (CPU) devices in each copy (XLA_FLAGS)",
    )
    parser.add_argument(
        "--port", type=_integer(1, 65535), default=None, help="default: a free one"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the coordinator's address")
    parser.add_argument(
        "--log-dir", default=None, help="show process 0; i to DIR/process-i.log"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=None, help="stop all after this many s"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error(
            "no command to launch; put it after --, e.g. "
            "python -m jaxnet.launch --processes 2 -- python -m experiments.digits"
        )
    return launch(
        command,
        args.processes,
        devices_per_process=args.devices_per_process,
        port=args.port,
        host=args.host,
        log_dir=args.log_dir,
        timeout=args.timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
