"""Sign-based optimizers: lion, sign_sgd, signum, rprop."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._momentum import ema
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._sign import scale_by_lion, scale_by_rprop, scale_by_sign
from gradtx.transforms._weight_decay import add_decayed_weights


def lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """Lion: :func:`gradtx.scale_by_lion`, decoupled weight decay, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1: interpolation rate. Default 0.9.
      b2: momentum decay. Default 0.99.
      mu_dtype: dtype of the momentum; ``None`` uses the params' dtypes.
      weight_decay: decay rate, or a schedule. Default 1e-3.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.lion(learning_rate=0.1, weight_decay=0.0)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # every coordinate moves by exactly lr
      [-0.1, 0.1]

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms", https://arxiv.org/abs/2302.06675, 2023.
    """
    return chain(
        scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD: step by the sign of the gradient (not in optax; a gradtx addition).

    ``u = -lr * sign(g)``; see :func:`gradtx.scale_by_sign`.

    Args:
      learning_rate: a scalar or a schedule.

    Returns:
      A :class:`~gradtx.GradientTransformation` (state: ``(EmptyState(), lr state)``).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.sign_sgd(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1, 0.1]

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
      https://arxiv.org/abs/1802.04434, 2018.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(learning_rate: ScalarOrSchedule, beta: Any = 0.9, accumulator_dtype: Any = None) -> GradientTransformation:
    """Signum: step by the sign of an exponential moving average of the gradient.

    .. math:: m_t = \\beta m_{t-1} + (1-\\beta) g_t, \\qquad u_t = -\\eta\\, \\operatorname{sign}(m_t)

    (the average is not debiased: the sign does not depend on it).

    Args:
      learning_rate: a scalar or a schedule.
      beta: :math:`\\beta \\in [0, 1]`. Default 0.9.
      accumulator_dtype: dtype of :math:`m`; ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.signum(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1, 0.1]

    References:
      Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
      https://arxiv.org/abs/1802.04434, 2018.
    """
    _checks.check_in_range("beta", beta, 0.0, 1.0, where="signum")
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> GradientTransformation:
    """Rprop: :func:`gradtx.scale_by_rprop`, then a sign flip (the step sizes already hold the rate).

    Args:
      learning_rate: the initial step size, ``> 0`` (a scalar).
      eta_minus, eta_plus, min_step_size, max_step_size: as :func:`gradtx.scale_by_rprop`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.rprop(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the first step is -lr * sign(g)
      [-0.1, 0.1]

    References:
      Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP
      Algorithm", IEEE ICNN, 1993.
    """
    return chain(
        scale_by_rprop(
            learning_rate=learning_rate,
            eta_minus=eta_minus,
            eta_plus=eta_plus,
            min_step_size=min_step_size,
            max_step_size=max_step_size,
        ),
        scale(-1.0),
    )
