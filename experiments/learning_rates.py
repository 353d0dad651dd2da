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
from jaxnet.runner import cost_checkpoints
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
    n_x = X.shape[0]
    # w = 0, b = 0: the engine's [n_x, 1] layer with a sigmoid is w^T X + b.
    params = init_params(jax.random.key(0), [n_x, 1], "zeros", dtype)
    result = sweep(
        params,
        X,
        Y,
        activations=ACTIVATIONS,
        num_iterations=args.iterations,
        learning_rates=args.learning_rates,
        X_test=X_test,
        Y_test=Y_test,
    )
    costs = np.asarray(result.costs)
    final = np.asarray(result.run.final_cost)  # J of the returned params
    train_acc = 100 * np.asarray(result.train_accuracy)
    test_acc = 100 * np.asarray(result.test_accuracy)

    print(f"{'learning rate':>14} {'train accuracy %':>20} {'test %':>8} {'cost':>10}")
    runs = []
    for i, lr in enumerate(args.learning_rates):
        row = f"{lr:>14g} {float(train_acc[i])!r:>20} {test_acc[i]:>8.4g}"
        print(f"{row} {final[i]:>10.6f}")
        runs.append(
            {
                "learning_rate": lr,
                "train_accuracy": float(train_acc[i]),
                "test_accuracy": float(test_acc[i]),
                "final_cost": float(final[i]),
                "costs": cost_checkpoints(costs[i], args.print_every),
                "cost_curve": records.cost_curve(costs[i]),
                "diverged": not bool(np.isfinite(costs[i]).all()),
            }
        )
    metrics = {
        "config": {**{k: v for k, v in vars(args).items()}, **common.environment()},
        "dataset": {"name": "synthetic" if args.synthetic else "catvnoncat",
                    "train_size": int(X.shape[1]), "test_size": int(X_test.shape[1])},
        "models": {f"alpha={r['learning_rate']:g}": r for r in runs},
    }  # fmt: skip
    if not args.no_plots:
        plot_costs(run_dir / "costs.png", costs, args.learning_rates)
    return common.finish_run(run_dir, metrics)


if __name__ == "__main__":
    common.run_cli(main)
