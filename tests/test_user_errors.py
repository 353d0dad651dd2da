"""Every user mistake ends in one line "error: ...", a non-zero exit, no traceback.

Each case runs a real experiment in a subprocess, as a user would, against a
run folder or checkpoint broken in one way: self-contradicting checkpoints
(iterations_done vs costs, "finished" on a partial run, a duplicated member,
an edited learning rate, another architecture), damaged archives (flipped
header bytes, a truncated file, a header claiming 10^12 elements, deeply
nested metadata), broken metrics.json on --resume, paths that are folders,
files or missing, and bad flags. The assertions are the README's promise:
exit status != 0, stderr is exactly one non-empty line starting with
"error:", no "Traceback", and a word naming what is wrong. A checkpoint that
is refused is also left exactly as it was (nothing trained, nothing written).

The run every case breaks is made by a real subprocess, and so is the --debug
case; the ~60 mistakes themselves run the experiment's own entry point
(``common.run_cli(module.main)`` with ``sys.argv`` set, which is what ``python -m``
runs) in this process, with stdout, stderr and warnings captured as a terminal
would show them: the same code path at a fraction of the cost of a new
interpreter and a JAX import each.
"""

import contextlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CAT = ["--no-plots", "--no-progress"]
BASE_FLAGS = ["--model", "deep", "--iterations", "3", *CAT]


