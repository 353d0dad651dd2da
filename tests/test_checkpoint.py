"""Tests for jaxnet.checkpoint: round trip, plain-numpy format, atomic saves."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

LAYER_DIMS = [5, 4, 3, 1]
ACTIVATIONS = ["relu", "relu", "sigmoid"]


def _params(seed=0, layer_dims=LAYER_DIMS, dtype=jnp.float32):
    """Random params as jax arrays (drawn with numpy: no per-shape compiles)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "W": jnp.asarray(rng.normal(size=(n, n_prev)), dtype),
            "b": jnp.asarray(rng.normal(size=(n, 1)), dtype),
        }
        for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=False)
    ]


def _save(path, params, **metadata):
    return save_checkpoint(
        path,
        params,
        layer_dims=LAYER_DIMS,
        activations=ACTIVATIONS,
        metadata=metadata or None,
    )


def _assert_same(params, loaded):
    assert len(params) == len(loaded)
    for layer, got in zip(params, loaded, strict=True):
        assert set(got) == {"W", "b"}
        for name in ("W", "b"):
            assert isinstance(got[name], np.ndarray)
            assert got[name].dtype == np.asarray(layer[name]).dtype
            np.testing.assert_array_equal(got[name], np.asarray(layer[name]))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip(tmp_path, dtype):
    params = _params(dtype=dtype)
    meta = {"seed": 0, "cost": 0.125, "notes": ["a", "é"], "nested": {"x": None}}
    path = _save(tmp_path / "model.npz", params, **meta)
    assert path == tmp_path / "model.npz"
    loaded, info = load_checkpoint(path)
    _assert_same(params, loaded)
    assert info == {
        "layer_dims": LAYER_DIMS,
        "activations": ACTIVATIONS,
        "metadata": meta,
    }


def test_numpy_params_and_no_metadata(tmp_path):
    params = [{"W": np.ones((2, 3)), "b": np.zeros((2, 1))}]
    save_checkpoint(
        tmp_path / "c.npz", params, layer_dims=[3, 2], activations=["sigmoid"]
    )
    loaded, info = load_checkpoint(tmp_path / "c.npz")
    _assert_same(params, loaded)
    assert info["metadata"] == {} and info["layer_dims"] == [3, 2]


def test_file_is_plain_numpy(tmp_path):
    _save(tmp_path / "m.npz", _params(), seed=3)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            [
                "W1",
                "b1",
                "W2",
                "b2",
                "W3",
                "b3",
                "layer_dims",
                "activations",
                "metadata_json",
            ]
        )
        assert npz["layer_dims"].dtype == np.int64
        assert npz["activations"].dtype.kind == "U"
        assert (
            npz["metadata_json"].shape == () and npz["metadata_json"].dtype.kind == "U"
        )
        assert npz["W2"].shape == (3, 4) and npz["b3"].shape == (1, 1)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = _params()
    _save(path, old, step=1)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        _save(path, _params(seed=7), step=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp left
    loaded, info = load_checkpoint(path)
    _assert_same(old, loaded)
    assert info["metadata"] == {"step": 1}


def test_save_validates(tmp_path):
    params = _params()
    with pytest.raises(ValueError, match=r"layer 2: W2 has shape \(3, 4\), expected"):
        save_checkpoint(
            tmp_path / "x.npz", params, layer_dims=[5, 4, 2, 1], activations=ACTIVATIONS
        )
    with pytest.raises(ValueError, match="3 layers of params"):
        save_checkpoint(
            tmp_path / "x.npz", params, layer_dims=[5, 4], activations=ACTIVATIONS
        )
    with pytest.raises(ValueError, match="JSON"):
        _save(tmp_path / "x.npz", params, bad=object())
    assert not (tmp_path / "x.npz").exists()


def test_load_missing_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_checkpoint(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip archive")
    with pytest.raises(CheckpointError, match="junk.npz.*not a readable .npz"):
        load_checkpoint(tmp_path / "junk.npz")


def test_load_truncated(tmp_path):
    path = _save(tmp_path / "m.npz", _params())
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="m.npz"):
        load_checkpoint(path)


def test_load_inconsistent_shapes(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        W1=np.ones((4, 5)),
        b1=np.ones((4, 1)),
        W2=np.ones((1, 3)),
        b2=np.ones((1, 1)),
        layer_dims=np.array([5, 4, 1]),
        activations=np.array(["relu", "sigmoid"]),
        metadata_json=np.array("{}"),
    )
    with pytest.raises(
        ValueError, match=r"layer 2: W2 has shape \(1, 3\), expected \(1, 4\)"
    ):
        load_checkpoint(path)


def test_load_missing_arrays(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        W1=np.ones((4, 5)),
        layer_dims=np.array([5, 4]),
        activations=np.array(["relu"]),
        metadata_json=np.array("{}"),
    )
    with pytest.raises(CheckpointError, match=r"missing \['b1'\]"):
        load_checkpoint(path)
    np.savez(path, W1=np.ones((4, 5)), b1=np.ones((4, 1)))
    with pytest.raises(CheckpointError, match="missing.*layer_dims"):
        load_checkpoint(path)


def test_extra_arrays_round_trip(tmp_path):
    # Optional extras (e.g. an optimizer's state) live under "extra/<name>".
    extra = {"adam/mu/0": np.arange(6.0).reshape(2, 3), "step": np.array(7)}
    save_checkpoint(
        tmp_path / "e.npz",
        _params(),
        layer_dims=LAYER_DIMS,
        activations=ACTIVATIONS,
        extra_arrays=extra,
    )
    with np.load(tmp_path / "e.npz") as npz:
        assert {"extra/adam/mu/0", "extra/step"} <= set(npz.files)
    loaded, info = load_checkpoint(tmp_path / "e.npz")
    _assert_same(_params(), loaded)
    assert sorted(info["extra"]) == ["adam/mu/0", "step"]
    for name, array in extra.items():
        np.testing.assert_array_equal(info["extra"][name], array)
        assert info["extra"][name].dtype == array.dtype
    # Without extras the info has no "extra" key (as before extras existed).
    _save(tmp_path / "plain.npz", _params())
    assert "extra" not in load_checkpoint(tmp_path / "plain.npz")[1]


def test_numpy_integer_layer_dims_and_tuple_activations(tmp_path):
    save_checkpoint(
        tmp_path / "n.npz",
        _params(),
        layer_dims=np.array(LAYER_DIMS),
        activations=tuple(ACTIVATIONS),
    )
    _, info = load_checkpoint(tmp_path / "n.npz")
    assert info["layer_dims"] == LAYER_DIMS
    assert all(type(n) is int for n in info["layer_dims"])
