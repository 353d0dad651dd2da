"""Bad inputs: each one gets a clear error (its type and the words of its message
are asserted) or, where an answer exists, the right answer.

One section per kind of input, each under its own header; add new cases to the
section they belong to, or a new section at the end:

- data handed to training (``validation.check_training_data``)
- params (``validation.check_params``, ``from_course_params``)
- primitives given integers and bools
- normalize_rows at the ends of the float range
- gradient-check verdicts
- checkpoints
"""

import io
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import activations as act
from jaxnet import losses
from jaxnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jaxnet.gradcheck import check_gradients
from jaxnet.preprocessing import image2vector, normalize_rows
from jaxnet.validation import (
    InputError,
    check_params,
    check_training_data,
    from_course_params,
    to_course_params,
)


def numpy_params(layer_dims=(3, 4, 1), dtype=np.float32, seed=0):
    """Params as numpy arrays (no compilation), entry l-1 = {"W", "b"} of layer l."""
    rng = np.random.default_rng(seed)
    return [
        {"W": rng.normal(size=(n, n_prev)).astype(dtype), "b": np.zeros((n, 1), dtype)}
        for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=True)
    ]


def data(m=5, n_x=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m)).astype(np.float32)
    Y = (rng.random((1, m)) > 0.5).astype(np.float32)
    return X, Y


# ---------------------------------------------------------------- training data


def test_good_data_passes_for_every_output():
    X, Y = data()
    check_training_data(numpy_params(), X, Y, "sigmoid")
    check_training_data(numpy_params(), jnp.asarray(X), jnp.asarray(Y), "sigmoid")
    Y3 = np.eye(3, dtype=np.float32)[:, [0, 2, 1, 1, 0]]
    check_training_data(numpy_params((3, 4, 3)), X, Y3, "softmax")
    check_training_data(numpy_params(), X, X[:1] * 100, "linear")  # any finite Y


@pytest.mark.parametrize(
    ("labels", "hint"), [((0, 255), r"Y / 255"), ((1, 2), r"\(Y == 2\)")]
)
def test_sigmoid_labels_outside_zero_one(labels, hint):
    X, _ = data()
    Y = np.array([[labels[0], labels[1], labels[1], labels[0], labels[1]]], float)
    with pytest.raises(InputError, match=f"labels must be 0 or 1.*{hint}"):
        check_training_data(numpy_params(), X, Y, "sigmoid")


def test_sigmoid_labels_with_many_classes_point_to_softmax():
    X, _ = data()
    Y = np.array([[0.0, 1.0, 2.0, 1.0, 0.0]])
    with pytest.raises(InputError, match=r"labels must be 0 or 1.*Y\[0, 2\].*one_hot"):
        check_training_data(numpy_params(), X, Y, "sigmoid")


@pytest.mark.parametrize(
    ("column", "why"),
    [
        ([1.0, 1.0, 0.0], "multi-hot: 2 ones"),
        ([0.0, 0.0, 0.0], "all zeros"),
        ([0.5, 0.6, 0.0], "sums to 1.1"),  # [0.5, 0.5, 0] is a soft label
    ],
)
def test_softmax_labels_not_one_hot(column, why):
    X, _ = data()
    Y = np.eye(3)[:, [0, 2, 1, 1, 0]]
    Y[:, 3] = column
    with pytest.raises(InputError, match=f"one-hot.*column 3 .*{why}.*one_hot"):
        check_training_data(numpy_params((3, 4, 3)), X, Y, "softmax")


def test_softmax_integer_labels_in_a_row_point_to_one_hot():
    X, _ = data()
    with pytest.raises(
        InputError, match=r"\(3, 5\).*got \(1, 5\).*one_hot\(labels, 3\)"
    ):
        check_training_data(
            numpy_params((3, 4, 3)), X, np.array([[0, 2, 1, 1, 0]]), "softmax"
        )


def test_nan_in_X_names_the_array_count_and_first_index():
    X, Y = data()
    X[1, 2] = np.nan
    X[2, 4] = np.nan
    with pytest.raises(InputError, match=r"X has non-finite .* 2 of 15 .*X\[1, 2\]"):
        check_training_data(numpy_params(), jnp.asarray(X), Y, "sigmoid")


