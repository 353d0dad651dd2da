"""Training with ``mesh=`` gives the numbers of the one-device run.

JAX fixes its device count when it starts, so the scenarios run in fresh
Pythons (``tests/distributed_worker.py``) with 4 forced host devices, or as 2
processes x 2 devices through ``jaxnet.launch``; they train through ``fit``,
``fit_until``, ``train_loop`` and ``sweep`` with and without ``mesh=``, write
what they measured to JSON, and the tests here compare. Sharding changes only
the order of the additions over m: float64 agrees to 1e-12 relative, float32
to 1e-5, each entry relative to itself and to the largest entry of its array
(``assert_matches``: a W[1] entry of 5e-5 that is a sum of terms of 0.1 keeps
the rounding of those terms).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet
from jaxnet import distributed, fit
from tests import distributed_worker as worker
from tests.helpers import assert_trees_close

ROOT = Path(__file__).resolve().parents[1]
RTOL = {"float64": 1e-12, "float32": 1e-5}
DATA_PARALLEL_IDS = [
    *(f"{name}-float64" for name in worker.DATA_PARALLEL_CASES),
    *(f"{name}-float32" for name in worker.FLOAT32_CASES),
    *(f"{name}-float64" for name in worker.GRAM_CASES),
    "train_loop-float64",
    "fit_until-float64",
]


def assert_matches(actual, expected, rtol):
    """Same structure, and each entry within rtol of expected, relative to
    itself or to the largest entry of its array."""
    chex.assert_trees_all_equal_structs(actual, expected)
    expected = jax.tree.leaves(expected)
    for (path, a), e in zip(jax.tree.leaves_with_path(actual), expected, strict=True):
        scale = np.nanmax(np.abs(e), initial=0.0)  # (fit_until pads with NaN)
        np.testing.assert_allclose(
            a,
            e,
            rtol=rtol,
            atol=rtol * scale,
            err_msg=f"leaf {jax.tree_util.keystr(path)}",
        )


def arrays(tree):
    """JSON back to arrays: every list of numbers becomes one float64 array."""
    if isinstance(tree, dict):
        return {key: arrays(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        try:
            return np.asarray(tree, dtype=np.float64)
        except (TypeError, ValueError):
            return [arrays(item) for item in tree]
    return tree


def worker_env(devices: int | None = None, x64: bool = True) -> dict:
    """This environment, on CPU, and `devices` forced host devices."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    if x64:
        env["JAX_ENABLE_X64"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    flags = env.get("XLA_FLAGS", "").split()
    flags = [f for f in flags if not f.startswith(distributed.FORCE_DEVICES_FLAG)]
    if devices is not None:
        flags.append(f"{distributed.FORCE_DEVICES_FLAG}={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def run_isolated(args: list[str], env: dict, timeout: float) -> str:
    """Run args in a process group of its own; on any exit, nothing of it lives on.

    A timeout sends SIGTERM (so a launcher can stop its copies), then SIGKILL.
    """
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)
    assert proc.returncode == 0, f"{args} exited with {proc.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("distributed") / "data_parallel.json"
    args = [sys.executable, "-m", "tests.distributed_worker", "data_parallel", str(out)]
    run_isolated(args, worker_env(devices=4), timeout=240)  # ~25 s on 2 idle cores
    return json.loads(out.read_text())


def test_examples_are_split_over_the_devices_and_the_state_copied(four_devices):
    placed = four_devices["placement"]
    assert placed["X_spec"] == "P(None, 'data')"
    assert placed["X_shard_shapes"] == [[2, 50]] * 4  # m = 200 over 4 devices
    assert placed["Y_shard_shapes"] == [[1, 50]] * 4
    assert placed["state_replicated"]  # params, optimizer state, key, hp
    assert placed["config_mesh"]  # the step constrains its minibatches
    assert four_devices["describe"]["devices"] == 4
    assert four_devices["describe"]["processes"] == 1


def test_gram_data_is_split_along_its_example_columns(four_devices):
    specs = four_devices["placement"]["gram_specs"]
    assert specs == {
        "X": "P(None, 'data')",
        "G": "P(None, 'data')",  # G = X^T X, (m, m): its columns
        "P": "P(None, 'data')",  # P = W0 X, (n[1], m)
        "W0": "P()",
    }
    assert four_devices["gram_loop_programs"] == 1  # C starts placed like P


def test_xla_adds_the_all_reduce_and_minibatches_split_the_work(four_devices):
    placed = four_devices["placement"]
    assert placed["all_reduces"] >= 1
    # Without the batch constraint every device computes the whole batch (~1.0).
    assert placed["minibatch_flops_ratio"] < 0.5


@pytest.mark.parametrize("case", DATA_PARALLEL_IDS)
def test_data_parallel_training_equals_one_device(four_devices, case):
    result = four_devices["cases"][case]
    rtol = RTOL[case.rsplit("-", 1)[1]]
    actual, expected = arrays(result["actual"]), arrays(result["expected"])
    assert_matches(actual, expected, rtol)
    assert result["outputs_replicated"]


def test_sharded_sweep_equals_unsharded(four_devices):
    result = four_devices["sweep"]
    assert result["params_specs"] == ["P('data',)"]  # 8 models, 2 per device
    actual, expected = arrays(result["actual"]), arrays(result["expected"])
    assert_matches(actual, expected, 1e-12)
    placed = four_devices["placement"]
    assert placed["sweep_state_specs"] == ["P('data',)"]
    assert placed["sweep_X_replicated"]
    assert placed["sweep_config_mesh"] is None  # nothing to constrain in the step


def test_uneven_splits_are_refused_with_the_nearest_sizes(four_devices):
    refusals = four_devices["refusals"]
    assert "m = 198" in refusals["m"] and "4 devices" in refusals["m"]
    assert "196 or 200" in refusals["m"]
    assert "N = 6" in refusals["models"] and "4 or 8" in refusals["models"]
    assert "4 exist" in refusals["devices"]
    assert "xla_force_host_platform_device_count=8" in refusals["devices"]
    assert "make_mesh(4)" in refusals["not_a_mesh"]


def test_two_processes_equal_one(tmp_path):
    out = tmp_path / "two_process.json"
    args = [
        *(sys.executable, "-m", "jaxnet.launch", "--processes", "2"),
        *("--devices-per-process", "2", "--timeout", "150", "--"),
        *(sys.executable, "-m", "tests.distributed_worker", "two_process", str(out)),
    ]
    run_isolated(args, worker_env(), timeout=180)  # ~17 s on 2 idle cores
    result = json.loads(out.read_text())
    assert result["describe"] == {
        "devices": 4, "processes": 2, "platform": "cpu", "device_kind": "cpu",
    }  # fmt: skip
    assert result["X_local_columns"] == [2, 200]  # m = 400: half in each process
    for (name, dtype), case in worker.TWO_PROCESS_CASES.items():
        params, X, Y = worker.problem(dtype, m=400)
        expected = arrays(worker.as_lists(worker.train(params, X, Y, case, 300)))
        actual = arrays(result["cases"][f"{name}-{dtype}"])
        assert_matches(actual, expected, RTOL[dtype])
    run = jaxnet.train_loop(*worker.problem("float64", m=400), **worker.LOOP)
    expected = arrays(worker.as_lists((run.params, run.costs)))
    assert_matches(arrays(result["cases"]["train_loop-float64"]), expected, 1e-12)
    for name, case in worker.GRAM_CASES.items():
        trained = worker.train_wide(*worker.wide_problem(), case)
        actual = arrays(result["cases"][f"{name}-float64"])
        assert_matches(actual, arrays(worker.as_lists(trained)), 1e-12)
    expected = arrays(worker.as_lists(worker.run_sweep(*worker.sweep_problem())))
    assert_matches(arrays(result["sweep"]), expected, 1e-12)


def test_digits_experiment_on_four_devices(tmp_path, data_root):
    out = tmp_path / "run"
    args = [
        *(sys.executable, "-m", "experiments.digits", "--devices", "4"),
        *("--epochs", "1", "--train-size", "800", "--data", str(data_root)),
        *("--no-plots", "--no-progress", "--out", str(out)),
    ]
    output = run_isolated(args, worker_env(devices=4, x64=False), timeout=120)
    assert "split over 4 devices" in output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["distributed"]["devices"] == 4
    assert metrics["config"]["distributed"]["processes"] == 1
    assert metrics["config"]["device_count"] == 4
    model = metrics["models"]["digits"]
    assert model["finished"] and model["epochs_done"] == 1
    assert np.isfinite(model["costs"][0][1]) and model["test"]["total"] == 2000


def test_one_device_mesh_changes_nothing():
    params, X, Y = worker.problem("float64", m=40)
    mesh = distributed.make_mesh(1)
    for case in ({}, {"batch_size": 16, "keep_prob": 0.9}):
        actual = worker.train(params, X, Y, case, 20, mesh=mesh)
        expected = worker.train(params, X, Y, case, 20)
        assert_trees_close(actual, expected, rtol=0, atol=0)
    assert distributed.describe(mesh)["devices"] == 1
    assert distributed.process_columns(mesh, 40) == slice(0, 40)
    assert distributed.local_columns(mesh, X, Y) == (X, Y)
    assert distributed.agree_on_chunk(True, 7) == (True, 7)  # one process: as is


def test_a_bad_mesh_is_refused_before_training():
    params, X, Y = worker.problem("float64", m=40)
    two_d = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    for mesh, words in ((4, "jax.sharding.Mesh"), (two_d, "1-D mesh")):
        with pytest.raises(ValueError, match=words):
            fit(params, X, Y, activations=worker.ACTIVATIONS, num_iterations=2,
                mesh=mesh)  # fmt: skip


def test_initialize_from_env_without_variables_does_nothing():
    assert distributed.initialize_from_env({}) is False
    assert distributed.process_count() == 1 and distributed.is_main_process()


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"JAXNET_COORDINATOR": "127.0.0.1:1234"}, "missing"),
        (
            {
                "JAXNET_COORDINATOR": "127.0.0.1:1234",
                "JAXNET_NUM_PROCESSES": "2",
                "JAXNET_PROCESS_ID": "2",
            },
            "JAXNET_PROCESS_ID < JAXNET_NUM_PROCESSES",
        ),
    ],
)
def test_initialize_from_env_refuses_bad_variables(environ, message):
    with pytest.raises(ValueError, match=message):
        distributed.initialize_from_env(environ)


def test_shard_models_needs_one_leading_axis():
    mesh = distributed.make_mesh(1)
    with pytest.raises(ValueError, match="leading model axis"):
        distributed.shard_models(mesh, (jnp.ones(4), jnp.ones(3)))
    keys = distributed.shard_models(mesh, jax.random.split(jax.random.key(0), 4))
    assert keys.shape == (4,)
