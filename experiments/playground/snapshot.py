"""What each page update shows, computed on the device in one jitted call.

``snapshot(params, grid, X_train, Y_train, X_test, Y_test)`` returns

- the boundary: for each of the GRID x GRID points of the plot, the predicted
  class and its probability, quantised to uint8 (2 bytes a point: 8 KiB for
  64 x 64, sent base64 in the update);
- train and test accuracy;
- per-layer readings on the training set: the fraction of dead units (g'(Z) =
  0 on every example: a ReLU that never fires), of saturated units (0 <
  g'(Z) < SATURATED * g'(0) on every example: a sigmoid or tanh stuck at its
  flat ends) and ||dW[l]|| (Frobenius norm of the hand-written gradient,
  without dropout).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.activations import ACTIVATIONS
from jaxnet.deep import model_forward, model_value_and_grads
from jaxnet.outputs import get_output

GRID = 64
MARGIN = 0.15  # the plot extends the data's range by this fraction each side
SATURATED = 0.01


def grid_points(X: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The plot's GRID x GRID points (2, GRID^2), row by row from the top, and
    its extent [x_min, x_max, y_min, y_max]."""
    low, high = X.min(axis=1), X.max(axis=1)
    pad = MARGIN * np.maximum(high - low, 1e-3)
    low, high = low - pad, high + pad
    xs = np.linspace(low[0], high[0], GRID)
    ys = np.linspace(high[1], low[1], GRID)  # the top row first, as a canvas
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()]).astype(np.float32)
    return points, [float(low[0]), float(high[0]), float(low[1]), float(high[1])]


def layer_readings(params, X, Y, activations, lambd=None) -> dict:
    """Dead and saturated fractions of each hidden layer and ||dW[l]|| of each.

    Args:
        params: L layers {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
        X: (n_x, m). Y: (n[L], m).
        activations: one name per layer.
        lambd: L2 strength in the gradient (None: no term).

    Returns:
        {"dead": (L-1,), "saturated": (L-1,), "grad_norm": (L,)} arrays.
    """
    _, caches = model_forward(params, X, activations)
    dead, saturated = [], []
    for cache, name in zip(caches[:-1], activations[:-1], strict=True):
        slope = ACTIVATIONS[name].derivative(cache.Z)  # (n[l], m)
        peak = ACTIVATIONS[name].derivative(jnp.zeros((), cache.Z.dtype))
        dead.append(jnp.mean(jnp.all(slope == 0, axis=1)))
        flat = (slope > 0) & (slope < SATURATED * peak)
        saturated.append(jnp.mean(jnp.all(flat, axis=1)))
    _, grads = model_value_and_grads(params, X, Y, activations, lambd=lambd)
    norms = jnp.stack([jnp.linalg.norm(g["W"]) for g in grads])
    empty = jnp.zeros((0,), X.dtype)
    return {
        "dead": jnp.stack(dead) if dead else empty,
        "saturated": jnp.stack(saturated) if saturated else empty,
        "grad_norm": norms,
    }


def _accuracy(params, X, Y, activations) -> jax.Array:
    output = get_output(activations[-1])
    AL, _ = model_forward(params, X, activations)
    if Y.shape[0] == 1:
        right = output.predict(AL) == (Y > 0.5)
    else:
        right = output.predict(AL) == jnp.argmax(Y, axis=0)
    return jnp.mean(right.astype(X.dtype))


@functools.partial(jax.jit, static_argnames=("activations", "l2"))
def snapshot(params, grid, X_train, Y_train, X_test, Y_test, lambd, activations, l2):
    """The update's numbers (see the module docstring), on the device.

    Args:
        params: the current params. grid: (2, GRID^2) plot points.
        X_train, Y_train, X_test, Y_test: (2, m) and (n[L], m) each.
        lambd: L2 strength (used when ``l2``). activations: names, a tuple.

    Returns:
        dict of device arrays: "cls" and "conf" (GRID^2,) uint8, "train_acc",
        "test_acc" scalars, and the ``layer_readings``.
    """
    AL, _ = model_forward(params, grid, activations)
    if AL.shape[0] == 1:  # sigmoid: p of class 1
        p = AL[0]
        cls, conf = (p > 0.5).astype(jnp.uint8), jnp.maximum(p, 1 - p)
    else:
        cls, conf = jnp.argmax(AL, axis=0).astype(jnp.uint8), jnp.max(AL, axis=0)
    conf = jnp.round(jnp.clip(conf, 0, 1) * 255).astype(jnp.uint8)
    test_acc = (
        _accuracy(params, X_test, Y_test, activations)
        if X_test.shape[1]
        else jnp.asarray(jnp.nan, X_train.dtype)
    )
    return {
        "cls": cls,
        "conf": conf,
        "train_acc": _accuracy(params, X_train, Y_train, activations),
        "test_acc": test_acc,
        **layer_readings(
            params, X_train, Y_train, activations, lambd=lambd if l2 else None
        ),
    }