def test_inf_in_Y_names_Y():
    X, Y = data()
    Y[0, 3] = np.inf
    with pytest.raises(InputError, match=r"Y has non-finite .* 1 of 5 .*Y\[0, 3\]"):
        check_training_data(numpy_params(), X, Y, "linear")


def test_no_examples():
    X, Y = data()
    with pytest.raises(InputError, match="no examples: X has 0 columns"):
        check_training_data(numpy_params(), X[:, :0], Y[:, :0], "sigmoid")


def test_labels_in_a_column():
    X, Y = data()
    with pytest.raises(
        InputError, match=r"Y must be \(n_y, m\) = \(1, 5\).*\(5, 1\).*Y.T"
    ):
        check_training_data(numpy_params(), X, Y.T, "sigmoid")


def test_examples_in_rows_or_a_single_example_as_a_vector():
    X, Y = data()
    with pytest.raises(InputError, match=r"got \(3,\): one example\? .*reshape"):
        check_training_data(numpy_params(), X[:, 0], Y[:, :1], "sigmoid")
    with pytest.raises(InputError, match=r"X must be \(n_x, m\) = \(3, m\).*Pass X.T"):
        check_training_data(numpy_params(), X.T, Y, "sigmoid")


def test_non_numeric_X_and_unknown_output():
    X, Y = data()
    with pytest.raises(InputError, match="X must hold numbers"):
        check_training_data(numpy_params(), X.astype(str), Y, "sigmoid")
    with pytest.raises(InputError, match="output must be one of"):
        check_training_data(numpy_params(), X, Y, "relu")


# ---------------------------------------------------------------- params


def test_good_params_pass():
    check_params(numpy_params((3, 4, 2, 1)))
    check_params([{"W": jnp.ones((2, 3)), "b": jnp.zeros((2, 1))}])


def test_output_bias_shaped_per_example():
    params = numpy_params()
    params[1]["b"] = np.zeros((1, 5), np.float32)
    with pytest.raises(
        InputError, match=r"b2 \(params\[1\]\['b'\]\) must be \(n\[2\], 1\) = \(1, 1\)"
    ):
        check_params(params)


def test_bias_as_a_vector():
    params = numpy_params()
    params[0]["b"] = np.zeros(4, np.float32)
    with pytest.raises(
        InputError, match=r"\(n\[1\], 1\) = \(4, 1\); got \(4,\).*reshape"
    ):
        check_params(params)


def test_layer_without_b():
    params = numpy_params()
    del params[1]["b"]
    with pytest.raises(
        InputError, match=r"params\[1\] .* exactly the keys 'W' and 'b'"
    ):
        check_params(params)


def test_integer_params():
    params = numpy_params()
    params[0]["W"] = params[0]["W"].astype(np.int64)
    with pytest.raises(InputError, match=r"W1 .* dtype int64.*astype\(jnp.float32\)"):
        check_params(params)


def test_course_dict_points_to_from_course_params():
    course = to_course_params(numpy_params())
    assert sorted(course) == ["W1", "W2", "b1", "b2"]
    with pytest.raises(InputError, match=r"jaxnet.from_course_params\(params\)"):
        check_params(course)
    back = from_course_params(course)
    check_params(back)
    for layer, original in zip(back, numpy_params(), strict=True):
        np.testing.assert_array_equal(layer["W"], original["W"])


def test_course_dict_with_a_gap_or_a_stray_key():
    course = to_course_params(numpy_params((3, 4, 2, 1)))
    del course["W2"]
    with pytest.raises(InputError, match=r"missing \['W2'\]"):
        from_course_params(course)
    with pytest.raises(InputError, match="got key 'cost'"):
        from_course_params({**to_course_params(numpy_params()), "cost": 0.5})


def test_stacked_sweep_params():
    stacked = [
        {k: np.stack([v, v]) for k, v in layer.items()} for layer in numpy_params()
    ]
    with pytest.raises(InputError, match=r"stacked sweep params.*unstack\(params, i\)"):
        check_params(stacked)


