"""Plumbing shared by the experiments: run folders, run records, JSON, plots.

Flags live in ``experiments.cli``; this module holds what happens around a
run: its folder (never silently reused), its record (metrics.json in one
schema: {"config", "dataset", "models"}), and the command-line wrapper that
turns expected errors into one clean message and signals into exit codes.

Exit status (``EXIT_HELP``, shown by every experiment's ``--help``): 0 when
every model finished; 3 when the run finished but some model diverged (its
cost became non-finite or rose far above J_0: the model kept is its last good
parameters, and metrics.json says "diverged": true); 130 / 143 after Ctrl-C /
SIGTERM (before 3); 1 for an error (one line "error: ..."); 2 for a usage
error.

Several processes (``python -m jaxnet.launch``): ``join_processes`` joins them,
and only process 0 prints, plots and writes files; the run folder, JSON and
plot helpers here do nothing on the others.
"""

import errno
import fcntl
import os
import signal
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import distributed, strict_json
from jaxnet.interrupts import SIGNALS, StopOnSignal


def set_dtype(name: str):
    """Return the jnp dtype for "float32" / "float64", enabling x64 for the latter.

    float32 is the users' default; float64 is what exact reproductions need.
    """
    if name == "float64":
        jax.config.update("jax_enable_x64", True)
        return jnp.float64
    if name == "float32":
        return jnp.float32
    raise ValueError(f"dtype must be float32 or float64; got {name!r}")


RUN_FILES = ("metrics.json", "*.npz", "*.png")
LOCK_FILE = ".lock"  # held (fcntl.flock) by the process running in the folder
EXIT_DIVERGED = 3
EXIT_HELP = (
    "exit status: 0 all models finished; 3 a model diverged (its last good "
    "parameters are kept; metrics.json says which); 130 / 143 stopped by Ctrl-C "
    "/ SIGTERM (resumable); 1 error; 2 usage error"
)


class RunFolderError(ValueError):
    """--out names a folder that holds another run, is in use, or is unusable."""


def os_error_message(e: OSError, path, doing: str) -> str:
    """One line for an OSError on ``path``: what failed, why, and the fix."""
    fixes = {
        errno.ENOSPC: "free some space or pass --out on another disk",
        errno.EDQUOT: "free some space or pass --out on another disk",
        errno.EROFS: "the filesystem is read-only; pass --out on a writable one",
        errno.EACCES: "pass --out to a folder you may write to",
        errno.EPERM: "pass --out to a folder you may write to",
        errno.ENOTDIR: "a part of the path is a file; pass --out to a folder path",
        errno.EEXIST: "it is a file, not a folder; pass --out to a folder path",
    }
    fix = fixes.get(e.errno, "pass --out to a writable folder")
    return f"cannot {doing} {path}: {e.strerror or e}; {fix}"


