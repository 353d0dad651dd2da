"""Copy or download a dataset into the cache, verifying every file's size and sha256.

Only ever called explicitly (``python -m jaxnet.data fetch NAME --from SRC``). Each
file is written to a temporary file in the destination folder, hashed, and moved
into place with ``os.replace`` only if the hash matches, so a failed, corrupt or
interrupted transfer never leaves a half-written file or damages a file already
there.

Every transfer is bounded (`SIZES`, `DEADLINE_S`, `STALL_S`):

- size: each file's length is known, so no more than that length plus one byte is
  ever read; a longer source is refused as soon as the extra byte arrives, a
  shorter one when it ends, a server announcing another Content-Length at once;
- time: the whole fetch must end within a deadline, and a source that sends
  nothing for the stall timeout is abandoned. The deadline is checked between
  reads and each read waits at most min(stall, deadline) s, so a transfer ends
  within deadline + min(stall, deadline) s however the source behaves;
- kind: a local source must be a regular file. It is checked with ``os.stat``
  before it is opened, then opened with ``O_NONBLOCK`` and checked again, so a
  FIFO, a device (a symlink to /dev/zero) or a folder is refused, never read.
"""

import hashlib
import http.client
import math
import os
import stat
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
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
# The exact length in bytes of each file (docs/data.md); a transfer is capped at it.
SIZES: dict[str, dict[str, int]] = {
    "catvnoncat": {
        "train_catvnoncat.h5": 2_572_022,
        "test_catvnoncat.h5": 616_958,
    },
    "mnist_t10k": {
        "t10k-images-idx3-ubyte.gz": 1_648_877,
        "t10k-labels-idx1-ubyte.gz": 4_542,
    },
    "autompg": {"cars.json": 100_492},
}
CHUNK = 1 << 20
DEADLINE_S = 600.0  # the whole fetch (all files of a dataset); >= ~7 KB/s
STALL_S = 30.0  # the longest wait for the next bytes of a source


class FetchError(RuntimeError):
    """A file could not be fetched, or its size or sha256 did not match."""


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


