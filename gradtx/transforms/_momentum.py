"""Momentum: heavy-ball / Nesterov accumulation and exponential moving averages."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count

__all__ = ["EmaState", "ScaleByMomentumState", "ema", "scale_by_momentum"]


class ScaleByMomentumState(NamedTuple):
    """State of :func:`scale_by_momentum`: the momentum buffer, shaped like the params."""

    trace: Any


class EmaState(NamedTuple):
    """State of :func:`ema`: the step count (scalar int32) and the moving average."""

    count: jax.Array
    ema: Any


def scale_by_momentum(
    momentum: Any = 0.9, *, nesterov: bool = False, accumulator_dtype: Any = None
) -> GradientTransformation:
    """Heavy-ball momentum (optionally Nesterov's form); optax's ``trace``.

    .. math::
       b_t = \\mu\\, b_{t-1} + g_t, \\qquad
       u_t = b_t \\;\\text{(heavy ball)} \\quad\\text{or}\\quad u_t = g_t + \\mu\\, b_t \\;\\text{(Nesterov)},

    with :math:`b_0 = 0`. This is torch's ``SGD`` buffer with ``dampening=0`` (its first
    step also gives :math:`b_1 = g_1`) and its ``nesterov=True`` form.

    Args:
      momentum: the decay :math:`\\mu \\ge 0`. Default 0.9.
      nesterov: use Nesterov's form. Default ``False``.
      accumulator_dtype: dtype of the buffer; ``None`` uses each param's dtype (complex params keep a
        complex buffer of that precision).

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByMomentumState`.

    Raises:
      ValueError: when ``momentum`` is negative or NaN.
      TypeError: when ``accumulator_dtype`` is not a floating dtype.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_momentum(momentum=0.9)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # g + 0.9 g
      [0.95, -0.95]

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
      Sutskever et al., "On the importance of initialization and momentum in deep learning", ICML, 2013.
    """
    where = "scale_by_momentum"
    _checks.check_bool("nesterov", nesterov, where=where)
    _checks.check_non_negative("momentum", momentum, where=where)
    accumulator_dtype = _checks.check_dtype("accumulator_dtype", accumulator_dtype, where=where)

    def init_fn(params: Params) -> ScaleByMomentumState:
        num.check_init_params(params, where=where)
        trace = jax.tree.map(lambda p: num.state_leaf(p, 0, num.accumulator_dtype(p, accumulator_dtype)), params)
        return ScaleByMomentumState(trace=trace)

    def update_fn(
        updates: Updates, state: ScaleByMomentumState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByMomentumState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.trace, state_name="state.trace", params=params)

        decay = num.per_dtype(lambda dtype: num.as_dtype(momentum, dtype))

        def leaf(g: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            mu = decay(dtype)
            gc = num.cast(g, dtype)
            b_new = mu * num.cast(b, dtype) + gc
            u = gc + mu * b_new if nesterov else b_new
            return num.cast(u, g.dtype), num.cast(b_new, b.dtype)

        out = jax.tree.map(leaf, updates, state.trace)
        new_updates, new_trace = num.unzip(updates, out, 2)
        return new_updates, ScaleByMomentumState(trace=new_trace)

    return GradientTransformation(init_fn, update_fn)


def ema(decay: Any, debias: bool = True, accumulator_dtype: Any = None) -> GradientTransformation:
    """Exponential moving average of the updates, optionally debiased.

    .. math::
       e_t = \\beta\\, e_{t-1} + (1 - \\beta)\\, g_t, \\qquad
       u_t = e_t / (1 - \\beta^t) \\;\\text{(debias)} \\quad\\text{or}\\quad u_t = e_t,

    with :math:`e_0 = 0`.

    Args:
      decay: :math:`\\beta \\in [0, 1]`.
      debias: divide by :math:`1 - \\beta^t`. Default ``True``.
      accumulator_dtype: dtype of the average; ``None`` uses each param's dtype (complex params keep a
        complex average of that precision).

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`EmaState`.

    Raises:
      ValueError: when ``decay`` lies outside ``[0, 1]``.
      TypeError: when ``accumulator_dtype`` is not a floating dtype.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.ema(decay=0.9)
      >>> state = tx.init(params)
      >>> for g in (1.0, 3.0):
      ...     updates, state = tx.update({"w": jnp.array([g, g])}, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # debiased: (0.09 * 1 + 0.1 * 3) / 0.19
      [2.0526, 2.0526]
    """
    where = "ema"
    _checks.check_bool("debias", debias, where=where)
    _checks.check_in_range("decay", decay, 0.0, 1.0, where=where)
    accumulator_dtype = _checks.check_dtype("accumulator_dtype", accumulator_dtype, where=where)

    def init_fn(params: Params) -> EmaState:
        num.check_init_params(params, where=where)
        average = jax.tree.map(lambda p: num.state_leaf(p, 0, num.accumulator_dtype(p, accumulator_dtype)), params)
        return EmaState(count=zero_count(), ema=average)

    def update_fn(
        updates: Updates, state: EmaState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmaState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.ema, state_name="state.ema", params=params)
        count = safe_increment(state.count)

        def step_scalars(dtype: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
            corr = None
            if debias:
                # With decay == 1 the correction is 0; 0/0 would poison the update, so keep e_t.
                corr = num.bias_correction(decay, count).astype(num.real_dtype(dtype))
                corr = jnp.where(corr == 0, jnp.ones_like(corr), corr).astype(dtype)
            return num.as_dtype(decay, dtype), num.one_minus(decay, dtype), corr

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, e: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            beta, one_minus_beta, corr = scalars(dtype)
            e_new = beta * num.cast(e, dtype) + one_minus_beta * num.cast(g, dtype)
            u = e_new / corr if corr is not None else e_new
            return num.cast(u, g.dtype), num.cast(e_new, e.dtype)

        out = jax.tree.map(leaf, updates, state.ema)
        new_updates, new_ema = num.unzip(updates, out, 2)
        return new_updates, EmaState(count=count, ema=new_ema)

    return GradientTransformation(init_fn, update_fn)
