"""Constraints applied to the params through the updates: keep_params_nonnegative."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _numerics as num
from gradtx._base import EmptyState, GradientTransformation, Params, Updates
from gradtx._tree import leaf_dtype


def keep_params_nonnegative() -> GradientTransformation:
    """Clips each update so that ``params + updates`` stays non-negative.

    .. math::
       u = -x \\;\\text{where}\\; x + g < 0, \\;\\text{else}\\; g

    Params should start non-negative.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation` (state ``NonNegativeParamsState``, an
      :class:`~gradtx.EmptyState`); ``update`` needs ``params``.

    Raises:
      ValueError: at update time, when called without params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([0.1, 1.0])}
      >>> tx = gradtx.keep_params_nonnegative()
      >>> updates, _ = tx.update({"w": jnp.array([-0.5, -0.5])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # params + updates never goes below 0
      [-0.1, -0.5]
    """
    where = "keep_params_nonnegative"

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        num.check_updates(updates, where=where, params=params, need_params=True, allow_complex=False)

        def leaf(g: jax.Array, x: jax.Array) -> jax.Array:
            dt = num.wider(g.dtype, leaf_dtype(x))
            x_, g_ = x.astype(dt), g.astype(dt)
            return jnp.where(x_ + g_ < 0, -x_, g_).astype(g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(num.empty_init("keep_params_nonnegative", allow_complex=False), update_fn)
