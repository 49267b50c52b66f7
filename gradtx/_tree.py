"""Pytree helpers, the one path-aware check that every transform runs while tracing, and the one
prefix broadcast that masks, labels and freeze share.

Errors name the tree path the way ``jax.tree_util.keystr`` prints it, e.g.
``['dense']['kernel']``, and show both sides, so a mismatch never surfaces later as a
broadcasting error deep inside jax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "broadcast_prefix",
    "check_float_leaves",
    "check_same_structure",
    "global_norm",
    "is_prefix_function",
    "is_typed_key",
    "leaf_dtype",
    "path_str",
    "prefix_subtrees",
    "prune_prefix",
    "require_params",
    "standard_promote",
    "tree_cast",
]


def path_str(path: Sequence[Any]) -> str:
    """The printable form of a key path, e.g. ``['dense']['kernel']``; ``<root>`` when empty."""
    text = jax.tree_util.keystr(tuple(path))
    return text if text else "<root>"


def _describe(leaf: Any) -> str:
    if leaf is None:
        return "None"
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is None or dtype is None:
        return f"{type(leaf).__name__} {leaf!r:.40}"
    return f"{np.dtype(dtype).name}{list(shape)}"


def _is_none(x: Any) -> bool:
    return x is None


def check_same_structure(
    expected: Any,
    found: Any,
    expected_name: str,
    found_name: str,
    *,
    where: str,
    check_shapes: bool = True,
    check_dtypes: bool = False,
) -> None:
    """Raises ``ValueError`` naming the first path where two trees differ.

    Compares tree structure, then (optionally) each leaf's shape and dtype. Runs in Python
    while tracing, so it costs nothing in the compiled step.

    Args:
      expected: the reference tree (usually the params or the state's statistics).
      found: the tree to check (usually the updates).
      expected_name: how the message calls ``expected``, e.g. ``"params"``.
      found_name: how the message calls ``found``, e.g. ``"updates"``.
      where: the name of the caller, prefixed to the message.
      check_shapes: compare leaf shapes too.
      check_dtypes: compare leaf dtypes too.

    Raises:
      ValueError: on the first difference, naming the path and both sides.
    """
    # The common case, equal trees, costs one flatten per tree (without key paths) and a few
    # list comparisons done in C; only a mismatch walks the paths to build its message.
    expected_leaves, expected_def = jax.tree_util.tree_flatten(expected, is_leaf=_is_none)
    found_leaves, found_def = jax.tree_util.tree_flatten(found, is_leaf=_is_none)
    if expected_def != found_def:
        _raise_structure_mismatch(expected, found, expected_def, found_def, expected_name, found_name, where)
    if not (check_shapes or check_dtypes):
        return
    if check_shapes and [getattr(x, "shape", None) for x in expected_leaves] != [
        getattr(x, "shape", None) for x in found_leaves
    ]:
        _raise_leaf_mismatch(expected, found, expected_name, found_name, where, check_shapes, check_dtypes)
    if check_dtypes and [getattr(x, "dtype", None) for x in expected_leaves] != [
        getattr(x, "dtype", None) for x in found_leaves
    ]:
        _raise_leaf_mismatch(expected, found, expected_name, found_name, where, check_shapes, check_dtypes)


def _raise_structure_mismatch(
    expected: Any, found: Any, expected_def: Any, found_def: Any, expected_name: str, found_name: str, where: str
) -> None:
    """Raises the message of :func:`check_same_structure` for trees of different structure."""
    expected_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(expected, is_leaf=_is_none)[0]]
    found_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(found, is_leaf=_is_none)[0]]
    found_set, expected_set = set(found_paths), set(expected_paths)
    missing = [p for p in expected_paths if p not in found_set]
    extra = [p for p in found_paths if p not in expected_set]
    parts = []
    if missing:
        parts.append(f"{found_name} has no leaf at {path_str(missing[0])} where {expected_name} has one")
    if extra:
        parts.append(f"{found_name} has a leaf at {path_str(extra[0])} that {expected_name} lacks")
    if not parts:  # same leaf paths, different node types (dict vs. FrozenDict, tuple vs. list, ...)
        parts.append(f"same leaf paths but different containers: {expected_def} vs {found_def}")
    detail = "; ".join(parts)
    raise ValueError(f"{where}: the structure of {found_name} does not match {expected_name}: {detail}.")


def _raise_leaf_mismatch(
    expected: Any, found: Any, expected_name: str, found_name: str, where: str, check_shapes: bool, check_dtypes: bool
) -> None:
    """Walks two trees of equal structure with their paths; raises at the first leaf that differs.

    Returns without raising when the lists differed only where the check ignores them (a
    ``None`` leaf, or a leaf without a shape or dtype, such as a Python scalar).
    """
    expected_leaves = jax.tree_util.tree_flatten_with_path(expected, is_leaf=_is_none)[0]
    found_leaves = jax.tree_util.tree_flatten_with_path(found, is_leaf=_is_none)[0]
    for (path, e_leaf), (_, f_leaf) in zip(expected_leaves, found_leaves, strict=True):
        if e_leaf is None or f_leaf is None:
            continue
        e_shape, f_shape = getattr(e_leaf, "shape", None), getattr(f_leaf, "shape", None)
        if check_shapes and e_shape is not None and f_shape is not None and tuple(e_shape) != tuple(f_shape):
            raise ValueError(
                f"{where}: shape mismatch at {path_str(path)}: {expected_name} has "
                f"{_describe(e_leaf)}, {found_name} has {_describe(f_leaf)}."
            )
        e_dtype, f_dtype = getattr(e_leaf, "dtype", None), getattr(f_leaf, "dtype", None)
        if check_dtypes and e_dtype is not None and f_dtype is not None and np.dtype(e_dtype) != np.dtype(f_dtype):
            raise ValueError(
                f"{where}: dtype mismatch at {path_str(path)}: {expected_name} has "
                f"{_describe(e_leaf)}, {found_name} has {_describe(f_leaf)}."
            )


def check_float_leaves(
    tree: Any, name: str, *, where: str, allow_complex: bool = True, scalars_ok: bool = True
) -> None:
    """Raises ``TypeError`` naming the first leaf that is not a floating (or complex) array.

    Integer or boolean params cannot be trained by gradient steps; catching them here gives
    a clear message instead of a silent truncation of every update to zero. With
    ``scalars_ok=False`` a Python number is refused too (the transforms' per-leaf code reads
    ``.dtype``).
    """
    # Each distinct dtype is judged once; the paths are walked only when one of them fails.
    dtypes = {getattr(leaf, "dtype", None) for leaf in jax.tree.leaves(tree)}
    if None not in dtypes and all(_is_trainable_dtype(d, allow_complex) for d in dtypes):
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and not scalars_ok and isinstance(leaf, (int, float, complex)):
            raise TypeError(
                f"{where}: {name}{path_str(path)} is a Python {type(leaf).__name__}; {name} must be arrays "
                f"(`jnp.asarray({leaf!r})`)."
            )
        if dtype is None:
            dtype = jnp.asarray(leaf).dtype
        if not _is_trainable_dtype(dtype, allow_complex):
            kinds = "floating or complex" if allow_complex else "floating"
            raise TypeError(
                f"{where}: {name} must have {kinds} leaves, but {name}{path_str(path)} is {_describe(leaf)}."
            )


def _is_trainable_dtype(dtype: Any, allow_complex: bool) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating) or (allow_complex and jnp.issubdtype(dtype, jnp.complexfloating)))


def require_params(params: Any, *, where: str) -> None:
    """Raises ``ValueError`` when a transform that reads the params is called without them."""
    if params is None:
        raise ValueError(f"{where} needs the current params: call `update(updates, state, params)` with `params` set.")


def leaf_dtype(leaf: Any) -> Any:
    """The dtype of an array, a ``jax.ShapeDtypeStruct``, or a Python scalar."""
    dtype = getattr(leaf, "dtype", None)
    return dtype if dtype is not None else jnp.asarray(leaf).dtype


def is_typed_key(leaf: Any) -> bool:
    """Whether ``leaf`` holds typed PRNG keys (``jax.random.key``): no NumPy dtype, no arithmetic."""
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def tree_cast(tree: Any, dtype: Any) -> Any:
    """Casts every leaf to ``dtype``; ``dtype=None`` returns the tree unchanged."""
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: jnp.asarray(x).astype(dtype), tree)


def standard_promote(*dtypes: Any) -> Any:
    """The dtype that standard jax promotion gives, also when strict promotion is on.

    Library code promotes explicitly (then casts) so that it runs under
    ``jax_numpy_dtype_promotion="strict"`` as well as under the default mode.
    """
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(*dtypes)


def global_norm(updates: Any) -> jax.Array:
    """The l2 norm of all leaves together: ``sqrt(sum_i |x_i|^2)``.

    Squares are summed in at least float32 (float64 leaves stay float64); complex leaves
    contribute ``|x|^2``. The result has that accumulation dtype (float32 for no leaves).
    It is the one accumulation rule of :func:`gradtx._numerics.tree_l2_norm`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> float(gradtx.global_norm({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])}))
      5.0
    """
    from gradtx import _numerics  # _numerics builds on this module

    return _numerics.tree_l2_norm(updates)


def tree_map_with_path_str(fn: Callable[[str, Any], Any], tree: Any) -> Any:
    """``jax.tree.map`` whose function also receives the printable path of each leaf."""
    return jax.tree_util.tree_map_with_path(lambda path, x: fn(path_str(path), x), tree)


# --- Prefix broadcasting: one rule for masks, labels, freeze (and leaf selection) ----------------


def is_prefix_function(prefix: Any) -> bool:
    """Whether a mask/label argument is a function ``tree -> prefix tree`` rather than a tree itself.

    A callable counts as a function when it is a pytree leaf (a plain function, method, or
    ``functools.partial``) or a ``jax.tree_util.Partial``. A callable that is a pytree node
    with children (an equinox ``Module``, a registered dataclass with ``__call__``) is a tree.
    """
    if not callable(prefix):
        return False
    if isinstance(prefix, jax.tree_util.Partial):
        return True
    return jax.tree_util.treedef_is_leaf(jax.tree.structure(prefix))


def _prefix_mismatch(prefix: Any, tree: Any, prefix_name: str, tree_name: str, is_leaf: Any) -> str:
    """Describes the first path where ``prefix`` is not a prefix of ``tree``."""
    prefix_paths = [tuple(p) for p, _ in jax.tree_util.tree_flatten_with_path(prefix, is_leaf=is_leaf)[0]]
    tree_paths = [tuple(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]

    def covers(short: tuple[Any, ...], long: tuple[Any, ...]) -> bool:
        return long[: len(short)] == short

    for pp in prefix_paths:
        if not any(covers(pp, tp) for tp in tree_paths):
            return f"{prefix_name} has an entry at {path_str(pp)} that {tree_name} lacks"
    for tp in tree_paths:
        if not any(covers(pp, tp) for pp in prefix_paths):
            return f"{tree_name} has a leaf at {path_str(tp)} that {prefix_name} does not cover"
    prefix_def = jax.tree.structure(prefix, is_leaf=is_leaf)
    return f"same paths but different containers: {prefix_name} {prefix_def} vs {tree_name} {jax.tree.structure(tree)}"


def prefix_subtrees(
    prefix: Any,
    tree: Any,
    *,
    prefix_name: str,
    tree_name: str,
    where: str,
    is_leaf: Callable[[Any], bool] | None = None,
) -> tuple[Any, list[tuple[Any, Any]], list[Any]]:
    """Splits ``tree`` along a prefix tree: one subtree of ``tree`` per leaf of ``prefix``.

    ``prefix`` has ``tree``'s structure or a prefix of it: each of its leaves stands for
    the whole subtree of ``tree`` at the same path (``{"enc": True}`` covers every leaf under
    ``"enc"``). Masks, labels and freeze masks are all such prefixes; this is their one
    broadcasting rule.

    Args:
      prefix: the prefix tree (mask, labels).
      tree: the params or updates.
      prefix_name: how messages call ``prefix``, e.g. ``"the mask"``.
      tree_name: how messages call ``tree``, e.g. ``"params"``.
      where: the caller's name, prefixed to messages.
      is_leaf: passed to the flattening of ``prefix`` (what counts as one prefix entry).

    Returns:
      ``(prefix_def, entries, subtrees)``: the prefix's tree definition,
      ``[(path, value), ...]`` for its leaves, and the matching subtrees of ``tree``;
      ``prefix_def.unflatten(subtrees)`` rebuilds ``tree``.

    Raises:
      ValueError: naming the first path where ``prefix`` is not a prefix of ``tree``.
    """
    entries, prefix_def = jax.tree_util.tree_flatten_with_path(prefix, is_leaf=is_leaf)
    try:
        subtrees = prefix_def.flatten_up_to(tree)
    except (ValueError, TypeError):
        detail = _prefix_mismatch(prefix, tree, prefix_name, tree_name, is_leaf)
        raise ValueError(f"{where}: the structure of {prefix_name} does not match {tree_name}: {detail}.") from None
    return prefix_def, [(tuple(p), v) for p, v in entries], list(subtrees)


def prune_prefix(
    prefix: Any, tree: Any, *, removed: Callable[[Any], bool], is_leaf: Callable[[Any], bool] | None = None
) -> Any:
    """``prefix`` with ``False`` wherever ``removed(subtree)`` holds for the subtree of ``tree`` there.

    A transform nested in ``masked`` (or ``partition``) is given a :class:`gradtx.MaskedNode` for
    each subtree that the outer mask removed; the entries of an inner prefix (mask, labels)
    under such a node do not apply, and a ``False`` there covers the empty subtree. Where
    ``prefix`` is not a prefix of ``tree`` it is returned as it is, for :func:`prefix_subtrees`
    to name the path.
    """
    if removed(tree):
        return False
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(prefix, is_leaf=is_leaf)):
        return prefix
    prefix_children, prefix_def = jax.tree.flatten(prefix, is_leaf=lambda x: x is not prefix)
    tree_children, tree_def = jax.tree.flatten(tree, is_leaf=lambda x: x is not tree)
    if prefix_def != tree_def:
        return prefix
    return prefix_def.unflatten(
        [
            prune_prefix(p, t, removed=removed, is_leaf=is_leaf)
            for p, t in zip(prefix_children, tree_children, strict=True)
        ]
    )


def broadcast_prefix(
    prefix: Any,
    tree: Any,
    *,
    prefix_name: str,
    tree_name: str,
    where: str,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Expands a prefix tree to ``tree``'s full structure: each leaf of ``tree`` gets its prefix value.

    See :func:`prefix_subtrees` for the arguments and the errors.

    Examples:
      >>> broadcast_prefix({"a": 1, "b": 2}, {"a": {"x": 0.0, "y": 0.0}, "b": 0.0},
      ...                  prefix_name="labels", tree_name="params", where="demo")
      {'a': {'x': 1, 'y': 1}, 'b': 2}
    """
    _, entries, subtrees = prefix_subtrees(
        prefix, tree, prefix_name=prefix_name, tree_name=tree_name, where=where, is_leaf=is_leaf
    )
    leaves = [value for (_, value), sub in zip(entries, subtrees, strict=True) for _ in jax.tree.leaves(sub)]
    return jax.tree.unflatten(jax.tree.structure(tree), leaves)
