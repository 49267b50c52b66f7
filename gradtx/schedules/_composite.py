"""Composite schedules: warmups, one-cycle (with its momentum cycle), SGDR and cosine restarts.

Built from the schedules in :mod:`gradtx.schedules._primitive` and :mod:`gradtx.schedules._piecewise`; the same
conventions hold (pure ``step -> value``, jit-safe, constructor errors name the argument).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import Schedule
from gradtx.schedules._piecewise import interpolate, join_schedules
from gradtx.schedules._primitive import (
    as_float,
    check_steps,
    exponential_decay,
    floor_ratio,
    linear_schedule,
    safe_pow,
)

__all__ = [
    "cosine_onecycle_momentum_schedule",
    "cosine_onecycle_schedule",
    "cosine_restarts_schedule",
    "linear_onecycle_momentum_schedule",
    "linear_onecycle_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


def _check_values(where: str, **values: Any) -> None:
    for name, v in values.items():
        _checks.check_scalar(name, v, where=where)


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.

    .. math::
      v(t) = I + (P - I)\,\min(t, W)/W

    Args:
      init_value: the value ``I`` at step 0.
      peak_value: the value ``P`` from step ``W`` on.
      warmup_steps: ``W`` > 0.

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``warmup_steps <= 0``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.warmup_constant_schedule(init_value=0.0, peak_value=1.0, warmup_steps=10)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 1000)]
      [0.0, 0.5, 1.0, 1.0]
    """
    where = "warmup_constant_schedule"
    _check_values(where, init_value=init_value, peak_value=peak_value)
    check_steps("warmup_steps", warmup_steps, where=where)
    return linear_schedule(init_value, peak_value, warmup_steps)


def _with_warmup(init_value: Any, peak_value: Any, warmup_steps: Any, decay: Schedule) -> Schedule:
    if warmup_steps == 0:
        return decay
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps), decay], [warmup_steps])


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    .. math::
      v(t) = \begin{cases} I + (P - I)\,t/W & t < W \\
      E + (P - E)\,\bigl(\tfrac12(1 + \cos(\pi \min(t - W, D - W)/(D - W)))\bigr)^{p} & t \ge W \end{cases}

    Args:
      init_value: the value ``I`` at step 0.
      peak_value: the value ``P`` at the end of the warmup.
      warmup_steps: ``W`` >= 0 (0: start at the peak).
      decay_steps: ``D`` > ``W``, the total length of the schedule, warmup included.
      end_value: the value ``E`` from step ``D`` on (default 0.0).
      exponent: ``p``, applied to the cosine factor (default 1.0).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``warmup_steps < 0`` or ``warmup_steps >= decay_steps``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=110)
      >>> [round(float(schedule(step)), 4) for step in (0, 5, 10, 60, 110)]
      [0.0, 0.5, 1.0, 0.5, 0.0]

    References:
      Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
      https://arxiv.org/abs/1608.03983, 2017.
    """
    where = "warmup_cosine_decay_schedule"
    _check_values(where, init_value=init_value, peak_value=peak_value, end_value=end_value, exponent=exponent)
    warmup = check_steps("warmup_steps", warmup_steps, where=where, allow_zero=True)
    total = check_steps("decay_steps", decay_steps, where=where)
    if warmup >= total:
        raise ValueError(
            f"{where}: `warmup_steps` ({warmup_steps}) must be smaller than `decay_steps` ({decay_steps}), "
            "which counts the warmup too."
        )
    length = total - warmup

    def decay(count: Any) -> jax.Array:
        t = jnp.minimum(as_float(count), length)
        cosine = jnp.maximum(0.5 * (1.0 + jnp.cos(jnp.pi * t / length)), 0.0)
        end = as_float(end_value)
        return end + (as_float(peak_value) - end) * safe_pow(cosine, exponent)

    return _with_warmup(init_value, peak_value, warmup, decay)


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from the peak.

    .. math::
      v(t) = I + (P - I)\,t/W \ (t < W), \qquad v(t) = \mathrm{exponential\_decay}(P, \ldots)(t - W)\ (t \ge W)

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warmup.
      warmup_steps: >= 0 (0: start at the peak).
      transition_steps: > 0, see :func:`exponential_decay`.
      decay_rate: > 0.
      transition_begin: >= 0, steps after the warmup to hold ``peak_value`` (default 0).
      staircase: decay in discrete jumps (default ``False``).
      end_value: optional bound on the decayed value (default ``None``).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: on a negative ``warmup_steps`` or the errors of :func:`exponential_decay`.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, transition_steps=10, decay_rate=0.5)
      >>> [round(float(schedule(t)), 4) for t in (0, 10, 20, 30)]
      [0.0, 1.0, 0.5, 0.25]
    """
    where = "warmup_exponential_decay_schedule"
    _check_values(where, init_value=init_value, peak_value=peak_value)
    warmup = check_steps("warmup_steps", warmup_steps, where=where, allow_zero=True)
    decay = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value)
    return _with_warmup(init_value, peak_value, warmup, decay)


