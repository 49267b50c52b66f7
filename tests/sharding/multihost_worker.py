"""One process of the two-host ZeRO-1 test (``test_multihost.py``); also the run's shared pieces.

Run as ``python -m tests.sharding.multihost_worker <coordinator> <process_id> <out.npz>`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` and ``JAX_PLATFORMS=cpu``: two such
processes form one 8-device mesh and take ``STEPS`` ZeRO-1 AdamW steps, exactly the code a
single process runs (the same ``zero_train_step``); process 0 writes the gathered results.
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


def train(mesh: jax.sharding.Mesh) -> tuple[Any, Any, list[float]]:
    """``STEPS`` ZeRO-1 AdamW steps on ``mesh``: params, state and losses."""
    import gradtx

    tx = gradtx.adamw(1e-2, weight_decay=1e-2)
    zero = gradtx.sharding.zero_train_step(loss_fn, tx, mesh, make_params(), zero_stage=1)
    params, state = zero.init(make_params())
    losses = []
    for batch in make_batches():
        # Every process passes the whole global batch; each device keeps its slice.
        params, state, loss = zero.step(params, state, jax.device_put(batch, zero.batch_sharding))
        losses.append(float(loss))
    return params, state, losses


def main(coordinator: str, process_id: int, out: str) -> None:
    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(coordinator, num_processes=2, process_id=process_id)
    from jax.experimental import multihost_utils

    assert jax.device_count() == 8 and jax.local_device_count() == 4, (jax.device_count(), jax.local_device_count())
    mesh = jax.make_mesh((8,), ("data",))
    params, state, losses = train(mesh)
    # The state is partitioned over both processes: gather it to read it.
    gathered = multihost_utils.process_allgather((params, state), tiled=True)
    leaves = jax.tree.leaves(gathered)
    local_state_bytes = sum(s.data.nbytes for leaf in jax.tree.leaves(state) for s in leaf.addressable_shards)
    if process_id == 0:
        np.savez(
            out,
            losses=np.asarray(losses),
            local_state_bytes=local_state_bytes,
            **{f"leaf{i}": np.asarray(x) for i, x in enumerate(leaves)},
        )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
