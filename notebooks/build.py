"""Regenerate notebooks/lecture.ipynb, with its outputs, from notebooks/lecture.py.

    python notebooks/build.py            # from the repository root

1. jupytext reads notebooks/lecture.py, the notebook's source (percent format);
2. nbclient runs it top to bottom (kernel "python3", the interpreter running
   this script) in notebooks/, with this environment ($JAXNET_DATA finds the
   data as the library does), this checkout's jaxnet first on the path, and
   matplotlib's inline backend (PNG figures, kept small by the notebook's dpi);
3. it writes notebooks/lecture.ipynb with the outputs and, in the notebook's
   metadata, ``jaxnet.source_sha256``: the hash of the code cells' sources.

tests/test_notebook.py checks that the committed notebook's cells equal
lecture.py and that the hash matches (else the outputs are stale: rebuild),
re-executes the notebook once, and compares the printed numbers with the stored
ones. The cats and Auto MPG datasets must be found (python -m jaxnet.data fetch).
"""

import copy
import hashlib
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
SCRIPT = NOTEBOOKS / "lecture.py"
NOTEBOOK = NOTEBOOKS / "lecture.ipynb"
TIME_LIMIT = 600  # seconds, the whole notebook
INLINE = "module://matplotlib_inline.backend_inline"


def read_source() -> nbformat.NotebookNode:
    """lecture.py as a notebook without outputs."""
    return jupytext.read(SCRIPT)


def source_hash(notebook: nbformat.NotebookNode) -> str:
    """sha256 of the code cells' sources, in order (what the outputs come from)."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    return digest.hexdigest()


def kernel_env() -> dict[str, str]:
    """This environment, with this checkout's jaxnet first and inline figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["MPLBACKEND"] = INLINE  # Agg (as in the tests' shell) would show nothing
    return env


def execute(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` run top to bottom; raises CellExecutionError."""
    notebook = copy.deepcopy(notebook)
    client = NotebookClient(
        notebook,
        timeout=TIME_LIMIT,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps in the committed file
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # cwd = notebooks/
    )
    client.execute(env=kernel_env())
    return notebook


def main() -> None:
    source = read_source()
    start = time.perf_counter()
    notebook = execute(source)
    seconds = time.perf_counter() - start
    notebook.metadata["jaxnet"] = {"source_sha256": source_hash(source)}
    nbformat.write(notebook, NOTEBOOK)
    size = NOTEBOOK.stat().st_size / 1e6
    print(f"wrote {NOTEBOOK.relative_to(ROOT)} ({size:.2f} MB), ran in {seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
