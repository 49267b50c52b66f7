"""Frozen parameters: ``freeze`` (zero the frozen leaves' updates) and ``selective_transform``."""

from __future__ import annotations

from typing import Any

import jax

from gradtx._base import GradientTransformation, set_to_zero
from gradtx._masking import checked_mask, masked
from gradtx._partition import partition

__all__ = ["freeze", "selective_transform"]


def freeze(mask: Any) -> GradientTransformation:
    """Zeros the updates of the frozen leaves (``mask`` True) and passes the others through.

    ``u_i = 0 if mask_i else g_i``. It is ``masked(set_to_zero(), mask)``, as in optax, so its
    state is ``MaskedState(inner_state=EmptyState())``: frozen leaves cost no memory, and an
    optax checkpoint of ``optax.freeze`` restores into it.

    Args:
      mask: a Python bool (freeze all or nothing), a pytree of bools with the params'
        structure or a prefix of it, or a callable ``params -> such a tree``. The mask must be
        static.

    Returns:
      A :class:`GradientTransformation` with :class:`~gradtx.MaskedState`.

    Raises:
      ValueError: (in ``init``/``update``) when the mask's structure does not match the
        params/updates, naming the first differing path.
      TypeError: when a mask leaf is not a bool.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.freeze({"a": True, "b": False})
      >>> params = {"a": jnp.ones(2), "b": jnp.ones(2)}
      >>> updates, _ = tx.update(params, tx.init(params))
      >>> updates["a"], updates["b"]
      (Array([0., 0.], dtype=float32), Array([1., 1.], dtype=float32))
    """
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: Any, *, freeze_mask: Any) -> GradientTransformation:
    """Runs ``optimizer`` on the trainable leaves only; frozen leaves get zero updates.

    Equivalent to ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with
    ``labels = "freeze" if freeze_mask else "train"``: the optimizer allocates state only for
    the trainable leaves (unlike ``chain(optimizer, freeze(mask))``).

    Args:
      optimizer: the optimizer for the trainable leaves.
      freeze_mask: a Python bool, a pytree of bools with the params' structure (or a
        prefix of it), or a callable ``params -> such a tree``: ``True`` freezes the leaf.
        Must be static.

    Returns:
      A :class:`GradientTransformation` with :class:`~gradtx.PartitionState` (groups
      ``"train"`` and ``"freeze"``).

    Raises:
      ValueError: (in ``init``/``update``) when the mask's structure does not match the params.
      TypeError: (in ``init``/``update``) when a mask leaf is not a bool.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"backbone": jnp.ones(2), "head": jnp.ones(2)}
      >>> tx = gradtx.selective_transform(gradtx.adam(0.1), freeze_mask={"backbone": True, "head": False})
      >>> updates, state = tx.update(params, tx.init(params), params)
      >>> updates["backbone"], [round(float(u), 4) for u in updates["head"]]
      (Array([0., 0.], dtype=float32), [-0.1, -0.1])
    """

    def labels(tree: Any) -> Any:
        # Checked as `masked` checks its mask: a function is resolved on the params (it would
        # otherwise be one truthy leaf, freezing everything), and `0`/`1` are not bools.
        frozen = checked_mask(freeze_mask, tree, where="selective_transform")
        return jax.tree.map(lambda f: "freeze" if f else "train", frozen)

    return partition({"train": optimizer, "freeze": set_to_zero()}, labels)
