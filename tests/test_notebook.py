"""notebooks/lecture.ipynb runs top to bottom, and matches its jupytext twin.

The notebook is authored as notebooks/lecture.py (jupytext percent format) and
committed as both files, the .ipynb without outputs. The test executes the
.ipynb with nbclient (kernel "python3", the interpreter running the tests) in
notebooks/, with this process's environment, so $JAXNET_DATA reaches the
notebook, which finds the data the way the library does.
"""

import os
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import _dataset_root

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "lecture.ipynb"
SCRIPT = NOTEBOOKS / "lecture.py"
TIME_LIMIT = 600  # seconds, the whole notebook


def test_notebook_is_committed_without_outputs_and_in_sync_with_its_script():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    script = jupytext.read(SCRIPT)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in script.cells
    ], "regenerate with: jupytext --to ipynb notebooks/lecture.py"


@pytest.fixture
def lecture_data():
    """The cats and Auto MPG, found as the loaders find them: skipped (or failed
    under JAXNET_REQUIRE_DATA=1) with the reason when either is missing."""
    return _dataset_root("catvnoncat", "autompg")


def test_notebook_runs_top_to_bottom(lecture_data):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIME_LIMIT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # cwd = notebooks/
    )
    start = time.perf_counter()
    client.execute(env=dict(os.environ))  # raises CellExecutionError on any error
    seconds = time.perf_counter() - start
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert "notebook ran in" in last
    assert seconds < TIME_LIMIT
    print(f"notebook executed in {seconds:.0f} s")
