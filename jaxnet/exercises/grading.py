"""How an exercise is graded: run the student's function, compare, diagnose.

An ``Exercise`` holds the student-facing signature, deterministic inputs
(several shapes, random values in float64, kinks such as exact zeros included),
jaxnet's own rule, the same quantity through ``jax.grad`` / ``jax.vjp`` where
there is a gradient, and a list of known wrong variants, each with the hint
that names the mistake in the lecture's terms.

Grading: on every input the student's outputs must equal jaxnet's rule and the
autodiff route within ``RTOL`` / ``ATOL``. On the first input where they do not,
each wrong output is compared with the known wrong variants; a match gives that
variant's hint, otherwise the hint says which output differs and how (shape,
transpose, NaN, largest error).
"""

import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

# float64 references; a float32 student result passes too (its rounding is
# ~1e-7 relative), while every known wrong variant differs by > 1e-3 relative
# on the inputs used.
RTOL = 1e-5
ATOL = 1e-8

Outputs = tuple[np.ndarray, ...]


class AnswerFormError(Exception):
    """The student's return value has the wrong form; the message is the hint."""


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``wrong(*args)`` gives its outputs (canonical
    order, or None where the mistake cannot be told apart), ``hint`` names it."""

    hint: str
    wrong: Callable[..., Any]


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        name: the function the student writes.
        section: the lecture's section it belongs to.
        signature: how it is called and what it returns.
        task: the formula to implement.
        outputs: names of the returned arrays, in canonical order.
        solution: the model answer, with the exercise's signature.
        cases: () -> list of argument tuples (numpy, float64) for the student.
        rule: jaxnet's rule on the same arguments -> canonical outputs.
        autodiff: the same through jax.grad / jax.vjp, or None (no gradient).
        mistakes: known wrong variants with their hints.
        normalize: the student's return value -> canonical outputs; raises
            ``AnswerFormError`` with a hint when its form is wrong.
    """

    name: str
    section: str
    signature: str
    task: str
    outputs: tuple[str, ...]
    solution: Callable[..., Any]
    cases: Callable[[], list[tuple]]
    rule: Callable[..., Any]
    autodiff: Callable[..., Any] | None
    mistakes: tuple[Mistake, ...]
    normalize: Callable[[Any], Outputs]


@dataclass(frozen=True)
class CheckResult:
    """What ``exercises.check`` found. ``bool(result)`` is ``result.passed``.

    Attributes:
        name: the exercise.
        passed: equal to jaxnet's rule (and jax.grad) on every input.
        status: "passed", "not yet written" or "not yet right".
        hint: what to fix, in the lecture's terms ("" when passed).
        cases: how many inputs were checked (up to the first failing one).
        detail: the inputs' shapes when passed, else where it failed.
    """

    name: str
    passed: bool
    status: str
    hint: str
    cases: int
    detail: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return (
                f"{self.name}: passed. Equal to jaxnet's rule"
                f"{'' if 'no gradient' in self.detail else ' and jax.grad'} on "
                f"{self.cases} inputs ({self.detail}), float64, rtol {RTOL:g}."
            )
        head = f"{self.name}: {self.status}."
        where = f"\n  where: {self.detail}" if self.detail else ""
        return f"{head}\n  hint: {self.hint}{where}"

    __repr__ = __str__


def as_array(value: Any, name: str) -> np.ndarray:
    """A student's output as a float64 numpy array, or ``AnswerFormError``."""
    if value is None:
        raise AnswerFormError(f"{name} is None: return an array")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AnswerFormError(
            f"{name} should be an array; got {type(value).__name__} ({error})"
        ) from None
    return array


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and equal within RTOL / ATOL (NaN equals NaN)."""
    return a.shape == b.shape and bool(
        np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
    )


def _copy(args: tuple) -> tuple:
    """Fresh numpy copies, so a student's in-place edit cannot leak."""
    return jax.tree.map(lambda x: np.array(x) if isinstance(x, np.ndarray) else x, args)


def _describe(args: tuple) -> str:
    shapes = []
    for leaf in jax.tree.leaves(args):
        shape = np.shape(leaf)
        if shape:
            shapes.append("x".join(map(str, shape)))
        else:
            shapes.append(f"{leaf:.4g}" if isinstance(leaf, float) else repr(leaf))
    return ", ".join(shapes)


def _run(fn: Callable, args: tuple) -> Any:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # overflow in a naive exp is graded, not shown
        return fn(*_copy(args))


def _variant(mistake: Mistake, args: tuple) -> Outputs | None:
    try:
        outputs = _run(mistake.wrong, args)
    except Exception:  # a variant that cannot arise for these shapes
        return None
    if outputs is None:
        return None
    return tuple(np.asarray(o, dtype=np.float64) for o in outputs)


