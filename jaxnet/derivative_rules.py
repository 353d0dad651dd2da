"""The lecture's table of derivative rules, each as a hand-written derivative.

Every row of `RULES` is a `Rule`: the function f, its hand-written derivative df
(never jax.grad), the formula as the lecture prints it, and the open intervals
where f is differentiable (the tests sample there and compare df with
jax.vmap(jax.grad(f))). The basic rules (constant multiple, sum, difference,
product, quotient, chain) are higher-order functions over `Differentiable` pairs,
applied in the table to example functions; the g(x) forms of the exponential and
logarithmic rules use the example inner function g(x) = 1 + x^2.

Branches of the inverse functions are the principal values used by numerical
libraries: arccot x = pi/2 - arctan x (in (0, pi)), arcsec x = arccos(1/x),
arccsc x = arcsin(1/x), arccsch x = arcsinh(1/x), arcsech x = arccosh(1/x),
arccoth x = arctanh(1/x).

Where the printed formula is wrong, the row carries a ``correction`` note and
``printed_df``, the printed formula taken literally, so a test can show
numerically that it disagrees with jax.grad (see docs/derivative_rules.md).

One table in one file (over the ~200-line guide) so that the 40 rules read as the
lecture prints them.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Fn = Callable[[jax.Array], jax.Array]
Interval = tuple[float, float]


class Differentiable(NamedTuple):
    """A scalar function and its hand-written derivative, both elementwise."""

    f: Fn
    df: Fn


class Rule(NamedTuple):
    """One row of the lecture's table.

    Attributes:
        name: short key, e.g. "quotient" or "arcsec".
        group: the lecture's heading, e.g. "Inverse Trigonometric Functions".
        f: the function, elementwise.
        df: its hand-written derivative, elementwise.
        printed: the lecture's formula as printed, in plain text.
        domain: open intervals inside f's domain, where the rule is checked.
        correction: what is wrong with the printed formula and the right one;
            None where the printed formula is right.
        printed_df: the printed formula taken literally, where it is wrong.
    """

    name: str
    group: str
    f: Fn
    df: Fn
    printed: str
    domain: tuple[Interval, ...]
    correction: str | None = None
    printed_df: Fn | None = None


# ------------------------------------------------ the basic rules (combinators)


def constant(c: float) -> Differentiable:
    """d/dx(c) = 0."""
    return Differentiable(lambda x: jnp.zeros_like(x) + c, jnp.zeros_like)


def power(n: float) -> Differentiable:
    """d/dx(x^n) = n x^(n-1)."""
    return Differentiable(lambda x: x**n, lambda x: n * x ** (n - 1))


def constant_multiple(c: float, u: Differentiable) -> Differentiable:
    """d/dx[c f(x)] = c f'(x)."""
    return Differentiable(lambda x: c * u.f(x), lambda x: c * u.df(x))


def sum_rule(u: Differentiable, v: Differentiable) -> Differentiable:
    """d/dx[f(x) + g(x)] = f'(x) + g'(x)."""
    return Differentiable(lambda x: u.f(x) + v.f(x), lambda x: u.df(x) + v.df(x))


def difference_rule(u: Differentiable, v: Differentiable) -> Differentiable:
    """d/dx[f(x) - g(x)] = f'(x) - g'(x)."""
    return Differentiable(lambda x: u.f(x) - v.f(x), lambda x: u.df(x) - v.df(x))


def product_rule(u: Differentiable, v: Differentiable) -> Differentiable:
    """d/dx[f(x) g(x)] = f(x) g'(x) + g(x) f'(x)."""
    return Differentiable(
        lambda x: u.f(x) * v.f(x), lambda x: u.f(x) * v.df(x) + v.f(x) * u.df(x)
    )


def quotient_rule(u: Differentiable, v: Differentiable) -> Differentiable:
    """d/dx[f(x) / g(x)] = (g(x) f'(x) - f(x) g'(x)) / g(x)^2."""
    return Differentiable(
        lambda x: u.f(x) / v.f(x),
        lambda x: (v.f(x) * u.df(x) - u.f(x) * v.df(x)) / v.f(x) ** 2,
    )


def chain_rule(outer: Differentiable, inner: Differentiable) -> Differentiable:
    """d/dx f(g(x)) = f'(g(x)) g'(x)."""
    return Differentiable(
        lambda x: outer.f(inner.f(x)), lambda x: outer.df(inner.f(x)) * inner.df(x)
    )


