"""Issue 17, "silent garbage": inputs that used to train, score or predict on
garbage without a word, and user errors that ended in a traceback or a riddle.

Each test feeds one such input and checks the error type and its words (or,
where the input is legitimate, that the result is right). Every case here ran
on the old code without an error, or with a different one (named in the test).
"""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from experiments import cat_classifier, cli, digits
from jaxnet.checkpoint import save_checkpoint
from jaxnet.data import DatasetError, load_autompg
from jaxnet.gradcheck import check_gradients
from jaxnet.params import init_params
from jaxnet.sweep import sweep
from jaxnet.train import fit, fit_until, predict
from jaxnet.validation import InputError
from tests.helpers import assert_trees_close

ACTS = ("relu", "sigmoid")


def problem(dtype=jnp.float32, m=6):
    """params [3, 4, 1] in ``dtype``, X (3, m) float64, 0/1 labels Y (1, m)."""
    params = init_params(jax.random.key(0), [3, 4, 1], dtype=dtype)
    X = np.random.RandomState(0).randn(3, m)
    Y = (X[:1] > 0).astype(np.float64)
    return params, X, Y


# --- values finite in float64 that the run's dtype cannot hold -----------------


def test_targets_that_overflow_float32_are_refused_naming_value_and_range():
    # Old: float64 Y = 1e200 passed (finite), became inf in float32, NaN params.
    params, X, _ = problem()
    Y = np.full((1, X.shape[1]), 1e200)
    with pytest.raises(InputError) as e:
        fit(params, X, Y, activations=("relu", "linear"), num_iterations=2)
    message = str(e.value)
    for words in ("Y[0, 0] = 1e+200", "float32", "3.403e+38", "float64"):
        assert words in message


def test_inputs_that_overflow_float32_are_refused():
    params, X, Y = problem()
    X = X.copy()
    X[2, 4] = 1e39  # float32's largest finite value is 3.4e38
    with pytest.raises(InputError, match=r"X\[2, 4\] = 1e\+39, which becomes inf"):
        fit(params, X, Y, activations=ACTS, num_iterations=2)


def test_inputs_that_underflow_to_zero_are_refused():
    params, X, Y = problem()
    X = X.copy()
    X[0, 1] = 1e-50  # below float32's smallest subnormal, 1.4e-45: becomes 0
    with pytest.raises(InputError, match=r"X\[0, 1\] = 1e-50, which becomes 0"):
        fit(params, X, Y, activations=ACTS, num_iterations=2)


def test_the_same_values_train_in_float64():
    # Not refused where the dtype holds them: the check is the dtype's, not a cap.
    params, X, Y = problem(jnp.float64)
    _, costs = fit(params, X * 1e39, Y, activations=ACTS, num_iterations=1)
    assert np.isfinite(np.asarray(costs)).all()


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(learning_rate=1e308), "learning_rate = 1e+308 overflows"),
        (dict(learning_rate=1e-50), "learning_rate = 1e-50 underflows to 0"),
        (dict(lambd=1e39), "lambd = 1e+39 overflows"),
        (dict(keep_prob=1e-300), "keep_prob must be in (0, 1] and at least 0.01"),
        (dict(keep_prob=0.005), "keep_prob must be in (0, 1] and at least 0.01"),
    ],
)
def test_hyperparameters_out_of_range_in_the_runs_dtype(options, words):
    # Old: 1e308 trained to NaN, 1e-50 trained at alpha 0, keep_prob 1e-300
    # dropped every unit; all without an error.
    params, X, Y = problem()
    with pytest.raises(ValueError) as e:
        fit(params, X, Y, activations=ACTS, num_iterations=1, **options)
    assert words in str(e.value)
    if "flows" in words:
        assert "float32" in str(e.value) and "3.403e+38" in str(e.value)


def test_fit_until_refuses_a_learning_rate_float32_cannot_hold():
    # Old: NaN params with reason "max_iterations".
    params, X, Y = problem()
    with pytest.raises(ValueError, match="1e\\+308 overflows the run's dtype float32"):
        fit_until(
            params, X, Y, activations=ACTS, epsilon=0.0, max_iterations=5,
            learning_rate=1e308,
        )  # fmt: skip


