"""Sharding in types (explicit mesh axes): read an array's split, reshard on its own mesh, and
compare the types of two trees.

In explicit mode every array's sharding is part of its type; the wrappers that regroup
leaves (``flatten``, ``stacked``, 8-bit state, Muon's Gram matrices) and the checks of
``update`` use these helpers to keep the types valid and to name a mismatch.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.core import Tracer

from gradtx import _tree


def _explicit_spec(x: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """``(type, spec padded to its rank)`` of an array typed on a mesh (explicit mode), else ``None``."""
    if not isinstance(x, (jax.Array, Tracer)):
        return None
    aval = jax.typeof(x)
    sharding = getattr(aval, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding) or sharding.mesh.empty:
        return None
    spec = tuple(sharding.spec)
    return aval, spec + (None,) * (len(aval.shape) - len(spec))


def split_sharding(x: Any) -> Any:
    """``x``'s sharding when its type is on an explicit mesh and split along some dim, else ``None``.

    Under ``Auto`` shardings (plain ``jax.jit``) types carry no sharding, so this is ``None``:
    XLA places the results. Wrappers that reshape or regroup leaves (``flatten``, ``stacked``)
    use it to keep explicit-mode types valid.
    """
    try:
        sharding = jax.typeof(x).sharding
    except (TypeError, AttributeError):
        return None
    mesh = getattr(sharding, "mesh", None)
    spec = getattr(sharding, "spec", None)
    if not getattr(mesh, "are_all_axes_explicit", False) or spec is None or all(s is None for s in spec):
        return None
    return sharding


def on_own_mesh(like: Any, spec: Any) -> jax.sharding.NamedSharding:
    """``spec`` as a ``NamedSharding`` on the mesh of ``like``'s type.

    A bare ``PartitionSpec`` (for ``reshard`` or an ``out_sharding``) needs a mesh context
    (``jax.set_mesh``); explicit-mode arrays carry their mesh in their type, so the transforms
    that regroup leaves work without one, as eager ops on sharded arrays do.
    """
    return jax.sharding.NamedSharding(jax.typeof(like).sharding.mesh, jax.sharding.PartitionSpec(*spec))


def reshard_on_own_mesh(x: Any, spec: Any, like: Any = None) -> Any:
    """``jax.sharding.reshard(x, spec)`` on the mesh of ``like``'s type (``x``'s when ``None``)."""
    return jax.sharding.reshard(x, on_own_mesh(x if like is None else like, spec))


def check_sharding_types(
    expected: Any, found: Any, expected_name: str, found_name: str, *, where: str, strict: bool
) -> None:
    """Explicit sharding mode: raises where ``found`` is sharded along a dim unlike ``expected``.

    Explicit mode resolves a mix silently: ``float32[8@data,4]`` state with ``float32[8,4@model]``
    updates gives ``float32[8@data,4@model]``, a new state type (a retrace every step, and state no
    longer placed like its param). An unsharded dim of ``found`` is always fine (it broadcasts).
    ``strict``: a dim of ``found`` sharded where ``expected``'s is not is a mismatch too (per-parameter
    state); otherwise only two different mesh axes on one dim are (params, which ZeRO may keep
    replicated while gradients and state are partitioned). Arrays without mesh types (an ``Auto``
    mesh, one device) are not checked.

    Raises:
      ValueError: naming the first such path, both types, and how to reshard.
    """
    expected_leaves = jax.tree_util.tree_flatten_with_path(expected)[0]
    found_leaves = jax.tree.leaves(found)
    if len(expected_leaves) != len(found_leaves):
        return  # the structure check reports this
    for (path, e), f in zip(expected_leaves, found_leaves, strict=True):
        typed_e, typed_f = _explicit_spec(e), _explicit_spec(f)
        if typed_e is None or typed_f is None or len(typed_e[1]) != len(typed_f[1]):
            continue
        (aval_e, spec_e), (aval_f, spec_f) = typed_e, typed_f
        clash = any(b is not None and a != b and (strict or a is not None) for a, b in zip(spec_e, spec_f, strict=True))
        if clash:
            raise ValueError(
                f"{where}: sharding mismatch at {_tree.path_str(path)}: {expected_name} is {aval_e.str_short()} "
                f"but {found_name} is {aval_f.str_short()}; explicit sharding mode would silently change the "
                f"state's type. Reshard the {found_name} first, e.g. `jax.sharding.reshard(grads, "
                f"jax.tree.map(lambda p: jax.typeof(p).sharding, params))`."
            )
