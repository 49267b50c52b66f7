"""Schedule-Free: float64 trajectories against a NumPy transcription of the paper's algorithm (with the
authors' reference weighting), optax.contrib parity and state trees, evaluation params, errors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

import gradtx
from gradtx.contrib import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)

RNG = np.random.default_rng(0)
A = RNG.normal(size=(12, 5))
B = RNG.normal(size=12)


def _np_grad(w: np.ndarray) -> np.ndarray:
    return A.T @ (A @ w - B) / len(B) + 0.1 * np.sin(w)


def _loss(w: jax.Array) -> jax.Array:
    return 0.5 * jnp.mean((jnp.asarray(A) @ w - jnp.asarray(B)) ** 2) - 0.1 * jnp.sum(jnp.cos(w))


def _reference(adam: bool, steps: int, lr: float, warmup: int, b1: float, wd: float, b2: float = 0.999) -> Any:
    """Defazio et al.'s Algorithm 1 (x, y, z), the averaging weight c = gamma_max^2 / sum gamma_max^2 of the
    authors' implementation, AdamW's v bias-corrected with eps outside the root; warmup as optax (the base
    optimizer's schedule counts from 0, the weights' from 1)."""
    eps = 1e-8
    y = np.linspace(-1.0, 1.0, 5)
    z, v = y.copy(), np.zeros(5)
    weight_sum, max_lr = 0.0, 0.0
    for t in range(1, steps + 1):
        lr_weights = lr * min(1.0, t / warmup)
        lr_base = lr * min(1.0, (t - 1) / warmup)
        g = _np_grad(y)
        if adam:
            v = b2 * v + (1 - b2) * g**2
            step = g / (np.sqrt(v / (1 - b2**t)) + eps) + wd * y
        else:
            step = g + wd * y
        x = (y - (1 - b1) * z) / b1
        z = z - lr_base * step
        max_lr = max(max_lr, lr_weights)
        weight_sum += max_lr**2
        c = max_lr**2 / weight_sum
        x = (1 - c) * x + c * z
        y = b1 * x + (1 - b1) * z
    return y, (y - (1 - b1) * z) / b1


def _run(tx: Any, steps: int, dtype: Any = jnp.float64) -> tuple[jax.Array, Any]:
    @jax.jit
    def step(p: Any, s: Any) -> Any:
        u, s = tx.update(jax.grad(_loss)(p), s, p)
        return gradtx.apply_updates(p, u), s

    p = jnp.linspace(-1.0, 1.0, 5).astype(dtype)
    s = tx.init(p)
    for _ in range(steps):
        p, s = step(p, s)
    return p, s


@pytest.mark.parametrize("adam", [True, False], ids=["adamw", "sgd"])
def test_float64_trajectory_matches_the_paper(adam: bool) -> None:
    if adam:
        tx = schedule_free_adamw(0.05, warmup_steps=10, b1=0.9, weight_decay=0.01)
        want_y, want_x = _reference(True, 60, 0.05, 10, 0.9, 0.01)
    else:
        tx = schedule_free_sgd(0.2, warmup_steps=10, b1=0.8, weight_decay=0.01)
        want_y, want_x = _reference(False, 60, 0.2, 10, 0.8, 0.01)
    y, state = _run(tx, 60)
    np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(schedule_free_eval_params(state, y)), want_x, rtol=1e-10, atol=1e-10)
    assert float(_loss(schedule_free_eval_params(state, y))) < float(_loss(jnp.linspace(-1.0, 1.0, 5)))


CASES = {
    "adamw": lambda lib: lib.contrib.schedule_free_adamw(0.05, warmup_steps=5, weight_decay=0.01),
    "sgd": lambda lib: lib.contrib.schedule_free_sgd(0.2, warmup_steps=3, b1=0.95, weight_decay=0.01),
    "adam_schedule": lambda lib: lib.contrib.schedule_free(
        lib.adam(lib.warmup_constant_schedule(0.0, 0.05, 4), b1=0.0), lib.warmup_constant_schedule(0.0, 0.05, 4)
    ),
    "bf16_z": lambda lib: lib.contrib.schedule_free_sgd(0.1, state_dtype=jnp.bfloat16),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_optax_contrib_and_restores_both_ways(case: str) -> None:
    with jax.enable_x64(False):
        ours, theirs = CASES[case](gradtx), CASES[case](optax)
        p_ours, s_ours = _run(ours, 15, jnp.float32)
        with jax.numpy_dtype_promotion("standard"):
            p_theirs, s_theirs = _run(theirs, 15, jnp.float32)
            x_theirs = optax.contrib.schedule_free_eval_params(s_theirs, p_theirs)
        tol = 1e-2 if case == "bf16_z" else 2e-5
        np.testing.assert_allclose(p_ours, p_theirs, rtol=tol, atol=tol)
        np.testing.assert_allclose(schedule_free_eval_params(s_ours, p_ours), x_theirs, rtol=tol, atol=tol)
        restored = serialization.from_state_dict(s_theirs, serialization.to_state_dict(s_ours))
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(s_ours), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        back = serialization.from_state_dict(s_ours, serialization.to_state_dict(s_theirs))
        assert jax.tree.structure(back) == jax.tree.structure(s_ours)


def test_state_holds_lowest_float_dtype_scalars_and_a_copy_of_the_params() -> None:
    params = {"w": jnp.ones((2, 2), jnp.float32), "h": jnp.ones(2, jnp.bfloat16)}
    state = schedule_free_sgd(0.1).init(params)
    assert isinstance(state, ScheduleFreeState)
    assert state.b1.dtype == state.weight_sum.dtype == state.max_lr.dtype == jnp.bfloat16
    assert state.step_count.dtype == jnp.int32 and int(state.step_count) == 1
    assert state.z["w"] is not params["w"]


def test_eval_params_find_the_state_inside_a_chain_and_name_a_wrong_state() -> None:
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), schedule_free_sgd(0.1))
    params = jnp.ones(3)
    state = tx.init(params)
    updates, state = tx.update(jnp.ones(3), state, params)
    params = gradtx.apply_updates(params, updates)
    np.testing.assert_allclose(schedule_free_eval_params(state, params), schedule_free_eval_params(state[1], params))
    with pytest.raises(ValueError, match=r"ScheduleFreeState.*found 0"):
        schedule_free_eval_params(gradtx.adam(0.1).init(params), params)
    with pytest.raises(ValueError, match="shape mismatch"):
        schedule_free_eval_params(state, jnp.ones(4))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: schedule_free_sgd(0.1, b1=0.0), "b1"),
        (lambda: schedule_free_adamw(0.1, b1=1.5), "b1"),
        (lambda: schedule_free_adamw(-0.1), "learning_rate"),
        (lambda: schedule_free_sgd(0.1, weight_lr_power=-1.0), "weight_lr_power"),
        (lambda: schedule_free_sgd(0.1, warmup_steps=0), "warmup_steps"),
        (lambda: schedule_free_adamw(0.1, b2=1.0), "b2"),
    ],
)
def test_bad_hyperparameters_are_named(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_update_needs_params() -> None:
    tx = schedule_free(gradtx.sgd(0.1), 0.1)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
