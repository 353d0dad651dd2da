"""Tests for jaxnet.gradcheck: it passes correct gradients (primitives and nested
pytrees), catches planted bugs naming the leaf, refuses float32, prints a table."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.activations import ACTIVATIONS, Activation, relu
from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.gradcheck import (
    check_gradients,
    finite_difference_grad,
    relative_difference,
)
from jaxnet.losses import (
    compute_cost,
    cost_backward,
    cross_entropy,
    cross_entropy_derivative,
    cross_entropy_from_logits,
    cross_entropy_from_logits_derivative,
    l2_loss,
    l2_loss_derivative,
)
from jaxnet.params import course_init_params

# Points away from relu's kink (|z| >= 0.1) so finite differences with eps=1e-6
# never straddle it.
Z = jnp.array([[-2.0, -0.7, 0.3], [0.1, 1.5, -0.2]])
LABELS = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
PROBS = jnp.array([[0.8, 0.3, 0.6], [0.1, 0.45, 0.9]])


def test_passes_on_every_activation():
    # Every elementwise g as a scalar function f(z) = sum g(z), so df/dz = g'(z);
    # all of them in one dict pytree, so one check (one compilation) covers all
    # and a failure names the activation, e.g. "['relu']".
    points = {name: Z for name in ACTIVATIONS}

    def f(zs):
        return sum(jnp.sum(ACTIVATIONS[name].forward(z)) for name, z in zs.items())

    def manual(zs):
        return {name: ACTIVATIONS[name].derivative(z) for name, z in zs.items()}

    result = check_gradients(jax.jit(f), points, manual)
    assert result.passed, str(result)
    assert result.failed_leaves == ()
    assert sorted(leaf.path for leaf in result.leaves) == sorted(
        f"['{name}']" for name in ACTIVATIONS
    )


def test_passes_on_every_loss():
    y1 = LABELS[:1]
    points = {
        "l2": PROBS,
        "cross_entropy": PROBS,
        "from_logits": Z,
        "cost": PROBS[:1],  # J averages over m = 3; cost_backward is m dJ/dAL
    }

    def f(p):
        return (
            l2_loss(p["l2"], LABELS)
            + jnp.sum(cross_entropy(p["cross_entropy"], LABELS))
            + jnp.sum(cross_entropy_from_logits(p["from_logits"], LABELS))
            + compute_cost(p["cost"], y1)
        )

    def manual(p):
        return {
            "l2": l2_loss_derivative(p["l2"], LABELS),
            "cross_entropy": cross_entropy_derivative(p["cross_entropy"], LABELS),
            "from_logits": cross_entropy_from_logits_derivative(
                p["from_logits"], LABELS
            ),
            "cost": cost_backward(p["cost"], y1) / 3,
        }

    result = check_gradients(jax.jit(f), points, manual)
    assert result.passed, str(result)
    assert len(result.leaves) == 4


@functools.cache
def deep_problem(layer_dims=(3, 5, 3, 1), hidden="tanh"):
    """Params, the jitted cost f(params) and the hand-written gradient.

    Cached, and shaped like test_deep's problems (numpy draws), so the jitted
    cost and the eager backward compile once per session.
    """
    params = course_init_params(layer_dims, seed=1, scale="sqrt")
    rng = np.random.RandomState(0)
    X = jnp.asarray(rng.randn(layer_dims[0], 7))
    Y = jnp.array([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])
    activations = (hidden,) * (len(layer_dims) - 2) + ("sigmoid",)

    def cost(p):
        return model_cost(p, X, Y, activations)

    def manual(p):
        return model_value_and_grads(p, X, Y, activations)[1]

    return params, jax.jit(cost), manual


def test_passes_on_a_list_of_dicts():
    params, f, manual = deep_problem()
    result = check_gradients(f, params, manual)
    assert result.passed, str(result)
    assert [leaf.path for leaf in result.leaves] == [
        "[0]['W']", "[0]['b']", "[1]['W']", "[1]['b']", "[2]['W']", "[2]['b']",
    ]  # fmt: skip
    # Both references really ran: a correct rule agrees to ~1e-14 with jax.grad
    # and to ~1e-9 with finite differences (see gradcheck's docstring).
    for leaf in result.leaves:
        assert leaf.autodiff_error < 1e-12
        assert leaf.fd_error < 1e-7


def test_passes_on_a_dict_of_mixed_leaves():
    params = {"w": jnp.array([[0.5], [-1.0]]), "b": jnp.array(0.3)}
    X = jnp.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]])

    def f(p):
        return jnp.sum((p["w"].T @ X + p["b"]) ** 2)

    def manual(p):
        r = 2 * (p["w"].T @ X + p["b"])
        return {"w": X @ r.T, "b": jnp.sum(r)}

    result = check_gradients(jax.jit(f), params, manual)
    assert result.passed, str(result)


def test_fails_on_planted_dW2_bug_and_names_the_leaf():
    params, f, manual = deep_problem()
    grads = manual(params)
    buggy = [dict(g) for g in grads]
    buggy[1]["W"] = grads[1]["W"] * 1.01  # dW of layer 2 off by 1%
    result = check_gradients(f, params, buggy)
    assert not result.passed
    assert not result  # its truth value is the verdict, not "a non-empty tuple"
    assert result.failed_leaves == ("[1]['W']",)
    # A 1% error is a relative difference of ~0.5%, far above either tolerance.
    bad = result.leaves[2]
    assert bad.autodiff_error > 1e-3 and bad.fd_error > 1e-3
    text = str(result)
    assert "FAILED" in text
    (line,) = [row for row in text.splitlines() if "[1]['W']" in row]
    assert line.rstrip().endswith("FAIL")


def test_fails_on_a_wrong_relu_derivative(monkeypatch):
    params, f, manual = deep_problem((3, 5, 1), hidden="relu")
    # Plant the bug where the engine looks it up: relu' = 1 everywhere.
    monkeypatch.setitem(
        ACTIVATIONS, "relu", Activation(relu, lambda z: jnp.ones_like(z))
    )
    buggy = manual(params)
    result = check_gradients(f, params, buggy, finite_differences=False)
    assert not result.passed
    # Only layer 1's gradient goes through relu'; layer 2's is still right.
    assert result.failed_leaves == ("[0]['W']", "[0]['b']")
    assert "[0]['W']" in str(result) and "[0]['b']" in str(result)


def test_refuses_float32_leaves():
    params = course_init_params([3, 2, 1], dtype=jnp.float32)
    with pytest.raises(ValueError, match="float64") as info:
        check_gradients(lambda p: jnp.sum(p[0]["W"]), params, params)
    assert "[0]['W']" in str(info.value) and "float32" in str(info.value)


def test_refuses_when_x64_is_off():
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        check_gradients(jnp.sum, jnp.ones(3, jnp.float32), jnp.ones(3))


def test_refuses_mismatched_structure():
    params, f, _ = deep_problem()
    with pytest.raises(ValueError, match="structure"):
        check_gradients(f, params, params[:2])


def test_printout_is_a_readable_table():
    params, f, manual = deep_problem((3, 5, 1))
    result = check_gradients(f, params, manual, finite_differences=False)
    lines = str(result).splitlines()
    assert lines[0].startswith("gradient check PASSED")
    assert "1e-10" in lines[0] and "1e-06" in lines[0]
    assert "leaf" in lines[1] and "vs jax.grad" in lines[1]
    assert len(lines) == 2 + 4  # header, column names, one row per leaf
    assert "[0]['W']" in lines[2] and "(5, 3)" in lines[2]
    assert all("not checked" in row and row.endswith("ok") for row in lines[2:])


def test_relative_difference():
    assert relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    # ||a - b|| / (||a|| + ||b||) = 1 / (1 + 1) for orthogonal unit vectors... of
    # norm sqrt(2) / 2.
    np.testing.assert_allclose(
        relative_difference([1.0, 0.0], [0.0, 1.0]), np.sqrt(2) / 2, rtol=1e-15
    )
    assert relative_difference([1.0, 2.0], [1.0, 2.0]) == 0.0


def test_finite_difference_grad_of_a_quadratic():
    # f(x) = sum x^3: centered differences are exact up to eps^2 * f''' / 6 = eps^2
    # (1e-12) plus rounding ~1e-16 |f| / eps ~ 1e-10.
    x = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5]])}
    fd = finite_difference_grad(
        lambda p: jnp.sum(p["a"] ** 3) + jnp.sum(p["b"] ** 3), x
    )
    np.testing.assert_allclose(fd["a"], [3.0, 12.0], rtol=1e-8)
    np.testing.assert_allclose(fd["b"], [[0.75]], rtol=1e-8)
