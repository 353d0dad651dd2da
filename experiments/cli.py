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

import numpy as np

from jaxnet import memory
from jaxnet.activations import ACTIVATIONS
from jaxnet.hyperparams import GRAD_SOURCES, check_count, check_in_dtype, check_number
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


MAX_SEED = 2**63 - 1  # jax.random.key takes a signed 64-bit integer


def names_of(table, what: str) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names, each a key of ``table``."""

    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names or any(n not in table for n in names):
            raise argparse.ArgumentTypeError(
                f"{what} must be among {', '.join(table)}; got {text!r}"
            )
        return names

    parse.__name__ = f"comma-separated {what}"
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"seed must be an integer; got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise ValueError(
            f"seed must be an integer in [0, 2**63 - 1] = [0, {MAX_SEED}]; got {value}"
        )
    return value


def _layer_dims(text: str) -> list[int]:
    """'12288,20,1' -> [12288, 20, 1]; empty entries, 0 and negatives refused."""
    parts = [part.strip() for part in text.split(",")]
    dims = []
    for i, part in enumerate(parts):
        try:
            n = int(part)
        except ValueError:
            what = "is empty" if not part else f"is {part!r}, not an integer"
            raise ValueError(
                f"layer size {i} {what} in {text!r}: give comma-separated positive "
                "integers, e.g. 12288,20,7,5,1"
            ) from None
        if n < 1:
            raise ValueError(
                f"layer size {i} is {n} in {text!r}: every layer needs at least one "
                "unit"
            )
        dims.append(n)
    if len(dims) < 2:
        raise ValueError(
            f"--layer-dims needs at least an input and an output size; got {text!r}"
        )
    return dims


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
        # the live keys: an activation registered after import is a choice too
        dict(choices=ACTIVATIONS.keys(), help="hidden-layer activation"),
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
    "debug": (
        "--debug",
        dict(
            action="store_true",
            help="on an error, show the Python traceback instead of one line",
        ),
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, exit 2:
    "error: PROG: MESSAGE (see PROG --help)"."""

    def error(self, message: str):
        text = " ".join(message.split())
        self.exit(2, f"error: {self.prog}: {text} (see {self.prog} --help)\n")


class Parser(OneLineParser):
    """An ArgumentParser that, after parsing, checks what needs several flags:
    the hyperparameters against --dtype (``jaxnet.hyperparams.check_in_dtype``:
    --learning-rate 1e308 overflows float32) and the params of --layer-dims
    against the memory available (``jaxnet.memory``), before any run folder."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        dtype = getattr(namespace, "dtype", None) or "float32"
        for name, rule in (
            ("learning_rate", "learning_rate"),
            ("learning_rates", "learning_rate"),
            ("l2", "lambd"),
            ("keep_prob", "keep_prob"),
        ):
            value = getattr(namespace, name, None)
            if value is None:
                continue
            flag = "--" + name.replace("_", "-")
            try:
                check_in_dtype(rule, np.asarray(value, np.float64), dtype)
            except ValueError as e:
                self.error(f"{flag}: {e}")
        dims = getattr(namespace, "layer_dims", None)
        if dims:
            try:
                _check_params_memory(dims, dtype)
            except ValueError as e:
                self.error(f"--layer-dims: {e}")
        return namespace, extras


def _check_params_memory(dims: Sequence[int], dtype: str) -> None:
    """The params, their gradients and the updated params of ``dims`` must fit;
    the whole run (activations, optimizer, data) is checked again in
    ``jaxnet.boundary.prepare`` when m is known."""
    parts = memory.estimate_run_bytes(dims, 0, itemsize=np.dtype(dtype).itemsize)
    memory.check_memory(
        parts,
        f"the params of layer_dims {list(dims)} in {dtype}",
        "use fewer units per layer",
    )


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
    The flags --out, --overwrite, --resume, --no-plots, --progress,
    --no-progress and --debug are always present; pass ``resume=False`` to
    leave --resume out for studies that have nothing to resume.

    Raises:
        ValueError: a default of None whose meaning is not given (a bug).
    """
    from experiments.common import EXIT_HELP

    unset = {**NONE_MEANS, **(unset or {})}
    description = (doc or "").strip().splitlines()[0] if doc else None
    parser = Parser(
        prog=prog,
        description=description,
        formatter_class=HelpFormatter,
        epilog=EXIT_HELP,
    )
    always = {
        "out": None, "overwrite": False, "no_plots": False, "progress": False,
        "no_progress": False, "debug": False,
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
    parser: argparse.ArgumentParser,
    args,
    run_flags: Sequence[str],
    needs: dict[str, type] | None = None,
) -> dict | None:
    """With --resume RUN_DIR: take the run's own flags from its metrics.json.

    Flags given on the command line that differ from the run's are a usage
    error (a resumed run must compute what the original would have). Sets
    ``args.out`` to the run folder.

    ``needs`` names what else the caller reads from the record, as dotted
    paths and their types (e.g. {"models.results": list}); a metrics.json that
    is not JSON, lacks config.flags, one of ``run_flags`` or one of ``needs``
    is a usage error naming the file and what is missing.

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
    saved, flags = _run_record(parser, record, run_flags)
    for dotted, kind in (needs or {}).items():
        value = saved
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, kind):
            parser.error(
                f"--resume: {record} has no {dotted} ({kind.__name__}); restore it "
                "from a copy, or start a new run (--out)"
            )
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


def _run_record(parser, record: Path, run_flags: Sequence[str]) -> tuple[dict, dict]:
    """(metrics.json, its config.flags), or a usage error naming the file and
    what is missing from it."""
    fix = "restore it from a copy, or start a new run (--out)"
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
    except RecursionError:
        parser.error(f"--resume: {record} nests too deeply to be a run record; {fix}")
    except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeDecodeError
        parser.error(f"--resume: {record} is not readable JSON ({e}); {fix}")
    flags = saved.get("config") if isinstance(saved, dict) else None
    flags = flags.get("flags") if isinstance(flags, dict) else None
    if not isinstance(flags, dict):
        parser.error(f"--resume: {record} has no config.flags (the run's flags); {fix}")
    missing = [k for k in run_flags if k not in flags]
    if missing:
        names = ", ".join("--" + k.replace("_", "-") for k in missing)
        parser.error(f"--resume: {record} lacks the run's flags {names}; {fix}")
    for k in run_flags:
        problem = _flag_problem(parser, k, flags[k])
        if problem:
            flag = "--" + k.replace("_", "-")
            parser.error(
                f"--resume: {record} holds {flag} {flags[k]!r}: {problem}; {fix}"
            )
    return saved, flags


def _flag_problem(parser, dest: str, value) -> str | None:
    """Why a saved flag value is one the command line would refuse, or None."""
    action = next((a for a in parser._actions if a.dest == dest), None)
    if action is None or value is None:
        return None
    if isinstance(action, argparse._StoreTrueAction):
        return None if isinstance(value, bool) else "expected true or false"
    if action.choices is not None and value not in action.choices:
        return f"expected one of {', '.join(map(str, action.choices))}"
    if action.type is None:
        return None
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    try:
        action.type(text)
    except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
        return " ".join(str(e).split()) or "not a valid value"
    return None
