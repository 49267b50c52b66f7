"""Elementary schedules: constant, polynomial/linear, exponential, cosine.

A schedule is a pure function ``step -> value``. ``step`` may be a Python number or a traced
int32 scalar, so every schedule here is jit-safe: Python control flow depends only on the
constructor's arguments, never on the step. Values are computed in the default float dtype
(float32, or float64 when ``jax_enable_x64`` is on) and returned as a scalar array.

Constructors validate their arguments at once and raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import Schedule

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "linear_schedule",
    "polynomial_schedule",
]


def float_dtype() -> Any:
    """The dtype schedules compute in: float64 when x64 is enabled, else float32."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def as_float(x: Any) -> jax.Array:
    """``x`` (a number, array or tracer) as a schedule-dtype array."""
    return jnp.asarray(x).astype(float_dtype())


def safe_pow(base: jax.Array, exponent: Any) -> jax.Array:
    """``base ** exponent`` for ``base >= 0`` that is exact at ``base == 0`` (XLA's pow can give NaN there)."""
    exponent = as_float(exponent)
    positive = base > 0
    powered = jnp.power(jnp.where(positive, base, 1.0), exponent)
    return jnp.where(positive, powered, jnp.where(exponent == 0, 1.0, 0.0))


# Under `jax.jit` XLA divides by a constant through its rounded reciprocal, so `T * (1 / T)` can
# miss 1 by an ulp (T = 41 in float32): an end value would be missed, or a floor taken a step late.


def fraction(elapsed: jax.Array, length: float) -> jax.Array:
    """``min(max(elapsed, 0), length) / length``, exactly 0 and 1 at the ends (jitted too)."""
    return jnp.where(elapsed >= length, 1.0, jnp.clip(elapsed, 0.0, length) / length)


def floor_ratio(t: jax.Array, length: float) -> jax.Array:
    """``floor(t / length)``, exact at multiples of ``length`` (jitted too)."""
    n = jnp.floor(t / length)
    n = jnp.where(n * length > t, n - 1.0, n)
    return jnp.where((n + 1.0) * length <= t, n + 1.0, n)


