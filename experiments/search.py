"""Hyperparameter search: many candidates as compiled, vmapped runs, chosen on dev.

Question: the lecture's hyperparameters "are established by the developer of
the model" through the loop of idea, code and experiment. Given a budget, which
learning rate, lambd, keep_prob (digits) or learning rate, lambd, width (Auto
MPG) should the network use, chosen honestly: on examples carved from the
training data (a dev split, or k-fold cross-validation), the test set scored
once, for the chosen configuration only?

    python -m experiments.search --dataset digits     # 128 candidates, halving
    python -m experiments.search --dataset autompg    # 5-fold, 32 candidates

Digits (the 8000 training digits of ``experiments.digits``, its 2000 held-out
as test): [784, 64, 10] relu/softmax, Adam, batches of 128, 128 random
candidates over learning rate (log 1e-4..3e-2), lambd (log 1e-3..10) and
keep_prob (0.5..1), a 20 % stratified dev split, successive halving with eta 2
from 1 epoch to 8. Auto MPG (``jaxnet.data.load_autompg``'s split): [9, w, w, 1]
relu/linear, Adam, full batch, b[L] starting at mean(y) as in
``experiments.regression``, 32 candidates over learning rate (log
1e-4..3e-2), lambd (log 1e-2..30) and width w in {8, 16, 32, 64}, 5-fold
cross-validation, halving with eta 2 from 250 to 2000 iterations. Measured
answers are in docs/search.md.

The chosen configuration is trained again with ``jaxnet.train.fit`` on its
split (the dev split's training part: the numbers of the search, checked; with
k folds, all the training data) and scored once on the test set.

Ctrl-C stops within about a second; ``--resume RUN_DIR`` continues from the
last completed rung (the rung that was running is trained again, to the same
numbers). The run folder gets metrics.json (the ranked table, every
candidate, the split, the rungs, the test score), search.png (dev cost
against each searched hyperparameter) and search.npz (the checkpoint).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common
from jaxnet.labels import one_hot
from jaxnet.params import init_params
from jaxnet.search import (
    Choice,
    LogUniform,
    Uniform,
    candidate_keys,
    check_space,
    dev_split,
    fit_settings,
    is_log,
    kfold,
    load_checkpoint,
    save_checkpoint,
    schedule,
    search,
)
from jaxnet.search.run import MAX_MODELS
from jaxnet.train import fit, predict

NAME = "search"
CHECKPOINT = "search.npz"
DATASETS = ("digits", "autompg")
RUN_FLAGS = (
    "dataset", "seed", "iterations", "candidates", "eta", "min_iterations",
    "folds", "dev_fraction", "train_size", "dtype", "max_models",
)  # fmt: skip
# Per dataset: the network, the fixed settings, the space and the budget.
DEFAULTS = {
    "digits": dict(
        layer_dims=[784, 64, 10], output="softmax", optimizer="adam",
        batch_size=128, iterations=8, candidates=128, eta=2.0, min_iterations=1,
        folds=None, space={
            "learning_rate": LogUniform(1e-4, 3e-2),
            "lambd": LogUniform(1e-3, 10.0),
            "keep_prob": Uniform(0.5, 1.0),
        },
    ),
    "autompg": dict(
        layer_dims=[9, 32, 32, 1], output="linear", optimizer="adam",
        batch_size=None, iterations=2000, candidates=32, eta=2.0,
        min_iterations=250, folds=5, space={
            "learning_rate": LogUniform(1e-4, 3e-2),
            "lambd": LogUniform(1e-2, 30.0),
            "width": Choice((8, 16, 32, 64)),
        },
    ),
}  # fmt: skip


def build_parser():
    p = cli.build_parser(
        "python -m experiments.search", __doc__, seed=0, dtype="float32", data=None,
        unset={},
    )  # fmt: skip
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits (dev split) or autompg (k-fold) (default: digits)",
    )
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="a full run's length R: epochs (digits) or iterations "
        "(autompg) (default: 8 / 2000)",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="random candidates (default: 128 / 32)",
    )
    p.add_argument(
        "--eta",
        type=float,
        default=None,
        help="halving keeps the best 1/eta per rung; 0: no halving (default: 2)",
    )
    p.add_argument(
        "--min-iterations",
        type=int,
        default=None,
        help="the first rung's length (default: 1 / 250)",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=None,
        help="k-fold cross-validation; 0: a dev split (default: 0 / 5)",
    )
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=0.2,
        help="share of each class held out as dev (default: 0.2)",
    )
    p.add_argument(
        "--max-models",
        type=int,
        default=MAX_MODELS,
        help="models (folds x candidates) per vmapped program; larger groups run "
        f"in batches of this size (default: {MAX_MODELS})",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="use only the first N training examples (smoke tests)",
    )
    return p  # fmt: skip


def _settings(args) -> dict:
    d = dict(DEFAULTS[args.dataset])
    for flag, key in (("iterations", "iterations"), ("candidates", "candidates"),
                      ("eta", "eta"), ("min_iterations", "min_iterations"),
                      ("folds", "folds")):  # fmt: skip
        value = getattr(args, flag)
        if value is not None:
            d[key] = value
    d["eta"] = d["eta"] or None  # 0: no halving
    d["folds"] = d["folds"] or None  # 0: a dev split
    return d


def load(args, dtype):
    """(X_train, Y_train, X_test, Y_test, dataset record, init_fn)."""
    if args.dataset == "digits":
        from experiments.digits import NUM_CLASSES, NUM_TRAIN, SPLIT_SEED
        from jaxnet.data import load_mnist_t10k, split_digits

        images, labels = load_mnist_t10k(args.data)
        X, y, X_test, y_test = split_digits(
            images, labels, jax.random.key(SPLIT_SEED), n_train=NUM_TRAIN
        )
        X, y = X[:, : args.train_size], y[: args.train_size]
        Y, Y_test = (one_hot(v, NUM_CLASSES, dtype=dtype) for v in (y, y_test))
        record = {
            "name": "mnist_t10k",
            "num_train": int(X.shape[1]),
            "num_test": int(X_test.shape[1]),
            "split_seed": SPLIT_SEED,
        }
        return X.astype(dtype), Y, X_test.astype(dtype), Y_test, record, None
    from jaxnet.data import load_autompg

    data = load_autompg(args.data)
    X, Y = data.X_train[:, : args.train_size], data.Y_train[:, : args.train_size]
    mean_y = float(np.mean(Y))

    def init_fn(key, dims):  # b[L] = mean(y), as experiments.regression
        params = init_params(key, dims, "he", dtype)
        params[-1]["b"] = params[-1]["b"] + mean_y
        return params

    record = {"name": "autompg", "train_size": int(X.shape[1]),
              "test_size": int(data.X_test.shape[1]), **data.report}  # fmt: skip
    return X, Y, data.X_test, data.Y_test, record, init_fn


def check_args(parser, args, d):
    """Usage errors for this study's own flags, before any data is read."""
    for flag in ("iterations", "candidates", "min_iterations", "train_size",
                 "max_models"):  # fmt: skip
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1; got {value}")
    if args.folds is not None and args.folds < 0:
        parser.error(f"--folds must be 0 (a dev split) or >= 2; got {args.folds}")
    if args.eta is not None and args.eta != 0 and not args.eta > 1:
        parser.error(f"--eta must be > 1 (or 0: no halving); got {args.eta}")
    try:
        schedule(d["candidates"], d["eta"], d["min_iterations"], d["iterations"])
    except ValueError as e:
        parser.error(str(e))


