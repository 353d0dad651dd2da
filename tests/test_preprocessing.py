"""Tests for jaxnet.preprocessing and the lecture's broadcasting examples."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.preprocessing import (
    flatten_images,
    image2vector,
    normalize_rows,
    scale_pixels,
)

# The lecture's "3 by 3 by 2" image (it calls it 3 by 3 by 3).
LECTURE_IMAGE = np.array(
    [
        [[0.139, 0.381], [0.982, 0.647], [0.251, 0.551]],
        [[0.219, 0.647], [0.703, 0.845], [0.397, 0.313]],
        [[0.855, 0.165], [0.313, 0.937], [0.279, 0.077]],
    ]
)
# The printed image2vector(image), top to bottom.
LECTURE_VECTOR = [
    0.139, 0.381, 0.982, 0.647, 0.251, 0.551,
    0.219, 0.647, 0.703, 0.845, 0.397, 0.313,
    0.855, 0.165, 0.313, 0.937, 0.279, 0.077,
]  # fmt: skip


def test_image2vector_matches_lecture_printout():
    v = image2vector(LECTURE_IMAGE)
    assert v.shape == (18, 1)
    # Pure reshape: the same float64 numbers, bit for bit.
    np.testing.assert_array_equal(v[:, 0], LECTURE_VECTOR)


@pytest.mark.parametrize("bad_shape", [(3, 3), (2, 3, 3, 2), (9,)])
def test_image2vector_rejects_non_3d(bad_shape):
    with pytest.raises(ValueError, match=r"\(length, height, depth\)") as info:
        image2vector(np.zeros(bad_shape))
    assert str(bad_shape) in str(info.value)


def test_flatten_images_matches_course_reshape_and_image2vector():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(5, 4, 3, 2)).astype(np.uint8)
    X = flatten_images(images)
    assert X.shape == (4 * 3 * 2, 5)
    # The course's train_set_x_orig.reshape(m, -1).T, bit for bit.
    np.testing.assert_array_equal(X, images.reshape(images.shape[0], -1).T)
    for i in range(images.shape[0]):
        np.testing.assert_array_equal(X[:, i : i + 1], image2vector(images[i]))


def test_flatten_images_rejects_a_single_image():
    with pytest.raises(ValueError, match=r"\(m, h, w, c\)"):
        flatten_images(LECTURE_IMAGE)


def test_scale_pixels_maps_uint8_to_unit_interval():
    pixels = np.array([[0, 51, 255]], np.uint8)
    scaled = scale_pixels(pixels)
    assert scaled.dtype == jnp.float64  # JAX's default float with x64 on
    np.testing.assert_allclose(scaled, [[0.0, 0.2, 1.0]], rtol=1e-15)
    assert scale_pixels(pixels, dtype=jnp.float32).dtype == jnp.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16])
def test_scale_pixels_rejects_non_uint8(dtype):
    with pytest.raises(ValueError, match="uint8") as info:
        scale_pixels(np.array([0, 128, 255], dtype))
    assert np.dtype(dtype).name in str(info.value)


def test_normalize_rows_matches_lecture_printout():
    x = jnp.array([[3, 2, 4], [1, 8, 2]])
    # Printed to 8 decimals: 5e-9 absolute.
    np.testing.assert_allclose(
        normalize_rows(x),
        [[0.55708601, 0.37139068, 0.74278135], [0.12038585, 0.96308682, 0.24077171]],
        rtol=0,
        atol=5e-9,
    )
    # Exactly x / sqrt(29), x / sqrt(69) (lecture formula (5)), float64 rounding.
    expected = np.array([[3, 2, 4], [1, 8, 2]]) / np.sqrt([[29.0], [69.0]])
    np.testing.assert_allclose(normalize_rows(x), expected, rtol=1e-15)


def test_normalize_rows_keeps_zero_rows_zero():
    out = normalize_rows(jnp.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(out[0], [0.0, 0.0])  # not NaN
    # norm(3, 4) = 5 may be off by an ulp (sqrt of 25): rtol 1e-15.
    np.testing.assert_allclose(out[1], [0.6, 0.8], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_rows_equals_the_plain_formula_bit_for_bit(dtype):
    # Rows are rescaled by a power of two before the norm (so huge and tiny rows
    # work, see test_bad_inputs); a power of two only shifts exponents, so where
    # the plain x / ||x|| is finite the result is the same, bit for bit.
    rng = np.random.default_rng(0)
    scales = np.exp(rng.uniform(-20, 20, size=(50, 1)))
    x = jnp.asarray((rng.normal(size=(50, 7)) * scales).astype(dtype))
    plain = x / jnp.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_array_equal(normalize_rows(x), plain)


# ---------------------------------------------------------------- broadcasting


def test_broadcasting_examples_from_the_lecture():
    # Integer arithmetic: exact equality.
    column = jnp.array([[1], [2], [3]])  # (3, 1)
    np.testing.assert_array_equal(column + 10, [[11], [12], [13]])
    np.testing.assert_array_equal(
        column + jnp.array([[10], [10], [10]]), [[11], [12], [13]]
    )
    matrix = jnp.array([[1, 2, 3], [4, 5, 6]])  # (2, 3)
    row = jnp.array([[10, 20, 30]])  # (1, 3) -> broadcast to (2, 3)
    np.testing.assert_array_equal(matrix + row, [[11, 22, 33], [14, 25, 36]])
    col = jnp.array([[10], [20]])  # (2, 1) -> broadcast to (2, 3)
    np.testing.assert_array_equal(matrix + col, [[11, 12, 13], [24, 25, 26]])
    for op in (jnp.add, jnp.subtract, jnp.multiply, jnp.divide):
        assert op(matrix, row).shape == (2, 3)
        assert op(matrix, col).shape == (2, 3)


def test_rank_one_vectors_are_refused_by_the_test_config():
    # conftest sets rank promotion to "raise": the lecture's warning about rank-1
    # arrays (shape (n,)) becomes an error instead of a silent broadcast.
    with pytest.raises(ValueError, match="rank_promotion"):
        jnp.array([[1, 2, 3], [4, 5, 6]]) + jnp.array([10, 20, 30])
