"""flatten: the inner transform sees one vector; results equal the unflattened run. Checks shared with stacked."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from tests.support.steps import assert_steps_equal


def test_flatten_matches_unflattened_and_state_is_one_vector():
    params = {"a": jnp.arange(6.0, dtype=jnp.float64).reshape(2, 3), "b": [jnp.ones(2, jnp.float64)]}
    flat_tx = gradtx.flatten(gradtx.adam(0.1))
    plain_tx = gradtx.adam(0.1)
    fs, ps = flat_tx.init(params), plain_tx.init(params)
    assert {x.shape for x in jax.tree.leaves(fs) if x.ndim} == {(8,)}
    for _ in range(5):
        g = jax.tree.map(lambda x: jnp.cos(x) * x, params)
        fu, fs = jax.jit(flat_tx.update)(g, fs, params)
        pu, ps = plain_tx.update(g, ps, params)
        for a, b in zip(jax.tree.leaves(fu), jax.tree.leaves(pu)):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
        params = gradtx.apply_updates(params, fu)


def test_flatten_mixed_dtypes_and_abstract_init():
    params = {"h": jnp.ones(3, jnp.bfloat16), "f": jnp.ones(2, jnp.float32)}
    tx = gradtx.flatten(gradtx.sgd(0.5))
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    assert u["h"].dtype == jnp.bfloat16 and u["f"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(u["f"]), -0.5)
    abstract = jax.eval_shape(gradtx.flatten(gradtx.adam(0.1)).init, {"x": jax.ShapeDtypeStruct((4, 2), jnp.float32)})
    assert abstract[0].mu.shape == (8,)


@pytest.mark.parametrize("wrap", [gradtx.flatten, gradtx.stacked], ids=["flatten", "stacked"])
def test_integer_leaves_are_named_not_cast(wrap):
    # One vector (or stack) would cast an integer leaf silently, or name only the stack.
    params = {"w": jnp.ones((2, 3)), "step": jnp.zeros((), jnp.int32)}
    tx = wrap(gradtx.adam(0.1))
    with pytest.raises(TypeError, match=re.escape("params['step'] is int32[]")):
        tx.init(params)
    floats = {"w": jnp.ones((2, 3)), "step": jnp.zeros(())}
    state = tx.init(floats)
    ints = {"w": jnp.ones((2, 3)), "step": jnp.zeros((), jnp.int32)}
    for update in (tx.update, jax.jit(tx.update)):
        with pytest.raises(TypeError, match=re.escape("updates['step'] is int32[]")):
            update(ints, state, floats)
        with pytest.raises(TypeError, match=re.escape("params['step'] is int32[]")):
            update(floats, state, ints)


@pytest.mark.parametrize("wrap", [gradtx.flatten, gradtx.stacked], ids=["flatten", "stacked"])
def test_a_leaf_of_another_shape_is_named_with_both_shapes(wrap):
    params = {"a": jnp.ones((2, 3)), "b": jnp.ones(4)}
    tx = wrap(gradtx.sgd(0.1))
    grads = {"a": jnp.ones((3, 2)), "b": jnp.ones(4)}
    with pytest.raises(ValueError, match=r"\['a'\].*\[2, 3\].*\[3, 2\]"):
        tx.update(grads, tx.init(params), params)


def test_flatten_in_explicit_sharding_mode_replicates_the_vector_and_reshards_the_updates():
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    values = {"rows": np.arange(32.0).reshape(8, 4) / 7, "cols": np.cos(np.arange(32.0)).reshape(8, 4), "b": np.ones(4)}
    specs = {"rows": P("data", None), "cols": P(None, "model"), "b": P()}
    tx = gradtx.flatten(gradtx.adamw(0.1, weight_decay=0.01))
    plain_params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), values)
    plain_grads = jax.tree.map(jnp.sin, plain_params)
    want, _ = tx.update(plain_grads, tx.init(plain_params), plain_params)
    with jax.set_mesh(mesh):
        params = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in plain_params.items()}
        grads = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in plain_grads.items()}
        state = tx.init(params)
        assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state))
        got, new_state = jax.jit(tx.update)(grads, state, params)
        assert jax.tree.map(jax.typeof, new_state) == jax.tree.map(jax.typeof, state)
        for k in values:
            assert jax.typeof(got[k]) == jax.typeof(params[k]), k
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-6)


@pytest.mark.parametrize(
    "mask", [lambda p: jax.tree.map(lambda x: x.ndim > 0, p), {"a": True, "b": [True]}, True], ids=["fn", "tree", "all"]
)
def test_a_mask_inside_is_written_for_the_params(mask):
    # One vector holds every leaf: a mask inside applies when it is the same for all of them.
    params = {"a": jnp.arange(6.0, dtype=jnp.float64).reshape(2, 3), "b": [jnp.ones(2, jnp.float64)]}
    make = lambda: gradtx.adamw(0.1, weight_decay=0.5, mask=mask)
    assert_steps_equal(gradtx.flatten(make()), make(), params, rtol=1e-12, atol=1e-15)


def test_a_mask_inside_that_splits_the_leaves_raises():
    params = {"a": jnp.ones((2, 3)), "b": [jnp.ones(2)]}
    tx = gradtx.flatten(gradtx.adamw(0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)))
    with pytest.raises(ValueError, match=r"inside flatten, the mask is True at \['a'\] but False at \['b'\]\[0\]"):
        tx.init(params)


def test_a_per_leaf_statistic_inside_raises_and_a_global_one_is_exact():
    params = {"a": jnp.arange(6.0, dtype=jnp.float64).reshape(2, 3), "b": [jnp.ones(2, jnp.float64)]}
    tx = gradtx.flatten(gradtx.lamb(0.1))
    with pytest.raises(ValueError, match=r"scale_by_trust_ratio takes .* inside flatten .* one vector of all 2 leaves"):
        tx.update(params, tx.init(params), params)
    clip = lambda: gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adam(0.1))
    assert_steps_equal(gradtx.flatten(clip()), clip(), params, rtol=1e-12, atol=1e-15)
