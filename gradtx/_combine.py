"""Composition: ``chain`` and ``named_chain``."""

from __future__ import annotations

import collections
from typing import Any

import jax

from gradtx import _checks
from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation

__all__ = ["chain", "named_chain"]


def _member_update(
    t: GradientTransformation, updates: Updates, state: Any, params: Params | None, extra_args: Any, *, where: str
) -> tuple[Updates, Any]:
    """``t.update``; a state of the wrong type (another optimizer's, a checkpoint mix-up) raises ``TypeError``.

    A member given a state of another type fails with ``AttributeError`` on the first field
    it lacks. That error is turned into one that names the state type the member's ``init``
    makes (found by ``jax.eval_shape``, only on this error path) and the type found.
    """
    try:
        return t.update(updates, state, params, **extra_args)
    except AttributeError as error:
        try:
            expected = type(jax.eval_shape(t.init, updates if params is None else params)).__name__
        except Exception:  # the original error is the better report then
            raise error from None
        found = _checks.state_class_name(state)
        if expected == found:
            raise
        raise TypeError(
            f"{where}: expected a {expected} state (from this transform's init), found {found} ({error}); "
            "was the state made by another optimizer, or restored from another optimizer's checkpoint?"
            + _checks.foreign_state_hint(state)
        ) from error


def chain(*transforms: Any) -> GradientTransformation:
    """Applies transforms one after the other; the state is the tuple of their states.

    ``update`` passes the updates through each transform in order, forwarding ``params``
    and every extra keyword argument to each. Foreign (e.g. optax) transforms are accepted:
    one whose ``update`` takes no ``**extra_args`` is wrapped so that it ignores them.

    Args:
      *transforms: gradient transformations, applied in the given order.

    Returns:
      A :class:`GradientTransformation` whose state is ``tuple(t.init(params) for t in transforms)``.

    Raises:
      TypeError: when an argument is not a transform, naming its position.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.scale(-0.1))
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> updates["w"].round(4)
      Array([-0.06, -0.08], dtype=float32)
    """
    members = tuple(as_gradient_transformation(t, where=f"chain: argument {i}") for i, t in enumerate(transforms))

    def init_fn(params: Params) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in members)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, tuple[Any, ...]]:
        if not isinstance(state, tuple) or len(state) != len(members):
            raise ValueError(
                f"chain: expected a state tuple of {len(members)} member states (from this chain's init), "
                f"got {type(state).__name__} of length {len(state) if isinstance(state, tuple) else 'n/a'}."
            )
        new_states = []
        for i, (t, s) in enumerate(zip(members, state, strict=True)):
            updates, s = _member_update(t, updates, s, params, extra_args, where=f"chain: transform {i}")
            new_states.append(s)
        return updates, tuple(new_states)

    return GradientTransformation(init_fn, update_fn)


def named_chain(*named_transforms: tuple[str, Any]) -> GradientTransformation:
    """Like :func:`chain`, but the state is an ordered dict keyed by each transform's name.

    Args:
      *named_transforms: ``(name, transform)`` pairs; names must be unique strings.

    Returns:
      A :class:`GradientTransformation` whose state is ``OrderedDict({name: state})`` (as optax).

    Raises:
      TypeError: when an argument is not a ``(str, transform)`` pair, naming its position.
      ValueError: when a name repeats.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.named_chain(("clip", gradtx.clip_by_global_norm(1.0)), ("adam", gradtx.adam(0.1)))
      >>> state = tx.init(params)
      >>> list(state)
      ['clip', 'adam']
      >>> type(state["adam"][0]).__name__
      'ScaleByAdamState'
    """
    names: list[str] = []
    members: list[GradientTransformation] = []
    for i, item in enumerate(named_transforms):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"named_chain: argument {i} must be a (name, transform) pair, got {item!r:.80}.")
        name, tx = item
        if name in names:
            raise ValueError(f"named_chain: the name {name!r} is used twice (arguments {names.index(name)} and {i}).")
        names.append(name)
        members.append(as_gradient_transformation(tx, where=f"named_chain: argument {i} ({name!r})"))

    def init_fn(params: Params) -> dict[str, Any]:
        # An OrderedDict, as optax: the same pytree node type (a plain dict is another one), so
        # checkpoints restore both ways, and the state lists the transforms in their order.
        return collections.OrderedDict((name, t.init(params)) for name, t in zip(names, members, strict=True))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, dict[str, Any]]:
        if not isinstance(state, dict) or set(state) != set(names):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"named_chain: expected a state dict with keys {names}, got {found}.")
        new_state = collections.OrderedDict()
        for name, t in zip(names, members, strict=True):
            updates, new_state[name] = _member_update(
                t, updates, state[name], params, extra_args, where=f"named_chain: transform {name!r}"
            )
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)
