"""Save and load network params as one ``.npz`` file readable with numpy alone.

Layout of the file (``np.load(path)`` works with the default allow_pickle=False):

- "W1", "b1", ..., "WL", "bL": layer l's weights (n[l], n[l-1]) and bias (n[l], 1),
  float arrays;
- "layer_dims": int64, (L + 1,);
- "activations": unicode array of L activation names, one per layer;
- "metadata_json": 0-d unicode string holding a JSON object;
- "extra/<name>": optional extra arrays (e.g. an optimizer's state), returned by
  ``load_checkpoint`` in ``info["extra"]``.

Both directions validate: names known (``ACTIVATIONS`` for hidden layers, plus
``OUTPUTS`` for the output, registered ones included; an unknown name says how
to register it), exactly one per layer, integer
layer sizes, float arrays of the right shapes, and finite values (NaN or inf
weights are refused unless ``allow_nonfinite=True``). A file that is not a
checkpoint (text, a bare .npy array, a pickle) is refused without reading it
further: nothing is ever unpickled.

Saving writes a temporary file in the same folder and moves it into place with
``os.replace``, so an interrupted save never destroys the previous checkpoint.
"""

import json
import operator
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jaxnet import strict_json
from jaxnet.activations import ACTIVATIONS
from jaxnet.outputs import OUTPUTS

REQUIRED_KEYS = ("layer_dims", "activations", "metadata_json")
EXTRA_PREFIX = "extra/"
# What a file starts with -> what it is, for files that are not .npz archives.
NOT_NPZ = {b"\x93NUMPY": "a single .npy array", b"\x80": "a Python pickle"}
SAVE_HINT = "pass allow_nonfinite=True to save them anyway (to inspect a diverged run)"
LOAD_HINT = "the run diverged? load an earlier one (allow_nonfinite=True reads it)"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, inconsistent or holds invalid values."""


def _first_nonfinite(name: str, array: np.ndarray, hint: str, error=ValueError):
    """Raise naming the array, the count and the first index of NaN/inf entries."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise error(
            f"{name} has {int(bad.sum())} non-finite entries (NaN or inf), the "
            f"first at index {first}; {hint}"
        )


def _as_dims(layer_dims) -> list[int]:
    """layer_dims as Python ints; numpy integers pass, floats, strings, bools fail."""
    try:
        dims = list(layer_dims)
        if any(isinstance(n, bool | np.bool_) for n in dims):
            raise TypeError
        return [operator.index(n) for n in dims]
    except TypeError:
        raise ValueError(
            f"layer_dims must be a list of integers [n_x, ..., n_y]; got {layer_dims!r}"
        ) from None


def _check_description(dims, names, where: str, error=ValueError) -> None:
    """layer_dims: >= 2 positive ints; one known activation name per layer."""
    if len(dims) < 2 or min(dims) < 1:
        raise error(f"{where}: layer_dims must be >= 2 positive integers; got {dims}")
    if len(names) != len(dims) - 1:
        raise error(
            f"{where}: need exactly one activation per layer: layer_dims {dims} has "
            f"{len(dims) - 1} layers but activations are {names}"
        )
    outputs = sorted(set(ACTIVATIONS) | set(OUTPUTS))  # the tables as they are now
    for l, name in enumerate(names, start=1):
        last = l == len(names)
        known = outputs if last else sorted(ACTIVATIONS)
        if name not in known:
            call = (
                "jaxnet.register_output(name, forward=..., cost=..., dZ=..., "
                "predict=...)"
                if last
                else "jaxnet.register_activation(name, forward, derivative)"
            )
            raise error(
                f"{where}: unknown activation {name!r} for layer {l}; known: "
                f"{', '.join(known)}. If {name!r} is your own, register it before "
                f"loading or saving: {call}"
            )


def _check_arrays(params_np, dims, where, error, nonfinite_hint: str | None):
    """Shapes from layer_dims, float dtypes and, given a hint, finite values."""
    if len(params_np) != len(dims) - 1:
        raise error(
            f"{where}: {len(params_np)} layers of params but layer_dims "
            f"{dims} implies {len(dims) - 1}"
        )
    for i, layer in enumerate(params_np, start=1):
        if set(layer) != {"W", "b"}:
            raise error(
                f"{where}: layer {i} has keys {sorted(layer)}, expected ['W', 'b']"
            )
        expected = {"W": (dims[i], dims[i - 1]), "b": (dims[i], 1)}
        for name, shape in expected.items():
            array = layer[name]
            if tuple(array.shape) != shape:
                raise error(
                    f"{where}: layer {i}: {name}{i} has shape {array.shape}, "
                    f"expected {shape} from layer_dims {dims}"
                )
            if array.dtype.kind != "f":
                raise error(
                    f"{where}: {name}{i} has dtype {array.dtype}; params must be "
                    "float arrays (cast with .astype(np.float32))"
                )
            if nonfinite_hint is not None:
                _first_nonfinite(f"{where}: {name}{i}", array, nonfinite_hint, error)


