"""Training and prediction: the pure entry points ``fit`` and ``fit_until``.

The lecture's gradient descent, for every layer l:

    repeat num_iterations times (or until J < epsilon):
        W[l] := W[l] - alpha dW[l]        b[l] := b[l] - alpha db[l]

``update_params`` writes that out. ``fit`` runs a whole training run as one
compiled loop (no Python and no host round trip per step) and returns the
parameters and the cost history; ``fit_until`` stops at the first iteration
where J < epsilon, as one ``lax.while_loop``. For a run with a progress bar,
printed costs, checkpoints and safe stops, see ``jaxnet.runner.train_loop``; for
N models at once, ``jaxnet.sweep.sweep``. All of them check their inputs once
(``jaxnet.boundary``) and run the same compiled steps (``jaxnet.driver``).
"""

from collections.abc import Callable, Sequence
from typing import Unpack

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxnet.boundary import prepare
from jaxnet.deep import predict_proba
from jaxnet.driver import drive
from jaxnet.hyperparams import (
    DEFAULT_LEARNING_RATE,
    GRAD_SOURCES,
    Hyperparams,
    TrainConfig,
    TrainOptions,
    check_count,
    check_number,
    regularizers_on,
)
from jaxnet.outputs import get_output, true_labels
from jaxnet.params import Grads, Params
from jaxnet.shapes import check_activations, check_examples
from jaxnet.steps import (
    TrainState,
    gradient_step,
    init_state,
    iteration,
    make_epoch_step,
    run_steps,
    value_and_grads,
)
from jaxnet.trainer import refuse_traced
from jaxnet.until import UntilResult, fit_until
from jaxnet.validation import InputError

__all__ = [
    "GRAD_SOURCES",
    "TrainState",
    "UntilResult",
    "accuracy",
    "fit",
    "fit_until",
    "init_state",
    "make_epoch_step",
    "make_step",
    "make_train_step",
    "predict",
    "run_steps",
    "update_params",
    "value_and_grads",
]

LEARNING_RATE = DEFAULT_LEARNING_RATE


def update_params(params: Params, grads: Grads, learning_rate) -> Params:
    """W[l] := W[l] - alpha dW[l], b[l] := b[l] - alpha db[l] for every layer."""
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)


def _step_config(activations, optimizer, grad, lambd, keep_prob, batch_size, dropout):
    """Config and Hyperparams for the low-level step factories below."""
    for name, value in (("lambd", lambd), ("keep_prob", keep_prob)):
        if not isinstance(value, jax.core.Tracer):
            check_number(name, value)
    optimizer = optimizer if optimizer is not None else optax.sgd(LEARNING_RATE)
    # NaN: a placeholder (the optimizer holds the rate), a float, not an Array.
    hp = Hyperparams(jnp.nan, lambd, keep_prob)  # type: ignore[arg-type]
    l2, dropout_on = regularizers_on(hp)
    config = TrainConfig(
        tuple(activations),
        optimizer.update,
        grad,
        batch_size,
        l2,
        dropout_on if dropout is None else dropout,
    )
    return config, hp


def make_train_step(
    activations: Sequence[str],
    optimizer: optax.GradientTransformation | None,
    *,
    grad: str = "manual",
    lambd=0.0,
    keep_prob=1.0,
    dropout: bool | None = None,
) -> Callable:
    """One gradient step on a batch: ``step(state, X, Y) -> (state, cost)``.

    Args:
        activations: one name per layer.
        optimizer: an optax transformation, e.g. ``optax.sgd(0.0075)``.
        grad: "manual" or "autodiff".
        lambd: L2 strength (may be a traced value); 0 leaves the term out.
        keep_prob: probability of keeping a hidden unit (may be traced).
        dropout: apply dropout masks; default: keep_prob is not 1.

    Returns:
        A pure function; jit it, or scan it with ``run_steps``.
    """
    config, hp = _step_config(
        activations, optimizer, grad, lambd, keep_prob, None, dropout
    )
    step = gradient_step(config)
    return lambda state, X, Y: step(state, hp, X, Y)


