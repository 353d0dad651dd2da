"""Training health: what happens inside each layer while a network trains.

Readings of layer l = 1..L (all pure, jittable and vmappable; ``Health``
holds one (L,) array per reading):

    dead[l]          relu layers: the fraction of the n[l] units with A[l] = 0
                     (Z[l] <= 0) for every one of the m examples. Such a unit
                     passes no gradient (relu'(Z) = 0) and never recovers.
    saturated[l]     hidden sigmoid and tanh layers: the fraction of the
                     n[l] x m activations whose slope is flat,
                     |g'(Z[l])| < SATURATION x max g' (sigmoid: g' < 0.0025,
                     i.e. |Z| > 5.99; tanh: g' < 0.01, i.e. |Z| > 2.99); the
                     fraction of units saturated on an average example.
    grad_norm[l]     ||dW[l]||_F, the gradient of J (with its L2 term if any).
    weight_norm[l]   ||W[l]||_F.
    update_ratio[l]  ||Delta W[l]||_F / ||W[l]||_F, the step's change of W[l]
                     relative to W[l]; for gradient descent Delta W = alpha dW.
    symmetric[l]     True when every row of [W[l] | b[l]] equals the first
                     (to SYMMETRY_TOL relative to the largest row): the n[l]
                     hidden units compute the same function and, with equal
                     rows, get equal gradients: they stay equal (the lecture's
                     reason W cannot start at 0). False for one-unit layers.

No reading is ever NaN for finite input. Where a reading does not apply it
holds NOT_APPLICABLE (-1): ``dead`` of a layer that is not relu (leaky relu,
sigmoid, tanh, softplus, every output layer), ``saturated`` of a layer that is
not a hidden sigmoid/tanh layer (the output's gradient dZ[L] = A[L] - Y does
not go through g', so a confident output is not a stalled one), and
``update_ratio`` of a layer whose W[l] is exactly 0 (the ratio is undefined;
``weight_norm`` says 0).

``hints(readings, activations)`` turns pathological readings into sentences in
the lecture's terms (see its docstring for the thresholds).
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnet.activations import ACTIVATIONS
from jaxnet.params import Grads, LayerCache, Params

NOT_APPLICABLE = -1.0  # a reading that does not apply to the layer (see above)
SATURATION = 0.01  # a unit is saturated where |g'(Z)| < SATURATION x max g'
# The largest slope of each saturating activation (at Z = 0).
MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}
DEAD_KINDS = ("relu",)  # activations whose unit is dead where A = 0 everywhere
SYMMETRY_TOL = 1e-3  # rows equal to this fraction of the largest row's norm
RATIO_CAP = 1e30  # update_ratio is capped here (a W[l] of ~1e-40 stays finite)
# hints' thresholds
VANISHING = 1e-3  # ||dW[1]|| below this fraction of the largest ||dW[l]||
LARGE_UPDATE = 1.0  # one step changes W[l] by more than W[l] itself


class Health(NamedTuple):
    """The readings of one network at one point, one entry per layer (a pytree).

    Every field is (L,) (stacked over recorded points: (P, L); a sweep adds a
    leading model axis). See the module doc for the definitions.

    Attributes:
        dead: fraction of dead relu units, in [0, 1], or NOT_APPLICABLE.
        saturated: fraction of saturated activations, in [0, 1], or
            NOT_APPLICABLE.
        grad_norm: ||dW[l]||_F, >= 0.
        weight_norm: ||W[l]||_F, >= 0.
        update_ratio: ||Delta W[l]||_F / ||W[l]||_F, >= 0, or NOT_APPLICABLE
            where W[l] = 0.
        symmetric: every row of [W[l] | b[l]] equal (bool).
    """

    dead: jax.Array
    saturated: jax.Array
    grad_norm: jax.Array
    weight_norm: jax.Array
    update_ratio: jax.Array
    symmetric: jax.Array


def dead_fraction(Z: ArrayLike) -> jax.Array:
    """Fraction of relu units that are 0 on every example: mean over the n[l]
    units of [Z[i, j] <= 0 for all j] (relu(Z) = 0 exactly where Z <= 0).

    Args:
        Z: pre-activations of a relu layer, (n[l], m).

    Returns:
        A scalar in [0, 1].
    """
    Z = jnp.asarray(Z)
    return jnp.mean(jnp.all(Z <= 0, axis=1).astype(Z.dtype))


def saturated_fraction(Z: ArrayLike, activation: str) -> jax.Array:
    """Fraction of the n[l] x m activations with |g'(Z)| < SATURATION x max g'.

    Args:
        Z: pre-activations of a sigmoid or tanh layer, (n[l], m).
        activation: "sigmoid" or "tanh" (a key of ``MAX_SLOPE``).

    Returns:
        A scalar in [0, 1], averaged over units and examples.
    """
    Z = jnp.asarray(Z)
    slope = jnp.abs(ACTIVATIONS[activation].derivative(Z))
    return jnp.mean((slope < SATURATION * MAX_SLOPE[activation]).astype(Z.dtype))


def rows_equal(row_spread_sq: ArrayLike, row_max_sq: ArrayLike, n: int) -> jax.Array:
    """Whether n rows are equal: max_i ||r_i - r_0||^2 <= SYMMETRY_TOL^2 max_i
    ||r_i||^2 (all-zero rows are equal). Always False for n = 1.

    Args:
        row_spread_sq: max_i ||r_i - r_0||^2, a scalar.
        row_max_sq: max_i ||r_i||^2, a scalar.
        n: the number of rows (units), static.
    """
    if n < 2:
        return jnp.asarray(False)
    return jnp.asarray(row_spread_sq) <= SYMMETRY_TOL**2 * jnp.asarray(row_max_sq)


def row_stats(W: ArrayLike, b: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """(max_i ||r_i - r_0||^2, max_i ||r_i||^2) of the rows r_i = [W[i] | b[i]].

    Args:
        W: (n[l], n[l-1]). b: (n[l], 1).
    """
    rows = jnp.concatenate([jnp.asarray(W), jnp.asarray(b)], axis=1)
    spread = jnp.max(jnp.sum(jnp.square(rows - rows[:1]), axis=1))
    return spread, jnp.max(jnp.sum(jnp.square(rows), axis=1))


def assemble(
    Zs: Sequence[jax.Array],
    activations: Sequence[str],
    grad_sq: Sequence[ArrayLike],
    weight_sq: Sequence[ArrayLike],
    update_sq: Sequence[ArrayLike],
    symmetric: Sequence[ArrayLike],
) -> Health:
    """``Health`` from per-layer pieces: each first-layer form (dense, gram)
    computes the squared norms its own way and shares the rest.

    Args:
        Zs: Z[l] of every layer on the training set, (n[l], m) each.
        activations: one name per layer.
        grad_sq, weight_sq, update_sq: ||dW[l]||^2, ||W[l]||^2 and
            ||Delta W[l]||^2, scalars, one per layer.
        symmetric: a bool scalar per layer (``rows_equal``).
    """
    L = len(activations)
    dtype = Zs[-1].dtype
    na = jnp.asarray(NOT_APPLICABLE, dtype)
    dead, saturated = [], []
    for l, (Z, name) in enumerate(zip(Zs, activations, strict=True)):
        hidden = l < L - 1
        dead.append(dead_fraction(Z) if hidden and name in DEAD_KINDS else na)
        fits = hidden and name in MAX_SLOPE
        saturated.append(saturated_fraction(Z, name) if fits else na)

    def norms(squares):  # (a tiny negative from rounded sums is 0)
        return jnp.sqrt(
            jnp.maximum(jnp.stack([jnp.asarray(x, dtype) for x in squares]), 0)
        )

    grad_norm, weight_norm = norms(grad_sq), norms(weight_sq)
    update_norm = norms(update_sq)
    positive = weight_norm > 0
    ratio = update_norm / jnp.where(positive, weight_norm, jnp.ones_like(weight_norm))
    ratio = jnp.where(positive, jnp.minimum(ratio, RATIO_CAP), na)
    return Health(
        jnp.stack(dead),
        jnp.stack(saturated),
        grad_norm,
        weight_norm,
        ratio,
        jnp.stack([jnp.asarray(s, bool) for s in symmetric]),
    )


def _sq(x) -> jax.Array:
    return jnp.sum(jnp.square(x))


def layer_health(
    params: Params,
    grads: Grads,
    caches: Sequence[LayerCache],
    activations: Sequence[str],
    *,
    learning_rate: ArrayLike | None = None,
    updates: Params | None = None,
) -> Health:
    """The readings of every layer at one point of training.

    Args:
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}, before the step.
        grads: dW, db of J at params, the same structure.
        caches: ``model_forward``'s caches on the training batch (Z[l] is read).
        activations: one name per layer.
        learning_rate: alpha: Delta W[l] = alpha dW[l] (gradient descent).
        updates: the optimizer's step instead (params-shaped, ``updates[l]["W"]``
            is Delta W[l]), e.g. optax's updates for momentum or Adam. Exactly
            one of learning_rate and updates is given.

    Returns:
        Health with (L,) arrays.
    """
    if (learning_rate is None) == (updates is None):
        raise ValueError("give exactly one of learning_rate and updates")
    grad_sq = [_sq(g["W"]) for g in grads]
    if updates is None:
        alpha = jnp.asarray(learning_rate)
        update_sq = [jnp.square(alpha) * s for s in grad_sq]
    else:
        update_sq = [_sq(u["W"]) for u in updates]
    stats = [row_stats(p["W"], p["b"]) for p in params]
    symmetric = [
        rows_equal(spread, top, jnp.shape(p["W"])[0])
        for (spread, top), p in zip(stats, params, strict=True)
    ]
    weight_sq = [_sq(p["W"]) for p in params]
    Zs = [c.Z for c in caches]
    return assemble(Zs, activations, grad_sq, weight_sq, update_sq, symmetric)


class _Readings(NamedTuple):
    """``Health`` as numpy arrays, (P, L) each (host code)."""

    dead: np.ndarray
    saturated: np.ndarray
    grad_norm: np.ndarray
    weight_norm: np.ndarray
    update_ratio: np.ndarray
    symmetric: np.ndarray


def _layers(mask_rows: np.ndarray) -> list[int]:
    """1-based layer numbers whose column holds any True."""
    return [int(l) + 1 for l in np.flatnonzero(mask_rows.any(axis=0))]


def _when(mask, iterations) -> str:
    """ "at 3 of 5 recorded points, from iteration 200" for a (P,) mask."""
    count, first = int(mask.sum()), int(np.argmax(mask))
    where = f"iteration {int(iterations[first])}" if iterations is not None else ""
    start = f", from {where}" if where else ""
    return f"at {count} of {mask.size} recorded points{start}"


def _names(layers: list[int]) -> str:
    return ", ".join(f"[{l}]" for l in layers)


def hints(readings: Health, activations: Sequence[str], iterations=None) -> list[str]:
    """Sentences in the lecture's terms for pathological readings (host code).

    Conditions (each checked at every recorded point; a hint says where):

    - symmetric hidden units: a hidden layer with n[l] > 1 whose rows of
      [W[l] | b[l]] are all equal (``symmetric``), e.g. W initialized to 0;
    - every unit dead: a relu layer with ``dead`` = 1;
    - vanishing gradients: every W[l] nonzero, and ||dW[1]|| < VANISHING x
      max_l ||dW[l]|| (the lecture's deep sigmoid stacks; the sentence names
      the sigmoid/tanh layers and their saturation when there are any);
    - updates too large: ``update_ratio`` > LARGE_UPDATE after the first
      recorded point (a first step from a small initialization may be large).

    Args:
        readings: Health of numpy or jax arrays, (L,) or stacked (P, L).
        activations: one name per layer.
        iterations: the recorded points' iterations, (P,), to say from when.

    Returns:
        A list of sentences, empty for a healthy run.
    """
    r = _Readings(*(np.atleast_2d(np.asarray(x)) for x in readings))
    L = len(activations)
    its = None if iterations is None else np.atleast_1d(np.asarray(iterations))
    out = []
    hidden = np.arange(L) < L - 1
    sym = r.symmetric.astype(bool) & hidden
    if sym.any():
        layers = _layers(sym)
        out.append(
            f"symmetric hidden units in layer(s) {_names(layers)} "
            f"{_when(sym.any(axis=1), its)}: every row of W[l] (and b[l]) is "
            "equal, so every unit computes the same function and gets the same "
            "gradient, and they stay equal. W was probably initialized to 0; "
            "initialize W randomly (e.g. randn * 0.01, Xavier or He) to break "
            "the symmetry"
        )
    dead = r.dead >= 1.0
    if dead.any():
        layers = _layers(dead)
        out.append(
            f"every unit is dead in layer(s) {_names(layers)} "
            f"{_when(dead.any(axis=1), its)}: A[l] = 0 for every example, so "
            "relu'(Z) = 0 passes no gradient to the layers below and the units "
            "never recover. Lower the learning rate, initialize with He "
            "(randn * sqrt(2 / n[l-1])) or try leaky_relu"
        )
    grad = r.grad_norm
    vanish = np.all(r.weight_norm > 0, axis=1) & (
        grad[:, 0] < VANISHING * grad.max(axis=1)
    )
    if vanish.any() and L > 1:
        flat = [l + 1 for l in range(L - 1) if activations[l] in MAX_SLOPE]
        ratio = float(np.min(grad[vanish, 0] / grad[vanish].max(axis=1)))
        text = (
            f"vanishing gradients {_when(vanish, its)}: ||dW[1]|| is down to "
            f"{ratio:.1e} of the largest ||dW[l]||, so the first layers barely "
            "learn"
        )
        if flat:
            top = float(r.saturated[vanish][:, [l - 1 for l in flat]].max())
            why = (
                f"up to {100 * top:.0f} % of the activations are saturated"
                if top > 0
                else "no unit is saturated: the small W[l] shrink it"
            )
            text += (
                f". Each sigmoid/tanh layer ({_names(flat)}) multiplies the "
                "gradient by g'(Z) <= 0.25 (sigmoid) or <= 1 (tanh) and by W; "
                f"through this deep stack it shrinks ({why}). Use relu hidden "
                "layers, Xavier/He initialization, or fewer layers"
            )
        else:
            text += ". Initialize with He or Xavier so each layer keeps the scale"
        out.append(text)
    late = np.arange(r.update_ratio.shape[0])[:, None] > 0
    large = (r.update_ratio > LARGE_UPDATE) & late
    if large.any():
        layers = _layers(large)
        out.append(
            f"updates too large in layer(s) {_names(layers)} "
            f"{_when(large.any(axis=1), its)}: one step changes W[l] by up to "
            f"{float(r.update_ratio[large].max()):.3g} times ||W[l]|| (healthy "
            "runs stay far below 1, typically near 1e-3). Lower the learning "
            "rate alpha"
        )
    return out
