"""``masked``: apply a transform to some leaves only, with no state for the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from gradtx import _checks, _tree
from gradtx._base import GradientTransformation, Params, Updates, as_gradient_transformation
from gradtx._stack_view import resolve_prefix

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


def _mask_value(path: Any, x: Any, where: str) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (np.ndarray, jax.Array)) and np.ndim(x) != 0:
        raise TypeError(
            f"{where}: mask leaves must be bools, but mask{_tree.path_str(path)} is an array of shape "
            f"{tuple(np.shape(x))}; a mask selects whole leaves (an element-wise mask is not supported)."
        )
    if isinstance(x, jax.Array) and not isinstance(x, np.ndarray) and not _is_concrete(x):
        raise TypeError(
            f"{where}: the mask at {_tree.path_str(path)} is a traced value; masks must be static Python bools."
        )
    if isinstance(x, (np.ndarray, jax.Array)) and np.ndim(x) == 0 and np.asarray(x).dtype == np.bool_:
        return bool(x)
    raise TypeError(f"{where}: mask leaves must be bools, but mask{_tree.path_str(path)} is {x!r:.60}.")


def resolve_mask(mask: Any, tree: Any, *, where: str = "masked") -> Any:
    """The mask tree: ``mask(tree)`` when ``mask`` is a function, else ``mask`` itself.

    A callable pytree with children (an equinox ``Module`` holding bools) is a tree, not a
    function (see :func:`gradtx._tree.is_prefix_function`). Inside :func:`gradtx.stacked`, a
    mask written for the params is carried to the stacks (:mod:`gradtx._stack_view`).
    """
    return resolve_prefix(mask, tree, prefix_name="the mask", where=where, is_leaf=_is_mask_leaf)


def checked_mask(mask: Any, tree: Any, *, where: str) -> Any:
    """``mask`` resolved on ``tree`` (see :func:`resolve_mask`) with every leaf a checked Python bool.

    Raises:
      TypeError: when a mask leaf is not a static bool.
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, x: _mask_value(path, x, where), resolve_mask(mask, tree, where=where), is_leaf=_is_mask_leaf
    )


def mask_flags(
    mask_tree: Any, tree: Any, tree_name: str, *, where: str = "masked"
) -> tuple[Any, list[bool], list[Any]]:
    """Splits ``tree`` along a (prefix) mask: ``(mask_def, flags, subtrees)``, one flag per mask leaf.

    Raises:
      ValueError: when the mask is not a prefix of ``tree``, naming the first differing path.
      TypeError: when a mask leaf is not a static bool.
    """
    if any(isinstance(x, MaskedNode) for x in jax.tree.leaves(tree, is_leaf=_is_masked_node)):
        mask_tree = _tree.prune_prefix(mask_tree, tree, removed=_is_masked_node, is_leaf=_is_mask_leaf)
    mask_def, entries, subtrees = _tree.prefix_subtrees(
        mask_tree, tree, prefix_name="the mask", tree_name=tree_name, where=where, is_leaf=_is_mask_leaf
    )
    flags = [_mask_value(path, value, where) for path, value in entries]
    return mask_def, flags, subtrees


def _is_masked_node(x: Any) -> bool:
    return isinstance(x, MaskedNode)


def _mask_tree(mask_def: Any, flags: list[bool], subtrees: list[Any]) -> Any:
    # One MaskedNode per masked-out mask entry (a whole subtree under a prefix mask), as optax.
    return mask_def.unflatten([sub if keep else MaskedNode() for keep, sub in zip(flags, subtrees, strict=True)])


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
    _checks.check_bool("mask_compatible_extra_args", mask_compatible_extra_args, where="masked")

    def init_fn(params: Params) -> MaskedState:
        if _is_placeholder(params):
            # One empty node (e.g. optax.tree.map_params's placeholder): nothing to mask, and the
            # inner state must hold the placeholder where it holds params.
            return MaskedState(inner_state=tx.init(params))
        mask_def, flags, subtrees = mask_flags(resolve_mask(mask, params), params, "params")
        return MaskedState(inner_state=tx.init(_mask_tree(mask_def, flags, subtrees)))

    def update_fn(
        updates: Updates, state: MaskedState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, MaskedState]:
        _checks.check_state_type(state, MaskedState, where="masked")
        mask_def, flags, subtrees = mask_flags(resolve_mask(mask, updates), updates, "updates")
        if params is not None:
            _tree.check_same_structure(updates, params, "updates", "params", where="masked")
        if mask_compatible_extra_args:
            updates_def = jax.tree.structure(updates)
            extra_args = {
                k: _mask_tree(mask_def, flags, mask_def.flatten_up_to(v)) if jax.tree.structure(v) == updates_def else v
                for k, v in extra_args.items()
            }
        masked_params = None if params is None else _mask_tree(mask_def, flags, mask_def.flatten_up_to(params))
        inner_updates, inner_state = tx.update(
            _mask_tree(mask_def, flags, subtrees), state.inner_state, masked_params, **extra_args
        )
        new_subtrees = mask_def.flatten_up_to(inner_updates)
        merged = [new if keep else old for keep, new, old in zip(flags, new_subtrees, subtrees, strict=True)]
        return mask_def.unflatten(merged), MaskedState(inner_state=inner_state)

    return GradientTransformation(init_fn, update_fn)


def _is_placeholder(params: Any) -> bool:
    treedef = jax.tree.structure(params)
    return params is not None and treedef.num_leaves == 0 and treedef.num_nodes == 1
