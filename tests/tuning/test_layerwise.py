"""Layer-wise learning-rate decay: labels, scales and per-depth rates against a hand reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def depth_of(name):
    top = name.split("/")[0]
    if top == "embed":
        return 0
    if top == "head":
        return 3
    return 1 + int(top.split("_")[1])  # layer_0 -> 1, layer_1 -> 2


def _params():
    return {
        "embed": jnp.ones(2, jnp.float64),
        "layer_0": {"kernel": jnp.ones(2, jnp.float64)},
        "layer_1": {"kernel": jnp.ones(2, jnp.float64)},
        "head": jnp.ones(2, jnp.float64),
    }


def test_groups_and_scales():
    labels, scales = gradtx.layerwise_decay_groups(_params(), depth_of, num_layers=3, decay=0.5)
    assert labels == {"embed": 0, "layer_0": {"kernel": 1}, "layer_1": {"kernel": 2}, "head": 3}
    assert scales == {0: 0.125, 1: 0.25, 2: 0.5, 3: 1.0}
    assert gradtx.param_path_name(jax.tree_util.tree_flatten_with_path(_params())[0][2][0]) == "layer_0/kernel"


def test_lr_decay_with_schedule_reference():
    lr = lambda count: 0.1 / (1.0 + count.astype(jnp.float64))
    tx = gradtx.layerwise_lr_decay(gradtx.sgd, lr, depth_of, num_layers=3, decay=0.5)
    params = _params()
    state = tx.init(params)
    ref = {"embed": 1.0, "layer_0": 1.0, "layer_1": 1.0, "head": 1.0}
    depth = {"embed": 0, "layer_0": 1, "layer_1": 2, "head": 3}
    for t in range(5):
        g = jax.tree.map(lambda x: 2.0 * x, params)
        u, state = jax.jit(tx.update)(g, state, params)
        params = gradtx.apply_updates(params, u)
        for k in ref:
            ref[k] -= 0.1 / (1.0 + t) * 0.5 ** (3 - depth[k]) * 2.0 * ref[k]
    np.testing.assert_allclose(np.asarray(params["embed"]), ref["embed"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(params["layer_0"]["kernel"]), ref["layer_0"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(params["head"]), ref["head"], rtol=1e-12)


def test_numpy_integer_depths_are_ints():
    got = gradtx.layerwise_decay_groups(_params(), lambda n: np.int64(depth_of(n)), num_layers=3, decay=0.5)
    assert got == gradtx.layerwise_decay_groups(_params(), depth_of, num_layers=3, decay=0.5)


def test_bad_depths_and_arguments():
    with pytest.raises(ValueError, match="'head'"):
        gradtx.layerwise_decay_groups(_params(), lambda n: 7 if n == "head" else 0, num_layers=3, decay=0.5)
    with pytest.raises(ValueError, match="decay"):
        gradtx.layerwise_lr_decay(gradtx.sgd, 0.1, depth_of, num_layers=3, decay=0.0)
    with pytest.raises(ValueError, match="num_layers"):
        gradtx.layerwise_decay_groups(_params(), depth_of, num_layers=-1, decay=0.5)
