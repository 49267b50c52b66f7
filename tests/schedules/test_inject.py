"""inject_hyperparams / inject_stateful_hyperparams: state, dtypes, no retrace, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def quad_grads(params):
    return jax.tree.map(lambda p: (p - 1.5).astype(p.dtype), params)


def test_state_layout_and_schedule_values_match_plain_optimizer():
    lr = gradtx.linear_schedule(0.1, 0.01, 20)
    tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=lr, b1=0.8)
    plain = gradtx.adam(lr, b1=0.8)
    params = {"a": jnp.zeros(3, jnp.float32), "b": jnp.ones((2, 2), jnp.float32)}
    state, pstate = tx.init(params), plain.init(params)
    # optax 0.2.8's state tree: plain schedules are wrapped, their counts in hyperparams_states.
    assert isinstance(state, gradtx.InjectStatefulHyperparamsState)
    assert state._fields == ("count", "hyperparams", "hyperparams_states", "inner_state")
    assert set(state.hyperparams_states) == {"learning_rate"}
    assert set(state.hyperparams) >= {"learning_rate", "b1", "b2", "eps"}
    step = jax.jit(lambda p, s: tx.update(quad_grads(p), s, p))
    p1, p2 = params, params
    for t in range(30):
        u, state = step(p1, state)
        v, pstate = plain.update(quad_grads(p2), pstate, p2)
        p1, p2 = gradtx.apply_updates(p1, u), gradtx.apply_updates(p2, v)
        np.testing.assert_allclose(float(state.hyperparams["learning_rate"]), float(lr(t)), rtol=1e-6)
    assert int(state.count) == 30
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), p1, p2)


def test_set_between_steps_without_retrace():
    traces = []

    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
    params = jnp.ones(4, jnp.float32)

    @jax.jit
    def step(p, s):
        traces.append(1)
        u, s = tx.update(jnp.ones_like(p), s, p)
        return gradtx.apply_updates(p, u), s

    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == jnp.float32
    params, state = step(params, state)
    state.hyperparams["learning_rate"] = jnp.float32(0.5)
    params2, state = step(params, state)
    np.testing.assert_allclose(params2, params - 0.5, rtol=1e-6)
    assert len(traces) == 1
    assert float(state.hyperparams["learning_rate"]) == 0.5


def test_bf16_params_keep_float32_hyperparams_and_finite_first_step():
    params = {"w": jnp.full((8,), 0.3, jnp.bfloat16)}
    tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3, b2=0.999)
    state = tx.init(params)
    for v in state.hyperparams.values():
        assert v.dtype == jnp.float32
    assert float(state.hyperparams["b2"]) != 1.0
    updates, state = jax.jit(tx.update)({"w": jnp.full((8,), 0.01, jnp.bfloat16)}, state, params)
    assert bool(jnp.all(jnp.isfinite(updates["w"].astype(jnp.float32))))
    assert float(jnp.max(jnp.abs(updates["w"].astype(jnp.float32)))) > 0
    assert state.hyperparams["b2"].dtype == jnp.float32
    new = gradtx.apply_updates(params, updates)
    assert new["w"].dtype == jnp.bfloat16


def test_hyperparam_dtype_and_float64_params():
    tx = gradtx.inject_hyperparams(gradtx.sgd, hyperparam_dtype=jnp.bfloat16)(learning_rate=0.1)
    assert tx.init(jnp.ones(2, jnp.float32)).hyperparams["learning_rate"].dtype == jnp.bfloat16
    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
    state = tx.init(jnp.ones(2, jnp.float64))
    assert state.hyperparams["learning_rate"].dtype == jnp.float64  # float64 params keep exact hyperparameters
    _, state2 = tx.update(jnp.ones(2, jnp.float64), state)  # no params: dtypes stay as init chose
    assert jax.tree.map(lambda x: x.dtype, state2.hyperparams) == jax.tree.map(lambda x: x.dtype, state.hyperparams)


def test_scan_carry_is_stable_and_vmap_works():
    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=gradtx.cosine_decay_schedule(0.1, 10), momentum=0.9)
    params = jnp.ones(3, jnp.float32)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(p, s, p)
        return (gradtx.apply_updates(p, u), s), s.hyperparams["learning_rate"]

    (_, final), lrs = jax.lax.scan(body, (params, tx.init(params)), None, length=12)
    np.testing.assert_allclose(lrs, [0.1 * 0.5 * (1 + np.cos(np.pi * min(t, 10) / 10)) for t in range(12)], atol=1e-7)
    assert int(final.count) == 12
    batched = jax.vmap(tx.init)(jnp.ones((5, 3), jnp.float32))
    assert batched.hyperparams["learning_rate"].shape == (5,)


def test_static_args_and_errors():
    mask_fn = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
    tx = gradtx.inject_hyperparams(gradtx.adamw, static_args="mask")(learning_rate=0.1, mask=mask_fn)
    state = tx.init({"w": jnp.ones((2, 2), jnp.float32), "b": jnp.ones(2, jnp.float32)})
    assert "mask" not in state.hyperparams
    with pytest.raises(ValueError, match="static_args"):
        gradtx.inject_hyperparams(gradtx.sgd, static_args=("nope",))
    with pytest.raises(TypeError, match="hyperparam_dtype"):
        gradtx.inject_hyperparams(gradtx.sgd, hyperparam_dtype=jnp.int32)
    bad = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=lambda t: jnp.ones(3, jnp.float32) * 0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        bad.init(jnp.ones(3, jnp.float32))


class CountingLoss:
    """A stateful schedule: the learning rate is 0.1 / (1 + number of losses above 1 seen)."""

    def init(self):
        return jnp.zeros([], jnp.int32)

    def update(self, state, *, value=0.0, **extra):
        return state + (value > 1.0).astype(jnp.int32)

    def __call__(self, state, **extra):
        return 0.1 / (1.0 + state.astype(jnp.float32))


def test_stateful_hyperparams():
    for injector in (gradtx.inject_stateful_hyperparams, gradtx.inject_hyperparams):
        tx = injector(gradtx.sgd)(learning_rate=CountingLoss())
        params = jnp.ones(2, jnp.float32)
        state = tx.init(params)
        assert isinstance(state, gradtx.InjectStatefulHyperparamsState)
        lrs = []
        for loss in (2.0, 2.0, 0.5):
            _, state = tx.update(jnp.ones(2, jnp.float32), state, params, value=jnp.float32(loss))
            lrs.append(float(state.hyperparams["learning_rate"]))
        np.testing.assert_allclose(lrs, [0.1, 0.05, 0.1 / 3], rtol=1e-6)
    tx = gradtx.inject_stateful_hyperparams(gradtx.sgd)(learning_rate=gradtx.linear_schedule(1.0, 0.0, 4))
    state = tx.init(jnp.ones(2, jnp.float32))
    assert isinstance(state.hyperparams_states["learning_rate"], tuple)


def test_a_structural_int_injected_by_default_names_static_args():
    # optax injects every number, adafactor's default `min_dim_size_to_factor` too; gradtx's
    # factory refuses an array there, and the message says how to keep it a Python value.
    params = {"w": jnp.ones((3, 4), jnp.float32)}
    with pytest.raises(TypeError, match=r"min_dim_size_to_factor.*`static_args`"):
        gradtx.inject_hyperparams(gradtx.adafactor)(learning_rate=0.1).init(params)
    tx = gradtx.inject_hyperparams(gradtx.adafactor, static_args=("min_dim_size_to_factor",))(learning_rate=0.1)
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(params, state, params)
    want, _ = gradtx.adafactor(0.1).update(params, gradtx.adafactor(0.1).init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), np.asarray(want["w"]), rtol=1e-6)
