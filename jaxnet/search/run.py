"""The search itself: candidates trained as compiled, vmapped groups, scored on dev.

``search`` draws candidates from a space (``jaxnet.search.space``), splits the
training data (``jaxnet.search.splits``: a dev split or k folds), groups the
candidates by shape (one vmapped program per group: the STATIC choices) and
trains every group rung by rung through ``jaxnet.driver.drive``, the driver of
``fit`` and ``sweep``. After each rung every live candidate is scored on its
dev examples (J without the L2 term, the "dev cost"; with k folds the mean of
the k dev costs) and, with successive halving (``eta``), only the best 1/eta
of all groups together go on (``jaxnet.search.halving``: the kept ones are
gathered out of the vmapped state, so the next program is smaller).

k-fold in one program: the models of a group are (fold, candidate) pairs,
fold-major (model f n + j is candidate j on fold f), and the driver runs them
with ``vmapped="data"``: each model gets its own fold's training columns X_f
(n_x, m_f) and Y_f, so every fold's cost has its own exact 1/m_f. The folds
have equal sizes by construction (``splits.kfold``); the data is held once per
model, k n x (n_x + n[L]) x m_f numbers, counted in the memory estimate.

Candidate i (its index in the sampled list) starts from
``init(key_init, layer_dims)`` with ``key_init, key_train =
candidate_keys(seed, i)`` and trains with ``key=key_train``; so each
candidate's numbers are those of ``jaxnet.train.fit`` with its settings on its
fold's training columns (``first_layer="dense"``): tested to 1e-12 in float64,
also for candidates dropped by halving, up to where they were dropped.

Every check (space, eta, budget, folds, dev fraction, the data, every group's
hyperparameters through ``jaxnet.boundary.prepare`` and its memory estimate)
runs before the first program compiles.
"""

import functools
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import memory
from jaxnet.boundary import prepare
from jaxnet.deep import model_cost, model_forward
from jaxnet.driver import drive
from jaxnet.hyperparams import DEFAULT_LEARNING_RATE, check_count
from jaxnet.optimizers import as_optimizer
from jaxnet.outputs import get_output
from jaxnet.params import Params, init_params
from jaxnet.search import halving, splits
from jaxnet.search.checkpoints import SearchCheckpoint, state_leaves
from jaxnet.search.space import NUMERIC, SpaceError, check_space, group_of, sample
from jaxnet.steps import steps_per_iteration
from jaxnet.stopping import first_bad

MAX_MODELS = 16  # models per vmapped program by default (see ``search``)
FIXED_OPTIONS = ("learning_rate", "lambd", "keep_prob", "optimizer", "batch_size",
                 "grad")  # fmt: skip


def candidate_keys(seed: int, index: int) -> tuple[jax.Array, jax.Array]:
    """(init key, training key) of candidate ``index``: split(fold_in(key(seed),
    index)). The same candidate gets the same keys whatever else is searched."""
    pair = jax.random.split(jax.random.fold_in(jax.random.key(seed), index))
    return pair[0], pair[1]


class SearchResult(NamedTuple):
    """What ``search`` returns.

    Attributes:
        candidates: one record per candidate, by id: "id", "values" (the
            searched ones), "settings" (every hyperparameter it trained with),
            "group", "iterations_done", "dropped_after_rung" (None: trained to
            the end), "dev_cost" (mean over folds, last rung it reached),
            "dev_costs" ([per rung]), "dev_accuracy" (classifiers) or
            "dev_mae" (linear output), "diverged".
        ranking: candidate ids, best first: further rungs first, then lower
            dev cost; diverged candidates last.
        best: ranking[0].
        best_params: the best candidate's trained params (dev split), or None
            (k folds: one per fold; train it again with ``fit_settings``).
        costs: candidate id -> training costs, (k, iterations_done).
        rungs: per rung {"until", "candidates", "seconds", "compile_seconds"}.
        split: the ``splits.Split`` used.
        interrupted: ``should_stop`` stopped the search (ranking from the rungs
            completed).
        checkpoint: the state after the last completed rung (``start=``).
        settings: what ``fit_settings`` needs to rebuild a candidate's run.
    """

    candidates: list[dict]
    ranking: list[int]
    best: int
    best_params: Params | None
    costs: dict[int, np.ndarray]
    rungs: list[dict]
    split: splits.Split
    interrupted: bool
    checkpoint: SearchCheckpoint | None
    settings: dict


