"""Sophia: momentum divided by a clipped, lazily refreshed Hessian-diagonal estimate (``optax.contrib.sophia``).

The Hessian-diagonal estimator is a transform of its own (``hessian_diagonal_fn``): Hutchinson's
(Sophia-H, optax's default) or any other, such as the Gauss-Newton-Bartlett estimate of Sophia-G,
supplied through ``update``'s extra arguments.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, as_gradient_transformation, safe_increment, zero_count
from gradtx._combine import chain
from gradtx._stack_view import check_outside
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate
from gradtx.tree import random_like


class HutchinsonState(NamedTuple):
    """State of :func:`hutchinson_estimator_diag_hessian`: the PRNG key of the next draw."""

    key: jax.Array


def hutchinson_estimator_diag_hessian(random_seed: Any = None) -> GradientTransformation:
    """Hutchinson's unbiased estimate of the Hessian diagonal: :math:`\\hat h = u \\odot (H u)`, :math:`u` Rademacher.

    ``update(updates, state, params, obj_fn=f)`` ignores ``updates`` and returns :math:`\\hat h`
    for the Hessian :math:`H` of ``f`` at ``params`` (one Hessian-vector product, forward over
    reverse mode). ``f`` takes the params only and returns the scalar loss.

    Args:
      random_seed: a ``jax.random.PRNGKey``; ``None`` uses ``PRNGKey(0)``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`HutchinsonState`.

    Raises:
      ValueError: (in ``update``) without ``params``.
      TypeError: (in ``update``) without ``obj_fn``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib import hutchinson_estimator_diag_hessian
      >>> est = hutchinson_estimator_diag_hessian()
      >>> params = jnp.array([1.0, 2.0])
      >>> h, _ = est.update(None, est.init(params), params, obj_fn=lambda p: jnp.sum(3.0 * p**2))
      >>> h  # exact for a diagonal Hessian
      Array([6., 6.], dtype=float32)
    """
    where = "hutchinson_estimator_diag_hessian"

    def init_fn(params: Params) -> HutchinsonState:
        del params
        key = jax.random.PRNGKey(0) if random_seed is None else random_seed
        # A copy: never the caller's key, and typed on the mesh under `jax.set_mesh` as the next key is.
        return HutchinsonState(key=jnp.array(key, copy=True))

    def update_fn(
        updates: Updates, state: HutchinsonState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, HutchinsonState]:
        del updates
        _tree.require_params(params, where=where)
        _checks.require_extra_args(
            extra_args, ["obj_fn"], where=where, call="update(updates, state, params, obj_fn=loss_of_params)"
        )
        check_outside(
            params,
            where=where,
            needs="differentiates `obj_fn` at the params",
            instead="run sophia (and this estimator) without stacked or flatten",
        )
        key, subkey = jax.random.split(state.key)
        signs = random_like(subkey, params, jax.random.rademacher, dtype=jnp.float32)
        signs = jax.tree.map(lambda s, p: s.astype(p.dtype), signs, params)
        hvp = jax.jvp(jax.grad(extra_args["obj_fn"]), (params,), (signs,))[1]
        return jax.tree.map(lambda h, s: h * s, hvp, signs), HutchinsonState(key=key)

    return GradientTransformation(init_fn, update_fn)


class SophiaState(NamedTuple):
    """State of :func:`sophia`'s scaling (optax's ``SophiaState``).

    Attributes:
      count: steps taken (scalar int32, saturating).
      mu: the gradient EMA :math:`m`, shaped like the params.
      nu: the Hessian-diagonal EMA :math:`h`, shaped like the params.
      hessian_fn_state: the estimator's state.
    """

    count: jax.Array
    mu: Any
    nu: Any
    hessian_fn_state: Any


def _scale_by_sophia(
    b1: Any,
    b2: Any,
    eps: Any,
    gamma: Any,
    clip_threshold: Any,
    update_interval: int,
    hessian_diagonal_fn: Any,
    mu_dtype: Any,
    verbose: bool,
    print_win_rate_every_n_steps: int,
    where: str,
) -> GradientTransformation:
    hess = as_gradient_transformation(hessian_diagonal_fn, where=f"{where}: `hessian_diagonal_fn`")

    def init_fn(params: Params) -> SophiaState:
        num.check_init_params(params, where=where, allow_complex=False)
        return SophiaState(
            count=zero_count(),
            mu=num.state_zeros(params, mu_dtype),
            nu=num.state_zeros(params),
            hessian_fn_state=hess.init(params),
        )

    def update_fn(
        updates: Updates, state: SophiaState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, SophiaState]:
        _checks.check_state_type(state, SophiaState, where=where)
        num.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, need_params=True
        )
        count = safe_increment(state.count)

        def leaf(g: jax.Array, mu: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(g.dtype)
            m = num.as_dtype(b1, dtype) * mu.astype(dtype) + num.one_minus(b1, dtype) * g.astype(dtype)
            m_hat = m / num.bias_correction(b1, count).astype(dtype)
            u = m_hat / jnp.maximum(num.as_dtype(gamma, dtype) * nu.astype(dtype), num.as_dtype(eps, dtype))
            if clip_threshold is not None:
                c = num.as_dtype(clip_threshold, dtype)
                u = jnp.clip(u, -c, c)
            return u.astype(g.dtype), m.astype(mu.dtype)

        new_updates, mu = num.unzip(updates, jax.tree.map(leaf, updates, state.mu, state.nu), 2)
        if verbose and clip_threshold is not None:
            inside = sum(
                jnp.sum(jnp.abs(u) < num.as_dtype(clip_threshold, u.dtype)) for u in jax.tree.leaves(new_updates)
            )
            win_rate = inside / max(1, sum(u.size for u in jax.tree.leaves(new_updates)))
            jax.lax.cond(
                count % print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia optimizer win rate: {}", win_rate),
                lambda: None,
            )

        def refresh(hess_state: Any, nu: Any) -> tuple[Any, Any]:
            diag, hess_state = hess.update(updates, hess_state, params, **extra_args)
            _tree.check_same_structure(nu, diag, "params", "the Hessian diagonal", where=where)

            def ema(h: jax.Array, n: jax.Array) -> jax.Array:
                dtype = num.compute_dtype(n.dtype)
                new = num.as_dtype(b2, dtype) * n.astype(dtype) + num.one_minus(b2, dtype) * h.astype(dtype)
                return new.astype(n.dtype)

            return hess_state, jax.tree.map(ema, diag, nu)

        hess_state, nu = jax.lax.cond(
            state.count % update_interval == 0, refresh, lambda h, n: (h, n), state.hessian_fn_state, state.nu
        )
        return new_updates, SophiaState(count=count, mu=mu, nu=nu, hessian_fn_state=hess_state)

    return GradientTransformation(init_fn, update_fn)


def sophia(
    learning_rate: Any,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    weight_decay_mask: Any = None,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    """Sophia: the gradient EMA divided by a Hessian-diagonal EMA refreshed every k steps, clipped per entry.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\quad
       u_t = \\operatorname{clip}\\Big(\\frac{m_t / (1-\\beta_1^t)}{\\max(\\gamma h_{t-1}, \\epsilon)}, \\rho\\Big)
       + \\lambda \\theta_t, \\quad \\theta_{t+1} = \\theta_t - \\eta u_t, \\\\
       h_t = \\beta_2 h_{t-1} + (1-\\beta_2) \\hat h(\\theta_t) \\text{ if } (t-1) \\bmod k = 0,
       \\text{ else } h_t = h_{t-1},

    with :math:`\\rho =` ``clip_threshold`` and :math:`k =` ``update_interval``. The estimate
    :math:`\\hat h` comes from ``hessian_diagonal_fn``, a transform whose ``update(grads, state,
    params, **extra_args)`` returns it; ``sophia``'s ``update`` passes its extra arguments on.
    The default is Hutchinson's estimator (Sophia-H), which needs ``obj_fn=loss_of_params``.
    Sophia-G's Gauss-Newton-Bartlett estimate (the batch size times the squared gradient of the
    loss on labels sampled from the model) is any transform returning it, e.g. one that returns
    an extra argument as below. As in optax, :math:`m` is bias-corrected and the refreshed
    :math:`h` serves from the next step (the paper refreshes it first and has no bias correction).

    Args:
      learning_rate: :math:`\\eta`, a scalar or a schedule.
      b1: gradient EMA decay in ``[0, 1)``. Default 0.965.
      b2: Hessian EMA decay in ``[0, 1)`` (per refresh). Default 0.99.
      eps: floor of the denominator, ``>= 0``. Default 1e-8.
      weight_decay: :math:`\\lambda` (multiplied by :math:`\\eta`). Default 1e-4.
      weight_decay_mask: a mask (or callable) for the weight decay.
      gamma: :math:`\\gamma >= 0`, the Hessian's scale. Default 0.01.
      clip_threshold: :math:`\\rho > 0`, or ``None`` for no clipping. Default 1.
      update_interval: :math:`k >= 1`. Default 10.
      hessian_diagonal_fn: the estimator; ``None`` is :func:`hutchinson_estimator_diag_hessian`.
      mu_dtype: dtype of :math:`m`; ``None`` uses each param's dtype.
      verbose: print the fraction of unclipped entries (the "win rate") with ``jax.debug.print``.
      print_win_rate_every_n_steps: how often, ``>= 1`` when ``verbose``. Default 0.

    Returns:
      A :class:`~gradtx.GradientTransformation` (a ``chain``) whose first state is :class:`SophiaState`.

    Raises:
      ValueError: for a hyperparameter out of range (named); (in ``update``) without ``params``,
        or when the estimate's structure differs from the params'.
      TypeError: (in ``update``) when the estimator's extra argument (Hutchinson's ``obj_fn``) is missing.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> from gradtx.contrib import sophia
      >>> def supplied(updates, state, params=None, *, hessian_diag=None, **extra):
      ...     return hessian_diag, state  # an estimate computed by the caller (e.g. Sophia-G's)
      >>> estimator = gradtx.GradientTransformation(gradtx.init_empty_state, supplied)
      >>> tx = sophia(0.5, b1=0.0, b2=0.0, gamma=1.0, weight_decay=0.0, update_interval=1,
      ...             hessian_diagonal_fn=estimator)
      >>> params = jnp.array([1.0, -1.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     grads = jnp.array([100.0, 1.0]) * params  # curvatures 100 and 1
      ...     updates, state = tx.update(grads, state, params, hessian_diag=jnp.array([100.0, 1.0]))
      ...     params = gradtx.apply_updates(params, updates)
      ...     print(params)  # first a clipped step (h is still 0), then both halve: g / h is the same
      [ 0.5 -0.5]
      [ 0.25 -0.25]
      [ 0.125 -0.125]

    References:
      Liu et al., "Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
      Pre-training", https://arxiv.org/abs/2305.14342, 2023.
    """
    where = "sophia"
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where=where)
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    _checks.check_non_negative("gamma", gamma, where=where)
    if clip_threshold is not None:
        _checks.check_positive("clip_threshold", clip_threshold, where=where)
    update_interval = _checks.int_hyperparam(
        "update_interval", update_interval, where=where, low=1, high=_checks.INT32_MAX
    )
    if verbose:
        _checks.check_int("print_win_rate_every_n_steps", print_win_rate_every_n_steps, where=where, low=1)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    if hessian_diagonal_fn is None:
        hessian_diagonal_fn = hutchinson_estimator_diag_hessian()
    return chain(
        _scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
            where,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
