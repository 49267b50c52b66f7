"""What a transform inside ``stacked`` or ``flatten`` is given, for its masks and its statistics.

Inside :func:`gradtx.stacked`, the inner transform sees a dict of stacks (one per group of
leaves of equal shape and dtype), or with ``per_leaf=True`` one leaf of a stack at a time;
inside :func:`gradtx.flatten`, one vector of all leaves. A mask written for the user's params
(``{"w": True, "b": False}``, or ``lambda p: ...`` that looks at ``ndim`` or at key paths)
would be matched against those: a tree fails to match, and a function silently sees stacked
shapes and group names. The wrappers therefore record here the tree they were given and how
its leaves are grouped, and :func:`resolve_prefix` carries a prefix from that tree to the
groups: each group gets the value its leaves share. Transforms that take a statistic per leaf
(a norm, a mean, a factorization) call :func:`check_per_leaf`, which raises where they would
take it per stack or over the vector; those that take one over the whole tree call
:func:`check_whole_tree`, which raises where they are given one leaf.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree

__all__ = [
    "StackLayoutError",
    "StackView",
    "check_outside",
    "check_per_leaf",
    "check_typed_key",
    "check_whole_tree",
    "resolve_prefix",
    "viewing",
]


class StackLayoutError(ValueError):
    """A transform or mask whose meaning the layout of ``stacked``/``flatten`` would change; says what to do."""


@dataclass(frozen=True)
class StackView:
    """What ``inner`` sees inside ``stacked`` (or ``flatten``).

    Attributes:
      tree: the tree the wrapper was given (the params in ``init``, the updates in ``update``).
      groups: group name -> indices of its leaves in ``tree``'s flattening order.
      paths: each leaf's printable key path.
      group: the group whose one array ``inner`` sees now: a leaf of it (``per_leaf``), or
        ``flatten``'s vector; ``None`` when ``inner`` sees the dict of all stacks.
      per_leaf: whether that array is one leaf of ``tree`` (``stacked(..., per_leaf=True)``).
      wrapper: ``"stacked"`` or ``"flatten"``, for messages.
    """

    tree: Any
    groups: dict[str, list[int]]
    paths: list[str]
    group: str | None = None
    per_leaf: bool = False
    wrapper: str = "stacked"

    def group_names(self) -> str:
        """The first few group names, for messages: ``float32[2,3], float32[3], ...``."""
        names = sorted(self.groups)
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    def sees(self, tree: Any) -> bool:
        """Whether ``tree`` is what ``inner`` is given here: the dict of stacks, or one array."""
        if self.group is not None:
            return jax.tree_util.treedef_is_leaf(jax.tree.structure(tree))
        return isinstance(tree, dict) and set(tree) == set(self.groups)


_CURRENT: contextvars.ContextVar[StackView | None] = contextvars.ContextVar("gradtx_stack_view", default=None)


@contextlib.contextmanager
def viewing(view: StackView) -> Iterator[None]:
    """Makes ``view`` the one :func:`resolve_prefix` consults, for the ``with`` block."""
    token = _CURRENT.set(view)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _is_prefix_of(prefix: Any, tree: Any, is_leaf: Callable[[Any], bool] | None) -> bool:
    try:
        jax.tree.structure(prefix, is_leaf=is_leaf).flatten_up_to(tree)
    except (ValueError, TypeError):
        return False
    return True


def _is_removed(tree: Any) -> bool:
    # A subtree without leaves (an outer mask's MaskedNode) in what the wrapper was given.
    return jax.tree.structure(tree).num_leaves == 0


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # a traced or non-scalar value: the caller's own check names it
        return False


def resolve_prefix(
    prefix: Any,
    tree: Any,
    *,
    prefix_name: str,
    where: str,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """``prefix(tree)`` when ``prefix`` is a function, else ``prefix``; inside a wrapper, carried to its groups.

    Outside :func:`gradtx.stacked` and :func:`gradtx.flatten` (or when ``tree`` is not what
    their ``inner`` is given, e.g. a subtree) this is the usual rule for masks and labels.
    Inside, a function is called on the user's tree, and a tree written for the user's tree is
    broadcast over its leaves; each group then gets the value that its leaves share: a dict
    ``{group: value}``, or one value when ``inner`` sees one array (a leaf with
    ``per_leaf=True``, or ``flatten``'s vector of all leaves). A prefix that already matches
    what ``inner`` sees (one that another gradtx transform derived from a carried one, or a
    bare ``True``) is kept.

    Raises:
      ValueError: when the leaves of one group get different values (naming two of them and
        the group), or when a prefix tree matches neither the stacks nor the user's tree.
    """
    view = _CURRENT.get()
    is_function = _tree.is_prefix_function(prefix)
    if view is None or not view.paths or not view.sees(tree):
        return prefix(tree) if is_function else prefix
    if is_function:
        prefix = prefix(view.tree)
    elif _is_prefix_of(prefix, tree, is_leaf):
        return prefix
    if not _is_prefix_of(prefix, view.tree, is_leaf):
        prefix = _tree.prune_prefix(prefix, view.tree, removed=_is_removed, is_leaf=is_leaf)
    full = _tree.broadcast_prefix(
        prefix,
        view.tree,
        prefix_name=prefix_name,
        tree_name=f"the tree given to {view.wrapper}",
        where=where,
        is_leaf=is_leaf,
    )
    values = jax.tree.structure(view.tree).flatten_up_to(full)
    names = [view.group] if view.group is not None else list(view.groups)
    per_group: dict[str, Any] = {}
    for name in names:
        members = view.groups[name]
        first = values[members[0]]
        for i in members[1:]:
            if not _same(values[i], first):
                differ = (
                    f"{where}: inside {view.wrapper}, {prefix_name} is {first!r:.40} at {view.paths[members[0]]} but "
                    f"{values[i]!r:.40} at {view.paths[i]}"
                )
                if view.wrapper == "flatten":
                    raise StackLayoutError(
                        f"{differ}, two leaves that the inner transform sees in one vector; apply it outside "
                        "flatten, e.g. `masked(flatten(inner), mask)` or `partition({...: flatten(...)}, labels)`"
                    )
                raise StackLayoutError(
                    f"{differ}, two leaves of the group {name} that the inner transform sees as one stack; apply it "
                    "outside stacked, e.g. `masked(stacked(inner), mask)`, `partition({...: stacked(...)}, labels)`, "
                    "or for AdamW's decay mask "
                    "`chain(stacked(scale_by_adam()), add_decayed_weights(wd, mask), scale_by_learning_rate(lr))`"
                )
        per_group[name] = first
    return per_group[view.group] if view.group is not None else per_group


def check_per_leaf(tree: Any, *, where: str, statistic: str) -> None:
    """Raises where a transform that takes ``statistic`` per leaf is given stacks or ``flatten``'s vector.

    In ``stacked``'s default mode the inner transform sees one stack ``(n, *shape)`` per group of
    leaves, so a norm, mean or factorization per leaf would be taken over a whole stack, or
    along the stacking dim; inside ``flatten``, over the vector of all leaves: numbers unlike
    the transform's on the tree, with no error. With ``stacked(..., per_leaf=True)`` it sees each
    leaf as a tree of its own, which is exact.

    Raises:
      ValueError: naming ``where``, the statistic and ``per_leaf=True``.
    """
    view = _CURRENT.get()
    if view is None or view.per_leaf or not view.sees(tree):
        return
    if view.wrapper == "flatten":
        raise StackLayoutError(
            f"{where} takes {statistic} per leaf, but inside flatten it is given one vector of all "
            f"{len(view.paths)} leaves, over which it would take one: run it without flatten, or as "
            "stacked(inner, per_leaf=True), which gives it each leaf as a tree of its own"
        )
    raise StackLayoutError(
        f"{where} takes {statistic} per leaf, but inside stacked it is given one stack of leaves per shape "
        f"and dtype ({view.group_names()}), over which it would take one per stack: use stacked(..., per_leaf=True), "
        "which gives it each leaf as a tree of its own"
    )


def check_whole_tree(tree: Any, *, where: str, statistic: str, outside: str | None = None) -> None:
    """Raises where a transform that takes ``statistic`` over the whole tree is given one leaf by ``stacked``.

    With ``per_leaf=True``, ``stacked`` gives its inner transform each leaf as a tree of its own,
    so a global norm (clipping, normalization, a skipped step) would be taken per leaf, with no
    error. In the default mode the stacks hold every leaf, so it is exact there.

    Args:
      tree: what the transform is given.
      where: the transform's name.
      statistic: what it takes over the whole tree, for the message.
      outside: how to apply it outside ``stacked``, for the message; default
        ``chain(<where>(...), stacked(inner, per_leaf=True))``.

    Raises:
      ValueError: naming ``where``, the statistic and how to apply it outside.
    """
    view = _CURRENT.get()
    if view is not None and view.per_leaf and len(view.paths) > 1 and view.sees(tree):
        outside = outside or f"chain({where}(...), stacked(inner, per_leaf=True))"
        raise StackLayoutError(
            f"{where} takes {statistic} over the whole tree, but stacked(..., per_leaf=True) gives it one leaf "
            f"at a time (of {len(view.paths)}), so it would take one per leaf: apply it outside stacked, e.g. "
            f"{outside}, or use the default per_leaf=False"
        )


def check_outside(tree: Any, *, where: str, needs: str, instead: str | None = None) -> None:
    """Raises where a transform that needs the user's own tree is given what a wrapper makes of it.

    A line search calls ``value_fn`` on candidate params, and Sophia's Hutchinson estimator
    differentiates ``obj_fn`` at the params: inside ``stacked`` or ``flatten`` those would be
    stacks, one leaf or one vector, not the params the user's function was written for.

    Args:
      tree: what the transform is given.
      where: the transform's name.
      needs: what it does with the user's tree, for the message.
      instead: what to do instead, for the message; default ``chain it outside, e.g.
        chain(<wrapper>(inner), <where>(...))``.

    Raises:
      ValueError: naming ``where``, what it needs and what to do instead.
    """
    view = _CURRENT.get()
    if view is None or not view.sees(tree):
        return
    if view.wrapper == "flatten":
        given = "one vector of all leaves"
    elif view.per_leaf:
        given = "one leaf at a time"
    else:
        given = "one stack of leaves per shape and dtype"
    instead = instead or f"chain it outside, e.g. chain({view.wrapper}(inner), {where}(...))"
    raise StackLayoutError(f"{where} {needs}, but inside {view.wrapper} it is given {given}: {instead}")


def check_typed_key(tree: Any, key: Any, *, where: str) -> None:
    """Raises where ``stacked(..., per_leaf=True)`` could not give each leaf a stream of its own.

    ``stacked`` folds each leaf's index into the typed PRNG keys (``jax.random.key``) of its
    inner state, so that the leaves of a group draw independent noise; a raw ``uint32`` key
    (``jax.random.PRNGKey``) is not recognizable as a key, and every leaf would draw the same.

    Raises:
      ValueError: naming ``where`` and the key's dtype, and saying to pass a typed key.
    """
    view = _CURRENT.get()
    if view is None or not view.per_leaf or not view.sees(tree):
        return
    if _tree.is_typed_key(key):
        return
    raise StackLayoutError(
        f"{where}: inside stacked(..., per_leaf=True) each leaf needs a random stream of its own, which stacked "
        f"derives from a typed key (jax.random.key); this key is raw {jnp.result_type(key)}{list(jnp.shape(key))}, "
        "so every leaf of a group would draw the same noise: pass jax.random.key(seed) or an int seed"
    )
