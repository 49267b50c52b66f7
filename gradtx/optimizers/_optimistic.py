"""Optimistic methods for min-max problems: optimistic gradient descent and optimistic Adam."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._adam import scale_by_adam
from gradtx.transforms._optimistic import scale_by_optimistic_gradient
from gradtx.transforms._scaling import scale_by_learning_rate


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha: Any = 1.0, beta: Any = 1.0
) -> GradientTransformation:
    """Optimistic gradient descent: :func:`gradtx.scale_by_optimistic_gradient`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      alpha, beta: as :func:`gradtx.scale_by_optimistic_gradient`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.optimistic_gradient_descent(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.05, 0.05]

    References:
      Mokhtari et al., "A Unified Analysis of Extra-gradient and Optimistic Gradient Methods for Saddle
      Point Problems: Proximal Point Approach", https://arxiv.org/abs/1901.08511, 2019.
    """
    return chain(scale_by_optimistic_gradient(alpha=alpha, beta=beta), scale_by_learning_rate(learning_rate))


def optimistic_adam(
    learning_rate: Any,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Optimistic Adam (optax's first form; prefer :func:`optimistic_adam_v2`).

    Adam's direction :math:`a_t` goes through the optimistic step with
    :math:`\\alpha = \\eta` and :math:`\\beta =` ``optimism``: :math:`u_t = -((\\eta + \\beta) a_t - \\beta a_{t-1})`.

    Args:
      learning_rate: :math:`\\eta`, a scalar (schedules are refused; use :func:`optimistic_adam_v2`).
      optimism: :math:`\\beta`; ``None`` uses ``learning_rate``. Default ``None``.
      b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype: as :func:`gradtx.scale_by_adam` (Nesterov on by
        default; ``nu_dtype`` is a keyword-only gradtx extension).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``learning_rate`` is a schedule, or ``learning_rate``/``optimism`` are negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.optimistic_adam(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1474, 0.1474]

    References:
      Daskalakis et al., "Training GANs with Optimism", https://arxiv.org/abs/1711.00141, 2018.
    """
    if callable(learning_rate):
        raise ValueError(
            "optimistic_adam: `learning_rate` must be a scalar, not a schedule; optimistic_adam_v2 accepts schedules."
        )
    # Checked here too, so that errors name these arguments rather than the inner `alpha`/`beta`.
    _checks.check_non_negative("learning_rate", learning_rate, where="optimistic_adam")
    if optimism is not None:
        _checks.check_non_negative("optimism", optimism, where="optimistic_adam")
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
        scale_by_optimistic_gradient(alpha=learning_rate, beta=learning_rate if optimism is None else optimism),
        scale_by_learning_rate(1.0),
    )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Optimistic Adam: :func:`gradtx.scale_by_adam`, the optimistic step, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      alpha, beta: as :func:`gradtx.scale_by_optimistic_gradient` (keyword-only).
      b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype: as :func:`gradtx.scale_by_adam` (Nesterov on by
        default; ``nu_dtype`` is a gradtx extension).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.optimistic_adam_v2(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1474, 0.1474]

    References:
      Daskalakis et al., "Training GANs with Optimism", https://arxiv.org/abs/1711.00141, 2018.
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
