"""Shared pytest set-up.

- float64 is enabled for the whole test session: gradient checks compare manual
  and automatic derivatives to ~1e-10, which float32 (eps ~1.2e-7) cannot resolve.
  Tests of the float32 path users get by default pass ``dtype=jnp.float32``.
- numpy-style rank promotion raises, so an (n, 1) vs (n,) slip fails loudly.
- ``data_root`` finds the real datasets through ``$JAXNET_DATA``. Without them the
  data tests are skipped *with a reason* (shown by ``-ra``), unless
  ``JAXNET_REQUIRE_DATA=1`` (set by ``.ci/run``), where a missing dataset fails.
"""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("JAXNET_DATA")
    if root and (Path(root) / "catvnoncat" / "train_catvnoncat.h5").is_file():
        return Path(root)
    message = (
        "real datasets not found: set JAXNET_DATA to the folder holding "
        "catvnoncat/ and mnist_t10k/ (see README, 'Data')"
    )
    if os.environ.get("JAXNET_REQUIRE_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)
