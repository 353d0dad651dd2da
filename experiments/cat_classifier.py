"""Cat or not cat? The lecture's running example, with the course's three models.

Question: how well do logistic regression, the two-layer network and the
L-layer network [12288, 20, 7, 5, 1] tell cats from non-cats on 64x64x3 images?

Expected (the course's published results, reproduced exactly with
``--course-init --dtype float64``): logistic regression 99.04 % train / 70 % test,
two-layer 100 % / 72 %, L-layer 98.56 % / 80 %. Depth helps on the test set.

    python -m experiments.cat_classifier                       # all three models
    python -m experiments.cat_classifier --model deep --course-init --dtype float64
    python -m experiments.cat_classifier --predict my_cat.jpg --checkpoint RUN/deep.npz

The run folder (--out) gets metrics.json (with each model's training-health
readings at the printed points and their hints, see ``jaxnet.health``),
costs.png, health.png, misclassified.png and one
checkpoint per model (numpy .npz, see jaxnet.checkpoint) holding the whole
training state (parameters, optimizer state, key, costs, flags), rewritten
atomically every couple of seconds. Ctrl-C or SIGTERM stops within about a
second, keeps the last chunk, writes everything and exits with 130 / 143;
``--resume RUN_DIR`` continues the unfinished models and equals the run that
was never stopped. A diverging run keeps its last good parameters and says so.

``--devices N`` (data parallel) must divide the 209 training examples, 11 x 19:
the cat set is too small to split, and ``--devices 2`` says so and points to
``experiments.digits``.
"""

import stat
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common, health_plot, records
from experiments.runs import fingerprint, train_checkpointed
from jaxnet import distributed
from jaxnet.checkpoint import load_checkpoint
from jaxnet.data import load_catvnoncat
from jaxnet.deep import predict_proba
from jaxnet.interrupts import StopOnSignal
from jaxnet.optimizers import build_optimizer
from jaxnet.params import course_init_params, init_params
from jaxnet.runner import cost_checkpoints

# The course's hyperparameters for each model.
MODELS = {
    "logistic": dict(
        layer_dims=[12288, 1], learning_rate=0.005, iterations=2000, init="zeros",
        course_scale=None,
    ),
    "two_layer": dict(
        layer_dims=[12288, 7, 1], learning_rate=0.0075, iterations=2500,
        init="small", course_scale="0.01",
    ),
    "deep": dict(
        layer_dims=[12288, 20, 7, 5, 1], learning_rate=0.0075, iterations=2500,
        init="lecun", course_scale="sqrt",
    ),
}  # fmt: skip
IMAGE_SIZE = 64
PROBA = jax.jit(predict_proba, static_argnums=2)  # A[L] for a whole split
# Flags that change what a run computes: a resumed run must agree on them.
RUN_FLAGS = (
    "model", "grad", "dtype", "iterations", "learning_rate", "layer_dims", "hidden",
    "init", "course_init", "seed", "optimizer", "momentum", "batch_size", "l2",
    "keep_prob",
)  # fmt: skip


def build_parser():
    p = cli.build_parser(
        "python -m experiments.cat_classifier",
        "Train the course cat / non-cat classifiers, or classify an image.",
        grad="manual", dtype="float32", iterations=None, learning_rate=None,
        layer_dims=None, hidden="relu", init=None, seed=None, optimizer="gd",
        momentum=0.9, batch_size=None, l2=0.0, keep_prob=1.0, print_every=100,
        data=None, devices=1,
        unset={**dict.fromkeys(("iterations", "learning_rate", "init"),
                               "each model's course value"),
               "layer_dims": "12288,20,7,5,1 (the deep model)",
               "seed": "0; 1 with --course-init, the notebooks' np.random.seed"},
    )  # fmt: skip
    p.add_argument(
        "--model", choices=[*MODELS, "all"], default="all", help="which models"
    )
    p.add_argument(
        "--course-init",
        action="store_true",
        help="the notebooks' exact numpy initialization (needs --dtype float64)",
    )
    p.add_argument("--predict", metavar="IMAGE", help="classify this PNG/JPEG image")
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="model file for --predict (default: the newest run's model named by "
        "--model; deep for --model all)",
    )
    return p


def check_flags(args, parser) -> None:
    """Combinations the parser cannot see; a usage error, before anything runs."""
    if args.course_init and args.dtype != "float64":
        parser.error(
            "--course-init reproduces the course exactly only in float64: add "
            "--dtype float64"
        )
    if args.layer_dims is not None:
        if args.model == "logistic":
            parser.error(
                "--layer-dims sets the deep model's sizes; not --model logistic"
            )
        if args.layer_dims[0] != 12288 or args.layer_dims[-1] != 1:
            parser.error(
                f"--layer-dims must start at 12288 (64x64x3 pixels) and end at 1; "
                f"got {args.layer_dims}"
            )


def check_devices(m: int, devices: int, parser) -> None:
    """--devices must divide the m training examples (jaxnet refuses uneven
    splits); the cat set's 209 = 11 x 19 does not split over 2, 4 or 8."""
    if m % devices:
        divisors = ", ".join(str(d) for d in range(1, m + 1) if m % d == 0)
        parser.error(
            f"--devices {devices}: the cat set's m = {m} training examples cannot be "
            f"split evenly over {devices} devices (the device counts that divide "
            f"{m}: {divisors}); jaxnet refuses uneven splits (docs/distributed.md). "
            f"With {m} examples there is little to split anyway: data parallel is "
            f"for larger sets, e.g. python -m experiments.digits --devices {devices}"
        )


def model_config(name: str, args) -> dict:
    """The course's settings for ``name``, overridden by the flags given."""
    cfg = dict(MODELS[name])
    if name == "deep" and args.layer_dims:
        cfg["layer_dims"] = list(args.layer_dims)
    for flag in ("learning_rate", "iterations", "init"):
        if getattr(args, flag) is not None:
            cfg[flag] = getattr(args, flag)
    L = len(cfg["layer_dims"]) - 1
    cfg["activations"] = [args.hidden] * (L - 1) + ["sigmoid"]
    return cfg


def initial_params(cfg: dict, args, dtype, key):
    if args.course_init and cfg["course_scale"] is not None:
        seed = 1 if args.seed is None else args.seed
        return course_init_params(cfg["layer_dims"], seed, cfg["course_scale"], dtype)
    # Logistic regression starts from zeros in the course, with or without it.
    method = "zeros" if args.course_init else cfg["init"]
    return init_params(key, cfg["layer_dims"], method=method, dtype=dtype)


def train_one(name, cfg, data, args, dtype, key, run_dir, stop, flags, mesh) -> tuple:
    """Train (or resume) one model; returns its metrics and what the plots need."""
    X, Y = jnp.asarray(data.X_train, dtype), jnp.asarray(data.Y_train, dtype)
    init_key, run_key = jax.random.split(key)
    params = initial_params(cfg, args, dtype, init_key)
    path = run_dir / f"{name}.npz"
    optimizer = build_optimizer(
        args.optimizer, cfg["learning_rate"], momentum=args.momentum
    )
    hyper = dict(
        activations=cfg["activations"], learning_rate=cfg["learning_rate"],
        optimizer=optimizer, grad=args.grad, lambd=args.l2,
        keep_prob=args.keep_prob, batch_size=args.batch_size, key=run_key,
        mesh=mesh,
    )  # fmt: skip
    meta = {
        "model": name, "classes": list(data.classes), "image_size": IMAGE_SIZE,
        "flags": flags, "data": fingerprint(data.X_train, data.Y_train),
    }  # fmt: skip
    if not args.resume:
        print(
            f"\n== {name}: layer_dims {cfg['layer_dims']}, {cfg['iterations']} "
            f"iterations, learning rate {cfg['learning_rate']}"
        )
    result, finished = train_checkpointed(
        name, params, X, Y, path=path, hyper=hyper,
        num_iterations=cfg["iterations"], meta=meta, resume=bool(args.resume),
        stop=stop, print_every=args.print_every,
        progress=distributed.is_main_process() and cli.show_progress(args),
        unit="epoch" if args.batch_size else "iteration",
        health_every=args.print_every or None,
    )  # fmt: skip
    return model_metrics(name, cfg, data, result, finished, path, args)


def model_metrics(name, cfg, data, result, finished, ckpt_path, args) -> tuple:
    acts = tuple(cfg["activations"])
    params = distributed.gather(result.params)  # whole, on this process's host
    dtype = jax.tree.leaves(params)[0].dtype
    # One compiled forward for both splits (one compilation, not one per
    # shape: less for a Ctrl-C to wait for); the sigmoid output predicts A > 0.5.
    X = jnp.asarray(np.concatenate([data.X_train, data.X_test], axis=1), dtype)
    all_probs = np.asarray(PROBA(params, X, acts))[0]
    m_train = data.X_train.shape[1]
    splits, predicted = {}, {}
    for split, probs, Y in (("train", all_probs[:m_train], data.Y_train),
                            ("test", all_probs[m_train:], data.Y_test)):  # fmt: skip
        predicted[split] = (probs > 0.5).astype(int)
        splits[split] = common.accuracy_record(
            common.count_correct(probs > 0.5, Y[0].astype(bool)), Y.shape[1]
        )
    collapsed = records.collapse(
        result.costs, params, jnp.asarray(data.X_train, dtype), acts,
        predicted["train"], list(data.classes),
    )  # fmt: skip
    if collapsed is not None:
        print(f"{name}: {collapsed['hint']}")
    health = health_plot.health_record(result, acts)
    for hint in health["hints"] if health else ():
        print(f"{name}: {hint}")
    metrics = {
        "layer_dims": cfg["layer_dims"], "activations": list(acts),
        "init": "course" if args.course_init else cfg["init"],
        "iterations": cfg["iterations"], "iterations_done": result.iterations_done,
        "steps_into_epoch": result.position,
        "learning_rate": cfg["learning_rate"], "finished": finished,
        "costs": cost_checkpoints(result.costs, args.print_every),
        "cost_curve": records.cost_curve(result.costs),
        "final_cost": result.final_cost,
        "train_accuracy": splits["train"]["accuracy"],
        "test_accuracy": splits["test"]["accuracy"],
        "train": splits["train"], "test": splits["test"],
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "checkpoint": str(ckpt_path), "diverged": result.diverged,
        "interrupted": result.interrupted, "stop_reason": result.stop_reason,
        "message": result.message, "collapse": collapsed, "health": health,
    }  # fmt: skip
    return metrics, {"costs": result.costs, "test_probs": probs, "health": health}


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
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, costs in curves.items():
        ax.plot(np.arange(len(costs)), costs, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost J")
    ax.set_title("Cat classifier: training cost")
    ax.legend()
    ax.grid(alpha=0.3)
    common.save_figure(fig, path, dpi=100)


def plot_misclassified(path, name, data, probs):
    """Grid of the test images the model gets wrong, with true and predicted labels."""
    plt = common.pyplot()
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
    common.save_figure(fig, path, dpi=100)


# Pillow modes with more than 8 bits per sample: the largest value of each.
# Converting them to "RGB" would clip every value above 255 to white.
HIGH_DEPTH_MODES = {
    "I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": None,
    "F": None,
}  # fmt: skip


def check_image_file(path) -> Path:
    """``path`` as a Path if it is a regular file; a FIFO, a device or a folder
    would block or fail inside Pillow, so they are refused before opening."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO (named pipe)",
                stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
                stat.S_ISSOCK: "a socket"}  # fmt: skip
        what = next((v for k, v in kind.items() if k(mode)), "not a regular file")
        raise ValueError(f"--predict {path} is {what}: give a PNG or JPEG image file")
    return path


def _high_depth_grey(image, path, size: int) -> np.ndarray:
    """A 16-bit, 32-bit integer or float greyscale image as (size, size, 3) in
    [0, 1], scaled by its bit depth (not clipped at 255)."""
    from PIL import Image

    grey = np.asarray(image, dtype=np.float64)
    top = HIGH_DEPTH_MODES[image.mode]
    if image.mode == "F":
        low, high = float(np.min(grey)), float(np.max(grey))
        if not (np.isfinite(grey).all() and low >= 0 and high <= 1):
            raise ValueError(
                f"{path} is a floating-point image with values in [{low:g}, "
                f"{high:g}]; expected brightness in [0, 1]: save it as an 8- or "
                "16-bit PNG"
            )
        top = 1.0
    elif top is None:  # "I": 32-bit integers, usually a 16-bit PNG read by Pillow
        top = 65535 if grey.min() >= 0 and grey.max() <= 65535 else 2**31 - 1
    grey = np.clip(grey / top, 0.0, 1.0).astype(np.float32)
    small = Image.fromarray(grey, mode="F").resize(
        (size, size), Image.Resampling.LANCZOS
    )
    grey = np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0)  # LANCZOS rings
    return np.repeat(grey[:, :, None], 3, axis=2)


def load_image(path, size: int = IMAGE_SIZE) -> np.ndarray:
    """A PNG/JPEG as (size*size*3, 1) floats in [0, 1], flattened like the data.

    8-bit images of any mode (L, LA, P, RGBA ...) are converted to RGB (alpha
    dropped); 16-bit and 32-bit greyscale (I;16, I) and float (F, in [0, 1])
    are scaled by their bit depth. A file that is not regular (a FIFO) or an
    image over Pillow's size limit (a decompression bomb) is refused.
    """
    from PIL import Image, UnidentifiedImageError

    path = check_image_file(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.mode in HIGH_DEPTH_MODES:
                pixels = _high_depth_grey(image, path, size)
            else:
                rgb = image.convert("RGB").resize(
                    (size, size), Image.Resampling.LANCZOS
                )
                pixels = np.asarray(rgb, dtype=np.uint8).astype(np.float64) / 255
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except Image.DecompressionBombError as e:
        raise ValueError(
            f"{path} is too large to read safely ({e}); resize it (to "
            f"{size}x{size}, which the model sees anyway) and try again"
        ) from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"cannot read {path} as an image (PNG or JPEG expected): {e}"
        ) from None
    if (width, height) != (size, size):
        shape = "not square, so it is stretched" if width != height else "resized"
        print(f"note: {path} is {width}x{height}; {shape} to {size}x{size}")
    return pixels.reshape(-1, 1)


def check_cat_checkpoint(path, info: dict) -> None:
    """Refuse a checkpoint that is not a cat classifier: P(cat) must be one
    sigmoid unit (a softmax or linear output would be read as a probability)."""
    dims, acts = info["layer_dims"], info["activations"]
    if acts[-1] != "sigmoid" or dims[-1] != 1:
        model = info["metadata"].get("model")
        named = f" (model {model!r})" if model else ""
        raise ValueError(
            f"{path} is not a cat classifier{named}: its output layer is "
            f"{acts[-1]} with {dims[-1]} unit(s) (layer_dims {dims}); --predict "
            "needs one sigmoid unit, P(cat), as python -m experiments."
            "cat_classifier trains"
        )


def predict_image(image_path, checkpoint_path=None, model=None) -> dict:
    """Classify one image with a saved model, as the course's "your own image".

    ``model`` ("logistic", "two_layer", "deep" or None for deep) picks the
    newest run's model of that name; with ``checkpoint_path`` it must be the
    model the checkpoint holds (else ValueError)."""
    if checkpoint_path is None:
        wanted = model or "deep"
        found = sorted(Path("runs").glob(f"cat_classifier-*/{wanted}.npz"),
                       key=lambda p: p.stat().st_mtime)  # fmt: skip
        if not found:
            raise FileNotFoundError(
                f"--predict needs a trained {wanted} model: pass --checkpoint PATH, "
                "or train one first with: python -m experiments.cat_classifier"
            )
        checkpoint_path = found[-1]
        print(f"using the newest run's {wanted} model: {checkpoint_path}")
    check_image_file(image_path)  # before anything slow: a FIFO would block
    params, info = load_checkpoint(checkpoint_path)
    check_cat_checkpoint(checkpoint_path, info)
    meta = info["metadata"]
    if model is not None and meta.get("model", model) != model:
        raise ValueError(
            f"--checkpoint {checkpoint_path} holds the {meta['model']} model, not "
            f"--model {model}: pass that model's file (RUN_DIR/{model}.npz) or drop "
            "--model"
        )
    if meta.get("iterations_done", 1) == 0 or meta.get("finished") is False:
        print(
            f"warning: {checkpoint_path} is not a finished model "
            f"({meta.get('iterations_done', 0)} iterations done); its answer may "
            "be poor"
        )
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
    common.join_processes()  # launched as several: only process 0 prints
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.apply_resume(parser, args, RUN_FLAGS)
    if args.predict:
        model = None if args.model == "all" else args.model
        return predict_image(args.predict, args.checkpoint, model)
    check_flags(args, parser)
    dtype = common.set_dtype(args.dtype)
    data = load_catvnoncat(args.data)  # a missing dataset creates no run folder
    check_devices(data.X_train.shape[1], args.devices, parser)
    mesh = common.device_mesh(args.devices)
    run_dir = common.make_run_dir(
        args.out, "cat_classifier", args.overwrite, resume=bool(args.resume)
    )  # locked for this run: one run per folder
    names = list(MODELS) if args.model == "all" else [args.model]
    seed = 0 if args.seed is None else args.seed
    flags = {k: getattr(args, k) for k in RUN_FLAGS}
    models, curves, probs, healths = {}, {}, {}, {}
    metrics = {
        "config": {"flags": flags, "models": {n: model_config(n, args) for n in names},
                   **common.environment(mesh)},
        "dataset": {
            "name": "catvnoncat",
            "train_size": int(data.X_train.shape[1]),
            "test_size": int(data.X_test.shape[1]),
            "n_x": int(data.X_train.shape[0]),
            "classes": list(data.classes),
            "fingerprint": fingerprint(data.X_train, data.Y_train),
        },
        "models": models,
        "interrupted": False,
    }  # fmt: skip
    common.write_json(run_dir / "metrics.json", metrics)  # resumable from now on
    with StopOnSignal() as stop:
        for name in names:
            # The model's own key: the same numbers whatever runs beside it.
            model_key = records.model_key(seed, name)
            cfg = model_config(name, args)
            out, extra = train_one(
                name, cfg, data, args, dtype, model_key, run_dir, stop, flags, mesh
            )
            models[name] = out
            curves[name], probs[name] = extra["costs"], extra["test_probs"]
            healths[name] = extra["health"]
            common.write_json(run_dir / "metrics.json", metrics)
            if stop():
                break
    common.keep_stopping(stop)  # a signal now: an honest, interrupted record
    print_table(models)
    if not args.no_plots and curves and not stop():  # (a stop: leave at once)
        plot_costs(run_dir / "costs.png", curves)
        health_plot.plot_health(
            run_dir / "health.png", healths, "Cat classifier: training health"
        )
        shown = "deep" if "deep" in probs else list(probs)[-1]
        plot_misclassified(run_dir / "misclassified.png", shown, data, probs[shown])
    return common.finish_run(run_dir, metrics, stop, "cat_classifier")


if __name__ == "__main__":
    common.run_cli(main)
