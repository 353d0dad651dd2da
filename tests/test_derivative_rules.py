"""Each of the lecture's derivative rules, hand-written, against jax.grad (float64).

Tolerance: rtol 1e-12 with atol 1e-13. The hand-written forms and jax's own
derivative rules are algebraically equal but rounded differently (sec^2 x against
jax's 1 + tan^2 x, sech^2 x against 1 - tanh^2 x, arccos(1/x)'s chain through
1 - 1/x^2 against x^2 - 1). On the sampled domains the worst case is a
cancellation like 1 - tanh^2(3) ~ 1e-2, which costs about 2 digits: a few 1e-14
relative (measured worst: 4e-14 for coth, 2e-14 for tanh), under 1e-12 with
margin. atol only matters where f' crosses 0 (the quotient example, cos x at
pi/2), where both sides round to ~1e-16 absolute.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.derivative_rules import (
    CORRECTIONS,
    EXP,
    RULES,
    SIN,
    Differentiable,
    G,
    chain_rule,
    constant_multiple,
    power,
    product_rule,
    quotient_rule,
    sample_domain,
)

RTOL, ATOL = 1e-12, 1e-13
GROUPS = {
    "Basic Derivatives Rules": 8,
    "Exponential": 4,
    "Logarithmic": 4,
    "Trigonometric": 6,
    "Inverse Trigonometric": 6,
    "Hyperbolic": 6,
    "Inverse Hyperbolic": 6,
}


def autodiff(f, x):
    return jax.vmap(jax.grad(f))(x)


def test_the_table_has_every_rule_of_the_lecture():
    counts = {}
    for rule in RULES.values():
        counts[rule.group] = counts.get(rule.group, 0) + 1
    assert counts == GROUPS
    assert len(RULES) == 40


@pytest.mark.parametrize("name", list(RULES))
def test_hand_written_derivative_equals_jax_grad(name):
    rule = RULES[name]
    x = sample_domain(rule)
    assert x.dtype == jnp.float64 and x.shape == (64 * len(rule.domain),)
    y = rule.f(x)
    assert bool(jnp.all(jnp.isfinite(y))), "sampled outside the function's domain"
    np.testing.assert_allclose(rule.df(x), autodiff(rule.f, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(RULES))
def test_derivative_is_elementwise_on_arrays(name):
    rule = RULES[name]
    x = sample_domain(rule, num=6).reshape(-1, 2)
    assert rule.df(x).shape == x.shape
    np.testing.assert_allclose(
        rule.df(x).ravel(), rule.df(x.ravel()), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("n", [0, 1, 2, 5, -1, -2.5, 0.5, 3.7])
def test_power_rule_for_several_exponents(n):
    u = power(n)
    x = jnp.linspace(0.2, 3.0, 50)
    np.testing.assert_allclose(u.df(x), autodiff(u.f, x), rtol=RTOL, atol=ATOL)


def test_combinators_compose():
    # d/dx [3 sin(e^x) / (1 + x^2)]: multiple of a quotient of a chain
    u = constant_multiple(3.0, quotient_rule(chain_rule(SIN, EXP), G))
    x = jnp.linspace(-2.0, 2.0, 41)
    np.testing.assert_allclose(u.df(x), autodiff(u.f, x), rtol=RTOL, atol=ATOL)
    v = product_rule(u, Differentiable(jnp.tanh, lambda x: 1 / jnp.cosh(x) ** 2))
    np.testing.assert_allclose(v.df(x), autodiff(v.f, x), rtol=RTOL, atol=ATOL)


def test_the_misprinted_rules_are_exactly_these():
    assert sorted(CORRECTIONS) == ["arccsc", "arccsch", "arcsec", "coth"]
    for name, rule in RULES.items():
        assert (rule.correction is None) == (rule.printed_df is None), name


@pytest.mark.parametrize("name", sorted(CORRECTIONS))
def test_printed_formula_disagrees_with_jax_grad(name):
    """The lecture's formula, taken literally, fails where the correction holds."""
    rule = RULES[name]
    x = sample_domain(rule)
    expected = autodiff(rule.f, x)
    np.testing.assert_allclose(rule.df(x), expected, rtol=RTOL, atol=ATOL)
    printed = rule.printed_df(x)
    wrong = ~np.isclose(printed, expected, rtol=1e-6, atol=0)  # NaN counts as wrong
    assert wrong.mean() >= 0.5, f"{name}: printed formula wrong at only {wrong.mean()}"
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(printed, expected, rtol=1e-6)


def test_misprints_at_chosen_points():
    # coth'(2) = -csch^2(2) = -0.0760..., printed -csch(2) = -0.2757...
    x = jnp.array([2.0])
    coth = RULES["coth"]
    np.testing.assert_allclose(autodiff(coth.f, x), -1 / jnp.sinh(2.0) ** 2)
    assert abs(float(coth.printed_df(x)[0]) + 1 / np.sinh(2.0)) < 1e-15
    # csch^-1 at x = 2: printed needs sqrt(1 - 4), not a real number
    arccsch = RULES["arccsch"]
    assert np.isnan(arccsch.printed_df(x)[0])
    np.testing.assert_allclose(autodiff(arccsch.f, x), -1 / (2 * np.sqrt(5.0)))
    # sec^-1, csc^-1: printed x instead of |x| flips the sign for x < -1 only
    for name in ("arcsec", "arccsc"):
        rule = RULES[name]
        both = jnp.array([-2.0, 2.0])
        exact = autodiff(rule.f, both)
        printed = rule.printed_df(both)
        np.testing.assert_allclose(printed[1], exact[1], rtol=RTOL)
        np.testing.assert_allclose(printed[0], -exact[0], rtol=RTOL)


def test_every_rule_documents_its_printed_formula():
    for name, rule in RULES.items():
        assert rule.printed.startswith("d/dx"), name
        assert rule.domain and all(lo < hi for lo, hi in rule.domain), name
