"""Shared pytest set-up.

- float64 is enabled for the whole test session: gradient checks compare manual
  and automatic derivatives to ~1e-10, which float32 (eps ~1.2e-7) cannot resolve.
  Tests of the float32 path users get by default pass ``dtype=jnp.float32``.
- numpy-style rank promotion raises, so an (n, 1) vs (n,) slip fails loudly.
- ``data_root`` (cat and MNIST) and ``autompg_root`` find the real datasets with
  the loaders' own search order (``jaxnet.data.find_dataset_dir``): ``$JAXNET_DATA``
  if set, else the cache that ``python -m jaxnet.data fetch`` writes to. Each
  returns the root folder holding ``<name>/``. Without the data the tests are
  skipped *with a reason* (shown by ``-ra``), unless ``JAXNET_REQUIRE_DATA=1``
  (set by ``.ci/run``), where a missing dataset fails.
- The suite runs on several processes (pytest-xdist, ``-n`` in pyproject.toml). A
  test marked ``exclusive`` (one that measures a latency: a stop within ~1 s, a
  download cut off in time) has the machine to itself: ``_machine_share`` below
  holds a shared lock around every other test and an exclusive one around it.
  The longest files are collected first (``SLOW_FIRST``), so that with
  ``--dist loadfile`` no long file starts last while the other process idles.
"""

import fcntl
import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# Test files by how long they take (measured, longest first); the rest follow in
# their usual order. Only the order changes, never what runs.
SLOW_FIRST = (
    "test_gradient_property",
    "test_notebook",
    "test_wide_resume",
    "test_run_safety",
    "test_stop_latency",
    "test_search",
    "test_cat_classifier",
    "test_initialization",
    "test_playground_browser",
    "test_planar",
    "test_experiment_stops",
    "test_user_errors",
    "test_run_folder_lock",
    "test_distributed",
    "test_chunks",
    "test_health",
    "test_playground",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).stem, len(rank)))


@pytest.fixture
def key():
    return jax.random.key(0)


def _dataset_root(*names: str) -> Path:
    """Root folder holding each ``<name>/``, found as the loaders find it."""
    from jaxnet.data import DATASETS, DatasetNotFoundError, find_dataset_dir

    roots, problems, missing = set(), [], []
    for name in names:
        try:
            roots.add(find_dataset_dir(name, tuple(DATASETS[name])).parent)
        except DatasetNotFoundError as e:
            problems.append(str(e).splitlines()[0])
            missing.append(name)
    if not problems:
        (root,) = roots  # without data_dir only one location is ever searched
        return root
    fetch = "; ".join(f"python -m jaxnet.data fetch {n} --from SRC" for n in missing)
    message = (
        f"real data not found: {' | '.join(problems)} Fetch with: {fetch} "
        "(sources in docs/data.md), or set JAXNET_DATA"
    )
    if os.environ.get("JAXNET_REQUIRE_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Root holding catvnoncat/ and mnist_t10k/."""
    return _dataset_root("catvnoncat", "mnist_t10k")


@pytest.fixture(scope="session")
def autompg_root() -> Path:
    """Root holding autompg/cars.json."""
    return _dataset_root("autompg")


@pytest.fixture(autouse=True)
def _machine_share(request, tmp_path_factory):
    """A readers-writer lock over the xdist workers: an ``exclusive`` test waits
    for the running tests to end and runs alone; the others run side by side.

    A turnstile lock gives the writer priority: while an exclusive test waits
    for the share, no new test takes one, so it cannot be starved.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield  # one process: every test has the machine to itself
        return
    root = tmp_path_factory.getbasetemp().parent  # shared by the workers
    exclusive = request.node.get_closest_marker("exclusive") is not None
    gate_path, share_path = root / "turnstile.lock", root / "share.lock"
    with open(gate_path, "a") as gate, open(share_path, "a") as share:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(share, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(share, fcntl.LOCK_UN)