def _concrete_fraction(name: str, value: Any, *, where: str) -> None:
    """A phase fraction sets a boundary step (``int(pct * T)``), so it cannot be traced."""
    if _checks.check_scalar(name, value, where=where) is None:
        raise ValueError(f"{where}: `{name}` must be a concrete number (it sets a phase's step), not a traced value.")


def _check_onecycle(where: str, transition_steps: Any, pct_start: Any, **factors: Any) -> float:
    steps = check_steps("transition_steps", transition_steps, where=where)
    _concrete_fraction("pct_start", pct_start, where=where)
    _checks.check_in_range("pct_start", pct_start, 0.0, 1.0, where=where, low_inclusive=False, high_inclusive=False)
    for name, v in factors.items():
        _checks.check_positive(name, v, where=where)
    return steps


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle learning rate: cosine up to ``peak_value``, then cosine down to a tiny value.

    With ``I = P / div_factor``, ``S = int(pct_start * T)``: cosine from ``I`` to ``P`` over
    ``[0, S]``, cosine from ``P`` to ``I / final_div_factor`` over ``[S, T]``, then held. Pair it
    with :func:`cosine_onecycle_momentum_schedule` for the inverse momentum cycle.

    torch's ``OneCycleLR(max_lr=P, total_steps=T)`` peaks at step ``pct_start*T - 1`` and ends at
    ``T - 1``; see the conventions table for the arguments that reproduce it.

    Args:
      transition_steps: ``T`` > 0.
      peak_value: the peak ``P``.
      pct_start: fraction of ``T`` spent rising, in (0, 1) (default 0.3).
      div_factor: ``P / initial value``, > 0 (default 25.0).
      final_div_factor: ``initial value / final value``, > 0 (default 1e4).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``transition_steps <= 0``, ``pct_start`` is outside (0, 1) or a factor is <= 0.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.cosine_onecycle_schedule(transition_steps=100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 100)]  # peak / 25, peak at 30%, peak / 25 / 1e4
      [0.04, 1.0, 0.0]

    References:
      Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", https://arxiv.org/abs/1708.07120, 2017.
    """
    where = "cosine_onecycle_schedule"
    _check_values(where, peak_value=peak_value)
    steps = _check_onecycle(
        where, transition_steps, pct_start, div_factor=div_factor, final_div_factor=final_div_factor
    )
    init = peak_value / div_factor
    return interpolate(
        "cosine", [0.0, float(int(pct_start * steps)), steps], [init, peak_value, init / final_div_factor]
    )


def cosine_onecycle_momentum_schedule(
    transition_steps: int,
    pct_start: float = 0.3,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Schedule:
    r"""The momentum cycle that goes with :func:`cosine_onecycle_schedule` (torch's ``cycle_momentum``).

    Cosine from ``max_momentum`` down to ``base_momentum`` while the learning rate rises
    (``[0, int(pct_start * T)]``), back up to ``max_momentum`` while it falls, then held. Feed it
    to ``momentum`` (SGD) or ``b1`` (Adam) through :func:`gradtx.inject_hyperparams`.

    Args:
      transition_steps: ``T`` > 0, as given to the learning-rate schedule.
      pct_start: as given to the learning-rate schedule, in (0, 1) (default 0.3).
      base_momentum: the momentum at the learning-rate peak (default 0.85).
      max_momentum: the momentum at both ends (default 0.95).

    Returns:
      A schedule ``step -> momentum``.

    Raises:
      ValueError: when ``transition_steps <= 0`` or ``pct_start`` is outside (0, 1).

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.cosine_onecycle_momentum_schedule(transition_steps=100)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 100)]  # high, low at the lr's peak, high again
      [0.95, 0.85, 0.95]

    References:
      Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
      https://arxiv.org/abs/1803.09820, 2018.
    """
    where = "cosine_onecycle_momentum_schedule"
    _check_values(where, base_momentum=base_momentum, max_momentum=max_momentum)
    steps = _check_onecycle(where, transition_steps, pct_start)
    return interpolate(
        "cosine", [0.0, float(int(pct_start * steps)), steps], [max_momentum, base_momentum, max_momentum]
    )


def _linear_onecycle_knots(where: str, transition_steps: Any, pct_start: Any, pct_final: Any) -> list[float]:
    steps = _check_onecycle(where, transition_steps, pct_start)
    _concrete_fraction("pct_final", pct_final, where=where)
    _checks.check_in_range("pct_final", pct_final, float(pct_start), 1.0, where=where, low_inclusive=False)
    return [0.0, float(int(pct_start * steps)), float(int(pct_final * steps)), steps]


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Three linear phases: up to ``peak_value``, back down to the start, then down to a tiny value.

    With ``I = P / div_factor``: linear ``I -> P`` over ``[0, int(pct_start*T)]``, ``P -> I`` up to
    ``int(pct_final*T)``, ``I -> I / final_div_factor`` up to ``T``, then held. This is torch's
    ``OneCycleLR(three_phase=True, anneal_strategy="linear")`` shape; pair it with
    :func:`linear_onecycle_momentum_schedule`.

    Args:
      transition_steps: ``T`` > 0.
      peak_value: the peak ``P``.
      pct_start: end of the rising phase as a fraction of ``T``, in (0, 1) (default 0.3).
      pct_final: end of the falling phase, in (pct_start, 1] (default 0.85).
      div_factor: ``P / initial value``, > 0 (default 25.0).
      final_div_factor: ``initial value / final value``, > 0 (default 1e4).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``transition_steps <= 0``, a fraction is out of range or a factor is <= 0.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.linear_onecycle_schedule(transition_steps=100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 15, 30, 85, 100)]
      [0.04, 0.52, 1.0, 0.04, 0.0]

    References:
      Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", https://arxiv.org/abs/1708.07120, 2017.
    """
    where = "linear_onecycle_schedule"
    _check_values(where, peak_value=peak_value)
    knots = _linear_onecycle_knots(where, transition_steps, pct_start, pct_final)
    _checks.check_positive("div_factor", div_factor, where=where)
    _checks.check_positive("final_div_factor", final_div_factor, where=where)
    init = peak_value / div_factor
    values = [init, peak_value, init, init / final_div_factor]
    if knots[2] == knots[3]:  # pct_final == 1: the return phase ends where the final one would start
        knots, values = knots[:2] + knots[3:], [init, peak_value, peak_value / final_div_factor]
    return interpolate("linear", knots, values)


