# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Introduction to deep learning, with jaxnet
#
# This notebook walks through the lecture *Introduction to Deep Learning and Deep
# Network Learning Issues* by Adrian Horzyk (AGH University of Science and Technology)
# in its own order. Each section quotes the lecture's formula, calls the jaxnet
# function that implements it, and prints the numbers, next to the lecture's own
# printed values where it has them.
#
# **Exercises.** Twelve sections end with an exercise cell: an empty function for you
# to fill in (numpy or jax.numpy), then `exercises.check(name, fn)`, which runs it on
# several inputs (kinks included) against jaxnet's own rule and `jax.grad` and
# answers "passed" or a hint naming the likely mistake (a missing 1/m, a transposed
# dW, ...). `exercises.list()` names them all, `exercises.describe(name)` says what
# each asks, and `exercises.solution(name)` gives a model answer (see
# `docs/exercises.md`; the notebook itself: `docs/notebook.md`).
#
# **The outputs you see** come from a real run. After editing `notebooks/lecture.py`
# (the notebook's source, jupytext percent format), regenerate this notebook with its
# outputs from the repository root with `python notebooks/build.py`; the tests
# re-execute it and fail if a stored number drifts or the outputs are stale.
#
# jaxnet keeps the lecture's layout: examples are **columns**, `X` is `(n_x, m)`, `Y` is
# `(n[L], m)`, and the parameters are a list of `{"W": (n[l], n[l-1]), "b": (n[l], 1)}`.
# Every backward rule is written by hand, as in the lecture, and checked against
# `jax.grad`.
#
# The data (cat / non-cat images, Auto MPG) is found the way the library finds it:
# `$JAXNET_DATA` if set, else the cache written by `python -m jaxnet.data fetch`
# (see `docs/data.md`). The whole notebook runs in about a minute on 2 CPU cores; where
# the course trains longer, the cell says so.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxnet
from jaxnet import (
    accuracy,
    check_gradients,
    course_init_params,
    exercises,
    fit,
    image2vector,
    init_params,
    linear_activation_backward,
    linear_activation_forward,
    model_cost,
    model_value_and_grads,
    normalize_rows,
    predict,
    softmax,
)
from jaxnet.data import load_autompg, load_catvnoncat, planar_flower
from jaxnet.derivative_rules import CORRECTIONS, RULES, sample_domain
from jaxnet.graph import labelled_equations, logistic_nodes, side_by_side
from jaxnet.hyperparams import RULES as HYPERPARAMETERS
from jaxnet.linear_regression import (
    least_squares,
    mean_absolute_error,
    predict_linear,
)
from jaxnet.logistic import propagate, propagate_loops, to_layers
from jaxnet.shallow import init_shallow, shallow_activations
from jaxnet.sweep import init_stacked_params, sweep
from jaxnet.train import fit_until

# float64 for the lecture's printed digits and the gradient checks; training cells
# pick their dtype explicitly (float32 is the users' default).
jax.config.update("jax_enable_x64", True)
np.set_printoptions(precision=8, suppress=False)
plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72})  # small PNGs in the file
NOTEBOOK_START = time.perf_counter()
print(f"jaxnet {jaxnet.__version__}, jax {jax.__version__}, device {jax.devices()[0]}")

# %% [markdown]
# ## 1. Images as vectors: X is (n_x, m)
#
# > Images are represented as a combination of three colours ... three matrices.
# > $n_x = 128 \times 128 \times 3 = 49152$ is the dimension of vector x.
# > $X.shape = (n_x, m)$, $Y.shape = (1, m)$.
#
# The course's cat images are 64 x 64 x 3, so here $n_x = 12288$. The loader unrolls
# every image into a column of `X` and scales the pixels to [0, 1].

# %%
cats = load_catvnoncat()  # default search order: $JAXNET_DATA, then the cache
print("n_x for 128x128x3 images:", 128 * 128 * 3)
print("n_x for the course's 64x64x3 images:", 64 * 64 * 3)
print("X_train.shape =", cats.X_train.shape, "  Y_train.shape =", cats.Y_train.shape)
print("X_test.shape  =", cats.X_test.shape, "   Y_test.shape  =", cats.Y_test.shape)
index = 2
label = cats.classes[int(cats.Y_train[0, index])]
column = cats.X_train[:, index : index + 1]  # one example x(i): (n_x, 1)
unrolled = image2vector(cats.train_images[index]) / 255
print("column", index, "is image2vector(image) / 255:", np.allclose(column, unrolled))

fig, ax = plt.subplots(figsize=(2.2, 2.2))
ax.imshow(cats.train_images[index])
ax.set_title(f"y = {int(cats.Y_train[0, index])} ({label})", fontsize=9)
ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. Sigmoid and its derivative
#
# > $\text{sigmoid}(z) = \frac{1}{1+e^{-z}}$ (1),
# > $\sigma'(z) = \sigma(z)(1 - \sigma(z))$ (2)
# >
# > `sigmoid(z) = [0.11920292 0.26894142 0.5 0.73105858 0.88079708]`
# > `sigmoid_derivative(z) = [0.10499359 0.19661193 0.25 0.19661193 0.10499359]`

