"""Resume on the wide-input path (``jaxnet.wide``) is bit for bit the run that
was never stopped.

The gram path steps W[1] = s W[1]_0 + C X^T in the coordinates (s, C). A
checkpoint of the dense W[1] alone (rounded once) re-based those coordinates,
and the course's deep network on the cat set, whose cost oscillates around
iterations 1300-1500, amplified that 1e-16 into weights 28-31 % off. Now the
checkpoint carries what the run carries (``jaxnet.wide.Carried``) and every
comparison here is exact equality (tolerance 0): the same operations on the
same bits give the same bits.

- In process: ``train_loop`` hands ``on_chunk`` the ``Carried`` state; resuming
  from it at a chunk boundary equals the whole run (gd and momentum, whose
  moments live in the coordinates too; float64 and float32), while resuming
  from the dense state alone does not (what the old checkpoint did).
- Real commands: ``experiments.cat_classifier --model deep`` SIGKILLed at
  seeded random moments (the first right after its first checkpoint) and
  resumed with ``--resume``: params, costs and metrics equal the
  uninterrupted run's, on the wide path in float64 and float32 and on the
  dense path (Adam) in both dtypes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.checkpoint import load_checkpoint, save_checkpoint
from jaxnet.data import load_catvnoncat
from jaxnet.driver import GROWTH, PROBE_STEPS
from jaxnet.params import init_params
from jaxnet.runner import train_loop
from jaxnet.runstate import (
    StateMismatchError,
    carried_arrays,
    restore_carried,
    restore_state,
    state_arrays,
)
from jaxnet.wide import Carried
from tests.test_run_safety import ROOT, wait_for

DIMS = [12288, 20, 7, 5, 1]
ACTIVATIONS = ("relu", "relu", "relu", "sigmoid")
# Past the oscillating phase (~1300-1500), where a 1e-16 difference grows.
ITERATIONS = 2000


def bits(leaf) -> np.ndarray:
    """A leaf as numpy (a jax.random key as its key data)."""
    if jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf))
    return np.asarray(leaf)


def assert_bits_equal(actual, expected, what: str) -> None:
    """Same tree, and every leaf equal bit for bit (max abs diff 0)."""
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    assert a_def == e_def, what
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves, strict=True)):
        np.testing.assert_array_equal(bits(a), bits(e), f"{what}: leaf {i}")


def max_abs_diff(actual, expected) -> float:
    pairs = zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True)
    return max(float(np.max(np.abs(np.asarray(a) - e))) for a, e in pairs)


# -- in process ---------------------------------------------------------------


def cat_problem(data_root, dtype):
    data = load_catvnoncat(data_root / "catvnoncat")
    X = jnp.asarray(data.X_train, dtype)
    Y = jnp.asarray(data.Y_train, dtype)
    params = init_params(jax.random.key(3), DIMS, method="lecun", dtype=dtype)
    return params, X, Y


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
def test_train_loop_resumes_from_the_carried_state_bit_for_bit(
    data_root, dtype, optimizer
):
    params, X, Y = cat_problem(data_root, dtype)
    hyper = dict(activations=ACTIVATIONS, learning_rate=0.0075, optimizer=optimizer,
                 first_layer="gram", progress=False, print_every=None)  # fmt: skip
    chunks = []  # (dense state, done, costs, carried) after every chunk
    whole = train_loop(params, X, Y, num_iterations=ITERATIONS, **hyper,
                       on_chunk=lambda *args: chunks.append(args))  # fmt: skip
    assert whole.carried.form == "gram" and whole.stop_reason is None
    dense, first, first_costs, first_carried = chunks[0]  # before the oscillation
    assert first == PROBE_STEPS and first_carried.form == "gram"
    assert dense.params[0]["W"].shape == (20, 12288)  # dense for users
    # And a run stopped at 1400, inside the oscillating phase.
    part = train_loop(params, X, Y, num_iterations=1400, **hyper)
    stops = [(first_carried, first, first_costs), (part.carried, 1400, part.costs)]
    for carried, done, costs in stops:
        rest = train_loop(params, X, Y, num_iterations=ITERATIONS, **hyper,
                          resume_from=(carried, done, costs))  # fmt: skip
        assert_bits_equal(rest.params, whole.params, f"params, resumed at {done}")
        assert_bits_equal(rest.costs, whole.costs, f"costs, resumed at {done}")
        assert_bits_equal(rest.carried, whole.carried, f"carried, resumed at {done}")
    if optimizer != "gd":  # (gram refuses a dense momentum state; see test_wide)
        return
    # The dense state alone (the old checkpoint) re-bases the coordinates on a
    # rounded W[1]: not the same run. This is what the test above would catch.
    rebased = train_loop(params, X, Y, num_iterations=ITERATIONS, **hyper,
                         resume_from=(dense, first, first_costs))  # fmt: skip
    assert max_abs_diff(rebased.params, whole.params) > 0


def test_the_carried_state_survives_a_checkpoint_file(data_root, tmp_path):
    params, X, Y = cat_problem(data_root, jnp.float64)
    hyper = dict(activations=ACTIVATIONS, learning_rate=0.0075, optimizer="momentum",
                 first_layer="gram", progress=False, print_every=None)  # fmt: skip
    result = train_loop(params, X, Y, num_iterations=12, **hyper)
    path = save_checkpoint(
        tmp_path / "deep.npz", result.params, layer_dims=DIMS, activations=ACTIVATIONS,
        extra_arrays={**state_arrays(result.state, result.costs),
                      **carried_arrays(result.carried)},
    )  # fmt: skip
    saved, info = load_checkpoint(path)
    np.testing.assert_array_equal(saved[0]["W"], result.params[0]["W"])  # for users
    template = train_loop(params, X, Y, num_iterations=1, **hyper).state
    template = template._replace(params=params)  # a start state's shapes
    state, costs = restore_state(template, saved, info["extra"])
    carried = restore_carried(template, X, state, info["extra"])
    assert_bits_equal(carried.state.params, result.carried.state.params, "coords")
    assert_bits_equal(carried.state.opt_state, result.carried.state.opt_state, "opt")
    np.testing.assert_array_equal(carried.W0, params[0]["W"])  # W[1]_0 itself
    # A dense run carries nothing more; an old checkpoint resumes densely.
    assert carried_arrays(Carried("dense", result.state)) == {}
    assert restore_carried(template, X, state, state_arrays(state, costs)) is None
    # Another model or optimizer is refused, naming the arrays.
    extra = dict(info["extra"])
    extra["form_0"] = extra["form_0"][:, :-1]
    with pytest.raises(StateMismatchError, match="state array 0 is"):
        restore_carried(template, X, state, extra)
    extra = {k: v for k, v in info["extra"].items() if k != "form_W0"}
    with pytest.raises(StateMismatchError, match="form_W0"):
        restore_carried(template, X, state, extra)


def test_a_carried_state_resumes_under_auto_exactly_and_under_dense_to_rounding():
    # A small wide problem (n_x = 64 >= 4 m = 32): "auto" takes the gram path.
    X = jax.random.uniform(jax.random.key(1), (64, 8), jnp.float64)
    Y = (X[:1] > 0.5).astype(jnp.float64)
    params = init_params(jax.random.key(2), [64, 5, 1], method="he", dtype=X.dtype)
    hyper = dict(activations=("relu", "sigmoid"), learning_rate=0.1,
                 optimizer="momentum", progress=False, print_every=None)  # fmt: skip
    whole = train_loop(params, X, Y, num_iterations=30, **hyper)
    half = train_loop(params, X, Y, num_iterations=12, **hyper)
    assert half.carried.form == "gram"
    start = (half.carried, 12, half.costs)
    rest = train_loop(params, X, Y, num_iterations=30, resume_from=start, **hyper)
    assert rest.carried.form == "gram"  # a momentum trace in coordinates: still gram
    assert_bits_equal(rest.params, whole.params, "auto")
    # Asked for the dense path, it continues from the materialized state:
    # float64 rounding of W[1] and of the momentum, nothing more.
    dense = train_loop(params, X, Y, num_iterations=30, resume_from=start,
                       first_layer="dense", **hyper)  # fmt: skip
    assert dense.carried.form == "dense"
    assert max_abs_diff(dense.params, whole.params) < 1e-12


def test_on_chunk_gets_as_many_arguments_as_it_takes(data_root):
    params, X, Y = cat_problem(data_root, jnp.float32)
    got = {}
    callbacks = {
        2: lambda state, done: got.setdefault(2, (state, done)),
        3: lambda state, done, costs: got.setdefault(3, (state, done, costs)),
        4: lambda state, done, costs, carried: got.setdefault(4, carried),
        "*": lambda *args: got.setdefault("*", args),
    }
    for callback in callbacks.values():
        train_loop(params, X, Y, activations=ACTIVATIONS, num_iterations=4,
                   progress=False, print_every=None, on_chunk=callback)  # fmt: skip
    first = PROBE_STEPS  # setdefault keeps the first chunk's call
    assert got[2][1] == first and len(got[3][2]) == first and len(got["*"]) == 4
    assert isinstance(got[4], Carried) and got[4].form == "gram"


# -- real commands, SIGKILL and --resume ---------------------------------------

# The run is saved after every chunk (``CHECKPOINT_SECONDS = 0``, a seam set by
# the command below) so that random kills land at several iterations, not only
# at the first checkpoint.
EVERY_CHUNK = (
    "import sys; import experiments.runs as runs; runs.CHECKPOINT_SECONDS = 0.0; "
    "from experiments import cat_classifier, common; "
    "common.run_cli(cat_classifier.main)"
)
PATHS = {
    # gd: "auto" takes the wide path for the cat shapes (4 m <= n_x).
    "wide": (["--iterations", str(ITERATIONS)], "gram"),
    # Adam: the dense path.
    "dense": (
        ["--iterations", "300", "--optimizer", "adam", "--learning-rate", "5e-4"],
        None,
    ),  # fmt: skip
}


def experiment(data_root, dtype, flags, *args, wait=True):
    env = {**os.environ, "JAXNET_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", EVERY_CHUNK, "--model", "deep", "--dtype", dtype,
           "--no-plots", "--no-progress", "--print-every", "500", *flags,
           *args]  # fmt: skip
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def outcome(run_dir: Path, finished=True):
    """The checkpoint's params and info, and the model's metrics (a run killed
    before the model finished has none)."""
    params, info = load_checkpoint(run_dir / "deep.npz")
    if not finished:
        return params, info, None
    metrics = json.loads((run_dir / "metrics.json").read_text())["models"]["deep"]
    return params, info, metrics


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", ["wide", "dense"])
def test_sigkill_at_random_moments_then_resume_is_bit_for_bit(
    data_root, tmp_path, path, dtype
):
    flags, form = PATHS[path]
    experiment(data_root, dtype, flags, "--out", str(tmp_path / "whole"))
    a_params, a_info, a_metrics = outcome(tmp_path / "whole")
    assert a_info["metadata"]["finished"]
    if form is not None:  # the run took the path this case is about
        assert str(a_info["extra"]["form"]) == form
    else:
        assert "form" not in a_info["extra"]
    # Kill at 0 s after the first checkpoint (the probe chunk), then at seeded
    # random moments within the training time the whole run measured.
    train_seconds = a_metrics["train_seconds"]
    rng = np.random.default_rng(17)
    trials = 3 if (path, dtype) == ("wide", "float64") else 2  # the case
    delays = [0.0, *rng.uniform(0.0, 0.9 * train_seconds, size=trials - 1)]
    resumed_at = []
    for trial, delay in enumerate(delays):
        out = tmp_path / f"killed{trial}"
        proc = experiment(data_root, dtype, flags, "--out", str(out), wait=False)
        try:
            wait_for(out / "deep.npz", proc)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            proc.kill()
        _, info, _ = outcome(out, finished=False)
        if info["metadata"]["finished"]:  # the kill came too late: nothing to do
            continue
        resumed_at.append(info["metadata"]["iterations_done"])
        resumed = experiment(data_root, dtype, [], "--resume", str(out))
        assert "resuming at iteration" in resumed.stdout
        b_params, b_info, b_metrics = outcome(out)
        assert b_info["metadata"]["finished"]
        where = f"{path} {dtype}, resumed at iteration {resumed_at[-1]}"
        assert_bits_equal(b_params, a_params, f"params ({where})")
        assert_bits_equal(b_info["extra"], a_info["extra"], f"saved state ({where})")
        for key in ("train", "test", "iterations_done", "final_cost"):
            assert b_metrics[key] == a_metrics[key], (key, where)
    # The first kill came right after the first checkpoint: the probe chunk
    # (PROBE_STEPS), or a few chunks later on a loaded machine (each at most
    # GROWTH times the one before); always before the run ended.
    early = PROBE_STEPS * sum(GROWTH**k for k in range(6))
    assert resumed_at and resumed_at[0] <= early, resumed_at
    print(f"{path} {dtype}: {len(resumed_at)} resumes at {resumed_at}, all equal")
