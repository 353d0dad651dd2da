"""The playground's settings: declared, capped and validated in one place.

Every request's settings pass ``parse_settings`` before anything is built. The
choices are read from the library's tables (``ACTIVATIONS``, ``OUTPUTS``,
``INIT_SCALES``, ``OPTIMIZERS``, ``GRAD_SOURCES``) and the numbers are checked by
its own rules (``jaxnet.hyperparams``), so the page accepts exactly what jaxnet
accepts. The caps keep one local server responsive:

    hidden layers  at most MAX_HIDDEN_LAYERS (6), each 1..MAX_WIDTH (128) units
    points         MIN_POINTS (20) .. MAX_POINTS (2000)
    iterations     1 .. MAX_ITERATIONS (1,000,000) per run
    classes        2 .. MAX_CLASSES (5)

A bad value raises ``SettingsError`` (a ValueError) whose message names the
setting, what was expected and the fix; the page shows it beside the control.
"""

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jax.numpy as jnp

from jaxnet.activations import ACTIVATIONS
from jaxnet.hyperparams import GRAD_SOURCES, make_hyperparams
from jaxnet.optimizers import OPTIMIZERS
from jaxnet.outputs import OUTPUTS
from jaxnet.params import INIT_SCALES

DATASETS = ("flower", "spirals", "blobs", "csv")
PLAYGROUND_OUTPUTS = ("sigmoid", "softmax")  # classifiers of OUTPUTS
MAX_HIDDEN_LAYERS = 6
MAX_WIDTH = 128
MIN_POINTS, MAX_POINTS = 20, 2000
MAX_ITERATIONS = 1_000_000
MAX_CLASSES = 5
MAX_SEED = 2**31 - 1


class SettingsError(ValueError):
    """A setting out of its range; ``field`` names the control it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Settings:
    """One run's set-up, as the page and the URL hold it (all validated)."""

    data: str = "flower"
    classes: int = 2  # spirals only (the flower and the blobs have 2)
    points: int = 400
    hidden: tuple[int, ...] = (8, 8)
    activations: tuple[str, ...] = ("tanh", "tanh")
    output: str = "sigmoid"
    init: str = "xavier"
    learning_rate: float = 0.1
    optimizer: str = "gd"
    lambd: float = 0.0
    keep_prob: float = 1.0
    batch_size: int | None = None
    iterations: int = 20_000
    seed: int = 0
    grad: str = "manual"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples as lists."""
        d = asdict(self)
        d["hidden"], d["activations"] = list(self.hidden), list(self.activations)
        return d


DEFAULTS = Settings()
FIELDS = tuple(DEFAULTS.as_dict())


def options() -> dict[str, Any]:
    """What the page offers: the library's tables, the caps and the defaults."""
    return {
        "datasets": list(DATASETS),
        "activations": list(ACTIVATIONS),
        "outputs": [name for name in PLAYGROUND_OUTPUTS if name in OUTPUTS],
        "inits": list(INIT_SCALES),
        "optimizers": list(OPTIMIZERS),
        "grads": list(GRAD_SOURCES),
        "caps": {
            "hidden_layers": MAX_HIDDEN_LAYERS,
            "width": MAX_WIDTH,
            "min_points": MIN_POINTS,
            "max_points": MAX_POINTS,
            "iterations": MAX_ITERATIONS,
            "classes": MAX_CLASSES,
        },
        "defaults": DEFAULTS.as_dict(),
    }


def _integer(field: str, value, low: int, high: int) -> int:
    """An integer in [low, high]; "12" (from a URL) and numpy ints accepted."""
    text = value.strip() if isinstance(value, str) else value
    try:
        if isinstance(text, bool) or text is None or text == "":
            raise TypeError
        number = int(text, 10) if isinstance(text, str) else operator.index(text)
    except (TypeError, ValueError):
        raise SettingsError(
            field, f"{field} must be a whole number from {low} to {high}; got {value!r}"
        ) from None
    if not low <= number <= high:
        raise SettingsError(
            field, f"{field} must be from {low} to {high}; got {number}"
        )
    return number


