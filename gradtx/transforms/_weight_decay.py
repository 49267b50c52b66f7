"""Weight decay added to the updates (decoupled when placed before the learning rate)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import (
    EmptyState,
    GradientTransformation,
    MaskOrFn,
    Params,
    ScalarOrSchedule,
    Updates,
    safe_increment,
    zero_count,
)
from gradtx._masking import masked

__all__ = ["WeightDecaySchedule", "add_decayed_weights"]


class WeightDecaySchedule(NamedTuple):
    """State of :func:`add_decayed_weights` with a scheduled ``weight_decay``: the step count."""

    count: jax.Array


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """Adds the params times a (possibly scheduled) weight decay to the updates.

    .. math:: u_t = g_t + \\lambda_t\\, \\theta_t

    Placed after an adaptive scaling and before :func:`scale_by_learning_rate` (as in
    :func:`gradtx.adamw`), this is decoupled weight decay, multiplied by the learning rate
    (torch's ``AdamW`` does the same). A schedule is evaluated at 0, 1, 2, ...

    Args:
      weight_decay: :math:`\\lambda \\ge 0`, or a schedule ``step -> scalar``. Default 0.
      mask: ``None`` (decay every leaf), a pytree of bools (or a prefix of one) with the
        params' structure, or a callable ``params -> mask``; see :func:`gradtx.masked`.

    Returns:
      A :class:`~gradtx.GradientTransformation`: :class:`~gradtx.EmptyState` for a constant
      decay, :class:`WeightDecaySchedule` for a schedule, wrapped in
      :class:`gradtx.MaskedState` when ``mask`` is given.

    Raises:
      ValueError: when ``weight_decay`` is negative or NaN; (while tracing) when called
        without params or when updates and params differ, naming the path.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"kernel": jnp.array([2.0]), "bias": jnp.array([2.0])}
      >>> tx = gradtx.add_decayed_weights(0.5, mask={"kernel": True, "bias": False})
      >>> updates, _ = tx.update({"kernel": jnp.zeros(1), "bias": jnp.zeros(1)}, tx.init(params), params)
      >>> float(updates["kernel"][0]), float(updates["bias"][0])  # no decay on the bias
      (1.0, 0.0)

    References:
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    _checks.check_scalar_or_schedule("weight_decay", weight_decay, where="add_decayed_weights", low=0.0)
    tx = add_scaled_params(weight_decay, name="weight_decay", where="add_decayed_weights")
    return tx if mask is None else masked(tx, mask)


def add_scaled_params(coefficient: ScalarOrSchedule, *, name: str, where: str) -> GradientTransformation:
    """``u_t = g_t + c_t * params`` for any real (or scheduled) ``c_t``, unvalidated (private).

    :func:`add_decayed_weights` validates ``c >= 0`` and calls this; Fromage's contraction
    uses it with a negative coefficient. ``name`` and ``where`` go into error messages.
    """
    scheduled = callable(coefficient)

    def init_fn(params: Params) -> EmptyState | WeightDecaySchedule:
        num.check_init_params(params, where=where)
        return WeightDecaySchedule(count=zero_count()) if scheduled else EmptyState()

    def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Updates, Any]:
        del extra_args
        num.check_updates(updates, where=where, params=params, need_params=True)
        if scheduled:
            value = _checks.evaluate_scalar_or_schedule(coefficient, state.count, name=name, where=where)
            new_state = WeightDecaySchedule(count=safe_increment(state.count))
        else:
            value, new_state = coefficient, state

        factor = num.per_dtype(lambda dtype: num.as_dtype(value, dtype))

        def leaf(g: jax.Array, p: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            return num.cast(num.cast(g, dtype) + factor(dtype) * num.cast(p, dtype), g.dtype)

        return jax.tree.map(leaf, updates, params), new_state

    return GradientTransformation(init_fn, update_fn)
