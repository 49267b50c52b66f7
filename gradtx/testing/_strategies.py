"""Hypothesis strategies for pytrees of JAX arrays: the inputs of a property test of a transform.

hypothesis is imported here, so ``gradtx.testing`` needs it installed (the ``testing`` extra:
``pip install gradtx[testing]``); the rest of gradtx does not.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["array_shapes", "arrays", "float_dtypes", "params_and_updates", "pytrees"]


def float_dtypes(*, low_precision: bool = True, float64: bool | None = None) -> st.SearchStrategy[Any]:
    """Floating dtypes a transform should accept: float32, and bfloat16 / float16 / float64 on request.

    Args:
      low_precision: include ``bfloat16`` and ``float16``. Default ``True``.
      float64: include ``float64``; default ``None`` includes it only when ``jax_enable_x64`` is on
        (otherwise jax would silently give float32).

    Returns:
      A strategy of NumPy dtypes.

    Examples:
      >>> from hypothesis import find, settings
      >>> find(float_dtypes(), lambda d: d == jnp.bfloat16, settings=settings(derandomize=True, database=None))
      dtype(bfloat16)
    """
    if float64 is None:
        float64 = bool(jax.config.read("jax_enable_x64"))
    dtypes = [jnp.dtype(jnp.float32)]
    if low_precision:
        dtypes += [jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)]
    if float64:
        dtypes.append(jnp.dtype(jnp.float64))
    return st.sampled_from(dtypes)


def array_shapes(*, max_dims: int = 3, max_side: int = 4, min_dims: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, scalars (``()``) included by default; sides from 1 to ``max_side``.

    Args:
      max_dims: the largest rank. Default 3.
      max_side: the largest size of one dimension. Default 4.
      min_dims: the smallest rank. Default 0 (scalars).

    Returns:
      A strategy of shape tuples.

    Raises:
      ValueError: when the bounds are negative or ``min_dims > max_dims`` or ``max_side < 1``.

    Examples:
      >>> from hypothesis import find, settings
      >>> find(array_shapes(min_dims=2), lambda s: s[0] == 3, settings=settings(derandomize=True, database=None))
      (3, 1)
    """
    if min_dims < 0 or max_dims < min_dims or max_side < 1:
        raise ValueError(
            f"array_shapes: need 0 <= min_dims <= max_dims and max_side >= 1, got "
            f"min_dims={min_dims}, max_dims={max_dims}, max_side={max_side}."
        )
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def arrays(
    dtype: Any = None,
    shape: Any = None,
    *,
    max_abs: float = 10.0,
) -> st.SearchStrategy[jax.Array]:
    """JAX arrays of finite values in ``[-max_abs, max_abs]``.

    Values are drawn in float32 (hypothesis has no bfloat16) and cast, so every dtype, bf16
    included, gets the same kind of values; they are clipped to the dtype's largest finite value
    where ``max_abs`` exceeds it (float16). float64 needs x64 enabled (jax gives float32 otherwise).

    Args:
      dtype: a dtype or a strategy of dtypes (default :func:`float_dtypes`).
      shape: a shape or a strategy of shapes (default :func:`array_shapes`).
      max_abs: the largest magnitude of a value. Default 10.

    Returns:
      A strategy of ``jax.Array``.

    Raises:
      ValueError: when ``max_abs`` is not positive, or exceeds float32's largest value.

    Examples:
      >>> from hypothesis import given, settings
      >>> @settings(max_examples=10, database=None)
      ... @given(arrays(jnp.bfloat16, (2, 3), max_abs=1.0))
      ... def test_bounded(x):
      ...     assert x.dtype == jnp.bfloat16 and x.shape == (2, 3) and float(jnp.max(jnp.abs(x))) <= 1.0
      >>> test_bounded()
    """
    if not 0 < max_abs <= float(np.finfo(np.float32).max):
        raise ValueError(f"arrays: `max_abs` must be positive and finite in float32, got {max_abs!r}.")
    if dtype is None:
        dtypes = float_dtypes()
    else:
        dtypes = dtype if isinstance(dtype, st.SearchStrategy) else st.just(jnp.dtype(dtype))
    if shape is None:
        shapes = array_shapes()
    else:
        shapes = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
    elements = st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False, width=32)

    @st.composite
    def draw_array(draw: Any) -> jax.Array:
        target = draw(dtypes)
        values = draw(hnp.arrays(np.float32, draw(shapes), elements=elements))
        # Finite in the target dtype too (float16 overflows above 65504).
        limit = float(jnp.finfo(target).max)
        if limit < max_abs:
            values = np.clip(values, -limit, limit)
        # Cast in NumPy (ml_dtypes gives it bfloat16): a jax cast would compile once per shape.
        return jnp.asarray(values.astype(target))

    return draw_array()


