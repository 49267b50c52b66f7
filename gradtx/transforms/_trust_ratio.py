"""Layer-wise norm ratios: the LAMB/LARS trust ratio, NovoGrad's per-layer second moment, Fromage."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    ScalarOrSchedule,
    Updates,
    safe_increment,
    zero_count,
)
from gradtx._stack_view import check_per_leaf
from gradtx._tree import leaf_dtype
from gradtx.transforms._weight_decay import add_scaled_params


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

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_trust_ratio()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # rescaled to |w| = sqrt(5)
      [1.5811, -1.5811]

    References:
      You et al., "Large Batch Training of Convolutional Networks", https://arxiv.org/abs/1708.03888, 2017.
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
      https://arxiv.org/abs/1904.00962, 2019.
    """
    where = "scale_by_trust_ratio"
    _checks.check_non_negative("min_norm", min_norm, where=where)
    # A negative coefficient flips the update into an ascent step.
    _checks.check_non_negative("trust_coefficient", trust_coefficient, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="the trust ratio ||p|| / ||u||")
        num.check_updates(updates, where=where, params=params, need_params=True)

        scalars = num.per_dtype(lambda dtype: tuple(num.as_dtype(x, dtype) for x in (min_norm, eps, trust_coefficient)))

        def leaf(g: jax.Array, p: jax.Array, p_norm: jax.Array, g_norm: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            rdt = g_norm.dtype
            floor, eps_, coefficient = scalars(rdt)
            p_norm = jnp.maximum(num.cast(p_norm, rdt), floor)
            g_norm = jnp.maximum(g_norm, floor)
            zero = (p_norm == 0) | (g_norm == 0)
            denom = jnp.where(zero, jnp.ones_like(g_norm), g_norm + eps_)
            ratio = jnp.where(zero, jnp.ones_like(g_norm), coefficient * p_norm / denom)
            ratio = num.nan_unless_finite(ratio, g_norm)
            return num.cast(num.cast(g, dtype) * num.cast(ratio, dtype), g.dtype)

        g_leaves, treedef = jax.tree.flatten(updates)
        p_leaves = treedef.flatten_up_to(params)
        # Every leaf's two norms in one call (see num.sqrt_of_squares: its derivative is safe at 0).
        sums = [(num.sum_of_squares(p), num.sum_of_squares(g)) for g, p in zip(g_leaves, p_leaves, strict=True)]
        norms = num.sqrt_of_squares(sums)
        out = [leaf(g, p, pn, gn) for g, p, (pn, gn) in zip(g_leaves, p_leaves, norms, strict=True)]
        return jax.tree.unflatten(treedef, out), state

    return GradientTransformation(num.empty_init("scale_by_trust_ratio"), update_fn)


class ScaleByNovogradState(NamedTuple):
    """State of :func:`scale_by_novograd`: step count, momentum, and one second moment per leaf (a scalar)."""

    count: jax.Array
    mu: Any
    nu: Any


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

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_novograd()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.7071, -0.7071]

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
        check_per_leaf(params, where=where, statistic="the second moment (a squared norm)")
        num.check_init_params(params, where="scale_by_novograd")
        nu = jax.tree.map(lambda p: jnp.zeros([], leaf_dtype(p)), params)
        return ScaleByNovogradState(count=zero_count(), mu=num.state_zeros(params, mu_dtype), nu=nu)

    def update_fn(
        updates: Updates, state: ScaleByNovogradState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByNovogradState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="the second moment (a squared norm)")
        num.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, need_params=True
        )
        count = safe_increment(state.count)
        first = count == 1

        scalars = num.per_dtype(
            lambda dtype: tuple(num.as_dtype(x, dtype) for x in (b1, b2, 1 - b2, eps_root, eps, weight_decay))
        )

        def leaf(g: jax.Array, p: jax.Array, m: jax.Array, v: jax.Array) -> tuple[jax.Array, ...]:
            dt = num.compute_dtype(num.wider(g.dtype, m.dtype))
            vt = num.compute_dtype(v.dtype)
            _, beta2, one_minus_b2, eps_root_, eps_, _ = scalars(vt)
            beta1, *_, decay = scalars(dt)
            g_ = num.cast(g, dt)
            sq_norm = num.cast(num.sum_of_squares(g_), vt)
            v_new = jnp.where(first, sq_norm, one_minus_b2 * sq_norm + beta2 * num.cast(v, vt))
            denom = num.cast(jnp.sqrt(v_new + eps_root_) + eps_, dt)
            # A per-leaf nu of inf (from an infinite gradient) would zero the leaf's g / denom.
            denom = num.nan_unless_finite(denom, v_new)
            d = g_ / denom + decay * num.cast(p, dt)
            m_new = jnp.where(first, d, beta1 * num.cast(m, dt) + d)
            m_stored = num.cast(m_new, m.dtype)
            return num.cast(m_stored, g.dtype), m_stored, num.cast(v_new, v.dtype)

        out = jax.tree.map(leaf, updates, params, state.mu, state.nu)
        u, mu, nu = num.unzip(updates, out, 3)
        return u, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


def fromage_multiplier(learning_rate: Any) -> Any:
    """Fromage's :math:`1 / \\sqrt{1 + \\eta^2}` (numbers stay Python floats, arrays stay arrays)."""
    return 1 / (1 + learning_rate**2) ** 0.5


def fromage_contraction(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """Adds :math:`(1/\\sqrt{1 + \\eta_t^2} - 1)\\, x` to the updates (needs ``params``).

    After the rest of :func:`gradtx.fromage` this makes the step
    :math:`x \\leftarrow (x - \\eta\\, \\text{trust}(g)) / \\sqrt{1 + \\eta^2}`. It is weight
    decay with a negative coefficient, which :func:`gradtx.add_decayed_weights` rightly rejects.
    """
    if callable(learning_rate):
        coefficient: ScalarOrSchedule = lambda count: fromage_multiplier(learning_rate(count)) - 1
    else:
        coefficient = fromage_multiplier(learning_rate) - 1
    return add_scaled_params(coefficient, name="learning_rate", where="fromage")
