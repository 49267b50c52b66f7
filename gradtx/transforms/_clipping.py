"""Clipping: element-wise and by the global norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._base import GradientTransformation, OptState, Params, Updates, init_empty_state
from gradtx.transforms import _moments as m

__all__ = ["clip", "clip_by_global_norm"]


def clip(max_delta: Any) -> GradientTransformation:
    """Clips every update entry into ``[-max_delta, max_delta]``.

    .. math:: u_t = \\min(\\max(g_t, -\\delta), \\delta)

    NaN entries stay NaN; infinities become :math:`\\pm\\delta`.

    Args:
      max_delta: :math:`\\delta \\ge 0`.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``max_delta`` is negative or NaN.
      TypeError: (while tracing) for complex or integer updates, naming the leaf.
    """
    _checks.check_non_negative("max_delta", max_delta, where="clip")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        m.check_updates(updates, where="clip", params=params, allow_complex=False)

        def leaf(g: jax.Array) -> jax.Array:
            delta = m.as_dtype(max_delta, g.dtype)
            return jnp.clip(g, -delta, delta)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
    """Rescales all updates together so that their joint l2 norm is at most ``max_norm``.

    .. math::
       \\|g\\| = \\sqrt{\\textstyle\\sum_i |g_i|^2}, \\qquad
       u_t = g_t \\cdot \\min\\!\\left(1, \\frac{c}{\\|g\\|}\\right).

    The norm is accumulated in at least float32. A zero norm, or ``max_norm=0``, stays
    finite: the factor is 1 when :math:`\\|g\\| \\le c`, so all-zero updates pass unchanged and
    ``max_norm=0`` maps every update to zero. A non-finite norm (an inf or NaN entry) gives
    non-finite updates (never silent zeros), so that :func:`gradtx.apply_if_finite` can skip
    the step.

    Args:
      max_norm: :math:`c \\ge 0`.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``max_norm`` is negative or NaN.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.clip_by_global_norm(1.0)
      >>> updates, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
      >>> round(float(updates["a"][0]), 4), round(float(updates["b"][0]), 4)  # norm 5 scaled to 1
      (0.6, 0.8)

    References:
      Pascanu et al., "On the difficulty of training Recurrent Neural Networks",
      https://arxiv.org/abs/1211.5063, 2012.
    """
    _checks.check_non_negative("max_norm", max_norm, where="clip_by_global_norm")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        m.check_updates(updates, where="clip_by_global_norm", params=params)
        norm = _tree.global_norm(updates)
        c = m.as_dtype(max_norm, norm.dtype)
        over = norm > c
        # Divide only where the norm exceeds c (> 0), so 0/0 never happens. A non-finite norm
        # would give c/inf = 0, silently zeroing the finite entries: make the factor NaN instead.
        safe_norm = jnp.where(over, norm, jnp.ones_like(norm))
        finite = jnp.isfinite(norm)

        def leaf(g: jax.Array) -> jax.Array:
            dtype = m.compute_dtype(g.dtype)
            gc = g.astype(dtype)
            # (g / norm) * c, the order optax uses, so float32 results agree bit for bit.
            clipped = gc / safe_norm.astype(dtype) * c.astype(dtype)
            out = jnp.where(over, clipped, gc)
            return jnp.where(finite, out, jnp.full_like(out, jnp.nan)).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)
