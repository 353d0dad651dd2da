"""The course's cat / non-cat images (64x64 RGB), loaded into the lecture's layout.

Files (HDF5): ``train_catvnoncat.h5`` with keys train_set_x (209, 64, 64, 3) uint8,
train_set_y (209,), list_classes; ``test_catvnoncat.h5`` likewise with test_set_*.
Every malformed file gives a one-line `DatasetError`, never an h5py traceback.
"""

from typing import NamedTuple

import h5py
import numpy as np

from jaxnet.data.locate import DatasetError, find_dataset_dir

NAME = "catvnoncat"
TRAIN_FILE = "train_catvnoncat.h5"
TEST_FILE = "test_catvnoncat.h5"
FILES = (TRAIN_FILE, TEST_FILE)
IMAGE_SHAPE = (64, 64, 3)
CATVNONCAT_SHA256 = {
    "train_catvnoncat.h5": (
        "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242"
    ),
    "test_catvnoncat.h5": (
        "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951"
    ),
}


class CatData(NamedTuple):
    """Cat / non-cat data; examples are columns of X and Y.

    Attributes:
        X_train: pixels / 255, float64 in [0, 1], (12288, 209).
        Y_train: labels 0 (non-cat) or 1 (cat), float64, (1, 209).
        X_test: (12288, 50), as X_train.
        Y_test: (1, 50), as Y_train.
        classes: class names by label, ("non-cat", "cat").
        train_images: raw images, uint8, (209, 64, 64, 3).
        test_images: raw images, uint8, (50, 64, 64, 3).
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    classes: tuple[str, ...]
    train_images: np.ndarray
    test_images: np.ndarray


def _flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """Flatten images to columns as the course does: images.reshape(m, -1).T / 255.

    The same layout as ``jaxnet.preprocessing.flatten_images`` then
    ``scale_pixels``, but in numpy float64 whatever ``jax_enable_x64`` says, so
    the course's exact reproductions get the same X as the notebooks.

    Args:
        images: uint8 pixels, (m, h, w, c).

    Returns:
        float64 values in [0, 1], (h * w * c, m), row-major over h, w, c.
    """
    m = images.shape[0]
    return images.reshape(m, -1).T / 255.0


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def read_split(path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read and validate one HDF5 file of the set.

    Args:
        path: the .h5 file.
        split: "train" or "test"; selects keys "<split>_set_x" / "<split>_set_y".

    Returns:
        images uint8 (m, 64, 64, 3), labels int64 (m,) in {0, 1}, class names.

    Raises:
        DatasetError: one line naming the file and what was expected.
    """
    x_key, y_key = f"{split}_set_x", f"{split}_set_y"
    expected = (x_key, y_key, "list_classes")
    try:
        with h5py.File(path, "r") as f:
            found = sorted(f.keys())
            missing = [k for k in expected if k not in f]
            if missing:
                raise DatasetError(
                    f"{path}: missing key(s) {missing}; expected keys "
                    f"{list(expected)}, found {found}"
                )
            x, y, names = f[x_key][()], f[y_key][()], f["list_classes"][()]
    except DatasetError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(
            f"{path}: cannot read as HDF5 (truncated or corrupt?): {_one_line(e)}"
        ) from e
    return _validate(path, split, x, y, names)


def _validate(path, split, x, y, names):
    x_key, y_key = f"{split}_set_x", f"{split}_set_y"
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{path}: {x_key} has shape {x.shape}, expected (m, 64, 64, 3)"
        )
    if x.dtype != np.uint8:
        raise DatasetError(f"{path}: {x_key} has dtype {x.dtype}, expected uint8")
    if y.ndim == 2 and y.shape[0] == 1:
        y = y[0]
    if y.ndim != 1:
        raise DatasetError(f"{path}: {y_key} has shape {y.shape}, expected (m,)")
    if y.shape[0] != x.shape[0]:
        raise DatasetError(
            f"{path}: {x_key} has {x.shape[0]} examples but {y_key} has {y.shape[0]}"
        )
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise DatasetError(f"{path}: {y_key} has dtype {y.dtype}, expected integers")
    bad = np.setdiff1d(np.unique(y), [0, 1])
    if bad.size:
        raise DatasetError(
            f"{path}: {y_key} holds labels {bad.tolist()[:5]}, expected only 0 and 1"
        )
    try:
        classes = tuple(
            n.decode() if isinstance(n, bytes) else str(n) for n in np.ravel(names)
        )
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: list_classes is not text: {e}") from e
    if len(classes) != 2:
        raise DatasetError(
            f"{path}: list_classes has {len(classes)} names, expected 2 (non-cat, cat)"
        )
    return x, y.astype(np.int64), classes


def load_catvnoncat(data_dir=None) -> CatData:
    """Load the cat / non-cat set, flattened into the lecture's column layout.

    Args:
        data_dir: optional folder holding the two .h5 files (or a parent holding
            catvnoncat/); otherwise $JAXNET_DATA and the cache are searched.

    Returns:
        CatData with X_train (12288, 209), Y_train (1, 209), X_test (12288, 50),
        Y_test (1, 50), classes, train_images (209, 64, 64, 3) and
        test_images (50, 64, 64, 3).

    Raises:
        DatasetNotFoundError: the files are in none of the searched places.
        DatasetError: a file is corrupt or not shaped as expected.
    """
    folder = find_dataset_dir(NAME, FILES, data_dir)
    train_x, train_y, classes = read_split(folder / TRAIN_FILE, "train")
    test_x, test_y, test_classes = read_split(folder / TEST_FILE, "test")
    if test_classes != classes:
        raise DatasetError(
            f"{folder}: class names differ between files: {classes} vs {test_classes}"
        )
    return CatData(
        X_train=_flatten_and_scale(train_x),
        Y_train=train_y.reshape(1, -1).astype(np.float64),
        X_test=_flatten_and_scale(test_x),
        Y_test=test_y.reshape(1, -1).astype(np.float64),
        classes=classes,
        train_images=train_x,
        test_images=test_x,
    )