def check_steps(name: str, value: Any, *, where: str, allow_zero: bool = False) -> float:
    """A step count must be a finite real number, positive (or non-negative with ``allow_zero``)."""
    x = _checks.check_scalar(name, value, where=where)
    if x is None:
        raise ValueError(f"{where}: `{name}` must be a concrete number of steps, not a traced value.")
    if x != x or x in (float("inf"), float("-inf")) or x < 0 or (x == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{where}: `{name}` must be a finite number of steps {bound}, got {value!r}.")
    return x


def _annealing_disabled(name: str, value: Any, *, where: str) -> bool:
    """optax documents ``transition_steps <= 0`` as disabling the transition (constant ``init_value``).

    gradtx gives that result too, with a ``UserWarning`` (a non-positive length is probably a
    mistake). NaN, infinite or traced lengths still raise ``ValueError``.
    """
    x = _checks.check_scalar(name, value, where=where)  # raises on NaN
    if x is None or x in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: `{name}` must be a concrete, finite number of steps, got {value!r}.")
    if x > 0:
        return False
    warnings.warn(
        f"{where}: `{name}={value!r}` is not positive, which disables the transition (as optax documents): "
        "the schedule is the constant `init_value`.",
        UserWarning,
        stacklevel=3,
    )
    return True


def _constant(value: Any) -> Schedule:
    def schedule(count: Any) -> jax.Array:
        del count
        return as_float(value)

    return schedule


def check_value(name: str, value: Any, *, where: str) -> None:
    # Values may be traced (a schedule built inside jit), so only concrete ones are checked.
    _checks.check_scalar(name, value, where=where)


def constant_schedule(value: Any) -> Schedule:
    """A schedule that returns ``value`` at every step.

    Args:
      value: the constant (a number or a scalar array).

    Returns:
      A schedule ``step -> value``.

    Examples:
      >>> import gradtx
      >>> float(gradtx.constant_schedule(0.5)(1000))
      0.5
    """
    check_value("value", value, where="constant_schedule")

    def schedule(count: Any) -> jax.Array:
        del count
        return as_float(value)

    return schedule


def polynomial_schedule(
    init_value: Any, end_value: Any, power: Any, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    r"""Polynomial transition from ``init_value`` to ``end_value``.

    .. math::
      v(t) = (I - E)\,\Bigl(1 - \tfrac{\min(\max(t - B, 0), T)}{T}\Bigr)^{P} + E

    Held at ``I`` for ``t <= B`` and at ``E`` for ``t >= B + T``. With ``E = 0`` this is
    torch's ``PolynomialLR(total_iters=T, power=P)`` times the base learning rate.

    Args:
      init_value: value ``I`` before and at ``transition_begin``.
      end_value: value ``E`` from ``transition_begin + transition_steps`` on.
      power: the exponent ``P`` of the polynomial.
      transition_steps: the length ``T`` of the transition; ``<= 0`` disables it (the constant
        ``init_value``, as optax documents, with a ``UserWarning``).
      transition_begin: steps ``B`` to hold ``init_value`` before the transition, >= 0 (default 0).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``transition_steps`` is NaN or infinite, or ``transition_begin < 0``
        (optax clamps it to 0 instead).

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.polynomial_schedule(init_value=1.0, end_value=0.0, power=2, transition_steps=100)
      >>> [round(float(schedule(t)), 4) for t in (0, 50, 100, 200)]  # (1 - t/100)^2, then 0
      [1.0, 0.25, 0.0, 0.0]
    """
    where = "polynomial_schedule"
    for name, v in (("init_value", init_value), ("end_value", end_value), ("power", power)):
        check_value(name, v, where=where)
    begin = check_steps("transition_begin", transition_begin, where=where, allow_zero=True)
    if _annealing_disabled("transition_steps", transition_steps, where=where):
        return _constant(init_value)
    steps = check_steps("transition_steps", transition_steps, where=where)

    def schedule(count: Any) -> jax.Array:
        frac = 1.0 - fraction(as_float(count) - begin, steps)
        return (as_float(init_value) - as_float(end_value)) * safe_pow(frac, power) + as_float(end_value)

    return schedule


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0) -> Schedule:
    r"""Linear transition from ``init_value`` to ``end_value``: a polynomial schedule with power 1.

    .. math::
      v(t) = I + (E - I)\,\tfrac{\min(\max(t - B, 0), T)}{T}

    Equals torch's ``LinearLR(start_factor=I/lr, end_factor=E/lr, total_iters=T)`` times ``lr``.

    Args:
      init_value: value ``I`` up to ``transition_begin``.
      end_value: value ``E`` from ``transition_begin + transition_steps`` on.
      transition_steps: the length ``T`` of the transition; ``<= 0`` disables it (the constant
        ``init_value``, as optax documents, with a ``UserWarning``).
      transition_begin: steps ``B`` to hold ``init_value`` first, >= 0 (default 0).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``transition_steps`` is NaN or infinite, or ``transition_begin < 0``.

    Examples:
      >>> import gradtx
      >>> s = gradtx.linear_schedule(1.0, 0.0, transition_steps=4)
      >>> [float(s(t)) for t in range(6)]
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    where = "linear_schedule"
    for name, v in (("init_value", init_value), ("end_value", end_value)):
        check_value(name, v, where=where)
    begin = check_steps("transition_begin", transition_begin, where=where, allow_zero=True)
    if _annealing_disabled("transition_steps", transition_steps, where=where):
        return _constant(init_value)
    steps = check_steps("transition_steps", transition_steps, where=where)

    def schedule(count: Any) -> jax.Array:
        frac = fraction(as_float(count) - begin, steps)
        # This form is exact at both ends (no cancellation when the end value is tiny).
        return as_float(init_value) * (1.0 - frac) + as_float(end_value) * frac

    return schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    r"""Continuous or staircase exponential decay.

    .. math::
      v(t) = I \cdot r^{p},\quad p = \tfrac{t - B}{T}\ (\lfloor\cdot\rfloor \text{ when staircase}),
      \quad v(t) = I \text{ for } t \le B

    then bounded by ``end_value`` (a floor when ``r < 1``, a ceiling when ``r > 1``; unused when
    ``r = 1``, which optax would apply as a ceiling, jumping to a lower ``end_value`` at once). torch's
    ``ExponentialLR(gamma)`` is ``exponential_decay(lr, 1, gamma)``; ``StepLR(step_size, gamma)``
    is ``exponential_decay(lr, step_size, gamma, staircase=True)``.

    Args:
      init_value: the value ``I`` up to ``transition_begin``.
      transition_steps: ``T``, the steps over which the value is multiplied by ``decay_rate`` once;
        ``<= 0`` gives the constant ``init_value`` (as optax), with a ``UserWarning``.
      decay_rate: ``r`` > 0; ``0`` gives the constant ``init_value`` (as optax), with a ``UserWarning``.
      transition_begin: ``B`` >= 0, steps to hold ``init_value`` first (default 0).
      staircase: decay in discrete jumps every ``transition_steps`` (default ``False``).
      end_value: optional bound on the decayed value (default ``None``).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``transition_steps`` is NaN or infinite, ``decay_rate < 0`` (NaN in optax)
        or ``transition_begin < 0`` (optax clamps it to 0). ``transition_steps <= 0`` and
        ``decay_rate = 0`` give the constant ``init_value``, as in optax, with a ``UserWarning``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.exponential_decay(init_value=1.0, transition_steps=10, decay_rate=0.5)
      >>> [round(float(schedule(t)), 4) for t in (0, 10, 15, 20)]
      [1.0, 0.5, 0.3536, 0.25]
    """
    where = "exponential_decay"
    _checks.check_bool("staircase", staircase, where=where)
    check_value("init_value", init_value, where=where)
    begin = check_steps("transition_begin", transition_begin, where=where, allow_zero=True)
    rate = _checks.check_scalar("decay_rate", decay_rate, where=where)
    if rate is None or rate < 0:
        # A negative rate gives NaN at fractional exponents in optax: raise instead.
        raise ValueError(f"{where}: `decay_rate` must be a concrete number >= 0, got {decay_rate!r}.")
    if _annealing_disabled("transition_steps", transition_steps, where=where):
        return _constant(init_value)
    if rate == 0:
        warnings.warn(
            f"{where}: `decay_rate=0` gives the constant `init_value` (as optax does); a decay to zero is "
            "`end_value=0` with a small `decay_rate`.",
            UserWarning,
            stacklevel=2,
        )
        return _constant(init_value)
    steps = check_steps("transition_steps", transition_steps, where=where)
    if end_value is not None:
        check_value("end_value", end_value, where=where)
    # `end_value` is a floor of a decay and a ceiling of a growth; a rate of 1 neither decays nor grows.
    clip = None if rate == 1.0 or end_value is None else jnp.maximum if rate < 1.0 else jnp.minimum

    def schedule(count: Any) -> jax.Array:
        elapsed = as_float(count) - begin
        p = floor_ratio(elapsed, steps) if staircase else elapsed / steps
        init = as_float(init_value)
        value = jnp.where(elapsed <= 0, init, init * jnp.power(as_float(rate), jnp.maximum(p, 0.0)))
        if clip is not None:
            value = clip(value, as_float(end_value))
        return value

    return schedule


def cosine_decay_schedule(init_value: Any, decay_steps: int, alpha: Any = 0.0, exponent: Any = 1.0) -> Schedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``, then held.

    .. math::
      v(t) = I\,\Bigl[(1 - \alpha)\,\bigl(\tfrac{1}{2}(1 + \cos(\pi \min(t, T)/T))\bigr)^{p} + \alpha\Bigr]

    Within ``0 <= t <= T`` this is torch's ``CosineAnnealingLR(T_max=T, eta_min=alpha * I)``
    (torch's curve rises again after ``T_max``; this one stays at ``alpha * I``).

    Args:
      init_value: the value ``I`` at step 0.
      decay_steps: ``T`` > 0.
      alpha: the final value as a fraction of ``init_value`` (default 0.0).
      exponent: ``p``, applied to the cosine factor (default 1.0).

    Returns:
      A schedule ``step -> value``.

    Raises:
      ValueError: when ``decay_steps <= 0``.

    Examples:
      >>> import gradtx
      >>> schedule = gradtx.cosine_decay_schedule(1.0, decay_steps=100, alpha=0.1)
      >>> [round(float(schedule(step)), 4) for step in (0, 50, 100, 1000)]
      [1.0, 0.55, 0.1, 0.1]

    References:
      Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
      https://arxiv.org/abs/1608.03983, 2017.
    """
    where = "cosine_decay_schedule"
    for name, v in (("init_value", init_value), ("alpha", alpha), ("exponent", exponent)):
        check_value(name, v, where=where)
    steps = check_steps("decay_steps", decay_steps, where=where)

    def schedule(count: Any) -> jax.Array:
        t = jnp.minimum(as_float(count), steps)
        cosine = jnp.maximum(0.5 * (1.0 + jnp.cos(jnp.pi * t / steps)), 0.0)
        a = as_float(alpha)
        return as_float(init_value) * ((1.0 - a) * safe_pow(cosine, exponent) + a)

    return schedule
