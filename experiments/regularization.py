"""Does L2 or dropout close the cat classifier's train/test gap?

Question: the course's L-layer network [12288, 20, 7, 5, 1] (relu, sigmoid
output, plain gradient descent, alpha = 0.0075, 2500 full-batch iterations)
fits its 209 training images almost perfectly but gets only ~80 % of the 50 test
images right. Do the lecture's regularizers, L2 (J += lambda / (2m) sum ||W||^2)
and inverted dropout (keep_prob), shrink that gap?

Expected: the gap narrows a little (train accuracy drops, test accuracy moves
by at most a few images); with 50 test images one image is 2 points, so the
spread over seeds matters as much as the mean, and it is reported.

Every setting runs --num-seeds initializations at once (``jax.vmap`` over the
init keys) through one compiled ``lax.scan``; lambda and keep_prob are traced
arguments, so all settings share one compilation ("none" is keep_prob = 1, whose
mask keeps every unit).

    python -m experiments.regularization
    python -m experiments.regularization --model two_layer --l2 0.7 --keep-prob 0.8

The run folder (--out) gets metrics.json and regularization.png.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from experiments.common import (
    finish_run,
    make_run_dir,
    parse_float_list,
    pyplot,
    set_dtype,
)
from jaxnet.data import load_catvnoncat
from jaxnet.deep import activations_for
from jaxnet.optimizers import OPTIMIZERS, build_optimizer
from jaxnet.params import init_params
from jaxnet.train import accuracy, init_state, make_step, run_steps

# The course's two networks and their initializations.
MODELS = {
    "deep": dict(layer_dims=[12288, 20, 7, 5, 1], init="lecun"),
    "two_layer": dict(layer_dims=[12288, 7, 1], init="small"),
}


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags; defaults take a few minutes on 2 CPU cores."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.regularization",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--seed", type=int, default=0, help="first init/dropout seed")
    p.add_argument("--num-seeds", type=int, default=5)
    p.add_argument("--model", choices=sorted(MODELS), default="deep")
    p.add_argument("--num-iterations", type=int, default=2500)
    p.add_argument("--learning-rate", type=float, default=0.0075)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="gd")
    p.add_argument("--l2", type=parse_float_list, default=[0.7], help="lambdas")
    p.add_argument("--keep-prob", type=parse_float_list, default=[0.86], help="dropout")
    p.add_argument("--grad", choices=("manual", "autodiff"), default="manual")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--print-every", type=int, default=500)
    p.add_argument("--data", default=None, help="folder holding catvnoncat/")
    p.add_argument("--out", default=None, help="run folder (default runs/reg-*)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="hide the bar")
    return p


def settings_from(args) -> list[tuple[str, float, float]]:
    """[(name, lambd, keep_prob), ...]: no regularization, each L2, each dropout."""
    for kp in args.keep_prob:
        if not 0 < kp <= 1:
            raise SystemExit(f"--keep-prob values must be in (0, 1]; got {kp}")
    settings = [("none", 0.0, 1.0)]
    settings += [(f"L2 lambda={lam:g}", lam, 1.0) for lam in args.l2]
    settings += [(f"dropout keep_prob={kp:g}", 0.0, kp) for kp in args.keep_prob]
    return settings


def make_chunk(activations, optimizer, grad, X, Y, length):
    """run(states, lambd, keep_prob) -> (states, costs (seeds, length)), jitted.

    One ``lax.scan`` of ``length`` steps, vmapped over the seeds' states; X, Y,
    lambd and keep_prob are shared by all seeds.
    """

    def run(states, lambd, keep_prob):
        step = make_step(
            activations, optimizer, grad=grad, lambd=lambd, keep_prob=keep_prob,
            dropout=True,
        )  # fmt: skip
        return jax.vmap(lambda s: run_steps(step, s, X, Y, length))(states)

    return jax.jit(run)


def summarize(values) -> dict:
    """Mean and standard deviation (over seeds, ddof=0) plus the raw values."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "values": values.tolist(),
    }


