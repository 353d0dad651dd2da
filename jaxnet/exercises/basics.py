"""Exercises 1-6: activations, softmax, normalizeRows, image2vector, propagate.

Each exercise's inputs are fixed (a seeded numpy generator), float64, several
shapes, with the lecture's own example first where it has one and kinks (exact
zeros, saturating or overflowing values, an all-zero row) included.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxnet
from jaxnet.deep import model_cost
from jaxnet.exercises.grading import AnswerFormError, Exercise, Mistake, as_array
from jaxnet.logistic import ACTIVATIONS as LOGISTIC
from jaxnet.logistic import propagate as jaxnet_propagate
from jaxnet.logistic import to_layers


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def one_array(name: str):
    """normalize for exercises returning one array."""
    return lambda out: (as_array(out, name),)


def _elementwise_grad(g):
    """z -> g'(z) by jax.grad, elementwise for any shape."""
    return lambda z, *rest: jax.grad(lambda u: jnp.sum(g(u, *rest)))(jnp.asarray(z))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


# 1. sigmoid'(z)


def sigmoid_derivative(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


def _sigmoid_cases():
    rng = _rng(1)
    return [
        (np.array([-2.0, -1.0, 0.0, 1.0, 2.0]),),  # the lecture's example
        (np.concatenate([[0.0, 30.0, -30.0], 3 * rng.standard_normal(4)]),),
        (3 * rng.standard_normal((3, 4)),),
    ]


SIGMOID = Exercise(
    name="sigmoid_derivative",
    section="2. Sigmoid and its derivative",
    signature="sigmoid_derivative(z) -> ds, the shape of z",
    task="s = sigmoid(z) = 1 / (1 + e^-z); ds = s (1 - s)",
    outputs=("ds",),
    solution=sigmoid_derivative,
    cases=_sigmoid_cases,
    rule=lambda z: (jaxnet.sigmoid_derivative(z),),
    autodiff=lambda z: (_elementwise_grad(jaxnet.sigmoid)(z),),
    mistakes=(
        Mistake(
            "sigma'(z) = a (1 - a) takes a = sigmoid(z): apply the sigmoid "
            "first, not z (1 - z)",
            lambda z: (z * (1 - z),),
        ),
        Mistake(
            "that is sigmoid(z) itself; return its derivative s (1 - s)",
            lambda z: (_sigmoid(z),),
        ),
        Mistake(
            "1 - a^2 is tanh's derivative; the sigmoid's is a (1 - a)",
            lambda z: (1 - _sigmoid(z) ** 2,),
        ),
        Mistake(
            "the sigmoid is 1 / (1 + e^-z), with e to the minus z",
            lambda z: (_sigmoid(-z) * (1 + _sigmoid(-z)),),
        ),
    ),
    normalize=one_array("ds"),
)

# 2. leaky ReLU'(z) (slope 0: ReLU)


def leaky_relu_derivative(z, slope):
    return np.where(z > 0, 1.0, slope)


def _relu_cases():
    rng = _rng(2)
    cases = []
    for slope, shape in ((0.01, (6,)), (0.0, (3, 5)), (0.2, (2, 7))):
        z = rng.standard_normal(shape)
        z.reshape(-1)[::3] = 0.0  # the kink, as with b = 0 or a dead unit
        cases.append((z, slope))
    return cases


RELU = Exercise(
    name="leaky_relu_derivative",
    section="3. The activations and their derivatives",
    signature="leaky_relu_derivative(z, slope) -> dg, the shape of z "
    "(slope = 0 is ReLU)",
    task="g'(z) = 1 if z > 0 else slope (ReLU: slope = 0; the lecture's "
    "leaky ReLU: 0.01)",
    outputs=("dg",),
    solution=leaky_relu_derivative,
    cases=_relu_cases,
    rule=lambda z, slope: (jaxnet.leaky_relu_derivative(z, slope),),
    autodiff=lambda z, slope: (_elementwise_grad(jaxnet.leaky_relu)(z, slope),),
    mistakes=(
        Mistake(
            "at the kink z = 0 the derivative is the left slope (0 for ReLU), as "
            "jax.grad of the forward gives and as jaxnet documents: use z > 0, "
            "not z >= 0, for the 1",
            lambda z, slope: (np.where(z >= 0, 1.0, slope),),
        ),
        Mistake(
            "for z < 0 leaky ReLU is slope * z, whose derivative is the constant "
            "slope, not slope * z",
            lambda z, slope: (np.where(z > 0, 1.0, slope * z),),
        ),
        Mistake(
            "the slope is ignored: for z <= 0 the derivative is slope (0.01 for "
            "the lecture's leaky ReLU, 0 for ReLU)",
            lambda z, slope: (np.where(z > 0, 1.0, 0.0),),
        ),
        Mistake(
            "that is g(z) itself; its derivative is 1 for z > 0, else slope",
            lambda z, slope: (np.where(z > 0, z, slope * z),),
        ),
    ),
    normalize=one_array("dg"),
)

# 3. softmax, per row


def softmax(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _softmax_cases():
    rng = _rng(3)
    return [
        (np.array([[0.0, 9.0, 3.0, 0.0], [3.0, 0.0, 8.0, 1.0]]),),  # the lecture's
        (rng.standard_normal((3, 4)),),
        (rng.standard_normal((4, 4)),),  # square: a lost keepdims still broadcasts
        (1000 * rng.standard_normal((2, 3)),),  # e^1000 overflows
    ]


def _softmax_wrong(axis, keepdims=True, shift=True):
    def wrong(x):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True) if shift else x)
        return (e / np.sum(e, axis=axis, keepdims=keepdims),)

    return wrong


