"""Fromage's contraction of the params toward zero, the step that keeps its weights' norms bounded."""

from __future__ import annotations

from typing import Any

from gradtx._base import GradientTransformation, ScalarOrSchedule
from gradtx.transforms._weight_decay import add_scaled_params

__all__ = ["fromage_contraction", "fromage_multiplier"]


def fromage_multiplier(learning_rate: Any) -> Any:
    """Fromage's :math:`1 / \\sqrt{1 + \\eta^2}` (numbers stay Python floats, arrays stay arrays)."""
    return 1 / (1 + learning_rate**2) ** 0.5


def fromage_contraction(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """Adds :math:`(1/\\sqrt{1 + \\eta_t^2} - 1)\\, x` to the updates (needs ``params``).

    After the rest of :func:`gradtx.fromage` this makes the step
    :math:`x \\leftarrow (x - \\eta\\, \\text{trust}(g)) / \\sqrt{1 + \\eta^2}`. It is weight
    decay with a negative coefficient, which :func:`gradtx.add_decayed_weights` rightly rejects.
    """
    if callable(learning_rate):
        coefficient: ScalarOrSchedule = lambda count: fromage_multiplier(learning_rate(count)) - 1
    else:
        coefficient = fromage_multiplier(learning_rate) - 1
    return add_scaled_params(coefficient, name="learning_rate", where="fromage")
