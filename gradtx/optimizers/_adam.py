"""The Adam family: adam, adamw, nadam, nadamw, radam, adamax, adamaxw, amsgrad."""

from __future__ import annotations

from typing import Any

from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad, scale_by_radam
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._weight_decay import add_decayed_weights


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
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
      nu_dtype: dtype of the second moment (a gradtx extension); ``None`` uses the params' dtypes.

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
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
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
    nu_dtype: Any = None,
) -> GradientTransformation:
    """NAdam: :func:`gradtx.scale_by_adam` with ``nesterov=True`` (Dozat's form), then the lr.

    Args: as :func:`adam` (``nu_dtype`` included), with ``nesterov`` defaulting to ``True``.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.nadam(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1474, 0.1474]

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop, 2016.
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
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
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AdamW: Adam, then decoupled weight decay, then the learning rate.

    ``u = -lr * (adam(g) + weight_decay * params)``: the decay is multiplied by the learning
    rate, as in optax and torch's ``AdamW`` (the paper's schedule multiplier plays that role).

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype: as :func:`adam`.
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
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
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
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """Rectified Adam: :func:`gradtx.scale_by_radam` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, nesterov, mu_dtype, nu_dtype: as :func:`adam` (keyword-only here: optax's
        ``radam`` has neither).
      threshold: the variance-tractability threshold on :math:`\\rho_t`. Default 5.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.radam(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # no adaptive step until rho_t >= 5: plain momentum
      [-0.05, 0.05]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", https://arxiv.org/abs/1908.03265, 2019.
    """
    return chain(
        scale_by_radam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            threshold=threshold,
            nesterov=nesterov,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AdaMax: :func:`gradtx.scale_by_adamax` then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1: first-moment decay. Default 0.9.
      b2: infinity-norm decay. Default 0.999.
      eps: stabilizer inside the max. Default 1e-8.
      mu_dtype, nu_dtype: dtypes of the first moment and of the infinity norm (gradtx extensions);
        ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adamax(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1, 0.1]

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
    """
    return chain(
        scale_by_adamax(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AdaMax with decoupled weight decay: :func:`gradtx.scale_by_adamax`, decay, learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, mu_dtype, nu_dtype: as :func:`gradtx.scale_by_adamax`.
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 1e-4.
      mask: which params to decay; ``None`` decays all.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adamaxw(learning_rate=0.1, weight_decay=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # -lr * (sign step + 0.1 * w)
      [-0.11, 0.12]

    References:
      Kingma and Ba, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980, 2014.
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    return chain(
        scale_by_adamax(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
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
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    """AMSGrad: :func:`gradtx.scale_by_amsgrad`, then the learning rate.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu, nu_dtype: as
        :func:`gradtx.scale_by_amsgrad`.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.amsgrad(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1, 0.1]

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
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
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
    nu_dtype: Any = None,
) -> GradientTransformation:
    """NAdamW: :func:`gradtx.adamw` with Nesterov momentum on by default.

    Args:
      learning_rate: a scalar or a schedule.
      b1, b2, eps, eps_root, mu_dtype: as :func:`gradtx.scale_by_adam`.
      weight_decay: decay rate (multiplied by the learning rate), or a schedule. Default 1e-4.
      mask: which params to decay; ``None`` decays all.
      nesterov: Nesterov's first moment. Default ``True``.
      nu_dtype: dtype of the second moment (a gradtx extension); ``None`` uses the params' dtypes.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.nadamw(learning_rate=0.1, weight_decay=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.1574, 0.1674]

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop, 2016.
      Loshchilov and Hutter, "Decoupled Weight Decay Regularization", https://arxiv.org/abs/1711.05101, 2017.
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
