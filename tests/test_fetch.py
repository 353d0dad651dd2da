"""Tests for jaxnet.data.fetch and the ``python -m jaxnet.data`` command line."""

import functools
import hashlib
import http.server
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from jaxnet.data import CATVNONCAT_SHA256, fetch_dataset, load_catvnoncat, sha256_of
from jaxnet.data.__main__ import main
from jaxnet.data.fetch import DATASETS, SIZES, FetchError, fetch_file

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
    assert fetch_file(src, "toy", "toy.bin", good, dest, size=5) == "fetched"
    assert fetch_file(src, "toy", "toy.bin", good, dest, size=5) == "present"
    with pytest.raises(FetchError, match=f"expected {'0' * 64}, got {good}"):
        fetch_file(src, "toy", "toy.bin", "0" * 64, tmp_path / "other", size=5)
    assert list((tmp_path / "other").iterdir()) == []
    with pytest.raises(FetchError, match="missing.bin"):
        fetch_file(src, "toy", "missing.bin", good, dest, size=5)
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


# --- bounded and interruptible transfers -------------------------------------
# A hostile server and hostile local sources. Each behaviour stops by itself after
# HOSTILE_LIMIT bytes or HOSTILE_SECONDS, so that on code without the bounds these
# tests fail (wrong message, too slow) instead of filling the disk or hanging.

HOSTILE_LIMIT = 64 << 20
HOSTILE_SECONDS = 20.0
TOY = b"a small file of known size\n" * 40
TOY_SHA = hashlib.sha256(TOY).hexdigest()
CARS, CARS_SIZE = "cars.json", SIZES["autompg"]["cars.json"]


