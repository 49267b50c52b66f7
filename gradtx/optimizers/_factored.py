"""Memory-light optimizers: adafactor and sm3."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx._combine import chain
from gradtx.transforms._factored import clip_by_block_rms, scale_by_factored_rms, scale_by_param_block_rms, scale_by_sm3
from gradtx.transforms._momentum import ema
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._weight_decay import add_decayed_weights


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
      decay_offset: the step offset of the decay schedule, an int. Default 0. Until the count
        reaches it, the decay is held at its first step (optax gives NaN there).
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

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones((256, 128))}
      >>> tx = gradtx.adafactor(learning_rate=1e-2)
      >>> state = tx.init(params)
      >>> factored = state[0]  # the 256 x 128 second moment is kept as two vectors
      >>> factored.v_row["w"].shape, factored.v_col["w"].shape
      ((128,), (256,))
      >>> updates, state = tx.update({"w": jnp.full((256, 128), 0.1)}, state, params)
      >>> updates["w"].shape
      (256, 128)

    References:
      Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
      https://arxiv.org/abs/1804.04235, 2018.
    """
    # The inner transforms check these too, but under their own names (`step_offset`, ...).
    where = "adafactor"
    _checks.check_bool("multiply_by_parameter_scale", multiply_by_parameter_scale, where=where)
    _checks.check_scalar("decay_offset", decay_offset, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    if clipping_threshold is not None:
        _checks.check_non_negative("clipping_threshold", clipping_threshold, where=where)
    if momentum is not None:
        _checks.check_in_range("momentum", momentum, 0.0, 1.0, where=where)
    if weight_decay_rate is not None:
        _checks.check_scalar_or_schedule("weight_decay_rate", weight_decay_rate, where=where, low=0.0)
    # Disabled parts are left out (not identity()), so the state is the same tuple as optax's.
    parts = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms())
    if momentum is not None:
        parts.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    return chain(*parts, scale(-1))


def sm3(learning_rate: ScalarOrSchedule, momentum: Any = 0.9) -> GradientTransformation:
    """SM3: :func:`gradtx.scale_by_sm3` (with ``b1=momentum``), then the learning rate.

    Args:
      learning_rate: a scalar (or a schedule).
      momentum: the momentum decay, in ``[0, 1)``. Default 0.9.

    Returns:
      A :class:`~gradtx.GradientTransformation`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.sm3(learning_rate=0.1)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [-0.01, 0.01]

    References:
      Anil et al., "Memory-Efficient Adaptive Optimization", https://arxiv.org/abs/1901.11150, 2019.
    """
    _checks.check_in_range("momentum", momentum, 0.0, 1.0, where="sm3", high_inclusive=False)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
