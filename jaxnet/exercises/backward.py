"""Exercises 7-12: the backward blocks, L2, inverted dropout, one update.

The caches handed to the student are ``jaxnet.LayerCache`` tuples of numpy
arrays (read them as ``cache.A_prev``, ``cache.W``, ``cache.b``, ``cache.Z``);
kinks come from an all-zero input column with b = 0, which puts Z exactly on
ReLU's z = 0 (as at initialization, or for a dead unit).
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxnet
from jaxnet.activations import get_activation
from jaxnet.deep import add_l2_grads, dropout_mask, l2_penalty, model_forward
from jaxnet.exercises import basics
from jaxnet.exercises.grading import AnswerFormError, Exercise, Mistake, as_array
from jaxnet.params import LayerCache
from jaxnet.shapes import forward_of


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def numpy_cache(A_prev, W, b, Z) -> LayerCache:
    """A LayerCache of numpy arrays, as the student's functions receive it."""
    return LayerCache(A_prev, W, b, Z)


def _layer(rng, n, n_prev, m, kink=False):
    """A consistent cache (A_prev, W, b, Z); with kink, column 0 of Z is 0."""
    A_prev = rng.standard_normal((n_prev, m))
    W = rng.standard_normal((n, n_prev))
    b = np.zeros((n, 1)) if kink else rng.standard_normal((n, 1))
    if kink:
        A_prev[:, 0] = 0.0
    return numpy_cache(A_prev, W, b, W @ A_prev + b)


def _block_outputs(out) -> tuple:
    """(dA_prev, {"W": dW, "b": db}), {"dW", "db"} keys, or (dA_prev, dW, db)."""
    if isinstance(out, tuple | list) and len(out) == 3:
        dA_prev, dW, db = out
    elif isinstance(out, tuple | list) and len(out) == 2 and isinstance(out[1], dict):
        dA_prev, (dW, db) = out[0], _pair(out[1])
    else:
        raise AnswerFormError('return (dA_prev, {"W": dW, "b": db})')
    return as_array(dA_prev, "dA_prev"), as_array(dW, "dW"), as_array(db, "db")


def _pair(grads: dict) -> tuple:
    for keys in (("W", "b"), ("dW", "db")):
        if all(k in grads for k in keys):
            return grads[keys[0]], grads[keys[1]]
    raise AnswerFormError(
        f'a layer\'s grads need keys "W" and "b"; got {sorted(grads)}'
    )


def _linear_vjp(dZ, A_prev, W, b, activation=None):
    """(dA_prev, dW, db) through jax.vjp; dW and db divided by m."""

    def forward(A_prev, W, b):
        Z = jnp.dot(W, A_prev) + b
        return Z if activation is None else forward_of(activation)(Z)

    _, pull = jax.vjp(forward, *map(jnp.asarray, (A_prev, W, b)))
    dA_prev, dW, db = pull(jnp.asarray(dZ))
    m = A_prev.shape[1]
    return dA_prev, dW / m, db / m


def _linear_wrong(per_m=True, transpose=False, keepdims=True, axis=1, no_WT=False):
    def wrong(dZ, cache):
        m = cache.A_prev.shape[1] if per_m else 1
        dW = (cache.A_prev @ dZ.T if transpose else dZ @ cache.A_prev.T) / m
        db = np.sum(dZ, axis=axis, keepdims=keepdims) / m
        dA_prev = cache.W @ dZ if no_WT else cache.W.T @ dZ
        return dA_prev, dW, db

    return wrong


# 7. linear_backward


def linear_backward(dZ, cache):
    m = cache.A_prev.shape[1]
    dW = dZ @ cache.A_prev.T / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    return cache.W.T @ dZ, {"W": dW, "b": db}


def _linear_cases():
    rng = _rng(7)
    cases = []
    for n, n_prev, m in ((3, 4, 5), (4, 2, 6), (3, 3, 4), (1, 3, 1)):
        cases.append((rng.standard_normal((n, m)), _layer(rng, n, n_prev, m)))
    return cases


def _blocks(out) -> tuple:
    dA_prev, grads = out
    return dA_prev, grads["W"], grads["b"]


