"""Adan (Nesterov-style gradient-difference momentum) and NovoGrad (layer-wise second moment)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx._tree import leaf_dtype, tree_zeros_like
from gradtx.transforms import _parity_common as c

__all__ = ["ScaleByAdanState", "ScaleByNovogradState", "scale_by_adan", "scale_by_novograd"]


class ScaleByAdanState(NamedTuple):
    """State of :func:`scale_by_adan`: the three moments, the previous gradient and the step count."""

    m: Any
    v: Any
    n: Any
    g: Any
    t: jax.Array


class ScaleByNovogradState(NamedTuple):
    """State of :func:`scale_by_novograd`: step count, momentum, and one second moment per leaf (a scalar)."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adan(
    b1: Any = 0.98, b2: Any = 0.92, b3: Any = 0.99, eps: Any = 1e-8, eps_root: Any = 0.0
) -> GradientTransformation:
    """Rescales updates by the Adan rule (adaptive Nesterov momentum).

    With :math:`\\Delta_t = g_t - g_{t-1}` (zero at the first step):

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       v_t = b_2 v_{t-1} + (1 - b_2) \\Delta_t,

       n_t = b_3 n_{t-1} + (1 - b_3) |g_t + b_2 \\Delta_t|^2,

       u_t = \\frac{\\hat m_t + b_2 \\hat v_t}{\\sqrt{\\hat n_t + \\epsilon_{root}} + \\epsilon},

    where hats divide by :math:`1 - b_i^t`. The paper's :math:`\\beta_i` are :math:`1 - b_i` here, so its
    :math:`(1 - \\beta_2)` weight on the gradient difference is :math:`b_2`, as in the paper's Algorithm 1
    and the authors' code. optax 0.2.8 weights it by :math:`1 - b_2` instead (a known optax bug); the
    two agree only for :math:`b_2 = 0.5`.

    Args:
      b1: decay of the gradient average, in ``[0, 1)``. Default 0.98.
      b2: decay of the gradient-difference average, in ``[0, 1)``. Default 0.92.
      b3: decay of the second moment, in ``[0, 1)``. Default 0.99.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdanState`.

    Raises:
      ValueError: when an argument lies outside its range.

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
      https://arxiv.org/abs/2208.06677, 2022.
    """
    where = "scale_by_adan"
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        _checks.check_in_range(name, value, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)

    def init_fn(params: Params) -> ScaleByAdanState:
        z = lambda: tree_zeros_like(params)
        return ScaleByAdanState(m=z(), v=z(), n=z(), g=z(), t=zero_count())

    def update_fn(
        updates: Updates, state: ScaleByAdanState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdanState]:
        del extra_args
        c.check_updates(updates, where=where, state_tree=state.m, state_name="state.m", params=params)
        first = state.t == 0
        t = safe_increment(state.t)
        bc1, bc2, bc3 = (c.bias_correction(b, t) for b in (b1, b2, b3))

        def leaf(grad: jax.Array, m: jax.Array, v: jax.Array, n: jax.Array, prev: jax.Array) -> tuple[jax.Array, ...]:
            dt = c.compute_dtype(grad.dtype)
            beta1, beta2, beta3 = c.hp(b1, dt), c.hp(b2, dt), c.hp(b3, dt)
            g = grad.astype(dt)
            diff = jnp.where(first, jnp.zeros_like(g), g - prev.astype(dt))
            m_new = c.hp(1 - b1, dt) * g + beta1 * m.astype(dt)
            v_new = c.hp(1 - b2, dt) * diff + beta2 * v.astype(dt)
            n_new = c.hp(1 - b3, dt) * c.abs_sq(g + beta2 * diff) + beta3 * n.astype(dt)
            direction = m_new / bc1.astype(dt) + beta2 * (v_new / bc2.astype(dt))
            denom = jnp.sqrt(n_new / bc3.astype(n_new.dtype) + c.hp(eps_root, n_new.dtype)) + c.hp(eps, n_new.dtype)
            u = direction / denom
            return u.astype(grad.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype), n_new.astype(n.dtype)

        out = jax.tree.map(leaf, updates, state.m, state.v, state.n, state.g)
        u, m, v, n = c.unzip(updates, out, 4)
        g_stored = jax.tree.map(lambda g, p: g.astype(p.dtype), updates, state.g)
        return u, ScaleByAdanState(m=m, v=v, n=n, g=g_stored, t=t)

    return GradientTransformation(init_fn, update_fn)


