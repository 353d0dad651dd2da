"""A search's checkpoint: where it stands after a rung, in memory and on disk.

``search`` hands a ``SearchCheckpoint`` to ``on_rung`` after every rung and
continues from one given as ``start``; ``save_checkpoint`` / ``load_checkpoint``
keep it in one .npz (the state's leaves, the costs, and the records as JSON).
The leaves are stored flat: ``search`` rebuilds the state's structure from the
group it prepares again with the same arguments.
"""

import json
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class SearchCheckpoint(NamedTuple):
    """Where a search stands after a rung: enough to continue it exactly.

    Attributes:
        rung: rungs completed.
        alive: group name -> ids of its live candidates (their order in the
            vmapped state).
        leaves: group name -> the leaves of its stacked TrainState (numpy;
            keys as ``jax.random.key_data``).
        records: one dict per candidate (see ``SearchResult.candidates``).
        costs: candidate id -> training costs (k, iterations done).
    """

    rung: int
    alive: dict[str, list[int]]
    leaves: dict[str, list[np.ndarray]]
    records: list[dict]
    costs: dict[int, np.ndarray]


def state_leaves(state) -> list[np.ndarray]:
    """The leaves of a stacked TrainState as numpy (keys as their key data)."""
    out = []
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out.append(np.asarray(leaf))
    return out


def save_checkpoint(path, checkpoint: SearchCheckpoint) -> None:
    """Write a ``SearchCheckpoint`` as one .npz (arrays, plus its records as
    JSON), atomically (a temporary file renamed)."""
    path = Path(path)
    arrays = {f"leaf/{g}/{j}": a for g, ls in checkpoint.leaves.items()
              for j, a in enumerate(ls)}  # fmt: skip
    arrays.update({f"costs/{i}": c for i, c in checkpoint.costs.items()})
    meta = {"rung": checkpoint.rung, "alive": checkpoint.alive,
            "records": checkpoint.records,
            "counts": {g: len(ls) for g, ls in checkpoint.leaves.items()}}  # fmt: skip
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_checkpoint(path) -> SearchCheckpoint:
    """A ``SearchCheckpoint`` written by ``save_checkpoint``.

    Raises:
        ValueError: the file is not one (named, with the fix).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            leaves = {g: [z[f"leaf/{g}/{j}"] for j in range(c)]
                      for g, c in meta["counts"].items()}  # fmt: skip
            costs = {int(n.split("/", 1)[1]): z[n] for n in z.files
                     if n.startswith("costs/")}  # fmt: skip
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(
            f"{path} is not a readable search checkpoint ({e}); start a new search"
        ) from None
    return SearchCheckpoint(meta["rung"], meta["alive"], leaves, meta["records"], costs)
