"""stacked under sharding: leaves of one shape but different explicit shardings stay in different
groups, each stack is sharded like its leaves (plus a replicated leading dim), and the numbers
equal the unstacked run on both kinds of mesh."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx

SPECS = {"r0": P("data", None), "r1": P("data", None), "c0": P(None, "model"), "b": P()}
SHAPES = {"r0": (8, 4), "r1": (8, 4), "c0": (8, 4), "b": (4,)}


def _params(mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    return {
        k: jax.device_put(
            (np.arange(np.prod(SHAPES[k]), dtype=np.float32).reshape(SHAPES[k]) + i) / 9.0,
            NamedSharding(mesh, SPECS[k]),
        )
        for i, k in enumerate(SHAPES)
    }


@pytest.mark.parametrize("mode", ["explicit", "auto"])
def test_stacked_adamw_on_a_mesh_equals_adamw(mode: str) -> None:
    kind = AxisType.Explicit if mode == "explicit" else AxisType.Auto
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(kind, kind))
    with jax.set_mesh(mesh):
        params = _params(mesh)
        wrapped, plain = gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.1)), gradtx.adamw(0.1, weight_decay=0.1)
        if mode == "explicit":
            ws = wrapped.init(params)
        else:
            # The step sees no shardings: c0 would share the rows' stack, so init says so.
            with pytest.warns(UserWarning, match=r"float32\[8,4\] are sharded differently \(\['c0'\] is "):
                ws = wrapped.init(params)
        ps = plain.init(params)
        mu = ws.inner_state[0].mu
        if mode == "explicit":
            # Same shape, different shardings: two groups of (8, 4), numbered in flattening order
            # (c0 comes first).
            assert sorted(mu) == ["float32[4]", "float32[8,4]", "float32[8,4]#1"]
            rows, cols = mu["float32[8,4]#1"], mu["float32[8,4]"]
            assert rows.shape == (2, 8, 4) and cols.shape == (1, 8, 4)
            assert rows.sharding.is_equivalent_to(NamedSharding(mesh, P(None, "data", None)), 3)
            assert cols.sharding.is_equivalent_to(NamedSharding(mesh, P(None, None, "model")), 3)
        else:
            assert sorted(mu) == ["float32[4]", "float32[8,4]"]
        step = jax.jit(wrapped.update)
        for _ in range(3):
            g = jax.tree.map(lambda x: jnp.sin(x) + 0.1, params)
            wu, ws = step(g, ws, params)
            pu, ps = plain.update(g, ps, params)
            for k in SHAPES:
                if mode == "explicit":
                    # Under Auto shardings the traced leaves carry no sharding: XLA places the stacks.
                    assert wu[k].sharding.is_equivalent_to(params[k].sharding, wu[k].ndim), k
                np.testing.assert_allclose(np.asarray(wu[k]), np.asarray(pu[k]), rtol=1e-6, atol=1e-7)
            params = gradtx.apply_updates(params, wu)


def test_update_without_shardings_after_an_explicit_split_says_so() -> None:
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit, AxisType.Explicit))
    tx = gradtx.stacked(gradtx.sgd(0.1, momentum=0.9))
    with jax.set_mesh(mesh):
        state = tx.init(_params(mesh))
    unsharded = {k: jnp.ones(SHAPES[k], jnp.float32) for k in SHAPES}
    with pytest.raises(ValueError, match=r"apart by their explicit shardings \(float32\[8,4\]#1\)"):
        tx.update(unsharded, state)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_train_step_with_stacked_equals_plain(stage: int) -> None:
    mesh = jax.make_mesh((8,), ("data",))
    params = {f"w{i}": jnp.full((16, 8), 0.1 * (i + 1), jnp.float32) for i in range(4)}
    params["b"] = jnp.zeros(8, jnp.float32)

    def loss_fn(p: dict[str, jax.Array], batch: jax.Array) -> jax.Array:
        h = batch
        for i in range(4):
            h = jnp.tanh(h @ p[f"w{i}"][:8] + p["b"])
        return jnp.mean(h**2)

    batch = jnp.arange(128, dtype=jnp.float32).reshape(16, 8) / 128
    results = []
    for tx in (gradtx.adamw(0.1, weight_decay=0.1), gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.1))):
        zero = gradtx.sharding.zero_train_step(loss_fn, tx, mesh, params, zero_stage=stage)
        p, s = zero.init(params)
        for _ in range(3):
            p, s, _ = zero.step(p, s, batch)
        results.append(p)
    # The stacked moments are partitioned over the data axis like the plain ones.
    assert s.inner_state[0].mu["float32[16,8]"].sharding.spec == P(None, "data")
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
