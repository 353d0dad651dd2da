"""Scenarios for test_distributed.py and test_launch.py, each in a fresh Python.

    python -m tests.distributed_worker SCENARIO [ARG]

JAX fixes its device count when it starts, so every scenario runs in its own
process, started by the test with XLA_FLAGS (or through ``jaxnet.launch``). The
JAX scenarios train through the public entry points with and without
``mesh=`` and write what they measured to the JSON file ARG; the tests compare.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

LAYER_DIMS = [2, 8, 1]
ACTIVATIONS = ("tanh", "sigmoid")
# case -> fit's options; batch_size 30 does not divide by the 4 devices.
DATA_PARALLEL_CASES = {
    "full_batch": {},
    "minibatch": {"batch_size": 30},
    "dropout": {"keep_prob": 0.8},
    "autodiff": {"grad": "autodiff", "keep_prob": 0.8, "lambd": 0.1, "batch_size": 32},
}
FLOAT32_CASES = ("full_batch", "minibatch")
# The wide first layer in coordinates (jaxnet.wide): n_x = 96 >> m = 24.
GRAM_CASES = {
    "gram": {},
    "gram_minibatch": {"batch_size": 10, "optimizer": "momentum", "lambd": 0.1},
}
# (case, dtype) -> fit's options, for the 2 processes x 2 devices run
# (m = 400: batches of 64 leave a last batch of 16, as 8000 digits by 128 do)
TWO_PROCESS_CASES = {
    ("full_batch", "float64"): {},
    ("minibatch", "float64"): {"batch_size": 64, "keep_prob": 0.9},
    ("full_batch", "float32"): {},
}
# train_loop in chunks sized by each process's clock (they must agree)
LOOP = dict(
    activations=ACTIVATIONS, num_iterations=40, learning_rate=0.3, batch_size=64,
    progress=False, print_every=None,
)  # fmt: skip


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


def wide_problem(m: int = 24):
    """float64 [96, 5, 1] relu on random 0/1 labels: the gram path's shape."""
    import jax
    import jax.numpy as jnp

    from jaxnet.params import init_params

    X = jax.random.normal(jax.random.key(2), (96, m), jnp.float64)
    Y = (jax.random.uniform(jax.random.key(3), (1, m)) > 0.5).astype(jnp.float64)
    params = init_params(jax.random.key(0), [96, 5, 1], method="he", dtype=X.dtype)
    return params, X, Y


def train(params, X, Y, case: dict, num_iterations: int, **options):
    """fit: num_iterations steps, or a tenth as many epochs with minibatches."""
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
        **options,
    )


def train_wide(params, X, Y, case: dict, **options):
    from jaxnet import fit

    return fit(
        params, X, Y, activations=("relu", "sigmoid"), num_iterations=40,
        learning_rate=0.05, first_layer="gram", **case, **options,
    )  # fmt: skip


def sweep_problem():
    """8 float64 models (params, learning rates, keep probs, keys) and the data."""
    import jax
    import jax.numpy as jnp

    from jaxnet.sweep import init_stacked_params

    keys = jax.random.split(jax.random.key(3), 8)
    stacked = init_stacked_params(keys, LAYER_DIMS, method="he", dtype=jnp.float64)
    models = (stacked, jnp.linspace(0.05, 0.8, 8), jnp.linspace(0.7, 1.0, 8), keys)
    return models, *problem("float64", m=200)[1:]


def run_sweep(models, X, Y, **options):
    """The sweep's params and costs (N models, minibatches, dropout)."""
    from jaxnet.sweep import sweep

    params, rates, keep_probs, keys = models
    result = sweep(
        params, X, Y, activations=ACTIVATIONS, num_iterations=30, batch_size=40,
        learning_rates=rates, keep_probs=keep_probs, keys=keys, **options,
    )  # fmt: skip
    return result.params, result.costs


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


def replicated(tree, devices: int) -> bool:
    """Every leaf whole on each of the devices."""
    import jax

    return all(
        leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == devices
        for leaf in jax.tree.leaves(tree)
    )


def spec(array) -> str:
    return str(array.sharding.spec)


def compiled_chunk_of(run):
    """The chunk program of a prepared run, compiled for its arguments."""
    import jax.numpy as jnp

    from jaxnet.driver import chunk_program

    args = (run.state, run.hp, run.data, run.Y, jnp.int32(4))
    return chunk_program(run.config, 4).lower(*args).compile()


def flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def placement(mesh) -> dict:
    """Where prepare puts each array, and what XLA makes of the steps."""
    import jax

    from jaxnet.boundary import prepare
    from jaxnet.params import init_params

    params, X, Y = problem("float64", m=200)
    run = prepare(params, X, Y, activations=ACTIVATIONS, mesh=mesh)
    # Minibatch FLOPs per device, with a hidden layer wide enough to dominate.
    wider = init_params(jax.random.key(0), [2, 64, 1], dtype=X.dtype)
    minibatch = {"activations": ACTIVATIONS, "batch_size": 40}
    per_device = flops(compiled_chunk_of(prepare(wider, X, Y, **minibatch, mesh=mesh)))
    one_device = flops(compiled_chunk_of(prepare(wider, X, Y, **minibatch)))
    wide = prepare(*wide_problem(), activations=("relu", "sigmoid"), mesh=mesh,
                   first_layer="gram")  # fmt: skip
    models, X, Y = sweep_problem()
    params, rates, _, keys = models
    swept = prepare(params, X, Y, activations=ACTIVATIONS, mesh=mesh, stacked=True,
                    num_models=8, learning_rate=rates, key=keys)  # fmt: skip
    return {
        "X_spec": spec(run.X),
        "X_shard_shapes": [list(s.data.shape) for s in run.X.addressable_shards],
        "Y_shard_shapes": [list(s.data.shape) for s in run.Y.addressable_shards],
        "state_replicated": replicated((run.state, run.hp), 4),
        "config_mesh": run.config.mesh is mesh,
        "all_reduces": compiled_chunk_of(run).as_text().count(" all-reduce("),
        "minibatch_flops_ratio": per_device / one_device,
        "gram_specs": {
            name: spec(getattr(wide.data, name)) for name in ("X", "G", "P", "W0")
        },
        "sweep_state_specs": sorted({spec(x) for x in _leaves(swept.state)}),
        "sweep_X_replicated": replicated((swept.X, swept.data), 4),
        "sweep_config_mesh": swept.config.mesh,
    }


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def data_parallel(out: str) -> None:
    """One process, 4 devices: every case with mesh= vs on one device."""
    from jaxnet import distributed, driver, fit_until, train_loop

    mesh = distributed.make_mesh(4)
    result = {"describe": distributed.describe(mesh), "cases": {}}

    def record(name, expected, actual):
        result["cases"][name] = {
            "expected": as_lists(expected),
            "actual": as_lists(actual),
            "outputs_replicated": replicated(actual[0], 4),
        }

    for dtype in ("float64", "float32"):
        params, X, Y = problem(dtype, m=200)
        for name, case in DATA_PARALLEL_CASES.items():
            if dtype == "float64" or name in FLOAT32_CASES:
                expected = train(params, X, Y, case, 200)
                actual = train(params, X, Y, case, 200, mesh=mesh)
                record(f"{name}-{dtype}", expected, actual)
    for name, case in GRAM_CASES.items():
        wide = wide_problem()
        record(f"{name}-float64", train_wide(*wide, case),
               train_wide(*wide, case, mesh=mesh))  # fmt: skip
    params, X, Y = problem("float64", m=200)
    loop = dict(
        activations=ACTIVATIONS, num_iterations=12, learning_rate=0.3,
        batch_size=50, keep_prob=0.9, progress=False, print_every=None,
    )  # fmt: skip
    runs = [train_loop(params, X, Y, **loop, mesh=m) for m in (None, mesh)]
    record("train_loop-float64", *[(r.params, r.costs) for r in runs])
    until = dict(activations=ACTIVATIONS, epsilon=0.3, max_iterations=400,
                 learning_rate=0.3)  # fmt: skip
    runs = [fit_until(params, X, Y, **until, mesh=m) for m in (None, mesh)]
    record("fit_until-float64", *[(r.params, r.costs, r.iterations) for r in runs])
    models, X, Y = sweep_problem()
    expected, actual = run_sweep(models, X, Y), run_sweep(models, X, Y, mesh=mesh)
    result["sweep"] = {
        "expected": as_lists(expected),
        "actual": as_lists(actual),
        "params_specs": sorted({spec(leaf) for leaf in _leaves(actual[0])}),
    }
    result["placement"] = placement(mesh)

    def chunk_programs():  # (the final cost's program is keyed "cost")
        return sum(key[0] != "cost" for key in driver._COMPILED)

    before = chunk_programs()  # chunks of a run share one program
    train_loop(
        *wide_problem(), activations=("relu", "sigmoid"), num_iterations=50,
        first_layer="gram", mesh=mesh, progress=False, print_every=None,
    )  # fmt: skip
    result["gram_loop_programs"] = chunk_programs() - before
    params, X, Y = problem("float64", m=200)
    result["refusals"] = {
        "m": error_of(lambda: train(params, X[:, :198], Y[:, :198], {}, 2, mesh=mesh)),
        "models": error_of(
            lambda: run_sweep(jax_tree_slice(models, 6), X, Y, mesh=mesh)
        ),
        "devices": error_of(lambda: distributed.make_mesh(8)),
        "not_a_mesh": error_of(lambda: train(params, X, Y, {}, 2, mesh=4)),
    }
    Path(out).write_text(json.dumps(result))


def jax_tree_slice(tree, n: int):
    """The first n models of every leaf."""
    import jax

    return jax.tree.map(lambda leaf: leaf[:n], tree)


def two_process(out: str) -> None:
    """One of 2 processes (launched by jaxnet.launch): fit and sweep on the mesh.

    Each process passes only its columns (``local_columns``) to ``fit``; the
    sweep takes the whole data in every process (it is copied, not split).
    """
    from jaxnet import distributed, train_loop

    assert distributed.initialize_from_env(), "JAXNET_* variables are not set"
    mesh = distributed.make_mesh()
    result = {"describe": distributed.describe(mesh), "cases": {}}
    for (name, dtype), case in TWO_PROCESS_CASES.items():
        params, X, Y = problem(dtype, m=400)
        X_local, Y_local = distributed.local_columns(mesh, X, Y)
        trained = train(params, X_local, Y_local, case, 300, mesh=mesh)
        result["cases"][f"{name}-{dtype}"] = as_lists(distributed.gather(trained))
    result["X_local_columns"] = list(X_local.shape)
    params, X, Y = problem("float64", m=400)
    run = train_loop(params, *distributed.local_columns(mesh, X, Y), **LOOP, mesh=mesh)
    result["cases"]["train_loop-float64"] = as_lists(distributed.gather(
        (run.params, run.costs)))  # fmt: skip
    for name, case in GRAM_CASES.items():
        params, X, Y = wide_problem()
        X_local, Y_local = distributed.local_columns(mesh, X, Y)
        trained = train_wide(params, X_local, Y_local, case, mesh=mesh)
        result["cases"][f"{name}-float64"] = as_lists(distributed.gather(trained))
    swept = run_sweep(*sweep_problem(), mesh=mesh)
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
