"""Tests for jaxnet.data.autompg: the real file, the split, missing values, errors."""

import json

import numpy as np
import pytest

from jaxnet.data import (
    AUTOMPG_SHA256,
    DATASETS,
    DatasetError,
    DatasetNotFoundError,
    fetch_dataset,
    load_autompg,
)
from jaxnet.data.autompg import FEATURE_NAMES

# ---------------------------------------------------------------- real data


def test_real_shapes_and_report(autompg_root):
    d = load_autompg(autompg_root)
    assert d.feature_names == FEATURE_NAMES and len(FEATURE_NAMES) == 9
    assert d.X_train.shape == (9, 318) and d.Y_train.shape == (1, 318)
    assert d.X_test.shape == (9, 80) and d.Y_test.shape == (1, 80)
    assert d.mean.shape == d.std.shape == (9, 1)
    for a in (d.X_train, d.Y_train, d.X_test, d.Y_test, d.mean, d.std):
        assert a.dtype == np.float64 and np.isfinite(a).all()
    r = d.report
    assert r["sha256_ok"] and r["sha256"] == AUTOMPG_SHA256["cars.json"]
    assert (r["records"], r["dropped_missing_mpg"]) == (406, 8)
    assert (r["missing_horsepower"], r["imputed_horsepower"]) == (6, 6)
    assert r["dropped_missing_horsepower"] == 0
    assert (r["m_train"], r["m_test"]) == (318, 80)
    assert r["target_standardized"] is False
    json.dumps(r)  # goes into metrics.json as is
    assert len(d.names_train) == 318 and len(d.names_test) == 80


def test_real_standardized_with_training_statistics(autompg_root):
    d = load_autompg(autompg_root)
    np.testing.assert_allclose(d.X_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.X_train.std(axis=1), 1.0, rtol=1e-12)
    assert np.abs(d.X_test.mean(axis=1)).max() > 1e-3  # not its own statistics
    raw_train = d.X_train * d.std + d.mean
    raw_test = d.X_test * d.std + d.mean
    year = FEATURE_NAMES.index("Year")
    for raw in (raw_train, raw_test):
        years = np.round(raw[year])
        assert set(years.tolist()) <= set(range(1970, 1983))
        np.testing.assert_allclose(raw[6:].sum(axis=0), 1.0, atol=1e-12)  # one-hot
    assert d.Y_train.min() >= 9.0 and d.Y_train.max() <= 47.0  # mpg, unscaled


def test_real_split_is_a_seeded_partition(autompg_root):
    records = json.loads((autompg_root / "autompg" / "cars.json").read_text())
    mpg = sorted(r["Miles_per_Gallon"] for r in records if r["Miles_per_Gallon"])
    a, b = load_autompg(autompg_root), load_autompg(autompg_root, seed=0)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    c = load_autompg(autompg_root, seed=np.int64(1))
    assert not np.array_equal(a.Y_test, c.Y_test)
    for d in (a, c):
        both = np.concatenate([d.Y_train[0], d.Y_test[0]])
        np.testing.assert_array_equal(np.sort(both), mpg)


def test_real_drop_missing_horsepower(autompg_root):
    d = load_autompg(autompg_root, missing_horsepower="drop", test_fraction=0.25)
    assert d.report["dropped_missing_horsepower"] == 6
    assert d.report["imputed_horsepower"] == 0 and d.report["horsepower_median"] is None
    assert d.X_train.shape == (9, 294) and d.X_test.shape == (9, 98)


def test_real_found_through_the_search_order(autompg_root, monkeypatch):
    monkeypatch.setenv("JAXNET_DATA", str(autompg_root))
    assert load_autompg().X_train.shape == (9, 318)


