"""Factored second moments (Adafactor) with complex params: the same trajectory and state as optax."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx


def _complex_params() -> Any:
    rng = np.random.default_rng(0)
    return {
        "w": jax.lax.complex(jnp.asarray(rng.normal(size=(6, 5))), jnp.asarray(rng.normal(size=(6, 5)))),
        "b": jax.lax.complex(jnp.asarray(rng.normal(size=5)), jnp.asarray(rng.normal(size=5))),
    }


def _run(lib: Any, tx: Any, params: Any, steps: int = 20) -> tuple[Any, Any]:
    state = tx.init(params)
    for i in range(steps):
        grads = jax.tree.map(lambda x, i=i: x * (1.0 + 0.1 * i), params)
        updates, state = tx.update(grads, state, params)
        params = lib.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.adafactor(0.01, min_dim_size_to_factor=4, weight_decay_rate=1e-3),
        lambda lib: lib.scale_by_factored_rms(min_dim_size_to_factor=4),
        lambda lib: lib.scale_by_factored_rms(factored=False),
    ],
    ids=["adafactor", "factored", "unfactored"],
)
def test_complex_params_match_optax(make: Any) -> None:
    params = _complex_params()
    ours, our_state = _run(gradtx, make(gradtx), params)
    with jax.numpy_dtype_promotion("standard"):
        theirs, their_state = _run(optax, make(optax), params)
    for a, b in zip(jax.tree.leaves((ours, our_state)), jax.tree.leaves((theirs, their_state)), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-7, atol=1e-10)
    # The statistics are of |g|^2: real, stored in the params' complex dtype (as optax).
    assert all(float(jnp.max(jnp.abs(jnp.imag(v)))) == 0.0 for v in jax.tree.leaves(our_state))
