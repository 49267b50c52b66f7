"""Second-moment scalings without a first moment: RMSProp (plain and centred), AdaGrad, AdaDelta."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`: the moving average of squared updates."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """State of :func:`scale_by_rms` with ``bias_correction=True``: step count and ``nu``."""

    count: jax.Array
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    """State of :func:`scale_by_rms` with ``centered=True``: moving averages of updates and squares."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """State of centered :func:`scale_by_rms` with ``bias_correction=True``."""

    count: jax.Array
    mu: Any
    nu: Any


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`: the running sum of squared updates."""

    sum_of_squares: Any


class _RmsScalars(NamedTuple):
    """:func:`scale_by_rms`'s per-step scalars in one compute dtype (``rdt``: its real counterpart)."""

    rho: jax.Array  # rdt
    one_minus_rho: jax.Array  # rdt
    corr: jax.Array | None  # 1 - rho**t (bias_correction=True), rdt
    rho_c: jax.Array  # dtype: the centered mean's
    one_minus_rho_c: jax.Array  # dtype
    corr_c: jax.Array | None  # dtype


def _inv_root(x: jax.Array, eps: jax.Array, eps_in_sqrt: bool) -> jax.Array:
    """``1/sqrt(x + eps)`` or ``1/(sqrt(x) + eps)`` for a real non-negative ``x`` (``eps`` in ``x``'s dtype)."""
    return jax.lax.rsqrt(x + eps) if eps_in_sqrt else 1 / (jnp.sqrt(x) + eps)


