"""Adam and its direct variants: scale_by_adam, scale_by_adamax, scale_by_radam, scale_by_amsgrad."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`, :func:`scale_by_adamax` and :func:`scale_by_radam`.

    Attributes:
      count: steps taken (scalar int32, saturating).
      mu: first moment, shaped like the params.
      nu: second moment (AdaMax: the infinity norm), shaped like the params.
    """

    count: jax.Array
    mu: Any
    nu: Any


def check_betas(where: str, b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0) -> None:
    """The Adam family's checks: ``b1``, ``b2`` in ``[0, 1)``; ``eps``, ``eps_root`` non-negative."""
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("eps_root", eps_root, where=where)


class _StepScalars(NamedTuple):
    """Adam's per-step scalars in one compute dtype (``rdt``: its real counterpart)."""

    b1: jax.Array  # dtype
    one_minus_b1: jax.Array  # dtype
    b2: jax.Array  # rdt
    one_minus_b2: jax.Array  # rdt
    corr1: jax.Array  # 1 - b1**t, dtype
    next_corr1: jax.Array  # 1 - b1**(t+1), dtype (NAdam's look-ahead)
    corr2: jax.Array  # 1 - b2**t, rdt
    eps: jax.Array  # rdt
    eps_root: jax.Array  # rdt


def _step_scalars(b1: Any, b2: Any, eps: Any, eps_root: Any, count: jax.Array) -> Callable[[Any], _StepScalars]:
    """Adam's scalars for this step, built once per compute dtype rather than once per leaf.

    Bit-identical to computing them inside each leaf's function (the same ops on the same
    inputs), but a model with thousands of leaves traces them once: recomputing the bias
    corrections per leaf was most of the trace time of a large tree (bench/NOTES.md).
    """

    def for_dtype(dtype: Any) -> _StepScalars:
        rdt = num.real_dtype(dtype)
        return _StepScalars(
            b1=num.as_dtype(b1, dtype),
            one_minus_b1=num.one_minus(b1, dtype),
            b2=num.as_dtype(b2, rdt),
            one_minus_b2=num.one_minus(b2, rdt),
            corr1=num.bias_correction(b1, count).astype(dtype),
            next_corr1=num.bias_correction(b1, safe_increment(count)).astype(dtype),
            corr2=num.bias_correction(b2, count).astype(rdt),
            eps=num.as_dtype(eps, rdt),
            eps_root=num.as_dtype(eps_root, rdt),
        )

    return num.per_dtype(for_dtype)


def _moments_leaf(
    g: jax.Array, mu: jax.Array, nu: jax.Array, scalars: Callable[[Any], _StepScalars]
) -> tuple[Any, jax.Array, jax.Array, jax.Array, _StepScalars]:
    """First and (real) second moment of one leaf, in its compute dtype."""
    dtype = num.compute_dtype(g.dtype)
    s = scalars(dtype)
    gc = num.cast(g, dtype)
    mu_new = s.b1 * num.cast(mu, dtype) + s.one_minus_b1 * gc
    nu_new = s.b2 * num.real_part(num.cast(nu, dtype)) + s.one_minus_b2 * num.abs_sq(gc)
    return dtype, gc, mu_new, nu_new, s


def _mu_hat(gc: jax.Array, mu_new: jax.Array, s: _StepScalars, nesterov: bool) -> jax.Array:
    """The bias-corrected first moment; Dozat's NAdam look-ahead when ``nesterov``."""
    if nesterov:
        return s.b1 * mu_new / s.next_corr1 + s.one_minus_b1 * gc / s.corr1
    return mu_new / s.corr1


def _init_adam(where: str, mu_dtype: Any, nu_dtype: Any) -> Any:
    def init_fn(params: Params) -> ScaleByAdamState:
        num.check_init_params(params, where=where)
        return ScaleByAdamState(
            count=zero_count(), mu=num.state_zeros(params, mu_dtype), nu=num.state_squares(params, 0, nu_dtype)
        )

    return init_fn


