"""The computational graph that code builds, with the lecture's nodes named.

``jax.make_jaxpr`` lists the equations (primitive operations) a function
performs. ``labelled_equations`` evaluates a function's top-level equations one
at a time on concrete inputs and labels each equation whose value equals one
of the lecture's nodes (z = w^T x + b, a = sigma(z), dz = a - y, ...), so the
hand-written backward step and ``jax.value_and_grad`` can be read side by side
(``side_by_side``). ``logistic_nodes`` computes the lecture's nodes of one
logistic-regression step directly from the formulas.

Values are compared to rtol 1e-12, atol 1e-15 (float64 inputs); equations
inside a nested ``jit`` (``log_sigmoid``, ``softplus``) are shown as one row.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

Row = tuple[str, str]  # (equation "out:shape = primitive ins", node name or "")


def logistic_nodes(params: Mapping[str, ArrayLike], X: ArrayLike, Y: ArrayLike):
    """The lecture's nodes of one logistic-regression step, by the formulas.

    Args:
        params: {"w": (n_x, 1), "b": scalar}.
        X: inputs, (n_x, m). Y: labels, (1, m).

    Returns:
        dict name -> value: z = w^T x + b, a = sigma(z), L(a, y) per example,
        J = (1/m) sum L, dz = a - y, dw = (1/m) x dz^T, db = (1/m) sum dz, and
        the intermediate values the graphs reach on the way (m J, m dw, ...).
    """
    w, b = jnp.asarray(params["w"]), jnp.asarray(params["b"])
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    m = X.shape[1]
    z = w.T @ X + b
    a = 1 / (1 + jnp.exp(-z))
    L = -(Y * jnp.log(a) + (1 - Y) * jnp.log(1 - a))
    dz = a - Y
    return {
        "z = w^T x + b": z,
        "w^T x": w.T @ X,
        "a = sigma(z)": a,
        "1 - y": 1 - Y,
        "L(a, y), per example": L,
        "J = (1/m) sum L": jnp.mean(L),
        "m J = sum L": jnp.sum(L),
        "dz = a - y": dz,
        "dz / m": dz / m,
        "dw = (1/m) x dz^T": X @ dz.T / m,
        "m dw = x dz^T": X @ dz.T,
        "db = (1/m) sum dz": jnp.mean(dz),
        "m db = sum dz": jnp.sum(dz),
        "sigma'(z) = a (1 - a)": a * (1 - a),
        "w dz (unused)": w @ dz,
        "x": X,
        "y": Y,
    }


def _short_names() -> Iterator[str]:
    """v0, v1, ...: jax prints a, b, c, ..., which would clash with the
    lecture's a, b, w, x, y, z."""
    i = 0
    while True:
        yield f"v{i}"
        i += 1


def _node_of(value: Any, nodes: Mapping[str, ArrayLike]) -> str:
    """The first node whose value equals ``value`` ("" if none)."""
    flat = np.ravel(np.asarray(value))
    for name, known in nodes.items():
        known_flat = np.ravel(np.asarray(known))
        if known_flat.size == flat.size and np.allclose(
            known_flat, flat, rtol=1e-12, atol=1e-15
        ):
            return name
    return ""


def labelled_equations(
    fun: Callable, *args: Any, nodes: Mapping[str, ArrayLike]
) -> tuple[list[str], list[Row]]:
    """Evaluate fun's jaxpr one top-level equation at a time; name the nodes.

    Args:
        fun: the function whose graph is shown.
        *args: its concrete arguments (pytrees of arrays).
        nodes: name -> value of the lecture's nodes (``logistic_nodes``).

    Returns:
        The inputs ("v0 = x", ...) and one row per equation: the equation as
        "out:shape = primitive ins" and the node whose value it computes.
    """
    closed = jax.make_jaxpr(fun)(*args)
    env = dict(zip(closed.jaxpr.constvars, closed.consts, strict=True))
    env.update(zip(closed.jaxpr.invars, jax.tree.leaves(args), strict=True))
    names: dict[Any, str] = {}
    fresh = _short_names()

    def show(v) -> str:
        if hasattr(v, "val"):  # a literal constant
            return f"{v.val}"
        if type(v).__name__ == "DropVar":
            return "_"
        if v not in names:
            names[v] = next(fresh)
        return names[v]

    leaves = jax.tree_util.tree_flatten_with_path(args)[0]
    inputs = [
        f"{show(v)} = {_node_of(c, nodes)} (constant)"
        for v, c in zip(closed.jaxpr.constvars, closed.consts, strict=True)
    ]
    inputs += [
        f"{show(v)} = {_node_of(x, nodes) or getattr(path[-1], 'key', '?')}"
        for v, (path, x) in zip(closed.jaxpr.invars, leaves, strict=True)
    ]
    rows = []
    for eqn in closed.jaxpr.eqns:
        ins = [v.val if hasattr(v, "val") else env[v] for v in eqn.invars]
        bound = eqn.primitive.get_bind_params(eqn.params)  # (subfuns, params)
        subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
        outs = eqn.primitive.bind(*subfuns, *ins, **params)
        outs = outs if eqn.primitive.multiple_results else [outs]
        env.update(zip(eqn.outvars, outs, strict=True))
        shape = "x".join(map(str, eqn.outvars[0].aval.shape)) or "()"
        results = " ".join(show(v) for v in eqn.outvars)
        operands = " ".join(show(v) for v in eqn.invars)
        text = f"{results}:{shape} = {eqn.primitive.name} {operands}"
        rows.append((text, _node_of(outs[0], nodes)))
    return inputs, rows


def side_by_side(
    left: tuple[list[str], list[Row]],
    right: tuple[list[str], list[Row]],
    titles: tuple[str, str] = ("left", "right"),
    width: int = 34,
) -> str:
    """Two ``labelled_equations`` listings as one table (text, for print).

    Each column shows an equation (cut to ``width`` - 1 characters) and the
    lecture's node it computes; the inputs of both are listed above.
    """
    lines = [
        f"inputs of {titles[0]}: {', '.join(left[0])}",
        f"inputs of {titles[1]}: {', '.join(right[0])}",
        "",
        f"{titles[0]:<{width}}{'node':<22}| {titles[1]}",
    ]
    lrows, rrows = left[1], right[1]
    for i in range(max(len(lrows), len(rrows))):
        lt, ln = lrows[i] if i < len(lrows) else ("", "")
        rt, rn = rrows[i] if i < len(rrows) else ("", "")
        lines.append(
            f"{lt[: width - 1]:<{width}}{ln[:21]:<22}| {rt[: width - 1]:<{width}}{rn}"
        )
    return "\n".join(line.rstrip() for line in lines)
