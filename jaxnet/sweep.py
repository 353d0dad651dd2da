"""Hyperparameter sweeps: N models trained at once, one compiled ``vmap`` of a scan.

The lecture's idea -> code -> experiment loop, fast: instead of N runs of

    repeat num_iterations times:
        W[l] := W[l] - alpha dW[l],   b[l] := b[l] - alpha db[l]

one after another, ``sweep`` maps the whole ``lax.scan`` run over a leading model
axis with ``jax.vmap``. What may differ per model:

    learning_rates   alpha                    (N,)
    lambds           L2 strength lambd        (N,)
    keep_probs       inverted-dropout keep    (N,)
    keys             dropout / shuffle keys   (N,) keys
    params           initial parameters       stacked: every leaf (N, ...)

Each model sees exactly what ``jaxnet.train.fit`` would give it with the same
arguments, so a sweep equals N separate runs (tested in float64). The run goes
through the same driver as ``fit`` and ``train_loop`` (``jaxnet.driver``), as
one compiled call, or in chunks with a progress bar and printed mean costs.
Where the data X is shared, vmap turns the N first-layer products W[1] X into
one larger product (N * n[1], n[0]) x (n[0], m), which keeps the CPU's vector
units busier than N small ones.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnet.boundary import prepare
from jaxnet.driver import RunResult, drive
from jaxnet.hyperparams import TrainOptions, check_count
from jaxnet.outputs import get_output
from jaxnet.params import Params, init_params
from jaxnet.shapes import check_activations
from jaxnet.train import accuracy
from jaxnet.trainer import refuse_traced
from jaxnet.validation import InputError, check_training_data


class SweepResult(NamedTuple):
    """What ``sweep`` returns; index i is model i.

    Attributes:
        params: the trained parameters, stacked: W[l] (N, n[l], n[l-1]), b[l]
            (N, n[l], 1).
        costs: cost before every update, (N, num_iterations).
        train_accuracy: fraction right on (X, Y) after training, (N,).
        test_accuracy: the same on (X_test, Y_test), (N,), or None.
        run: the driver's RunResult (state for resuming, timings, interrupted).
    """

    params: Params
    costs: jax.Array
    train_accuracy: jax.Array | None
    test_accuracy: jax.Array | None
    run: RunResult | None = None


def init_stacked_params(
    keys: jax.Array, layer_dims: Sequence[int], method: str = "small", dtype=jnp.float32
) -> Params:
    """One ``init_params`` per key, stacked: leaf i of every array is model i.

    Args:
        keys: N ``jax.random`` keys, (N,).
        layer_dims: [n[0], ..., n[L]].
        method, dtype: as for ``jaxnet.params.init_params``.

    Returns:
        Params with W[l] (N, n[l], n[l-1]) and b[l] (N, n[l], 1).
    """
    return jax.vmap(lambda k: init_params(k, layer_dims, method, dtype))(keys)


def unstack(params: Params, i: int) -> Params:
    """Model i of stacked params: W[l] (n[l], n[l-1]), b[l] (n[l], 1)."""
    return jax.tree.map(lambda leaf: leaf[i], params)


def _num_models(params, stacked, num_models, **values) -> int:
    """N from whichever argument is a sequence, stacked params, or num_models."""
    sizes = {
        name: len(v) for name, v in values.items() if v is not None and np.ndim(v) == 1
    }
    if stacked:
        sizes["params"] = jax.tree.leaves(params)[0].shape[0]
    if num_models is not None:
        sizes["num_models"] = check_count("num_models", num_models)
    if len(set(sizes.values())) != 1:
        raise ValueError(
            "cannot tell the number of models N: give a length-N sequence, keys, "
            f"stacked params or num_models, all agreeing; got sizes {sizes or 'none'}"
        )
    return next(iter(sizes.values()))


def _check_test_set(params, stacked, X_test, Y_test, activations) -> None:
    """X_test and Y_test get the checks X and Y get (shapes, finite in the run's
    dtype, labels that fit the output); both or neither must be given."""
    if (X_test is None) != (Y_test is None):
        raise ValueError(
            "pass X_test and Y_test together (the held-out inputs and their "
            f"labels); got only {'X_test' if Y_test is None else 'Y_test'}"
        )
    if X_test is None:
        return
    one = unstack(params, 0) if stacked else params
    acts = check_activations(activations, len(one))
    dtype = jnp.result_type(jax.tree.leaves(one)[0])
    try:
        check_training_data(one, X_test, Y_test, acts[-1], dtype=dtype)
    except InputError as e:
        raise InputError(f"the test set (X_test, Y_test): {e}") from None


def sweep(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    activations: Sequence[str],
    num_iterations: int,
    learning_rates=None,
    lambds=None,
    keep_probs=None,
    keys: jax.Array | None = None,
    num_models: int | None = None,
    stacked: bool | None = None,
    X_test: ArrayLike | None = None,
    Y_test: ArrayLike | None = None,
    print_every: int | None = None,
    progress: bool = False,
    desc: str = "sweep",
    should_stop: Callable[[], bool] | None = None,
    on_chunk: Callable | None = None,
    health_every: int | None = None,
    **options: Unpack[TrainOptions],
) -> SweepResult:
    """Train N models in one compiled call: ``vmap`` over a whole ``fit`` run.

    Model i trains exactly as ``fit(params_i, X, Y, learning_rate=lr[i],
    lambd=lambd[i], keep_prob=keep_prob[i], key=keys[i], ...)`` would. Every
    hyperparameter is a scalar (shared) or a length-N sequence (swept); N comes
    from whichever is a sequence, from ``keys``, from stacked params or from
    ``num_models``, and all must agree.

    Args:
        params: one Params shared by all models, or stacked Params (leading axis
            N on every leaf, e.g. from ``init_stacked_params``). Their dtype sets
            the run's dtype.
        X: (n_x, m), shared by all models. Y: (n[L], m).
        activations: one name per layer.
        num_iterations: gradient steps (full batch) or epochs (with batch_size).
        learning_rates: alpha, scalar or (N,); None: 0.0075 with a named (or
            no) optimizer, an optax optimizer's own rate. Beside an optax
            optimizer the rates are set in each model's state when it was built
            with ``optax.inject_hyperparams``, and refused otherwise (its rate
            is fixed: N identical models).
        lambds: L2 strength, scalar or (N,); None: no L2 term at all.
        keep_probs: inverted-dropout keep probability, scalar or (N,); None: no
            dropout. A swept 1.0 draws all-ones masks: the same numbers as ``fit``
            without dropout.
        keys: (N,) ``jax.random`` keys for dropout and shuffling; default: N
            copies of ``jax.random.key(0)``, ``fit``'s default.
        num_models: N, when nothing else says it.
        stacked: whether params carry the model axis; default: guessed from the
            rank of the first W (3 means stacked).
        X_test, Y_test: optional held-out set for ``test_accuracy``, checked as
            X and Y are (shapes, finite values, labels that fit the output).
        print_every, progress, desc, should_stop, on_chunk: as for
            ``jaxnet.runner.train_loop``; with none of them the sweep is one
            compiled call.
        health_every: record every model's training-health readings
            (``jaxnet.health``) at every multiple of it and at the last
            iteration, in ``run.health`` ((N, P, L) arrays); None: none.
        **options: the other training options, shared by all models (grad,
            optimizer, batch_size, first_layer, mesh; see
            ``jaxnet.hyperparams.TrainOptions``). With a named optimizer each
            model's optimizer state holds its own alpha; with first_layer
            "gram" each keeps its own P = W[1]_0 X and all share G = X^T X.

    Returns:
        SweepResult(params (stacked), costs (N, num_iterations), train_accuracy
        (N,), test_accuracy (N,) or None (both None for a linear output, and
        for a run ``should_stop`` stopped: scoring compiles, a stop is quick),
        run).
    """
    refuse_traced(
        "sweep", params, X, Y, num_iterations, learning_rates, lambds, keep_probs,
        keys, options,
    )  # fmt: skip
    num_iterations = check_count("num_iterations", num_iterations)
    if stacked is None:
        stacked = jnp.ndim(jax.tree.leaves(params)[0]) == 3
    n = _num_models(
        params, stacked, num_models, learning_rates=learning_rates, lambds=lambds,
        keep_probs=keep_probs, keys=keys,
    )  # fmt: skip
    _check_test_set(params, stacked, X_test, Y_test, activations)
    swept = {"learning_rate", "lambd", "keep_prob", "key"} & set(options)
    if swept:
        raise TypeError(
            f"sweep takes {sorted(swept)} in the plural (learning_rates ...)"
        )
    # options never hold the swept names (refused just above).
    run = prepare(  # type: ignore[misc]
        params, X, Y, activations=activations, learning_rate=learning_rates,
        lambd=0.0 if lambds is None else lambds,
        keep_prob=1.0 if keep_probs is None else keep_probs,
        key=keys, num_models=n, stacked=stacked, **options,
    )  # fmt: skip
    watched = progress or print_every or should_stop or on_chunk
    result = drive(
        run.config, run.state, run.hp, run.data, run.Y,
        num_iterations=num_iterations, print_every=print_every, progress=progress,
        desc=desc, should_stop=should_stop, on_chunk=on_chunk, vmapped=True,
        single_chunk=not watched, X=run.X, health_every=health_every,
    )  # fmt: skip
    acts = run.config.activations
    train_acc = test_acc = None
    if get_output(acts[-1]).classifier and not result.interrupted:
        score = jax.jit(jax.vmap(accuracy, in_axes=(0, None, None, None)),
                        static_argnums=3)  # fmt: skip
        train_acc = score(result.params, run.X, run.Y, acts)
        if X_test is not None:
            dtype = run.X.dtype
            X_test, Y_test = jnp.asarray(X_test, dtype), jnp.asarray(Y_test, dtype)
            test_acc = score(result.params, X_test, Y_test, acts)
    return SweepResult(
        result.params, jnp.asarray(result.costs), train_acc, test_acc, result
    )
