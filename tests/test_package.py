"""Packaging: version, license, py.typed, what is installed, ``python -m jaxnet``."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import pytest

import jaxnet
from jaxnet.__main__ import describe, list_experiments
from jaxnet._version import __version__

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_is_exported_and_is_the_changelogs_newest():
    """The version names the CHANGELOG's newest heading: "0.4.0 (unreleased)" is
    0.4.0.dev0, a released "0.4.0" is 0.4.0; research code pins by it."""
    assert jaxnet.__version__ == __version__
    newest = re.search(r"^## (\S+)( \(unreleased\))?$", CHANGELOG.read_text(), re.M)
    assert newest, "CHANGELOG.md has no '## X.Y.Z' heading"
    number, unreleased = newest.groups()
    assert __version__ == (f"{number}.dev0" if unreleased else number)


def test_python_m_jaxnet(tmp_path):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": path}  # this checkout
    done = subprocess.run(
        [sys.executable, "-m", "jaxnet"],
        cwd=tmp_path,  # not the repository root: found through the package
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"jaxnet {__version__}\n")
    assert f"jax {jax.__version__}, default backend cpu" in out
    assert "python -m experiments.cat_classifier" in out
    assert "experiments.common" not in out


def test_experiments_listed_only_when_present(tmp_path):
    folder = tmp_path / "experiments"
    assert list_experiments(folder) == []
    assert any("not installed with the package" in line for line in describe(folder))
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "common.py").write_text("def main():\n    pass\n")
    (folder / "study.py").write_text(
        '"""What it shows.\n\nMore."""\n\ndef main():\n    pass\n'
    )
    (folder / "helper.py").write_text("def other():\n    pass\n")
    (folder / "broken.py").write_text("def main(:\n")
    (folder / "page").mkdir()  # a package run with python -m experiments.page
    (folder / "page" / "__init__.py").write_text("")
    (folder / "page" / "__main__.py").write_text('"""A page."""\ndef main():\n  pass\n')
    assert list_experiments(folder) == [
        ("page", "A page."),
        ("study", "What it shows."),
    ]


def test_only_jaxnet_is_installed(pyproject):
    tool = pyproject["tool"]["setuptools"]
    assert tool["packages"]["find"]["include"] == ["jaxnet*"]
    setuptools = pytest.importorskip("setuptools")
    found = setuptools.find_packages(str(ROOT), include=["jaxnet*"])
    assert "jaxnet" in found and "jaxnet.data" in found
    assert not any(p.split(".")[0] in ("experiments", "benchmarks") for p in found)


def test_metadata_license_version_and_typed(pyproject):
    project = pyproject["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "version" in project["dynamic"] and "version" not in project
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "jaxnet._version.__version__"}
    assert (Path(jaxnet.__file__).parent / "py.typed").is_file()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["jaxnet"]
    dev = " ".join(project["optional-dependencies"]["dev"])
    for name in ("nbclient", "nbformat", "ipykernel", "jupytext"):
        assert name in dev
