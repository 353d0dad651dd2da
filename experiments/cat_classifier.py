"""Cat or not cat? The lecture's running example, with the course's three models.

Question: how well do logistic regression, the two-layer network and the
L-layer network [12288, 20, 7, 5, 1] tell cats from non-cats on 64x64x3 images?

Expected (the course's published results, reproduced exactly with
``--course-init --dtype float64``): logistic regression 99.04 % train / 70 % test,
two-layer 100 % / 72 %, L-layer 98.56 % / 80 %. Depth helps on the test set.

    python -m experiments.cat_classifier                       # all three models
    python -m experiments.cat_classifier --model deep --course-init --dtype float64
    python -m experiments.cat_classifier --predict my_cat.jpg --checkpoint RUN/deep.npz

The run folder (--out) gets metrics.json, costs.png, misclassified.png and one
checkpoint per model (numpy .npz, see jaxnet.checkpoint), rewritten atomically
after every --print-every iterations, so an interrupted or diverging run keeps
its last good parameters.
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import (
    finish_run,
    make_run_dir,
    parse_int_list,
    pyplot,
    set_dtype,
    write_json,
)
from jaxnet.checkpoint import load_checkpoint, save_checkpoint
from jaxnet.data import load_catvnoncat
from jaxnet.deep import predict_proba
from jaxnet.optimizers import build_optimizer
from jaxnet.params import course_init_params, init_params
from jaxnet.runner import cost_checkpoints, train_loop
from jaxnet.train import accuracy

# The course's hyperparameters for each model.
MODELS = {
    "logistic": dict(
        layer_dims=[12288, 1],
        hidden=None,
        learning_rate=0.005,
        iterations=2000,
        init="zeros",
        course_scale=None,
    ),
    "two_layer": dict(
        layer_dims=[12288, 7, 1],
        hidden="relu",
        learning_rate=0.0075,
        iterations=2500,
        init="small",
        course_scale="0.01",
    ),
    "deep": dict(
        layer_dims=[12288, 20, 7, 5, 1],
        hidden="relu",
        learning_rate=0.0075,
        iterations=2500,
        init="lecun",
        course_scale="sqrt",
    ),
}
IMAGE_SIZE = 64


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.cat_classifier",
        description="Train the course cat / non-cat classifiers, or classify an image.",
    )
    p.add_argument("--model", choices=[*MODELS, "all"], default="all")
    p.add_argument(
        "--grad",
        choices=["manual", "autodiff"],
        default="manual",
        help="hand-written backward pass or jax.grad",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--iterations",
        "--num-iterations",
        dest="iterations",
        type=int,
        help="iterations (epochs with --batch-size); default: the course's",
    )
    p.add_argument("--learning-rate", type=float, help="default: the course's")
    p.add_argument(
        "--layer-dims",
        type=parse_int_list,
        help="e.g. 12288,20,7,5,1 (the deep model's sizes)",
    )
    p.add_argument("--hidden", default=None, help="hidden activation (default relu)")
    p.add_argument(
        "--init",
        choices=["small", "zeros", "lecun", "xavier", "he"],
        help="initialization (default: the course's scheme per model)",
    )
    p.add_argument(
        "--course-init",
        action="store_true",
        help="the notebooks' exact numpy initialization (np.random.seed)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed (default 0; 1 with --course-init, as the course)",
    )
    p.add_argument(
        "--optimizer", choices=["gd", "momentum", "adam", "rmsprop"], default="gd"
    )
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="minibatch size (default: full batch, as the lecture)",
    )
    p.add_argument("--l2", type=float, default=0.0, help="L2 strength lambda")
    p.add_argument(
        "--keep-prob",
        type=float,
        default=1.0,
        help="dropout keep probability for hidden layers (1 = off)",
    )
    p.add_argument("--print-every", type=int, default=100)
    p.add_argument("--data", default=None, help="folder holding the two .h5 files")
    p.add_argument(
        "--out", default=None, help="run folder (default runs/cat_classifier-<time>)"
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--predict", metavar="IMAGE", help="classify this PNG/JPEG image")
    p.add_argument("--checkpoint", metavar="PATH", help="checkpoint for --predict")
    return p


def model_config(name: str, args) -> dict:
    """The course's settings for ``name``, overridden by the flags given."""
    cfg = dict(MODELS[name])
    if name == "deep" and args.layer_dims:
        cfg["layer_dims"] = list(args.layer_dims)
    cfg["hidden"] = args.hidden or cfg["hidden"]
    cfg["learning_rate"] = args.learning_rate or cfg["learning_rate"]
    cfg["iterations"] = args.iterations or cfg["iterations"]
    cfg["init"] = args.init or cfg["init"]
    L = len(cfg["layer_dims"]) - 1
    cfg["activations"] = [cfg["hidden"]] * (L - 1) + ["sigmoid"]
    return cfg