def _labels(Y: np.ndarray, output: str) -> np.ndarray:
    """Strata for the splits: the class of each example (none for regression)."""
    if not get_output(output).classifier:
        return np.zeros(Y.shape[1], np.int64)
    if Y.shape[0] == 1:
        return np.asarray(Y[0] > 0.5, np.int64)
    return np.argmax(Y, axis=0)


def _dims(layer_dims: Sequence[int], width) -> list[int]:
    """layer_dims with its hidden sizes replaced by ``width`` (a tuple)."""
    dims = [check_count("layer_dims", n) for n in layer_dims]
    if width is None:
        return dims
    hidden = len(dims) - 2
    if len(width) == 1:
        width = width * hidden
    if len(width) != hidden or hidden == 0:
        raise SpaceError(
            f"width {list(width)} does not fit layer_dims {dims}: give one size, "
            f"or {hidden} sizes (one per hidden layer)"
        )
    return [dims[0], *width, dims[-1]]


def fit_settings(settings: dict, candidate: dict) -> tuple[list[int], tuple, dict]:
    """(layer_dims, activations, fit options without params/key) of a candidate:
    what ``jaxnet.train.fit`` takes to train it alone."""
    every = candidate["settings"]
    dims = _dims(settings["layer_dims"], every.get("width"))
    acts = (every["hidden"],) * (len(dims) - 2) + (settings["output"],)
    options = {k: every[k] for k in FIXED_OPTIONS}
    return dims, acts, {**options, "first_layer": "dense"}


class _Group(NamedTuple):
    """One shape group's run: its config and live state; models fold-major."""

    config: Any
    state: Any
    hp: Any
    data: Any
    Y: Any
    ids: list[int]


def _take(tree, index):
    return jax.tree.map(lambda leaf: leaf[index], tree)


def _models(k: int, n: int, kept) -> np.ndarray:
    """Model indices of candidates at positions ``kept`` on every fold."""
    return np.concatenate([f * n + np.asarray(kept, np.int64) for f in range(k)])


@functools.cache
def _scorer(activations: tuple, classifier: bool):
    """(params (M, ...), X_dev (k, n_x, m_d), Y_dev (k, ., m_d), fold (M,)) ->
    (dev cost (M,), accuracy or MAE (M,)), jitted."""

    def one(params, X, Y):
        cost = model_cost(params, X, Y, activations)
        AL, _ = model_forward(params, X, activations)
        if not classifier:
            return cost, jnp.mean(jnp.abs(AL - Y))
        if Y.shape[0] == 1:
            right = (AL > 0.5) == (Y > 0.5)
        else:
            right = jnp.argmax(AL, axis=0) == jnp.argmax(Y, axis=0)
        return cost, jnp.mean(right.astype(AL.dtype))

    def score(params, X_dev, Y_dev, fold):
        return jax.vmap(lambda p, f: one(p, X_dev[f], Y_dev[f]))(params, fold)

    return jax.jit(score)


