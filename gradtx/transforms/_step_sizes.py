"""Step-size rules outside the moment family: Rprop (sign-based) and Polyak's step size."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import EmptyState, GradientTransformation, Params, Updates, init_empty_state
from gradtx._tree import tree_full_like, tree_zeros_like
from gradtx.transforms import _parity_common as c

__all__ = ["ScaleByRpropState", "scale_by_polyak", "scale_by_rprop"]


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`: per-entry step sizes and the previous (signed) step."""

    step_sizes: Any
    prev_updates: Any


def scale_by_rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> GradientTransformation:
    """Resilient backpropagation (iRprop-): sign steps whose per-entry sizes adapt to sign changes.

    Per entry, with :math:`s_t = g_t\\, u_{t-1}` (:math:`u_0 = 0`):

    .. math::
       \\eta_t = \\begin{cases} \\operatorname{clip}(\\eta^{+} \\eta_{t-1}) & s_t > 0 \\\\
                 \\operatorname{clip}(\\eta^{-} \\eta_{t-1}) & s_t < 0 \\\\ \\eta_{t-1} & s_t = 0 \\end{cases},
       \\qquad u_t = \\begin{cases} 0 & s_t < 0 \\\\ \\eta_t \\operatorname{sign}(g_t) & \\text{else} \\end{cases},

    with :math:`\\eta_0 =` ``learning_rate`` and clip to ``[min_step_size, max_step_size]``;
    :func:`gradtx.rprop` negates :math:`u_t`. This is torch's ``Rprop``. optax 0.2.8 emits
    :math:`u_{t-1}` instead of :math:`u_t` (a known bug: its first step is zero and every step lags
    one behind); its state after each step equals gradtx's.

    Args:
      learning_rate: the initial step size, ``> 0``.
      eta_minus: shrink factor after a sign change, in ``(0, 1]``. Default 0.5.
      eta_plus: growth factor while the sign holds, ``>= 1``. Default 1.2.
      min_step_size: lower bound on step sizes, ``>= 0``. Default 1e-6.
      max_step_size: upper bound on step sizes, ``>= min_step_size``. Default 50.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByRpropState`.

    Raises:
      ValueError: when an argument lies outside its range.

    References:
      Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP
      Algorithm", IEEE ICNN, 1993.
      Igel and Hüsken, "Improving the Rprop Learning Algorithm", NC, 2000.
    """
    where = "scale_by_rprop"
    _checks.check_positive("learning_rate", learning_rate, where=where)
    _checks.check_in_range("eta_minus", eta_minus, 0.0, 1.0, where=where, low_inclusive=False)
    _checks.check_in_range("eta_plus", eta_plus, 1.0, None, where=where)
    _checks.check_non_negative("min_step_size", min_step_size, where=where)
    low = _checks.check_scalar("min_step_size", min_step_size, where=where)
    _checks.check_in_range("max_step_size", max_step_size, low if low is not None else 0.0, None, where=where)

    def init_fn(params: Params) -> ScaleByRpropState:
        return ScaleByRpropState(step_sizes=tree_full_like(params, learning_rate), prev_updates=tree_zeros_like(params))

    def update_fn(
        updates: Updates, state: ScaleByRpropState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByRpropState]:
        del extra_args
        c.check_updates(
            updates,
            where=where,
            state_tree=state.step_sizes,
            state_name="state.step_sizes",
            params=params,
            allow_complex=False,
        )

        def leaf(g: jax.Array, size: jax.Array, prev: jax.Array) -> tuple[jax.Array, ...]:
            dt = c.compute_dtype(g.dtype)
            g_, size_, prev_ = g.astype(dt), size.astype(dt), prev.astype(dt)
            s = g_ * prev_
            grown = jnp.clip(
                size_ * jnp.where(s > 0, c.hp(eta_plus, dt), c.hp(eta_minus, dt)),
                c.hp(min_step_size, dt),
                c.hp(max_step_size, dt),
            )
            new_size = jnp.where(s == 0, size_, grown)
            zeros = jnp.zeros_like(g_)
            new_prev = jnp.where(s < 0, zeros, new_size * jnp.sign(g_))
            return new_prev.astype(g.dtype), new_size.astype(size.dtype), new_prev.astype(prev.dtype)

        out = jax.tree.map(leaf, updates, state.step_sizes, state.prev_updates)
        u, sizes, prevs = c.unzip(updates, out, 3)
        return u, ScaleByRpropState(step_sizes=sizes, prev_updates=prevs)

    return GradientTransformation(init_fn, update_fn)


