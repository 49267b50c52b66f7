"""Fromage's contraction of the params toward zero, the step that keeps its weights' norms bounded."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradtx import _checks
from gradtx._base import (
    EmptyState,
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    Updates,
    safe_increment,
    zero_count,
)
from gradtx.transforms import _parity_common as c

__all__ = ["FromageContractionState", "fromage_contraction", "fromage_multiplier"]


class FromageContractionState(NamedTuple):
    """State of :func:`fromage_contraction` with a scheduled learning rate: the step count."""

    count: jax.Array


def fromage_multiplier(learning_rate: Any) -> Any:
    """Fromage's :math:`1 / \\sqrt{1 + \\eta^2}` (numbers stay Python floats, arrays stay arrays)."""
    return 1 / (1 + learning_rate**2) ** 0.5


def fromage_contraction(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """Adds :math:`(1/\\sqrt{1 + \\eta_t^2} - 1)\\, x` to the updates (needs ``params``).

    After the rest of :func:`gradtx.fromage` this makes the step
    :math:`x \\leftarrow (x - \\eta\\, \\text{trust}(g)) / \\sqrt{1 + \\eta^2}`.
    """
    where = "fromage"
    scheduled = callable(learning_rate)

    def init_fn(params: Params) -> Any:
        del params
        return FromageContractionState(count=zero_count()) if scheduled else EmptyState()

    def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args: Any) -> tuple[Updates, Any]:
        del extra_args
        c.check_updates(updates, where=where, params=params, need_params=True)
        if scheduled:
            lr = _checks.evaluate_scalar_or_schedule(learning_rate, state.count, name="learning_rate", where=where)
            state = FromageContractionState(count=safe_increment(state.count))
        else:
            lr = learning_rate
        coefficient = fromage_multiplier(lr) - 1

        def leaf(g: jax.Array, x: jax.Array) -> jax.Array:
            dt = c.compute_dtype(g.dtype)
            return (g.astype(dt) + c.hp(coefficient, dt) * x.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates, params), state

    return GradientTransformation(init_fn, update_fn)
