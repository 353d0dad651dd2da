"""Plumbing shared by the experiments: run folders, JSON, dtypes, flags."""

import json
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp


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


def make_run_dir(out: str | None, study: str) -> Path:
    """The run folder: ``out`` if given, else runs/<study>-<timestamp>."""
    path = (
        Path(out) if out else Path("runs") / f"{study}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: dict) -> Path:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def finish_run(run_dir: Path, metrics: dict) -> dict:
    """Write metrics.json into the run folder, say where it is, and return metrics.

    Every experiment ends here, so each run folder holds its metrics.json and
    ``main`` returns the same dict, with ``run_dir`` added.
    """
    write_json(Path(run_dir) / "metrics.json", metrics)
    print(f"run folder: {run_dir}")
    return {**metrics, "run_dir": str(run_dir)}


def parse_int_list(text: str) -> list[int]:
    """ "12288,20,7,5,1" -> [12288, 20, 7, 5, 1] (for --layer-dims)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers; got {text!r}") from None
    if not values:
        raise ValueError(f"expected comma-separated integers; got {text!r}")
    return values


def parse_float_list(text: str) -> list[float]:
    """ "0.01,0.001" -> [0.01, 0.001]."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers; got {text!r}") from None
    if not values:
        raise ValueError(f"expected comma-separated numbers; got {text!r}")
    return values


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
