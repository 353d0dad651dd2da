"""Plumbing shared by the experiments: run folders, run records, JSON, plots.

Flags live in ``experiments.cli``; this module holds what happens around a
run: its folder (never silently reused), its record (metrics.json in one
schema: {"config", "dataset", "models"}), and the command-line wrapper that
turns expected errors into one clean message and signals into exit codes.

Several processes (``python -m jaxnet.launch``): ``join_processes`` joins them,
and only process 0 prints, plots and writes files; the run folder, JSON and
plot helpers here do nothing on the others.
"""

import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import distributed


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


class RunFolderError(ValueError):
    """--out names a folder that holds another run."""


def make_run_dir(out: str | None, study: str, overwrite: bool = False) -> Path:
    """The run folder: ``out`` if given, else runs/<study>-<timestamp>.

    A folder that already holds a run (metrics.json, checkpoints, plots) is
    refused unless ``overwrite``, which first removes those files, so no stale
    file survives beside the new run's.

    Raises:
        RunFolderError: the folder holds a run and overwrite is off.
    """
    path = (
        Path(out) if out else Path("runs") / f"{study}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if not distributed.is_main_process():
        return path  # process 0 makes and checks it
    old = (
        [f for pattern in RUN_FILES for f in path.glob(pattern)]
        if path.is_dir()
        else []
    )
    if old and not overwrite:
        raise RunFolderError(
            f"{path} already holds a run ({', '.join(sorted(f.name for f in old))}): "
            f"pass --overwrite to replace it, or --resume {path} to continue it"
        )
    for f in old:
        f.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    """Mean and standard deviation over seeds (ddof=0), plus the raw values."""
    values = np.asarray(values, dtype=np.float64)
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


def run_cli(main) -> None:
    """``if __name__ == "__main__"`` for every experiment: one error style.

    Expected failures (missing data, a bad value, a folder holding a run) print
    one line "error: ..." and exit 1; ``main`` may return a dict with
    "exit_code" (130 / 143 after Ctrl-C / SIGTERM) which becomes the status.
    """
    from jaxnet.data import DatasetError, DatasetNotFoundError

    try:
        result = main()
    except (DatasetNotFoundError, DatasetError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    code = result.get("exit_code", 0) if isinstance(result, dict) else 0
    if code:  # stopped by a signal, its record written: leave at once, without
        sys.stdout.flush()  # the interpreter's teardown (up to ~1 s) or waiting
        sys.stderr.flush()  # for a compilation the stop made useless
        os._exit(code)
    sys.exit(code)


def write_json(path: Path, data: dict) -> Path:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file.

    Only process 0 writes (with several processes the others return at once).
    """
    path = Path(path)
    if not distributed.is_main_process():
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # readable by others, like the plots
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def finish_run(run_dir: Path, metrics: dict, stop=None, study: str = "") -> dict:
    """Write metrics.json into the run folder, say where it is, and return metrics.

    Every experiment ends here, so each run folder holds its metrics.json and
    ``main`` returns the same dict, with ``run_dir`` added and, after a signal
    (``stop``, a ``jaxnet.interrupts.StopOnSignal``), "exit_code" 130 / 143 and
    the command that resumes the run printed.
    """
    exit_code = 0
    if stop is not None and stop():
        metrics = {**metrics, "interrupted": True, "signal": stop.name}
        exit_code = stop.exit_code
        print(f"\n{stop.name}: stopped with the work so far saved. Resume with:")
        print(f"  python -m experiments.{study} --resume {run_dir}")
    write_json(Path(run_dir) / "metrics.json", metrics)
    print(f"run folder: {run_dir}")
    return {**metrics, "run_dir": str(run_dir), "exit_code": exit_code}


def save_figure(fig, path, dpi: int = 100) -> None:
    """Lay out, save (PNG, readable by others) and close a matplotlib figure.

    Only process 0 saves (the others just close it)."""
    if distributed.is_main_process():
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
