"""A training run for people watching: progress bar, printed costs, safe stops.

``train_loop`` runs the same compiled steps as ``jaxnet.train.fit`` through
``jaxnet.driver.drive``: in chunks sized by time (so a signal is honoured
within about a second), printing "Cost after iteration i" every
``print_every`` iterations as the lecture does, with a tqdm bar, and handing
every good chunk to ``on_chunk`` (to write a checkpoint).

It starts from given parameters, or from a whole saved state and iteration
count: that is how a run resumes. The saved state is what ``on_chunk`` was
handed: the dense ``TrainState`` (params, optimizer state, key), or, to
continue bit for bit on every first-layer path, the ``jaxnet.wide.Carried``
(the same state in the form's terms, e.g. the wide path's coordinates).

Safety: a cost that stops being finite, or that rises far above its first
value (``jaxnet.driver.DIVERGENCE_FACTOR``), stops the run with the last
parameters whose cost was good (``diverged=True``, with a message that says
what happened and what to try); ``should_stop`` (e.g. ``jaxnet.interrupts``)
stops it after the running chunk (``interrupted=True``). Nothing is lost.
"""

import math
from collections.abc import Callable, Sequence
from typing import Unpack

import numpy as np

from jaxnet.boundary import prepare
from jaxnet.driver import RunResult, drive
from jaxnet.hyperparams import TrainOptions, check_count
from jaxnet.params import Params
from jaxnet.steps import TrainState
from jaxnet.trainer import refuse_traced
from jaxnet.wide import Carried

__all__ = ["RunResult", "cost_checkpoints", "train_loop"]


def train_loop(
    params: Params,
    X,
    Y,
    *,
    activations: Sequence[str],
    num_iterations: int,
    print_every: int | None = 100,
    progress: bool = True,
    desc: str = "training",
    on_chunk: Callable | None = None,
    print_fn: Callable[[str], None] | None = None,
    unit: str = "iteration",
    resume_from: tuple[TrainState | Carried, int, np.ndarray] | None = None,
    should_stop: Callable[[], bool] | None = None,
    health_every: int | None = None,
    **options: Unpack[TrainOptions],
) -> RunResult:
    """Train with a progress bar and printed costs; see the module docstring.

    Arguments are those of ``jaxnet.train.fit`` (the training options, see
    ``jaxnet.hyperparams.TrainOptions``), plus:
        print_every: print the cost at every multiple of it and at the last
            iteration (0 or None: no printing). It does not size the compiled
            chunks: they are sized by time.
        progress: show a tqdm progress bar (on stderr).
        desc: the bar's label.
        on_chunk: called as ``on_chunk(state, iterations_done)`` after each
            good chunk, e.g. to write a checkpoint; with a third and a fourth
            positional parameter it also gets the costs so far and the
            ``Carried`` state (what ``resume_from`` takes to resume exactly).
        print_fn: where cost lines go (default: tqdm.write, above the bar).
        unit: what one iteration is called in printed lines ("epoch" for
            minibatch runs).
        resume_from: (state, iterations done, their costs) of an earlier run
            with the same settings: the run continues from there. From the
            ``Carried`` state (``on_chunk``'s fourth argument,
            ``RunResult.carried``) it equals the run that was never stopped
            bit for bit. A minibatch run's state may stand inside an epoch
            (``state.epoch``, ``RunResult.position``): it continues from that
            very minibatch.
        should_stop: polled between chunks; True stops the run, keeping it.
        health_every: record the training-health readings (``jaxnet.health``)
            at every multiple of it and at the last iteration, inside the
            compiled run, in ``RunResult.health`` (pass ``print_every`` to read
            them where the costs are printed); None (default): none.
        first_layer: as for ``fit``. States handed out (``on_chunk``, the
            result) are dense either way and resume under any choice; a gram
            run resumed from a dense state restarts its coordinates at the
            rounded W[1], so it equals the unstopped run only to rounding
            ("auto" resumes a momentum state dense); from a ``Carried`` one it
            continues in the same coordinates (with a mesh: from its dense
            state, to rounding).

    Returns:
        RunResult (see ``jaxnet.driver.RunResult``).
    """
    refuse_traced("train_loop", params, X, Y, num_iterations, options)
    num_iterations = check_count("num_iterations", num_iterations)
    if print_every is not None and print_every != 0:
        print_every = check_count("print_every", print_every)
    state, start, past = None, 0, None
    if resume_from is not None:
        state, start, past = resume_from
        start = int(start)
        if not 0 <= start <= num_iterations:
            raise ValueError(
                f"cannot resume at iteration {start} of a {num_iterations}-iteration "
                "run"
            )
    run = prepare(params, X, Y, activations=activations, start=state, **options)
    return drive(
        run.config, run.state, run.hp, run.data, run.Y,
        num_iterations=num_iterations, start_iteration=start, past_costs=past,
        print_every=print_every, progress=progress, desc=desc, unit=unit,
        on_chunk=on_chunk, should_stop=should_stop, print_fn=print_fn, X=run.X,
        health_every=health_every,
    )  # fmt: skip


def cost_checkpoints(costs: np.ndarray, every: int) -> list[list[float]]:
    """[[iteration, cost], ...] every ``every`` iterations plus the last one."""
    n = len(costs)
    if n == 0:
        return []
    every = every or n
    its = sorted(set(range(0, n, every)) | {n - 1})
    return [[i, float(costs[i])] for i in its if math.isfinite(costs[i])]
