"""Gradient checking: a hand-written gradient against jax.grad and finite differences.

For each leaf of the parameter pytree the check reports

    relative difference = ||g_manual - g_ref|| / (||g_manual|| + ||g_ref||)

(0 when both are zero) against two references:

- ``jax.grad`` of the scalar function, threshold ``autodiff_tol`` (default 1e-10).
  Both are exact up to rounding in float64, so a correct rule agrees to ~1e-14;
  1e-10 leaves room for cancellation in long sums.
- centered finite differences (f(theta + eps) - f(theta - eps)) / (2 eps), one
  coordinate at a time, threshold ``fd_tol`` (default 1e-6), made kink-aware
  (below). The deeplearning.ai
  check uses eps = 1e-7 with threshold 2e-7; we use eps = 1e-6, near the optimum
  (machine eps)^(1/3) ~ 6e-6 for centered differences in float64, where the
  truncation error (~eps^2 f''') and the rounding error (~1e-16 |f| / eps) are
  both ~1e-10 relative; 1e-6 then flags any real bug (which shows up as O(1)
  differences) with a wide margin over this noise.

Kinks. ReLU networks are not differentiable everywhere: with b = 0 (the
library's init) a dead unit gives exact zeros one layer up, so Z = 0 exactly and
the centred difference straddles relu's kink; it then averages the two slopes,
which no correct rule gives (relu'(0) = 0 takes one of them). So the same 2N
evaluations (plus f(theta)) also give both one-sided differences per coordinate,

    forward  = (f(theta + eps e_i) - f(theta)) / eps
    backward = (f(theta) - f(theta - eps e_i)) / eps

Where f is smooth they differ by about eps |f''| (plus rounding, ~u |f| / eps).
Where they differ by more than ``kink_tol`` (default 100 eps) times the larger
of |forward|, |backward| and the leaf's rms slope, plus 10 u |f| / eps, the
coordinate counts as "at a kink (not differentiable here)", and the reference
for it is the hand-written value clipped to [min, max] of the two slopes: any
value between them (a subgradient, e.g. relu'(0) = 0) is accepted, a value
outside counts by its distance to the interval. Elsewhere the reference is the
centred difference. Either way the interval is widened by the differences'
rounding error, 10 u |f| / eps (~1.5e-9 for |f| ~ 0.7; seen: ~0.3 u |f| / eps),
which they cannot resolve. ``fd_tol`` then applies to the leaf as before. The
result says how many coordinates were at kinks.

Checks run in float64 (jax_enable_x64 must be on): float32's 1e-7 resolution
cannot tell a correct rule from a slightly wrong one.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

DEFAULT_EPS = 1e-6
DEFAULT_FD_TOL = 1e-6
DEFAULT_AUTODIFF_TOL = 1e-10
KINK_TOL_PER_EPS = 100.0  # default kink_tol = 100 eps: |f''| up to 100 x slope
ROUNDING_FACTOR = 10.0  # differences' rounding allowed: 10 u |f| / eps (seen: 0.3)


class LeafCheck(NamedTuple):
    """The check of one leaf: its path (e.g. "[0]['W']"), shape and errors.

    ``kinks``: how many of its coordinates were at a kink (the one-sided
    differences disagree; see the module docstring); 0 without differences.
    """

    path: str
    shape: tuple[int, ...]
    autodiff_error: float
    fd_error: float
    passed: bool
    kinks: int = 0


class GradCheckResult(NamedTuple):
    """Per-leaf results, the overall verdict and the tolerances used.

    Its truth value is the verdict, so ``assert check_gradients(...)`` fails on a
    failed check (a plain NamedTuple of five fields would always be true).
    ``kinks`` is the number of coordinates found at kinks (all leaves), where
    the finite-difference leg accepted any value between the two slopes.
    """

    leaves: tuple[LeafCheck, ...]
    passed: bool
    autodiff_tol: float
    fd_tol: float
    eps: float
    kinks: int = 0

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
        if self.kinks:
            header += (
                f"\n  {self.kinks} coordinate(s) at a kink (not differentiable "
                "here): accepted between the two one-sided slopes"
            )
        width = max([4] + [len(leaf.path) for leaf in self.leaves])
        lines = [
            header,
            f"  {'leaf':<{width}}  {'shape':<14} {'vs jax.grad':>12} "
            f"{'vs finite diff':>15} {'kinks':>6}",
        ]
        for leaf in self.leaves:
            checked = not np.isnan(leaf.fd_error)
            fd = f"{leaf.fd_error:.3e}" if checked else "not checked"
            kinks = str(leaf.kinks) if checked else "-"
            mark = "ok" if leaf.passed else "FAIL"
            lines.append(
                f"  {leaf.path:<{width}}  {str(leaf.shape):<14} "
                f"{leaf.autodiff_error:>12.3e} {fd:>15} {kinks:>6}  {mark}"
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


def one_sided_differences(
    f: Callable[[Any], jax.Array], params: Any, eps: float = DEFAULT_EPS
) -> tuple[jax.Array, Any, Any]:
    """f(theta) and both one-sided difference quotients of scalar f, per coordinate.

    forward_i = (f(theta + eps e_i) - f(theta)) / eps and backward_i =
    (f(theta) - f(theta - eps e_i)) / eps, from the same 2N + 1 evaluations as
    the centred difference (their mean), as one compiled ``lax.map``. The
    program is kept per (f, eps) and traced once per params structure, as
    ``jax.jit(f)`` would be: checking many params with one f compiles once.

    Returns:
        (f(theta), forward, backward); forward and backward have params' pytree.
    """
    return _differences_program(f, float(eps))(params)


@functools.lru_cache(maxsize=32)
def _differences_program(f: Callable, eps: float) -> Callable:
    @jax.jit
    def run(params):
        flat, unravel = ravel_pytree(params)

        def one_coordinate(i):
            step = jnp.zeros_like(flat).at[i].set(eps)
            return f(unravel(flat + step)), f(unravel(flat - step))

        plus, minus = jax.lax.map(one_coordinate, jnp.arange(flat.size), batch_size=64)
        f0 = f(params)
        return f0, unravel((plus - f0) / eps), unravel((f0 - minus) / eps)

    return run


def kink_reference(
    g: Any, forward: Any, backward: Any, f0: float, eps: float, kink_tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """The finite-difference reference for one leaf, and where it sits at kinks.

    A coordinate is at a kink when |forward - backward| > kink_tol * max(|forward|,
    |backward|, rms slope of the leaf) + r, r = 10 u |f0| / eps (u: float64's
    eps, r: the differences' rounding error); its reference is g clipped to
    [min - r, max + r] of the two slopes. Elsewhere it is g clipped to
    [c - r, c + r] around the centred difference c = (forward + backward) / 2.

    Args:
        g: the hand-written gradient of the leaf, any shape (as forward).
        forward, backward: the one-sided differences of the leaf.
        f0: f(theta). eps: the step. kink_tol: see the module docstring.

    Returns:
        (reference, at_kink): float64 arrays of the leaf's shape.
    """
    g, up, down = (np.asarray(v, dtype=np.float64) for v in (g, forward, backward))
    centered = (up + down) / 2
    scale = np.sqrt(np.mean(np.square(centered))) if centered.size else 0.0
    rounding = ROUNDING_FACTOR * np.finfo(np.float64).eps * abs(float(f0)) / eps
    bound = np.maximum(np.maximum(np.abs(up), np.abs(down)), scale)
    with np.errstate(invalid="ignore"):  # kink_tol = inf times a zero slope
        allowed = np.nan_to_num(kink_tol * bound, nan=np.inf, posinf=np.inf)
    at_kink = np.abs(up - down) > allowed + rounding
    low = np.where(at_kink, np.minimum(up, down), centered) - rounding
    high = np.where(at_kink, np.maximum(up, down), centered) + rounding
    return np.clip(g, low, high), at_kink


def _require_float64(params: Any):
    # Flags are dynamic attributes of jax.config, unknown to its stub.
    if not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
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
    kink_tol: float | None = None,
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
        kink_tol: how far the two one-sided differences may differ, relative
            to the slope, before a coordinate counts as at a kink (where any
            value between the two slopes is accepted); default 100 eps. 0 or
            more; ``float("inf")`` turns kink detection off (the plain
            centred check).

    Returns:
        GradCheckResult; ``print(result)`` shows a table, ``result.passed`` (and
        ``bool(result)``) the verdict, ``result.failed_leaves`` the paths of the
        failing leaves, ``result.kinks`` how many coordinates were at kinks.

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
    # mypy cannot resolve jaxlib's PyTreeDef stub (shown as PyTreeDef?).
    if jax.tree.structure(manual) != jax.tree.structure(params):  # type: ignore[operator]
        raise ValueError(
            "manual gradient must have the structure of params: got "
            f"{jax.tree.structure(manual)}, expected {jax.tree.structure(params)}"
        )
    kink_tol = KINK_TOL_PER_EPS * eps if kink_tol is None else float(kink_tol)
    if not kink_tol >= 0:
        raise ValueError(f"kink_tol must be a number >= 0; got {kink_tol!r}")
    reference = jax.grad(f)(params)
    param_leaves = jax.tree.leaves_with_path(params)
    manual_leaves = jax.tree.leaves(manual)
    reference_leaves = jax.tree.leaves(reference)
    sides = [(None, None)] * len(manual_leaves)
    if finite_differences:
        f0, forward, backward = one_sided_differences(f, params, eps)
        pairs = zip(jax.tree.leaves(forward), jax.tree.leaves(backward), strict=True)
        sides = list(pairs)
    leaves = []
    for (path, p), g, r, (up, down) in zip(
        param_leaves, manual_leaves, reference_leaves, sides, strict=True
    ):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"manual gradient leaf {jax.tree_util.keystr(path)} has shape "
                f"{jnp.shape(g)}; the parameter has shape {jnp.shape(p)}"
            )
        ad_error = relative_difference(g, r)
        fd_error, kinks = float("nan"), 0
        if up is not None:
            d, at_kink = kink_reference(g, up, down, f0, eps, kink_tol)
            fd_error, kinks = relative_difference(g, d), int(at_kink.sum())
        passed = ad_error <= autodiff_tol and (up is None or fd_error <= fd_tol)
        leaves.append(
            LeafCheck(
                jax.tree_util.keystr(path) or "(root)",
                tuple(jnp.shape(p)),
                ad_error,
                fd_error,
                passed,
                kinks,
            )
        )
    return GradCheckResult(
        tuple(leaves), all(leaf.passed for leaf in leaves), autodiff_tol, fd_tol,
        eps, sum(leaf.kinks for leaf in leaves),
    )  # fmt: skip
