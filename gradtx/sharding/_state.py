"""Where optimizer state lives: ``state_shardings`` and ``gradient_shardings``.

The shardings are derived from each state leaf's *relation* to a param, found on abstract
values (``jax.eval_shape``), never from a table of optimizers, so they hold for every chain,
wrapper and user-written transform:

- a leaf with a param's shape (a per-parameter statistic: moments, accumulators, EMAs) takes
  that param's sharding;
- a leaf with a param's shape minus one dimension (Adafactor's factored row/column statistics,
  SM3's accumulators of a matrix) takes the param's spec with that dimension dropped;
- a leaf with a param's shape plus one leading dimension (a stack of per-parameter buffers,
  such as L-BFGS's memory) takes the param's spec behind an unsharded leading dimension;
- a leaf of a param's rank with some dimensions shrunk (blocked statistics, such as the
  per-block scales of :func:`gradtx.quantized_state`) keeps the spec entries of the dimensions
  whose size is unchanged, so each block's scale lives beside its block;
- everything else (counters, scalars, injected hyperparameters, PRNG keys) is replicated.

When several params relate to a leaf, the one whose key path shares the longest suffix with the
leaf's path, or with the path of a node above it, wins (``state.mu['w']`` and the
``state.mu['w'].codes`` of a quantized moment belong to ``params['w']``); the kinds above are tried in
that order among equally good paths; where the remaining candidates still disagree about a
dimension (a square matrix's row and column statistics have the same shape), that dimension is
left unsharded. A leaf sharing no key with any param is related by shape alone, and only when it
is floating and not as a block (a PRNG key's ``uint32[2]`` is no block of a vector param). Every
spec derived this way is valid for the leaf: it keeps only entries of dimensions that have the
same size in the param.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AbstractMesh, Mesh, NamedSharding, PartitionSpec, Sharding

from gradtx._base import GradientTransformation
from gradtx.sharding._offload import check_memory_kind

__all__ = ["gradient_shardings", "per_device_bytes", "state_shardings"]

Spec = tuple[Any, ...]

# How a state leaf relates to a param, in order of preference among equally good paths.
_SAME, _DROPPED, _STACKED, _BLOCKED = 0, 1, 2, 3


class _Param(NamedTuple):
    path: tuple[Any, ...]
    shape: tuple[int, ...]
    sharding: NamedSharding
    spec: Spec  # padded with None to the param's rank


def _padded_spec(sharding: NamedSharding, ndim: int) -> Spec:
    spec = tuple(sharding.spec)
    return spec + (None,) * (ndim - len(spec))


def _spec_axes(entry: Any) -> tuple[str, ...]:
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _is_sharding_like(x: Any) -> bool:
    return isinstance(x, (Sharding, PartitionSpec))


def _path_str(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(x))


def _param_entries(params: Any, param_shardings: Any, *, where: str) -> tuple[list[_Param], Mesh | AbstractMesh | None]:
    """Pairs each param leaf with its ``NamedSharding``; checks structure, kinds and one mesh."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    if isinstance(param_shardings, Sharding):
        shardings = [param_shardings] * len(leaves)
    else:
        # A PartitionSpec is a tuple: as a leaf, it gets the per-leaf message below, not a structure one.
        if isinstance(param_shardings, PartitionSpec):
            raise TypeError(
                f"{where}: param_shardings is a PartitionSpec, which names no mesh; pass "
                "jax.sharding.NamedSharding(mesh, spec) (one for every param, or a pytree of them)"
            )
        sharding_leaves, sharding_def = jax.tree_util.tree_flatten(param_shardings, is_leaf=_is_sharding_like)
        if sharding_def != treedef:
            raise ValueError(
                f"{where}: param_shardings must have the params' structure (or be one Sharding for every param); "
                f"params has {treedef}, param_shardings has {sharding_def}"
            )
        shardings = sharding_leaves
    entries = []
    mesh = None
    for (path, leaf), sharding in zip(leaves, shardings, strict=True):
        if not isinstance(sharding, NamedSharding):
            kind = "PartitionSpec" if isinstance(sharding, PartitionSpec) else type(sharding).__name__
            raise TypeError(
                f"{where}: param_shardings{_path_str(path)} is a {kind}; a NamedSharding "
                "(jax.sharding.NamedSharding(mesh, PartitionSpec(...))) is needed to name mesh axes"
            )
        if mesh is None:
            mesh = sharding.mesh
        elif sharding.mesh != mesh:
            raise ValueError(
                f"{where}: every param sharding must use one mesh; param_shardings{_path_str(path)} uses "
                f"{sharding.mesh}, an earlier one {mesh}"
            )
        shape = _shape(leaf)
        if len(sharding.spec) > len(shape):
            raise ValueError(
                f"{where}: param_shardings{_path_str(path)} has spec {sharding.spec} of rank {len(sharding.spec)} "
                f"for a param of shape {shape}"
            )
        entries.append(_Param(tuple(path), shape, sharding, _padded_spec(sharding, len(shape))))
    if mesh is None and isinstance(param_shardings, NamedSharding):
        mesh = param_shardings.mesh
    return entries, mesh


