"""Does the gradient checker cry wolf at ReLU kinks, and does it still catch bugs?

Question: on random narrow ReLU networks with the library's init (b = 0, so dead
units give exact zeros one layer up and Z = 0 exactly), how often does
``jaxnet.check_gradients`` report FAILED for the correct hand-written gradient,
with the plain centred difference (``kink_tol=inf``, the old checker) and with
the kink-aware one (the default)? And how often does its finite-difference leg
alone catch four planted bugs:

    missing 1/m         every gradient m times too large
    transposed dW[2]    the square layer 2's dW returned transposed
    relu'(z<0) = 1      relu' = 1 on both sides of 0 (0 only at z = 0)
    leaky slope         leaky_relu networks whose derivative uses slope 0.1
                        where the forward uses 0.01

Expected outcome: the old checker fails many correct gradients (every network
with a coordinate at a kink), the new one none, and both catch every bug.
"At kinks" counts the networks where a bug changes a coordinate that sits at a
kink, and whether the checker catches it there alone.

    python -m benchmarks.gradcheck_kinks [--networks 200]

Float64 on the CPU; about a second per network on an idle laptop core.
"""

import argparse
import contextlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.activations import ACTIVATIONS, Activation, leaky_relu, relu
from jaxnet.deep import model_cost, model_value_and_grads
from jaxnet.gradcheck import (
    DEFAULT_FD_TOL,
    check_gradients,
    kink_reference,
    one_sided_differences,
    relative_difference,
)
from jaxnet.params import init_params

M = 8
EPS = 1e-6  # the checker's default step
KINK_TOL = 100 * EPS  # and its default kink_tol
SHAPES = [(3, 2), (3, 3), (4, 2), (4, 3), (4, 4)]  # (n_x, k): dims [n_x, k, k, 1]
BUGS = ("missing 1/m", "transposed dW[2]", "relu'(z<0) = 1", "leaky slope")


def _wrong_relu_derivative(z):
    return jnp.where(z == 0, 0.0, 1.0).astype(z.dtype)


def _wrong_leaky_derivative(z):
    return jnp.where(z > 0, 1.0, 0.1).astype(z.dtype)


@contextlib.contextmanager
def planted_activations():
    """Two wrong activations in the table for the duration (then removed)."""
    ACTIVATIONS["relu_bug"] = Activation(relu, _wrong_relu_derivative)
    ACTIVATIONS["leaky_bug"] = Activation(leaky_relu, _wrong_leaky_derivative)
    try:
        yield
    finally:
        del ACTIVATIONS["relu_bug"], ACTIVATIONS["leaky_bug"]


class Problem:
    """One shape and hidden activation: its data, cost and gradient functions.

    Built once per shape, so every network of the shape reuses the compiled
    cost (and the checker's compiled difference program).
    """

    def __init__(self, n_x, k, hidden, seed):
        rng = np.random.default_rng(seed)
        self.dims = [n_x, k, k, 1]
        self.X = jnp.asarray(rng.normal(size=(n_x, M)))
        self.Y = jnp.asarray((rng.uniform(size=(1, M)) > 0.5) * 1.0)
        acts = (hidden, hidden, "sigmoid")
        bug = {"relu": "relu_bug", "leaky_relu": "leaky_bug"}[hidden]
        bug_acts = (bug, bug, "sigmoid")
        X, Y = self.X, self.Y
        self.f = jax.jit(lambda p: model_cost(p, X, Y, acts))
        self.grads = jax.jit(lambda p: model_value_and_grads(p, X, Y, acts)[1])
        self.bug_grads = jax.jit(lambda p: model_value_and_grads(p, X, Y, bug_acts)[1])


def wrong_gradients(problem, params, grads, hidden):
    """The planted bugs that apply to this hidden activation."""
    out = {
        "missing 1/m": jax.tree.map(lambda g: g * M, grads),
        "transposed dW[2]": [
            grads[0], {"W": grads[1]["W"].T, "b": grads[1]["b"]}, grads[2]
        ],
    }  # fmt: skip
    name = "relu'(z<0) = 1" if hidden == "relu" else "leaky slope"
    out[name] = problem.bug_grads(params)
    return out


def fd_passes(g, sides, kink_tol) -> tuple[bool, bool]:
    """The finite-difference leg's verdict on gradient g, as ``check_gradients``
    reaches it (every leaf within fd_tol of its reference), from differences
    computed once; and whether it passes on the kink coordinates alone."""
    f0, up, down = sides
    passes = at_kinks = True
    leaves = zip(
        jax.tree.leaves(g), jax.tree.leaves(up), jax.tree.leaves(down), strict=True
    )
    for g_leaf, u, d in leaves:
        reference, at_kink = kink_reference(g_leaf, u, d, f0, EPS, kink_tol)
        g_leaf = np.asarray(g_leaf)
        passes &= relative_difference(g_leaf, reference) <= DEFAULT_FD_TOL
        if at_kink.any():
            error = relative_difference(g_leaf[at_kink], reference[at_kink])
            at_kinks &= error <= DEFAULT_FD_TOL
    return passes, at_kinks


