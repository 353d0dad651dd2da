"""A pure training function that research code can jit, vmap and differentiate.

``fit`` validates on the host and drives its own compiled loop, so it cannot run
inside ``jax.jit``, ``jax.vmap`` or ``jax.grad``. ``trainer`` validates its
options once, when it is built, and returns

    run(params, X, Y, *, learning_rate=None, lambd=None, keep_prob=None,
        key=None) -> (params, costs (num_iterations,))

which does no host work: it is the same step as ``fit``'s
(``jaxnet.steps.iteration``) scanned ``num_iterations`` times
(``jaxnet.steps.run_steps``). Its numbers are ``fit``'s with the same options
(dense first layer; on wide inputs ``fit``'s default may choose the gram form,
equal to rounding). The keyword arguments override the trainer's numbers per
call and may be traced, so

    jax.vmap(lambda lr: run(params, X, Y, learning_rate=lr))(rates)
    jax.grad(lambda lr: run(params, X, Y, learning_rate=lr)[1][-1])(0.1)
    jax.vmap(lambda k: run(init_params(k, dims), X, Y))(keys)

all work. Values inside ``run`` cannot be checked (they are traced): check the
data once with ``jaxnet.validation.check_training_data`` if it comes from
outside. Shapes are checked at trace time (free).
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Unpack

import jax
import jax.numpy as jnp

from jaxnet.hyperparams import (
    DEFAULT_LEARNING_RATE,
    GRAD_SOURCES,
    Hyperparams,
    TrainConfig,
    TrainOptions,
    check_count,
    check_number,
    training_options,
)
from jaxnet.optimizers import as_optimizer
from jaxnet.params import Params
from jaxnet.shapes import check_activations, check_examples, check_output_units
from jaxnet.steps import TrainState, iteration, run_steps

NOT_HERE = ("first_layer", "mesh")  # host-side choices the pure run does not take


def _named(optimizer) -> bool:
    return optimizer is None or isinstance(optimizer, str)


def trainer(
    activations: Sequence[str],
    num_iterations: int,
    **options: Unpack[TrainOptions],
) -> Callable[..., tuple[Params, jax.Array]]:
    """Build ``run(params, X, Y) -> (params, costs)``, pure and traceable.

    Args:
        activations: one name per layer, the last an output (``OUTPUTS``).
        num_iterations: gradient steps (full batch) or epochs (batch_size).
        **options: as ``fit``'s (``jaxnet.hyperparams.TrainOptions``):
            learning_rate, optimizer, grad, lambd, keep_prob, batch_size, key;
            first_layer must be "auto" or "dense" and mesh None (the run is
            the dense lecture form on one device; jit and shard it yourself).

    Returns:
        ``run(params, X, Y, *, learning_rate=None, lambd=None, keep_prob=None,
        key=None)``: params L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}, X
        (n_x, m), Y (n[L], m), converted to the params' dtype. The keywords
        override the trainer's values and may be traced (vmap or grad over
        them); lambd or keep_prob given at call time turn L2 or dropout on for
        that call. Returns the trained params and the costs, (num_iterations,):
        cost i is J before update i.

    Raises:
        ValueError: an option out of range, an unknown activation name, or
            first_layer / mesh that the pure run cannot honour. At trace time:
            shapes that do not fit the params, m = 0, or too few output units.
    """
    checked = check_count("num_iterations", num_iterations)
    assert checked is not None  # (None is refused: allow_none is False)
    num_iterations = checked
    pure = pure_options("jaxnet.trainer", activations, options)

    def run(params, X, Y, *, learning_rate=None, lambd=None, keep_prob=None, key=None):
        step, state, X, Y = pure_start(
            pure, params, X, Y, learning_rate, lambd, keep_prob, key
        )
        state, costs = run_steps(step, state, X, Y, num_iterations)
        return state.params, costs

    return run


class PureOptions(NamedTuple):
    """A pure run's options, checked once when it is built (``pure_options``).

    rate is None for an optax transformation with its own learning rate.
    """

    names: tuple[str, ...]
    optimizer: Any
    rate: Any
    lambd: Any
    keep_prob: Any
    batch_size: int | None
    grad: str
    key: Any


def pure_options(entry: str, activations: Sequence[str], options) -> PureOptions:
    """Check a pure run's options (``fit``'s, less first_layer and mesh) on the
    host, before anything is traced; ``entry`` names the builder in errors.

    Raises:
        ValueError: an option out of range, an unknown activation name, or
            first_layer / mesh that the pure run cannot honour.
    """
    o = training_options(dict(options))
    if o["first_layer"] not in ("auto", "dense") or o["mesh"] is not None:
        raise ValueError(
            f"{entry} runs the dense first layer on one device: leave "
            f"first_layer ('auto' or 'dense') and mesh (None) out; got "
            f"first_layer={o['first_layer']!r}, mesh={o['mesh']!r}"
        )
    names = check_activations(activations, len(activations))
    optimizer = o["optimizer"]
    rate = o["learning_rate"]
    if rate is None and _named(optimizer):
        rate = DEFAULT_LEARNING_RATE
    if rate is not None:
        rate = check_number("learning_rate", rate)
    lambd = check_number("lambd", o["lambd"])
    keep_prob = check_number("keep_prob", o["keep_prob"])
    batch_size = check_count("batch_size", o["batch_size"], allow_none=True)
    grad = o["grad"]
    if grad not in GRAD_SOURCES:
        raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")
    as_optimizer(optimizer, None)  # refuse a malformed optimizer now
    return PureOptions(
        names, optimizer, rate, lambd, keep_prob, batch_size, grad, o["key"]
    )


def pure_start(
    pure: PureOptions,
    params: Params,
    X,
    Y,
    learning_rate=None,
    lambd=None,
    keep_prob=None,
    key=None,
) -> tuple[Callable, TrainState, jax.Array, jax.Array]:
    """The step and start state of a pure run (traceable: no host work).

    Args:
        pure: ``pure_options``'s result.
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}.
        X: (n_x, m); Y: (n[L], m); both converted to the params' dtype.
        learning_rate, lambd, keep_prob, key: per-call values (may be traced)
            that override ``pure``'s; lambd or keep_prob given here turn L2 or
            dropout on.

    Returns:
        (step, state, X, Y): ``jaxnet.steps.iteration``'s step for these
        hyperparameters, the TrainState (params, the optimizer's init, key)
        and the converted data.
    """
    check_activations(pure.names, len(params))
    check_output_units(params, pure.names[-1])
    dtype = jnp.result_type(jax.tree.leaves(params)[0])
    X, Y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
    check_examples(X.shape[1])
    alpha = pure.rate if learning_rate is None else learning_rate
    if alpha is None:  # an optax transformation with its own rate
        transform = as_optimizer(pure.optimizer, None)
    else:
        transform = as_optimizer(pure.optimizer, alpha, params)
    l2 = lambd is not None or pure.lambd != 0
    dropout = keep_prob is not None or pure.keep_prob != 1
    hp = Hyperparams(
        jnp.asarray(jnp.nan if alpha is None else alpha, dtype),
        jnp.asarray(pure.lambd if lambd is None else lambd, dtype),
        jnp.asarray(pure.keep_prob if keep_prob is None else keep_prob, dtype),
    )
    config = TrainConfig(
        pure.names, transform.update, pure.grad, pure.batch_size, l2, dropout
    )
    key = pure.key if key is None else key
    key = jax.random.key(0) if key is None else key
    state = TrainState(params, transform.init(params), key)
    return iteration(config, hp), state, X, Y


def refuse_traced(entry: str, *values) -> None:
    """Raise a clear error when a host entry point is called inside jit or vmap.

    Raises:
        TypeError: any leaf of ``values`` is a jax tracer; the message names
            ``jaxnet.trainer``, the pure route.
    """
    leaves = jax.tree.leaves(values)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        raise TypeError(
            f"jaxnet.{entry} cannot run inside jax.jit, jax.vmap or jax.grad (its "
            "arguments are traced): it checks values on the host and drives its "
            "own compiled loop. Use run = jaxnet.trainer(activations, "
            "num_iterations, **options), a pure run(params, X, Y) you can jit, "
            "vmap and differentiate"
        )
