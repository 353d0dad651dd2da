"""The boundary every training entry point crosses once, on the host.

``prepare`` checks the params, the data and every hyperparameter (values, not
only shapes), converts X and Y to the params' dtype, builds the optimizer and
the static ``TrainConfig``, chooses the first layer's form (``jaxnet.wide``:
dense, or exact coordinates for wide inputs) with the data it needs, puts the
run on the devices of the ``mesh`` option (``jaxnet.distributed``: the one
place where arrays are placed), and returns what ``jaxnet.driver`` runs.
``fit``, ``fit_until``, ``train_loop`` and ``sweep`` all call it, so a check
added here guards all of them, and nothing is checked again inside the
compiled step.
"""

from collections.abc import Sequence
from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp

from jaxnet import distributed, memory, validation
from jaxnet.hyperparams import (
    DEFAULT_LEARNING_RATE,
    Hyperparams,
    TrainConfig,
    TrainOptions,
    check_count,
    make_hyperparams,
    regularizers_on,
    training_options,
)
from jaxnet.optimizers import as_optimizer
from jaxnet.params import Params, layer_dims_of
from jaxnet.shapes import check_activations, check_output_units
from jaxnet.steps import TrainState
from jaxnet.wide import (
    FIRST_LAYERS,
    Carried,
    FirstLayer,
    carried_data,
    carried_dense,
    choose_first_layer,
)


class Prepared(NamedTuple):
    """What a run needs: the static config, the start state, the numbers, data.

    ``state`` is the dense start state (the lecture's params), or a resumed
    ``jaxnet.wide.Carried`` already in ``config.first_layer``'s terms; ``data`` is what
    the compiled program takes for X: X itself, or the first-layer form's data
    (``config.first_layer``, see ``jaxnet.wide``). With a mesh, every array is
    already on its devices (see ``prepare``).
    """

    config: TrainConfig
    state: TrainState | Carried
    hp: Hyperparams
    X: jax.Array
    Y: jax.Array
    data: object = None


def run_dtype(params: Params):
    """The run's float dtype: the params' (float32 unless the user chose)."""
    return jnp.result_type(jax.tree.leaves(params)[0])


def prepare(
    params: Params,
    X,
    Y,
    *,
    activations: Sequence[str],
    num_models: int | None = None,
    stacked: bool = False,
    start: TrainState | Carried | None = None,
    **options: Unpack[TrainOptions],
) -> Prepared:
    """Validate everything once and build the start of a run.

    Args:
        params: L dicts {"W": (n[l], n[l-1]), "b": (n[l], 1)}; with ``stacked``
            every leaf has a leading model axis N.
        X: (n_x, m). Y: (n[L], m).
        activations: one name per layer, the last an output (``OUTPUTS``).
        num_models: N for a sweep (None for one model): learning_rate, lambd,
            keep_prob may then be (N,) sequences and key (N,) keys.
        stacked: params carry the model axis.
        start: a dense TrainState to start from instead of ``params`` (a resumed
            run; one model only), or a ``Carried`` one: when the run's form is
            the carried one (and no mesh), it continues in the same terms
            against the form's data rebuilt from W[1]_0 and X; otherwise from
            its dense state.
        **options: the training options (``jaxnet.hyperparams.TrainOptions``;
            the defaults are in ``OPTION_DEFAULTS``).

    With a ``mesh``, after validation, one model's X and Y are split along m
    over the devices and its state and numbers copied to each (data parallel);
    a sweep's state and numbers are split along N and the data copied. The
    first-layer form's data follows its table row (``FirstLayer.example_axes``
    / ``model_axes``). With several processes, X and Y are this process's
    columns (``jaxnet.distributed.local_columns``).

    Raises:
        ValueError: anything out of its range, in the lecture's terms; m (or N)
            not a multiple of the mesh's device count.
        jaxnet.memory.RunTooLargeError: (a ValueError) the run's estimated
            memory exceeds what the device has free (``jaxnet.memory``).
        TypeError: an unknown option.
    """
    o = training_options(options)
    learning_rate, lambd, keep_prob = o["learning_rate"], o["lambd"], o["keep_prob"]
    optimizer, grad, key = o["optimizer"], o["grad"], o["key"]
    batch_size, first_layer = o["batch_size"], o["first_layer"]
    mesh = distributed.check_mesh(o["mesh"])
    one = jax.tree.map(lambda leaf: leaf[0], params) if stacked else params
    validation.check_params(one)
    activations = check_activations(activations, len(one))
    check_output_units(one, activations[-1])
    dtype = run_dtype(one)
    validation.check_training_data(one, X, Y, activations[-1], dtype=dtype)
    X, Y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
    batch_size = check_count("batch_size", batch_size, allow_none=True)
    own_rate = learning_rate is None and not _named(optimizer)  # optax's own
    if learning_rate is None and not own_rate:
        learning_rate = DEFAULT_LEARNING_RATE
    hp = make_hyperparams(
        1.0 if own_rate else learning_rate, lambd, keep_prob, dtype=dtype,
        num_models=num_models,
    )  # fmt: skip
    if own_rate:  # alpha lives in the optimizer only: unknown here
        hp = hp._replace(learning_rate=jnp.full_like(hp.learning_rate, jnp.nan))
    sweep = num_models is not None  # a sweep sets each model's alpha below
    transform = as_optimizer(
        optimizer, 1.0 if sweep and not own_rate else learning_rate, one,
        given=("learning_rates" if sweep else "learning_rate", learning_rate),
    )  # fmt: skip
    l2, dropout = regularizers_on(hp)
    _check_memory(one, X, transform, batch_size, num_models, first_layer, mesh)
    carried, carried_on = None, None  # a resumed state in its form's terms
    if isinstance(start, Carried):
        carried, carried_on = start, carried_data(start, X)
        start = carried_dense(carried, carried_on)
    state: TrainState | Carried
    if start is not None:
        state = start
    elif num_models is None:
        key = jax.random.key(0) if key is None else key
        state = TrainState(params, transform.init(params), key)
    else:
        key = jnp.stack([jax.random.key(0)] * num_models) if key is None else key
        state = _stacked_state(params, stacked, transform, not own_rate, hp, key)
    # (With a mesh the run starts from the dense state: entering coordinates
    # would drop a momentum's W[1] part, so it is not declared in span.)
    in_coordinates = carried is not None and carried.form == "gram" and mesh is None
    form = choose_first_layer(
        first_layer, transform, state, X, batch_size=batch_size, l2=l2,
        in_span=True if in_coordinates else None,
    )  # fmt: skip
    examples_mesh = mesh if num_models is None else None  # the step's constraint
    config = TrainConfig(
        activations, transform.update, grad, batch_size, l2, dropout, form,
        examples_mesh,
    )  # fmt: skip
    if mesh is None and carried is not None and form == carried.form:
        state, data = carried, carried_on  # bit for bit where the run stopped
    elif mesh is None:
        data = FIRST_LAYERS[form].data(state.params, X)
    else:
        sweep = num_models is not None
        state, hp, X, Y, data = _place(mesh, sweep, FIRST_LAYERS[form], state, hp, X, Y)
    return Prepared(config, state, hp, X, Y, data)


