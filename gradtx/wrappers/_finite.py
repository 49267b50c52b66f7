"""Robustness to non-finite gradients: ``apply_if_finite`` and ``zero_nans``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_gradient_transformation,
    safe_increment,
    zero_count,
)
from gradtx._stack_view import check_whole_tree

__all__ = ["ApplyIfFiniteState", "ZeroNansState", "all_finite", "apply_if_finite", "zero_nans"]


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool: ``True`` iff every entry of every leaf is finite (no NaN, no +-Inf).

    An empty tree is finite.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> bool(gradtx.all_finite({"a": jnp.ones(2), "b": jnp.array([1.0, jnp.inf])}))
      False
    """
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
    result = jnp.array(True)
    for x in leaves:
        result = jnp.logical_and(result, jnp.all(jnp.isfinite(x)))
    return result


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite`.

    Attributes:
      notfinite_count: consecutive non-finite steps so far (int32); reset to 0 by a finite step.
      last_finite: whether the last step's updates were all finite (bool).
      total_notfinite: non-finite steps since ``init`` (int32); never reset.
      inner_state: the wrapped transform's state.
    """

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


def apply_if_finite(inner: GradientTransformation, max_consecutive_errors: int) -> GradientTransformation:
    """Skips steps whose updates contain a NaN or an Inf, up to a number of consecutive ones.

    With ``finite_t = all(isfinite(g_t))`` and ``c_t`` the consecutive non-finite count::

        c_t = 0 if finite_t else c_{t-1} + 1
        (u_t, s_t) = inner.update(g_t, s_{t-1}) if finite_t or c_t > max_consecutive_errors
                     else (0, s_{t-1})

    A skipped step returns zero updates and leaves the inner state untouched, so applying
    it leaves the params unchanged. After more than ``max_consecutive_errors`` non-finite
    steps in a row the wrapper gives up and lets the inner transform see the bad updates.
    The inner update is evaluated under ``lax.cond``, so a skipped step costs nothing.

    Args:
      inner: the transform to protect.
      max_consecutive_errors: how many non-finite steps in a row are skipped (int >= 0).

    Returns:
      A :class:`GradientTransformation` with :class:`ApplyIfFiniteState`.

    Raises:
      TypeError: when ``inner`` is not a transform or ``max_consecutive_errors`` is not an int.
      ValueError: when ``max_consecutive_errors < 0``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones(2)}
      >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=3)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.nan])}, state, params)
      >>> [float(x) for x in updates["w"]], int(state.notfinite_count)  # the step is skipped
      ([0.0, 0.0], 1)
    """
    where = "apply_if_finite"
    inner = as_gradient_transformation(inner, where=f"{where}: `inner`")
    max_consecutive_errors = _checks.int_hyperparam(
        "max_consecutive_errors", max_consecutive_errors, where=where, low=0, high=_checks.INT32_MAX
    )

    def init_fn(params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=zero_count(),
            inner_state=inner.init(params),
        )

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ApplyIfFiniteState]:
        _checks.check_state_type(state, ApplyIfFiniteState, where=where)
        check_whole_tree(
            updates,
            where=where,
            statistic="whether every update is finite",
            outside="apply_if_finite(stacked(inner, per_leaf=True), max_consecutive_errors)",
        )
        isfinite = all_finite(updates)
        notfinite_count = jnp.where(isfinite, zero_count(), safe_increment(state.notfinite_count))
        total_notfinite = jnp.where(isfinite, state.total_notfinite, safe_increment(state.total_notfinite))

        # The arrays go into the branches as operands, not closures: inside a branch they are
        # then tracers, whose `zeros_like` keeps their sharding type (explicit mode), which
        # `lax.cond` compares. (jax 0.10's `zeros_like` of a closed-over committed array drops it.)
        def apply(operands: Any) -> Any:
            u, s, p = operands
            return inner.update(u, s, p, **extra_args)

        def skip(operands: Any) -> Any:
            u, s, _ = operands
            return jax.tree.map(jnp.zeros_like, u), s

        accept = jnp.logical_or(isfinite, notfinite_count > max_consecutive_errors)
        new_updates, new_inner = jax.lax.cond(accept, apply, skip, (updates, state.inner_state, params))
        return new_updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=isfinite,
            total_notfinite=total_notfinite,
            inner_state=new_inner,
        )

    return GradientTransformation(init_fn, update_fn)


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans`.

    Attributes:
      found_nan: a tree with the params' structure of scalar bools, ``True`` where the last
        update of that leaf held a NaN. Informational only.
    """

    found_nan: Any


def zero_nans() -> GradientTransformation:
    """Replaces NaN entries of the updates by zero and records which leaves had any.

    ``u_i <- 0 if isnan(u_i) else u_i``; infinities pass unchanged.

    Returns:
      A :class:`GradientTransformation` with :class:`ZeroNansState`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.zero_nans()
      >>> updates, state = tx.update({"w": jnp.array([jnp.nan, 0.5])}, tx.init(params), params)
      >>> updates["w"], bool(state.found_nan["w"])
      (Array([0. , 0.5], dtype=float32), True)
    """

    def init_fn(params: Params) -> ZeroNansState:
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.array(False, jnp.bool_), params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ZeroNansState]:
        del params, extra_args
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        cleaned = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return cleaned, ZeroNansState(found_nan=found)

    return GradientTransformation(init_fn, update_fn)
