"""apply_if_finite and zero_nans against hand-written references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _momentum_sgd_float64():
    """An inner transform with visible state: u = -0.1 * b, b = 0.9 b + g (written out here)."""

    def init(params):
        return {"b": jax.tree.map(jnp.zeros_like, params)}

    def update(updates, state, params=None, **extra_args):
        b = jax.tree.map(lambda g, b: 0.9 * b + g, updates, state["b"])
        return jax.tree.map(lambda x: -0.1 * x, b), {"b": b}

    return gradtx.GradientTransformation(init, update)


def test_counters_skips_and_give_up():
    tx = gradtx.apply_if_finite(_momentum_sgd_float64(), max_consecutive_errors=2)
    params = {"w": jnp.zeros(3, jnp.float64), "v": jnp.zeros(2, jnp.float64)}
    state = tx.init(params)
    assert int(state.notfinite_count) == 0 and bool(state.last_finite) and int(state.total_notfinite) == 0
    nan, inf = float("nan"), float("inf")
    # finite? pattern: F, N, N, F, N, N, N (third consecutive > max: accepted), F
    steps = [1.0, nan, inf, 2.0, nan, -inf, nan, 3.0]
    ref_b, ref_params = np.zeros(5), np.zeros(5)
    consecutive = total = 0
    step = jax.jit(tx.update)
    for i, x in enumerate(steps):
        g = {"w": jnp.full(3, 1.0, jnp.float64), "v": jnp.array([x, 1.0], jnp.float64)}
        before = state
        updates, state = step(g, state, params)
        finite = np.isfinite(x)
        consecutive = 0 if finite else consecutive + 1
        total += 0 if finite else 1
        assert int(state.notfinite_count) == consecutive, i
        assert int(state.total_notfinite) == total, i
        assert bool(state.last_finite) == finite, i
        if finite or consecutive > 2:
            ref_b = 0.9 * ref_b + np.array([1.0, 1.0, 1.0, x, 1.0])
            ref_params = ref_params - 0.1 * ref_b
        else:
            # Skipped: zero updates and the inner state exactly as before.
            chex_equal = jax.tree.map(np.testing.assert_array_equal, state.inner_state, before.inner_state)
            del chex_equal
            for leaf in jax.tree.leaves(updates):
                np.testing.assert_array_equal(np.asarray(leaf), 0.0)
        params = gradtx.apply_updates(params, updates)
        got = np.concatenate([np.asarray(params["v"]), np.asarray(params["w"])])
        want = np.concatenate([ref_params[3:], ref_params[:3]])
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert total == 5 and consecutive == 0


def test_state_fields_and_errors():
    assert gradtx.ApplyIfFiniteState._fields == ("notfinite_count", "last_finite", "total_notfinite", "inner_state")
    state = gradtx.apply_if_finite(gradtx.sgd(0.1), 1).init({"w": jnp.zeros(2, jnp.float32)})
    assert state.notfinite_count.dtype == jnp.int32 and state.last_finite.dtype == jnp.bool_
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        gradtx.apply_if_finite(gradtx.sgd(0.1), -1)
    with pytest.raises(TypeError, match="inner"):
        gradtx.apply_if_finite("sgd", 1)  # type: ignore[arg-type]


def test_abstract_init_and_vmap():
    tx = gradtx.apply_if_finite(gradtx.sgd(0.1), 1)
    abstract = jax.eval_shape(tx.init, {"w": jax.ShapeDtypeStruct((4,), jnp.float32)})
    assert abstract.notfinite_count.shape == ()
    params = jnp.zeros((2, 3), jnp.float32)
    grads = jnp.array([[1.0, 1.0, 1.0], [1.0, jnp.nan, 1.0]], jnp.float32)
    states = jax.vmap(tx.init)(params)
    updates, states = jax.vmap(tx.update)(grads, states, params)
    np.testing.assert_allclose(np.asarray(updates[0]), -0.1, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(updates[1]), 0.0)
    np.testing.assert_array_equal(np.asarray(states.total_notfinite), [0, 1])


def test_zero_nans_reference():
    tx = gradtx.zero_nans()
    params = {"a": jnp.zeros(3, jnp.float64), "b": jnp.zeros(2, jnp.float32)}
    state = tx.init(params)
    assert state.found_nan == {"a": False, "b": False} or not any(jax.tree.leaves(state.found_nan))
    g = {"a": jnp.array([1.0, jnp.nan, jnp.inf], jnp.float64), "b": jnp.array([2.0, 3.0], jnp.float32)}
    u, state = jax.jit(tx.update)(g, state)
    np.testing.assert_array_equal(np.asarray(u["a"]), [1.0, 0.0, np.inf])
    np.testing.assert_array_equal(np.asarray(u["b"]), [2.0, 3.0])
    assert u["b"].dtype == jnp.float32
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])
    assert gradtx.ZeroNansState._fields == ("found_nan",)


def test_all_finite():
    assert bool(gradtx.all_finite({"a": jnp.ones(2, jnp.float16), "b": jnp.zeros(1, jnp.float64)}))
    assert not bool(gradtx.all_finite([jnp.ones(2, jnp.float32), jnp.array([jnp.inf], jnp.float32)]))
    assert bool(gradtx.all_finite({}))
