"""What does splitting m over devices cost, and what would it save?

Question: one fixed run, the two-layer cat model [12288, 7, 1] trained full batch
in float32 on random data of the cat set's shape (12288, 208), takes how long
with m unsplit, and with m split over 1, 2 and 4 forced host devices in one
process, and over 2 processes (1 and 2 devices each, gloo over 127.0.0.1)? Each
setup runs in a fresh Python (the device count is fixed at JAX start); the
timed run is the best of --repeats after a compiling first call.

Expected outcome: no speed-up on a machine whose forced host devices share the
same few cores; the ratio to 1 device is the price of splitting: per-device
work too small to amortize dispatch, and one all-reduce per step of the
gradient, 86,031 float32 numbers (344 kB), which 2 processes send over TCP. On a
machine with D real devices the step's compute, 4 m n_x n_h FLOPs (~72 MFLOP
here), divides by D and the all-reduce stays the same size: see
docs/distributed.md.

    python -m benchmarks.distributed [--num-iterations N] [--repeats R] [--gpu]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYER_DIMS = (12288, 7, 1)
M = 208  # the cat set's 209, less one, so 2 and 4 devices divide it
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
        description="Time one training run with m split over 1, 2, 4 devices "
        "and 2 processes.",
    )
    parser.add_argument("--num-iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="add a 1-GPU line")
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mesh", action="store_true", help=argparse.SUPPRESS)
    return parser


def worker(out: str, num_iterations: int, repeats: int, use_mesh: bool) -> None:
    """One setup, inside the fresh Python: time fit, write a JSON line."""
    from jaxnet import distributed

    distributed.initialize_from_env()
    import jax
    import jax.numpy as jnp

    from jaxnet import fit, init_params

    key_x, key_y = jax.random.split(jax.random.key(1))
    X = jax.random.normal(key_x, (LAYER_DIMS[0], M), jnp.float32)
    Y = jax.random.bernoulli(key_y, 0.5, (1, M)).astype(jnp.float32)
    params = init_params(jax.random.key(0), LAYER_DIMS, method="he")
    mesh = distributed.make_mesh() if use_mesh else None
    if mesh is not None:
        columns = distributed.process_columns(mesh, M)
        X, Y = distributed.shard_examples(mesh, X[:, columns], Y[:, columns])
        params = distributed.replicate(mesh, params)

    def run():
        return jax.block_until_ready(
            fit(
                params,
                X,
                Y,
                activations=("relu", "sigmoid"),
                num_iterations=num_iterations,
            )
        )

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, costs = run()
        times.append(time.perf_counter() - start)
    final_cost = float(distributed.gather(costs)[-1])
    if distributed.is_main_process():
        result = {**distributed.describe(mesh), "first_s": first, "run_s": min(times)}
        Path(out).write_text(json.dumps({**result, "final_cost": final_cost}))


def run_setup(processes: int, devices: int, use_mesh: bool, args, gpu=False) -> dict:
    """Start one setup in fresh Pythons (via jaxnet.launch for 2 processes)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker", str(out)]
        command += ["--num-iterations", str(args.num_iterations)]
        command += ["--repeats", str(args.repeats)] + (["--mesh"] if use_mesh else [])
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
        worker(args.worker, args.num_iterations, args.repeats, args.mesh)
        return {}
    setups = list(SETUPS) + ([("1 GPU", 1, 1, True)] if args.gpu else [])
    print(
        f"two-layer {list(LAYER_DIMS)}, m = {M}, float32, full batch, "
        f"{args.num_iterations} iterations, best of {args.repeats}"
    )
    header = f"{'setup':<26}{'platform':>9}{'1st call s':>12}{'run s':>9}"
    print(header + f"{'ms/iter':>9}{'vs 1 device':>13}{'final cost':>12}")
    rows, base = [], None
    for label, processes, devices, use_mesh in setups:
        row = run_setup(processes, devices, use_mesh, args, gpu=label == "1 GPU")
        row["setup"] = label
        base = base or row["run_s"]
        ms = 1e3 * row["run_s"] / args.num_iterations
        print(
            f"{label:<26}{row['platform']:>9}{row['first_s']:>12.2f}"
            f"{row['run_s']:>9.3f}{ms:>9.2f}{row['run_s'] / base:>12.2f}x"
            f"{row['final_cost']:>12.6f}",
            flush=True,
        )
        rows.append(row)
    result = {"num_iterations": args.num_iterations, "m": M, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
