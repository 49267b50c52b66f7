"""Second-moment optimizers without a first moment: rmsprop, adagrad, adadelta."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule, identity
from gradtx._combine import chain
from gradtx.transforms._momentum import scale_by_momentum
from gradtx.transforms._rms import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._weight_decay import add_decayed_weights


def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7, *, nu_dtype: Any = None
) -> GradientTransformation:
    """Adagrad: :func:`gradtx.scale_by_adagrad` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      initial_accumulator_value: initial sum of squares. Default 0.1.
      eps: added inside the square root. Default 1e-7.
      nu_dtype: dtype of the sum of squares (a gradtx extension; keyword-only); ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adagrad(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # -lr g / sqrt(0.1 + g^2)
      [-0.0845, 0.0845]

    References:
      Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization", JMLR, 2011.
    """
    return chain(
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps, nu_dtype=nu_dtype),
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
    *,
    nu_dtype: Any = None,
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
      nu_dtype: dtype of the second moment (a gradtx extension; keyword-only); ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.rmsprop(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # -lr g / sqrt(0.1 g^2 + eps)
      [-0.3162, 0.3162]

    References:
      Tieleman and Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning, 2012.
      Graves, "Generating Sequences With Recurrent Neural Networks", https://arxiv.org/abs/1308.0850, 2013.
    """
    _checks.check_bool("nesterov", nesterov, where="rmsprop")  # checked without momentum too
    return chain(
        scale_by_rms(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
            centered=centered,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov) if momentum is not None else identity(),
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
) -> GradientTransformation:
    """Adadelta: coupled weight decay, :func:`gradtx.scale_by_adadelta`, then the learning rate.

    The decay is added to the gradient before the rescaling (torch's ``Adadelta`` convention).

    Args:
      learning_rate: a scalar or a schedule; ``None`` leaves the step unscaled and unnegated (optax's
        convention). Default ``None``.
      rho, eps: as :func:`gradtx.scale_by_adadelta`.
      weight_decay: decay rate, or a schedule. Default 0.
      weight_decay_mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adadelta(learning_rate=1.0)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.0032, 0.0032]

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", https://arxiv.org/abs/1212.5701, 2012.
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_adadelta(rho=rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )
