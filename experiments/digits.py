"""Handwritten digits with a softmax network, minibatches and Adam.

Question: does the lecture's L-layer network, with a softmax output for K = 10
classes, minibatches reshuffled every epoch and Adam, read handwritten digits?
Data: the 10,000 MNIST test digits ($JAXNET_DATA/mnist_t10k/, the IDX gzip
files), split 8000 train / 2000 held out with a fixed key.

Expected: at least 95 % accuracy on the 2000 held-out digits, in well under a
minute on 2 CPU cores (default: [784, 256, 128, 10] relu, inverted dropout with
keep_prob 0.8, Adam alpha = 1e-3, batches of 128, 20 epochs, float32; measured
96.15 / 96.45 / 96.35 % for seeds 0 / 1 / 2 in about 20 s wall on a shared
2-core CPU). The weakest digits are 5, 2 and 7 (90-94 %).

    python -m experiments.digits
    python -m experiments.digits --layer-dims 784,256,10 --keep-prob 1 --epochs 15
    python -m jaxnet.launch --processes 2 --devices-per-process 2 -- \
        python -m experiments.digits --devices 4      # data parallel, 2 processes

``--devices N`` splits each minibatch's examples over N devices (8000 digits
divide by 2, 4 and 8); the numbers are the one-device run's to rounding, and
metrics.json records the device and process counts (docs/distributed.md).

A run stopped with Ctrl-C stops within about a second, also inside an epoch
(``epochs_done`` and ``steps_into_epoch`` say where; ``costs`` holds one cost
per completed epoch), and ``--resume`` continues from that very minibatch.

The run folder (--out) gets metrics.json (config, dataset, and the model's
costs, train and held-out accuracy as counts, per-class accuracy, confusion
matrix, seconds), confusion.png and digits.npz, the checkpoint (whole training
state) that ``--resume RUN_DIR`` continues from.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli, common
from experiments.runs import fingerprint, train_checkpointed
from jaxnet import distributed
from jaxnet.data import load_mnist_t10k, split_digits
from jaxnet.deep import activations_for
from jaxnet.interrupts import StopOnSignal
from jaxnet.labels import one_hot
from jaxnet.optimizers import build_optimizer
from jaxnet.params import init_params
from jaxnet.runner import cost_checkpoints
from jaxnet.train import predict

NUM_CLASSES = 10
NUM_TRAIN = 8000
SPLIT_SEED = 0  # the train / held-out split is fixed, whatever --seed says
RUN_FLAGS = (
    "seed", "epochs", "learning_rate", "optimizer", "momentum", "batch_size",
    "layer_dims", "hidden", "init", "l2", "keep_prob", "grad", "train_size",
    "dtype",
)  # fmt: skip


def build_parser():
    """Command-line flags; defaults reach >= 95 % in well under a minute."""
    p = cli.build_parser(
        "python -m experiments.digits", __doc__,
        seed=0, epochs=20, learning_rate=1e-3, optimizer="adam", momentum=0.9,
        batch_size=128, layer_dims=[784, 256, 128, 10], hidden="relu", init="he",
        l2=0.0, keep_prob=0.8, grad="manual", print_every=5, data=None, devices=1,
        dtype="float32",
    )  # fmt: skip
    p.add_argument(
        "--train-size",
        type=int,
        default=NUM_TRAIN,
        help="use only the first N of the 8000 training digits (smoke tests)",
    )
    return p


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, k: int):
    """C[i, j] = number of examples of class i predicted as class j, (k, k)."""
    C = np.zeros((k, k), dtype=np.int64)
    np.add.at(C, (labels, predictions), 1)
    return C


def plot_confusion(C: np.ndarray, path, title: str):
    """Save the confusion matrix as an image with counts in the cells."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    im = ax.imshow(C, cmap="Blues")
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            color = "white" if C[i, j] > C.max() / 2 else "black"
            ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=7, c=color)
    ax.set(xlabel="predicted digit", ylabel="true digit", title=title)
    ax.set_xticks(range(C.shape[1]))
    ax.set_yticks(range(C.shape[0]))
    fig.colorbar(im, ax=ax, fraction=0.046)
    common.save_figure(fig, path, dpi=120)


def predict_sets(params, activations, *sets) -> list[np.ndarray]:
    """Class predictions (m_i,) for each X (784, m_i), from one compiled call on
    all their columns: one compilation instead of one per operation and shape
    (about 1.5 s saved on 2 cores, which a Ctrl-C would otherwise wait for)."""
    X = jnp.concatenate(sets, axis=1)
    labels = np.asarray(_PREDICT(params, X, tuple(activations)))
    return np.split(labels, np.cumsum([x.shape[1] for x in sets])[:-1])


_PREDICT = jax.jit(predict, static_argnums=2)


