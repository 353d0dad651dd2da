"""``python -m jaxnet``: the version, the device JAX will use, and the experiments.

The experiments live in the repository's ``experiments/`` folder (not installed:
the generic name would clash in site-packages). They are listed when that folder
sits next to the package, as in a clone with ``pip install -e .``; otherwise this
says how to get them. Modules are read with ``ast``, never imported.
"""

import argparse
import ast
import sys
from pathlib import Path

import jax

from jaxnet._version import __version__

HELPERS = ("__init__", "common")  # modules of experiments/ that are not studies


def experiments_dir() -> Path:
    """Where a clone keeps the experiments: ``<repository>/experiments``."""
    return Path(__file__).resolve().parent.parent / "experiments"


def list_experiments(folder: Path) -> list[tuple[str, str]]:
    """Runnable studies in ``folder``: modules defining ``main``, and packages
    whose ``__main__.py`` does (``python -m experiments.playground``).

    Args:
        folder: the experiments folder; may not exist.

    Returns:
        (module name, first line of its docstring) pairs, sorted by name; empty
        if the folder does not exist.
    """
    if not folder.is_dir():
        return []
    found = []
    modules = [(p.stem, p) for p in folder.glob("*.py")]
    modules += [(p.parent.name, p) for p in folder.glob("*/__main__.py")]
    for name, path in sorted(modules):
        if name in HELPERS:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if "main" in functions:
            doc = (ast.get_docstring(tree) or "").strip()
            found.append((name, doc.splitlines()[0] if doc else ""))
    return found


def describe(folder: Path) -> list[str]:
    """The report printed by ``python -m jaxnet``, one string per line."""
    devices = jax.devices()
    lines = [
        f"jaxnet {__version__}",
        f"jax {jax.__version__}, default backend {jax.default_backend()}, "
        f"{len(devices)} device(s):",
        *(f"  {d.id}: {d.device_kind} ({d.platform})" for d in devices),
    ]
    studies = list_experiments(folder)
    if studies:
        lines.append(f"experiments (run from {folder.parent}):")
        width = max(len(name) for name, _ in studies)
        lines += [
            f"  python -m experiments.{name:<{width}}  {doc}" for name, doc in studies
        ]
    else:
        lines += [
            "experiments: not installed with the package (no experiments/ folder "
            f"at {folder}).",
            "  Clone the jaxnet repository, `pip install -e .` in it, and run them "
            "from its root, e.g. python -m experiments.cat_classifier",
        ]
    return lines


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="python -m jaxnet", description=__doc__).parse_args(
        argv
    )
    print("\n".join(describe(experiments_dir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
