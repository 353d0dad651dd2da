"""The health readings of a run's state, for each first-layer form.

``PROBES[form](config, hp, data, Y)`` is ``probe(state) -> jaxnet.health.Health``
on the run's data (what the form takes, of all m examples): one forward pass
on the whole training set (no dropout), the lecture's backward pass (with the
L2 term when the run has one) and the optimizer's update of that gradient (its
new state is dropped), read as in ``jaxnet.health``. What depends on the data
alone is computed when the probe is made (once per chunk, outside the chunk's
loop). For a full-batch run without dropout that gradient and update are
exactly the step's; with minibatches or dropout they are those of
the full training set, the quantity the readings describe. The driver calls it
inside the compiled chunk at the printed points (``jaxnet.driver``).

A new first-layer form (a row of ``jaxnet.wide.FIRST_LAYERS``) adds a row here.

"gram" (``jaxnet.wide``) holds W[1] = s W0 + C X^T in coordinates and never
materializes it (2 n[1] m n_x FLOPs); layer 1's readings come from G = X^T X
and P = W0 X instead. For any (a_s, a_C), (c_s, c_C) of the form
A = a_s W0 + a_C X^T:

    <A, A'> = a_s c_s ||W0||^2 + a_s <P, c_C> + c_s <a_C, P> + <a_C G, c_C>

so ||A||^2 = a_s^2 ||W0||^2 + 2 a_s <P, a_C> + <a_C G, a_C>, which gives
||W[1]||^2, ||dW[1]||^2 (dW[1] = g_s W0 + g_C X^T) and ||Delta W[1]||^2 (the
optimizer's update in coordinates), and row by row the distance of row i from
row 0 (for ``symmetric``). In float32 these sums round to ~1e-7 of their
largest term; a tiny negative is clamped to 0.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnet.deep import (
    add_l2_grads,
    backward_to_first_layer,
    forward_layers,
    model_backward,
    model_forward,
)
from jaxnet.health import Health, assemble, layer_health, row_stats, rows_equal
from jaxnet.hyperparams import Hyperparams, TrainConfig
from jaxnet.outputs import get_output
from jaxnet.params import LayerCache
from jaxnet.shapes import forward_of
from jaxnet.steps import TrainState
from jaxnet.wide import GramData


def dense_probe(config: TrainConfig, hp: Hyperparams, X, Y) -> Callable:
    """``probe(state) -> Health`` for dense params; X (n_x, m), Y (n[L], m)."""
    acts = config.activations

    def probe(state: TrainState) -> Health:
        params = state.params
        AL, caches = model_forward(params, X, acts)
        lambd = hp.lambd if config.l2 else None
        grads = model_backward(AL, Y, caches, acts, lambd=lambd)
        updates, _ = config.update(grads, state.opt_state, params)
        return layer_health(params, grads, caches, acts, updates=updates)

    return probe


class _GramConstants(NamedTuple):
    """What layer 1's readings need of the gram data (W0 and X are not read).

    Attributes:
        G: X^T X (m, m).  P: W0 X (n[1], m).  W0_sq: ||W0||^2 ().
        W0_rows: ||W0_i||^2 (n[1],).  D0_sq: ||W0_i - W0_0||^2 (n[1],).
    """

    G: jax.Array
    P: jax.Array
    W0_sq: jax.Array
    W0_rows: jax.Array
    D0_sq: jax.Array


def _inner(a_s, a_C, aG, k: _GramConstants) -> jax.Array:
    """||a_s W0 + a_C X^T||_F^2 with aG = a_C G (see the module doc), clamped
    at 0 (a tiny negative from rounding)."""
    value = a_s * a_s * k.W0_sq + 2 * a_s * jnp.sum(k.P * a_C) + jnp.sum(a_C * aG)
    return jnp.maximum(value, 0)


def _gram_rows_equal(s, C, CG, b, k: _GramConstants) -> jax.Array:
    """``rows_equal`` for [W[1] | b[1]], W[1] = s W0 + C X^T, row by row.

    Row i minus row 0 is s D0_i + Dc_i X^T + (b_i - b_0), with D0 = W0 - W0[0]
    (so D0 X = P - P[0]) and Dc = C - C[0] (so Dc G = CG - CG[0]).
    """
    DP, Dc, DcG = k.P - k.P[:1], C - C[:1], CG - CG[:1]
    spread = (
        s * s * k.D0_sq
        + 2 * s * jnp.sum(DP * Dc, axis=1)
        + jnp.sum(DcG * Dc, axis=1)
        + jnp.square(b - b[:1])[:, 0]
    )
    rows = (
        s * s * k.W0_rows
        + 2 * s * jnp.sum(k.P * C, axis=1)
        + jnp.sum(CG * C, axis=1)
        + jnp.square(b)[:, 0]
    )
    spread, rows = jnp.maximum(spread, 0), jnp.maximum(rows, 0)  # (rounding)
    return rows_equal(jnp.max(spread), jnp.max(rows), C.shape[0])


def gram_probe(config: TrainConfig, hp: Hyperparams, data: GramData, Y) -> Callable:
    """``probe(state) -> Health`` for the gram form (``jaxnet.wide``):
    state.params [{"s", "C", "b"}, layers 2..L], data a ``GramData`` of all m
    columns (index None). W0's row norms are computed here, once: the probe
    never reads W0 (n[1], n_x) or X."""
    acts = config.activations
    W0 = data.W0
    k = _GramConstants(
        data.G,
        data.P,
        data.W0_sq,
        jnp.sum(jnp.square(W0), axis=1),
        jnp.sum(jnp.square(W0 - W0[:1]), axis=1),
    )

    def probe(state: TrainState) -> Health:
        first, *upper = state.params
        s, C, b = first["s"], first["C"], first["b"]
        m = Y.shape[1]
        CG = C @ k.G
        Z1 = s * k.P + CG + b
        AL, caches = forward_layers(
            forward_of(acts[0])(Z1), upper, acts, keep_prob=1.0, keys=None, start=1
        )
        # Layer 1's cache: only Z is read (there is no dense W[1]).
        all_caches = [LayerCache(None, None, None, Z1), *caches]  # type: ignore[arg-type]
        dZ = get_output(acts[-1]).dZ(all_caches[-1].Z, AL, Y)  # = AL - Y
        dZ1, grads = backward_to_first_layer(dZ, all_caches, acts)
        lambd = hp.lambd if config.l2 else None
        grads = add_l2_grads(grads, caches, lambd)
        g_s, g_C = jnp.zeros_like(s), dZ1 / m
        if lambd is not None:
            g_s, g_C = (lambd / m) * s, g_C + (lambd / m) * C
        db = jnp.sum(dZ1, axis=1, keepdims=True) / m
        coords = [{"s": g_s, "C": g_C, "b": db}, *grads]
        updates, _ = config.update(coords, state.opt_state, state.params)
        u_s, u_C = updates[0]["s"], updates[0]["C"]
        gG, uG = jnp.split(jnp.concatenate([g_C, u_C]) @ k.G, 2)  # one product
        grad_sq = [
            _inner(g_s, g_C, gG, k),
            *(jnp.sum(jnp.square(g["W"])) for g in grads),
        ]
        weight_sq = [_inner(s, C, CG, k), *(jnp.sum(jnp.square(p["W"])) for p in upper)]
        update_sq = [
            _inner(u_s, u_C, uG, k),
            *(jnp.sum(jnp.square(u["W"])) for u in updates[1:]),
        ]
        symmetric = [_gram_rows_equal(s, C, CG, b, k)]
        for p in upper:
            spread, top = row_stats(p["W"], p["b"])
            symmetric.append(rows_equal(spread, top, p["W"].shape[0]))
        Zs = [c.Z for c in all_caches]
        return assemble(Zs, acts, grad_sq, weight_sq, update_sq, symmetric)

    return probe


PROBES: dict[str, Callable[..., Callable]] = {
    "dense": dense_probe,
    "gram": gram_probe,
}
