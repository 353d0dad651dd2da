"""Test helpers: pytree comparison with readable leaf paths."""

import chex
import jax
import numpy as np


def assert_trees_close(actual, expected, rtol=1e-7, atol=1e-10):
    """Assert two pytrees have the same structure and close leaves.

    The structure is compared first, so a renamed key fails before any number is
    compared; each failing leaf is reported with its path, e.g. ``[1]['W']``.
    """
    chex.assert_trees_all_equal_structs(actual, expected)
    actual_leaves = jax.tree.leaves_with_path(actual)
    expected_leaves = jax.tree.leaves(expected)
    for (path, a), e in zip(actual_leaves, expected_leaves, strict=True):
        np.testing.assert_allclose(
            np.asarray(a),
            np.asarray(e),
            rtol=rtol,
            atol=atol,
            err_msg=f"leaf {jax.tree_util.keystr(path)}",
        )
