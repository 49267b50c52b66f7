"""Momentum and EMA buffers of complex params keep their imaginary part whatever ``accumulator_dtype`` says."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


@pytest.mark.parametrize(
    "make, expected_dtype",
    [
        (lambda: gradtx.ema(0.9, debias=False, accumulator_dtype=jnp.float32), jnp.complex64),
        (lambda: gradtx.ema(0.9, debias=False, accumulator_dtype=jnp.float64), jnp.complex128),
        (lambda: gradtx.scale_by_momentum(0.9, accumulator_dtype=jnp.bfloat16), jnp.complex64),
    ],
    ids=["ema_f32", "ema_f64", "momentum_bf16"],
)
def test_real_accumulator_dtype_on_complex_params(make: Any, expected_dtype: Any) -> None:
    g = {"z": jax.lax.complex(jnp.array([1.0, -3.0]), jnp.array([2.0, 0.5]))}
    tx = make()
    state = tx.init(g)
    assert all(x.dtype == expected_dtype for x in jax.tree.leaves(state) if x.ndim)
    trace = np.zeros(2, np.complex128)
    for _ in range(3):
        updates, state = tx.update(g, state, g)
        trace = 0.9 * trace + (0.1 if "ema" in str(type(state)).lower() else 1.0) * np.asarray(g["z"])
    np.testing.assert_allclose(np.asarray(updates["z"]), trace, rtol=1e-2)
    assert float(jnp.max(jnp.abs(jnp.imag(updates["z"])))) > 0.1


def test_adafactor_momentum_on_complex_params_keeps_complex_momentum() -> None:
    params = {"w": jax.lax.complex(jnp.ones((4, 5)), jnp.full((4, 5), 0.5))}
    tx = gradtx.adafactor(0.01, min_dim_size_to_factor=4, momentum=0.9)
    state = tx.init(params)
    updates, state = tx.update(params, state, params)
    assert state[-2].ema["w"].dtype == jnp.complex64
    assert float(jnp.max(jnp.abs(jnp.imag(updates["w"])))) > 0.0
