""" "Show the code": the Python that reproduces the page's run with jaxnet.

The snippet builds the same data, split, parameters and keys as the
playground (``experiments.playground.datasets``) and trains with
``jaxnet.train_loop`` for the iterations the page has done: the same compiled
steps, so the same parameters (a test runs it and compares).
"""

from experiments.playground.datasets import TEST_FRACTION
from experiments.playground.settings import Settings

_DATA = {
    "flower": (
        "from jaxnet.data.synthetic import planar_flower",
        "X, Y = planar_flower(key_data, m={points})\nlabels = Y[0]",
    ),
    "blobs": (
        "from jaxnet.data.synthetic import two_blobs",
        "X, Y = two_blobs(key_data, m={points})\nlabels = Y[0]",
    ),
    "spirals": (
        "from jaxnet.data.synthetic import spirals",
        "X, labels = spirals(key_data, m_per_class={per_class}, num_classes={K})",
    ),
    "csv": (
        "",
        'rows = np.loadtxt("your_data.csv", delimiter=",", ndmin=2)'
        "  # add skiprows=1 for a header\n"
        "X = rows[:, :2].T\n"
        "X = jnp.asarray((X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True),"
        " jnp.float32)  # standardized, as the page does\n"
        "labels = rows[:, 2].astype(int)",
    ),
}


def snippet(settings: Settings, m: int, iterations: int, classes: int) -> str:
    """Python source that reproduces the run after ``iterations`` iterations.

    Args:
        settings: the run's settings. m: examples in the data set.
        iterations: iterations (epochs with minibatches) done so far (>= 1).
        classes: K of the data.
    """
    s = settings
    n_y = 1 if s.output == "sigmoid" else classes
    dims = [2, *s.hidden, n_y]
    acts = [*s.activations, s.output]
    n_test = int(round(TEST_FRACTION * m))
    imports, make = _DATA[s.data]
    per_class = max(s.points // classes, 1)
    make = make.format(points=s.points, per_class=per_class, K=classes)
    if s.output == "sigmoid":
        targets = "Y_train = jnp.asarray(labels[train], jnp.float32).reshape(1, -1)"
    else:
        targets = (
            f"Y_train = jax.nn.one_hot(labels[train], {classes}, axis=0, "
            "dtype=jnp.float32)"
        )
    options = [f"learning_rate={s.learning_rate!r}", f"optimizer={s.optimizer!r}"]
    if s.lambd:
        options.append(f"lambd={s.lambd!r}")
    if s.keep_prob != 1:
        options.append(f"keep_prob={s.keep_prob!r}")
    if s.batch_size is not None:
        options.append(f"batch_size={s.batch_size}")
    if s.grad != "manual":
        options.append(f"grad={s.grad!r}")
    unit = "epochs" if s.batch_size is not None else "iterations"
    lines = [
        "import jax",
        "import jax.numpy as jnp",
        "import numpy as np",
        "",
        "import jaxnet",
        *([imports] if imports else []),
        "",
        f"key_data, key_split, key_init, key_train = jax.random.split("
        f"jax.random.key({s.seed}), 4)",
        make,
        "order = np.asarray(jax.random.permutation(key_split, X.shape[1]))",
        f"train, test = order[{n_test}:], order[:{n_test}]  # test: held out",
        "X_train = X[:, train]",
        targets,
        f"params = jaxnet.init_params(key_init, {dims}, method={s.init!r})",
        "result = jaxnet.train_loop(",
        "    params, X_train, Y_train,",
        f"    activations={acts},",
        f"    num_iterations={iterations},  # {unit} done on the page",
        f"    {', '.join(options)},",
        "    key=key_train, print_every=1000,",
        ")",
        "print(result.final_cost)",
    ]
    return "\n".join(lines) + "\n"
