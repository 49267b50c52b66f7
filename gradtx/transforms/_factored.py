"""Memory-light second moments: Adafactor's factored statistics with its block-RMS parts, and SM3."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, OptState, Params, Updates, safe_increment, zero_count
from gradtx._stack_view import check_per_leaf
from gradtx._tree import leaf_dtype
from gradtx.transforms._normalization import scale_by_param_statistic


class FactoredState(NamedTuple):
    """State of :func:`scale_by_factored_rms`.

    Attributes:
      count: steps taken (scalar int32).
      v_row: per-leaf row statistics (the leaf's shape without its largest dim) for factored
        leaves; a ``(1,)`` placeholder otherwise.
      v_col: per-leaf column statistics (without the second-largest dim), or a placeholder.
      v: the full second moment for unfactored leaves, or a ``(1,)`` placeholder.
    """

    count: jax.Array
    v_row: Any
    v_col: Any
    v: Any


def _decay_rate_pow(i: Any, exponent: Any = 0.8) -> jax.Array:
    """Adafactor's second-moment decay :math:`\\hat\\beta_{2,t} = 1 - t^{-c}` with ``t = i + 1``."""
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    t = jnp.asarray(i).astype(dtype) + 1
    return 1 - t ** (-num.as_dtype(exponent, dtype))


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int) -> tuple[int, int] | None:
    """``(second-largest dim, largest dim)`` to factor over, or ``None`` to keep the full moment."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: Any = 0.8,
    step_offset: Any = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: Any = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = _decay_rate_pow,
) -> GradientTransformation:
    """Rescales updates by Adafactor's factored estimate of the second moment.

    For a leaf whose two largest dims (sizes :math:`\\ge` ``min_dim_size_to_factor``) are
    :math:`r` (second largest, "rows") and :math:`c` (largest, "columns"):

    .. math::
       \\hat\\beta_t = \\text{decay\\_rate\\_fn}(t - \\text{offset}, \\text{decay\\_rate}), \\quad
       G_t = |g_t|^2 + \\epsilon_1, \\\\
       R_t = \\hat\\beta_t R_{t-1} + (1-\\hat\\beta_t)\\, \\operatorname{mean}_c G_t, \\quad
       C_t = \\hat\\beta_t C_{t-1} + (1-\\hat\\beta_t)\\, \\operatorname{mean}_r G_t, \\\\
       u_t = g_t \\,/\\, \\sqrt{R_t C_t / \\operatorname{mean}_r R_t}.

    Other leaves keep the full moment :math:`V_t = \\hat\\beta_t V_{t-1} + (1-\\hat\\beta_t) G_t`,
    :math:`u_t = g_t / \\sqrt{V_t}`. The default ``decay_rate_fn`` is
    :math:`1 - (t+1)^{-\\text{decay\\_rate}}` with ``t`` counted from 0.

    Args:
      factored: factor leaves of rank >= 2 at all. Default ``True``.
      decay_rate: the exponent :math:`c` of the decay schedule (> 0). Default 0.8.
      step_offset: steps subtracted from the count (for fine-tuning), an int. Default 0. Until
        the count reaches it, the decay is held at its first step (optax gives NaN there).
      min_dim_size_to_factor: factor only when the second-largest dim is at least this (>= 1). Default 128.
      epsilon: :math:`\\epsilon_1 \\ge 0` added to the squared gradient. Default 1e-30.
      decay_rate_fn: ``(step, decay_rate) -> beta``. Default Adafactor's power schedule.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`FactoredState`.

    Raises:
      ValueError: when ``min_dim_size_to_factor < 1`` or ``epsilon``/``decay_rate`` are out of range.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones((256, 128)), "b": jnp.ones(3)}
      >>> tx = gradtx.scale_by_factored_rms()
      >>> state = tx.init(params)
      >>> state.v_row["w"].shape, state.v_col["w"].shape, state.v["b"].shape  # factored for w, full for b
      ((128,), (256,), (3,))

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    where = "scale_by_factored_rms"
    _checks.check_bool("factored", factored, where=where)
    _checks.check_int("min_dim_size_to_factor", min_dim_size_to_factor, where=where, low=1)
    _checks.check_non_negative("epsilon", epsilon, where=where)
    _checks.check_non_negative("decay_rate", decay_rate, where=where)
    _checks.check_scalar("step_offset", step_offset, where=where)
    if not jnp.issubdtype(jnp.result_type(step_offset), jnp.integer) or isinstance(step_offset, bool):
        raise TypeError(f"{where}: `step_offset` must be an integer number of steps, got {step_offset!r:.60}.")
    _checks.check_callable("decay_rate_fn", decay_rate_fn, where=where)

    def init_fn(params: Params) -> FactoredState:
        if factored:  # unfactored, the second moment is elementwise
            check_per_leaf(params, where=where, statistic="factored second moments (means over rows and columns)")
        num.check_init_params(params, where=where)

        def placeholder(p: Any) -> jax.Array:
            return jnp.zeros((1,), _tree.leaf_dtype(p))

        # The row (column) statistic is the param with its column (row) dim reduced away, so it
        # takes the param's sharding with that dim's spec entry dropped.
        def rows(p: Any) -> jax.Array:
            dims = _factored_dims(tuple(jnp.shape(p)), factored, min_dim_size_to_factor)
            return placeholder(p) if dims is None else num.state_leaf(p, drop_axes=(dims[1],))

        def cols(p: Any) -> jax.Array:
            dims = _factored_dims(tuple(jnp.shape(p)), factored, min_dim_size_to_factor)
            return placeholder(p) if dims is None else num.state_leaf(p, drop_axes=(dims[0],))

        def full(p: Any) -> jax.Array:
            dims = _factored_dims(tuple(jnp.shape(p)), factored, min_dim_size_to_factor)
            return num.state_leaf(p) if dims is None else placeholder(p)

        return FactoredState(
            count=zero_count(),
            v_row=jax.tree.map(rows, params),
            v_col=jax.tree.map(cols, params),
            v=jax.tree.map(full, params),
        )

    def update_fn(
        updates: Updates, state: FactoredState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, FactoredState]:
        del extra_args
        if factored:  # unfactored, the second moment is elementwise
            check_per_leaf(updates, where=where, statistic="factored second moments (means over rows and columns)")
        num.check_updates(updates, where=where, params=params)
        _tree.check_same_structure(state.v, updates, "state.v", "updates", where=where, check_shapes=False)
        # The statistics' shapes differ from the updates' (and placeholders hide mismatches), so
        # compare them with the shapes `init` would give these updates.
        abstract = jax.tree.map(lambda g: jax.ShapeDtypeStruct(jnp.shape(g), g.dtype), updates)
        expected = jax.eval_shape(init_fn, abstract)
        for field in ("v_row", "v_col", "v"):
            _tree.check_same_structure(
                getattr(expected, field),
                getattr(state, field),
                f"{field} for these updates",
                f"state.{field}",
                where=where,
            )
        # Before the offset (a fresh state with `step_offset > 0`) the schedule is held at its first
        # step: `(step + 1)^-0.8` of a negative step would be NaN (as it is in optax).
        step = jnp.maximum(state.count - jnp.asarray(step_offset).astype(jnp.int32), 0)
        beta = decay_rate_fn(step, decay_rate)

        def step_scalars(rdt: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
            b = num.as_dtype(beta, rdt)
            return b, 1 - b, num.as_dtype(epsilon, rdt)

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, vr: jax.Array, vc: jax.Array, v: jax.Array) -> tuple[jax.Array, ...]:
            dtype = num.compute_dtype(g.dtype)
            # Complex gradients: the statistics are of |g|^2, real (stored in the param's dtype, as optax).
            rdt = num.real_dtype(dtype)
            gc = num.cast(g, dtype)
            b, one_minus_b, eps = scalars(rdt)
            g2 = num.cast(num.abs_sq(gc), rdt) + eps
            dims = _factored_dims(g.shape, factored, min_dim_size_to_factor)
            if dims is None:
                v_new = b * num.cast(num.real_part(v), rdt) + one_minus_b * g2
                u = gc * num.cast(jax.lax.rsqrt(v_new), dtype)
                return num.cast(u, g.dtype), vr, vc, num.cast(v_new, v.dtype)
            d_row, d_col = dims
            vr_new = b * num.cast(num.real_part(vr), rdt) + one_minus_b * jnp.mean(g2, axis=d_col)
            vc_new = b * num.cast(num.real_part(vc), rdt) + one_minus_b * jnp.mean(g2, axis=d_row)
            # v_row lost axis d_col: the row axis moves down by one when it came after it.
            row_axis = d_row - 1 if d_row > d_col else d_row
            row_factor = jax.lax.rsqrt(vr_new / jnp.mean(vr_new, axis=row_axis, keepdims=True))
            col_factor = jax.lax.rsqrt(vc_new)
            scale = num.cast(jnp.expand_dims(row_factor, d_col) * jnp.expand_dims(col_factor, d_row), dtype)
            return num.cast(gc * scale, g.dtype), num.cast(vr_new, vr.dtype), num.cast(vc_new, vc.dtype), v

        out = jax.tree.map(leaf, updates, state.v_row, state.v_col, state.v)
        new_updates, v_row, v_col, v = num.unzip(updates, out, 4)
        return new_updates, FactoredState(count=safe_increment(state.count), v_row=v_row, v_col=v_col, v=v)

    return GradientTransformation(init_fn, update_fn)


