"""What do the training-health readings cost? (``jaxnet.health``, recorded in
the compiled run by ``jaxnet.driver`` with ``health_every``.)

Question: on the cat shapes (the course's L-layer model [12288, 20, 7, 5, 1],
m = 209, cat-like synthetic data), how much longer does a run take when it
records the readings at every ``print_every`` = 100 iterations (the cat
experiment's default), against the same run without them, in the same process?

Each case runs both programs (compiled once, outside the timing), alternating,
and keeps the best ``train_seconds`` of each (on a shared machine the slower
runs measure the other jobs); the ratio with / without is printed. Expected:
at most 1.05 (the issue's rule: overhead at most 5 % of the step time): a
reading costs a few steps, taken once per 100 iterations, and the chunk's loop
runs in segments between the points, so the other iterations pay nothing.

    python -m benchmarks.health_overhead [--quick] [--out PATH.json]
"""

import argparse
import os

import jax

from benchmarks.train_step import LAYER_DIMS, LEARNING_RATE, machine, write_result
from benchmarks.wide import cat_shaped
from jaxnet.boundary import prepare
from jaxnet.deep import activations_for
from jaxnet.driver import drive
from jaxnet.params import init_params

EVERY = 100  # the cat experiment's --print-every
LIMIT = 1.05  # with / without at most this

# (name, first_layer, batch_size, iterations (quick: / 5))
CASES = (
    ("deep, gram first layer (the cat default)", "gram", None, 2500),
    ("deep, dense first layer", "dense", None, 500),
    ("deep, gram, minibatches of 64", "gram", 64, 500),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.health_overhead",
        description="Time runs with and without the training-health readings.",
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="JSON file to write")
    return parser


def run_seconds(run, n: int, health_every) -> float:
    """``train_seconds`` of one driven run as one compiled chunk: the compiled
    steps alone, without the host's per-chunk work (timing, progress)."""
    result = drive(
        run.config, run.state, run.hp, run.data, run.Y,
        num_iterations=n, health_every=health_every, single_chunk=True,
    )  # fmt: skip
    return result.train_seconds


def bench_case(first_layer, batch_size, n, repeats) -> dict:
    X, Y = cat_shaped(jax.numpy.float32)
    params = init_params(jax.random.key(0), LAYER_DIMS, "lecun")
    run = prepare(
        params, X, Y, activations=activations_for(len(LAYER_DIMS) - 1),
        learning_rate=LEARNING_RATE, batch_size=batch_size, first_layer=first_layer,
    )  # fmt: skip
    run_seconds(run, n, None), run_seconds(run, n, EVERY)  # compile both
    plain, watched = [], []
    for _ in range(repeats):
        plain.append(run_seconds(run, n, None))
        watched.append(run_seconds(run, n, EVERY))
    per = n if batch_size is None else n * -(-Y.shape[1] // batch_size)
    return {
        "iterations": n,
        "step_ms": 1e3 * min(plain) / per,
        "step_ms_with_health": 1e3 * min(watched) / per,
        "ratio": min(watched) / min(plain),
    }


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    rows = {}
    for name, first_layer, batch_size, n in CASES:
        n = max(n // 5, EVERY) if args.quick else n
        row = bench_case(first_layer, batch_size, n, args.repeats)
        rows[name] = row
        verdict = "ok" if row["ratio"] <= LIMIT else f"OVER {LIMIT}"
        print(
            f"{name:<44} step {row['step_ms']:.3f} ms, with readings "
            f"{row['step_ms_with_health']:.3f} ms: ratio {row['ratio']:.3f} "
            f"({verdict})"
        )
    load = os.getloadavg()[0]
    print(f"1-minute load average: {load:.2f} on {os.cpu_count()} CPUs")
    result = {"machine": machine(), "load_1min": load, "every": EVERY, "cases": rows}
    return write_result(result, args.out, "health_overhead")


if __name__ == "__main__":
    main()
