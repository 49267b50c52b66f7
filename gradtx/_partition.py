"""Parameter groups: ``partition``, torch's ``param_groups`` for JAX (``multi_transform`` is in compat).

Each leaf of the params carries a label; each label names a transform. Every group's
transform runs under :func:`gradtx.masked`, so it sees (and allocates state for) only its
own leaves. A frozen group (``set_to_zero()`` or ``freeze``) therefore allocates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from gradtx import _checks, _tree
from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation
from gradtx._masking import masked
from gradtx._stack_view import resolve_prefix

__all__ = ["PartitionState", "broadcast_labels", "partition"]


class PartitionState(NamedTuple):
    """State of :func:`partition`.

    Attributes:
      inner_states: ``{label: MaskedState(inner_state)}``, one entry per transform.
    """

    inner_states: Any


def broadcast_labels(labels: Any, tree: Any, *, tree_name: str = "params", where: str = "partition") -> Any:
    """Expands a label tree that is a prefix of ``tree`` to ``tree``'s full structure.

    The same prefix rule as masks (:func:`gradtx._tree.broadcast_prefix`): one label may cover
    a whole subtree.

    Args:
      labels: a pytree of labels with ``tree``'s structure or a prefix of it.
      tree: the params or updates.
      tree_name: how messages call ``tree``.
      where: the caller's name for messages.

    Returns:
      A tree with ``tree``'s structure whose leaves are the labels.

    Raises:
      ValueError: naming the first path where ``labels`` is not a prefix of ``tree``.
    """
    return _tree.broadcast_prefix(labels, tree, prefix_name="`param_labels`", tree_name=tree_name, where=where)


def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any | Callable[[Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Applies a different transform to each group of params, the groups given by labels.

    With ``L(i)`` the label of leaf ``i``: ``u_i = transforms[L(i)](g restricted to group L(i))_i``.
    Each group's transform runs on its own leaves only (via :func:`gradtx.masked`), so its
    state covers just that group; a ``set_to_zero()`` group holds no arrays at all.

    Args:
      transforms: a mapping ``label -> transform`` (gradtx or optax transforms).
      param_labels: a pytree of labels with the params' structure (or a prefix of it), or a
        callable ``params -> labels`` (called on the params in ``init`` and on the updates in
        ``update``). Labels must be static hashables, e.g. strings.
      mask_compatible_extra_args: also restrict to each group those extra arguments whose
        tree structure equals the updates'. Default ``False``.

    Returns:
      A :class:`GradientTransformation` with :class:`PartitionState`.

    Raises:
      TypeError: when ``transforms`` is not a mapping of transforms.
      ValueError: (in ``init``/``update``) when a label names no transform (the message lists
        those labels and the transforms that no label uses), or the labels' structure does
        not match the params (naming the first differing path).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> tx = gradtx.partition({"train": gradtx.sgd(0.5), "frozen": gradtx.set_to_zero()},
      ...                       {"w": "train", "b": "frozen"})
      >>> updates, _ = tx.update({"w": jnp.ones(2), "b": jnp.ones(2)}, tx.init(params), params)
      >>> updates["b"]
      Array([0., 0.], dtype=float32)
    """
    where = "partition"
    _checks.check_bool("mask_compatible_extra_args", mask_compatible_extra_args, where=where)
    if not isinstance(transforms, Mapping):
        raise TypeError(f"{where}: `transforms` must be a mapping label -> transform, got {type(transforms).__name__}.")
    members = {}
    for label, tx in transforms.items():
        members[label] = as_gradient_transformation(tx, where=f"{where}: transforms[{label!r}]")

    def group_masks(tree: Any, tree_name: str) -> dict[Hashable, Any]:
        labels = resolve_prefix(param_labels, tree, prefix_name="`param_labels`", where=where)
        full = broadcast_labels(labels, tree, tree_name=tree_name, where=where)
        used = []
        for label in jax.tree.leaves(full):
            if label not in used:
                used.append(label)
        missing = [label for label in used if label not in members]
        if missing:
            unused = [label for label in members if label not in used]
            raise ValueError(
                f"{where}: the labels {missing!r} name no transform (transforms: {list(members)!r}); "
                f"transforms that no label uses: {unused!r}."
            )
        # Masks over the labels as given (a prefix): one MaskedNode per label entry, as optax.
        return {label: jax.tree.map(lambda x, label=label: x == label, labels) for label in members}

    def init_fn(params: Params) -> PartitionState:
        treedef = jax.tree.structure(params)
        if treedef.num_leaves == 0 and treedef.num_nodes == 1 and params is not None:
            # One empty node (e.g. optax.tree.map_params's placeholder): no groups to split.
            return PartitionState(inner_states={label: masked(tx, True).init(params) for label, tx in members.items()})
        masks = group_masks(params, "params")
        return PartitionState(
            inner_states={
                label: masked(tx, masks[label], mask_compatible_extra_args=mask_compatible_extra_args).init(params)
                for label, tx in members.items()
            }
        )

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, PartitionState]:
        inner_states = getattr(state, "inner_states", None)
        if not isinstance(inner_states, Mapping) or set(inner_states) != set(members):
            found = sorted(map(repr, inner_states)) if isinstance(inner_states, Mapping) else type(state).__name__
            raise ValueError(
                f"{where}: expected a PartitionState with groups {list(members)!r} (from this transform's init), "
                f"got {found}."
            )
        masks = group_masks(updates, "updates")
        new_states = {}
        for label, tx in members.items():
            group_tx = masked(tx, masks[label], mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_states[label] = group_tx.update(updates, inner_states[label], params, **extra_args)
        return updates, PartitionState(inner_states=new_states)

    return GradientTransformation(init_fn, update_fn)
