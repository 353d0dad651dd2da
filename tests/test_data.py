"""Tests for jaxnet.data: locating, loading and validating datasets, synthetic sets."""

import gzip

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.data import (
    DatasetError,
    DatasetNotFoundError,
    cache_dir,
    find_dataset_dir,
    load_catvnoncat,
    load_mnist_t10k,
    planar_flower,
    spirals,
    split_digits,
    two_blobs,
)
from jaxnet.data.locate import candidate_dirs

# ---------------------------------------------------------------- locate


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No $JAXNET_DATA, and HOME / XDG_CACHE_HOME pointing into tmp_path."""
    monkeypatch.delenv("JAXNET_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _make(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def test_cache_dir_uses_xdg_then_home(clean_env, monkeypatch):
    assert cache_dir("toy") == clean_env / "home" / ".cache" / "jaxnet" / "toy"
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    assert cache_dir("toy") == clean_env / "xdg" / "jaxnet" / "toy"


def test_search_order_explicit_then_env_then_cache(clean_env, monkeypatch):
    req = ("a.bin", "b.bin")
    cached = _make(clean_env / "home" / ".cache" / "jaxnet" / "toy", *req)
    assert find_dataset_dir("toy", req) == cached
    env_root = clean_env / "env"
    env_dir = _make(env_root / "toy", *req)
    monkeypatch.setenv("JAXNET_DATA", str(env_root))
    assert find_dataset_dir("toy", req) == env_dir
    explicit = _make(clean_env / "explicit", *req)
    assert find_dataset_dir("toy", req, data_dir=explicit) == explicit
    parent = clean_env / "parent"
    nested = _make(parent / "toy", *req)
    assert find_dataset_dir("toy", req, data_dir=parent) == nested


def test_incomplete_env_folder_is_an_error_not_a_fallback(clean_env, monkeypatch):
    req = ("a.bin", "b.bin")
    _make(clean_env / "env" / "toy", "a.bin")
    monkeypatch.setenv("JAXNET_DATA", str(clean_env / "env"))
    _make(clean_env / "home" / ".cache" / "jaxnet" / "toy", *req)  # never used
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset_dir("toy", req)
    msg = str(info.value)
    assert f"$JAXNET_DATA={clean_env / 'env'}" in msg and "authoritative" in msg
    assert f"{clean_env / 'env' / 'toy'}  ($JAXNET_DATA): missing b.bin" in msg
    assert "was not searched" in msg and "unset JAXNET_DATA" in msg
    assert f"--cache {clean_env / 'env'}" in msg
    monkeypatch.setenv("JAXNET_DATA", "")  # empty counts as unset
    assert find_dataset_dir("toy", req) == cache_dir("toy")


def test_explicit_data_dir_is_authoritative(clean_env, monkeypatch):
    req = ("a.bin", "b.bin")
    _make(clean_env / "home" / ".cache" / "jaxnet" / "toy", *req)
    _make(clean_env / "env" / "toy", *req)
    monkeypatch.setenv("JAXNET_DATA", str(clean_env / "env"))
    typo = clean_env / "mydata-typo"
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset_dir("toy", req, data_dir=typo)
    msg = str(info.value)
    assert f"not found in data_dir {typo}" in msg
    assert f"{typo}  (data_dir argument): does not exist" in msg
    assert "$JAXNET_DATA and the cache" in msg and "were not searched" in msg
    partial = _make(clean_env / "partial", "b.bin")
    with pytest.raises(DatasetNotFoundError, match="missing a.bin"):
        find_dataset_dir("toy", req, data_dir=partial)
    assert [what for _, what in candidate_dirs("toy", partial)] == [
        "data_dir argument",
        "data_dir argument / name",
    ]


def test_not_found_message_lists_files_places_and_command(clean_env, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset_dir("toy", ("a.bin", "b.bin"), data_dir=clean_env / "mine")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for text in ("a.bin", "b.bin", str(clean_env / "mine"), str(cache_dir("toy"))):
        assert text in msg
    assert "python -m jaxnet.data fetch toy --from URL_OR_DIR" in msg
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset_dir("toy", ("a.bin",))
    msg = str(info.value)
    assert "JAXNET_DATA not set" in msg and str(cache_dir("toy")) in msg
    assert f"(writes to {cache_dir('toy')})" in msg
    monkeypatch.setenv("JAXNET_DATA", str(clean_env / "env"))
    with pytest.raises(DatasetNotFoundError, match="set") as info:
        find_dataset_dir("toy", ("a.bin",))
    assert str(clean_env / "env" / "toy") in str(info.value)


# ---------------------------------------------------------------- catvnoncat


def test_catvnoncat_real(data_root):
    d = load_catvnoncat(data_root)
    assert d.X_train.shape == (12288, 209) and d.X_test.shape == (12288, 50)
    assert d.Y_train.shape == (1, 209) and d.Y_test.shape == (1, 50)
    assert d.train_images.shape == (209, 64, 64, 3)
    assert d.test_images.shape == (50, 64, 64, 3)
    assert d.train_images.dtype == np.uint8 and d.X_train.dtype == np.float64
    assert d.Y_train.dtype == np.float64
    assert d.X_train.min() >= 0.0 and d.X_train.max() <= 1.0
    assert d.classes == ("non-cat", "cat")
    assert np.bincount(d.Y_train[0].astype(int)).tolist() == [137, 72]
    assert np.bincount(d.Y_test[0].astype(int)).tolist() == [17, 33]
    # the course's flattening: column j is image j, row-major over (h, w, c)
    np.testing.assert_array_equal(d.X_train[:, 5], d.train_images[5].ravel() / 255.0)
    assert d.X_train[3 * 64 * 3 + 2 * 3 + 1, 7] == d.train_images[7, 3, 2, 1] / 255.0


def test_catvnoncat_found_via_env(data_root, monkeypatch):
    monkeypatch.setenv("JAXNET_DATA", str(data_root))
    assert load_catvnoncat().X_test.shape == (12288, 50)


def _write_cat(path, split, m=3, x=None, y=None, classes=(b"non-cat", b"cat"), drop=()):
    x = np.zeros((m, 64, 64, 3), np.uint8) if x is None else x
    y = np.arange(m) % 2 if y is None else y
    items = {f"{split}_set_x": x, f"{split}_set_y": y, "list_classes": classes}
    with h5py.File(path, "w") as f:
        for key, value in items.items():
            if key not in drop:
                f[key] = np.asarray(value)


def _cat_dir(tmp_path, **train):
    _write_cat(tmp_path / "train_catvnoncat.h5", "train", **train)
    _write_cat(tmp_path / "test_catvnoncat.h5", "test")
    return tmp_path


def test_small_valid_files_load(tmp_path):
    d = load_catvnoncat(_cat_dir(tmp_path))
    assert d.X_train.shape == (12288, 3) and d.Y_train.tolist() == [[0.0, 1.0, 0.0]]


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        (dict(drop=("train_set_y",)), r"missing key.*train_set_y.*found"),
        (dict(x=np.zeros((3, 64, 64), np.uint8)), r"expected \(m, 64, 64, 3\)"),
        (dict(x=np.zeros((3, 32, 32, 3), np.uint8)), r"\(3, 32, 32, 3\)"),
        (dict(x=np.zeros((3, 64, 64, 3), np.float32)), "expected uint8"),
        (dict(y=np.array([0, 1, 2])), r"labels \[2\].*only 0 and 1"),
        (dict(y=np.array([0, 1])), "3 examples but train_set_y has 2"),
        (dict(classes=(b"a", b"b", b"c")), "expected 2"),
    ],
)
def test_bad_hdf5_contents(tmp_path, train, expected):
    with pytest.raises(DatasetError, match=expected) as info:
        load_catvnoncat(_cat_dir(tmp_path, **train))
    assert "train_catvnoncat.h5" in str(info.value)
    assert "\n" not in str(info.value)


def test_garbage_file_is_one_line_error(tmp_path):
    _cat_dir(tmp_path)
    (tmp_path / "test_catvnoncat.h5").write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_catvnoncat(tmp_path)
    assert "test_catvnoncat.h5" in str(info.value) and "\n" not in str(info.value)


def test_truncated_real_file(data_root, tmp_path):
    real = (data_root / "catvnoncat" / "train_catvnoncat.h5").read_bytes()
    _cat_dir(tmp_path)
    (tmp_path / "train_catvnoncat.h5").write_bytes(real[:1000])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_catvnoncat(tmp_path)
    assert "train_catvnoncat.h5" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- mnist


def test_mnist_real(data_root):
    images, labels = load_mnist_t10k(data_root)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(labels).tolist() == counts
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert images.max() == 255


def _idx(magic, dims, payload):
    return np.array([magic, *dims], ">u4").tobytes() + payload


def _mnist_dir(tmp_path, images=None, labels=None):
    n = 10000
    if images is None:
        images = _idx(0x803, (n, 28, 28), bytes(n * 784))
    if labels is None:
        labels = _idx(0x801, (n,), (np.arange(n) % 10).astype(np.uint8).tobytes())
    for name, data in (
        ("t10k-images-idx3-ubyte.gz", images),
        ("t10k-labels-idx1-ubyte.gz", labels),
    ):
        (tmp_path / name).write_bytes(gzip.compress(data, compresslevel=1))
    return tmp_path


def test_mnist_synthetic_valid(tmp_path):
    images, labels = load_mnist_t10k(_mnist_dir(tmp_path))
    assert images.shape == (10000, 28, 28) and labels[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("kind", "expected", "file"),
    [
        (
            "images_magic",
            "bad IDX magic number 0x00000801, expected 0x00000803",
            "images",
        ),
        ("labels_magic", "magic number 0x00000803, expected 0x00000801", "labels"),
        ("images_short", r"payload is 7839900 bytes, expected 7840000", "images"),
        ("labels_long", "payload is 10001 bytes, expected 10000", "labels"),
        ("rows", "images are 28x27, expected 28x28", "images"),
        ("label_value", "label 10 found, expected labels 0..9", "labels"),
        ("count", "holds 5 examples, expected 10000", "labels"),
        ("header", "shorter than the 16-byte IDX header", "images"),
    ],
)
def test_mnist_bad_idx(tmp_path, kind, expected, file):
    n = 10000
    good_labels = (np.arange(n) % 10).astype(np.uint8).tobytes()
    cases = {
        "images_magic": dict(images=_idx(0x801, (n, 28, 28), bytes(n * 784))),
        "labels_magic": dict(labels=_idx(0x803, (n,), good_labels)),
        "images_short": dict(images=_idx(0x803, (n, 28, 28), bytes(n * 784 - 100))),
        "labels_long": dict(labels=_idx(0x801, (n,), good_labels + b"\0")),
        "rows": dict(images=_idx(0x803, (n, 28, 27), bytes(n * 28 * 27))),
        "label_value": dict(labels=_idx(0x801, (n,), good_labels[:-1] + b"\x0a")),
        "count": dict(labels=_idx(0x801, (5,), good_labels[:5])),
        "header": dict(images=b"\0\0\x08\x03"),
    }
    with pytest.raises(DatasetError, match=expected) as info:
        load_mnist_t10k(_mnist_dir(tmp_path, **cases[kind]))
    assert f"t10k-{file}-idx" in str(info.value)


def test_mnist_bad_gzip(tmp_path):
    folder = _mnist_dir(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="labels.*not a valid gzip file"):
        load_mnist_t10k(folder)
    path.write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DatasetError, match="not a valid gzip file"):
        load_mnist_t10k(folder)


def test_split_digits_sizes_and_determinism(key):
    images = np.arange(50 * 28 * 28).reshape(50, 28, 28).astype(np.uint8)
    labels = (np.arange(50) % 10).astype(np.uint8)
    X_train, y_train, X_test, y_test = split_digits(images, labels, key, n_train=40)
    assert X_train.shape == (784, 40) and X_test.shape == (784, 10)
    assert y_train.shape == (40,) and y_test.shape == (10,)
    assert X_train.dtype == jnp.float32 and y_train.dtype == jnp.int32
    assert float(X_train.min()) >= 0.0 and float(X_train.max()) <= 1.0
    again = split_digits(images, labels, key, n_train=40)
    for a, b in zip((X_train, y_train, X_test, y_test), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = split_digits(images, labels, jax.random.key(1), n_train=40)
    assert not np.array_equal(y_train, other[1])
    # a partition: every example appears exactly once, columns still match labels
    both = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    assert np.bincount(both).tolist() == np.bincount(labels).tolist()
    first = np.asarray(X_train[:, 0]) * 255.0
    index = int(np.flatnonzero((images.reshape(50, -1) == np.round(first)).all(1))[0])
    assert labels[index] == int(y_train[0])


def test_split_digits_real(data_root, key):
    images, labels = load_mnist_t10k(data_root)
    X_train, y_train, X_test, y_test = split_digits(images, labels, key)
    assert X_train.shape == (784, 8000) and X_test.shape == (784, 2000)
    assert int(y_train.max()) == 9 and int(y_test.min()) == 0


# ---------------------------------------------------------------- synthetic


def test_two_blobs_shapes_and_separable(key):
    X, Y = two_blobs(key, m=101, n_x=3)
    assert X.shape == (3, 101) and Y.shape == (1, 101) and X.dtype == jnp.float32
    assert set(np.unique(np.asarray(Y)).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(np.asarray(X[0] > 0), np.asarray(Y[0] == 1))
    np.testing.assert_array_equal(X, two_blobs(key, m=101, n_x=3)[0])
    assert two_blobs(key, dtype=jnp.float64)[0].dtype == jnp.float64


def _linear_fit_accuracy(X, Y):
    A = np.vstack([np.asarray(X, np.float64), np.ones((1, X.shape[1]))]).T
    w, *_ = np.linalg.lstsq(A, 2.0 * np.asarray(Y[0], np.float64) - 1.0, rcond=None)
    return float(np.mean((A @ w > 0) == (np.asarray(Y[0]) == 1)))


def test_planar_flower_not_linearly_separable(key):
    X, Y = planar_flower(key)
    assert X.shape == (2, 400) and Y.shape == (1, 400) and X.dtype == jnp.float32
    assert float(Y.sum()) == 200.0
    assert float(jnp.abs(X).max()) < 6.0
    assert _linear_fit_accuracy(X, Y) < 0.75
    assert _linear_fit_accuracy(*two_blobs(key)) == 1.0


def test_spirals(key):
    X, y = spirals(key, m_per_class=20, num_classes=4, dtype=jnp.float64)
    assert X.shape == (2, 80) and y.shape == (80,) and X.dtype == jnp.float64
    assert y.dtype == jnp.int32 and np.bincount(np.asarray(y)).tolist() == [20] * 4
    assert float(jnp.linalg.norm(X, axis=0).max()) <= 1.0 + 1e-12
    np.testing.assert_array_equal(X, spirals(key, 20, 4, jnp.float64)[0])
