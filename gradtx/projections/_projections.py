"""Euclidean projections of a pytree onto convex sets (``optax.projections``' names and signatures).

Each function returns the point of the set nearest to ``tree`` in the l2 norm over all leaves
together (the tree read as one flat vector). Use them for projected gradient descent:
``params = projection(apply_updates(params, updates))``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import flatten_util

from gradtx._tree import standard_promote
from gradtx.tree import _creation, _math

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]


def _bound_like(bound: Any, tree: Any) -> Any:
    """A bound as a tree with ``tree``'s structure (a scalar or one array applies to every leaf)."""
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)) and not jax.tree_util.treedef_is_leaf(
        jax.tree.structure(tree)
    ):
        return jax.tree.map(lambda _: bound, tree)
    return bound


def projection_non_negative(tree: Any) -> Any:
    """Onto the non-negative orthant: ``max(x, 0)`` entrywise.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_non_negative(jnp.array([-1.0, 2.0])).tolist()
      [0.0, 2.0]
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Onto the box ``lower <= x <= upper`` (bounds: scalars or trees like ``tree``): a clip.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_box({"a": jnp.array([-2.0, 0.5, 3.0])}, 0.0, 1.0)
      {'a': Array([0. , 0.5, 1. ], dtype=float32)}
    """
    return jax.tree.map(jnp.clip, tree, _bound_like(lower, tree), _bound_like(upper, tree))


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Onto the hypercube ``[0, scale]^d``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_hypercube(jnp.array([-1.0, 0.5, 3.0]), 2.0).tolist()
      [0.0, 0.5, 2.0]
    """
    return projection_box(tree, lower=0, upper=scale)


def _unit_simplex(v: jax.Array) -> jax.Array:
    # Sort-based projection onto {x >= 0, sum(x) = 1}: the threshold theta makes
    # sum(max(v - theta, 0)) = 1; it is set by the rho largest entries (Held et al. 1974;
    # Duchi et al. 2008).
    descending = -jnp.sort(-v)
    k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    partial = jnp.cumsum(descending) - 1
    rho = jnp.count_nonzero(descending - partial / k > 0)
    theta = partial[rho - 1] / rho.astype(v.dtype)
    return jax.nn.relu(v - theta)


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    """Onto the simplex ``{x >= 0, sum(x) = scale}`` (over all leaves together).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_simplex(jnp.array([0.5, 1.5, -1.0]))
      Array([0., 1., 0.], dtype=float32)
    """
    flat, unravel = flatten_util.ravel_pytree(tree)
    return unravel(scale * _unit_simplex(flat / scale))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    """Onto the l1 sphere ``{||x||_1 = scale}``: the simplex projection of ``|x|``, signs restored.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_l1_sphere(jnp.array([2.0, -1.0]), 1.0).tolist()
      [1.0, -0.0]
    """
    magnitudes = projection_simplex(jax.tree.map(jnp.abs, tree), scale)
    return jax.tree.map(lambda x, m: jnp.sign(x) * m, tree, magnitudes)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the l1 ball ``{||x||_1 <= scale}`` (inside points are returned unchanged).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_l1_ball(jnp.array([0.25, -0.5]), 1.0).tolist()  # inside: unchanged
      [0.25, -0.5]
    """
    return jax.lax.cond(_math.norm(tree, ord=1) <= scale, lambda t: t, lambda t: projection_l1_sphere(t, scale), tree)


def _rescaled(factor: jax.Array, tree: Any) -> Any:
    """Every leaf times the (at least float32) ``factor``, multiplied in the wider dtype and
    returned in the leaf's own, as the other projections keep it."""

    def leaf(x: Any) -> jax.Array:
        x = jnp.asarray(x)
        dtype = standard_promote(x.dtype, factor.dtype)
        return (x.astype(dtype) * factor.astype(dtype)).astype(x.dtype)

    return jax.tree.map(leaf, tree)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    """Onto the l2 sphere ``{||x||_2 = scale}``: ``x * scale / ||x||``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_l2_sphere(jnp.array([3.0, 4.0]), 5.0).tolist()
      [3.0, 4.0]
    """
    return _rescaled(scale / _math.norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the l2 ball ``{||x||_2 <= scale}``: ``x * scale / max(||x||, scale)``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_l2_ball(jnp.array([3.0, 4.0]), 10.0).tolist()  # inside: unchanged
      [3.0, 4.0]
    """
    squared = _math.norm(tree, squared=True)
    return _rescaled(scale / jnp.sqrt(jnp.maximum(squared, scale**2)), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the l-infinity ball ``{max |x_i| <= scale}``: a clip to ``[-scale, scale]``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_linf_ball(jnp.array([3.0, -0.5]), 1.0).tolist()
      [1.0, -0.5]
    """
    return projection_box(tree, _creation.full_like(tree, -scale), _creation.full_like(tree, scale))


def projection_vector(x: Any, a: Any) -> Any:
    """Onto the line spanned by ``a``: ``(<x, a> / <a, a>) a``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_vector(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])).tolist()
      [1.0, 0.0]
    """
    return _math.scale(_math.vdot(x, a) / _math.vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    """Onto the hyperplane ``{<a, x> = b}``: ``x + ((b - <x, a>) / <a, a>) a``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_hyperplane(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), 0.0).tolist()
      [0.0, 2.0]
    """
    return _math.add_scale(x, (b - _math.vdot(x, a)) / _math.vdot(a, a), a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    """Onto the halfspace ``{<a, x> <= b}`` (points inside are returned unchanged).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.projections.projection_halfspace(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), 3.0).tolist()  # inside
      [1.0, 2.0]
    """
    step = jnp.minimum((b - _math.vdot(x, a)) / _math.vdot(a, a), 0)
    return _math.add_scale(x, step, a)
