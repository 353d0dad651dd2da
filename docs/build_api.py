"""Build the API reference from the docstrings: ``python docs/build_api.py``.

Writes HTML to build/api/ (not committed; open build/api/index.html), or to the
folder given as the first argument. Every public module of this checkout's
jaxnet gets a page (names starting with "_" are skipped), docstrings read as
Google style. Any warning (a docstring pdoc cannot parse, an import warning)
fails the build: the warnings are listed and the exit status is 1.

pdoc alone (``python -m pdoc jaxnet``) would document only the submodules named
in ``jaxnet.__all__`` and open on jaxnet.html, so the modules are listed here and
the landing page lists them all (docs/api_templates/index.html.jinja2).
"""

import pkgutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "docs" / "api_templates"  # a landing page listing every module


def public_modules(package) -> tuple[list[str], list[str]]:
    """(packages, plain modules) of ``package``, its own name included, without
    any whose name has a part starting with "_"."""
    packages, modules = [package.__name__], []
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            (packages if info.ispkg else modules).append(info.name)
    return packages, modules


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "build" / "api"
    sys.path.insert(0, str(ROOT))  # this checkout's jaxnet, however installed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import pdoc
        import pdoc.extract
        import pdoc.render

        import jaxnet

        packages, modules = public_modules(jaxnet)
        # pdoc adds the submodules a package names in its __all__ by itself;
        # naming one again would be a duplicate (a warning).
        walked = pdoc.extract.walk_specs(packages)
        specs = packages + [m for m in modules if m not in walked]
        pdoc.render.configure(docformat="google", template_directory=TEMPLATES)
        pdoc.pdoc(*specs, output_directory=out)
    for w in caught:
        print(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}")
    if caught:
        print(f"error: {len(caught)} warning(s) building the API reference")
        return 1
    print(
        f"API reference: {out / 'index.html'} ({len(set(walked) | set(specs))} modules)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
