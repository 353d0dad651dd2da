"""The lecture's hyperparameters: declared, defaulted and validated in one place.

Two kinds, because jit treats them differently:

- **Numbers** (``Hyperparams``, a pytree): the learning rate alpha, the L2
  strength lambd and the dropout keep probability keep_prob. Each is a scalar,
  or an (N,) vector in a sweep of N models. They are traced arguments of the
  compiled program, so a new value reuses it (the learning rate travels inside
  the optimizer state, as ``optax.inject_hyperparams`` keeps it).
- **Choices** (``TrainConfig``, frozen and hashable): the activations, where the
  gradient comes from, the optimizer's update rule, the minibatch size and which
  regularizers are on. A new choice is a new program.

Counts (iterations, batch size, print interval) are validated here too.
Everything is checked once, on the host, at the entry point (``fit``,
``train_loop``, ``sweep``, the experiments); traced code never validates.
Python, numpy and jax scalars are accepted alike; ``True`` is not a number.

    name           default   rule                     lecture
    learning_rate  0.0075    finite, > 0              alpha in W := W - alpha dW
    lambd          0         finite, >= 0             J += lambd/(2m) sum ||W||^2
    keep_prob      1         in [0.01, 1]             inverted dropout, 1 = off
    epsilon        -         finite, >= 0             "repeat until J < epsilon"
    num_iterations -         integer >= 1             "repeat num_iterations times"
    batch_size     None      integer >= 1 or None     minibatch size (None: all m)

Ranges in the run's dtype. The numbers are checked again after conversion to
the run's float dtype (``check_in_dtype``): a value that overflows it (1e308 or
1e39 in float32, whose largest value is 3.4e38) or that underflows a non-zero
value to 0 (1e-50 in float32) is refused, naming the dtype's range, so alpha *
dW with a unit gradient is always finite and a non-zero alpha never trains at
0. keep_prob has a floor, ``MIN_KEEP_PROB`` = 0.01: inverted dropout keeps
keep_prob * n[l] of a layer's n[l] units on average and scales them by
1/keep_prob, so below 0.01 a layer of 100 units keeps less than one unit per
step and the survivors are scaled by more than 100 (at keep_prob = 1e-300 every
unit is dropped and 1/keep_prob overflows): no longer dropout but noise.
"""

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypedDict, overload

import jax
import jax.numpy as jnp
import numpy as np

GRAD_SOURCES = ("manual", "autodiff")


class Rule(NamedTuple):
    """A numeric hyperparameter's valid range, and what it is."""

    valid: Callable[[np.ndarray], np.ndarray]
    expected: str
    meaning: str


MIN_KEEP_PROB = 0.01  # the floor of keep_prob: see the module doc

RULES: dict[str, Rule] = {
    "learning_rate": Rule(lambda v: v > 0, "a finite number > 0", "alpha, step size"),
    "lambd": Rule(lambda v: v >= 0, "a finite number >= 0", "L2 strength"),
    "keep_prob": Rule(
        lambda v: (v >= MIN_KEEP_PROB) & (v <= 1),
        f"in (0, 1] and at least {MIN_KEEP_PROB} (a probability of keeping a "
        "unit, not a drop rate; smaller values drop nearly every unit)",
        "inverted-dropout keep probability",
    ),
    "epsilon": Rule(lambda v: v >= 0, "a finite number >= 0", "stop at J < epsilon"),
    "tol": Rule(lambda v: v >= 0, "a finite number >= 0", "least J decrease"),
}


