"""Find a dataset folder on disk, or say exactly where to put it.

Search order for dataset ``name`` (first folder holding every required file wins):

1. ``data_dir`` if given: the folder holding the files, or a parent holding ``name/``.
2. ``$JAXNET_DATA/<name>/`` if the variable is set.
3. The cache, ``$XDG_CACHE_HOME/jaxnet/<name>/`` (default ``~/.cache/jaxnet/<name>/``),
   which is where ``python -m jaxnet.data fetch`` writes.

Nothing is ever downloaded here; a miss raises `DatasetNotFoundError`.
"""

import os
from pathlib import Path

ENV_VAR = "JAXNET_DATA"


class DatasetError(ValueError):
    """A dataset file exists but its contents are not what the loader expects."""


class DatasetNotFoundError(FileNotFoundError):
    """No searched folder holds all the files a dataset needs."""


def cache_dir(name: str) -> Path:
    """Cache folder for dataset ``name``: ``$XDG_CACHE_HOME/jaxnet/<name>``.

    Falls back to ``~/.cache/jaxnet/<name>`` when ``XDG_CACHE_HOME`` is unset or
    empty. The folder is not created.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jaxnet" / name


def candidate_dirs(name: str, data_dir=None) -> list[tuple[Path, str]]:
    """Folders searched for ``name``, in order, each with a short description.

    Args:
        name: dataset name, e.g. "catvnoncat".
        data_dir: optional explicit folder (str or Path).

    Returns:
        list of (folder, description) pairs in search order.
    """
    places = []
    if data_dir is not None:
        explicit = Path(data_dir).expanduser()
        places.append((explicit, "data_dir argument"))
        places.append((explicit / name, "data_dir argument / name"))
    env = os.environ.get(ENV_VAR)
    if env:
        places.append((Path(env).expanduser() / name, f"${ENV_VAR} (set)"))
    places.append((cache_dir(name), "cache"))
    return places


def _has_all(folder: Path, required: tuple[str, ...]) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in required)


def find_dataset_dir(name: str, required: tuple[str, ...], data_dir=None) -> Path:
    """Return the first searched folder that holds every file in ``required``.

    Args:
        name: dataset name, e.g. "catvnoncat"; also the sub-folder name.
        required: file names that must all be present.
        data_dir: optional explicit folder, searched first.

    Returns:
        the folder holding the files.

    Raises:
        DatasetNotFoundError: naming the files, every place searched, and the
            fetch command.
    """
    places = candidate_dirs(name, data_dir)
    for folder, _ in places:
        if _has_all(folder, required):
            return folder
    lines = [f"dataset {name!r} not found: need {', '.join(required)}. Searched:"]
    for folder, what in places:
        if what == "cache" and not os.environ.get(ENV_VAR):
            lines.append(f"  - ${ENV_VAR}/{name}  (${ENV_VAR} not set, skipped)")
        lines.append(f"  - {folder}  ({what})")
    lines.append(
        f"Get it with: python -m jaxnet.data fetch {name} --from URL_OR_DIR "
        f"(writes to {cache_dir(name)}), or pass data_dir / set ${ENV_VAR}."
    )
    raise DatasetNotFoundError("\n".join(lines))
