"""More than one device: a mesh, and where each array lives on it.

Users pass a mesh (``fit(..., mesh=make_mesh(4))``, the ``mesh`` training
option); ``jaxnet.boundary.prepare`` puts the run on it with the functions
here. Data parallel training needs no parallel code. The m columns of X and Y
are split over a 1-D mesh of D devices, the parameters are copied to every
device, and the jitted run is the same program as on one device: each device
computes Z, A, dZ for its m / D examples, and where the backward pass sums over m

    dW[l] = (1/m) dZ[l] A[l-1]^T        db[l] = (1/m) sum(dZ[l], axis=1)

XLA adds the partial sums of all devices with one all-reduce per step (one
buffer, the size of the parameters plus the cost). m is the global m, so the
means, dropout masks and minibatch shuffles are those of the one-device run; only
the order of the additions differs (float64: ~1e-15 relative after 200 steps).

A sweep shards its model axis instead (``shard_models``): model i lives on one
device and no step needs a collective.

Several processes (hosts): ``initialize_from_env`` joins them, the mesh spans
every process's devices, each process passes only its columns
(``local_columns``, ``process_columns``) and ``shard_examples`` assembles the
global arrays; small values (params, hyperparameters, keys) are passed whole by
every process.
"""

import operator
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

AXIS = "data"
ENV_VARS = ("JAXNET_COORDINATOR", "JAXNET_NUM_PROCESSES", "JAXNET_PROCESS_ID")
FORCE_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def initialize_from_env(environ=None) -> bool:
    """Join the other processes when JAXNET_COORDINATOR etc. are set; else no-op.

    JAXNET_COORDINATOR (host:port of process 0), JAXNET_NUM_PROCESSES and
    JAXNET_PROCESS_ID (0 .. N-1) go to ``jax.distributed.initialize``; on CPU
    the cross-process collectives are gloo's. Call it first, before any JAX
    computation. Returns whether this process runs with others.
    """
    environ = os.environ if environ is None else environ
    values = {name: environ.get(name, "") for name in ENV_VARS}
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(ENV_VARS):
        return False
    if missing:
        raise ValueError(f"set all of {', '.join(ENV_VARS)} or none; missing {missing}")
    try:
        num_processes = int(values["JAXNET_NUM_PROCESSES"])
        process_id = int(values["JAXNET_PROCESS_ID"])
    except ValueError:
        raise ValueError(
            f"JAXNET_NUM_PROCESSES and JAXNET_PROCESS_ID must be integers; got {values}"
        ) from None
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"need 0 <= JAXNET_PROCESS_ID < JAXNET_NUM_PROCESSES; "
            f"got {process_id} and {num_processes}"
        )
    if not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            values["JAXNET_COORDINATOR"], num_processes, process_id
        )
    return True


