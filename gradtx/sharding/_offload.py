"""Host offload: the memory a sharding names (``"device"``, ``"pinned_host"``) and checks of it.

ZeRO-Offload (Ren et al.) keeps optimizer state in host memory and brings it to the
accelerator only for the update. In JAX that is placement data: state shardings with
``memory_kind="pinned_host"`` as the step's input and output shardings, and one
``jax.device_put(state, device_shardings)`` at the top of the jitted step.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AbstractMesh, Mesh, Sharding

__all__ = ["check_memory_kind", "with_memory_kind"]


def check_memory_kind(mesh: Mesh | AbstractMesh, memory_kind: str | None, *, where: str) -> None:
    """Raises ``ValueError`` when the mesh's (local) devices have no memory of ``memory_kind``."""
    if memory_kind is None:
        return
    if not isinstance(memory_kind, str):
        raise TypeError(f"{where}: memory_kind must be a str such as 'device' or 'pinned_host', got {memory_kind!r}")
    if not isinstance(mesh, Mesh):
        return  # an abstract mesh has no devices to ask; placing on it fails later with jax's message
    # Other processes' devices cannot be asked for their memories; all hosts run the same kind.
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()] or list(mesh.devices.flat)
    kinds = sorted({m.kind for m in local[0].addressable_memories()})
    if memory_kind not in kinds:
        raise ValueError(
            f"{where}: memory_kind {memory_kind!r} is not a memory of {local[0].platform} device {local[0].id}; "
            f"it has {kinds}"
        )


def with_memory_kind(shardings: Any, memory_kind: str) -> Any:
    """The same shardings, each naming ``memory_kind``: move state between host and device.

    Inside a jitted step whose optimizer state arrives in host memory (``"pinned_host"``),
    ``jax.device_put(state, with_memory_kind(shardings, "device"))`` brings it to the devices,
    partitioned as before; the step's ``out_shardings`` send it back.

    Args:
      shardings: a pytree of ``jax.sharding.Sharding`` (e.g. from :func:`state_shardings`).
      memory_kind: the memory to name, e.g. ``"device"`` or ``"pinned_host"``.

    Returns:
      A pytree of shardings with the same structure, placement and partitioning.

    Raises:
      TypeError: when a leaf is not a ``Sharding``.
      ValueError: when the devices have no memory of that kind (the message lists theirs).

    Examples:
      >>> import jax
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> import gradtx
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> host = gradtx.sharding.with_memory_kind({"w": NamedSharding(mesh, P())}, "pinned_host")
      >>> host["w"].memory_kind
      'pinned_host'

    References:
      Ren et al., "ZeRO-Offload: Democratizing Billion-Scale Model Training",
      https://arxiv.org/abs/2101.06840, 2021.
    """
    where = "with_memory_kind"

    def one(s: Any) -> Any:
        if not isinstance(s, Sharding):
            raise TypeError(f"{where}: expected a tree of jax.sharding.Sharding, got a {type(s).__name__}")
        mesh = getattr(s, "mesh", None)
        if isinstance(mesh, (Mesh, AbstractMesh)):
            check_memory_kind(mesh, memory_kind, where=where)
        return s.with_memory_kind(memory_kind)

    return jax.tree.map(one, shardings, is_leaf=lambda x: isinstance(x, Sharding))
