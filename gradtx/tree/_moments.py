"""Moment updates and bias correction over trees (``optax.tree``'s names), as Adam-like code uses them.

``None`` leaves of the updates stay ``None`` (masked-out parameters).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _numerics

__all__ = ["bias_correction", "update_infinity_moment", "update_moment", "update_moment_per_elem_norm"]


def _is_none(x: Any) -> bool:
    return x is None


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """The EMA of the ``order``-th power: ``m <- (1 - decay) g^order + decay m``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> m = gradtx.tree.update_moment({"a": jnp.array(2.0)}, {"a": jnp.array(1.0)}, 0.5, 2)
      >>> float(m["a"])  # 0.5 * 2**2 + 0.5 * 1
      2.5
    """
    return jax.tree.map(
        lambda g, m: None if g is None else (1 - decay) * (g**order) + decay * m, updates, moments, is_leaf=_is_none
    )


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """The EMA of the infinity norm: ``m <- max(|g| + eps, decay m)``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> m = gradtx.tree.update_infinity_moment({"a": jnp.array(-2.0)}, {"a": jnp.array(1.0)}, 0.9, 0.0)
      >>> float(m["a"])  # max(|-2|, 0.9 * 1)
      2.0
    """
    return jax.tree.map(
        lambda g, m: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * m), updates, moments, is_leaf=_is_none
    )


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """The EMA of ``|g|^order`` (for complex ``g`` the modulus, for real ``g`` the signed power ``g^order``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> m = gradtx.tree.update_moment_per_elem_norm({"a": jnp.array(3 + 4j)}, {"a": jnp.array(0.0)}, 0.5, 2)
      >>> float(m["a"])  # 0.5 * |3 + 4i|^2
      12.5
    """

    def power(g: jax.Array) -> jax.Array:
        if not jnp.iscomplexobj(g):
            return g**order
        half = order / 2
        return _numerics.abs_sq(g) ** (int(half) if float(half).is_integer() else half)

    return jax.tree.map(
        lambda g, m: None if g is None else (1 - decay) * power(g) + decay * m, updates, moments, is_leaf=_is_none
    )


def bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    """Adam's bias correction: ``m / (1 - decay^count)``, divided in each leaf's own dtype.

    ``1 - decay^count`` is gradtx's one bias correction (computed in the widest enabled float:
    in low precision it cancels or rounds to 0), then cast to each leaf's dtype.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> round(float(gradtx.tree.bias_correction({"a": jnp.array(0.1)}, 0.9, 1)["a"]), 5)  # 0.1 / (1 - 0.9)
      1.0
    """
    correction = _numerics.bias_correction(decay, count)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)
