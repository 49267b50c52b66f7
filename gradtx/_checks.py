"""Argument checks shared by constructors.

Every constructor validates its hyperparameters at once, so a bad value fails where it was
written, with the argument's name, the value and the valid range. Values that are traced
(e.g. hyperparameters injected by :func:`gradtx.inject_hyperparams`) or schedules cannot be
checked in Python; they are accepted here and checked where they are used, if at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

__all__ = [
    "check_bool",
    "check_callable",
    "check_dtype",
    "check_in_range",
    "check_int",
    "check_non_negative",
    "check_positive",
    "check_scalar",
    "check_scalar_or_schedule",
    "concrete_float",
    "require_extra_args",
]


def concrete_float(value: Any) -> float | None:
    """The value as a Python float when it is a concrete real scalar; ``None`` when traced.

    Raises:
      TypeError: when ``value`` is neither a real number nor a scalar array (callables are
        the caller's business).
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (jax.Array, np.ndarray)):
        if value.ndim != 0:
            raise TypeError(f"expected a scalar, got an array of shape {value.shape}")
        if jnp.issubdtype(value.dtype, jnp.complexfloating):
            raise TypeError("expected a real scalar, got a complex one")
        try:
            return float(value)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            return None  # traced (e.g. an injected hyperparameter): checked nowhere in Python
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _fmt(x: float) -> str:
    return repr(x) if math.isfinite(x) else str(x)


def check_scalar(name: str, value: Any, *, where: str) -> float | None:
    """Checks that ``value`` is a real scalar (number or 0-d array); returns it as a float.

    Raises:
      TypeError: naming ``name`` when the value is not a real scalar.
    """
    try:
        result = concrete_float(value)
    except TypeError as e:
        raise TypeError(f"{where}: `{name}` {e} (got {value!r:.60}).") from None
    if result is not None and math.isnan(result):
        raise ValueError(f"{where}: `{name}` must not be NaN.")
    return result


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    where: str,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raises ``ValueError`` when a concrete scalar lies outside ``[low, high]`` (or open ends).

    Traced values pass unchecked; schedules must be checked with
    :func:`check_scalar_or_schedule` instead.
    """
    x = check_scalar(name, value, where=where)
    if x is None:
        return
    ok = True
    if low is not None:
        ok &= x >= low if low_inclusive else x > low
    if high is not None:
        ok &= x <= high if high_inclusive else x < high
    if not ok:
        lo = "-inf" if low is None else _fmt(low)
        hi = "inf" if high is None else _fmt(high)
        opening = "[" if low_inclusive and low is not None else "("
        closing = "]" if high_inclusive and high is not None else ")"
        interval = f"{opening}{lo}, {hi}{closing}"
        raise ValueError(f"{where}: `{name}` must be in {interval}, got {value!r}.")


def check_non_negative(name: str, value: Any, *, where: str) -> None:
    """``value >= 0`` (and not NaN)."""
    check_in_range(name, value, 0.0, None, where=where)


def check_positive(name: str, value: Any, *, where: str) -> None:
    """``value > 0`` (and not NaN)."""
    check_in_range(name, value, 0.0, None, where=where, low_inclusive=False)


def check_scalar_or_schedule(
    name: str,
    value: Any,
    *,
    where: str,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """A hyperparameter that may be a schedule: callables pass, numbers are range-checked."""
    if callable(value):
        return
    check_in_range(name, value, low, high, where=where, low_inclusive=low_inclusive, high_inclusive=high_inclusive)


# The largest step count or period an int32 counter in the state can be compared with.
INT32_MAX = int(np.iinfo(np.int32).max)


def check_int(name: str, value: Any, *, where: str, low: int | None = None, high: int | None = None) -> None:
    """Checks a Python integer argument (bools are rejected) and its range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: `{name}` must be an int, got {type(value).__name__} {value!r:.60}.")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{where}: `{name}` must be an int in [{lo}, {hi}], got {value}.")


def int_hyperparam(name: str, value: Any, *, where: str, low: int | None = None, high: int | None = None) -> Any:
    """Checks an integer hyperparameter that is only compared with counters, and returns it.

    Unlike a size (which shapes arrays and must be a Python int), such a count may be a jax
    integer scalar, traced too (a ``vmap`` over patiences), as optax accepts: a concrete one is
    checked like an int and returned as one; a traced one is returned as ``int32`` unchecked
    (its value is unknown until it runs), as :func:`check_in_range` does for floats.
    """
    if isinstance(value, (jax.Array, np.ndarray)) and not isinstance(value, np.generic):
        if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(f"{where}: `{name}` must be an int or an integer scalar, got {value!r:.60}.")
        if isinstance(value, Tracer):
            return value.astype(jnp.int32)
        value = int(value)
    check_int(name, value, where=where, low=low, high=high)
    return int(value)