def _no_effect(good, bad) -> bool:
    """The bug leaves this gradient unchanged (to fd_tol in every leaf)."""
    leaves = zip(jax.tree.leaves(good), jax.tree.leaves(bad), strict=True)
    return all(relative_difference(b, g) <= DEFAULT_FD_TOL for g, b in leaves)


def touches_kinks(good, bad, sides) -> bool:
    """Whether the bug changes a coordinate that is at a kink."""
    f0, up, down = sides
    leaves = zip(
        jax.tree.leaves(good), jax.tree.leaves(bad), jax.tree.leaves(up),
        jax.tree.leaves(down), strict=True,
    )  # fmt: skip
    for g, b, u, d in leaves:
        _, at_kink = kink_reference(g, u, d, f0, EPS, KINK_TOL)
        g, b = np.asarray(g)[at_kink], np.asarray(b)[at_kink]
        if at_kink.any() and relative_difference(b, g) > DEFAULT_FD_TOL:
            return True
    return False


def run(num_networks: int, seed: int = 0, init: str = "he") -> dict:
    rng = np.random.default_rng(seed)
    problems = {}
    stats = {
        "networks": 0, "init": init, "with_kinks": 0, "kink_coordinates": 0,
        "correct_failed_old": 0, "correct_failed_new": 0,
        "bugs": {bug: dict(tried=0, no_effect=0, caught_old=0, caught_new=0,
                           at_kinks=0, caught_at_kinks=0) for bug in BUGS},
    }  # fmt: skip
    with planted_activations():
        for i in range(num_networks):
            hidden = "relu" if i % 4 else "leaky_relu"  # 1 in 4 leaky
            n_x, k = SHAPES[rng.integers(len(SHAPES))]
            key = (n_x, k, hidden)
            if key not in problems:
                problems[key] = Problem(n_x, k, hidden, seed + len(problems))
            problem = problems[key]
            key_i = jax.random.key(seed * 100003 + i)
            params = init_params(key_i, problem.dims, init, jnp.float64)
            grads = problem.grads(params)
            new = check_gradients(problem.f, params, grads)  # the checker itself
            sides = one_sided_differences(problem.f, params, EPS)
            ad_ok = all(leaf.autodiff_error <= new.autodiff_tol for leaf in new.leaves)
            new_fd, _ = fd_passes(grads, sides, KINK_TOL)
            assert new_fd == all(leaf.fd_error <= new.fd_tol for leaf in new.leaves)
            old_fd, _ = fd_passes(grads, sides, float("inf"))
            stats["networks"] += 1
            stats["with_kinks"] += new.kinks > 0
            stats["kink_coordinates"] += new.kinks
            stats["correct_failed_old"] += not (ad_ok and old_fd)
            stats["correct_failed_new"] += not new.passed
            for bug, bad in wrong_gradients(problem, params, grads, hidden).items():
                row = stats["bugs"][bug]
                if _no_effect(grads, bad):  # e.g. dW[2] = 0 (dead units): no bug
                    row["no_effect"] += 1
                    continue
                row["tried"] += 1
                passes, passes_at_kinks = fd_passes(bad, sides, KINK_TOL)
                row["caught_new"] += not passes
                row["caught_old"] += not fd_passes(bad, sides, float("inf"))[0]
                if touches_kinks(grads, bad, sides):
                    row["at_kinks"] += 1
                    row["caught_at_kinks"] += not passes_at_kinks
    return stats


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default="he", help="jaxnet.init_params method")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    stats = run(args.networks, args.seed, args.init)
    n = stats["networks"]
    print(
        f"{n} networks [n_x, k, k, 1], {args.init} init, m = {M}, b = 0 (3 in 4 "
        f"relu, 1 in 4 leaky_relu); {stats['with_kinks']} had coordinates at kinks "
        f"({stats['kink_coordinates']} in all)"
    )
    old, new = stats["correct_failed_old"], stats["correct_failed_new"]
    print(f"correct gradients reported FAILED: old (centred) {old}/{n}, new {new}/{n}")
    print("planted bugs caught by the finite-difference leg alone:")
    for bug, row in stats["bugs"].items():
        print(
            f"  {bug:<18} old {row['caught_old']}/{row['tried']}, kink-aware "
            f"{row['caught_new']}/{row['tried']}; touching kinks "
            f"{row['at_kinks']}, caught there alone {row['caught_at_kinks']} "
            f"(no effect in {row['no_effect']} more)"
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    return stats


if __name__ == "__main__":
    main()
