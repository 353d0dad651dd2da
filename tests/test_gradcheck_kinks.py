"""The gradient checker at kinks: correct ReLU gradients pass, wrong ones fail.

With b = 0 a dead unit gives exact zeros one layer up, so Z = 0 exactly and the
centred difference straddles relu's kink. The kink-aware finite-difference leg
accepts any value between the two one-sided slopes there, counts those
coordinates, and still fails the planted bugs, with kinks and without.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.activations import ACTIVATIONS, Activation, leaky_relu, relu
from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.gradcheck import check_gradients

M = 6


def _network(kinks: bool, hidden: str = "relu", seed: int = 0):
    """[2, 3, 3, 1] params, X (2, M), Y and activations.

    With ``kinks``: b = 0 and W[1] > 0, so the example x = (-1, -1) kills every
    layer-1 unit (Z[2] = 0 exactly there), and x = (W1[0, 1], -W1[0, 0]) puts
    unit 1 of layer 1 exactly at Z = 0. Without: random b and X, no Z near 0.
    """
    rng = np.random.default_rng(seed)
    W1 = np.abs(rng.normal(size=(3, 2))) + 0.1
    params = [
        {"W": W1, "b": np.zeros((3, 1))},
        {"W": rng.normal(size=(3, 3)), "b": np.zeros((3, 1))},
        {"W": rng.normal(size=(1, 3)), "b": np.zeros((1, 1))},
    ]
    X = np.abs(rng.normal(size=(2, M))) + 0.1
    if kinks:
        X[:, 0] = (-1.0, -1.0)
        X[:, 1] = (W1[0, 1], -W1[0, 0])
    else:
        for layer in params:
            layer["b"] = rng.normal(size=layer["b"].shape)
    params = jax.tree.map(jnp.asarray, params)
    Y = jnp.asarray([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]])
    acts = (hidden, hidden, "sigmoid")
    return params, jnp.asarray(X), Y, acts


def _cost(X, Y, acts):
    """The jitted cost; one per network, so its checks compile once."""
    return jax.jit(lambda p: model_cost(p, X, Y, acts))


def _check(params, X, Y, acts, grads, **kw):
    return check_gradients(_cost(X, Y, acts), params, grads, **kw)


def _fd_fails(result) -> bool:
    """The finite-difference leg alone flags a leaf (jax.grad's leg aside)."""
    return any(leaf.fd_error > result.fd_tol for leaf in result.leaves)


def test_correct_relu_gradient_at_kinks_passes_and_counts_them():
    params, X, Y, acts = _network(kinks=True)
    grads = model_value_and_grads(params, X, Y, acts)[1]
    result = _check(params, X, Y, acts, grads)
    assert result.passed, str(result)
    assert result.kinks > 0
    assert result.kinks == sum(leaf.kinks for leaf in result.leaves)
    by_path = {leaf.path: leaf.kinks for leaf in result.leaves}
    assert by_path["[0]['b']"] >= 1 and by_path["[1]['b']"] >= 1  # Z = 0 there
    text = str(result)
    assert f"{result.kinks} coordinate(s) at a kink (not differentiable here)" in text
    assert "kinks" in text.splitlines()[2]  # a column of the table
    # The plain centred difference (the old checker) fails this correct
    # gradient: it averages the two slopes, which relu'(0) = 0 does not give.
    old = _check(params, X, Y, acts, grads, kink_tol=float("inf"))
    assert not old.passed and old.kinks == 0
    assert all(leaf.autodiff_error < 1e-12 for leaf in old.leaves)  # right all along


def test_smooth_points_report_no_kinks():
    params, X, Y, acts = _network(kinks=False)
    grads = model_value_and_grads(params, X, Y, acts)[1]
    result = _check(params, X, Y, acts, grads)
    assert result.passed and result.kinks == 0, str(result)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_any_value_between_the_slopes_passes_at_a_kink(value):
    """f(w) = relu(w) + w^2 / 2 at w = 0: slopes 0 and 1; 0, 0.5, 1 are all fine."""
    params = {"w": jnp.zeros(()), "v": jnp.asarray(0.3)}

    def f(p):
        return jnp.where(p["w"] <= 0, 0.0, p["w"]) + (p["w"] ** 2 + p["v"] ** 2) / 2

    grads = {"w": jnp.asarray(value), "v": jnp.asarray(0.3)}
    result = check_gradients(f, params, grads, autodiff_tol=np.inf)
    assert result.passed and result.kinks == 1, str(result)


@pytest.mark.parametrize("value", [-0.5, 1.5, 2.0])
def test_a_value_outside_the_slopes_fails_at_a_kink(value):
    params = {"w": jnp.zeros(()), "v": jnp.asarray(0.3)}

    def f(p):
        return jnp.where(p["w"] <= 0, 0.0, p["w"]) + (p["w"] ** 2 + p["v"] ** 2) / 2

    grads = {"w": jnp.asarray(value), "v": jnp.asarray(0.3)}
    result = check_gradients(f, params, grads, autodiff_tol=np.inf)
    assert not result.passed and result.kinks == 1
    assert result.failed_leaves == ("['w']",)


def _wrong_relu_derivative(z):  # relu'(z) = 1 for z < 0 too (0 only at 0)
    return jnp.where(z == 0, 0.0, 1.0).astype(z.dtype)


def _wrong_leaky_derivative(z):  # slope 0.1 where the forward uses 0.01
    return jnp.where(z > 0, 1.0, 0.1).astype(z.dtype)


def _bugs(params, X, Y, acts, monkeypatch):
    """The four planted bugs' gradients for the network (its hidden activation)."""
    grads = model_value_and_grads(params, X, Y, acts)[1]
    transposed = [dict(g) for g in grads]
    transposed[1]["W"] = grads[1]["W"].T  # layer 2 is square (3, 3)
    bugs = {
        "missing 1/m": jax.tree.map(lambda g: g * M, grads),
        "transposed dW[2]": transposed,
    }
    if acts[0] == "relu":
        monkeypatch.setitem(
            ACTIVATIONS, "relu", Activation(relu, _wrong_relu_derivative)
        )
        bugs["relu'(z<0) = 1"] = model_value_and_grads(params, X, Y, acts)[1]
    else:
        wrong = Activation(leaky_relu, _wrong_leaky_derivative)
        monkeypatch.setitem(ACTIVATIONS, "leaky_relu", wrong)
        bugs["leaky slope"] = model_value_and_grads(params, X, Y, acts)[1]
    return bugs


@pytest.mark.parametrize("kinks", [True, False], ids=["at_kinks", "smooth"])
@pytest.mark.parametrize("hidden", ["relu", "leaky_relu"])
def test_planted_bugs_still_fail_by_finite_differences_alone(
    kinks, hidden, monkeypatch
):
    params, X, Y, acts = _network(kinks=kinks, hidden=hidden)
    f = _cost(X, Y, acts)
    f(params)  # traced before the bugs are planted: the true cost
    for name, bad in _bugs(params, X, Y, acts, monkeypatch).items():
        result = check_gradients(f, params, bad)
        assert not result.passed, name
        assert _fd_fails(result), f"{name}: finite differences missed it\n{result}"
        if kinks and hidden == "relu":
            assert result.kinks > 0  # the kinks were found, and did not hide it
