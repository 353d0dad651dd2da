"""Run N copies of a command as one multi-process JAX program on this machine.

    python -m jaxnet.launch --processes 2 --devices-per-process 2 -- \\
        python -m experiments.digits --devices 4

Copy i gets JAXNET_COORDINATOR=127.0.0.1:PORT (a free port unless --port),
JAXNET_NUM_PROCESSES=N and JAXNET_PROCESS_ID=i, which
``jaxnet.distributed.initialize_from_env`` reads, and with --devices-per-process
K an XLA_FLAGS that forces K host (CPU) devices. Output lines are prefixed
"[i] "; with --log-dir DIR only process 0 writes to the terminal and process i
to DIR/process-i.log.

If a copy fails, on Ctrl-C, on SIGTERM or after --timeout, every copy is stopped
with its own children (SIGTERM to its process group, SIGKILL after a grace
period), and the launcher exits with the first non-zero status (124 for the
timeout, 128 + signal for a signal).
"""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from jaxnet.distributed import ENV_VARS, FORCE_DEVICES_FLAG

TIMEOUT_STATUS = 124


class _SignalledError(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.status = 128 + signum


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
    old = signal.signal(signal.SIGTERM, on_signal) if in_main else None
    try:
        for i in range(processes):
            env = process_env(i, processes, coordinator, devices_per_process)
            target = _output(i, log_dir)
            proc = subprocess.Popen(
                list(command),
                env=env,
                stdout=target,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(proc)
            if target is subprocess.PIPE:
                args = (proc.stdout, f"[{i}] ", out, lock)
                thread = threading.Thread(target=_stream, args=args, daemon=True)
                thread.start()
                threads.append(thread)
            elif target is not None:
                target.close()  # the child holds its own descriptor
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
        if in_main:  # a second SIGTERM must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(procs, grace)
        if in_main:
            signal.signal(signal.SIGTERM, old)
        for thread in threads:
            thread.join(timeout=grace)
    if status == 0:
        codes = [proc.returncode for proc in procs if proc.returncode]
        status = next((c if c > 0 else 128 - c for c in codes), 0)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jaxnet.launch",
        description="Run N copies of a command as one multi-process JAX program.",
    )
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument(
        "--devices-per-process",
        type=int,
        default=None,
        help="force this many host (CPU) devices in each copy (XLA_FLAGS)",
    )
    parser.add_argument("--port", type=int, default=None, help="default: a free one")
    parser.add_argument("--host", default="127.0.0.1", help="the coordinator's address")
    parser.add_argument(
        "--log-dir", default=None, help="show process 0; i to DIR/process-i.log"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="stop all after this many s"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
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
