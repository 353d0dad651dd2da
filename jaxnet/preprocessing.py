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


def image2vector(image: ArrayLike) -> jax.Array:
    """Unroll one image (h, w, c) into a column vector (h*w*c, 1).

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

    An all-zero row has no direction and is returned as zeros (not NaN).

    Args:
        x: matrix (n, d).

    Returns:
        (n, d), each non-zero row with norm 1.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    x_norm = jnp.linalg.norm(x, ord=2, axis=1, keepdims=True)
    safe = jnp.where(x_norm > 0, x_norm, jnp.ones_like(x_norm))
    return x / safe
