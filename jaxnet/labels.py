"""Class labels for the softmax output: integer labels <-> one-hot columns.

For K classes the network's output AL is (K, m), one column of probabilities per
example, and the cost J = -(1/m) sum_i sum_k Y_ki log AL_ki needs Y in the same
layout: Y_ki = 1 if example i belongs to class k, else 0 (one-hot columns).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def one_hot(labels: ArrayLike, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """One-hot columns Y (K, m) from integer labels in 0..K-1.

    Y[k, i] = 1 if labels[i] == k else 0. The labels are checked on the host
    (call this outside jit): a float label, a label outside 0..K-1 or a shape
    other than (m,) or (1, m) raises instead of silently giving a zero column.

    Args:
        labels: integer class labels, (m,) or (1, m).
        num_classes: K, the number of classes (>= 2).
        dtype: dtype of the result (float32 by default).

    Returns:
        Y: one-hot labels, (K, m); each column sums to 1.

    Raises:
        ValueError: bad num_classes, shape, dtype or out-of-range labels.
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    ids = np.asarray(labels)
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 1:
        raise ValueError(
            f"labels must be (m,) or (1, m) integers; got shape {ids.shape}"
        )
    if not (np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_):
        whole = np.all(np.isfinite(ids)) and np.all(ids == np.round(ids))
        hint = " (cast with labels.astype(int))" if whole else ""
        raise ValueError(
            f"labels must be integers 0..{num_classes - 1}; got dtype {ids.dtype}{hint}"
        )
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        raise ValueError(
            f"labels must be in 0..{num_classes - 1} for num_classes={num_classes}; "
            f"found {np.unique(bad)[:5].tolist()}"
        )
    Y = ids[None, :] == np.arange(num_classes)[:, None]
    return jnp.asarray(Y, dtype=dtype)


def labels_from_one_hot(Y: ArrayLike) -> jax.Array:
    """Integer labels (m,) from one-hot (or probability) columns Y (K, m).

    labels[i] = argmax_k Y[k, i]: the inverse of ``one_hot``, and the predicted
    class when Y holds the output probabilities AL.

    Args:
        Y: one-hot labels or probabilities, (K, m).

    Returns:
        int32 labels, (m,).
    """
    Y = jnp.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"Y must be (K, m) with examples in columns; got {Y.shape}")
    return jnp.argmax(Y, axis=0).astype(jnp.int32)