def test_fit_until_stops_at_non_finite_and_keeps_the_last_finite_params():
    # float64, alpha = 1e300 with inputs ~1e10: representable, but the updates
    # overflow within a few iterations. Old: reason "max_iterations", NaN params.
    params, X, Y = problem(jnp.float64)
    options = dict(activations=ACTS, learning_rate=1e300)
    result = fit_until(params, X * 1e10, Y, epsilon=0.0, max_iterations=10, **options)
    assert result.reason == "non-finite"
    assert result.iterations < 10
    leaves = jax.tree.leaves(result.params)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in leaves)
    # They are exactly fit's params after the same number of updates.
    expected, costs = fit(
        params, X * 1e10, Y, num_iterations=result.iterations + 1, **options
    )
    if result.iterations:
        kept, _ = fit(params, X * 1e10, Y, num_iterations=result.iterations, **options)
        assert_trees_close(result.params, kept, rtol=0, atol=0)
    else:
        assert_trees_close(result.params, params, rtol=0, atol=0)
    # ... and one more update is what was not finite.
    last = jax.tree.leaves(expected)
    cost_bad = not np.isfinite(np.asarray(costs)[-1])
    assert cost_bad or not all(np.isfinite(np.asarray(x)).all() for x in last)


def test_fit_until_max_iterations_beyond_int32_is_refused():
    # Old: OverflowError from jit ("while parsing an argument"), not a ValueError.
    params, X, Y = problem()
    with pytest.raises(ValueError, match=r"at most 2147483647 \(2\*\*31 - 1"):
        fit_until(params, X, Y, activations=ACTS, epsilon=0.0, max_iterations=10**12)