def test_nan_params_and_sizes_that_do_not_chain():
    params = numpy_params()
    params[1]["W"][0, 2] = np.nan
    with pytest.raises(InputError, match=r"W2 has non-finite .*W2\[0, 2\].*diverged"):
        check_params(params)
    params = numpy_params()
    params[1]["W"] = np.ones((1, 3), np.float32)
    with pytest.raises(InputError, match=r"do not chain.*W2 needs 4 columns"):
        check_params(params)


def test_a_single_layer_dict_is_not_params():
    with pytest.raises(InputError, match="list of per-layer dicts"):
        check_params(numpy_params()[0])


# ---------------------------------------------------------------- integer inputs


def test_lecture_sigmoid_of_an_integer_array():
    # The lecture calls sigmoid(np.array([1, 2, 3])); printed values, 8 decimals.
    s = act.sigmoid(np.array([1, 2, 3]))
    assert s.dtype == jnp.result_type(float)
    np.testing.assert_allclose(s, [0.73105858, 0.88079708, 0.95257413], atol=5e-9)
    with jax.enable_x64(False):
        assert act.sigmoid(np.array([1, 2, 3])).dtype == jnp.float32


PRIMITIVES = {
    name: fn
    for name, (forward, derivative) in act.ACTIVATIONS.items()
    for name, fn in ((name, forward), (f"{name}_derivative", derivative))
} | {"softmax": lambda z: act.softmax(z, axis=0), "normalize_rows": normalize_rows}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_])
def test_primitives_promote_integers_and_bools(name, dtype):
    fn = PRIMITIVES[name]
    z = np.array([[0, 1, 3], [2, 0, 1]]).astype(dtype)
    out = fn(z)
    assert out.dtype == jnp.result_type(float)
    np.testing.assert_array_equal(out, fn(z.astype(jnp.result_type(float))))


def test_leaky_relu_derivative_of_negative_integers_is_the_slope():
    out = act.leaky_relu_derivative(np.array([-3, -1, 0, 2]), slope=0.2)
    np.testing.assert_array_equal(out, [0.2, 0.2, 0.2, 1.0])
    np.testing.assert_allclose(act.leaky_relu(np.array([-3, 2])), [-0.03, 2.0])


@pytest.mark.parametrize("slope", [np.nan, np.inf, "0.1", True, [0.1, 0.2], 1j])
def test_leaky_relu_rejects_a_slope_that_is_not_a_finite_number(slope):
    with pytest.raises(ValueError, match="slope must be a finite real number"):
        act.leaky_relu(jnp.ones(2), slope=slope)
    with pytest.raises(ValueError, match="slope must be a finite real number"):
        act.leaky_relu_derivative(jnp.ones(2), slope=slope)


def test_losses_and_image2vector_accept_integers():
    y = np.array([[1, 0, 1]])
    assert losses.l2_loss(np.array([[1, 1, 0]]), y) == 2.0
    cost = losses.compute_cost_from_logits(np.array([[0, 0, 0]]), y)
    np.testing.assert_allclose(cost, np.log(2), rtol=1e-15)
    cost = losses.softmax_cross_entropy_from_logits(
        np.zeros((2, 3), int), np.eye(2)[:, [0, 1, 1]]
    )
    np.testing.assert_allclose(cost, np.log(2), rtol=1e-15)
    image = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)
    v = image2vector(image)
    assert v.shape == (12, 1) and v.dtype == np.uint8  # a reshape keeps the dtype


# ---------------------------------------------------------------- normalize_rows


@pytest.mark.parametrize(
    ("dtype", "huge", "tiny"), [(np.float32, 1e30, 1e-30), (np.float64, 1e200, 1e-200)]
)
def test_normalize_rows_huge_tiny_and_zero_rows(dtype, huge, tiny):
    x = np.array([[3, 4, 0], [3, 4, 0], [3, 4, 0], [0, 0, 0]], dtype)
    x[1] *= dtype(huge)
    x[2] *= dtype(tiny)
    out = normalize_rows(x)
    assert out.dtype == dtype
    # Every non-zero row is (0.6, 0.8, 0): the naive x / ||x|| gives 0 for the
    # huge row (||x|| = inf) and leaves the tiny one unchanged (||x|| = 0).
    expected = np.array([[0.6, 0.8, 0]] * 3 + [[0, 0, 0]], dtype)
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(out[3], 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_rows_gradient_is_finite_at_a_zero_row(dtype):
    x = jnp.asarray(np.array([[3, 4, 0], [0, 0, 0]], dtype))
    c = jnp.arange(3.0, dtype=dtype)[None, :]
    g = jax.grad(lambda v: jnp.sum(normalize_rows(v) * c))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[1], 0.0)
    # Row 0: d(x / ||x||) = (I - u u^T) / ||x|| applied to c = (0, 1, 2).
    u, c = np.array([0.6, 0.8, 0.0]), np.arange(3.0)
    np.testing.assert_allclose(g[0], (c - u * (u @ c)) / 5, rtol=4e-7, atol=1e-7)


