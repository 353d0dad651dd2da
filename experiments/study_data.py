"""The two data sets the studies compare networks on (activations, initialization).

- "cats": the course's cat / non-cat images, X (12288, 209) and (12288, 50),
  pixels / 255 (``jaxnet.data.load_catvnoncat``; ``--data`` as elsewhere).
- anything else: the planar flower, 400 training points from key 0 and 400
  fresh test points from key 1 (``jaxnet.data.planar_flower``), X (2, 400).
"""

import jax
import jax.numpy as jnp

from jaxnet.data import load_catvnoncat, planar_flower

FLOWER_TRAIN_SEED, FLOWER_TEST_SEED, FLOWER_M = 0, 1, 400


def load(name: str, data_dir, dtype) -> tuple[tuple, dict]:
    """(X, Y, X_test, Y_test) in the lecture's layout (examples are columns),
    converted to ``dtype``, and a description for metrics.json."""
    if name == "cats":
        data = load_catvnoncat(data_dir)
        arrays = (data.X_train, data.Y_train, data.X_test, data.Y_test)
        about = {"source": "catvnoncat (64x64x3 images, pixels / 255)"}
    else:
        X, Y = planar_flower(jax.random.key(FLOWER_TRAIN_SEED), FLOWER_M)
        X_test, Y_test = planar_flower(jax.random.key(FLOWER_TEST_SEED), FLOWER_M)
        arrays = (X, Y, X_test, Y_test)
        about = {
            "source": "jaxnet.data.planar_flower",
            "train_key": FLOWER_TRAIN_SEED,
            "test_key": FLOWER_TEST_SEED,
        }
    arrays = tuple(jnp.asarray(a, dtype) for a in arrays)
    about.update(train_size=int(arrays[0].shape[1]), test_size=int(arrays[2].shape[1]))
    return arrays, about