def subprocess_experiment(module: str, *args, data=None, timeout=180):
    """``python -m experiments.<module> args`` in a new interpreter."""
    env = dict(os.environ)
    if data is not None:
        env["JAXNET_DATA"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{module}", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def experiment(module: str, *args, data=None) -> SimpleNamespace:
    """What ``python -m experiments.<module> args`` prints and returns, run in
    this process: the module's ``run_cli(main)`` with ``sys.argv`` set.

    Returns an object with ``returncode``, ``stdout`` and ``stderr`` like
    ``subprocess.run``'s: ``sys.exit("error: ...")`` is written to stderr with
    status 1, as the interpreter does, and each warning is written to stderr as
    Python's default filter would show it (so a warning breaks "one line").
    """
    from experiments import common

    main = importlib.import_module(f"experiments.{module}").main
    argv = [f"experiments/{module}.py", *map(str, args)]
    env = {} if data is None else {"JAXNET_DATA": str(data)}
    out, err = io.StringIO(), io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):
        err.write(warnings.formatwarning(message, category, filename, lineno, line))

    def exit_now(code: int):
        raise SystemExit(code)  # not os._exit: this process is the test's

    with (
        mock.patch.object(sys, "argv", argv),
        mock.patch.dict(os.environ, env),
        mock.patch.object(common, "exit_at_once", exit_now),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            common.run_cli(main)
            code = 0
        except SystemExit as e:
            code = e.code
    if isinstance(code, str):
        err.write(code + "\n")
        code = 1
    return SimpleNamespace(
        returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue()
    )


@pytest.fixture(scope="module")
def base(data_root, tmp_path_factory) -> Path:
    """A finished 3-iteration run of the deep cat model, plus a small PNG."""
    root = tmp_path_factory.mktemp("user_errors")
    done = subprocess_experiment(
        "cat_classifier", *BASE_FLAGS, "--out", root / "run", data=data_root
    )
    assert done.returncode == 0, done.stderr
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(pixels).save(root / "cat.png")
    return root


# ---- ways to break a checkpoint ------------------------------------------------


def read_members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rewrite(path: Path, change) -> None:
    """Apply ``change(arrays, metadata)`` to the checkpoint's arrays in place."""
    arrays = read_members(path)
    meta = json.loads(str(arrays["metadata_json"][()]))
    raw = change(arrays, meta) == "raw"  # the change wrote metadata_json itself
    if "metadata_json" in arrays and not raw:
        arrays["metadata_json"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)


def central_entry(raw: bytes) -> int:
    """Offset of the first central-directory entry of a zip file."""
    return raw.index(b"PK\x01\x02")


def patch(path: Path, offset_of, value: bytes) -> None:
    raw = bytearray(path.read_bytes())
    i = offset_of(bytes(raw))
    raw[i : i + len(value)] = value
    path.write_bytes(bytes(raw))


def npy_header_only(shape) -> bytes:
    import io

    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + bytes(64)


def claim_huge(path: Path) -> None:
    members = zipfile.ZipFile(path)
    data = {n: members.read(n) for n in members.namelist()}
    data["W1.npy"] = npy_header_only((10**6, 10**6))
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in data.items():
            z.writestr(name, blob)


def duplicate_w1(path: Path) -> None:
    members = zipfile.ZipFile(path)
    data = [(n, members.read(n)) for n in members.namelist()]
    doubled = np.zeros_like(read_members(path)["W1"])
    buf = __import__("io").BytesIO()
    np.lib.format.write_array(buf, doubled)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as z:
        for name, blob in data:
            z.writestr(name, blob)
        z.writestr("W1.npy", buf.getvalue())


def other_architecture(path: Path) -> None:
    """The run's checkpoint replaced by a [12288, 5, 3, 2, 1] model's (gd holds
    no per-parameter state, so only the layer sizes tell them apart)."""
    from jaxnet.checkpoint import load_checkpoint, save_checkpoint

    _, info = load_checkpoint(path)
    dims = [12288, 5, 3, 2, 1]
    params = [
        {"W": np.zeros((dims[i], dims[i - 1]), np.float32),
         "b": np.zeros((dims[i], 1), np.float32)}
        for i in range(1, len(dims))
    ]  # fmt: skip
    save_checkpoint(
        path, params, layer_dims=dims, activations=info["activations"],
        metadata=info["metadata"], extra_arrays=info["extra"],
    )  # fmt: skip


def set_meta(**fields):
    return lambda arrays, meta: meta.update(fields)


def trim_costs(n: int, **fields):
    def change(arrays, meta):
        arrays["extra/costs"] = arrays["extra/costs"][:n]
        meta.update(iterations_done=n, **fields)

    return change


def zero_learning_rate(arrays, meta):
    arrays["extra/opt_1"] = np.zeros_like(arrays["extra/opt_1"])


def nest_metadata(arrays, meta):
    arrays["metadata_json"] = np.asarray("[" * 100_000 + "]" * 100_000)
    return "raw"


def drop_metadata_json(arrays, meta):
    del arrays["metadata_json"]


def drop_extra(arrays, meta):
    for k in [k for k in arrays if k.startswith("extra/")]:
        del arrays[k]


def nan_weights(arrays, meta):
    arrays["W2"] = np.full_like(arrays["W2"], np.nan)


def wrong_key(arrays, meta):
    arrays["extra/key"] = np.zeros(7, np.uint32)


def npz_rewrite(change):
    return lambda p: rewrite(p, change)


def make_dir(p: Path):
    p.unlink()
    p.mkdir()


def text_file(p: Path):
    p.write_text("not a checkpoint\n")


def truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def unknown_compression(p: Path):
    patch(p, lambda raw: central_entry(raw) + 10, b"\x63\x00")  # method 99


def encrypted_flag(p: Path):
    patch(p, lambda raw: central_entry(raw) + 8, b"\x01\x00")


def flipped_data(p: Path):
    raw = p.read_bytes()
    i = raw.index(b"W1.npy") + 200  # inside W1's values: the CRC no longer matches
    patch(p, lambda _: i, bytes([raw[i] ^ 0xFF]))


# (name, how the checkpoint is broken, a word the error must contain)
CHECKPOINT_CASES = [
    ("done_vs_costs", npz_rewrite(set_meta(iterations_done=2)), "2"),
    ("finished_partial", npz_rewrite(trim_costs(2, finished=True)), "finished"),
    ("done_beyond_run", npz_rewrite(set_meta(iterations_done=99)), "99"),
    ("done_not_int", npz_rewrite(set_meta(iterations_done="x")), "iterations_done"),
    ("finished_not_bool", npz_rewrite(set_meta(finished="yes")), "finished"),
    ("duplicate_member", duplicate_w1, "more than once"),
    ("learning_rate_edited", npz_rewrite(zero_learning_rate), "learning_rate"),
    ("other_architecture", other_architecture, "12288, 5, 3, 2, 1"),
    ("flip_compression", unknown_compression, "corrupt"),
    ("flip_encrypted", encrypted_flag, "corrupt"),
    ("flip_data", flipped_data, "corrupt"),
    ("truncated", truncate, "corrupt"),
    ("huge_header", claim_huge, "claims shape"),
    ("nested_metadata", npz_rewrite(nest_metadata), "nests deeper"),
    ("no_metadata", npz_rewrite(drop_metadata_json), "metadata_json"),
    ("params_only", npz_rewrite(drop_extra), "run state"),
    ("nan_weights", npz_rewrite(nan_weights), "non-finite"),
    ("wrong_key", npz_rewrite(wrong_key), "key"),
    ("is_a_folder", make_dir, "folder"),
    ("is_text", text_file, "not a readable .npz"),
]


def assert_one_line(done, word: str) -> None:
    assert done.returncode != 0, done.stdout[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error:"), lines
    assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("name", "breaks", "word"), CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES]
)
def test_resume_from_a_broken_checkpoint_is_one_line(
    base, data_root, tmp_path, name, breaks, word
):
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    ckpt = run / "deep.npz"
    breaks(ckpt)
    before = ckpt.read_bytes() if ckpt.is_file() else None
    done = experiment("cat_classifier", "--resume", run, data=data_root)
    assert_one_line(done, word)
    assert "resuming" not in done.stdout and "finished in" not in done.stdout
    if before is not None:
        assert ckpt.read_bytes() == before  # refused at load: nothing written


