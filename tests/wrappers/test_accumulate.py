"""MultiSteps and apply_every against float64 NumPy references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def adam_reference(grads, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """Float64 Adam (Kingma & Ba, 2015) on a list of per-step gradient vectors; returns the updates."""
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def _micro_grads(rng, steps, k, shape=(5,)):
    return [[rng.normal(size=shape) for _ in range(k)] for _ in range(steps)]


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-6), (jnp.float64, 1e-12)])
def test_k_micro_steps_equal_one_step_on_the_mean(opt_name, dtype, tol):
    k, steps = 4, 6
    rng = np.random.default_rng(0)
    micro = _micro_grads(rng, steps, k)
    means = [np.mean(np.stack(gs), axis=0) for gs in micro]
    if opt_name == "sgd":
        opt, ref = gradtx.sgd(0.1), [-0.1 * g for g in means]
    else:
        opt, ref = gradtx.adam(1e-2), adam_reference(means)
    acc_dtype = None if dtype == jnp.float64 else jnp.float32
    ms = gradtx.MultiSteps(opt, every_k_schedule=k, accumulator_dtype=acc_dtype)
    params = {"w": jnp.zeros(5, dtype)}
    state = ms.init(params)
    grads = jnp.asarray(np.stack([np.stack(gs) for gs in micro]), dtype)  # [steps, k, 5]

    @jax.jit
    def run(state, grads):
        def body(state, g):
            u, state = ms.update({"w": g}, state, params)
            return state, (u["w"], ms.has_updated(state), state.gradient_step)

        return jax.lax.scan(body, state, grads.reshape(steps * k, 5))

    state, (updates, emitted, gstep) = run(state, grads)
    updates = np.asarray(updates).reshape(steps, k, 5)
    np.testing.assert_array_equal(updates[:, :-1], 0.0)
    scale = max(1.0, float(np.max(np.abs(ref))))
    np.testing.assert_allclose(updates[:, -1], np.stack(ref), rtol=tol, atol=tol * scale)
    np.testing.assert_array_equal(np.asarray(emitted).reshape(steps, k), np.tile([0, 0, 0, 1], (steps, 1)))
    assert int(state.gradient_step) == steps and int(state.mini_step) == 0
    want_gstep = np.repeat(np.arange(1, steps + 1), k) - np.tile([1, 1, 1, 0], steps)
    np.testing.assert_array_equal(np.asarray(gstep), want_gstep)


def test_sum_and_schedule_of_k():
    # every_k_schedule(step) = 1, 2, 3, ... micro-steps; use_grad_mean=False sums them.
    ms = gradtx.MultiSteps(
        gradtx.sgd(1.0), every_k_schedule=lambda s: s + 1, use_grad_mean=False, accumulator_dtype=None
    )
    params = jnp.zeros(2, jnp.float64)
    state = ms.init(params)
    rng = np.random.default_rng(1)
    acc, emitted = np.zeros(2), []
    k_expected, n = 1, 0
    step = jax.jit(ms.update)
    for _ in range(10):
        g = rng.normal(size=2)
        acc += g
        n += 1
        u, state = step(jnp.asarray(g), state, params)
        if n == k_expected:
            np.testing.assert_allclose(np.asarray(u), -acc, rtol=1e-12)
            emitted.append(k_expected)
            acc, n, k_expected = np.zeros(2), 0, k_expected + 1
        else:
            np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert emitted == [1, 2, 3, 4] and int(state.gradient_step) == 4 and int(state.mini_step) == 0


def test_inner_update_runs_only_inside_cond():
    marker = gradtx.stateless(lambda u, p: jax.tree.map(jnp.cosh, u))
    ms = gradtx.MultiSteps(marker, every_k_schedule=3)
    params = jnp.zeros(3, jnp.float32)
    jaxpr = jax.make_jaxpr(ms.update)(jnp.ones(3, jnp.float32), ms.init(params), params).jaxpr
    top = [e.primitive.name for e in jaxpr.eqns]
    assert "cosh" not in top
    conds = [e for e in jaxpr.eqns if e.primitive.name == "cond"]
    assert conds
    inner_prims = {e.primitive.name for c in conds for br in c.params["branches"] for e in br.jaxpr.eqns}
    assert "cosh" in inner_prims


def test_accumulator_dtype_and_bf16_params():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    ms = gradtx.MultiSteps(gradtx.sgd(0.5), every_k_schedule=2)
    state = ms.init(params)
    assert state.acc_grads["w"].dtype == jnp.float32
    u, state = ms.update({"w": jnp.ones(3, jnp.bfloat16)}, state, params)
    u, state = ms.update({"w": jnp.full(3, 3.0, jnp.bfloat16)}, state, params)
    assert u["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(u["w"], np.float32), -1.0)
    assert gradtx.apply_updates(params, u)["w"].dtype == jnp.bfloat16
    ms64 = gradtx.MultiSteps(gradtx.sgd(0.5), every_k_schedule=2, accumulator_dtype=None)
    assert ms64.init({"w": jnp.ones(2, jnp.float64)}).acc_grads["w"].dtype == jnp.float64


def test_should_skip_update_fn():
    ms = gradtx.MultiSteps(gradtx.sgd(1.0), every_k_schedule=2, should_skip_update_fn=gradtx.skip_not_finite)
    params = jnp.zeros(2, jnp.float64)
    state = ms.init(params)
    assert int(state.skip_state["num_not_finite"]) == 0
    _, state = ms.update(jnp.array([1.0, 1.0]), state, params)
    u, skipped = ms.update(jnp.array([jnp.nan, jnp.inf]), state, params)
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert int(skipped.mini_step) == 1 and int(skipped.skip_state["num_not_finite"]) == 2
    np.testing.assert_array_equal(np.asarray(skipped.acc_grads), np.asarray(state.acc_grads))
    u, state = ms.update(jnp.array([3.0, 5.0]), skipped, params)
    np.testing.assert_allclose(np.asarray(u), [-2.0, -3.0], rtol=1e-12)

    skip_large = functools.partial(gradtx.skip_large_updates, max_squared_norm=10.0)
    ms = gradtx.MultiSteps(gradtx.sgd(1.0), every_k_schedule=1, should_skip_update_fn=skip_large)
    state = ms.init(params)
    u, state = ms.update(jnp.array([3.0, 1.0]), state, params)  # norm^2 == 10: skipped
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert bool(state.skip_state["should_skip"]) and float(state.skip_state["norm_squared"]) == 10.0
    u, state = ms.update(jnp.array([2.0, 1.0]), state, params)
    np.testing.assert_allclose(np.asarray(u), [-2.0, -1.0])
    assert int(state.gradient_step) == 1


def test_bad_inputs():
    for bad in (0, -3):
        with pytest.raises(ValueError, match="every_k_schedule"):
            gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=bad)
    with pytest.raises(TypeError, match="every_k_schedule"):
        gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2.5)  # type: ignore[arg-type]
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=lambda step: 0)
    params = jnp.zeros(2, jnp.float32)
    with pytest.raises(ValueError, match="every_k_schedule"):
        ms.update(jnp.ones(2, jnp.float32), ms.init(params), params)
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2)
    with pytest.raises(ValueError, match=r"\['b'\]"):
        ms.update({"a": jnp.ones(2, jnp.float32), "b": jnp.ones(2)}, ms.init({"a": params}), None)
    bad_skip = lambda u, s, p: (jnp.ones(2, jnp.bool_), ())
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2, should_skip_update_fn=bad_skip)
    with pytest.raises(TypeError, match="scalar bool"):
        ms.update(jnp.ones(2, jnp.float32), ms.init(params), params)


@pytest.mark.parametrize(
    "schedule",
    [lambda step: 2.5, gradtx.linear_schedule(1, 4, 10), lambda step: jnp.full((1,), 2), lambda step: True],
    ids=["fraction", "float_schedule", "array", "bool"],
)
@pytest.mark.parametrize("jit", [False, True])
def test_schedule_must_give_an_integer_scalar(schedule, jit):
    # A fraction was floored silently: 2.5 stepped every 2 micro-steps.
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=schedule)
    params = jnp.zeros(2, jnp.float32)
    update = jax.jit(ms.update) if jit else ms.update
    with pytest.raises(TypeError, match="every_k_schedule` must give an integer number of micro-steps"):
        update(jnp.ones(2, jnp.float32), ms.init(params), params)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2**31),
        lambda: gradtx.apply_every(2**40),
        lambda: gradtx.apply_if_finite(gradtx.sgd(0.1), 2**40),
        lambda: gradtx.lookahead(gradtx.sgd(0.1), 2**31, 0.5),
    ],
)
def test_periods_beyond_an_int32_counter_are_named(make):
    with pytest.raises(ValueError, match=r"must be an int in \[\d, 2147483647\]"):
        make()


def test_apply_every_reference():
    k = 3
    tx = gradtx.apply_every(k)
    params = jnp.zeros(2, jnp.float64)
    state = tx.init(params)
    rng = np.random.default_rng(2)
    acc = np.zeros(2)
    for t in range(9):
        g = rng.normal(size=2)
        acc = g if t % k == 0 else acc + g
        u, state = jax.jit(tx.update)(jnp.asarray(g), state)
        np.testing.assert_allclose(np.asarray(u), acc if t % k == k - 1 else 0.0, rtol=1e-12)
    assert isinstance(state, gradtx.ApplyEvery) and int(state.count) == 0
    with pytest.raises(ValueError, match="`k`"):
        gradtx.apply_every(0)
