"""Hyperparameter search as compiled, vmapped runs: dev split or k folds, halving.

Re-exports: the space (``LogUniform``, ``Uniform``, ``Choice``, ``sample``),
the splits (``dev_split``, ``kfold``), successive halving (``schedule``) and
the search (``search``, ``SearchResult``, ``candidate_keys``, ``fit_settings``,
checkpoints). See docs/search.md.
"""

from jaxnet.search.checkpoints import (
    SearchCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from jaxnet.search.halving import check_eta, keep_best, schedule
from jaxnet.search.run import SearchResult, candidate_keys, fit_settings, search
from jaxnet.search.space import (
    NUMERIC,
    STATIC,
    Choice,
    LogUniform,
    SpaceError,
    Uniform,
    check_space,
    group_of,
    is_log,
    sample,
)
from jaxnet.search.splits import Split, dev_split, kfold

__all__ = [
    "NUMERIC", "STATIC", "Choice", "LogUniform", "SearchCheckpoint", "SearchResult",
    "SpaceError", "Split", "Uniform", "candidate_keys", "check_eta", "check_space",
    "dev_split", "fit_settings", "group_of", "is_log", "keep_best", "kfold",
    "load_checkpoint", "sample", "save_checkpoint", "schedule", "search",
]  # fmt: skip
