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

A run on the wide-input path (``jaxnet.wide``) steps W[1] = s W[1]_0 + C X^T in
the coordinates (s, C); its dense state holds W[1] rounded once.
``carried_arrays`` adds what that run carries (``jaxnet.wide.Carried``: the
coordinates, the optimizer's moments in them, and W[1]_0), and
``restore_carried`` gives it back, so that the resumed run continues in the
same coordinates against the same G = X^T X and P = W[1]_0 X.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.steps import EpochState, TrainState
from jaxnet.wide import FIRST_LAYERS, Carried, carried_data


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
    opt_state = jax.tree.unflatten(treedef, restored)
    state = TrainState(params, opt_state, key, _restore_epoch(template, arrays))
    return state, costs


def carried_arrays(carried: Carried | None) -> dict[str, np.ndarray]:
    """The arrays beyond ``state_arrays`` that resume a run in its first-layer
    form's terms: none for a dense run (its dense state is what it carries);
    otherwise "form" (the form's name, e.g. "gram"), "form_W0" (W[1]_0,
    (n[1], n_x)) and "form_0", "form_1", ...: the leaves of the carried
    (params, optimizer state) in order (for "gram": C (n[1], m), b[1], s, the
    other layers, then the optimizer's). The key is ``state_arrays``' "key"."""
    if carried is None or carried.W0 is None:
        return {}
    leaves = jax.tree.leaves((carried.state.params, carried.state.opt_state))
    arrays = {f"form_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays["form"] = np.asarray(carried.form, dtype=np.str_)
    arrays["form_W0"] = np.asarray(carried.W0)
    return arrays


def restore_carried(template: TrainState, X, state: TrainState, arrays: dict):
    """The ``Carried`` state that ``carried_arrays`` wrote, or None (a dense run,
    or a checkpoint written before it existed: resume from the dense state).

    Args:
        template: a start state of the same configuration (dense).
        X: the training inputs (n_x, m): they give m and, with W[1]_0, the
            shapes of the form's state.
        state: the restored dense state (``restore_state``); its key is used.
        arrays: the checkpoint's extra arrays.

    Raises:
        StateMismatchError: an unknown form, a missing or extra array, or one of
            another shape or dtype than this run's.
    """
    if "form" not in arrays:
        return None
    form = str(np.asarray(arrays["form"])[()])
    if form not in FIRST_LAYERS or "form_W0" not in arrays:
        raise StateMismatchError(
            f"the checkpoint's first-layer state {form!r} is not one of "
            f"{sorted(FIRST_LAYERS)} or lacks its W[1]_0 ('form_W0'); resume from "
            "a checkpoint this version wrote, or start a new run"
        )
    W0, W = np.asarray(arrays["form_W0"]), template.params[0]["W"]
    if W0.shape != jnp.shape(W) or W0.dtype != jnp.result_type(W):
        raise StateMismatchError(
            f"the checkpoint's W[1]_0 is {W0.shape} {W0.dtype}; this run's W[1] is "
            f"{jnp.shape(W)} {jnp.result_type(W)}"
        )
    # Shape templates for jax.eval_shape: no state, a numpy W0, no key.
    probe = Carried(form, None, W0)  # type: ignore[arg-type]
    expected = jax.eval_shape(
        lambda t, X: FIRST_LAYERS[form].enter(t, carried_data(probe, X)),
        TrainState(template.params, template.opt_state, None),  # type: ignore[arg-type]
        jnp.asarray(X),
    )
    leaves, treedef = jax.tree.flatten((expected.params, expected.opt_state))
    saved = [k for k in arrays if k.startswith("form_") and k[5:].isdigit()]
    if len(saved) != len(leaves):
        raise StateMismatchError(
            f"the checkpoint holds {len(saved)} arrays of its {form!r} first-layer "
            f"state but this run's has {len(leaves)}: it was saved with another "
            "model or optimizer"
        )
    restored = []
    for i, leaf in enumerate(leaves):
        value = np.asarray(arrays[f"form_{i}"])
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise StateMismatchError(
                f"{form} first-layer state array {i} is {value.shape} {value.dtype}; "
                f"this run expects {leaf.shape} {leaf.dtype}"
            )
        restored.append(jnp.asarray(value))
    params, opt_state = jax.tree.unflatten(treedef, restored)
    carried = TrainState(params, opt_state, state.key, state.epoch)
    return Carried(form, carried, jnp.asarray(W0))