def initial_params(cfg: dict, args, dtype, key):
    if args.course_init and cfg["course_scale"] is not None:
        seed = 1 if args.seed is None else args.seed
        return course_init_params(cfg["layer_dims"], seed, cfg["course_scale"], dtype)
    # Logistic regression starts from zeros in the course, with or without it.
    method = "zeros" if args.course_init else cfg["init"]
    return init_params(key, cfg["layer_dims"], method=method, dtype=dtype)


def train_one(name, cfg, data, args, dtype, key, run_dir) -> tuple[dict, list]:
    X_train, Y_train = (
        jnp.asarray(data.X_train, dtype),
        jnp.asarray(data.Y_train, dtype),
    )
    X_test, Y_test = jnp.asarray(data.X_test, dtype), jnp.asarray(data.Y_test, dtype)
    init_key, run_key = jax.random.split(key)
    params = initial_params(cfg, args, dtype, init_key)
    ckpt_path = run_dir / f"{name}.npz"

    def save(params, iterations_done):
        save_checkpoint(
            ckpt_path,
            params,
            layer_dims=cfg["layer_dims"],
            activations=cfg["activations"],
            metadata={
                "model": name,
                "iterations_done": iterations_done,
                "classes": list(data.classes),
                "image_size": IMAGE_SIZE,
            },
        )

    print(
        f"\n== {name}: layer_dims {cfg['layer_dims']}, {cfg['iterations']} iterations, "
        f"learning rate {cfg['learning_rate']}"
    )
    result = train_loop(
        params,
        X_train,
        Y_train,
        activations=cfg["activations"],
        num_iterations=cfg["iterations"],
        optimizer=build_optimizer(args.optimizer, cfg["learning_rate"], args.momentum),
        grad=args.grad,
        lambd=args.l2,
        keep_prob=args.keep_prob,
        batch_size=args.batch_size,
        key=run_key,
        print_every=args.print_every,
        unit="epoch" if args.batch_size else "iteration",
        progress=not args.no_progress,
        desc=name,
        on_chunk=lambda state, done: save(state.params, done),
    )
    if result.iterations_done == 0:
        save(result.params, 0)
    acts = cfg["activations"]
    probs = np.asarray(predict_proba(result.params, X_test, acts))[0]
    metrics = {
        "layer_dims": cfg["layer_dims"],
        "activations": acts,
        "iterations": cfg["iterations"],
        "iterations_done": result.iterations_done,
        "learning_rate": cfg["learning_rate"],
        "costs": cost_checkpoints(result.costs, args.print_every),
        "final_cost": float(result.costs[-1]) if len(result.costs) else None,
        "train_accuracy": float(accuracy(result.params, X_train, Y_train, acts)),
        "test_accuracy": float(accuracy(result.params, X_test, Y_test, acts)),
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "checkpoint": str(ckpt_path),
        "diverged": result.diverged,
        "interrupted": result.interrupted,
    }
    return metrics, {"costs": result.costs, "test_probs": probs}


def print_table(models: dict):
    header = (
        f"{'model':<10} {'layer sizes':<20} {'iters':>6} {'final cost':>11} "
        f"{'train acc':>10} {'test acc':>9} {'compile s':>10} {'train s':>8}"
    )
    print("\n" + header)
    print("-" * len(header))
    for name, m in models.items():
        dims = ",".join(str(n) for n in m["layer_dims"])
        cost = f"{m['final_cost']:.6f}" if m["final_cost"] is not None else "-"
        print(
            f"{name:<10} {dims:<20} {m['iterations_done']:>6} {cost:>11} "
            f"{100 * m['train_accuracy']:>9.2f}% {100 * m['test_accuracy']:>8.2f}% "
            f"{m['compile_seconds']:>10.2f} {m['train_seconds']:>8.2f}"
        )


