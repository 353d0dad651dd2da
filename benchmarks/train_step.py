"""How close does a jaxnet gradient step come to the machine's limit?

Question: for the course's L-layer model [12288, 20, 7, 5, 1] on m = 209 examples
(the cat data's shape; random data here), how long does one gradient step take
in float32 and float64, compared with

- a plain numpy implementation of the same formulas (as a course student writes),
- jaxnet's jitted step, hand-written backward vs ``jax.grad``,
- jaxnet's whole 2500-step run as one compiled ``lax.scan`` (per step),
- a 16-model ``vmap`` sweep (per model-step) vs 16 sequential runs,
- the lower bound: the step's matmul FLOPs / the peak of a large square matmul
  measured in the same process?

The step's matmul FLOPs (n = layer_dims, L layers, A_prev of layer 1 is X):

    forward   2 m sum_l n[l] n[l-1]           Z[l] = W[l] A[l-1]
    dW        2 m sum_l n[l] n[l-1]           dW[l] = dZ[l] A[l-1]^T / m
    dA_prev   2 m sum_{l>=2} n[l] n[l-1]      dA[l-1] = W[l]^T dZ[l]  (dA[0] unused)

= 205.68 MFLOP here. Expected outcome: the step is two skinny products with X
(20 x 12288 x 209), so it is bound by streaming X (10 MB in float32) rather than
by arithmetic; jit beats numpy, the scan removes per-step dispatch, and vmap over
16 models turns the 16 products W[1] X into one (320 x 12288) x (12288 x 209)
product that reads X once for all models.

    python -m benchmarks.train_step [--quick] [--out PATH.json]

Runs unchanged on CPU or GPU (JAX picks the default device); the numpy column
always runs on the host CPU.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnet import strict_json
from jaxnet.deep import activations_for
from jaxnet.params import init_params
from jaxnet.runner import train_loop
from jaxnet.sweep import init_stacked_params, sweep
from jaxnet.train import GRAD_SOURCES, fit, init_state, make_step

LAYER_DIMS = (12288, 20, 7, 5, 1)
M = 209
LEARNING_RATE = 0.0075
# This benchmark measures the dense first layer (W[1] X, dZ[1] X^T); "auto" would
# pick the exact gram path for these shapes (benchmarks/wide.py compares the two).
DENSE = {"first_layer": "dense"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_step",
        description="Time one gradient step of the L-layer model against numpy "
        "and against the machine's matmul peak.",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~1 min)")
    parser.add_argument("--num-iterations", type=int, default=None)
    parser.add_argument("--num-models", type=int, default=16)
    parser.add_argument("--sweep-iterations", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--peak-size", type=int, default=None)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--out", default=None, help="JSON file to write")
    return parser


def step_flops(layer_dims=LAYER_DIMS, m=M) -> int:
    """Matmul FLOPs of one step: forward, dW, and dA_prev of layers 2..L."""
    products = [
        n * n_prev for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=True)
    ]
    return 2 * m * (2 * sum(products) + sum(products[1:]))


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time of fn() over repeats, after warm-up; JAX output awaited."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def paired_ms(fn_a, fn_b, repeats: int, warmup: int = 3) -> tuple[float, float, float]:
    """Median ms of fn_a and fn_b timed in alternating pairs, and the median a/b.

    Interleaving puts both under the same machine state, so the ratio is not
    skewed by drift (other jobs, clocks) between two separate blocks of timings.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn_a())
        jax.block_until_ready(fn_b())
    times_a, times_b = [], []
    for i in range(repeats):
        pair = {}
        for name, fn in (
            (("a", fn_a), ("b", fn_b)) if i % 2 == 0 else (("b", fn_b), ("a", fn_a))
        ):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            pair[name] = time.perf_counter() - start
        times_a.append(pair["a"])
        times_b.append(pair["b"])
    ratio = float(np.median(np.array(times_a) / np.array(times_b)))
    return 1e3 * float(np.median(times_a)), 1e3 * float(np.median(times_b)), ratio


def peak_gflops(dtype, n: int, repeats: int) -> float:
    """Measured GFLOP/s of a jitted (n, n) x (n, n) matmul: 2 n^3 FLOPs."""
    a = jax.random.normal(jax.random.key(1), (n, n), dtype)
    b = jax.random.normal(jax.random.key(2), (n, n), dtype)
    matmul = jax.jit(jnp.matmul)
    return 2 * n**3 / median_seconds(lambda: matmul(a, b), repeats) / 1e9


# A course student's numpy step (relu hidden layers, sigmoid output).
def numpy_step(params, X, Y, learning_rate):
    m = X.shape[1]
    L = len(params)
    caches, A = [], X
    for l in range(L):
        W, b = params[l]["W"], params[l]["b"]
        Z = np.dot(W, A) + b
        caches.append((A, Z))
        A = 1 / (1 + np.exp(-Z)) if l == L - 1 else np.maximum(0, Z)
    AL = A
    cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    dZ = AL - Y
    new_params = [None] * L
    for l in reversed(range(L)):
        A_prev, Z = caches[l]
        if l < L - 1:
            dZ = dA * (Z > 0)  # noqa: F821 (dA comes from the layer above)
        dW = np.dot(dZ, A_prev.T) / m
        db = np.sum(dZ, axis=1, keepdims=True) / m
        if l > 0:
            dA = np.dot(params[l]["W"].T, dZ)  # noqa: F841
        new_params[l] = {
            "W": params[l]["W"] - learning_rate * dW,
            "b": params[l]["b"] - learning_rate * db,
        }
    return new_params, cost


