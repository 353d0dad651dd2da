"""Checks of what a user hands to training, run once on the host before a run.

The compiled step never validates (it reads only shapes). These functions read
values with numpy (a jax array is copied to the host once) and raise
``InputError``, a ValueError whose message says what was expected and how to
fix it, in the lecture's terms:

    check_params(params)                       list of {"W", "b"} dicts: shapes,
                                               float dtype, finite values
    check_training_data(params, X, Y, output,  X (n_x, m), Y (n_y, m), finite,
                        dtype=None)            also after conversion to the run's
                                               dtype (X = 1e39 is inf in float32),
                                               labels that fit the output layer
    from_course_params / to_course_params      the course's {"W1", "b1", ...} dict

Labels by output (the ``label_check`` of each row of ``jaxnet.outputs.OUTPUTS``):

    sigmoid   every Y entry is 0 or 1
    softmax   every column of Y is a distribution over the K classes:
              one-hot (one 1, the rest 0) or soft (entries >= 0, summing to
              1, e.g. label smoothing). The hand-written backward is exact for
              any labels (dZ[L] = A[L] sum_k Y_k - Y); the boundary refuses
              all-zero, multi-hot or unnormalized columns as likely mistakes
    linear    any finite values
"""

import re
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from jaxnet.params import Params

STACKED_HINT = (
    "these look like stacked sweep params (a leading model axis); use jaxnet.sweep "
    "or unstack(params, i)"
)
FLOAT_HINT = "cast with jax.tree.map(lambda x: x.astype(jnp.float32), params)"


class InputError(ValueError):
    """An argument a user passed to jaxnet is malformed; the message says how."""


def _name(l: int, key: str) -> str:
    return f"{key}{l} (params[{l - 1}][{key!r}])"


def _first_bad(name: str, bad: np.ndarray) -> str:
    """'3 of 15 entries, the first at X[2, 7]' for a boolean mask of bad entries."""
    first = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
    return f"{int(bad.sum())} of {bad.size} entries, the first at {name}[{first}]"


def _check_finite(name: str, values: np.ndarray, fix: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f"{name} has non-finite values (NaN or inf) in {_first_bad(name, bad)}: "
            f"{fix}"
        )


def _check_in_dtype(name: str, values: np.ndarray, dtype) -> None:
    """Refuse finite values that ``dtype`` turns into inf, or non-zero into 0."""
    info = np.finfo(dtype)
    if values.dtype.kind == "f" and np.finfo(values.dtype).bits <= info.bits:
        return  # converting to a dtype at least as wide changes nothing
    with np.errstate(over="ignore", under="ignore"):
        converted = values.astype(info.dtype)
    bad = ~np.isfinite(converted) | ((converted == 0) & (values != 0))
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise InputError(
        f"{name} holds values the run's dtype {info.dtype} cannot hold (finite up "
        f"to {float(info.max):.4g}, non-zero from "
        f"{float(info.smallest_subnormal):.4g}): {_first_bad(name, bad)} = "
        f"{float(values[first]):g}, which becomes {float(converted[first]):g}. "
        f"Rescale {name} (e.g. standardize it) or train in float64 (float64 params "
        "with jax_enable_x64 on)"
    )


def _layer(l: int, layer) -> tuple:
    """(W, b) of layer l, checked: keys, W 2-D, b (n[l], 1), float dtypes."""
    keys = set(layer) if isinstance(layer, Mapping) else None
    if keys != {"W", "b"}:
        got = f"keys {sorted(map(str, keys))}" if keys is not None else type(layer)
        raise InputError(
            f"params[{l - 1}] (layer {l}) must be a dict with exactly the keys 'W' "
            f"and 'b'; got {got}"
        )
    W, b = (
        v if hasattr(v, "dtype") else np.asarray(v) for v in (layer["W"], layer["b"])
    )
    if W.ndim == 3:
        raise InputError(f"{_name(l, 'W')} has shape {W.shape}: {STACKED_HINT}")
    if W.ndim != 2:
        raise InputError(
            f"{_name(l, 'W')} must be a matrix (n[{l}], n[{l - 1}]); got {W.shape}"
        )
    n = W.shape[0]
    if b.shape != (n, 1):
        hint = ""
        if b.shape in ((n,), (1, n)):
            hint = ": reshape it with b.reshape(-1, 1)"
        elif b.ndim == 2 and b.shape[0] == 1:
            hint = ": one bias per unit, shared by the m examples, not per column"
        raise InputError(
            f"{_name(l, 'b')} must be (n[{l}], 1) = ({n}, 1); got {b.shape}{hint}"
        )
    for key, leaf in (("W", W), ("b", b)):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise InputError(
                f"{_name(l, key)} has dtype {leaf.dtype}; params must be real "
                f"floats: {FLOAT_HINT}"
            )
    return W, b


