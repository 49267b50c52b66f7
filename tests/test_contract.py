"""The contract every registered optimizer keeps (see ``tests/support/registry.py``).

The general properties come from ``gradtx.testing.check_transformation`` (what users run on their
own transforms); the optimizer-specific ones (half-precision params, moment dtypes, complex
params, zero params) are checked here. Small trees keep this cheap: only the jit and vmap checks
compile, once per optimizer each.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.testing import check_transformation
from tests.support.registry import REGISTRY, Entry

IDS = [e.name for e in REGISTRY]


def make_params(dtype: Any = jnp.float32, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    real = jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype

    def draw(shape: tuple[int, ...]) -> jax.Array:
        x = rng.normal(size=shape)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return jax.lax.complex(jnp.asarray(x, real), jnp.asarray(rng.normal(size=shape), real)).astype(dtype)
        return jnp.asarray(x, dtype)

    return {"kernel": draw((4, 5)), "bias": draw((3,)), "nested": {"scale": draw((2, 1, 4))}}


def grads_of(params: Any) -> Any:
    # Param-dependent, non-trivial gradients of the params' dtype.
    return jax.tree.map(lambda p: (p * 0.5 + 0.25 * p * p).astype(p.dtype), params)


def step(tx: Any, params: Any, state: Any) -> tuple[Any, Any]:
    updates, state = tx.update(grads_of(params), state, params)
    return gradtx.apply_updates(params, updates), state


def shapes_dtypes(tree: Any) -> list[tuple[tuple[int, ...], Any]]:
    return [
        (tuple(jnp.shape(x)), jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)
        for x in jax.tree.leaves(tree)
    ]


def all_finite(tree: Any) -> bool:
    """Every leaf finite; typed PRNG keys (``add_noise``'s state) count by their key data."""
    return all(
        bool(jnp.all(jnp.isfinite(jnp.asarray(x).astype(jnp.complex64 if jnp.iscomplexobj(x) else jnp.float32))))
        for x in jax.tree.leaves(gradtx.tree.unwrap_random_key_data(tree))
    )


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_check_transformation(entry: Entry) -> None:
    # gradtx.testing's contract, the one users run on their own transforms: abstract init equals
    # init; pure; updates like the params; state structure, shapes, dtypes and shardings stable
    # over 3 steps; jit equals eager over 3 steps with a single trace; vmap over 3 param sets
    # (init and two steps); finite over two updates with zero gradients.
    check_transformation(entry.build(), make_params(), updates=grads_of, num_steps=3, vmap_size=3)


ABSTRACT_EXTRA = {
    # Transforms whose state starts from the params' values, outside the registry.
    "ema_params": lambda: gradtx.ema_params(0.9),
    "distance_over_gradients": lambda: gradtx.scale_by_distance_over_gradients(),
    "quantized_adamw": lambda: gradtx.quantized_state(gradtx.adamw(0.1), min_size=0, block_size=4),
}


@pytest.mark.parametrize(
    "make", [e.build for e in REGISTRY] + list(ABSTRACT_EXTRA.values()), ids=IDS + list(ABSTRACT_EXTRA)
)
def test_init_on_abstract_params_gives_the_states_types(make: Any) -> None:
    # DESIGN 1: `init` works on ShapeDtypeStruct leaves, directly and not only under eval_shape.
    # Schedule-Free and distance-over-gradients copied the values and raised a TypeError there.
    tx = make()
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), make_params())
    state = tx.init(abstract)
    want = jax.eval_shape(tx.init, abstract)
    assert jax.tree.structure(state) == jax.tree.structure(want)
    assert shapes_dtypes(state) == shapes_dtypes(want)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_low_precision_params(entry: Entry) -> None:
    tx = entry.build()
    for dtype in (jnp.bfloat16, jnp.float16):
        params = make_params(dtype)
        state0 = tx.init(params)
        p, s = step(tx, params, state0)
        assert all(x.dtype == dtype for x in jax.tree.leaves(p)), f"{entry.name}: {dtype.__name__} params changed dtype"
        assert shapes_dtypes(s) == shapes_dtypes(state0)
        assert all_finite(p)
        # Zero gradients in half precision: eps must not underflow into 0/0.
        zeros = jax.tree.map(jnp.zeros_like, params)
        updates, s = tx.update(zeros, state0, params)
        assert all_finite(updates), f"{entry.name}: non-finite update for zero {dtype.__name__} gradients"


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_finite_on_zero_params(entry: Entry) -> None:
    # Zero gradients are in test_check_transformation; here the params themselves are zero.
    tx = entry.build()
    zeros = jax.tree.map(jnp.zeros_like, make_params())
    state = tx.init(zeros)
    p = zeros
    for _ in range(2):
        p, state = step(tx, p, state)
        updates, _ = tx.update(grads_of(make_params()), state, zeros)
        assert all_finite(p) and all_finite(updates), f"{entry.name}: zero params"


def _moment_leaves(state: Any, fields: tuple[str, ...]) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            for f in node._fields:
                if f in fields:
                    found.extend(jax.tree.leaves(getattr(node, f)))
                else:
                    visit(getattr(node, f))
        elif isinstance(node, (tuple, list)):
            for x in node:
                visit(x)
        elif isinstance(node, dict):
            for x in node.values():
                visit(x)

    visit(state)
    return found


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.mu_dtype_arg or e.nu_dtype_arg], ids=lambda e: e.name)
def test_moment_dtypes_honoured(entry: Entry) -> None:
    params = make_params(jnp.float32)
    for arg, fields in ((entry.mu_dtype_arg, entry.moment_fields), (entry.nu_dtype_arg, entry.nu_fields)):
        if arg is None:
            continue
        tx = entry.build(**{arg: jnp.bfloat16})
        state = tx.init(params)
        p, state = step(tx, params, state)
        p, state = step(tx, p, state)
        leaves = _moment_leaves(state, fields)
        assert leaves, f"{entry.name}: no state field in {fields}"
        assert all(x.dtype == jnp.bfloat16 for x in leaves), f"{entry.name}: `{arg}` not honoured"
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p))
        assert all_finite(p)


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.complex_ok], ids=lambda e: e.name)
def test_complex_params(entry: Entry) -> None:
    tx = entry.build()
    params = make_params(jnp.complex64)
    state0 = tx.init(params)
    p, s = step(tx, params, state0)
    p, s = step(tx, p, s)
    assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(p))
    assert shapes_dtypes(s) == shapes_dtypes(state0)
    assert all_finite(p)
    assert any(
        float(jnp.max(jnp.abs(jnp.imag(a - b)))) > 0 for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(params))
    )