class TrainOptions(TypedDict, total=False):
    """The options every training entry point takes (``fit``, ``fit_until``,
    ``train_loop``; ``sweep`` names the swept ones in the plural). Declared and
    defaulted here (``OPTION_DEFAULTS``), validated once by
    ``jaxnet.boundary.prepare``.

    Keys:
        learning_rate: alpha (> 0); kept in the optimizer state, so a new value
            reuses the compiled program. Default None: 0.0075
            (``DEFAULT_LEARNING_RATE``) for a named rule, the transformation's
            own rate for an optax optimizer.
        optimizer: None (plain gradient descent), a name from ``OPTIMIZERS``
            ("gd", "momentum", "nesterov", "rmsprop", "adam"), or any optax
            transformation. A transformation keeps its own learning rate unless
            learning_rate is given; then one built with
            ``optax.inject_hyperparams`` has its "learning_rate" set to it, and
            any other is refused (its rate is fixed, alpha would be ignored).
        grad: "manual" (the hand-written backward pass) or "autodiff".
        lambd: L2 regularization strength (>= 0); 0 leaves the term out.
        keep_prob: inverted-dropout keep probability for hidden layers, in
            (0, 1]; 1 = off.
        batch_size: minibatch size; None = full batch, the lecture's default.
        key: ``jax.random`` key for dropout and shuffling; None = key(0).
        first_layer: "auto", "dense" or "gram": how the run holds W[1]
            (``jaxnet.wide``; "gram" is exact and much faster for n_x >> m under
            gd, momentum and nesterov, and "auto" picks it then). The params
            returned are the lecture's either way.
        mesh: a 1-D ``jax.sharding.Mesh`` (``jaxnet.distributed.make_mesh``),
            or None (the default: one device, nothing changes). One model
            trains data parallel: the m columns of X and Y are split over the
            devices, the state is copied to each, and XLA all-reduces the
            gradient; the numbers are the one-device run's (the order of the
            additions aside). A sweep splits its N models instead. m (or N)
            must be a multiple of the device count: it is refused otherwise,
            naming the nearest valid sizes (no padding). With several
            processes, X and Y are this process's columns
            (``jaxnet.distributed.local_columns``); a sweep, which copies its
            data, takes all of them in every process.
    """

    learning_rate: float
    optimizer: Any
    grad: str
    lambd: float
    keep_prob: float
    batch_size: int | None
    key: Any
    first_layer: str
    mesh: Any


DEFAULT_LEARNING_RATE = 0.0075  # alpha when none is given and the rule is named

OPTION_DEFAULTS: dict[str, Any] = {
    "learning_rate": None,  # DEFAULT_LEARNING_RATE, or an optax optimizer's own
    "optimizer": None,
    "grad": "manual",
    "lambd": 0.0,
    "keep_prob": 1.0,
    "batch_size": None,
    "key": None,
    "first_layer": "auto",
    "mesh": None,
}


def training_options(given: Mapping[str, Any]) -> dict:
    """``given`` completed with the defaults; an unknown name is a TypeError."""
    unknown = sorted(set(given) - set(OPTION_DEFAULTS))
    if unknown:
        raise TypeError(
            f"unknown training option(s) {unknown}; the options are "
            f"{sorted(OPTION_DEFAULTS)} (see jaxnet.hyperparams.TrainOptions)"
        )
    return {**OPTION_DEFAULTS, **given}


class Hyperparams(NamedTuple):
    """The numeric hyperparameters of a run: scalars, or (N,) vectors in a sweep."""

    learning_rate: jax.Array
    lambd: jax.Array
    keep_prob: jax.Array


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def check_number(name: str, value, *, vector_ok: bool = False) -> np.ndarray:
    """Validate one numeric hyperparameter on the host; returns it as float64 numpy.

    Raises:
        ValueError: not a real number (bool and strings included), not finite,
            or outside the rule of ``RULES[name]``; the message says what was
            expected.
    """
    rule = RULES[name]
    shape_word = "a number or a 1-D sequence of numbers" if vector_ok else "a number"
    if isinstance(value, bool | np.bool_ | str | bytes) or value is None:
        raise ValueError(f"{name} must be {shape_word} {rule.expected}; got {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be {shape_word} {rule.expected}; got {value!r}"
        ) from None
    if array.dtype == np.bool_ or np.asarray(value).dtype.kind in "bOUSc":
        raise ValueError(f"{name} must be {shape_word} {rule.expected}; got {value!r}")
    if array.ndim > (1 if vector_ok else 0) or (vector_ok and array.size == 0):
        raise ValueError(f"{name} must be {shape_word}; got shape {array.shape}")
    bad = ~(np.isfinite(array) & rule.valid(array))
    if np.any(bad):
        shown = float(array[bad].ravel()[0] if array.ndim else array)
        raise ValueError(f"{name} must be {rule.expected}; got {shown!r}")
    return array


def check_in_dtype(name: str, array: np.ndarray, dtype) -> None:
    """Refuse values that ``dtype`` cannot hold: overflow to inf, or non-zero to 0.

    ``array`` is the float64 value(s) already checked by ``check_number``; the
    message names the value, its position in a sequence and the dtype's range.

    Raises:
        ValueError: a value above the dtype's largest finite value (3.4e38 for
            float32), or a non-zero value below its smallest (1.4e-45 for
            float32, subnormals included), which would become 0.
    """
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        converted = np.asarray(array, np.float64).astype(info.dtype)
    bad = ~np.isfinite(converted) | ((converted == 0) & (np.asarray(array) != 0))
    if not np.any(bad):
        return
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if np.ndim(array) else ()
    value = float(np.asarray(array)[index])
    where = f"{name}[{index[0]}]" if index else name
    what = "overflows" if abs(value) > 1 else "underflows to 0 in"
    raise ValueError(
        f"{where} = {value:g} {what} the run's dtype {info.dtype} (finite values up "
        f"to {float(info.max):.4g}, non-zero values from "
        f"{float(info.smallest_subnormal):.4g}): {RULES[name].expected} that "
        f"{info.dtype} can hold is needed; pass a value in that range or use "
        "float64 params"
    )


