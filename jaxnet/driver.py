"""The one training driver: compiled chunks of iterations and the host loop.

Every entry point (``fit``, ``fit_until``, ``train_loop``, ``sweep``, the
experiments) is a thin use of this module:

- ``chunk_program(config, capacity)``: a jitted function that runs up to
  ``capacity`` steps (how many is a traced argument, so one compilation serves
  every chunk length) and says whether the new parameters are finite. A step
  is an iteration of full-batch gradient descent, or one minibatch of an epoch:
  a chunk may end inside an epoch (the state says where, ``steps.EpochState``),
  and the next one continues it exactly.
  The data, Y and the hyperparameters are arguments, never constants folded
  in. The data is X, or what the run's first-layer form takes instead
  (``jaxnet.wide``: G = X^T X and P = W[1]_0 X for wide inputs); inside, the
  state is in that form, and ``drive`` converts it from and back to the dense
  state callers see (start, ``on_chunk``, the result). What the run carries in
  the form's terms (``jaxnet.wide.Carried``) goes to ``on_chunk`` and into the
  result too, and a run started from it continues in the same terms: that is
  how a resumed run equals the unstopped one bit for bit on every path.
- ``drive(...)``: the host loop around it. It sizes chunks by time: the first
  is one step (``PROBE_STEPS``), each next one as many steps as the measured
  step time fits in ``max_chunk_seconds``, at most ``GROWTH`` times the last
  one; so a chunk never runs much longer than that, and Ctrl-C is honoured
  within about a second even when an epoch takes many seconds. Costs are per
  iteration (per epoch for minibatches, recorded when the epoch completes: a
  run stopped inside an epoch keeps that epoch's steps in its state, not its
  cost). It prints the lecture's "Cost after iteration i" lines
  every ``print_every`` iterations whatever the chunk size, updates a progress
  bar, hands each good chunk to ``on_chunk`` (checkpoints), and stops safely.
  With several processes (``jaxnet.distributed``) every one runs the same
  chunks: process 0's timing sizes them, and any process's stop request stops
  all (their collectives must match).

The final cost (``RunResult.final_cost``) is J of the parameters returned, one
forward pass after the run: ``costs[i]`` is J before update i, so the last
recorded cost is J before the last update, not J of what the run returns (for
a diverged run, not even close). It is the lecture's J on the whole training
set without dropout, with the L2 term when the run has one.

Training health (``health_every``, off by default): the readings of
``jaxnet.health`` (dead relu units, saturated sigmoid/tanh units, ||dW[l]||,
||W[l]||, the update ratio, symmetric units) at the printed points, iterations
i with i % health_every == 0 and the last one, computed inside the compiled
chunk (``jaxnet.health_probe``: a forward and backward pass on the whole
training set, taken only at those points) and returned in ``RunResult.health``,
no extra host round trip. Full batch: of the parameters before update i, as
costs[i] is; minibatches: of the parameters after epoch i. Points of this call
only (a resumed run's earlier points are not carried). Runs without it compile
and compute exactly what they did before; with it, costs and parameters are the
same bit for bit (the readings only read the state).

Stopping rules (``RunResult.stop_reason``): "non-finite" and "diverged"
(``jaxnet.stopping``: the run keeps the last parameters whose cost was good),
and "interrupted": ``should_stop()`` said so between chunks (a signal, see
``jaxnet.interrupts``); the chunk that was running is kept. ``should_stop`` is
also asked while the run's program compiles (seconds, in a helper thread): a
stop then ends the run before its first step.
"""

import functools
import inspect
import sys
import threading
import time
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# tqdm.auto picks the notebook bar in Jupyter, which needs ipywidgets; without
# it, it warns "IProgress not found" in every kernel: the text bar serves then.
if find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

from jaxnet.deep import model_cost
from jaxnet.distributed import agree_on_chunk, gather
from jaxnet.health import Health
from jaxnet.health_probe import PROBES
from jaxnet.hyperparams import Hyperparams, TrainConfig, check_count
from jaxnet.params import Params
from jaxnet.steps import Observer, TrainState, start_epoch, steps_per_iteration
from jaxnet.stopping import first_bad, roll_back
from jaxnet.wide import FIRST_LAYERS, Carried

MAX_CHUNK_SECONDS = 0.5
PROBE_STEPS = 1  # the first chunk: one step, short whatever a step costs
GROWTH = 4  # a chunk has at most this many times the steps of the one before
MAX_CAPACITY = 1 << 16  # steps one compiled chunk can hold
POLL_SECONDS = 0.02  # how often a stop request is asked for while compiling


