"""The rest of optax's optimizers; each body is one ``chain(...)``.

The full update rule of each lives on its ``scale_by_*`` transform; these functions only say
which transforms, in which order.
"""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.optimizers import sgd
from gradtx.transforms._adam import scale_by_adam, scale_by_adamax
from gradtx.transforms._noise import add_noise
from gradtx.transforms._parity_adadelta_sm3 import scale_by_adadelta, scale_by_sm3
from gradtx.transforms._parity_adan_novograd import scale_by_adan, scale_by_novograd
from gradtx.transforms._parity_belief_yogi import scale_by_amsgrad, scale_by_belief, scale_by_yogi
from gradtx.transforms._parity_fromage import fromage_contraction, fromage_multiplier
from gradtx.transforms._parity_optimistic import scale_by_optimistic_gradient
from gradtx.transforms._parity_rprop_polyak import scale_by_polyak, scale_by_rprop
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._trust_ratio import scale_by_trust_ratio
from gradtx.transforms._weight_decay import add_decayed_weights

__all__ = [
    "adabelief",
    "adadelta",
    "adamaxw",
    "adan",
    "amsgrad",
    "fromage",
    "nadamw",
    "noisy_sgd",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "rprop",
    "sm3",
    "yogi",
]


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """AdaBelief: :func:`gradtx.scale_by_belief`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, nesterov: as :func:`gradtx.scale_by_belief`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
      https://arxiv.org/abs/2010.07468, 2020.
    """
    return chain(
        scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
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

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", https://arxiv.org/abs/1212.5701, 2012.
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_adadelta(rho=rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """AdaMax with decoupled weight decay: :func:`gradtx.scale_by_adamax`, decay, learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps: as :func:`gradtx.scale_by_adamax`.
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 1e-4.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    return chain(
        scale_by_adamax(b1=b1, b2=b2, eps=eps),
        add_decayed_weights(weight_decay, mask),
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
) -> GradientTransformation:
    """Adan: :func:`gradtx.scale_by_adan`, decoupled weight decay, then the learning rate.

    Note the optimizer's ``eps_root`` default (1e-8) differs from the transform's (0), as in optax.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, b3, eps, eps_root: as :func:`gradtx.scale_by_adan`.
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 0.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
      https://arxiv.org/abs/2208.06677, 2022.
    """
    return chain(
        scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    """AMSGrad: :func:`gradtx.scale_by_amsgrad`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu: as
        :func:`gradtx.scale_by_amsgrad`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Reddi et al., "On the Convergence of Adam and Beyond", https://arxiv.org/abs/1904.09237, 2018.
    """
    return chain(
        scale_by_amsgrad(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            mu_dtype=mu_dtype,
            bias_correction_mu=bias_correction_mu,
            bias_correction_nu=bias_correction_nu,
        ),
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


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = True,
) -> GradientTransformation:
    """NAdamW: :func:`gradtx.adamw` with Nesterov momentum on by default.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype: as :func:`gradtx.scale_by_adam`.
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 1e-4.
      mask: which params to decay; ``None`` decays all.
      nesterov: Nesterov's first moment. Default ``True``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop, 2016.
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


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

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks",
      https://arxiv.org/abs/1511.06807, 2015.
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))


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

    References:
      Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of
      Deep Networks", https://arxiv.org/abs/1905.11286, 2019.
    """
    return chain(
        scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha: Any = 1.0, beta: Any = 1.0
) -> GradientTransformation:
    """Optimistic gradient descent: :func:`gradtx.scale_by_optimistic_gradient`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      alpha, beta: as :func:`gradtx.scale_by_optimistic_gradient`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

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
) -> GradientTransformation:
    """Optimistic Adam (optax's first form; prefer :func:`optimistic_adam_v2`).

    Adam's direction :math:`a_t` goes through the optimistic step with
    :math:`\\alpha = \\eta` and :math:`\\beta =` ``optimism``: :math:`u_t = -((\\eta + \\beta) a_t - \\beta a_{t-1})`.

    Args:
      learning_rate: :math:`\\eta`, a scalar (schedules are refused; use :func:`optimistic_adam_v2`).
      optimism: :math:`\\beta`; ``None`` uses ``learning_rate``. Default ``None``.
      b1, b2, eps, eps_root, mu_dtype, nesterov: as :func:`gradtx.scale_by_adam` (Nesterov on by default).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``learning_rate`` is a schedule, or ``learning_rate``/``optimism`` are negative.

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
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
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
) -> GradientTransformation:
    """Optimistic Adam: :func:`gradtx.scale_by_adam`, the optimistic step, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      alpha, beta: as :func:`gradtx.scale_by_optimistic_gradient` (keyword-only).
      b1, b2, eps, eps_root, mu_dtype, nesterov: as :func:`gradtx.scale_by_adam` (Nesterov on by default).

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Daskalakis et al., "Training GANs with Optimism", https://arxiv.org/abs/1711.00141, 2018.
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


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

    References:
      Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence",
      https://arxiv.org/abs/2002.10542, 2021.
    """
    _checks.check_scalar_or_schedule("scaling", scaling, where="polyak_sgd")
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant),
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


def sm3(learning_rate: ScalarOrSchedule, momentum: Any = 0.9) -> GradientTransformation:
    """SM3: :func:`gradtx.scale_by_sm3` (with ``b1=momentum``), then the learning rate.

    Args:
      learning_rate: a scalar (or a schedule).
      momentum: the momentum decay, in ``[0, 1)``. Default 0.9.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", https://arxiv.org/abs/1901.11150, 2019.
    """
    _checks.check_in_range("momentum", momentum, 0.0, 1.0, where="sm3", high_inclusive=False)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))


def yogi(learning_rate: ScalarOrSchedule, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-3) -> GradientTransformation:
    """Yogi: :func:`gradtx.scale_by_yogi`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps: as :func:`gradtx.scale_by_yogi`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    References:
      Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS, 2018.
    """
    return chain(scale_by_yogi(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))
