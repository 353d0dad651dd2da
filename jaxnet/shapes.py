"""Static checks of shapes and names, in the lecture's terms; free under jit.

They read only shapes and names (never array values; a keep_prob only when it
is a concrete number), so the compiled step can call them at trace time at no
cost. Value checks (labels, NaN, ranges) happen once on
the host in ``jaxnet.validation`` and ``jaxnet.hyperparams``.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.activations import ACTIVATIONS, get_activation
from jaxnet.outputs import OUTPUTS, get_output
from jaxnet.params import Params


def check_activations(activations: Sequence[str], num_layers: int) -> tuple[str, ...]:
    """Validate one activation name per layer; the last must be an output one.

    Raises:
        ValueError: a single string was given (read letter by letter), the count
            differs from the number of layers, or a name is unknown.
    """
    if isinstance(activations, str):
        raise ValueError(
            f"activations must be a sequence of names, one per layer (e.g. "
            f"jaxnet.activations_for({num_layers}) = "
            f"{list(('relu',) * (num_layers - 1) + ('sigmoid',))}); got the single "
            f"string {activations!r}"
        )
    activations = tuple(activations)
    if len(activations) != num_layers:
        raise ValueError(
            f"need one activation per layer: {num_layers} layers but "
            f"{len(activations)} activations {list(activations)}"
        )
    for name in activations[:-1]:
        get_activation(name)
    get_output(activations[-1])
    return activations


def check_output_units(params: Params, output: str) -> None:
    """The output layer has at least ``min_units`` units (its ``OUTPUTS`` row).

    Raises:
        ValueError: e.g. a softmax output with K = 1 unit: softmax of one number
            is 1, so J = 0 for every W and nothing learns.
    """
    need = get_output(output).min_units
    W = params[-1]["W"]
    if W.shape[0] < need:
        raise ValueError(
            f"a {output} output needs at least {need} units (one per class); "
            f"W[{len(params)}] is {tuple(W.shape)}, so A[L] is identically 1, J = 0 "
            "and nothing learns: for two classes use a sigmoid output with one "
            f"unit and (1, m) 0/1 labels, or give the last layer {need} or more units"
        )


def check_examples(m: int) -> None:
    """m >= 1: J, its gradient and accuracy average over the m examples.

    Raises:
        ValueError: m = 0, where the average would be 0/0 = NaN.
    """
    if m == 0:
        raise ValueError(
            "X has 0 columns (m = 0): J, its gradient and accuracy average over "
            "the m examples; pass at least one example, X (n_x, m) with m >= 1"
        )


def check_dropout(keep_prob, dropout_key) -> None:
    """keep_prob < 1 comes with a ``dropout_key`` (no key means no dropout).

    A concrete keep_prob (Python, numpy or jax scalar) of 1 needs no key; a
    traced one (inside the user's jit or vmap) needs a key whatever its value,
    since its value cannot be read at trace time.

    Raises:
        ValueError: keep_prob != 1, or traced, without a dropout_key.
    """
    if dropout_key is not None:
        return
    if isinstance(keep_prob, jax.core.Tracer):
        raise ValueError(
            "keep_prob is traced (inside jit or vmap), so jaxnet cannot tell that "
            "it is 1, and without a dropout_key no unit would be dropped: pass "
            "dropout_key=jax.random.key(...) for dropout, or leave keep_prob at "
            "its default 1.0 (a Python number) for none"
        )
    value = np.asarray(keep_prob)
    if np.any(value != 1):
        shown = float(value) if value.ndim == 0 else value.tolist()
        raise ValueError(
            f"keep_prob={shown!r} without a dropout_key would mean no dropout at "
            "all: pass dropout_key=jax.random.key(...) to drop units, or leave "
            "keep_prob at 1.0"
        )


def forward_of(name: str):
    """g for a hidden activation or an output name ("linear", "softmax" ...)."""
    return ACTIVATIONS[name].forward if name in ACTIVATIONS else OUTPUTS[name].forward


def check_inputs(params: Params, X: jax.Array, Y: jax.Array | None = None):
    """Static shape checks in the lecture's terms; free under jit.

    Raises:
        ValueError: X is not (n_x, m) with n_x = n[0]; Y is not (n[L], m); with
            Y (a cost to average), m = 0.
    """
    n_x = params[0]["W"].shape[1]
    n_y = params[-1]["W"].shape[0]
    if jnp.ndim(X) != 2 or X.shape[0] != n_x:
        rows = (
            ": are examples in rows? Pass X.T"
            if jnp.ndim(X) == 2 and X.shape[1] == n_x
            else ""
        )
        raise ValueError(
            f"X must be (n_x, m) = ({n_x}, m) for layer_dims[0] = {n_x}; got "
            f"{jnp.shape(X)}{rows}"
        )
    for l, (p, q) in enumerate(zip(params[:-1], params[1:], strict=True), start=1):
        if q["W"].shape[1] != p["W"].shape[0] or p["b"].shape != (p["W"].shape[0], 1):
            raise ValueError(
                f"layer sizes do not chain: W[{l}] is {p['W'].shape}, b[{l}] is "
                f"{p['b'].shape}, W[{l + 1}] is {q['W'].shape}"
            )
    last = params[-1]
    if last["b"].shape != (n_y, 1):
        raise ValueError(
            f"b[{len(params)}] must be (n[L], 1) = ({n_y}, 1); got {last['b'].shape}"
        )
    if Y is not None:
        m = X.shape[1]
        if jnp.ndim(Y) != 2 or Y.shape != (n_y, m):
            hint = ""
            if jnp.ndim(Y) == 1:
                hint = (
                    " (reshape labels to (1, m))"
                    if n_y == 1
                    else f" (one-hot encode: jaxnet.labels.one_hot(labels, {n_y}))"
                )
            elif jnp.shape(Y) == (m, n_y):
                hint = " (pass Y.T)"
            raise ValueError(
                f"Y must be (n_y, m) = ({n_y}, {m}) to match X {X.shape}; got "
                f"{jnp.shape(Y)}{hint}"
            )
        check_examples(m)