SOFTMAX = Exercise(
    name="softmax",
    section="5. Broadcasting, softmax, normalize_rows, image2vector",
    signature="softmax(x) -> s, the shape of x (m, n); each row sums to 1",
    task="s_ij = e^(x_ij) / sum_k e^(x_ik), per row (axis=1), as the lecture's "
    "cell; subtract each row's max first",
    outputs=("s",),
    solution=softmax,
    cases=_softmax_cases,
    rule=lambda x: (jaxnet.softmax(x, axis=1),),
    autodiff=None,
    mistakes=(
        Mistake(
            "row/column layout swap: the lecture's softmax normalizes each row "
            "(sum over axis=1); this normalizes columns",
            _softmax_wrong(axis=0),
        ),
        Mistake(
            "sum each row (axis=1, keepdims=True), not the whole matrix",
            _softmax_wrong(axis=None),
        ),
        Mistake(
            "keepdims lost in the row sums: sum(e, axis=1) is (m,), which "
            "broadcasts along the wrong axis; use keepdims=True",
            lambda x: (
                (np.exp(x) / np.sum(np.exp(x), axis=1),)
                if x.shape[0] == x.shape[1]
                else None
            ),
        ),
        Mistake(
            "e^x overflows for large scores: subtract each row's max first "
            "(softmax(x) = softmax(x - max), and every exponent is then <= 0)",
            _softmax_wrong(axis=1, shift=False),
        ),
    ),
    normalize=one_array("s"),
)

# 4. normalizeRows


def normalize_rows(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)  # a zero row stays zero


def _normalize_cases():
    rng = _rng(4)
    zero_row = rng.standard_normal((3, 4))
    zero_row[1] = 0.0
    return [
        (np.array([[3.0, 2.0, 4.0], [1.0, 8.0, 2.0]]),),  # the lecture's example
        (rng.standard_normal((4, 3)),),
        (rng.standard_normal((3, 3)),),
        (zero_row,),
    ]


def _norm_wrong(axis, keepdims=True, root=True):
    def wrong(x):
        squares = np.sum(x * x, axis=axis, keepdims=keepdims)
        return (x / (np.sqrt(squares) if root else squares),)

    return wrong


NORMALIZE = Exercise(
    name="normalize_rows",
    section="5. Broadcasting, softmax, normalize_rows, image2vector",
    signature="normalize_rows(x) -> x_normalized, the shape of x (n, d)",
    task="x / ||x||, ||x|| = sqrt(sum_j x_ij^2) per row (axis=1, keepdims=True); "
    "an all-zero row stays zero",
    outputs=("x_normalized",),
    solution=normalize_rows,
    cases=_normalize_cases,
    rule=lambda x: (jaxnet.normalize_rows(x),),
    autodiff=None,
    mistakes=(
        Mistake(
            "row/column layout swap: normalize each row, norms over axis=1",
            _norm_wrong(axis=0),
        ),
        Mistake(
            "||x|| is the square root of the sum of squares",
            _norm_wrong(axis=1, root=False),
        ),
        Mistake(
            "keepdims lost: norm(x, axis=1) is (n,), which divides the columns; "
            "use keepdims=True",
            lambda x: (
                _norm_wrong(axis=1, keepdims=False)(x)
                if x.shape[0] == x.shape[1]
                else None
            ),
        ),
        Mistake(
            "an all-zero row has no direction: return it as zeros (jaxnet's rule), "
            "not 0 / 0 = NaN, e.g. divide by where(norm == 0, 1, norm)",
            lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True),),
        ),
    ),
    normalize=one_array("x_normalized"),
)

# 5. image2vector


def image2vector(image):
    length, height, depth = image.shape
    return image.reshape(length * height * depth, 1)


def _image_cases():
    rng = _rng(5)
    return [
        (rng.random((4, 5, 3)),),
        (rng.random((3, 3, 2)),),
        (rng.random((2, 6, 1)),),
    ]