def test_fit_until_cost_buffer_larger_than_memory_is_refused(monkeypatch):
    # A (10**6,) cost buffer (4 MB in float32) against a 1 MB limit. Old: ran
    # (epsilon = 1e9 stops it at once, so the old code returns quickly).
    monkeypatch.setenv("JAXNET_MEMORY_LIMIT", str(2**20))
    params, X, Y = problem()
    with pytest.raises(MemoryError, match="cost buffer of max_iterations = 1000000"):
        fit_until(params, X, Y, activations=ACTS, epsilon=1e9, max_iterations=10**6)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--learning-rate", "1e308"], "--learning-rate: learning_rate = 1e+308"),
        (["--keep-prob", "1e-300"], "at least 0.01"),
        (["--seed", str(2**63)], "seed must be an integer in [0, 2**63 - 1]"),
        (["--seed", "-1"], "seed must be an integer in [0, 2**63 - 1]"),
        (["--layer-dims", "12288,,1"], "layer size 1 is empty"),
        (["--layer-dims", "12288,0,1"], "layer size 1 is 0"),
        (["--layer-dims", "12288,-5,1"], "layer size 1 is -5"),
        (["--layer-dims", "12288,x,1"], "layer size 1 is 'x', not an integer"),
    ],
)
def test_bad_flags_are_usage_errors(argv, words, capsys):
    # Old: 1e308 and 1e-300 parsed (trained to NaN / dropped everything), seed
    # 2**63 parsed (OverflowError traceback in jax.random.key), 12288,,1 parsed
    # as [12288, 1].
    with pytest.raises(SystemExit) as e:
        cat_classifier.build_parser().parse_args(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_digits_layer_dims_with_an_empty_entry(capsys):
    with pytest.raises(SystemExit):
        digits.build_parser().parse_args(["--layer-dims", "784,,10"])
    assert "layer size 1 is empty in '784,,10'" in capsys.readouterr().err


def test_float64_runs_accept_what_float64_holds():
    args = cat_classifier.build_parser().parse_args(
        ["--dtype", "float64", "--learning-rate", "1e300", "--seed", str(2**63 - 1)]
    )
    assert args.learning_rate == 1e300 and args.seed == 2**63 - 1


# --- memory: refuse before allocating ------------------------------------------


def test_a_run_larger_than_the_memory_limit_is_refused(monkeypatch):
    # 200000 units: params ~ 1.2M numbers (x3 with gradients), 8 bytes each in
    # float64, ~ 29 MB against a 16 MB limit. Old: trained (no estimate).
    monkeypatch.setenv("JAXNET_MEMORY_LIMIT", str(16 * 2**20))
    params = init_params(jax.random.key(0), [3, 200000, 1], dtype=jnp.float64)
    X = np.ones((3, 4))
    Y = np.array([[0.0, 1.0, 0.0, 1.0]])
    with pytest.raises(MemoryError) as e:
        fit(params, X, Y, activations=ACTS, num_iterations=1)
    message = str(e.value)
    assert isinstance(e.value, ValueError)  # experiments report it in one line
    assert "needs about" in message and "16.0 MiB is available" in message
    assert "n[1] = 200000" in message and "\n" not in message


def test_a_layer_too_wide_for_this_machine_is_refused_in_a_subprocess():
    # Activations of (200000, 200000) floats: 160 GB per copy, more than any
    # test machine has. Old: XLA's allocation failed and aborted the process
    # (SIGABRT); run in a subprocess so that the old code fails this test
    # instead of killing pytest.
    code = (
        "import jax, numpy as np\n"
        "from jaxnet import init_params\n"
        "from jaxnet.train import fit\n"
        "p = init_params(jax.random.key(0), [2, 200000, 1])\n"
        "X = np.zeros((2, 200000), np.float32); Y = np.zeros((1, 200000))\n"
        "try:\n"
        "    fit(p, X, Y, activations=['relu', 'sigmoid'], num_iterations=1)\n"
        "except MemoryError as e:\n"
        "    print(e); raise SystemExit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    assert "needs about" in done.stdout and "is available" in done.stdout


def test_layer_dims_flag_too_large_for_memory_is_a_usage_error(capsys):
    # 12288 x 2000000 params in float32: ~ 98 GB, x3 with gradients.
    with pytest.raises(SystemExit):
        cat_classifier.build_parser().parse_args(["--layer-dims", "12288,2000000,1"])
    err = capsys.readouterr().err
    assert "--layer-dims: the params of layer_dims [12288, 2000000, 1]" in err
    assert "is available" in err


# --- --predict -----------------------------------------------------------------


def _cat_checkpoint(path, layer_dims=(12288, 1), activations=("sigmoid",)):
    params = init_params(jax.random.key(1), list(layer_dims), dtype=jnp.float32)
    meta = {"image_size": 64, "classes": ["non-cat", "cat"], "finished": True}
    return save_checkpoint(
        path, params, layer_dims=list(layer_dims), activations=list(activations),
        metadata=meta,
    )  # fmt: skip


def test_16_bit_greyscale_png_is_scaled_by_its_bit_depth(tmp_path):
    # Old: convert("RGB") clipped every value above 255 to white (1.0).
    path = tmp_path / "grey16.png"
    level = 20000  # of 65535: brightness 0.305
    Image.fromarray(np.full((80, 80), level, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    x = cat_classifier.load_image(path)
    assert x.shape == (12288, 1)
    # A constant image stays constant through LANCZOS, up to float32 rounding
    # of the resampling (~1e-7 relative).
    np.testing.assert_allclose(x, level / 65535, rtol=1e-6)


def test_32_bit_float_greyscale_is_taken_in_0_1(tmp_path):
    path = tmp_path / "grey.tiff"
    Image.fromarray(np.full((64, 64), 0.25, np.float32), mode="F").save(path)
    np.testing.assert_allclose(cat_classifier.load_image(path), 0.25, rtol=1e-6)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA"])
def test_8_bit_modes_give_their_rgb_values(tmp_path, mode):
    path = tmp_path / f"image_{mode}.png"
    image = Image.new("RGB", (64, 64), (200, 200, 200)).convert(mode)
    if mode == "P":  # an exact palette (the default web palette rounds 200)
        image = Image.new("P", (64, 64), 0)
        image.putpalette([200, 200, 200] * 256)
    image.save(path)
    x = cat_classifier.load_image(path)
    np.testing.assert_allclose(x, 200 / 255, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "dims, acts, words",
    [
        ((12288, 3), ("softmax",), "output layer is softmax with 3 unit(s)"),
        ((12288, 1), ("linear",), "output layer is linear with 1 unit(s)"),
        ((12288, 4, 2), ("relu", "sigmoid"), "output layer is sigmoid with 2 unit"),
    ],
)
def test_predict_refuses_a_checkpoint_that_is_not_a_cat_classifier(
    tmp_path, dims, acts, words
):
    # Old: answered "P(cat) = 7.5659" from a linear output.
    image = tmp_path / "cat.png"
    Image.new("RGB", (64, 64), (90, 60, 30)).save(image)
    ckpt = _cat_checkpoint(tmp_path / "model.npz", dims, acts)
    with pytest.raises(ValueError) as e:
        cat_classifier.predict_image(image, ckpt)
    assert "is not a cat classifier" in str(e.value) and words in str(e.value)


def test_predict_still_answers_with_a_cat_classifier(tmp_path):
    image = tmp_path / "cat.png"
    Image.new("RGB", (64, 64), (90, 60, 30)).save(image)
    result = cat_classifier.predict_image(image, _cat_checkpoint(tmp_path / "m.npz"))
    assert 0 <= result["probability"] <= 1


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (8-bit grey) with one tiny IDAT:
    enough for Image.open, which reads only the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )
    return path


def test_a_decompression_bomb_is_a_clear_error(tmp_path):
    # 20000 x 20000 = 4e8 pixels, over twice Pillow's MAX_IMAGE_PIXELS. Old:
    # PIL.Image.DecompressionBombError (not a ValueError) as a traceback.
    path = _png_header_only(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(ValueError, match="is too large to read safely"):
        cat_classifier.load_image(path)


def test_predict_on_a_fifo_is_refused_at_once(tmp_path):
    # Old: open() on a FIFO with no writer blocks forever; the timeout turns
    # that into a failure.
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    ckpt = _cat_checkpoint(tmp_path / "model.npz")
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cat_classifier", "--predict", str(fifo),
         "--checkpoint", str(ckpt)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: --predict {fifo} is a FIFO (named pipe): give a PNG or JPEG image file"
    )


def test_predict_on_a_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        cat_classifier.load_image(tmp_path)


# --- library ---------------------------------------------------------------------


def test_sweep_checks_the_test_set_like_the_training_set():
    # Old: Y_test = Y * 255 was scored (accuracy 0: no prediction equals 255).
    params, X, Y = problem()
    with pytest.raises(InputError) as e:
        sweep(
            params, X, Y, activations=ACTS, num_iterations=1,
            learning_rates=[0.1, 0.2], X_test=X, Y_test=Y * 255,
        )  # fmt: skip
    assert "the test set (X_test, Y_test)" in str(e.value)
    assert "labels must be 0 or 1" in str(e.value)


def test_sweep_wants_x_test_and_y_test_together():
    params, X, Y = problem()
    with pytest.raises(ValueError, match="pass X_test and Y_test together"):
        sweep(
            params, X, Y, activations=ACTS, num_iterations=1,
            learning_rates=[0.1, 0.2], X_test=X,
        )  # fmt: skip


def test_predict_refuses_nan_inputs_naming_the_position():
    # Old: the NaN column was labelled 0.
    params, X, _ = problem()
    X = X.copy()
    X[1, 2] = np.nan
    with pytest.raises(InputError, match=r"1 of 18 entries, the first at X\[1, 2\]"):
        predict(params, X, ACTS)


def test_predict_under_jit_is_not_checked_and_documented():
    # Inside jit X is traced: no check (documented), the old behaviour.
    params, X, _ = problem()
    out = jax.jit(predict, static_argnums=2)(params, jnp.asarray(X), ACTS)
    assert out.shape == (1, X.shape[1])


def test_predict_with_a_single_activation_string():
    # Old: "the output activation must be one of ... got 'u'".
    params, X, _ = problem()
    with pytest.raises(ValueError, match="got the single string 'relu'"):
        predict(params, X, "relu")


def test_check_gradients_of_empty_params():
    # Old: IndexError: index is out of bounds for axis 0 with size 0.
    with pytest.raises(ValueError, match="params holds no arrays"):
        check_gradients(lambda p: 0.0, {}, {})


def test_an_overflowing_autompg_weight_is_refused(autompg_root, tmp_path):
    # Old: std = inf, (x - mean) / inf = 0: the Weight feature silently zero.
    source = autompg_root / "autompg" / "cars.json"
    records = json.loads(source.read_text())[:20]
    for i in (3, 7, 11, 15):  # 4 of 20: at least one in the training split
        records[i]["Weight_in_lbs"] = 1e308
    folder = tmp_path / "autompg"
    folder.mkdir()
    (folder / "cars.json").write_text(json.dumps(records))
    with pytest.raises(DatasetError) as e:
        load_autompg(folder)
    message = str(e.value)
    assert "feature 'Weight_in_lbs' cannot be standardized" in message
    assert "Weight_in_lbs = 1e+308" in message
    record = int(message.split("(record ")[1].split()[0])
    assert record in (3, 7, 11, 15)


def test_cli_seed_range_constant():
    assert cli.MAX_SEED == 2**63 - 1
    jax.random.key(cli.MAX_SEED)  # the largest accepted seed is a valid key
