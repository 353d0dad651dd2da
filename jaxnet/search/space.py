"""Search spaces: which hyperparameters vary, over what, and how they are drawn.

A space maps a hyperparameter's name to one of three dimensions:

    LogUniform(low, high)   log10 of the value uniform in [log10 low, log10 high]
                            (learning rate, lambd: scales, not amounts); 0 < low < high
    Uniform(low, high)      the value uniform in [low, high] (keep_prob); low < high
    Choice(values)          one of the values (optimizer, hidden, batch_size, width)

The names split into two kinds, as ``jaxnet.hyperparams`` splits them:

    NUMERIC  learning_rate, lambd, keep_prob: traced numbers of the compiled
             program, so candidates that differ only here train together in one
             vmapped program;
    STATIC   optimizer, hidden (activation), batch_size, width (the hidden
             layers' sizes): a new program each, so candidates are grouped by
             them (``group_of``), one vmapped program per group.

Values are checked with the library's own rules when the space is built
(``check_space``): a range's ends and every choice must be valid values of
their hyperparameter, so no candidate drawn from the space can be refused
later, after something has compiled.

Sampling is seeded (numpy's PCG64 from ``seed``): "random" draws
``num_candidates`` independent candidates; "grid" takes every choice and
``grid_points`` evenly spaced values of each range (log-spaced for
LogUniform), all combinations.
"""

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxnet.activations import ACTIVATIONS
from jaxnet.hyperparams import check_count, check_number
from jaxnet.optimizers import OPTIMIZERS


class LogUniform(NamedTuple):
    """log10(value) uniform in [log10 low, log10 high]; 0 < low < high."""

    low: float
    high: float


class Uniform(NamedTuple):
    """value uniform in [low, high]; low < high."""

    low: float
    high: float


class Choice(NamedTuple):
    """One of ``values`` (at least one)."""

    values: tuple


Dimension = LogUniform | Uniform | Choice
NUMERIC = ("learning_rate", "lambd", "keep_prob")
STATIC = ("optimizer", "hidden", "batch_size", "width")
SAMPLERS = ("random", "grid")


class SpaceError(ValueError):
    """A search space, or a search setting, that cannot be searched."""


def _check_static(name: str, value) -> Any:
    """One choice of a STATIC hyperparameter, normalized (width -> tuple)."""
    if name == "optimizer":
        if value not in OPTIMIZERS:
            raise SpaceError(
                f"optimizer choice {value!r} is not one of {list(OPTIMIZERS)}"
            )
        return value
    if name == "hidden":
        if value not in ACTIVATIONS:
            raise SpaceError(
                f"hidden choice {value!r} is not a hidden activation; choose from "
                f"{list(ACTIVATIONS)}"
            )
        return value
    if name == "batch_size":
        return None if value is None else check_count("batch_size", value)
    # width: one int (every hidden layer) or a sequence (one per hidden layer)
    widths = value if isinstance(value, Sequence) else (value,)
    if not widths:
        raise SpaceError("width choice () has no layers: give at least one size")
    return tuple(check_count("width", w) for w in widths)


def _check_numeric(name: str, value) -> float:
    try:
        return float(check_number(name, value))
    except ValueError as e:
        raise SpaceError(f"search space {name}: {e}") from None


