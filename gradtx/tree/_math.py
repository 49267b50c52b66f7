"""Arithmetic, reductions and norms over whole pytrees, with ``optax.tree``'s names and signatures.

Binary functions take trees of the same structure and apply the operation leaf by leaf;
reductions return one scalar for the whole tree.
"""

from __future__ import annotations

import builtins
import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _numerics
from gradtx._base import safe_increment
from gradtx._tree import standard_promote

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "clip",
    "conj",
    "div",
    "max",
    "min",
    "mul",
    "norm",
    "real",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale",
    "size",
    "sub",
    "sum",
    "vdot",
    "where",
]


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """Leafwise sum ``x + y (+ ...)`` of trees with the same structure.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> total = gradtx.tree.add({"a": jnp.array(1.0)}, {"a": jnp.array(2.0)}, {"a": jnp.array(3.0)})
      >>> float(total["a"])
      6.0
    """
    return jax.tree.map(lambda *leaves: functools.reduce(operator.add, leaves), tree_x, tree_y, *other_trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise difference ``x - y``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.sub({"a": jnp.array(3.0)}, {"a": jnp.array(1.0)})["a"])
      2.0
    """
    return jax.tree.map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise product ``x * y``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.mul({"a": jnp.array(3.0)}, {"a": jnp.array(2.0)})["a"])
      6.0
    """
    return jax.tree.map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise quotient ``x / y``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.div({"a": jnp.array(3.0)}, {"a": jnp.array(2.0)})["a"])
      1.5
    """
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
    """Every leaf times ``scalar``: ``a * x``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.scale(2.0, {"a": jnp.array(3.0)})["a"])
      6.0
    """
    return jax.tree.map(lambda x: scalar * x, tree)


def _is_none(x: Any) -> bool:
    return x is None


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """``x + a * y`` leaf by leaf (an axpy); ``None`` in ``tree_x`` stays ``None``, as in optax.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.add_scale({"a": jnp.array(1.0)}, 0.5, {"a": jnp.array(4.0)})["a"])
      3.0
    """
    return jax.tree.map(lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y, is_leaf=_is_none)


def vdot(tree_x: Any, tree_y: Any) -> Any:
    """The inner product ``sum_i <conj(x_i), y_i>`` over all leaves (highest matmul precision).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.vdot({"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([3.0, 4.0])}))
      11.0
    """

    def leaf(x: Any, y: Any) -> jax.Array:
        x, y = jnp.asarray(x), jnp.asarray(y)
        dtype = standard_promote(x.dtype, y.dtype)  # real with complex works under strict promotion too
        return jnp.vdot(x.astype(dtype), y.astype(dtype), precision=jax.lax.Precision.HIGHEST)

    products = jax.tree.map(leaf, tree_x, tree_y)
    return functools.reduce(operator.add, jax.tree.leaves(products), 0)


def sum(tree: Any, associative_reduction: bool = False) -> Any:
    """The sum of all entries of all leaves (``0`` for a tree without leaves).

    Args:
      tree: a pytree of arrays.
      associative_reduction: sum the leaves' sums as a balanced tree (``jax.tree.reduce_associative``),
        which may compile faster for many leaves and changes the rounding order.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.sum({"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}))
      6.0
    """
    sums = jax.tree.map(jnp.sum, tree)
    if associative_reduction:
        return jax.tree.reduce_associative(operator.add, sums, identity=0)
    return functools.reduce(operator.add, jax.tree.leaves(sums), 0)


def _nonempty_leaves(tree: Any) -> list[Any]:
    # A zero-size leaf has no maximum (jnp.max raises); it contributes nothing, as in optax.
    return [x for x in jax.tree.leaves(tree) if jnp.size(x) > 0]


def max(tree: Any) -> Any:
    """The largest entry of all leaves (``-inf`` for a tree without entries; empty leaves are skipped).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.max({"a": jnp.array([1.0, 5.0]), "b": jnp.array(3.0)}))
      5.0
    """
    return functools.reduce(jnp.maximum, [jnp.max(x) for x in _nonempty_leaves(tree)], -float("inf"))


def min(tree: Any) -> Any:
    """The smallest entry of all leaves (``inf`` for a tree without entries; empty leaves are skipped).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.min({"a": jnp.array([1.0, 5.0]), "b": jnp.array(-3.0)}))
      -3.0
    """
    return functools.reduce(jnp.minimum, [jnp.min(x) for x in _nonempty_leaves(tree)], float("inf"))


def size(tree: Any) -> int:
    """The number of entries of all leaves together.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.size({"a": jnp.zeros((2, 3)), "b": jnp.zeros(4)})
      10
    """
    return builtins.sum(int(jnp.size(x)) for x in jax.tree.leaves(tree))


def conj(tree: Any) -> Any:
    """The complex conjugate of every leaf.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> complex(gradtx.tree.conj({"a": jnp.array(1 + 2j)})["a"])
      (1-2j)
    """
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """The real part of every leaf.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.real({"a": jnp.array(1 + 2j)})["a"])
      1.0
    """
    return jax.tree.map(jnp.real, tree)


def norm(tree: Any, ord: int | str | float | None = None, squared: bool = False) -> jax.Array:
    """The vector norm of all leaves together: ``ord`` 2 (default, also ``None``), 1 or ``inf``.

    .. math:: \\|x\\|_2 = \\sqrt{\\textstyle\\sum_i |x_i|^2},\\quad \\|x\\|_1 = \\sum_i |x_i|,\\quad
       \\|x\\|_\\infty = \\max_i |x_i|

    Complex entries contribute their modulus. ``squared=True`` returns the square of the norm.

    Raises:
      ValueError: for any other ``ord``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tree = {"a": jnp.array([3.0]), "b": jnp.array([-4.0])}
      >>> [float(gradtx.tree.norm(tree, o)) for o in (2, 1, "inf")]
      [5.0, 7.0, 4.0]
    """
    if ord is None or ord == 2:
        # gradtx's one accumulation rule (at least float32), not the leaves' own dtype.
        squares = _numerics.tree_sum_of_squares(tree)
        return squares if squared else _numerics.sqrt_of_squares(squares)
    if ord == 1:
        value = sum(jax.tree.map(jnp.abs, tree))
    elif ord in (jnp.inf, "inf", "infinity"):
        value = max(jax.tree.map(jnp.abs, tree))
    else:
        raise ValueError(f"tree.norm: `ord` must be None, 1, 2 or inf, got {ord!r}.")
    return jnp.asarray(value * value if squared else value)


def batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Every leaf broadcast to ``(*shape, *leaf.shape)``: leading batch dimensions added.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.batch_shape({"a": jnp.zeros(3)}, (2,))["a"].shape
      (2, 3)
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every leaf clipped to ``[min_value, max_value]`` (either bound may be ``None``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.clip({"a": jnp.array([-2.0, 0.5, 2.0])}, -1.0, 1.0)["a"].tolist()
      [-1.0, 0.5, 1.0]
    """
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """``tree_x`` where ``condition`` holds, else ``tree_y``, leaf by leaf (``condition`` broadcasts).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.where(False, {"a": jnp.array(1.0)}, {"a": jnp.array(2.0)})["a"])
      2.0
    """
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Any:
    """Whether every leaf of ``a`` is within ``atol + rtol * |b|`` of ``b``'s (as ``jnp.allclose``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> bool(gradtx.tree.allclose({"a": jnp.array(1.0)}, {"a": jnp.array(1.0 + 1e-9)}))
      True
    """
    checks = jax.tree.map(lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b)
    return functools.reduce(operator.and_, jax.tree.leaves(checks), True)


def safe_norm(
    x: Any,
    min_norm: Any,
    ord: int | str | float | None = None,
    axis: Any = None,
    keepdims: bool = False,
) -> jax.Array:
    """``max(||x||, min_norm)`` whose gradient is finite at ``x = 0`` (optax's ``safe_norm``).

    Where the norm is at most ``min_norm`` the norm of a stand-in (ones) is differentiated
    instead, so the gradient never divides by a zero norm.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> [round(float(gradtx.tree.safe_norm(x, 1e-3)), 6) for x in (jnp.zeros(3), jnp.array([3.0, 4.0]))]
      [0.001, 5.0]
    """
    x = jnp.asarray(x)
    small = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True) <= min_norm
    stand_in = jnp.where(small, jnp.ones_like(x), x)
    value = jnp.linalg.norm(stand_in, ord=ord, axis=axis, keepdims=True)
    out = jnp.where(small, jnp.asarray(min_norm).astype(value.dtype), value)
    return out if keepdims else jnp.squeeze(out, axis=axis)


def safe_root_mean_squares(x: Any, min_rms: Any) -> jax.Array:
    """``max(rms(x), min_rms)`` with a finite gradient at ``x = 0``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> float(gradtx.tree.safe_root_mean_squares(jnp.array([3.0, 3.0]), 1e-3))
      3.0
    """
    x = jnp.asarray(x)
    small = jnp.sqrt(jnp.mean(_numerics.abs_sq(x))) <= min_rms
    # The square root's infinite slope at 0 times where's zero cotangent would be NaN: take the
    # root of a stand-in where the floor is used (as `safe_norm` does).
    rms = jnp.sqrt(jnp.mean(_numerics.abs_sq(jnp.where(small, jnp.ones_like(x), x))))
    return jnp.where(small, jnp.asarray(min_rms, rms.dtype), rms)


def safe_int32_increment(count: jax.Array) -> jax.Array:
    """``count + 1`` for an int32 counter, stopping at ``2**31 - 1`` instead of wrapping.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> int(gradtx.tree.safe_int32_increment(jnp.asarray(2**31 - 1, jnp.int32)))
      2147483647
    """
    return safe_increment(count)
