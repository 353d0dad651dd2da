"""The lecture's optimization hyperparameters as optax transformations.

Every optimizer here is a plain ``optax.GradientTransformation``: it only turns
gradients into updates, so the gradients themselves still come from the
hand-written backward pass (or ``jax.grad``, see ``jaxnet.train``). The rules,
for every parameter W (and b alike), with dW its gradient and alpha the
learning rate:

    gd        W := W - alpha dW                          optax.sgd(alpha)
    momentum  v := beta v + dW;  W := W - alpha v         optax.sgd(alpha, beta)
    rmsprop   S := rho S + (1 - rho) dW^2
              W := W - alpha dW / (sqrt(S) + eps)         optax.rmsprop(...)
    adam      v := b1 v + (1 - b1) dW;  S := b2 S + (1 - b2) dW^2
              v_hat = v / (1 - b1^t);  S_hat = S / (1 - b2^t)
              W := W - alpha v_hat / (sqrt(S_hat) + eps)  optax.adam(...)

Note on momentum: the course writes v := beta v + (1 - beta) dW; optax (and most
libraries) leave out the (1 - beta). Both give the same path once alpha is
rescaled: alpha_optax = alpha_course (1 - beta). "gd" is bit for bit the
lecture's ``update_params``.
"""

import optax

OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")


def _check_unit_interval(name: str, value) -> None:
    """Decay rates must lie in [0, 1): 1 would never forget the first gradient."""
    if isinstance(value, int | float) and not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1); got {value}")


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
        name: "gd" (plain gradient descent), "momentum", "rmsprop" or "adam".
        learning_rate: alpha, a positive float (or an optax schedule).
        momentum: beta of "momentum" (optax's trace decay), in [0, 1).
        b1: Adam's first-moment decay, in [0, 1).
        b2: Adam's second-moment decay, in [0, 1).
        decay: RMSprop's decay rho of the squared-gradient average, in [0, 1).
        eps: the small constant added to sqrt(S) in "rmsprop" and "adam".

    Returns:
        An ``optax.GradientTransformation``; pass it as ``optimizer=`` to
        ``jaxnet.train.fit`` or ``jaxnet.runner.train_loop``.

    Raises:
        ValueError: an unknown name (the message lists the known ones), a
            non-positive learning rate or a decay outside [0, 1).
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZERS)}"
        )
    if isinstance(learning_rate, int | float) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive; got {learning_rate}")
    if name == "gd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        _check_unit_interval("momentum", momentum)
        return optax.sgd(learning_rate, momentum=momentum)
    if name == "rmsprop":
        _check_unit_interval("decay", decay)
        # eps outside the square root, as in the course: dW / (sqrt(S) + eps).
        return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=False)
    _check_unit_interval("b1", b1)
    _check_unit_interval("b2", b2)
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
