"""More hidden units bend the decision boundary: the course's hidden-size study.

Question: a network with one tanh hidden layer of n_h units and a sigmoid
output, [2, n_h, 1], learns the two-class planar "flower". How does the
boundary A[2](x) = 1/2 change with n_h = 1, 2, 3, 4, 5, 20, 50?

The course trains each size for 5000 iterations of gradient descent with
alpha = 1.2 from W = randn * 0.01, b = 0, and reports the train accuracy:
67.5, 67.25, 90.75, 90.5, 91.25, 90.0 and 90.25 %. With ``--course-init``
the run uses the course's own data (its generator's formula drawn from
numpy's legacy seeded stream, seed 1) and initialization
(``course_init_params``, seed 2), in float64; docs/planar.md compares the
numbers (5 of 7 equal; 20 and 50 units differ by 2 of 400 points).
Without it the flower is ``jaxnet.data.planar_flower`` (key 0) and each
size's W is drawn from its own jax key. Test accuracy is measured on 400
fresh flower points (``planar_flower``, key 1).

Expected: one or two units draw (nearly) straight boundaries (~67 %); from
three units on the boundary bends around the petals (~90 %); 20 and 50 units
fit the training points a little more closely, with no gain on fresh points.

    python -m experiments.planar
    python -m experiments.planar --course-init

float64 by default, as the course's numpy: at alpha = 1.2 two compiled programs
of the same float32 run (the grid's and the film's) drift apart by ~0.07 in W
after 5000 steps; in float64 they agree to ~1e-14.

The run folder (--out) gets metrics.json, boundaries.png (one panel per size,
train accuracy in each title) and boundary.gif: the boundary of one network
(--animate, 4 units by default) during training, from snapshots that the
compiled run takes itself (``jaxnet.decision.snapshot_trainer``).
"""

import os
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, records
from jaxnet.data import planar_flower
from jaxnet.decision import grid, snapshot_trainer
from jaxnet.deep import model_cost, predict_proba
from jaxnet.params import course_init_params, init_params
from jaxnet.runner import cost_checkpoints, train_loop

NAME = "planar"
HIDDEN_SIZES = [1, 2, 3, 4, 5, 20, 50]
# The course's published train accuracy (%) for each hidden size.
COURSE_ACCURACY = {1: 67.5, 2: 67.25, 3: 90.75, 4: 90.5, 5: 91.25, 20: 90.0, 50: 90.25}
COURSE_DATA_SEED, COURSE_INIT_SEED = 1, 2
TRAIN_KEY, TEST_KEY, M = 0, 1, 400
ACTIVATIONS = ("tanh", "sigmoid")
RESOLUTION = 200  # grid points per axis in boundaries.png
GIF_RESOLUTION = 100
GIF_DPI = 80


def build_parser():
    p = cli.build_parser(
        "python -m experiments.planar", __doc__,
        iterations=5000, learning_rate=1.2, seed=0, dtype="float64",
        print_every=0, resume=False,
    )  # fmt: skip
    p.add_argument(
        "--hidden-sizes",
        type=cli._list(_size, "hidden sizes"),
        default=list(HIDDEN_SIZES),
        help="hidden units n_h of each network (default: 1,2,3,4,5,20,50)",
    )
    p.add_argument(
        "--course-init",
        action="store_true",
        help="the course's data and numpy initialization (needs --dtype float64)",
    )
    p.add_argument(
        "--animate",
        type=cli._count("animate"),
        default=4,
        help="hidden units of the network whose training boundary.gif shows",
    )
    p.add_argument(
        "--frames",
        type=cli._count("frames"),
        default=30,
        help="snapshots in boundary.gif: iteration 0, then spread geometrically "
        "up to --iterations (fewer when they would repeat)",
    )
    return p