# %%
z = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
print("sigmoid(z) =", jaxnet.sigmoid(z))
print("sigmoid_derivative(z) =", jaxnet.sigmoid_derivative(z))
np.testing.assert_allclose(
    jaxnet.sigmoid(z), [0.11920292, 0.26894142, 0.5, 0.73105858, 0.88079708], atol=5e-9
)
np.testing.assert_allclose(
    jaxnet.sigmoid_derivative(z),
    [0.10499359, 0.19661193, 0.25, 0.19661193, 0.10499359],
    atol=5e-9,
)


# %%
# Exercise 1 of 12, "sigmoid_derivative": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_sigmoid_derivative(z):
    """sigma'(z) = s (1 - s) with s = sigmoid(z), for z of any shape."""
    ...  # your code


exercises.check("sigmoid_derivative", my_sigmoid_derivative)

# %% [markdown]
# ## 3. The activations and their derivatives
#
# > sigmoid $g'(z) = a(1 - a)$; tanh $g'(z) = 1 - a^2$; ReLU $g'(z) = 1$ if $z > 0$
# > else 0; SoftPlus $\ln(1 + e^z)$, $g'(z) = \frac{1}{1+e^{-z}}$; Leaky ReLU
# > $g'(z) = 1$ if $z > 0$ else 0.01.
#
# Each hand-written derivative (`ACTIVATIONS[name].derivative`) is compared with
# `jax.vmap(jax.grad(g))` everywhere, the kink z = 0 included.

# %%
z = jnp.linspace(-4.0, 4.0, 801)  # includes z = 0 exactly
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for name in ("sigmoid", "tanh", "relu", "leaky_relu", "softplus"):
    g = jaxnet.ACTIVATIONS[name]
    derivative = g.derivative(z)
    autodiff = jax.vmap(jax.grad(g.forward))(z)
    error = float(jnp.max(jnp.abs(derivative - autodiff)))
    print(f"{name:>10}: max |g'(z) - jax.grad(g)(z)| = {error:.1e}")
    style = "--" if name == "leaky_relu" else "-"  # relu lies under it for z > 0
    axes[0].plot(z, g.forward(z), style, label=name)
    axes[1].plot(z, derivative, style, label=name)
axes[0].set(title="g(z)", xlabel="z", ylim=(-1.5, 4))
axes[1].set(title="g'(z), hand-written", xlabel="z")
axes[0].legend(fontsize=8)
plt.show()


# %%
# Exercise 2 of 12, "leaky_relu_derivative": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_leaky_relu_derivative(z, slope):
    """g'(z) = 1 if z > 0 else slope (slope = 0 is ReLU); mind z = 0."""
    ...  # your code


exercises.check("leaky_relu_derivative", my_leaky_relu_derivative)

# %% [markdown]
# ## 4. The losses
#
# > $L_1(\hat{y}, y) = \sum_j |y_j - \hat{y}_j|$ (1),
# > $L_2(\hat{y}, y) = \sum_j (y_j - \hat{y}_j)^2$ (2),
# > $L_3(\hat{y}, y) = -\sum_j (y_j \log(\hat{y}_j) + (1 - y_j)(1 - \log(\hat{y}_j)))$
# > (3)
# >
# > `Loss1 = 0.5599999999999999`, `Loos2 = 0.0822`, `Loos3 = 0.6066693634880955`
#
# Formula (3) is misprinted: its code, and the cost J on the same slides, use
# $(1 - y)\log(1 - \hat{y})$, which is what gives the printed 0.6066693634880955.

# %%
yhat = jnp.array([0.78, 0.89, 0.12, 0.08, 0.97])
y = jnp.array([1.0, 1.0, 0.0, 0.0, 1.0])
print("Loss1 =", jaxnet.l1_loss(yhat, y))
print("Loss2 =", jaxnet.l2_loss(yhat, y))
print("Loss3 =", jaxnet.l3_loss(yhat, y))
as_printed = -jnp.sum(y * jnp.log(yhat) + (1 - y) * (1 - jnp.log(yhat)))
print("formula (3) as printed gives", as_printed, "(not the printed value)")

# %% [markdown]
# ## 5. Broadcasting, softmax, normalize_rows, image2vector
#
# > $(m, n) + (1, n) \rightarrow (m, n)$, $(m, n) + (m, 1) \rightarrow (m, n)$
# >
# > $\begin{bmatrix} 1 & 2 & 3 \\ 4 & 5 & 6 \end{bmatrix} + \begin{bmatrix} 10 & 20 &
# > 30 \end{bmatrix} = \begin{bmatrix} 11 & 22 & 33 \\ 14 & 25 & 36 \end{bmatrix}$,
# > $\begin{bmatrix} 1 & 2 & 3 \\ 4 & 5 & 6 \end{bmatrix} + \begin{bmatrix} 10 \\ 20
# > \end{bmatrix} = \begin{bmatrix} 11 & 12 & 13 \\ 24 & 25 & 26 \end{bmatrix}$
#
# This is how `b` (n[l], 1) is added to every column of `W A_prev` (n[l], m).

