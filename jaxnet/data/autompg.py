"""Auto MPG (406 cars, 1970-1982) as a regression set in the lecture's layout.

File: ``cars.json``, a JSON list of records with the fields of `FIELDS` (the
vega_datasets copy of the StatLib / UCI "Auto MPG" data; see docs/data.md).

What the loader does, in order (all of it is also returned in ``report``):

1. Drops the records whose Miles_per_Gallon is null (8 in the real file): MPG is
   the target, so they cannot be used for training or evaluation.
2. With ``missing_horsepower="drop"``, drops the records whose Horsepower is null
   (6). With the default ``"median"`` they are kept and their Horsepower is
   imputed after the split with the median of the TRAINING records only.
3. Splits with a fixed permutation, ``np.random.default_rng(seed).permutation(m)``
   of the records in file order: the first ``round(test_fraction * m)`` indices
   are the test set, the rest the training set.
4. Builds 9 features: Cylinders, Displacement, Horsepower, Weight_in_lbs,
   Acceleration, Year (the model year as a number, 1970..1982), and Origin
   one-hot as Origin_USA, Origin_Europe, Origin_Japan.
5. Standardizes every feature with the training mean and standard deviation
   (population std, ddof=0; a constant column gets std 1), applied to both splits.
   The target is NOT standardized: Y is in miles per gallon.

Note: the file has no records dated 1981; the cars of UCI model years 81 and 82
are all dated 1982 in this copy (61 records).
"""

import hashlib
import json
import math
import operator
from typing import NamedTuple

import numpy as np

from jaxnet.data.locate import DatasetError, find_dataset_dir

NAME = "autompg"
FILE = "cars.json"
AUTOMPG_SHA256 = {
    FILE: "f686a53678b21f4231e2f6a5ba7ce5761d9d39204fccdea1caa29fb8c460e319"
}
TARGET = "Miles_per_Gallon"
NUMERIC = ("Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration")
ORIGINS = ("USA", "Europe", "Japan")
FIELDS = ("Name", TARGET, *NUMERIC, "Year", "Origin")
FEATURE_NAMES = (*NUMERIC, "Year", *(f"Origin_{o}" for o in ORIGINS))
MISSING_HORSEPOWER = ("median", "drop")


class AutoMPG(NamedTuple):
    """Auto MPG split into train / test; examples are columns of X and Y.

    Attributes:
        X_train: standardized features, float64, (9, m_train).
        Y_train: Miles_per_Gallon (not standardized), float64, (1, m_train).
        X_test: (9, m_test), standardized with the training statistics.
        Y_test: (1, m_test), as Y_train.
        feature_names: the 9 row names of X, in order.
        mean: training mean of each raw feature, float64, (9, 1).
        std: training std (ddof=0; 1 for a constant column), float64, (9, 1).
        names_train: car names of the training columns, (m_train,).
        names_test: car names of the test columns, (m_test,).
        report: what was done (counts, imputation, split, sha256), JSON-ready.
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    names_train: tuple[str, ...]
    names_test: tuple[str, ...]
    report: dict


def _number(path, i, field, value, *, nullable: bool) -> float:
    if value is None and nullable:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(
            f"{path}: record {i} field {field!r} is {value!r}, expected a number"
        )
    if not math.isfinite(value):
        raise DatasetError(f"{path}: record {i} field {field!r} is {value!r}")
    return float(value)


def _year(path, i, value) -> float:
    if not (isinstance(value, str) and len(value) >= 4 and value[:4].isdigit()):
        raise DatasetError(
            f"{path}: record {i} field 'Year' is {value!r}, expected 'YYYY-01-01'"
        )
    return float(value[:4])


def parse_records(path, data: bytes) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Parse and validate the contents of ``cars.json``.

    Args:
        path: the file name, used in error messages.
        data: the file's bytes.

    Returns:
        raw features in FEATURE_NAMES order with NaN for a null Horsepower,
        float64 (n, 9); MPG with NaN for null, float64 (n,); car names.

    Raises:
        DatasetError: one line naming the file, the record and what was expected.
    """
    try:
        records = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(records, list) or not records:
        raise DatasetError(f"{path}: expected a non-empty JSON list of car records")
    rows, mpg, names = [], [], []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise DatasetError(f"{path}: record {i} is not a JSON object")
        missing = [f for f in FIELDS if f not in r]
        if missing:
            raise DatasetError(
                f"{path}: record {i} lacks field(s) {missing}; expected {list(FIELDS)}"
            )
        if r["Origin"] not in ORIGINS:
            raise DatasetError(
                f"{path}: record {i} Origin is {r['Origin']!r}, expected one of "
                f"{list(ORIGINS)}"
            )
        nums = [_number(path, i, f, r[f], nullable=f == "Horsepower") for f in NUMERIC]
        onehot = [float(r["Origin"] == o) for o in ORIGINS]
        rows.append([*nums, _year(path, i, r["Year"]), *onehot])
        mpg.append(_number(path, i, TARGET, r[TARGET], nullable=True))
        names.append(str(r["Name"]))
    return np.array(rows, dtype=np.float64), np.array(mpg), tuple(names)