def linear_onecycle_momentum_schedule(
    transition_steps: int,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Schedule:
    r"""The momentum cycle that goes with :func:`linear_onecycle_schedule`.

    Linear ``max_momentum -> base_momentum`` while the learning rate rises, back to
    ``max_momentum`` while it falls, then held at ``max_momentum`` (torch's three-phase cycle).

    Args:
      transition_steps: ``T`` > 0, as given to the learning-rate schedule.
      pct_start: in (0, 1) (default 0.3).
      pct_final: in (pct_start, 1] (default 0.85).
      base_momentum: the momentum at the learning-rate peak (default 0.85).
      max_momentum: the momentum at the start and from ``pct_final`` on (default 0.95).

    Returns:
      A schedule ``step -> momentum``.

    Raises:
      ValueError: when ``transition_steps <= 0`` or a fraction is out of range.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.linear_onecycle_momentum_schedule(transition_steps=100)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 85, 100)]
      [0.95, 0.85, 0.95, 0.95]

    References:
      Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
      https://arxiv.org/abs/1803.09820, 2018.
    """
    where = "linear_onecycle_momentum_schedule"
    _check_values(where, base_momentum=base_momentum, max_momentum=max_momentum)
    knots = _linear_onecycle_knots(where, transition_steps, pct_start, pct_final)
    return interpolate("linear", knots[:3], [max_momentum, base_momentum, max_momentum])


def sgdr_schedule(cosine_kwargs: Iterable[dict[str, Any]]) -> Schedule:
    r"""SGD with warm restarts: warmup-cosine cycles joined end to end.

    Each cycle is ``warmup_cosine_decay_schedule(**kwargs)`` and lasts its ``decay_steps``; the
    next cycle starts at step 0 of its own schedule.

    Args:
      cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` arguments per cycle.

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when there is no cycle, or a cycle's arguments are invalid.

    Examples:
      >>> import gradtx
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=50)
      >>> schedule = gradtx.sgdr_schedule([cycle, cycle])  # two warmup-cosine cycles of 50 steps
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 49, 50, 55)]
      [0.0, 1.0, 0.0012, 0.0, 1.0]

    References:
      Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
      https://arxiv.org/abs/1608.03983, 2017.
    """
    where = "sgdr_schedule"
    schedules, boundaries, step = [], [], 0
    for i, kwargs in enumerate(cosine_kwargs):
        if not isinstance(kwargs, Mapping) or "decay_steps" not in kwargs:
            raise ValueError(
                f"{where}: `cosine_kwargs[{i}]` must be a dict with a `decay_steps` entry, got {kwargs!r}."
            )
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError(f"{where}: `cosine_kwargs` must hold at least one cycle.")
    return join_schedules(schedules, boundaries[:-1])


def cosine_restarts_schedule(init_value: Any, T_0: int, T_mult: float = 1, end_value: Any = 0.0) -> Schedule:
    r"""Cosine annealing with warm restarts, as torch's ``CosineAnnealingWarmRestarts``.

    Cycle ``n`` lasts ``T_n = T_0 * T_mult^n`` steps and starts at
    ``s_n = T_0 (T_mult^n - 1)/(T_mult - 1)`` (``n T_0`` when ``T_mult = 1``); within it

    .. math::
      v(t) = E + (I - E)\,\tfrac12\bigl(1 + \cos(\pi (t - s_n)/T_n)\bigr)

    Args:
      init_value: the value ``I`` at the start of every cycle (torch's base learning rate).
      T_0: length of the first cycle, > 0.
      T_mult: growth factor of the cycle length, >= 1 (default 1: equal cycles).
      end_value: the value ``E`` approached at the end of each cycle (torch's ``eta_min``; default 0.0).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``T_0 <= 0`` or ``T_mult < 1``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.cosine_restarts_schedule(init_value=1.0, T_0=10, T_mult=2)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20, 30)]  # restarts at 10 and 10 + 20
      [1.0, 0.5, 1.0, 0.5, 1.0]

    References:
      Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
      https://arxiv.org/abs/1608.03983, 2017.
    """
    where = "cosine_restarts_schedule"
    _check_values(where, init_value=init_value, end_value=end_value)
    t0 = check_steps("T_0", T_0, where=where)
    mult = _checks.check_scalar("T_mult", T_mult, where=where)
    if mult is None or not math.isfinite(mult) or mult < 1:
        raise ValueError(f"{where}: `T_mult` must be a finite number >= 1, got {T_mult!r}.")

    def schedule(count: Any) -> jax.Array:
        t = jnp.maximum(as_float(count), 0.0)
        if mult == 1:
            n = floor_ratio(t, t0)
            start, length = n * t0, jnp.full_like(t, t0)
        else:
            start_of = lambda k: t0 * (mult**k - 1.0) / (mult - 1.0)
            n = jnp.floor(jnp.log1p(t * (mult - 1.0) / t0) / math.log(mult))
            # The logarithm can land a hair off an integer at a restart; fix the cycle index exactly.
            n = jnp.where(t < start_of(n), n - 1.0, n)
            n = jnp.where(t >= start_of(n + 1.0), n + 1.0, n)
            start, length = start_of(n), t0 * mult**n
        cur = jnp.clip(t - start, 0.0, length)
        end = as_float(end_value)
        return end + (as_float(init_value) - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * cur / length))

    return schedule
