"""Stochastic gradient descent, with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, ScalarOrSchedule, identity
from gradtx._combine import chain
from gradtx.transforms._momentum import scale_by_momentum
from gradtx.transforms._scaling import scale_by_learning_rate


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Any = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
    """Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

    ``u = -lr * g`` without momentum; with it, see :func:`gradtx.scale_by_momentum`
    (torch's ``SGD`` with ``dampening=0``).

    Args:
      learning_rate: a scalar or a schedule.
      momentum: the momentum decay, or ``None`` for none. Default ``None``.
      nesterov: Nesterov's form. Default ``False``.
      accumulator_dtype: dtype of the momentum buffer; ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> tx = gradtx.sgd(learning_rate=0.1)
      >>> updates, state = tx.update(params, tx.init(params), params)  # the gradient equals the params here
      >>> gradtx.apply_updates(params, updates)["w"].round(4)
      Array([0.9, 1.8], dtype=float32)

    References:
      Sutskever et al., "On the importance of initialization and momentum in deep learning", ICML, 2013.
    """
    _checks.check_bool("nesterov", nesterov, where="sgd")  # checked without momentum too
    return chain(
        scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
        if momentum is not None
        else identity(),
        scale_by_learning_rate(learning_rate),
    )