@overload
def check_count(name: str, value, *, allow_none: Literal[False] = False) -> int: ...
@overload
def check_count(name: str, value, *, allow_none: bool) -> int | None: ...
def check_count(name: str, value, *, allow_none: bool = False) -> int | None:
    """A positive integer count (iterations, batch size ...), numpy ints included.

    Raises:
        ValueError: a float (2.5, even 3.0), a bool, a string, or a value < 1.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a positive integer; got {value!r} ({type(value).__name__})"
        ) from None
    if count < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {count}")
    return count


def make_hyperparams(
    learning_rate=DEFAULT_LEARNING_RATE,
    lambd=OPTION_DEFAULTS["lambd"],
    keep_prob=OPTION_DEFAULTS["keep_prob"],
    *,
    dtype=jnp.float32,
    num_models: int | None = None,
) -> Hyperparams:
    """Validated ``Hyperparams`` as arrays of ``dtype``.

    Args:
        learning_rate, lambd, keep_prob: numbers (Python, numpy or jax), or with
            ``num_models`` also length-N sequences (one value per model).
        dtype: the run's float dtype (the params').
        num_models: N for a sweep: every value becomes an (N,) vector; None for
            one model (scalars only).

    Raises:
        ValueError: a value outside its rule (see ``RULES``), one ``dtype``
            cannot hold (``check_in_dtype``), or a vector whose length is not N.
    """
    values = {}
    for name, value in (
        ("learning_rate", learning_rate),
        ("lambd", lambd),
        ("keep_prob", keep_prob),
    ):
        if _is_traced(value):  # inside someone's jit: their values, unchecked
            values[name] = jnp.asarray(value, dtype)
            continue
        array = check_number(name, value, vector_ok=num_models is not None)
        check_in_dtype(name, array, dtype)
        if num_models is not None:
            if array.ndim == 0:
                array = np.full((num_models,), array)
            elif array.shape[0] != num_models:
                raise ValueError(
                    f"{name} has {array.shape[0]} values but the sweep has "
                    f"{num_models} models"
                )
        values[name] = jnp.asarray(array, dtype)
    return Hyperparams(**values)


def regularizers_on(hp: Hyperparams) -> tuple[bool, bool]:
    """(L2 on, dropout on): whether any model has lambd != 0 / keep_prob != 1.

    Decided once on the host, so a run without regularization compiles a step
    without the penalty or the masks. Traced values count as on.
    """

    def on(value, off_value):
        if _is_traced(value):
            return True
        return bool(np.any(np.asarray(value) != off_value))

    return on(hp.lambd, 0), on(hp.keep_prob, 1)


@dataclass(frozen=True)
class TrainConfig:
    """The choices that shape the compiled program (hashable: a jit static arg).

    Attributes:
        activations: one name per layer; the last is the output ("sigmoid",
            "softmax" or "linear").
        update: the optimizer's update function (``optax`` transformation's
            ``update``); the learning rate lives in its state.
        grad: "manual" (the lecture's backward pass) or "autodiff" (jax.grad).
        batch_size: minibatch size, or None for full-batch gradient descent.
        l2: include the L2 term (its strength is ``Hyperparams.lambd``).
        dropout: apply inverted dropout (``Hyperparams.keep_prob``).
        first_layer: how the run holds W[1], a row of ``jaxnet.wide.FIRST_LAYERS``:
            "dense" (the lecture's W[1]) or "gram" (exact coordinates for wide
            inputs); ``jaxnet.wide.choose_first_layer`` resolves "auto".
        mesh: the ``jax.sharding.Mesh`` whose devices split the examples (data
            parallel): each minibatch stays split over it. None with one device,
            and in a sweep (its models are split; the step needs nothing).
    """

    activations: tuple[str, ...]
    update: Callable
    grad: str = "manual"
    batch_size: int | None = None
    l2: bool = False
    dropout: bool = False
    first_layer: str = "dense"
    mesh: Any = None

    def __post_init__(self):
        if self.grad not in GRAD_SOURCES:
            raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {self.grad!r}")
        check_count("batch_size", self.batch_size, allow_none=True)