class RunResult(NamedTuple):
    """The outcome of a driven run.

    Attributes:
        params: the last good parameters (the lecture's dense W[1]).
        state: the last good TrainState (params, optimizer state, key), dense.
        costs: cost of every kept iteration, (iterations_done,) numpy (for a
            sweep (N, iterations_done)); costs[i] is J before update i.
        iterations_done: iterations whose update is in ``params`` (counted from
            the start of the run, resumed runs included).
        compile_seconds: time spent compiling.
        train_seconds: time spent running compiled chunks.
        diverged: the cost became non-finite or diverged (see the module doc).
        interrupted: ``should_stop`` stopped the run.
        stop_reason: None (finished), "non-finite", "diverged" or "interrupted".
        message: a sentence for the user when the run stopped early.
        carried: the last good state in the first-layer form's terms, which a
            checkpoint stores to resume exactly (``jaxnet.wide.Carried``).
        position: minibatch steps of the next epoch also in ``params`` (0:
            the run stopped at an epoch boundary; always 0 for full batch).
        final_cost: J of ``params`` (one forward pass on the whole training
            set, no dropout, with the L2 term if any; see the module doc); a
            float, (N,) numpy for a sweep, None when the driver was not given X.
        health: the training-health readings at the recorded points
            (``jaxnet.health.Health`` of numpy arrays (P, L); a sweep
            (N, P, L)), or None when the run did not record them
            (``health_every``).
        health_iterations: the recorded points' iterations, (P,) int, or None.
    """

    params: Params
    state: TrainState
    costs: np.ndarray
    iterations_done: int
    compile_seconds: float
    train_seconds: float
    diverged: bool
    interrupted: bool
    stop_reason: str | None = None
    message: str = ""
    carried: Carried | None = None
    position: int = 0
    final_cost: float | np.ndarray | None = None
    health: Health | None = None
    health_iterations: np.ndarray | None = None


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


@functools.cache
def chunk_program(
    config: TrainConfig,
    capacity: int,
    vmapped: bool | str = False,
    health: bool = False,
):
    """``run(state, hp, data, Y, n) -> (state, costs (capacity,), params finite)``.

    Runs n (traced, <= capacity) steps; the costs' first entries are those of
    the iterations completed in the chunk (the rest NaN). The state is in the
    first-layer form's terms (a minibatch run's with its ``EpochState``) and
    data is what that form takes (X for "dense"). With ``vmapped`` the state
    and hp carry a leading model axis (a sweep) and the costs are (N,
    capacity); Y is shared, and the data along the form's ``model_axes``. With
    ``vmapped="data"`` (dense form only) the data X and Y carry the model axis
    too: each model trains on its own examples (``jaxnet.search``'s k-fold).

    With ``health``: ``run(state, hp, data, Y, n, marks)`` also returns the
    health records (``jaxnet.health.Health``, each leaf (capacity, L); a sweep
    (N, capacity, L)): record i belongs to the chunk's i-th iteration (as
    costs[i]) and is filled where that iteration is a recorded point; marks
    (3,) int32 = (iterations done before the chunk, health_every, the run's
    last iteration) say which.
    """
    form = FIRST_LAYERS[config.first_layer]

    def run(state, hp, data, Y, position, n, marks=None):
        observe = None if marks is None else _observer(config, hp, data, Y, marks)
        steps = form.iteration(config, hp, chunk=True, observe=observe)
        state, costs, *records = steps(state, data, Y, position, n, capacity)
        return state, costs, _all_finite(state.params), *records

    if vmapped:
        data_axes, y_axis = _data_axes(form, vmapped)
        axes = (0, 0, data_axes, y_axis, None, None)
        run = jax.vmap(run, in_axes=(*axes, None) if health else axes)

    def program(state, hp, data, Y, n, *marks):
        if config.batch_size is not None:
            state = start_epoch(state)  # (none yet: at an epoch's start)
        position = jnp.int32(0)  # every model of a sweep is at the same step
        if state.epoch is not None:
            position = state.epoch.step[0] if vmapped else state.epoch.step
        return run(state, hp, data, Y, position, n, *marks)

    return jax.jit(program)


