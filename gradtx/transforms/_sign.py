"""Sign-based scalings: signSGD and Lion."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, OptState, Params, Updates, init_empty_state, safe_increment, zero_count
from gradtx.transforms import _moments as m

__all__ = ["ScaleByLionState", "scale_by_lion", "scale_by_sign"]


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`: step count (scalar int32) and the momentum ``mu``."""

    count: jax.Array
    mu: Any


def scale_by_sign() -> GradientTransformation:
    """Replaces every update entry by its sign.

    .. math:: u_t = \\operatorname{sign}(g_t) \\in \\{-1, 0, 1\\}

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      TypeError: (while tracing) for complex or integer updates, naming the leaf.

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
      https://arxiv.org/abs/1802.04434, 2018.
    """

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        m.check_updates(updates, where="scale_by_sign", params=params, allow_complex=False)
        return jax.tree.map(jnp.sign, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def scale_by_lion(
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float = 1.0,
) -> GradientTransformation:
    """Rescales updates by Lion's sign of an interpolated momentum.

    .. math::
       c_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad u_t = \\operatorname{sign}(c_t), \\quad
       m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t.

    ``mode="smooth"`` uses :math:`\\tanh(\\beta_s c_t)` and ``mode="refined"`` keeps
    :math:`c_t` where :math:`|c_t| < 1` and its sign elsewhere.

    Args:
      b1: interpolation rate in ``[0, 1]``. Default 0.9.
      b2: momentum decay in ``[0, 1]``. Default 0.99.
      mu_dtype: dtype of :math:`m`; ``None`` uses each param's dtype.
      mode: ``"hard"`` (the paper), ``"smooth"`` or ``"refined"``. Default ``"hard"``.
      smooth_beta: :math:`\\beta_s > 0` for ``mode="smooth"``. Default 1.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByLionState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1]``, ``smooth_beta`` is not positive,
        or ``mode`` is unknown.
      TypeError: when ``mu_dtype`` is not a floating dtype.

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms", https://arxiv.org/abs/2302.06675, 2023.
    """
    where = "scale_by_lion"
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where)
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where)
    _checks.check_positive("smooth_beta", smooth_beta, where=where)
    if mode not in ("hard", "smooth", "refined"):
        raise ValueError(f"{where}: `mode` must be one of 'hard', 'smooth', 'refined', got {mode!r}.")
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByLionState:
        m.check_init_params(params, where=where, allow_complex=False)
        return ScaleByLionState(count=zero_count(), mu=m.state_zeros(params, mu_dtype))

    def update_fn(
        updates: Updates, state: ScaleByLionState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByLionState]:
        del extra_args
        m.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, allow_complex=False
        )

        def leaf(g: jax.Array, mu: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = m.compute_dtype(g.dtype)
            gc, mc = g.astype(dtype), mu.astype(dtype)
            beta1, beta2 = m.as_dtype(b1, dtype), m.as_dtype(b2, dtype)
            c = beta1 * mc + (1 - beta1) * gc
            if mode == "hard":
                u = jnp.sign(c)
            elif mode == "smooth":
                u = jnp.tanh(m.as_dtype(smooth_beta, dtype) * c)
            else:
                u = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
            mu_new = beta2 * mc + (1 - beta2) * gc
            return u.astype(g.dtype), mu_new.astype(mu.dtype)

        out = jax.tree.map(leaf, updates, state.mu)
        new_updates, mu = m.unzip(updates, out, 2)
        return new_updates, ScaleByLionState(count=safe_increment(state.count), mu=mu)

    return GradientTransformation(init_fn, update_fn)
