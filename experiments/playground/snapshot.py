"""What each page update shows, computed on the device in one jitted call.

``snapshot(params, grid, X_train, Y_train, X_test, Y_test)`` returns

- the boundary: for each of the GRID x GRID points of the plot, the predicted
  class and its probability, quantised to uint8 (2 bytes a point: 8 KiB for
  64 x 64, sent base64 in the update);
- train and test accuracy;
- per-layer readings on the training set, ``jaxnet.health.layer_health`` of
  the current params with the hand-written gradient (no dropout): dead relu
  units, saturated sigmoid/tanh activations, ||dW[l]||, ||W[l]||, the update
  ratio alpha ||dW[l]|| / ||W[l]|| (gradient descent's step) and whether a
  layer's units are all equal (symmetric).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.deep import model_backward, model_forward
from jaxnet.health import layer_health
from jaxnet.outputs import get_output

GRID = 64
MARGIN = 0.15  # the plot extends the data's range by this fraction each side


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


def _accuracy(params, X, Y, activations) -> jax.Array:
    output = get_output(activations[-1])
    AL, _ = model_forward(params, X, activations)
    if Y.shape[0] == 1:
        right = output.predict(AL) == (Y > 0.5)
    else:
        right = output.predict(AL) == jnp.argmax(Y, axis=0)
    return jnp.mean(right.astype(X.dtype))


@functools.partial(jax.jit, static_argnames=("activations", "l2"))
def snapshot(
    params, grid, X_train, Y_train, X_test, Y_test, lambd, alpha, activations, l2
):
    """The update's numbers (see the module docstring), on the device.

    Args:
        params: the current params. grid: (2, GRID^2) plot points.
        X_train, Y_train, X_test, Y_test: (2, m) and (n[L], m) each.
        lambd: L2 strength (used when ``l2``). alpha: the learning rate.
        activations: names, a tuple.

    Returns:
        dict of device arrays: "cls" and "conf" (GRID^2,) uint8, "train_acc",
        "test_acc" scalars, and "health" (``jaxnet.health.Health``, (L,) each).
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
    AL, caches = model_forward(params, X_train, activations)
    grads = model_backward(
        AL, Y_train, caches, activations, lambd=lambd if l2 else None
    )
    return {
        "cls": cls,
        "conf": conf,
        "train_acc": _accuracy(params, X_train, Y_train, activations),
        "test_acc": test_acc,
        "health": layer_health(params, grads, caches, activations, learning_rate=alpha),
    }
