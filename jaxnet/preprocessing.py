"""Turning images into the lecture's column vectors, and normalizing rows.

    image (h, w, c)        -> image2vector   -> v (h*w*c, 1)
    images (m, h, w, c)    -> flatten_images -> X (h*w*c, m), one column each
    uint8 pixels 0..255    -> scale_pixels   -> floats in [0, 1]
    x (n, d)               -> normalize_rows -> x / ||x|| row by row

Unrolling is row-major over (h, w, c), the same order as numpy's
``image.reshape(-1)`` and the course's ``X.reshape(m, -1).T``, so a trained
model's weights line up with images flattened by either.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnet.activations import promote_to_float


def image2vector(image: ArrayLike) -> jax.Array:
    """Unroll one image (h, w, c) into a column vector (h*w*c, 1).

    A pure reshape: the dtype is kept (uint8 pixels stay uint8 for
    ``scale_pixels``; integer, bool and float images all work).

    Raises:
        ValueError: the image is not 3-D.
    """
    image = jnp.asarray(image)
    if image.ndim != 3:
        raise ValueError(
            f"image must be (length, height, depth); got shape {image.shape}"
        )
    return image.reshape(image.shape[0] * image.shape[1] * image.shape[2], 1)


def flatten_images(images: ArrayLike) -> jax.Array:
    """Stack a batch of images (m, h, w, c) as columns: X (h*w*c, m).

    Column i is ``image2vector(images[i])``: examples are columns, as in the
    lecture's X.shape = (n_x, m).

    Raises:
        ValueError: ``images`` is not 4-D (m, h, w, c).
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"images must be a batch (m, h, w, c); got shape {images.shape}"
        )
    return images.reshape(images.shape[0], -1).T


def scale_pixels(pixels: ArrayLike, dtype=None) -> jax.Array:
    """Map uint8 pixel values 0..255 to floats in [0, 1] by dividing by 255.

    Args:
        pixels: uint8 array, any shape.
        dtype: float dtype of the result (default: JAX's default float).

    Raises:
        ValueError: ``pixels`` is not uint8 (already scaled data would shrink
            by 255 again).
    """
    pixels = jnp.asarray(pixels)
    if pixels.dtype != jnp.uint8:
        raise ValueError(f"pixels must be uint8 in 0..255; got dtype {pixels.dtype}")
    dtype = dtype or jnp.result_type(float)
    return pixels.astype(dtype) / 255


def normalize_rows(x: ArrayLike) -> jax.Array:
    """Divide each row of x (n, d) by its Euclidean norm: x / ||x||, axis 1.

    Lecture formula (5). Each row is first scaled by a power of two close to its
    largest |x_ij| (an exact scaling), so ||x|| neither overflows (rows with
    entries past ~1e19 in float32, 1e154 in float64, whose squares overflow) nor
    underflows (rows below ~1e-19 / 1e-154); wherever the plain formula was
    finite the result is unchanged, bit for bit (tested). The scale is held
    constant for jax.grad (x / ||x|| does not depend on it). Subnormal entries
    (below ~1e-38 / 1e-308) count as zero where the backend flushes them to zero,
    as XLA on CPU does.

    An all-zero row has no direction and is returned as zeros, with a zero
    (finite) gradient: the zero rows are masked on both sides of the division
    (the double-where trick), so no 0 / 0 appears, even in the backward pass.
    Rows holding NaN or inf give NaN. Integer and bool inputs become the default float.

    Args:
        x: matrix (n, d).

    Returns:
        (n, d), each non-zero row with norm 1 (to rounding).
    """
    x = promote_to_float(x)
    biggest = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=1, keepdims=True))
    zero_row = biggest == 0
    safe = jnp.where(zero_row, jnp.ones_like(biggest), biggest)
    mantissa, _ = jnp.frexp(safe)
    # safe = mantissa 2^e with mantissa in [0.5, 1), so safe / (2 mantissa) is
    # exactly 2^(e - 1), a power of two <= safe. It is clipped to normal numbers
    # whose reciprocal is normal too (XLA divides by multiplying with the
    # reciprocal, and a subnormal reciprocal would be flushed to zero), so the
    # scaled entries stay below 8 and dividing by the scale only shifts exponents.
    info = jnp.finfo(x.dtype)
    scale = jnp.clip(safe / (2 * mantissa), info.tiny, 2.0 ** (info.maxexp - 3))
    y = x / scale
    sum_sq = jnp.sum(y * y, axis=1, keepdims=True)
    norm = jnp.sqrt(jnp.where(zero_row, jnp.ones_like(sum_sq), sum_sq))
    return jnp.where(zero_row, jnp.zeros_like(x), y / norm)