def search(
    space: Mapping[str, Any],
    X,
    Y,
    *,
    layer_dims: Sequence[int],
    output: str,
    num_iterations: int,
    num_candidates: int | None = None,
    sampler: str = "random",
    grid_points: int = 3,
    seed: int = 0,
    hidden: str = "relu",
    init: str = "he",
    init_fn: Callable[[jax.Array, list[int]], Params] | None = None,
    dev_fraction: float = 0.2,
    folds: int | None = None,
    eta: float | None = None,
    min_iterations: int = 1,
    max_models: int | None = MAX_MODELS,
    dtype=jnp.float32,
    should_stop: Callable[[], bool] | None = None,
    on_rung: Callable[[SearchCheckpoint, dict], None] | None = None,
    progress: bool = False,
    start: SearchCheckpoint | None = None,
    **options,
) -> SearchResult:
    """Search ``space`` for the settings with the lowest dev cost.

    Args:
        space: name -> ``LogUniform`` / ``Uniform`` / ``Choice`` (``space``).
        X: training inputs (n_x, m); the test set is not given to a search.
        Y: (n[L], m): one-hot (softmax), 0/1 (sigmoid) or targets (linear).
        layer_dims: [n[0], ..., n[L]]; a searched width replaces the hidden sizes.
        output: the output activation ("softmax", "sigmoid", "linear").
        num_iterations: R, a full run's iterations (epochs with batch_size).
        num_candidates, sampler, grid_points, seed: as ``space.sample``; seed
            also seeds the split and every candidate's keys (``candidate_keys``).
        hidden: hidden activation unless searched.
        init: ``init_params`` method; ``init_fn(key, dims)`` replaces it.
        dev_fraction: share of each class held out as dev (without folds).
        folds: k for k-fold cross-validation (None: a dev split).
        eta: successive halving keeps the best 1/eta per rung (None: off).
        min_iterations: r_0, the first rung's length (one chunk between drops).
        max_models: the most models (folds x candidates) one vmapped program
            trains; a larger group runs in batches of this size, one after the
            other, with one compiled program (None: the whole group at once).
            Measured on 2 CPU cores (digits, docs/search.md): 16 models per
            program train faster per model than 64 (the minibatches gathered
            per model stay in cache), and a fixed size compiles once for
            every rung.
        dtype: the run's float dtype.
        should_stop: polled between chunks (a signal): stops the search.
        on_rung: ``on_rung(checkpoint, rung_record)`` after each rung.
        progress: a tqdm bar per rung and group.
        start: a ``SearchCheckpoint`` to continue from (same arguments).
        **options: the values of hyperparameters not searched: learning_rate,
            lambd, keep_prob, optimizer (a name), batch_size, grad.

    Raises:
        SpaceError (a ValueError): the space, sampler, eta, budget, folds or
            dev fraction; ValueError: the data or a group's settings
            (``jaxnet.boundary.prepare``); ``jaxnet.memory.RunTooLargeError``: a
            shape group too large for memory. All before anything compiles.
    """
    unknown = sorted(set(options) - set(FIXED_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown search option(s) {unknown}; the fixed settings are "
            f"{list(FIXED_OPTIONS)}"
        )
    space = check_space(space)
    eta = halving.check_eta(eta)
    if max_models is not None:
        max_models = check_count("max_models", max_models)
    candidates = sample(
        space, num_candidates, sampler=sampler, grid_points=grid_points, seed=seed
    )
    rungs = halving.schedule(len(candidates), eta, min_iterations, num_iterations)
    min_iterations = check_count("min_iterations", min_iterations)  # numpy ints too
    seed = operator.index(seed)
    X, Y = np.asarray(X, dtype), np.asarray(Y, dtype)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X must be (n_x, m) and Y (n[L], m) with the same m; got X "
            f"{X.shape}, Y {Y.shape}"
        )
    strata = _labels(Y, output)
    split = (
        splits.dev_split(strata, dev_fraction, seed)
        if folds is None
        else splits.kfold(strata, folds, seed)
    )
    k = split.train.shape[0]
    fixed = {
        "learning_rate": DEFAULT_LEARNING_RATE, "lambd": 0.0, "keep_prob": 1.0,
        "optimizer": None, "batch_size": None, "grad": "manual", "hidden": hidden,
        "width": None, **options,
    }  # fmt: skip
    records: list[dict] = []
    for i, values in enumerate(candidates):
        every = {**fixed, **values}
        records.append({
            "id": i, "values": values, "settings": every, "group": group_of(values),
            "iterations_done": 0, "dropped_after_rung": None, "dev_cost": None,
            "dev_costs": [], "diverged": False,
        })  # fmt: skip
    settings = {"layer_dims": list(layer_dims), "output": output, "seed": seed,
                "init": init, "dtype": np.dtype(dtype).name}  # fmt: skip
    by_group: dict[str, list[int]] = {}
    for rec in records:
        by_group.setdefault(rec["group"], []).append(rec["id"])
    for ids in by_group.values():  # every group refused now, or none
        _check_group_memory(settings, records[ids[0]], len(ids) * k, split, X, Y)
    groups = {
        name: _prepare_group(settings, [records[i] for i in ids], split, X, Y, init_fn)
        for name, ids in by_group.items()
    }
    costs: dict[int, np.ndarray] = {
        i: np.zeros((k, 0), np.dtype(dtype)) for i in range(len(records))
    }
    first = 0
    if start is not None:
        groups, records, costs, first = _resume(groups, start)
    mode = "data" if k > 1 else True
    classifier = get_output(output).classifier
    X_dev = jnp.asarray(np.stack([X[:, d] for d in split.dev]))
    Y_dev = jnp.asarray(np.stack([Y[:, d] for d in split.dev]))
    rung_records: list[dict] = []
    checkpoint = start
    interrupted = False
    for r in range(first, len(rungs)):
        until, _ = rungs[r]
        before = 0 if r == 0 else rungs[r - 1][0]
        started = time.perf_counter()
        compile_s = 0.0
        for name, g in groups.items():
            if not g.ids:
                continue
            n = len(g.ids)
            per = n if max_models is None else max(1, max_models // k)
            states, segs = [], []
            for lo in range(0, n, per):  # batches of at most max_models models
                sub = _compact(g, list(range(lo, min(lo + per, n))), k)
                result = drive(
                    sub.config, sub.state, sub.hp, sub.data, sub.Y,
                    num_iterations=until, start_iteration=before, vmapped=mode,
                    should_stop=should_stop, progress=progress,
                    desc=f"rung {r} {name or 'search'}",
                    single_chunk=should_stop is None and not progress,
                    capacity=_capacity(min_iterations, sub),
                )  # fmt: skip
                compile_s += result.compile_seconds
                if result.interrupted:
                    interrupted = True
                    break
                states.append(result.state)
                segs.append(np.asarray(result.costs).reshape(k, len(sub.ids), -1))
            if interrupted:
                break
            groups[name] = g._replace(state=_assemble(states, k))
            seg = np.concatenate(segs, axis=1)  # (k, n, iterations of the rung)
            for j, i in enumerate(g.ids):
                costs[i] = np.concatenate([costs[i], seg[:, j]], axis=1)
        if interrupted:
            break
        alive = _score_rung(groups, records, costs, until, k, X_dev, Y_dev,
                            classifier)  # fmt: skip
        if r + 1 < len(rungs):
            keep = set(np.asarray(alive)[halving.keep_best(
                np.array([records[i]["dev_cost"] for i in alive], float),
                rungs[r + 1][1],
            )].tolist())  # fmt: skip
            for i in alive:
                if i not in keep:
                    records[i]["dropped_after_rung"] = r
            groups = {
                name: _compact(g, [j for j, i in enumerate(g.ids) if i in keep], k)
                for name, g in groups.items()
            }
        rung_record = {
            "rung": r, "until": until, "candidates": len(alive),
            "seconds": time.perf_counter() - started, "compile_seconds": compile_s,
        }  # fmt: skip
        rung_records.append(rung_record)
        checkpoint = SearchCheckpoint(
            r + 1,
            {name: list(g.ids) for name, g in groups.items()},
            {name: state_leaves(g.state) for name, g in groups.items()},
            [dict(rec) for rec in records],
            dict(costs),
        )
        if on_rung is not None:
            on_rung(checkpoint, rung_record)
    ranking = _rank(records)
    best = ranking[0]
    best_params = None
    if k == 1 and not interrupted:
        g = groups[records[best]["group"]]
        if best in g.ids:
            best_params = _take(g.state.params, g.ids.index(best))
    return SearchResult(records, ranking, best, best_params, costs, rung_records,
                        split, interrupted, checkpoint, settings)  # fmt: skip


def _check_group_memory(settings, record, num_models, split, X, Y) -> None:
    """Refuse a shape group whose vmapped run would not fit (``jaxnet.memory``):
    the run's own estimate for num_models models on m_f examples, plus one copy
    of the fold's data per model with k folds."""
    every = record["settings"]
    dims = _dims(settings["layer_dims"], every.get("width"))
    itemsize = np.dtype(settings["dtype"]).itemsize
    m = split.train.shape[1]
    shapes = jax.eval_shape(
        lambda: init_params(jax.random.key(0), dims, "zeros", settings["dtype"])
    )
    transform = as_optimizer(every["optimizer"], every["learning_rate"], shapes)
    opt = memory.tree_bytes(jax.eval_shape(transform.init, shapes)) * num_models
    parts = memory.estimate_run_bytes(
        dims, m, itemsize=itemsize, batch_size=every["batch_size"],
        num_models=num_models, optimizer_bytes=opt,
    )  # fmt: skip
    if split.train.shape[0] > 1:
        parts["fold data"] = num_models * (dims[0] + dims[-1]) * m * itemsize
    memory.check_memory(
        parts,
        f"the shape group {record['group'] or '(all candidates)'} "
        f"({num_models} models of layer_dims {dims})",
        "search fewer candidates, fewer folds or narrower layers",
    )


def _prepare_group(settings, records, split, X, Y, init_fn) -> _Group:
    """Validate a group through ``prepare`` and build its start (no compile)."""
    k = split.train.shape[0]
    every = records[0]["settings"]
    dims = _dims(settings["layer_dims"], every.get("width"))
    acts = (every["hidden"],) * (len(dims) - 2) + (settings["output"],)
    dtype = settings["dtype"]
    inits, keys = [], []
    for r in records:
        key_init, key_train = candidate_keys(settings["seed"], r["id"])
        if init_fn is None:
            inits.append(init_params(key_init, dims, settings["init"], dtype))
        else:
            inits.append(init_fn(key_init, dims))
        keys.append(key_train)
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves * k), *inits)
    column = {name: [r["settings"][name] for r in records] * k for name in NUMERIC}
    X_f = np.stack([X[:, t] for t in split.train])  # (k, n_x, m_f)
    Y_f = np.stack([Y[:, t] for t in split.train])
    try:
        run = prepare(
            params, X_f[0], Y_f[0], activations=acts, num_models=len(records) * k,
            stacked=True, learning_rate=column["learning_rate"],
            lambd=column["lambd"], keep_prob=column["keep_prob"],
            key=jnp.stack(keys * k), optimizer=every["optimizer"],
            batch_size=every["batch_size"], grad=every["grad"], first_layer="dense",
        )  # fmt: skip
    except ValueError as e:
        raise type(e)(f"search group {records[0]['group'] or '(all)'}: {e}") from None
    data, Y_run = run.data, run.Y
    if k > 1:
        n = len(records)
        data = jnp.asarray(np.repeat(X_f, n, axis=0), run.X.dtype)
        Y_run = jnp.asarray(np.repeat(Y_f, n, axis=0), run.X.dtype)
    return _Group(
        run.config, run.state, run.hp, data, Y_run, [r["id"] for r in records]
    )