def _leaf_hint(name: str, got: np.ndarray, want: np.ndarray) -> str:
    if got.shape != want.shape:
        if got.T.shape == want.shape and close(got.T, want):
            return f"{name} is transposed: expected shape {want.shape}"
        if got.size == want.size and close(got.reshape(want.shape), want):
            return (
                f"{name} has shape {got.shape}, expected {want.shape}: keep the "
                "lecture's layout (columns are examples; a vector stays 2-D, "
                "keepdims=True)"
            )
        return f"{name} has shape {got.shape}, expected {want.shape}"
    if np.any(~np.isfinite(got)) and np.all(np.isfinite(want)):
        return f"{name} holds NaN or inf where jaxnet's rule is finite"
    error = float(np.max(np.abs(got - want)))
    return (
        f"{name} differs from jaxnet's rule (largest difference {error:.3g}); "
        "compare each step with the lecture's formula"
    )


def diagnose(
    exercise: Exercise, args: tuple, got: Outputs, want: Outputs
) -> tuple[str, str]:
    """(hint, where) for outputs ``got`` that differ from ``want``."""
    names = exercise.outputs
    wrong = [i for i in range(len(want)) if not close(got[i], want[i])]
    variants: list[tuple[Mistake, Outputs]] = []
    for mistake in exercise.mistakes:
        v = _variant(mistake, args)
        if v is not None and len(v) == len(want):
            variants.append((mistake, v))
    where = f"output {', '.join(names[i] for i in wrong)}, inputs {_describe(args)}"
    for mistake, v in variants:  # one mistake explaining every wrong output
        explains = all(close(got[i], v[i]) for i in wrong)
        if explains and any(not close(v[i], want[i]) for i in wrong):
            return mistake.hint, where
    hints: list[str] = []
    for i in wrong:  # else output by output
        found = [
            m.hint
            for m, v in variants
            if close(got[i], v[i]) and not close(v[i], want[i])
        ]
        hint = found[0] if found else _leaf_hint(names[i], got[i], want[i])
        if hint not in hints:
            hints.append(hint)
    return "; ".join(hints), where


def _failure(exercise: Exercise, status: str, hint: str, cases: int, where=""):
    return CheckResult(exercise.name, False, status, hint, cases, where)


def grade(
    exercise: Exercise,
    fn: Callable,
    cases: Sequence[tuple],
    references: Sequence[Outputs],
) -> CheckResult:
    """Run ``fn`` on every case and compare with the references (see module)."""
    if not callable(fn):
        return _failure(
            exercise, "not yet right", f"pass a function; got {type(fn).__name__}", 0
        )
    for k, (args, want) in enumerate(zip(cases, references, strict=True), start=1):
        try:
            out = _run(fn, args)
        except NotImplementedError:
            return _failure(exercise, "not yet written", _unwritten(exercise), 0)
        except Exception as error:  # the student's bug, reported as a hint
            return _failure(
                exercise, "not yet right", _raised_hint(error), k, _describe(args)
            )
        if out is None or out is Ellipsis:
            if k == 1:
                return _failure(exercise, "not yet written", _unwritten(exercise), 0)
            hint = f"{exercise.name} returned None on input {k}"
            return _failure(exercise, "not yet right", hint, k, _describe(args))
        try:
            got = exercise.normalize(out)
        except AnswerFormError as error:
            return _failure(exercise, "not yet right", str(error), k, _describe(args))
        if len(got) != len(want) or not all(map(close, got, want)):
            if len(got) != len(want):
                hint = f"return {', '.join(exercise.outputs)}"
                return _failure(exercise, "not yet right", hint, k)
            hint, where = diagnose(exercise, args, got, want)
            return _failure(exercise, "not yet right", hint, k, where)
    shapes = "; ".join(_describe(args) for args in cases)
    if exercise.autodiff is None:
        shapes += "; no gradient to compare"
    return CheckResult(exercise.name, True, "passed", "", len(cases), shapes)


def _unwritten(exercise: Exercise) -> str:
    return (
        f"fill in the body of your function; it returns "
        f"{', '.join(exercise.outputs)}. exercises.describe({exercise.name!r}) "
        "says what it computes"
    )


def _raised_hint(error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    text = f"your function raised {type(error).__name__}: {error}"
    text += f" (line {frame.lineno}: {frame.line})" if frame.line else ""
    if "broadcast" in str(error).lower():
        text += (
            ". Shapes that do not broadcast usually mean a sum lost its axis: "
            "keep it 2-D with keepdims=True"
        )
    return text
