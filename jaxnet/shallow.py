"""The shallow network: one hidden layer, the lecture's two-layer model.

    Z[1] = W[1] X + b[1]          A[1] = g(Z[1])            (n_h, m)
    Z[2] = W[2] A[1] + b[2]       A[2] = sigmoid(Z[2])      (1, m)

    dZ[2] = A[2] - Y
    dW[2] = (1/m) dZ[2] A[1]^T     db[2] = (1/m) sum(dZ[2], axis=1, keepdims=True)
    dZ[1] = W[2]^T dZ[2] * g'(Z[1])
    dW[1] = (1/m) dZ[1] X^T        db[1] = (1/m) sum(dZ[1], axis=1, keepdims=True)

It is the L-layer engine (``jaxnet.deep``) with layer_dims [n_x, n_h, n_y] and
activations (g, "sigmoid"); this module only names that case.
"""

import jax.numpy as jnp

from jaxnet.activations import get_activation
from jaxnet.params import Params, PRNGKey, init_params

HIDDEN_ACTIVATIONS = ("tanh", "relu", "leaky_relu", "sigmoid", "softplus")


def shallow_activations(hidden: str = "tanh") -> tuple[str, str]:
    """(hidden, "sigmoid"): the activations of the two-layer model."""
    get_activation(hidden)
    return (hidden, "sigmoid")


def init_shallow(
    key: PRNGKey, n_x: int, n_h: int, n_y: int = 1, dtype=jnp.float32
) -> Params:
    """The lecture's W = randn * 0.01, b = 0 for layer sizes [n_x, n_h, n_y]."""
    return init_params(key, [n_x, n_h, n_y], method="small", dtype=dtype)
