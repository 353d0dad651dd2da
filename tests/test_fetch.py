"""Tests for jaxnet.data.fetch and the ``python -m jaxnet.data`` command line."""

import functools
import hashlib
import http.server
import shutil
import threading

import pytest

from jaxnet.data import CATVNONCAT_SHA256, fetch_dataset, load_catvnoncat, sha256_of
from jaxnet.data.__main__ import main
from jaxnet.data.fetch import DATASETS, FetchError, fetch_file

TRAIN, TEST = "train_catvnoncat.h5", "test_catvnoncat.h5"


@pytest.fixture
def source(data_root, tmp_path):
    """A private copy of the real cat files (a folder holding catvnoncat/)."""
    root = tmp_path / "source"
    shutil.copytree(data_root / "catvnoncat", root / "catvnoncat")
    return root / "catvnoncat"


@pytest.fixture
def serve():
    """Start an HTTP server on 127.0.0.1 for a folder; returns its base URL."""
    servers = []

    def start(folder):
        handler = functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(folder)
        )
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _flip_byte(path, offset=5000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_sha256_of(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1_000_000)
    assert sha256_of(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_fetch_file_without_real_data(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    (src / "toy.bin").write_bytes(b"hello")
    good = hashlib.sha256(b"hello").hexdigest()
    assert fetch_file(src, "toy", "toy.bin", good, dest) == "fetched"
    assert fetch_file(src, "toy", "toy.bin", good, dest) == "present"
    with pytest.raises(FetchError, match=f"expected {'0' * 64}, got {good}"):
        fetch_file(src, "toy", "toy.bin", "0" * 64, tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []
    with pytest.raises(FetchError, match="missing.bin"):
        fetch_file(src, "toy", "missing.bin", good, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["toy.bin"]


def test_fetch_from_local_dir_and_idempotent(source, tmp_path, capsys):
    cache = tmp_path / "cache"
    dest = fetch_dataset("catvnoncat", source, cache=cache)
    assert dest == cache / "catvnoncat"
    for name, digest in CATVNONCAT_SHA256.items():
        assert sha256_of(dest / name) == digest
    stamp = (dest / TRAIN).stat().st_mtime_ns
    # again through the CLI, from the parent folder: everything is skipped
    assert (
        main(
            ["fetch", "catvnoncat", "--from", str(source.parent), "--cache", str(cache)]
        )
        == 0
    )
    assert capsys.readouterr().out.count("already present, verified; skipped") == 2
    assert (dest / TRAIN).stat().st_mtime_ns == stamp
    assert load_catvnoncat(cache).Y_test.shape == (1, 50)


def test_fetch_default_cache_is_searched(source, tmp_path, monkeypatch):
    monkeypatch.delenv("JAXNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dest = fetch_dataset("catvnoncat", source)
    assert dest == tmp_path / "xdg" / "jaxnet" / "catvnoncat"
    assert load_catvnoncat().X_train.shape == (12288, 209)


def test_fetch_over_http(source, serve, tmp_path, capsys):
    url = serve(source)
    cache = tmp_path / "cache"
    assert main(["fetch", "catvnoncat", "--from", url, "--cache", str(cache)]) == 0
    assert capsys.readouterr().out.count(": ok") == 2
    for name, digest in CATVNONCAT_SHA256.items():
        assert sha256_of(cache / "catvnoncat" / name) == digest
    assert _leftovers(cache / "catvnoncat") == []


def test_http_missing_file_fails_cleanly(serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError, match=f"{TRAIN}: could not fetch.*404"):
        fetch_dataset("catvnoncat", serve(empty), cache=tmp_path / "cache")
    assert list((tmp_path / "cache" / "catvnoncat").iterdir()) == []


def test_corrupted_source_is_refused(source, serve, tmp_path, capsys):
    cache = tmp_path / "cache"
    dest = cache / "catvnoncat"
    dest.mkdir(parents=True)
    shutil.copy(source / TRAIN, dest / TRAIN)  # a good file already installed
    good_train = (dest / TRAIN).read_bytes()
    _flip_byte(source / TEST)
    bad = sha256_of(source / TEST)
    rc = main(["fetch", "catvnoncat", "--from", serve(source), "--cache", str(cache)])
    err = capsys.readouterr().err
    assert rc != 0
    assert TEST in err and CATVNONCAT_SHA256[TEST] in err and bad in err
    assert sorted(p.name for p in dest.iterdir()) == [TRAIN]  # no temp, no test
    assert (dest / TRAIN).read_bytes() == good_train


def test_corrupted_source_leaves_existing_file_untouched(source, tmp_path):
    dest = tmp_path / "cache" / "catvnoncat"
    dest.mkdir(parents=True)
    (dest / TEST).write_bytes(b"an older, unverified copy")
    _flip_byte(source / TEST)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_dataset("catvnoncat", source, cache=tmp_path / "cache")
    assert (dest / TEST).read_bytes() == b"an older, unverified copy"
    assert _leftovers(dest) == []


def test_where_reports_search_order(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXNET_DATA", str(data_root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["where"]) == 0
    out = capsys.readouterr().out
    assert str(data_root / "catvnoncat") in out and "FOUND" in out
    assert "cache not searched" in out and str(tmp_path / "xdg") not in out
    assert out.count("sha256 ok") >= 4 and "MISMATCH" not in out


def _fake_dataset(root, name):
    folder = root / name
    folder.mkdir(parents=True)
    for filename in DATASETS[name]:
        (folder / filename).write_bytes(b"not the real file")
    return folder


def test_where_fails_on_a_checksum_mismatch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXNET_DATA", str(tmp_path / "env"))
    _fake_dataset(tmp_path / "env", "autompg")
    assert main(["where"]) == 1
    captured = capsys.readouterr()
    assert "cars.json: sha256 MISMATCH" in captured.out
    assert (
        "re-fetch with: python -m jaxnet.data fetch autompg --from URL_OR_DIR "
        f"--cache {tmp_path / 'env'}"
    ) in captured.out
    assert "sha256 mismatch in autompg" in captured.err


def test_where_in_the_cache_and_explicit_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JAXNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["where"]) == 0  # nothing anywhere: listed, not an error
    out = capsys.readouterr().out
    assert "not found; run: python -m jaxnet.data fetch autompg --from" in out
    _fake_dataset(tmp_path / "xdg" / "jaxnet", "mnist_t10k")
    assert main(["where"]) == 1
    out = capsys.readouterr().out
    assert (
        "re-fetch with: python -m jaxnet.data fetch mnist_t10k --from URL_OR_DIR\n"
        in out
    )
    assert main(["where", "--data", str(tmp_path / "nope")]) == 1
    assert (
        "--data " + str(tmp_path / "nope") + ": no such folder"
        in capsys.readouterr().err
    )