def _layer_dims(params) -> tuple[int, ...]:
    """[n[0], ..., n[L]] of well-formed params; reads only shapes and dtypes."""
    if isinstance(params, Mapping):
        if params and all(re.fullmatch(r"[Wb]\d+", str(k)) for k in params):
            raise InputError(
                "params look like the course's dict {'W1': ..., 'b1': ..., ...}; "
                "jaxnet uses a list of per-layer dicts [{'W': W1, 'b': b1}, ...]: "
                "convert with jaxnet.from_course_params(params)"
            )
        single = " (one layer? wrap it: [params])" if set(params) == {"W", "b"} else ""
        raise InputError(
            "params must be a list of per-layer dicts [{'W': W1, 'b': b1}, ...]; "
            f"got a dict with keys {sorted(map(str, params))}{single}"
        )
    if not isinstance(params, list | tuple) or not params:
        raise InputError(
            "params must be a non-empty list of per-layer dicts {'W': (n[l], "
            "n[l-1]), 'b': (n[l], 1)} (see jaxnet.init_params); got "
            f"{type(params).__name__}"
        )
    dims: list[int] = []
    for l, layer in enumerate(params, start=1):
        W, _ = _layer(l, layer)
        if dims and W.shape[1] != dims[-1]:
            raise InputError(
                f"layer sizes do not chain: W{l - 1} is ({dims[-1]}, {dims[-2]}) so "
                f"W{l} needs {dims[-1]} columns (n[{l - 1}] = {dims[-1]}); got "
                f"{W.shape}"
            )
        dims = dims or [W.shape[1]]
        dims.append(W.shape[0])
    return tuple(dims)


def check_params(params: Params) -> None:
    """Check the params' structure, shapes, dtypes and values.

    Expected: a list with one dict per layer, entry l-1 = {"W": W[l] (n[l],
    n[l-1]), "b": b[l] (n[l], 1)}, float arrays whose sizes chain, all finite.

    Raises:
        InputError: the course's {"W1", "b1", ...} dict (convert with
            ``from_course_params``), stacked sweep params, a missing key, a bias
            that is not a column, integer arrays, sizes that do not chain, or NaN
            or inf entries (the message names the array and the first bad index).
    """
    _layer_dims(params)
    for l, layer in enumerate(params, start=1):
        for key in ("W", "b"):
            _check_finite(
                f"{key}{l}",
                np.asarray(layer[key]),
                "the params diverged? re-initialise them (jaxnet.init_params) or "
                "load an earlier checkpoint",
            )


def _as_numbers(name: str, values) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold numbers; got dtype {values.dtype}")
    return values


def binary_labels(Y: np.ndarray) -> None:
    """Every entry of Y is 0 or 1 (a sigmoid output's labels)."""
    ok = (Y == 0) | (Y == 1)
    if ok.all():
        return
    values = np.unique(Y)
    shown = ", ".join(f"{v:g}" for v in values[:6]) + ", ..." * (values.size > 6)
    if values.size == 2 and values[0] == 0:
        k = f"{values[1]:g}"
        hint = f"for labels 0/{k} pass Y / {k} (or (Y == {k}) * 1.0)"
    elif values.size == 2:
        hint = f"to mark class {values[1]:g} as 1, pass (Y == {values[1]:g}) * 1.0"
    else:
        hint = (
            "to mark class k as 1, pass (Y == k) * 1.0; for more than two classes "
            "use a softmax output with jaxnet.labels.one_hot(labels, K)"
        )
    raise InputError(
        f"labels must be 0 or 1 for a sigmoid output; Y holds {{{shown}}} "
        f"({_first_bad('Y', ~ok)}, are not 0 or 1): {hint}"
    )


def distribution_labels(Y: np.ndarray) -> None:
    """Every column of Y is a distribution over the K classes: Y >= 0, sum 1.

    One-hot labels are the usual case; soft targets and label smoothing pass
    too (the softmax backward is exact for them). The sum may miss 1 by
    rounding: |sum - 1| <= max(1e-4, 4 K eps) of Y's float type.
    """
    K = Y.shape[0]
    eps = np.finfo(Y.dtype).eps if Y.dtype.kind == "f" else 0.0
    sums = Y.sum(axis=0, dtype=np.float64)
    ok = (Y >= 0).all(axis=0) & (np.abs(sums - 1) <= max(1e-4, 4 * K * eps))
    if ok.all():
        return
    j = int(np.argmin(ok))
    column = Y[:, j]
    binary = ((column == 0) | (column == 1)).all()
    if (column < 0).any():
        why = "a negative entry"
    elif sums[j] == 0:
        why = "all zeros: no class"
    elif binary:
        why = f"multi-hot: {int(sums[j])} ones"
    else:
        why = f"it sums to {sums[j]:.6g}"
    shown = column[:10].tolist() + (["..."] if column.size > 10 else [])
    raise InputError(
        "softmax labels must be one-hot columns (one 1, the rest 0) or soft "
        "labels (each column non-negative and summing to 1, e.g. label "
        f"smoothing); {int((~ok).sum())} of {ok.size} columns are not, the first "
        f"is column {j} = {shown} ({why}). Encode integer class labels with "
        f"jaxnet.labels.one_hot(labels, {K})"
    )


