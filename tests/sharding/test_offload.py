"""Host offload: optimizer state in ``pinned_host`` memory between steps, results as on the device.

XLA:CPU (jax 0.10.2) exposes ``device``, ``pinned_host`` and ``unpinned_host`` memories, so the
moves are real here. Host-memory arrays are read with ``np.asarray`` (eager ops on them fail with
"memory_space of all inputs ... must be the same").
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.sharding import per_device_bytes, state_shardings, with_memory_kind, zero_train_step
from tests.sharding.test_zero import _batches, _params, _run, _tx, loss_fn


@pytest.mark.parametrize("zero_stage", [1, 3])
def test_offloaded_state_lives_in_host_memory_and_equals_the_device_run(zero_stage):
    mesh = jax.make_mesh((8,), ("data",))
    on_device = zero_train_step(loss_fn, _tx(), mesh, _params(), zero_stage=zero_stage)
    offloaded = zero_train_step(loss_fn, _tx(), mesh, _params(), zero_stage=zero_stage, offload=True)
    params_d, state_d, losses_d = _run(on_device, _params())
    params_h, state_h, losses_h = _run(offloaded, _params())

    assert {leaf.sharding.memory_kind for leaf in jax.tree.leaves(state_h)} == {"pinned_host"}
    assert {leaf.sharding.memory_kind for leaf in jax.tree.leaves(state_d)} == {"device"}
    assert {leaf.sharding.memory_kind for leaf in jax.tree.leaves(params_h)} == {"device"}
    # Same partitioning, only another memory.
    for host, dev in zip(jax.tree.leaves(state_h), jax.tree.leaves(state_d), strict=True):
        assert host.sharding.spec == dev.sharding.spec
    np.testing.assert_array_equal(losses_h, losses_d)
    for got, want in zip(jax.tree.leaves((params_h, state_h)), jax.tree.leaves((params_d, state_d)), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

    # What the accelerators hold: none of the offloaded state, all of the state kept on them.
    assert set(per_device_bytes(state_h, memory_kind="device").values()) <= {0}
    assert per_device_bytes(state_h, memory_kind="pinned_host") == per_device_bytes(state_d, memory_kind="device")
    assert per_device_bytes(state_h) == per_device_bytes(state_d)  # every memory, as before


def test_plain_jit_offload_moves_state_in_and_out():
    """The pattern the helper uses, written out: device_put at the top, host out_shardings."""
    mesh = jax.make_mesh((8,), ("data",))
    tx = gradtx.adam(0.1)
    params = {"w": np.linspace(-1.0, 1.0, 64).reshape(8, 8)}
    replicated = NamedSharding(mesh, P())
    host = state_shardings(tx, params, replicated, zero_axis="data", memory_kind="pinned_host")
    device = with_memory_kind(host, "device")

    def step(p, s, g):
        s = jax.device_put(s, device)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    train = jax.jit(step, out_shardings=(replicated, host))
    state = jax.jit(tx.init, out_shardings=host)(params)
    assert {leaf.sharding.memory_kind for leaf in jax.tree.leaves(state)} == {"pinned_host"}
    p, s = params, state
    for batch in _batches()[:2]:
        p, s = train(p, s, {"w": batch[:8, :8]})
    assert {leaf.sharding.memory_kind for leaf in jax.tree.leaves(s)} == {"pinned_host"}

    ref_p, ref_s = params, tx.init(params)
    for batch in _batches()[:2]:
        u, ref_s = tx.update({"w": batch[:8, :8]}, ref_s, ref_p)
        ref_p = gradtx.apply_updates(ref_p, u)
    np.testing.assert_allclose(np.asarray(p["w"]), np.asarray(ref_p["w"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(s[0].mu["w"]), np.asarray(ref_s[0].mu["w"]), rtol=0, atol=1e-12)


def test_with_memory_kind_names_the_memories_there_are():
    mesh = jax.make_mesh((8,), ("data",))
    with pytest.raises(ValueError, match=r"memory_kind 'hbm'.*\['device', 'pinned_host', 'unpinned_host'\]"):
        with_memory_kind({"w": NamedSharding(mesh, P())}, "hbm")
    with pytest.raises(TypeError, match=r"tree of jax\.sharding\.Sharding"):
        with_memory_kind({"w": P()}, "device")
