"""Adam variants with their own second-moment rules: adabelief, yogi, adan."""

from __future__ import annotations

from typing import Any

from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._adam_variants import scale_by_adan, scale_by_belief, scale_by_yogi
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._weight_decay import add_decayed_weights


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AdaBelief: :func:`gradtx.scale_by_belief`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, nesterov, mu_dtype, nu_dtype: as :func:`gradtx.scale_by_belief`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adabelief(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1111, 0.1111]

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
      https://arxiv.org/abs/2010.07468, 2020.
    """
    return chain(
        scale_by_belief(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        scale_by_learning_rate(learning_rate),
    )


def adan(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Adan: :func:`gradtx.scale_by_adan`, decoupled weight decay, then the learning rate.

    Note the optimizer's ``eps_root`` default (1e-8) differs from the transform's (0), as in optax.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, b3, eps, eps_root, mu_dtype, nu_dtype: as :func:`gradtx.scale_by_adan` (the dtypes are
        keyword-only gradtx extensions).
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 0.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adan(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1, 0.1]

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
      https://arxiv.org/abs/2208.06677, 2022.
    """
    return chain(
        scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Yogi: :func:`gradtx.scale_by_yogi`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, mu_dtype, nu_dtype: as :func:`gradtx.scale_by_yogi` (the dtypes are keyword-only gradtx
        extensions).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.yogi(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.0996, 0.0996]

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS, 2018.
    """
    return chain(
        scale_by_yogi(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
