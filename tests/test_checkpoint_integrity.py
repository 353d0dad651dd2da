"""Checkpoints that are damaged or contradict themselves are refused on load.

Library level (fast, in-process): ``load_checkpoint`` on damaged archives and
``restore_state`` on an edited optimizer state. The experiments' view of the
same files (one line, no traceback) is in tests/test_user_errors.py.
"""

import contextlib
import io
import json
import random
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jaxnet.optimizers import build_optimizer
from jaxnet.runstate import StateMismatchError, restore_state, state_arrays
from jaxnet.steps import TrainState

DIMS = [4, 3, 1]


def _params(dtype=np.float64):
    rng = np.random.default_rng(0)
    return [
        {"W": rng.normal(size=(DIMS[i], DIMS[i - 1])).astype(dtype),
         "b": rng.normal(size=(DIMS[i], 1)).astype(dtype)}
        for i in range(1, len(DIMS))
    ]  # fmt: skip


@pytest.fixture
def saved(tmp_path):
    return save_checkpoint(
        tmp_path / "ok.npz", _params(), layer_dims=DIMS,
        activations=["relu", "sigmoid"], metadata={"iterations_done": 3},
        extra_arrays={"costs": np.array([0.7, 0.6, 0.5])},
    )  # fmt: skip


def _same(a, b) -> bool:
    (pa, ia), (pb, ib) = a, b
    same_params = all(
        np.array_equal(x[k], y[k]) for x, y in zip(pa, pb, strict=True) for k in "Wb"
    )
    extra_same = all(
        np.array_equal(ia["extra"][k], ib["extra"][k]) for k in ia["extra"]
    )
    return same_params and extra_same and {**ia, "extra": 0} == {**ib, "extra": 0}


def test_flipped_bits_are_refused_or_harmless(saved, tmp_path):
    """300 seeded trials of 1-4 flipped bits anywhere in the file: each load
    either raises CheckpointError (naming the file) or returns exactly the
    original content (a flip in a field nothing reads, e.g. a timestamp).
    Before: NotImplementedError, RuntimeError, zlib/struct errors escaped."""
    raw = saved.read_bytes()
    original = load_checkpoint(saved)
    rng = random.Random(17)
    refused = 0
    for _ in range(300):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / "flipped.npz"
        path.write_bytes(bytes(data))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            refused += 1
            continue
        assert _same(loaded, original)
    assert refused >= 200  # almost every byte of a checkpoint matters


def _zip_members(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def _write_zip(path, members) -> None:
    """Write ``members`` as a zip (zipfile warns about a duplicated name)."""
    doubled = len({n for n, _ in members}) < len(members)
    warns = pytest.warns(UserWarning) if doubled else contextlib.nullcontext()
    with warns, zipfile.ZipFile(path, "w") as z:
        for name, blob in members:
            z.writestr(name, blob)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array))
    return buf.getvalue()


def test_a_duplicated_member_is_refused(saved, tmp_path):
    """Two W1.npy members: before, the last one silently won."""
    members = _zip_members(saved)
    members.append(("W1.npy", _npy(np.zeros((3, 4)))))
    path = tmp_path / "dup.npz"
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match=r"\['W1.npy'\] more than once"):
        load_checkpoint(path)


@pytest.mark.parametrize("shape", [(10**6, 10**6), (3, 4 * 10**11)])
def test_a_header_claiming_more_than_the_file_holds_is_refused(saved, tmp_path, shape):
    """A .npy header claiming 10^12 elements: before, numpy tried to allocate
    them (MemoryError); now the claim is compared with the member's size."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    members = [
        (n, header.getvalue() + bytes(96) if n == "W1.npy" else blob)
        for n, blob in _zip_members(saved)
    ]
    path = tmp_path / "huge.npz"
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match="claims shape"):
        load_checkpoint(path)


def test_weights_of_other_shapes_are_refused_before_they_are_read(saved, tmp_path):
    members = [
        (n, _npy(np.zeros((30, 40))) if n == "W1.npy" else blob)
        for n, blob in _zip_members(saved)
    ]
    path = tmp_path / "shape.npz"
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match=r"W1 has shape \(30, 40\)"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        json.dumps(
            {
                "a": [
                    [
                        [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            1
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ]
                ]
            }
        ),
    ],  # 35 levels  # fmt: skip
)
def test_deeply_nested_metadata_is_refused(saved, tmp_path, text):
    """Before: RecursionError from json.loads for the first."""
    members = [
        (n, _npy(np.asarray(text)) if n == "metadata_json.npy" else blob)
        for n, blob in _zip_members(saved)
    ]
    path = tmp_path / "nested.npz"
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match="nests deeper than 32"):
        load_checkpoint(path)


def test_a_folder_is_not_a_checkpoint(tmp_path):
    (tmp_path / "deep.npz").mkdir()
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path / "deep.npz")


def _state(learning_rate, optimizer="momentum"):
    params = jax.tree.map(jnp.asarray, _params())
    opt = build_optimizer(optimizer, learning_rate)
    return TrainState(params, opt.init(params), jax.random.key(0))


def test_restore_refuses_an_edited_learning_rate():
    """A state whose injected learning rate is not the run's: before, it was
    restored and trained at the saved alpha (0: nothing learned)."""
    arrays = state_arrays(_state(0.0075), np.zeros(3))
    restore_state(_state(0.0075), _params(), arrays)  # the run's own: fine
    edited = {**arrays, "opt_1": np.zeros_like(arrays["opt_1"])}
    with pytest.raises(StateMismatchError, match=r"learning_rate.*0\.0075"):
        restore_state(_state(0.0075), _params(), edited)


def test_restore_refuses_a_missing_or_odd_key_and_costs():
    arrays = state_arrays(_state(0.1), np.zeros(3))
    for change, words in [
        ({"key": np.zeros(7, np.uint32)}, "random key"),
        ({"costs": np.zeros((3, 2))}, "costs"),
    ]:
        with pytest.raises(StateMismatchError, match=words):
            restore_state(_state(0.1), _params(), {**arrays, **change})
    without = {k: v for k, v in arrays.items() if k != "key"}
    with pytest.raises(StateMismatchError, match="lacks"):
        restore_state(_state(0.1), _params(), without)
