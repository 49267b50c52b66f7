"""Step sizes found from the run itself: Polyak's step and DoG (distance over gradients)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import EmptyState, GradientTransformation, Params, Updates
from gradtx._stack_view import check_per_leaf, check_whole_tree

_POLYAK_VARIANTS = ("sps", "sps+")


def scale_by_polyak(
    f_min: Any = 0.0, max_learning_rate: Any = 1.0, eps: Any = 0.0, variant: str = "sps"
) -> GradientTransformation:
    """Scales the updates by Polyak's step size, read from the loss value passed as ``value=``.

    .. math::
       \\gamma_t = \\min\\left(\\frac{f(x_t) - f^\\star}{\\|g_t\\|^2 + \\epsilon}, \\gamma_{max}\\right),
       \\qquad u_t = \\gamma_t g_t,

    where :math:`f(x_t) - f^\\star` is clipped at 0 for ``variant="sps+"``, and :math:`\\gamma_t = 0`
    when :math:`\\|g_t\\|^2 + \\epsilon` is below float64's machine epsilon. ``update`` needs the
    current loss: ``update(updates, state, params, value=loss)``.

    Args:
      f_min: a lower bound :math:`f^\\star` on the loss. Default 0.
      max_learning_rate: :math:`\\gamma_{max} \\ge 0`. Default 1.
      eps: added to the squared gradient norm, ``>= 0``. Default 0.
      variant: ``"sps"`` or ``"sps+"``. Default ``"sps"``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`~gradtx.EmptyState`.

    Raises:
      ValueError: when an argument lies outside its range or ``variant`` is unknown.
      TypeError: at update time, when ``value`` is missing (as for a missing Python argument).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_polyak(max_learning_rate=1.0)
      >>> updates, state = tx.update(params, tx.init(params), params, value=jnp.asarray(2.5))
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.5, -1.0]

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence",
      https://arxiv.org/abs/2002.10542, 2021.
      Berrada et al., "Training Neural Networks for and by Interpolation", https://arxiv.org/abs/1906.05661, 2020.
    """
    where = "scale_by_polyak"
    _checks.check_scalar("f_min", f_min, where=where)
    _checks.check_non_negative("max_learning_rate", max_learning_rate, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    if variant not in _POLYAK_VARIANTS:
        raise ValueError(f"{where}: `variant` must be one of {_POLYAK_VARIANTS}, got {variant!r}.")

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        _checks.require_extra_args(
            extra_args, ("value",), where=where, call="update(updates, state, params, value=loss)"
        )
        value = extra_args["value"]
        if jnp.shape(value) != ():
            raise ValueError(f"{where}: `value` must be a scalar loss, got shape {jnp.shape(value)}.")
        check_whole_tree(updates, where=where, statistic="the squared norm of the gradient")
        num.check_updates(updates, where=where, params=params)
        sq_norm = num.tree_sum_of_squares(updates)
        rdt = sq_norm.dtype
        gap = jnp.asarray(value).astype(rdt) - num.as_dtype(f_min, rdt)
        if variant == "sps+":
            gap = jnp.maximum(gap, jnp.zeros_like(gap))
        denom = sq_norm + num.as_dtype(eps, rdt)
        tiny = float(jnp.finfo(jnp.float64).eps)
        step = jnp.where(
            denom <= tiny, jnp.zeros_like(denom), jnp.minimum(gap / denom, num.as_dtype(max_learning_rate, rdt))
        )
        step_for = num.per_dtype(lambda dtype: num.cast(step, dtype))

        def leaf(g: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            return num.cast(num.cast(g, dtype) * step_for(dtype), g.dtype)

        new_updates = jax.tree.map(leaf, updates)
        return new_updates, state

    return GradientTransformation(num.empty_init("scale_by_polyak"), update_fn)


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of :func:`scale_by_distance_over_gradients` (per leaf): the largest distance travelled,
    the sum of squared gradient norms (shape ``(1,)``, as optax), and the initial params."""

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


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

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_distance_over_gradients(reps_rel=1e-6)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(f"{float(updates['w'][0] / grads['w'][0]):.3e}")  # a first step of order reps_rel: DoG starts small
      4.576e-06

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
        check_per_leaf(
            params, where=where, statistic="the distance from the initial params and the gradients' sum of squares"
        )
        num.check_init_params(params, where="scale_by_distance_over_gradients")

        def first_dist(x: Any) -> jax.Array:
            x = jnp.asarray(x) if not isinstance(x, jax.ShapeDtypeStruct) else jnp.zeros(x.shape, x.dtype)
            dt = num.compute_dtype(x.dtype)
            return (num.as_dtype(reps_rel, dt) * (1 + num.l2_norm(x.astype(dt)))).astype(jnp.finfo(x.dtype).dtype)

        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(first_dist, params),
            # Shape (1,) per leaf, as optax stores it, so that its checkpoints restore here.
            grad_sum_of_squares=jax.tree.map(lambda _: jnp.zeros([1], num.default_float()), params),
            init_params=jax.tree.map(lambda p: num.state_copy(p, param_dtype), params),
        )

    def update_fn(
        updates: Updates, state: ScaleByDistanceOverGradientsState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByDistanceOverGradientsState]:
        del extra_args
        check_per_leaf(
            updates, where=where, statistic="the distance from the initial params and the gradients' sum of squares"
        )
        num.check_updates(updates, where=where, params=params, need_params=True)
        num.check_updates(updates, where=where, state_tree=state.init_params, state_name="state.init_params")

        def leaf(g: jax.Array, x: jax.Array, d: jax.Array, sos: jax.Array, x0: jax.Array) -> tuple[jax.Array, ...]:
            xt = num.wider(x.dtype, x0.dtype)
            dist = num.l2_norm(x.astype(xt) - x0.astype(xt))
            d_new = jnp.maximum(d.astype(dist.dtype), dist)
            gt = num.compute_dtype(g.dtype)
            st = num.wider(sos.dtype, jnp.finfo(gt).dtype)
            sos_new = sos.astype(st) + num.sum_of_squares(g).astype(st)
            wide = num.wider(st, d_new.dtype)
            eta = num.as_dtype(global_scale, wide) * (
                d_new.astype(wide) / jnp.sqrt(sos_new.astype(wide) + num.as_dtype(eps, wide))
            )
            # An infinite gradient makes the sum of squares inf for good: NaN, not silent zeros.
            eta = num.nan_unless_finite(eta, sos_new)
            u = jnp.reshape(eta, ()).astype(gt) * g.astype(gt)
            return u.astype(g.dtype), d_new.astype(d.dtype), sos_new.astype(sos.dtype)

        out = jax.tree.map(leaf, updates, params, state.max_dist, state.grad_sum_of_squares, state.init_params)
        u, max_dist, sos = num.unzip(updates, out, 3)
        return u, ScaleByDistanceOverGradientsState(max_dist, sos, state.init_params)

    return GradientTransformation(init_fn, update_fn)
