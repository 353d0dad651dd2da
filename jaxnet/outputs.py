"""Output layers: one table row per kind, like ``ACTIVATIONS`` for hidden layers.

Each output pairs its activation A[L] = g(Z[L]) with the cost J whose gradient
with respect to Z[L] is the same one line for all of them:

    sigmoid   A = 1 / (1 + e^-Z)         J = cross-entropy            classes {0, 1}
    softmax   A = softmax(Z) per column  J = categorical cross-entropy  K classes
    linear    A = Z                      J = (1/2m) sum (A - Y)^2     real values

    dZ[L] = A[L] - Y            (times 1/m in dW, db; the lecture's rule)

For sigmoid the row computes that difference from the logits, as
(1 - Y) sigma(Z) - Y sigma(-Z): the same value, without the cancellation of
A - 1 once A rounds to 1 (Z > ~37 in float64), where it would lose every digit.

For softmax the exact gradient of J for any labels is

    dZ[L] = A[L] * sum_k Y_k - Y     (sum over the K rows of each column)

which is the lecture's A[L] - Y when every column of Y sums to 1 (one-hot
labels, label smoothing, soft targets). The row computes this general form, so
the hand-written backward equals ``jax.grad`` also for all-zero, multi-hot or
weighted columns; for one-hot labels it is A - Y bit for bit. Costs are
computed from the logits Z[L] (log-sigmoid, log-softmax), finite for every
finite input.

A new output is one new row (``jaxnet.register_output``): its forward, its
cost from the logits, dZ, its prediction rule and its label check. Validation
(``jaxnet.validation``), checkpoints and the step all read this table.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.activations import sigmoid, softmax
from jaxnet.losses import (
    compute_cost_from_logits,
    cross_entropy_from_logits_derivative,
    softmax_cross_entropy_from_logits,
)
from jaxnet.validation import binary_labels, distribution_labels


def squared_error_cost(ZL: jax.Array, Y: jax.Array) -> jax.Array:
    """J = (1/2m) sum_i (a(i) - y(i))^2 with a = ZL: the lecture's L2 loss, averaged.

    The 1/2 makes dJ/dZ[L] = (1/m) (A[L] - Y), the same dZ[L] as the
    classifiers.

    Args:
        ZL: outputs, (n[L], m). Y: targets, (n[L], m).

    Returns:
        A scalar.
    """
    m = ZL.shape[1]
    return jnp.sum(jnp.square(ZL - Y)) / (2 * m)


def _binary_labels(AL: jax.Array) -> jax.Array:
    return (AL > 0.5).astype(jnp.int32)


def _class_indices(AL: jax.Array) -> jax.Array:
    return jnp.argmax(AL, axis=0)


def _a_minus_y(ZL: jax.Array, AL: jax.Array, Y: jax.Array) -> jax.Array:
    return AL - Y


def _sigmoid_dZ(ZL: jax.Array, AL: jax.Array, Y: jax.Array) -> jax.Array:
    return cross_entropy_from_logits_derivative(ZL, Y)


def _softmax_dZ(ZL: jax.Array, AL: jax.Array, Y: jax.Array) -> jax.Array:
    """dZ = A sum_k Y_k - Y, (K, m): m dJ/dZ of the categorical cross-entropy.

    J = -(1/m) sum_i sum_k Y_ki (Z_ki - logsumexp_j Z_ji), so
    m dJ/dZ_ji = softmax(Z)_ji sum_k Y_ki - Y_ji, for any Y; with columns
    summing to 1 (one-hot) it is the lecture's A - Y (times 1.0: exact).
    """
    return AL * jnp.sum(Y, axis=0, keepdims=True) - Y


class Output(NamedTuple):
    """One kind of output layer.

    Attributes:
        forward: Z[L] (n[L], m) -> A[L] (n[L], m).
        cost: (Z[L], Y) -> J, from the logits.
        dZ: (Z[L], A[L], Y) -> dZ[L] = m dJ/dZ[L], (n[L], m): A[L] - Y (for
            softmax A[L] sum_k Y_k - Y, the same for one-hot columns).
        predict: A[L] -> predictions: 0/1 labels (1, m), class indices (m,), or
            the values A[L] themselves for regression.
        classifier: whether ``accuracy`` means anything.
        min_units: the fewest units n[L] the output layer may have (softmax: 2;
            with K = 1 its A is identically 1, J = 0 and nothing learns).
        label_check: Y (n[L], m) numpy -> None, raising
            ``jaxnet.validation.InputError`` for labels the output cannot
            learn from; run once on the host before training (None: any finite
            values).
    """

    forward: Callable[[jax.Array], jax.Array]
    cost: Callable[[jax.Array, jax.Array], jax.Array]
    dZ: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    predict: Callable[[jax.Array], jax.Array]
    classifier: bool
    min_units: int = 1
    label_check: Callable[[np.ndarray], None] | None = None


OUTPUTS: dict[str, Output] = {
    "sigmoid": Output(
        sigmoid,
        compute_cost_from_logits,
        _sigmoid_dZ,
        _binary_labels,
        True,
        label_check=binary_labels,
    ),
    "softmax": Output(
        lambda Z: softmax(Z, axis=0),
        softmax_cross_entropy_from_logits,
        _softmax_dZ,
        _class_indices,
        True,
        min_units=2,
        label_check=distribution_labels,
    ),
    "linear": Output(lambda Z: Z, squared_error_cost, _a_minus_y, lambda AL: AL, False),
}


def get_output(name: str) -> Output:
    """Look an output up by name; an unknown name lists the known ones.

    Raises:
        ValueError: ``name`` is not in ``OUTPUTS``.
    """
    try:
        return OUTPUTS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"the output activation must be one of {tuple(OUTPUTS)}; got {name!r}"
        ) from None


def true_labels(Y, output: str, m: int) -> jax.Array:
    """Labels in the form ``predict`` returns, for counting correct predictions.

    Args:
        Y: sigmoid: (1, m) of 0/1; softmax: one-hot (K, m), or class indices
            (m,) or (1, m).
        output: the output's name.
        m: the number of examples predicted.

    Raises:
        ValueError: Y's shape would broadcast against the predictions (e.g.
            (m, 1) against (1, m)), or the output is not a classifier.
    """
    if not get_output(output).classifier:
        raise ValueError(
            f"accuracy is for classifiers; a {output!r} output predicts values: "
            "use jaxnet.linear_regression.mean_absolute_error"
        )
    Y = jnp.asarray(Y)
    if output == "softmax":
        if Y.shape in ((m,), (1, m)):  # class indices, as a row or a vector
            return Y.reshape(m).astype(jnp.int32)
        if Y.ndim == 2 and Y.shape[1] == m:
            return jnp.argmax(Y, axis=0)
        raise ValueError(
            f"softmax labels must be one-hot (K, {m}) or class indices ({m},) or "
            f"(1, {m}); got {Y.shape}"
        )
    if Y.shape != (1, m):
        hint = " (pass Y.T)" if Y.shape == (m, 1) else ""
        raise ValueError(f"Y must be (1, m) = (1, {m}); got {Y.shape}{hint}")
    return Y.astype(jnp.int32)
