"""flatten: the inner transform sees one vector; results equal the unflattened run."""

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


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
