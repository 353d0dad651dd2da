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
import numpy as np
import optax

from jaxnet.hyperparams import DEFAULT_LEARNING_RATE, check_number


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


def as_optimizer(
    optimizer, learning_rate, params=None, *, given: tuple | None = None
) -> optax.GradientTransformation:
    """What the training entry points accept as ``optimizer=``, made an optax one.

    None means plain gradient descent; a name from ``OPTIMIZERS`` builds that
    rule with default settings and ``learning_rate`` (None: the default alpha,
    ``DEFAULT_LEARNING_RATE``). An optax transformation keeps its own learning
    rate when ``learning_rate`` is None (each new object compiles a new
    program). Given a learning rate, a transformation built with
    ``optax.inject_hyperparams`` has its "learning_rate" hyperparameter set to
    it (stored in the params' dtype); any other transformation is refused,
    since its rate was fixed when it was built and alpha would be ignored.

    Args:
        optimizer: None, a name, or an ``optax.GradientTransformation``.
        learning_rate: alpha (a positive number), or None.
        params: the params the optimizer will see (one model); needed to look
            at a transformation's state when a learning rate is given.
        given: (name, value) of the rate as the user gave it, for messages
            (a sweep's ("learning_rates", [...])); default ("learning_rate",
            learning_rate).

    Raises:
        ValueError: anything else, e.g. ``optax.adam`` not called; a learning
            rate beside a transformation that cannot take it (the message names
            the rate and the fixes).
    """
    if optimizer is None:
        optimizer = "gd"
    if isinstance(optimizer, str):
        alpha = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        return build_optimizer(optimizer, alpha)
    if isinstance(optimizer, optax.GradientTransformation):
        if learning_rate is None:
            return optimizer
        _check_settable(optimizer, params, given or ("learning_rate", learning_rate))
        init = functools.partial(
            _init_with_learning_rate, optimizer.init, learning_rate
        )
        return optax.GradientTransformation(init, optimizer.update)
    hint = ""
    if callable(optimizer):
        called = getattr(optimizer, "__name__", repr(optimizer))
        hint = f": call it, e.g. optax.{called}(learning_rate), or pass its name"
    raise ValueError(
        f"optimizer must be None, one of {OPTIMIZERS} or an optax "
        f"GradientTransformation; got {optimizer!r}{hint}"
    )


def _shown(value) -> str:
    """A learning rate (scalar or sequence) as the user would write it."""
    if isinstance(value, jax.core.Tracer):  # (jaxnet.trainer under jit or vmap)
        return "(a traced value)"
    array = np.asarray(value)
    return repr(float(array)) if array.ndim == 0 else repr(array.tolist())


def _check_settable(transform, params, given: tuple) -> None:
    """Refuse a learning rate that ``transform`` would silently ignore.

    Settable: the state (looked at with ``jax.eval_shape``, nothing computed)
    has a "learning_rate" entry in ``hyperparams`` (``optax.inject_hyperparams``)
    that is a number, not a schedule (which would overwrite it every step).
    """
    state = jax.eval_shape(transform.init, params)
    hyperparams = getattr(state, "hyperparams", None)
    scheduled = getattr(state, "hyperparams_states", None) or {}
    name = given[0]
    setting = f"{name}={_shown(given[1])}"
    fixes = (
        f"leave {name} out to train with the optimizer's own rate, pass the rule "
        f"by name (optimizer='adam', {setting}), or build the transformation with "
        f"optax.inject_hyperparams, e.g. optax.inject_hyperparams(optax.adam)"
        f"(learning_rate=...), whose rate jaxnet sets"
    )
    if isinstance(hyperparams, dict) and "learning_rate" in scheduled:
        raise ValueError(
            f"{setting} cannot be applied: the optax optimizer's learning rate is a "
            f"schedule, which sets it again at every step; {fixes}"
        )
    if not isinstance(hyperparams, dict) or "learning_rate" not in hyperparams:
        raise ValueError(
            f"{setting} would be ignored: the optax optimizer given keeps the "
            f"learning rate it was built with (e.g. optax.sgd(1e-3) trains with "
            f"1e-3 whatever {name} says); {fixes}"
        )


def is_linear(optimizer) -> bool:
    """Whether ``optimizer`` (as given to ``fit``) is a linear rule (see ``Rule``)."""
    if optimizer is None:
        return True
    if isinstance(optimizer, str):
        return RULES[optimizer].linear
    return optimizer.update in _LINEAR_UPDATES
