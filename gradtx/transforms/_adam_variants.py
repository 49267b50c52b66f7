"""Adam relatives with a different second moment: AdaBelief, Yogi and AMSGrad."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx._tree import tree_full_like, tree_zeros_like
from gradtx.transforms import _parity_common as c
from gradtx.transforms._adam import ScaleByAdamState

__all__ = [
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_yogi",
]


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`: step count, first moment, second central moment."""

    count: jax.Array
    mu: Any
    nu: Any


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`: step count, moments and the running maximum of ``nu``."""

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def _check_betas(where: str, **betas: Any) -> None:
    for name, value in betas.items():
        _checks.check_in_range(name, value, 0.0, 1.0, where=where, high_inclusive=False)


def scale_by_belief(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-16, eps_root: Any = 1e-16, *, nesterov: bool = False
) -> GradientTransformation:
    """Rescales updates by the AdaBelief rule: the second moment tracks the gradient's surprise.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       s_t = b_2 s_{t-1} + (1 - b_2) |g_t - m_t|^2 + \\epsilon_{root},

       u_t = \\frac{\\hat m_t}{\\sqrt{s_t / (1 - b_2^t)} + \\epsilon}, \\qquad
       \\hat m_t = \\frac{m_t}{1 - b_1^t}.

    With ``nesterov=True``, :math:`\\hat m_t = b_1 m_t / (1 - b_1^{t+1}) + (1 - b_1) g_t / (1 - b_1^t)`.

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: decay of the second central moment, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-16.
      eps_root: added to :math:`s_t` at every step (it is part of the state), ``>= 0``. Default 1e-16.
      nesterov: use the Nesterov form of the first moment. Default ``False``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByBeliefState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1)`` or ``eps``/``eps_root`` are negative.

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
      https://arxiv.org/abs/2010.07468, 2020.
    """
    where = "scale_by_belief"
    _check_betas(where, b1=b1, b2=b2)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)

    def init_fn(params: Params) -> ScaleByBeliefState:
        return ScaleByBeliefState(count=zero_count(), mu=tree_zeros_like(params), nu=tree_zeros_like(params))

    def update_fn(
        updates: Updates, state: ScaleByBeliefState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByBeliefState]:
        del extra_args
        c.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)
        bc1 = c.bias_correction(b1, count)
        bc1_next = c.bias_correction(b1, safe_increment(count))
        bc2 = c.bias_correction(b2, count)

        def leaf(g: jax.Array, m: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dt = c.compute_dtype(g.dtype)
            beta1, beta2 = c.hp(b1, dt), c.hp(b2, dt)
            g_ = g.astype(dt)
            m_new = c.hp(1 - b1, dt) * g_ + beta1 * m.astype(dt)
            s_new = c.hp(1 - b2, dt) * c.abs_sq(g_ - m_new) + beta2 * s.astype(dt)
            s_new = s_new + c.hp(eps_root, s_new.dtype)
            if nesterov:
                m_hat = beta1 * (m_new / bc1_next.astype(dt)) + c.hp(1 - b1, dt) * (g_ / bc1.astype(dt))
            else:
                m_hat = m_new / bc1.astype(dt)
            s_hat = s_new / bc2.astype(s_new.dtype)
            u = m_hat / (jnp.sqrt(s_hat) + c.hp(eps, s_hat.dtype))
            return u.astype(g.dtype), m_new.astype(m.dtype), s_new.astype(s.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = c.unzip(updates, out, 3)
        return u, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


def scale_by_yogi(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-3, eps_root: Any = 0.0, initial_accumulator_value: Any = 1e-6
) -> GradientTransformation:
    """Rescales updates by the Yogi rule: an additive, sign-controlled second-moment update.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       v_t = v_{t-1} - (1 - b_2)\\, \\operatorname{sign}(v_{t-1} - g_t^2)\\, g_t^2,

       u_t = \\frac{m_t / (1 - b_1^t)}{\\sqrt{v_t / (1 - b_2^t) + \\epsilon_{root}} + \\epsilon},

    with :math:`m_0 = v_0 =` ``initial_accumulator_value``. The state is optax's
    ``ScaleByAdamState(count, mu, nu)``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: rate of the second-moment update, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-3.
      eps_root: added inside the root, ``>= 0``. Default 0.
      initial_accumulator_value: initial value of both moments, ``>= 0``. Default 1e-6.

    Returns:
      A :class:`~gradtx.GradientTransformation` with ``ScaleByAdamState``.

    Raises:
      ValueError: when an argument lies outside its range.

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS, 2018.
    """
    where = "scale_by_yogi"
    _check_betas(where, b1=b1, b2=b2)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)
    _checks.check_non_negative("initial_accumulator_value", initial_accumulator_value, where=where)

    def init_fn(params: Params) -> Any:
        return ScaleByAdamState(
            count=zero_count(),
            mu=tree_full_like(params, initial_accumulator_value),
            nu=tree_full_like(params, initial_accumulator_value),
        )

    def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Updates, Any]:
        del extra_args
        c.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)
        bc1 = c.bias_correction(b1, count)
        bc2 = c.bias_correction(b2, count)

        def leaf(g: jax.Array, m: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dt = c.compute_dtype(g.dtype)
            beta1 = c.hp(b1, dt)
            g_ = g.astype(dt)
            m_new = c.hp(1 - b1, dt) * g_ + beta1 * m.astype(dt)
            v_old = v.astype(dt)
            g2 = c.abs_sq(g_)
            v_new = v_old - c.hp(1 - b2, dt) * jnp.sign(v_old - g2) * g2
            m_hat = m_new / bc1.astype(dt)
            v_hat = v_new / bc2.astype(dt)
            u = m_hat / (jnp.sqrt(v_hat + c.hp(eps_root, dt)) + c.hp(eps, dt))
            return u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = c.unzip(updates, out, 3)
        return u, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


def scale_by_amsgrad(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    """Rescales updates by AMSGrad: Adam whose denominator never shrinks.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad v_t = b_2 v_{t-1} + (1 - b_2) |g_t|^2,

       \\hat v^{max}_t = \\max(\\hat v^{max}_{t-1}, v_t / (1 - b_2^t)), \\qquad
       u_t = \\frac{m_t / (1 - b_1^t)}{\\sqrt{\\hat v^{max}_t + \\epsilon_{root}} + \\epsilon}.

    Either bias correction can be switched off (the division is then dropped).

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: decay of the second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      mu_dtype: dtype of the first moment; ``None`` uses each param's dtype.
      bias_correction_mu: divide :math:`m_t` by :math:`1 - b_1^t`. Default ``True``.
      bias_correction_nu: divide :math:`v_t` by :math:`1 - b_2^t` before the maximum. Default ``True``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAmsgradState`.

    Raises:
      ValueError: when an argument lies outside its range.
      TypeError: when ``mu_dtype`` is not a floating dtype.

    References:
      Reddi et al., "On the Convergence of Adam and Beyond", https://arxiv.org/abs/1904.09237, 2018.
    """
    where = "scale_by_amsgrad"
    _check_betas(where, b1=b1, b2=b2)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByAmsgradState:
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=tree_zeros_like(params, mu_dtype),
            nu=tree_zeros_like(params),
            nu_max=tree_zeros_like(params),
        )

    def update_fn(
        updates: Updates, state: ScaleByAmsgradState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAmsgradState]:
        del extra_args
        c.check_updates(updates, where=where, state_tree=state.nu, state_name="state.nu", params=params)
        count = safe_increment(state.count)
        bc1 = c.bias_correction(b1, count)
        bc2 = c.bias_correction(b2, count)

        def leaf(g: jax.Array, m: jax.Array, v: jax.Array, vmax: jax.Array) -> tuple[jax.Array, ...]:
            dt = c.compute_dtype(c.wider(g.dtype, m.dtype))
            beta1, beta2 = c.hp(b1, dt), c.hp(b2, dt)
            g_ = g.astype(dt)
            m_new = c.hp(1 - b1, dt) * g_ + beta1 * m.astype(dt)
            v_new = c.hp(1 - b2, dt) * c.abs_sq(g_) + beta2 * v.astype(dt)
            m_hat = m_new / bc1.astype(dt) if bias_correction_mu else m_new
            v_eff = v_new / bc2.astype(v_new.dtype) if bias_correction_nu else v_new
            vmax_new = jnp.maximum(vmax.astype(v_eff.dtype), v_eff)
            u = m_hat / (jnp.sqrt(vmax_new + c.hp(eps_root, vmax_new.dtype)) + c.hp(eps, vmax_new.dtype))
            return u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype), vmax_new.astype(vmax.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu, state.nu_max)
        u, mu, nu, nu_max = c.unzip(updates, out, 4)
        return u, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init_fn, update_fn)
