"""The dtype rule ``docs/errors.md`` states: updates take the gradients' dtypes, params keep theirs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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


@pytest.mark.parametrize(
    "make, fields",
    [
        (lambda **kw: gradtx.adam(1e-3, **kw), ("nu",)),
        (lambda **kw: gradtx.adamw(1e-3, **kw), ("nu",)),
        (lambda **kw: gradtx.amsgrad(1e-3, **kw), ("nu", "nu_max")),
        (lambda **kw: gradtx.adabelief(1e-3, **kw), ("nu",)),
        (lambda **kw: gradtx.yogi(1e-3, **kw), ("nu",)),
        (lambda **kw: gradtx.adan(1e-3, **kw), ("n",)),
        (lambda **kw: gradtx.rmsprop(1e-3, **kw), ("nu",)),
        (lambda **kw: gradtx.adagrad(1e-3, **kw), ("sum_of_squares",)),
    ],
    ids=["adam", "adamw", "amsgrad", "adabelief", "yogi", "adan", "rmsprop", "adagrad"],
)
def test_float16_params_keep_squared_gradients_in_float32(make: Any, fields: tuple[str, ...]) -> None:
    """Squares of small float16 gradients underflow: that state is float32 unless `nu_dtype` says otherwise."""
    params = {"w": jnp.ones(64, jnp.float16)}
    grads = {"w": jnp.full(64, 1e-4, jnp.float16)}
    tx = make()
    state = tx.init(params)
    stats = [leaf for f in fields for leaf in _field_leaves(state, f)]
    assert stats and all(x.dtype == jnp.float32 for x in stats)
    # The 200th step equals float32 training's to float16 precision (before, it grew to 13x lr).
    reference = make()
    params32, grads32 = jax.tree.map(lambda x: x.astype(jnp.float32), (params, grads))
    state32 = reference.init(params32)
    step, step32 = jax.jit(tx.update), jax.jit(reference.update)
    for _ in range(200):
        updates, state = step(grads, state, params)
        expected, state32 = step32(grads32, state32, params32)
    np.testing.assert_allclose(np.asarray(updates["w"], np.float32), np.asarray(expected["w"]), rtol=1e-2, atol=1e-7)
    asked = make(nu_dtype=jnp.float16).init(params)
    assert all(x.dtype == jnp.float16 for f in fields for x in _field_leaves(asked, f))


def _field_leaves(state: Any, field: str) -> list[Any]:
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            if field in node._fields:
                found.extend(jax.tree.leaves(getattr(node, field)))
            for child in node:
                visit(child)
        elif isinstance(node, (tuple, list)):
            for child in node:
                visit(child)

    visit(state)
    return found


def test_bfloat16_params_keep_bfloat16_second_moments() -> None:
    params = {"w": jnp.ones(4, jnp.bfloat16)}
    assert gradtx.adam(1e-3).init(params)[0].nu["w"].dtype == jnp.bfloat16
