"""Hyperparameters in the optimizer state: ``inject_hyperparams`` and its stateful variant.

The wrapped factory is called again inside every ``update`` with the hyperparameters taken
from the state, so they are jax arrays there: they can be logged, scheduled, or set between
steps (``state.hyperparams["learning_rate"] = jnp.float32(1e-4)``) without recompiling.

Float hyperparameters are stored as float32 (float64 when the params hold float64 leaves),
or as ``hyperparam_dtype`` when given, and never in the params' low precision: with bf16
params, ``b2=0.999`` would round to 1.0 and make Adam's first step NaN.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _tree
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_gradient_transformation,
    safe_increment,
    zero_count,
)

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "WrappedSchedule",
    "WrappedScheduleState",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
]


class InjectHyperparamsState(NamedTuple):
    """optax's deprecated state type of ``inject_hyperparams``, kept so that code naming it imports.

    Neither gradtx nor optax 0.2.8 makes it any more: :func:`inject_hyperparams` returns an
    :class:`InjectStatefulHyperparamsState`.

    Attributes:
      count: scalar int32, the number of updates so far (the step schedules are evaluated at).
      hyperparams: ``{name: scalar array}``, the values used by the latest update (after
        ``init``: those the first update will use). Numeric entries may be overwritten.
      inner_state: the wrapped transform's state.
    """

    count: jax.Array
    hyperparams: dict[str, Any]
    inner_state: OptState


class InjectStatefulHyperparamsState(NamedTuple):
    """State of :func:`inject_hyperparams` and :func:`inject_stateful_hyperparams`.

    Attributes:
      count: scalar int32, the number of updates so far.
      hyperparams: ``{name: scalar array}``, the values used by the latest update (after
        ``init``: those the first update will use). Numeric entries may be overwritten.
      hyperparams_states: ``{name: schedule state}`` for each scheduled hyperparameter (a
        plain schedule's is a :class:`WrappedScheduleState` holding its step count).
      inner_state: the wrapped transform's state.
    """

    count: jax.Array
    hyperparams: dict[str, Any]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


class WrappedScheduleState(NamedTuple):
    """State of a :class:`WrappedSchedule`: the step count."""

    count: jax.Array


class WrappedSchedule:
    """A stateful schedule (``init``/``update``/``__call__``) made from a plain ``step -> value`` schedule.

    Args:
      schedule_fn: the schedule; it is evaluated at the wrapped state's count.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> schedule = gradtx.WrappedSchedule(gradtx.linear_schedule(1.0, 0.0, transition_steps=4))
      >>> state = schedule.init()
      >>> state = schedule.update(state)
      >>> float(schedule(state))  # the plain schedule at the wrapped count, 1
      0.75
    """

    def __init__(self, schedule_fn: Callable[[Any], Any]):
        _checks.check_callable("schedule_fn", schedule_fn, where="WrappedSchedule")
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """A fresh state at step 0."""
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        """Advances the count by one (saturating)."""
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        """The schedule's value at the state's count."""
        del extra_args
        return self.schedule_fn(state.count)


def _is_stateful_schedule(value: Any) -> bool:
    return callable(value) and callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))


def _is_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


def _is_weak(value: Any) -> bool:
    return isinstance(value, (int, float)) or bool(getattr(value, "weak_type", False))


def _default_dtype(params: Any, hyperparam_dtype: Any) -> Any:
    if hyperparam_dtype is not None:
        return hyperparam_dtype
    # float32 unless the params ask for more: low-precision params never lower the hyperparameters.
    for leaf in jax.tree.leaves(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jnp.dtype(dtype) == jnp.float64:
            return jax.dtypes.canonicalize_dtype(jnp.float64)
    return jnp.float32


def _to_array(value: Any, dtype: Any, *, forced: bool, wants_float: bool) -> jax.Array:
    """A hyperparameter as an array: floats in ``dtype``, integers as int32 (or float when the factory's default is)."""
    if _is_float(value) or (wants_float and isinstance(value, (int, np.integer))):
        # Strongly typed arrays keep their own float dtype unless `hyperparam_dtype` was given.
        if forced or _is_weak(value) or not isinstance(value, (jax.Array, np.ndarray, np.generic)):
            return jnp.asarray(value).astype(dtype)
        return jnp.asarray(value)
    if isinstance(value, (bool, np.bool_)):
        return jnp.asarray(value)
    if isinstance(value, int):
        return jnp.asarray(value, jnp.int32)
    return jnp.asarray(value)


def _make_injector(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str],
    hyperparam_dtype: Any,
    *,
    where: str,
) -> Callable[..., GradientTransformation]:
    _checks.check_callable("inner_factory", inner_factory, where=where)
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"{where}: `static_args` must name parameters of `inner_factory`; {sorted(unknown)} are not among "
            f"{sorted(signature.parameters)}."
        )
    forced = hyperparam_dtype is not None
    hp_dtype = _checks.check_dtype("hyperparam_dtype", hyperparam_dtype, where=where)
    if hp_dtype is not None:
        hp_dtype = jax.dtypes.canonicalize_dtype(hp_dtype)

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        other, numeric, schedules, stateful = {}, {}, {}, {}
        wants_float = {}
        for name, value in bound.arguments.items():
            default = signature.parameters[name].default
            wants_float[name] = isinstance(default, float)
            if name in static or isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
                other[name] = value
            elif _is_stateful_schedule(value):
                stateful[name] = value
            elif callable(value):
                schedules[name] = value
            elif isinstance(value, (int, float, np.number, jax.Array, np.ndarray)):
                numeric[name] = value
            else:
                other[name] = value
        for name, value in numeric.items():
            # Ranges are the inner factory's business (checked at `init`); NaN is never valid.
            # A PRNG key (noisy_sgd's `key`) is data, not a number to check.
            if jnp.ndim(value) == 0 and not _tree.is_typed_key(value):
                _checks.check_scalar(name, value, where=where)
        # As optax 0.2.8: every schedule becomes stateful and the state is always an
        # InjectStatefulHyperparamsState, so that optax checkpoints restore here and back.
        stateful.update({k: WrappedSchedule(f) for k, f in schedules.items()})

        def cast(name: str, value: Any, dtype: Any, *, always: bool = True) -> jax.Array:
            return _to_array(value, dtype, forced=forced or always, wants_float=wants_float[name])

        def build(hparams: dict[str, Any]) -> GradientTransformation:
            try:
                made = inner_factory(**other, **hparams)
            except TypeError as e:
                # optax injects every number, also the defaults that fix a structure (adafactor's
                # `min_dim_size_to_factor`); gradtx's factories refuse an array there.
                ints = sorted(k for k, v in numeric.items() if isinstance(v, (int, np.integer)))
                raise TypeError(
                    f"{where}: {getattr(inner_factory, '__name__', 'inner_factory')}(...) refused an injected "
                    f"hyperparameter: {e} Arguments that fix a structure must stay Python values: pass them in "
                    f"`static_args` (the injected ints here: {ints})."
                ) from e
            return as_gradient_transformation(made, where=f"{where}: inner_factory(...)")

        def scheduled(name: str, value: Any, count: Any) -> Any:
            return _checks.evaluate_scalar_or_schedule(value, count, name=name, where=where)

        def init_fn(params: Params) -> Any:
            dtype = _default_dtype(params, hp_dtype)
            count = zero_count()
            # Copies, not the caller's arrays: donating the state never frees them, and under
            # `jax.set_mesh` a copy is typed on that mesh, as the updated hyperparameter will be.
            hparams = {k: jnp.array(cast(k, v, dtype, always=False), copy=True) for k, v in numeric.items()}
            hstates = {k: f.init() for k, f in stateful.items()}
            for k, f in stateful.items():
                hparams[k] = cast(k, scheduled(k, f, hstates[k]), dtype)
            inner = build(hparams)
            inner_state = inner.init(params)
            return InjectStatefulHyperparamsState(count, hparams, hstates, inner_state)

        def update_fn(
            updates: Updates, state: Any, params: Params | None = None, **extra_args: Any
        ) -> tuple[Updates, Any]:
            _checks.check_state_type(state, InjectStatefulHyperparamsState, where=where)
            default = _default_dtype(params, hp_dtype) if params is not None else (hp_dtype or jnp.float32)

            def target(k: str) -> Any:
                # Keep the dtype init chose, so a value set between steps never changes the state's type.
                previous = state.hyperparams.get(k)
                if not forced and previous is not None and _is_float(previous) and not _is_weak(previous):
                    return jnp.asarray(previous).dtype
                return default

            hparams = {}
            for k in numeric:
                if k not in state.hyperparams:
                    raise ValueError(f"{where}: `state.hyperparams` lost the entry {k!r}.")
                hparams[k] = _to_array(state.hyperparams[k], target(k), forced=True, wants_float=wants_float[k])
            hstates = state.hyperparams_states
            missing = [k for k in stateful if k not in hstates]
            if missing:
                raise ValueError(f"{where}: `state.hyperparams_states` lacks the entries {missing!r}.")
            for k, f in stateful.items():
                hparams[k] = cast(k, scheduled(k, functools.partial(f, **extra_args), hstates[k]), target(k))
            new_hstates = {k: f.update(hstates[k], **extra_args) for k, f in stateful.items()}
            inner = build(hparams)
            updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
            new_count = safe_increment(state.count)
            return updates, InjectStatefulHyperparamsState(new_count, hparams, new_hstates, inner_state)

        return GradientTransformation(init_fn, update_fn)

    return wrapped


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    r"""Wraps an optimizer factory so that its numeric hyperparameters live in the state.

    ``inject_hyperparams(gradtx.adam)(learning_rate=schedule, b1=0.9)`` builds a transform whose
    state is ``InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states,
    inner_state)``, the same tree as optax 0.2.8's. On each update the factory is called again
    with ``hyperparams[name]`` for numbers, and with ``schedule(count)`` for callables (each
    plain schedule is wrapped in a :class:`WrappedSchedule` whose count lives in
    ``hyperparams_states``), so at step ``t``

    .. math::
      \theta_{t+1} = \theta_t + \mathrm{factory}(h_t).\mathrm{update}(g_t), \quad
      h_t = \{\text{name}: \text{value or } s(t)\}

    Numeric hyperparameters may be overwritten between steps; use a value of the stored dtype
    (``jnp.float32(1e-4)``) and a jitted step is not retraced. Scheduled ones are recomputed
    each step. Booleans, ``None``, strings and the names in ``static_args`` are passed through
    unchanged. A stateful schedule (an object with ``init``, ``update`` and ``__call__``) keeps
    its own state in ``hyperparams_states``, as in :func:`inject_stateful_hyperparams`.

    Float hyperparameters are stored in float32 (float64 when the params hold float64 leaves),
    or in ``hyperparam_dtype`` when given; never in bf16 because the params are bf16.

    Args:
      inner_factory: a function returning a gradient transformation, e.g. ``gradtx.adam``.
      static_args: the name (or names) of callable arguments that are not schedules, e.g. a
        callable ``mask`` (default ``()``).
      hyperparam_dtype: the dtype of every float hyperparameter (default ``None``: see above).

    Returns:
      A function with the factory's signature, accepting schedules in place of numbers and
      returning a :class:`gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``static_args`` names an argument the factory lacks; when a schedule
        returns a non-scalar (at first use, naming the hyperparameter).
      TypeError: when ``hyperparam_dtype`` is not a floating dtype.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
      >>> state = tx.init({"w": jnp.ones(2, jnp.float32)})
      >>> state.hyperparams["learning_rate"] = jnp.float32(0.01)
    """
    return _make_injector(inner_factory, static_args, hyperparam_dtype, where="inject_hyperparams")


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    r"""Like :func:`inject_hyperparams`, with schedules that keep a state of their own.

    A stateful schedule has ``init() -> s``, ``update(s, **extra_args) -> s`` and
    ``__call__(s, **extra_args) -> value``; it sees the extra arguments of each update (for
    example ``value=`` the loss). Plain schedules are wrapped in :class:`WrappedSchedule`. The
    state is ``InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states,
    inner_state)``, as :func:`inject_hyperparams`'s. (optax deprecates this name in favour of
    ``inject_hyperparams``, which also accepts stateful schedules; gradtx keeps both, without a
    warning.)

    Args:
      inner_factory: a function returning a gradient transformation.
      static_args: names of callable arguments that are not schedules (default ``()``).
      hyperparam_dtype: the dtype of every float hyperparameter (default ``None``: float32,
        float64 with float64 params).

    Returns:
      A function with the factory's signature, returning a :class:`gradtx.GradientTransformation`.

    Raises:
      ValueError: as :func:`inject_hyperparams`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.inject_stateful_hyperparams(gradtx.sgd)(learning_rate=gradtx.linear_schedule(1.0, 0.0, 4))
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(params, state, params)
      >>> float(state.hyperparams["learning_rate"])  # the value used at the last step (t = 1)
      0.75
    """
    return _make_injector(inner_factory, static_args, hyperparam_dtype, where="inject_stateful_hyperparams")
