"""Trees made like other trees: zeros/ones/full, casts, dtypes and random draws (``optax.tree``'s names)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._tree import is_typed_key

__all__ = [
    "cast",
    "cast_like",
    "dtype",
    "full_like",
    "ones_like",
    "random_like",
    "split_key_like",
    "unwrap_random_key_data",
    "zeros_like",
]


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like each leaf, in ``dtype`` (default: the leaf's).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.zeros_like({"a": jnp.ones(2)})["a"].tolist()
      [0.0, 0.0]
    """
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """Ones shaped like each leaf, in ``dtype`` (default: the leaf's).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.ones_like({"a": jnp.zeros(2)})["a"].tolist()
      [1.0, 1.0]
    """
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """``fill_value`` shaped like each leaf, in ``dtype`` (default: the leaf's).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.full_like({"a": jnp.zeros(2)}, 7.0)["a"].tolist()
      [7.0, 7.0]
    """
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def cast(tree: Any, dtype: Any) -> Any:
    """Every leaf cast to ``dtype``; ``dtype=None`` returns the tree unchanged.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> gradtx.tree.cast({"a": jnp.array(1.0)}, jnp.bfloat16)
      {'a': Array(1, dtype=bfloat16)}
    """
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Every leaf cast to the dtype of the matching leaf of ``other_tree`` (leaves without a dtype kept).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.cast_like({"a": jnp.ones(2)}, {"a": jnp.ones(2, jnp.bfloat16)})["a"].dtype
      dtype(bfloat16)
    """
    return jax.tree.map(lambda x, o: x.astype(o.dtype) if hasattr(o, "dtype") else x, tree, other_tree)


def _promote(a: Any, b: Any) -> Any:
    # jax's standard promotion lattice, also when strict promotion is on.
    with jax.numpy_dtype_promotion("standard"):
        return jnp.promote_types(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    """``(lower, higher)`` of two dtypes, the lower one promoting to the higher one."""
    promoted = _promote(a, b)
    if promoted == jnp.dtype(b):
        return jnp.dtype(a), jnp.dtype(b)
    if promoted == jnp.dtype(a):
        return jnp.dtype(b), jnp.dtype(a)
    raise ValueError(f"tree.dtype: neither of {a} and {b} promotes to the other, so neither is lower.")


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the tree's leaves.

    Args:
      tree: a pytree of arrays.
      mixed_dtype_handler: ``None`` (all leaves must share one dtype), ``"promote"`` (their
        promoted dtype), ``"highest"`` or ``"lowest"`` (the leaf dtype all others promote to,
        or that promotes to all others).

    Raises:
      ValueError: when leaves differ and ``mixed_dtype_handler`` is ``None`` (naming the first
        differing path), or for an unknown handler.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.dtype({"a": jnp.ones(2), "b": jnp.ones(2, jnp.bfloat16)}, "highest")
      dtype('float32')
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(leaves).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if jnp.asarray(x).dtype != dtypes[0]:
                raise ValueError(
                    f"tree.dtype: expected {dtypes[0]} at {jax.tree_util.keystr(path)}, got {jnp.asarray(x).dtype}; "
                    "pass mixed_dtype_handler='promote', 'highest' or 'lowest' for mixed trees."
                )
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(_promote, dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(lambda a, b: _ordered(a, b)[1], dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(lambda a, b: _ordered(a, b)[0], dtypes)
    raise ValueError(
        f"tree.dtype: `mixed_dtype_handler` must be None, 'promote', 'highest' or 'lowest', "
        f"got {mixed_dtype_handler!r}."
    )


def split_key_like(rng_key: Any, target_tree: Any) -> Any:
    """One independent key per leaf of ``target_tree``, in its structure.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> keys = gradtx.tree.split_key_like(jax.random.key(0), {"a": jnp.ones(2), "b": jnp.ones(3)})
      >>> sorted(keys)
      ['a', 'b']
    """
    treedef = jax.tree.structure(target_tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(rng_key, treedef.num_leaves)))


def random_like(
    rng_key: Any,
    target_tree: Any,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """A random draw shaped like each leaf: ``sampler(key_i, leaf.shape, dtype or leaf.dtype)``.

    Each leaf gets its own key (:func:`split_key_like`); a sampler that accepts
    ``out_sharding`` draws each leaf with its leaf's sharding.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.random_like(jax.random.key(0), {"a": jnp.ones((2, 3))})["a"].shape
      (2, 3)
    """
    keys = split_key_like(rng_key, target_tree)
    takes_sharding = "out_sharding" in inspect.signature(sampler).parameters

    def draw(x: Any, key: Any) -> Any:
        leaf_dtype = dtype or x.dtype
        if takes_sharding:
            return sampler(key, x.shape, leaf_dtype, out_sharding=jax.typeof(x).sharding)
        return sampler(key, x.shape, leaf_dtype)

    return jax.tree.map(draw, target_tree, keys)


def unwrap_random_key_data(input_tree: Any) -> Any:
    """Typed PRNG key leaves replaced by their raw ``uint32`` data (``jax.random.key_data``).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> gradtx.tree.unwrap_random_key_data({"k": jax.random.key(0)})["k"].dtype
      dtype('uint32')
    """

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and is_typed_key(x):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, input_tree)
