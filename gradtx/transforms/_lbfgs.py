"""The L-BFGS direction: the gradient times a limited-memory inverse-Hessian approximation."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx._stack_view import check_whole_tree
from gradtx.transforms import _tree_math as tm

__all__ = ["ScaleByLBFGSState", "scale_by_lbfgs"]


class ScaleByLBFGSState(NamedTuple):
    """State of :func:`scale_by_lbfgs`.

    Attributes:
      count: int32 number of updates so far.
      params: the params seen at the last update.
      updates: the (incoming) updates seen at the last update.
      diff_params_memory: the last ``memory_size`` differences of params, each leaf stacked along a
        new leading axis of length ``memory_size`` (a ring buffer).
      diff_updates_memory: the matching differences of updates, stacked the same way.
      weights_memory: ``rho_j = 1 / <du_j, dw_j>`` for each slot, shape ``(memory_size,)``.
    """

    count: jax.Array
    params: Params
    updates: Updates
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _two_loop(
    updates: Updates,
    diff_params_memory: Any,
    diff_updates_memory: Any,
    weights: jax.Array,
    gamma: jax.Array,
    newest: jax.Array,
    dtype: Any,
) -> Updates:
    """The two-loop recursion (Nocedal & Wright, Algorithm 7.4): ``P u`` with ``P_0 = gamma I``.

    Slots are visited from the newest (``newest - 1``) back to the oldest, then forward again; empty
    slots hold zeros and a zero weight, so they leave the vector unchanged.
    """
    memory_size = weights.shape[0]
    order = (newest + jnp.arange(memory_size, dtype=jnp.int32)) % memory_size

    def slot(i: jax.Array) -> tuple[Any, Any]:
        return jax.tree.map(lambda m: m[i], diff_params_memory), jax.tree.map(lambda m: m[i], diff_updates_memory)

    def backward(q: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        dw, du = slot(i)
        alpha = weights[i] * tm.real_vdot(dw, q, dtype)
        return tm.add_scale(q, -alpha, du), alpha

    q, alphas = jax.lax.scan(backward, updates, order, reverse=True)
    r = tm.scale(gamma, q)

    def forward(r: Any, i_alpha: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        i, alpha = i_alpha
        dw, du = slot(i)
        beta = weights[i] * tm.real_vdot(du, r, dtype)
        return tm.add_scale(r, alpha - beta, dw), None

    r, _ = jax.lax.scan(forward, r, (order, alphas))
    return r


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True) -> GradientTransformation:
    r"""Multiplies the updates by the L-BFGS approximation of the inverse Hessian.

    With ``dw_j = w_{j+1} - w_j`` and ``du_j = u_{j+1} - u_j`` the last ``m`` differences of params
    and updates (gradients), and ``rho_j = 1 / <du_j, dw_j>``, the approximation is

    .. math::
      P_{k,j+1} = V_j^T P_{k,j} V_j + \rho_j\, dw_j dw_j^T,\quad V_j = I - \rho_j\, du_j dw_j^T,
      \quad P_{k,k-m} = \gamma_k I,

    applied to ``u_k`` by the two-loop recursion. ``gamma_k = <dw_{k-1}, du_{k-1}> / |du_{k-1}|^2``
    when ``scale_init_precond`` (else 1); at the first step it is ``min(1, 1 / |u_0|)``, so the first
    direction has norm at most 1. The output is the direction ``P_k u_k`` (not negated): chain a
    negative scale and a line search after it, as :func:`gradtx.lbfgs` does. Complex params are
    supported (inner products are ``Re <a, b>``).

    Args:
      memory_size: the number ``m`` of past differences kept (default 10); at least 1.
      scale_init_precond: use the scaled identity ``gamma_k I`` as the initial approximation
        (default True).

    Returns:
      A :class:`gradtx.GradientTransformation` with :class:`ScaleByLBFGSState`; ``update`` needs params.

    Raises:
      TypeError: when ``memory_size`` is not an int or ``scale_init_precond`` is not a bool.
      ValueError: when ``memory_size < 1``; in ``update``, when params are missing or the updates do
        not match the params' structure.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_lbfgs(memory_size=3)
      >>> state = tx.init(params)
      >>> updates, state = tx.update(grads, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]  # no curvature pairs yet: the gradient, normalised
      [0.5, -0.5]

    References:
      Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
      https://doi.org/10.1007/BF01589116, 1989.
      Nocedal & Wright, "Numerical Optimization" (Algorithms 7.4 and 7.5),
      https://doi.org/10.1007/978-0-387-40065-5, 2006.
    """
    where = "scale_by_lbfgs"
    _checks.check_bool("scale_init_precond", scale_init_precond, where=where)
    _checks.check_int("memory_size", memory_size, where=where, low=1)
    if not isinstance(scale_init_precond, bool):
        raise TypeError(f"{where}: `scale_init_precond` must be a bool, got {scale_init_precond!r:.40}.")

    def init_fn(params: Params) -> ScaleByLBFGSState:
        num.check_init_params(params, where="scale_by_lbfgs")
        stacked = jax.tree.map(lambda p: num.state_leaf(p, lead_shape=(memory_size,)), params)
        return ScaleByLBFGSState(
            count=zero_count(),
            params=num.state_zeros(params),
            updates=num.state_zeros(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            # The widest enabled float, as optax's state (and the curvature's inner products are
            # sums: at least float32, never the params' bfloat16).
            weights_memory=jnp.zeros((memory_size,), num.default_float()),
        )

    def update_fn(
        updates: Updates, state: ScaleByLBFGSState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByLBFGSState]:
        del extra_args
        check_whole_tree(updates, where=where, statistic="inner products of the curvature pairs")
        _tree.require_params(params, where=where)
        _tree.check_same_structure(params, updates, "params", "updates", where=where)
        _tree.check_same_structure(params, state.params, "params", "state.params", where=where)
        _tree.check_float_leaves(params, "params", where=where)
        # Integer gradients would be cast to the params' dtype below, hiding a caller's bug.
        _tree.check_float_leaves(updates, "updates", where=where)
        dtype = state.weights_memory.dtype
        count = state.count
        first = count == 0
        newest = (count % memory_size).astype(jnp.int32)
        slot = ((count - 1) % memory_size).astype(jnp.int32)

        updates = tm.cast_like(updates, params)
        dw = jax.tree.map(lambda p, q: jnp.where(first, jnp.zeros_like(p), p - q), params, state.params)
        du = jax.tree.map(lambda u, v: jnp.where(first, jnp.zeros_like(u), u - v), updates, state.updates)
        curvature = tm.real_vdot(du, dw, dtype)
        # A zero curvature pair (e.g. the first step, or a repeated point) gets weight 0 and drops out.
        rho = jnp.where(curvature == 0, jnp.zeros([], dtype), 1.0 / curvature)
        rho = jnp.where(first, jnp.zeros([], dtype), rho)
        # jnp.asarray: a state restored untyped (flax's from_bytes) holds NumPy arrays, which lack `.at`.
        dw_memory = jax.tree.map(lambda m, d: jnp.asarray(m).at[slot].set(d), state.diff_params_memory, dw)
        du_memory = jax.tree.map(lambda m, d: jnp.asarray(m).at[slot].set(d), state.diff_updates_memory, du)
        weights = jnp.asarray(state.weights_memory).at[slot].set(rho)

        if scale_init_precond:
            du_sq = num.tree_sum_of_squares(du).astype(dtype)
            gamma = jnp.where(du_sq > 0, curvature / du_sq, jnp.ones([], dtype))
            norm = num.tree_l2_norm(jax.lax.stop_gradient(updates)).astype(dtype)
            gamma = jnp.where(first, jnp.minimum(1.0, 1.0 / norm), gamma)
        else:
            gamma = jnp.ones([], dtype)

        direction = _two_loop(updates, dw_memory, du_memory, weights, gamma, newest, dtype)
        new_state = ScaleByLBFGSState(
            count=safe_increment(count),
            params=params,
            updates=updates,
            diff_params_memory=dw_memory,
            diff_updates_memory=du_memory,
            weights_memory=weights,
        )
        return direction, new_state

    return GradientTransformation(init_fn, update_fn)
