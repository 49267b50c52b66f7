"""Optimizers whose step size comes from the run: Polyak SGD."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.optimizers._momentum import sgd
from gradtx.transforms._step_sizes import scale_by_polyak


def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    """SGD with Polyak's step size: ``sgd(scaling)``, then :func:`gradtx.scale_by_polyak`.

    ``update`` needs the loss: ``update(grads, state, params, value=loss)``.

    Args:
      max_learning_rate: the largest step size. Default 1.
      scaling: a scalar or schedule multiplying the gradient first. Default 1.
      f_min, eps, variant: as :func:`gradtx.scale_by_polyak`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.polyak_sgd(max_learning_rate=1.0)
      >>> updates, state = tx.update(params, tx.init(params), params, value=jnp.asarray(2.5))
      >>> updates["w"]  # the step (f - f_min) / |g|^2 = 0.5 along -g
      Array([-0.5,  1. ], dtype=float32)

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence",
      https://arxiv.org/abs/2002.10542, 2021.
    """
    _checks.check_scalar_or_schedule("scaling", scaling, where="polyak_sgd")
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant),
    )
