"""jaxnet.exercises: every checker accepts its solution (jax.numpy or numpy) and
rejects typical wrong answers, each with the hint that names its mistake.

The wrong answers below are written as a student would write them, in numpy,
independently of the variants the checker knows.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import exercises


def sig(z):
    return 1 / (1 + np.exp(-z))


# Student-style solutions other than the model answers (which are numpy): numpy
# without the model's safeguards, or jax.numpy, whose arrays a checker accepts too.
NUMPY_SOLUTIONS = {
    "sigmoid_derivative": lambda z: jax.nn.sigmoid(z) * (1 - jax.nn.sigmoid(z)),
    "leaky_relu_derivative": lambda z, slope: np.where(z > 0, 1.0, slope),
    "softmax": lambda x: (
        (e := np.exp(x - x.max(axis=1, keepdims=True))) / e.sum(axis=1, keepdims=True)
    ),
    "normalize_rows": lambda x: (
        x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    ),
    "image2vector": lambda image: image.reshape(-1, 1),
    "propagate": lambda w, b, X, Y: _propagate(w, b, X, Y),
    "linear_backward": lambda dZ, c: (
        jnp.dot(c.W.T, dZ),
        jnp.dot(dZ, c.A_prev.T) / dZ.shape[1],
        jnp.sum(dZ, axis=1, keepdims=True) / dZ.shape[1],
    ),
    "linear_activation_backward": lambda dA, c, g: exercises.solution(
        "linear_backward"
    )(dA * np.asarray(_derivative(g, c.Z)), c),
    "model_backward": lambda AL, Y, caches, acts: _model(AL, Y, caches, acts),
    "l2_gradient": lambda dW, W, lambd, m: dW + lambd / m * W,
    "dropout_backward": lambda dA, D, keep_prob: dA * D / keep_prob,
    "update_parameters": lambda params, grads, alpha: [
        {"W": p["W"] - alpha * g["W"], "b": p["b"] - alpha * g["b"]}
        for p, g in zip(params, grads, strict=True)
    ],
}


def _derivative(name, Z):
    return {
        "sigmoid": lambda: sig(Z) * (1 - sig(Z)),
        "tanh": lambda: 1 - np.tanh(Z) ** 2,
        "relu": lambda: (Z > 0).astype(float),
        "leaky_relu": lambda: np.where(Z > 0, 1.0, 0.01),
    }[name]()


def _propagate(w, b, X, Y, per_m=True, dw_t=False, sum_cost=False):
    m = X.shape[1]
    A = sig(w.T @ X + b)
    cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / (1 if sum_cost else m)
    dZ = A - Y
    k = m if per_m else 1
    return cost, {"dw": (dZ @ X.T if dw_t else X @ dZ.T) / k, "db": dZ.sum() / k}


def _model(AL, Y, caches, acts, per_m=True, from_a=False, reverse=False):
    grads, dZ = [], AL - Y
    for l in reversed(range(len(caches))):
        c = caches[l]
        k = c.A_prev.shape[1] if per_m else 1
        grads.insert(0, {"W": dZ @ c.A_prev.T / k, "b": dZ.sum(1, keepdims=True) / k})
        if l:
            Z = caches[l - 1].Z
            A = {"sigmoid": sig, "tanh": np.tanh, "relu": lambda z: z * (z > 0)}
            arg = A[acts[l - 1]](Z) if from_a else Z
            dZ = (c.W.T @ dZ) * _derivative(acts[l - 1], arg)
    return grads[::-1] if reverse else grads


def _linear(dZ, c, per_m=True, dW_t=False, keepdims=True):
    m = dZ.shape[1] if per_m else 1
    dW = (c.A_prev @ dZ.T if dW_t else dZ @ c.A_prev.T) / m
    return c.W.T @ dZ, dW, dZ.sum(axis=1, keepdims=keepdims) / m


def _from_a(dA, c, g):
    A = {"sigmoid": sig, "tanh": np.tanh}.get(g, lambda z: np.maximum(z, 0.01 * z))
    return _linear(dA * _derivative(g, A(c.Z)), c)


def _update(sign=-1.0, rate=True, b_too=True):
    def update(params, grads, a):
        a = a if rate else 1.0
        return [
            {"W": p["W"] + sign * a * g["W"], "b": p["b"] + sign * a * g["b"] * b_too}
            for p, g in zip(params, grads, strict=True)
        ]

    return update


# name -> [(wrong answer, a phrase its hint must contain)], at least three each.
WRONG = {
    "sigmoid_derivative": [
        (lambda z: z * (1 - z), "apply the sigmoid first"),
        (lambda z: sig(z), "that is sigmoid(z) itself"),
        (lambda z: 1 - sig(z) ** 2, "tanh's derivative"),
    ],
    "leaky_relu_derivative": [
        (lambda z, s: np.where(z >= 0, 1.0, s), "kink z = 0"),
        (lambda z, s: np.where(z > 0, 1.0, s * z), "not slope * z"),
        (lambda z, s: np.where(z > 0, 1.0, 0.0), "slope is ignored"),
        (lambda z, s: np.maximum(z, s * z), "that is g(z) itself"),
    ],
    "softmax": [
        (lambda x: np.exp(x) / np.exp(x).sum(axis=0, keepdims=True), "layout swap"),
        (lambda x: np.exp(x) / np.exp(x).sum(), "not the whole matrix"),
        (lambda x: np.exp(x) / np.exp(x).sum(axis=1), "keepdims=True"),
        (lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), "overflows"),
    ],
    "normalize_rows": [
        (lambda x: x / np.linalg.norm(x, axis=0, keepdims=True), "layout swap"),
        (lambda x: x / np.sum(x * x, axis=1, keepdims=True), "square root"),
        (lambda x: x / np.linalg.norm(x, axis=1), "keepdims=True"),
        (lambda x: x / np.linalg.norm(x, axis=1, keepdims=True), "all-zero row"),
    ],
    "image2vector": [
        (lambda im: im.reshape(-1), "rank-1"),
        (lambda im: im.reshape(1, -1), "layout swap"),
        (lambda im: np.moveaxis(im, 2, 0).reshape(-1, 1), "one colour channel"),
    ],
    "propagate": [
        (lambda *a: _propagate(*a, per_m=False), "missing 1/m"),
        (lambda *a: _propagate(*a, dw_t=True), "dw is transposed"),
        (lambda *a: _propagate(*a, sum_cost=True), "1/m in the cost"),
        (lambda *a: _propagate(*a)[::-1], "cost"),  # the course's order is accepted
    ],
    "linear_backward": [
        (lambda dZ, c: _linear(dZ, c, per_m=False), "missing 1/m"),
        (lambda dZ, c: _linear(dZ, c, dW_t=True), "transposed dW"),
        (lambda dZ, c: _linear(dZ, c, keepdims=False), "keepdims lost in db"),
        (lambda dZ, c: (c.W @ dZ, *_linear(dZ, c)[1:]), "W^T dZ"),
    ],
    "linear_activation_backward": [
        (_from_a, "dZ computed from A instead of Z"),
        (lambda dA, c, g: _linear(dA, c), "derivative is missing"),
        (lambda dA, c, g: _linear(dA * sig(c.Z), c), "not by g(Z)"),
        (
            lambda dA, c, g: _linear(dA * _derivative(g, c.Z), c, per_m=False),
            "missing 1/m",
        ),
    ],
    "model_backward": [
        (lambda *a: _model(*a, per_m=False), "missing 1/m"),
        (lambda *a: _model(*a, from_a=True), "dZ computed from A instead of Z"),
        (lambda *a: _model(*a, reverse=True), "grads[0] belongs to layer 1"),
        (
            lambda *a: [{"W": g["W"].T, "b": g["b"]} for g in _model(*a)],
            "transposed dW",
        ),
    ],
    "l2_gradient": [
        (lambda dW, W, lambd, m: dW + lambd * W, "missing 1/m"),
        (lambda dW, W, lambd, m: dW + lambd / (2 * m) * W, "cancels"),
        (lambda dW, W, lambd, m: lambd / m * W, "does not replace it"),
    ],
    "dropout_backward": [
        (lambda dA, D, kp: dA * D, "not divided by keep_prob"),
        (lambda dA, D, kp: dA * D * kp, "do not multiply"),
        (lambda dA, D, kp: dA / kp, "mask is missing"),
    ],
    "update_parameters": [
        (_update(sign=1.0), "gradient ascent"),
        (_update(rate=False), "learning rate alpha is missing"),
        (_update(b_too=False), "b is updated too"),
    ],
}


def test_list_names_the_exercises_in_the_lecture_order():
    names = exercises.list()
    assert 8 <= len(names) <= 12 and set(names) == set(WRONG) == set(NUMPY_SOLUTIONS)
    assert names[0] == "sigmoid_derivative" and names[-1] == "update_parameters"
    assert names.index("linear_backward") < names.index("model_backward")


@pytest.mark.parametrize("name", exercises.list())
def test_checker_accepts_its_solution_and_another_one(name):
    for fn in (exercises.solution(name), NUMPY_SOLUTIONS[name]):
        result = exercises.check(name, fn)
        assert result.passed and bool(result), str(result)
        assert result.cases >= 3 and "passed" in str(result)


@pytest.mark.parametrize("name", exercises.list())
def test_checker_rejects_typical_mistakes_with_their_hint(name):
    rejected = 0
    for wrong, phrase in WRONG[name]:
        result = exercises.check(name, wrong)
        if phrase == "cost":  # (grads, cost): a form the checker accepts
            assert result.passed, str(result)
            continue
        assert not result.passed and result.status == "not yet right"
        assert phrase in result.hint, f"{phrase!r} not in: {result}"
        rejected += 1
    assert rejected >= 3


def test_unwritten_raising_and_misshapen_answers_get_hints_not_tracebacks():
    def stub(dZ, cache):
        """Your code here."""
        ...

    def not_implemented(dZ, cache):
        raise NotImplementedError

    def typo(dZ, cache):
        return dZ @ cache.A_prev  # (n, m) @ (n_prev, m): does not multiply

    unwritten = exercises.check("linear_backward", stub)
    assert unwritten.status == "not yet written" and not unwritten
    assert "not yet written" in str(unwritten) and "Traceback" not in str(unwritten)
    assert exercises.check("linear_backward", not_implemented).status == (
        "not yet written"
    )
    raised = exercises.check("linear_backward", typo)
    assert "raised ValueError" in raised.hint and "dZ @ cache.A_prev" in raised.hint
    misshapen = exercises.check("linear_backward", lambda dZ, c: dZ)
    assert not misshapen and 'return (dA_prev, {"W": dW, "b": db})' in misshapen.hint
    wrong_shape = exercises.check("sigmoid_derivative", lambda z: np.zeros(3))
    assert "shape" in wrong_shape.hint
    assert "differs" in exercises.check("sigmoid_derivative", lambda z: z).hint


def test_in_place_edits_do_not_leak_into_the_next_check():
    def clobber(z, slope):
        z[...] = 5.0  # a student editing its input
        return np.ones_like(z)

    assert not exercises.check("leaky_relu_derivative", clobber)
    assert exercises.check("leaky_relu_derivative", NUMPY_SOLUTIONS[
        "leaky_relu_derivative"])  # fmt: skip


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="sigmoid_derivative"):
        exercises.check("sigmoid", lambda z: z)
    assert "dW = (1/m) dZ A_prev^T" in exercises.describe("linear_backward")
