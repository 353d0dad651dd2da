"""Checkpointed, resumable training of one model: what every experiment shares.

``train_checkpointed`` wraps ``jaxnet.runner.train_loop`` with a checkpoint
that holds the whole training state (``jaxnet.runstate``), rewritten
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
from jaxnet.checkpoint import load_checkpoint, save_checkpoint
from jaxnet.driver import RunResult
from jaxnet.params import layer_dims_of
from jaxnet.runner import train_loop
from jaxnet.runstate import restore_state, state_arrays

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
        print_every, progress, unit: as for ``train_loop``.
    """
    layer_dims = list(layer_dims_of(params))
    activations = list(hyper["activations"])
    X, Y = distributed.local_columns(hyper.get("mesh"), X, Y)
    start = None
    if resume and path.is_file():
        saved, info = load_checkpoint(path)
        check_resumable(path, info["metadata"], meta)
        template = prepare(params, X, Y, **hyper).state
        state, costs = restore_state(template, saved, info["extra"])
        done = int(info["metadata"]["iterations_done"])
        if info["metadata"].get("finished"):
            print(f"\n== {name}: finished in {path}; not trained again")
            result = RunResult(state.params, state, costs, done, 0.0, 0.0, False, False)
            return result, True
        inside = "" if state.epoch is None else int(state.epoch.step)
        inside = f" and {inside} minibatch steps" if inside else ""
        print(f"\n== {name}: resuming at {unit} {done}{inside} from {path}")
        start = (state, done, costs)
    last_save = [-float("inf")]  # the first chunk is saved at once

    def save(state, done, costs, finished=False, force=False):
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
                extra_arrays=state_arrays(state, costs),
            )
        last_save[0] = time.monotonic()

    result = train_loop(
        params, X, Y, num_iterations=num_iterations, print_every=print_every,
        unit=unit, progress=progress, desc=name, on_chunk=save, resume_from=start,
        should_stop=stop, **hyper,
    )  # fmt: skip
    finished = result.iterations_done == num_iterations and not result.diverged
    save(result.state, result.iterations_done, result.costs, finished, force=True)
    return result, finished
