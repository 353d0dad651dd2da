"""Checkpointed, resumable training of one model: what every experiment shares.

``train_checkpointed`` wraps ``jaxnet.runner.train_loop`` with a checkpoint
that holds the whole training state (``jaxnet.runstate``: the dense state,
and on the wide-input path also its coordinates and W[1]_0, from which the
resumed run continues bit for bit), rewritten
atomically at most every ``CHECKPOINT_SECONDS`` and at the end, and with
resume: when asked to resume and a checkpoint exists, it checks that the
flags and the data are the ones the checkpoint was made with, restores the
state and continues (or, for a finished model, returns it as it was saved).

With a mesh in ``hyper`` (``--devices N``) the run is data parallel; with
several processes each passes its own columns of X and Y, and only process 0
writes the checkpoint.
"""

import hashlib
import time
from pathlib import Path

import numpy as np

from jaxnet import distributed
from jaxnet.boundary import prepare
from jaxnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jaxnet.deep import model_cost
from jaxnet.driver import RunResult
from jaxnet.params import layer_dims_of
from jaxnet.runner import train_loop
from jaxnet.runstate import (
    StateMismatchError,
    carried_arrays,
    restore_carried,
    restore_state,
    state_arrays,
)

CHECKPOINT_SECONDS = 2.0  # checkpoints are rewritten at most this often