# %%
M = jnp.array([[1, 2, 3], [4, 5, 6]])
print(jnp.array([[1], [2], [3]]) + 10)
print(M + jnp.array([[10, 20, 30]]))
print(M + jnp.array([[10], [20]]))

# %% [markdown]
# > softmax(x) normalizes each **row** of x (the lecture's cell uses `axis=1`):
# > `softmax(x) = [[1.23074356e-04 9.97281837e-01 2.47201452e-03 1.23074356e-04]`
# > `[6.68456877e-03 3.32805082e-04 9.92077968e-01 9.04658008e-04]]`
#
# jaxnet's `softmax(x, axis)` takes the axis; the network's softmax output normalizes
# each **column** (axis 0), one column per example.

# %%
x = jnp.array([[0.0, 9.0, 3.0, 0.0], [3.0, 0.0, 8.0, 1.0]])
print("softmax(x, axis=1) =", softmax(x, axis=1))
np.testing.assert_allclose(
    softmax(x, axis=1),
    [
        [1.23074356e-04, 9.97281837e-01, 2.47201452e-03, 1.23074356e-04],
        [6.68456877e-03, 3.32805082e-04, 9.92077968e-01, 9.04658008e-04],
    ],
    rtol=5e-9,
)


# %%
# Exercise 3 of 12, "softmax": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_softmax(x):
    """softmax of each row of x (m, n), e^x / sum of the row's e^x."""
    ...  # your code


exercises.check("softmax", my_softmax)

# %% [markdown]
# > $\|x\| = $ `np.linalg.norm(x, axis=1, keepdims=True)` $= [\sqrt{29}, \sqrt{69}]^T$,
# > $x_{normalized} = x / \|x\|$:
# > `normalizeRows(x) = [[0.55708601 0.37139068 0.74278135]`
# > `[0.12038585 0.96308682 0.24077171]]`

# %%
x = jnp.array([[3.0, 2.0, 4.0], [1.0, 8.0, 2.0]])
print(
    "x_norm =",
    jnp.linalg.norm(x, axis=1, keepdims=True).ravel(),
    "=",
    (29**0.5, 69**0.5),
)
print("normalize_rows(x) =", normalize_rows(x))


# %%
# Exercise 4 of 12, "normalize_rows": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_normalize_rows(x):
    """x / ||x||, each row by its norm (an all-zero row stays zero)."""
    ...  # your code


exercises.check("normalize_rows", my_normalize_rows)

# %% [markdown]
# > `image2vector(image)` reshapes (length, height, depth) to (length*height*depth, 1):
# > the lecture's 3 x 3 x 2 example gives the column 0.139, 0.381, 0.982, ... 0.077.
#
# A rank-1 array (shape `(n,)`) is neither a row nor a column: the lecture's "Be
# careful when creating vectors". jaxnet keeps every vector 2-D.

# %%
image = jnp.array(
    [
        [[0.139, 0.381], [0.982, 0.647], [0.251, 0.551]],
        [[0.219, 0.647], [0.703, 0.845], [0.397, 0.313]],
        [[0.855, 0.165], [0.313, 0.937], [0.279, 0.077]],
    ]
)
v = image2vector(image)
print("image.shape =", image.shape, "-> image2vector(image).shape =", v.shape)
print("image2vector(image).T =", v.T)
a = jnp.arange(6.0)
print(
    "rank-1 a:", a.shape, "a.T:", a.T.shape, "dot(a, a.T) is a scalar:", jnp.dot(a, a.T)
)
b = a.reshape(6, 1)
print("column b:", b.shape, "b.T:", b.T.shape, "dot(b, b.T) is", jnp.dot(b, b.T).shape)


# %%
# Exercise 5 of 12, "image2vector": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_image2vector(image):
    """unroll an image (length, height, depth) into a column (n, 1)."""
    ...  # your code


exercises.check("image2vector", my_image2vector)

# %% [markdown]
# ## 6. Vectorization
#
# > Whenever possible, avoid explicit for-loops and use vectorization. (The lecture
# > times `np.dot` on two vectors of 1,000,000 numbers: ~1 ms against ~350 ms.)
#
# Smaller sizes here (200,000 numbers, and the lecture's 15-number lists), so the cell
# stays quick; the ratio is what matters. `experiments.vectorization` times the
# lecture's full sizes.

# %%
rng = np.random.default_rng(0)
n = 200_000
a_np, b_np = rng.random(n), rng.random(n)
a_jx, b_jx = jnp.asarray(a_np), jnp.asarray(b_np)
jnp.dot(a_jx, b_jx).block_until_ready()  # compile once


