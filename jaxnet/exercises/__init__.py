"""Graded exercises, in the lecture's order: write the function, then check it.

    from jaxnet import exercises

    exercises.list()                      # the names, in the lecture's order
    print(exercises.describe("linear_backward"))   # signature and formula

    def linear_backward(dZ, cache):
        ...                               # your code

    exercises.check("linear_backward", linear_backward)

``check`` calls the function on several inputs (float64, several shapes,
random values, kinks such as exact zeros included) and compares what it
returns with jaxnet's own rule and with ``jax.grad`` (where there is a
gradient), within rtol 1e-5. The result prints as one line when it passed, or
with a hint in the lecture's terms naming the likely mistake (a missing 1/m, a
transposed dW, keepdims lost in db, dZ from A instead of Z, a dropout mask not
divided by keep_prob, a row/column layout swap, ...). A function that raises or
returns the wrong shape gets a hint too, never a traceback; one whose body is
still ``...`` (or raises NotImplementedError) is "not yet written".

The student's function may use numpy or jax.numpy; its inputs are numpy
float64 arrays, and caches are ``jaxnet.LayerCache`` tuples of them.
``solution(name)`` returns the model answer (``inspect.getsource`` shows it).
"""

from collections.abc import Callable
from typing import Any

import jax

from jaxnet.exercises import backward, basics
from jaxnet.exercises.grading import CheckResult, Exercise, Mistake, Outputs, grade

__all__ = [
    "CheckResult",
    "Exercise",
    "Mistake",
    "check",
    "describe",
    "list",
    "solution",
]

EXERCISES: dict[str, Exercise] = {
    e.name: e for e in basics.EXERCISES + backward.EXERCISES
}

# name -> (cases, references): computed once per session (the inputs are fixed).
_REFERENCES: dict[str, tuple[Any, Any]] = {}


def list() -> tuple[str, ...]:  # noqa: A001  (the issue's name; shadows no caller)
    """The exercises' names, in the lecture's order."""
    return tuple(EXERCISES)


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(
            f"no exercise {name!r}; exercises.list() names them: {', '.join(EXERCISES)}"
        )
    return EXERCISES[name]


def solution(name: str) -> Callable[..., Any]:
    """The model answer of exercise ``name``, with the exercise's signature.

    Raises:
        ValueError: no such exercise (the message lists them).
    """
    return _exercise(name).solution


def describe(name: str) -> str:
    """What exercise ``name`` asks: its signature, the formula, its section."""
    e = _exercise(name)
    return f"{e.signature}\n  {e.task}\n  (lecture section {e.section})"


def _as_numpy(outputs) -> Outputs:
    import numpy as np

    return tuple(np.asarray(o, dtype=np.float64) for o in outputs)


def _compiled(fn: Callable[..., Any], args: tuple):
    """fn(*args) as one compiled program: the numpy arrays among args are its
    inputs, everything else (names, numbers) is fixed. Far quicker than running
    jaxnet's rule op by op on each new shape."""
    import numpy as np

    leaves, tree = jax.tree.flatten(args)
    dynamic = [i for i, x in enumerate(leaves) if isinstance(x, np.ndarray)]

    def program(*arrays):
        full = [*leaves]
        for i, array in zip(dynamic, arrays, strict=True):
            full[i] = array
        return fn(*jax.tree.unflatten(tree, full))

    return jax.jit(program)(*(leaves[i] for i in dynamic))


def _references(exercise: Exercise):
    """The inputs and jaxnet's outputs on them, checked against jax.grad once."""
    if exercise.name not in _REFERENCES:
        import numpy as np

        cases = exercise.cases()
        references = [_as_numpy(_compiled(exercise.rule, args)) for args in cases]
        if exercise.autodiff is not None:
            for args, want in zip(cases, references, strict=True):
                auto = _as_numpy(_compiled(exercise.autodiff, args))
                if not all(
                    np.allclose(a, w, rtol=1e-9, atol=1e-12)
                    for a, w in zip(auto, want, strict=True)
                ):
                    raise AssertionError(
                        f"jaxnet's rule for {exercise.name} differs from jax.grad"
                    )
        _REFERENCES[exercise.name] = (cases, references)
    return _REFERENCES[exercise.name]


def check(name: str, fn: Callable[..., Any]) -> CheckResult:
    """Grade the student's ``fn`` for exercise ``name`` (see the module).

    Args:
        name: one of ``list()``.
        fn: the student's function, with the signature ``describe(name)`` gives.

    Returns:
        A ``CheckResult``: ``.passed``, ``.status``, ``.hint``; it prints readably.

    Raises:
        ValueError: no such exercise (the message lists them).
    """
    exercise = _exercise(name)
    with jax.enable_x64(True):
        cases, references = _references(exercise)
        return grade(exercise, fn, cases, references)
