"""A whole training state as plain arrays, for checkpoints that can resume.

A run carries more than its parameters: the optimizer state (momentum, Adam's
moments, the learning rate), the ``jax.random`` key that draws dropout masks
and shuffles minibatches, and the costs so far. ``state_arrays`` flattens all
of it into named numpy arrays (readable with numpy alone);
``restore_state`` rebuilds the ``TrainState`` against a template made by the
same configuration, checking every leaf's count, shape and dtype, so a resumed
run continues bit for bit where the saved one stopped.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.steps import TrainState


class StateMismatchError(ValueError):
    """A saved state does not fit the run it should resume."""


def state_arrays(state: TrainState, costs) -> dict[str, np.ndarray]:
    """{"opt_0", ..., "key", "costs"}: the optimizer state's leaves in order,
    the raw key data (uint32) and the costs (iterations_done,)."""
    arrays = {
        f"opt_{i}": np.asarray(leaf)
        for i, leaf in enumerate(jax.tree.leaves(state.opt_state))
    }
    arrays["key"] = np.asarray(jax.random.key_data(state.key))
    arrays["costs"] = np.asarray(costs)
    return arrays


def restore_state(template: TrainState, params, arrays: dict) -> tuple:
    """(TrainState, costs) from ``state_arrays`` output and saved params.

    Args:
        template: a start state of the same configuration (its optimizer state
            gives the structure, shapes and dtypes expected).
        params: the saved parameters.
        arrays: what ``state_arrays`` wrote.

    Raises:
        StateMismatchError: a leaf is missing, extra, or of another shape or
            dtype (the checkpoint belongs to another optimizer or model), or an
            injected hyperparameter (the learning rate) differs from the
            template's (the state was made with other flags or edited).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(template.opt_state)
    leaves = [leaf for _, leaf in flat]
    saved = {k for k in arrays if k.startswith("opt_")}
    if len(saved) != len(leaves):
        raise StateMismatchError(
            f"the checkpoint holds {len(saved)} optimizer-state arrays but this run's "
            f"optimizer has {len(leaves)}: it was saved with another optimizer"
        )
    key_data = np.asarray(jax.random.key_data(template.key))
    expected = {f"opt_{i}" for i in range(len(leaves))} | {"key", "costs"}
    missing = sorted(expected - set(arrays))
    if missing:
        raise StateMismatchError(f"the checkpoint's run state lacks {missing}")
    key, costs = np.asarray(arrays["key"]), np.asarray(arrays["costs"])
    if key.shape != key_data.shape or key.dtype != key_data.dtype:
        raise StateMismatchError(
            f"the saved random key is {key.shape} {key.dtype}; this run's is "
            f"{key_data.shape} {key_data.dtype}"
        )
    if costs.ndim != 1 or costs.dtype.kind != "f":
        raise StateMismatchError(
            f"the saved costs are {costs.shape} {costs.dtype}; expected a 1-D "
            "float array, one cost per iteration done"
        )
    restored = []
    for i, leaf in enumerate(leaves):
        value = np.asarray(arrays[f"opt_{i}"])
        if value.shape != jnp.shape(leaf) or value.dtype != jnp.result_type(leaf):
            raise StateMismatchError(
                f"optimizer-state array {i} is {value.shape} {value.dtype}; this "
                f"run expects {jnp.shape(leaf)} {jnp.result_type(leaf)}"
            )
        name = jax.tree_util.keystr(flat[i][0])
        if ".hyperparams" in name and not np.array_equal(value, leaf):
            raise StateMismatchError(
                f"the saved optimizer state holds {name.lstrip('.')} = {value} but "
                f"this run's is {np.asarray(leaf)}: the state does not belong to "
                "this run's flags (edited or copied from another run)"
            )
        restored.append(jnp.asarray(value))
    impl = jax.random.key_impl(template.key)
    key = jax.random.wrap_key_data(jnp.asarray(key), impl=impl)
    params = jax.tree.map(lambda p, t: jnp.asarray(p, jnp.result_type(t)), params,
                          template.params)  # fmt: skip
    state = TrainState(params, jax.tree.unflatten(treedef, restored), key)
    return state, costs