def make_step(
    activations: Sequence[str],
    optimizer: optax.GradientTransformation,
    *,
    grad: str = "manual",
    lambd=0.0,
    keep_prob=1.0,
    batch_size: int | None = None,
    dropout: bool | None = None,
) -> Callable:
    """One iteration ``(state, X, Y) -> (state, cost)``: a step, or an epoch."""
    config, hp = _step_config(
        activations, optimizer, grad, lambd, keep_prob, batch_size, dropout
    )
    return iteration(config, hp)


def fit(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    activations: Sequence[str],
    num_iterations: int,
    **options: Unpack[TrainOptions],
) -> tuple[Params, jax.Array]:
    """Train for num_iterations as one compiled loop (pure, no printing).

    Args:
        params: initial parameters (their dtype sets the run's dtype).
        X: (n_x, m). Y: (n[L], m): 0/1 labels (sigmoid), one-hot columns
            (softmax) or real targets (linear).
        activations: one name per layer, the last from ``OUTPUTS``.
        num_iterations: gradient steps (full batch) or epochs (with batch_size).
        **options: learning_rate (None: 0.0075 for a named rule, an optax
            optimizer's own rate; given beside an optax optimizer it is set in
            an ``optax.inject_hyperparams`` one and refused by any other),
            optimizer (None: gradient descent),
            grad ("manual"), lambd (0), keep_prob (1), batch_size (None: full
            batch), key, first_layer ("auto"), mesh (None): see
            ``jaxnet.hyperparams.TrainOptions``, their one home. With
            ``mesh=jaxnet.distributed.make_mesh(D)`` the m examples are split
            over D devices (data parallel; the same numbers to rounding).

    Returns:
        The trained params and the costs, (num_iterations,): cost i is J before
        update i. With a mesh the params are copied on its devices.

    Raises:
        ValueError: any input out of range (see ``jaxnet.boundary``), or, with
            a mesh, an m that its device count does not divide (refused, with
            the nearest valid m: no padding).
    """
    refuse_traced("fit", params, X, Y, num_iterations, options)
    num_iterations = check_count("num_iterations", num_iterations)
    run = prepare(params, X, Y, activations=activations, **options)
    result = drive(
        run.config, run.state, run.hp, run.data, run.Y,
        num_iterations=num_iterations, single_chunk=True, check=False,
    )  # fmt: skip
    return result.params, jnp.asarray(result.costs)


def predict(params: Params, X: ArrayLike, activations: Sequence[str]) -> jax.Array:
    """Predictions: 0/1 labels (1, m) for sigmoid, class indices (m,) for softmax,
    the values A[L] (n[L], m) for a linear output.

    X is (n_x, m). Called on concrete arrays, an X holding NaN or inf is
    refused (a NaN column would otherwise be labelled 0); inside ``jax.jit``
    or ``vmap`` X is traced and cannot be checked: check it before.

    Raises:
        ValueError: activations is a single string or not one valid name per
            layer; a concrete X holds NaN or inf (the message names the first).
    """
    activations = check_activations(activations, len(params))
    _check_finite_input(X)
    return get_output(activations[-1]).predict(predict_proba(params, X, activations))


def _check_finite_input(X) -> None:
    """Refuse a concrete X holding NaN or inf; traced X passes (see predict)."""
    if isinstance(X, jax.core.Tracer) or bool(jnp.all(jnp.isfinite(jnp.asarray(X)))):
        return
    bad = ~np.isfinite(np.asarray(X))
    first = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
    raise InputError(
        f"X has non-finite values (NaN or inf) in {int(bad.sum())} of {bad.size} "
        f"entries, the first at X[{first}]: a prediction for such an example is "
        "meaningless; drop or repair those columns before predicting"
    )


def accuracy(params: Params, X: ArrayLike, Y: ArrayLike, activations) -> jax.Array:
    """Fraction of examples predicted right, in [0, 1].

    Y is (1, m) of 0/1 for a sigmoid output, or one-hot (K, m) / class indices
    (m,) for softmax. A Y that would broadcast ((m, 1) against (1, m)) is an
    error, not a wrong number, and so is m = 0 (the mean would be NaN).
    """
    check_examples(jnp.shape(X)[1] if jnp.ndim(X) == 2 else 1)
    predictions = predict(params, X, activations)
    labels = true_labels(Y, activations[-1], jnp.shape(X)[1])
    correct = predictions == labels
    return jnp.mean(correct.astype(jnp.result_type(float)))
