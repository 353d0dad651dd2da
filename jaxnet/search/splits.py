"""Honest splits of the training data: a dev split, or k folds; seeded, stratified.

Candidates are scored on examples they did not train on, carved from the
training set; the test set is never looked at during a search.

- ``dev_split``: within each class c (each distinct label; one group for
  regression), a seeded permutation of its m_c examples puts
  round(fraction m_c) into dev and the rest into train.
- ``kfold``: within each class, a seeded permutation is cut into k blocks of
  floor(m_c / k) examples; fold f's dev set is block f of every class, its
  training set everything else. The m_c mod k examples left over are in every
  fold's training set and in no dev set, so every fold trains on the same
  number of examples, m - sum_c floor(m_c / k): the k folds then stack into one
  vmapped program (one X (n_x, m_f) per fold), each fold's cost exact with its
  own 1/m_f.

Both return index arrays into the training set's columns, sorted within each
fold (the order of the columns does not change full-batch results; minibatch
runs shuffle with their own key).
"""

from typing import NamedTuple

import numpy as np

from jaxnet.hyperparams import check_count
from jaxnet.search.space import SpaceError


class Split(NamedTuple):
    """Column indices of each fold's training and dev examples.

    Attributes:
        train: (k, m_train) int: fold f trains on columns train[f].
        dev: (k, m_dev) int: and is scored on columns dev[f].
        kind: "dev" (k = 1) or "kfold".
        seed: the permutations' seed.
    """

    train: np.ndarray
    dev: np.ndarray
    kind: str
    seed: int

    def record(self) -> dict:
        """What metrics.json keeps of the split (the seed and the sizes)."""
        return {
            "kind": self.kind,
            "folds": int(self.train.shape[0]),
            "seed": int(self.seed),
            "train_size": int(self.train.shape[1]),
            "dev_size": int(self.dev.shape[1]),
        }


def _classes(groups) -> list[np.ndarray]:
    groups = np.asarray(groups).ravel()
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def dev_split(groups, fraction: float, seed: int = 0) -> Split:
    """A stratified train / dev split (see the module doc).

    Args:
        groups: (m,) class of each training example (all equal: no strata).
        fraction: share of each class held out as dev, in (0, 1).
        seed: the permutations' seed.

    Raises:
        SpaceError: a fraction outside (0, 1), or one that leaves no dev
            example or no training example.
    """
    f = float(fraction)
    if not 0 < f < 1:
        raise SpaceError(f"dev_fraction must be in (0, 1); got {fraction!r}")
    rng = np.random.default_rng(seed)
    train, dev = [], []
    for members in _classes(groups):
        members = rng.permutation(members)
        n_dev = int(round(f * len(members)))
        dev.append(members[:n_dev])
        train.append(members[n_dev:])
    train_idx, dev_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(dev))
    m = len(train_idx) + len(dev_idx)
    if len(dev_idx) == 0 or len(train_idx) == 0:
        empty = "dev" if len(dev_idx) == 0 else "training"
        raise SpaceError(
            f"dev_fraction {fraction} of m = {m} examples leaves no {empty} "
            f"examples: choose a fraction between {1 / m:.3g} and {1 - 1 / m:.3g}"
        )
    return Split(train_idx[None], dev_idx[None], "dev", int(seed))


def kfold(groups, k: int, seed: int = 0) -> Split:
    """Stratified k-fold cross-validation with equal fold sizes (module doc).

    Args:
        groups: (m,) class of each training example.
        k: number of folds, 2 <= k <= the smallest class's count.
        seed: the permutations' seed.

    Raises:
        SpaceError: k < 2, or k larger than the examples of some class (a fold
            would have none of it in its dev set).
    """
    k = check_count("folds", k)
    if k < 2:
        raise SpaceError(f"folds must be at least 2 for cross-validation; got {k}")
    classes = _classes(groups)
    labels = np.unique(np.asarray(groups).ravel())
    counts = [len(c) for c in classes]
    smallest = int(np.argmin(counts))
    if k > counts[smallest] and len(classes) == 1:
        raise SpaceError(
            f"folds = {k} is larger than the {counts[0]} examples: use at most "
            f"{counts[0]} folds"
        )
    if k > counts[smallest]:
        raise SpaceError(
            f"folds = {k} is larger than the {counts[smallest]} examples of class "
            f"{labels[smallest].item()!r}: use at most {counts[smallest]} folds"
        )
    rng = np.random.default_rng(seed)
    blocks: list[list[np.ndarray]] = [[] for _ in range(k)]
    for members in classes:
        members = rng.permutation(members)
        size = len(members) // k
        for f in range(k):
            blocks[f].append(members[f * size : (f + 1) * size])
    m = sum(counts)
    dev = np.stack([np.sort(np.concatenate(b)) for b in blocks])
    train = np.stack([np.setdiff1d(np.arange(m), d) for d in dev])
    return Split(train, dev, "kfold", int(seed))
