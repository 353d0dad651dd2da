"""Gradient checking: a hand-written gradient against jax.grad and finite differences.

For each leaf of the parameter pytree the check reports

    relative difference = ||g_manual - g_ref|| / (||g_manual|| + ||g_ref||)

(0 when both are zero) against two references:

- ``jax.grad`` of the scalar function, threshold ``autodiff_tol`` (default 1e-10).
  Both are exact up to rounding in float64, so a correct rule agrees to ~1e-14;
  1e-10 leaves room for cancellation in long sums.
- centered finite differences (f(theta + eps) - f(theta - eps)) / (2 eps), one
  coordinate at a time, threshold ``fd_tol`` (default 1e-6). The deeplearning.ai
  check uses eps = 1e-7 with threshold 2e-7; we use eps = 1e-6, near the optimum
  (machine eps)^(1/3) ~ 6e-6 for centered differences in float64, where the
  truncation error (~eps^2 f''') and the rounding error (~1e-16 |f| / eps) are
  both ~1e-10 relative; 1e-6 then flags any real bug (which shows up as O(1)
  differences) with a wide margin over this noise.

Checks run in float64 (jax_enable_x64 must be on): float32's 1e-7 resolution
cannot tell a correct rule from a slightly wrong one.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

DEFAULT_EPS = 1e-6
DEFAULT_FD_TOL = 1e-6
DEFAULT_AUTODIFF_TOL = 1e-10


class LeafCheck(NamedTuple):
    """The check of one leaf: its path (e.g. "[0]['W']"), shape and errors."""

    path: str
    shape: tuple[int, ...]
    autodiff_error: float
    fd_error: float
    passed: bool


class GradCheckResult(NamedTuple):
    """Per-leaf results, the overall verdict and the tolerances used.

    Its truth value is the verdict, so ``assert check_gradients(...)`` fails on a
    failed check (a plain NamedTuple of five fields would always be true).
    """

    leaves: tuple[LeafCheck, ...]
    passed: bool
    autodiff_tol: float
    fd_tol: float
    eps: float

    def __bool__(self) -> bool:
        return bool(self.passed)

    @property
    def failed_leaves(self) -> tuple[str, ...]:
        """Paths of the leaves that failed either comparison."""
        return tuple(leaf.path for leaf in self.leaves if not leaf.passed)

    def __str__(self) -> str:
        header = (
            f"gradient check {'PASSED' if self.passed else 'FAILED'} "
            f"(autodiff tol {self.autodiff_tol:.0e}, finite-difference tol "
            f"{self.fd_tol:.0e}, eps {self.eps:.0e})"
        )
        width = max([4] + [len(leaf.path) for leaf in self.leaves])
        lines = [
            header,
            f"  {'leaf':<{width}}  {'shape':<14} {'vs jax.grad':>12} "
            f"{'vs finite diff':>15}",
        ]
        for leaf in self.leaves:
            fd = "not checked" if np.isnan(leaf.fd_error) else f"{leaf.fd_error:.3e}"
            mark = "ok" if leaf.passed else "FAIL"
            lines.append(
                f"  {leaf.path:<{width}}  {str(leaf.shape):<14} "
                f"{leaf.autodiff_error:>12.3e} {fd:>15}  {mark}"
            )
        return "\n".join(lines)


def relative_difference(a: Any, b: Any) -> float:
    """||a - b|| / (||a|| + ||b||) over all entries; 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / denominator)


def finite_difference_grad(
    f: Callable[[Any], jax.Array], params: Any, eps: float = DEFAULT_EPS
) -> Any:
    """Centered finite-difference gradient of scalar f at params, same pytree.

    Every coordinate i is perturbed by +-eps on the flattened vector; the 2N
    evaluations run as one compiled ``lax.map`` (batched, so memory stays bounded).
    """
    flat, unravel = ravel_pytree(params)

    def one_coordinate(i):
        step = jnp.zeros_like(flat).at[i].set(eps)
        return (f(unravel(flat + step)) - f(unravel(flat - step))) / (2 * eps)

    fd = jax.jit(lambda idx: jax.lax.map(one_coordinate, idx, batch_size=64))(
        jnp.arange(flat.size)
    )
    return unravel(fd)


