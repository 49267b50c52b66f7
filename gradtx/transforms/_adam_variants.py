"""Adam variants with their own second-moment rules: AdaBelief, Yogi, Adan."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx.transforms._adam import ScaleByAdamState, check_betas


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`: step count, first moment, second central moment."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_belief(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by the AdaBelief rule: the second moment tracks the gradient's surprise.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       s_t = b_2 s_{t-1} + (1 - b_2) |g_t - m_t|^2 + \\epsilon_{root},

       u_t = \\frac{\\hat m_t}{\\sqrt{s_t / (1 - b_2^t)} + \\epsilon}, \\qquad
       \\hat m_t = \\frac{m_t}{1 - b_1^t}.

    With ``nesterov=True``, :math:`\\hat m_t = b_1 m_t / (1 - b_1^{t+1}) + (1 - b_1) g_t / (1 - b_1^t)`.

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: decay of the second central moment, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-16.
      eps_root: added to :math:`s_t` at every step (it is part of the state), ``>= 0``. Default 1e-16.
      nesterov: use the Nesterov form of the first moment. Default ``False``.
      mu_dtype: dtype of :math:`m` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`s` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByBeliefState`.

    Raises:
      ValueError: when ``b1``/``b2`` lie outside ``[0, 1)`` or ``eps``/``eps_root`` are negative.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_belief()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [1.1111, -1.1111]

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
      https://arxiv.org/abs/2010.07468, 2020.
    """
    where = "scale_by_belief"
    _checks.check_bool("nesterov", nesterov, where=where)
    check_betas(where, b1, b2, eps, eps_root)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByBeliefState:
        num.check_init_params(params, where="scale_by_belief")
        return ScaleByBeliefState(
            count=zero_count(), mu=num.state_zeros(params, mu_dtype), nu=num.state_squares(params, 0, nu_dtype)
        )

    def update_fn(
        updates: Updates, state: ScaleByBeliefState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByBeliefState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)
        bc1 = num.bias_correction(b1, count)
        bc1_next = num.bias_correction(b1, safe_increment(count))
        bc2 = num.bias_correction(b2, count)

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            return (
                num.as_dtype(b1, dtype),
                num.as_dtype(b2, dtype),
                num.as_dtype(1 - b1, dtype),
                num.as_dtype(1 - b2, dtype),
                bc1.astype(dtype),
                bc1_next.astype(dtype),
                bc2.astype(dtype),
                num.as_dtype(eps_root, dtype),
                num.as_dtype(eps, dtype),
            )

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, m: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dt = num.compute_dtype(g.dtype)
            beta1, beta2, one_minus_b1, one_minus_b2, corr1, next_corr1, *_ = scalars(dt)
            g_ = num.cast(g, dt)
            m_new = one_minus_b1 * g_ + beta1 * num.cast(m, dt)
            s_new = one_minus_b2 * num.abs_sq(g_ - m_new) + beta2 * num.cast(s, dt)
            *_, corr2, eps_root_, eps_ = scalars(s_new.dtype)
            s_new = s_new + eps_root_
            m_hat = beta1 * (m_new / next_corr1) + one_minus_b1 * (g_ / corr1) if nesterov else m_new / corr1
            s_hat = s_new / corr2
            u = m_hat / (jnp.sqrt(s_hat) + eps_)
            return num.cast(u, g.dtype), num.cast(m_new, m.dtype), num.cast(s_new, s.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = num.unzip(updates, out, 3)
        return u, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


def scale_by_yogi(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by the Yogi rule: an additive, sign-controlled second-moment update.

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       v_t = v_{t-1} - (1 - b_2)\\, \\operatorname{sign}(v_{t-1} - g_t^2)\\, g_t^2,

       u_t = \\frac{m_t / (1 - b_1^t)}{\\sqrt{v_t / (1 - b_2^t) + \\epsilon_{root}} + \\epsilon},

    with :math:`m_0 = v_0 =` ``initial_accumulator_value``. The state is optax's
    ``ScaleByAdamState(count, mu, nu)``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
      b2: rate of the second-moment update, in ``[0, 1)``. Default 0.999.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-3.
      eps_root: added inside the root, ``>= 0``. Default 0.
      initial_accumulator_value: initial value of both moments, ``>= 0``. Default 1e-6.
      mu_dtype: dtype of :math:`m` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`v` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with ``ScaleByAdamState``.

    Raises:
      ValueError: when an argument lies outside its range.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_yogi()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.996, -0.996]

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS, 2018.
    """
    where = "scale_by_yogi"
    check_betas(where, b1, b2, eps, eps_root)
    _checks.check_non_negative("initial_accumulator_value", initial_accumulator_value, where=where)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> Any:
        num.check_init_params(params, where="scale_by_yogi")
        return ScaleByAdamState(
            count=zero_count(),
            mu=num.state_full(params, initial_accumulator_value, mu_dtype),
            nu=num.state_squares(params, initial_accumulator_value, nu_dtype),
        )

    def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Updates, Any]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.mu, state_name="state.mu", params=params)
        count = safe_increment(state.count)
        bc1 = num.bias_correction(b1, count)
        bc2 = num.bias_correction(b2, count)

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            return (
                num.as_dtype(b1, dtype),
                num.as_dtype(1 - b1, dtype),
                num.as_dtype(1 - b2, dtype),
                bc1.astype(dtype),
                bc2.astype(dtype),
                num.as_dtype(eps_root, dtype),
                num.as_dtype(eps, dtype),
            )

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, m: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dt = num.compute_dtype(g.dtype)
            beta1, one_minus_b1, one_minus_b2, corr1, corr2, eps_root_, eps_ = scalars(dt)
            g_ = num.cast(g, dt)
            m_new = one_minus_b1 * g_ + beta1 * num.cast(m, dt)
            v_old = num.cast(v, dt)
            g2 = num.abs_sq(g_)
            v_new = v_old - one_minus_b2 * jnp.sign(v_old - g2) * g2
            m_hat = m_new / corr1
            v_hat = v_new / corr2
            u = m_hat / (jnp.sqrt(v_hat + eps_root_) + eps_)
            return num.cast(u, g.dtype), num.cast(m_new, m.dtype), num.cast(v_new, v.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = num.unzip(updates, out, 3)
        return u, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdanState(NamedTuple):
    """State of :func:`scale_by_adan`: the three moments, the previous gradient and the step count."""

    m: Any
    v: Any
    n: Any
    g: Any
    t: jax.Array


def scale_by_adan(
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rescales updates by the Adan rule (adaptive Nesterov momentum).

    With :math:`\\Delta_t = g_t - g_{t-1}` (zero at the first step):

    .. math::
       m_t = b_1 m_{t-1} + (1 - b_1) g_t, \\qquad
       v_t = b_2 v_{t-1} + (1 - b_2) \\Delta_t,

       n_t = b_3 n_{t-1} + (1 - b_3) |g_t + b_2 \\Delta_t|^2,

       u_t = \\frac{\\hat m_t + b_2 \\hat v_t}{\\sqrt{\\hat n_t + \\epsilon_{root}} + \\epsilon},

    where hats divide by :math:`1 - b_i^t`. The paper's :math:`\\beta_i` are :math:`1 - b_i` here, so its
    :math:`(1 - \\beta_2)` weight on the gradient difference is :math:`b_2`, as in the paper's Algorithm 1
    and the authors' code. optax 0.2.8 weights it by :math:`1 - b_2` instead (a known optax bug); the
    two agree only for :math:`b_2 = 0.5`.

    Args:
      b1: decay of the gradient average, in ``[0, 1)``. Default 0.98.
      b2: decay of the gradient-difference average, in ``[0, 1)``. Default 0.92.
      b3: decay of the second moment, in ``[0, 1)``. Default 0.99.
      eps: added to the denominator outside the root, ``>= 0``. Default 1e-8.
      eps_root: added inside the root, ``>= 0``. Default 0.
      mu_dtype: dtype of :math:`m` and :math:`v` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.
      nu_dtype: dtype of :math:`n` (a gradtx extension; keyword-only); ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleByAdanState`.

    Raises:
      ValueError: when an argument lies outside its range.
      TypeError: when ``mu_dtype``/``nu_dtype`` are not floating dtypes.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_adan()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [1.0, -1.0]

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
      https://arxiv.org/abs/2208.06677, 2022.
    """
    where = "scale_by_adan"
    check_betas(where, b1, b2, eps, eps_root)
    _checks.check_in_range("b3", b3, 0.0, 1.0, where=where, high_inclusive=False)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    nu_dtype = _checks.check_dtype("nu_dtype", nu_dtype, where=where)

    def init_fn(params: Params) -> ScaleByAdanState:
        num.check_init_params(params, where="scale_by_adan")
        z = lambda dtype=None: num.state_zeros(params, dtype)
        n = num.state_squares(params, 0, nu_dtype)
        return ScaleByAdanState(m=z(mu_dtype), v=z(mu_dtype), n=n, g=z(), t=zero_count())

    def update_fn(
        updates: Updates, state: ScaleByAdanState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByAdanState]:
        del extra_args
        num.check_updates(updates, where=where, state_tree=state.m, state_name="state.m", params=params)
        first = state.t == 0
        t = safe_increment(state.t)
        bc1, bc2, bc3 = (num.bias_correction(b, t) for b in (b1, b2, b3))

        def step_scalars(dtype: Any) -> tuple[jax.Array, ...]:
            return (
                num.as_dtype(b1, dtype),
                num.as_dtype(b2, dtype),
                num.as_dtype(b3, dtype),
                num.as_dtype(1 - b1, dtype),
                num.as_dtype(1 - b2, dtype),
                num.as_dtype(1 - b3, dtype),
                bc1.astype(dtype),
                bc2.astype(dtype),
                bc3.astype(dtype),
                num.as_dtype(eps_root, dtype),
                num.as_dtype(eps, dtype),
                jnp.zeros([], dtype),
            )

        scalars = num.per_dtype(step_scalars)

        def leaf(grad: jax.Array, m: jax.Array, v: jax.Array, n: jax.Array, prev: jax.Array) -> tuple[jax.Array, ...]:
            dt = num.compute_dtype(grad.dtype)
            beta1, beta2, beta3, one_minus_b1, one_minus_b2, one_minus_b3, corr1, corr2, *_, zero = scalars(dt)
            g = num.cast(grad, dt)
            diff = jnp.where(first, zero, g - num.cast(prev, dt))
            m_new = one_minus_b1 * g + beta1 * num.cast(m, dt)
            v_new = one_minus_b2 * diff + beta2 * num.cast(v, dt)
            n_new = one_minus_b3 * num.abs_sq(g + beta2 * diff) + beta3 * num.cast(n, dt)
            direction = m_new / corr1 + beta2 * (v_new / corr2)
            *_, corr3, eps_root_, eps_, _ = scalars(n_new.dtype)
            u = direction / (jnp.sqrt(n_new / corr3 + eps_root_) + eps_)
            return num.cast(u, grad.dtype), num.cast(m_new, m.dtype), num.cast(v_new, v.dtype), num.cast(n_new, n.dtype)

        out = jax.tree.map(leaf, updates, state.m, state.v, state.n, state.g)
        u, m, v, n = num.unzip(updates, out, 4)
        g_stored = jax.tree.map(lambda g, p: num.cast(g, p.dtype), updates, state.g)
        return u, ScaleByAdanState(m=m, v=v, n=n, g=g_stored, t=t)

    return GradientTransformation(init_fn, update_fn)