PREDICT_CASES = [c for c in CHECKPOINT_CASES if c[0] in {
    "duplicate_member", "flip_compression", "flip_encrypted", "flip_data",
    "truncated", "huge_header", "nested_metadata", "is_a_folder", "is_text",
}]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "breaks", "word"), PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES]
)
def test_predict_with_a_broken_checkpoint_is_one_line(
    base, tmp_path, name, breaks, word
):
    ckpt = tmp_path / "deep.npz"
    shutil.copy(base / "run" / "deep.npz", ckpt)
    breaks(ckpt)
    done = experiment(
        "cat_classifier", "--predict", base / "cat.png", "--checkpoint", ckpt
    )
    assert_one_line(done, word)


def write_metrics(text):
    return lambda run: (run / "metrics.json").write_text(text)


def edit_metrics(change):
    def edit(run):
        record = json.loads((run / "metrics.json").read_text())
        change(record)
        (run / "metrics.json").write_text(json.dumps(record))

    return edit


RESUME_CASES = [
    ("metrics_empty", write_metrics(""), "not readable JSON"),
    ("metrics_truncated", write_metrics('{"config": {"flags": {'), "not readable"),
    ("metrics_list", write_metrics("[1, 2]"), "config.flags"),
    ("metrics_no_config", write_metrics("{}"), "config.flags"),
    ("metrics_nested", write_metrics("[" * 100_000 + "]" * 100_000), "nests"),
    (
        "metrics_binary",
        lambda r: (r / "metrics.json").write_bytes(b"\xff\xfe\x00"),
        "metrics.json",
    ),  # fmt: skip
    (
        "metrics_flag_missing",
        edit_metrics(lambda m: m["config"]["flags"].pop("learning_rate")),
        "--learning-rate",
    ),
    (
        "metrics_flags_not_dict",
        edit_metrics(lambda m: m["config"].update(flags=[1])),
        "config.flags",
    ),
    (
        "metrics_flag_not_a_number",
        edit_metrics(lambda m: m["config"]["flags"].update(learning_rate="fast")),
        "--learning-rate 'fast'",
    ),
    (
        "metrics_flag_not_a_choice",
        edit_metrics(lambda m: m["config"]["flags"].update(optimizer="sgd")),
        "--optimizer 'sgd'",
    ),
    (
        "metrics_flag_zero_iterations",
        edit_metrics(lambda m: m["config"]["flags"].update(iterations=0)),
        "iterations must be a positive integer",
    ),
    ("metrics_missing", lambda r: (r / "metrics.json").unlink(), "metrics.json"),
    (
        "metrics_is_folder",
        lambda r: ((r / "metrics.json").unlink(), (r / "metrics.json").mkdir()),
        "metrics.json",
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    ("name", "breaks", "word"), RESUME_CASES, ids=[c[0] for c in RESUME_CASES]
)
def test_resume_with_a_broken_run_record_is_one_line(
    base, data_root, tmp_path, name, breaks, word
):
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    breaks(run)
    done = experiment("cat_classifier", "--resume", run, data=data_root)
    assert_one_line(done, word)


def regularization_record(results):
    flags = {
        "seed": 0, "num_seeds": 1, "model": "two_layer", "iterations": 2,
        "learning_rate": 0.0075, "optimizer": "gd", "l2": [0.0],
        "keep_prob": [1.0], "grad": "manual", "dtype": "float32",
    }  # fmt: skip
    return json.dumps({"config": {"flags": flags}, "models": results})


def other_invocations(base: Path, tmp: Path, data_root: Path) -> list:
    """(name, module, args, word): mistakes outside the checkpoint itself."""
    afile = tmp / "afile"
    afile.write_text("x")
    reg = tmp / "reg"
    reg.mkdir()
    (reg / "metrics.json").write_text(regularization_record({}))
    reg_bad = tmp / "reg_bad"
    reg_bad.mkdir()
    (reg_bad / "metrics.json").write_text(regularization_record({"results": [{}]}))
    digits = tmp / "digits"
    digits.mkdir()
    (digits / "metrics.json").write_text("{")
    nowhere = tmp / "nowhere"
    return [
        ("resume_a_file", "cat_classifier", ["--resume", afile], "metrics.json"),
        ("resume_missing", "cat_classifier", ["--resume", nowhere], "metrics.json"),
        ("out_is_a_file", "cat_classifier", [*BASE_FLAGS, "--out", afile], "afile"),
        (
            "out_below_a_file",
            "cat_classifier",
            [*BASE_FLAGS, "--out", afile / "x"],
            "afile",
        ),  # fmt: skip
        (
            "predict_no_image",
            "cat_classifier",
            ["--predict", nowhere / "x.png", "--checkpoint", base / "run" / "deep.npz"],
            "x.png",
        ),  # fmt: skip
        (
            "predict_text_image",
            "cat_classifier",
            ["--predict", afile, "--checkpoint", base / "run" / "deep.npz"],
            "afile",
        ),  # fmt: skip
        (
            "predict_no_checkpoint",
            "cat_classifier",
            ["--predict", base / "cat.png", "--checkpoint", nowhere / "deep.npz"],
            "not found",
        ),  # fmt: skip
        ("bad_iterations", "cat_classifier", ["--iterations", "0"], "iterations"),
        ("unknown_flag", "cat_classifier", ["--bogus"], "--bogus"),
        ("bad_choice", "digits", ["--optimizer", "sgd"], "sgd"),
        (
            "missing_data",
            "digits",
            ["--data", nowhere, "--out", tmp / "d"],
            "dataset",
        ),  # fmt: skip
        ("digits_resume_broken", "digits", ["--resume", digits], "metrics.json"),
        (
            "regularization_no_results",
            "regularization",
            ["--resume", reg],
            "models.results",
        ),  # fmt: skip
        (
            "regularization_bad_result",
            "regularization",
            ["--resume", reg_bad],
            "result 0",
        ),  # fmt: skip
        (
            "learning_rates_bad",
            "learning_rates",
            ["--learning-rates", "0.1,-1"],
            "learning_rate",
        ),  # fmt: skip
    ]


OTHER_NAMES = [
    "resume_a_file", "resume_missing", "out_is_a_file", "out_below_a_file",
    "predict_no_image", "predict_text_image", "predict_no_checkpoint",
    "bad_iterations", "unknown_flag", "bad_choice", "missing_data",
    "digits_resume_broken", "regularization_no_results",
    "regularization_bad_result", "learning_rates_bad",
]  # fmt: skip


@pytest.mark.parametrize("name", OTHER_NAMES)
def test_other_mistakes_are_one_line(base, data_root, tmp_path, name):
    cases = {c[0]: c[1:] for c in other_invocations(base, tmp_path, data_root)}
    assert sorted(cases) == sorted(OTHER_NAMES)
    module, args, word = cases[name]
    done = experiment(module, *args, data=data_root)
    assert_one_line(done, word)


def test_debug_shows_the_traceback(base, data_root, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    rewrite(run / "deep.npz", set_meta(iterations_done=2))
    done = subprocess_experiment(
        "cat_classifier", "--resume", run, "--debug", data=data_root
    )
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "CheckpointError" in done.stderr


def test_in_process_runs_print_what_a_new_interpreter_prints(base, data_root, tmp_path):
    """The in-process runner is faithful: same status and stderr as python -m."""
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    rewrite(run / "deep.npz", set_meta(iterations_done=2))
    args = ("cat_classifier", "--resume", run)
    real = subprocess_experiment(*args, data=data_root)
    here = experiment(*args, data=data_root)
    assert (here.returncode, here.stderr) == (real.returncode, real.stderr)
    assert real.returncode == 1 and real.stderr.startswith("error:")


def test_an_unexpected_exception_names_itself_and_debug(monkeypatch, capsys):
    from experiments import common

    def main():
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(sys, "argv", ["prog"])
    with pytest.raises(SystemExit) as e:
        common.run_cli(main)
    assert e.value.code == (
        "error: unexpected ZeroDivisionError: division by zero second line "
        "(re-run with --debug for the traceback)"
    )
    monkeypatch.setattr(sys, "argv", ["prog", "--debug"])
    with pytest.raises(ZeroDivisionError):
        common.run_cli(main)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(28, "No space left on device", "/x/deep.npz"), "/x/deep.npz"),
        (MemoryError(), "out of memory"),
        (PermissionError(13, "Permission denied", "/ro/run"), "--out"),
    ],
)
def test_file_and_memory_errors_say_what_to_do(error, words):
    from experiments.common import error_line

    line = error_line(error)
    assert line.startswith("error:") and words in line and "\n" not in line
