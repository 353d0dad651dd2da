"""A whole training state as plain arrays, for checkpoints that can resume.

A run carries more than its parameters: the optimizer state (momentum, Adam's
moments, the learning rate), the ``jax.random`` key that draws dropout masks
and shuffles minibatches, the place inside a minibatch epoch (a run may stop
between two minibatches: ``steps.EpochState``), and the costs so far.
``state_arrays`` flattens all of it into named numpy arrays (readable with
numpy alone);
``restore_state`` rebuilds the ``TrainState`` against a template made by the
same configuration, checking every leaf's count, shape and dtype, so a resumed
run continues bit for bit where the saved one stopped.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.steps import EpochState, TrainState


class StateMismatchError(ValueError):
    """A saved state does not fit the run it should resume."""


def state_arrays(state: TrainState, costs) -> dict[str, np.ndarray]:
    """{"opt_0", ..., "key", "costs"}: the optimizer state's leaves in order,
    the raw key data (uint32) and the costs (iterations_done,); for a minibatch
    run also "epoch_step" (int32 (), steps of the next epoch done),
    "epoch_key" (its permutation's key data) and "epoch_total" (its cost sum so
    far, sum cost * m_b)."""
    arrays = {
        f"opt_{i}": np.asarray(leaf)
        for i, leaf in enumerate(jax.tree.leaves(state.opt_state))
    }
    arrays["key"] = np.asarray(jax.random.key_data(state.key))
    arrays["costs"] = np.asarray(costs)
    if state.epoch is not None:
        arrays["epoch_step"] = np.asarray(state.epoch.step)
        arrays["epoch_key"] = np.asarray(jax.random.key_data(state.epoch.key))
        arrays["epoch_total"] = np.asarray(state.epoch.total)
    return arrays


def _restore_epoch(template: TrainState, arrays: dict) -> EpochState | None:
    """The saved ``EpochState``, checked; None if the checkpoint has none (saved
    before epochs could stop midway: always at an epoch boundary)."""
    names = ("epoch_step", "epoch_key", "epoch_total")
    present = [name for name in names if name in arrays]
    if not present:
        return None
    key_data = jax.random.key_data(template.key)
    dtype = jnp.result_type(jax.tree.leaves(template.params)[0])
    expected = {
        "epoch_step": ((), np.dtype(np.int32)),
        "epoch_key": (key_data.shape, np.dtype(key_data.dtype)),
        "epoch_total": ((), np.dtype(dtype)),
    }
    for name, (shape, kind) in expected.items():
        value = np.asarray(arrays[name]) if name in arrays else None
        if value is None or value.shape != shape or value.dtype != kind:
            got = "missing" if value is None else f"{value.shape} {value.dtype}"
            raise StateMismatchError(
                f"the checkpoint's {name} is {got}; this run expects {shape} {kind}"
            )
    if int(arrays["epoch_step"]) < 0 or not np.isfinite(arrays["epoch_total"]):
        raise StateMismatchError(
            f"the checkpoint's epoch_step {int(arrays['epoch_step'])} or "
            f"epoch_total {float(arrays['epoch_total'])} is out of range (>= 0, "
            "finite): the file was altered"
        )
    impl = jax.random.key_impl(template.key)
    return EpochState(
        jnp.asarray(arrays["epoch_step"]),
        jax.random.wrap_key_data(jnp.asarray(arrays["epoch_key"]), impl=impl),
        jnp.asarray(arrays["epoch_total"]),
    )


def restore_state(template: TrainState, params, arrays: dict) -> tuple:
    """(TrainState, costs) from ``state_arrays`` output and saved params.

    Args:
        template: a start state of the same configuration (its optimizer state
            gives the structure, shapes and dtypes expected).
        params: the saved parameters.
        arrays: what ``state_arrays`` wrote.

    Raises:
        StateMismatchError: a leaf is missing, extra, or of another shape or
            dtype (the checkpoint belongs to another optimizer or model).
    """
    leaves, treedef = jax.tree.flatten(template.opt_state)
    saved = sorted(
        (k for k in arrays if k.startswith("opt_")), key=lambda k: int(k[4:])
    )
    if len(saved) != len(leaves):
        raise StateMismatchError(
            f"the checkpoint holds {len(saved)} optimizer-state arrays but this run's "
            f"optimizer has {len(leaves)}: it was saved with another optimizer"
        )
    restored = []
    for i, leaf in enumerate(leaves):
        value = np.asarray(arrays[f"opt_{i}"])
        if value.shape != jnp.shape(leaf) or value.dtype != jnp.result_type(leaf):
            raise StateMismatchError(
                f"optimizer-state array {i} is {value.shape} {value.dtype}; this "
                f"run expects {jnp.shape(leaf)} {jnp.result_type(leaf)}"
            )
        restored.append(jnp.asarray(value))
    impl = jax.random.key_impl(template.key)
    key = jax.random.wrap_key_data(jnp.asarray(arrays["key"]), impl=impl)
    params = jax.tree.map(lambda p, t: jnp.asarray(p, jnp.result_type(t)), params,
                          template.params)  # fmt: skip
    opt_state = jax.tree.unflatten(treedef, restored)
    state = TrainState(params, opt_state, key, _restore_epoch(template, arrays))
    return state, np.asarray(arrays["costs"])
