"""Frozen parameters: ``freeze`` (zero the frozen leaves' updates) and ``selective_transform``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._base import EmptyState, GradientTransformation, OptState, Params, Updates, init_empty_state, set_to_zero
from gradtx._masking import _full_mask
from gradtx._partition import partition

__all__ = ["freeze", "selective_transform"]


def freeze(mask: Any) -> GradientTransformation:
    """Zeros the updates of the frozen leaves (``mask`` True) and passes the others through.

    ``u_i = 0 if mask_i else g_i``. It holds no state, so frozen leaves cost no memory.

    Args:
      mask: a Python bool (freeze all or nothing), a pytree of bools with the params'
        structure or a prefix of it, or a callable ``params -> such a tree``. The mask must be
        static.

    Returns:
      A :class:`GradientTransformation` with :class:`~gradtx.EmptyState`.

    Raises:
      ValueError: (in ``update``) when the mask's structure does not match the updates,
        naming the first differing path.
      TypeError: when a mask leaf is not a bool.
    """

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra_args
        mask_tree = mask(updates) if callable(mask) else mask
        full = _full_mask(mask_tree, updates, "updates")
        return jax.tree.map(lambda frozen, u: jnp.zeros_like(u) if frozen else u, full, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def selective_transform(optimizer: Any, *, freeze_mask: Any) -> GradientTransformation:
    """Runs ``optimizer`` on the trainable leaves only; frozen leaves get zero updates.

    Equivalent to ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with
    ``labels = "freeze" if freeze_mask else "train"``: the optimizer allocates state only for
    the trainable leaves (unlike ``chain(optimizer, freeze(mask))``).

    Args:
      optimizer: the optimizer for the trainable leaves.
      freeze_mask: a Python bool or a pytree of bools with the params' structure (or a
        prefix of it): ``True`` freezes the leaf. Must be static.

    Returns:
      A :class:`GradientTransformation` with :class:`~gradtx.PartitionState` (groups
      ``"train"`` and ``"freeze"``).

    Raises:
      ValueError: (in ``init``/``update``) when the mask's structure does not match the params.
    """

    def labels(tree: Any) -> Any:
        del tree
        return jax.tree.map(lambda frozen: "freeze" if frozen else "train", freeze_mask)

    return partition({"train": optimizer, "freeze": set_to_zero()}, labels)