# ---------------------------------------------------------------- gradient checks


def test_a_failed_gradient_check_is_false():
    x = jnp.array([0.5, -1.0, 2.0])
    good = check_gradients(lambda v: jnp.sum(v**3), x, 3 * x**2)
    bad = check_gradients(lambda v: jnp.sum(v**3), x, 3 * x**2 + 0.1)  # planted bug
    assert good.passed and bool(good) is True
    assert not bad.passed and bool(bad) is False
    with pytest.raises(AssertionError):
        assert bad


# ---------------------------------------------------------------- checkpoints

LAYER_DIMS, NAMES = [3, 4, 1], ["relu", "sigmoid"]


def write_npz(path, **overrides):
    """A hand-made checkpoint: the good one with some entries replaced."""
    params = numpy_params(LAYER_DIMS)
    arrays = {
        "W1": params[0]["W"],
        "b1": params[0]["b"],
        "W2": params[1]["W"],
        "b2": params[1]["b"],
        "layer_dims": np.array(LAYER_DIMS),
        "activations": np.array(NAMES),
        "metadata_json": np.array("{}"),
    } | overrides
    np.savez(path, **arrays)
    return path


def test_a_hand_made_checkpoint_loads(tmp_path):
    params, info = load_checkpoint(write_npz(tmp_path / "ok.npz"))
    assert info["layer_dims"] == LAYER_DIMS and info["activations"] == NAMES


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"activations": np.array(["relu", "sigmoidd"])},
            "unknown activation 'sigmoidd'",
        ),
        (
            {"activations": np.array(["softmax", "sigmoid"])},
            "unknown activation 'softmax'",
        ),
        ({"activations": np.array(["relu"])}, "exactly one activation per layer"),
        ({"activations": np.array("relu")}, "list of names, one per layer"),
        (
            {"layer_dims": np.array([3.0, 4.0, 1.0])},
            "layer_dims must be a list of integers",
        ),
        (
            {"layer_dims": np.array(["3", "4", "1"])},
            "layer_dims must be a list of integers",
        ),
        ({"W1": np.ones((4, 3), np.int64)}, "W1 has dtype int64"),
        (
            {"W2": np.array([[1.0, np.nan, 0.0, np.inf]])},
            r"W2 has 2 non-finite .*\(0, 1\)",
        ),
        ({"metadata_json": np.array("[1, 2]")}, "JSON object"),
    ],
)
def test_invalid_checkpoint_contents(tmp_path, override, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(write_npz(tmp_path / "bad.npz", **override))


def test_nonfinite_weights_load_only_when_allowed(tmp_path):
    path = write_npz(tmp_path / "nan.npz", b1=np.full((4, 1), np.nan))
    with pytest.raises(CheckpointError, match=r"b1 has 4 non-finite.*allow_nonfinite"):
        load_checkpoint(path)
    params, _ = load_checkpoint(path, allow_nonfinite=True)
    assert np.isnan(params[0]["b"]).all()


def test_save_refuses_nonfinite_params_unless_allowed(tmp_path):
    params = numpy_params(LAYER_DIMS)
    params[1]["W"][0, 3] = np.inf
    kwargs = {"layer_dims": LAYER_DIMS, "activations": NAMES}
    with pytest.raises(ValueError, match=r"W2 has 1 non-finite .*allow_nonfinite=True"):
        save_checkpoint(tmp_path / "x.npz", params, **kwargs)
    assert not (tmp_path / "x.npz").exists()
    save_checkpoint(tmp_path / "x.npz", params, allow_nonfinite=True, **kwargs)
    loaded, _ = load_checkpoint(tmp_path / "x.npz", allow_nonfinite=True)
    assert np.isinf(loaded[1]["W"][0, 3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activations": "relu"}, "single string 'relu'"),
        ({"activations": ["relu", "swish"]}, "unknown activation 'swish'"),
        ({"activations": ["relu"]}, "exactly one activation per layer"),
        ({"layer_dims": [3.0, 4, 1]}, "layer_dims must be a list of integers"),
        ({"layer_dims": [3, True, 1]}, "layer_dims must be a list of integers"),
        ({"extra_arrays": {"opt": np.array([object()])}}, "nothing is pickled"),
        ({"extra_arrays": {"mu": np.array([np.nan])}}, "extra array 'mu' has 1 non"),
    ],
)
def test_save_refuses_a_bad_description(tmp_path, kwargs, message):
    kwargs = {"layer_dims": LAYER_DIMS, "activations": NAMES} | kwargs
    with pytest.raises(ValueError, match=message):
        save_checkpoint(tmp_path / "x.npz", numpy_params(LAYER_DIMS), **kwargs)


def test_save_refuses_integer_params(tmp_path):
    params = numpy_params(LAYER_DIMS)
    params[0]["b"] = params[0]["b"].astype(np.int32)
    with pytest.raises(ValueError, match="b1 has dtype int32"):
        save_checkpoint(
            tmp_path / "x.npz", params, layer_dims=LAYER_DIMS, activations=NAMES
        )


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"W1 = [[1, 2]]\n", "not a zip archive"),
        (npy_bytes(np.ones(3)), "single .npy array"),
        (pickle.dumps({"W1": [1.0]}), "Python pickle"),
        (b"", "empty"),
    ],
)
def test_files_that_are_not_checkpoints(tmp_path, content, what):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"not a readable .npz.*{what}") as e:
        load_checkpoint(path)
    assert "allow_pickle" not in str(e.value)