class HostileHandler(http.server.BaseHTTPRequestHandler):
    """GET /MODE/FILE: how the body misbehaves is the first path segment.

    endless: zeros without a Content-Length; trickle: one byte per 0.2 s;
    drip: one byte per 0.02 s; hang: headers, then nothing; short: announces
    the real length, sends half and closes; announced: Content-Length 10.
    """

    started = threading.Event()

    def log_message(self, *args):
        pass

    def _send(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up
            return False
        return True

    def do_GET(self):
        mode = self.path.strip("/").split("/")[0]
        self.send_response(200)
        length = {"short": len(TOY), "announced": 10}.get(mode)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        type(self).started.set()
        end = time.monotonic() + HOSTILE_SECONDS
        if mode == "endless":
            sent = 0
            while sent < HOSTILE_LIMIT and self._send(bytes(1 << 16)):
                sent += 1 << 16
        elif mode in ("trickle", "drip"):
            pause = 0.2 if mode == "trickle" else 0.02
            while time.monotonic() < end and self._send(b"x"):
                time.sleep(pause)
        elif mode == "hang":
            while time.monotonic() < end and not self.server.closing:
                time.sleep(0.05)
        elif mode == "short":
            self._send(TOY[: len(TOY) // 2])


@pytest.fixture
def hostile():
    """Base URL of a HostileHandler server on 127.0.0.1."""
    HostileHandler.started = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    server.closing = False
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.closing = True
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _fetch_toy(url, dest, **limits):
    return fetch_file(url, "toy", "toy.bin", TOY_SHA, dest, size=len(TOY), **limits)


def test_every_dataset_file_has_a_size():
    assert {name: set(files) for name, files in SIZES.items()} == {
        name: set(files) for name, files in DATASETS.items()
    }
    assert all(size > 0 for files in SIZES.values() for size in files.values())


def test_the_real_files_have_the_recorded_sizes(data_root, autompg_root):
    for name, files in SIZES.items():
        root = autompg_root if name == "autompg" else data_root
        for filename, size in files.items():
            assert (root / name / filename).stat().st_size == size


@pytest.mark.exclusive
def test_an_endless_body_is_cut_at_the_known_size(hostile, tmp_path):
    start = time.monotonic()
    with pytest.raises(FetchError, match=f"more than the expected {len(TOY)} bytes"):
        _fetch_toy(f"{hostile}/endless/", tmp_path)
    assert time.monotonic() - start < 5  # 64 MiB would take longer on 2 cores
    assert list(tmp_path.iterdir()) == []


def test_a_short_body_is_refused(hostile, tmp_path):
    with pytest.raises(FetchError, match=f"after {len(TOY) // 2} of the expected"):
        _fetch_toy(f"{hostile}/short/", tmp_path)
    with pytest.raises(FetchError, match=f"announces 10 bytes, expected {len(TOY)}"):
        _fetch_toy(f"{hostile}/announced/", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.exclusive
@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_a_stalled_source_is_abandoned(hostile, tmp_path, mode):
    # trickle waits 0.2 s between bytes, hang forever: both exceed a 0.1 s stall
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"no data for 0\.1 s .*stalled"):
        _fetch_toy(f"{hostile}/{mode}/", tmp_path, stall_s=0.1)
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.exclusive
def test_a_slow_source_hits_the_deadline(hostile, tmp_path):
    # one byte per 0.02 s never stalls for 1 s, but 1080 bytes need ~22 s
    start = time.monotonic()
    with pytest.raises(FetchError, match="deadline passed with [0-9]+ of 1080"):
        _fetch_toy(f"{hostile}/drip/", tmp_path, deadline_s=1.0, stall_s=1.0)
    # bound: deadline + one read of at most min(stall, deadline) = 2 s; 5 s is slack
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_time_limits_are_validated(tmp_path):
    for bad in (0, -1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="seconds > 0"):
            _fetch_toy(tmp_path, tmp_path / "d", deadline_s=bad)
    with pytest.raises(ValueError, match="no known size for toy/toy.bin"):
        fetch_file(tmp_path, "toy", "toy.bin", TOY_SHA, tmp_path / "d")


def _run_cli(args, timeout=60):
    """``python -m jaxnet.data ARGS`` that may not write more than 16 MiB."""

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))

    return subprocess.run(
        [sys.executable, "-m", "jaxnet.data", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit_file_size,
    )


@pytest.mark.parametrize(
    "kind", ["symlink to /dev/zero", "FIFO (named pipe)", "folder", "short file"]
)
def test_a_local_source_that_is_not_the_file_is_refused_unread(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    path = src / CARS
    if kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "FIFO (named pipe)":
        os.mkfifo(path)  # opening it for reading would block: no writer
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"{}")
    cache = tmp_path / "cache"
    done = _run_cli(["fetch", "autompg", "--from", str(src), "--cache", str(cache)])
    assert done.returncode == 1, done.stderr
    expected = {
        "symlink to /dev/zero": "is a character device, not a regular file",
        "FIFO (named pipe)": "is a FIFO (named pipe), not a regular file",
        "folder": "is a folder, not a regular file",
        "short file": f"has 2 bytes, expected {CARS_SIZE}",
    }[kind]
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert list((cache / "autompg").iterdir()) == []


def test_bad_time_limits_on_the_command_line(tmp_path):
    done = _run_cli(["fetch", "autompg", "--from", str(tmp_path), "--timeout", "0"])
    assert done.returncode == 2
    assert "--timeout: expected a number of seconds > 0; got '0'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.exclusive
def test_ctrl_c_mid_transfer_leaves_nothing(hostile, tmp_path):
    cache = tmp_path / "cache"
    args = ["fetch", "autompg", "--from", f"{hostile}/trickle/", "--cache", str(cache)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxnet.data", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert HostileHandler.started.wait(timeout=60), "the fetch did not start"
        time.sleep(0.5)  # a few bytes into the temporary file
        assert [p.name for p in (cache / "autompg").iterdir()][0].endswith(".part")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # generous: a loaded CI machine
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines() == [
        f"interrupted while fetching {CARS}; it was not installed and no partial "
        "file was left"
    ]
    assert list((cache / "autompg").iterdir()) == []


def test_ctrl_c_turned_into_another_error_is_still_an_interrupt(
    tmp_path, monkeypatch, capsys
):
    """A library may catch the KeyboardInterrupt of a Ctrl-C mid-read and raise
    something else (a socket closed under it); the fetch still says
    "interrupted" and exits 130, not "FAILED" and 1."""
    import jaxnet.data.__main__ as cli

    def converted(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, mid-transfer
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt as e:
            raise FetchError("cars.json: could not fetch: connection closed") from e
        raise AssertionError("SIGINT was not delivered")

    monkeypatch.setattr(cli, "fetch_file", converted)
    before = signal.getsignal(signal.SIGINT)
    code = main(["fetch", "autompg", "--from", str(tmp_path), "--cache", str(tmp_path)])
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted while fetching" in err and "FAILED" not in err
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