def timed(f, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        value = f()
        best = min(best, time.perf_counter() - start)
    return value, 1000 * best


loop, t_loop = timed(lambda: sum(a_np[i] * b_np[i] for i in range(n)), repeat=1)
vec, t_np = timed(lambda: np.dot(a_np, b_np))
jx, t_jx = timed(lambda: jnp.dot(a_jx, b_jx).block_until_ready())
print(f"for-looped dot = {loop:.6f}   {t_loop:8.2f} ms")
print(f"np.dot         = {vec:.6f}   {t_np:8.2f} ms")
print(f"jnp.dot        = {float(jx):.6f}   {t_jx:8.2f} ms")
x1 = [5, 1, 0, 3, 8, 2, 5, 6, 0, 1, 2, 5, 9, 0, 7]
x2 = [2, 5, 2, 0, 3, 2, 2, 9, 1, 0, 2, 5, 4, 0, 9]
print("dot =", jnp.dot(jnp.array(x1), jnp.array(x2)), "(the lecture: 235)")
print("elementwise =", jnp.multiply(jnp.array(x1), jnp.array(x2)))
print("outer[0] =", jnp.outer(jnp.array(x1), jnp.array(x2))[0])

# %% [markdown]
# ## 7. Logistic regression: one neuron, loops and vectors
#
# > $z^{(i)} = w^T x^{(i)} + b$, $a^{(i)} = \sigma(z^{(i)})$,
# > $J = -\frac{1}{m}\sum_i (y^{(i)} \log a^{(i)} + (1 - y^{(i)}) \log(1 - a^{(i)}))$
# >
# > vectorized: $Z = w^T X + b$, $A = \sigma(Z)$, $dZ = A - Y$,
# > $dw = \frac{1}{m} X dZ^T$, $db = \frac{1}{m}$ `np.sum(dZ)`
#
# `jaxnet.logistic` keeps the lecture's `w` (n_x, 1) and scalar `b`. `propagate_loops`
# is the slide's for-loop version in plain Python; `propagate` is the vectorized one.

# %%
# 300 pixels of 50 images: the loops are slow
X_small = jnp.asarray(cats.X_train[:300, :50])
Y_small = jnp.asarray(cats.Y_train[:, :50])
w_b = {"w": jnp.linspace(-0.02, 0.02, 300).reshape(300, 1), "b": jnp.asarray(0.1)}
(J_loops, grads_loops), t_loops = timed(
    lambda: propagate_loops(w_b, X_small, Y_small), 1
)
(J_vec, grads_vec), t_vec = timed(lambda: propagate(w_b, X_small, Y_small))
print(f"loops:      J = {J_loops:.15f}  ({t_loops:.1f} ms)")
print(f"vectorized: J = {float(J_vec):.15f}  ({t_vec:.1f} ms)")
print("dw equal:", np.allclose(grads_loops["w"], grads_vec["w"], rtol=1e-12))
print("db equal:", np.isclose(grads_loops["b"], grads_vec["b"], rtol=1e-12))


# %%
# Exercise 6 of 12, "propagate": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_propagate(w, b, X, Y):
    """return (J, {"dw": dw, "db": db}) of logistic regression, vectorized."""
    ...  # your code


exercises.check("propagate", my_propagate)

# %% [markdown]
# ## 8. The computational graph
#
# > $z = w^T x + b$, $\hat{y} = a = \sigma(z)$, $L(a, y) = -(y \log a + (1 - y)
# > \log(1 - a))$; backward: $dz = a - y$, $dw_j = x_j dz$, $db = dz$.
#
# `jax.make_jaxpr` shows the graph the code builds. Below, the top-level equations of
# jaxnet's hand-written step (`propagate`) and of `jax.value_and_grad` of the cost are
# listed side by side, and each equation whose value **equals** one of the lecture's
# nodes (computed independently, `jaxnet.graph.logistic_nodes`) is labelled with its
# name (`jaxnet.graph` evaluates the equations one at a time). Both graphs compute z and
# a; the hand-written one gets dz = a - y in one `sub`, while autodiff reaches the same
# dz as a sum of two terms (the derivatives of the two logs, `add_any`), and also
# computes sigma'(z) = a (1 - a), which nothing uses (XLA drops such dead code; the
# hand-written step's unused `W^T dz` is dropped too).

# %%
w_b = {"w": jnp.array([[0.5], [-1.0]]), "b": jnp.asarray(0.25)}
X_g = jnp.array([[1.0, 2.0, -1.0], [3.0, 0.5, -3.2]])
Y_g = jnp.array([[1.0, 0.0, 1.0]])
nodes = logistic_nodes(w_b, X_g, Y_g)  # the lecture's nodes, from the formulas


def cost_of(params):
    return model_cost(to_layers(params), X_g, Y_g, ("sigmoid",))


hand = labelled_equations(propagate, w_b, X_g, Y_g, nodes=nodes)
auto = labelled_equations(jax.value_and_grad(cost_of), w_b, nodes=nodes)
print(side_by_side(hand, auto, ("jaxnet.logistic.propagate", "jax.value_and_grad")))

# %% [markdown]
# The full listing, with the sub-graphs (`log_sigmoid`, `softplus`) that the table
# shows as single `jit` equations: `print(jax.make_jaxpr(propagate)(w_b, X_g, Y_g))`.

# %% [markdown]
# ## 9. The derivative rules
#
# > Constant, multiple, power, sum, difference, product, quotient and chain rules;
# > exponential, logarithmic, trigonometric, inverse trigonometric, hyperbolic and
# > inverse hyperbolic functions.
#
# `jaxnet.derivative_rules.RULES` writes each of the lecture's 40 rules as a
# hand-written derivative. Here every one is compared with `jax.grad` inside its domain,
# and the misprinted ones (see `docs/derivative_rules.md`) are shown against the truth.

# %%
worst = {}
for rule in RULES.values():
    x = sample_domain(rule)
    error = jnp.max(jnp.abs(rule.df(x) - jax.vmap(jax.grad(rule.f))(x)))
    group = worst.setdefault(rule.group, [0.0, 0])
    group[0] = max(group[0], float(error / (1 + jnp.max(jnp.abs(rule.df(x))))))
    group[1] += 1
for group, (error, count) in worst.items():
    print(f"{group:<34} {count:>2} rules, worst relative error {error:.1e}")
print(f"\n{len(CORRECTIONS)} misprints in the lecture's table:")
for name in CORRECTIONS:
    rule = RULES[name]
    x0 = jnp.asarray(-2.0 if name in ("arcsec", "arccsc") else 2.0)
    printed = rule.printed_df(x0) if rule.printed_df is not None else jnp.nan
    print(f"- printed: {rule.printed}")
    print(f"  {CORRECTIONS[name]}")
    print(
        f"  at x = {float(x0):g}: printed {float(printed):.4f}, "
        f"jax.grad {float(jax.grad(rule.f)(x0)):.4f}, "
        f"hand-written {float(rule.df(x0)):.4f}"
    )

# %% [markdown]
# ## 10. Gradient descent: logistic regression on the cats
#
# > $w := w - \alpha \frac{dJ(w, b)}{dw}$, $b := b - \alpha \frac{dJ(w, b)}{db}$
#
# The course trains $w = 0, b = 0$ with $\alpha = 0.005$ for 2000 iterations and prints
# "Cost after iteration 0: 0.693147, ..., 1900: 0.140872", train accuracy 99.04 %,
# test accuracy 70 %. In jaxnet logistic regression is the L-layer engine with
# layer_dims [n_x, 1] and a sigmoid output; `fit` runs all 2000 steps as one compiled
# loop (float64 here, to show the course's digits).

# %%
X, Y = jnp.asarray(cats.X_train), jnp.asarray(cats.Y_train)
X_test, Y_test = jnp.asarray(cats.X_test), jnp.asarray(cats.Y_test)
logistic_params = init_params(jax.random.key(0), [12288, 1], "zeros", jnp.float64)
start = time.perf_counter()
trained, costs = fit(
    logistic_params, X, Y, activations=("sigmoid",), num_iterations=2000,
    learning_rate=0.005,
)  # fmt: skip
print(f"2000 iterations in {time.perf_counter() - start:.1f} s")
for i in (0, 100, 1800, 1900):
    print(f"Cost after iteration {i}: {float(costs[i]):.6f}")
train_acc = float(accuracy(trained, X, Y, ("sigmoid",)))
test_acc = float(accuracy(trained, X_test, Y_test, ("sigmoid",)))
print(f"train accuracy: {100 * train_acc:.2f} %, test accuracy: {100 * test_acc:.2f} %")

# %% [markdown]
# ## 11. The shallow network
#
# > $z^{[1]} = W^{[1]} a^{[0]} + b^{[1]} \rightarrow a^{[1]} = \sigma(z^{[1]})$;
# > $dZ^{[2]} = A^{[2]} - Y$, $dZ^{[1]} = W^{[2]T} dZ^{[2]} * g^{[1]'}(Z^{[1]})$,
# > $dW^{[l]} = \frac{1}{m} dZ^{[l]} A^{[l-1]T}$, $db^{[l]} = \frac{1}{m}$ `sum(dZ[l])`
# >
# > $W^{[l]}$ = `np.random.randn(n[l], n[l-1]) * 0.01`,
# > $b^{[l]}$ = `np.zeros((n[l], 1))`
#
# One hidden layer of 4 tanh units on the course's planar "flower" (two classes, not
# linearly separable). The course trains 10,000 iterations at $\alpha = 1.2$; 4000 here
# (float32), which already reaches ~90 %.

# %%
X_f, Y_f = planar_flower(jax.random.key(0), 400)
shallow = init_shallow(jax.random.key(1), n_x=2, n_h=4)
acts = shallow_activations("tanh")
print("shapes:", [(p["W"].shape, p["b"].shape) for p in shallow], "activations:", acts)
shallow, costs = fit(
    shallow, X_f, Y_f, activations=acts, num_iterations=4000, learning_rate=1.2
)
print(f"cost {float(costs[0]):.4f} -> {float(costs[-1]):.4f}")
print(f"train accuracy: {100 * float(accuracy(shallow, X_f, Y_f, acts)):.1f} %")

grid = jnp.stack(jnp.meshgrid(jnp.linspace(-4, 4, 200), jnp.linspace(-4, 4, 200)))
region = predict(shallow, grid.reshape(2, -1).astype(jnp.float32), acts)
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.contourf(grid[0], grid[1], region.reshape(200, 200), alpha=0.3, cmap="coolwarm")
ax.scatter(X_f[0], X_f[1], c=Y_f[0], s=6, cmap="coolwarm")
ax.set_title("decision boundary, 4 tanh units", fontsize=9)
plt.show()


# %%
# Exercise 7 of 12, "linear_backward": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_linear_backward(dZ, cache):
    """dW = (1/m) dZ A_prev^T, db = (1/m) sum(dZ), dA_prev = W^T dZ; return (dA_prev,
    {"W": dW, "b": db}).
    """
    ...  # your code


exercises.check("linear_backward", my_linear_backward)

# %% [markdown]
# ## 12. The L-layer network from forward and backward blocks
#
# > $Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}$, $A^{[l]} = g^{[l]}(Z^{[l]})$, shapes
# > $(n^{[l]}, m) = (n^{[l]}, n^{[l-1]}) (n^{[l-1]}, m) + (n^{[l]}, 1)$ broadcast;
# > backward blocks give $dA^{[l-1]}$, $dW^{[l]}$ $(n^{[l]}, n^{[l-1]})$,
# > $db^{[l]}$ $(n^{[l]}, 1)$.
#
# The blocks, one layer at a time, on 5 examples of a [4, 3, 2, 1] network:

# %%
key = jax.random.key(2)
params = init_params(key, [4, 3, 2, 1], method="he", dtype=jnp.float64)
X_b = jax.random.normal(jax.random.key(3), (4, 5), jnp.float64)
Y_b = jnp.array([[1.0, 0.0, 0.0, 1.0, 1.0]])
activations = ("relu", "relu", "sigmoid")
A, caches = X_b, []
for l, (layer, g) in enumerate(zip(params, activations, strict=True), start=1):
    A, cache = linear_activation_forward(A, layer["W"], layer["b"], g)
    caches.append(cache)
    print(
        f"layer {l}: W{layer['W'].shape} A_prev{cache.A_prev.shape} -> "
        f"Z, A {A.shape} ({g})"
    )
dA = -(Y_b / A) + (1 - Y_b) / (1 - A)  # dL/dA[L], the lecture's form
grads = [None] * len(params)
for l in reversed(range(len(params))):
    dA, grads[l] = linear_activation_backward(dA, caches[l], activations[l])
    print(f"layer {l + 1}: dW{grads[l]['W'].shape} db{grads[l]['b'].shape}")
reference = jax.grad(model_cost)(params, X_b, Y_b, activations)
same = all(
    np.allclose(g[k], r[k], rtol=1e-10) for g, r in zip(grads, reference, strict=True)
    for k in ("W", "b")
)  # fmt: skip
print("blocks' gradient equals jax.grad:", same)


# %%
# Exercise 8 of 12, "linear_activation_backward": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_linear_activation_backward(dA, cache, activation):
    """dZ = dA * g'(Z), then the linear backward; g' is
    jaxnet.ACTIVATIONS[activation].derivative (or your own from sections 2-3).
    """
    ...  # your code


exercises.check("linear_activation_backward", my_linear_activation_backward)

# %% [markdown]
# The course's deep network [12288, 20, 7, 5, 1] (ReLU, ReLU, ReLU, sigmoid),
# $W = $ `randn / sqrt(n[l-1])` with `np.random.seed(1)`, $\alpha = 0.0075$, 2500
# iterations: the course prints cost 0.771749 at iteration 0, 0.092878 at 2400, train
# accuracy 0.9856 and test accuracy 0.8. Reproduced to the printed digits in float64:

# %%
deep_acts = ("relu", "relu", "relu", "sigmoid")
deep = course_init_params([12288, 20, 7, 5, 1], seed=1, scale="sqrt")
start = time.perf_counter()
deep, costs = fit(
    deep, X, Y, activations=deep_acts, num_iterations=2500, learning_rate=0.0075
)
print(f"2500 iterations in {time.perf_counter() - start:.1f} s")
for i in (0, 100, 2400):
    print(f"Cost after iteration {i}: {float(costs[i]):.6f}")
print("train accuracy:", float(accuracy(deep, X, Y, deep_acts)))
print("test accuracy:", float(accuracy(deep, X_test, Y_test, deep_acts)))


# %%
# Exercise 9 of 12, "model_backward": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_model_backward(AL, Y, caches, activations):
    """the whole backward pass, dZ[L] = AL - Y down to layer 1; return [{"W": dW, "b":
    db}, ...], layer 1 first.
    """
    ...  # your code


exercises.check("model_backward", my_model_backward)

# %% [markdown]
# ## 13. The gradient check
#
# The lecture's backward formulas, written by hand, against `jax.grad` (both exact up to
# rounding in float64, tolerance 1e-10) and centered finite differences (tolerance
# 1e-6), leaf by leaf, on the network of section 12 as initialized (He, so b = 0)
# with the L2 term (lambd = 0.1).
#
# With b = 0 an example whose layer-1 ReLUs are all off reaches layer 2 with
# Z = b = 0 exactly, on ReLU's kink, where a centred difference averages two slopes
# that no correct rule gives. The checker finds such coordinates from the one-sided
# differences and accepts any slope between the two there (relu'(0) = 0, as the
# hand-written rule and `jax.grad` both take); the `kinks` column counts them.

# %%
result = check_gradients(
    lambda p: model_cost(p, X_b, Y_b, activations, lambd=0.1),
    params,
    lambda p: model_value_and_grads(p, X_b, Y_b, activations, lambd=0.1)[1],
)
print(result)


# %%
# Exercise 10 of 12, "l2_gradient": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_l2_gradient(dW, W, lambd, m):
    """the L2 term of the gradient: J += lambd / (2m) ||W||^2, so dW += ?"""
    ...  # your code


exercises.check("l2_gradient", my_l2_gradient)

# %% [markdown]
# ## 14. Parameters and hyperparameters
#
# > Parameters: $W^{[l]}, b^{[l]}$. Hyperparameters: $\alpha$, L, $n^{[l]}$, $g^{[l]}$,
# > number of iterations, momentum, minibatch size, regularization parameters,
# > optimization parameters, dropout parameters, ...
#
# In jaxnet each numeric hyperparameter is declared, defaulted and validated in one
# table; the update rules are a table of optax transformations.

# %%
for name, default in jaxnet.hyperparams.OPTION_DEFAULTS.items():
    rule = HYPERPARAMETERS.get(name)  # the numeric ones have a rule
    print(f"{name:<14} default {default!s:<7} {rule.expected if rule else ''}")
print("optimizers:", ", ".join(jaxnet.OPTIMIZERS))
print("hidden activations:", ", ".join(jaxnet.ACTIVATIONS))
print("layer sizes of the deep model:", jaxnet.layer_dims_of(deep))
try:
    fit(
        logistic_params,
        X,
        Y,
        activations=("sigmoid",),
        num_iterations=1,
        learning_rate=0,
    )
except ValueError as error:
    print("learning_rate=0 ->", error)


# %%
# Exercise 11 of 12, "dropout_backward": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_dropout_backward(dA, D, keep_prob):
    """backward of inverted dropout A = A * D / keep_prob (D the 0/1 mask)."""
    ...  # your code


exercises.check("dropout_backward", my_dropout_backward)

# %% [markdown]
# ## 15. "repeat ... until J < epsilon"
#
# > repeat: ... $w_j$ -= $\alpha \cdot dJw_j$; $b$ -= $\alpha \cdot dJb$ **until
# > $J < \epsilon$**
#
# `fit_until` is that loop, compiled as one `lax.while_loop`: each pass computes J; if
# J < epsilon it stops before updating, else it updates. A `tol` also stops it once J
# improves by less than tol per iteration; `max_iterations` bounds it.

# %%
run = fit_until(
    logistic_params, X, Y, activations=("sigmoid",), epsilon=0.3,
    max_iterations=5000, learning_rate=0.005,
)  # fmt: skip
J_end = float(model_cost(run.params, X, Y, ("sigmoid",)))
print(f"stopped after {run.iterations} iterations ({run.reason}):")
print(f"  J before the last update = {float(run.costs[run.iterations - 1]):.6f} >= 0.3")
print(f"  J at the returned params = {J_end:.6f} < 0.3")
# tol: stop once J falls by less than 1e-4 in one iteration. With alpha = 0.005 J rises
# in the first iterations (it oscillates before it settles), which counts as "not
# improving"; alpha = 0.001 lowers J smoothly.
run = fit_until(
    logistic_params, X, Y, activations=("sigmoid",), epsilon=0.0,
    max_iterations=5000, learning_rate=0.001, tol=1e-4,
)  # fmt: skip
drop = float(run.costs[run.iterations - 2] - run.costs[run.iterations - 1])
print(f"alpha = 0.001, tol = 1e-4: {run.iterations} iterations ({run.reason}),")
print(f"  the last drops in J: {drop:.2e} (>= tol), then < tol")


# %%
# Exercise 12 of 12, "update_parameters": fill in the body, run the cell.
# exercises.describe(name) says more; exercises.solution(name) is an answer.
def my_update_parameters(params, grads, learning_rate):
    """one gradient-descent step, W := W - alpha dW and b := b - alpha db, for every
    layer of params (a list of {"W", "b"}).
    """
    ...  # your code


exercises.check("update_parameters", my_update_parameters)

# %% [markdown]
# ## 16. Idea, code, experiment: a vmapped sweep
#
# > Deep Learning solutions are usually developed in an iterative and empirical process:
# > **Idea** - **Code** - **Experiment**.
#
# The course's learning-rate experiment (logistic regression, 1500 iterations, $\alpha$
# = 0.01, 0.001, 0.0001): `sweep` trains the three models at once, `jax.vmap` over the
# whole compiled run. Course: train 99.52 / 88.99 / 68.42 %, test 68 / 64 / 36 %.

# %%
learning_rates = [0.01, 0.001, 0.0001]
swept = sweep(
    logistic_params, X, Y, activations=("sigmoid",), num_iterations=1500,
    learning_rates=learning_rates, X_test=X_test, Y_test=Y_test,
)  # fmt: skip
fig, ax = plt.subplots(figsize=(5, 3.2))
for lr, c, train_acc, test_acc in zip(
    learning_rates, swept.costs, swept.train_accuracy, swept.test_accuracy, strict=True
):
    print(
        f"alpha = {lr:<7} train {100 * train_acc:6.2f} %  test {100 * test_acc:5.1f} %"
    )
    ax.plot(c, label=f"alpha = {lr}")
ax.set(xlabel="iteration", ylabel="cost J")
ax.legend()
plt.show()

# %% [markdown]
# ## 16b. Speed by algebra: inputs much wider than the example count
#
# The cats have $n_x = 12288$ inputs and only $m = 209$ examples, so nearly every
# FLOP of a step is in $Z^{[1]} = W^{[1]} X$ and $dW^{[1]} = \frac{1}{m} dZ^{[1]} X^T$.
# Every gradient-descent update adds a multiple of $X^T$ to $W^{[1]}$, so at every
# iteration
#
# $W^{[1]} = s\, W^{[1]}_0 + C X^T$, and
# $Z^{[1]} = s\,(W^{[1]}_0 X) + C\,G + b^{[1]}$ with $G = X^T X$ of shape $(m, m)$,
# computed once.
#
# Training the $(n^{[1]}, m)$ coefficients $C$ instead of $W^{[1]}$ costs
# $O(n^{[1]} m^2)$ per step instead of $O(n^{[1]} n_x m)$ and gives the same numbers
# (exact in exact arithmetic for gradient descent, momentum and Nesterov, whose updates
# are linear in the gradients; not for Adam). jaxnet picks it by itself
# (`first_layer="auto"`); here both forms train the deep model for 300 iterations.

# %%
deep_dims = [12288, 20, 7, 5, 1]
deep_acts = ("relu", "relu", "relu", "sigmoid")
deep0 = init_params(jax.random.key(1), deep_dims, "lecun", jnp.float64)
runs = {}
for form in ("dense", "gram"):
    fit(deep0, X, Y, activations=deep_acts, num_iterations=300, first_layer=form)
    start = time.perf_counter()  # the second call reuses the compiled program
    runs[form] = fit(
        deep0, X, Y, activations=deep_acts, num_iterations=300, first_layer=form
    )
    print(f"{form:>5}: 300 iterations in {time.perf_counter() - start:.3f} s")
difference = max(
    float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
    for a, b in zip(
        jax.tree.leaves(runs["dense"][0]), jax.tree.leaves(runs["gram"][0]), strict=True
    )
)
print(f"largest difference in the trained parameters: {difference:.1e} (relative)")
print("first-layer FLOPs per step:", jaxnet.wide.first_layer_flops(12288, 20, 209))

# %% [markdown]
# `python -m experiments.activations` runs the lecture's other comparison, "which
# activation?", the same way (docs/activations.md).
#
# ## 17. Prediction: regression with a linear output
#
# > We use deep neural networks for ... **Prediction** (e.g. price, temperature, size,
# > distance). Structured data are usually well-described by the attributes.
#
# A linear output $A^{[L]} = Z^{[L]}$ with the lecture's L2 loss averaged,
# $J = \frac{1}{2m}\sum_i (a^{(i)} - y^{(i)})^2$, keeps the backward's first line
# $dZ^{[L]} = A^{[L]} - Y$. Auto MPG: predict miles per gallon from 9 standardized
# attributes; the loader says what it did with the missing values. Baseline: ordinary
# least squares in closed form. (`python -m experiments.regression` trains 5 seeds;
# 3 here.)

# %%
mpg = load_autompg()
print("; ".join(mpg.report["notes"]))
print("features:", ", ".join(mpg.feature_names))
X_r, Y_r = jnp.asarray(mpg.X_train, jnp.float32), jnp.asarray(mpg.Y_train, jnp.float32)
X_rt, Y_rt = jnp.asarray(mpg.X_test, jnp.float32), jnp.asarray(mpg.Y_test, jnp.float32)
print("X_train", X_r.shape, "Y_train", Y_r.shape, "X_test", X_rt.shape)

w, b = least_squares(mpg.X_train, mpg.Y_train)
ls_mae = float(mean_absolute_error(predict_linear(w, b, mpg.X_test), mpg.Y_test))

reg_acts = ("relu", "relu", "linear")
keys = jax.random.split(jax.random.key(0), 3)
nets = init_stacked_params(keys, [9, 32, 16, 1], method="he")
nets[-1]["b"] = nets[-1]["b"] + jnp.mean(Y_r)  # start from the mean prediction
reg = sweep(
    nets, X_r, Y_r, activations=reg_acts, num_iterations=2000, learning_rates=1e-3,
    lambds=10.0, optimizer="adam", keys=keys,
)  # fmt: skip
values = jax.vmap(predict, in_axes=(0, None, None))(reg.params, X_rt, reg_acts)
print("predict returns values:", values.shape[1:], "e.g.", values[0, 0, :4])
maes = np.array([float(mean_absolute_error(v, Y_rt)) for v in values])
print(f"held-out MAE, network: {maes.mean():.2f} +- {maes.std():.2f} mpg (3 seeds)")
print(f"held-out MAE, least squares: {ls_mae:.2f} mpg")
try:
    accuracy(jax.tree.map(lambda p: p[0], reg.params), X_rt, Y_rt, reg_acts)
except ValueError as error:
    print("accuracy on a linear output ->", error)

# %%
print(f"notebook ran in {time.perf_counter() - NOTEBOOK_START:.0f} s")
