"""One call adds a hidden activation or an output layer everywhere.

    register_activation(name, forward, derivative)      a row of ACTIVATIONS
    register_output(name, forward=, cost=, dZ=, predict=, ...)  a row of OUTPUTS

Every other place reads those two tables when it is used, so a registered row
works at once in ``fit``, ``fit_until``, ``train_loop``, ``sweep``,
``jaxnet.trainer``, the wide path, validation, checkpoints and the experiments'
``--hidden`` choices.

Both calls check the hand-written rule against autodiff before accepting it, in
float64 (a local ``jax.enable_x64`` context):

    activation: derivative(z) vs jax.vmap(jax.grad(forward))(z) at
                ``ACTIVATION_PROBES`` (0 and near it, the integers -5..5,
                |z| up to 1e3)
    output:     dZ(Z, A, Y) vs m * jax.grad(cost)(Z, Y) at random logits Z
                (n[L], 5) and labels Y that pass the row's own label check

A rule is accepted when |manual - autodiff| <= RTOL |autodiff| + ATOL at
every point (RTOL = 1e-7, ATOL = 1e-10: equivalent formulas agree to ~1e-15,
a wrong factor or sign misses by O(1)); otherwise the error states the largest
measured difference and where. Both also check that a float32 input stays
float32 and shapes are kept (a numpy float64 constant would turn a float32 run
into float64 under jax_enable_x64).

Registering a new row clears jaxnet's compiled-program caches, so a replaced
row never runs old code. Built-in rows cannot be replaced.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.activations import ACTIVATIONS, Activation
from jaxnet.outputs import OUTPUTS, Output
from jaxnet.validation import InputError

RTOL, ATOL = 1e-7, 1e-10
ACTIVATION_PROBES = (
    [0.0, -0.0, 1e-8, -1e-8, 1e-3, -1e-3, 0.25, -0.25, 0.5, -0.5]
    + [float(k) for k in range(-5, 6) if k]
    + [7.5, -7.5, 20.0, -20.0, 50.0, -50.0, 1e3, -1e3]
)
BUILT_IN_ACTIVATIONS = frozenset(ACTIVATIONS)
BUILT_IN_OUTPUTS = frozenset(OUTPUTS)


def _check_name(name, table: dict, built_in: frozenset, what: str, replace: bool):
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(
            f"an {what} name must be a non-empty identifier such as 'gelu'; got "
            f"{name!r}"
        )
    if name in built_in:
        raise InputError(
            f"{name!r} is a built-in {what} and cannot be replaced; choose another name"
        )
    if name in table and not replace:
        raise InputError(
            f"an {what} named {name!r} is already registered; choose another "
            "name, or pass replace=True to replace it"
        )


def _check_callables(**functions) -> None:
    for arg, f in functions.items():
        if not callable(f):
            raise InputError(f"{arg} must be a function; got {f!r}")


def _forget_programs() -> None:
    """Drop compiled programs: they may have traced a row now replaced."""
    from jaxnet import driver, until  # (they import this package's tables)

    driver.chunk_program.cache_clear()
    driver._COMPILED.clear()
    until.until_program.cache_clear()


def _mismatch(manual, auto) -> tuple[float, int] | None:
    """(largest |manual - auto|, its flat index) where outside tolerance."""
    manual, auto = np.asarray(manual, np.float64), np.asarray(auto, np.float64)
    diff = np.abs(manual - auto)
    bad = ~(diff <= RTOL * np.abs(auto) + ATOL)  # NaN counts as bad
    if not bad.any():
        return None
    diff = np.where(np.isnan(diff), np.inf, diff)
    i = int(np.argmax(np.where(bad, diff, -1.0)))
    return float(diff.flat[i]), i


def _check_keeps_float32(what: str, f: Callable, *args) -> None:
    out = f(*args)
    shape = args[0].shape
    if jnp.shape(out) != shape or jnp.result_type(out) != jnp.float32:
        raise InputError(
            f"{what} must keep its input's shape and dtype: float32 {shape} gave "
            f"{jnp.result_type(out)} {jnp.shape(out)} (write constants as Python "
            "floats, not numpy float64 scalars)"
        )


def register_activation(
    name: str,
    forward: Callable[..., jax.Array],
    derivative: Callable[..., jax.Array],
    *,
    replace: bool = False,
) -> None:
    """Add a hidden activation g, with its hand-written g', to ``ACTIVATIONS``.

    dZ = dA * g'(Z) in every hidden layer's backward pass then uses
    ``derivative``; ``forward`` is A = g(Z). Both are elementwise, any shape.

    Args:
        name: an identifier, used in ``activations=[name, ..., "sigmoid"]``,
            checkpoints and ``--hidden``.
        forward: g, jnp array -> same shape and dtype.
        derivative: g', the same; checked against ``jax.grad(forward)``.
        replace: replace a row registered before (never a built-in one).

    Raises:
        jaxnet.validation.InputError: (a ValueError) a taken or malformed
            name, a non-callable, a derivative that differs from autodiff (the
            message gives the largest measured difference and its z), or a
            function that changes shape or dtype.
    """
    _check_name(name, ACTIVATIONS, BUILT_IN_ACTIVATIONS, "activation", replace)
    _check_callables(forward=forward, derivative=derivative)
    z32 = jnp.linspace(-3, 3, 6, dtype=jnp.float32).reshape(2, 3)
    _check_keeps_float32(f"activation {name!r}: forward", forward, z32)
    _check_keeps_float32(f"activation {name!r}: derivative", derivative, z32)
    with jax.enable_x64(True):
        z = jnp.asarray(ACTIVATION_PROBES, jnp.float64)
        manual = np.asarray(derivative(z), np.float64)
        auto = np.asarray(jax.vmap(jax.grad(lambda t: forward(t)))(z), np.float64)
        bad = _mismatch(manual, auto)
    if bad is not None:
        error, i = bad
        raise InputError(
            f"activation {name!r}: derivative disagrees with jax.grad of forward "
            f"by {error:.3g} at z = {ACTIVATION_PROBES[i]:g} (derivative "
            f"{float(manual[i]):.10g}, jax.grad {float(auto[i]):.10g}; float64, "
            f"tolerance {RTOL:g} relative + {ATOL:g}): fix the derivative, or the "
            "forward if it is not differentiable where jax.grad says"
        )
    ACTIVATIONS[name] = Activation(forward, derivative)
    _forget_programs()


def _labels_for(label_check, shape, rng) -> np.ndarray | None:
    """The first candidate labels of ``shape`` that ``label_check`` accepts."""
    n, m = shape
    one_hot = np.eye(n)[:, rng.integers(0, n, m)]
    candidates = [
        rng.normal(size=shape),  # real targets
        (rng.random(shape) < 0.5).astype(np.float64),  # 0/1 labels
        one_hot,  # one-hot classes
        rng.integers(0, 5, shape).astype(np.float64),  # counts
        np.where(rng.random(shape) < 0.5, -1.0, 1.0),  # -1/+1 labels
    ]
    for Y in candidates:
        try:
            if label_check is not None:
                label_check(Y)
        except ValueError:
            continue
        return Y
    return None


def register_output(
    name: str,
    *,
    forward: Callable[[jax.Array], jax.Array],
    cost: Callable[[jax.Array, jax.Array], jax.Array],
    dZ: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    predict: Callable[[jax.Array], jax.Array],
    label_check: Callable[[np.ndarray], None] | None = None,
    classifier: bool = False,
    min_units: int = 1,
    test_labels=None,
    replace: bool = False,
) -> None:
    """Add an output layer to ``OUTPUTS`` (see ``jaxnet.outputs.Output``).

    The backward pass starts from dZ[L] = dZ(Z[L], A[L], Y), which must be
    m dJ/dZ[L] of ``cost`` (for the built-ins, A[L] - Y); it is checked
    against ``jax.grad(cost)`` at registration.

    Args:
        name: an identifier, the last entry of ``activations``.
        forward: Z[L] (n[L], m) -> A[L] (n[L], m).
        cost: (Z[L], Y) -> J, a scalar averaged over the m columns, from the
            logits.
        dZ: (Z[L], A[L], Y) -> m dJ/dZ[L], (n[L], m).
        predict: A[L] -> predictions (``jaxnet.predict``).
        label_check: Y (n[L], m) numpy -> None, raising a ValueError (say
            ``jaxnet.validation.InputError``) that names the fix for labels the
            output cannot take; run on the host before training. None: any
            finite values.
        classifier: whether ``accuracy`` applies (predictions compared with Y
            as (1, m) labels).
        min_units: the fewest units n[L] allowed.
        test_labels: labels (n[L], 5) for the dZ check; default: the first of
            real, 0/1, one-hot, count and -1/+1 labels that ``label_check``
            accepts.
        replace: replace a row registered before (never a built-in one).

    Raises:
        jaxnet.validation.InputError: a taken or malformed name, a
            non-callable, min_units < 1, no labels to check with, a cost that is
            not a scalar, or a dZ that differs from m jax.grad(cost) (the
            message gives the largest measured difference and where).
    """
    _check_name(name, OUTPUTS, BUILT_IN_OUTPUTS, "output", replace)
    _check_callables(forward=forward, cost=cost, dZ=dZ, predict=predict)
    if label_check is not None:
        _check_callables(label_check=label_check)
    if isinstance(min_units, bool) or not isinstance(min_units, int | np.integer):
        raise InputError(f"min_units must be an integer >= 1; got {min_units!r}")
    if min_units < 1:
        raise InputError(f"min_units must be an integer >= 1; got {min_units!r}")
    n, m = max(int(min_units), 2), 5
    rng = np.random.default_rng(0)
    if test_labels is None:
        Y = _labels_for(label_check, (n, m), rng)
        if Y is None:
            raise InputError(
                f"output {name!r}: its label_check refused every candidate label "
                f"set ({n}, {m}) (real, 0/1, one-hot, counts, -1/+1); pass "
                f"test_labels=Y with valid labels of shape (n[L], {m})"
            )
    else:
        Y = np.asarray(test_labels, np.float64)
        n, m = Y.shape
    Z32 = jnp.asarray(rng.normal(size=(n, m)), jnp.float32)
    _check_keeps_float32(f"output {name!r}: forward", forward, Z32)
    with jax.enable_x64(True):
        Z = jnp.asarray(2 * rng.normal(size=(n, m)), jnp.float64)
        Y64 = jnp.asarray(Y, jnp.float64)
        J = cost(Z, Y64)
        if jnp.shape(J) != ():
            raise InputError(
                f"output {name!r}: cost must return a scalar (averaged over the m "
                f"columns); got shape {jnp.shape(J)}"
            )
        given = dZ(Z, forward(Z), Y64)
        if jnp.shape(given) != (n, m):
            raise InputError(
                f"output {name!r}: dZ must return (n[L], m) = {(n, m)}; got "
                f"{jnp.shape(given)}"
            )
        manual = np.asarray(given, np.float64)
        auto = np.asarray(m * jax.grad(cost)(Z, Y64), np.float64)
        Z_shown, Y_shown = np.asarray(Z), np.asarray(Y64)
        bad = _mismatch(manual, auto)
    if bad is not None:
        error, i = bad
        at = np.unravel_index(i, (n, m))
        raise InputError(
            f"output {name!r}: dZ disagrees with m * jax.grad(cost) by {error:.3g} "
            f"at Z{list(map(int, at))} = {float(Z_shown[at]):.6g} with Y = "
            f"{float(Y_shown[at]):g} (dZ {float(manual[at]):.10g}, autodiff "
            f"{float(auto[at]):.10g}; float64, tolerance {RTOL:g} relative + "
            f"{ATOL:g}): dZ must be m dJ/dZ[L], e.g. A - Y"
        )
    OUTPUTS[name] = Output(
        forward, cost, dZ, predict, bool(classifier), int(min_units), label_check
    )
    _forget_programs()
