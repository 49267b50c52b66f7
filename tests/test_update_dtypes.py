"""The dtype rule ``docs/errors.md`` states: updates take the gradients' dtypes, params keep theirs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

import gradtx


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.adam(1e-2),
        lambda: gradtx.sgd(1e-2, momentum=0.9),
        lambda: gradtx.adafactor(1e-2, min_dim_size_to_factor=2),
        lambda: gradtx.lion(1e-3),
    ],
    ids=["adam", "sgd_momentum", "adafactor", "lion"],
)
def test_bf16_gradients_on_float32_params(make: Any) -> None:
    params = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    grads = jax.tree.map(lambda p: (p + 0.5).astype(jnp.bfloat16), params)
    tx = make()
    state = tx.init(params)
    updates, new_state = tx.update(grads, state, params)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(gradtx.apply_updates(params, updates)))
