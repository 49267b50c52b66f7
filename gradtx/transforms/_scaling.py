"""Scaling by a constant, a learning rate, or a schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    Updates,
    identity,
    safe_increment,
    zero_count,
)

__all__ = ["ScaleByScheduleState", "scale", "scale_by_learning_rate", "scale_by_schedule"]


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_schedule`: the number of steps taken (scalar int32)."""

    count: jax.Array


def _scale_tree(updates: Updates, factor: Any) -> Updates:
    """Every leaf times ``factor``, in its compute dtype (``factor`` cast once per dtype)."""
    cast_factor = num.per_dtype(lambda dtype: num.as_dtype(factor, dtype))

    def leaf(g: jax.Array) -> jax.Array:
        dtype = num.compute_dtype(g.dtype)
        return num.cast(num.cast(g, dtype) * cast_factor(dtype), g.dtype)

    return jax.tree.map(leaf, updates)


def scale(step_size: Any) -> GradientTransformation:
    """Multiplies every update by a constant.

    .. math:: u_t = \\alpha\\, g_t

    Args:
      step_size: the constant :math:`\\alpha` (a real scalar; traced values pass).

    Returns:
      A stateless :class:`~gradtx.GradientTransformation` (:class:`~gradtx.EmptyState`).

    Raises:
      TypeError: when ``step_size`` is not a real scalar.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale(-0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.05, 0.05]
    """
    _checks.check_scalar("step_size", step_size, where="scale")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        num.check_updates(updates, where="scale", params=params)
        return _scale_tree(updates, step_size), state

    return GradientTransformation(num.empty_init("scale"), update_fn)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiplies the updates by a schedule's value at the current step.

    .. math:: u_t = \\alpha(t)\\, g_t, \\qquad t = 0, 1, 2, \\dots

    The first call uses ``step_size_fn(0)``.

    Args:
      step_size_fn: a schedule ``step -> scalar``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByScheduleState`.

    Raises:
      TypeError: when ``step_size_fn`` is not callable.
      ValueError: (while tracing) when the schedule returns a non-scalar.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_schedule(lambda step: 0.5 ** step)
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(grads, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # 0.5^2 g at the third step
      [0.125, -0.125]
    """
    _checks.check_callable("step_size_fn", step_size_fn, where="scale_by_schedule")

    def init_fn(params: Params) -> ScaleByScheduleState:
        num.check_init_params(params, where="scale_by_schedule")
        return ScaleByScheduleState(count=zero_count())

    def update_fn(
        updates: Updates, state: ScaleByScheduleState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByScheduleState]:
        del extra_args
        num.check_updates(updates, where="scale_by_schedule", params=params)
        step_size = _checks.evaluate_scalar_or_schedule(
            step_size_fn, state.count, name="step_size_fn", where="scale_by_schedule"
        )
        updates = _scale_tree(updates, step_size)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiplies the updates by the (negated) learning rate, constant or scheduled.

    .. math:: u_t = -\\eta_t\\, g_t \\quad(\\text{or } +\\eta_t g_t \\text{ with } flip\\_sign=False)

    A constant learning rate gives a stateless :func:`scale`; a schedule gives
    :func:`scale_by_schedule` (state :class:`ScaleByScheduleState`); ``None`` gives
    :func:`gradtx.identity`.

    Args:
      learning_rate: a real scalar, a schedule ``step -> scalar``, or ``None`` (no scaling).
        Default ``None``.
      flip_sign: negate, so that ``apply_updates`` descends. Default ``True``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Raises:
      TypeError: when ``learning_rate`` is neither a scalar, a schedule nor ``None``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> schedule = gradtx.linear_schedule(1.0, 0.0, transition_steps=10)
      >>> tx = gradtx.scale_by_learning_rate(schedule)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # -lr(1) * g = -0.9 g
      [-0.45, 0.45]
    """
    _checks.check_bool("flip_sign", flip_sign, where="scale_by_learning_rate")
    if learning_rate is None:
        return identity()
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where="scale_by_learning_rate")
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        schedule = learning_rate
        return scale_by_schedule(lambda count: sign * schedule(count))
    return scale(sign * learning_rate)
