"""Sign-based rules: scale_by_sign, Lion, Rprop."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    safe_increment,
    zero_count,
)


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

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_sign()
      >>> updates, state = tx.update({"w": jnp.array([0.5, 0.0])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [1.0, 0.0]

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
      https://arxiv.org/abs/1802.04434, 2018.
    """

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        num.check_updates(updates, where="scale_by_sign", params=params, allow_complex=False)
        return jax.tree.map(jnp.sign, updates), state

    return GradientTransformation(num.empty_init("scale_by_sign", allow_complex=False), update_fn)


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

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_lion()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # sign(0.1 g): +-1
      [1.0, -1.0]

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
        num.check_init_params(params, where=where, allow_complex=False)
        return ScaleByLionState(count=zero_count(), mu=num.state_zeros(params, mu_dtype))

    def update_fn(
        updates: Updates, state: ScaleByLionState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByLionState]:
        del extra_args
        num.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, allow_complex=False
        )

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            beta1, beta2 = num.as_dtype(b1, dtype), num.as_dtype(b2, dtype)
            return beta1, 1 - beta1, beta2, 1 - beta2, num.as_dtype(smooth_beta, dtype)

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, mu: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            beta1, one_minus_b1, beta2, one_minus_b2, sharpness = scalars(dtype)
            gc, mc = num.cast(g, dtype), num.cast(mu, dtype)
            c = beta1 * mc + one_minus_b1 * gc
            if mode == "hard":
                u = jnp.sign(c)
            elif mode == "smooth":
                u = jnp.tanh(sharpness * c)
            else:
                u = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
            mu_new = beta2 * mc + one_minus_b2 * gc
            return num.cast(u, g.dtype), num.cast(mu_new, mu.dtype)

        out = jax.tree.map(leaf, updates, state.mu)
        new_updates, mu = num.unzip(updates, out, 2)
        return new_updates, ScaleByLionState(count=safe_increment(state.count), mu=mu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`: per-entry step sizes and the previous (signed) step."""

    step_sizes: Any
    prev_updates: Any


def scale_by_rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> GradientTransformation:
    """Resilient backpropagation (iRprop-): sign steps whose per-entry sizes adapt to sign changes.

    Per entry, with :math:`s_t = g_t\\, u_{t-1}` (:math:`u_0 = 0`):

    .. math::
       \\eta_t = \\begin{cases} \\operatorname{clip}(\\eta^{+} \\eta_{t-1}) & s_t > 0 \\\\
                 \\operatorname{clip}(\\eta^{-} \\eta_{t-1}) & s_t < 0 \\\\ \\eta_{t-1} & s_t = 0 \\end{cases},
       \\qquad u_t = \\begin{cases} 0 & s_t < 0 \\\\ \\eta_t \\operatorname{sign}(g_t) & \\text{else} \\end{cases},

    with :math:`\\eta_0 =` ``learning_rate`` and clip to ``[min_step_size, max_step_size]``;
    :func:`gradtx.rprop` negates :math:`u_t`. This is torch's ``Rprop``. optax 0.2.8 emits
    :math:`u_{t-1}` instead of :math:`u_t` (a known bug: its first step is zero and every step lags
    one behind); its state after each step equals gradtx's.

    Args:
      learning_rate: the initial step size, ``> 0``.
      eta_minus: shrink factor after a sign change, in ``(0, 1]``. Default 0.5.
      eta_plus: growth factor while the sign holds, ``>= 1``. Default 1.2.
      min_step_size: lower bound on step sizes, ``>= 0``. Default 1e-6.
      max_step_size: upper bound on step sizes, ``>= min_step_size``. Default 50.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByRpropState`.

    Raises:
      ValueError: when an argument lies outside its range.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_rprop(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.1, -0.1]

    References:
      Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP
      Algorithm", IEEE ICNN, 1993.
      Igel and Hüsken, "Improving the Rprop Learning Algorithm", NC, 2000.
    """
    where = "scale_by_rprop"
    _checks.check_positive("learning_rate", learning_rate, where=where)
    _checks.check_in_range("eta_minus", eta_minus, 0.0, 1.0, where=where, low_inclusive=False)
    _checks.check_in_range("eta_plus", eta_plus, 1.0, None, where=where)
    _checks.check_non_negative("min_step_size", min_step_size, where=where)
    low = _checks.check_scalar("min_step_size", min_step_size, where=where)
    _checks.check_in_range("max_step_size", max_step_size, low if low is not None else 0.0, None, where=where)

    def init_fn(params: Params) -> ScaleByRpropState:
        num.check_init_params(params, where="scale_by_rprop", allow_complex=False)
        return ScaleByRpropState(step_sizes=num.state_full(params, learning_rate), prev_updates=num.state_zeros(params))

    def update_fn(
        updates: Updates, state: ScaleByRpropState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByRpropState]:
        del extra_args
        num.check_updates(
            updates,
            where=where,
            state_tree=state.step_sizes,
            state_name="state.step_sizes",
            params=params,
            allow_complex=False,
        )

        scalars = num.per_dtype(
            lambda dtype: (
                *(num.as_dtype(x, dtype) for x in (eta_plus, eta_minus, min_step_size, max_step_size)),
                jnp.zeros([], dtype),
            )
        )

        def leaf(g: jax.Array, size: jax.Array, prev: jax.Array) -> tuple[jax.Array, ...]:
            dt = num.compute_dtype(g.dtype)
            plus, minus, low, high, zero = scalars(dt)
            g_, size_, prev_ = num.cast(g, dt), num.cast(size, dt), num.cast(prev, dt)
            s = g_ * prev_
            grown = jnp.clip(size_ * jnp.where(s > 0, plus, minus), low, high)
            new_size = jnp.where(s == 0, size_, grown)
            new_prev = jnp.where(s < 0, zero, new_size * jnp.sign(g_))
            return num.cast(new_prev, g.dtype), num.cast(new_size, size.dtype), num.cast(new_prev, prev.dtype)

        out = jax.tree.map(leaf, updates, state.step_sizes, state.prev_updates)
        u, sizes, prevs = num.unzip(updates, out, 3)
        return u, ScaleByRpropState(step_sizes=sizes, prev_updates=prevs)

    return GradientTransformation(init_fn, update_fn)