LINEAR = Exercise(
    name="linear_backward",
    section="11. The shallow network",
    signature='linear_backward(dZ, cache) -> (dA_prev, {"W": dW, "b": db}); '
    "dZ (n[l], m), cache.A_prev (n[l-1], m), cache.W (n[l], n[l-1])",
    task="dW = (1/m) dZ A_prev^T; db = (1/m) sum(dZ, axis=1, keepdims=True); "
    "dA_prev = W^T dZ",
    outputs=("dA_prev", "dW", "db"),
    solution=linear_backward,
    cases=_linear_cases,
    rule=lambda dZ, cache: _blocks(jaxnet.linear_backward(dZ, cache)),
    autodiff=lambda dZ, cache: _linear_vjp(dZ, cache.A_prev, cache.W, cache.b),
    mistakes=(
        Mistake(
            "a missing 1/m: dW = (1/m) dZ A_prev^T and db = (1/m) sum(dZ), the "
            "cost is averaged over the m examples",
            _linear_wrong(per_m=False),
        ),
        Mistake(
            "a transposed dW: dW = (1/m) dZ A_prev^T has W's shape (n[l], n[l-1])",
            _linear_wrong(transpose=True),
        ),
        Mistake(
            "keepdims lost in db: db = (1/m) sum(dZ, axis=1, keepdims=True) is a "
            "column (n[l], 1) like b",
            _linear_wrong(keepdims=False),
        ),
        Mistake(
            "row/column layout swap in db: sum over the examples, axis=1 "
            "(examples are columns)",
            _linear_wrong(axis=0),
        ),
        Mistake("dA_prev = W^T dZ, with W transposed", _linear_wrong(no_WT=True)),
    ),
    normalize=_block_outputs,
)

# 8. linear_activation_backward


# g'(Z) by name, from the answers to exercises 1 and 2 (tanh' = 1 - tanh^2).
DERIVATIVES = {
    "sigmoid": basics.sigmoid_derivative,
    "tanh": lambda Z: 1 - np.tanh(Z) ** 2,
    "relu": lambda Z: basics.leaky_relu_derivative(Z, 0.0),
    "leaky_relu": lambda Z: basics.leaky_relu_derivative(Z, 0.01),
}


def linear_activation_backward(dA, cache, activation):
    dZ = dA * DERIVATIVES[activation](cache.Z)
    return linear_backward(dZ, cache)


def _activation_cases():
    rng = _rng(8)
    cases = []
    for activation, (n, n_prev, m) in (
        ("sigmoid", (3, 4, 5)),
        ("tanh", (2, 3, 6)),
        ("relu", (4, 3, 5)),
        ("leaky_relu", (3, 2, 4)),
    ):
        kink = activation in ("relu", "leaky_relu")
        cache = _layer(rng, n, n_prev, m, kink=kink)
        cases.append((rng.standard_normal((n, m)), cache, activation))
    return cases


def _activation_wrong(dZ_of):
    def wrong(dA, cache, activation):
        dZ = dA * np.asarray(dZ_of(get_activation(activation), cache.Z, activation))
        return _linear_wrong()(dZ, cache)

    return wrong


def _as_if_a(g, Z, activation):
    """The a-based formulas applied to Z: a(1 - a) and 1 - a^2 with a = Z."""
    return {"sigmoid": Z * (1 - Z), "tanh": 1 - Z**2}.get(activation, g.derivative(Z))


ACTIVATION = Exercise(
    name="linear_activation_backward",
    section="12. The L-layer network from forward and backward blocks",
    signature="linear_activation_backward(dA, cache, activation) -> "
    '(dA_prev, {"W": dW, "b": db}); activation a name in jaxnet.ACTIVATIONS',
    task="dZ = dA * g'(Z) with the cache's Z (jaxnet.ACTIVATIONS[activation]"
    ".derivative is g'), then linear_backward(dZ, cache)",
    outputs=("dA_prev", "dW", "db"),
    solution=linear_activation_backward,
    cases=_activation_cases,
    rule=lambda dA, cache, g: _blocks(jaxnet.linear_activation_backward(dA, cache, g)),
    autodiff=lambda dA, cache, g: _linear_vjp(dA, cache.A_prev, cache.W, cache.b, g),
    mistakes=(
        Mistake(
            "dZ computed from A instead of Z: g' takes the cache's Z, "
            "dZ = dA * g'(Z), not g'(A) with A = g(Z)",
            _activation_wrong(lambda g, Z, _: g.derivative(g.forward(Z))),
        ),
        Mistake(
            "dZ computed from Z as if it were A: a(1 - a) and 1 - a^2 take "
            "a = g(Z); apply g first (or call the derivative g'(Z))",
            _activation_wrong(_as_if_a),
        ),
        Mistake(
            "dZ = dA * g'(Z): the activation's derivative is missing",
            _activation_wrong(lambda g, Z, _: np.ones_like(Z)),
        ),
        Mistake(
            "dZ = dA * g'(Z) multiplies by the derivative g', not by g(Z)",
            _activation_wrong(lambda g, Z, _: g.forward(Z)),
        ),
        Mistake(
            "a missing 1/m in dW and db (see linear_backward)",
            lambda dA, cache, g: _linear_wrong(per_m=False)(
                dA * np.asarray(get_activation(g).derivative(cache.Z)), cache
            ),
        ),
    ),
    normalize=_block_outputs,
)