def fingerprint(*arrays) -> str:
    """A short sha256 of the training arrays: resume refuses other data."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def check_resumable(path, saved: dict, now: dict) -> None:
    """Refuse to resume a checkpoint made with other flags or data.

    Raises:
        ValueError: naming every flag that differs, or the data.
    """
    if saved.get("data") != now["data"]:
        raise ValueError(f"{path} was trained on other data; cannot resume it")
    old, new = saved.get("flags", {}), now["flags"]
    differ = [
        f"--{k.replace('_', '-')} {old.get(k)!r} -> {new[k]!r}"
        for k in new
        if old.get(k) != new[k]
    ]
    if differ:
        raise ValueError(
            f"{path} was saved with other flags ({'; '.join(differ)}); resume with "
            "the run's own flags (just --resume RUN_DIR) or start a new run"
        )


FRESH_HINT = "restore a copy of the file, or start a new run (--overwrite)"


def check_checkpoint(path, info: dict, layer_dims, activations, num_iterations):
    """The checkpoint at ``path`` is this run's model and agrees with itself;
    returns its iterations_done.

    Raises:
        CheckpointError: other layer sizes or activations than the run's, an
            iterations_done that is not an integer in [0, num_iterations], a
            "finished" that is not a bool or is true before the run's end, or
            no run state (no "extra" arrays).
    """
    saved = (info["layer_dims"], info["activations"])
    if saved != (list(layer_dims), list(activations)):
        raise CheckpointError(
            f"{path} holds another model: layer_dims {saved[0]} with activations "
            f"{saved[1]}, but this run trains layer_dims {list(layer_dims)} with "
            f"{list(activations)}; {FRESH_HINT}"
        )
    meta = info["metadata"]
    done, finished = meta.get("iterations_done"), meta.get("finished")
    if not isinstance(done, int) or isinstance(done, bool):
        raise CheckpointError(
            f"{path}: metadata iterations_done is {done!r}, not an integer; "
            f"{FRESH_HINT}"
        )
    if not 0 <= done <= num_iterations:
        raise CheckpointError(
            f"{path} contradicts itself: iterations_done {done} is outside "
            f"[0, {num_iterations}] for a run of {num_iterations}; {FRESH_HINT}"
        )
    if not isinstance(finished, bool):
        raise CheckpointError(
            f"{path}: metadata finished is {finished!r}, not true or false; "
            f"{FRESH_HINT}"
        )
    if finished and done != num_iterations:
        raise CheckpointError(
            f"{path} contradicts itself: it says finished but only {done} of the "
            f"run's {num_iterations} are done; {FRESH_HINT}"
        )
    if "extra" not in info:
        raise CheckpointError(
            f"{path} holds params only, no run state to resume (optimizer state, "
            f"key, costs); {FRESH_HINT}"
        )
    return done


def train_checkpointed(
    name: str,
    params,
    X,
    Y,
    *,
    path: Path,
    hyper: dict,
    num_iterations: int,
    meta: dict,
    resume: bool,
    stop,
    print_every,
    progress: bool,
    unit: str = "iteration",
    health_every: int | None = None,
) -> tuple[RunResult, bool]:
    """Train (or resume) one model with checkpoints; returns (result, finished).

    Args:
        name: the model's name (progress bar, messages).
        params, X, Y: the start parameters and the training data.
        path: the checkpoint file.
        hyper: keyword arguments of ``train_loop`` (activations, learning_rate,
            optimizer, grad, lambd, keep_prob, batch_size, key, mesh).
        num_iterations: the run's length.
        meta: JSON metadata to store; must hold "flags" and "data" (compared on
            resume).
        resume: continue from ``path`` if it exists.
        stop: a ``jaxnet.interrupts.StopOnSignal`` (polled, and protecting the
            checkpoint writes).
        print_every, progress, unit, health_every: as for ``train_loop`` (the
            health readings cover the iterations run now, not a resumed run's
            earlier ones).
    """
    layer_dims = list(layer_dims_of(params))
    activations = list(hyper["activations"])
    X, Y = distributed.local_columns(hyper.get("mesh"), X, Y)
    start = None
    if resume and (path.exists() or path.is_symlink()):  # a folder too: refused
        saved, info = load_checkpoint(path)
        check_resumable(path, info["metadata"], meta)
        done = check_checkpoint(path, info, layer_dims, activations, num_iterations)
        template = prepare(params, X, Y, **hyper).state
        try:
            state, costs = restore_state(template, saved, info["extra"])
            carried = restore_carried(template, X, state, info["extra"])
        except StateMismatchError as e:
            raise StateMismatchError(f"{path}: {e}; {FRESH_HINT}") from None
        if len(costs) != done:
            raise CheckpointError(
                f"{path} contradicts itself: it says {done} {unit}s are done but "
                f"holds {len(costs)} costs; {FRESH_HINT}"
            )
        if info["metadata"].get("finished"):
            print(f"\n== {name}: finished in {path}; not trained again")
            result = RunResult(state.params, state, costs, done, 0.0, 0.0, False, False)
            lambd = hyper.get("lambd") or None  # J of the saved params, as drive's
            final = model_cost(state.params, X, Y, activations, lambd=lambd)
            result = result._replace(final_cost=float(final))
            return result, True
        inside = "" if state.epoch is None else int(state.epoch.step)
        inside = f" and {inside} minibatch steps" if inside else ""
        print(f"\n== {name}: resuming at {unit} {done}{inside} from {path}")
        start = (state if carried is None else carried, done, costs)
    last_save = [-float("inf")]  # the first chunk is saved at once
    # With a mesh, C's columns may live on other processes, and a resume starts
    # from the dense state anyway (``jaxnet.boundary.prepare``).
    exact = hyper.get("mesh") is None

    def save(state, done, costs, carried, *, finished=False, force=False):
        if not force and time.monotonic() - last_save[0] < CHECKPOINT_SECONDS:
            return
        if not distributed.is_main_process():
            return
        with stop.protect():
            save_checkpoint(
                path,
                state.params,
                layer_dims=layer_dims,
                activations=activations,
                metadata={**meta, "iterations_done": done, "finished": finished},
                extra_arrays={
                    **state_arrays(state, costs),
                    **carried_arrays(carried if exact else None),
                },
            )
        last_save[0] = time.monotonic()

    result = train_loop(
        params, X, Y, num_iterations=num_iterations, print_every=print_every,
        unit=unit, progress=progress, desc=name, on_chunk=save, resume_from=start,
        should_stop=stop, health_every=health_every, **hyper,
    )  # fmt: skip
    finished = result.iterations_done == num_iterations and not result.diverged
    save(result.state, result.iterations_done, result.costs, result.carried,
         finished=finished, force=True)  # fmt: skip
    return result, finished