def pytrees(
    leaves: st.SearchStrategy[Any] | None = None,
    *,
    max_depth: int = 2,
    max_children: int = 3,
    none_leaves: bool = True,
    min_leaves: int = 1,
) -> st.SearchStrategy[Any]:
    """Nested ``dict`` / ``list`` / ``tuple`` containers of arrays, optionally with ``None`` leaves.

    ``None`` is an empty subtree for jax (``jax.tree.leaves`` skips it), a case transforms must
    handle: params with an optional bias, masked-out branches.

    Args:
      leaves: the strategy of array leaves (default :func:`arrays`).
      max_depth: the deepest nesting of containers. Default 2.
      max_children: the most children of one container. Default 3.
      none_leaves: also draw ``None`` in place of some leaves. Default ``True``.
      min_leaves: the fewest array leaves of a drawn tree. Default 1.

    Returns:
      A strategy of pytrees.

    Raises:
      ValueError: when a bound is negative or ``max_children < 1``.

    Examples:
      >>> from hypothesis import find, settings
      >>> fixed = settings(derandomize=True, database=None, max_examples=1000)
      >>> tree = find(pytrees(), lambda t: isinstance(t, dict) and None in t.values(), settings=fixed)
      >>> None in tree.values()
      True
    """
    if max_depth < 0 or max_children < 1 or min_leaves < 0:
        raise ValueError(
            f"pytrees: need max_depth >= 0, max_children >= 1, min_leaves >= 0, got max_depth={max_depth}, "
            f"max_children={max_children}, min_leaves={min_leaves}."
        )
    leaf = leaves if leaves is not None else arrays()
    base = st.one_of(leaf, st.none()) if none_leaves else leaf
    keys = st.text("abcdefghij_", min_size=1, max_size=6)

    def nested(depth: int) -> st.SearchStrategy[Any]:
        # Built level by level (not st.recursive) so that the depth bound holds.
        if depth == 0:
            return base
        children = nested(depth - 1)
        return st.one_of(
            base,
            st.dictionaries(keys, children, min_size=1, max_size=max_children),
            st.lists(children, min_size=1, max_size=max_children),
            st.lists(children, min_size=1, max_size=max_children).map(tuple),
        )

    return nested(max_depth).filter(lambda t: len(jax.tree.leaves(t)) >= min_leaves)


def params_and_updates(
    trees: st.SearchStrategy[Any] | None = None, *, max_abs: float = 10.0
) -> st.SearchStrategy[tuple[Any, Any]]:
    """Pairs ``(params, updates)`` of one structure, each updates leaf of its param's shape and dtype.

    Args:
      trees: the strategy of params (default :func:`pytrees`).
      max_abs: the largest magnitude of an update value. Default 10.

    Returns:
      A strategy of ``(params, updates)`` tuples.

    Examples:
      >>> import jax
      >>> from hypothesis import given, settings
      >>> @settings(max_examples=10, database=None, deadline=None)
      ... @given(params_and_updates())
      ... def test_same_structure(pair):
      ...     params, updates = pair
      ...     assert jax.tree.structure(params) == jax.tree.structure(updates)
      ...     assert all(p.shape == u.shape for p, u in zip(jax.tree.leaves(params), jax.tree.leaves(updates)))
      >>> test_same_structure()
    """
    source = trees if trees is not None else pytrees()

    @st.composite
    def draw_pair(draw: Any) -> tuple[Any, Any]:
        params = draw(source)
        leaves, treedef = jax.tree.flatten(params)
        updates = [draw(arrays(x.dtype, x.shape, max_abs=max_abs)) for x in leaves]
        return params, jax.tree.unflatten(treedef, updates)

    return draw_pair()
