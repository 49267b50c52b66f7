"""Comparing a wrapped transform with the plain one over a few steps (stacked, flatten)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


def grads(params: Any, step: int) -> Any:
    """Gradient-like values that differ per entry and per step."""
    return jax.tree.map(lambda x: jnp.sin(3.0 * x + step) - 0.2 * x, params)


def assert_steps_equal(
    wrapped: Any, plain: Any, params: Any, *, extra_args: dict[str, Any] | None = None, **tolerance: float
) -> None:
    """Three steps of ``wrapped`` (jitted) and ``plain`` from ``params`` give the same updates."""
    extra_args = extra_args or {}
    ws, ps = wrapped.init(params), plain.init(params)
    for step in range(3):
        g = grads(params, step)
        wu, ws = jax.jit(wrapped.update)(g, ws, params, **extra_args)
        pu, ps = plain.update(g, ps, params, **extra_args)
        for a, b in zip(jax.tree.leaves(wu), jax.tree.leaves(pu), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **tolerance)
        params = gradtx.apply_updates(params, pu)
