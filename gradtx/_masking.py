"""``masked``: apply a transform to some leaves only, with no state for the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from gradtx import _tree
from gradtx._base import GradientTransformation, Params, Updates, as_gradient_transformation

__all__ = ["MaskedNode", "MaskedState", "masked"]


class MaskedState(NamedTuple):
    """State of :func:`masked`: the inner transform's state, built on the masked params."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf: a pytree node with no children.

    ``jax.tree.map`` skips it, so the inner transform never sees (nor allocates state for)
    the leaves it replaces. Pass ``is_leaf=lambda x: isinstance(x, MaskedNode)`` to tree
    functions that must visit these positions.
    """


def _is_mask_leaf(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, (np.ndarray, jax.Array)) and np.ndim(x) == 0)


def _is_concrete(x: Any) -> bool:
    try:
        bool(x)
    except jax.errors.ConcretizationTypeError:
        return False
    return True


def _mask_value(path: Any, x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, jax.Array) and not isinstance(x, np.ndarray) and not _is_concrete(x):
        raise TypeError(
            f"masked: the mask at {_tree.path_str(path)} is a traced value; masks must be static Python bools."
        )
    if isinstance(x, (np.ndarray, jax.Array)) and np.ndim(x) == 0 and np.asarray(x).dtype == np.bool_:
        return bool(x)
    raise TypeError(f"masked: mask leaves must be bools, but mask{_tree.path_str(path)} is {x!r:.60}.")


def _starts_with(path: tuple[Any, ...], prefix: tuple[Any, ...]) -> bool:
    return len(path) >= len(prefix) and path[: len(prefix)] == prefix


def _mismatch(mask: Any, tree: Any, tree_name: str) -> str:
    """Describes the first path where ``mask`` is not a prefix of ``tree``."""
    mask_paths = [tuple(p) for p, _ in jax.tree_util.tree_flatten_with_path(mask, is_leaf=_is_mask_leaf)[0]]
    tree_paths = [tuple(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    for mp in mask_paths:
        if not any(_starts_with(tp, mp) for tp in tree_paths):
            return f"the mask has an entry at {_tree.path_str(mp)} that {tree_name} lacks"
    for tp in tree_paths:
        if not any(_starts_with(tp, mp) for mp in mask_paths):
            return f"{tree_name} has a leaf at {_tree.path_str(tp)} that the mask does not cover"
    mask_def = jax.tree.structure(mask, is_leaf=_is_mask_leaf)
    return f"same paths but different container types: mask {mask_def} vs {tree_name} {jax.tree.structure(tree)}"


def _full_mask(mask: Any, tree: Any, tree_name: str) -> Any:
    """Broadcasts a (prefix) mask of bools to a tree of bools with ``tree``'s structure."""
    mask_def = jax.tree.structure(mask, is_leaf=_is_mask_leaf)
    try:
        subtrees = mask_def.flatten_up_to(tree)
    except (ValueError, TypeError):
        raise ValueError(
            f"masked: the mask's structure does not match {tree_name}: {_mismatch(mask, tree, tree_name)}."
        ) from None
    flags = [_mask_value(p, x) for p, x in jax.tree_util.tree_flatten_with_path(mask, is_leaf=_is_mask_leaf)[0]]
    expanded = [jax.tree.map(lambda _, f=f: f, sub) for f, sub in zip(flags, subtrees, strict=True)]
    # Rebuild the full-structure tree of bools leaf by leaf.
    leaves = [leaf for sub in expanded for leaf in jax.tree.leaves(sub)]
    return jax.tree.unflatten(jax.tree.structure(tree), leaves)


def _mask_tree(tree: Any, full_mask: Any) -> Any:
    return jax.tree.map(lambda keep, x: x if keep else MaskedNode(), full_mask, tree)


def masked(
    inner: Any,
    mask: Any | Callable[[Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Applies ``inner`` to the leaves where ``mask`` is ``True``; passes the rest through.

    .. math:: u_i = \\text{inner}(g)_i \\text{ if } mask_i \\text{ else } g_i

    The inner transform sees the masked-out leaves as :class:`MaskedNode` (an empty node),
    so it allocates no state for them: the state is ``MaskedState(inner_state)`` where
    ``inner_state`` holds ``MaskedNode()`` at every masked-out position.

    Args:
      inner: the transform to apply (gradtx or optax).
      mask: a pytree of Python bools with the params' structure, or a prefix of it (a
        single ``True`` covers a whole subtree); or a callable ``params -> mask`` (called on
        the params in ``init`` and on the updates in ``update``). The mask must be static.
      mask_compatible_extra_args: also mask those extra keyword arguments whose tree
        structure equals the updates'. Default ``False``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`MaskedState`.

    Raises:
      TypeError: when ``inner`` is not a transform, or a mask leaf is not a bool.
      ValueError: (in ``init``/``update``) when the mask's structure is not a prefix of the
        params'/updates', naming the first mismatching path.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
      >>> decay = gradtx.masked(gradtx.add_decayed_weights(0.1), lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
      >>> updates, _ = decay.update(jax.tree.map(jnp.zeros_like, params), decay.init(params), params)
      >>> updates["b"]
      Array([0., 0.], dtype=float32)
    """
    tx = as_gradient_transformation(inner, where="masked: `inner`")

    def resolve(tree: Any, tree_name: str) -> Any:
        mask_tree = mask(tree) if callable(mask) else mask
        return _full_mask(mask_tree, tree, tree_name)

    def init_fn(params: Params) -> MaskedState:
        full = resolve(params, "params")
        return MaskedState(inner_state=tx.init(_mask_tree(params, full)))

    def update_fn(
        updates: Updates, state: MaskedState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, MaskedState]:
        if not isinstance(state, MaskedState):
            raise ValueError(
                f"masked: expected a MaskedState (from this transform's init), got {type(state).__name__}."
            )
        full = resolve(updates, "updates")
        if params is not None:
            _tree.check_same_structure(updates, params, "updates", "params", where="masked")
        if mask_compatible_extra_args:
            updates_def = jax.tree.structure(updates)
            extra_args = {
                k: _mask_tree(v, full) if jax.tree.structure(v) == updates_def else v for k, v in extra_args.items()
            }
        masked_params = None if params is None else _mask_tree(params, full)
        inner_updates, inner_state = tx.update(
            _mask_tree(updates, full), state.inner_state, masked_params, **extra_args
        )
        new_updates = jax.tree.map(lambda keep, new, old: new if keep else old, full, inner_updates, updates)
        return new_updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init_fn, update_fn)