def check_training_data(params: Params, X, Y, output: str, *, dtype=None) -> None:
    """Check X, Y and the labels against the params and the output layer.

    Expected: X (n_x, m) numbers with n_x = n[0] and m >= 1, Y (n[L], m), both
    finite, and labels that fit ``output`` (its row's ``label_check``). The params'
    shapes are checked too (not their values: see ``check_params``). With
    ``dtype`` (the run's float dtype) X and Y must also stay finite, and
    non-zero entries non-zero, after conversion to it: X = 1e39 is finite in
    float64 but inf in float32.

    Args:
        params: the network's params, [{"W", "b"}, ...].
        X: inputs, (n_x, m), one example per column.
        Y: labels or targets, (n[L], m).
        output: the output activation, a name in ``jaxnet.outputs.OUTPUTS``.
        dtype: the run's float dtype, or None to skip the conversion check.

    Raises:
        InputError: anything else, with the fix in the message.
    """
    from jaxnet.outputs import OUTPUTS  # (outputs imports the label checks here)

    if output not in OUTPUTS:
        raise InputError(
            f"output must be one of {list(OUTPUTS)} (the last activation); got "
            f"{output!r}"
        )
    dims = _layer_dims(params)
    n_x, n_y = dims[0], dims[-1]
    X = _as_numbers("X", X)
    if X.ndim != 2 or X.shape[0] != n_x:
        hint = ""
        if X.ndim == 2 and X.shape[1] == n_x:
            hint = ": are examples in rows? Pass X.T"
        elif X.shape == (n_x,):
            hint = ": one example? Pass x.reshape(-1, 1)"
        raise InputError(
            f"X must be (n_x, m) = ({n_x}, m) for layer_dims[0] = {n_x}; got "
            f"{X.shape}{hint}"
        )
    m = X.shape[1]
    if m == 0:
        raise InputError(f"no examples: X has 0 columns; X must be ({n_x}, m), m >= 1")
    Y = _as_numbers("Y", Y)
    if Y.shape != (n_y, m):
        hint = ""
        if Y.ndim == 1 or Y.shape == (1, m):
            one_hot = f"one-hot encode: jaxnet.labels.one_hot(labels, {n_y})"
            hint = f" ({'reshape labels to (1, m)' if n_y == 1 else one_hot})"
        elif Y.shape == (m, n_y):
            hint = " (labels in rows? pass Y.T)"
        raise InputError(
            f"Y must be (n_y, m) = ({n_y}, {m}) to match X {X.shape}; got "
            f"{Y.shape}{hint}"
        )
    fix = (
        "drop or repair those examples: keep = np.isfinite(X).all(axis=0) & "
        "np.isfinite(Y).all(axis=0); X, Y = X[:, keep], Y[:, keep]"
    )
    _check_finite("X", X, fix)
    _check_finite("Y", Y, fix)
    if dtype is not None:
        _check_in_dtype("X", X, dtype)
        _check_in_dtype("Y", Y, dtype)
    label_check = OUTPUTS[output].label_check
    if label_check is not None:
        label_check(Y)


def from_course_params(course: Mapping) -> Params:
    """The course's {"W1": ..., "b1": ..., "WL": ..., "bL": ...} as jaxnet params.

    Returns [{"W": W1, "b": b1}, ..., {"W": WL, "b": bL}] with the same arrays
    (not copied or cast).

    Raises:
        InputError: keys other than W1..WL, b1..bL, a gap in the numbering, or
            shapes that are not W (n[l], n[l-1]) and b (n[l], 1) and chain.
    """
    if not isinstance(course, Mapping):
        raise InputError(
            f"expected the course's dict {{'W1', 'b1', ...}}; got {course!r}"
        )
    numbers: dict[int, set[str]] = {}
    for key in course:
        match = re.fullmatch(r"([Wb])([1-9]\d*)", str(key))
        if match is None:
            raise InputError(
                f"course params hold only W1, b1, ..., WL, bL; got key {key!r}"
            )
        numbers.setdefault(int(match[2]), set()).add(match[1])
    L = max(numbers, default=0)
    missing = [
        f"{k}{l}" for l in range(1, L + 1) for k in "Wb" if k not in numbers.get(l, ())
    ]
    if L == 0 or missing:
        raise InputError(
            f"course params must number the layers 1..L with both W and b; "
            f"missing {missing or ['W1', 'b1']}"
        )
    params = [{"W": course[f"W{l}"], "b": course[f"b{l}"]} for l in range(1, L + 1)]
    _layer_dims(params)
    return params


def to_course_params(params: Params) -> dict:
    """jaxnet params as the course's dict {"W1": ..., "b1": ..., ..., "bL": ...}."""
    _layer_dims(params)
    return {
        f"{key}{l}": layer[key]
        for l, layer in enumerate(params, start=1)
        for key in ("W", "b")
    }