def _capacity(min_iterations: int, g: _Group) -> int:
    """Steps per compiled chunk: those of the first rung, rounded up to a power
    of two, for every rung, so that all rungs of a group (of one batch size of
    models) run one compiled program; a longer rung runs several chunks."""
    steps = min_iterations * steps_per_iteration(g.config.batch_size, g.Y.shape[-1])
    return 1 << max(steps - 1, 0).bit_length()


def _assemble(states: list, k: int):
    """One fold-major state from batches' states (each fold-major over its own
    candidates): model f n + j of the whole is candidate j on fold f."""
    if len(states) == 1:
        return states[0]
    sizes = [jax.tree.leaves(s)[0].shape[0] // k for s in states]
    offsets = np.cumsum([0, *[k * b for b in sizes[:-1]]])
    pairs = list(zip(offsets, sizes, strict=True))
    index = [o + f * b + j for f in range(k) for o, b in pairs for j in range(b)]
    whole = jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *states)
    return _take(whole, jnp.asarray(index))


def _compact(g: _Group, kept: list[int], k: int) -> _Group:
    """The group with only the candidates at positions ``kept`` (on every fold):
    state, hyperparameters and (k folds) data gathered with one index."""
    if len(kept) == len(g.ids):
        return g
    index = jnp.asarray(_models(k, len(g.ids), kept))
    data, Y = g.data, g.Y
    if k > 1:
        data, Y = g.data[index], g.Y[index]
    return _Group(g.config, _take(g.state, index), _take(g.hp, index), data, Y,
                  [g.ids[j] for j in kept])  # fmt: skip