# 9. the L-layer backward


def model_backward(AL, Y, caches, activations):
    grads: list = [None] * len(caches)
    dZ = AL - Y  # the output layer, sigmoid with cross-entropy
    for l in reversed(range(len(caches))):
        cache = caches[l]
        m = cache.A_prev.shape[1]
        grads[l] = {
            "W": dZ @ cache.A_prev.T / m,
            "b": np.sum(dZ, axis=1, keepdims=True) / m,
        }
        if l > 0:
            g_prime = DERIVATIVES[activations[l - 1]]
            dZ = (cache.W.T @ dZ) * g_prime(caches[l - 1].Z)
    return grads


def _model_setup(seed, layer_dims, activations, m, kink):
    rng = _rng(seed)
    params = [
        {"W": rng.standard_normal((n, n_prev)), "b": rng.standard_normal((n, 1))}
        for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=True)
    ]
    X = rng.standard_normal((layer_dims[0], m))
    if kink:  # Z[1] and Z[2] of example 0 are exactly 0
        X[:, 0] = 0.0
        params[0]["b"][:] = 0.0
        params[1]["b"][:] = 0.0
    Y = (rng.random((1, m)) > 0.5).astype(np.float64)
    AL, caches = jax.jit(model_forward, static_argnums=2)(params, X, activations)
    caches = [numpy_cache(*(np.asarray(a) for a in c[:4])) for c in caches]
    return np.asarray(AL), Y, caches, tuple(activations)


def _model_cases():
    return [
        _model_setup(91, [3, 4, 1], ("tanh", "sigmoid"), 5, False),
        _model_setup(92, [4, 3, 2, 1], ("relu", "relu", "sigmoid"), 6, True),
        _model_setup(93, [2, 5, 3, 1], ("sigmoid", "tanh", "sigmoid"), 4, False),
    ]


def _model_autodiff(AL, Y, caches, activations):
    params = [{"W": c.W, "b": c.b} for c in caches]
    return _grad_leaves(
        jax.grad(jaxnet.model_cost)(params, caches[0].A_prev, Y, activations)
    )


def _grad_leaves(grads) -> tuple:
    return tuple(x for layer in grads for x in (layer["W"], layer["b"]))


def _model_wrong(per_m=True, transpose=False, dZ_of=None, reverse=False):
    def wrong(AL, Y, caches, activations):
        grads: list = []
        dZ = AL - Y
        for l in reversed(range(len(caches))):
            dA_prev, dW, db = _linear_wrong(per_m=per_m, transpose=transpose)(
                dZ, caches[l]
            )
            grads.insert(0, {"W": dW, "b": db})
            if l > 0:
                g = get_activation(activations[l - 1])
                Z = caches[l - 1].Z
                dZ = dA_prev * np.asarray(dZ_of(g, Z) if dZ_of else g.derivative(Z))
        return _grad_leaves(grads[::-1] if reverse else grads)

    return wrong


def _model_outputs(out, names=("dW", "db")) -> tuple:
    if isinstance(out, dict):  # the course's {"dW1": ..., "db1": ...}
        L = sum(1 for k in out if k.startswith("dW"))
        if not all(f"dW{l}" in out and f"db{l}" in out for l in range(1, L + 1)):
            raise AnswerFormError('return a list of {"W": dW, "b": db}, layer 1 first')
        out = [{"W": out[f"dW{l}"], "b": out[f"db{l}"]} for l in range(1, L + 1)]
    if not isinstance(out, tuple | list) or not all(isinstance(g, dict) for g in out):
        raise AnswerFormError('return a list of {"W": dW, "b": db}, layer 1 first')
    return tuple(
        as_array(x, f"{name}[{l}]")
        for l, layer in enumerate(out, start=1)
        for name, x in zip(names, _pair(layer), strict=True)
    )