def _rms(x: jax.Array) -> jax.Array:
    return num.sqrt_of_squares(num.sum_of_squares(x) / x.size)


def scale_by_param_block_rms(min_scale: Any = 1e-3) -> GradientTransformation:
    """Multiplies each leaf's update by the RMS of that leaf's params (at least ``min_scale``).

    .. math:: u_t = g_t \\cdot \\max(\\operatorname{rms}(\\theta_t), s_{min})

    Used by Adafactor's ``multiply_by_parameter_scale``; each leaf is one block.

    Args:
      min_scale: :math:`s_{min} \\ge 0`. Default 1e-3.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``min_scale`` is negative; (while tracing) when called without params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_param_block_rms()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # times the RMS of w, sqrt(2.5)
      [0.7906, -0.7906]

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    return scale_by_param_statistic(_rms, min_scale, where="scale_by_param_block_rms")


def clip_by_block_rms(threshold: Any) -> GradientTransformation:
    """Scales each leaf's update down so that its RMS is at most ``threshold``.

    .. math:: u_t = g_t / \\max\\!\\left(1, \\operatorname{rms}(g_t) / d\\right)

    ``threshold=0`` maps every non-zero leaf to zero and keeps zero leaves zero (finite).

    Args:
      threshold: :math:`d \\ge 0`.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``threshold`` is negative or NaN.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.clip_by_block_rms(threshold=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the leaf's RMS 0.5 is scaled down to 0.1
      [0.1, -0.1]

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    where = "clip_by_block_rms"
    _checks.check_non_negative("threshold", threshold, where=where)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="the RMS of each update")
        num.check_updates(updates, where=where, params=params)

        limit = num.per_dtype(lambda dtype: num.as_dtype(threshold, dtype))

        def leaf(g: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            r = _rms(g)
            d = limit(r.dtype)
            over = r > d
            factor = jnp.where(over, d / jnp.where(over, r, jnp.ones_like(r)), jnp.ones_like(r))
            factor = num.nan_unless_finite(factor, r)  # d / inf = 0 would silently zero the leaf
            return num.cast(num.cast(g, dtype) * num.cast(factor, dtype), g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(num.empty_init("clip_by_block_rms"), update_fn)


class ScaleBySM3State(NamedTuple):
    """State of :func:`scale_by_sm3`: per-leaf lists of per-dimension accumulators, and the momentum."""

    mu: Any
    nu: Any


def _sm3_accumulators(p: Any) -> list[jax.Array]:
    ndim = len(jnp.shape(p))
    if not ndim:  # a scalar leaf keeps one scalar accumulator
        return [num.state_leaf(p)]
    # Accumulator i keeps dim i of the param (and that dim's sharding), every other dim reduced.
    return [num.state_leaf(p, drop_axes=tuple(j for j in range(ndim) if j != i)) for i in range(ndim)]


def scale_by_sm3(b1: Any = 0.9, b2: Any = 1.0, eps: Any = 1e-8) -> GradientTransformation:
    """Rescales updates by SM3: Adagrad with a memory of one accumulator per row, column, ... .

    For a leaf of rank :math:`k`, with accumulators :math:`a^{(i)}` along each dimension :math:`i`:

    .. math::
       \\nu_t[j] = c\\, g_t[j]^2 + b_2 \\min_i a^{(i)}_{t-1}[j_i], \\qquad
       a^{(i)}_t[r] = \\max_{j : j_i = r} \\nu_t[j],

       m_t = b_1 m_{t-1} + (1 - b_1)\\, g_t\\, \\nu_t^{-1/2},

    with :math:`c = 1 - b_2` when :math:`b_2 \\ne 1` and :math:`c = 1` otherwise (the paper's plain sum),
    :math:`\\nu^{-1/2} = (\\nu + \\epsilon)^{-1/2}` where :math:`\\nu > 0` and 0 elsewhere. The update is
    :math:`m_t`. Rank-1 leaves keep the full accumulator; scalar leaves keep one scalar accumulator.

    Args:
      b1: momentum decay, in ``[0, 1)``. Default 0.9.
      b2: decay of the accumulators, in ``[0, 1]``; 1 is the paper's sum. Default 1.
      eps: added inside the inverse root, ``>= 0``. Default 1e-8.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScaleBySM3State`.

    Raises:
      ValueError: when an argument lies outside its range, or (at init) for complex params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_sm3()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.1, -0.1]

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", https://arxiv.org/abs/1901.11150, 2019.
    """
    where = "scale_by_sm3"
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where)
    _checks.check_non_negative("eps", eps, where=where)

    def init_fn(params: Params) -> ScaleBySM3State:
        check_per_leaf(params, where=where, statistic="one accumulator per dim (a maximum over the others)")
        num.check_init_params(params, where="scale_by_sm3", allow_complex=False)
        for leaf in jax.tree.leaves(params):
            if jnp.issubdtype(leaf_dtype(leaf), jnp.complexfloating):
                raise ValueError(f"{where} does not support complex params.")
        mu = jax.tree.map(_sm3_accumulators, params)
        return ScaleBySM3State(mu=mu, nu=num.state_zeros(params))

    def update_fn(
        updates: Updates, state: ScaleBySM3State, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleBySM3State]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="one accumulator per dim (a maximum over the others)")
        num.check_updates(
            updates, where=where, state_tree=state.nu, state_name="state.nu", params=params, allow_complex=False
        )

        def step_scalars(dt: Any) -> tuple[jax.Array, ...]:
            beta1, beta2 = num.as_dtype(b1, dt), num.as_dtype(b2, dt)
            coeff = jnp.where(beta2 != 1, num.as_dtype(1 - b2, dt), jnp.ones_like(beta2))
            return beta1, beta2, coeff, num.as_dtype(eps, dt), num.as_dtype(1 - b1, dt)

        scalars = num.per_dtype(step_scalars)

        def leaf(g: jax.Array, acc: list[jax.Array], m: jax.Array) -> tuple[Any, ...]:
            dt = num.compute_dtype(g.dtype)
            beta1, beta2, coeff, eps_, one_minus_b1 = scalars(dt)
            g_ = num.cast(g, dt)
            if g.ndim < 2:
                prior = acc[0].astype(dt)
            else:
                expanded = [
                    jnp.reshape(a.astype(dt), [1] * i + [g.shape[i]] + [1] * (g.ndim - i - 1))
                    for i, a in enumerate(acc)
                ]
                prior = functools.reduce(jnp.minimum, expanded)
            nu = coeff * num.abs_sq(g_) + beta2 * prior
            inv_root = jnp.where(nu > 0, jax.lax.rsqrt(nu + eps_), jnp.zeros_like(nu))
            m_new = one_minus_b1 * (g_ * inv_root) + beta1 * num.cast(m, dt)
            if g.ndim < 2:
                new_acc = [nu.astype(acc[0].dtype)]
            else:
                new_acc = [
                    jnp.max(nu, axis=tuple(j for j in range(g.ndim) if j != i)).astype(a.dtype)
                    for i, a in enumerate(acc)
                ]
            return m_new.astype(g.dtype), new_acc, m_new.astype(m.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = num.unzip(updates, out, 3)
        return u, ScaleBySM3State(mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)
