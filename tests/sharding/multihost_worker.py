"""One process of the two-host ZeRO test (``test_multihost.py``); also the run's shared pieces.

Run as ``python -m tests.sharding.multihost_worker <coordinator> <process_id> <out.npz>`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` and ``JAX_PLATFORMS=cpu``: two such
processes form one 8-device mesh and take ``STEPS`` ZeRO steps in each of ``CONFIGS``, exactly the
code a single process runs (the same ``zero_train_step``); process 0 writes the gathered results.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 5


def make_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w1": rng.normal(size=(16, 32)) / 4, "b1": np.zeros(32), "w2": rng.normal(size=(32, 8)) / 6}


def make_batches() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(16, 16)) for _ in range(STEPS)]


def loss_fn(params: Any, batch: jax.Array) -> jax.Array:
    hidden = jnp.tanh(batch @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - 1.0) ** 2)


# (zero_stage, offload, batches split per process): ZeRO-1 AdamW with the global batch on every
# process, and ZeRO-3 clip+AdamW with host-offloaded state and each process passing only its rows.
CONFIGS = ((1, False, False), (3, True, True))


def train(mesh: jax.sharding.Mesh, zero_stage: int = 1, offload: bool = False, local: bool = False) -> Any:
    """``STEPS`` ZeRO steps on ``mesh``: params, state and losses."""
    import gradtx

    tx = gradtx.adamw(1e-2, weight_decay=1e-2)
    if zero_stage == 3:  # a global-norm clip too: a reduction across leaves partitioned over both hosts
        tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), tx)
    zero = gradtx.sharding.zero_train_step(loss_fn, tx, mesh, make_params(), zero_stage=zero_stage, offload=offload)
    params, state = zero.init(make_params())
    losses = []
    for batch in make_batches():
        if local:
            # This process's rows only: the contiguous range its devices' slices cover.
            slices = zero.batch_sharding.addressable_devices_indices_map(batch.shape).values()
            start = min(s[0].start or 0 for s in slices)
            stop = max(s[0].stop or batch.shape[0] for s in slices)
            placed = jax.make_array_from_process_local_data(zero.batch_sharding, batch[start:stop], batch.shape)
        else:
            # Every process passes the whole global batch; each device keeps its slice.
            placed = jax.device_put(batch, zero.batch_sharding)
        params, state, loss = zero.step(params, state, placed)
        losses.append(float(loss))
    return params, state, losses


def main(coordinator: str, process_id: int, out: str) -> None:
    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(coordinator, num_processes=2, process_id=process_id)
    from jax.experimental import multihost_utils

    assert jax.device_count() == 8 and jax.local_device_count() == 4, (jax.device_count(), jax.local_device_count())
    mesh = jax.make_mesh((8,), ("data",))
    results: dict[str, Any] = {}
    for c, config in enumerate(CONFIGS):
        params, state, losses = train(mesh, *config)
        # The state is partitioned over both processes: gather it to read it.
        gathered = multihost_utils.process_allgather((params, state), tiled=True)
        results[f"c{c}_losses"] = np.asarray(losses)
        results[f"c{c}_local_state_bytes"] = sum(
            s.data.nbytes for leaf in jax.tree.leaves(state) for s in leaf.addressable_shards
        )
        results.update({f"c{c}_leaf{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(gathered))})
    if process_id == 0:
        np.savez(out, **results)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
