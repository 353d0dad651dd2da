"""What does splitting m over devices cost, and what would it save?

Question: two fixed runs take how long with m unsplit (plain ``fit``), and with
``fit(..., mesh=make_mesh(D))`` splitting m over 1, 2 and 4 forced host devices
in one process, and over 2 processes (1 and 2 devices each, gloo over
127.0.0.1, launched by ``jaxnet.launch``)?

- "cat": the two-layer cat model [12288, 7, 1], full batch, gradient descent,
  float32, random data of the cat set's shape (12288, 208), the dense first
  layer (the lecture's W[1] X; "auto" would take the exact gram path here);
- "digits": [784, 256, 128, 10] relu / softmax, Adam, minibatches of 128,
  float32, random data of the digits' shape (784, 8000).

Each setup runs in a fresh Python (the device count is fixed at JAX start); the
timed run is the best of --repeats after a compiling first call.

Expected outcome: no speed-up on a machine whose forced host devices share the
same few cores; the ratio to 1 device is the price of splitting: per-device
work too small to amortize dispatch, one all-reduce per step of the gradient
(86,031 float32 numbers for the cat model, 235,146 for digits), and for
minibatches the global shuffle's movement of X's columns. On a machine with D
real devices the step's compute divides by D and the all-reduce stays the same
size: see docs/distributed.md.

    python -m benchmarks.distributed [--workloads cat,digits] [--repeats R] [--gpu]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {  # name -> layer_dims, m, activations, iterations, fit options
    "cat": (
        (12288, 7, 1), 208, ("relu", "sigmoid"), 500,
        {"learning_rate": 0.0075, "first_layer": "dense"},
    ),
    "digits": (
        (784, 256, 128, 10), 8000, ("relu", "relu", "softmax"), 3,
        {"learning_rate": 1e-3, "optimizer": "adam", "batch_size": 128},
    ),
}  # fmt: skip
SETUPS = [  # label, processes, devices per process, split over a mesh
    ("1 device, no mesh", 1, 1, False),
    ("1 device, mesh", 1, 1, True),
    ("2 host devices", 1, 2, True),
    ("4 host devices", 1, 4, True),
    ("2 processes x 1 device", 2, 1, True),
    ("2 processes x 2 devices", 2, 2, True),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.distributed",
        description="Time training runs with m split over 1, 2, 4 devices "
        "and 2 processes.",
    )
    parser.add_argument(
        "--workloads", default="cat,digits", help="of " + ",".join(WORKLOADS)
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="add a 1-GPU line")
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workload", default="cat", help=argparse.SUPPRESS)
    parser.add_argument("--mesh", action="store_true", help=argparse.SUPPRESS)
    return parser


def problem(name: str):
    """Random data of the workload's shape, and he-initialized params."""
    import jax
    import jax.numpy as jnp

    from jaxnet import init_params, one_hot

    dims, m, *_ = WORKLOADS[name]
    key_x, key_y = jax.random.split(jax.random.key(1))
    X = jax.random.normal(key_x, (dims[0], m), jnp.float32)
    if dims[-1] == 1:
        Y = jax.random.bernoulli(key_y, 0.5, (1, m)).astype(jnp.float32)
    else:
        Y = one_hot(jax.random.randint(key_y, (m,), 0, dims[-1]), dims[-1])
    return init_params(jax.random.key(0), dims, method="he"), X, Y


def worker(out: str, name: str, repeats: int, use_mesh: bool) -> None:
    """One setup, inside the fresh Python: time fit, write a JSON line."""
    from jaxnet import distributed, strict_json

    distributed.initialize_from_env()
    import jax

    from jaxnet import fit

    _, _, activations, iterations, options = WORKLOADS[name]
    params, X, Y = problem(name)
    mesh = distributed.make_mesh() if use_mesh else None
    X, Y = distributed.local_columns(mesh, X, Y)  # this process's columns

    def run():
        return jax.block_until_ready(
            fit(params, X, Y, activations=activations, num_iterations=iterations,
                mesh=mesh, **options)
        )  # fmt: skip

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, costs = run()
        times.append(time.perf_counter() - start)
    if distributed.is_main_process():
        result = {**distributed.describe(mesh), "first_s": first, "run_s": min(times)}
        Path(out).write_text(
            strict_json.dumps({**result, "final_cost": float(costs[-1])})
        )


def run_setup(name, processes, devices, use_mesh, args, gpu=False) -> dict:
    """Start one setup in fresh Pythons (via jaxnet.launch for 2 processes)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker", str(out)]
        command += ["--workload", name, "--repeats", str(args.repeats)]
        command += ["--mesh"] if use_mesh else []
        env = dict(os.environ)
        if not gpu:
            env["JAX_PLATFORMS"] = "cpu"
            flags = [
                f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f
            ]
            env["XLA_FLAGS"] = " ".join(
                [*flags, f"--xla_force_host_platform_device_count={devices}"]
            )
        if processes > 1:
            launcher = [sys.executable, "-m", "jaxnet.launch", "--processes"]
            launcher += [str(processes), "--log-dir", folder, "--timeout", "300", "--"]
            command = launcher + command
        subprocess.run(
            command,
            env=env,
            check=True,
            timeout=360,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.worker:
        worker(args.worker, args.workload, args.repeats, args.mesh)
        return {}
    setups = list(SETUPS) + ([("1 GPU", 1, 1, True)] if args.gpu else [])
    result = {"repeats": args.repeats, "workloads": {}}
    for name in args.workloads.split(","):
        dims, m, _, iterations, options = WORKLOADS[name]
        unit = "epoch" if "batch_size" in options else "iter"
        print(
            f"\n{name}: {list(dims)}, m = {m}, float32, {iterations} {unit}s, "
            f"{options}, best of {args.repeats}"
        )
        header = f"{'setup':<26}{'platform':>9}{'1st call s':>12}{'run s':>9}"
        print(header + f"{'ms/' + unit:>10}{'vs 1 device':>13}{'final cost':>12}")
        rows, base = [], None
        for label, processes, devices, use_mesh in setups:
            row = run_setup(
                name, processes, devices, use_mesh, args, gpu=label == "1 GPU"
            )
            row["setup"] = label
            base = base or row["run_s"]
            ms = 1e3 * row["run_s"] / iterations
            print(
                f"{label:<26}{row['platform']:>9}{row['first_s']:>12.2f}"
                f"{row['run_s']:>9.3f}{ms:>10.2f}{row['run_s'] / base:>12.2f}x"
                f"{row['final_cost']:>12.6f}",
                flush=True,
            )
            rows.append(row)
        result["workloads"][name] = {"m": m, "iterations": iterations, "rows": rows}
    if args.out:
        from jaxnet import strict_json

        Path(args.out).write_text(strict_json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