# ------------------------------------------------ example functions

SIN = Differentiable(jnp.sin, jnp.cos)
EXP = Differentiable(jnp.exp, jnp.exp)
G = Differentiable(lambda x: 1.0 + x**2, lambda x: 2.0 * x)  # the inner g(x)
A = 2.0  # the base a of a^x and log_a x
LN_A = float(jnp.log(A))


def _sec(x):
    return 1.0 / jnp.cos(x)


def _csc(x):
    return 1.0 / jnp.sin(x)


def _sech(x):
    return 1.0 / jnp.cosh(x)


def _csch(x):
    return 1.0 / jnp.sinh(x)


# ------------------------------------------------ the table

BASIC, EXPO, LOG = "Basic Derivatives Rules", "Exponential", "Logarithmic"
TRIG, ATRIG = "Trigonometric", "Inverse Trigonometric"
HYP, AHYP = "Hyperbolic", "Inverse Hyperbolic"
WIDE, POS = ((-3.0, 3.0),), ((0.1, 4.0),)
NONZERO = ((-3.0, -0.1), (0.1, 3.0))
OPEN_UNIT = ((-0.95, 0.95),)
OUTSIDE_UNIT = ((-4.0, -1.05), (1.05, 4.0))


def _rule(name, group, u: Differentiable, printed, domain, **extra) -> Rule:
    return Rule(name, group, u.f, u.df, printed, domain, **extra)


