"""The core protocol: identity, stateless, apply_updates, the saturating counter."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradtx
from gradtx._base import INT32_MAX, as_gradient_transformation, zero_count
from tests.support.trees import float_trees


def test_identity_returns_updates_and_empty_state():
    params = {"a": jnp.ones(3, jnp.float32)}
    tx = gradtx.identity()
    state = tx.init(params)
    assert state == gradtx.EmptyState()
    updates, new_state = tx.update(params, state, params, anything=1.0)
    assert updates is params and new_state == state


def test_set_to_zero_keeps_dtypes():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((2, 2), jnp.float64)}
    updates, _ = gradtx.set_to_zero().update(params, gradtx.EmptyState())
    for leaf, ref in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
        assert leaf.dtype == ref.dtype and not np.any(np.asarray(leaf, np.float64))


def test_stateless_passes_params():
    tx = gradtx.stateless(lambda u, p: jax.tree.map(lambda a, b: a * b, u, p))
    u = {"x": jnp.array([1.0, 2.0])}
    p = {"x": jnp.array([3.0, 4.0])}
    out, state = tx.update(u, tx.init(p), p)
    np.testing.assert_array_equal(out["x"], [3.0, 8.0])
    assert state == gradtx.EmptyState()


def test_stateless_with_tree_map_with_and_without_params():
    tx = gradtx.stateless_with_tree_map(lambda u, p: u if p is None else u + p)
    u = {"x": jnp.array([1.0, 2.0])}
    np.testing.assert_array_equal(tx.update(u, gradtx.EmptyState())[0]["x"], [1.0, 2.0])
    np.testing.assert_array_equal(tx.update(u, gradtx.EmptyState(), u)[0]["x"], [2.0, 4.0])
    with pytest.raises(ValueError, match=r"\['y'\]"):
        tx.update(u, gradtx.EmptyState(), {"y": jnp.zeros(2)})


def test_stateless_rejects_non_callable():
    with pytest.raises(TypeError, match="`f` must be callable"):
        gradtx.stateless(3)  # type: ignore[arg-type]


@given(float_trees(), st.integers(0, 2**31 - 1))
def test_apply_updates_matches_optax_and_keeps_dtypes(params, seed):
    rng = np.random.default_rng(seed)
    updates = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    ours = gradtx.apply_updates(params, updates)
    with jax.numpy_dtype_promotion("standard"):  # optax itself does not run under strict promotion
        theirs = optax.apply_updates(params, updates)
    for a, b, p in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), jax.tree.leaves(params)):
        assert a.dtype == p.dtype
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_apply_updates_bf16_params_stay_bf16_with_f32_updates():
    params = {"w": jnp.ones(4, jnp.bfloat16)}
    updates = {"w": jnp.full(4, 0.5, jnp.float32)}
    out = jax.jit(gradtx.apply_updates)(params, updates)
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), 1.5)


def test_apply_updates_names_first_differing_path():
    params = {"dense": {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}}
    with pytest.raises(
        ValueError, match=r"\['dense'\]\['kernel'\].*params has float64\[2, 3\].*updates has float64\[3, 2\]"
    ):
        gradtx.apply_updates(params, {"dense": {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(3)}})
    with pytest.raises(ValueError, match=r"\['dense'\]\['bias'\]"):
        gradtx.apply_updates(params, {"dense": {"kernel": jnp.zeros((2, 3))}})
    with pytest.raises(ValueError, match=r"\['dense'\]\['scale'\]"):
        gradtx.apply_updates(params, {"dense": {"kernel": jnp.zeros((2, 3)), "scale": jnp.zeros(3)}})


def test_apply_updates_none_leaves_are_kept():
    params = {"a": jnp.ones(2), "b": None}
    out = gradtx.apply_updates(params, {"a": jnp.ones(2), "b": None})
    assert out["b"] is None
    np.testing.assert_array_equal(out["a"], 2.0)


@pytest.mark.parametrize(
    ("params", "updates", "message"),
    [
        # A None update skipped its param silently; a Python-scalar param took the update's shape.
        (
            {"w": jnp.ones(2), "b": jnp.ones(1)},
            {"w": None, "b": jnp.ones(1)},
            r"params\['w'\] is shape \(2,\) but its update is None",
        ),
        ({"w": None}, {"w": jnp.ones(2)}, r"params\['w'\] is None but its update is shape \(2,\)"),
        ({"w": 1.0}, {"w": jnp.ones(3)}, r"\['w'\].*(\(3,\)|\[3\])"),  # jitted, the scalar is a 0-d array
    ],
)
def test_apply_updates_names_a_none_or_shape_mismatch(params, updates, message):
    with pytest.raises(ValueError, match=message):
        gradtx.apply_updates(params, updates)
    with pytest.raises(ValueError, match=message):
        jax.jit(gradtx.apply_updates)(params, updates)


def test_safe_increment_saturates():
    assert gradtx.safe_increment(zero_count()).dtype == jnp.int32
    assert int(gradtx.safe_increment(zero_count())) == 1
    top = jnp.asarray(INT32_MAX - 1, jnp.int32)
    once = jax.jit(gradtx.safe_increment)(top)
    assert int(once) == INT32_MAX
    assert int(jax.jit(gradtx.safe_increment)(once)) == INT32_MAX


def test_foreign_transform_without_extra_args_is_wrapped():
    calls = []

    def init(params):
        return ()

    def update(updates, state, params=None):
        calls.append(params)
        return updates, state

    class Foreign:
        pass

    foreign = Foreign()
    foreign.init = init  # type: ignore[attr-defined]
    foreign.update = update  # type: ignore[attr-defined]
    tx = as_gradient_transformation(foreign, where="test")
    assert isinstance(tx, gradtx.GradientTransformation)
    tx.update({"a": 1.0}, (), None, value=3.0)
    assert calls == [None]
