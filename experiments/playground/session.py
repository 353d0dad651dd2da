"""One browser session's run: data, params, and a training thread on the driver.

A ``Session`` holds one run at a time. ``configure`` validates new settings,
cancels the old run (its thread stops after its running chunk, and nothing it
computes afterwards is shown), and builds the data and the initial params.
``start`` trains on ``jaxnet.driver.drive`` in a thread: compiled chunks sized
by time (CHUNK_SECONDS), each followed by one jitted ``snapshot`` on the
device, published as the session's latest update; ``pause`` stops it between
chunks, keeping the state, and ``start`` continues it exactly (the driver's
resume: state, iterations done and past costs). ``step`` runs one iteration
(an epoch with minibatches). ``Sessions`` keeps at most MAX_SESSIONS, dropping
the least recently used.
"""

import base64
import math
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.playground import code, datasets
from experiments.playground.settings import Settings, SettingsError, parse_settings
from experiments.playground.snapshot import GRID, grid_points, snapshot
from jaxnet.boundary import prepare
from jaxnet.checkpoint import save_checkpoint
from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.driver import drive
from jaxnet.gradcheck import check_gradients
from jaxnet.health import NOT_APPLICABLE, hints
from jaxnet.params import init_params

CHUNK_SECONDS = 0.1  # the longest compiled chunk: updates at > 5 a second
CURVE_POINTS = 300  # the cost curve sent is thinned to at most this many
MAX_SESSIONS = 8
JOIN_SECONDS = 5.0  # how long a cancel waits for the old thread
GRADCHECK_EXAMPLES = 100  # columns of the training set the check uses
GRADCHECK_FD_PARAMS = 3000  # finite differences up to this many parameters


class Run:
    """A configured run: its data on the device, its state and history."""

    def __init__(self, settings: Settings, dataset: datasets.Dataset):
        s = self.settings = settings
        self.dataset = dataset
        self.split = datasets.split(dataset, s.seed)
        m_train = self.split.X_train.shape[1]
        if s.batch_size is not None and s.batch_size > m_train:
            raise SettingsError(
                "batch_size",
                f"batch_size {s.batch_size} is more than the {m_train} training "
                "examples; choose a smaller one, or full batch",
            )
        if s.output == "sigmoid" and dataset.classes > 2:
            raise SettingsError(
                "output",
                f"the data has {dataset.classes} classes: choose softmax",
            )
        K = dataset.classes
        self.activations = (*s.activations, s.output)
        n_y = 1 if s.output == "sigmoid" else K
        self.layer_dims = [2, *s.hidden, n_y]
        keys = datasets.keys(s.seed)
        self.key_train = keys[3]
        self.params = init_params(keys[2], self.layer_dims, method=s.init)
        sp = self.split
        self.X_train = jnp.asarray(sp.X_train)
        self.Y_train = datasets.targets(sp.labels_train, s.output, K)
        self.X_test = jnp.asarray(sp.X_test)
        self.Y_test = datasets.targets(sp.labels_test, s.output, K)
        grid, self.extent = grid_points(dataset.X)
        self.grid = jnp.asarray(grid)
        self.state = None  # the driver's TrainState once trained
        self.done = 0  # iterations (epochs) done
        self.costs = np.zeros((0,), np.float32)
        self.message = ""
        self._gradcheck = None

    def gradcheck_functions(self):
        """(J, the hand-written gradient) of params, jitted once per run, in
        float64 on the first GRADCHECK_EXAMPLES training examples, no dropout
        (the check needs a deterministic J); the same function objects each
        time, so the check's finite-difference program compiles once too."""
        if self._gradcheck is None:
            f64 = jnp.float64
            X = jnp.asarray(self.X_train[:, :GRADCHECK_EXAMPLES], f64)
            Y = jnp.asarray(self.Y_train[:, :GRADCHECK_EXAMPLES], f64)
            s, acts = self.settings, self.activations
            lambd = s.lambd if s.lambd else None
            cost = jax.jit(lambda p: model_cost(p, X, Y, acts, lambd=lambd))
            grads = jax.jit(
                lambda p: model_value_and_grads(p, X, Y, acts, lambd=lambd)[1]
            )
            self._gradcheck = (cost, grads)
        return self._gradcheck

    @property
    def current_params(self):
        return self.params if self.state is None else self.state.params

    def points(self) -> list[list]:
        """[[x1, x2, label, held out (0/1)], ...] for the plot."""
        X, labels, test = self.dataset.X, self.dataset.labels, self.split.test
        return [
            [round(float(X[0, i]), 4), round(float(X[1, i]), 4), int(labels[i]),
             int(test[i])]
            for i in range(X.shape[1])
        ]  # fmt: skip


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _curve(costs: np.ndarray) -> list[list]:
    """[[iteration, cost], ...], at most CURVE_POINTS, the last one included."""
    n = len(costs)
    if n == 0:
        return []
    index = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).astype(int))
    return [[int(i), _finite_or_none(costs[i])] for i in index]


