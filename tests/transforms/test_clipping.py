"""Clipping transforms: per-example clipping against optax and a float64 formula; global-norm clipping bit for bit."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float32, jnp.float64])
def test_per_example_global_norm_clip_matches_formula_and_optax(dtype: jnp.dtype) -> None:
    """Integer gradients are promoted (as optax), never truncated to zero by integer multipliers."""
    grads = {"w": jnp.array([[3, 4], [1, 0], [0, 2]], dtype), "b": jnp.array([[0], [2], [1]], dtype)}
    summed, num_clipped = gradtx.per_example_global_norm_clip(grads, 2.0)
    g = {k: np.asarray(v, np.float64) for k, v in grads.items()}
    norms = np.sqrt(sum((v.reshape(3, -1) ** 2).sum(axis=1) for v in g.values()))
    scale = np.minimum(2.0 / norms, 1.0)
    for k in grads:
        assert jnp.issubdtype(summed[k].dtype, jnp.floating)
        np.testing.assert_allclose(np.asarray(summed[k]), scale @ g[k].reshape(3, -1), rtol=1e-6)
    assert int(num_clipped) == int((norms > 2.0).sum())
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = optax.per_example_global_norm_clip(grads, 2.0)
    for k in grads:
        assert summed[k].dtype == expected[k].dtype
        np.testing.assert_allclose(np.asarray(summed[k]), np.asarray(expected[k]), rtol=1e-6)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-3, 0.3, 1.0, 7.0, 300.0]),
    max_norm=st.sampled_from([0.0, 0.5, 1.0, 4.0]),
)
def test_clip_by_global_norm_is_bit_identical_to_optax_in_float32(seed: int, scale: float, max_norm: float) -> None:
    # gradtx clips real leaves as g / d * f with per-step scalars (d = f = 1 where it does not clip),
    # optax as select(norm < c, g, g / norm * c): the same bits, eager, jitted and chained with momentum SGD.
    rng = np.random.default_rng(seed)
    grads = {k: jnp.asarray(rng.normal(size=s) * scale, jnp.float32) for k, s in {"a": (5, 3), "b": (4,)}.items()}
    params = jax.tree.map(lambda g: jnp.cos(g), grads)
    for jitted in (False, True):
        ours_tx, theirs_tx = gradtx.clip_by_global_norm(max_norm), optax.clip_by_global_norm(max_norm)
        ours = (jax.jit(ours_tx.update) if jitted else ours_tx.update)(grads, ours_tx.init(params))[0]
        with jax.numpy_dtype_promotion("standard"):
            theirs = (jax.jit(theirs_tx.update) if jitted else theirs_tx.update)(grads, theirs_tx.init(params))[0]
        for k in grads:
            assert np.asarray(ours[k]).tobytes() == np.asarray(theirs[k]).tobytes(), (k, jitted)
    ours_params, theirs_params = (_clipped_momentum_run(lib, max_norm, grads, params) for lib in (gradtx, optax))
    for k in grads:
        assert np.asarray(ours_params[k]).tobytes() == np.asarray(theirs_params[k]).tobytes(), k


def _clipped_momentum_run(lib: Any, max_norm: float, grads: Any, params: Any) -> Any:
    """Three jitted steps of clip + momentum SGD under ``lib``, gradients growing each step."""
    tx = lib.chain(lib.clip_by_global_norm(max_norm), lib.sgd(0.1, momentum=0.9))
    state, p = tx.init(params), params
    with jax.numpy_dtype_promotion("standard"):
        for factor in (1.0, 2.0, 3.0):
            u, state = jax.jit(tx.update)(jax.tree.map(lambda g, f=factor: g * f, grads), state, p)
            p = lib.apply_updates(p, u)
    return p
