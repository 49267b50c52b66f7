"""Layer-wise adaptive optimizers: lamb, lars, novograd, fromage."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx._masking import masked
from gradtx.transforms._adam import scale_by_adam
from gradtx.transforms._momentum import scale_by_momentum
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._trust_ratio import (
    fromage_contraction,
    fromage_multiplier,
    scale_by_novograd,
    scale_by_trust_ratio,
)
from gradtx.transforms._weight_decay import add_decayed_weights


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """LAMB: Adam, weight decay, then a per-leaf trust ratio, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root: as :func:`adam` (``eps`` defaults to 1e-6).
      weight_decay: decay rate, or a schedule. Default 0.
      mask: which params to decay; ``None`` decays all.
      mu_dtype, nu_dtype: the moments' dtypes, as :func:`gradtx.scale_by_adam` (gradtx extensions,
        keyword-only); ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.lamb(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the Adam step rescaled by |w| / |step| per leaf
      [-0.1581, 0.1581]

    References:
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
      https://arxiv.org/abs/1904.00962, 2019.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay=weight_decay, mask=mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: Any = 0.001,
    eps: Any = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: Any = 0.9,
    nesterov: bool = False,
) -> GradientTransformation:
    """LARS: weight decay, a per-leaf trust ratio, the learning rate, then momentum.

    Args:
      learning_rate: a scalar or a schedule.
      weight_decay: decay rate, or a schedule. Default 0.
      weight_decay_mask: which params to decay. Default ``True`` (all).
      trust_coefficient: the trust ratio's multiplier. Default 0.001.
      eps: added to the update norm. Default 0.
      trust_ratio_mask: which params get the trust ratio. Default ``True`` (all).
      momentum: momentum decay. Default 0.9.
      nesterov: Nesterov momentum. Default ``False``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.lars(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.0002, 0.0002]

    References:
      You et al., "Large Batch Training of Convolutional Networks", https://arxiv.org/abs/1708.03888, 2017.
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), mask=trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov),
    )


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
) -> GradientTransformation:
    """NovoGrad: :func:`gradtx.scale_by_novograd`, then the learning rate.

    Note the optimizer's ``eps`` default (1e-6) differs from the transform's (1e-8), as in optax.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, weight_decay: as :func:`gradtx.scale_by_novograd`.

    Returns:
      A :class:`~gradtx.GradientTransformation`; ``update`` needs ``params``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.novograd(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.0707, 0.0707]

    References:
      Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of
      Deep Networks", https://arxiv.org/abs/1905.11286, 2019.
    """
    return chain(
        scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def fromage(learning_rate: ScalarOrSchedule, min_norm: Any = 1e-6) -> GradientTransformation:
    """Fromage: layer-wise trust-ratio steps with a contraction that bounds the weights' norms.

    .. math::
       x_{t+1} = \\frac{x_t - \\eta\\, \\frac{\\|x_t\\|}{\\|g_t\\|} g_t}{\\sqrt{1 + \\eta^2}}

    per leaf (norms floored at ``min_norm``; see :func:`gradtx.scale_by_trust_ratio`).

    Args:
      learning_rate: :math:`\\eta`, a scalar or a schedule.
      min_norm: floor on both norms, ``>= 0``. Default 1e-6.

    Returns:
      A :class:`~gradtx.GradientTransformation`; ``update`` needs ``params``.

    Raises:
      ValueError: when ``min_norm`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.fromage(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1623, 0.1673]

    References:
      Bernstein et al., "On the distance between two neural networks and the stability of learning",
      https://arxiv.org/abs/2002.03432, 2020.
    """
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where="fromage")
    if callable(learning_rate):
        step_size: ScalarOrSchedule = lambda count: learning_rate(count) * fromage_multiplier(learning_rate(count))
    else:
        step_size = learning_rate * fromage_multiplier(learning_rate)
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step_size),
        fromage_contraction(learning_rate),
    )