class Session:
    """One browser session: one run at a time (see the module docstring)."""

    def __init__(self, sid: str):
        self.sid = sid
        self.lock = threading.RLock()
        self.run: Run | None = None
        self.upload: datasets.Dataset | None = None
        self.status = "idle"
        self.version = 0
        self.latest: dict[str, Any] = {"type": "update", "version": 0, "status": "idle"}
        self.generation = 0
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.last_used = time.monotonic()

    # -- set-up ----------------------------------------------------------------

    def configure(self, raw: Mapping[str, Any]) -> dict:
        """Validate ``raw`` settings, cancel the old run, build the new one.

        Returns:
            {"settings", "points", "extent", "classes", "layer_dims", "grid"}.

        Raises:
            SettingsError: a bad setting (the old run is kept then).
        """
        settings = parse_settings(raw)
        if settings.data == "csv":
            if self.upload is None:
                raise SettingsError(
                    "csv", "no CSV uploaded in this session: choose a file first"
                )
            dataset = self.upload
            settings = replace(settings, classes=dataset.classes)
        else:
            dataset = datasets.synthetic(settings)
        run = Run(settings, dataset)  # may raise: the old run goes on
        self.cancel()
        with self.lock:
            self.run = run
            self.generation += 1
            generation = self.generation
        self._publish(run, "ready", generation)
        return self.describe()

    def describe(self) -> dict:
        run = self._need_run()
        return {
            "settings": run.settings.as_dict(),
            "points": run.points(),
            "extent": run.extent,
            "classes": run.dataset.classes,
            "layer_dims": run.layer_dims,
            "grid": GRID,
        }

    def set_upload(self, data: bytes) -> dict:
        """Parse and keep an uploaded CSV for ``data="csv"`` runs."""
        dataset = datasets.parse_csv(data)
        with self.lock:
            self.upload = dataset
        counts = np.bincount(dataset.labels, minlength=dataset.classes)
        return {"rows": int(dataset.X.shape[1]), "classes": dataset.classes,
                "per_class": counts.tolist()}  # fmt: skip

    # -- control ---------------------------------------------------------------

    def start(self) -> dict:
        run = self._need_run()
        if run.done >= run.settings.iterations:
            run.message = (
                f"the run has done its {run.settings.iterations} iterations: raise "
                "iterations, or reset"
            )
            self._publish(run, "done", self.generation)
            return {"status": "done", "message": run.message}
        return self._launch(run, run.settings.iterations)

    def step(self) -> dict:
        run = self._need_run()
        if self.thread is not None and self.thread.is_alive():
            return {"status": self.status}
        until = min(run.done + 1, run.settings.iterations)
        if until <= run.done:
            return self.start()  # says the run is done
        return self._launch(run, until)

    def pause(self) -> dict:
        self.stop.set()
        thread = self.thread
        if thread is not None:
            thread.join(JOIN_SECONDS)
        return {"status": self.status}

    def reset(self) -> dict:
        run = self._need_run()
        return self.configure(run.settings.as_dict())

    def cancel(self) -> None:
        """Stop the running thread (if any); what it computes later is dropped."""
        with self.lock:
            self.generation += 1
        self.stop.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_SECONDS)

    def _launch(self, run: Run, until: int) -> dict:
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return {"status": self.status}
            self.stop = threading.Event()
            generation = self.generation
            self.status = "starting"
            self.version += 1
            self.latest = {**self.latest, "status": "starting", "version": self.version}
            self.thread = threading.Thread(
                target=self._train,
                args=(run, until, generation, self.stop),
                name=f"playground-{self.sid[:6]}",
                daemon=True,
            )
            self.thread.start()
        return {"status": "starting"}

    def _train(self, run: Run, until: int, generation: int, stop) -> None:
        """The training thread: ``drive`` from the run's state to ``until``."""
        s = run.settings
        try:
            prepared = prepare(
                run.params, run.X_train, run.Y_train, activations=run.activations,
                start=run.state, learning_rate=s.learning_rate,
                optimizer=s.optimizer, lambd=s.lambd, keep_prob=s.keep_prob,
                batch_size=s.batch_size, key=run.key_train, grad=s.grad,
            )  # fmt: skip

            def on_chunk(state, done, costs):
                if generation == self.generation:
                    run.state, run.done, run.costs = state, done, costs
                    self._publish(run, "running", generation)

            result = drive(
                prepared.config, prepared.state, prepared.hp, prepared.data,
                prepared.Y, num_iterations=until, start_iteration=run.done,
                past_costs=run.costs, on_chunk=on_chunk,
                should_stop=lambda: stop.is_set() or generation != self.generation,
                print_fn=lambda line: None, max_chunk_seconds=CHUNK_SECONDS,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 (shown on the page, server goes on)
            run.message = f"training failed: {e}"
            self._publish(run, "error", generation)
            return
        if generation != self.generation:
            return
        run.state, run.done, run.costs = (
            result.state,
            result.iterations_done,
            (result.costs),
        )
        run.message = result.message
        if result.diverged:
            status = "diverged"
        elif run.done >= s.iterations:
            status = "done"
        else:
            status = "paused"
        self._publish(run, status, generation)

    # -- what the page shows ---------------------------------------------------

    def _publish(self, run: Run, status: str, generation: int) -> None:
        """Compute the snapshot (outside the lock) and, if the run is still the
        session's, make it the latest update."""
        s = run.settings
        l2 = s.lambd != 0
        shot = jax.device_get(
            snapshot(
                run.current_params, run.grid, run.X_train, run.Y_train, run.X_test,
                run.Y_test, jnp.float32(s.lambd), jnp.float32(s.learning_rate),
                run.activations, l2,
            )
        )  # fmt: skip
        costs = run.costs
        health = shot["health"]
        gd = s.optimizer == "gd"  # the update ratio is alpha ||dW|| / ||W|| there

        def reading(name, l):
            value = float(getattr(health, name)[l])
            return None if value == NOT_APPLICABLE else _finite_or_none(value)

        layers = [
            {
                "layer": l + 1,
                "units": run.layer_dims[l + 1],
                "activation": run.activations[l],
                "dead": reading("dead", l),
                "saturated": reading("saturated", l),
                "grad_norm": reading("grad_norm", l),
                "weight_norm": reading("weight_norm", l),
                "update_ratio": reading("update_ratio", l) if gd else None,
                "symmetric": bool(health.symmetric[l]),
            }
            for l in range(len(run.layer_dims) - 1)
        ]
        health_hints = hints(health, run.activations)
        with self.lock:
            if generation != self.generation:
                return
            self.status = status
            self.version += 1
            self.latest = {
                "type": "update",
                "version": self.version,
                "generation": generation,
                "status": status,
                "iteration": int(run.done),
                "iterations": s.iterations,
                "cost": _finite_or_none(costs[-1]) if len(costs) else None,
                "curve": _curve(costs),
                "train_acc": _finite_or_none(shot["train_acc"]),
                "test_acc": _finite_or_none(shot["test_acc"]),
                "layers": layers,
                "boundary": {
                    "cls": base64.b64encode(shot["cls"].tobytes()).decode(),
                    "conf": base64.b64encode(shot["conf"].tobytes()).decode(),
                },
                "hints": health_hints,
                "message": run.message,
                "time": time.time(),
            }

    def snapshot(self) -> tuple[int, dict]:
        with self.lock:
            return self.version, self.latest

    # -- the extra buttons -----------------------------------------------------

    def gradient_check(self) -> dict:
        """The hand-written gradient against jax.grad and finite differences
        at the current params, in float64 on up to GRADCHECK_EXAMPLES training
        examples, without dropout (the check needs a deterministic J)."""
        run = self._need_run()
        with self.lock:
            params = run.current_params
        cost, grads = run.gradcheck_functions()
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
        size = sum(int(np.size(x)) for x in jax.tree.leaves(params))
        fd = size <= GRADCHECK_FD_PARAMS
        result = check_gradients(cost, params, grads, finite_differences=fd)
        rows = [
            {"leaf": leaf.path, "shape": list(leaf.shape),
             "vs_autodiff": leaf.autodiff_error,
             "vs_finite_differences": _finite_or_none(leaf.fd_error),
             "kinks": leaf.kinks, "passed": leaf.passed}
            for leaf in result.leaves
        ]  # fmt: skip
        note = "" if fd else (
            f"finite differences skipped: {size} parameters is more than "
            f"{GRADCHECK_FD_PARAMS} (2 cost evaluations each)"
        )  # fmt: skip
        return {
            "passed": result.passed,
            "rows": rows,
            "autodiff_tol": result.autodiff_tol,
            "fd_tol": result.fd_tol,
            "examples": min(GRADCHECK_EXAMPLES, int(run.X_train.shape[1])),
            "iteration": run.done,
            "note": note,
            "text": str(result),
        }

    def checkpoint_bytes(self) -> bytes:
        """The current params as a ``jaxnet.checkpoint`` .npz file."""
        run = self._need_run()
        with self.lock:
            params = jax.device_get(run.current_params)
            done = run.done
        metadata = {
            "source": "jaxnet playground",
            "settings": run.settings.as_dict(),
            "iterations_done": done,
        }
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "playground.npz"
            save_checkpoint(
                path, params, layer_dims=run.layer_dims,
                activations=list(run.activations), metadata=metadata,
            )  # fmt: skip
            return path.read_bytes()

    def code(self) -> str:
        run = self._need_run()
        m = run.dataset.X.shape[1]
        return code.snippet(run.settings, m, max(run.done, 1), run.dataset.classes)

    def _need_run(self) -> Run:
        self.last_used = time.monotonic()
        if self.run is None:
            raise SettingsError("settings", "nothing configured yet: apply settings")
        return self.run


class Sessions:
    """The server's sessions, at most MAX_SESSIONS (least recently used go)."""

    def __init__(self, limit: int = MAX_SESSIONS):
        self.limit = limit
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}

    def create(self) -> Session:
        with self.lock:
            while len(self.sessions) >= self.limit:
                oldest = min(self.sessions.values(), key=lambda s: s.last_used)
                del self.sessions[oldest.sid]
                oldest.cancel()
            session = Session(secrets.token_urlsafe(12))
            self.sessions[session.sid] = session
            return session

    def get(self, sid: str | None) -> Session | None:
        with self.lock:
            session = self.sessions.get(sid or "")
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def close(self) -> None:
        """Cancel every run (server shutdown)."""
        with self.lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            session.stop.set()
            session.generation += 1
