"""Save and load network params as one ``.npz`` file readable with numpy alone.

Layout of the file (``np.load(path)`` works with the default allow_pickle=False):

- "W1", "b1", ..., "WL", "bL": layer l's weights (n[i], n[i-1]) and bias (n[i], 1);
- "layer_dims": int64, (L + 1,);
- "activations": unicode array of activation names;
- "metadata_json": 0-d unicode string holding a JSON object.

Saving writes a temporary file in the same folder and moves it into place with
``os.replace``, so an interrupted save never destroys the previous checkpoint.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REQUIRED_KEYS = ("layer_dims", "activations", "metadata_json")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or inconsistent."""


def _check_shapes(params_np: list[dict], layer_dims: list[int], where: str) -> None:
    if len(params_np) != len(layer_dims) - 1:
        raise ValueError(
            f"{where}: {len(params_np)} layers of params but layer_dims "
            f"{layer_dims} implies {len(layer_dims) - 1}"
        )
    for i, layer in enumerate(params_np, start=1):
        expected = {
            "W": (layer_dims[i], layer_dims[i - 1]),
            "b": (layer_dims[i], 1),
        }
        if set(layer) != {"W", "b"}:
            raise ValueError(
                f"{where}: layer {i} has keys {sorted(layer)}, expected ['W', 'b']"
            )
        for name, shape in expected.items():
            got = tuple(layer[name].shape)
            if got != shape:
                raise ValueError(
                    f"{where}: layer {i}: {name}{i} has shape {got}, expected "
                    f"{shape} from layer_dims {layer_dims}"
                )


def save_checkpoint(
    path, params, *, layer_dims, activations, metadata: dict | None = None
) -> Path:
    """Write params and their description to ``path`` atomically.

    Args:
        path: destination file (written exactly as given; ".npz" is advised).
        params: list of per-layer dicts; entry i-1 holds {"W": (n[i], n[i-1]),
            "b": (n[i], 1)} as jax or numpy arrays.
        layer_dims: [n[0], n[1], ..., n[L]].
        activations: activation names, e.g. ["relu", "relu", "sigmoid"].
        metadata: optional JSON-serialisable dict (seed, cost, iterations ...).

    Returns:
        the path written.

    Raises:
        ValueError: shapes disagree with layer_dims, or metadata is not JSON.
    """
    path = Path(path)
    dims = [int(n) for n in layer_dims]
    params_np = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
    _check_shapes(params_np, dims, "save_checkpoint")
    try:
        metadata_json = json.dumps({} if metadata is None else metadata)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata must be JSON-serialisable: {e}") from e
    arrays = {
        "layer_dims": np.asarray(dims, dtype=np.int64),
        "activations": np.asarray([str(a) for a in activations], dtype=np.str_),
        "metadata_json": np.asarray(metadata_json, dtype=np.str_),
    }
    for i, layer in enumerate(params_np, start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = layer["W"], layer["b"]
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _read_all(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as e:
        reason = " ".join(str(e).split())
        raise CheckpointError(
            f"{path}: not a readable .npz checkpoint (truncated or corrupt?): {reason}"
        ) from e


def load_checkpoint(path) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Read a checkpoint written by `save_checkpoint` and validate it.

    Args:
        path: the .npz file.

    Returns:
        params: list of per-layer dicts of numpy arrays, {"W": (n[i], n[i-1]),
            "b": (n[i], 1)}, dtypes as saved (wrap with jnp.asarray if needed).
        info: {"layer_dims": list[int], "activations": list[str],
            "metadata": dict}.

    Raises:
        FileNotFoundError: no file at path.
        CheckpointError: not an npz file, or keys missing.
        ValueError: shapes inconsistent with layer_dims (names layer and shapes).
    """
    path = Path(path)
    arrays = _read_all(path)
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise CheckpointError(f"{path}: missing {missing}; found keys {sorted(arrays)}")
    dims = [int(n) for n in np.ravel(arrays["layer_dims"])]
    n_layers = len(dims) - 1
    expected = {f"{p}{i}" for i in range(1, n_layers + 1) for p in "Wb"}
    present = set(arrays) - set(REQUIRED_KEYS)
    if present != expected:
        raise CheckpointError(
            f"{path}: layer_dims {dims} needs arrays {sorted(expected)}; missing "
            f"{sorted(expected - present)}, unexpected {sorted(present - expected)}"
        )
    params = [
        {"W": arrays[f"W{i}"], "b": arrays[f"b{i}"]} for i in range(1, n_layers + 1)
    ]
    _check_shapes(params, dims, str(path))
    try:
        metadata = json.loads(str(arrays["metadata_json"][()]))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata_json is not valid JSON: {e}") from e
    info = {
        "layer_dims": dims,
        "activations": [str(a) for a in np.ravel(arrays["activations"])],
        "metadata": metadata,
    }
    return params, info
