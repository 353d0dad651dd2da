"""How much memory a run needs, estimated before anything is allocated.

A layer too wide for the machine (n[1] = 200000 on the cat set) used to reach
XLA, whose failed allocation aborts the whole process (SIGABRT, no message).
``check_run_memory`` adds up what a run holds at once and refuses, in one line,
a run whose estimate exceeds the memory available:

    params          sum over l of n[l] (n[l-1] + 1)                  x N models
    gradients and the updated params: 2 more copies of the params    x N
    optimizer state the optimizer's own slots (0 for gd, 1 for momentum
                    and rmsprop, 2 for adam; read with jax.eval_shape) x N
    activations     Z[l], A[l], dA[l], dZ[l]: 4 sum over l of n[l] b  x N
                    (b = the batch size, or m for full batch)
    data            X (n_x, m) and Y (n[L], m), plus the host copies
    wide path       G = X^T X (m, m) and P = W[1]_0 X (n[1], m)      (gram form)

all in the run's dtype. It is an estimate (XLA fuses some temporaries and adds
others), meant to turn a certain crash into an error, not to pack memory
tightly. The limit is what the device can still give: on an accelerator its
``memory_stats()`` (bytes_limit - bytes_in_use); on the CPU MemAvailable of
/proc/meminfo, else physical memory (``os.sysconf``). The environment variable
``JAXNET_MEMORY_LIMIT`` (bytes) overrides it, e.g. to keep a run well below
the machine's size.
"""

import math
import os
from collections.abc import Sequence

import jax
import numpy as np

LIMIT_VARIABLE = "JAXNET_MEMORY_LIMIT"


class RunTooLargeError(ValueError, MemoryError):
    """A run whose estimated memory exceeds what is available (refused before
    allocating). A ValueError like every other bad input, and a MemoryError."""


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes(device=None) -> tuple[int, str]:
    """(bytes a run may still allocate, where that number comes from)."""
    override = os.environ.get(LIMIT_VARIABLE)
    if override:
        try:
            return int(float(override)), f"${LIMIT_VARIABLE}"
        except ValueError:
            raise ValueError(
                f"${LIMIT_VARIABLE} must be a number of bytes; got {override!r}"
            ) from None
    device = device if device is not None else jax.devices()[0]
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # some backends do not implement it
            stats = {}
        if "bytes_limit" in stats:
            free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
            return int(free), f"free memory of {device.device_kind}"
    free = _meminfo_available()
    if free is not None:
        return free, "MemAvailable in /proc/meminfo"
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(total), "physical memory"
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1, "unknown (no limit applied)"


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; powers of 1024."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def estimate_run_bytes(
    layer_dims: Sequence[int],
    m: int,
    *,
    itemsize: int,
    batch_size: int | None = None,
    num_models: int = 1,
    optimizer_bytes: int = 0,
    wide: bool = False,
) -> dict[str, int]:
    """The parts of a run's memory, in bytes (see the module doc).

    Args:
        layer_dims: [n[0], ..., n[L]].
        m: number of training examples.
        itemsize: bytes per number of the run's dtype (4 for float32).
        batch_size: minibatch size b, or None (full batch: b = m).
        num_models: N models trained at once (a sweep), 1 otherwise.
        optimizer_bytes: the optimizer state of all N models, in bytes.
        wide: include the gram form's G (m, m) and P (n[1], m).

    Returns:
        {"params", "gradients", "optimizer", "activations", "data", "wide"}.
    """
    dims = [int(n) for n in layer_dims]
    b = m if batch_size is None else min(int(batch_size), m)
    n_params = sum(n * (p + 1) for p, n in zip(dims[:-1], dims[1:], strict=True))
    params = num_models * n_params * itemsize
    return {
        "params": params,
        "gradients": 2 * params,
        "optimizer": int(optimizer_bytes),
        "activations": 4 * num_models * sum(dims[1:]) * b * itemsize,
        "data": 2 * (dims[0] + dims[-1]) * m * itemsize,
        "wide": (m * m + num_models * dims[1] * m) * itemsize if wide else 0,
    }


def check_memory(parts: dict[str, int], what: str, fix: str, device=None) -> None:
    """Refuse ``parts`` (bytes by name) whose sum exceeds the available memory.

    Raises:
        RunTooLargeError: one line with the estimate, its largest parts, the
            limit and where the limit comes from, and ``fix``.
    """
    total = sum(parts.values())
    limit, source = available_bytes(device)
    if total <= limit:
        return
    shown = ", ".join(
        f"{name} {format_bytes(size)}"
        for name, size in sorted(parts.items(), key=lambda item: -item[1])
        if size
    )
    raise RunTooLargeError(
        f"{what} needs about {format_bytes(total)} ({shown}) but only "
        f"{format_bytes(limit)} is available ({source}): {fix}"
    )


def check_run_memory(
    layer_dims: Sequence[int],
    m: int,
    dtype,
    *,
    batch_size: int | None = None,
    num_models: int = 1,
    optimizer_bytes: int = 0,
    wide: bool = False,
    device=None,
) -> None:
    """Refuse a run whose estimated memory exceeds what is available.

    Raises:
        RunTooLargeError: the estimate, the limit and the fix, in one line.
    """
    itemsize = np.dtype(dtype).itemsize
    parts = estimate_run_bytes(
        layer_dims, m, itemsize=itemsize, batch_size=batch_size,
        num_models=num_models, optimizer_bytes=optimizer_bytes, wide=wide,
    )  # fmt: skip
    widest = max(range(1, len(layer_dims)), key=lambda l: layer_dims[l])
    fix = (
        f"use fewer units (the widest layer is n[{widest}] = {layer_dims[widest]}), "
        "a smaller batch_size, fewer examples or fewer models"
    )
    what = f"a run of layer_dims {list(map(int, layer_dims))} on m = {m} examples"
    if num_models > 1:
        what += f" x {num_models} models"
    check_memory(parts, what, fix, device)


def tree_bytes(tree) -> int:
    """Bytes of a pytree of arrays or ``jax.ShapeDtypeStruct`` s."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not hasattr(leaf, "shape"):
            continue
        try:
            itemsize = np.dtype(dtype).itemsize
        except TypeError:  # key arrays and other extended dtypes: negligible
            continue
        total += math.prod(leaf.shape) * itemsize
    return total
