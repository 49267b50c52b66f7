"""Sophia: a float64 trajectory against a NumPy transcription of the paper's Algorithm 3 (with optax's two
conventions), optax.contrib parity with Hutchinson's estimator, the supplied-estimate route, errors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

import gradtx
from gradtx.contrib import HutchinsonState, SophiaState, hutchinson_estimator_diag_hessian, sophia

CURV = np.array([50.0, 5.0, 1.0, 0.2])
TARGET = np.array([1.0, -2.0, 0.5, 3.0])


def _np_grad(w: np.ndarray) -> np.ndarray:
    return CURV * (w - TARGET) + 0.3 * np.cos(w)


def _np_hess(w: np.ndarray) -> np.ndarray:
    return CURV - 0.3 * np.sin(w)


def _loss(w: jax.Array) -> jax.Array:
    return 0.5 * jnp.sum(jnp.asarray(CURV) * (w - jnp.asarray(TARGET)) ** 2) + 0.3 * jnp.sum(jnp.sin(w))


def _supplied() -> gradtx.GradientTransformation:
    def update(updates: Any, state: Any, params: Any = None, *, hessian_diag: Any = None, **extra: Any) -> Any:
        return hessian_diag, state

    return gradtx.GradientTransformation(gradtx.init_empty_state, update)


def _reference(steps: int, lr: float, k: int, b1: float, b2: float, gamma: float, rho: float, wd: float) -> Any:
    """Liu et al.'s Algorithm 3 with the exact Hessian diagonal as the estimate, and optax's two conventions:
    m is bias-corrected, and the estimate taken at theta_t (steps t = 1, k + 1, ...) serves from step t + 1."""
    eps = 1e-8
    w = np.zeros(4)
    m, h = np.zeros(4), np.zeros(4)
    for t in range(1, steps + 1):
        g = _np_grad(w)
        m = b1 * m + (1 - b1) * g
        ratio = (m / (1 - b1**t)) / np.maximum(gamma * h, eps)
        new_w = w - lr * (np.clip(ratio, -rho, rho) + wd * w)
        if (t - 1) % k == 0:
            h = b2 * h + (1 - b2) * _np_hess(w)
        w = new_w
    return w


def test_float64_trajectory_matches_the_paper() -> None:
    kw = {"b1": 0.9, "b2": 0.9, "gamma": 0.05, "clip_threshold": 1.0, "weight_decay": 1e-3}
    tx = sophia(0.05, update_interval=3, hessian_diagonal_fn=_supplied(), **kw)

    @jax.jit
    def step(w: jax.Array, state: Any) -> Any:
        h = jnp.asarray(CURV) - 0.3 * jnp.sin(w)
        updates, state = tx.update(jax.grad(_loss)(w), state, w, hessian_diag=h)
        return gradtx.apply_updates(w, updates), state

    w = jnp.zeros(4)
    state = tx.init(w)
    for _ in range(80):
        w, state = step(w, state)
    want = _reference(80, 0.05, 3, 0.9, 0.9, 0.05, 1.0, 1e-3)
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-10, atol=1e-10)
    assert float(_loss(w)) < float(_loss(jnp.zeros(4))) - 10.0
    assert isinstance(state[0], SophiaState) and int(state[0].count) == 80


def test_matches_optax_contrib_with_hutchinson_and_restores_both_ways() -> None:
    with jax.enable_x64(False):
        ours, theirs = sophia(0.02, update_interval=2), optax.contrib.sophia(0.02, update_interval=2)
        p_ours = p_theirs = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32), "v": jnp.ones((2, 3), jnp.float32)}

        def loss(p: Any) -> jax.Array:
            return 0.5 * jnp.sum(jnp.asarray(CURV[:2], jnp.float32)[:, None] * p["v"] ** 2) + jnp.sum(jnp.sin(p["w"]))

        def run(tx: Any, apply: Any, p: Any) -> tuple[Any, Any]:
            @jax.jit
            def step(p: Any, s: Any) -> Any:
                u, s = tx.update(jax.grad(loss)(p), s, p, obj_fn=loss)
                return apply(p, u), s

            s = tx.init(p)
            for _ in range(7):
                p, s = step(p, s)
            return p, s

        p_ours, s_ours = run(ours, gradtx.apply_updates, p_ours)
        with jax.numpy_dtype_promotion("standard"):
            p_theirs, s_theirs = run(theirs, optax.apply_updates, p_theirs)
        for k in p_ours:
            np.testing.assert_allclose(p_ours[k], p_theirs[k], rtol=2e-5, atol=2e-5, err_msg=k)
        np.testing.assert_allclose(s_ours[0].nu["v"], s_theirs[0].nu["v"], rtol=2e-5, atol=2e-6)
        assert isinstance(s_ours[0].hessian_fn_state, HutchinsonState)
        restored = serialization.from_state_dict(s_theirs, serialization.to_state_dict(s_ours))
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(s_ours), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_hutchinson_is_unbiased_on_a_dense_hessian() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    hessian = a @ a.T
    est = hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    f = lambda p: 0.5 * p @ jnp.asarray(hessian) @ p
    update = jax.jit(lambda s: est.update(None, s, jnp.zeros(5), obj_fn=f))
    state, total = est.init(None), np.zeros(5)
    for _ in range(2000):
        h, state = update(state)
        total += np.asarray(h)
    np.testing.assert_allclose(total / 2000, np.diag(hessian), atol=0.25 * np.abs(hessian).max())


def test_missing_obj_fn_and_params_are_named() -> None:
    tx = sophia(0.1)
    params = jnp.ones(3)
    state = tx.init(params)
    with pytest.raises(TypeError, match="obj_fn"):
        tx.update(jnp.ones(3), state, params)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(jnp.ones(3), state)


def test_an_estimate_of_another_structure_is_named() -> None:
    tx = sophia(0.1, update_interval=1, hessian_diagonal_fn=_supplied())
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match="Hessian diagonal"):
        tx.update(params, tx.init(params), params, hessian_diag={"a": jnp.ones(2)})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"b1": 1.0}, "b1"),
        ({"b2": -0.1}, "b2"),
        ({"gamma": -1.0}, "gamma"),
        ({"clip_threshold": 0.0}, "clip_threshold"),
        ({"update_interval": 0}, "update_interval"),
        ({"verbose": True, "print_win_rate_every_n_steps": 0}, "print_win_rate_every_n_steps"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sophia(0.1, **kwargs)
