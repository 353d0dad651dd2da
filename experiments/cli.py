"""One flag vocabulary for every experiment: names, defaults, help, choices.

An experiment lists the shared flags it uses (with its own defaults) and adds
only what is its own:

    parser = cli.build_parser(
        "python -m experiments.digits", __doc__,
        epochs=20, learning_rate=1e-3, optimizer="adam", batch_size=128,
    )
    parser.add_argument("--train-size", ...)      # digits' own flag

Choices come from the library's tables (``OPTIMIZERS``, ``ACTIVATIONS``,
``INIT_SCALES``, ``GRAD_SOURCES``) and values are checked by the library's own
rules (``jaxnet.hyperparams``), so ``--learning-rate 0`` or ``--iterations 2.5``
is a usage error before anything runs, and no run folder is created. Every
flag's default is shown by ``--help`` once, as its value (a list as the flag
takes it, 784,256,10), or, for a default of None, what None means there
(``NONE_MEANS``, or the experiment's own words: ``build_parser(unset=...)``).
The epilog states the exit statuses (``experiments.common.EXIT_HELP``).

The progress bar follows tqdm's convention: on stderr, shown only when stderr
is a terminal, unless --progress asks for it (--no-progress hides it); the
printed costs go to stdout (``show_progress``).
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from jaxnet.activations import ACTIVATIONS
from jaxnet.hyperparams import GRAD_SOURCES, check_count, check_number
from jaxnet.optimizers import OPTIMIZERS
from jaxnet.params import INIT_SCALES


def _argtype(check: Callable, name: str) -> Callable[[str], object]:
    """An argparse type that applies a library check and reports it as usage."""

    def convert(text: str):
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def _count(name: str):
    def check(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(
                f"{name} must be a positive integer; got {text!r}"
            ) from None
        return check_count(name, value)

    return _argtype(check, "positive integer")


def _number_value(rule: str) -> Callable[[str], float]:
    return lambda text: float(check_number(rule, float(text)))


def _number(rule: str):
    return _argtype(_number_value(rule), rule)


def _numbers(rule: str):
    return _list(_number_value(rule), "numbers")


def _list(convert: Callable, what: str):
    def check(text):
        values = [convert(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise ValueError(f"expected comma-separated {what}; got {text!r}")
        return values

    return _argtype(check, f"comma-separated {what}")


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"seed must be >= 0; got {value}")
    return value


def _layer_dims(text: str) -> list[int]:
    return [check_count("layer size", int(part)) for part in text.split(",") if part]


# name -> (flag, argparse keyword arguments); "default" comes from the experiment.
FLAGS: dict[str, tuple[str, dict]] = {
    "iterations": (
        "--iterations",
        dict(type=_count("iterations"), help="gradient-descent iterations"),
    ),
    "epochs": (
        "--epochs",
        dict(type=_count("epochs"), help="passes over the training set (minibatches)"),
    ),
    "learning_rate": (
        "--learning-rate",
        dict(type=_number("learning_rate"), help="alpha, the step size (> 0)"),
    ),
    "learning_rates": (
        "--learning-rates",
        dict(
            type=_numbers("learning_rate"),
            help="comma-separated learning rates, e.g. 0.01,0.001",
        ),
    ),
    "optimizer": (
        "--optimizer",
        dict(choices=OPTIMIZERS, help="update rule (jaxnet.optimizers)"),
    ),
    "momentum": (
        "--momentum",
        dict(type=float, help="beta of momentum / nesterov, in [0, 1)"),
    ),
    "grad": (
        "--grad",
        dict(choices=GRAD_SOURCES, help="hand-written backward pass or jax.grad"),
    ),
    "batch_size": (
        "--batch-size",
        dict(
            type=_count("batch_size"),
            help="minibatch size",
        ),
    ),
    "l2": ("--l2", dict(type=_number("lambd"), help="L2 strength lambda (>= 0)")),
    "l2_list": (
        "--l2",
        dict(
            type=_numbers("lambd"),
            help="comma-separated L2 strengths",
        ),
    ),
    "keep_prob": (
        "--keep-prob",
        dict(
            type=_number("keep_prob"),
            help="dropout keep probability for hidden layers, in (0, 1]; 1 = off",
        ),
    ),
    "keep_prob_list": (
        "--keep-prob",
        dict(
            type=_numbers("keep_prob"),
            help="comma-separated keep probabilities",
        ),
    ),
    "layer_dims": (
        "--layer-dims",
        dict(
            type=_argtype(_layer_dims, "layer sizes"),
            help="comma-separated layer sizes, e.g. 12288,20,7,5,1",
        ),
    ),
    "hidden": (
        "--hidden",
        dict(choices=tuple(ACTIVATIONS), help="hidden-layer activation"),
    ),
    "init": (
        "--init",
        dict(choices=tuple(INIT_SCALES), help="initialization (jaxnet.params)"),
    ),
    "dtype": (
        "--dtype",
        dict(choices=("float32", "float64"), help="float64 for exact reproductions"),
    ),
    "seed": (
        "--seed",
        dict(
            type=_argtype(_seed, "seed"),
            help="random seed for init, dropout and shuffling",
        ),
    ),
    "num_seeds": (
        "--num-seeds",
        dict(type=_count("num_seeds"), help="initializations trained at once (vmap)"),
    ),
    "devices": (
        "--devices",
        dict(
            type=_count("devices"),
            help="spread the examples over N devices (data parallel; m must "
            "divide by N)",
        ),
    ),
    "data": (
        "--data",
        dict(help="dataset folder"),
    ),
    "out": ("--out", dict(help="run folder")),
    "print_every": (
        "--print-every",
        dict(
            type=_argtype(
                lambda t: int(t) if int(t) == 0 else check_count("print_every", int(t)),
                "integer",
            ),
            help="print the cost every N iterations (0: never)",
        ),
    ),
    "no_progress": (
        "--no-progress",
        dict(action="store_true", help="hide the progress bar"),
    ),
    "progress": (
        "--progress",
        dict(
            action="store_true",
            help="show the progress bar (on stderr) even when stderr is not a terminal",
        ),
    ),
    "no_plots": ("--no-plots", dict(action="store_true", help="write no PNG plots")),
    "resume": (
        "--resume",
        dict(
            metavar="RUN_DIR", help="continue the unfinished models of this run folder"
        ),
    ),
    "overwrite": (
        "--overwrite",
        dict(action="store_true", help="reuse --out even if it holds a run"),
    ),
}


# What a default of None means, for the shared flags where it has one meaning.
NONE_MEANS = {
    "batch_size": "full batch, as the lecture",
    "data": "$JAXNET_DATA, then the cache",
    "out": "runs/<study>-<time>",
    "resume": "start a new run",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" once: not for None, flags, or help that says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "(default:" in text
            or action.default is None
            or action.default is argparse.SUPPRESS
            or isinstance(action.default, bool)
        ):
            return text
        return super()._get_help_string(action)


def show_default(value) -> str:
    """A default as the flag takes it: lists comma-separated, numbers with %g."""
    if isinstance(value, (list, tuple)):
        return ",".join(show_default(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def show_progress(args) -> bool:
    """Whether to draw the bar: --progress, else stderr is a terminal and no
    --no-progress (tqdm's convention)."""
    if getattr(args, "progress", False):
        return True
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def build_parser(
    prog: str, doc: str | None, *, unset: dict | None = None, **defaults
) -> argparse.ArgumentParser:
    """A parser with the shared flags named in ``defaults`` (name=default).

    ``--help`` shows every default once; for a default of None it shows what
    None means: ``unset[name]`` (the experiment's words), else ``NONE_MEANS``.
    The flags --out, --overwrite, --resume, --no-plots, --progress and
    --no-progress are always present; pass ``resume=False`` to leave --resume
    out for studies that have nothing to resume.

    Raises:
        ValueError: a default of None whose meaning is not given (a bug).
    """
    from experiments.common import EXIT_HELP

    unset = {**NONE_MEANS, **(unset or {})}
    description = (doc or "").strip().splitlines()[0] if doc else None
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=HelpFormatter,
        epilog=EXIT_HELP,
    )
    always = {
        "out": None, "overwrite": False, "no_plots": False, "progress": False,
        "no_progress": False,
    }  # fmt: skip
    if defaults.pop("resume", True) is not False:
        always["resume"] = None
    for name, default in {**defaults, **always}.items():
        flag, kwargs = FLAGS[name]
        kwargs = dict(kwargs)
        if kwargs.get("action") != "store_true":
            kwargs["default"] = default
            if default is None and name not in unset:
                raise ValueError(f"{flag}: say what its default of None means")
            shown = unset[name] if default is None else show_default(default)
            shown = shown.replace("%", "%%")  # argparse formats help with %
            kwargs["help"] = f"{kwargs['help']} (default: {shown})"
        parser.add_argument(flag, dest=name.removesuffix("_list"), **kwargs)
    return parser


def apply_resume(
    parser: argparse.ArgumentParser, args, run_flags: Sequence[str]
) -> dict | None:
    """With --resume RUN_DIR: take the run's own flags from its metrics.json.

    Flags given on the command line that differ from the run's are a usage
    error (a resumed run must compute what the original would have). Sets
    ``args.out`` to the run folder.

    Returns:
        The run's saved metrics.json, or None without --resume.
    """
    if not getattr(args, "resume", None):
        return None
    record = Path(args.resume) / "metrics.json"
    if not record.is_file():
        parser.error(
            f"--resume {args.resume}: no metrics.json there (not a run folder)"
        )
    saved = json.loads(record.read_text())
    flags = saved["config"]["flags"]
    defaults = vars(parser.parse_args([]))
    differ = [
        k
        for k in run_flags
        if getattr(args, k) != defaults[k] and getattr(args, k) != flags.get(k)
    ]
    if differ:
        names = ", ".join("--" + k.replace("_", "-") for k in differ)
        parser.error(
            f"--resume continues the run with its own flags; these differ: {names}"
        )
    for k in run_flags:
        setattr(args, k, flags[k])
    args.out, args.overwrite = args.resume, True
    return saved