def _check_standardizable(path, raw_train, mean, std, records) -> None:
    """Refuse a feature whose mean or std overflows float64 (a Weight of 1e308:
    its squared deviation is inf, and (x - mean) / inf would zero the feature).

    ``records`` maps each training column to its record index in the file.
    """
    bad = ~(np.isfinite(mean) & np.isfinite(std)).ravel()
    if not bad.any():
        return
    k = int(np.flatnonzero(bad)[0])
    j = int(np.argmax(np.abs(raw_train[k])))
    raise DatasetError(
        f"{path}: feature {FEATURE_NAMES[k]!r} cannot be standardized: its mean "
        f"or standard deviation overflows float64 (record {int(records[j])} has "
        f"{FEATURE_NAMES[k]} = {raw_train[k, j]:g}, the largest in magnitude); "
        "correct or remove that record"
    )


def _split(m: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    m_test = round(test_fraction * m)
    if not (1 <= m_test <= m - 2):
        raise ValueError(
            f"test_fraction={test_fraction} gives {m_test} test and {m - m_test} "
            f"training records of {m}; need at least 1 test and 2 training records"
        )
    order = np.random.default_rng(seed).permutation(m)
    return np.sort(order[m_test:]), np.sort(order[:m_test])


def load_autompg(
    data_dir=None,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    missing_horsepower: str = "median",
) -> AutoMPG:
    """Load Auto MPG as standardized features X and MPG targets Y (see module doc).

    Args:
        data_dir: optional folder holding cars.json (or a parent holding
            autompg/); otherwise $JAXNET_DATA, else the cache, is searched.
        seed: seed of the split's numpy permutation; same seed, same split.
        test_fraction: share of the records held out, in (0, 1).
        missing_horsepower: "median" (impute with the training median) or
            "drop" (drop those records before the split).

    Returns:
        AutoMPG with X_train (9, m_train), Y_train (1, m_train), X_test
        (9, m_test), Y_test (1, m_test), the training mean and std (9, 1), and
        ``report``. Real file, defaults: 398 records, m_train 318, m_test 80.

    Raises:
        DatasetNotFoundError: cars.json is not in the searched location.
        DatasetError: the file is not JSON or its records are malformed.
        ValueError: a bad seed, test_fraction or missing_horsepower.
    """
    if missing_horsepower not in MISSING_HORSEPOWER:
        raise ValueError(
            f"missing_horsepower={missing_horsepower!r}; expected one of "
            f"{list(MISSING_HORSEPOWER)}"
        )
    test_fraction = float(test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction}, expected 0 < it < 1")
    seed = operator.index(seed)
    path = find_dataset_dir(NAME, (FILE,), data_dir) / FILE
    data = path.read_bytes()
    features, mpg, names = parse_records(path, data)
    hp = FEATURE_NAMES.index("Horsepower")
    has_mpg = ~np.isnan(mpg)
    no_hp = np.isnan(features[:, hp]) & has_mpg
    keep = has_mpg & ~no_hp if missing_horsepower == "drop" else has_mpg
    features, mpg = features[keep], mpg[keep]
    names = tuple(names[i] for i in np.flatnonzero(keep))
    if mpg.size < 3:
        raise DatasetError(
            f"{path}: only {mpg.size} usable record(s) (with {TARGET}"
            f"{' and Horsepower' if missing_horsepower == 'drop' else ''}); need 3"
        )
    train, test = _split(mpg.size, seed, test_fraction)
    raw_train, raw_test = features[train].T, features[test].T
    median = None
    if missing_horsepower == "median":
        if np.isnan(raw_train[hp]).all():
            raise DatasetError(f"{path}: no training record has a Horsepower value")
        median = float(np.nanmedian(raw_train[hp]))
        for raw in (raw_train, raw_test):
            raw[hp] = np.where(np.isnan(raw[hp]), median, raw[hp])
    with np.errstate(over="ignore", invalid="ignore"):
        mean = raw_train.mean(axis=1, keepdims=True)
        std = raw_train.std(axis=1, keepdims=True)
    _check_standardizable(path, raw_train, mean, std, np.flatnonzero(keep)[train])
    std = np.where(std > 0, std, 1.0)
    report = _report(path, data, seed, test_fraction, missing_horsepower, median)
    report.update(
        records=int(has_mpg.size),
        dropped_missing_mpg=int((~has_mpg).sum()),
        missing_horsepower=int(no_hp.sum()),
        dropped_missing_horsepower=int(no_hp.sum()) if median is None else 0,
        imputed_horsepower=0 if median is None else int(no_hp.sum()),
        m_train=int(train.size),
        m_test=int(test.size),
    )
    return AutoMPG(
        X_train=(raw_train - mean) / std,
        Y_train=mpg[train].reshape(1, -1),
        X_test=(raw_test - mean) / std,
        Y_test=mpg[test].reshape(1, -1),
        feature_names=FEATURE_NAMES,
        mean=mean,
        std=std,
        names_train=tuple(names[i] for i in train),
        names_test=tuple(names[i] for i in test),
        report=report,
    )


def _report(path, data, seed, test_fraction, policy, median) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    horsepower = (
        f"Horsepower nulls imputed with the training median ({median})"
        if policy == "median"
        else "records with a null Horsepower dropped before the split"
    )
    return {
        "file": str(path),
        "sha256": digest,
        "sha256_ok": digest == AUTOMPG_SHA256[FILE],
        "target": TARGET,
        "target_standardized": False,
        "missing_horsepower_policy": policy,
        "horsepower_median": median,
        "seed": int(seed),
        "test_fraction": test_fraction,
        "split": "np.random.default_rng(seed).permutation(m); first "
        "round(test_fraction * m) indices are the test set",
        "standardization": "features: (x - training mean) / training std (ddof=0)",
        "notes": [
            f"records with a null {TARGET} dropped (it is the target)",
            horsepower,
        ],
    }