def make_mesh(devices: int | Sequence | None = None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh: all devices of all processes, the first N, or the ones given.

    With several processes, N devices means N / P from each process, and the
    devices are ordered by process, so process p holds a contiguous block of
    the examples (``process_columns``). The axis is ``AxisType.Auto``: shardings
    propagate through jit and the lecture's code runs unchanged (``Explicit``,
    ``jax.make_mesh``'s default, rejects W X^T contracted over a sharded m).
    """
    everything = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    try:
        # A sequence of devices raises TypeError here: handled below.
        n = None if devices is None else operator.index(devices)  # type: ignore[arg-type]
    except TypeError:  # devices themselves
        chosen = list(np.asarray(devices, dtype=object).flat)
        if not chosen or len(set(chosen)) != len(chosen):
            message = f"devices must be distinct and not empty; got {chosen}"
            raise ValueError(message) from None
    else:
        chosen = everything if n is None else _first_devices(n, everything)
    return Mesh(np.array(chosen, dtype=object), (axis,), axis_types=(AxisType.Auto,))


def _first_devices(n: int, everything: list) -> list:
    """n devices, n / P from each of the P processes."""
    processes = jax.process_count()
    if n < 1:
        raise ValueError(f"a mesh needs at least one device; got {n}")
    if n > len(everything):
        raise ValueError(
            f"asked for {n} devices; {len(everything)} exist "
            f"({jax.default_backend()}, {processes} process(es)). On CPU, start "
            f"Python with XLA_FLAGS={FORCE_DEVICES_FLAG}={n} to force more host "
            "devices (per process)"
        )
    if n % processes:
        raise ValueError(
            f"{n} devices cannot come evenly from {processes} processes; "
            f"use a multiple of {processes}"
        )
    return [
        d
        for p in range(processes)
        for d in [d for d in everything if d.process_index == p][: n // processes]
    ]


def _axis(mesh: Mesh) -> str:
    if len(mesh.axis_names) != 1:
        raise ValueError(f"expected a 1-D mesh; got axes {mesh.axis_names}")
    return mesh.axis_names[0]


def check_mesh(mesh) -> Mesh | None:
    """The ``mesh`` training option, checked on the host: None or a 1-D Mesh.

    Raises:
        ValueError: anything else (a device count, a 2-D mesh), saying how to
            make one.
    """
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise ValueError(
            "mesh must be a jax.sharding.Mesh, e.g. jaxnet.distributed.make_mesh(4), "
            f"or None for one device; got {type(mesh).__name__} {mesh!r}"
        )
    _axis(mesh)
    return mesh


def _check_divisible(n: int, d: int, what: str, fix: str) -> None:
    if n % d:
        lower, upper = n // d * d, n // d * d + d
        sizes = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"{what} = {n} cannot be split evenly over {d} devices: {fix} "
            f"(nearest multiples of {d}: {sizes}), or use a mesh whose device "
            f"count divides {n}"
        )


def process_columns(mesh: Mesh, m: int) -> slice:
    """The columns of the global (n, m) data that this process must load."""
    _check_divisible(m, mesh.size, "m", "drop or add examples")
    sharding = NamedSharding(mesh, P(None, _axis(mesh)))
    columns = sorted(
        # A NamedSharding gives every device a tuple index, never None.
        (index[1].start or 0, index[1].stop or m)  # type: ignore[index]
        for index in sharding.addressable_devices_indices_map((1, m)).values()
    )
    if any(a[1] != b[0] for a, b in zip(columns, columns[1:], strict=False)):
        raise ValueError(f"this process's devices hold scattered columns {columns}")
    return slice(columns[0][0], columns[-1][1])


def local_columns(mesh: Mesh | None, *arrays):
    """This process's columns of each (n, m) array: what it passes to ``fit``.

    The arrays themselves with one process or no mesh; with several,
    ``A[:, process_columns(mesh, m)]`` (m must divide by the device count).
    """
    if mesh is None or jax.process_count() == 1:
        return arrays
    columns = process_columns(mesh, jnp.shape(arrays[0])[1])
    return tuple(A[:, columns] for A in arrays)


def shard_examples(
    mesh: Mesh, X: ArrayLike, Y: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """X and Y as global arrays with the example axis m split over the mesh.

    Refuses an m that the device count does not divide (padding would need
    per-example weights in the cost): the error names the nearest valid m.

    Args:
        mesh: a 1-D mesh.
        X: (n_x, m); with several processes, this process's columns only,
            (n_x, m_local), X_global[:, process_columns(mesh, m)].
        Y: (n_y, m), or (n_y, m_local) likewise.

    Returns:
        X (n_x, m) and Y (n_y, m), each device holding m / D columns.
    """
    sharding = NamedSharding(mesh, P(None, _axis(mesh)))
    if jnp.ndim(X) != 2 or jnp.ndim(Y) != 2 or jnp.shape(X)[1] != jnp.shape(Y)[1]:
        raise ValueError(
            f"X (n_x, m) and Y (n_y, m) must share m; got "
            f"{jnp.shape(X)} and {jnp.shape(Y)}"
        )
    m = jnp.shape(X)[1]
    if jax.process_count() == 1:
        _check_divisible(m, mesh.size, "m", "drop or add examples")
        return jax.device_put(X, sharding), jax.device_put(Y, sharding)
    local = len(mesh.local_devices)
    _check_divisible(
        m,
        local,
        f"this process's m (its {local} devices' share)",
        "load columns process_columns(mesh, m) of the global data",
    )
    return tuple(
        jax.make_array_from_process_local_data(sharding, np.asarray(a)) for a in (X, Y)
    )


def _place(leaf, sharding: NamedSharding):
    """device_put, where with several processes each passes the whole value."""
    if jax.process_count() == 1 or not _is_local(leaf):
        return jax.device_put(leaf, sharding)
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # keys travel as their bits
        bits = _place(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(bits, impl=jax.random.key_impl(leaf))
    return jax.device_put(np.asarray(leaf), sharding)  # from the host, as all agree


def _is_local(leaf) -> bool:
    return not isinstance(leaf, jax.Array) or leaf.is_fully_addressable


def replicate(mesh: Mesh, tree):
    """Every leaf copied whole to every device of the mesh (params, opt state)."""
    return jax.tree.map(lambda leaf: _place(leaf, NamedSharding(mesh, P())), tree)


def place(mesh: Mesh, tree, axes):
    """Each subtree split along its axis in ``axes``, or copied where it is None.

    Args:
        mesh: a 1-D mesh.
        tree: arrays (e.g. a first-layer form's data, ``jaxnet.wide``).
        axes: a prefix of ``tree`` (like ``vmap``'s in_axes): an int splits
            every leaf below along that axis (-1: the examples, 0: the models),
            None copies them whole. The sizes must divide by the device count
            (``shard_examples`` and ``shard_models`` check m and N first).
    """
    name = _axis(mesh)

    def spec(axis, ndim) -> P:
        if axis is None:
            return P()
        names: list[str | None] = [None] * ndim
        names[axis] = name
        return P(*names)

    def subtree(axis, sub):
        return jax.tree.map(
            lambda leaf: _place(leaf, NamedSharding(mesh, spec(axis, leaf.ndim))), sub
        )

    return jax.tree.map(subtree, axes, tree, is_leaf=lambda x: x is None)


def shard_models(mesh: Mesh, tree):
    """Every leaf split along its leading model axis N (sweeps).

    Args:
        mesh: a 1-D mesh of D devices.
        tree: stacked params (W[l] (N, n[l], n[l-1]) ...), per-model
            hyperparameters (N,) and keys (N,); None leaves stay None.

    Returns:
        The same tree, N / D models on each device. N % D != 0 is refused.
    """
    sizes = {jnp.shape(leaf)[:1] for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or sizes == {()}:
        raise ValueError(f"every leaf needs the same leading model axis; got {sizes}")
    ((n,),) = sizes
    _check_divisible(
        n, mesh.size, "the number of models N", "sweep more or fewer models"
    )
    sharding = NamedSharding(mesh, P(_axis(mesh)))
    return jax.tree.map(lambda leaf: _place(leaf, sharding), tree)


def constrain_examples(mesh: Mesh | None, A: jax.Array) -> jax.Array:
    """Inside jit: keep the last (example) axis of A split over the mesh.

    For minibatches cut from a globally shuffled X (``jaxnet.steps`` constrains
    each batch's column indices (m_b,), and so every array gathered with them);
    without it XLA gives every device the whole batch. m_b need not divide by
    the device count (XLA pads the split). Identity when mesh is None.
    A: (..., m).
    """
    if mesh is None:
        return A
    spec = P(*[None] * (A.ndim - 1), _axis(mesh))
    return jax.lax.with_sharding_constraint(A, NamedSharding(mesh, spec))


def constrain_replicated(mesh: Mesh | None, A: jax.Array) -> jax.Array:
    """Inside jit: A whole on every device (identity when mesh is None).

    For the minibatch permutation (m indices) and the last, smaller batch's
    indices sliced from it: left free, XLA splits them in ways the batches'
    split cannot follow. It then copies the permutation whole with a warning
    ("involuntary full rematerialization"), and moves the last batch's indices
    with collective-permutes that run unordered beside the scanned batches'
    collectives: with several processes gloo then sees them in different
    orders and aborts ("collective mismatch", in about half of the
    two-process runs with a last smaller batch).
    """
    if mesh is None:
        return A
    return jax.lax.with_sharding_constraint(A, NamedSharding(mesh, P()))


def gather(tree):
    """Every leaf as a whole numpy array on this process (all processes call it).

    A leaf split over several processes' devices is all-gathered; one this
    process holds whole (local, or copied to every device) is just fetched.
    """
    if jax.process_count() == 1:
        return jax.device_get(tree)

    def whole(leaf):
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return np.asarray(leaf)
        if leaf.is_fully_replicated:
            return np.asarray(leaf.addressable_data(0))
        return multihost_utils.process_allgather(leaf, tiled=True)

    return jax.tree.map(whole, tree)


def agree_on_chunk(stop: bool, steps: int) -> tuple[bool, int]:
    """One host decision for every process: (stop, steps) as given with one
    process; with several, stop if any process would and process 0's chunk
    length. Every process must run the same compiled calls, or their
    collectives mismatch (gloo aborts, others hang); the driver sizes chunks by
    each process's own clock and polls each one's signals, so it asks here."""
    if jax.process_count() == 1:
        return stop, steps
    votes = multihost_utils.process_allgather(np.array([int(stop), int(steps)]))
    votes = np.asarray(votes).reshape(-1, 2)
    return bool(votes[:, 0].any()), int(votes[0, 1])


def is_main_process() -> bool:
    """Process 0: the one that prints, plots and writes files."""
    return jax.process_index() == 0


def process_count() -> int:
    """How many processes run this program together (1 without a cluster)."""
    return jax.process_count()


def describe(mesh: Mesh | None = None) -> dict:
    """Device count, process count and platform, e.g. for metrics.json."""
    devices = list(mesh.devices.flat) if mesh is not None else jax.devices()[:1]
    return {
        "devices": len(devices),
        "processes": len({d.process_index for d in devices}),
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
    }
