"""Optimistic gradient steps (extrapolation from the previous gradient), for games and min-max problems."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates

__all__ = ["ScaleByOptimisticGradientState", "scale_by_optimistic_gradient"]


class ScaleByOptimisticGradientState(NamedTuple):
    """State of :func:`scale_by_optimistic_gradient`: a first-step flag and the previous gradient."""

    is_initial_step: jax.Array
    previous_gradient: Any


def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> GradientTransformation:
    """Extrapolates with the previous gradient: the optimistic gradient direction.

    .. math::
       u_t = (\\alpha + \\beta)\\, g_t - \\beta\\, g_{t-1},

    with :math:`g_0 = g_1` (so the first update is :math:`\\alpha g_1`).

    Args:
      alpha: weight of the current gradient, ``>= 0``. Default 1.
      beta: weight of the optimistic correction, ``>= 0``. Default 1.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByOptimisticGradientState`.

    Raises:
      ValueError: when ``alpha`` or ``beta`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_optimistic_gradient()
      >>> state = tx.init(params)
      >>> for g in (1.0, 3.0):
      ...     updates, state = tx.update({"w": jnp.array([g, g])}, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # (alpha + beta) g_t - beta g_{t-1} = 2 * 3 - 1
      [5.0, 5.0]

    References:
      Mokhtari et al., "A Unified Analysis of Extra-gradient and Optimistic Gradient Methods for Saddle
      Point Problems: Proximal Point Approach", https://arxiv.org/abs/1901.08511, 2019.
    """
    where = "scale_by_optimistic_gradient"
    _checks.check_non_negative("alpha", alpha, where=where)
    _checks.check_non_negative("beta", beta, where=where)

    def init_fn(params: Params) -> ScaleByOptimisticGradientState:
        num.check_init_params(params, where="scale_by_optimistic_gradient")
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True), previous_gradient=num.state_zeros(params)
        )

    def update_fn(
        updates: Updates, state: ScaleByOptimisticGradientState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByOptimisticGradientState]:
        del extra_args
        num.check_updates(
            updates,
            where=where,
            state_tree=state.previous_gradient,
            state_name="state.previous_gradient",
            params=params,
        )

        scalars = num.per_dtype(lambda dtype: (num.as_dtype(alpha + beta, dtype), num.as_dtype(beta, dtype)))

        def leaf(g: jax.Array, prev: jax.Array) -> jax.Array:
            dt = num.compute_dtype(g.dtype)
            current, previous_weight = scalars(dt)
            g_ = num.cast(g, dt)
            prev_ = jnp.where(state.is_initial_step, g_, num.cast(prev, dt))
            return num.cast(current * g_ - previous_weight * prev_, g.dtype)

        new_updates = jax.tree.map(leaf, updates, state.previous_gradient)
        previous = jax.tree.map(lambda g, p: num.cast(g, p.dtype), updates, state.previous_gradient)
        return new_updates, ScaleByOptimisticGradientState(is_initial_step=jnp.array(False), previous_gradient=previous)

    return GradientTransformation(init_fn, update_fn)