def _require_float64(params: Any):
    if not jax.config.jax_enable_x64:
        raise ValueError(
            "gradient checks need float64: call "
            "jax.config.update('jax_enable_x64', True) before creating the params"
        )
    for path, leaf in jax.tree.leaves_with_path(params):
        if jnp.asarray(leaf).dtype != jnp.float64:
            raise ValueError(
                f"gradient checks need float64 leaves; leaf "
                f"{jax.tree_util.keystr(path)} is {jnp.asarray(leaf).dtype} "
                "(cast with jax.tree.map(lambda x: x.astype(jnp.float64), params))"
            )


def check_gradients(
    f: Callable[[Any], jax.Array],
    params: Any,
    manual_grad: Any,
    *,
    eps: float = DEFAULT_EPS,
    autodiff_tol: float = DEFAULT_AUTODIFF_TOL,
    fd_tol: float = DEFAULT_FD_TOL,
    finite_differences: bool = True,
) -> GradCheckResult:
    """Compare a hand-written gradient of f with jax.grad and finite differences.

    Args:
        f: scalar function of the parameter pytree, e.g.
            ``lambda p: model_cost(p, X, Y, activations)``.
        params: the point to check at: any pytree of float64 arrays (a list of
            {"W", "b"} dicts, a dict, a single array ...).
        manual_grad: the hand-written gradient at params, as a pytree with the
            structure of params, or a function params -> that pytree.
        eps: finite-difference step.
        autodiff_tol: largest relative difference accepted against jax.grad.
        fd_tol: largest relative difference accepted against finite differences.
        finite_differences: set False to skip the (2N evaluations) FD check for
            very large params; the autodiff comparison always runs.

    Returns:
        GradCheckResult; ``print(result)`` shows a table, ``result.passed`` (and
        ``bool(result)``) the verdict, ``result.failed_leaves`` the paths of the
        failing leaves.

    Raises:
        ValueError: params holds no arrays, float64 is off, or manual_grad's
            structure differs from params.
    """
    if not jax.tree.leaves(params):
        raise ValueError(
            f"params holds no arrays (got {params!r}): check_gradients needs the "
            "point to check at, a pytree with at least one float64 array, e.g. "
            "jaxnet.init_params(key, layer_dims, dtype=jnp.float64)"
        )
    _require_float64(params)
    manual = manual_grad(params) if callable(manual_grad) else manual_grad
    if jax.tree.structure(manual) != jax.tree.structure(params):
        raise ValueError(
            "manual gradient must have the structure of params: got "
            f"{jax.tree.structure(manual)}, expected {jax.tree.structure(params)}"
        )
    reference = jax.grad(f)(params)
    fd = finite_difference_grad(f, params, eps) if finite_differences else None
    leaves = []
    param_leaves = jax.tree.leaves_with_path(params)
    manual_leaves = jax.tree.leaves(manual)
    reference_leaves = jax.tree.leaves(reference)
    fd_leaves = jax.tree.leaves(fd) if fd is not None else [None] * len(manual_leaves)
    for (path, p), g, r, d in zip(
        param_leaves, manual_leaves, reference_leaves, fd_leaves, strict=True
    ):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"manual gradient leaf {jax.tree_util.keystr(path)} has shape "
                f"{jnp.shape(g)}; the parameter has shape {jnp.shape(p)}"
            )
        ad_error = relative_difference(g, r)
        fd_error = relative_difference(g, d) if d is not None else float("nan")
        passed = ad_error <= autodiff_tol and (d is None or fd_error <= fd_tol)
        leaves.append(
            LeafCheck(
                jax.tree_util.keystr(path) or "(root)",
                tuple(jnp.shape(p)),
                ad_error,
                fd_error,
                passed,
            )
        )
    return GradCheckResult(
        tuple(leaves), all(leaf.passed for leaf in leaves), autodiff_tol, fd_tol, eps
    )