def _score_rung(groups, records, costs, until, k, X_dev, Y_dev,
                classifier) -> list[int]:  # fmt: skip
    """Dev cost (and accuracy or MAE) of every live candidate, mean over folds;
    a candidate whose training costs went bad (``jaxnet.stopping.first_bad``)
    is marked diverged and scored inf. Returns the live ids."""
    alive = []
    metric = "dev_accuracy" if classifier else "dev_mae"
    for g in groups.values():
        if not g.ids:
            continue
        n = len(g.ids)
        fold = jnp.asarray(np.repeat(np.arange(k), n))
        score = _scorer(g.config.activations, classifier)
        dev_cost, dev_metric = (
            np.asarray(v).reshape(k, n)
            for v in score(g.state.params, X_dev, Y_dev, fold)
        )
        for j, i in enumerate(g.ids):
            rec = records[i]
            bad = any(
                first_bad(row, float(row[0])) is not None
                for row in costs[i]
                if row.size
            )
            value = float(np.mean(dev_cost[:, j]))
            bad = bad or not np.isfinite(value)
            rec.update(
                iterations_done=until, diverged=bad,
                dev_cost=None if bad else value,
                dev_costs=[*rec["dev_costs"], None if bad else value],
            )  # fmt: skip
            rec[metric] = float(np.mean(dev_metric[:, j]))
            alive.append(i)
    return alive