def bench_dtype(dtype, args, flops) -> dict:
    """Every timing for one dtype; times in ms."""
    acts = activations_for(len(LAYER_DIMS) - 1)
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    X = jax.random.uniform(kx, (LAYER_DIMS[0], M), dtype)
    Y = (jax.random.uniform(ky, (1, M)) > 0.5).astype(dtype)
    params = init_params(kp, LAYER_DIMS, "lecun", dtype)
    r, n_it = args.repeats, args.num_iterations
    out = {"dtype": jnp.dtype(dtype).name}

    peak = peak_gflops(dtype, args.peak_size, max(3, r // 2))
    out["peak_gflops"] = peak
    out["lower_bound_ms"] = flops / (peak * 1e9) * 1e3

    np_params = jax.tree.map(np.asarray, params)
    Xn, Yn = np.asarray(X), np.asarray(Y)
    out["numpy_step_ms"] = 1e3 * median_seconds(
        lambda: numpy_step(np_params, Xn, Yn, LEARNING_RATE), r
    )

    optimizer = optax.sgd(LEARNING_RATE)
    state = init_state(params, optimizer)
    steps = {g: jax.jit(make_step(acts, optimizer, grad=g)) for g in GRAD_SOURCES}
    manual_ms, autodiff_ms, ratio = paired_ms(
        lambda: steps["manual"](state, X, Y),
        lambda: steps["autodiff"](state, X, Y),
        5 * r,
    )
    out["jit_step_manual_ms"], out["jit_step_autodiff_ms"] = manual_ms, autodiff_ms
    out["manual_over_autodiff_paired"] = ratio

    def run():
        return fit(params, X, Y, activations=acts, num_iterations=n_it, **DENSE)

    def run_with_bar():
        return train_loop(
            params,
            X,
            Y,
            activations=acts,
            num_iterations=n_it,
            **DENSE,
            print_every=100,
            progress=True,
            print_fn=lambda line: None,
        )

    # The same 2500-step run with and without the progress bar (chunks of 100
    # steps through runner.train_loop), timed in alternating pairs so both see
    # the same machine state. train_loop compiles its chunk on every call; each
    # call's own compile time is taken out of its wall time.
    long_repeats = max(2, r // 3)
    jax.block_until_ready(run())
    scan_s, bar_s, compile_s = [], [], []
    for _ in range(long_repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        scan_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = run_with_bar()
        bar_s.append(time.perf_counter() - start - result.compile_seconds)
        compile_s.append(result.compile_seconds)
    out["scan_step_ms"] = 1e3 * float(np.median(scan_s)) / n_it
    out["progress_bar_step_ms"] = 1e3 * float(np.median(bar_s)) / n_it
    out["progress_bar_over_scan_paired"] = float(
        np.median(np.array(bar_s) / np.array(scan_s))
    )
    out["scan_compile_s"] = float(np.median(compile_s))

    # N models: one vmapped sweep vs N sequential runs
    n_models, s_it = args.num_models, args.sweep_iterations
    keys = jax.random.split(jax.random.key(3), n_models)
    stacked = init_stacked_params(keys, LAYER_DIMS, "lecun", dtype)
    lrs = np.geomspace(1e-3, 1e-2, n_models).tolist()

    def run_sweep():
        return sweep(
            stacked,
            X,
            Y,
            activations=acts,
            num_iterations=s_it,
            **DENSE,
            learning_rates=lrs,
            keys=keys,
        ).costs

    start = time.perf_counter()
    jax.block_until_ready(run_sweep())
    first = time.perf_counter() - start
    sweep_s = median_seconds(run_sweep, long_repeats, warmup=0)
    out["sweep_model_step_ms"] = 1e3 * sweep_s / (n_models * s_it)
    # first call = compile + one run
    out["sweep_compile_s_per_model"] = max(0.0, first - sweep_s) / n_models

    singles = [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(n_models)]

    def run_sequential():
        return [
            fit(
                p,
                X,
                Y,
                activations=acts,
                num_iterations=s_it,
                learning_rate=lr,
                **DENSE,
            )[1]
            for p, lr in zip(singles, lrs, strict=True)
        ]

    seq_s = median_seconds(run_sequential, long_repeats)
    out["sequential_model_step_ms"] = 1e3 * seq_s / (n_models * s_it)
    return out


def ratios(row) -> dict:
    lb = row["lower_bound_ms"]
    return {
        "scan_over_lower_bound": row["scan_step_ms"] / lb,
        "numpy_over_jit_step": row["numpy_step_ms"] / row["jit_step_manual_ms"],
        "numpy_over_scan_step": row["numpy_step_ms"] / row["scan_step_ms"],
        "manual_over_autodiff": row["manual_over_autodiff_paired"],
        "jit_step_over_scan_step": row["jit_step_manual_ms"] / row["scan_step_ms"],
        "sweep_over_lower_bound": row["sweep_model_step_ms"] / lb,
        "sequential_over_sweep": row["sequential_model_step_ms"]
        / row["sweep_model_step_ms"],
        "progress_bar_over_scan": row["progress_bar_over_scan_paired"],
    }


TARGETS = [
    # (ratio, dtype, comparison, bound, text)
    ("scan_over_lower_bound", "float32", "<=", 1.25, "whole run <= 1.25x bound"),
    ("numpy_over_jit_step", "float32", ">=", 2.0, "jit step >= 2x faster than numpy"),
    ("manual_over_autodiff", "float32", "<=", 1.05, "manual <= 1.05x jax.grad"),
    ("manual_over_autodiff", "float64", "<=", 1.05, "manual <= 1.05x jax.grad"),
    ("sweep_over_lower_bound", "float32", "<=", 1.2, "sweep <= 1.2x bound/model"),
    ("progress_bar_over_scan", "float32", "<=", 1.05, "progress bar < 5 % over"),
]


def print_table(rows):
    cols = [
        ("peak GFLOP/s", "peak_gflops", ".1f"),
        ("lower bound ms", "lower_bound_ms", ".3f"),
        ("numpy step ms", "numpy_step_ms", ".3f"),
        ("jit step (manual) ms", "jit_step_manual_ms", ".3f"),
        ("jit step (jax.grad) ms", "jit_step_autodiff_ms", ".3f"),
        ("scan run, per step ms", "scan_step_ms", ".3f"),
        ("scan run + progress bar ms", "progress_bar_step_ms", ".3f"),
        ("16-model sweep, per model-step ms", "sweep_model_step_ms", ".3f"),
        ("16 sequential runs, per model-step ms", "sequential_model_step_ms", ".3f"),
        ("compile: whole run s", "scan_compile_s", ".2f"),
        ("compile: sweep s per model", "sweep_compile_s_per_model", ".3f"),
    ]
    cols += [(name, name, ".3f") for name in ratios(rows[0])]
    print(f"{'':<40}" + "".join(f"{r['dtype']:>12}" for r in rows))
    for label, key, fmt in cols:
        values = [r.get(key, r["ratios"].get(key)) for r in rows]
        print(f"{label:<40}" + "".join(f"{v:>12{fmt}}" for v in values))


def check_targets(rows) -> list[dict]:
    by_dtype = {r["dtype"]: r for r in rows}
    results = []
    for name, dtype, op, bound, text in TARGETS:
        if dtype not in by_dtype:
            continue
        value = by_dtype[dtype]["ratios"][name]
        met = value <= bound if op == "<=" else value >= bound
        results.append(
            dict(target=text, dtype=dtype, value=value, bound=bound, op=op, met=met)
        )
    compile_per_model = max(r["sweep_compile_s_per_model"] for r in rows)
    results.append(
        dict(
            target="compile < 1 s per model (sweep)",
            dtype="all",
            value=compile_per_model,
            bound=1.0,
            op="<",
            met=compile_per_model < 1.0,
        )
    )
    return results


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = jax.devices()[0]
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # for the float64 column
    gpu = jax.default_backend() != "cpu"
    if args.num_iterations is None:
        args.num_iterations = 200 if args.quick else 2500
    if args.sweep_iterations is None:
        args.sweep_iterations = 20 if args.quick else 100
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.peak_size is None:
        args.peak_size = 4096 if gpu else 2048
    flops = step_flops()
    info = machine()
    print(
        f"machine: {info['cpu']} ({info['cpu_count']} cores), jax "
        f"{info['jax_version']} on {info['jax_backend']}: {info['device']}"
    )
    print(f"step matmul FLOPs: {flops / 1e6:.2f} MFLOP, m = {M}, dims {LAYER_DIMS}")
    rows = []
    for name in args.dtypes.split(","):
        row = bench_dtype(jnp.dtype(name).type, args, flops)
        row["ratios"] = ratios(row)
        rows.append(row)
    print_table(rows)
    targets = check_targets(rows)
    for t in targets:
        status = "met" if t["met"] else "MISSED"
        print(f"{t['target']:<36} {t['dtype']:>8}: {t['value']:.3f} -> {status}")
    result = {
        "machine": info,
        "layer_dims": LAYER_DIMS,
        "m": M,
        "step_mflop": flops / 1e6,
        "settings": vars(args),
        "rows": rows,
        "targets": targets,
    }
    return write_result(result, args.out, "train_step")


def write_result(result: dict, out: str | None, name: str) -> dict:
    """Write a benchmark's result as JSON (default runs/benchmark-<name>-<time>)."""
    path = Path(out or f"runs/benchmark-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(strict_json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
