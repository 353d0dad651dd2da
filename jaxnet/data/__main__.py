"""Command line: ``python -m jaxnet.data {fetch,where}``.

python -m jaxnet.data fetch catvnoncat --from URL_OR_DIR [--cache DIR]
    [--timeout S] [--stall-timeout S]
python -m jaxnet.data where [--data DIR]

``fetch`` exits 1 if a file fails (too long, too short, too slow, stalled, not a
regular file, wrong sha256) and 130 on Ctrl-C, leaving no partial file either way.
``where`` exits 1 if a file found has the wrong sha256 (and says how to re-fetch).
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from jaxnet.data.fetch import (
    DATASETS,
    DEADLINE_S,
    STALL_S,
    FetchError,
    dataset_dest,
    fetch_file,
    positive_seconds,
    sha256_of,
)
from jaxnet.data.locate import (
    ENV_VAR,
    cache_dir,
    candidate_dirs,
    location_kind,
    missing_files,
)


def _seconds(flag: str):
    def parse(text: str) -> float:
        try:
            return positive_seconds(text, flag)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number of seconds > 0; got {text!r}"
            ) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxnet.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="copy or download a dataset, sha256-checked")
    fetch.add_argument("name", choices=sorted(DATASETS))
    fetch.add_argument(
        "--from",
        dest="source",
        required=True,
        help="local folder or http(s) URL of the folder holding the files",
    )
    fetch.add_argument(
        "--cache", default=None, help="root folder; files go to CACHE/<name>"
    )
    fetch.add_argument(
        "--timeout",
        type=_seconds("--timeout"),
        default=DEADLINE_S,
        help=f"the whole fetch must end within S seconds (default {DEADLINE_S:g})",
    )
    fetch.add_argument(
        "--stall-timeout",
        type=_seconds("--stall-timeout"),
        default=STALL_S,
        help=f"give up when a source sends nothing for S s (default {STALL_S:g})",
    )
    where = sub.add_parser("where", help="show the search order and what is found")
    where.add_argument("--data", default=None, help="explicit data_dir to search first")
    return parser


def run_fetch(
    name: str,
    source: str,
    cache,
    deadline_s: float = DEADLINE_S,
    stall_s: float = STALL_S,
) -> int:
    """Fetch every file of ``name``; 0 if all are in place, 1 if any failed.

    Ctrl-C prints one line and returns 130; the file being fetched is not
    installed and its temporary file is removed (`fetch_file`).
    """
    with _ctrl_c_noted() as interrupted:
        return _fetch_files(name, source, cache, deadline_s, stall_s, interrupted)


@contextlib.contextmanager
def _ctrl_c_noted():
    """Note every SIGINT (then raise KeyboardInterrupt as Python does), so a
    Ctrl-C that a library turned into another error on its way up (a socket
    closed mid-read) is still reported as an interrupt, not a failure."""
    interrupted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signals reach the main thread only
        return

    def note(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _fetch_files(name, source, cache, deadline_s, stall_s, interrupted) -> int:
    dest = dataset_dest(name, cache)
    print(f"fetching {name} from {source} into {dest}", flush=True)
    deadline = time.monotonic() + deadline_s
    failures = 0
    for filename, sha256 in DATASETS[name].items():
        left = max(deadline - time.monotonic(), 1e-9)
        try:
            status = fetch_file(
                source,
                name,
                filename,
                sha256,
                dest,
                deadline_s=left,
                stall_s=stall_s,
            )
        except (KeyboardInterrupt, FetchError) as e:
            if isinstance(e, KeyboardInterrupt) or interrupted:
                print(
                    f"interrupted while fetching {filename}; it was not installed "
                    "and no partial file was left",
                    file=sys.stderr,
                )
                return 128 + signal.SIGINT
            print(f"  FAILED  {e}", file=sys.stderr)
            failures += 1
            continue
        note = "already present, verified; skipped" if status == "present" else "ok"
        print(f"  {filename}: {note} (sha256 {sha256})")
    if failures:
        print(
            f"{failures} file(s) failed; nothing half-written was left", file=sys.stderr
        )
        return 1
    return 0


def refetch_command(name: str, folder: Path) -> str:
    """The fetch command that rewrites ``name``'s files in ``folder``."""
    fetch = f"python -m jaxnet.data fetch {name} --from URL_OR_DIR"
    if folder == cache_dir(name):
        return fetch
    if folder.name == name:
        return f"{fetch} --cache {folder.parent}"
    return f"{fetch} --cache DIR, then use DIR/{name} (or copy verified files here)"


def _check_found(name: str, folder: Path, hashes: dict[str, str]) -> int:
    """Print each file's sha256 verdict; returns the number of mismatches."""
    bad = 0
    for filename, sha256 in hashes.items():
        got = sha256_of(folder / filename)
        if got == sha256:
            print(f"    {filename}: sha256 ok")
            continue
        bad += 1
        print(f"    {filename}: sha256 MISMATCH (expected {sha256}, got {got})")
    if bad:
        print(f"    re-fetch with: {refetch_command(name, folder)}")
    return bad


def run_where(data_dir) -> int:
    """Print where each dataset is looked for and found, checking every sha256.

    Returns:
        0 if every file found has the expected sha256; 1 if any does not, or if
        an explicit --data folder does not exist.
    """
    kind = location_kind(data_dir)
    env = os.environ.get(ENV_VAR)
    print(f"${ENV_VAR} = {env!r}" if env else f"${ENV_VAR} not set")
    if kind == "data_dir":
        print(f"searching only --data {data_dir} (explicit, authoritative)")
    elif kind == "env":
        print(f"searching only ${ENV_VAR} (set, authoritative; cache not searched)")
    else:
        print("searching the cache")
    mismatched = []
    for name, hashes in DATASETS.items():
        print(f"{name}: needs {', '.join(hashes)}")
        chosen = None
        for folder, what in candidate_dirs(name, data_dir):
            missing = missing_files(folder, tuple(hashes))
            complete = missing == []
            mark = "  FOUND" if complete and chosen is None else ""
            if complete and chosen is None:
                chosen = folder
            have = len(hashes) - (len(hashes) if missing is None else len(missing))
            print(f"  {folder}  ({what}): {have}/{len(hashes)} files{mark}")
        if chosen is None:
            print(f"  not found; run: {refetch_command(name, folder)}")
        elif _check_found(name, chosen, hashes):
            mismatched.append(name)
    if mismatched:
        print(
            f"sha256 mismatch in {', '.join(mismatched)}: the files are corrupt or "
            "not the ones jaxnet expects; re-fetch them (commands above)",
            file=sys.stderr,
        )
        return 1
    if kind == "data_dir" and not Path(data_dir).expanduser().is_dir():
        print(f"--data {data_dir}: no such folder", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fetch":
        return run_fetch(
            args.name, args.source, args.cache, args.timeout, args.stall_timeout
        )
    return run_where(args.data)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # outside a transfer (run_fetch handles those)
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