def _size(text: str) -> int:
    """A hidden size: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"hidden sizes must be positive integers; got {text!r}"
        ) from None
    if value < 1:
        raise ValueError(f"hidden sizes must be positive integers; got {value}")
    return value


def course_flower(dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The course's flower, drawn from numpy's legacy stream (seed 1).

    For class j = 0, 1 (200 points each, in order): angles t = linspace(3.12 j,
    3.12 (j + 1), 200) + 0.2 randn(200), radii r = 4 sin(4 t) + 0.2 randn(200),
    points (r sin t, r cos t). A private ``RandomState`` leaves numpy's global
    state alone.

    Returns:
        X (2, 400) and Y (1, 400) of 0 / 1.
    """
    rng = np.random.RandomState(COURSE_DATA_SEED)
    n = M // 2
    X, Y = np.zeros((2, M)), np.zeros((1, M))
    for j in range(2):
        t = np.linspace(3.12 * j, 3.12 * (j + 1), n) + 0.2 * rng.randn(n)
        r = 4.0 * np.sin(4.0 * t) + 0.2 * rng.randn(n)
        X[:, j * n : (j + 1) * n] = np.stack([r * np.sin(t), r * np.cos(t)])
        Y[:, j * n : (j + 1) * n] = j
    return X.astype(dtype), Y.astype(dtype)


def load(args, dtype) -> tuple[tuple, dict]:
    """(X, Y, X_test, Y_test), (2, m) and (1, m), and a description."""
    X_test, Y_test = planar_flower(jax.random.key(TEST_KEY), M)
    if args.course_init:
        X, Y = course_flower()
        about = {"source": "the course's flower (numpy seed 1)"}
    else:
        X, Y = planar_flower(jax.random.key(TRAIN_KEY), M)
        about = {"source": "jaxnet.data.planar_flower", "train_key": TRAIN_KEY}
    about["test"] = f"jaxnet.data.planar_flower, key {TEST_KEY}"
    arrays = tuple(jnp.asarray(a, dtype) for a in (X, Y, X_test, Y_test))
    about.update(train_size=M, test_size=M)
    return arrays, about


def initial_params(n_h: int, args, dtype):
    """[2, n_h, 1] with W = randn * 0.01, b = 0 (the course's, or jax's draw)."""
    dims = [2, n_h, 1]
    if args.course_init:
        return course_init_params(dims, COURSE_INIT_SEED, "0.01", dtype)
    return init_params(records.model_key(args.seed, f"n_h={n_h}"), dims, "small", dtype)


def percent(params, X, Y) -> tuple[float, dict]:
    """The accuracy in % and as exact counts; predictions are A[2] > 0.5."""
    probs = np.asarray(predict_proba(params, X, ACTIVATIONS))
    record = common.accuracy_record(
        common.count_correct(probs > 0.5, np.asarray(Y) > 0.5), Y.shape[1]
    )
    return 100 * record["accuracy"], record


