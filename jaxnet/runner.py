"""A training driver for people watching: progress bar, printed costs, safe stops.

``train_loop`` runs the same compiled ``lax.scan`` as ``jaxnet.train.fit``, but in
chunks of ``print_every`` iterations, so between chunks (never between steps) it
can update a tqdm bar, print "Cost after iteration i" as the lecture does, and
hand the state to a callback (e.g. to write a checkpoint). One host sync per
chunk keeps the bar's overhead small.

Safety: a chunk whose costs are not all finite is thrown away and the run stops
with the last good state (``diverged=True``); Ctrl-C stops after the current
chunk with the last good state (``interrupted=True``). Nothing is lost.
"""

import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxnet.deep import check_activations, check_inputs
from jaxnet.params import Params
from jaxnet.train import TrainState, init_state, make_optimizer, make_step, run_steps


class RunResult(NamedTuple):
    """The outcome of ``train_loop``.

    Attributes:
        params: the last good parameters.
        state: the last good TrainState (params, optimizer state, key).
        costs: cost of every completed iteration, (iterations_done,) numpy.
        iterations_done: iterations whose update is in ``params``.
        compile_seconds: time spent compiling the chunk functions.
        train_seconds: time spent running them (compilation excluded).
        diverged: a non-finite cost stopped the run.
        interrupted: Ctrl-C stopped the run.
    """

    params: Params
    state: TrainState
    costs: np.ndarray
    iterations_done: int
    compile_seconds: float
    train_seconds: float
    diverged: bool
    interrupted: bool


def train_loop(
    params: Params,
    X,
    Y,
    *,
    activations: Sequence[str],
    num_iterations: int,
    learning_rate: float = 0.0075,
    optimizer=None,
    grad: str = "manual",
    lambd: float = 0.0,
    keep_prob: float = 1.0,
    batch_size: int | None = None,
    key=None,
    print_every: int = 100,
    progress: bool = True,
    desc: str = "training",
    on_chunk: Callable[[TrainState, int], None] | None = None,
    print_fn: Callable[[str], None] | None = None,
    unit: str = "iteration",
) -> RunResult:
    """Train with a progress bar and printed costs; see the module docstring.

    Arguments are those of ``jaxnet.train.fit``, plus:
        print_every: chunk length; the cost is printed at every multiple of it
            and at the last iteration (0 or None: one chunk, no printing).
        progress: show a tqdm progress bar (on stderr).
        desc: the bar's label.
        on_chunk: called as ``on_chunk(state, iterations_done)`` after each good
            chunk, e.g. to write a checkpoint.
        print_fn: where cost lines go (default: tqdm.write, above the bar).
        unit: what one iteration is called in the printed lines ("epoch" for
            minibatch runs).
    """
    activations = check_activations(activations, len(params))
    dtype = params[0]["W"].dtype  # the params' dtype sets the run's, as in fit
    X, Y = jnp.asarray(X).astype(dtype), jnp.asarray(Y).astype(dtype)
    check_inputs(params, X, Y)
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1; got {num_iterations}")
    optimizer = make_optimizer(optimizer, learning_rate)
    step = make_step(
        activations,
        optimizer,
        grad=grad,
        lambd=lambd,
        keep_prob=keep_prob,
        batch_size=batch_size,
    )
    chunk = min(print_every or num_iterations, num_iterations)
    state = init_state(params, optimizer, key)
    print_fn = print_fn or (lambda line: tqdm.write(line, file=sys.stdout))

    compiled: dict[int, Callable] = {}
    compile_seconds = 0.0

    def compiled_chunk(length: int):
        nonlocal compile_seconds
        if length not in compiled:
            start = time.perf_counter()
            run = jax.jit(lambda s, x, y: _chunk(step, s, x, y, length))
            compiled[length] = run.lower(state, X, Y).compile()
            compile_seconds += time.perf_counter() - start
        return compiled[length]

    costs: list[np.ndarray] = []
    done, train_seconds = 0, 0.0
    diverged = interrupted = False
    bar = tqdm(
        total=num_iterations,
        desc=desc,
        disable=not progress,
        unit="it",
        file=sys.stderr,
        leave=False,
    )
    try:
        while done < num_iterations:
            length = min(chunk, num_iterations - done)
            run = compiled_chunk(length)
            start = time.perf_counter()
            new_state, chunk_costs, params_finite = run(state, X, Y)
            chunk_costs = np.asarray(chunk_costs)
            train_seconds += time.perf_counter() - start
            costs_finite = bool(np.all(np.isfinite(chunk_costs)))
            # The chunk's last update is not costed inside it: check the params too.
            if not costs_finite or not bool(params_finite):
                if costs_finite:
                    last = done + length - 1
                    what = f"parameters are not finite after iteration {last}"
                else:
                    bad = done + int(np.argmin(np.isfinite(chunk_costs)))
                    what = f"cost is not finite at iteration {bad}"
                print_fn(
                    f"{what}: stopping; keeping the parameters after iteration {done}"
                )
                diverged = True
                break
            state = new_state
            costs.append(chunk_costs)
            for i in range(done, done + length):
                if print_every and (i % print_every == 0 or i == num_iterations - 1):
                    print_fn(f"Cost after {unit} {i}: {chunk_costs[i - done]:.6f}")
            done += length
            bar.update(length)
            if on_chunk is not None:
                on_chunk(state, done)
    except KeyboardInterrupt:
        interrupted = True
        print_fn(f"interrupted: keeping the parameters after iteration {done}")
    finally:
        bar.close()
    all_costs = np.concatenate(costs) if costs else np.zeros((0,))
    return RunResult(
        state.params,
        state,
        all_costs,
        done,
        compile_seconds,
        train_seconds,
        diverged,
        interrupted,
    )


def _chunk(step, state, X, Y, length):
    """``length`` scanned steps, plus whether every new parameter is finite.

    The check runs on the device, so only one boolean crosses to the host.
    """
    state, costs = run_steps(step, state, X, Y, length)
    leaves = jax.tree.leaves(state.params)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
    return state, costs, finite


def cost_checkpoints(costs: np.ndarray, every: int) -> list[list[float]]:
    """[[iteration, cost], ...] every ``every`` iterations plus the last one."""
    n = len(costs)
    if n == 0:
        return []
    every = every or n
    its = sorted(set(range(0, n, every)) | {n - 1})
    return [[i, float(costs[i])] for i in its if math.isfinite(costs[i])]