def check_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """The space validated, its values normalized (Python floats, tuples).

    Raises:
        SpaceError: an empty space or choice, an unknown name, a range that is
            inverted or empty (low >= high), a LogUniform whose low end is not
            > 0, or a value its hyperparameter's rule refuses; one line each.
    """
    if not isinstance(space, Mapping) or not space:
        raise SpaceError(
            "the search space is empty: give at least one hyperparameter, e.g. "
            "{'learning_rate': LogUniform(1e-4, 1e-1)}"
        )
    checked: dict[str, Dimension] = {}
    for name, dim in space.items():
        if name not in NUMERIC + STATIC:
            raise SpaceError(
                f"cannot search {name!r}: the searchable hyperparameters are "
                f"{list(NUMERIC + STATIC)}"
            )
        if isinstance(dim, Choice):
            if len(dim.values) == 0:
                raise SpaceError(f"search space {name}: Choice() has no values")
            check = _check_numeric if name in NUMERIC else _check_static
            checked[name] = Choice(tuple(check(name, v) for v in dim.values))
            continue
        if not isinstance(dim, LogUniform | Uniform):
            raise SpaceError(
                f"search space {name}: expected LogUniform, Uniform or Choice; got "
                f"{dim!r}"
            )
        if name not in NUMERIC:
            raise SpaceError(
                f"search space {name}: a range needs a number; {name} takes "
                "Choice([...])"
            )
        kind = type(dim).__name__
        if isinstance(dim, LogUniform) and not float(dim.low) > 0:
            raise SpaceError(
                f"search space {name}: {kind}({dim.low}, {dim.high}) needs "
                "0 < low (a log range); use Uniform or a positive low end"
            )
        low, high = _check_numeric(name, dim.low), _check_numeric(name, dim.high)
        if not low < high:
            raise SpaceError(
                f"search space {name}: {kind}({dim.low}, {dim.high}) is "
                f"{'inverted' if low > high else 'empty'}: give low < high"
            )
        checked[name] = type(dim)(low, high)
    return checked


def is_log(dim: Dimension) -> bool:
    """Whether the dimension is searched on a log scale (a LogUniform)."""
    return isinstance(dim, LogUniform)


def _draw(rng: np.random.Generator, dim: Dimension):
    if isinstance(dim, Choice):
        return dim.values[int(rng.integers(len(dim.values)))]
    if isinstance(dim, LogUniform):
        low, high = math.log10(dim.low), math.log10(dim.high)
        return float(10 ** rng.uniform(low, high))
    return float(rng.uniform(dim.low, dim.high))


def _points(dim: Dimension, n: int) -> tuple:
    if isinstance(dim, Choice):
        return dim.values
    if isinstance(dim, LogUniform):
        return tuple(float(v) for v in np.geomspace(dim.low, dim.high, n))
    return tuple(float(v) for v in np.linspace(dim.low, dim.high, n))


def sample(
    space: Mapping[str, Any],
    num_candidates: int | None = None,
    *,
    sampler: str = "random",
    grid_points: int = 3,
    seed: int = 0,
) -> list[dict]:
    """Candidates drawn from ``space``: a list of {name: value} dicts.

    Args:
        space: name -> LogUniform, Uniform or Choice (see the module doc).
        num_candidates: how many to draw ("random"); "grid" makes every
            combination and takes None or that exact count.
        sampler: "random" or "grid".
        grid_points: values per range on a grid (>= 2).
        seed: the sampler's seed (an integer >= 0).

    Raises:
        SpaceError: a bad space (``check_space``), sampler or count.
    """
    space = check_space(space)
    if sampler not in SAMPLERS:
        raise SpaceError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    if sampler == "grid":
        points = check_count("grid_points", grid_points)
        if points < 2 and any(not isinstance(d, Choice) for d in space.values()):
            raise SpaceError(f"grid_points must be >= 2 for a range; got {points}")
        axes = [_points(dim, points) for dim in space.values()]
        grid = [
            dict(zip(space, values, strict=True)) for values in itertools.product(*axes)
        ]
        if num_candidates is not None and check_count(
            "num_candidates", num_candidates
        ) != len(grid):
            raise SpaceError(
                f"the grid has {len(grid)} candidates but num_candidates is "
                f"{num_candidates}: leave it out or change grid_points"
            )
        return grid
    if num_candidates is None:
        raise SpaceError("random sampling needs num_candidates (a positive integer)")
    n = check_count("num_candidates", num_candidates)
    rng = np.random.default_rng(operator.index(seed))
    return [{name: _draw(rng, dim) for name, dim in space.items()} for _ in range(n)]


def group_of(candidate: Mapping[str, Any]) -> str:
    """The shape group's name: the candidate's STATIC values ("" if none)."""
    return ",".join(f"{k}={_show(candidate[k])}" for k in STATIC if k in candidate)


def _show(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)
