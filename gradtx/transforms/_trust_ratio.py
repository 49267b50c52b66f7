"""Layer-wise trust ratio (LARS, LAMB)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, OptState, Params, Updates, init_empty_state
from gradtx.transforms import _moments as m

__all__ = ["scale_by_trust_ratio"]


def _norm(x: jax.Array) -> jax.Array:
    dtype = m.real_dtype(m.compute_dtype(x.dtype))
    return jnp.sqrt(jnp.sum(m.abs_sq(x.astype(m.compute_dtype(x.dtype))))).astype(dtype)


def scale_by_trust_ratio(min_norm: Any = 0.0, trust_coefficient: Any = 1.0, eps: Any = 0.0) -> GradientTransformation:
    """Scales each leaf's update by the ratio of the param norm to the update norm.

    .. math::
       n_\\theta = \\max(\\|\\theta\\|, n_{min}), \\quad n_g = \\max(\\|g\\|, n_{min}), \\quad
       u = g \\cdot \\begin{cases} 1 & n_\\theta = 0 \\text{ or } n_g = 0 \\\\
       \\kappa\\, n_\\theta / (n_g + \\epsilon) & \\text{otherwise} \\end{cases}

    Norms are per leaf (one layer = one leaf). The ratio is 1 when either norm is zero, so
    zero-initialized params (biases) still move and zero updates stay finite. An infinite
    update norm makes the leaf's ratio NaN (never a silent 0 for its finite entries).

    Args:
      min_norm: :math:`n_{min} \\ge 0`, a floor for both norms. Default 0.
      trust_coefficient: :math:`\\kappa`. Default 1.
      eps: :math:`\\epsilon \\ge 0` in the denominator. Default 0.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``min_norm`` or ``eps`` is negative; (while tracing) when called
        without params or when updates and params differ, naming the path.

    References:
      You et al., "Large Batch Training of Convolutional Networks", https://arxiv.org/abs/1708.03888, 2017.
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
      https://arxiv.org/abs/1904.00962, 2019.
    """
    where = "scale_by_trust_ratio"
    _checks.check_non_negative("min_norm", min_norm, where=where)
    _checks.check_scalar("trust_coefficient", trust_coefficient, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        m.check_updates(updates, where=where, params=params, need_params=True)

        def leaf(g: jax.Array, p: jax.Array) -> jax.Array:
            dtype = m.compute_dtype(g.dtype)
            p_norm, g_norm = _norm(p), _norm(g)
            rdt = g_norm.dtype
            floor = m.as_dtype(min_norm, rdt)
            p_norm = jnp.maximum(p_norm.astype(rdt), floor)
            g_norm = jnp.maximum(g_norm, floor)
            zero = (p_norm == 0) | (g_norm == 0)
            denom = jnp.where(zero, jnp.ones_like(g_norm), g_norm + m.as_dtype(eps, rdt))
            ratio = jnp.where(zero, jnp.ones_like(g_norm), m.as_dtype(trust_coefficient, rdt) * p_norm / denom)
            ratio = m.nan_unless_finite(ratio, g_norm)
            return (g.astype(dtype) * ratio.astype(dtype)).astype(g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(init_empty_state, update_fn)