def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by Adam's bias-corrected moment estimates.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1-\\beta_2) |g_t|^2, \\\\
       \\hat m_t = m_t / (1-\\beta_1^t), \\quad \\hat v_t = v_t / (1-\\beta_2^t), \\quad
       u_t = \\hat m_t / (\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon).

    With ``nesterov=True`` (NAdam, Dozat's form) :math:`\\hat m_t` is replaced by
    :math:`\\beta_1 m_t / (1-\\beta_1^{t+1}) + (1-\\beta_1) g_t / (1-\\beta_1^t)`.
    Complex leaves use :math:`|g|^2` for the second moment.

    Args:
      b1: first-moment decay in ``[0, 1)``. Default 0.9.
      b2: second-moment decay in ``[0, 1)``. Default 0.999.
      eps: added outside the square root, ``>= 0``. Default 1e-8.
      eps_root: added inside the square root, ``>= 0``. Default 0.
      mu_dtype: dtype of :math:`m`; ``None`` uses each param's dtype.
      nesterov: NAdam's look-ahead momentum. Default ``False``.
      nu_dtype: dtype of :math:`v` (a gradtx extension; keyword-only); ``None`` uses each
        param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdamState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1)`` or ``eps``/``eps_root`` are negative.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_adam()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the first step is the sign, for any gradient scale
      [1.0, -1.0]

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop, 2016.
    """
    where = "scale_by_adam"
    _checks.check_bool("nesterov", nesterov, where=where)
    check_betas(where, b1, b2, eps, eps_root)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def update_fn(
        updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdamState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)

        scalars = _step_scalars(b1, b2, eps, eps_root, count)

        def leaf(g: jax.Array, mu: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype, gc, mu_new, nu_new, s = _moments_leaf(g, mu, nu, scalars)
            mu_hat = _mu_hat(gc, mu_new, s, nesterov)
            nu_hat = nu_new / s.corr2
            denom = jnp.sqrt(nu_hat + s.eps_root) + s.eps
            u = mu_hat / num.cast(denom, dtype)
            return num.cast(u, g.dtype), num.cast(mu_new, mu.dtype), num.cast(nu_new, nu.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        new_updates, mu, nu = num.unzip(updates, out, 3)
        return new_updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(_init_adam(where, mu_dtype, nu_dtype), update_fn)


def scale_by_adamax(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, *, mu_dtype: Any = None, nu_dtype: Any = None
) -> GradientTransformation:
    """Rescales updates by AdaMax's infinity-norm second moment.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
       v_t = \\max(\\beta_2 v_{t-1}, |g_t| + \\epsilon), \\quad
       u_t = \\frac{m_t}{(1-\\beta_1^t)\\, v_t}.

    ``eps`` sits inside the max (as in optax), so a zero gradient gives a finite zero update.

    Args:
      b1: first-moment decay in ``[0, 1)``. Default 0.9.
      b2: infinity-norm decay in ``[0, 1)``. Default 0.999.
      eps: ``>= 0``. Default 1e-8.
      mu_dtype: dtype of :math:`m` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`v` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdamState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1)`` or ``eps`` is negative.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_adamax()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [1.0, -1.0]

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization" (section 7.1),
      https://arxiv.org/abs/1412.6980, 2014.
    """
    where = "scale_by_adamax"
    check_betas(where, b1, b2, eps)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def update_fn(
        updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdamState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            rdt = num.real_dtype(dtype)
            return (
                num.as_dtype(b1, dtype),
                num.one_minus(b1, dtype),
                num.as_dtype(b2, rdt),
                num.as_dtype(eps, rdt),
                num.bias_correction(b1, count).astype(rdt),
                jnp.ones([], rdt),
            )

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, mu: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            rdt = num.real_dtype(dtype)
            beta1, one_minus_b1, beta2, eps_, corr, one = scalars(dtype)
            gc = num.cast(g, dtype)
            mu_new = beta1 * num.cast(mu, dtype) + one_minus_b1 * gc
            nu_new = jnp.maximum(beta2 * num.real_part(num.cast(nu, dtype)), num.cast(jnp.abs(gc), rdt) + eps_)
            # A zero infinity norm only arises with eps == 0 and an all-zero gradient history.
            safe_nu = jnp.where(nu_new == 0, one, nu_new)
            u = mu_new / num.cast(corr * safe_nu, dtype)
            return num.cast(u, g.dtype), num.cast(mu_new, mu.dtype), num.cast(nu_new, nu.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        new_updates, mu, nu = num.unzip(updates, out, 3)
        return new_updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(_init_adam(where, mu_dtype, nu_dtype), update_fn)


def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by Rectified Adam: Adam once the variance is tractable, momentum before.

    .. math::
       \\rho_\\infty = \\frac{2}{1-\\beta_2} - 1, \\quad
       \\rho_t = \\rho_\\infty - \\frac{2 t \\beta_2^t}{1-\\beta_2^t}, \\quad
       r_t = \\sqrt{\\frac{(\\rho_t-4)(\\rho_t-2)\\rho_\\infty}{(\\rho_\\infty-4)(\\rho_\\infty-2)\\rho_t}}, \\\\
       u_t = r_t\\, \\hat m_t / (\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon)
       \\ \\text{if } \\rho_t \\ge \\text{threshold}, \\text{ else } u_t = \\hat m_t,

    with :math:`\\hat m_t, \\hat v_t` as in :func:`scale_by_adam`.

    Args:
      b1: first-moment decay in ``[0, 1)``. Default 0.9.
      b2: second-moment decay in ``[0, 1)``. Default 0.999.
      eps: added outside the square root, ``>= 0``. Default 1e-8.
      eps_root: added inside the square root, ``>= 0``. Default 0.
      threshold: the :math:`\\rho_t` from which the adaptive step is used, ``>= 4`` (below 4
        the rectification is the root of a negative number). Default 5.
      nesterov: NAdam's look-ahead momentum. Default ``False``.
      mu_dtype: dtype of :math:`m` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`v` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdamState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1)`` or ``eps``/``eps_root`` are negative.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_radam()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the debiased momentum while rho_t < 5
      [0.5, -0.5]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      https://arxiv.org/abs/1908.03265, 2019.
    """
    where = "scale_by_radam"
    _checks.check_bool("nesterov", nesterov, where=where)
    check_betas(where, b1, b2, eps, eps_root)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)
    # rho_t starts at 1 and grows towards rho_inf; the rectification's root is of a negative
    # number for 2 < rho_t < 4, so an adaptive step taken there would be NaN.
    _checks.check_in_range("threshold", threshold, 4.0, None, where=where)

    def update_fn(
        updates: Updates, state: ScaleByAdamState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdamState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)

        scalars = _step_scalars(b1, b2, eps, eps_root, count)
        # The rectification terms, like the bias corrections, in the widest float: once per step.
        wide = num.default_float()
        b2w = num.as_dtype(b2, wide)
        t = count.astype(wide)
        rho_inf = 2 / (1 - b2w) - 1
        b2t = b2w**t
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        use_adaptive = rho >= num.as_dtype(threshold, wide)
        # Clamp so that the discarded branch never evaluates sqrt of a negative (NaN grads).
        ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
        r_wide = jnp.sqrt(jnp.maximum(ratio, jnp.zeros_like(ratio)))
        rectification = num.per_dtype(lambda dtype: (r_wide.astype(dtype), jnp.ones([], num.real_dtype(dtype))))

        def leaf(g: jax.Array, mu: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype, gc, mu_new, nu_new, s = _moments_leaf(g, mu, nu, scalars)
            mu_hat = _mu_hat(gc, mu_new, s, nesterov)
            nu_hat = nu_new / s.corr2
            denom = jnp.sqrt(nu_hat + s.eps_root) + s.eps
            r, one = rectification(dtype)
            safe_denom = jnp.where(use_adaptive, denom, one)
            adaptive = r * mu_hat / num.cast(safe_denom, dtype)
            u = jnp.where(use_adaptive, adaptive, mu_hat)
            return num.cast(u, g.dtype), num.cast(mu_new, mu.dtype), num.cast(nu_new, nu.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        new_updates, mu, nu = num.unzip(updates, out, 3)
        return new_updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(_init_adam(where, mu_dtype, nu_dtype), update_fn)


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`: step count, moments and the running maximum of ``nu``."""

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by AMSGrad: Adam whose denominator never shrinks.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad v_t = b_2 v_{t-1} + (1 - b_2) |g_t|^2,

       \\hat v^{max}_t = \\max(\\hat v^{max}_{t-1}, v_t / (1 - b_2^t)), \\qquad
       u_t = \\frac{m_t / (1 - b_1^t)}{\\sqrt{\\hat v^{max}_t + \\epsilon_{root}} + \\epsilon}.

    Either bias correction can be switched off (the division is then dropped).

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: decay of the second moment, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      mu_dtype: dtype of the first moment; ``None`` uses each param's dtype.
      bias_correction_mu: divide :math:`m_t` by :math:`1 - b_1^t`. Default ``True``.
      bias_correction_nu: divide :math:`v_t` by :math:`1 - b_2^t` before the maximum. Default ``True``.
      nu_dtype: dtype of :math:`v` and :math:`\\hat v^{max}` (a gradtx extension; keyword-only);
        ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAmsgradState`.

    Raises:
      ValueError: when an argument lies outside its range.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_amsgrad()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [1.0, -1.0]

    References:
      Reddi et al., "On the Convergence of Adam and Beyond", https://arxiv.org/abs/1904.09237, 2018.
    """
    where = "scale_by_amsgrad"
    _checks.check_bool("bias_correction_mu", bias_correction_mu, where=where)
    _checks.check_bool("bias_correction_nu", bias_correction_nu, where=where)
    check_betas(where, b1, b2, eps, eps_root)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByAmsgradState:
        num.check_init_params(params, where="scale_by_amsgrad")
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=num.state_zeros(params, mu_dtype),
            nu=num.state_squares(params, 0, nu_dtype),
            nu_max=num.state_squares(params, 0, nu_dtype),
        )

    def update_fn(
        updates: Updates, state: ScaleByAmsgradState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAmsgradState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.nu, state_name="state.nu", params=params)
        count = safe_increment(state.count)
        bc1 = num.bias_correction(b1, count)
        bc2 = num.bias_correction(b2, count)

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            return (
                num.as_dtype(b1, dtype),
                num.as_dtype(b2, dtype),
                num.as_dtype(1 - b1, dtype),
                num.as_dtype(1 - b2, dtype),
                bc1.astype(dtype),
                bc2.astype(dtype),
                num.as_dtype(eps_root, dtype),
                num.as_dtype(eps, dtype),
            )

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, m: jax.Array, v: jax.Array, vmax: jax.Array) -> tuple[jax.Array, ...]:
            dt = num.compute_dtype(num.wider(g.dtype, m.dtype))
            beta1, beta2, one_minus_b1, one_minus_b2, corr1, _, _, _ = scalars(dt)
            g_ = num.cast(g, dt)
            m_new = one_minus_b1 * g_ + beta1 * num.cast(m, dt)
            v_new = one_minus_b2 * num.abs_sq(g_) + beta2 * num.cast(v, dt)
            m_hat = m_new / corr1 if bias_correction_mu else m_new
            v_eff = v_new / scalars(v_new.dtype)[5] if bias_correction_nu else v_new
            vmax_new = jnp.maximum(num.cast(vmax, v_eff.dtype), v_eff)
            *_, eps_root_, eps_ = scalars(vmax_new.dtype)
            u = m_hat / (jnp.sqrt(vmax_new + eps_root_) + eps_)
            return (
                num.cast(u, g.dtype),
                num.cast(m_new, m.dtype),
                num.cast(v_new, v.dtype),
                num.cast(vmax_new, vmax.dtype),
            )

        out = jax.tree.map(leaf, updates, state.mu, state.nu, state.nu_max)
        u, mu, nu, nu_max = num.unzip(updates, out, 4)
        return u, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init_fn, update_fn)
