"""SGD with annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any

from gradtx._base import GradientTransformation, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._noise import add_noise
from gradtx.transforms._scaling import scale_by_learning_rate


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """SGD with annealed Gaussian gradient noise: :func:`gradtx.add_noise`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      eta, gamma, key, seed: as :func:`gradtx.add_noise` (noise variance :math:`\\eta / t^\\gamma`).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.noisy_sgd(learning_rate=0.1, eta=0.01, key=0)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> updates["w"].shape  # -lr * (g + noise), the noise's variance eta / (1 + t) ** gamma
      (2,)

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks",
      https://arxiv.org/abs/1511.06807, 2015.
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
