"""Normalising and constraining transforms: DoG, param-block norm, update-norm normalisation,
gradient centralisation and the non-negativity constraint."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import EmptyState, GradientTransformation, Params, Updates, init_empty_state
from gradtx._tree import leaf_dtype, tree_cast
from gradtx.transforms import _parity_common as c

__all__ = [
    "ScaleByDistanceOverGradientsState",
    "centralize",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "scale_by_distance_over_gradients",
    "scale_by_param_block_norm",
]


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of :func:`scale_by_distance_over_gradients` (per leaf): the largest distance travelled,
    the sum of squared gradient norms, and the initial params."""

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def _l2(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(c.abs_sq(x)))


def scale_by_distance_over_gradients(
    reps_rel: Any = 1e-6, eps: Any = 1e-8, param_dtype: Any = jnp.float32, global_scale: Any = 1.0
) -> GradientTransformation:
    """Scales each leaf by DoG's parameter-free step size ("distance over gradients", layer-wise).

    Per leaf :math:`x` (initial value :math:`x_0`):

    .. math::
       \\bar r_t = \\max(\\bar r_{t-1}, \\|x_t - x_0\\|), \\quad \\bar r_0 = r_\\epsilon (1 + \\|x_0\\|), \\qquad
       G_t = G_{t-1} + \\|g_t\\|^2,

       u_t = s\\, \\frac{\\bar r_t}{\\sqrt{G_t + \\epsilon}}\\, g_t,

    with :math:`s` = ``global_scale``. :math:`G_t` accumulates in the widest enabled float (as optax).
    Descent needs a negative scale afterwards (e.g. ``scale_by_learning_rate(1.0)``).

    Args:
      reps_rel: :math:`r_\\epsilon > 0`, the relative initial distance. Default 1e-6.
      eps: added under the root, ``>= 0``. Default 1e-8.
      param_dtype: the dtype in which the initial params are kept. Default float32.
      global_scale: :math:`s`, a multiplier on the step. Default 1.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByDistanceOverGradientsState`;
      ``update`` needs ``params``.

    Raises:
      ValueError: when an argument lies outside its range; at update time, when called without params.

    References:
      Ivgi et al., "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule",
      https://arxiv.org/abs/2302.12022, 2023.
    """
    where = "scale_by_distance_over_gradients"
    _checks.check_positive("reps_rel", reps_rel, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_scalar("global_scale", global_scale, where=where)
    param_dtype = _checks.check_dtype("param_dtype", param_dtype, where=where)

    def init_fn(params: Params) -> ScaleByDistanceOverGradientsState:
        def first_dist(x: Any) -> jax.Array:
            x = jnp.asarray(x) if not isinstance(x, jax.ShapeDtypeStruct) else jnp.zeros(x.shape, x.dtype)
            dt = c.compute_dtype(x.dtype)
            return (c.hp(reps_rel, dt) * (1 + _l2(x.astype(dt)))).astype(jnp.finfo(x.dtype).dtype)

        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(first_dist, params),
            grad_sum_of_squares=jax.tree.map(lambda _: jnp.zeros([], c.default_float()), params),
            init_params=tree_cast(params, param_dtype),
        )

    def update_fn(
        updates: Updates, state: ScaleByDistanceOverGradientsState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByDistanceOverGradientsState]:
        del extra_args
        c.check_updates(updates, where=where, params=params, need_params=True)
        c.check_updates(updates, where=where, state_tree=state.init_params, state_name="state.init_params")

        def leaf(g: jax.Array, x: jax.Array, d: jax.Array, sos: jax.Array, x0: jax.Array) -> tuple[jax.Array, ...]:
            xt = c.wider(x.dtype, x0.dtype)
            dist = _l2(x.astype(xt) - x0.astype(xt))
            d_new = jnp.maximum(d.astype(dist.dtype), dist)
            gt = c.compute_dtype(g.dtype)
            st = c.wider(sos.dtype, jnp.finfo(gt).dtype)
            sos_new = sos.astype(st) + jnp.sum(c.abs_sq(g.astype(gt))).astype(st)
            wide = c.wider(st, d_new.dtype)
            eta = c.hp(global_scale, wide) * (d_new.astype(wide) / jnp.sqrt(sos_new.astype(wide) + c.hp(eps, wide)))
            # An infinite gradient makes the sum of squares inf for good: NaN, not silent zeros.
            eta = c.nan_unless_finite(eta, sos_new)
            u = eta.astype(gt) * g.astype(gt)
            return u.astype(g.dtype), d_new.astype(d.dtype), sos_new.astype(sos.dtype)

        out = jax.tree.map(leaf, updates, params, state.max_dist, state.grad_sum_of_squares, state.init_params)
        u, max_dist, sos = c.unzip(updates, out, 3)
        return u, ScaleByDistanceOverGradientsState(max_dist, sos, state.init_params)

    return GradientTransformation(init_fn, update_fn)


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

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    where = "scale_by_param_block_norm"
    _checks.check_non_negative("min_scale", min_scale, where=where)

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        c.check_updates(updates, where=where, params=params, need_params=True)

        def leaf(g: jax.Array, x: jax.Array) -> jax.Array:
            dt = c.compute_dtype(c.wider(g.dtype, x.dtype))
            norm = _l2(x.astype(dt))
            floor = c.hp(min_scale, norm.dtype)
            scale = jnp.where(norm <= floor, floor, norm)
            return (g.astype(dt) * scale.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(init_empty_state, update_fn)


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
    """
    where = "normalize_by_update_norm"
    _checks.check_scalar("scale_factor", scale_factor, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        c.check_updates(updates, where=where, params=params)
        leaves = jax.tree.leaves(updates)
        if not leaves:
            return updates, state
        acc = c.wider(*[jnp.finfo(c.compute_dtype(x.dtype)).dtype for x in leaves])
        total = sum(
            (jnp.sum(c.abs_sq(x.astype(c.compute_dtype(x.dtype)))).astype(acc) for x in leaves), jnp.zeros([], acc)
        )
        divisor = (jnp.sqrt(total) + c.hp(eps, acc)) / c.hp(scale_factor, acc)
        divisor = c.nan_unless_finite(divisor, total)  # g / inf = 0 would silently zero every update

        def leaf(g: jax.Array) -> jax.Array:
            dt = c.compute_dtype(g.dtype)
            return (g.astype(dt) / divisor.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def centralize() -> GradientTransformation:
    """Gradient centralisation: subtracts from each leaf of rank >= 2 its mean over all axes but the first.

    .. math::
       u[i, \\ldots] = g[i, \\ldots] - \\operatorname{mean}_{\\ldots}\\, g[i, \\ldots]

    Leaves of rank 0 or 1 pass unchanged.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    References:
      Yong et al., "Gradient Centralization: A New Optimization Technique for Deep Neural Networks",
      https://arxiv.org/abs/2004.01461, 2020.
    """
    where = "centralize"

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        c.check_updates(updates, where=where, params=params)

        def leaf(g: jax.Array) -> jax.Array:
            if g.ndim < 2:
                return g
            return g - jnp.mean(g, axis=tuple(range(1, g.ndim)), keepdims=True)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)


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
    """
    where = "keep_params_nonnegative"

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        c.check_updates(updates, where=where, params=params, need_params=True, allow_complex=False)

        def leaf(g: jax.Array, x: jax.Array) -> jax.Array:
            dt = c.wider(g.dtype, leaf_dtype(x))
            x_, g_ = x.astype(dt), g.astype(dt)
            return jnp.where(x_ + g_ < 0, -x_, g_).astype(g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(init_empty_state, update_fn)
