"""Copy or download a dataset into the cache, verifying every file's sha256.

Only ever called explicitly (``python -m jaxnet.data fetch NAME --from SRC``). Each
file is written to a temporary file in the destination folder, hashed, and moved
into place with ``os.replace`` only if the hash matches, so a failed or corrupt
transfer never leaves a half-written file or damages a file already there.
"""

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from jaxnet.data.autompg import AUTOMPG_SHA256
from jaxnet.data.catvnoncat import CATVNONCAT_SHA256
from jaxnet.data.locate import cache_dir
from jaxnet.data.mnist import MNIST_T10K_SHA256

DATASETS: dict[str, dict[str, str]] = {
    "catvnoncat": CATVNONCAT_SHA256,
    "mnist_t10k": MNIST_T10K_SHA256,
    "autompg": AUTOMPG_SHA256,
}
CHUNK = 1 << 20
TIMEOUT_S = 60


class FetchError(RuntimeError):
    """A file could not be fetched, or its sha256 did not match."""


def sha256_of(path) -> str:
    """Hex sha256 digest of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_url(source) -> bool:
    """True if ``source`` is an http(s) URL rather than a local folder."""
    return str(source).startswith(("http://", "https://"))


def dataset_dest(name: str, cache=None) -> Path:
    """Folder the files of ``name`` go to: ``<cache>/<name>``, or `cache_dir`."""
    return Path(cache).expanduser() / name if cache is not None else cache_dir(name)


def _open_source(source, name: str, filename: str):
    """Open one source file for binary reading; returns (stream, description)."""
    if is_url(source):
        url = str(source).rstrip("/") + "/" + filename
        return urllib.request.urlopen(url, timeout=TIMEOUT_S), url
    folder = Path(source).expanduser()
    path = folder / filename
    if not path.is_file() and (folder / name / filename).is_file():
        path = folder / name / filename
    return open(path, "rb"), str(path)


def fetch_file(source, name: str, filename: str, sha256: str, dest: Path) -> str:
    """Fetch one file into ``dest`` unless a verified copy is already there.

    Args:
        source: local folder (holding the file, or holding name/) or http(s) URL
            of the folder; the file name is appended.
        name: dataset name.
        filename: file to fetch.
        sha256: expected hex digest.
        dest: destination folder (created if needed).

    Returns:
        "present" if a verified copy was already there, else "fetched".

    Raises:
        FetchError: the transfer failed or the hash did not match; the temporary
            file is removed and any existing file is left untouched.
    """
    target = dest / filename
    if target.is_file() and sha256_of(target) == sha256:
        return "present"
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                stream, origin = _open_source(source, name, filename)
                with stream:
                    shutil.copyfileobj(stream, out, CHUNK)
            except (OSError, urllib.error.URLError, ValueError) as e:
                raise FetchError(
                    f"{filename}: could not fetch from {source}: {e}"
                ) from e
        got = sha256_of(tmp)
        if got != sha256:
            raise FetchError(
                f"{filename}: sha256 mismatch for {origin}: expected {sha256}, "
                f"got {got}; not installed"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return "fetched"


def fetch_dataset(name: str, source, cache=None) -> Path:
    """Fetch every file of dataset ``name`` from ``source`` and verify it.

    Args:
        name: a key of `DATASETS` ("catvnoncat", "mnist_t10k" or "autompg").
        source: local folder or http(s) URL of the folder holding the files.
        cache: optional root folder; files go to ``<cache>/<name>``. Defaults to
            the cache searched by the loaders (`cache_dir`).

    Returns:
        the folder now holding all the verified files.

    Raises:
        KeyError: unknown dataset name.
        FetchError: at the first file that fails (earlier files stay installed).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    dest = dataset_dest(name, cache)
    for filename, sha256 in DATASETS[name].items():
        fetch_file(source, name, filename, sha256, dest)
    return dest
