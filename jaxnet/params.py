"""Parameter pytrees, layer caches, and initialization.

Params is a plain list of per-layer dicts; entry l-1 holds layer l:

    params[l-1] = {"W": W[l] (n[l], n[l-1]), "b": b[l] (n[l], 1)}

Grads have exactly the same structure and keys ("W", "b"), so
``jax.tree.map(lambda p, g: p - lr * g, params, grads)`` is the whole update.

Initializations (``init_params(key, layer_dims, method=...)``), all with b = 0:

    "small"   W = randn * 0.01                (the lecture's choice)
    "zeros"   W = 0                           (fails: every hidden unit stays equal)
    "unit"    W = randn * 1                   (too large for wide layers: saturates)
    "large"   W = randn * 10                  (far too large)
    "lecun"   W = randn / sqrt(n[l-1])        (the course's L-layer model)
    "xavier"  W = randn * sqrt(2 / (n[l-1] + n[l]))   (Glorot normal)
    "he"      W = randn * sqrt(2 / n[l-1])

``course_init_params`` reproduces the deeplearning.ai notebooks bit for bit with
numpy's legacy seeded generator, for students comparing numbers with theirs.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Params = list[dict[str, jax.Array]]
Grads = list[dict[str, jax.Array]]
PRNGKey = Any


class LayerCache(NamedTuple):
    """What layer l's forward pass keeps for its backward pass.

    Attributes:
        A_prev: activations of layer l-1, (n[l-1], m).
        W: weights of layer l, (n[l], n[l-1]).
        b: biases of layer l, (n[l], 1).
        Z: pre-activations of layer l, (n[l], m).
        D: inverted-dropout mask applied to A[l] (n[l], m), or None without dropout.
    """

    A_prev: jax.Array
    W: jax.Array
    b: jax.Array
    Z: jax.Array
    D: jax.Array | None = None


# scale(n[l-1], n[l]): the factor multiplying a standard normal draw.
INIT_SCALES = {
    "small": lambda n_prev, n: 0.01,
    "zeros": lambda n_prev, n: 0.0,
    "unit": lambda n_prev, n: 1.0,
    "large": lambda n_prev, n: 10.0,
    "lecun": lambda n_prev, n: float(1.0 / np.sqrt(n_prev)),
    "xavier": lambda n_prev, n: float(np.sqrt(2.0 / (n_prev + n))),
    "he": lambda n_prev, n: float(np.sqrt(2.0 / n_prev)),
}


def check_layer_dims(layer_dims: Sequence[int]) -> tuple[int, ...]:
    """Validate [n[0], n[1], ..., n[L]]: at least two positive integers."""
    dims = tuple(layer_dims)
    if len(dims) < 2 or not all(
        isinstance(n, int | np.integer) and n > 0 for n in dims
    ):
        raise ValueError(
            "layer_dims must list at least two positive integers [n_x, ..., n_y]; "
            f"got {list(layer_dims)}"
        )
    return tuple(int(n) for n in dims)


def init_params(
    key: PRNGKey,
    layer_dims: Sequence[int],
    method: str = "small",
    dtype=jnp.float32,
) -> Params:
    """Random parameters for the L-layer network with sizes ``layer_dims``.

    W[l] = randn(n[l], n[l-1]) * scale(n[l-1]) and b[l] = zeros((n[l], 1)), with
    the scale of ``method`` (see INIT_SCALES). The key is split once per layer,
    so the same key always gives the same parameters.

    Args:
        key: a ``jax.random`` key.
        layer_dims: [n[0] = n_x, n[1], ..., n[L]].
        method: one of "small", "zeros", "unit", "large", "lecun", "xavier",
            "he" (a key of INIT_SCALES).
        dtype: float dtype of every array (float32 by default).

    Returns:
        Params: L dicts with "W" (n[l], n[l-1]) and "b" (n[l], 1).
    """
    dims = check_layer_dims(layer_dims)
    if method not in INIT_SCALES:
        raise ValueError(
            f"unknown init method {method!r}; known: {', '.join(INIT_SCALES)}"
        )
    keys = jax.random.split(key, len(dims) - 1)
    params = []
    for layer_key, n_prev, n in zip(keys, dims[:-1], dims[1:], strict=True):
        scale = INIT_SCALES[method](n_prev, n)
        W = jax.random.normal(layer_key, (n, n_prev), dtype) * jnp.asarray(scale, dtype)
        params.append({"W": W, "b": jnp.zeros((n, 1), dtype)})
    return params


def course_init_params(
    layer_dims: Sequence[int], seed: int = 1, scale: str = "0.01", dtype=np.float64
) -> Params:
    """The deeplearning.ai notebooks' initialization, bit for bit.

    Equivalent to ``np.random.seed(seed)`` and then, for l = 1..L in order,
    ``W[l] = np.random.randn(n[l], n[l-1]) * 0.01`` (two-layer model,
    ``scale="0.01"``) or ``/ np.sqrt(n[l-1])`` (L-layer model, ``scale="sqrt"``),
    with b[l] = zeros. A private ``np.random.RandomState(seed)`` draws the same
    legacy Mersenne-Twister stream without touching numpy's global state.

    Returns:
        Params as jax arrays of ``dtype`` (float64 needs ``jax_enable_x64``).
    """
    dims = check_layer_dims(layer_dims)
    if scale not in ("0.01", "sqrt"):
        raise ValueError(f"scale must be '0.01' or 'sqrt'; got {scale!r}")
    rng = np.random.RandomState(seed)
    params = []
    for n_prev, n in zip(dims[:-1], dims[1:], strict=True):
        draw = rng.randn(n, n_prev)
        W = draw * 0.01 if scale == "0.01" else draw / np.sqrt(n_prev)
        params.append(
            {"W": jnp.asarray(W, dtype), "b": jnp.asarray(np.zeros((n, 1)), dtype)}
        )
    return params


def layer_dims_of(params: Params) -> tuple[int, ...]:
    """[n[0], ..., n[L]] read off the weight shapes."""
    return (params[0]["W"].shape[1],) + tuple(p["W"].shape[0] for p in params)