def _as_extra(extra_arrays, allow_nonfinite: bool) -> dict[str, np.ndarray]:
    out = {}
    for name, value in (extra_arrays or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"extra_arrays names must be non-empty strings: {name!r}")
        array = np.asarray(value)
        if array.dtype.kind not in "biufU":
            raise ValueError(
                f"extra array {name!r} has dtype {array.dtype}; only numeric and "
                "string arrays can be saved (nothing is pickled)"
            )
        if array.dtype.kind == "f" and not allow_nonfinite:
            _first_nonfinite(f"extra array {name!r}", array, SAVE_HINT)
        out[EXTRA_PREFIX + name] = array
    return out


def save_checkpoint(
    path,
    params,
    *,
    layer_dims,
    activations,
    metadata: dict | None = None,
    extra_arrays: dict | None = None,
    allow_nonfinite: bool = False,
) -> Path:
    """Write params and their description to ``path`` atomically.

    Args:
        path: destination file (written exactly as given; ".npz" is advised).
        params: list of per-layer dicts; entry l-1 holds {"W": (n[l], n[l-1]),
            "b": (n[l], 1)} as float jax or numpy arrays.
        layer_dims: [n[0], n[1], ..., n[L]], integers (numpy integers too).
        activations: one name per layer, e.g. ["relu", "relu", "sigmoid"].
        metadata: optional JSON-serialisable dict (seed, cost, iterations ...).
        extra_arrays: optional {name: array} (numeric or string), stored as
            "extra/<name>" and returned by ``load_checkpoint`` in info["extra"].
        allow_nonfinite: save NaN or inf values too (e.g. to inspect a diverged
            run); refused by default.

    Returns:
        the path written.

    Raises:
        ValueError: a bad layer size or activation name, shapes that disagree
            with layer_dims, non-float or non-finite arrays, or non-JSON metadata.
    """
    path = Path(path)
    dims = _as_dims(layer_dims)
    if isinstance(activations, str):
        raise ValueError(
            f"activations must be a list of names, one per layer; got the single "
            f"string {activations!r}"
        )
    names = [str(a) for a in activations]
    params_np = [{k: np.asarray(v) for k, v in layer.items()} for layer in params]
    _check_arrays(
        params_np,
        dims,
        "save_checkpoint",
        ValueError,
        None if allow_nonfinite else SAVE_HINT,
    )
    _check_description(dims, names, "save_checkpoint")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict; got {type(metadata).__name__}")
    try:
        metadata_json = strict_json.dumps({} if metadata is None else metadata)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata must be JSON-serialisable: {e}") from e
    arrays = {
        "layer_dims": np.asarray(dims, dtype=np.int64),
        "activations": np.asarray(names, dtype=np.str_),
        "metadata_json": np.asarray(metadata_json, dtype=np.str_),
        **_as_extra(extra_arrays, allow_nonfinite),
    }
    for i, layer in enumerate(params_np, start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = layer["W"], layer["b"]
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # numpy's stub types **kwds as allow_pickle's bool; the keys are W1, b1...
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # readable by others, like the run's other files
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


CORRUPT_HINT = "the file is corrupt: re-run, or restore a copy"
MAX_METADATA_CHARS = 1_000_000  # metadata is a few hundred characters
MAX_METADATA_DEPTH = 32  # nesting of JSON objects and lists
MAX_DEFLATE_RATIO = 1100  # deflate cannot expand more than ~1032 times
# What reading a damaged zip or .npy member raises (zipfile, zlib, numpy's
# header parser, a decompressor it does not know).
READ_ERRORS = (
    OSError,
    EOFError,
    KeyError,
    ValueError,
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    OverflowError,
)


def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str):
    """(shape, fortran_order, dtype) of an .npy member, read from its header
    alone and checked against the member's size before any data is read."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read is None:
            raise CheckpointError(
                f"{where}: member {info.filename!r} has .npy "
                f"format version {version}; {CORRUPT_HINT}"
            )
        shape, fortran, dtype = read(f, max_header_size=10_000)
    if dtype.hasobject:
        raise CheckpointError(
            f"{where}: array {info.filename.removesuffix('.npy')!r} holds Python "
            "objects; a checkpoint holds only numeric and string arrays (nothing "
            "is unpickled)"
        )
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > info.file_size:
        raise CheckpointError(
            f"{where}: member {info.filename!r} claims shape {shape} of {dtype} "
            f"({nbytes:,} bytes) but holds {info.file_size:,} bytes; {CORRUPT_HINT}"
        )
    return shape, fortran, dtype


def _open_members(path: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """{array name: zip entry}; refuses duplicates and sizes the file cannot hold."""
    infos = zf.infolist()
    names = [info.filename for info in infos]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CheckpointError(
            f"{path}: the archive holds {twice} more than once (which one is the "
            f"checkpoint?); {CORRUPT_HINT}"
        )
    size = path.stat().st_size
    members = {}
    for info in infos:
        stored = info.compress_type == zipfile.ZIP_STORED
        limit = size if stored else MAX_DEFLATE_RATIO * max(info.compress_size, 1)
        if info.file_size > limit or info.compress_size > size:
            raise CheckpointError(
                f"{path}: member {info.filename!r} claims {info.file_size:,} bytes, "
                f"more than the {size:,}-byte file can hold; {CORRUPT_HINT}"
            )
        if not info.filename.endswith(".npy"):
            raise CheckpointError(
                f"{path}: member {info.filename!r} is not a .npy "
                "array; save_checkpoint writes only .npy members"
            )
        members[info.filename.removesuffix(".npy")] = info
    return members


def _read_all(path: Path, expect=None) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path``, read with nothing allocated
    before the headers are checked: each member's claimed size against the
    file's, then ``expect(headers, description)`` (headers {name: (shape,
    fortran_order, dtype)}, description the REQUIRED_KEYS arrays present)."""
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint file; pass the .npz file in it "
            "(e.g. deep.npz)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(b"PK\x03\x04"):
        what = next(
            (v for k, v in NOT_NPZ.items() if head.startswith(k)),
            "empty" if not head else "not a zip archive (a text file?)",
        )
        raise CheckpointError(
            f"{path}: not a readable .npz checkpoint: the file is {what}; "
            "save_checkpoint writes an .npz archive"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            members = _open_members(path, zf)
            headers = {
                name: _member_header(zf, info, str(path))
                for name, info in members.items()
            }
            order = sorted(members, key=lambda name: name not in REQUIRED_KEYS)
            arrays: dict[str, np.ndarray] = {}
            for name in order:
                if expect is not None and name not in REQUIRED_KEYS:
                    expect(headers, dict(arrays))
                    expect = None
                with zf.open(members[name]) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    except CheckpointError:
        raise
    except READ_ERRORS as e:
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise CheckpointError(
            f"{path}: not a readable .npz checkpoint ({reason}); {CORRUPT_HINT}"
        ) from e
    for name, array in arrays.items():
        shape, _, dtype = headers[name]
        if array.shape != tuple(shape) or array.dtype != dtype:
            raise CheckpointError(
                f"{path}: array {name!r} is shorter than its "
                f"header says; {CORRUPT_HINT}"
            )
    return arrays


def _description(arrays: dict, where: str) -> tuple[list[int], list[str]]:
    """layer_dims and activation names as stored, checked for type and count."""
    dims_array, names_array = arrays["layer_dims"], arrays["activations"]
    if dims_array.ndim != 1 or dims_array.dtype.kind not in "iu":
        raise CheckpointError(
            f"{where}: layer_dims must be a list of integers; got {dims_array!r}"
        )
    if names_array.ndim != 1 or names_array.dtype.kind != "U":
        raise CheckpointError(
            f"{where}: activations must be a list of names, one per layer; got "
            f"{names_array!r}"
        )
    dims, names = [int(n) for n in dims_array], [str(a) for a in names_array]
    _check_description(dims, names, where, CheckpointError)
    return dims, names


def _layout(path, keys: set, arrays: dict) -> tuple[list[int], list[str], list]:
    """(layer_dims, activations, extra keys) after checking that ``keys`` are
    exactly the description, one W and b per layer, and "extra/" arrays."""
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise CheckpointError(f"{path}: missing {missing}; found keys {sorted(keys)}")
    dims, names = _description(arrays, str(path))
    extra = sorted(k for k in keys if k.startswith(EXTRA_PREFIX))
    expected = {f"{p}{i}" for i in range(1, len(dims)) for p in "Wb"}
    present = keys - set(REQUIRED_KEYS) - set(extra)
    if present != expected:
        raise CheckpointError(
            f"{path}: layer_dims {dims} needs arrays {sorted(expected)}; missing "
            f"{sorted(expected - present)}, unexpected {sorted(present - expected)}"
        )
    return dims, names, extra


def _depth(value) -> int:
    """How deeply JSON lists and objects nest in ``value`` (0 for a scalar)."""
    depth, level = 0, [value]
    while level:
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        depth += 1
    return depth - 1


def _metadata(path, stored: np.ndarray) -> dict:
    """The metadata JSON object, refused when malformed, huge or deeply nested."""
    if stored.ndim != 0 or stored.dtype.kind != "U":
        raise CheckpointError(
            f"{path}: metadata_json must be one string; got "
            f"{stored.dtype} {stored.shape}"
        )
    text = str(stored[()])
    if len(text) > MAX_METADATA_CHARS:
        raise CheckpointError(
            f"{path}: metadata_json holds {len(text):,} characters "
            f"(at most {MAX_METADATA_CHARS:,}); {CORRUPT_HINT}"
        )
    try:
        metadata = json.loads(text)
    except RecursionError:
        metadata = None
    except ValueError as e:
        raise CheckpointError(f"{path}: metadata_json is not valid JSON: {e}") from e
    if metadata is None or _depth(metadata) > MAX_METADATA_DEPTH:
        raise CheckpointError(
            f"{path}: metadata_json nests deeper than "
            f"{MAX_METADATA_DEPTH} levels; {CORRUPT_HINT}"
        )
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: metadata_json must hold a JSON object")
    return metadata


def load_checkpoint(
    path, *, allow_nonfinite: bool = False
) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Read a checkpoint written by `save_checkpoint` and validate it.

    Args:
        path: the .npz file.
        allow_nonfinite: accept NaN or inf values (refused by default).

    Returns:
        params: list of per-layer dicts of numpy arrays, {"W": (n[l], n[l-1]),
            "b": (n[l], 1)}, dtypes as saved (wrap with jnp.asarray if needed).
        info: {"layer_dims": list[int], "activations": list[str],
            "metadata": dict}, plus "extra": {name: array} when the file holds
            extra arrays.

    Raises:
        FileNotFoundError: no file at path.
        CheckpointError (a ValueError): not an .npz checkpoint, keys missing,
            unknown activation names or the wrong number of them, non-integer
            layer_dims, shapes inconsistent with layer_dims, non-float or
            non-finite arrays (the message names the array), bad metadata.
    """
    path = Path(path)
    where = str(path)

    def expect(headers, description):  # before any weight is read
        dims, _, _ = _layout(path, set(headers), description)
        for i in range(1, len(dims)):
            for name, shape in (("W", (dims[i], dims[i - 1])), ("b", (dims[i], 1))):
                if tuple(headers[f"{name}{i}"][0]) != shape:
                    raise CheckpointError(
                        f"{path}: layer {i}: {name}{i} has shape "
                        f"{tuple(headers[f'{name}{i}'][0])}, expected {shape} from "
                        f"layer_dims {dims}"
                    )

    arrays = _read_all(path, expect)
    dims, names, extra_keys = _layout(path, set(arrays), arrays)
    n_layers = len(dims) - 1
    extra = {k.removeprefix(EXTRA_PREFIX): arrays[k] for k in extra_keys}
    params = [
        {"W": arrays[f"W{i}"], "b": arrays[f"b{i}"]} for i in range(1, n_layers + 1)
    ]
    hint = None if allow_nonfinite else LOAD_HINT
    _check_arrays(params, dims, where, CheckpointError, hint)
    for name, array in extra.items():
        if array.dtype.kind == "f" and hint is not None:
            _first_nonfinite(
                f"{where}: extra array {name!r}", array, hint, CheckpointError
            )
    metadata = _metadata(path, arrays["metadata_json"])
    info = {"layer_dims": dims, "activations": names, "metadata": metadata}
    if extra:
        info["extra"] = extra
    return params, info
