"""Accumulator-based scalings: Adadelta, SM3 and the root sum of squares (Adagrad's form)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, Updates
from gradtx._tree import leaf_dtype, tree_zeros_like
from gradtx.transforms import _parity_common as c

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleBySM3State",
    "scale_by_adadelta",
    "scale_by_sm3",
]


class ScaleByAdaDeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`: running means of squared gradients and squared updates."""

    e_g: Any
    e_x: Any


class ScaleBySM3State(NamedTuple):
    """State of :func:`scale_by_sm3`: per-leaf lists of per-dimension accumulators, and the momentum."""

    mu: Any
    nu: Any


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> GradientTransformation:
    """Rescales updates by Adadelta: the ratio of RMS update to RMS gradient.

    .. math::
       E[g^2]_t = \\rho E[g^2]_{t-1} + (1 - \\rho) g_t^2, \\qquad
       u_t = \\frac{\\sqrt{E[u^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}\\, g_t,

       E[u^2]_t = \\rho E[u^2]_{t-1} + (1 - \\rho) u_t^2.

    Args:
      rho: decay of both running means, in ``[0, 1)``. Default 0.9.
      eps: added inside both roots, ``>= 0``. Default 1e-6.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdaDeltaState`.

    Raises:
      ValueError: when ``rho`` lies outside ``[0, 1)`` or ``eps`` is negative.

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", https://arxiv.org/abs/1212.5701, 2012.
    """
    where = "scale_by_adadelta"
    _checks.check_in_range("rho", rho, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)

    def init_fn(params: Params) -> ScaleByAdaDeltaState:
        return ScaleByAdaDeltaState(e_g=tree_zeros_like(params), e_x=tree_zeros_like(params))

    def update_fn(
        updates: Updates, state: ScaleByAdaDeltaState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdaDeltaState]:
        del extra_args
        c.check_updates(updates, where=where, state_tree=state.e_g, state_name="state.e_g", params=params)

        def leaf(g: jax.Array, e_g: jax.Array, e_x: jax.Array) -> tuple[jax.Array, ...]:
            dt = c.compute_dtype(g.dtype)
            r, e = c.hp(rho, dt), c.hp(eps, dt)
            g_ = g.astype(dt)
            e_g_new = c.hp(1 - rho, dt) * c.abs_sq(g_) + r * e_g.astype(dt)
            u = jnp.sqrt(e_x.astype(dt) + e) / jnp.sqrt(e_g_new + e) * g_
            e_x_new = c.hp(1 - rho, dt) * c.abs_sq(u) + r * e_x.astype(dt)
            return u.astype(g.dtype), e_g_new.astype(e_g.dtype), e_x_new.astype(e_x.dtype)

        out = jax.tree.map(leaf, updates, state.e_g, state.e_x)
        u, e_g, e_x = c.unzip(updates, out, 3)
        return u, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return GradientTransformation(init_fn, update_fn)


def _sm3_accumulators(p: Any) -> list[jax.Array]:
    shape, dtype = tuple(jnp.shape(p)), leaf_dtype(p)
    if not shape:  # a scalar leaf keeps one scalar accumulator
        return [jnp.zeros([], dtype)]
    return [jnp.zeros((n,), dtype) for n in shape]


def scale_by_sm3(b1: Any = 0.9, b2: Any = 1.0, eps: Any = 1e-8) -> GradientTransformation:
    """Rescales updates by SM3: Adagrad with a memory of one accumulator per row, column, ... .

    For a leaf of rank :math:`k`, with accumulators :math:`a^{(i)}` along each dimension :math:`i`:

    .. math::
       \\nu_t[j] = c\\, g_t[j]^2 + b_2 \\min_i a^{(i)}_{t-1}[j_i], \\qquad
       a^{(i)}_t[r] = \\max_{j : j_i = r} \\nu_t[j],

       m_t = b_1 m_{t-1} + (1 - b_1)\\, g_t\\, \\nu_t^{-1/2},

    with :math:`c = 1 - b_2` when :math:`b_2 \\ne 1` and :math:`c = 1` otherwise (the paper's plain sum),
    :math:`\\nu^{-1/2} = (\\nu + \\epsilon)^{-1/2}` where :math:`\\nu > 0` and 0 elsewhere. The update is
    :math:`m_t`. Rank-1 leaves keep the full accumulator; scalar leaves keep one scalar accumulator.

    Args:
      b1: momentum decay, in ``[0, 1)``. Default 0.9.
      b2: decay of the accumulators, in ``[0, 1]``; 1 is the paper's sum. Default 1.
      eps: added inside the inverse root, ``>= 0``. Default 1e-8.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleBySM3State`.

    Raises:
      ValueError: when an argument lies outside its range, or (at init) for complex params.

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", https://arxiv.org/abs/1901.11150, 2019.
    """
    where = "scale_by_sm3"
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def init_fn(params: Params) -> ScaleBySM3State:
        for leaf in jax.tree.leaves(params):
            if jnp.issubdtype(leaf_dtype(leaf), jnp.complexfloating):
                raise ValueError(f"{where} does not support complex params.")
        mu = jax.tree.map(_sm3_accumulators, params)
        return ScaleBySM3State(mu=mu, nu=tree_zeros_like(params))

    def update_fn(
        updates: Updates, state: ScaleBySM3State, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleBySM3State]:
        del extra_args
        c.check_updates(
            updates, where=where, state_tree=state.nu, state_name="state.nu", params=params, allow_complex=False
        )

        def leaf(g: jax.Array, acc: list[jax.Array], m: jax.Array) -> tuple[Any, ...]:
            dt = c.compute_dtype(g.dtype)
            beta1, beta2 = c.hp(b1, dt), c.hp(b2, dt)
            coeff = jnp.where(beta2 != 1, c.hp(1 - b2, dt), jnp.ones_like(beta2))
            g_ = g.astype(dt)
            if g.ndim < 2:
                prior = acc[0].astype(dt)
            else:
                expanded = [
                    jnp.reshape(a.astype(dt), [1] * i + [g.shape[i]] + [1] * (g.ndim - i - 1))
                    for i, a in enumerate(acc)
                ]
                prior = functools.reduce(jnp.minimum, expanded)
            nu = coeff * c.abs_sq(g_) + beta2 * prior
            inv_root = jnp.where(nu > 0, jax.lax.rsqrt(nu + c.hp(eps, dt)), jnp.zeros_like(nu))
            m_new = c.hp(1 - b1, dt) * (g_ * inv_root) + beta1 * m.astype(dt)
            if g.ndim < 2:
                new_acc = [nu.astype(acc[0].dtype)]
            else:
                new_acc = [
                    jnp.max(nu, axis=tuple(j for j in range(g.ndim) if j != i)).astype(a.dtype)
                    for i, a in enumerate(acc)
                ]
            return m_new.astype(g.dtype), new_acc, m_new.astype(m.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = c.unzip(updates, out, 3)
        return u, ScaleBySM3State(mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)