_D = Differentiable
_ROWS = [
    # Basic rules: combinators applied to example functions.
    _rule("constant", BASIC, constant(5.0), "d/dx(c) = 0", WIDE),
    _rule(
        "constant_multiple",
        BASIC,
        constant_multiple(3.0, SIN),
        "d/dx[c f(x)] = c f'(x)",
        WIDE,
    ),
    _rule("power", BASIC, power(3), "d/dx(x^n) = n x^(n-1)", WIDE),
    _rule("sum", BASIC, sum_rule(SIN, EXP), "d/dx[f + g] = f' + g'", WIDE),
    _rule(
        "difference", BASIC, difference_rule(SIN, EXP), "d/dx[f - g] = f' - g'", WIDE
    ),
    _rule("product", BASIC, product_rule(SIN, EXP), "d/dx[f g] = f g' + g f'", WIDE),
    _rule(
        "quotient",
        BASIC,
        quotient_rule(SIN, G),
        "d/dx[f / g] = (g f' - f g') / g^2",
        WIDE,
    ),
    _rule("chain", BASIC, chain_rule(SIN, G), "d/dx f(g(x)) = f'(g(x)) g'(x)", WIDE),
    # Exponential functions.
    _rule("exp", EXPO, EXP, "d/dx(e^x) = e^x", WIDE),
    _rule(
        "a_pow_x",
        EXPO,
        _D(lambda x: A**x, lambda x: A**x * LN_A),
        "d/dx(a^x) = a^x ln a",
        WIDE,
    ),
    _rule(
        "exp_of_g",
        EXPO,
        _D(lambda x: jnp.exp(G.f(x)), lambda x: jnp.exp(G.f(x)) * G.df(x)),
        "d/dx(e^g(x)) = e^g(x) g'(x)",
        ((-1.5, 1.5),),
    ),
    _rule(
        "a_pow_g",
        EXPO,
        _D(lambda x: A ** G.f(x), lambda x: LN_A * A ** G.f(x) * G.df(x)),
        "d/dx(a^g(x)) = ln(a) a^g(x) g'(x)",
        WIDE,
    ),
    # Logarithmic functions.
    _rule("ln", LOG, _D(jnp.log, lambda x: 1.0 / x), "d/dx(ln x) = 1/x, x > 0", POS),
    _rule(
        "ln_of_g",
        LOG,
        _D(lambda x: jnp.log(G.f(x)), lambda x: G.df(x) / G.f(x)),
        "d/dx ln(g(x)) = g'(x) / g(x)",
        WIDE,
    ),
    _rule(
        "log_a",
        LOG,
        _D(lambda x: jnp.log(x) / LN_A, lambda x: 1.0 / (x * LN_A)),
        "d/dx(log_a x) = 1 / (x ln a), x > 0",
        POS,
    ),
    _rule(
        "log_a_of_g",
        LOG,
        _D(lambda x: jnp.log(G.f(x)) / LN_A, lambda x: G.df(x) / (G.f(x) * LN_A)),
        "d/dx(log_a g(x)) = g'(x) / (g(x) ln a)",
        WIDE,
    ),
    # Trigonometric functions.
    _rule("sin", TRIG, SIN, "d/dx(sin x) = cos x", WIDE),
    _rule(
        "cos", TRIG, _D(jnp.cos, lambda x: -jnp.sin(x)), "d/dx(cos x) = -sin x", WIDE
    ),
    _rule(
        "tan",
        TRIG,
        _D(jnp.tan, lambda x: _sec(x) ** 2),
        "d/dx(tan x) = sec^2 x",
        ((-1.4, 1.4),),
    ),
    _rule(
        "csc",
        TRIG,
        _D(_csc, lambda x: -_csc(x) / jnp.tan(x)),
        "d/dx(csc x) = -csc x cot x",
        NONZERO,
    ),
    _rule(
        "sec",
        TRIG,
        _D(_sec, lambda x: _sec(x) * jnp.tan(x)),
        "d/dx(sec x) = sec x tan x",
        ((-1.4, 1.4),),
    ),
    _rule(
        "cot",
        TRIG,
        _D(lambda x: 1.0 / jnp.tan(x), lambda x: -(_csc(x) ** 2)),
        "d/dx(cot x) = -csc^2 x",
        NONZERO,
    ),
]
_ROWS += [
    # Inverse trigonometric functions (principal values, see the module doc).
    _rule(
        "arcsin",
        ATRIG,
        _D(jnp.arcsin, lambda x: 1.0 / jnp.sqrt(1.0 - x**2)),
        "d/dx(sin^-1 x) = 1 / sqrt(1 - x^2), x != ±1",
        OPEN_UNIT,
    ),
    _rule(
        "arccos",
        ATRIG,
        _D(jnp.arccos, lambda x: -1.0 / jnp.sqrt(1.0 - x**2)),
        "d/dx(cos^-1 x) = -1 / sqrt(1 - x^2), x != ±1",
        OPEN_UNIT,
    ),
    _rule(
        "arctan",
        ATRIG,
        _D(jnp.arctan, lambda x: 1.0 / (1.0 + x**2)),
        "d/dx(tan^-1 x) = 1 / (1 + x^2)",
        ((-5.0, 5.0),),
    ),
    _rule(
        "arccot",
        ATRIG,
        _D(lambda x: jnp.pi / 2 - jnp.arctan(x), lambda x: -1.0 / (1.0 + x**2)),
        "d/dx(cot^-1 x) = -1 / (1 + x^2)",
        ((-5.0, 5.0),),
    ),
    _rule(
        "arcsec",
        ATRIG,
        _D(
            lambda x: jnp.arccos(1.0 / x),
            lambda x: 1.0 / (jnp.abs(x) * jnp.sqrt(x**2 - 1.0)),
        ),
        "d/dx(sec^-1 x) = 1 / (x sqrt(x^2 - 1)), x != ±1, 0",
        OUTSIDE_UNIT,
        correction=(
            "d/dx(sec^-1 x) = 1 / (|x| sqrt(x^2 - 1)), |x| > 1. With the principal "
            "value sec^-1 x = cos^-1(1/x) (range [0, pi]) the printed x instead of "
            "|x| gives the wrong sign for x < -1; it holds only for the branch with "
            "range [0, pi/2) u [pi, 3pi/2). The domain is |x| > 1, not "
            "'x != ±1, 0'."
        ),
        printed_df=lambda x: 1.0 / (x * jnp.sqrt(x**2 - 1.0)),
    ),
    _rule(
        "arccsc",
        ATRIG,
        _D(
            lambda x: jnp.arcsin(1.0 / x),
            lambda x: -1.0 / (jnp.abs(x) * jnp.sqrt(x**2 - 1.0)),
        ),
        "d/dx(csc^-1 x) = -1 / (x sqrt(x^2 - 1)), x != ±1, 0",
        OUTSIDE_UNIT,
        correction=(
            "d/dx(csc^-1 x) = -1 / (|x| sqrt(x^2 - 1)), |x| > 1. With the principal "
            "value csc^-1 x = sin^-1(1/x) (range [-pi/2, pi/2]) the printed x "
            "instead of |x| gives the wrong sign for x < -1; it holds only for the "
            "branch with range (0, pi/2] u (pi, 3pi/2]. The domain is |x| > 1, not "
            "'x != ±1, 0'."
        ),
        printed_df=lambda x: -1.0 / (x * jnp.sqrt(x**2 - 1.0)),
    ),
    # Hyperbolic functions.
    _rule("sinh", HYP, _D(jnp.sinh, jnp.cosh), "d/dx(sinh x) = cosh x", WIDE),
    _rule("cosh", HYP, _D(jnp.cosh, jnp.sinh), "d/dx(cosh x) = sinh x", WIDE),
    _rule(
        "tanh",
        HYP,
        _D(jnp.tanh, lambda x: _sech(x) ** 2),
        "d/dx(tanh x) = sech^2 x",
        WIDE,
    ),
    _rule(
        "csch",
        HYP,
        _D(_csch, lambda x: -_csch(x) / jnp.tanh(x)),
        "d/dx(csch x) = -csch x coth x",
        NONZERO,
    ),
    _rule(
        "sech",
        HYP,
        _D(_sech, lambda x: -_sech(x) * jnp.tanh(x)),
        "d/dx(sech x) = -sech x tanh x",
        WIDE,
    ),
    _rule(
        "coth",
        HYP,
        _D(lambda x: 1.0 / jnp.tanh(x), lambda x: -(_csch(x) ** 2)),
        "d/dx(coth x) = -csch x",
        NONZERO,
        correction="d/dx(coth x) = -csch^2 x: the printed formula lacks the square.",
        printed_df=lambda x: -_csch(x),
    ),
    # Inverse hyperbolic functions (principal values, see the module doc).
    _rule(
        "arcsinh",
        AHYP,
        _D(jnp.arcsinh, lambda x: 1.0 / jnp.sqrt(1.0 + x**2)),
        "d/dx(sinh^-1 x) = 1 / sqrt(1 + x^2)",
        WIDE,
    ),
    _rule(
        "arccosh",
        AHYP,
        _D(jnp.arccosh, lambda x: 1.0 / jnp.sqrt(x**2 - 1.0)),
        "d/dx(cosh^-1 x) = 1 / sqrt(x^2 - 1), x > 1",
        ((1.05, 5.0),),
    ),
    _rule(
        "arctanh",
        AHYP,
        _D(jnp.arctanh, lambda x: 1.0 / (1.0 - x**2)),
        "d/dx(tanh^-1 x) = 1 / (1 - x^2), |x| < 1",
        OPEN_UNIT,
    ),
    _rule(
        "arccsch",
        AHYP,
        _D(
            lambda x: jnp.arcsinh(1.0 / x),
            lambda x: -1.0 / (jnp.abs(x) * jnp.sqrt(1.0 + x**2)),
        ),
        "d/dx(csch^-1 x) = -1 / (|x| sqrt(1 - x^2)), x != 0",
        NONZERO,
        correction=(
            "d/dx(csch^-1 x) = -1 / (|x| sqrt(1 + x^2)), x != 0: the printed "
            "1 - x^2 under the root must be 1 + x^2 (as printed it is not even "
            "real for |x| > 1, where csch^-1 is defined)."
        ),
        printed_df=lambda x: -1.0 / (jnp.abs(x) * jnp.sqrt(1.0 - x**2)),
    ),
    _rule(
        "arcsech",
        AHYP,
        _D(
            lambda x: jnp.arccosh(1.0 / x),
            lambda x: -1.0 / (x * jnp.sqrt(1.0 - x**2)),
        ),
        "d/dx(sech^-1 x) = -1 / (x sqrt(1 - x^2)), 0 < x < 1",
        ((0.05, 0.95),),
    ),
    _rule(
        "arccoth",
        AHYP,
        _D(lambda x: jnp.arctanh(1.0 / x), lambda x: 1.0 / (1.0 - x**2)),
        "d/dx(coth^-1 x) = 1 / (1 - x^2), |x| > 1",
        OUTSIDE_UNIT,
    ),
]

RULES: dict[str, Rule] = {rule.name: rule for rule in _ROWS}
CORRECTIONS: dict[str, str] = {
    name: rule.correction for name, rule in RULES.items() if rule.correction
}


def sample_domain(rule: Rule, num: int = 64, dtype=jnp.float64) -> jax.Array:
    """Evenly spaced points inside every interval of ``rule.domain``.

    Args:
        rule: a row of `RULES`.
        num: points per interval; the interval ends are excluded.
        dtype: float dtype of the points.

    Returns:
        the points, (num * len(rule.domain),).
    """
    parts = [jnp.linspace(lo, hi, num + 2, dtype=dtype)[1:-1] for lo, hi in rule.domain]
    return jnp.concatenate(parts)
