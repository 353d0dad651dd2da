"""Learning-rate comparison for logistic regression on the cat images, as one vmap.

Question: how does the learning rate alpha change what gradient descent

    w := w - alpha dw,    b := b - alpha db

reaches in a fixed budget of iterations? The course trains logistic regression
(w = 0, b = 0, 1500 iterations) with alpha = 0.01, 0.001 and 0.0001 and plots
the three cost curves.

Expected outcome (float64, the course's numbers): train accuracy 99.52153110047847
/ 88.99521531100478 / 68.42105263157895 %, test accuracy 68 / 64 / 36 %. The
largest alpha fits the training set almost perfectly (and overfits: test 68 %);
the smallest barely moves in 1500 steps.

All learning rates train at once: ``jaxnet.sweep.sweep`` vmaps the whole
1500-step scan over alpha, one compiled call (a few seconds on a laptop CPU, so
no progress bar is needed). ``--learning-rates`` takes any list.

    python -m experiments.learning_rates [--learning-rates 0.01,0.001,0.0001]
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, records
from jaxnet.params import init_params
from jaxnet.runner import cost_checkpoints, train_loop
from jaxnet.sweep import sweep

NAME = "learning_rates"
ACTIVATIONS = ("sigmoid",)
COURSE_LEARNING_RATES = "0.01,0.001,0.0001"


def build_parser():
    parser = cli.build_parser(
        "python -m experiments.learning_rates",
        "Logistic regression on the cat images, several learning rates trained at "
        "once (one vmapped run).",
        learning_rates=[0.01, 0.001, 0.0001], iterations=1500, print_every=100,
        dtype="float64", data=None, seed=0, resume=False,
    )  # fmt: skip
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="use a small random stand-in for the cat data (no download)",
    )
    return parser


def load_data(args, dtype):
    """(X_train, Y_train, X_test, Y_test) in the lecture's column layout."""
    if args.synthetic:
        from jaxnet.data.synthetic import two_blobs

        k_train, k_test = jax.random.split(jax.random.key(args.seed))
        X, Y = two_blobs(k_train, m=60, n_x=64)
        X_test, Y_test = two_blobs(k_test, m=20, n_x=64)
        return tuple(jnp.asarray(a, dtype) for a in (X, Y, X_test, Y_test))
    from jaxnet.data import load_catvnoncat

    data = load_catvnoncat(args.data)
    return tuple(
        jnp.asarray(a, dtype)
        for a in (data.X_train, data.Y_train, data.X_test, data.Y_test)
    )


def plot_costs(path, costs, learning_rates):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for c, lr in zip(costs, learning_rates, strict=True):
        ax.plot(np.arange(len(c)), c, label=f"alpha = {lr:g}")
    ax.set_xlabel("iterations")
    ax.set_ylabel("cost J")
    ax.set_title("Logistic regression, w = 0: cost for each learning rate")
    ax.legend()
    common.save_figure(fig, path, dpi=100)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    dtype = common.set_dtype(args.dtype)
    X, Y, X_test, Y_test = load_data(args, dtype)
    run_dir = common.make_run_dir(args.out, NAME, args.overwrite)
    with common.RunStop() as stop:
        return run(args, (X, Y, X_test, Y_test), run_dir, stop)


def train(args, data, stop) -> tuple:
    """All learning rates in one sweep, under ``jaxnet.stopping``'s rules.

    Returns (costs: one array per rate, train and test accuracy in % (N,),
    stops: per rate None or how it stopped, iterations done, final costs: J of
    each rate's returned params (N,)).
    """
    X, Y, X_test, Y_test = data
    # w = 0, b = 0: the engine's [n_x, 1] layer with a sigmoid is w^T X + b.
    params = init_params(jax.random.key(0), [X.shape[0], 1], "zeros", X.dtype)
    result = sweep(
        params, X, Y, activations=ACTIVATIONS, num_iterations=args.iterations,
        learning_rates=args.learning_rates, X_test=X_test, Y_test=Y_test,
        should_stop=stop, print_every=args.print_every or None,
    )  # fmt: skip

    def rerun(i, n):  # one rate alone, through the driver's stopping rules
        return train_loop(
            params, X, Y, activations=ACTIVATIONS, num_iterations=n,
            learning_rate=args.learning_rates[i], print_every=None, progress=False,
        )  # fmt: skip

    trained, costs, stops = common.apply_stopping_rules(
        result.params, result.costs, rerun
    )
    train_acc, test_acc = common.sweep_accuracies(
        result, trained, stops, data, ACTIVATIONS
    )
    return (
        costs,
        100 * np.asarray(train_acc),
        100 * np.asarray(test_acc),
        stops,
        result.run.iterations_done,
        records.sweep_final_costs(
            result.run.final_cost, trained, stops, X, Y, ACTIVATIONS
        ),
    )


def run(args, data, run_dir, stop) -> dict:
    """Train, print, plot and record, stopping cleanly on a signal (``stop``)."""
    X, _, X_test, _ = data
    metrics = {
        "config": {**{k: v for k, v in vars(args).items()}, **common.environment()},
        "dataset": {"name": "synthetic" if args.synthetic else "catvnoncat",
                    "train_size": int(X.shape[1]), "test_size": int(X_test.shape[1])},
        "models": {},
    }  # fmt: skip
    stop.phase = "training"
    costs, train_acc, test_acc, stops, done, finals = train(args, data, stop)
    print(f"{'learning rate':>14} {'train accuracy %':>20} {'test %':>8} {'cost':>10}")
    for i, lr in enumerate(args.learning_rates):
        final = float(finals[i])  # J of the returned params
        row = f"{lr:>14g} {float(train_acc[i])!r:>20} {test_acc[i]:>8.4g}"
        print(f"{row} {final if final is None else f'{final:>10.6f}'}")
        metrics["models"][f"alpha={lr:g}"] = {
            "learning_rate": lr,
            "iterations_done": done
            if stops[i] is None
            else stops[i]["iterations_done"],
            "finished": done == args.iterations and stops[i] is None,
            "stopped": stops[i],
            "train_accuracy": float(train_acc[i]),
            "test_accuracy": float(test_acc[i]),
            "final_cost": final,
            "costs": cost_checkpoints(costs[i], args.print_every),
            "cost_curve": records.cost_curve(costs[i]),
            "diverged": stops[i] is not None,
        }
    metrics["diverged"] = any(stops)
    if not args.no_plots and not stop():
        stop.phase = "plots"
        with stop.abortable():
            plot_costs(run_dir / "costs.png", costs, args.learning_rates)
            metrics["plots"] = ["costs.png"]
    return common.finish_run(run_dir, metrics, stop)


if __name__ == "__main__":
    common.run_cli(main)
