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
        ws, ps = wrapped.init(params), plain.init(params)
        mu = ws.inner_state[0].mu
        if mode == "explicit":
            # Same shape, different shardings: two groups of (8, 4).
            assert sorted(mu) == ["float32[4]", "float32[8,4]@None,model", "float32[8,4]@data,None"]
            assert mu["float32[8,4]@data,None"].shape == (2, 8, 4)
            rows, cols = mu["float32[8,4]@data,None"], mu["float32[8,4]@None,model"]
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
