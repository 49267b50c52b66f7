"""freeze and selective_transform: zero updates on frozen leaves, no state for them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _params():
    return {"a": jnp.array([1.0, 2.0], jnp.float64), "b": {"c": jnp.array([3.0], jnp.float64)}}


def test_freeze_zeroes_frozen_leaves_and_has_no_arrays_in_state():
    tx = gradtx.freeze({"a": True, "b": False})  # prefix mask
    params = _params()
    state = tx.init(params)
    assert jax.tree.leaves(state) == []
    g = {"a": jnp.array([5.0, 6.0], jnp.float64), "b": {"c": jnp.array([7.0], jnp.float64)}}
    u, _ = jax.jit(tx.update)(g, state)
    np.testing.assert_array_equal(np.asarray(u["a"]), 0.0)
    np.testing.assert_array_equal(np.asarray(u["b"]["c"]), 7.0)
    all_frozen, _ = gradtx.freeze(True).update(g, state)
    assert all(float(jnp.sum(jnp.abs(x))) == 0.0 for x in jax.tree.leaves(all_frozen))
    by_fn, _ = gradtx.freeze(lambda t: jax.tree.map(lambda x: x.shape == (1,), t)).update(g, state)
    np.testing.assert_array_equal(np.asarray(by_fn["a"]), [5.0, 6.0])
    np.testing.assert_array_equal(np.asarray(by_fn["b"]["c"]), 0.0)


def test_freeze_mask_mismatch_names_path():
    with pytest.raises(ValueError, match=r"\['z'\]"):
        gradtx.freeze({"a": True, "z": False}).init(_params())


def test_selective_transform_reference():
    params = _params()
    tx = gradtx.selective_transform(gradtx.sgd(0.1, momentum=0.9), freeze_mask={"a": False, "b": True})
    state = tx.init(params)
    assert jax.tree.leaves(state.inner_states["freeze"]) == []
    assert sum(x.size for x in jax.tree.leaves(state.inner_states["train"])) == 2  # momentum for "a" only
    buf, a = np.zeros(2), np.array([1.0, 2.0])
    for _ in range(20):
        g = jax.tree.map(lambda x: 2.0 * x, params)
        u, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, u)
        buf = 0.9 * buf + 2.0 * a
        a = a - 0.1 * buf
    np.testing.assert_allclose(np.asarray(params["a"]), a, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(params["b"]["c"]), [3.0])