def _check_memory(params, X, transform, batch_size, num_models, first_layer, mesh):
    """Refuse a run too large for the device before allocating its state.

    See ``jaxnet.memory``: params, gradients, the optimizer state (its shapes
    from ``jax.eval_shape``, nothing allocated), activations, data and, when
    the gram form may be chosen (4 m <= n_x), its G and P. With a mesh each
    device holds its share of the examples (one model: this process's columns
    over this process's devices) or of the models (a sweep).
    """
    dims = layer_dims_of(params)
    n = 1 if num_models is None else num_models
    m = X.shape[1]
    if mesh is not None and num_models is None:  # X: this process's columns
        here = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
        m = -(-m // max(1, len(here)))
    elif mesh is not None:
        n = -(-n // mesh.devices.size)
    opt = memory.tree_bytes(jax.eval_shape(transform.init, params)) * n
    wide = first_layer == "gram" or (first_layer == "auto" and 4 * m <= dims[0])
    device = None if mesh is None else mesh.devices.flat[0]
    memory.check_run_memory(
        dims, m, run_dtype(params), batch_size=batch_size, num_models=n,
        optimizer_bytes=opt, wide=wide, device=device,
    )  # fmt: skip


def _place(mesh, sweep: bool, form: FirstLayer, state, hp, X, Y) -> tuple:
    """(state, hp, X, Y, data) on the mesh's devices.

    One model (data parallel): X and Y split along m (an m that the device
    count does not divide is refused), state and hp copied to every device. A
    sweep: state and hp split along the model axis N, X and Y copied. The
    form's data is made from the placed X and split as its table row says
    (``example_axes`` / ``model_axes``).
    """
    if sweep:
        state, hp = distributed.shard_models(mesh, (state, hp))
        X, Y = distributed.replicate(mesh, (X, Y))
    else:
        X, Y = distributed.shard_examples(mesh, X, Y)
        state, hp = distributed.replicate(mesh, (state, hp))
    axes = form.model_axes if sweep else form.example_axes
    data = distributed.place(mesh, form.data(state.params, X), axes)
    return state, hp, X, Y, data


def _named(optimizer) -> bool:
    """None or a rule's name: jaxnet builds it, with alpha in its state."""
    return optimizer is None or isinstance(optimizer, str)


def _stacked_state(params, stacked, transform, set_rate, hp, keys) -> TrainState:
    """N start states; with ``set_rate`` each holds its own alpha (hp's)."""
    n = hp.learning_rate.shape[0]
    if not stacked:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), params)
    opt_state = jax.vmap(transform.init)(params)
    if set_rate:
        swept = {**opt_state.hyperparams, "learning_rate": hp.learning_rate}
        opt_state = opt_state._replace(hyperparams=swept)
    return TrainState(params, opt_state, keys)
