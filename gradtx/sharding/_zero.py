"""ZeRO stages 0-3 as a jitted, donated train step: ``zero_train_step``.

The helper only chooses shardings; the step itself is the plain
``jax.jit(step, in_shardings=..., out_shardings=..., donate_argnums=...)`` a user would write,
and every sharding it chose is returned, so the same layout can be used by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import AbstractMesh, AxisType, Mesh, NamedSharding, PartitionSpec, Sharding

from gradtx._base import GradientTransformation, apply_updates
from gradtx.sharding._offload import with_memory_kind
from gradtx.sharding._state import gradient_shardings, state_shardings

__all__ = ["ZeroTrainStep", "zero_train_step"]


class ZeroTrainStep(NamedTuple):
    """What :func:`zero_train_step` returns: the step, an initializer, and every sharding used.

    Attributes:
      step: ``step(params, opt_state, batch) -> (params, opt_state, loss)``, jitted with these
        shardings; params and state are donated (their input buffers are reused).
      init: ``init(params) -> (params, opt_state)``: a copy of the params placed on
        ``param_shardings`` (the caller's arrays survive the donating step) and the state made
        directly in its sharded layout (no device holds it whole).
      param_shardings: where params live between steps (partitioned over the data axis at stage 3).
      state_shardings: where optimizer state lives between steps (``"pinned_host"`` when offloaded).
      grad_shardings: the gradients' constraint at stage 2, else ``None``.
      batch_sharding: the batch's sharding (split over the data axis along the leading dimension).
    """

    step: Callable[..., Any]
    init: Callable[..., Any]
    param_shardings: Any
    state_shardings: Any
    grad_shardings: Any
    batch_sharding: Any


def _explicit_axes(mesh: Mesh | AbstractMesh) -> tuple[str, ...]:
    return tuple(name for name, kind in zip(mesh.axis_names, mesh.axis_types, strict=True) if kind == AxisType.Explicit)


def _split(s: NamedSharding) -> tuple[NamedSharding, NamedSharding]:
    """``s`` as ``(its explicit-axes part, its auto-axes part)``: the two take different calls."""
    explicit = set(_explicit_axes(s.mesh))

    def keep(entry: Any, want_explicit: bool) -> Any:
        axes = () if entry is None else entry if isinstance(entry, tuple) else (entry,)
        kept = tuple(a for a in axes if (a in explicit) == want_explicit)
        return None if not kept else kept[0] if len(kept) == 1 else kept

    def part(want_explicit: bool) -> NamedSharding:
        spec = PartitionSpec(*(keep(e, want_explicit) for e in s.spec))
        return NamedSharding(s.mesh, spec, memory_kind=s.memory_kind)

    return part(True), part(False)


def _constrain(tree: Any, shardings: Any) -> Any:
    """Lays ``tree`` out as ``shardings`` inside a jitted function, in either sharding mode.

    Explicit mesh axes carry sharding in the types, changed with ``reshard``; auto axes take a
    ``with_sharding_constraint`` hint. Each refuses the other's axes, so a mesh mixing both
    (explicit data axis, auto model axis) takes one call per part.
    """

    def one(x: Any, s: NamedSharding) -> Any:
        explicit, auto = _split(s)
        n_explicit = len(_explicit_axes(s.mesh))
        if n_explicit:
            x = jax.sharding.reshard(x, explicit)
        if n_explicit < len(s.mesh.axis_names):
            x = jax.lax.with_sharding_constraint(x, auto)
        return x

    return jax.tree.map(one, tree, shardings)


def _as_shardings(mesh: Mesh, params: Any, param_shardings: Any) -> Any:
    """``param_shardings`` as a pytree of ``NamedSharding`` on ``mesh`` (specs and ``None`` allowed)."""
    if param_shardings is None:
        param_shardings = PartitionSpec()
    if isinstance(param_shardings, (PartitionSpec, Sharding)):
        return jax.tree.map(lambda _: _named(mesh, param_shardings), params)

    def is_leaf(x: Any) -> bool:
        return x is None or isinstance(x, (PartitionSpec, Sharding))

    leaves, treedef = jax.tree.flatten(param_shardings, is_leaf=is_leaf)
    if treedef != jax.tree.structure(params):
        raise ValueError(
            "zero_train_step: param_shardings must have the params' structure (or be one PartitionSpec or "
            f"NamedSharding for every param); params has {jax.tree.structure(params)}, param_shardings has {treedef}"
        )
    # `None` for one param means replicated, as for all of them.
    return jax.tree.unflatten(treedef, [_named(mesh, PartitionSpec() if s is None else s) for s in leaves])


def _named(mesh: Mesh, s: Any) -> Any:
    if isinstance(s, PartitionSpec):
        return NamedSharding(mesh, s)
    if isinstance(s, NamedSharding) and s.mesh != mesh:
        raise ValueError(
            f"zero_train_step: a param sharding uses mesh {s.mesh}, not the step's mesh {mesh}; "
            "pass PartitionSpecs or NamedShardings on that mesh"
        )
    return s


def zero_train_step(
    loss_fn: Callable[[Any, Any], jax.Array],
    tx: GradientTransformation,
    mesh: Mesh,
    params: Any,
    param_shardings: Any = None,
    *,
    zero_stage: int = 1,
    zero_axis: str = "data",
    batch_sharding: Any = None,
    offload: bool = False,
    donate: bool = True,
) -> ZeroTrainStep:
    """A jitted, donated data-parallel train step with ZeRO stage 0, 1, 2 or 3.

    With :math:`N` devices on ``zero_axis`` and the batch split over them:

    - stage 0: state mirrors the params (plain data parallelism; each device holds all of it);
    - stage 1: optimizer state partitioned over ``zero_axis`` (:func:`state_shardings` with
      ``zero_axis``): each device keeps :math:`1/N` of it and XLA gathers the updated params;
    - stage 2: also the gradients constrained to the state's partitioning
      (:func:`gradient_shardings`), so they are reduce-scattered rather than all-reduced;
    - stage 3 (FSDP): the params themselves partitioned the same way, gathered for the
      forward pass; the state follows the params.

    ``offload=True`` keeps the state in host memory (``"pinned_host"``) between steps: the step
    moves it to the devices first and its output shardings move it back (ZeRO-Offload).

    The step is ``jax.jit(step, in_shardings=(P, S, B), out_shardings=(P, S, R),
    donate_argnums=(0, 1))`` with the shardings returned here. On a mesh of explicit axes (the
    default of ``jax.make_mesh``), from stage 1 on, ``tx.update`` runs under
    ``jax.sharding.auto_axes`` with its outputs pinned to the partitioned layout, since partitioned
    statistics that broadcast against each other (Adafactor, SM3) have no valid explicit typing.
    A mesh mixing explicit and auto axes works too: its explicit axes are resharded and its
    auto axes constrained.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar loss``.
      tx: the optimizer, any :class:`~gradtx.GradientTransformation` whose ``update`` takes
        ``(grads, state, params)``.
      mesh: the device mesh; ``zero_axis`` is its data-parallel axis.
      params: the params (arrays or ``jax.ShapeDtypeStruct``): their shapes fix the shardings.
      param_shardings: the params' compute layout (tensor parallelism over other axes): a pytree
        of ``NamedSharding`` or ``PartitionSpec`` with the params' structure (``None`` leaves:
        replicated), one for all, or ``None`` (replicated).
      zero_stage: 0, 1, 2 or 3. Default 1.
      zero_axis: the mesh axis the batch and the ZeRO partitions are split over. Default ``"data"``.
      batch_sharding: the batch's sharding (a ``Sharding`` or pytree prefix of them); default
        ``NamedSharding(mesh, PartitionSpec(zero_axis))``: leading dimension split.
      offload: keep optimizer state in ``"pinned_host"`` memory between steps. Default ``False``.
      donate: donate params and state to the step. Default ``True``.

    Returns:
      A :class:`ZeroTrainStep` ``(step, init, param_shardings, state_shardings, grad_shardings,
      batch_sharding)``.

    Raises:
      ValueError: for a ``zero_stage`` other than 0-3, a ``zero_axis`` not in the mesh, shardings
        whose structure differs from the params', or ``offload`` on devices without pinned host
        memory.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import gradtx
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> params = {"w": jnp.zeros((8, 8))}
      >>> def loss_fn(p, batch):
      ...     return jnp.mean((batch @ p["w"] - 1.0) ** 2)
      >>> zero = gradtx.sharding.zero_train_step(loss_fn, gradtx.adam(0.1), mesh, params, zero_stage=2)
      >>> params, state = zero.init(params)
      >>> params, state, loss = zero.step(params, state, jnp.ones((4, 8)))
      >>> round(float(loss), 3)
      1.0

    References:
      Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
      Models", https://arxiv.org/abs/1910.02054, 2020. Ren et al., "ZeRO-Offload: Democratizing
      Billion-Scale Model Training", https://arxiv.org/abs/2101.06840, 2021.
    """
    where = "zero_train_step"
    if zero_stage not in (0, 1, 2, 3) or isinstance(zero_stage, bool):
        raise ValueError(f"{where}: zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if zero_axis not in mesh.axis_names:
        raise ValueError(f"{where}: zero_axis {zero_axis!r} is not an axis of the mesh; its axes are {mesh.axis_names}")
    compute_shardings = _as_shardings(mesh, params, param_shardings)
    partitioned = gradient_shardings(params, compute_shardings, zero_axis=zero_axis)
    stored = partitioned if zero_stage == 3 else compute_shardings
    memory_kind = "pinned_host" if offload else None
    opt_shardings = state_shardings(
        tx, params, stored, zero_axis=zero_axis if zero_stage >= 1 else None, memory_kind=memory_kind
    )
    device_opt_shardings = with_memory_kind(opt_shardings, "device") if offload else opt_shardings
    grad_shardings = partitioned if zero_stage == 2 else None
    if batch_sharding is None:
        batch_sharding = NamedSharding(mesh, PartitionSpec(zero_axis))
    replicated = NamedSharding(mesh, PartitionSpec())

    update: Callable[..., Any] = tx.update
    explicit_axes = _explicit_axes(mesh)
    if explicit_axes and zero_stage >= 1:
        # With explicit axes every intermediate's sharding is part of its type, and a partitioned
        # statistic broadcast against another (Adafactor's rows times columns, SM3's per-dim
        # accumulators) may ask for one axis on two dimensions. The update runs with those axes
        # auto instead: XLA's propagation lays out the intermediates, and the outputs' explicit
        # parts are pinned (the auto axes of a mixed mesh are the jit's out_shardings' job).
        def explicit_part(tree: Any) -> Any:
            return jax.tree.map(lambda s: _split(s)[0], tree)

        update = jax.sharding.auto_axes(
            tx.update,
            axes=explicit_axes,
            out_sharding=(explicit_part(partitioned), explicit_part(device_opt_shardings)),
        )

    def step(params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, jax.Array]:
        if offload:
            opt_state = jax.device_put(opt_state, device_opt_shardings)

        def loss_of(stored_params: Any) -> jax.Array:
            # Stage 3 gathers each partitioned param for the compute; its transpose
            # reduce-scatters the gradient back to the partitioned layout.
            p = _constrain(stored_params, compute_shardings) if zero_stage == 3 else stored_params
            return loss_fn(p, batch)

        loss, grads = jax.value_and_grad(loss_of)(params)
        if grad_shardings is not None:
            grads = _constrain(grads, grad_shardings)
        updates, opt_state = update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, loss

    jitted = jax.jit(
        step,
        in_shardings=(stored, opt_shardings, batch_sharding),
        out_shardings=(stored, opt_shardings, replicated),
        donate_argnums=(0, 1) if donate else (),
    )
    make_state = jax.jit(tx.init, in_shardings=(stored,), out_shardings=opt_shardings)
    copy = jax.jit(lambda p: jax.tree.map(jnp.copy, p), in_shardings=(stored,), out_shardings=stored)

    def init(params: Any) -> tuple[Any, Any]:
        # A copy made by a jitted program: the step donates its inputs, and `device_put` may
        # leave a shard sharing the caller's buffer (jax 0.10.2 on CPU even with may_alias=False).
        placed = copy(jax.device_put(params, stored))
        return placed, make_state(placed)

    return ZeroTrainStep(jitted, init, stored, opt_shardings, grad_shardings, batch_sharding)
