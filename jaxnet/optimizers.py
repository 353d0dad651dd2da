"""The lecture's optimization hyperparameters as optax transformations.

Every optimizer here is a plain ``optax.GradientTransformation``: it only turns
gradients into updates, so the gradients themselves still come from the
hand-written backward pass (or ``jax.grad``, see ``jaxnet.train``). The rules,
for every parameter W (and b alike), with dW its gradient and alpha the
learning rate:

    gd        W := W - alpha dW                          optax.sgd(alpha)
    momentum  v := beta v + dW;  W := W - alpha v         optax.sgd(alpha, beta)
    nesterov  v := beta v + dW;  W := W - alpha (beta v + dW)
    rmsprop   S := rho S + (1 - rho) dW^2
              W := W - alpha dW / (sqrt(S) + eps)         optax.rmsprop(...)
    adam      v := b1 v + (1 - b1) dW;  S := b2 S + (1 - b2) dW^2
              v_hat = v / (1 - b1^t);  S_hat = S / (1 - b2^t)
              W := W - alpha v_hat / (sqrt(S_hat) + eps)  optax.adam(...)

Note on momentum: the course writes v := beta v + (1 - beta) dW; optax (and most
libraries) leave out the (1 - beta). Both give the same path once alpha is
rescaled: alpha_optax = alpha_course (1 - beta). "gd" is bit for bit the
lecture's ``update_params``.

The learning rate lives in the optimizer's state (``optax.inject_hyperparams``)
and the update function is built once per rule and settings, so optimizers that
differ only in alpha share one compiled training program.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnet.hyperparams import check_number


class Rule(NamedTuple):
    """An update rule: its optax factory, its settings, and whether it is linear.

    ``linear``: the update is a fixed linear combination of past gradients (the
    same for every entry), so it commutes with a linear change of coordinates;
    the exact wide-input path (``jaxnet.wide``) needs that.
    """

    factory: object
    settings: tuple[str, ...]
    linear: bool


def _sgd(learning_rate):
    return optax.sgd(learning_rate)


def _momentum(learning_rate, momentum):
    return optax.sgd(learning_rate, momentum=momentum)


def _nesterov(learning_rate, momentum):
    return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


def _rmsprop(learning_rate, decay, eps):
    # eps outside the square root, as in the course: dW / (sqrt(S) + eps).
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=False)


def _adam(learning_rate, b1, b2, eps):
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


RULES: dict[str, Rule] = {
    "gd": Rule(_sgd, (), True),
    "momentum": Rule(_momentum, ("momentum",), True),
    "nesterov": Rule(_nesterov, ("momentum",), True),
    "rmsprop": Rule(_rmsprop, ("decay", "eps"), False),
    "adam": Rule(_adam, ("b1", "b2", "eps"), False),
}
OPTIMIZERS = tuple(RULES)


def _check_decay(name: str, value) -> float:
    """Decay rates must lie in [0, 1): 1 would never forget the first gradient."""
    if isinstance(value, bool) or not 0 <= float(value) < 1:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


_LINEAR_UPDATES: set = set()  # update functions of the linear rules built so far


@functools.cache
def _injected(name: str, settings: tuple) -> optax.GradientTransformation:
    """The rule with its learning rate in the state, built once per settings."""
    factory = RULES[name].factory
    static = tuple(key for key, _ in settings)
    transform = optax.inject_hyperparams(factory, static_args=static)(
        learning_rate=1.0, **dict(settings)
    )
    if RULES[name].linear:
        _LINEAR_UPDATES.add(transform.update)
    return transform


def _init_with_learning_rate(init, learning_rate, params):
    """``init(params)`` with alpha stored in the params' dtype (no promotion)."""
    state = init(params)
    dtype = jax.tree.leaves(params)[0].dtype
    alpha = jnp.asarray(learning_rate, dtype)
    return state._replace(hyperparams={**state.hyperparams, "learning_rate": alpha})


def build_optimizer(
    name: str,
    learning_rate,
    momentum: float = 0.9,
    b1: float = 0.9,
    b2: float = 0.999,
    *,
    decay: float = 0.9,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    """The optax transformation for one of the lecture's update rules.

    Args:
        name: "gd" (plain gradient descent), "momentum", "nesterov", "rmsprop"
            or "adam".
        learning_rate: alpha, a positive number (Python, numpy or jax scalar).
        momentum: beta of "momentum" and "nesterov" (optax's trace decay), in
            [0, 1).
        b1: Adam's first-moment decay, in [0, 1).
        b2: Adam's second-moment decay, in [0, 1).
        decay: RMSprop's decay rho of the squared-gradient average, in [0, 1).
        eps: the small constant added to sqrt(S) in "rmsprop" and "adam".

    Returns:
        An ``optax.GradientTransformation`` whose state holds alpha; two
        optimizers of the same rule and settings share their ``update``, so a
        new alpha reuses the compiled training program.

    Raises:
        ValueError: an unknown name (the message lists the known ones), a
            learning rate that is not a positive finite number, or a decay
            outside [0, 1).
    """
    if name not in RULES:
        raise ValueError(
            f"unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZERS)}"
        )
    if not isinstance(learning_rate, jax.core.Tracer):
        learning_rate = float(check_number("learning_rate", learning_rate))
    given = {"momentum": momentum, "b1": b1, "b2": b2, "decay": decay}
    values = {key: _check_decay(key, value) for key, value in given.items()}
    values["eps"] = float(eps)
    settings = tuple((key, values[key]) for key in RULES[name].settings)
    base = _injected(name, settings)
    init = functools.partial(_init_with_learning_rate, base.init, learning_rate)
    return optax.GradientTransformation(init, base.update)


def as_optimizer(optimizer, learning_rate) -> optax.GradientTransformation:
    """What the training entry points accept as ``optimizer=``, made an optax one.

    None means plain gradient descent; a name from ``OPTIMIZERS`` builds that
    rule with default settings and ``learning_rate``; an optax transformation is
    used as it is (its own learning rate applies, and each new object compiles
    a new program).

    Raises:
        ValueError: anything else, e.g. ``optax.adam`` not called.
    """
    if optimizer is None:
        return build_optimizer("gd", learning_rate)
    if isinstance(optimizer, str):
        return build_optimizer(optimizer, learning_rate)
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    hint = ""
    if callable(optimizer):
        name = getattr(optimizer, "__name__", repr(optimizer))
        hint = f": call it, e.g. optax.{name}(learning_rate), or pass its name"
    raise ValueError(
        f"optimizer must be None, one of {OPTIMIZERS} or an optax "
        f"GradientTransformation; got {optimizer!r}{hint}"
    )


def is_linear(optimizer) -> bool:
    """Whether ``optimizer`` (as given to ``fit``) is a linear rule (see ``Rule``)."""
    if optimizer is None:
        return True
    if isinstance(optimizer, str):
        return RULES[optimizer].linear
    return optimizer.update in _LINEAR_UPDATES
