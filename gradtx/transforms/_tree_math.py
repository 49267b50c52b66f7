"""Small tree arithmetic shared by L-BFGS and the line searches.

Inner products are summed leaf by leaf in the promoted dtype of the two trees, with an explicit cast,
so that strict dtype promotion never fails on mixed-precision trees.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree


def real_dtype(tree: Any) -> Any:
    """The real floating dtype that scalars about ``tree`` (values, step sizes) are kept in.

    It is the promoted dtype of the leaves, with complex mapped to its real part, e.g. float32
    for float32 params and float64 for complex128 ones.
    """
    # Chosen by hand rather than with jnp.promote_types, which refuses float32 + float64 under strict
    # promotion; two different 16-bit types (bf16 + f16) meet in float32.
    reals = []
    for leaf in jax.tree.leaves(tree):
        dtype = jnp.dtype(_tree.leaf_dtype(leaf))
        if jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.dtype(jnp.finfo(dtype).dtype)
        reals.append(dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32))
    if not reals:
        return jnp.dtype(jnp.float32)
    widest = max(reals, key=lambda d: d.itemsize)
    if widest.itemsize == 2 and len(set(reals)) > 1:
        return jnp.dtype(jnp.float32)
    return widest


def vdot(x: Any, y: Any) -> jax.Array:
    """``sum_leaves sum(conj(x) * y)`` (``jnp.vdot`` over a tree), at the highest matmul precision."""
    xs, ys = jax.tree.leaves(x), jax.tree.leaves(y)
    if not xs:
        return jnp.zeros([], jnp.float32)
    dtype = real_dtype([*xs, *ys])
    if any(jnp.issubdtype(_tree.leaf_dtype(a), jnp.complexfloating) for a in [*xs, *ys]):
        dtype = jnp.dtype(jnp.complex128 if dtype.itemsize == 8 else jnp.complex64)
    total = jnp.zeros([], dtype)
    for a, b in zip(xs, ys, strict=True):
        a, b = jnp.asarray(a).astype(dtype), jnp.asarray(b).astype(dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            a = jnp.conj(a)
        total = total + jnp.tensordot(
            a, b, a.ndim, precision=jax.lax.Precision.HIGHEST, out_sharding=_scalar_sharding(a, b)
        )
    return total


def _scalar_sharding(*arrays: jax.Array) -> Any:
    """A replicated scalar sharding when an operand's type is sharded (explicit sharding mode), else ``None``.

    A full contraction over sharded dims is ambiguous to explicit-mode type rules, which then ask
    for the output's sharding; elsewhere (an ``Auto`` mesh, one device) XLA places it.
    """
    for x in arrays:
        sharding = jax.typeof(x).sharding
        if any(s is not None for s in sharding.spec):
            return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    return None


def real_vdot(x: Any, y: Any, dtype: Any) -> jax.Array:
    """``Re(vdot(x, y))`` as a scalar of ``dtype``."""
    return jnp.real(vdot(x, y)).astype(dtype)


def add_scale(x: Any, scalar: jax.Array, y: Any) -> Any:
    """``x + scalar * y`` leaf by leaf; each result keeps ``x``'s dtype."""

    def f(a: Any, b: Any) -> Any:
        a = jnp.asarray(a)
        return (a + jnp.asarray(scalar).astype(a.dtype) * jnp.asarray(b).astype(a.dtype)).astype(a.dtype)

    return jax.tree.map(f, x, y)


def scale(scalar: jax.Array, x: Any) -> Any:
    """``scalar * x`` leaf by leaf; each result keeps its leaf's dtype."""
    return jax.tree.map(lambda a: jnp.asarray(scalar).astype(jnp.asarray(a).dtype) * a, x)


def cast_like(tree: Any, like: Any) -> Any:
    """``tree`` with each leaf cast to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda a, b: jnp.asarray(a).astype(_tree.leaf_dtype(b)), tree, like)
