"""Divergence is reported, never silent: the cat network at learning rates 10
and 1000 (the cost jumps to ~1e8 and never becomes NaN), and the rule's edges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.data import load_catvnoncat
from jaxnet.deep import model_cost
from jaxnet.params import init_params
from jaxnet.runner import train_loop
from jaxnet.stopping import DIVERGENCE_FACTOR, first_bad

DIMS = [12288, 20, 7, 5, 1]
ACTS = ("relu", "relu", "relu", "sigmoid")


@pytest.mark.parametrize("learning_rate", [10.0, 1000.0])
def test_a_learning_rate_far_too_large_is_reported(data_root, learning_rate):
    data = load_catvnoncat(data_root / "catvnoncat")
    X = jnp.asarray(data.X_train, jnp.float32)
    Y = jnp.asarray(data.Y_train, jnp.float32)
    params = init_params(jax.random.key(0), DIMS, "lecun")
    lines = []
    result = train_loop(
        params, X, Y, activations=ACTS, num_iterations=200,
        learning_rate=learning_rate, progress=False, print_fn=lines.append,
    )  # fmt: skip
    assert result.diverged and result.stop_reason == "diverged"
    assert "Lower the learning rate" in result.message
    assert result.message in lines
    # The kept parameters are finite and their cost is below the limit.
    assert all(
        np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(result.params)
    )
    J0 = float(model_cost(params, X, Y, ACTS))
    kept = float(model_cost(result.params, X, Y, ACTS))
    assert kept <= DIVERGENCE_FACTOR * max(J0, 1.0)
    assert len(result.costs) == result.iterations_done


def test_the_rule_itself():
    costs = np.array([0.7, 0.6, 50.0, 80.0, 1e8])
    assert first_bad(costs, 0.7) == (4, "diverged")
    assert first_bad(np.array([0.7, np.nan]), 0.7) == (1, "non-finite")
    assert first_bad(np.array([0.7, np.inf]), 0.7) == (1, "non-finite")
    assert first_bad(np.array([0.7, 0.5, 0.3]), 0.7) is None
    # Regression costs start large: the limit is relative to J_0.
    assert first_bad(np.array([300.0, 2e4, 100.0]), 300.0) is None
    assert first_bad(np.array([300.0, 4e4]), 300.0) == (1, "diverged")