def train_size(n_h, args, data, dtype, stop) -> tuple[dict, object]:
    """Train [2, n_h, 1]; its metrics and trained params."""
    X, Y, X_test, Y_test = data
    start = time.perf_counter()
    result = train_loop(
        initial_params(n_h, args, dtype), X, Y, activations=ACTIVATIONS,
        num_iterations=args.iterations, learning_rate=args.learning_rate,
        print_every=args.print_every or None, progress=cli.show_progress(args),
        desc=f"n_h = {n_h}", should_stop=stop,
    )  # fmt: skip
    train_pct, train = percent(result.params, X, Y)
    _, test = percent(result.params, X_test, Y_test)
    metrics = {
        "hidden_units": n_h,
        "layer_dims": [2, n_h, 1],
        "iterations_done": result.iterations_done,
        "finished": result.stop_reason is None,
        "diverged": result.diverged,
        "stop_reason": result.stop_reason,
        "final_cost": result.final_cost,
        "train_accuracy": train["accuracy"],
        "test_accuracy": test["accuracy"],
        "train": train,
        "test": test,
        "costs": cost_checkpoints(result.costs, max(1, args.iterations // 20)),
        "cost_curve": records.cost_curve(result.costs),
        "seconds": time.perf_counter() - start,
    }
    if args.course_init:
        metrics["course_train_accuracy"] = COURSE_ACCURACY.get(n_h)
    return metrics, result.params


def film_iterations(num_iterations: int, frames: int) -> np.ndarray:
    """The GIF's snapshot iterations: 0, then ``frames - 1`` spread
    geometrically from min(10, n) to n (the boundary moves most early on);
    fewer when n is too small to give distinct ones."""
    n = num_iterations
    later = np.geomspace(min(10, n), n, max(1, frames - 1))
    return np.unique(np.concatenate([[0], np.round(later).astype(np.int64)]))


def in_background(fn, *args):
    """fn(*args) in a helper thread, the main thread waiting in short joins, so
    a Ctrl-C (``RunStop.abortable``) is handled at once even while one long
    compiled call runs; the abandoned call ends with the process."""
    box: dict = {}

    def work():
        try:
            box["out"] = jax.block_until_ready(fn(*args))
        except BaseException as e:  # noqa: BLE001 (re-raised in the main thread)
            box["error"] = e

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.02)
    if "error" in box:
        raise box["error"]
    return box["out"]


def animate_run(args, data, dtype) -> dict:
    """The --animate network trained by ``snapshot_trainer``: its output on
    the GIF's grid and on the training points at ``film_iterations``, taken
    inside one compiled run."""
    X, Y, _, _ = data
    its = film_iterations(args.iterations, args.frames)
    g = grid(X, GIF_RESOLUTION, margin=1.0)
    points = jnp.concatenate([g.points, X], axis=1)  # grid, then the examples
    run = jax.jit(
        snapshot_trainer(
            ACTIVATIONS, args.iterations, its, learning_rate=args.learning_rate
        )
    )
    out = in_background(run, initial_params(args.animate, args, dtype), X, Y, points)
    snaps = np.asarray(out.snapshots)[:, 0, :]  # (S, p)
    p = g.points.shape[1]
    labels = np.asarray(Y)[0] > 0.5
    # J of the params after i updates is the cost before update i; after
    # the last update, one more forward pass.
    costs = np.append(
        np.asarray(out.costs), float(model_cost(out.params, X, Y, ACTIVATIONS))
    )
    return {
        "grid": g,
        "probs": snaps[:, :p],
        "iterations": its,
        "train_accuracy": [
            100 * float(np.mean((s[p:] > 0.5) == labels)) for s in snaps
        ],
        "cost": [float(costs[i]) for i in its],
        "params": out.params,
    }


def _draw(ax, g, probs, X, Y, title: str) -> None:
    """One panel: the two regions (A[2] > 0.5 blue), the boundary, the data."""
    r = g.x.shape[0]
    values = np.asarray(probs).reshape(r, r)
    x, y = np.asarray(g.x), np.asarray(g.y)
    ax.contourf(x, y, values, levels=[0.0, 0.5, 1.0], colors=["#f4c7c3", "#c6dbef"])
    ax.contour(x, y, values, levels=[0.5], colors="k", linewidths=0.8)
    labels = np.asarray(Y)[0] > 0.5
    X = np.asarray(X)
    ax.scatter(X[0, ~labels], X[1, ~labels], s=5, c="#d62728", lw=0)
    ax.scatter(X[0, labels], X[1, labels], s=5, c="#1f77b4", lw=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_grid(path, models: dict, trained: dict, data, curves: dict) -> None:
    """One decision-boundary panel per hidden size, train accuracy in the
    title; the last panel holds the cost curves."""
    X, Y, _, _ = data
    plt = common.pyplot()
    g = grid(X, RESOLUTION, margin=1.0)
    n = len(models) + 1
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.1 * rows))
    axes = np.atleast_1d(axes).reshape(-1)
    for ax, (n_h, m) in zip(axes, models.items(), strict=False):
        probs = predict_proba(trained[n_h], g.points, ACTIVATIONS)
        title = f"n_h = {n_h}: train {100 * m['train_accuracy']:.2f} %"
        _draw(ax, g, probs, X, Y, title)
    ax = axes[len(models)]
    for n_h, costs in curves.items():
        ax.plot(np.arange(len(costs)), costs, lw=1, label=f"n_h = {n_h}")
    ax.set(yscale="log", xlabel="iteration", ylabel="cost J")
    ax.set_title("cost", fontsize=9)
    ax.legend(fontsize=6)
    for ax in axes[len(models) + 1 :]:
        ax.axis("off")
    common.save_figure(fig, path, dpi=80)


