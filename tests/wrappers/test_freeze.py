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


def test_selective_transform_takes_a_callable_mask_like_freeze():
    # A function was one truthy leaf before: every leaf was frozen, silently.
    params = _params()
    by_fn = gradtx.selective_transform(gradtx.sgd(1.0), freeze_mask=lambda t: {"a": False, "b": True})
    by_tree = gradtx.selective_transform(gradtx.sgd(1.0), freeze_mask={"a": False, "b": True})
    g = jax.tree.map(jnp.ones_like, params)
    got, state = jax.jit(by_fn.update)(g, by_fn.init(params), params)
    want, want_state = by_tree.update(g, by_tree.init(params), params)
    np.testing.assert_array_equal(np.asarray(got["a"]), [-1.0, -1.0])
    np.testing.assert_array_equal(np.asarray(got["b"]["c"]), [0.0])
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert jax.tree.structure(state) == jax.tree.structure(want_state)


@pytest.mark.parametrize("mask", [{"a": 1, "b": 0}, {"a": "yes", "b": False}])
def test_selective_transform_mask_leaves_must_be_bools(mask):
    with pytest.raises(TypeError, match=r"selective_transform: mask leaves must be bools, but mask\['a'\]"):
        gradtx.selective_transform(gradtx.sgd(1.0), freeze_mask=mask).init(_params())
