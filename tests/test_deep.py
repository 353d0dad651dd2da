"""Tests for jaxnet.deep, the L-layer engine: hand-written gradients vs jax.grad
and finite differences, single layers vs jax.vjp, L2 and dropout, softmax output,
the lecture's shapes, and input errors in the lecture's terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.activations import ACTIVATIONS, sigmoid
from jaxnet.deep import (
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    model_backward,
    model_cost,
    model_forward,
    model_value_and_grads,
    predict_proba,
)
from jaxnet.gradcheck import check_gradients
from jaxnet.losses import cost_backward
from jaxnet.params import LayerCache, course_init_params

# 1 to 5 layers. Sizes alternate 3 and 5, so every W is non-square (a W used
# where W^T belongs is a shape error, not a silent bug) while all architectures
# share a few array shapes, and with them JAX's per-shape compilations: the tests
# run eagerly and stay fast.
ARCHITECTURES = [[3, 1], [3, 5, 1], [3, 5, 3, 1], [3, 5, 3, 5, 1], [3, 5, 3, 5, 3, 1]]
HIDDEN = sorted(ACTIVATIONS)  # leaky_relu, relu, sigmoid, softplus, tanh
M_VALUES = [1, 7, 64]


def make_problem(layer_dims, m, seed=0, n_classes=None):
    """float64 params (the course's randn / sqrt(n[l-1]), so gradients are not
    tiny), X (n_x, m) and labels: (1, m) of 0/1, or one-hot (K, m).

    numpy draws keep these tests free of per-shape jax.random compilations.
    """
    params = course_init_params(layer_dims, seed=seed + 1, scale="sqrt")
    # Non-zero biases so that b's gradient path is exercised with b != 0 too.
    rng = np.random.RandomState(seed)
    params = [
        {"W": p["W"], "b": jnp.asarray(0.1 * rng.randn(*p["b"].shape))} for p in params
    ]
    X = jnp.asarray(rng.randn(layer_dims[0], m))
    if n_classes is None:
        Y = jnp.asarray((rng.rand(1, m) > 0.5).astype(np.float64))
    else:
        Y = jnp.asarray(np.eye(n_classes)[rng.randint(n_classes, size=m)].T)
    return params, X, Y


def assert_grads_match(manual, reference, rtol=1e-10):
    """Leafwise: max |manual - reference| <= rtol * max |reference|.

    Each entry of dW, db is a sum over the m examples, so its rounding error is
    relative to the summed terms (of the leaf's magnitude), not to the sum, which
    may cancel to ~0; the leaf's largest entry sets that scale. float64 rounding
    is ~1e-15 of it; 1e-10 leaves a wide margin and still catches any real bug.
    """
    assert jax.tree.structure(manual) == jax.tree.structure(reference)
    leaves = jax.tree.leaves_with_path(manual)
    for (path, g), r in zip(leaves, jax.tree.leaves(reference), strict=True):
        g, r = np.asarray(g), np.asarray(r)
        assert g.shape == r.shape, jax.tree_util.keystr(path)
        scale = np.abs(r).max()
        assert scale > 0, f"{jax.tree_util.keystr(path)}: reference gradient is 0"
        error = np.abs(g - r).max()
        assert error <= rtol * scale, (
            f"leaf {jax.tree_util.keystr(path)}: max error {error:.3e} > "
            f"{rtol:.0e} * {scale:.3e}"
        )


def both_grads(params, X, Y, activations, **kwargs):
    """(J, manual grads) and (J, jax.grad grads), with the same keyword args."""
    manual = model_value_and_grads(params, X, Y, activations, **kwargs)
    reference = jax.value_and_grad(model_cost)(params, X, Y, activations, **kwargs)
    return manual, reference


def check_against_autodiff(params, X, Y, activations, **kwargs):
    (cost, grads), (ref_cost, ref_grads) = both_grads(
        params, X, Y, activations, **kwargs
    )
    # Same forward, same float64 cost.
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-14)
    assert_grads_match(grads, ref_grads)


def plain_activations(layer_dims, hidden):
    return (hidden,) * (len(layer_dims) - 2) + ("sigmoid",)


# ------------------------------------------------ whole model vs jax.grad

# Every architecture x every hidden activation x every m ([3, 1] has no hidden
# layer, so it appears once per m). Deepest first: it compiles the shapes that
# the smaller architectures then reuse.
GRAD_CASES = [
    (layer_dims, hidden, m)
    for m in M_VALUES
    for layer_dims in reversed(ARCHITECTURES)
    for hidden in (HIDDEN if len(layer_dims) > 2 else ["none"])
]


@pytest.mark.parametrize("layer_dims, hidden, m", GRAD_CASES, ids=str)
def test_manual_grads_match_autodiff(layer_dims, hidden, m):
    params, X, Y = make_problem(layer_dims, m)
    check_against_autodiff(params, X, Y, plain_activations(layer_dims, hidden))


def test_manual_grads_match_autodiff_with_mixed_hidden_activations():
    # A different activation in each hidden layer.
    params, X, Y = make_problem([3, 5, 3, 5, 3, 1], 7)
    activations = ("tanh", "relu", "softplus", "leaky_relu", "sigmoid")
    check_against_autodiff(params, X, Y, activations)


def test_manual_grads_pass_finite_differences():
    # A subset (finite differences cost 2N evaluations and a compilation): the
    # 5-layer net with four different hidden activations, the shallow net with
    # the fifth, and logistic regression. They are checked as one pytree
    # {case: params}, so one compilation serves all; a failure names the leaf.
    cases = {
        "deep": ([3, 5, 3, 5, 3, 1], ("relu", "tanh", "leaky_relu", "softplus")),
        "shallow": ([3, 5, 1], ("sigmoid",)),
        "logistic": ([3, 1], ()),
    }
    problems = {name: make_problem(dims, 7) for name, (dims, _) in cases.items()}

    def activations(name):
        return cases[name][1] + ("sigmoid",)

    def total_cost(all_params):
        return sum(
            model_cost(all_params[name], X, Y, activations(name))
            for name, (_, X, Y) in problems.items()
        )

    all_params = {name: params for name, (params, _, _) in problems.items()}
    manual = {
        name: model_value_and_grads(params, X, Y, activations(name))[1]
        for name, (params, X, Y) in problems.items()
    }
    # relu / leaky kinks: with these seeds no |Z| is within eps = 1e-6 of 0.
    result = check_gradients(jax.jit(total_cost), all_params, manual)
    assert result.passed, str(result)
    assert len(result.leaves) == 2 * (5 + 2 + 1)
    assert all(leaf.fd_error < 1e-6 for leaf in result.leaves)  # FD really ran


def test_cost_is_the_mean_cross_entropy():
    params, X, Y = make_problem([3, 5, 1], 7)
    AL, _ = model_forward(params, X, ("tanh", "sigmoid"))
    expected = -np.mean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    # J from logits vs the lecture's J from AL, float64: 1e-13.
    np.testing.assert_allclose(
        model_cost(params, X, Y, ("tanh", "sigmoid")), expected, rtol=1e-13
    )


# ------------------------------------------------ single layers vs jax.vjp


@pytest.mark.parametrize("activation", HIDDEN + ["sigmoid_output"])
def test_linear_activation_backward_equals_vjp(activation):
    activation = activation.removesuffix("_output")
    rng = np.random.RandomState(3)
    A_prev, W, b = (jnp.asarray(rng.randn(*s)) for s in [(3, 7), (5, 3), (5, 1)])
    dA = jnp.asarray(rng.randn(5, 7))
    m = A_prev.shape[1]
    _, cache = linear_activation_forward(A_prev, W, b, activation)
    dA_prev, grads = linear_activation_backward(dA, cache, activation)
    _, vjp = jax.vjp(
        lambda a, w, c: linear_activation_forward(a, w, c, activation)[0], A_prev, W, b
    )
    ref_A_prev, ref_W, ref_b = vjp(dA)
    # The lecture's convention: dA is m dJ/dA (per example), so dA_prev is the
    # plain vjp while dW and db carry the cost's 1/m. Same float64 products in
    # another order: 1e-12.
    np.testing.assert_allclose(dA_prev, ref_A_prev, rtol=1e-12)
    np.testing.assert_allclose(grads["W"], ref_W / m, rtol=1e-12)
    np.testing.assert_allclose(grads["b"], ref_b / m, rtol=1e-12)
    assert cache.A_prev is A_prev and cache.W is W and cache.b is b


def test_lecture_generic_output_path_equals_collapsed_dZ():
    params, X, Y = make_problem([3, 5, 1], 7)
    AL, caches = model_forward(params, X, ("relu", "sigmoid"))
    # Lecture: dAL = -(Y/AL) + (1-Y)/(1-AL); then dZ = dAL * sigma'(Z).
    dAL = cost_backward(AL, Y)
    generic = linear_activation_backward(dAL, caches[-1], "sigmoid")
    collapsed = linear_backward(AL - Y, caches[-1])
    # dAL * a (1 - a) = a - y up to rounding of the division: 1e-12.
    np.testing.assert_allclose(generic[0], collapsed[0], rtol=1e-12)
    for name in ("W", "b"):
        np.testing.assert_allclose(generic[1][name], collapsed[1][name], rtol=1e-12)
    grads = model_backward(AL, Y, caches, ("relu", "sigmoid"))
    np.testing.assert_allclose(grads[-1]["W"], generic[1]["W"], rtol=1e-12)


# ------------------------------------------------ regularization, dropout, softmax


@pytest.mark.parametrize(
    "lambd, keep_prob",
    [(0.7, 1.0), (0.0, 0.8), (0.3, 0.6)],
    ids=["l2", "dropout", "both"],
)
@pytest.mark.parametrize("layer_dims", [[3, 5, 3, 1], [3, 5, 1]], ids=str)
def test_l2_and_dropout_grads_match_autodiff(layer_dims, lambd, keep_prob):
    params, X, Y = make_problem(layer_dims, 7)
    dropout_key = jax.random.key(7) if keep_prob < 1 else None
    check_against_autodiff(
        params,
        X,
        Y,
        plain_activations(layer_dims, "relu"),
        lambd=lambd,
        keep_prob=keep_prob,
        dropout_key=dropout_key,
    )


def test_l2_cost_adds_the_penalty():
    params, X, Y = make_problem([3, 5, 3, 1], 7)
    activations = ("relu", "relu", "sigmoid")
    plain = model_cost(params, X, Y, activations)
    regular = model_cost(params, X, Y, activations, lambd=0.7)
    # J + lambd / (2m) sum_l ||W[l]||^2, float64: 1e-12.
    penalty = 0.7 / (2 * 7) * sum(float(jnp.sum(p["W"] ** 2)) for p in params)
    np.testing.assert_allclose(regular - plain, penalty, rtol=1e-12)


def test_dropout_masks_hidden_units_only():
    params, X, _ = make_problem([3, 40, 30, 1], 50)
    activations = ("relu", "relu", "sigmoid")
    key = jax.random.key(3)
    AL, caches = model_forward(params, X, activations, keep_prob=0.8, dropout_key=key)
    for cache in caches[:-1]:
        D = np.asarray(cache.D)
        # Inverted dropout: entries 0 or 1/keep_prob, about 80% kept (2000 and
        # 1500 draws: std ~1%, so 0.7..0.9 never flakes).
        assert set(np.unique(D)) <= {0.0, 1 / 0.8}
        assert 0.7 < np.mean(D > 0) < 0.9
    assert caches[-1].D is None  # never on the output
    np.testing.assert_array_equal(caches[0].A_prev, X)  # nor on X
    # A[1] is g(Z[1]) * D[1] / keep_prob (D already holds the 1/keep_prob).
    np.testing.assert_array_equal(
        caches[1].A_prev, ACTIVATIONS["relu"].forward(caches[0].Z) * caches[0].D
    )
    # Same key, same masks: dropout is a pure function of the key.
    AL_again, _ = model_forward(params, X, activations, keep_prob=0.8, dropout_key=key)
    np.testing.assert_array_equal(AL, AL_again)
    # Without a key, keep_prob < 1 is an error (it used to mean no dropout).
    with pytest.raises(ValueError, match="without a dropout_key"):
        model_forward(params, X, activations, keep_prob=0.8)


def test_softmax_output_grads_match_autodiff():
    params, X, Y = make_problem([3, 5, 3], 7, n_classes=3)
    activations = ("tanh", "softmax")
    check_against_autodiff(params, X, Y, activations)
    AL = predict_proba(params, X, activations)
    assert AL.shape == (3, 7)
    # Columns are distributions, float64: 1e-15.
    np.testing.assert_allclose(jnp.sum(AL, axis=0), 1.0, rtol=1e-15)


# ------------------------------------------------ shapes and the lecture's stacking


@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize("layer_dims", ARCHITECTURES, ids=str)
def test_shapes_match_the_lecture(layer_dims, m):
    params, X, Y = make_problem(layer_dims, m)
    activations = plain_activations(layer_dims, "relu")
    AL, caches = model_forward(params, X, activations)
    assert AL.shape == (layer_dims[-1], m)
    assert len(caches) == len(layer_dims) - 1
    for l, cache in enumerate(caches, start=1):
        assert isinstance(cache, LayerCache)
        assert cache.A_prev.shape == (layer_dims[l - 1], m)
        assert cache.W.shape == (layer_dims[l], layer_dims[l - 1])
        assert cache.b.shape == (layer_dims[l], 1)
        assert cache.Z.shape == (layer_dims[l], m)
        assert cache.D is None
    # A[l] fed to layer l+1 is g(Z[l]) of layer l (exactly the same operation).
    for cache, nxt, name in zip(caches, caches[1:], activations, strict=False):
        np.testing.assert_array_equal(nxt.A_prev, ACTIVATIONS[name].forward(cache.Z))
    np.testing.assert_array_equal(AL, sigmoid(caches[-1].Z))
    grads = model_backward(AL, Y, caches, activations)
    # Grads mirror params: same structure, same keys, same shapes.
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params), strict=True):
        assert g.shape == p.shape and g.dtype == p.dtype


def test_vmap_of_single_example_forward_equals_matrix_forward():
    params, X, _ = make_problem([3, 5, 3, 1], 7)
    activations = ("tanh", "relu", "sigmoid")

    def one_example(x):  # x: (n_x,) -> one column (n_x, 1) -> a (n[L],)
        return predict_proba(params, x[:, None], activations)[:, 0]

    stacked = jax.vmap(one_example, in_axes=1, out_axes=1)(X)
    # The lecture's point: stacking the m columns into X is the same
    # computation; matmul order may differ, so rounding only: 1e-13.
    matrix = predict_proba(params, X, activations)
    assert stacked.shape == matrix.shape == (1, 7)
    np.testing.assert_allclose(stacked, matrix, rtol=1e-13)


# ------------------------------------------------ errors in the lecture's terms


def problem_452():
    params, X, Y = make_problem([4, 5, 2, 1], 6)
    return params, X, Y, ("relu", "relu", "sigmoid")  # errors raise before compiling


def test_examples_in_rows_is_detected():
    params, X, Y, activations = problem_452()
    with pytest.raises(ValueError, match=r"are examples in rows\?") as info:
        model_forward(params, X.T, activations)
    assert "(4, m)" in str(info.value) and "(6, 4)" in str(info.value)


def test_wrong_feature_count_names_both_shapes():
    params, X, Y, activations = problem_452()
    with pytest.raises(ValueError, match=r"X must be \(n_x, m\) = \(4, m\)") as info:
        model_forward(params, X[:3], activations)
    assert "(3, 6)" in str(info.value)
    assert "examples in rows" not in str(info.value)


def test_rank_one_labels_raise():
    params, X, Y, activations = problem_452()
    with pytest.raises(ValueError, match="reshape labels") as info:
        model_cost(params, X, Y[0], activations)
    assert "(1, 6)" in str(info.value) and "(6,)" in str(info.value)


def test_labels_with_a_different_m_raise():
    params, X, Y, activations = problem_452()
    with pytest.raises(ValueError) as info:
        model_value_and_grads(params, X, Y[:, :5], activations)
    message = str(info.value)
    assert "(1, 6)" in message and "(1, 5)" in message and "(4, 6)" in message


def test_layer_sizes_that_do_not_chain_raise():
    params, X, Y, activations = problem_452()
    broken = [params[0], {"W": jnp.ones((2, 3)), "b": jnp.zeros((2, 1))}, params[2]]
    with pytest.raises(ValueError, match="do not chain") as info:
        model_forward(broken, X, activations)
    assert "(5, 4)" in str(info.value) and "(2, 3)" in str(info.value)
    bad_bias = [{"W": params[0]["W"], "b": jnp.zeros((5,))}] + params[1:]
    with pytest.raises(ValueError, match=r"b\[1\] is \(5,\)"):
        model_forward(bad_bias, X, activations)


def test_unknown_or_misplaced_activations_raise():
    params, X, Y, _ = problem_452()
    with pytest.raises(ValueError, match="unknown activation 'rleu'") as info:
        model_forward(params, X, ("rleu", "relu", "sigmoid"))
    assert "relu" in str(info.value) and "tanh" in str(info.value)
    with pytest.raises(ValueError, match="output activation"):
        model_forward(params, X, ("relu", "relu", "relu"))
    with pytest.raises(ValueError, match="one activation per layer"):
        model_forward(params, X, ("relu", "sigmoid"))


@pytest.mark.parametrize("keep_prob", [0.0, -0.1, 1.5])
def test_keep_prob_outside_unit_interval_raises(keep_prob):
    params, X, Y, activations = problem_452()
    with pytest.raises(ValueError, match=r"\(0, 1\]") as info:
        model_forward(
            params, X, activations, keep_prob=keep_prob, dropout_key=jax.random.key(0)
        )
    assert str(keep_prob) in str(info.value)