MODEL = Exercise(
    name="model_backward",
    section="12. The L-layer network from forward and backward blocks",
    signature='model_backward(AL, Y, caches, activations) -> [{"W": dW, "b": db}, '
    "...], layer 1 first; sigmoid output, caches as model_forward keeps them",
    task="dZ[L] = AL - Y; for l = L..1: dW[l], db[l], dA[l-1] = linear_backward; "
    "dZ[l-1] = dA[l-1] * g[l-1]'(Z[l-1])",
    outputs=tuple(f"{n}[{l}]" for l in range(1, 4) for n in ("dW", "db")),
    solution=model_backward,
    cases=_model_cases,
    rule=lambda AL, Y, caches, acts: _grad_leaves(
        jaxnet.model_backward(AL, Y, caches, acts)
    ),
    autodiff=_model_autodiff,
    mistakes=(
        Mistake(
            "a missing 1/m in dW[l] and db[l]: the cost is averaged over m",
            _model_wrong(per_m=False),
        ),
        Mistake(
            "a transposed dW: dW[l] = (1/m) dZ[l] A[l-1]^T, W[l]'s shape",
            _model_wrong(transpose=True),
        ),
        Mistake(
            "dZ computed from A instead of Z: dZ[l] = dA[l] * g'(Z[l]) with the "
            "cache's Z",
            _model_wrong(dZ_of=lambda g, Z: g.derivative(g.forward(Z))),
        ),
        Mistake(
            "dZ[l] = dA[l] * g'(Z[l]): the hidden layers' derivative is missing",
            _model_wrong(dZ_of=lambda g, Z: np.ones_like(Z)),
        ),
        Mistake(
            "grads[0] belongs to layer 1: the loop runs from L down to 1, but the "
            "list is ordered as params",
            _model_wrong(reverse=True),
        ),
    ),
    normalize=_model_outputs,
)

# 10. the L2 term of the gradient


def l2_gradient(dW, W, lambd, m):
    return dW + lambd / m * W


def _l2_cases():
    rng = _rng(10)
    return [
        (rng.standard_normal(s), rng.standard_normal(s), lambd, m)
        for s, lambd, m in (((3, 4), 0.7, 5), ((1, 5), 0.1, 7), ((4, 4), 2.0, 3))
    ]


def _l2_rule(dW, W, lambd, m):
    n = W.shape[0]
    zeros = jnp.zeros((n, 1))
    cache = LayerCache(jnp.zeros((W.shape[1], m)), W, zeros, jnp.zeros((n, m)))
    return (add_l2_grads([{"W": dW, "b": zeros}], [cache], lambd)[0]["W"],)


def _l2_autodiff(dW, W, lambd, m):
    penalty = jax.grad(l2_penalty)([{"W": jnp.asarray(W)}], lambd, m)[0]["W"]
    return (dW + penalty,)


L2 = Exercise(
    name="l2_gradient",
    section="13. The gradient check",
    signature="l2_gradient(dW, W, lambd, m) -> dW with the L2 term, W's shape",
    task="J += lambd / (2m) sum_l ||W[l]||^2 (sum of squares of W's entries): add "
    "the derivative of that term with respect to W[l] to the backward's dW[l]",
    outputs=("dW",),
    solution=l2_gradient,
    cases=_l2_cases,
    rule=_l2_rule,
    autodiff=_l2_autodiff,
    mistakes=(
        Mistake(
            "a missing 1/m: the L2 term is (lambd / m) W",
            lambda dW, W, lambd, m: (dW + lambd * W,),
        ),
        Mistake(
            "the 1/2 of lambd / (2m) ||W||^2 cancels against the 2 of d(W^2)/dW = "
            "2W: the term is (lambd / m) W",
            lambda dW, W, lambd, m: (dW + lambd / (2 * m) * W,),
        ),
        Mistake(
            "add the L2 term to the backward's dW; it does not replace it",
            lambda dW, W, lambd, m: (lambd / m * W,),
        ),
        Mistake(
            "the L2 term is added: it pulls W towards 0 after the update "
            "W -= alpha dW (weight decay)",
            lambda dW, W, lambd, m: (dW - lambd / m * W,),
        ),
    ),
    normalize=lambda out: (as_array(out, "dW"),),
)

# 11. inverted dropout, backward


def dropout_backward(dA, D, keep_prob):
    return dA * D / keep_prob


def _dropout_cases():
    rng = _rng(11)
    cases = []
    for seed, keep_prob, shape in (
        (0, 0.8, (4, 6)),
        (1, 0.5, (3, 5)),
        (2, 0.86, (5, 2)),
    ):
        scaled = jax.jit(dropout_mask, static_argnums=(1, 2, 3))(
            jax.random.key(seed), keep_prob, shape, jnp.float64
        )
        D = (np.asarray(scaled) > 0).astype(np.float64)  # the forward's 0/1 mask
        cases.append((rng.standard_normal(shape), D, keep_prob))
    return cases


