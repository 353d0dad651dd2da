"""Does L2 or dropout close the cat classifier's train/test gap?

Question: the course's L-layer network [12288, 20, 7, 5, 1] (relu, sigmoid
output, plain gradient descent, alpha = 0.0075, 2500 full-batch iterations)
fits its 209 training images almost perfectly but gets only ~80 % of the 50 test
images right. Do the lecture's regularizers, L2 (J += lambda / (2m) sum ||W||^2)
and inverted dropout (keep_prob), shrink that gap?

Expected: the gap narrows a little (train accuracy drops, test accuracy moves
by at most a few images); with 50 test images one image is 2 points, so the
spread over seeds matters as much as the mean, and it is reported.

Every setting runs --num-seeds initializations at once: one ``jaxnet.sweep``
(``jax.vmap`` over the seeds' whole runs) through the same driver as every
other run, in chunks with a progress bar; lambda and keep_prob are traced
arguments, so the regularized settings share one compilation. After each
setting its results are written to metrics.json; ``--resume RUN_DIR`` skips the
settings already done.

    python -m experiments.regularization
    python -m experiments.regularization --model two_layer --l2 0.7 --keep-prob 0.8

The run folder (--out) gets metrics.json and regularization.png.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, records
from jaxnet.data import load_catvnoncat
from jaxnet.deep import activations_for
from jaxnet.interrupts import StopOnSignal
from jaxnet.runner import train_loop
from jaxnet.sweep import init_stacked_params, sweep, unstack

# The course's two networks and their initializations.
MODELS = {
    "deep": dict(layer_dims=[12288, 20, 7, 5, 1], init="lecun"),
    "two_layer": dict(layer_dims=[12288, 7, 1], init="small"),
}


RUN_FLAGS = (
    "seed", "num_seeds", "model", "iterations", "learning_rate", "optimizer", "l2",
    "keep_prob", "grad", "dtype",
)  # fmt: skip


def build_parser():
    """Command-line flags; defaults take a few minutes on 2 CPU cores."""
    p = cli.build_parser(
        "python -m experiments.regularization", __doc__,
        seed=0, num_seeds=5, iterations=2500, learning_rate=0.0075,
        optimizer="gd", l2_list=[0.7], keep_prob_list=[0.86], grad="manual",
        dtype="float32", print_every=500, data=None,
    )  # fmt: skip
    p.add_argument("--model", choices=sorted(MODELS), default="deep", help="network")
    return p


def settings_from(args) -> list[tuple[str, float, float]]:
    """[(name, lambd, keep_prob), ...]: no regularization, each L2, each dropout."""
    settings = [("none", 0.0, 1.0)]
    settings += [(f"L2 lambda={lam:g}", lam, 1.0) for lam in args.l2]
    settings += [(f"dropout keep_prob={kp:g}", 0.0, kp) for kp in args.keep_prob]
    return settings


def plot_results(results, path, title):
    """Train and test accuracy per setting, mean with a +-std error bar."""
    plt = common.pyplot()
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
    common.save_figure(fig, path, dpi=120)


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


# What a resumed run reads from each finished setting's result.
RESULT_KEYS = {"setting", "train_accuracy", "test_accuracy"}


def main(argv=None) -> dict:
    """Run every setting over all seeds; print the table, write the run folder."""
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = cli.apply_resume(parser, args, RUN_FLAGS, {"models.results": list})
    done_before = saved["models"]["results"] if saved else []
    for i, r in enumerate(done_before):
        lacks = sorted(RESULT_KEYS - set(r)) if isinstance(r, dict) else "keys"
        if lacks:
            parser.error(
                f"--resume: result {i} of {args.resume}/metrics.json lacks {lacks} "
                f"(needs {sorted(RESULT_KEYS)})"
                "; restore the file from a copy, or start a new run (--out)"
            )
    start = time.perf_counter()
    dtype = common.set_dtype(args.dtype)
    data = load_catvnoncat(args.data)  # missing data: no run folder
    run_dir = common.make_run_dir(
        args.out, "regularization", args.overwrite, resume=bool(args.resume)
    )  # locked for this run: one run per folder
    settings = settings_from(args)
    model = MODELS[args.model]
    dims = model["layer_dims"]
    activations = activations_for(len(dims) - 1)
    X, Y = jnp.asarray(data.X_train, dtype), jnp.asarray(data.Y_train, dtype)
    X_test, Y_test = jnp.asarray(data.X_test, dtype), jnp.asarray(data.Y_test, dtype)

    seeds = np.arange(args.seed, args.seed + args.num_seeds)
    keys = jax.vmap(jax.random.key)(seeds)
    init_keys, train_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
    params0 = init_stacked_params(init_keys, dims, model["init"], dtype)
    flags = {k: getattr(args, k) for k in RUN_FLAGS}
    results = list(done_before)
    metrics = {
        "config": {"flags": flags, "layer_dims": dims, "seeds": seeds.tolist(),
                   **common.environment()},
        "dataset": {"name": "catvnoncat", "train_size": int(X.shape[1]),
                    "test_size": int(X_test.shape[1])},
        "models": {"results": results},
        "interrupted": False,
    }  # fmt: skip
    common.write_json(run_dir / "metrics.json", metrics)  # resumable from now on
    with StopOnSignal() as stop:
        for name, lambd, keep_prob in settings[len(results) :]:
            print(f"\n== {name}: {args.num_seeds} seeds")
            out = sweep(
                params0, X, Y, activations=activations,
                num_iterations=args.iterations, learning_rates=args.learning_rate,
                lambds=lambd, keep_probs=keep_prob, keys=train_keys,
                optimizer=args.optimizer, grad=args.grad, X_test=X_test,
                Y_test=Y_test, print_every=args.print_every,
                progress=cli.show_progress(args), desc=name, should_stop=stop,
            )  # fmt: skip
            if out.run.interrupted:
                metrics["interrupted"] = True
                break

            def rerun(i, n, lambd=lambd, keep_prob=keep_prob):  # one seed alone
                return train_loop(
                    unstack(params0, i), X, Y, activations=activations,
                    num_iterations=n, learning_rate=args.learning_rate,
                    lambd=lambd, keep_prob=keep_prob, key=train_keys[i],
                    optimizer=args.optimizer, grad=args.grad, print_every=None,
                    progress=False,
                )  # fmt: skip

            # jaxnet.stopping's rules per seed: a diverged one keeps its last
            # good parameters and is recorded as such.
            trained, costs, stops = common.apply_stopping_rules(
                out.params, out.costs, rerun
            )
            train_acc, test_acc = common.sweep_accuracies(
                out, trained, stops, (X, Y, X_test, Y_test), activations
            )
            results.append({
                "setting": name, "lambd": lambd, "keep_prob": keep_prob,
                "train_accuracy": common.summarize(train_acc),
                "test_accuracy": common.summarize(test_acc),
                # J of the returned params (the kept ones for a stopped seed)
                "final_cost": common.summarize(records.sweep_final_costs(
                    out.run.final_cost, trained, stops, X, Y, activations,
                    lambd=lambd or None,
                )),
                "finite": bool(all(np.isfinite(c).all() for c in costs)),
                "diverged": any(stops), "stops": stops,
                "iterations_done": int(out.run.iterations_done),
                "cost_curve": records.mean_curve(costs),
                "cost_curve_of": f"the mean over the {args.num_seeds} seeds",
            })  # fmt: skip
            common.write_json(run_dir / "metrics.json", metrics)
    common.keep_stopping(stop)  # a signal now: an honest, interrupted record
    seconds = time.perf_counter() - start
    table = format_table(results)
    print(
        f"\n{args.model} {dims}, {args.iterations} iterations, "
        f"{args.num_seeds} seeds, test set of {Y_test.shape[1]} images:\n{table}"
    )
    print(f"{seconds:.1f} s total")
    metrics["models"]["table"] = table
    metrics["seconds"] = seconds
    if not args.no_plots and results and not stop():  # (a stop: leave at once)
        title = f"{args.model}: mean +- std over {args.num_seeds} seeds"
        plot_results(results, run_dir / "regularization.png", title)
    return common.finish_run(run_dir, metrics, stop, "regularization")


if __name__ == "__main__":
    common.run_cli(main)
