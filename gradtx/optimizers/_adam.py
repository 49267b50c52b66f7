"""The named optimizers. Each body is one ``chain(...)``; the full update rules live on the transforms.

Names, argument names, order and defaults follow optax 0.2.8 (``sign_sgd`` and ``signum``
are gradtx additions). The learning rate may be a schedule everywhere.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule, identity
from gradtx._combine import chain
from gradtx.transforms._adam import scale_by_adam, scale_by_adamax, scale_by_radam
from gradtx.transforms._factored import clip_by_block_rms, scale_by_factored_rms, scale_by_param_block_rms
from gradtx.transforms._masking import masked
from gradtx.transforms._momentum import ema, scale_by_momentum
from gradtx.transforms._rms import scale_by_adagrad, scale_by_rms
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._sign import scale_by_lion, scale_by_sign
from gradtx.transforms._trust_ratio import scale_by_trust_ratio
from gradtx.transforms._weight_decay import add_decayed_weights

__all__ = [
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "lamb",
    "lars",
    "lion",
    "nadam",
    "radam",
    "rmsprop",
    "sgd",
    "sign_sgd",
    "signum",
]


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
    return chain(
        scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
        if momentum is not None
        else identity(),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7
) -> GradientTransformation:
    """Adagrad: :func:`gradtx.scale_by_adagrad` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      initial_accumulator_value: initial sum of squares. Default 0.1.
      eps: added inside the square root. Default 1e-7.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization", JMLR, 2011.
    """
    return chain(
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSprop (optionally centered, with momentum): :func:`gradtx.scale_by_rms`, lr, momentum.

    As in optax the learning rate is applied *before* the momentum buffer; torch applies it
    after (the same for a constant learning rate). ``eps_in_sqrt=False`` gives torch's
    ``RMSprop`` epsilon placement.

    Args:
      learning_rate: a scalar or a schedule.
      decay: moving-average decay. Default 0.9.
      eps: stabilizer. Default 1e-8.
      initial_scale: initial second moment. Default 0.
      eps_in_sqrt: ``eps`` inside the root (optax) or outside (torch). Default ``True``.
      centered: divide by the centered variance. Default ``False``.
      momentum: momentum decay, or ``None``. Default ``None``.
      nesterov: Nesterov momentum. Default ``False``.
      bias_correction: bias-correct the averages. Default ``False``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Tieleman and Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning, 2012.
      Graves, "Generating Sequences With Recurrent Neural Networks", https://arxiv.org/abs/1308.0850, 2013.
    """
    return chain(
        scale_by_rms(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
            centered=centered,
        ),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov) if momentum is not None else identity(),
    )


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam: :func:`gradtx.scale_by_adam` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1: first-moment decay. Default 0.9.
      b2: second-moment decay. Default 0.999.
      eps: added outside the square root. Default 1e-8.
      eps_root: added inside the square root. Default 0.
      mu_dtype: dtype of the first moment; ``None`` uses the params' dtypes.
      nesterov: NAdam's momentum. Default ``False``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> tx = gradtx.adam(learning_rate=0.1)
      >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # the first step moves each coordinate by ~lr
      [-0.1, 0.1]

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> GradientTransformation:
    """NAdam: :func:`gradtx.scale_by_adam` with ``nesterov=True`` (Dozat's form), then the lr.

    Args: as :func:`adam`, with ``nesterov`` defaulting to ``True``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop, 2016.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """AdamW: Adam, then decoupled weight decay, then the learning rate.

    ``u = -lr * (adam(g) + weight_decay * params)``: the decay is multiplied by the learning
    rate, as in optax and torch's ``AdamW`` (the paper's schedule multiplier plays that role).

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype, nesterov: as :func:`adam`.
      weight_decay: decay rate, or a schedule. Default 1e-4.
      mask: which params to decay (pytree of bools or callable); ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> tx = gradtx.adamw(learning_rate=0.1, weight_decay=0.5)
      >>> updates, state = tx.update({"w": jnp.array([3.0, 3.0])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # -0.1 * (adam step of ~1 + 0.5 * w)
      [-0.15, -0.2]

    References:
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Rectified Adam: :func:`gradtx.scale_by_radam` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, nesterov: as :func:`adam`.
      threshold: the variance-tractability threshold on :math:`\\rho_t`. Default 5.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", https://arxiv.org/abs/1908.03265, 2019.
    """
    return chain(
        scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, threshold=threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adamax(learning_rate: ScalarOrSchedule, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> GradientTransformation:
    """AdaMax: :func:`gradtx.scale_by_adamax` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1: first-moment decay. Default 0.9.
      b2: infinity-norm decay. Default 0.999.
      eps: stabilizer inside the max. Default 1e-8.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
    """
    return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """LAMB: Adam, weight decay, then a per-leaf trust ratio, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root: as :func:`adam` (``eps`` defaults to 1e-6).
      weight_decay: decay rate, or a schedule. Default 0.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
      https://arxiv.org/abs/1904.00962, 2019.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
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

    References:
      You et al., "Large Batch Training of Convolutional Networks", https://arxiv.org/abs/1708.03888, 2017.
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), mask=trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov),
    )


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

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms", https://arxiv.org/abs/2302.06675, 2023.
    """
    return chain(
        scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Any = 0.8,
    decay_offset: Any = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Any = 1.0,
    momentum: Any = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: Any = 1e-30,
    factored: bool = True,
    weight_decay_mask: MaskOrFn = None,
) -> GradientTransformation:
    """Adafactor: factored RMS scaling, block clipping, lr, param scale, momentum, decay, descent.

    The learning rate is applied with a positive sign and the final ``scale(-1)`` turns the
    step into descent (so weight decay, added after the learning rate, is not scaled by it).

    Args:
      learning_rate: a scalar, a schedule, or ``None`` (no scaling). Default ``None``.
      min_dim_size_to_factor: see :func:`gradtx.scale_by_factored_rms`. Default 128.
      decay_rate: the second-moment decay exponent. Default 0.8.
      decay_offset: the step offset of the decay schedule. Default 0.
      multiply_by_parameter_scale: scale by each leaf's param RMS. Default ``True``.
      clipping_threshold: per-leaf RMS clip, or ``None``. Default 1.
      momentum: EMA decay of the updates (not debiased), or ``None``. Default ``None``.
      dtype_momentum: dtype of the momentum. Default float32.
      weight_decay_rate: decay rate (or schedule), or ``None``. Default ``None``.
      eps: added to the squared gradient. Default 1e-30.
      factored: factor second moments at all. Default ``True``.
      weight_decay_mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    # The inner transforms check these too, but under their own names (`step_offset`, ...).
    where = "adafactor"
    _checks.check_scalar("decay_offset", decay_offset, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    if clipping_threshold is not None:
        _checks.check_non_negative("clipping_threshold", clipping_threshold, where=where)
    if momentum is not None:
        _checks.check_in_range("momentum", momentum, 0.0, 1.0, where=where)
    if weight_decay_rate is not None:
        _checks.check_scalar_or_schedule("weight_decay_rate", weight_decay_rate, where=where, low=0.0)
    return chain(
        scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps),
        clip_by_block_rms(clipping_threshold) if clipping_threshold is not None else identity(),
        scale_by_learning_rate(learning_rate, flip_sign=False) if learning_rate is not None else identity(),
        scale_by_param_block_rms() if multiply_by_parameter_scale else identity(),
        ema(momentum, debias=False, accumulator_dtype=dtype_momentum) if momentum is not None else identity(),
        add_decayed_weights(weight_decay_rate, mask=weight_decay_mask) if weight_decay_rate is not None else identity(),
        scale(-1),
    )


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD: step by the sign of the gradient (not in optax; a gradtx addition).

    ``u = -lr * sign(g)``; see :func:`gradtx.scale_by_sign`.

    Args:
      learning_rate: a scalar or a schedule.

    Returns:
      A :class:`~gradtx.GradientTransformation` (state: ``(EmptyState(), lr state)``).

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