def _dropout_autodiff(dA, D, keep_prob):
    _, pull = jax.vjp(lambda A: A * D / keep_prob, jnp.zeros_like(jnp.asarray(dA)))
    return pull(jnp.asarray(dA))


DROPOUT = Exercise(
    name="dropout_backward",
    section="14. Parameters and hyperparameters",
    signature="dropout_backward(dA, D, keep_prob) -> dA through the dropout "
    "layer; D the forward's 0/1 mask, (n[l], m)",
    task="forward A = A * D / keep_prob (inverted dropout), so backward "
    "dA = dA * D / keep_prob",
    outputs=("dA",),
    solution=dropout_backward,
    cases=_dropout_cases,
    # jaxnet's backward multiplies by the cached mask, already divided by keep_prob
    rule=lambda dA, D, keep_prob: (dA * (D / keep_prob),),
    autodiff=_dropout_autodiff,
    mistakes=(
        Mistake(
            "the mask is not divided by keep_prob: the forward scaled the kept "
            "units by 1/keep_prob, so the backward does too",
            lambda dA, D, keep_prob: (dA * D,),
        ),
        Mistake(
            "divide by keep_prob (the forward's scaling), do not multiply",
            lambda dA, D, keep_prob: (dA * D * keep_prob,),
        ),
        Mistake(
            "the mask is missing: dropped units pass no gradient, dA * D",
            lambda dA, D, keep_prob: (dA / keep_prob,),
        ),
        Mistake(
            "the mask is inverted: D = 1 marks the units kept",
            lambda dA, D, keep_prob: (dA * (1 - D) / keep_prob,),
        ),
    ),
    normalize=lambda out: (as_array(out, "dA"),),
)

# 12. one gradient-descent update


def update_parameters(params, grads, learning_rate):
    return [
        {"W": p["W"] - learning_rate * g["W"], "b": p["b"] - learning_rate * g["b"]}
        for p, g in zip(params, grads, strict=True)
    ]


def _update_cases():
    rng = _rng(12)
    cases = []
    for dims, alpha in (([3, 2, 1], 0.0075), ([4, 5, 3, 1], 0.1), ([2, 1], 1.2)):
        shapes = [((n, p), (n, 1)) for p, n in zip(dims[:-1], dims[1:], strict=True)]
        params = [{"W": rng.standard_normal(w), "b": rng.standard_normal(b)}
                  for w, b in shapes]  # fmt: skip
        grads = [{"W": rng.standard_normal(w), "b": rng.standard_normal(b)}
                 for w, b in shapes]  # fmt: skip
        cases.append((params, grads, alpha))
    return cases


def _update_wrong(step):
    def wrong(params, grads, alpha):
        return _grad_leaves(
            [
                {k: step(p[k], g[k], alpha, k) for k in ("W", "b")}
                for p, g in zip(params, grads, strict=True)
            ]  # fmt: skip
        )

    return wrong


UPDATE = Exercise(
    name="update_parameters",
    section='15. "repeat ... until J < epsilon"',
    signature="update_parameters(params, grads, learning_rate) -> new params, a "
    'list of {"W": W, "b": b} like params',
    task="W[l] := W[l] - alpha dW[l]; b[l] := b[l] - alpha db[l], every layer",
    outputs=tuple(f"{n}[{l}]" for l in range(1, 4) for n in ("W", "b")),
    solution=update_parameters,
    cases=_update_cases,
    rule=lambda params, grads, alpha: _grad_leaves(
        jaxnet.update_params(params, grads, alpha)
    ),
    autodiff=None,
    mistakes=(
        Mistake(
            "W := W - alpha dW: a plus sign climbs the cost (gradient ascent)",
            _update_wrong(lambda p, g, a, k: p + a * g),
        ),
        Mistake(
            "the learning rate alpha is missing: W := W - alpha dW",
            _update_wrong(lambda p, g, a, k: p - g),
        ),
        Mistake(
            "b is updated too: b[l] := b[l] - alpha db[l]",
            _update_wrong(lambda p, g, a, k: p - a * g if k == "W" else p),
        ),
        Mistake(
            "multiply the gradient by alpha, do not divide",
            _update_wrong(lambda p, g, a, k: p - g / a),
        ),
    ),
    normalize=lambda out: _model_outputs(out, names=("W", "b")),
)

EXERCISES = (LINEAR, ACTIVATION, MODEL, L2, DROPOUT, UPDATE)