def test_fetch_autompg_into_a_cache(autompg_root, tmp_path, monkeypatch):
    assert "autompg" in DATASETS
    dest = fetch_dataset("autompg", autompg_root / "autompg", cache=tmp_path)
    assert dest == tmp_path / "autompg"
    monkeypatch.delenv("JAXNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DatasetNotFoundError, match="autompg"):
        load_autompg()
    fetch_dataset("autompg", autompg_root)
    assert load_autompg().report["sha256_ok"]


# ---------------------------------------------------------------- synthetic files


def _car(i, mpg=20.0, hp=100.0, origin="USA", year="1975-01-01", **extra):
    car = {
        "Name": f"car {i}",
        "Miles_per_Gallon": mpg,
        "Cylinders": 4 + 2 * (i % 3),
        "Displacement": 100.0 + 10 * i,
        "Horsepower": hp,
        "Weight_in_lbs": 2000 + 50 * i,
        "Acceleration": 12.0 + i % 5,
        "Year": year,
        "Origin": origin,
    }
    car.update(extra)
    return car


def _write(tmp_path, records, raw=None):
    folder = tmp_path / "autompg"
    folder.mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else json.dumps(records)
    (folder / "cars.json").write_text(text)
    return tmp_path


def test_median_uses_the_training_split_only(tmp_path):
    cars = [_car(i, mpg=10.0 + i, hp=float(50 + 10 * i)) for i in range(10)]
    cars[3]["Horsepower"] = None
    cars[7]["Miles_per_Gallon"] = None
    d = load_autompg(_write(tmp_path, cars), test_fraction=0.3)
    r = d.report
    assert (r["records"], r["dropped_missing_mpg"], r["imputed_horsepower"]) == (
        10,
        1,
        1,
    )
    assert not r["sha256_ok"]  # not the real file: said, not refused
    hp = FEATURE_NAMES.index("Horsepower")
    raw_train = d.X_train * d.std + d.mean
    raw_test = d.X_test * d.std + d.mean
    known = {10.0 + i: 50.0 + 10 * i for i in range(10) if i not in (3, 7)}
    train_hp = [known[y] for y in d.Y_train[0] if y in known]
    assert r["horsepower_median"] == np.median(train_hp)
    both_y = np.concatenate([d.Y_train[0], d.Y_test[0]])
    both_hp = np.concatenate([raw_train[hp], raw_test[hp]])
    np.testing.assert_allclose(both_hp[both_y == 13.0], r["horsepower_median"])


def test_constant_feature_gets_std_one(tmp_path):
    cars = [_car(i, mpg=float(i), Cylinders=4) for i in range(8)]
    d = load_autompg(_write(tmp_path, cars))
    c = FEATURE_NAMES.index("Cylinders")
    assert d.std[c, 0] == 1.0 and np.all(d.X_train[c] == 0.0)


@pytest.mark.parametrize(
    ("raw", "records", "words"),
    [
        ("{not json", None, "not valid JSON"),
        ('{"a": 1}', None, "expected a non-empty JSON list"),
        ("[]", None, "expected a non-empty JSON list"),
        (None, [[1, 2]], "record 0 is not a JSON object"),
        (None, [{"Name": "x"}], "lacks field(s)"),
        (None, [_car(0, hp="130")], "'Horsepower' is '130', expected a number"),
        (None, [_car(0, mpg=True)], "expected a number"),
        (None, [_car(0, Cylinders=None)], "'Cylinders' is None"),
        (None, [_car(0, origin="Mars")], "Origin is 'Mars'"),
        (None, [_car(0, year=1975)], "expected 'YYYY-01-01'"),
        (None, [_car(i, mpg=None) for i in range(5)], "only 0 usable record"),
    ],
)
def test_malformed_files_give_a_dataset_error(tmp_path, raw, records, words):
    root = _write(tmp_path, records, raw)
    with pytest.raises(DatasetError, match="cars.json") as info:
        load_autompg(root)
    assert words in str(info.value)


def test_bad_arguments(tmp_path):
    root = _write(tmp_path, [_car(i, mpg=float(i)) for i in range(10)])
    with pytest.raises(ValueError, match="missing_horsepower='mean'"):
        load_autompg(root, missing_horsepower="mean")
    for fraction in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="test_fraction"):
            load_autompg(root, test_fraction=fraction)
    with pytest.raises(ValueError, match="need at least 1 test"):
        load_autompg(root, test_fraction=0.01)
    with pytest.raises(TypeError):
        load_autompg(root, seed=2.5)


def test_explicit_folder_without_the_file_is_an_error(tmp_path, monkeypatch):
    env = _write(tmp_path / "env", [_car(i, mpg=float(i)) for i in range(5)])
    monkeypatch.setenv("JAXNET_DATA", str(env))
    assert load_autompg().X_train.shape == (9, 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="missing cars.json") as info:
        load_autompg(tmp_path / "empty")  # never falls back to $JAXNET_DATA
    assert str(tmp_path / "empty") in str(info.value)
