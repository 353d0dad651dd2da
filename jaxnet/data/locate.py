"""Find a dataset folder on disk, or say exactly where to put it.

Only the most explicit location given is searched for dataset ``name``:

1. ``data_dir`` if given (``--data`` on the command line): the folder holding the
   files, or a parent holding ``name/``. Nothing else is searched.
2. Otherwise ``$JAXNET_DATA/<name>/`` if the variable is set (and not empty).
   Nothing else is searched.
3. Otherwise the cache, ``$XDG_CACHE_HOME/jaxnet/<name>/`` (default
   ``~/.cache/jaxnet/<name>/``), which is where ``python -m jaxnet.data fetch``
   writes.

An explicit location is authoritative: if it lacks a file, the error names it and
what is missing, and the cache is never used in its place (a typo in ``--data``
would otherwise train silently on other data). Nothing is ever downloaded here; a
miss raises `DatasetNotFoundError`.
"""

import os
from pathlib import Path

ENV_VAR = "JAXNET_DATA"


class DatasetError(ValueError):
    """A dataset file exists but its contents are not what the loader expects."""


class DatasetNotFoundError(FileNotFoundError):
    """The searched location does not hold all the files a dataset needs."""


def cache_dir(name: str) -> Path:
    """Cache folder for dataset ``name``: ``$XDG_CACHE_HOME/jaxnet/<name>``.

    Falls back to ``~/.cache/jaxnet/<name>`` when ``XDG_CACHE_HOME`` is unset or
    empty. The folder is not created.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jaxnet" / name


def location_kind(data_dir=None) -> str:
    """Which location is authoritative: "data_dir", "env" or "cache"."""
    if data_dir is not None:
        return "data_dir"
    return "env" if os.environ.get(ENV_VAR) else "cache"


def candidate_dirs(name: str, data_dir=None) -> list[tuple[Path, str]]:
    """Folders searched for ``name``, in order, each with a short description.

    Only the authoritative location's folders are listed (see the module doc).

    Args:
        name: dataset name, e.g. "catvnoncat".
        data_dir: optional explicit folder (str or Path).

    Returns:
        list of (folder, description) pairs in search order.
    """
    kind = location_kind(data_dir)
    if kind == "data_dir":
        explicit = Path(data_dir).expanduser()
        return [
            (explicit, "data_dir argument"),
            (explicit / name, "data_dir argument / name"),
        ]
    if kind == "env":
        return [(Path(os.environ[ENV_VAR]).expanduser() / name, f"${ENV_VAR}")]
    return [(cache_dir(name), "cache")]


def missing_files(folder: Path, required: tuple[str, ...]) -> list[str] | None:
    """Names in ``required`` that ``folder`` lacks; None if it is not a folder."""
    if not folder.is_dir():
        return None
    return [f for f in required if not (folder / f).is_file()]


def _what_is_there(folder: Path, required: tuple[str, ...]) -> str:
    missing = missing_files(folder, required)
    if missing is None:
        return "does not exist" if not folder.exists() else "is not a folder"
    return "missing " + ", ".join(missing)


def _not_found_message(name, required, data_dir, places) -> str:
    kind = location_kind(data_dir)
    need = ", ".join(required)
    fetch = f"python -m jaxnet.data fetch {name} --from URL_OR_DIR"
    if kind == "data_dir":
        root = Path(data_dir).expanduser()
        head = (
            f"dataset {name!r} not found in data_dir {root}: need {need}. "
            f"An explicit data_dir is authoritative: ${ENV_VAR} and the cache "
            f"({cache_dir(name)}) were not searched."
        )
        hint = (
            f"Put the files there, or get them with: {fetch} --cache {root} "
            f"(writes to {root / name}); or drop data_dir to use the default search."
        )
    elif kind == "env":
        root = Path(os.environ[ENV_VAR]).expanduser()
        head = (
            f"dataset {name!r} not found under ${ENV_VAR}={root}: need {need}. "
            f"${ENV_VAR} is set, so it is authoritative: the cache "
            f"({cache_dir(name)}) was not searched."
        )
        hint = (
            f"Get it with: {fetch} --cache {root} (writes to {root / name}), "
            f"or unset {ENV_VAR} to use the cache."
        )
    else:
        head = (
            f"dataset {name!r} not found: need {need}. "
            f"${ENV_VAR} not set and no data_dir given, so only the cache was searched."
        )
        hint = (
            f"Get it with: {fetch} (writes to {cache_dir(name)}), "
            f"or pass data_dir (--data) / set ${ENV_VAR}."
        )
    lines = [head, "Searched:"]
    lines += [
        f"  - {folder}  ({what}): {_what_is_there(folder, required)}"
        for folder, what in places
    ]
    lines.append(hint)
    return "\n".join(lines)


def find_dataset_dir(name: str, required: tuple[str, ...], data_dir=None) -> Path:
    """Return the folder of the authoritative location that holds ``required``.

    Args:
        name: dataset name, e.g. "catvnoncat"; also the sub-folder name.
        required: file names that must all be present.
        data_dir: optional explicit folder; if given, the only place searched
            (the folder itself, then ``data_dir/name``).

    Returns:
        the folder holding the files.

    Raises:
        DatasetNotFoundError: naming the location searched, the files missing
            in each folder, the places not searched, and the fetch command.
    """
    places = candidate_dirs(name, data_dir)
    for folder, _ in places:
        if missing_files(folder, required) == []:
            return folder
    raise DatasetNotFoundError(_not_found_message(name, required, data_dir, places))
