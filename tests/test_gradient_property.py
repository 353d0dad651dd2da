"""Property test: the hand-written backward equals jax.grad on random networks.

Hypothesis draws architectures (depth 1-6, widths 1-40), every hidden
activation in the table (leaky ReLU at several slopes), sigmoid, softmax and
linear outputs, m from 1 to 64, L2 and dropout (the same key on both paths),
random biases or b = 0 with inputs that put pre-activations exactly on the
kinks (zero columns of X, zero rows of W). float64; the bound is 1e-10 relative
per leaf (``||g_manual - g_jax|| / (||g_manual|| + ||g_jax||)``): both are
exact up to rounding, which leaves ~1e-15 for a correct rule, while a wrong
rule (relu'(0) = 1/2, a missing mask) shows up at 1e-3 or more.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxnet import activations as act
from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.gradcheck import relative_difference

BOUND = 1e-10
SLOPES = {"leaky_relu_0": 0.0, "leaky_relu_0.2": 0.2, "leaky_relu_1.5": 1.5}
HIDDEN = sorted(act.ACTIVATIONS) + sorted(SLOPES)
WIDTHS = st.sampled_from([1, 2, 3, 5, 8, 13, 40])
MAX_ERRORS: list[float] = []


@pytest.fixture(autouse=True, scope="module")
def leaky_slopes():
    """Leaky ReLU at other slopes, as extra rows of the activation table."""
    for name, slope in SLOPES.items():
        act.ACTIVATIONS[name] = act.Activation(
            functools.partial(act.leaky_relu, slope=slope),
            functools.partial(act.leaky_relu_derivative, slope=slope),
        )
    yield
    for name in SLOPES:
        del act.ACTIVATIONS[name]
    if MAX_ERRORS:
        print(f"\n{len(MAX_ERRORS)} examples, max error {max(MAX_ERRORS):.2e}")


@st.composite
def problems(draw):
    depth = draw(st.integers(1, 6))
    output = draw(st.sampled_from(["sigmoid", "softmax", "linear"]))
    n_y = draw(st.sampled_from([2, 3, 10])) if output == "softmax" else 1
    dims = [draw(WIDTHS) for _ in range(depth)] + [n_y]
    m = draw(st.sampled_from([1, 2, 7, 16, 64]))
    hidden = tuple(draw(st.sampled_from(HIDDEN)) for _ in range(depth - 1))
    return dict(
        dims=dims,
        m=m,
        activations=hidden + (output,),
        zero_bias=draw(st.booleans()),
        kinks=draw(st.booleans()),
        lambd=draw(st.sampled_from([None, 0.0, 0.7])),
        keep_prob=draw(st.sampled_from([1.0, 0.6])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _instance(p):
    rng = np.random.default_rng(p["seed"])
    dims = p["dims"]
    params = []
    for n_prev, n in zip(dims[:-1], dims[1:], strict=True):
        W = rng.normal(size=(n, n_prev)) * np.sqrt(2 / n_prev)
        if p["kinks"] and n > 1:
            W[rng.integers(n)] = 0.0  # a dead unit: Z = b exactly
        b = np.zeros((n, 1)) if p["zero_bias"] else rng.normal(size=(n, 1))
        params.append({"W": jnp.asarray(W), "b": jnp.asarray(b)})
    X = rng.normal(size=(dims[0], p["m"]))
    if p["kinks"]:
        X[:, rng.random(p["m"]) < 0.3] = 0.0  # zero columns: Z = b on the kink
        X[rng.random(X.shape) < 0.2] = 0.0
    output = p["activations"][-1]
    if output == "softmax":
        Y = np.eye(dims[-1])[rng.integers(dims[-1], size=p["m"])].T
    elif output == "sigmoid":
        Y = (rng.random((1, p["m"])) < 0.5).astype(np.float64)
    else:
        Y = rng.normal(size=(1, p["m"])) * 3
    return params, jnp.asarray(X), jnp.asarray(Y)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(problems())
def test_manual_backward_equals_jax_grad(p):
    params, X, Y = _instance(p)
    kwargs = dict(
        lambd=p["lambd"],
        keep_prob=p["keep_prob"],
        dropout_key=jax.random.key(p["seed"]) if p["keep_prob"] < 1 else None,
    )
    acts = p["activations"]
    cost, manual = model_value_and_grads(params, X, Y, acts, **kwargs)
    reference = jax.grad(model_cost)(params, X, Y, acts, **kwargs)
    assert np.isfinite(float(cost))
    errors = [
        relative_difference(g, r)
        for g, r in zip(
            jax.tree.leaves(manual), jax.tree.leaves(reference), strict=True
        )
    ]
    MAX_ERRORS.append(max(errors))
    assert max(errors) <= BOUND, (p, errors)