def write_gif(path: Path, film: dict, data, n_h: int) -> int:
    """boundary.gif from the snapshots (matplotlib's Pillow writer), written
    to a temporary file and renamed; returns the number of frames."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    X, Y, _, _ = data
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    count = len(film["probs"])

    def frame(i):
        ax.clear()
        title = (
            f"n_h = {n_h}, iteration {film['iterations'][i]}, "
            f"J = {film['cost'][i]:.3f}\n"
            f"train {film['train_accuracy'][i]:.2f} %"
        )
        _draw(ax, film["grid"], film["probs"][i], X, Y, title)
        return []

    frame(0)
    fig.tight_layout()  # with the two-line title in place
    animation = FuncAnimation(fig, frame, frames=count, blit=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.gif")
    try:
        animation.save(tmp, writer=PillowWriter(fps=5), dpi=GIF_DPI)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise common.RunFolderError(common.os_error_message(e, path, "write")) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return count


def format_table(models: dict, course: bool) -> str:
    head = "| n_h | final J | train acc (%) | test acc (%) |"
    rule = "|---|---|---|---|"
    if course:
        head += " course train acc (%) |"
        rule += "---|"
    lines = [head, rule]
    for n_h, m in models.items():
        final = "-" if m["final_cost"] is None else f"{m['final_cost']:.4f}"
        row = (
            f"| {n_h} | {final} | {100 * m['train_accuracy']:.2f} | "
            f"{100 * m['test_accuracy']:.2f} |"
        )
        if course:
            ref = m.get("course_train_accuracy")
            row += f" {'-' if ref is None else f'{ref:g}'} |"
        lines.append(row)
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.course_init and args.dtype != "float64":
        parser.error(
            "--course-init reproduces the course only in float64: add --dtype float64"
        )
    start = time.perf_counter()
    dtype = common.set_dtype(args.dtype)
    data, about = load(args, dtype)
    run_dir = common.make_run_dir(args.out, NAME, args.overwrite)
    with common.RunStop() as stop:
        return run(args, data, about, dtype, run_dir, stop, start)


def run(args, data, about, dtype, run_dir, stop, start) -> dict:
    """Every hidden size, then the film; stopping cleanly on a signal."""
    models, trained, curves = {}, {}, {}
    stop.phase = "training"
    for n_h in args.hidden_sizes:
        if stop():
            break
        m, params = train_size(n_h, args, data, dtype, stop)
        models[n_h], trained[n_h] = m, params
        curves[n_h] = np.asarray(records.curve_points(m["cost_curve"])[1])
        print(
            f"n_h = {n_h:>3}: J = {m['final_cost']:.4f}, train "
            f"{100 * m['train_accuracy']:.2f} %, test "
            f"{100 * m['test_accuracy']:.2f} % ({m['seconds']:.1f} s)",
            flush=True,
        )
    table = format_table(models, args.course_init)
    print(f"\n{table}")
    metrics = {
        "config": {**vars(args), **common.environment()},
        "dataset": about,
        "models": {f"n_h={n}": m for n, m in models.items()},
        "table": table,
    }
    film = None
    if not stop():
        stop.phase = "animation"
        with stop.abortable():
            film = animate_run(args, data, dtype)
            metrics["animation"] = {
                "hidden_units": args.animate,
                "iterations": film["iterations"].tolist(),
                "train_accuracy": film["train_accuracy"],
                "cost": film["cost"],
            }
            if args.animate in trained:  # the same run as the grid's panel
                same = jax.tree.map(
                    lambda a, b: float(jnp.max(jnp.abs(a - b))),
                    film["params"], trained[args.animate],
                )  # fmt: skip
                diff = max(jax.tree.leaves(same))
                metrics["animation"]["max_param_difference_vs_grid"] = diff
    if not args.no_plots and not stop():
        stop.phase = "plots"
        with stop.abortable():
            plots = []
            if models:
                plot_grid(run_dir / "boundaries.png", models, trained, data, curves)
                plots.append("boundaries.png")
            if film is not None:
                frames = write_gif(run_dir / "boundary.gif", film, data, args.animate)
                metrics["animation"]["frames"] = frames
                plots.append("boundary.gif")
            metrics["plots"] = plots
    metrics["seconds"] = time.perf_counter() - start
    print(f"{metrics['seconds']:.1f} s total")
    return common.finish_run(run_dir, metrics, stop)


if __name__ == "__main__":
    common.run_cli(main)
