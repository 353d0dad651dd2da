"""notebooks/lecture.ipynb holds honest outputs of its jupytext twin, lecture.py.

The notebook is authored as notebooks/lecture.py (jupytext percent format) and
committed as notebooks/lecture.ipynb WITH its outputs (figures, printed
numbers), written by ``python notebooks/build.py``. The checks:

- without running anything: the cells equal lecture.py's, the stored hash of the
  code cells' sources matches (else the outputs are stale), every code cell ran,
  no output is an error, a stderr stream or a warning, figures are small PNGs,
  the lecture is cited by title and nothing links outside the repository;
- one execution (nbclient, as build.py runs it): no cell fails or warns, each
  cell prints the same text as stored, and every printed number (costs,
  accuracies, errors, ...) equals the stored one within NUMBER_RTOL / ATOL.
  Timings ("1.2 s", "3.4 ms") and the device line are not compared.
"""

import importlib.util
import re
import time
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest

from tests.conftest import _dataset_root

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "lecture.ipynb"
SCRIPT = NOTEBOOKS / "lecture.py"
MAX_BYTES = 1_500_000  # the committed notebook, figures included
# Printed numbers of a fresh run against the stored ones. The float64 cells
# reproduce to the last digit on one machine; the float32 trainings (flower,
# Auto MPG, 2000-4000 steps) may round differently on another CPU (other SIMD
# width, other summation order), which moves a cost in its 3rd-4th digit or an
# accuracy by one example (0.25 % of 400). A stale output (other
# hyperparameters, other data, another formula) moves them by far more.
NUMBER_RTOL = 1e-2
NUMBER_ATOL = 1e-6  # rounding-level values (1e-16 errors) agree with any others
LECTURE_TITLE = "Introduction to Deep Learning and Deep Network Learning Issues"

_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
TIMING = re.compile(NUMBER + r"\s*m?s\b")


def printed(cell) -> str:
    """What a code cell showed as text: its stdout and its results' text/plain."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"] + "\n")
    return "".join(parts)


def comparable(text: str) -> tuple[str, list[float]]:
    """(the text with numbers as '#' and runs of blanks as one, the numbers);
    timings and the device line dropped."""
    lines = [line for line in text.splitlines() if "device" not in line]
    text = TIMING.sub("<time>", "\n".join(lines))
    skeleton = re.sub(r"[ \t]+", " ", re.sub(NUMBER, "#", text))  # widths vary
    return skeleton, [float(x) for x in re.findall(NUMBER, text)]


def problems(notebook) -> list[str]:
    """Errors, stderr output and warnings in the cells' outputs."""
    found = []
    for i, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"cell {i}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                found.append(f"cell {i} wrote to stderr: {output.text[:200]}")
        text = printed(cell) if cell.cell_type == "code" else ""
        for word in ("Warning", "warning:", "Traceback"):
            if word in text:
                found.append(f"cell {i} printed {word!r}: {text[:200]}")
    return found


def test_committed_notebook_holds_current_outputs_of_its_script():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    script = jupytext.read(SCRIPT)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in script.cells
    ], "regenerate with: python notebooks/build.py"
    stored = notebook.metadata.get("jaxnet", {}).get("source_sha256")
    assert stored == build.source_hash(script), (
        "the outputs come from other code (stale): python notebooks/build.py"
    )
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not problems(notebook)
    figures = [
        o.data["image/png"]
        for c in code
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(figures) >= 4  # the cat, the activations, a boundary, the sweep
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    assert "notebook ran in" in printed(code[-1])


def test_notebook_cites_the_lecture_by_title_and_links_only_inside_the_repository():
    script = jupytext.read(SCRIPT)
    text = "\n".join(cell.source for cell in script.cells)
    assert LECTURE_TITLE in " ".join(text.split())
    assert "../" not in text and "shared/" not in text, "a path outside the repo"
    root = NOTEBOOKS.parent
    for path in re.findall(r"`((?:docs|notebooks|jaxnet|experiments)/[\w./-]+)`", text):
        assert (root / path).exists(), f"the notebook names {path}, which is missing"


@pytest.fixture
def lecture_data():
    """The cats and Auto MPG, found as the loaders find them: skipped (or failed
    under JAXNET_REQUIRE_DATA=1) with the reason when either is missing."""
    return _dataset_root("catvnoncat", "autompg")


def test_notebook_reruns_to_its_stored_numbers(lecture_data):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    fresh = build.execute(jupytext.read(SCRIPT))  # raises on a failing cell
    seconds = time.perf_counter() - start
    assert not problems(fresh)
    pairs = [
        (i, old, new)
        for i, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True))
        if old.cell_type == "code"
    ]
    for i, old, new in pairs:
        old_text, old_numbers = comparable(printed(old))
        new_text, new_numbers = comparable(printed(new))
        assert new_text == old_text, f"cell {i} prints other text: rebuild"
        np.testing.assert_allclose(
            new_numbers,
            old_numbers,
            rtol=NUMBER_RTOL,
            atol=NUMBER_ATOL,
            err_msg=f"cell {i}: the stored numbers differ from a fresh run",
        )
        # figures and results alike (stdout may arrive in more or fewer chunks)
        kinds = [sorted(o.data) for o in new.outputs if o.output_type != "stream"]
        assert kinds == [
            sorted(o.data) for o in old.outputs if o.output_type != "stream"
        ], f"cell {i} shows other figures or results"
    assert seconds < build.TIME_LIMIT
    print(f"notebook executed in {seconds:.0f} s")


def test_stale_or_drifted_outputs_are_caught():
    """The checks above are not vacuous: an edited code cell changes the hash,
    and a changed cost or accuracy is outside the tolerance."""
    script = jupytext.read(SCRIPT)
    edited = jupytext.read(SCRIPT)
    cell = next(c for c in edited.cells if "learning_rate=0.005" in c.source)
    cell.source = cell.source.replace("learning_rate=0.005", "learning_rate=0.05")
    assert build.source_hash(edited) != build.source_hash(script)
    text, numbers = comparable("Cost after iteration 100: 0.584508 (1.2 s)\n")
    assert text == "Cost after iteration #: # (<time>)"
    assert numbers == [100.0, 0.584508]  # the timing is not compared
    assert not np.allclose(0.584508 * 1.03, 0.584508, rtol=NUMBER_RTOL)
    assert not np.allclose(70.0, 72.0, rtol=NUMBER_RTOL)  # 1 of 50 test images
