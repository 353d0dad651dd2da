"""Data-parallel fit and sharded sweeps give the numbers of the one-device run.

JAX fixes its device count when it starts, so the scenarios run in fresh
Pythons (``tests/distributed_worker.py``) with 4 forced host devices, or as 2
processes x 2 devices through ``jaxnet.launch``; they write what they measured
to JSON and the tests here compare. Sharding changes only the order of the
additions over m: float64 agrees to 1e-12 relative, float32 to 1e-5.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import distributed
from tests import distributed_worker as worker
from tests.helpers import assert_trees_close

ROOT = Path(__file__).resolve().parents[1]
RTOL = {"float64": 1e-12, "float32": 1e-5}
DATA_PARALLEL_IDS = [
    f"{name}-{dtype}"
    for dtype in ("float64", "float32")
    for name in worker.DATA_PARALLEL_CASES
    if dtype == "float64" or name in worker.FLOAT32_CASES
]


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


def worker_env(devices: int | None = None) -> dict:
    """This environment, on CPU, x64 on, and `devices` forced host devices."""
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
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
    run_isolated(args, worker_env(devices=4), timeout=240)  # ~20 s on 2 idle cores
    return json.loads(out.read_text())


def test_examples_are_split_over_the_devices_and_params_copied(four_devices):
    inputs = four_devices["inputs"]
    assert inputs["X_spec"] == "P(None, 'data')"
    assert inputs["X_shard_shapes"] == [[2, 50]] * 4  # m = 200 over 4 devices
    assert inputs["Y_shard_shapes"] == [[1, 50]] * 4
    assert inputs["params_replicated"]
    assert four_devices["describe"]["devices"] == 4
    assert four_devices["describe"]["processes"] == 1


def test_xla_adds_the_all_reduce(four_devices):
    assert four_devices["hlo_all_reduces"] >= 1


@pytest.mark.parametrize("case", DATA_PARALLEL_IDS)
def test_data_parallel_fit_equals_one_device(four_devices, case):
    result = four_devices["cases"][case]
    rtol = RTOL[case.rsplit("-", 1)[1]]
    actual, expected = arrays(result["actual"]), arrays(result["expected"])
    assert_trees_close(actual, expected, rtol=rtol, atol=0)
    assert result["outputs_replicated"]


def test_constrain_examples_keeps_shuffled_columns_split(four_devices):
    assert four_devices["constrained_spec"] == "P(None, 'data')"


def test_sharded_sweep_equals_unsharded(four_devices):
    result = four_devices["sweep"]
    assert result["input_spec"] == "P('data',)"
    assert result["output_specs"] == ["P('data',)"]
    actual, expected = arrays(result["actual"]), arrays(result["expected"])
    assert_trees_close(actual, expected, rtol=1e-12, atol=0)


def test_uneven_splits_are_refused_with_the_nearest_sizes(four_devices):
    refusals = four_devices["refusals"]
    assert "m = 198" in refusals["m"] and "4 devices" in refusals["m"]
    assert "196 or 200" in refusals["m"]
    assert "N = 6" in refusals["models"] and "4 or 8" in refusals["models"]
    assert "4 exist" in refusals["devices"]
    assert "xla_force_host_platform_device_count=8" in refusals["devices"]


def test_two_processes_equal_one(tmp_path):
    out = tmp_path / "two_process.json"
    args = [
        *(sys.executable, "-m", "jaxnet.launch", "--processes", "2"),
        *("--devices-per-process", "2", "--timeout", "150", "--"),
        *(sys.executable, "-m", "tests.distributed_worker", "two_process", str(out)),
    ]
    run_isolated(args, worker_env(), timeout=180)  # ~15 s on 2 idle cores
    result = json.loads(out.read_text())
    assert result["describe"]["devices"] == 4
    assert result["describe"]["processes"] == 2
    assert result["X_local_shards"] == [[2, 100], [2, 100]]  # m = 400, 4 devices
    assert len(result["cases"]) == len(worker.TWO_PROCESS_CASES)
    for (name, dtype), case in worker.TWO_PROCESS_CASES.items():
        params, X, Y = worker.problem(dtype, m=400)
        expected = arrays(worker.as_lists(worker.train(params, X, Y, case, 300)))
        actual = arrays(result["cases"][f"{name}-{dtype}"])
        assert_trees_close(actual, expected, rtol=RTOL[dtype], atol=0)
    expected = arrays(worker.as_lists(worker.run_sweep(*worker.sweep_problem())))
    assert_trees_close(arrays(result["sweep"]), expected, rtol=1e-12, atol=0)


def test_one_device_mesh_changes_nothing():
    params, X, Y = worker.problem("float64", m=40)
    mesh = distributed.make_mesh(1)
    Xs, Ys = distributed.shard_examples(mesh, X, Y)
    actual = worker.train(distributed.replicate(mesh, params), Xs, Ys, {}, 20)
    expected = worker.train(params, X, Y, {}, 20)
    assert_trees_close(actual, expected, rtol=0, atol=0)
    assert distributed.describe(mesh)["devices"] == 1
    assert distributed.process_columns(mesh, 40) == slice(0, 40)


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