def scale_by_novograd(
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by NovoGrad: Adam-like, with one second moment per layer (leaf).

    For each leaf, with :math:`\\|g_t\\|` its l2 norm over all entries:

    .. math::
       v_1 = \\|g_1\\|^2, \\qquad v_t = b_2 v_{t-1} + (1 - b_2) \\|g_t\\|^2,

       m_1 = d_1, \\qquad m_t = b_1 m_{t-1} + d_t, \\qquad
       d_t = \\frac{g_t}{\\sqrt{v_t + \\epsilon_{root}} + \\epsilon} + \\lambda w_t,

    and the update is :math:`u_t = m_t` (the momentum is not damped by :math:`1 - b_1`).

    Args:
      b1: momentum decay, in ``[0, 1)``. Default 0.9.
      b2: decay of the layer-wise second moment, in ``[0, 1)``. Default 0.25.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      weight_decay: :math:`\\lambda \\ge 0`, decoupled into the momentum. Default 0.
      mu_dtype: dtype of the momentum; ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByNovogradState`; ``update``
      needs ``params``.

    Raises:
      ValueError: when an argument lies outside its range; at update time, when called without params.
      TypeError: when ``mu_dtype`` is not a floating dtype.

    References:
      Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of
      Deep Networks", https://arxiv.org/abs/1905.11286, 2019.
    """
    where = "scale_by_novograd"
    for name, value in (("b1", b1), ("b2", b2)):
        _checks.check_in_range(name, value, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)
    _checks.check_non_negative("weight_decay", weight_decay, where=where)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByNovogradState:
        nu = jax.tree.map(lambda p: jnp.zeros([], leaf_dtype(p)), params)
        return ScaleByNovogradState(count=zero_count(), mu=tree_zeros_like(params, mu_dtype), nu=nu)

    def update_fn(
        updates: Updates, state: ScaleByNovogradState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByNovogradState]:
        del extra_args
        c.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, need_params=True
        )
        count = safe_increment(state.count)
        first = count == 1

        def leaf(g: jax.Array, p: jax.Array, m: jax.Array, v: jax.Array) -> tuple[jax.Array, ...]:
            dt = c.compute_dtype(c.wider(g.dtype, m.dtype))
            vt = c.compute_dtype(v.dtype)
            g_ = g.astype(dt)
            sq_norm = (jnp.linalg.norm(g_) ** 2).astype(vt)
            beta2 = c.hp(b2, vt)
            v_new = jnp.where(first, sq_norm, c.hp(1 - b2, vt) * sq_norm + beta2 * v.astype(vt))
            denom = (jnp.sqrt(v_new + c.hp(eps_root, vt)) + c.hp(eps, vt)).astype(dt)
            # A per-leaf nu of inf (from an infinite gradient) would zero the leaf's g / denom.
            denom = c.nan_unless_finite(denom, v_new)
            d = g_ / denom + c.hp(weight_decay, dt) * p.astype(dt)
            m_new = jnp.where(first, d, c.hp(b1, dt) * m.astype(dt) + d)
            m_stored = m_new.astype(m.dtype)
            return m_stored.astype(g.dtype), m_stored, v_new.astype(v.dtype)

        out = jax.tree.map(leaf, updates, params, state.mu, state.nu)
        u, mu, nu = c.unzip(updates, out, 3)
        return u, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)
