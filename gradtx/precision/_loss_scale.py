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


_FLOAT32_MAX = float(jnp.finfo(jnp.float32).max)


def _checked_scale(name: str, value: Any, *, where: str) -> Any:
    """A concrete scale as a float32 scalar array, checked to be finite and > 0 in float32."""
    if isinstance(value, Tracer):
        return value  # built inside a traced function: nothing to check in Python
    _checks.check_in_range(name, value, 0.0, _FLOAT32_MAX, where=where, low_inclusive=False)
    return jnp.asarray(value, jnp.float32)


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

    Raises:
      ValueError: when ``loss_scale`` or ``min_loss_scale`` is not finite and positive in
        float32, ``period`` is below 1 or ``factor`` is not above 1 (checked where the caller
        builds it; jax rebuilding the pytree inside ``jit``, ``scan`` or ``vmap`` checks nothing).
      TypeError: when a scale is not a real scalar.

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
        # Runs for the caller's construction only: jax rebuilds the pytree (jit, scan, vmap,
        # tree.map) through `_unflatten`, whose leaves may be batched, placeholders or zeros.
        where = "DynamicLossScale"
        object.__setattr__(self, "loss_scale", _checked_scale("loss_scale", self.loss_scale, where=where))
        object.__setattr__(self, "min_loss_scale", _checked_scale("min_loss_scale", self.min_loss_scale, where=where))
        _checks.check_int("period", self.period, where=where, low=1, high=_checks.INT32_MAX)
        _checks.check_in_range("factor", self.factor, 1.0, None, where=where, low_inclusive=False)

    def _with(self, **leaves: Any) -> DynamicLossScale:
        """A copy with some array fields replaced, unchecked (the values are computed, not given)."""
        children = {f: getattr(self, f) for f in _LEAVES} | leaves
        return _unflatten((self.period, self.factor), [children[f] for f in _LEAVES])

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
        return self._with(loss_scale=new_scale, counter=new_counter)


_LEAVES = ("loss_scale", "counter", "min_loss_scale")


def _unflatten(static: tuple[int, float], children: Any) -> DynamicLossScale:
    # Bypasses `__init__` and its checks: see `DynamicLossScale.__post_init__`.
    obj = object.__new__(DynamicLossScale)
    for name, value in zip(("period", "factor"), static, strict=True):
        object.__setattr__(obj, name, value)
    for name, value in zip(_LEAVES, children, strict=True):
        object.__setattr__(obj, name, value)
    return obj


jax.tree_util.register_pytree_with_keys(
    DynamicLossScale,
    lambda ls: ([(jax.tree_util.GetAttrKey(f), getattr(ls, f)) for f in _LEAVES], (ls.period, ls.factor)),
    _unflatten,
    lambda ls: ([getattr(ls, f) for f in _LEAVES], (ls.period, ls.factor)),
)


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