def test_an_npz_holding_python_objects(tmp_path):
    path = tmp_path / "objects.npz"
    write_npz(path, extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="'extra' holds Python objects") as e:
        load_checkpoint(path)
    assert "allow_pickle" not in str(e.value)


# ---------------------------------------------------------------- accuracy


def test_accuracy_refuses_labels_that_would_broadcast():
    from jaxnet.train import accuracy

    params = [{"W": jnp.array([[1.0, 0.0]]), "b": jnp.zeros((1, 1))}]
    X = jnp.array([[2.0, -1.0, 0.5], [5.0, 5.0, -5.0]])
    # (m, 1) against (1, m) would broadcast to (m, m) and give a wrong number.
    with pytest.raises(ValueError, match=r"Y must be \(1, m\) = \(1, 3\).*pass Y.T"):
        accuracy(params, X, jnp.array([[1], [0], [1]]), ("sigmoid",))
    assert float(accuracy(params, X, jnp.array([[1, 0, 1]]), ("sigmoid",))) == 1.0


def test_softmax_accuracy_reads_integer_labels_as_a_row_too():
    from jaxnet.train import accuracy

    params = [{"W": jnp.eye(3), "b": jnp.zeros((3, 1))}]
    X = jnp.array([[3.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 4.0]])
    # Predictions [0, 1, 2, 2]; labels [0, 1, 1, 2] right in 3 of 4, whether the
    # labels come as (m,) or as a (1, m) row (argmax of a row would be all 0).
    for labels in (jnp.array([0, 1, 1, 2]), jnp.array([[0, 1, 1, 2]])):
        assert float(accuracy(params, X, labels, ("softmax",))) == 0.75
    with pytest.raises(ValueError, match="one-hot"):
        accuracy(params, X, jnp.zeros((2, 3)), ("softmax",))


def test_accuracy_of_a_regression_is_a_clear_error():
    from jaxnet.train import accuracy

    params = [{"W": jnp.ones((1, 2)), "b": jnp.zeros((1, 1))}]
    with pytest.raises(ValueError, match="accuracy is for classifiers"):
        accuracy(params, jnp.ones((2, 3)), jnp.ones((1, 3)), ("linear",))
