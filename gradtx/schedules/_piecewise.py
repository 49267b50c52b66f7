"""Piecewise schedules: step decay, interpolation between boundaries, and joins of schedules.

Same conventions as :mod:`gradtx.schedules._primitive`: pure, jit-safe ``step -> value``
functions whose Python control flow depends only on the constructor's arguments; values in
the default float dtype; constructors validate their arguments at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import Schedule
from gradtx.schedules._primitive import as_float, check_steps, check_value, fraction

__all__ = ["join_schedules", "piecewise_constant_schedule", "piecewise_interpolate_schedule"]


def _boundaries_and_scales(
    boundaries_and_scales: Mapping[Any, Any] | None, *, where: str
) -> tuple[list[float], list[float]]:
    if boundaries_and_scales is None:
        return [], []
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            f"{where}: `boundaries_and_scales` must be a dict {{step: scale}}, "
            f"got {type(boundaries_and_scales).__name__}."
        )
    items = []
    for step, scale in boundaries_and_scales.items():
        b = check_steps("boundaries_and_scales", step, where=where, allow_zero=True)
        s = _checks.check_scalar("boundaries_and_scales", scale, where=where)
        if s is not None and s < 0:
            raise ValueError(
                f"{where}: `boundaries_and_scales` must have non-negative scales, got {scale!r} at {step}."
            )
        items.append((b, scale))
    items.sort(key=lambda kv: kv[0])
    return [b for b, _ in items], [s for _, s in items]


def piecewise_constant_schedule(init_value: Any, boundaries_and_scales: dict[int, float] | None = None) -> Schedule:
    r"""Step decay: ``init_value`` times the product of every scale whose boundary has been reached.

    .. math::
      v(t) = I \prod_{b_i \le t} s_i

    The scale applies from the boundary step itself on, as torch's ``MultiStepLR(milestones,
    gamma)`` does (``{m: gamma for m in milestones}``); ``StepLR(step_size, gamma)`` is
    ``{k * step_size: gamma for k in 1..}`` or ``exponential_decay(..., staircase=True)``.

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: ``{step: scale}``; steps >= 0, scales >= 0 (default ``None``: constant).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: on a negative boundary or a negative scale.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.piecewise_constant_schedule(0.1, {100: 0.1, 200: 0.5})
      >>> [round(float(schedule(t)), 4) for t in (0, 99, 100, 200)]  # x0.1 from step 100, then x0.5
      [0.1, 0.1, 0.01, 0.005]
    """
    where = "piecewise_constant_schedule"
    check_value("init_value", init_value, where=where)
    bounds, scales = _boundaries_and_scales(boundaries_and_scales, where=where)

    def schedule(count: Any) -> jax.Array:
        t = as_float(count)
        value = as_float(init_value)
        for b, s in zip(bounds, scales):
            value = jnp.where(t >= b, value * as_float(s), value)
        return value

    return schedule


def interpolate(kind: str, bounds: Sequence[float], values: Sequence[Any]) -> Schedule:
    """Linear or cosine interpolation through the knots ``(bounds[i], values[i])``; held after the last.

    ``bounds`` must be sorted; segments of zero length jump. Before ``bounds[0]`` the value is
    ``values[0]``.
    """

    def schedule(count: Any) -> jax.Array:
        t = as_float(count)
        value = as_float(values[0])
        for (b0, b1), (v0, v1) in zip(itertools.pairwise(bounds), itertools.pairwise(values)):
            if b1 <= b0:
                value = jnp.where(t >= b1, as_float(v1), value)
                continue
            pct = fraction(t - b0, b1 - b0)
            start, end = as_float(v0), as_float(v1)
            if kind == "linear":
                seg = start * (1.0 - pct) + end * pct  # exact at both ends, no cancellation
            else:
                seg = end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * pct))
            value = jnp.where(t >= b0, seg, value)
        return value

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str, init_value: Any, boundaries_and_scales: dict[int, float] | None = None
) -> Schedule:
    r"""Linear or cosine interpolation between values that are scaled at each boundary.

    The knots are ``(0, I)`` and ``(b_k, I \prod_{i \le k} s_i)``; between two knots the value
    moves linearly, or along half a cosine (``interpolate_type="cosine"``); after the last knot
    it is held.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: the value ``I`` at step 0.
      boundaries_and_scales: ``{step: scale}``; steps >= 0, scales >= 0 (default ``None``: constant).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: on an unknown ``interpolate_type``, a negative boundary or a negative scale.

    Examples:
      >>> import gradtx
      >>> s = gradtx.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5})
      >>> [float(s(t)) for t in (0, 2, 4, 9)]
      [1.0, 0.75, 0.5, 0.5]
    """
    where = "piecewise_interpolate_schedule"
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(f"{where}: `interpolate_type` must be 'linear' or 'cosine', got {interpolate_type!r}.")
    check_value("init_value", init_value, where=where)
    bounds, scales = _boundaries_and_scales(boundaries_and_scales, where=where)
    values: list[Any] = [init_value]
    for s in scales:
        values.append(values[-1] * s)
    return interpolate(interpolate_type, [0.0, *bounds], values)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Runs ``schedules[i]`` from ``boundaries[i-1]`` on, with its step counted from that boundary.

    .. math::
      v(t) = s_k(t - b_{k-1}) \quad\text{for } b_{k-1} \le t < b_k \quad (b_{-1} = 0)

    Args:
      schedules: ``n`` schedules.
      boundaries: ``n - 1`` sorted steps >= 0 where the next schedule takes over.

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when the lengths do not match, or a boundary is negative or out of order.
      TypeError: when a schedule is not callable.

    Examples:
      >>> import gradtx
      >>> warmup = gradtx.linear_schedule(0.0, 1.0, transition_steps=10)
      >>> decay = gradtx.cosine_decay_schedule(1.0, decay_steps=90)
      >>> schedule = gradtx.join_schedules([warmup, decay], boundaries=[10])
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 55, 100)]  # the second one sees t - 10
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    where = "join_schedules"
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError(f"{where}: `schedules` must not be empty.")
    for i, s in enumerate(schedules):
        _checks.check_callable(f"schedules[{i}]", s, where=where)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"{where}: `boundaries` must have one entry fewer than `schedules` ({len(schedules) - 1}), "
            f"got {len(boundaries)}."
        )
    previous = 0.0
    for i, b in enumerate(boundaries):
        x = check_steps(f"boundaries[{i}]", b, where=where, allow_zero=True)
        if x < previous:
            raise ValueError(f"{where}: `boundaries` must be sorted ascending, got {boundaries!r}.")
        previous = x

    def schedule(count: Any) -> jax.Array:
        value = as_float(schedules[0](count))
        for b, s in zip(boundaries, schedules[1:]):
            # Subtract in the step's own dtype so that integer steps stay exact.
            shifted = count - b if isinstance(b, int) else as_float(count) - b
            value = jnp.where(as_float(count) < b, value, as_float(s(shifted)))
        return value

    return schedule
