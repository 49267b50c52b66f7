"""Rescalings by a norm or a mean: per-block param norm, update norm, gradient centralization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import EmptyState, GradientTransformation, Params, Updates
from gradtx._stack_view import check_per_leaf, check_whole_tree


def scale_by_param_block_norm(min_scale: Any = 1e-3) -> GradientTransformation:
    """Scales each leaf's update by the l2 norm of its param (at least ``min_scale``).

    .. math::
       u = g \\cdot \\max(\\|x\\|_2, \\text{min\\_scale})

    (the norm is replaced by ``min_scale`` when it is at most ``min_scale``).

    Args:
      min_scale: the smallest scale, ``>= 0``. Default 1e-3.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`; ``update`` needs ``params``.

    Raises:
      ValueError: when ``min_scale`` is negative; at update time, when called without params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_param_block_norm()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # times |w| = sqrt(5)
      [1.118, -1.118]

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    return scale_by_param_statistic(num.l2_norm, min_scale, where="scale_by_param_block_norm")


def scale_by_param_statistic(
    statistic: Callable[[jax.Array], jax.Array], min_scale: Any, *, where: str
) -> GradientTransformation:
    """``u = g * max(statistic(x), min_scale)`` per leaf, with ``x`` the leaf's param (private).

    The one rule of :func:`scale_by_param_block_norm` (the l2 norm) and
    :func:`gradtx.scale_by_param_block_rms` (the RMS). The statistic is computed on the param
    cast to the compute dtype of the wider of param and update.
    """
    _checks.check_non_negative("min_scale", min_scale, where=where)

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="a statistic of each param")
        num.check_updates(updates, where=where, params=params, need_params=True)

        floor_for = num.per_dtype(lambda dtype: num.as_dtype(min_scale, dtype))

        def leaf(g: jax.Array, x: jax.Array) -> jax.Array:
            dt = num.compute_dtype(num.wider(g.dtype, x.dtype))
            value = statistic(num.cast(x, dt))
            scale = jnp.maximum(value, floor_for(value.dtype))
            return num.cast(num.cast(g, dt) * num.cast(scale, dt), g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(num.empty_init(where), update_fn)


def normalize_by_update_norm(scale_factor: Any = 1.0, eps: Any = 1e-6) -> GradientTransformation:
    """Divides the updates by their global l2 norm (plus ``eps``), times ``scale_factor``.

    .. math::
       u = \\text{scale\\_factor} \\cdot \\frac{g}{\\|g\\|_2 + \\epsilon}

    Args:
      scale_factor: the length of the result (for ``eps = 0``). Default 1.
      eps: added to the norm, ``>= 0``. Default 1e-6.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``eps`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.normalize_by_update_norm()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # unit global norm
      [0.7071, -0.7071]
    """
    where = "normalize_by_update_norm"
    _checks.check_scalar("scale_factor", scale_factor, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        check_whole_tree(updates, where=where, statistic="the global norm")
        num.check_updates(updates, where=where, params=params)
        leaves = jax.tree.leaves(updates)
        if not leaves:
            return updates, state
        total = num.tree_sum_of_squares(updates)
        acc = total.dtype
        divisor = (num.sqrt_of_squares(total) + num.as_dtype(eps, acc)) / num.as_dtype(scale_factor, acc)
        divisor = num.nan_unless_finite(divisor, total)  # g / inf = 0 would silently zero every update

        divisor_as = num.per_dtype(lambda dt: num.cast(divisor, dt))

        def leaf(g: jax.Array) -> jax.Array:
            dt = num.compute_dtype(g.dtype)
            return num.cast(num.cast(g, dt) / divisor_as(dt), g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(num.empty_init("normalize_by_update_norm"), update_fn)


def centralize() -> GradientTransformation:
    """Gradient centralisation: subtracts from each leaf of rank >= 2 its mean over all axes but the first.

    .. math::
       u[i, \\ldots] = g[i, \\ldots] - \\operatorname{mean}_{\\ldots}\\, g[i, \\ldots]

    Leaves of rank 0 or 1 pass unchanged.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(2)}
      >>> grads = {"kernel": jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]]), "bias": jnp.array([1.0, 2.0])}
      >>> tx = gradtx.centralize()
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates["kernel"], updates["bias"]  # each row of the kernel now has mean 0; the bias is unchanged
      (Array([[-1.,  0.,  1.],
             [-1., -1.,  2.]], dtype=float32), Array([1., 2.], dtype=float32))

    References:
      Yong et al., "Gradient Centralization: A New Optimization Technique for Deep Neural Networks",
      https://arxiv.org/abs/2004.01461, 2020.
    """
    where = "centralize"

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="the mean over all dims but the first")
        num.check_updates(updates, where=where, params=params)

        def leaf(g: jax.Array) -> jax.Array:
            if g.ndim < 2:
                return g
            return g - jnp.mean(g, axis=tuple(range(1, g.ndim)), keepdims=True)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(num.empty_init("centralize"), update_fn)
