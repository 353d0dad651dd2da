"""Scenarios for test_distributed.py and test_launch.py, each in a fresh Python.

    python -m tests.distributed_worker SCENARIO [ARG]

JAX fixes its device count when it starts, so every scenario runs in its own
process, started by the test with XLA_FLAGS (or through ``jaxnet.launch``). The
JAX scenarios write what they measured to the JSON file ARG; the tests compare.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

LAYER_DIMS = [2, 8, 1]
ACTIVATIONS = ("tanh", "sigmoid")
# case -> fit's arguments; batch_size 30 does not divide by the 4 devices.
DATA_PARALLEL_CASES = {
    "full_batch": {},
    "minibatch": {"batch_size": 30},
    "dropout": {"keep_prob": 0.8},
    "autodiff": {"grad": "autodiff", "keep_prob": 0.8, "lambd": 0.1, "batch_size": 32},
}
FLOAT32_CASES = ("full_batch", "minibatch")
# (case, dtype) -> fit's arguments, for the 2 processes x 2 devices run
TWO_PROCESS_CASES = {
    ("full_batch", "float64"): {},
    ("minibatch", "float64"): {"batch_size": 50},
    ("full_batch", "float32"): {},
}


def problem(dtype_name: str, m: int):
    """The shared synthetic task: the planar flower, he-initialized [2, 8, 1]."""
    import jax
    import jax.numpy as jnp

    from jaxnet.data.synthetic import planar_flower
    from jaxnet.params import init_params

    dtype = jnp.dtype(dtype_name)
    X, Y = planar_flower(jax.random.key(1), m=m, dtype=dtype)
    params = init_params(jax.random.key(0), LAYER_DIMS, method="he", dtype=dtype)
    return params, X, Y


def train(params, X, Y, case: dict, num_iterations: int):
    from jaxnet import fit

    iterations = num_iterations // 10 if "batch_size" in case else num_iterations
    return fit(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=iterations,
        learning_rate=0.3,
        **case,
    )


def sweep_problem():
    """8 float64 models (params, learning rates, keep probs, keys) and the data."""
    import jax
    import jax.numpy as jnp

    from jaxnet.sweep import init_stacked_params

    keys = jax.random.split(jax.random.key(3), 8)
    stacked = init_stacked_params(keys, LAYER_DIMS, method="he", dtype=jnp.float64)
    models = (stacked, jnp.linspace(0.05, 0.8, 8), jnp.linspace(0.7, 1.0, 8), keys)
    return models, *problem("float64", m=200)[1:]


def run_sweep(models, X, Y):
    from jaxnet.sweep import sweep

    params, rates, keep_probs, keys = models
    return sweep(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=100,
        batch_size=40,
        learning_rates=rates,
        keep_probs=keep_probs,
        keys=keys,
    )


def as_lists(tree):
    import jax
    import numpy as np

    return jax.tree.map(lambda leaf: np.asarray(leaf).tolist(), tree)


def error_of(call) -> str:
    try:
        call()
    except ValueError as error:
        return str(error)
    return ""


def data_parallel(out: str) -> None:
    """One process, 4 devices: every case sharded vs on one device, plus refusals."""
    import jax

    from jaxnet import distributed

    mesh = distributed.make_mesh(4)
    result = {"describe": distributed.describe(mesh), "cases": {}}
    for dtype in ("float64", "float32"):
        params, X, Y = problem(dtype, m=200)
        Xs, Ys = distributed.shard_examples(mesh, X, Y)
        ps = distributed.replicate(mesh, params)
        for name, case in DATA_PARALLEL_CASES.items():
            if dtype == "float32" and name not in FLOAT32_CASES:
                continue
            expected = train(params, X, Y, case, 200)
            actual = train(ps, Xs, Ys, case, 200)
            leaves = jax.tree.leaves(actual)
            result["cases"][f"{name}-{dtype}"] = {
                "expected": as_lists(expected),
                "actual": as_lists(actual),
                "outputs_replicated": all(
                    leaf.sharding.is_fully_replicated
                    and len(leaf.sharding.device_set) == 4
                    for leaf in leaves
                ),
            }
    result["inputs"] = {
        "X_spec": str(Xs.sharding.spec),
        "X_shard_shapes": [list(s.data.shape) for s in Xs.addressable_shards],
        "Y_shard_shapes": [list(s.data.shape) for s in Ys.addressable_shards],
        "params_replicated": all(
            leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
            for leaf in jax.tree.leaves(ps)
        ),
    }
    run = jax.jit(lambda p, x, y: train(p, x, y, {}, 3))
    result["hlo_all_reduces"] = (
        run.lower(ps, Xs, Ys).compile().as_text().count(" all-reduce(")
    )
    perm = jax.random.permutation(jax.random.key(2), 200)
    shuffled = jax.jit(lambda x: distributed.constrain_examples(mesh, x[:, perm]))(Xs)
    result["constrained_spec"] = str(shuffled.sharding.spec)

    # A sweep: 8 models, their model axis over the 4 devices.
    models, X, Y = sweep_problem()
    expected = run_sweep(models, X, Y)
    sharded = distributed.shard_models(mesh, models)
    replicated = distributed.replicate(mesh, (X, Y))
    actual = run_sweep(sharded, *replicated)
    result["sweep"] = {
        "expected": as_lists(expected),
        "actual": as_lists(actual),
        "input_spec": str(sharded[1].sharding.spec),
        "output_specs": sorted(
            {str(leaf.sharding.spec) for leaf in jax.tree.leaves(actual)}
        ),
    }
    result["refusals"] = {
        "m": error_of(lambda: distributed.shard_examples(mesh, X[:, :198], Y[:, :198])),
        "models": error_of(lambda: distributed.shard_models(mesh, models[1][:6])),
        "devices": error_of(lambda: distributed.make_mesh(8)),
    }
    Path(out).write_text(json.dumps(result))


def two_process(out: str) -> None:
    """One of 2 processes (launched by jaxnet.launch): data-parallel fit."""
    from jaxnet import distributed

    assert distributed.initialize_from_env(), "JAXNET_* variables are not set"
    mesh = distributed.make_mesh()
    result = {"describe": distributed.describe(mesh), "cases": {}}
    columns = distributed.process_columns(mesh, 400)
    for (name, dtype), case in TWO_PROCESS_CASES.items():
        params, X, Y = problem(dtype, m=400)
        Xs, Ys = distributed.shard_examples(mesh, X[:, columns], Y[:, columns])
        trained = train(distributed.replicate(mesh, params), Xs, Ys, case, 300)
        result["cases"][f"{name}-{dtype}"] = as_lists(distributed.gather(trained))
    result["X_local_shards"] = [list(s.data.shape) for s in Xs.addressable_shards]
    models, X, Y = sweep_problem()
    # keep_probs stay on the host: sweep checks their values there (.tolist()).
    params, rates, keep_probs, keys = models
    params, rates, keys = distributed.shard_models(mesh, (params, rates, keys))
    swept = run_sweep((params, rates, keep_probs, keys), X, Y)
    result["sweep"] = as_lists(distributed.gather(swept))
    if distributed.is_main_process():
        Path(out).write_text(json.dumps(result))


def echo_env() -> None:
    """Print the launcher's variables as one JSON line."""
    names = ("JAXNET_COORDINATOR", "JAXNET_NUM_PROCESSES", "JAXNET_PROCESS_ID")
    print(json.dumps({name: os.environ.get(name) for name in (*names, "XLA_FLAGS")}))


def sleep_or_fail(folder: str) -> None:
    """Record this pid and a sleeping child's; process 1 exits 3 if FAIL is set."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    process_id = os.environ["JAXNET_PROCESS_ID"]
    Path(folder, f"pids-{process_id}").write_text(f"{os.getpid()} {child.pid}")
    print(f"process {process_id} started", flush=True)
    if os.environ.get("FAIL") and process_id == "1":
        deadline = time.monotonic() + 30  # fail once every copy is recorded
        while len(list(Path(folder).glob("pids-*"))) < 2:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        sys.exit(3)
    time.sleep(120)


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    {
        "data_parallel": data_parallel,
        "two_process": two_process,
        "echo_env": echo_env,
        "sleep_or_fail": sleep_or_fail,
    }[scenario](*args)
