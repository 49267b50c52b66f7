"""ema_params / averaged_params, incremental_update and periodic_update against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _manual_sgd(lr):
    # A float64-exact inner step written out here, so the EMA is tested on its own.
    return gradtx.stateless(lambda u, p: jax.tree.map(lambda g: -lr * g, u))


def test_ema_params_trajectory_and_eval_params():
    decay, lr, steps = 0.9, 0.1, 60
    tx = gradtx.chain(_manual_sgd(lr), gradtx.ema_params(decay))
    params = {"w": jnp.array([1.0, -2.0], jnp.float64), "b": jnp.array(0.5, jnp.float64)}
    state = tx.init(params)
    p = {k: np.asarray(v) for k, v in params.items()}
    ema = {k: v.copy() for k, v in p.items()}
    step = jax.jit(tx.update)
    for _ in range(steps):
        grads = jax.tree.map(lambda x: 3.0 * x + jnp.cos(x), params)
        updates, state = step(grads, state, params)
        params = gradtx.apply_updates(params, updates)
        for k in p:
            p[k] = p[k] - lr * (3.0 * p[k] + np.cos(p[k]))
            ema[k] = decay * ema[k] + (1 - decay) * p[k]
    for k in p:
        np.testing.assert_allclose(np.asarray(params[k]), p[k], rtol=1e-12)
    averaged = gradtx.averaged_params(state)
    for k in p:
        np.testing.assert_allclose(np.asarray(averaged[k]), ema[k], rtol=1e-12)
    assert int(state[1].count) == steps


def test_ema_params_dtypes_schedule_and_errors():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    tx = gradtx.ema_params(lambda t: jnp.minimum(0.5, t.astype(jnp.float32)), accumulator_dtype=jnp.float32)
    state = tx.init(params)
    assert state.ema["w"].dtype == jnp.float32
    # step 0: decay 0 -> ema = new params exactly
    _, state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state, params)
    np.testing.assert_array_equal(np.asarray(state.ema["w"]), 2.0)
    abstract = jax.eval_shape(tx.init, {"w": jax.ShapeDtypeStruct((3,), jnp.bfloat16)})
    assert abstract.ema["w"].dtype == jnp.float32
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state)
    with pytest.raises(ValueError, match="decay"):
        gradtx.ema_params(1.5)
    with pytest.raises(ValueError, match="found 0"):
        gradtx.averaged_params(gradtx.sgd(0.1).init(params))
    twice = gradtx.chain(gradtx.ema_params(0.9), gradtx.ema_params(0.5))
    with pytest.raises(ValueError, match="found 2"):
        gradtx.averaged_params(twice.init(params))


def test_incremental_and_periodic_update():
    new = {"a": jnp.array([1.0, 2.0], jnp.float64), "b": None}
    old = {"a": jnp.array([3.0, -1.0], jnp.float64), "b": None}
    out = gradtx.incremental_update(new, old, 0.25)
    np.testing.assert_allclose(np.asarray(out["a"]), 0.25 * np.array([1.0, 2.0]) + 0.75 * np.array([3.0, -1.0]))
    assert out["b"] is None
    f = jax.jit(gradtx.periodic_update)
    for steps in range(6):
        got = f({"a": new["a"]}, {"a": old["a"]}, jnp.int32(steps), 3)
        want = new["a"] if steps % 3 == 0 else old["a"]
        np.testing.assert_array_equal(np.asarray(got["a"]), np.asarray(want))
    with pytest.raises(ValueError, match=r"\['c'\]"):
        gradtx.incremental_update({"c": jnp.ones(1, jnp.float64)}, {"a": jnp.ones(1, jnp.float64)}, 0.5)