def check_bool(name: str, value: Any, *, where: str) -> None:
    """Raises ``TypeError`` unless ``value`` is a Python (or NumPy) bool.

    A flag is read by its truth value: the string ``"no"`` or an array would turn it on silently.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: `{name}` must be a bool, got {type(value).__name__} {value!r:.60}.")


def check_callable(name: str, value: Any, *, where: str, allow_none: bool = False) -> None:
    """Raises ``TypeError`` unless ``value`` is callable (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if not callable(value):
        raise TypeError(f"{where}: `{name}` must be callable, got {type(value).__name__}.")


def _is_gradtx_state(state: Any) -> bool:
    return type(state).__module__.startswith("gradtx")


def state_class_name(state: Any) -> str:
    """The class of ``state`` as a message names it: qualified by its module when that is not gradtx's,
    where optax's class of the same name would otherwise read as the expected one."""
    cls = type(state)
    return cls.__name__ if _is_gradtx_state(state) else f"{cls.__module__}.{cls.__qualname__}"


def foreign_state_hint(state: Any) -> str:
    """For a state object of another library, the sentence that says how to restore it; else ``""``."""
    if _is_gradtx_state(state):
        return ""
    return (
        " A state object of another library (optax's state classes are not gradtx's, even where the names "
        "match): restore its leaves into this transform's tree instead, "
        "`jax.tree.unflatten(jax.tree.structure(tx.init(params)), jax.tree.leaves(state))`."
    )


def check_state_type(state: Any, expected: type, *, where: str) -> None:
    """Raises ``TypeError`` unless ``state`` is an ``expected`` (the state this transform's init makes).

    Without it, a state made elsewhere fails deep inside jax (``lax.cond`` branches of two pytree
    structures), or reads as "expected a MaskedState, found MaskedState".
    """
    if isinstance(state, expected):
        return
    raise TypeError(
        f"{where}: expected a gradtx {expected.__name__} (from this transform's init), found "
        f"{state_class_name(state)}." + foreign_state_hint(state)
    )


def require_extra_args(extra_args: Mapping[str, Any], names: Sequence[str], *, where: str, call: str) -> None:
    """Raises ``TypeError`` naming each required extra argument of ``update`` that is missing.

    A missing argument is a ``TypeError`` in Python (and in optax), not a ``ValueError``.

    Args:
      extra_args: the keyword arguments ``update`` received.
      names: the ones it requires.
      where: the caller's name, prefixed to the message.
      call: how to call ``update`` correctly, shown in the message.
    """
    missing = [k for k in names if extra_args.get(k) is None]
    if missing:
        listed = ", ".join(f"`{k}`" for k in missing)
        raise TypeError(
            f"{where}: update is missing the required extra argument(s) {listed}: call `{call}`. (Inside "
            "optax's chain, masked, MultiSteps, ..., which pass extra arguments only to optax's own "
            "transform type, wrap the transform in `gradtx.compat.as_optax(...)`.)"
        )


def check_dtype(name: str, value: Any, *, where: str, floating: bool = True) -> Any:
    """Returns ``jnp.dtype(value)`` or ``None``; raises ``TypeError`` naming ``name`` if invalid.

    With ``floating=True`` the dtype must be a floating (or complex) type: an integer
    accumulator would silently truncate every statistic.
    """
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{where}: `{name}` must be a dtype, got {value!r:.60}.") from None
    if floating and not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating)):
        raise TypeError(f"{where}: `{name}` must be a floating dtype, got {dtype.name}.")
    return dtype


def evaluate_scalar_or_schedule(value: Any, count: Any, *, name: str, where: str) -> Any:
    """``value(count)`` when ``value`` is a schedule, else ``value``; always a scalar.

    Raises:
      ValueError: when a schedule returns something that is not a scalar, naming the
        hyperparameter it feeds (at first use, i.e. while tracing).
    """
    result: Any = value(count) if callable(value) else value
    shape = jnp.shape(result)
    if shape != ():
        raise ValueError(
            f"{where}: the schedule for `{name}` must return a scalar, got shape {shape} at step {count!r:.40}."
        )
    return result
