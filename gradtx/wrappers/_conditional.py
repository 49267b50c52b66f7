"""Step-conditional wrappers: run the inner transform only when a condition on the step holds."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

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

__all__ = [
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "conditionally_mask",
    "conditionally_transform",
]


class ConditionFn(Protocol):
    """``fn(step, **extra_args) -> bool scalar``: whether the inner transform runs at ``step``."""

    def __call__(self, step: Any, **extra_args: Any) -> Any: ...


class ConditionallyTransformState(NamedTuple):
    """State of :func:`conditionally_transform` (field order as in optax).

    Attributes:
      inner_state: the wrapped transform's state.
      step: calls to ``update`` so far (int32).
    """

    inner_state: Any
    step: Any


class ConditionallyMaskState(NamedTuple):
    """State of :func:`conditionally_mask` (field order as in optax).

    Attributes:
      step: calls to ``update`` so far (int32).
      inner_state: the wrapped transform's state.
    """

    step: Any
    inner_state: Any


def _run_if(
    inner: GradientTransformation,
    should_transform_fn: Any,
    forward_extra_args: bool,
    zero_when_skipped: bool,
    updates: Updates,
    step: Any,
    inner_state: Any,
    params: Params | None,
    extra_args: dict[str, Any],
    where: str,
) -> tuple[Updates, Any]:
    condition = should_transform_fn(step, **(extra_args if forward_extra_args else {}))
    condition = jnp.asarray(condition)
    if condition.shape != ():
        raise ValueError(f"{where}: `should_transform_fn` must return a scalar, got shape {condition.shape}.")

    # The arrays go into the branches as operands, not closures: inside a branch they are then
    # tracers, whose `zeros_like` keeps their sharding type (explicit mode), which `lax.cond`
    # compares. (jax 0.10's `zeros_like` of a closed-over committed array drops it.)
    def run(ops: Any) -> tuple[Updates, Any]:
        u, s, p = ops
        new_updates, new_state = inner.update(u, s, p, **extra_args)
        new_state = jax.tree.map(lambda n, o: jnp.asarray(n).astype(jnp.asarray(o).dtype), new_state, s)
        return new_updates, new_state

    def skip(ops: Any) -> tuple[Updates, Any]:
        u, s, _ = ops
        return (jax.tree.map(jnp.zeros_like, u) if zero_when_skipped else u), s

    return jax.lax.cond(condition.astype(jnp.bool_), run, skip, (updates, inner_state, params))


def conditionally_transform(
    inner: GradientTransformation, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> GradientTransformation:
    """Runs ``inner`` at the steps where ``should_transform_fn(step)`` holds; else passes through.

    ``(u_t, s_t) = inner.update(g_t, s_{t-1}) if cond(t) else (g_t, s_{t-1})`` with ``t`` the
    number of earlier calls. The inner update is under ``lax.cond``: skipped steps cost nothing.

    Args:
      inner: the wrapped transform; it must return updates with the input's structure and dtypes.
      should_transform_fn: ``fn(step, **extra_args) -> bool scalar`` (``step`` is int32).
      forward_extra_args: also pass the update's extra keyword arguments to the condition.

    Returns:
      A :class:`GradientTransformation` with :class:`ConditionallyTransformState`.

    Raises:
      TypeError: when ``inner`` is not a transform or ``should_transform_fn`` is not callable.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.conditionally_transform(gradtx.scale(2.0), lambda step: step >= 1)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     print(updates["w"])  # passed through at step 0, transformed from step 1
      [ 0.5 -0.5]
      [ 1. -1.]
    """
    where = "conditionally_transform"
    inner = as_gradient_transformation(inner, where=f"{where}: `inner`")
    _checks.check_callable("should_transform_fn", should_transform_fn, where=where)
    _checks.check_bool("forward_extra_args", forward_extra_args, where=where)

    def init_fn(params: Params) -> ConditionallyTransformState:
        return ConditionallyTransformState(inner_state=inner.init(params), step=zero_count())

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ConditionallyTransformState]:
        _checks.check_state_type(state, ConditionallyTransformState, where=where)
        new_updates, new_inner = _run_if(
            inner, should_transform_fn, forward_extra_args, False, updates, state.step, state.inner_state, params,
            extra_args, where,
        )  # fmt: skip
        return new_updates, ConditionallyTransformState(inner_state=new_inner, step=safe_increment(state.step))

    return GradientTransformation(init_fn, update_fn)


def conditionally_mask(
    inner: GradientTransformation, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> GradientTransformation:
    """Runs ``inner`` at the steps where ``should_transform_fn(step)`` holds; else zero updates.

    ``(u_t, s_t) = inner.update(g_t, s_{t-1}) if cond(t) else (0, s_{t-1})`` with ``t`` the
    number of earlier calls. The inner update is under ``lax.cond``.

    Args:
      inner: the wrapped transform; it must return updates with the input's structure and dtypes.
      should_transform_fn: ``fn(step, **extra_args) -> bool scalar`` (``step`` is int32).
      forward_extra_args: also pass the update's extra keyword arguments to the condition.

    Returns:
      A :class:`GradientTransformation` with :class:`ConditionallyMaskState`.

    Raises:
      TypeError: when ``inner`` is not a transform or ``should_transform_fn`` is not callable.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.conditionally_mask(gradtx.sgd(0.1), lambda step: step % 2 == 1)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     print([round(float(u), 4) for u in updates["w"]])  # zero at step 0, sgd at step 1
      [0.0, 0.0]
      [-0.05, 0.05]
    """
    where = "conditionally_mask"
    inner = as_gradient_transformation(inner, where=f"{where}: `inner`")
    _checks.check_callable("should_transform_fn", should_transform_fn, where=where)
    _checks.check_bool("forward_extra_args", forward_extra_args, where=where)

    def init_fn(params: Params) -> ConditionallyMaskState:
        return ConditionallyMaskState(step=zero_count(), inner_state=inner.init(params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ConditionallyMaskState]:
        _checks.check_state_type(state, ConditionallyMaskState, where=where)
        new_updates, new_inner = _run_if(
            inner, should_transform_fn, forward_extra_args, True, updates, state.step, state.inner_state, params,
            extra_args, where,
        )  # fmt: skip
        return new_updates, ConditionallyMaskState(step=safe_increment(state.step), inner_state=new_inner)

    return GradientTransformation(init_fn, update_fn)
