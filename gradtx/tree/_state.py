"""Reading and writing optimizer state by name (``optax.tree``'s ``get``, ``set``, ``map_params``).

A state is searched by the names it is built of: a NamedTuple field (``"count"``, ``"mu"``), a
NamedTuple's class name (``"ScaleByAdamState"``) or a dict key (``"learning_rate"`` in
``inject_hyperparams``' ``hyperparams``). Paths name NamedTuple fields with :class:`NamedTupleKey`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["NamedTupleKey", "get", "get_all_with_path", "map_params", "set"]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry for the field ``name`` of a NamedTuple of class ``tuple_name``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros(2)})
      >>> path, _ = gradtx.tree.get_all_with_path(state, "mu")[0]
      >>> path[-1]
      NamedTupleKey(tuple_name='ScaleByAdamState', name='mu')
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _children(path: tuple[Any, ...], node: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """The direct children of a pytree node with their paths (none for a leaf)."""
    if _is_namedtuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    entries, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(entries) == 1 and entries[0][1] is node:
        return []
    return [((*path, *p), child) for p, child in entries]


def get_all_with_path(
    tree: Any, key: Any, filtering: Callable[[tuple[Any, ...], Any], bool] | None = None
) -> list[tuple[tuple[Any, ...], Any]]:
    """Every ``(path, value)`` in ``tree`` named ``key``, outermost first.

    A value is named ``key`` when it is a NamedTuple field or dict entry called ``key``, or a
    NamedTuple whose class is called ``key``. ``filtering(path, value)`` keeps only some.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> state = gradtx.adam(0.1).init({"w": jnp.zeros(2)})
      >>> [str(p[-1]) for p, _ in gradtx.tree.get_all_with_path(state, "count")]
      ['ScaleByAdamState.count']
    """
    found: list[tuple[tuple[Any, ...], Any]] = []

    def visit(path: tuple[Any, ...], node: Any) -> None:
        if _is_namedtuple(node):
            if type(node).__name__ == key:
                found.append((path, node))
            if isinstance(key, str) and key in node._fields:
                found.append(((*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)))
        elif isinstance(node, dict) and _has_key(node, key):
            found.append(((*path, jax.tree_util.DictKey(key)), node[key]))
        for child_path, child in _children(path, node):
            visit(child_path, child)

    visit((), tree)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def _has_key(node: dict[Any, Any], key: Any) -> bool:
    try:
        return key in node
    except TypeError:  # an unhashable key
        return False


def get(
    tree: Any, key: Any, default: Any = None, filtering: Callable[[tuple[Any, ...], Any], bool] | None = None
) -> Any:
    """The one value in ``tree`` named ``key`` (see :func:`get_all_with_path`), or ``default``.

    Raises:
      KeyError: when more than one value is named ``key`` (narrow it with ``filtering``).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> state = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1).init({"w": jnp.zeros(2)})
      >>> round(float(gradtx.tree.get(state, "learning_rate")), 6)
      0.1
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(tuple(p)) if p else "<root>" for p, _ in found[:4])
        raise KeyError(f"tree.get: {len(found)} values are named {key!r} (at {paths}); pass `filtering` to pick one.")
    return found[0][1] if found else default


def set(tree: Any, filtering: Callable[[tuple[Any, ...], Any], bool] | None = None, /, **kwargs: Any) -> Any:
    """``tree`` with the values named by ``kwargs``' keys replaced (NamedTuple fields, dict entries or
    whole NamedTuples named by class).

    Raises:
      KeyError: when a key names nothing in ``tree`` (given ``filtering``).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> state = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1).init({"w": jnp.zeros(2)})
      >>> state = gradtx.tree.set(state, learning_rate=jnp.asarray(0.01))
      >>> round(float(state.hyperparams["learning_rate"]), 6)
      0.01
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            extra = " given the filtering" if filtering is not None else ""
            raise KeyError(f"tree.set: nothing in the tree is named {key!r}{extra}.")

    def keep(path: tuple[Any, ...], value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def rebuild(path: tuple[Any, ...], node: Any) -> Any:
        if _is_namedtuple(node):
            name = type(node).__name__
            if name in kwargs and keep(path, node):
                return kwargs[name]
            fields = {}
            for f in node._fields:
                child_path = (*path, NamedTupleKey(name, f))
                child = getattr(node, f)
                fields[f] = kwargs[f] if f in kwargs and keep(child_path, child) else rebuild(child_path, child)
            return node._replace(**fields)
        if isinstance(node, dict):
            out = {}
            for k, child in node.items():
                child_path = (*path, jax.tree_util.DictKey(k))
                out[k] = (
                    kwargs[k]
                    if isinstance(k, str) and k in kwargs and keep(child_path, child)
                    else rebuild(child_path, child)
                )
            return type(node)(out) if type(node) is not dict else out
        children = _children(path, node)
        if not children:
            return node
        treedef = jax.tree.structure(node, is_leaf=lambda x: x is not node)
        return treedef.unflatten([rebuild(p, c) for p, c in children])

    return rebuild((), tree)


@jax.tree_util.register_pytree_node_class
class _ParamsPlaceholder:
    """An empty pytree node that stands for the params in :func:`map_params`."""

    def tree_flatten(self) -> tuple[tuple[()], None]:
        return (), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> _ParamsPlaceholder:
        del aux, children
        return cls()


def map_params(
    initable: Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Applies ``f`` to every copy of the params tree inside an optimizer state.

    The optimizer (or its ``init``) is initialised on a placeholder; wherever the placeholder
    lands in that state, the matching part of ``state`` is a params-shaped tree and becomes
    ``jax.tree.map(f, part, *rest, is_leaf=is_leaf)``. The rest is kept, or passed through
    ``transform_non_params``. Typical use: shardings for the state from those of the params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.adam(0.1)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> doubled = gradtx.tree.map_params(tx, lambda x: x + 2.0, state)
      >>> doubled[0].mu["w"], doubled[0].count
      (Array([2., 2.], dtype=float32), Array(0, dtype=int32))
    """
    init = initable.init if hasattr(initable, "init") else initable
    with_placeholders = init(_ParamsPlaceholder())

    def visit(marker: Any, value: Any) -> Any:
        if isinstance(marker, _ParamsPlaceholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return transform_non_params(value) if transform_non_params is not None else value

    return jax.tree.map(visit, with_placeholders, state, is_leaf=lambda x: isinstance(x, _ParamsPlaceholder))
