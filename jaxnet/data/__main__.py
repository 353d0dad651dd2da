"""Command line: ``python -m jaxnet.data {fetch,where}``.

python -m jaxnet.data fetch catvnoncat --from URL_OR_DIR [--cache DIR]
python -m jaxnet.data where
"""

import argparse
import os
import sys

from jaxnet.data.fetch import DATASETS, FetchError, dataset_dest, fetch_file, sha256_of
from jaxnet.data.locate import ENV_VAR, candidate_dirs


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
    where = sub.add_parser("where", help="show the search order and what is found")
    where.add_argument("--data", default=None, help="explicit data_dir to search first")
    return parser


def run_fetch(name: str, source: str, cache) -> int:
    dest = dataset_dest(name, cache)
    print(f"fetching {name} from {source} into {dest}")
    failures = 0
    for filename, sha256 in DATASETS[name].items():
        try:
            status = fetch_file(source, name, filename, sha256, dest)
        except FetchError as e:
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


def run_where(data_dir) -> int:
    env = os.environ.get(ENV_VAR)
    print(f"${ENV_VAR} = {env!r}" if env else f"${ENV_VAR} not set")
    for name, hashes in DATASETS.items():
        print(f"{name}: needs {', '.join(hashes)}")
        chosen = None
        for folder, what in candidate_dirs(name, data_dir):
            present = [f for f in hashes if (folder / f).is_file()]
            complete = len(present) == len(hashes)
            mark = "FOUND" if complete and chosen is None else ""
            if complete and chosen is None:
                chosen = folder
            print(f"  {folder}  ({what}): {len(present)}/{len(hashes)} files {mark}")
        if chosen is None:
            print(f"  not found; run: python -m jaxnet.data fetch {name} --from SRC")
            continue
        for filename, sha256 in hashes.items():
            ok = sha256_of(chosen / filename) == sha256
            print(f"    {filename}: {'sha256 ok' if ok else 'sha256 MISMATCH'}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fetch":
        return run_fetch(args.name, args.source, args.cache)
    return run_where(args.data)


if __name__ == "__main__":
    sys.exit(main())