IMAGE = Exercise(
    name="image2vector",
    section="5. Broadcasting, softmax, normalize_rows, image2vector",
    signature="image2vector(image) -> v, (length*height*depth, 1)",
    task="unroll (length, height, depth) into one column, in the array's order",
    outputs=("v",),
    solution=image2vector,
    cases=_image_cases,
    rule=lambda image: (jaxnet.image2vector(image),),
    autodiff=None,
    mistakes=(
        Mistake(
            "a rank-1 array (n,) is neither a row nor a column (the lecture's 'be "
            "careful when creating vectors'): reshape to (n, 1)",
            lambda image: (image.reshape(-1),),
        ),
        Mistake(
            "row/column layout swap: an example is a column (n, 1), not a row (1, n)",
            lambda image: (image.reshape(1, -1),),
        ),
        Mistake(
            "unroll in the array's own order, image.reshape(length*height*depth, "
            "1); this order takes one colour channel at a time",
            lambda image: (image.transpose(2, 0, 1).reshape(-1, 1),),
        ),
        Mistake(
            "unroll in the array's own (C) order; order='F' runs down the first "
            "axis first",
            lambda image: (image.reshape(-1, 1, order="F"),),
        ),
    ),
    normalize=one_array("v"),
)

# 6. logistic regression's propagate


def propagate(w, b, X, Y):
    m = X.shape[1]
    A = 1 / (1 + np.exp(-(w.T @ X + b)))
    cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    dZ = A - Y
    return cost, {"dw": X @ dZ.T / m, "db": np.sum(dZ) / m}


def _propagate_cases():
    rng = _rng(6)
    cases = []
    for n_x, m in ((4, 7), (3, 1), (6, 10)):
        w = 0.5 * rng.standard_normal((n_x, 1))
        b = float(rng.standard_normal())
        X = rng.standard_normal((n_x, m))
        Y = (rng.random((1, m)) > 0.5).astype(np.float64)
        cases.append((w, b, X, Y))
    return cases


def _propagate_rule(w, b, X, Y):
    cost, grads = jaxnet_propagate({"w": w, "b": b}, X, Y)
    return cost, grads["w"], grads["b"]


def _propagate_autodiff(w, b, X, Y):
    def J(params):
        return model_cost(to_layers(params), X, Y, LOGISTIC)

    cost, grads = jax.value_and_grad(J)({"w": jnp.asarray(w), "b": jnp.asarray(b)})
    return cost, grads["w"], grads["b"]


def _propagate_wrong(per_m=True, transpose=False, sign=1.0, cost_sum=False, l3=False):
    def wrong(w, b, X, Y):
        m = X.shape[1]
        A = _sigmoid(w.T @ X + b)
        second = (1 - Y) * (1 - np.log(A)) if l3 else (1 - Y) * np.log(1 - A)
        cost = -np.sum(Y * np.log(A) + second) / (1 if cost_sum else m)
        dZ = sign * (A - Y)
        scale = m if per_m else 1
        dw = (dZ @ X.T if transpose else X @ dZ.T) / scale
        return cost, dw, np.sum(dZ) / scale

    return wrong


def _propagate_outputs(out) -> tuple:
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AnswerFormError('return (cost, {"dw": dw, "db": db})')
    cost, grads = out
    if isinstance(cost, dict):  # the course returns grads, cost
        cost, grads = grads, cost
    if not isinstance(grads, dict):
        raise AnswerFormError('return (cost, {"dw": dw, "db": db}): grads is a dict')
    keys = ("dw", "db") if "dw" in grads else ("w", "b")
    if any(k not in grads for k in keys):
        raise AnswerFormError(
            f'grads needs the keys "dw" and "db"; got {sorted(grads)}'
        )
    return (
        as_array(cost, "cost"),
        as_array(grads[keys[0]], "dw"),
        as_array(grads[keys[1]], "db"),
    )


PROPAGATE = Exercise(
    name="propagate",
    section="7. Logistic regression: one neuron, loops and vectors",
    signature='propagate(w, b, X, Y) -> (cost, {"dw": dw, "db": db}); w (n_x, 1), '
    "b a number, X (n_x, m), Y (1, m)",
    task="A = sigmoid(w^T X + b); J = -(1/m) sum(Y log A + (1 - Y) log(1 - A)); "
    "dZ = A - Y; dw = (1/m) X dZ^T; db = (1/m) sum(dZ)",
    outputs=("cost", "dw", "db"),
    solution=propagate,
    cases=_propagate_cases,
    rule=_propagate_rule,
    autodiff=_propagate_autodiff,
    mistakes=(
        Mistake(
            "a missing 1/m: dw = (1/m) X dZ^T and db = (1/m) sum(dZ), the gradient "
            "of the cost averaged over m",
            _propagate_wrong(per_m=False),
        ),
        Mistake(
            "dw is transposed: X dZ^T has w's shape (n_x, 1), dZ X^T is a row",
            _propagate_wrong(transpose=True),
        ),
        Mistake(
            "a missing 1/m in the cost: J = -(1/m) sum(...), the mean loss",
            _propagate_wrong(cost_sum=True),
        ),
        Mistake(
            "dz = a - y, not y - a: its sign sets the direction of descent",
            _propagate_wrong(sign=-1.0),
        ),
        Mistake(
            "the lecture's formula (3) is misprinted: the second term is "
            "(1 - y) log(1 - a), not (1 - y)(1 - log a)",
            _propagate_wrong(l3=True),
        ),
    ),
    normalize=_propagate_outputs,
)

EXERCISES = (SIGMOID, RELU, SOFTMAX, NORMALIZE, IMAGE, PROPAGATE)
