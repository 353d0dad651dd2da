"""Strict JSON for every record jaxnet writes: no NaN or Infinity, ever.

Python's ``json`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default,
which no strict parser accepts (JSON has no such numbers). Every JSON file
jaxnet writes goes through ``dumps`` here instead:

- a non-finite number (float, numpy or JAX scalar) becomes ``null``;
- the reason is kept beside the data: a top-level ``"nonfinite"`` object maps
  the path of each such value ("models/network/final_cost/mean") to what it
  was ("inf", "-inf" or "nan");
- ``allow_nan=False``, so anything that slips past raises instead of writing
  invalid JSON.

numpy scalars and arrays become Python numbers and lists on the way.
"""

import json
import math
from typing import Any

import numpy as np

NONFINITE_KEY = "nonfinite"


def _name(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def clean(obj: Any) -> tuple[Any, dict[str, str]]:
    """``obj`` with every non-finite number replaced by None, and their paths.

    Returns:
        (the cleaned copy, {"a/b/0": "inf", ...}); the dict is empty when every
        number was finite.
    """
    found: dict[str, str] = {}

    def walk(value, path):
        if isinstance(value, dict):
            return {
                k: walk(v, f"{path}/{k}" if path else str(k)) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [
                walk(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(value)
            ]
        if hasattr(value, "__array__") and hasattr(value, "shape"):  # numpy, JAX
            return walk(np.asarray(value).tolist(), path)
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            found[path or "."] = _name(value)
            return None
        return value

    return walk(obj, ""), found


def dumps(obj: Any, **kwargs) -> str:
    """``json.dumps`` that never emits NaN/Infinity (see the module doc).

    A dict with non-finite values gets the ``"nonfinite"`` key (merged with one
    already there); any other object with them raises ValueError.
    """
    data, found = clean(obj)
    if found:
        if not isinstance(data, dict):
            raise ValueError(f"non-finite numbers at {sorted(found)}; cannot record")
        data = {**data, NONFINITE_KEY: {**data.get(NONFINITE_KEY, {}), **found}}
    return json.dumps(data, allow_nan=False, **kwargs)


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and -Infinity (a strict parser)."""

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)
