"""The playground's data: jaxnet's synthetic sets, or the student's own CSV.

All in the lecture's layout: X (2, m) float32 and integer labels (m,) in
0..K-1. ``split`` holds out a fifth of the examples with a fixed key (the test
accuracy); ``experiments.playground.code`` writes the same lines for the
student to run.

A CSV upload is at most MAX_UPLOAD_BYTES, has three columns (two features and
an integer class label 0..K-1, 2 <= K <= 5, each class present), an optional
header row, and MIN_POINTS..MAX_POINTS rows of finite numbers. Its features
are standardized (mean 0, standard deviation 1 per column) so one learning
rate suits any units; the page says so. A bad file raises ``SettingsError``
naming the row and the fix.
"""

import csv
import io
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.playground.settings import (
    MAX_CLASSES,
    MAX_POINTS,
    MIN_POINTS,
    Settings,
    SettingsError,
)
from jaxnet.data.synthetic import planar_flower, spirals, two_blobs

MAX_UPLOAD_BYTES = 256 * 1024
TEST_FRACTION = 0.2


class Dataset(NamedTuple):
    """Points and labels. X: (2, m) float32; labels: (m,) int32 in 0..K-1."""

    X: np.ndarray
    labels: np.ndarray
    classes: int
    name: str


class Split(NamedTuple):
    """Train and held-out columns of a ``Dataset`` (``test`` marks the latter)."""

    X_train: np.ndarray
    labels_train: np.ndarray
    X_test: np.ndarray
    labels_test: np.ndarray
    test: np.ndarray  # (m,) bool, True for held-out examples


def keys(seed: int) -> tuple:
    """(data, split, init, train) keys, split once from ``jax.random.key(seed)``."""
    return tuple(jax.random.split(jax.random.key(seed), 4))


def synthetic(settings: Settings) -> Dataset:
    """The flower, K spirals or two blobs with ``settings.points`` examples."""
    key = keys(settings.seed)[0]
    m = settings.points
    if settings.data == "flower":
        X, Y = planar_flower(key, m=m)
        labels = Y[0]
    elif settings.data == "spirals":
        K = settings.classes
        X, labels = spirals(key, m_per_class=max(m // K, 1), num_classes=K)
    else:
        X, Y = two_blobs(key, m=m)
        labels = Y[0]
    X = np.asarray(X, np.float32)
    return Dataset(X, np.asarray(labels, np.int32), settings.classes, settings.data)


def split(dataset: Dataset, seed: int) -> Split:
    """Hold out round(TEST_FRACTION m) examples chosen by the split key."""
    m = dataset.X.shape[1]
    order = np.asarray(jax.random.permutation(keys(seed)[1], m))
    n_test = int(round(TEST_FRACTION * m))
    test = np.zeros(m, bool)
    test[order[:n_test]] = True
    train_idx, test_idx = order[n_test:], order[:n_test]
    return Split(
        dataset.X[:, train_idx],
        dataset.labels[train_idx],
        dataset.X[:, test_idx],
        dataset.labels[test_idx],
        test,
    )


def targets(labels: np.ndarray, output: str, classes: int) -> jnp.ndarray:
    """Y for training: (1, m) of 0/1 for sigmoid, one-hot (K, m) for softmax."""
    if output == "sigmoid":
        return jnp.asarray(labels, jnp.float32).reshape(1, -1)
    return jax.nn.one_hot(jnp.asarray(labels), classes, axis=0, dtype=jnp.float32)


def _fail(message: str):
    raise SettingsError("csv", message)


def parse_csv(data: bytes) -> Dataset:
    """A ``Dataset`` from an uploaded CSV (see the module docstring).

    Raises:
        SettingsError: too large, not UTF-8 text, the wrong number of columns,
            a non-numeric or non-finite value, labels that are not 0..K-1, too
            few or too many rows, or a constant feature column.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        _fail(
            f"the file has {len(data):,} bytes; the limit is {MAX_UPLOAD_BYTES:,} "
            f"bytes ({MAX_POINTS} rows of x1,x2,label fit easily)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _fail("the file is not UTF-8 text: upload a CSV of x1,x2,label rows")
    rows = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    if rows and not _numeric(rows[0][0]):
        rows = rows[1:]  # a header row
    if not MIN_POINTS <= len(rows) <= MAX_POINTS:
        _fail(
            f"the file has {len(rows)} data rows; {MIN_POINTS} to {MAX_POINTS} are "
            "needed"
        )
    values = np.empty((len(rows), 3))
    for i, row in enumerate(rows, start=1):
        if len(row) != 3:
            _fail(
                f"data row {i} has {len(row)} column(s); each row needs 3: "
                "x1,x2,label (two features, then the class 0..K-1)"
            )
        for j, cell in enumerate(row):
            if not _numeric(cell) or not math.isfinite(float(cell)):
                _fail(f"data row {i}, column {j + 1}: {cell.strip()!r} is not a "
                      "finite number")  # fmt: skip
            values[i - 1, j] = float(cell)
    labels = values[:, 2]
    if np.any(labels != np.round(labels)) or labels.min() < 0:
        _fail("labels (column 3) must be whole numbers 0, 1, ..., K-1")
    labels = labels.astype(np.int32)
    K = int(labels.max()) + 1
    missing = sorted(set(range(K)) - set(labels.tolist()))
    if not 2 <= K <= MAX_CLASSES or missing:
        _fail(
            f"labels (column 3) must use every class 0..K-1 with 2 <= K <= "
            f"{MAX_CLASSES}; found classes {sorted(set(labels.tolist()))}"
        )
    X = values[:, :2].T
    std = X.std(axis=1, keepdims=True)
    if np.any(std == 0):
        _fail(f"feature column {int(np.argmin(std[:, 0])) + 1} is constant")
    X = (X - X.mean(axis=1, keepdims=True)) / std
    return Dataset(X.astype(np.float32), labels, K, "csv")


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
