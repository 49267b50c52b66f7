"""DynamicLossScale / NoOpLossScale: the adjust rule against a hand-written reference; fp16 underflow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def test_adjust_rule_reference():
    period, factor = 3, 2.0
    ls = gradtx.DynamicLossScale(jnp.float32(1024.0), period=period, factor=factor, min_loss_scale=jnp.float32(64.0))
    adjust = jax.jit(lambda ls, f: ls.adjust(f))
    pattern = [True, True, True, True, False, True, False, False, False, False, True, True, True]
    scale, counter = 1024.0, 0
    for finite in pattern:
        if finite:
            counter += 1
            if counter == period:
                scale, counter = scale * factor, 0
        else:
            scale, counter = max(scale / factor, 64.0), 0
        ls = adjust(ls, jnp.array(finite))
        assert float(ls.loss_scale) == scale and int(ls.counter) == counter
    assert ls.loss_scale.dtype == jnp.float32 and ls.counter.dtype == jnp.int32
    assert ls.period == period and ls.factor == factor  # static fields survive jit


def test_growth_stops_before_overflow():
    big = gradtx.DynamicLossScale(jnp.float32(2.0**127), period=1)
    assert float(big.adjust(jnp.array(True)).loss_scale) == 2.0**127


def test_scale_unscale_keep_dtypes():
    ls = gradtx.DynamicLossScale(jnp.float32(2.0**12))
    tree = {"a": jnp.array([1.5, -2.0], jnp.float16), "b": jnp.array(3.0, jnp.float64)}
    scaled = ls.scale(tree)
    assert scaled["a"].dtype == jnp.float16 and scaled["b"].dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(scaled["a"], np.float32), [6144.0, -8192.0])
    back = ls.unscale(scaled)
    np.testing.assert_array_equal(np.asarray(back["a"], np.float32), [1.5, -2.0])
    assert float(back["b"]) == 3.0
    noop = gradtx.NoOpLossScale()
    assert noop.scale(tree) is tree and noop.unscale(tree) is tree and noop.adjust(jnp.array(False)) is noop
    assert float(noop.loss_scale) == 1.0


def test_fp16_gradients_underflow_without_scaling():
    # float32 master param, float16 compute: d loss / d x = 1e-4 * 1e-4 = 1e-8 is below float16's
    # smallest subnormal (6e-8), so the float16 backward pass flushes it to zero without scaling.
    def loss(x):
        return jnp.float16(1e-4) * (x.astype(jnp.float16) * jnp.float16(1e-4))

    x = jnp.array(1.0, jnp.float32)
    assert float(jax.grad(loss)(x)) == 0.0
    ls = gradtx.DynamicLossScale(jnp.float32(2.0**15))
    g = ls.unscale(jax.grad(lambda x: ls.scale(loss(x)))(x))
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(float(g), 1e-8, rtol=2e-3)


def test_training_loop_halves_on_overflow_and_skips_step():
    ls = gradtx.DynamicLossScale(jnp.float32(2.0**15), period=2)
    tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=10)
    params = {"w": jnp.array([1.0, 2.0], jnp.float32)}
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, ls, target):
        def scaled_loss(p):
            y = p["w"].astype(jnp.float16) * target
            return ls.scale(jnp.sum(y * y))

        grads = ls.unscale(jax.grad(scaled_loss)(params))
        finite = gradtx.all_finite(grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        return gradtx.apply_updates(params, updates), opt_state, ls.adjust(finite)

    # target 300: the scaled fp16 loss 2^15 * (300^2 + 600^2) overflows fp16 -> step skipped, scale halves.
    new_params, opt_state, ls = step(params, opt_state, ls, jnp.float16(300.0))
    np.testing.assert_array_equal(np.asarray(new_params["w"]), [1.0, 2.0])
    assert float(ls.loss_scale) == 2.0**14 and int(opt_state.total_notfinite) == 1
    params = new_params
    for _ in range(2):
        params, opt_state, ls = step(params, opt_state, ls, jnp.float16(0.5))
    assert float(ls.loss_scale) == 2.0**15 and int(ls.counter) == 0
    assert np.all(np.asarray(params["w"]) < np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"loss_scale": jnp.float32(0.0)}, "loss_scale"),
        ({"loss_scale": np.float32(-1.0)}, "loss_scale"),
        ({"loss_scale": np.asarray(0.0)}, "loss_scale"),
        # Never recovers: every step overflows, and inf / 2 stays inf.
        ({"loss_scale": float("inf")}, "loss_scale"),
        ({"loss_scale": 1e39}, "loss_scale"),  # inf in float32
        ({"loss_scale": 1.0, "min_loss_scale": jnp.float32(0.0)}, "min_loss_scale"),
        ({"loss_scale": 1.0, "min_loss_scale": np.float32(-2.0)}, "min_loss_scale"),
    ],
)
def test_bad_scales_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` must be in"):
        gradtx.DynamicLossScale(**kwargs)


def test_numpy_scales_become_float32_arrays():
    ls = gradtx.DynamicLossScale(np.float64(8.0), min_loss_scale=np.asarray(2, np.int32))
    assert isinstance(ls.loss_scale, jax.Array) and ls.loss_scale.dtype == jnp.float32
    assert isinstance(ls.min_loss_scale, jax.Array) and ls.min_loss_scale.dtype == jnp.float32


def test_a_pytree_that_jax_can_batch_and_rebuild():
    # jax rebuilds the pytree from batched, zero or abstract leaves: the checks are the caller's only.
    ls = gradtx.DynamicLossScale(jnp.float32(4.0), period=2)

    def step(ls, finite):
        ls = ls.adjust(finite)
        return ls, ls

    _, history = jax.lax.scan(step, ls, jnp.array([True, True, False, False]))
    np.testing.assert_array_equal(np.asarray(history.loss_scale), [4.0, 8.0, 4.0, 2.0])
    batched = jax.vmap(lambda f: ls.adjust(f))(jnp.array([True, False]))
    np.testing.assert_array_equal(np.asarray(batched.loss_scale), [4.0, 2.0])
    zeros = jax.tree.map(jnp.zeros_like, ls)
    assert float(zeros.loss_scale) == 0.0 and zeros.period == 2
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(ls)[0]]
    assert paths == [".loss_scale", ".counter", ".min_loss_scale"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="period"):
        gradtx.DynamicLossScale(jnp.float32(1.0), period=0)
    with pytest.raises(ValueError, match="factor"):
        gradtx.DynamicLossScale(jnp.float32(1.0), factor=1)
