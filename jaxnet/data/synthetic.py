"""Tiny synthetic datasets for tests and ``--synthetic`` runs.

Each is a pure function of a jax.random key (the same key gives the same data) and
returns jnp arrays in the lecture's layout: examples are columns of X. They are
jitted with the sizes and dtype static, so each new size compiles once.
"""

from functools import partial

import jax
import jax.numpy as jnp


@partial(jax.jit, static_argnames=("m", "n_x", "dtype"))
def two_blobs(
    key: jax.Array,
    m: int = 200,
    n_x: int = 2,
    separation: float = 3.0,
    dtype=jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """Two clusters centred at -separation/2 and +separation/2 along the first axis.

    Noise is a standard normal truncated to [-1, 1] per coordinate, so the classes
    are linearly separable (by x_1 = 0) whenever separation > 2, as by default.
    Labels alternate 0, 1, 0, ... so any prefix holds both classes.

    Args:
        key: jax.random key.
        m: number of examples.
        n_x: number of features.
        separation: distance between the two centres.
        dtype: floating dtype of X and Y.

    Returns:
        X: features, (n_x, m).
        Y: labels 0 or 1, (1, m).
    """
    Y = (jnp.arange(m) % 2).astype(dtype).reshape(1, m)
    noise = jax.random.truncated_normal(key, -1.0, 1.0, (n_x, m), dtype=dtype)
    sign = 2.0 * Y - 1.0
    offset = jnp.zeros((n_x, 1), dtype).at[0, 0].set(separation / 2)
    X = noise + offset * sign
    return X.astype(dtype), Y


@partial(jax.jit, static_argnames=("m", "dtype"))
def planar_flower(
    key: jax.Array, m: int = 400, dtype=jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """The course's two-class "flower" in the plane; not linearly separable.

    Class j in {0, 1} takes angles t spread over [3.12 j, 3.12 (j + 1)] plus
    N(0, 0.2^2) noise, radius r = 4 sin(4 t) + N(0, 0.2^2) noise, and the point
    (r sin t, r cos t). The first m // 2 examples are class 0, the rest class 1.

    Args:
        key: jax.random key.
        m: number of examples.
        dtype: floating dtype of X and Y.

    Returns:
        X: points, (2, m).
        Y: labels 0 or 1, (1, m).
    """
    n0 = m // 2
    base = jnp.concatenate(
        [jnp.linspace(0.0, 3.12, n0), jnp.linspace(3.12, 6.24, m - n0)]
    ).astype(dtype)
    key_t, key_r = jax.random.split(key)
    t = base + 0.2 * jax.random.normal(key_t, (m,), dtype)
    r = 4.0 * jnp.sin(4.0 * t) + 0.2 * jax.random.normal(key_r, (m,), dtype)
    X = jnp.stack([r * jnp.sin(t), r * jnp.cos(t)])
    Y = (jnp.arange(m) >= n0).astype(dtype).reshape(1, m)
    return X.astype(dtype), Y


@partial(jax.jit, static_argnames=("m_per_class", "num_classes", "dtype"))
def spirals(
    key: jax.Array, m_per_class: int = 100, num_classes: int = 3, dtype=jnp.float32
) -> tuple[jax.Array, jax.Array]:
    """Interleaved spiral arms, one per class (a softmax / multi-class test set).

    Arm j has radius r from 0 to 1 and angle t from 4 j to 4 (j + 1) plus
    N(0, 0.2^2) noise; the point is (r sin t, r cos t). Examples are grouped by
    class: the first m_per_class are class 0, and so on.

    Args:
        key: jax.random key.
        m_per_class: examples per class.
        num_classes: number of arms / classes.
        dtype: floating dtype of X.

    Returns:
        X: points, (2, m) with m = m_per_class * num_classes.
        y: int32 class labels 0..num_classes-1, (m,).
    """
    m = m_per_class * num_classes
    y = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), m_per_class)
    r = jnp.tile(jnp.linspace(0.0, 1.0, m_per_class), num_classes).astype(dtype)
    sweep = jnp.tile(jnp.linspace(0.0, 4.0, m_per_class), num_classes)
    t = (4.0 * y + sweep).astype(dtype) + 0.2 * jax.random.normal(key, (m,), dtype)
    X = jnp.stack([r * jnp.sin(t), r * jnp.cos(t)])
    return X.astype(dtype), y