def make_run_dir(
    out: str | None, study: str, overwrite: bool = False, resume: bool = False
) -> Path:
    """The run folder, locked for this run: ``out`` if given, else
    runs/<study>-<timestamp>.

    The folder is created, then locked (``lock_run_dir``: one run per folder,
    held until the process ends or ``finish_run``), then checked: a folder that
    already holds a run (metrics.json, checkpoints, plots) is refused unless
    ``overwrite``, which first removes those files, so no stale file survives
    beside the new run's. With ``resume`` the folder must exist and keeps its
    files (the run continues it). With several processes only process 0 makes,
    locks and checks it.

    Raises:
        RunFolderError: the folder holds a run and overwrite is off, another
            process runs in it, or it cannot be made (a file, read-only, full).
    """
    path = (
        Path(out) if out else Path("runs") / f"{study}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if not distributed.is_main_process():
        return path  # process 0 makes and checks it
    if path.exists() and not path.is_dir():
        raise RunFolderError(
            f"--out {path} is a file, not a folder; pass --out to a folder path"
        )
    if resume:
        if not path.is_dir():
            raise RunFolderError(f"--resume {path}: no such run folder")
    else:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(os_error_message(e, path, "create")) from None
    lock_run_dir(path)
    if resume:
        return path
    old = [f for pattern in RUN_FILES for f in path.glob(pattern)]
    if old and not overwrite:
        release_run_dir(path)
        raise RunFolderError(
            f"{path} already holds a run ({', '.join(sorted(f.name for f in old))}): "
            f"pass --overwrite to replace it, or --resume {path} to continue it"
        )
    for f in old:
        f.unlink()
    return path


_LOCKS: dict[Path, int] = {}  # run folder -> file descriptor holding its lock


def lock_run_dir(path: Path) -> None:
    """Lock the run folder for this process: ``fcntl.flock`` on ``path/.lock``.

    The lock lives as long as the process (the OS drops it when the process
    dies, SIGKILL included) or until ``release_run_dir``; the file holds the
    holder's PID so a refused run can name it. Taking a lock this process
    already holds is a no-op.

    Raises:
        RunFolderError: another process holds it (naming its PID), or the lock
            file cannot be made.
    """
    key = Path(path).resolve()
    if key in _LOCKS:
        return
    lock = key / LOCK_FILE
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise RunFolderError(os_error_message(e, path, "lock the run folder")) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(fd)
        os.close(fd)
        raise RunFolderError(
            f"{path} is in use by another run (process {holder}): wait for it to "
            f"end or stop it (kill {holder}), or pass another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _LOCKS[key] = fd


def _holder(fd: int) -> str:
    """The PID written in a lock file (waiting briefly while it is being written)."""
    deadline = time.monotonic() + 1.0
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text if text.isdigit() else "unknown PID"
        time.sleep(0.02)


def release_run_dir(path: Path) -> None:
    """Release this process's lock on the run folder (no-op if not held)."""
    fd = _LOCKS.pop(Path(path).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def accuracy_record(correct: int, total: int) -> dict:
    """An accuracy as exact counts and their fraction (35 of 50 -> 0.7 exactly)."""
    correct, total = int(correct), int(total)
    return {
        "correct": correct,
        "total": total,
        "accuracy": float(Fraction(correct, total)),
    }


def count_correct(predictions, labels) -> int:
    """How many predictions equal their labels (numpy, any matching shapes)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape} predictions vs {labels.shape} labels")
    return int(np.sum(predictions == labels))


def summarize(values) -> dict:
    """Mean and standard deviation over seeds (ddof=0), plus the raw values
    (mean and std None when there are no values, e.g. a run stopped at once)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"mean": None, "std": None, "values": []}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "values": values.tolist(),
    }


def environment(mesh=None) -> dict:
    """What ran the study: jax version, backend, devices, processes, and under
    "distributed" what the run itself used (``jaxnet.distributed.describe``:
    the mesh's device and process counts; 1 and 1 without a mesh)."""
    return {
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "distributed": distributed.describe(mesh),
    }


def join_processes() -> bool:
    """Join the other processes of a launched run (``jaxnet.launch``); no-op alone.

    Call it first in ``main``, before any JAX computation. On processes other
    than 0, stdout is silenced for the rest of the program (only process 0
    prints); errors still reach stderr. Returns whether this is process 0.
    """
    distributed.initialize_from_env()
    if distributed.is_main_process():
        return True
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's life)
    return False


def device_mesh(devices: int):
    """The mesh for ``--devices N``: None for 1 (nothing changes), else a mesh
    of N devices over all processes (``jaxnet.distributed.make_mesh``)."""
    return None if devices == 1 else distributed.make_mesh(devices)


# errno -> what to do about a file that cannot be read or written.
OS_ADVICE = {
    errno.ENOSPC: "free some space, then --resume the run folder (its last "
    "checkpoint is intact)",
    errno.EDQUOT: "free some space, then --resume the run folder",
    errno.EROFS: "choose a writable folder with --out",
    errno.EACCES: "choose a folder you may write to (--out), or fix the permissions",
    errno.EPERM: "choose a folder you may write to (--out), or fix the permissions",
    errno.ENOENT: "check the path",
    errno.EISDIR: "pass a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "choose another --out",
}
DEBUG_HINT = "re-run with --debug for the traceback"
MEMORY_ADVICE = (
    "use fewer or smaller layers (--layer-dims), a smaller --batch-size or fewer "
    "examples"
)


def _one_line(text: str, limit: int = 2000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_line(error: BaseException) -> str:
    """The one line "error: ..." that ``run_cli`` prints for ``error``.

    The library's own errors (a ValueError: bad input, checkpoint, run folder,
    dataset) already name what is wrong and what to do; file errors name the
    path and the fix for their errno; running out of memory gives the knobs;
    anything else is unexpected (a bug): its type and message, and how to see
    the traceback.
    """
    from jaxnet.data import DatasetNotFoundError, FetchError

    message = _one_line(error)
    if isinstance(error, DatasetNotFoundError | FetchError | ValueError):
        return f"error: {message}"
    if isinstance(error, OSError):
        if error.strerror is None:  # raised with our own message
            return f"error: {message}"
        where = " -> ".join(
            str(f) for f in (error.filename, error.filename2) if f is not None
        )
        advice = OS_ADVICE.get(error.errno, "check the path and try again")
        return f"error: {where + ': ' if where else ''}{error.strerror}; {advice}"
    out_of_memory = isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in message
    if out_of_memory:
        detail = f" ({message})" if message else ""
        return f"error: out of memory{detail}; {MEMORY_ADVICE}"
    if isinstance(error, RecursionError):
        return f"error: input nested too deeply ({message}); {DEBUG_HINT}"
    return f"error: unexpected {type(error).__name__}: {message} ({DEBUG_HINT})"


def run_cli(main) -> None:
    """``if __name__ == "__main__"`` for every experiment: one error style.

    Every failure ends in one line "error: ..." on stderr and exit status 1
    (``error_line``): a mistake of the user's names what was wrong and what to
    do, an unexpected exception names itself and ``--debug``. With ``--debug``
    on the command line the traceback is shown instead. Usage errors exit 2
    (``experiments.cli``); Ctrl-C exits 130; ``main`` may return a dict with
    "exit_code" (130 / 143 after Ctrl-C / SIGTERM) which becomes the status.
    """
    try:
        result = main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 (one line for every failure)
        if "--debug" in sys.argv[1:]:
            raise
        sys.exit(error_line(e))
    code = result.get("exit_code", 0) if isinstance(result, dict) else 0
    if code:
        exit_at_once(code)
    sys.exit(code)


def exit_at_once(code: int) -> None:
    """Exit a stopped run now: its record and checkpoint are written and closed,
    so the interpreter's teardown (freeing compiled programs, ~0.5-2 s) is
    skipped for the ~1 s stop promise. With several processes (whose shutdown
    the others wait for) the ordinary exit is kept."""
    if jax.process_count() > 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def write_json(path: Path, data: dict) -> Path:
    """Write strict JSON atomically (temp file + rename): a crash or a full disk
    never leaves half a file, and the old file stays as it was.

    Non-finite numbers become null, listed under "nonfinite" with what they
    were (``jaxnet.strict_json``); NaN/Infinity are never written. Only process
    0 writes (with several processes the others return at once).

    Raises:
        RunFolderError: the file cannot be written (full disk, read-only ...).
    """
    path = Path(path)
    if not distributed.is_main_process():
        return path
    text = strict_json.dumps(data, indent=2) + "\n"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # readable by others, like the plots
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise RunFolderError(os_error_message(e, path, "write")) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


class RunStop(StopOnSignal):
    """``StopOnSignal`` for a whole experiment: it also knows the run's phase.

    Set ``phase`` as the run moves on ("training", "evaluation", "plots"); the
    first signal records it in ``stopped_in``. Inside ``with stop.abortable():``
    the first signal also raises ``RunInterruptedError`` at once, for host work
    that is safe to abandon (timing loops, scoring, plots): the block is left,
    the run goes on after it with ``stop()`` true and records what finished
    before. Check ``stop()`` before entering one: a block entered after the
    signal runs to its end.
    """

    def __init__(self):
        super().__init__()
        self.phase = "setup"
        self.stopped_in: str | None = None
        self._abortable = 0

    def _handle(self, signum, frame):
        first = self.signum is None
        if first:
            self.stopped_in = self.phase
        super()._handle(signum, frame)
        if first and self._abortable and not self._protected:
            raise RunInterruptedError(self.name)

    def abortable(self):
        return _Abortable(self)


class RunInterruptedError(Exception):
    """Raised inside ``RunStop.abortable()`` by the first SIGINT/SIGTERM."""


class _Abortable:
    def __init__(self, stop):
        self.stop = stop

    def __enter__(self):
        self.stop._abortable += 1
        return self

    def __exit__(self, kind, value, tb):
        self.stop._abortable -= 1
        return kind is RunInterruptedError  # swallow the abort; stop() stays True


def keep_stopping(stop, phase: str = "evaluation") -> None:
    """Keep ``stop`` (a ``StopOnSignal``) catching signals after its ``with``
    block, through the evaluation and plots after training, until
    ``finish_run`` writes the record. A first signal there is noted with
    ``phase`` (``stop.stopped_in``) and the run finishes that phase and records
    itself as interrupted; a second Ctrl-C still stops at once."""
    if stop() or threading.current_thread() is not threading.main_thread():
        return

    def handle(signum, frame):
        if stop.signum is None:
            stop.stopped_in = phase
        stop._handle(signum, frame)

    for signum in SIGNALS:
        stop._previous[signum] = signal.signal(signum, handle)


def finish_run(run_dir: Path, metrics: dict, stop=None, study: str = "") -> dict:
    """Write metrics.json into the run folder, say where it is, release the
    folder's lock, and return metrics.

    Every experiment ends here, so each run folder holds its metrics.json and
    ``main`` returns the same dict, with ``run_dir`` added and, after a signal
    (``stop``, a ``jaxnet.interrupts.StopOnSignal``), "interrupted": true, the
    "signal", the "phase" it came in (a ``RunStop``) and "exit_code" 130 / 143;
    with ``study`` (a resumable one) the command that resumes the run is printed.
    Else "exit_code" is 3 when a model diverged (``EXIT_DIVERGED``, said on
    stdout), 0 otherwise.

    Raises:
        RunFolderError: metrics.json cannot be written (full disk, ...).
    """
    exit_code = EXIT_DIVERGED if diverged_models(metrics) else 0
    if stop is not None and stop():
        metrics = {**metrics, "interrupted": True, "signal": stop.name}
        if getattr(stop, "stopped_in", None):
            metrics["phase"] = stop.stopped_in
        exit_code = stop.exit_code
        if study:
            print(f"\n{stop.name}: stopped with the work so far saved. Resume with:")
            print(f"  python -m experiments.{study} --resume {run_dir}")
        else:
            print(f"\n{stop.name}: stopped; what finished is in metrics.json")
    try:
        write_json(Path(run_dir) / "metrics.json", metrics)
    finally:
        release_run_dir(run_dir)
        if stop is not None:
            stop.__exit__(None, None, None)  # the handlers before the run
    if exit_code == EXIT_DIVERGED:
        names = ", ".join(diverged_models(metrics))
        print(f"diverged: {names} (exit status {EXIT_DIVERGED})")
    print(f"run folder: {run_dir}")
    return {**metrics, "run_dir": str(run_dir), "exit_code": exit_code}


def diverged_models(metrics: dict) -> list[str]:
    """The names of the models in metrics["models"] marked "diverged": true
    (a list of settings, as regularization's "results", names them by
    "setting")."""
    found = []
    for name, model in metrics.get("models", {}).items():
        if isinstance(model, dict) and model.get("diverged"):
            found.append(name)
        elif isinstance(model, list):
            found += [
                str(m.get("setting", name))
                for m in model
                if isinstance(m, dict) and m.get("diverged")
            ]
    return found


def apply_stopping_rules(params, costs, rerun) -> tuple:
    """``jaxnet.stopping``'s divergence rules for each model of a sweep.

    A vmapped sweep runs every model to its end (the driver cannot roll back
    one model of N). Here each model's costs go through
    ``jaxnet.stopping.first_bad`` (J_0: its first cost) and its parameters are
    checked finite; a model that broke a rule is trained again alone by
    ``rerun(i, n)`` (a ``jaxnet.runner.train_loop`` of n iterations with that
    model's settings), which stops it by the same rules as every other run and
    keeps its last good parameters ("... Lower the learning rate.").

    Args:
        params: the sweep's stacked params, every leaf (N, ...).
        costs: the sweep's costs, (N, n).
        rerun: ``rerun(i, n) -> RunResult`` for model i.

    Returns:
        (params with the kept ones; costs: a list of N arrays, row i of
        ``costs``, cut for a stopped model after the cost of its kept
        parameters (iterations_done + 1 values); stops: a list of N entries,
        None for a model within the rules, else {"stop_reason",
        "iterations_done", "message"}).
    """
    from jaxnet.stopping import first_bad

    costs = np.asarray(costs)
    kept, stops = [], []
    host = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]  # no compiles
    for i, row in enumerate(costs):
        finite = all(np.isfinite(leaf[i]).all() for leaf in host)
        if row.size == 0 or (finite and first_bad(row, float(row[0])) is None):
            kept.append(row)
            stops.append(None)
            continue
        result = rerun(i, row.shape[-1])
        params = jax.tree.map(
            lambda leaf, new, i=i: leaf.at[i].set(new), params, result.params
        )
        # The kept curve ends with the cost of the kept parameters, J_done.
        kept.append(row[: result.iterations_done + 1])
        stops.append(
            None
            if result.stop_reason is None
            else {
                "stop_reason": result.stop_reason,
                "iterations_done": int(result.iterations_done),
                "message": result.message,
            }
        )
    return params, kept, stops


def stacked_accuracy(params, X, Y, activations) -> np.ndarray:
    """Fraction right of every model of stacked params on (X, Y), (N,)."""
    from jaxnet.train import accuracy

    score = jax.vmap(accuracy, in_axes=(0, None, None, None))
    return np.asarray(score(params, X, Y, tuple(activations)))


def sweep_accuracies(result, trained, stops, data, activations) -> tuple:
    """(train, test) accuracy of every model of a sweep, (N,) each, after
    ``apply_stopping_rules``: the sweep's own scores; those of the kept
    parameters when a model broke a rule; NaN (null in the record) when the
    sweep was interrupted, which is not scored so that a stop leaves at once.

    Args:
        result: the ``jaxnet.sweep`` result.   trained, stops: from
            ``apply_stopping_rules``.   data: (X, Y, X_test, Y_test).
    """
    X, Y, X_test, Y_test = data
    if result.train_accuracy is None:  # interrupted
        return np.full(len(stops), np.nan), np.full(len(stops), np.nan)
    if any(stops):
        return (
            stacked_accuracy(trained, X, Y, activations),
            stacked_accuracy(trained, X_test, Y_test, activations),
        )
    return result.train_accuracy, result.test_accuracy


def save_figure(fig, path, dpi: int = 100) -> None:
    """Lay out, save (PNG, readable by others) and close a matplotlib figure.

    Written to a temporary file and renamed, so a full disk leaves no half
    PNG. Only process 0 saves (the others just close it).

    Raises:
        RunFolderError: the file cannot be written (full disk, ...).
    """
    path = Path(path)
    try:
        if distributed.is_main_process():
            fig.tight_layout()
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise RunFolderError(os_error_message(e, path, "write")) from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    finally:
        pyplot().close(fig)


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