def check_split(parser, args, d, Y) -> None:
    """--folds and --dev-fraction against the data (the search's own checks)."""
    if d["output"] == "softmax":
        strata = np.argmax(np.asarray(Y), axis=0)
    else:
        strata = np.zeros(Y.shape[1], np.int64)
    try:
        if d["folds"] is None:
            dev_split(strata, args.dev_fraction, args.seed)
        else:
            kfold(strata, d["folds"], args.seed)
    except ValueError as e:
        flag = "--dev-fraction" if d["folds"] is None else "--folds"
        parser.error(f"{flag}: {e}")


def table(result, metric: str) -> str:
    """The candidates ranked by dev cost, as markdown (first 10 rows)."""
    names = list(result.candidates[0]["values"])
    head = ["rank", "id", *names, "iterations", "dev cost", metric.replace("_", " ")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, i in enumerate(result.ranking[:10], 1):
        c = result.candidates[i]
        values = [_show(c["values"][n]) for n in names]
        cost = "diverged" if c["diverged"] else f"{c['dev_cost']:.4f}"
        row = [str(rank), str(i), *values, str(c["iterations_done"]), cost,
               f"{c.get(metric, float('nan')):.4f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _show(v) -> str:
    if isinstance(v, list | tuple):  # a width
        return "x".join(map(str, v))
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def plot(path, result, space):
    """Dev cost against each searched hyperparameter; log axes for log ranges;
    colour: how far the candidate got (rung)."""
    plt = common.pyplot()
    space = check_space(space)  # choices as the candidates hold them
    names = list(space)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8))
    axes = np.atleast_1d(axes)
    kept = [c for c in result.candidates if c["dev_cost"] is not None]
    reach = np.array([c["iterations_done"] for c in kept])
    cost = np.array([c["dev_cost"] for c in kept])
    for ax, name in zip(axes, names, strict=True):
        values = [c["values"][name] for c in kept]
        if not isinstance(space[name], Choice):
            x = np.asarray(values, float)
        else:
            order = [_show(v) for v in space[name].values]
            x = np.array([order.index(_show(v)) for v in values], float)
            ax.set_xticks(range(len(order)), order)
        points = ax.scatter(x, cost, c=np.log2(reach), cmap="viridis", s=14)
        if is_log(space[name]):
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel="dev cost J", yscale="log")
    best = result.candidates[result.best]
    fig.suptitle(f"dev cost of {len(result.candidates)} candidates (colour: log2 "
                 f"iterations reached); best id {best['id']}", fontsize=10)  # fmt: skip
    fig.colorbar(points, ax=axes[-1])
    common.save_figure(fig, path, dpi=110)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.apply_resume(parser, args, RUN_FLAGS)
    d = _settings(args)
    check_args(parser, args, d)
    start = time.perf_counter()
    dtype = common.set_dtype(args.dtype)
    X, Y, X_test, Y_test, dataset, init_fn = load(args, dtype)
    check_split(parser, args, d, Y)  # a usage error, before any run folder
    run_dir = common.make_run_dir(args.out, NAME, args.overwrite,
                                  resume=bool(args.resume))  # fmt: skip
    ckpt_path = run_dir / CHECKPOINT
    resumed = load_checkpoint(ckpt_path) if args.resume and ckpt_path.exists() else None
    flags = {k: getattr(args, k) for k in RUN_FLAGS}
    config = {"flags": flags, **common.environment(),
              "space": {k: [type(v).__name__, *v] for k, v in d["space"].items()},
              "layer_dims": d["layer_dims"], "optimizer": d["optimizer"],
              "batch_size": d["batch_size"]}  # fmt: skip
    metrics: dict = {"config": config, "dataset": dataset, "models": {}}
    common.write_json(run_dir / "metrics.json", metrics)  # resumable from now on
    with common.RunStop() as stop:
        stop.phase = "training"

        def on_rung(checkpoint, rung):
            save_checkpoint(ckpt_path, checkpoint)
            print(f"rung {rung['rung']}: {rung['candidates']} candidates to "
                  f"{rung['until']}, {rung['seconds']:.1f} s "
                  f"({rung['compile_seconds']:.1f} s compiling)")  # fmt: skip

        result = search(
            d["space"], X, Y, layer_dims=d["layer_dims"], output=d["output"],
            num_iterations=d["iterations"], num_candidates=d["candidates"],
            seed=args.seed, init_fn=init_fn, dev_fraction=args.dev_fraction,
            folds=d["folds"], eta=d["eta"], min_iterations=d["min_iterations"],
            dtype=dtype, max_models=args.max_models, should_stop=stop,
            on_rung=on_rung,
            progress=cli.show_progress(args), start=resumed,
            optimizer=d["optimizer"], batch_size=d["batch_size"],
        )  # fmt: skip
        search_seconds = time.perf_counter() - start
        metric = "dev_accuracy" if d["output"] == "softmax" else "dev_mae"
        metrics["search"] = {
            "split": result.split.record(),
            "rungs": result.rungs,
            "candidates": result.candidates,
            "ranking": result.ranking,
            "table": table(result, metric),
            "seconds": search_seconds,
            "note": "candidates scored on dev only; the test set is scored once, "
            "for the chosen configuration",
        }
        if result.interrupted:
            return common.finish_run(run_dir, metrics, stop, NAME)
        print("\n" + metrics["search"]["table"] + "\n")
        stop.phase = "evaluation"
        with stop.abortable():
            metrics["models"]["chosen"] = evaluate(
                result, X, Y, X_test, Y_test, init_fn, dtype, d
            )
        if not args.no_plots and not stop():
            stop.phase = "plots"
            with stop.abortable():
                plot(run_dir / "search.png", result, d["space"])
                metrics["plots"] = ["search.png"]
    metrics["seconds"] = time.perf_counter() - start
    return common.finish_run(run_dir, metrics, stop, NAME)