def _observer(config: TrainConfig, hp, data, Y, marks) -> Observer:
    """The chunk loops' ``steps.Observer``: the form's health probe, and
    recorded points at the iterations marks[0] + k that are a multiple of
    marks[1] or the last one, marks[2]. The probe's data-only work runs here,
    outside the loops."""
    start, every, last = marks[0], marks[1], marks[2]

    def next_point(k):
        i = start + k
        multiple = (i + every - 1) // every * every
        return jnp.where(i <= last, jnp.minimum(multiple, last), multiple) - start

    return Observer(PROBES[config.first_layer](config, hp, data, Y), next_point)


@functools.cache
def cost_program(config: TrainConfig, vmapped: bool | str = False):
    """``cost(params, hp, X, Y) -> J``, jitted: the lecture's J of dense params
    on the whole (X, Y), no dropout, with lambd / (2m) sum ||W||^2 when the
    config has L2. With ``vmapped`` params and hp carry the model axis and J is
    (N,)."""

    def cost(params, hp, X, Y):
        lambd = hp.lambd if config.l2 else None
        return model_cost(params, X, Y, config.activations, lambd=lambd)

    if vmapped:
        X_axis, Y_axis = (0, 0) if vmapped == "data" else (None, None)
        cost = jax.vmap(cost, in_axes=(0, 0, X_axis, Y_axis))
    return jax.jit(cost)


def _data_axes(form, vmapped) -> tuple:
    """(data axes, Y axis) of a sweep's compiled chunk: shared data (the form's
    ``model_axes``, Y None), or with ``vmapped="data"`` one X and Y per model."""
    if vmapped == "data":
        return 0, 0
    return form.model_axes, None


_COMPILED: dict = {}


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)) for x in leaves
    )


def compiled_chunk(
    config, capacity, vmapped, args, health: bool = False
) -> tuple[Callable, float]:
    """The chunk program compiled for these argument shapes, and the seconds it
    took (0 when it was compiled before: a new learning rate, lambd or
    keep_prob, or a new chunk length up to ``capacity``, reuses it)."""
    key = (config, capacity, vmapped, health, _signature(args))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    start = time.perf_counter()
    program = chunk_program(config, capacity, vmapped, health)
    _COMPILED[key] = program.lower(*args).compile()
    return _COMPILED[key], time.perf_counter() - start