def _check_zero_axis(mesh: Mesh | AbstractMesh, zero_axis: str | None, *, where: str) -> None:
    if zero_axis is None:
        return
    if not isinstance(zero_axis, str):
        raise TypeError(f"{where}: zero_axis must be a mesh axis name (a str), got {zero_axis!r}")
    if zero_axis not in mesh.axis_names:
        raise ValueError(f"{where}: zero_axis {zero_axis!r} is not an axis of the mesh; its axes are {mesh.axis_names}")


def _common_suffix(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


class _Relations:
    """Every (kind, spec) by which a leaf shape relates to a param, indexed for quick lookup.

    Params are indexed by each suffix of their key path, so a state leaf looks up the params that
    share its longest path suffix directly instead of scanning all of them (models have thousands
    of leaves, many of one shape).
    """

    def __init__(self, params: Sequence[_Param]) -> None:
        self.params = params
        self.by_suffix: dict[tuple[Any, ...], list[int]] = {}
        self.by_shape: dict[tuple[tuple[int, ...], Any], list[tuple[int, _Param, Spec, tuple[int | None, ...]]]] = {}
        for i, param in enumerate(params):
            for k in range(len(param.path) + 1):
                self.by_suffix.setdefault(param.path[len(param.path) - k :], []).append(i)

    @staticmethod
    def kinds(shape: tuple[int, ...], param: _Param) -> list[tuple[int, Spec, tuple[int | None, ...]]]:
        """Every way a leaf of ``shape`` relates to ``param``: the kind, the spec it gives the leaf,
        and for each leaf dimension the param dimension it stands for (``None``: none)."""
        out: list[tuple[int, Spec, tuple[int | None, ...]]] = []
        same = tuple(range(len(shape)))
        if shape == param.shape:
            out.append((_SAME, param.spec, same))
        if len(shape) + 1 == len(param.shape):
            # Every dimension whose removal gives this shape is a candidate (a square matrix has
            # two); the disagreement is settled in `_leaf_spec`.
            for d in range(len(param.shape)):
                if param.shape[:d] + param.shape[d + 1 :] == shape:
                    dims = tuple(i if i < d else i + 1 for i in range(len(shape)))
                    out.append((_DROPPED, param.spec[:d] + param.spec[d + 1 :], dims))
        if len(shape) == len(param.shape) + 1 and shape[1:] == param.shape:
            out.append((_STACKED, (None, *param.spec), (None, *same[:-1])))
        if (
            len(shape) == len(param.shape)
            and shape != param.shape
            and all(n <= m for n, m in zip(shape, param.shape, strict=True))
        ):
            kept = tuple(e if n == m else None for e, n, m in zip(param.spec, shape, param.shape, strict=True))
            out.append((_BLOCKED, kept, same))
        return out

    def best(
        self, path: tuple[Any, ...], shape: tuple[int, ...], dtype: Any
    ) -> list[tuple[_Param, Spec, tuple[int | None, ...]]]:
        """The best-related params, each with the leaf's spec and dimension map: longest common
        path suffix, then kind.

        The suffix is taken of the leaf's path or of a node's above it: a param-shaped leaf
        replaced by a small pytree (the codes and scale of :func:`gradtx.quantized_state`) keeps
        the param's key one level up, ``state.mu['w'].codes``. A leaf sharing no key with any
        param falls back to :meth:`unrelated`.
        """
        found: list[tuple[int, _Param, Spec, tuple[int | None, ...]]] = []
        longest = 0
        for end in range(len(path), -1, -1):
            node = path[:end]
            for k in range(len(node), longest, -1):  # only a longer match beats the leaf's own path
                related = self.by_suffix.get(node[len(node) - k :], [])
                rels = [
                    (kind, self.params[i], spec, dims)
                    for i in related
                    for kind, spec, dims in self.kinds(shape, self.params[i])
                ]
                if rels:
                    found, longest = rels, k
                    break
        if not found:
            found = self.unrelated(shape, dtype)
        if not found:
            return []
        kind = min(r[0] for r in found)
        return [(param, spec, dims) for r_kind, param, spec, dims in found if r_kind == kind]

    def unrelated(self, shape: tuple[int, ...], dtype: Any) -> list[tuple[int, _Param, Spec, tuple[int | None, ...]]]:
        """The relations of a leaf whose path shares no key with any param's: by shape alone.

        Shape alone is weak evidence, so only a floating leaf (a statistic kept in a list or
        another structure than the params') takes a param's spec, and never a blocked one: a PRNG
        key's ``uint32[2]`` or L-BFGS's ``(m,)`` weights are no smaller copy of a vector param.
        A leaf of the one-array params (empty path) is fully matched, so its integer codes count.
        One scan of the params per distinct shape and dtype: a model has thousands of leaves.
        """
        key = (shape, jnp.dtype(dtype))
        if key not in self.by_shape:
            inexact = jnp.issubdtype(dtype, jnp.inexact)
            self.by_shape[key] = [
                (kind, param, spec, dims)
                for param in self.params
                for kind, spec, dims in self.kinds(shape, param)
                if kind != _BLOCKED and (inexact or (kind == _SAME and not param.path))
            ]
        return self.by_shape[key]


def _leaf_spec(
    path: tuple[Any, ...],
    shape: tuple[int, ...],
    dtype: Any,
    relations: _Relations,
    mesh: Mesh | AbstractMesh,
    zero_axis: str | None,
) -> Spec | None:
    """The spec of a per-parameter leaf, or ``None`` when it relates to no param (replicated)."""
    if not shape or jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        return None  # scalars (counters, hyperparameters, per-leaf norms) and typed PRNG keys
    best = relations.best(path, shape, dtype)
    if not best:
        return None
    specs = [spec for _, spec, _ in best]
    # Candidates that disagree about a dimension (equally related, differently sharded) leave it
    # unsharded: any choice would be valid, none is implied by the structure.
    spec = tuple(s[0] if all(x == s[0] for x in s) else None for s in zip(*specs, strict=True))
    # ZeRO: the leaf is partitioned along the dimension its param is (where the related params
    # agree on one), so a block's scale or a factored statistic sits beside its part of the param.
    prefer = set()
    for param, _, dims in best:
        z = _zero_dim(param.spec, param.shape, mesh, zero_axis)
        prefer.add(dims.index(z) if z is not None and z in dims else None)
    return _with_zero_axis(spec, shape, mesh, zero_axis, prefer=prefer.pop() if len(prefer) == 1 else None)


def _zero_dim(spec: Spec, shape: tuple[int, ...], mesh: Mesh | AbstractMesh, zero_axis: str | None) -> int | None:
    """The dimension ``_with_zero_axis`` partitions over ``zero_axis`` (``None``: none)."""
    new = _with_zero_axis(spec, shape, mesh, zero_axis)
    return next((d for d, (a, b) in enumerate(zip(spec, new, strict=True)) if a != b), None)


def _with_zero_axis(
    spec: Spec, shape: tuple[int, ...], mesh: Mesh | AbstractMesh, zero_axis: str | None, prefer: int | None = None
) -> Spec:
    """``spec`` also partitioned over ``zero_axis``: on ``prefer`` when that dimension is unsharded and
    divisible, else on the largest such dimension."""
    if zero_axis is None or any(zero_axis in _spec_axes(e) for e in spec):
        return spec
    size = mesh.shape[zero_axis]
    free = [d for d in range(len(shape)) if spec[d] is None and shape[d] >= size and shape[d] % size == 0]
    if not free:
        return spec  # replicated over zero_axis: no dimension divides evenly
    d = prefer if prefer in free else max(free, key=lambda i: (shape[i], -i))  # largest; the first of equal sizes
    return (*spec[:d], zero_axis, *spec[d + 1 :])


def _named(mesh: Mesh | AbstractMesh, spec: Spec, memory_kind: str | None) -> NamedSharding:
    spec = tuple(spec)
    while spec and spec[-1] is None:
        spec = spec[:-1]
    return NamedSharding(mesh, PartitionSpec(*spec), memory_kind=memory_kind)


def _abstract(params: Any) -> Any:
    def one(x: Any) -> jax.ShapeDtypeStruct:
        # Shapes and dtypes only: the relation to params is found from shapes, and placement-free
        # abstract values trace the same in every sharding mode.
        return jax.ShapeDtypeStruct(_shape(x), x.dtype if hasattr(x, "dtype") else jnp.result_type(x))

    return jax.tree.map(one, params)


def state_shardings(
    tx: GradientTransformation,
    params: Any,
    param_shardings: Any,
    *,
    zero_axis: str | None = None,
    memory_kind: str | None = None,
) -> Any:
    """The shardings of ``tx.init(params)``: where each optimizer-state leaf lives.

    The state's structure comes from ``jax.eval_shape(tx.init, params)``, so nothing is
    allocated. Each leaf's sharding follows from its relation to a param:

    - same shape as a param (moments, accumulators): the param's sharding;
    - a param's shape with dimension :math:`d` removed (factored statistics): the param's spec
      without entry :math:`d`;
    - a param's shape behind one extra leading dimension (stacked buffers): ``(None, *spec)``;
    - a param's rank with some dimensions shrunk (per-block scales): the spec entries of the
      unchanged dimensions, the shrunk ones unsharded;
    - anything else (counts, scalars, hyperparameters, keys): replicated, ``PartitionSpec()``.

    The param relating to a leaf is the one whose key path shares the longest suffix with the
    leaf's, or with the path of a node above it (``state[0].mu['w']``, and the
    ``state[0].mu['w'].codes`` and ``.scale`` of :func:`gradtx.quantized_state`, belong to
    ``params['w']``); where equally related params disagree on a dimension, that dimension is
    left unsharded. A leaf sharing no key with any param (statistics kept in a list) is related
    by shape alone, only when it is floating, and never as blocks; typed and raw PRNG keys stay
    replicated.

    With ``zero_axis`` (ZeRO, Rajbhandari et al.), every per-parameter leaf is also partitioned
    over that mesh axis, unless the spec already uses the axis: along the dimension that stands
    for the one its param's gradient is partitioned along (:func:`gradient_shardings`), when that
    dimension is unsharded and divisible by the axis size, else along its largest such
    dimension; a leaf with no such dimension stays replicated over it. With :math:`N` devices
    on ``zero_axis`` each then holds :math:`1/N` of the state.

    Args:
      tx: any :class:`~gradtx.GradientTransformation`.
      params: the params (arrays or ``jax.ShapeDtypeStruct``); only shapes and dtypes are read.
      param_shardings: a pytree of ``NamedSharding`` with the params' structure, or one
        ``NamedSharding`` for every param. All must share one mesh.
      zero_axis: a mesh axis to partition per-parameter state over, or ``None``.
      memory_kind: the memory every state sharding names (``"device"``, ``"pinned_host"`` to keep
        the state in host memory, ...), or ``None`` for the default memory.

    Returns:
      A pytree of ``NamedSharding`` with the structure of ``tx.init(params)``, for
      ``jax.jit(..., out_shardings=...)``, ``jax.device_put`` or checkpoint restore targets.

    Raises:
      ValueError: when ``param_shardings``' structure differs from the params', shardings use
        different meshes, ``zero_axis`` is not a mesh axis, or the devices lack ``memory_kind``
        (the message lists the axes or memories there are).
      TypeError: when a param sharding is not a ``NamedSharding``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> import gradtx
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> params = {"w": jnp.zeros((4, 8)), "b": jnp.zeros(8)}
      >>> shardings = gradtx.sharding.state_shardings(
      ...     gradtx.adam(1e-3), params, NamedSharding(mesh, P()), zero_axis="data")
      >>> shardings[0].mu["w"].spec, shardings[0].count.spec
      (P(None, 'data'), P())

    References:
      Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
      Models", https://arxiv.org/abs/1910.02054, 2020.
    """
    where = "state_shardings"
    entries, mesh = _param_entries(params, param_shardings, where=where)
    abstract_state = jax.eval_shape(tx.init, _abstract(params))
    state_leaves, state_def = jax.tree_util.tree_flatten_with_path(abstract_state)
    if mesh is None:
        if state_leaves:
            raise ValueError(f"{where}: params has no leaves, so no mesh to place the state on; pass one NamedSharding")
        return jax.tree_util.tree_unflatten(state_def, [])
    _check_zero_axis(mesh, zero_axis, where=where)
    check_memory_kind(mesh, memory_kind, where=where)
    relations = _Relations(entries)
    out = []
    for path, leaf in state_leaves:
        shape = _shape(leaf)
        spec = _leaf_spec(tuple(path), shape, leaf.dtype, relations, mesh, zero_axis)
        out.append(_named(mesh, () if spec is None else spec, memory_kind))
    return jax.tree_util.tree_unflatten(state_def, out)


def gradient_shardings(params: Any, param_shardings: Any, *, zero_axis: str, memory_kind: str | None = None) -> Any:
    """The params' shardings, each also partitioned over ``zero_axis``: ZeRO-2 gradients, ZeRO-3 params.

    Each param's spec gains ``zero_axis`` on its largest unsharded dimension divisible by the
    axis size (the rule :func:`state_shardings` applies to per-parameter state), so gradients
    constrained to these shardings meet the state they update on the same devices: stage 2
    reduce-scatters gradients instead of all-reducing them, and stage 3 (FSDP) keeps the params
    themselves partitioned this way.

    Args:
      params: the params (arrays or ``jax.ShapeDtypeStruct``).
      param_shardings: a pytree of ``NamedSharding`` with the params' structure, or one for all.
      zero_axis: the mesh axis to partition over (the data-parallel axis).
      memory_kind: the memory the shardings name, or ``None`` for the default.

    Returns:
      A pytree of ``NamedSharding`` with the params' structure.

    Raises:
      ValueError: as :func:`state_shardings`.
      TypeError: as :func:`state_shardings`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> import gradtx
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> grads = gradtx.sharding.gradient_shardings(
      ...     {"w": jnp.zeros((4, 8))}, NamedSharding(mesh, P()), zero_axis="data")
      >>> grads["w"].spec
      P(None, 'data')

    References:
      Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
      Models", https://arxiv.org/abs/1910.02054, 2020.
    """
    where = "gradient_shardings"
    entries, mesh = _param_entries(params, param_shardings, where=where)
    treedef = jax.tree.structure(params)
    if mesh is None:
        return jax.tree_util.tree_unflatten(treedef, [])
    _check_zero_axis(mesh, zero_axis, where=where)
    if zero_axis is None:
        raise TypeError(f"{where}: zero_axis must be a mesh axis name; the mesh's axes are {mesh.axis_names}")
    check_memory_kind(mesh, memory_kind, where=where)
    out = [_named(mesh, _with_zero_axis(p.spec, p.shape, mesh, zero_axis), memory_kind) for p in entries]
    return jax.tree_util.tree_unflatten(treedef, out)


def per_device_bytes(tree: Any, *, memory_kind: str | None = None) -> dict[Any, int]:
    """Bytes each device holds of a pytree of arrays (summed over ``addressable_shards``).

    A replicated leaf counts fully on every device; a leaf partitioned :math:`N` ways counts
    :math:`1/N` on each. Only this process's devices are listed. A leaf in host memory
    (offloaded state, ``"pinned_host"``) counts under the device it belongs to, unless
    ``memory_kind`` picks the memory to count.

    Args:
      tree: a pytree of ``jax.Array``.
      memory_kind: count only leaves in this memory (``"device"``: what the accelerators hold;
        ``"pinned_host"``: what was offloaded), or ``None`` (default) for every leaf.

    Returns:
      ``{device: bytes}`` for every device holding a shard of some counted leaf.

    Raises:
      TypeError: when a leaf is not a ``jax.Array`` (names the path).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> list(gradtx.sharding.per_device_bytes({"w": jnp.zeros((4, 8), jnp.float32)}).values())
      [128]
    """
    totals: dict[Any, int] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(leaf, jax.Array):
            raise TypeError(
                f"per_device_bytes: tree{_path_str(path)} is a {type(leaf).__name__}, not a jax.Array; "
                "only arrays placed on devices have shards to count (jax.device_put them first)"
            )
        if memory_kind is not None and leaf.sharding.memory_kind != memory_kind:
            continue
        for shard in leaf.addressable_shards:
            totals[shard.device] = totals.get(shard.device, 0) + int(shard.data.nbytes)
    return totals
