"""MNIST test split (10,000 digits, 28x28), read from the original IDX gzip files.

IDX format: a big-endian header of uint32s (magic, count[, rows, cols]) followed by
uint8 payload. Magic 0x00000803 marks images, 0x00000801 labels. The parser checks
every header field and the exact payload size, and names the file in each error.
"""

import gzip
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnet.data.locate import DatasetError, find_dataset_dir

NAME = "mnist_t10k"
IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
FILES = (IMAGES_FILE, LABELS_FILE)
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
NUM_EXAMPLES = 10_000
IMAGE_SIDE = 28
MNIST_T10K_SHA256 = {
    IMAGES_FILE: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    LABELS_FILE: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def _read_gzip(path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(
            f"{path}: not a valid gzip file (truncated or corrupt?): {e}"
        ) from e


def _header(path, data: bytes, n_fields: int, magic: int) -> list[int]:
    size = 4 * n_fields
    if len(data) < size:
        raise DatasetError(
            f"{path}: only {len(data)} bytes, shorter than the {size}-byte IDX header"
        )
    fields = [int(v) for v in np.frombuffer(data[:size], dtype=">u4")]
    if fields[0] != magic:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{fields[0]:08x}, expected 0x{magic:08x}"
        )
    return fields


def _payload(path, data: bytes, offset: int, expected: int, what: str) -> np.ndarray:
    got = len(data) - offset
    if got != expected:
        raise DatasetError(
            f"{path}: payload is {got} bytes, expected {expected} for {what} "
            "(truncated or corrupt?)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset)


def parse_idx_images(path, data: bytes) -> np.ndarray:
    """Parse decompressed IDX image bytes.

    Args:
        path: file name, used in error messages.
        data: the decompressed file contents.

    Returns:
        uint8 images, (n, 28, 28).
    """
    _, n, rows, cols = _header(path, data, 4, IMAGES_MAGIC)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"{path}: images are {rows}x{cols}, expected 28x28")
    pixels = _payload(path, data, 16, n * rows * cols, f"{n} images")
    return pixels.reshape(n, rows, cols).copy()


def parse_idx_labels(path, data: bytes) -> np.ndarray:
    """Parse decompressed IDX label bytes.

    Args:
        path: file name, used in error messages.
        data: the decompressed file contents.

    Returns:
        uint8 labels in 0..9, (n,).
    """
    _, n = _header(path, data, 2, LABELS_MAGIC)
    labels = _payload(path, data, 8, n, f"{n} labels").copy()
    if labels.size and labels.max() > 9:
        raise DatasetError(
            f"{path}: label {int(labels.max())} found, expected labels 0..9"
        )
    return labels


def load_mnist_t10k(data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Load the 10,000 MNIST test digits.

    Args:
        data_dir: optional folder holding the two .gz files (or a parent holding
            mnist_t10k/); otherwise $JAXNET_DATA and the cache are searched.

    Returns:
        images: uint8 pixels 0..255, (10000, 28, 28).
        labels: uint8 digits 0..9, (10000,).

    Raises:
        DatasetNotFoundError: the files are in none of the searched places.
        DatasetError: a file is corrupt, truncated or has the wrong header.
    """
    folder = find_dataset_dir(NAME, FILES, data_dir)
    images_path, labels_path = folder / IMAGES_FILE, folder / LABELS_FILE
    images = parse_idx_images(images_path, _read_gzip(images_path))
    labels = parse_idx_labels(labels_path, _read_gzip(labels_path))
    for path, n in ((images_path, images.shape[0]), (labels_path, labels.shape[0])):
        if n != NUM_EXAMPLES:
            raise DatasetError(f"{path}: holds {n} examples, expected {NUM_EXAMPLES}")
    return images, labels


def split_digits(
    images: ArrayLike, labels: ArrayLike, key: jax.Array, n_train: int = 8000
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Shuffle with ``key`` and split into train / held-out sets, examples as columns.

    Args:
        images: uint8 pixels, (m, 28, 28).
        labels: digits, (m,).
        key: jax.random key; the same key always gives the same split.
        n_train: number of training examples, 0 <= n_train <= m.

    Returns:
        X_train: pixels / 255, float32 in [0, 1], (784, n_train).
        y_train: int32 digits, (n_train,).
        X_test: float32, (784, m - n_train).
        y_test: int32, (m - n_train,).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    m = images.shape[0]
    if labels.shape != (m,):
        raise ValueError(f"labels shape {labels.shape}, expected ({m},)")
    if not 0 <= n_train <= m:
        raise ValueError(f"n_train={n_train} outside 0..{m}")
    order = np.asarray(jax.random.permutation(key, m))
    X = jnp.asarray(images[order].reshape(m, -1).T, dtype=jnp.float32) / 255.0
    y = jnp.asarray(labels[order], dtype=jnp.int32)
    return X[:, :n_train], y[:n_train], X[:, n_train:], y[n_train:]