def plot_costs(path, curves: dict):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, costs in curves.items():
        ax.plot(np.arange(len(costs)), costs, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost J")
    ax.set_title("Cat classifier: training cost")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misclassified(path, name, data, probs):
    """Grid of the test images the model gets wrong, with true and predicted labels."""
    plt = pyplot()
    labels = data.Y_test[0].astype(int)
    predicted = (probs > 0.5).astype(int)
    wrong = np.flatnonzero(predicted != labels)
    cols = max(1, min(6, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.2 * cols, 2.9 * rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(data.test_images[i])
        ax.set_title(
            f"true: {data.classes[labels[i]]}\npred: "
            f"{data.classes[predicted[i]]} ({probs[i]:.2f})",
            fontsize=8,
        )
    fig.suptitle(f"{name}: {len(wrong)} of {len(labels)} test images misclassified")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_image(path, size: int = IMAGE_SIZE) -> np.ndarray:
    """A PNG/JPEG as (size*size*3, 1) floats in [0, 1], flattened like the data."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"cannot read {path} as an image (PNG or JPEG expected): {e}"
        ) from None
    return pixels.reshape(-1, 1).astype(np.float64) / 255


def predict_image(image_path, checkpoint_path) -> dict:
    """Classify one image with a saved model, as the course's "your own image"."""
    params, info = load_checkpoint(checkpoint_path)
    meta = info["metadata"]
    size = int(meta.get("image_size", IMAGE_SIZE))
    classes = meta.get("classes", ["non-cat", "cat"])
    if info["layer_dims"][0] != size * size * 3:
        raise ValueError(
            f"checkpoint expects inputs of {info['layer_dims'][0]} values, not a "
            f"{size}x{size}x3 image"
        )
    x = load_image(image_path, size)
    dtype = params[0]["W"].dtype
    params = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in params]
    prob = float(
        predict_proba(params, jnp.asarray(x, dtype), info["activations"])[0, 0]
    )
    label = classes[int(prob > 0.5)]
    print(
        f'{image_path}: y = {int(prob > 0.5)}, the model predicts a "{label}" picture '
        f"(P(cat) = {prob:.4f})"
    )
    return {"image": str(image_path), "probability": prob, "label": label}


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.predict:
        if not args.checkpoint:
            raise SystemExit(
                "--predict needs --checkpoint PATH (a model saved by a run)"
            )
        return predict_image(args.predict, args.checkpoint)
    dtype = set_dtype(args.dtype)
    data = load_catvnoncat(args.data)
    run_dir = make_run_dir(args.out, "cat_classifier")
    names = list(MODELS) if args.model == "all" else [args.model]
    key = jax.random.key(0 if args.seed is None else args.seed)
    models, curves, probs = {}, {}, {}
    config = {k: v for k, v in vars(args).items() if k not in ("predict", "checkpoint")}
    metrics = {
        "config": config,
        "dataset": {
            "train_size": int(data.X_train.shape[1]),
            "test_size": int(data.X_test.shape[1]),
            "n_x": int(data.X_train.shape[0]),
            "classes": list(data.classes),
        },
        "models": models,
    }
    for name, model_key in zip(names, jax.random.split(key, len(names)), strict=True):
        cfg = model_config(name, args)
        models[name], extra = train_one(
            name, cfg, data, args, dtype, model_key, run_dir
        )
        curves[name], probs[name] = extra["costs"], extra["test_probs"]
        write_json(run_dir / "metrics.json", metrics)
        if models[name]["interrupted"]:
            break
    print_table(models)
    if not args.no_plots:
        plot_costs(run_dir / "costs.png", curves)
        shown = "deep" if "deep" in probs else list(probs)[-1]
        plot_misclassified(run_dir / "misclassified.png", shown, data, probs[shown])
    return finish_run(run_dir, metrics)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
