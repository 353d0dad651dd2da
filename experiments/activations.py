"""Which activation? The same L-layer network with five hidden activations.

Question: the lecture lists sigmoid, tanh, ReLU ("FAST!"), leaky ReLU and
softplus for hidden layers and keeps sigmoid for the output. Holding everything
else fixed (layer sizes, initialization, optimizer, learning rate, iterations),
how fast does each hidden g lower the cost J, and how well does the result
classify, on the course's cat images and on the planar flower?

Expected (measured, 10 seeds; table in docs/activations.md): sigmoid hidden
layers do not train the deep cat network at all (their slope is at most 1/4,
so the gradient shrinks layer by layer: J stays at 0.64 and every image is
called non-cat) and, on the flower, reach J < 0.2 in only 2 of 10 seeds, ~6x
later than tanh. Tanh lowers J fastest on both and has the best mean test
accuracy on the cats. ReLU and leaky ReLU reach the lowest J on the cats
(median 0.004) but vary most from seed to seed: the same 3 of 10
initializations are still at J ~ 0.07 for both (not dead units: those runs
have no more always-off units than the fast ones). Softplus, a smooth ReLU, is
slower. Test accuracies of tanh, ReLU, leaky ReLU and softplus are within one
std (50 test images: one image is 2 points); on the flower all reach 88-89 %.

    cats    [12288, 20, 7, 5, 1], W = randn / sqrt(n[l-1]) (the course's deep
            net), gradient descent alpha = 0.0075, 2500 iterations
    flower  [2, 10, 10, 1], Xavier init, gradient descent alpha = 0.3, 5000
            iterations, 400 training and 400 fresh test points

Every activation trains --num-seeds initializations at once: one vmapped
``jaxnet.sweep`` call per activation and data set. The default run takes
about 25 s on 2 CPU cores.

    python -m experiments.activations
    python -m experiments.activations --datasets flower --num-seeds 10

The run folder (--out) gets metrics.json and activations.png (cost curves:
median over seeds, interquartile band). Results: docs/activations.md.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, records, study_data
from jaxnet.activations import ACTIVATIONS
from jaxnet.runner import cost_checkpoints, train_loop
from jaxnet.sweep import init_stacked_params, sweep, unstack

NAME = "activations"
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")

# Each data set's network and training; --iterations, --learning-rate and
# --init override them for every data set. "level": the cost whose first
# crossing (J < level) is reported as "iterations to reach".
DATASETS = {
    "cats": dict(
        layer_dims=[12288, 20, 7, 5, 1], init="lecun", learning_rate=0.0075,
        iterations=2500, level=0.1,
    ),
    "flower": dict(
        layer_dims=[2, 10, 10, 1], init="xavier", learning_rate=0.3,
        iterations=5000, level=0.2,
    ),
}  # fmt: skip


def build_parser():
    parser = cli.build_parser(
        "python -m experiments.activations", __doc__,
        iterations=None, learning_rate=None, init=None, optimizer="gd", seed=0,
        num_seeds=10, dtype="float32", print_every=0, data=None, resume=False,
        unset=dict.fromkeys(("iterations", "learning_rate", "init"),
                            "each data set's own (cats / flower, below)"),
    )  # fmt: skip
    parser.add_argument(
        "--activations",
        type=cli.names_of(ACTIVATIONS, "hidden activations"),
        default=list(HIDDEN),
        help="hidden activations to compare",
    )
    parser.add_argument(
        "--datasets",
        type=cli.names_of(DATASETS, "data sets"),
        default=list(DATASETS),
        help="data sets (cats: the course's images; flower: planar_flower)",
    )
    return parser


def exact(accuracies, m: int) -> np.ndarray:
    """float32 accuracies as exact fractions of m (0.7599999 -> 38 / 50 = 0.76)."""
    return np.round(np.asarray(accuracies, np.float64) * m) / m


def iterations_to(costs: np.ndarray, level: float) -> list[int | None]:
    """Per seed, the first iteration i with costs[i] < level (None: never)."""
    below = costs < level
    return [int(np.argmax(row)) if row.any() else None for row in below]


def run_one(hidden, setting, data, args, dtype, stop) -> tuple[dict, np.ndarray]:
    """One activation on one data set, all seeds in one sweep, under
    ``jaxnet.stopping``'s rules; ``stop`` (polled) interrupts it."""
    X, Y, X_test, Y_test = data
    dims = setting["layer_dims"]
    activations = (hidden,) * (len(dims) - 2) + ("sigmoid",)
    seeds = list(range(args.seed, args.seed + args.num_seeds))
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    params = init_stacked_params(keys, dims, method=setting["init"], dtype=dtype)
    start = time.perf_counter()
    result = sweep(
        params, X, Y, activations=activations,
        num_iterations=setting["iterations"],
        learning_rates=setting["learning_rate"], optimizer=args.optimizer,
        keys=keys, X_test=X_test, Y_test=Y_test,
        print_every=args.print_every or None, desc=hidden,
        progress=cli.show_progress(args), should_stop=stop,
    )  # fmt: skip

    def rerun(i, n):  # one seed alone, through the driver's stopping rules
        return train_loop(
            unstack(params, i), X, Y, activations=activations, num_iterations=n,
            learning_rate=setting["learning_rate"], optimizer=args.optimizer,
            key=keys[i], print_every=None, progress=False,
        )  # fmt: skip

    trained, kept, stops = common.apply_stopping_rules(
        result.params, result.costs, rerun
    )
    train_acc, test_acc = common.sweep_accuracies(
        result, trained, stops, (X, Y, X_test, Y_test), activations
    )
    done = result.run.iterations_done
    costs = np.full((len(kept), done), np.nan)  # a stopped seed's tail is NaN
    for row, c in zip(costs, kept, strict=True):
        row[: c.size] = c[:done]
    reached = iterations_to(costs, setting["level"])
    hits = [r for r in reached if r is not None]
    metrics = {
        "activations": list(activations),
        "iterations": setting["iterations"],
        "iterations_done": done,
        "finished": done == setting["iterations"] and not any(stops),
        "diverged": any(stops),
        "stops": stops,
        # J of the returned params (of the kept ones for a stopped seed)
        "final_cost": common.summarize(
            records.sweep_final_costs(
                result.run.final_cost, trained, stops, X, Y, activations
            )
        ),
        "iterations_to_level": {
            "level": setting["level"],
            "reached": f"{len(hits)}/{len(reached)}",
            "mean": float(np.mean(hits)) if hits else None,
            "std": float(np.std(hits)) if hits else None,
            "values": reached,
        },
        "train_accuracy": common.summarize(exact(train_acc, Y.shape[1])),
        "test_accuracy": common.summarize(exact(test_acc, Y_test.shape[1])),
        "finite": bool(all(np.isfinite(c).all() for c in kept)),
        "cost_curve": records.mean_curve(kept),
        "cost_curve_of": f"the mean over the {len(seeds)} seeds",
        "costs": cost_checkpoints(costs.mean(axis=0), max(1, costs.shape[1] // 20)),
        "seconds": time.perf_counter() - start,
    }
    return metrics, costs


def _pm(s: dict, scale: float = 1.0, digits: int = 3) -> str:
    if s["mean"] is None:
        return "none"
    return f"{scale * s['mean']:.{digits}f} +- {scale * s['std']:.{digits}f}"


def format_table(models: dict, settings: dict) -> str:
    lines = [
        "| data | hidden g | final cost J | iterations to J < level | "
        "train accuracy (%) | test accuracy (%) |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in models.items():
        dataset, hidden = name.split("/")
        reach = m["iterations_to_level"]
        level = f"{settings[dataset]['level']:g}"
        if reach["mean"] is None:
            to_level = f"never ({reach['reached']}, J < {level})"
        else:
            to_level = (
                f"{reach['mean']:.0f} +- {reach['std']:.0f} ({reach['reached']}, "
                f"J < {level})"
            )
        lines.append(
            f"| {dataset} | {hidden} | {_pm(m['final_cost'])} | {to_level} | "
            f"{_pm(m['train_accuracy'], 100, 1)} | {_pm(m['test_accuracy'], 100, 1)} |"
        )
    return "\n".join(lines)


def plot(path, curves: dict, settings: dict):
    """Cost curves per data set: median over seeds, interquartile band, log y."""
    plt = common.pyplot()
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.5))
    axes = np.atleast_1d(axes)
    for ax, dataset in zip(axes, names, strict=True):
        for hidden, costs in curves[dataset].items():
            x = np.arange(costs.shape[1])
            low, median, high = np.percentile(costs, [25, 50, 75], axis=0)
            line = ax.plot(x, median, lw=1.2, label=hidden)[0]
            ax.fill_between(x, low, high, alpha=0.15, color=line.get_color())
        s = settings[dataset]
        ax.axhline(s["level"], color="k", lw=0.8, ls=":")
        ax.set(yscale="log", xlabel="iteration", ylabel="cost J")
        ax.set_title(
            f"{dataset}: {s['layer_dims']}, {s['init']} init, alpha = "
            f"{s['learning_rate']:g}",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    common.save_figure(fig, path, dpi=110)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    dtype = common.set_dtype(args.dtype)
    settings = {}
    for dataset in args.datasets:
        s = dict(DATASETS[dataset])
        for flag in ("iterations", "learning_rate", "init"):
            if getattr(args, flag) is not None:
                s[flag] = getattr(args, flag)
        settings[dataset] = s
    loaded = {d: study_data.load(d, args.data, dtype) for d in args.datasets}
    run_dir = common.make_run_dir(args.out, NAME, args.overwrite)
    with common.RunStop() as stop:
        return run(args, settings, loaded, dtype, run_dir, stop, start)


def run(args, settings, loaded, dtype, run_dir, stop, start) -> dict:
    """Every activation on every data set, stopping cleanly on a signal: the
    finished ones are kept, the interrupted one is recorded as such."""
    models, curves = {}, {d: {} for d in args.datasets}
    todo = [(d, h) for d in args.datasets for h in args.activations]
    stop.phase = "training"
    for dataset, hidden in todo:
        if stop():
            break
        data, _ = loaded[dataset]
        metrics, costs = run_one(hidden, settings[dataset], data, args, dtype, stop)
        models[f"{dataset}/{hidden}"] = metrics
        curves[dataset][hidden] = costs
        print(
            f"{dataset:>6} {hidden:>10}: J = {_pm(metrics['final_cost'])}, "
            f"test accuracy {_pm(metrics['test_accuracy'], 100, 1)} % "
            f"({metrics['seconds']:.1f} s)"
            + ("" if metrics["finished"] else " (not finished)"),
            flush=True,
        )
    table = format_table(models, settings)
    seconds = time.perf_counter() - start
    print(
        f"\n{args.num_seeds} seeds each, mean +- std:\n{table}\n{seconds:.1f} s total"
    )
    metrics = {
        "config": {**vars(args), "settings": settings, **common.environment()},
        "dataset": {d: about for d, (_, about) in loaded.items()},
        "models": models,
        "not_run": [f"{d}/{h}" for d, h in todo if f"{d}/{h}" not in models],
        "table": table,
        "seconds": seconds,
    }
    if not args.no_plots and not stop():
        stop.phase = "plots"
        with stop.abortable():
            plot(run_dir / "activations.png", curves, settings)
            metrics["plots"] = ["activations.png"]
    return common.finish_run(run_dir, metrics, stop)


if __name__ == "__main__":
    common.run_cli(main)
