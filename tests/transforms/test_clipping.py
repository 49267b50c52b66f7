"""Clipping transforms: per-example clipping against optax and a float64 formula."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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