def positive_seconds(value, what: str) -> float:
    """``value`` as a float > 0 and finite, else ValueError naming ``what``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a number of seconds > 0; got {value!r}")
    return seconds


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _open_local(path: Path, filename: str, size: int):
    """Open a regular file of ``size`` bytes without ever blocking; (read, close)."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks, opens nothing
    except OSError as e:
        raise FetchError(f"{filename}: could not fetch from {path}: {e}") from e
    if not stat.S_ISREG(mode):
        raise FetchError(
            f"{filename}: {path} is {_kind(mode)}, not a regular file; refused "
            "without reading it. Point --from at the folder holding the real file"
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    info = os.fstat(fd)  # what was opened (it may have been swapped since the stat)
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        os.close(fd)
        what = (
            f"is {_kind(info.st_mode)}"
            if not stat.S_ISREG(info.st_mode)
            else f"has {info.st_size} bytes, expected {size}"
        )
        raise FetchError(
            f"{filename}: {path} {what}; not the file jaxnet expects, refused"
        )
    return (lambda n: os.read(fd, n)), (lambda: os.close(fd))


def _open_url(url: str, filename: str, size: int, wait_s: float):
    """Open ``url``; refuses a Content-Length other than ``size``; (read, close)."""
    response = urllib.request.urlopen(url, timeout=wait_s)  # noqa: S310 (http(s) only)
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.strip() != str(size):
        response.close()
        raise FetchError(
            f"{filename}: {url} announces {announced.strip()} bytes, expected {size}; "
            "not the file jaxnet expects, refused"
        )
    return response.read1, response.close


def _open_source(source, name: str, filename: str, size: int, wait_s: float):
    """Open one source file for reading; returns (read, close, description)."""
    if is_url(source):
        url = str(source).rstrip("/") + "/" + filename
        return (*_open_url(url, filename, size, wait_s), url)
    folder = Path(source).expanduser()
    path = folder / filename
    if not os.path.lexists(path) and os.path.lexists(folder / name / filename):
        path = folder / name / filename
    return (*_open_local(path, filename, size), str(path))


def _copy_bounded(
    read: Callable[[int], bytes],
    out,
    size: int,
    deadline: float,
    stall_s: float,
    filename: str,
    origin: str,
) -> str:
    """Copy exactly ``size`` bytes from ``read`` to ``out``; returns their sha256.

    Reads at most size + 1 bytes; raises FetchError on one byte too many, on a
    short source, past the ``deadline`` (a time.monotonic() value), or when a
    read waits more than its socket's timeout (the stall timeout).
    """
    digest = hashlib.sha256()
    got = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError(
                f"{filename}: deadline passed with {got} of {size} bytes from "
                f"{origin}; try a faster source or a larger --timeout"
            )
        try:
            chunk = read(min(CHUNK, size + 1 - got))
        except TimeoutError as e:
            raise FetchError(
                f"{filename}: no data for {stall_s:g} s from {origin} ({got} of "
                f"{size} bytes); the source stalled. Retry, or raise --stall-timeout"
            ) from e
        if not chunk:
            break
        got += len(chunk)
        if got > size:
            raise FetchError(
                f"{filename}: {origin} sends more than the expected {size} bytes; "
                "not the file jaxnet expects, refused"
            )
        digest.update(chunk)
        out.write(chunk)
    if got < size:
        raise FetchError(
            f"{filename}: {origin} ended after {got} of the expected {size} bytes; "
            "refused (retry, or use a complete copy)"
        )
    return digest.hexdigest()


def fetch_file(
    source,
    name: str,
    filename: str,
    sha256: str,
    dest: Path,
    *,
    size: int | None = None,
    deadline_s: float = DEADLINE_S,
    stall_s: float = STALL_S,
) -> str:
    """Fetch one file into ``dest`` unless a verified copy is already there.

    Args:
        source: local folder (holding the file, or holding name/) or http(s) URL
            of the folder; the file name is appended.
        name: dataset name.
        filename: file to fetch.
        sha256: expected hex digest.
        dest: destination folder (created if needed).
        size: expected length in bytes; defaults to ``SIZES[name][filename]``.
        deadline_s: the transfer must end within this many seconds.
        stall_s: give up when the source sends nothing for this many seconds.

    Returns:
        "present" if a verified copy was already there, else "fetched".

    Raises:
        FetchError: the transfer failed, was too long, too short, too slow or
            stalled, the source is not a regular file, or the hash did not
            match; the temporary file is removed and any existing file is left
            untouched (also on KeyboardInterrupt, which is re-raised).
        ValueError: no known size, or a time limit that is not > 0.
    """
    if size is None:
        size = SIZES.get(name, {}).get(filename)
        if size is None:
            raise ValueError(f"no known size for {name}/{filename}; pass size=")
    deadline_s = positive_seconds(deadline_s, "the deadline")
    stall_s = positive_seconds(stall_s, "the stall timeout")
    deadline = time.monotonic() + deadline_s
    target = dest / filename
    if (
        target.is_file()
        and target.stat().st_size == size
        and sha256_of(target) == sha256
    ):
        return "present"
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                wait_s = min(stall_s, deadline_s)
                read, close, origin = _open_source(source, name, filename, size, wait_s)
                try:
                    got = _copy_bounded(
                        read, out, size, deadline, stall_s, filename, origin
                    )
                finally:
                    close()
            except TimeoutError as e:  # while connecting
                raise FetchError(
                    f"{filename}: no answer within {wait_s:g} s from {source}: {e}"
                ) from e
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise FetchError(
                    f"{filename}: could not fetch from {source}: {e}"
                ) from e
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


def fetch_dataset(
    name: str,
    source,
    cache=None,
    *,
    deadline_s: float = DEADLINE_S,
    stall_s: float = STALL_S,
) -> Path:
    """Fetch every file of dataset ``name`` from ``source`` and verify it.

    Args:
        name: a key of `DATASETS` ("catvnoncat", "mnist_t10k" or "autompg").
        source: local folder or http(s) URL of the folder holding the files.
        cache: optional root folder; files go to ``<cache>/<name>``. Defaults to
            the cache searched by the loaders (`cache_dir`).
        deadline_s: every file must be in place within this many seconds.
        stall_s: give up when a source sends nothing for this many seconds.

    Returns:
        the folder now holding all the verified files.

    Raises:
        KeyError: unknown dataset name.
        FetchError: at the first file that fails (earlier files stay installed).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    dest = dataset_dest(name, cache)
    deadline = time.monotonic() + positive_seconds(deadline_s, "the deadline")
    for filename, sha256 in DATASETS[name].items():
        left = max(deadline - time.monotonic(), 1e-9)
        fetch_file(
            source, name, filename, sha256, dest, deadline_s=left, stall_s=stall_s
        )
    return dest