def evaluate(result, X, Y, X_test, Y_test, init_fn, dtype, d) -> dict:
    """Train the chosen configuration on its split with ``fit``, score it once
    on the test set."""
    best = result.candidates[result.best]
    dims, acts, options = fit_settings(result.settings, best)
    key_init, key_train = candidate_keys(result.settings["seed"], best["id"])
    params = init_fn(key_init, dims) if init_fn else init_params(
        key_init, dims, "he", dtype)  # fmt: skip
    columns = result.split.train[0] if result.split.kind == "dev" else slice(None)
    start = time.perf_counter()
    trained, costs = fit(
        params, X[:, columns], Y[:, columns], activations=acts,
        num_iterations=d["iterations"], key=key_train, **options,
    )  # fmt: skip
    record = {
        "id": best["id"], "values": best["values"], "layer_dims": dims,
        "activations": list(acts), "trained_on": (
            "the dev split's training part" if result.split.kind == "dev"
            else "all the training data (every fold)"),
        "iterations": d["iterations"], "dev_cost": best["dev_cost"],
        "final_cost": float(costs[-1]), "diverged": bool(best["diverged"]),
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
    if result.best_params is not None:  # the search's own run of it
        pairs = zip(jax.tree.leaves(trained), jax.tree.leaves(result.best_params),
                    strict=True)  # fmt: skip
        record["retrain_relative_difference"] = max(
            float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in pairs
        )  # max |fit - search| / max |search| over the leaves
    pred = predict(trained, jnp.asarray(X_test, dtype), acts)
    if d["output"] == "softmax":
        labels = np.argmax(np.asarray(Y_test), axis=0)
        correct = common.count_correct(np.asarray(pred), labels)
        record["test"] = common.accuracy_record(correct, len(labels))
        record["test_accuracy"] = record["test"]["accuracy"]
        record["dev_accuracy"] = best.get("dev_accuracy")
        print(f"chosen {best['values']}: dev accuracy "
              f"{100 * best['dev_accuracy']:.2f} %, test accuracy "
              f"{100 * record['test_accuracy']:.2f} % (scored once)")  # fmt: skip
    else:
        err = np.asarray(pred) - np.asarray(Y_test)
        record["test_mae"] = float(np.mean(np.abs(err)))
        record["test_rmse"] = float(np.sqrt(np.mean(err**2)))
        record["dev_mae"] = best.get("dev_mae")
        print(f"chosen {best['values']}: dev MAE {best['dev_mae']:.3f}, test MAE "
              f"{record['test_mae']:.3f} mpg (scored once)")  # fmt: skip
    return record


if __name__ == "__main__":
    common.run_cli(main)