def main(argv=None) -> dict:
    """Train the digit classifier, print per-class accuracy, write the run folder."""
    main_process = common.join_processes()  # launched as several: only 0 prints
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.apply_resume(parser, args, RUN_FLAGS)
    start = time.perf_counter()
    dims = args.layer_dims
    if dims[0] != 784 or dims[-1] != NUM_CLASSES:
        parser.error(f"--layer-dims must start at 784 and end at 10; got {dims}")
    if not 1 <= args.train_size <= NUM_TRAIN:
        parser.error(f"--train-size must be in 1..{NUM_TRAIN}")
    if args.train_size % args.devices:
        parser.error(
            f"--train-size {args.train_size} cannot be split evenly over "
            f"--devices {args.devices}: use a multiple of {args.devices}"
        )
    mesh = common.device_mesh(args.devices)
    dtype = common.set_dtype(args.dtype)
    images, labels = load_mnist_t10k(args.data)  # missing data: no run folder
    run_dir = common.make_run_dir(
        args.out, "digits", args.overwrite, resume=bool(args.resume)
    )  # locked for this run: one run per folder
    X_train, y_train, X_test, y_test = split_digits(
        images, labels, jax.random.key(SPLIT_SEED), n_train=NUM_TRAIN
    )
    X_train, y_train = X_train[:, : args.train_size], y_train[: args.train_size]
    X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    Y_train = one_hot(y_train, NUM_CLASSES, dtype=dtype)  # (10, m)

    activations = activations_for(len(dims) - 1, args.hidden, "softmax")
    init_key, train_key = jax.random.split(jax.random.key(args.seed))
    params = init_params(init_key, dims, method=args.init, dtype=dtype)
    optimizer = build_optimizer(
        args.optimizer, args.learning_rate, momentum=args.momentum
    )
    print(
        f"digits: {dims} {args.hidden}/softmax, {args.optimizer} "
        f"alpha={args.learning_rate}, batch {args.batch_size}, "
        f"{args.epochs} epochs on {X_train.shape[1]} digits"
        + (f", split over {args.devices} devices" if mesh is not None else "")
    )
    flags = {k: getattr(args, k) for k in RUN_FLAGS}
    hyper = dict(
        activations=activations, learning_rate=args.learning_rate,
        optimizer=optimizer, grad=args.grad, lambd=args.l2,
        keep_prob=args.keep_prob, batch_size=args.batch_size, key=train_key,
        mesh=mesh,
    )  # fmt: skip
    meta = {"model": "digits", "flags": flags, "data": fingerprint(X_train, y_train)}
    config = {"flags": flags, **common.environment(mesh)}
    record = {"config": config, "models": {}}
    common.write_json(run_dir / "metrics.json", record)  # resumable from now on
    with StopOnSignal() as stop:
        result, finished = train_checkpointed(
            "digits", params, X_train, Y_train, path=run_dir / "digits.npz",
            hyper=hyper, num_iterations=args.epochs, meta=meta,
            resume=bool(args.resume), stop=stop, print_every=args.print_every,
            progress=main_process and not args.no_progress, unit="epoch",
        )  # fmt: skip
    common.keep_stopping(stop)  # a signal now: an honest, interrupted record
    params = distributed.gather(result.params)  # whole, on this process's host

    y_test = np.asarray(y_test)
    pred_train, pred_test = predict_sets(params, activations, X_train, X_test)
    train = common.accuracy_record(
        common.count_correct(pred_train, y_train), len(pred_train)
    )
    test = common.accuracy_record(common.count_correct(pred_test, y_test), len(y_test))
    C = confusion_matrix(y_test, pred_test, NUM_CLASSES)
    per_class = {str(k): float(C[k, k] / max(C[k].sum(), 1)) for k in range(10)}
    seconds = time.perf_counter() - start

    print("held-out accuracy per digit:")
    for k in range(NUM_CLASSES):
        print(f"  {k}: {100 * per_class[str(k)]:6.2f} %  ({C[k].sum()} digits)")
    print(
        f"train accuracy {100 * train['accuracy']:.2f} %, held-out accuracy "
        f"{100 * test['accuracy']:.2f} % ({len(y_test)} digits); {seconds:.1f} s "
        f"total ({result.compile_seconds:.1f} s compiling, "
        f"{result.train_seconds:.1f} s training)"
    )
    model = {
        "layer_dims": dims, "activations": list(activations),
        "epochs": args.epochs, "epochs_done": result.iterations_done,
        "steps_into_epoch": result.position,
        "finished": finished, "diverged": result.diverged,
        "interrupted": result.interrupted, "message": result.message,
        "costs": cost_checkpoints(result.costs, 1),
        "train": train, "test": test,
        "train_accuracy": train["accuracy"], "test_accuracy": test["accuracy"],
        "per_class_accuracy": per_class, "confusion": C.tolist(),
        "seconds": {"total": seconds, "compile": result.compile_seconds,
                    "train": result.train_seconds},
        "checkpoint": str(run_dir / "digits.npz"),
    }  # fmt: skip
    metrics = {
        "config": config,
        "dataset": {"name": "mnist_t10k", "num_train": int(X_train.shape[1]),
                    "num_test": len(y_test), "split_seed": SPLIT_SEED},
        "models": {"digits": model},
        "interrupted": bool(stop()),
    }  # fmt: skip
    if not args.no_plots and not stop():  # (a stop: leave at once)
        title = f"held-out digits: {100 * test['accuracy']:.2f} % correct"
        plot_confusion(C, run_dir / "confusion.png", title)
    return common.finish_run(run_dir, metrics, stop, "digits")


if __name__ == "__main__":
    common.run_cli(main)
