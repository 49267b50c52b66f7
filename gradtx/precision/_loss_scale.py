"""Loss scaling for float16 mixed precision: ``DynamicLossScale`` and ``NoOpLossScale``.

float16 has a narrow exponent range (max 65504, smallest normal ~6e-5), so small gradients
underflow to zero in the backward pass. Multiplying the loss by a large factor ``S`` moves
them into range; the gradients are divided by ``S`` before the optimizer sees them. The
dynamic variant lowers ``S`` when the gradients overflow and raises it again after a run of
finite steps. bfloat16 has float32's exponent range and needs no loss scaling.

Both classes are pytrees, so they pass through ``jax.jit`` and ``lax.scan`` as state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _checks, _tree

__all__ = ["DynamicLossScale", "NoOpLossScale"]


def _times(tree: Any, factor: jax.Array) -> Any:
    def mul(x: Any) -> Any:
        x = jnp.asarray(x)
        # Multiply in at least float32 so that 1/S is not rounded to a float16 subnormal first.
        dtype = _tree.standard_promote(x.dtype, jnp.float32)
        return (x.astype(dtype) * factor.astype(dtype)).astype(x.dtype)

    return jax.tree.map(mul, tree)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DynamicLossScale:
    """A loss scale ``S`` that halves on overflow and doubles after ``period`` finite steps.

    ``adjust(grads_finite)`` implements::

        finite:      counter += 1; if counter == period: S *= factor, counter = 0
        not finite:  S = max(S / factor, min_loss_scale); counter = 0

    Growth stops where ``S * factor`` would overflow float32.

    Attributes:
      loss_scale: the current scale ``S`` (a float32 scalar array).
      counter: finite steps since the last change of ``S`` (int32 scalar).
      period: finite steps needed before ``S`` grows (static int, default 2000).
      factor: the growth / shrink factor (static, default 2).
      min_loss_scale: the floor for ``S`` (float32 scalar, default 1).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> ls = gradtx.DynamicLossScale(jnp.float32(2.0**15))
      >>> ls.adjust(jnp.array(False)).loss_scale
      Array(16384., dtype=float32)

    References:
      Micikevicius et al., "Mixed Precision Training", https://arxiv.org/abs/1710.03740, 2017.
    """

    loss_scale: jax.Array
    counter: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros([], jnp.int32))
    period: int = dataclasses.field(default=2000, metadata={"static": True})
    factor: float = dataclasses.field(default=2, metadata={"static": True})
    min_loss_scale: jax.Array = dataclasses.field(default_factory=lambda: jnp.ones([], jnp.float32))

    def __post_init__(self) -> None:
        where = "DynamicLossScale"
        # Tracers (inside jit) and pytree placeholders built by unflattening are not checked.
        if isinstance(self.loss_scale, (int, float)) or (
            isinstance(self.loss_scale, jax.Array) and not isinstance(self.loss_scale, Tracer)
        ):
            _checks.check_positive("loss_scale", self.loss_scale, where=where)
            object.__setattr__(self, "loss_scale", jnp.asarray(self.loss_scale, jnp.float32))
        if isinstance(self.min_loss_scale, (int, float)):
            _checks.check_positive("min_loss_scale", self.min_loss_scale, where=where)
            object.__setattr__(self, "min_loss_scale", jnp.asarray(self.min_loss_scale, jnp.float32))
        _checks.check_int("period", self.period, where=where, low=1)
        _checks.check_in_range("factor", self.factor, 1.0, None, where=where, low_inclusive=False)

    def scale(self, tree: Any) -> Any:
        """Multiplies every leaf (usually the loss) by ``S``, keeping each leaf's dtype."""
        return _times(tree, self.loss_scale)

    def unscale(self, tree: Any) -> Any:
        """Divides every leaf (usually the gradients) by ``S``, keeping each leaf's dtype."""
        return _times(tree, 1.0 / self.loss_scale)

    def adjust(self, grads_finite: Any) -> DynamicLossScale:
        """The loss scale for the next step, given whether this step's gradients were finite.

        Args:
          grads_finite: a scalar bool, e.g. ``gradtx.all_finite(grads)``.

        Returns:
          A new :class:`DynamicLossScale` (this one is unchanged).
        """
        grads_finite = jnp.asarray(grads_finite, jnp.bool_)
        counter = jnp.asarray(self.counter, jnp.int32)
        scale = jnp.asarray(self.loss_scale, jnp.float32)
        min_scale = jnp.asarray(self.min_loss_scale, jnp.float32)
        factor = jnp.float32(self.factor)
        grow = jnp.logical_and(grads_finite, counter + 1 >= self.period)
        grown = scale * factor
        grown = jnp.where(jnp.isfinite(grown), grown, scale)
        new_scale = jnp.where(grads_finite, jnp.where(grow, grown, scale), jnp.maximum(min_scale, scale / factor))
        new_counter = jnp.where(jnp.logical_and(grads_finite, ~grow), counter + 1, jnp.zeros([], jnp.int32))
        return dataclasses.replace(self, loss_scale=new_scale, counter=new_counter)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NoOpLossScale:
    """The do-nothing loss scale with :class:`DynamicLossScale`'s interface (``S = 1``).

    Use it for float32 or bfloat16 training so that one training step serves every precision.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> loss_scale = gradtx.NoOpLossScale()
      >>> float(loss_scale.scale(jnp.asarray(2.0))), float(loss_scale.unscale(jnp.asarray(2.0)))
      (2.0, 2.0)
      >>> loss_scale.adjust(jnp.asarray(False)) is loss_scale  # never changes
      True
    """

    @property
    def loss_scale(self) -> jax.Array:
        """Always 1 (float32)."""
        return jnp.ones([], jnp.float32)

    def scale(self, tree: Any) -> Any:
        """Returns ``tree`` unchanged."""
        return tree

    def unscale(self, tree: Any) -> Any:
        """Returns ``tree`` unchanged."""
        return tree

    def adjust(self, grads_finite: Any) -> NoOpLossScale:
        """Returns ``self``; the gradients' finiteness is ignored."""
        del grads_finite
        return self