def drive(
    config: TrainConfig,
    state: TrainState | Carried,
    hp: Hyperparams,
    data,
    Y,
    *,
    num_iterations: int,
    start_iteration: int = 0,
    past_costs: np.ndarray | None = None,
    print_every: int | None = None,
    progress: bool = False,
    desc: str = "training",
    unit: str = "iteration",
    on_chunk: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    print_fn: Callable[[str], None] | None = None,
    max_chunk_seconds: float = MAX_CHUNK_SECONDS,
    vmapped: bool | str = False,
    single_chunk: bool = False,
    capacity: int | None = None,
    check: bool = True,
    X=None,
    health_every: int | None = None,
) -> RunResult:
    """Run iterations start_iteration .. num_iterations - 1 from ``state``.

    Args:
        config, hp, data, Y: what the chunk program takes (see module doc).
        state: the dense start state (it enters the first-layer form here), or
            a ``Carried`` of this form (a resumed run, already in its terms;
            ``data`` must be ``jaxnet.wide.carried_data`` of it).
        num_iterations: the run's total length (iterations or epochs).
        start_iteration: iterations already done (a resumed run).
        past_costs: their costs, kept in the result and used for J_0.
        print_every: print the cost every this many iterations (None: never).
        progress: show a tqdm bar on stderr.
        on_chunk: ``on_chunk(state, iterations_done, costs_so_far, carried)``
            after each good chunk (e.g. to write a checkpoint); the state is
            dense, ``carried`` the ``Carried`` that resumes it exactly. A
            callback taking two or three positional arguments gets the first
            two or three.
        should_stop: polled between chunks; True stops the run, keeping it.
        print_fn: where cost lines go (default: tqdm.write, above the bar).
        max_chunk_seconds: the longest a compiled chunk should run.
        vmapped: state and hp carry a model axis (a sweep): no rollback, costs
            (N, iterations); "data": data and Y carry it too (one training set
            per model, dense form only; ``chunk_program``).
        single_chunk: run everything as one chunk (``fit``: no host round trip).
        capacity: the compiled chunk's capacity in steps (chunks of at most
            that many; with ``single_chunk``, all of that many). Default: sized
            from the run's length. Runs of different lengths that pass the same
            value share one compiled program (``jaxnet.search``'s rungs).
        check: apply the stopping rules (``fit`` returns the raw run instead).
        X: the dense training inputs (n_x, m); given, the result's
            ``final_cost`` is J of the returned params (see the module doc).
        health_every: record the training-health readings at every multiple
            of it and at the last iteration (see the module doc; experiments
            pass their ``print_every``); None or 0: none (the default).
    """
    print_fn = print_fn or (lambda line: tqdm.write(line, file=sys.stdout))
    if health_every is not None and health_every != 0:
        health_every = check_count("health_every", health_every)
    health = bool(health_every)
    L = len(config.activations)
    recorded: list = []  # (iterations (k,), Health of (k, L) / (N, k, L)) per chunk
    form = FIRST_LAYERS[config.first_layer]
    enter, leave = form.enter, form.leave
    on_chunk = None if on_chunk is None else _positional(on_chunk)
    if vmapped:
        data_axes = _data_axes(form, vmapped)[0]
        enter = jax.vmap(enter, in_axes=(0, data_axes))
        leave = jax.vmap(leave, in_axes=(0, data_axes))
    if isinstance(state, Carried) and state.form != config.first_layer:
        raise ValueError(
            f"a state carried in the {state.form!r} first-layer form cannot run as "
            f"{config.first_layer!r}; start from its dense state instead"
        )
    in_form = isinstance(state, Carried)  # already in the form's terms
    state = state.state if isinstance(state, Carried) else state  # (in_form)
    leaf = jax.tree.leaves(state.params)[0]
    shape = (leaf.shape[0], 0) if vmapped else (0,)
    past = np.zeros(shape, leaf.dtype) if past_costs is None else np.asarray(past_costs)
    costs = [past.astype(leaf.dtype)]
    per = steps_per_iteration(config.batch_size, jnp.shape(Y)[-1])
    if config.batch_size is not None:
        state = start_epoch(state)
    position = _position(state)
    if not 0 <= position < per:
        raise ValueError(
            f"the start state is at minibatch step {position} of an epoch, but an "
            f"epoch of this run has {per} steps: it belongs to another batch size"
        )
    done, total = start_iteration * per + position, num_iterations * per  # steps
    if done > total:
        raise ValueError(
            f"cannot resume at step {done} of a {total}-step run ({unit} "
            f"{start_iteration} + {position} steps of {num_iterations} {unit}s)"
        )
    compile_s, train_s = 0.0, 0.0
    J0 = past[0] if past.size and not vmapped else None
    if X is not None and not in_form:  # compiled now, not on a stop's path
        compile_s += _compiled_cost(config, vmapped, (state.params, hp, X, Y))[1]
    state = state if in_form else _entered(enter, state, data)
    remaining = total - done
    # One compiled program per run: chunks of any length up to ``capacity``.
    if capacity is None:
        capacity = (
            remaining if single_chunk else min(_power_of_two(remaining), MAX_CAPACITY)
        )
    steps = capacity if single_chunk else min(PROBE_STEPS, remaining)
    history = [(state, done)]  # chunk-start states a rollback may replay from
    reason, message = None, ""
    bar = tqdm(
        total=num_iterations,
        initial=done // per,
        desc=desc,
        disable=not progress,
        unit="it",
        file=sys.stderr,
        leave=False,
    )
    try:
        while done < total:
            marks = _marks(done // per, health_every, num_iterations) if health else ()
            template = (state, hp, data, Y, jnp.asarray(1, jnp.int32), *marks)
            compiled, seconds = _compile_watched(
                config, capacity, vmapped, template, should_stop, health
            )
            compile_s += seconds  # (0 after the first chunk; then ask again)
            stop = should_stop is not None and (compiled is None or should_stop())
            stop, steps = agree_on_chunk(stop, steps)  # (several processes)
            if stop:
                reason, message = (
                    "interrupted",
                    f"stopped after {_where(done, per, unit)}",
                )
                break
            n = min(steps, total - done)
            start = time.perf_counter()
            new_state, chunk_costs, finite, *records = compiled(
                state, hp, data, Y, jnp.asarray(n, jnp.int32), *marks
            )
            completed = (done % per + n) // per  # iterations the chunk ended
            chunk_costs = gather(chunk_costs)[..., :completed]  # numpy, all processes
            if health:
                recorded.append(
                    _points(
                        records[0], done // per, completed, health_every, num_iterations
                    )
                )
            seconds = time.perf_counter() - start
            train_s += seconds
            if check and not vmapped:
                verdict = None
                if chunk_costs.size:  # J_0: the run's first cost
                    J0 = chunk_costs[0] if J0 is None else J0
                    verdict = first_bad(chunk_costs, float(J0))
                if verdict is None and not bool(finite):
                    verdict = (completed, "non-finite")
                if verdict is not None:
                    replay = functools.partial(
                        _replay, config, capacity, hp, data, Y, marks
                    )
                    state, done, reason, message = roll_back(
                        replay, history, verdict, chunk_costs, done, per, unit, costs
                    )
                    break
            state = new_state
            costs.append(chunk_costs)
            bar.update(completed)  # before the chunk's cost lines: they redraw it
            _print_costs(
                print_fn, print_every, unit, chunk_costs, done // per, num_iterations
            )
            done += n
            history = _trim(history, (state, done), per)
            if on_chunk is not None:
                # A TrainState here (see the note after the loop).
                carried = Carried(config.first_layer, state, form.anchor(data))  # type: ignore[arg-type]
                dense = _left(leave, state, data)  # type: ignore[arg-type]
                on_chunk(dense, done // per, np.concatenate(costs, axis=-1), carried)
            if not single_chunk:
                steps = _steps_per_chunk(seconds / n, max_chunk_seconds, capacity, n)
    finally:
        bar.refresh()  # the last count is drawn, not the last one timed
        bar.close()
    if message:
        print_fn(message)
    # state is a TrainState from here on (made so above); mypy widens it back to
    # the argument's TrainState | Carried after each untyped call.
    carried = Carried(config.first_layer, state, form.anchor(data))  # type: ignore[arg-type]
    state = _left(leave, state, data)  # type: ignore[arg-type]
    final = None
    if X is not None:
        cost, _ = _compiled_cost(config, vmapped, (state.params, hp, X, Y))
        final = gather(cost(state.params, hp, X, Y))
        final = np.asarray(final) if vmapped else float(final)
    return RunResult(
        state.params,
        state,
        np.concatenate(costs, axis=-1),
        done // per,
        compile_s,
        train_s,
        reason in ("non-finite", "diverged"),
        reason == "interrupted",
        reason,
        message,
        carried=carried,
        position=done % per,
        final_cost=final,
        **(_stacked(recorded, done // per, shape[:-1], L) if health else {}),
    )


def _positional(on_chunk: Callable) -> Callable:
    """``on_chunk`` called with as many of (state, done, costs, carried) as it
    takes positionally (callbacks of (state, done) and (state, done, costs)
    keep working)."""
    try:
        parameters = inspect.signature(on_chunk).parameters.values()
    except (TypeError, ValueError):  # no signature (some builtins): the old three
        return lambda *args: on_chunk(*args[:3])
    kinds = [p.kind for p in parameters]
    Kind = inspect.Parameter
    if Kind.VAR_POSITIONAL in kinds:
        return on_chunk
    positional = (Kind.POSITIONAL_ONLY, Kind.POSITIONAL_OR_KEYWORD)
    n = min(max(sum(kind in positional for kind in kinds), 2), 4)
    return lambda *args: on_chunk(*args[:n])


def _compile_watched(
    config, capacity, vmapped, args, should_stop, health: bool = False
) -> tuple:
    """``compiled_chunk``, asking ``should_stop`` every POLL_SECONDS meanwhile.

    A compilation takes seconds and cannot be cut, so it runs in a helper
    thread while this one polls: on a stop request the run stops at once,
    returning (None, seconds so far); the compilation finishes unused in the
    background (the process exits when it is done). With several processes
    (whose compiled calls must match) or without ``should_stop``, it compiles
    here.
    """
    key = (config, capacity, vmapped, health, _signature(args))
    if should_stop is None or key in _COMPILED or jax.process_count() > 1:
        return compiled_chunk(config, capacity, vmapped, args, health)
    start = time.perf_counter()
    done: dict[str, Any] = {}

    def work():
        try:
            done["value"] = compiled_chunk(config, capacity, vmapped, args, health)
        except BaseException as error:  # raised again below, in this thread
            done["error"] = error

    # Not a daemon: Python waits for it before tearing down (XLA aborts if
    # the interpreter is finalized under a running compilation).
    worker = threading.Thread(target=work, name="jaxnet-compile")
    worker.start()
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if worker.is_alive() and should_stop():
            return None, time.perf_counter() - start
    if "error" in done:
        raise done["error"]
    return done["value"]


def _position(state: TrainState) -> int:
    """Steps of the current epoch already done (0 without an ``EpochState``)."""
    if state.epoch is None:
        return 0
    return int(np.ravel(gather(state.epoch.step))[0])


def _where(steps: int, per: int, unit: str) -> str:
    """ "iteration 12", or "epoch 3 and 17 of 63 minibatch steps" inside one."""
    where = f"{unit} {steps // per}"
    if steps % per:
        where += f" and {steps % per} of {per} minibatch steps"
    return where


def _entered(enter, state: TrainState, data) -> TrainState:
    """The state in the first-layer form's terms, its ``EpochState`` kept."""
    return enter(state, data)._replace(epoch=state.epoch)


def _left(leave, state: TrainState, data) -> TrainState:
    """The dense state, its ``EpochState`` kept."""
    return leave(state, data)._replace(epoch=state.epoch)


def _trim(history: list, latest: tuple, per: int) -> list:
    """Chunk-start states, oldest first, down to the newest one a rollback can
    still need: at or before the iteration boundary one before the latest."""
    history = [*history, latest]
    need = max(latest[1] // per - 1, 0) * per
    while len(history) > 1 and history[1][1] <= need:
        history.pop(0)
    return history


def _compiled_cost(config, vmapped, args) -> tuple[Callable, float]:
    """``cost_program`` compiled for these arguments, and the seconds it took
    (0 when compiled before)."""
    key = ("cost", config, vmapped, _signature(args))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    start = time.perf_counter()
    _COMPILED[key] = cost_program(config, vmapped).lower(*args).compile()
    return _COMPILED[key], time.perf_counter() - start


def _replay(config, capacity, hp, data, Y, marks, state, num_steps: int) -> TrainState:
    """``num_steps`` steps from ``state`` (deterministic: same keys), with the
    run's own compiled program (marks: its health marks, or ())."""
    if num_steps == 0:
        return state
    args = (state, hp, data, Y, jnp.asarray(num_steps, jnp.int32), *marks)
    compiled, _ = compiled_chunk(config, capacity, False, args, bool(marks))
    return compiled(*args)[0]


def _marks(start: int, every: int | None, total: int) -> tuple[jax.Array]:
    """The health program's marks: (iterations before the chunk, every, last)."""
    return (jnp.asarray([start, every or 1, total - 1], jnp.int32),)


def _points(records, start: int, completed: int, every, total: int) -> tuple:
    """The chunk's recorded points: (iterations (k,), Health of numpy (k, L) or
    (N, k, L)), from the records of its ``completed`` iterations."""
    its = np.arange(start, start + completed)
    its = its[(its % every == 0) | (its == total - 1)]
    rows = its - start
    records = gather(records)  # numpy, all processes
    return its, Health(*(np.take(np.asarray(x), rows, axis=-2) for x in records))


def _stacked(recorded: list, done: int, lead: tuple, L: int) -> dict:
    """RunResult's health fields: the points of iterations < done (a rollback
    drops the later ones), stacked in order (none: (*lead, 0, L) arrays)."""
    empty = (np.zeros(0, int), tuple(np.zeros((*lead, 0, L)) for _ in Health._fields))
    steps, readings = zip(empty, *recorded, strict=True)
    its = np.concatenate(steps)
    keep = its < done
    fields = [
        np.concatenate(parts, axis=-2)[..., keep, :].astype(parts[-1].dtype)
        for parts in zip(*readings, strict=True)
    ]
    # numpy on the host (Health's fields are typed for the traced readings).
    return {"health": Health(*fields), "health_iterations": its[keep]}  # type: ignore[arg-type]


def _print_costs(print_fn, every, unit, chunk_costs, done, total):
    if not every:
        return
    for i in range(done, done + np.shape(chunk_costs)[-1]):  # (n,) or (N, n)
        if i % every == 0 or i == total - 1:
            value = chunk_costs[..., i - done]
            text = f"{float(np.mean(value)):.6f}"
            if np.ndim(value):
                text = f"{text} (mean of {np.size(value)} models)"
            print_fn(f"Cost after {unit} {i}: {text}")


def _power_of_two(n: int) -> int:
    """The smallest power of two >= n (>= 1)."""
    return 1 << max(n - 1, 0).bit_length()


def _steps_per_chunk(
    step_seconds: float, budget: float, capacity: int, last: int
) -> int:
    """Steps per chunk: as many as fit the time budget, at most ``capacity`` and
    ``GROWTH`` times the ``last`` chunk's (a short chunk's timing is noisy)."""
    fit = int(budget / max(step_seconds, 1e-9))
    return max(1, min(fit, capacity, GROWTH * last))