def scale_by_rms(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by the root of a moving average of their squares (RMSprop).

    .. math::
       v_t = \\rho v_{t-1} + (1-\\rho) |g_t|^2, \\quad v_0 = s, \\qquad
       u_t = g_t / \\sqrt{v_t + \\epsilon} \\;(\\text{eps\\_in\\_sqrt}) \\text{ or } g_t / (\\sqrt{v_t} + \\epsilon).

    With ``centered=True`` the variance replaces the second moment:
    :math:`m_t = \\rho m_{t-1} + (1-\\rho) g_t` and :math:`v_t - |m_t|^2` goes under the root
    (Graves' centered RMSprop; optax's ``scale_by_stddev``). With ``bias_correction=True``,
    :math:`m_t, v_t` are divided by :math:`1-\\rho^t` first.
    ``eps_in_sqrt=False`` with ``initial_scale=0`` is torch's ``RMSprop`` convention.

    Args:
      decay: :math:`\\rho \\in [0, 1]` (below 1 with ``bias_correction``). Default 0.9.
      eps: :math:`\\epsilon \\ge 0`. Default 1e-8.
      initial_scale: :math:`s \\ge 0`, the initial second moment. Default 0.
      eps_in_sqrt: put ``eps`` inside the root (optax) or outside (torch). Default ``True``.
      bias_correction: divide the averages by :math:`1-\\rho^t`. Default ``False``.
      centered: use the centered variance (keyword-only). Default ``False``.
      mu_dtype: dtype of the centered mean :math:`m` (keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`v` (keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` whose state is :class:`ScaleByRmsState`,
      :class:`ScaleByRmsWithCountState`, :class:`ScaleByRStdDevState` or
      :class:`ScaleByRStdDevWithCountState` depending on ``centered``/``bias_correction``.

    Raises:
      ValueError: when ``decay`` lies outside ``[0, 1]`` or ``eps``/``initial_scale`` are negative.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_rms(decay=0.9)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # g / sqrt(0.1 g^2)
      [3.1623, -3.1623]

    References:
      Tieleman and Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning, 2012.
      Graves, "Generating Sequences With Recurrent Neural Networks", https://arxiv.org/abs/1308.0850, 2013.
    """
    where = "scale_by_rms"
    _checks.check_bool("eps_in_sqrt", eps_in_sqrt, where=where)
    _checks.check_bool("bias_correction", bias_correction, where=where)
    _checks.check_bool("centered", centered, where=where)
    # The bias correction 1 - decay^t is 0 at decay = 1: every step would be NaN (as in optax).
    _checks.check_in_range("decay", decay, 0.0, 1.0, where=where, high_inclusive=not bias_correction)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("initial_scale", initial_scale, where=where)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> Any:
        num.check_init_params(params, where=where)
        nu = num.state_squares(params, initial_scale, nu_dtype)
        if centered:
            mu = num.state_zeros(params, mu_dtype)
            if bias_correction:
                return ScaleByRStdDevWithCountState(count=zero_count(), mu=mu, nu=nu)
            return ScaleByRStdDevState(mu=mu, nu=nu)
        if bias_correction:
            return ScaleByRmsWithCountState(count=zero_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Updates, Any]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.nu, state_name="state.nu", params=params)
        count = safe_increment(state.count) if bias_correction else None
        mu_tree = state.mu if centered else state.nu  # a placeholder tree when not centered

        def step_scalars(dtype: Any) -> _RmsScalars:
            rdt = num.real_dtype(dtype)
            rho = num.as_dtype(decay, rdt)
            corr = num.bias_correction(decay, count).astype(rdt) if count is not None else None
            if not centered:  # the centered mean's fields are unused placeholders
                return _RmsScalars(rho, num.one_minus(decay, rdt), corr, rho, rho, corr)
            corr_c = corr.astype(dtype) if corr is not None else None
            return _RmsScalars(
                rho, num.one_minus(decay, rdt), corr, rho.astype(dtype), num.one_minus(decay, dtype), corr_c
            )

        scalars = num.per_dtype(step_scalars)
        epsilon = num.per_dtype(lambda dtype: num.as_dtype(eps, dtype))
        zero = num.per_dtype(lambda dtype: jnp.zeros([], dtype))

        def leaf(g: jax.Array, mu: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            s = scalars(dtype)
            gc = num.cast(g, dtype)
            nu_new = s.rho * num.real_part(num.cast(nu, dtype)) + s.one_minus_rho * num.abs_sq(gc)
            nu_hat = nu_new / s.corr if s.corr is not None else nu_new
            mu_new = mu
            if centered:
                mu_new = s.rho_c * num.cast(mu, dtype) + s.one_minus_rho_c * gc
                mu_hat = mu_new / s.corr_c if s.corr_c is not None else mu_new
                # Rounding can make the variance slightly negative; clamp it at zero.
                nu_hat = jnp.maximum(nu_hat - num.abs_sq(mu_hat), zero(nu_hat.dtype))
                mu_new = num.cast(mu_new, mu.dtype)
            u = gc * num.cast(_inv_root(nu_hat, epsilon(nu_hat.dtype), eps_in_sqrt), dtype)
            return num.cast(u, g.dtype), mu_new, num.cast(nu_new, nu.dtype)

        out = jax.tree.map(leaf, updates, mu_tree, state.nu)
        new_updates, mu, nu = num.unzip(updates, out, 3)
        if centered:
            if count is not None:
                return new_updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
            return new_updates, ScaleByRStdDevState(mu=mu, nu=nu)
        if count is not None:
            return new_updates, ScaleByRmsWithCountState(count=count, nu=nu)
        return new_updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init_fn, update_fn)


def scale_by_adagrad(
    initial_accumulator_value: Any = 0.1, eps: Any = 1e-7, *, eps_in_sqrt: bool = True, nu_dtype: Any = None
) -> GradientTransformation:
    """Rescales updates by the root of the sum of all squared updates so far (Adagrad).

    .. math::
       G_t = G_{t-1} + |g_t|^2, \\quad G_0 = a, \\qquad
       u_t = g_t / \\sqrt{G_t + \\epsilon} \\;(\\text{eps\\_in\\_sqrt}) \\text{ or } g_t / (\\sqrt{G_t} + \\epsilon),

    and :math:`u_t = 0` wherever :math:`G_t = 0` (no gradient seen yet). optax calls this
    ``scale_by_rss``; ``eps_in_sqrt=False, initial_accumulator_value=0`` is torch's ``Adagrad``.

    Args:
      initial_accumulator_value: :math:`a \\ge 0`. Default 0.1.
      eps: :math:`\\epsilon \\ge 0`. Default 1e-7.
      eps_in_sqrt: put ``eps`` inside the root (optax) or outside (torch); keyword-only.
        Default ``True``.
      nu_dtype: dtype of :math:`G` (keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdagradState`.

    Raises:
      ValueError: when ``initial_accumulator_value`` or ``eps`` is negative.
      TypeError: when ``nu_dtype`` is not a floating dtype.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_adagrad()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # g / sqrt(0.1 + g^2)
      [0.8452, -0.8452]

    References:
      Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization", JMLR, 2011.
    """
    where = "scale_by_adagrad"
    _checks.check_bool("eps_in_sqrt", eps_in_sqrt, where=where)
    _checks.check_non_negative("initial_accumulator_value", initial_accumulator_value, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByAdagradState:
        num.check_init_params(params, where=where)
        return ScaleByAdagradState(sum_of_squares=num.state_squares(params, initial_accumulator_value, nu_dtype))

    def update_fn(
        updates: Updates, state: ScaleByAdagradState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdagradState]:
        del extra_args
        num.check_updates(
            updates, where=where, state_tree=state.sum_of_squares, state_name="state.sum_of_squares", params=params
        )

        scalars = num.per_dtype(lambda dtype: (num.as_dtype(eps, dtype), jnp.zeros([], dtype), jnp.ones([], dtype)))

        def leaf(g: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            gc = num.cast(g, dtype)
            s_new = num.real_part(num.cast(s, dtype)) + num.abs_sq(gc)
            eps_, zero, one = scalars(s_new.dtype)
            positive = s_new > zero
            safe = jnp.where(positive, s_new, one)
            scaling = jnp.where(positive, _inv_root(safe, eps_, eps_in_sqrt), zero)
            return num.cast(gc * num.cast(scaling, dtype), g.dtype), num.cast(s_new, s.dtype)

        out = jax.tree.map(leaf, updates, state.sum_of_squares)
        new_updates, sums = num.unzip(updates, out, 2)
        return new_updates, ScaleByAdagradState(sum_of_squares=sums)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`: running means of squared gradients and squared updates."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> GradientTransformation:
    """Rescales updates by Adadelta: the ratio of RMS update to RMS gradient.

    .. math::
       E[g^2]_t = \\rho E[g^2]_{t-1} + (1 - \\rho) g_t^2, \\qquad
       u_t = \\frac{\\sqrt{E[u^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}\\, g_t,

       E[u^2]_t = \\rho E[u^2]_{t-1} + (1 - \\rho) u_t^2.

    Args:
      rho: decay of both running means, in ``[0, 1)``. Default 0.9.
      eps: added inside both roots, ``>= 0``. Default 1e-6.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdaDeltaState`.

    Raises:
      ValueError: when ``rho`` lies outside ``[0, 1)`` or ``eps`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_adadelta()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.0032, -0.0032]

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", https://arxiv.org/abs/1212.5701, 2012.
    """
    where = "scale_by_adadelta"
    _checks.check_in_range("rho", rho, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)

    def init_fn(params: Params) -> ScaleByAdaDeltaState:
        num.check_init_params(params, where="scale_by_adadelta")
        return ScaleByAdaDeltaState(e_g=num.state_squares(params), e_x=num.state_squares(params))

    def update_fn(
        updates: Updates, state: ScaleByAdaDeltaState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdaDeltaState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.e_g, state_name="state.e_g", params=params)

        scalars = num.per_dtype(
            lambda dtype: (num.as_dtype(rho, dtype), num.as_dtype(eps, dtype), num.as_dtype(1 - rho, dtype))
        )

        def leaf(g: jax.Array, e_g: jax.Array, e_x: jax.Array) -> tuple[jax.Array, ...]:
            dt = num.compute_dtype(g.dtype)
            r, e, one_minus_r = scalars(dt)
            g_ = num.cast(g, dt)
            e_g_new = one_minus_r * num.abs_sq(g_) + r * num.cast(e_g, dt)
            u = jnp.sqrt(num.cast(e_x, dt) + e) / jnp.sqrt(e_g_new + e) * g_
            e_x_new = one_minus_r * num.abs_sq(u) + r * num.cast(e_x, dt)
            return num.cast(u, g.dtype), num.cast(e_g_new, e_g.dtype), num.cast(e_x_new, e_x.dtype)

        out = jax.tree.map(leaf, updates, state.e_g, state.e_x)
        u, e_g, e_x = num.unzip(updates, out, 3)
        return u, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return GradientTransformation(init_fn, update_fn)