def _rank(records) -> list[int]:
    """Ids, best first: healthy before diverged, further before earlier
    dropped, lower dev cost first."""

    def key(rec):
        cost = rec["dev_cost"]
        return (rec["diverged"], -rec["iterations_done"],
                np.inf if cost is None else cost, rec["id"])  # fmt: skip

    return [rec["id"] for rec in sorted(records, key=key)]


def _resume(groups, start: SearchCheckpoint) -> tuple:
    """Groups, records and costs as they were after ``start.rung`` rungs."""
    resumed = {}
    for name, g in groups.items():
        if name not in start.alive:
            raise ValueError(
                f"the checkpoint has no shape group {name!r}: it is another search's"
            )
        template, treedef = jax.tree.flatten(g.state)
        leaves = []
        for t, saved in zip(template, start.leaves[name], strict=True):
            if jnp.issubdtype(t.dtype, jax.dtypes.prng_key):
                leaves.append(jax.random.wrap_key_data(jnp.asarray(saved)))
            else:
                leaves.append(jnp.asarray(saved, t.dtype))
        ids = list(start.alive[name])
        k = g.data.shape[0] // len(g.ids) if jnp.ndim(g.data) == 3 else 1
        kept = [g.ids.index(i) for i in ids]
        index = jnp.asarray(_models(k, len(g.ids), kept))
        data, Y = (g.data[index], g.Y[index]) if k > 1 else (g.data, g.Y)
        state = jax.tree.unflatten(treedef, leaves)
        resumed[name] = _Group(g.config, state, _take(g.hp, index), data, Y, ids)
    records = [dict(rec) for rec in start.records]
    costs = {int(i): np.asarray(c) for i, c in start.costs.items()}
    return resumed, records, costs, start.rung