def _number(field: str, value) -> float:
    """A float from a number or its text; the library's rule checks the range."""
    try:
        if isinstance(value, bool) or value is None:
            raise TypeError
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise SettingsError(field, f"{field} must be a number; got {value!r}") from None


def _choice(field: str, value, known) -> str:
    if not isinstance(value, str) or value not in known:
        raise SettingsError(
            field, f"unknown {field} {value!r}; choose one of: {', '.join(known)}"
        )
    return value


def _names(value) -> list:
    """A list from a JSON list or a comma-separated string ("8,8")."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")] if value.strip() else []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validated ``Settings`` from the page's values (JSON or URL text).

    Missing fields take ``DEFAULTS``; the activations default to the first
    hidden activation repeated when only the widths change.

    Raises:
        SettingsError: an unknown field, a value of the wrong kind, or one
            outside its cap or the library's rule (the message says which).
    """
    if not isinstance(raw, Mapping):
        raise SettingsError("settings", "settings must be a JSON object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise SettingsError(
            unknown[0],
            f"unknown setting(s) {unknown}; the settings are {', '.join(FIELDS)}",
        )
    v = {**DEFAULTS.as_dict(), **raw}
    data = _choice("data", v["data"], DATASETS)
    classes = _integer("classes", v["classes"], 2, MAX_CLASSES)
    if data in ("flower", "blobs"):
        classes = 2
    points = _integer("points", v["points"], MIN_POINTS, MAX_POINTS)
    widths = _names(v["hidden"])
    if len(widths) > MAX_HIDDEN_LAYERS:
        raise SettingsError(
            "hidden",
            f"at most {MAX_HIDDEN_LAYERS} hidden layers; got {len(widths)}: remove "
            "some",
        )
    hidden = tuple(
        _integer(f"hidden layer {i + 1} width", n, 1, MAX_WIDTH)
        for i, n in enumerate(widths)
    )
    names = _names(v["activations"]) if "activations" in raw else []
    if not names:
        names = [DEFAULTS.activations[0]] * len(hidden)
    if len(names) != len(hidden):
        raise SettingsError(
            "activations",
            f"one activation per hidden layer: {len(hidden)} layer(s) but "
            f"{len(names)} activation(s) {names}",
        )
    activations = tuple(
        _choice(f"activation of layer {i + 1}", name, tuple(ACTIVATIONS))
        for i, name in enumerate(names)
    )
    output = _choice("output", v["output"], PLAYGROUND_OUTPUTS)
    if output == "sigmoid" and classes > 2:
        raise SettingsError(
            "output",
            f"a sigmoid output separates 2 classes; this data has {classes}: "
            "choose softmax",
        )
    init = _choice("init", v["init"], tuple(INIT_SCALES))
    optimizer = _choice("optimizer", v["optimizer"], OPTIMIZERS)
    grad = _choice("grad", v["grad"], GRAD_SOURCES)
    numbers = {k: _number(k, v[k]) for k in ("learning_rate", "lambd", "keep_prob")}
    for name, value in numbers.items():
        try:  # the library's rule and the float32 range, one value at a time
            make_hyperparams(**{name: value}, dtype=jnp.float32)
        except ValueError as e:
            raise SettingsError(name, str(e)) from None
    batch = v["batch_size"]
    full = batch is None or (isinstance(batch, str) and batch.strip() in ("", "full"))
    batch_size = None if full else _integer("batch_size", batch, 1, MAX_POINTS)
    return Settings(
        data=data,
        classes=classes,
        points=points,
        hidden=hidden,
        activations=activations,
        output=output,
        init=init,
        learning_rate=numbers["learning_rate"],
        optimizer=optimizer,
        lambd=numbers["lambd"],
        keep_prob=numbers["keep_prob"],
        batch_size=batch_size,
        iterations=_integer("iterations", v["iterations"], 1, MAX_ITERATIONS),
        seed=_integer("seed", v["seed"], 0, MAX_SEED),
        grad=grad,
    )