_POLYAK_VARIANTS = ("sps", "sps+")


def scale_by_polyak(
    f_min: Any = 0.0, max_learning_rate: Any = 1.0, eps: Any = 0.0, variant: str = "sps"
) -> GradientTransformation:
    """Scales the updates by Polyak's step size, read from the loss value passed as ``value=``.

    .. math::
       \\gamma_t = \\min\\left(\\frac{f(x_t) - f^\\star}{\\|g_t\\|^2 + \\epsilon}, \\gamma_{max}\\right),
       \\qquad u_t = \\gamma_t g_t,

    where :math:`f(x_t) - f^\\star` is clipped at 0 for ``variant="sps+"``, and :math:`\\gamma_t = 0`
    when :math:`\\|g_t\\|^2 + \\epsilon` is below float64's machine epsilon. ``update`` needs the
    current loss: ``update(updates, state, params, value=loss)``.

    Args:
      f_min: a lower bound :math:`f^\\star` on the loss. Default 0.
      max_learning_rate: :math:`\\gamma_{max} \\ge 0`. Default 1.
      eps: added to the squared gradient norm, ``>= 0``. Default 0.
      variant: ``"sps"`` or ``"sps+"``. Default ``"sps"``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`~gradtx.EmptyState`.

    Raises:
      ValueError: when an argument lies outside its range or ``variant`` is unknown; at update time,
        when ``value`` is missing.

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence",
      https://arxiv.org/abs/2002.10542, 2021.
      Berrada et al., "Training Neural Networks for and by Interpolation", https://arxiv.org/abs/1906.05661, 2020.
    """
    where = "scale_by_polyak"
    _checks.check_scalar("f_min", f_min, where=where)
    _checks.check_non_negative("max_learning_rate", max_learning_rate, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    if variant not in _POLYAK_VARIANTS:
        raise ValueError(f"{where}: `variant` must be one of {_POLYAK_VARIANTS}, got {variant!r}.")

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        if "value" not in extra_args:
            raise ValueError(
                f"{where} needs the loss value: call `update(updates, state, params, value=loss)` "
                "(the extra argument `value` is missing)."
            )
        value = extra_args["value"]
        if jnp.shape(value) != ():
            raise ValueError(f"{where}: `value` must be a scalar loss, got shape {jnp.shape(value)}.")
        c.check_updates(updates, where=where, params=params)
        leaves = jax.tree.leaves(updates)
        acc = c.wider(*[c.compute_dtype(x.dtype) for x in leaves]) if leaves else jnp.dtype(jnp.float32)
        sq_norm = sum((jnp.sum(c.abs_sq(x.astype(acc))) for x in leaves), jnp.zeros([], acc))
        sq_norm = jnp.real(sq_norm)
        rdt = sq_norm.dtype
        gap = jnp.asarray(value).astype(rdt) - c.hp(f_min, rdt)
        if variant == "sps+":
            gap = jnp.maximum(gap, jnp.zeros_like(gap))
        denom = sq_norm + c.hp(eps, rdt)
        tiny = float(jnp.finfo(jnp.float64).eps)
        step = jnp.where(denom <= tiny, jnp.zeros_like(denom), jnp.minimum(gap / denom, c.hp(max_learning_rate, rdt)))
        new_updates = jax.tree.map(
            lambda g: (g.astype(c.compute_dtype(g.dtype)) * step.astype(c.compute_dtype(g.dtype))).astype(g.dtype),
            updates,
        )
        return new_updates, state

    return GradientTransformation(init_empty_state, update_fn)