def plot_results(results, path, title):
    """Train and test accuracy per setting, mean with a +-std error bar."""
    plt = pyplot()
    names = [r["setting"] for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    for offset, split in ((-0.2, "train_accuracy"), (0.2, "test_accuracy")):
        means = [100 * r[split]["mean"] for r in results]
        stds = [100 * r[split]["std"] for r in results]
        ax.bar(x + offset, means, 0.4, yerr=stds, capsize=3, label=split[:-9])
    ax.set_xticks(x, names, rotation=15, fontsize=8)
    ax.set(ylabel="accuracy (%)", ylim=(50, 101), title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(results) -> str:
    """The results as a Markdown table (accuracies in %, mean +- std)."""
    lines = [
        "| setting | train accuracy (%) | test accuracy (%) | gap (points) |",
        "|---|---|---|---|",
    ]
    for r in results:
        tr, te = r["train_accuracy"], r["test_accuracy"]
        lines.append(
            f"| {r['setting']} | {100 * tr['mean']:.1f} +- {100 * tr['std']:.1f} "
            f"| {100 * te['mean']:.1f} +- {100 * te['std']:.1f} "
            f"| {100 * (tr['mean'] - te['mean']):.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Run every setting over all seeds; print the table, write the run folder."""
    args = build_parser().parse_args(argv)
    if args.num_iterations < 1 or args.num_seeds < 1:
        raise SystemExit("--num-iterations and --num-seeds must be >= 1")
    start = time.perf_counter()
    dtype = set_dtype(args.dtype)
    run_dir = make_run_dir(args.out, "regularization")
    settings = settings_from(args)
    model = MODELS[args.model]
    dims = model["layer_dims"]
    activations = activations_for(len(dims) - 1)

    data = load_catvnoncat(args.data)
    X, Y = jnp.asarray(data.X_train, dtype), jnp.asarray(data.Y_train, dtype)
    X_test, Y_test = jnp.asarray(data.X_test, dtype), jnp.asarray(data.Y_test, dtype)

    seeds = np.arange(args.seed, args.seed + args.num_seeds)
    keys = jax.vmap(jax.random.key)(seeds)
    init_keys, train_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
    params0 = jax.vmap(
        lambda k: init_params(k, dims, method=model["init"], dtype=dtype)
    )(init_keys)
    optimizer = build_optimizer(args.optimizer, args.learning_rate)
    evaluate = jax.jit(
        jax.vmap(
            lambda p: (
                accuracy(p, X, Y, activations),
                accuracy(p, X_test, Y_test, activations),
            )
        )
    )

    chunk = min(args.print_every or args.num_iterations, args.num_iterations)
    runners = {}
    results = []
    bar = tqdm(
        total=len(settings) * args.num_iterations,
        desc="settings x iterations",
        disable=args.no_progress,
        leave=False,
    )
    for name, lambd, keep_prob in settings:
        states = jax.vmap(lambda p, k: init_state(p, optimizer, k))(params0, train_keys)
        costs, done = [], 0
        while done < args.num_iterations:
            length = min(chunk, args.num_iterations - done)
            if length not in runners:
                runners[length] = make_chunk(
                    activations, optimizer, args.grad, X, Y, length
                )
            states, chunk_costs = runners[length](
                states, jnp.asarray(lambd, dtype), jnp.asarray(keep_prob, dtype)
            )
            costs.append(np.asarray(chunk_costs))
            done += length
            bar.update(length)
            mean_cost = float(np.mean(costs[-1][:, -1]))
            tqdm.write(f"{name}: mean cost after iteration {done - 1}: {mean_cost:.6f}")
        costs = np.concatenate(costs, axis=1)  # (seeds, iterations)
        train_acc, test_acc = (np.asarray(a) for a in evaluate(states.params))
        results.append(
            {
                "setting": name,
                "lambd": lambd,
                "keep_prob": keep_prob,
                "train_accuracy": summarize(train_acc),
                "test_accuracy": summarize(test_acc),
                "final_cost": summarize(costs[:, -1]),
                "finite": bool(np.all(np.isfinite(costs))),
            }
        )
    bar.close()
    seconds = time.perf_counter() - start

    table = format_table(results)
    print(
        f"\n{args.model} {dims}, {args.num_iterations} iterations, "
        f"{args.num_seeds} seeds, test set of {Y_test.shape[1]} images:\n{table}"
    )
    print(f"{seconds:.1f} s total")
    metrics = {
        "config": vars(args),
        "layer_dims": dims,
        "seeds": seeds.tolist(),
        "results": results,
        "table": table,
        "seconds": seconds,
        "device": str(jax.devices()[0]),
    }
    if not args.no_plots:
        title = f"{args.model}: mean +- std over {args.num_seeds} seeds"
        plot_results(results, run_dir / "regularization.png", title)
        metrics["plots"] = ["regularization.png"]
    return finish_run(run_dir, metrics)


if __name__ == "__main__":
    main()
