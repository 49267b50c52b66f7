"""The hypothesis strategies draw what they promise: containers, None leaves, low-precision dtypes."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import gradtx
from gradtx.testing import array_shapes, arrays, check_transformation, float_dtypes, params_and_updates, pytrees

# find() without shrinking (the first tree that satisfies a condition shows it is drawn), and with room
# to search: the profile's 25 examples can miss a kind that one draw in four has.
FIND = settings(phases=[Phase.generate], database=None, max_examples=1000)


def depth(tree: Any) -> int:
    if isinstance(tree, dict):
        return 1 + max(depth(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return 1 + max(depth(v) for v in tree)
    return 0


@given(pytrees(max_depth=2, max_children=3))
def test_pytrees_hold_finite_jax_arrays_within_bounds(tree):
    leaves = jax.tree.leaves(tree)
    assert len(leaves) >= 1
    assert depth(tree) <= 2
    for leaf in leaves:
        assert isinstance(leaf, jax.Array)
        assert jnp.issubdtype(leaf.dtype, jnp.floating)
        assert leaf.ndim <= 3 and all(1 <= d <= 4 for d in leaf.shape)
        values = np.asarray(leaf).astype(np.float32)  # checked in NumPy: no compile per shape
        assert np.all(np.isfinite(values)) and np.all(np.abs(values) <= 10.0)


@pytest.mark.parametrize(
    ("condition", "what"),
    [
        (lambda t: isinstance(t, dict) and len(t) > 1, "a dict"),
        (lambda t: isinstance(t, list), "a list"),
        (lambda t: isinstance(t, tuple), "a tuple"),
        (lambda t: depth(t) == 2, "nested containers"),
        (lambda t: None in jax.tree.leaves(t, is_leaf=lambda x: x is None), "a None leaf"),
        (lambda t: any(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(t)), "a bfloat16 leaf"),
        (lambda t: any(x.dtype == jnp.float16 for x in jax.tree.leaves(t)), "a float16 leaf"),
        (lambda t: any(x.ndim == 0 for x in jax.tree.leaves(t)), "a scalar leaf"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_pytrees_reach_every_kind_of_tree(condition, what):
    assert condition(find(pytrees(), condition, settings=FIND)), what


def test_float64_follows_x64_and_low_precision_can_be_left_out():
    # conftest enables x64, so float64 is drawn by default here; a user without x64 never gets it.
    assert find(float_dtypes(), lambda d: d == jnp.float64, settings=FIND) == jnp.float64
    only_f32 = st.lists(float_dtypes(low_precision=False, float64=False), min_size=20, max_size=20)
    assert set(find(only_f32, lambda _: True, settings=FIND)) == {np.dtype(np.float32)}


@given(arrays(jnp.bfloat16, (2, 3), max_abs=2.0))
def test_arrays_honour_fixed_dtype_shape_and_bound(x):
    assert x.dtype == jnp.bfloat16 and x.shape == (2, 3)
    assert np.all(np.abs(np.asarray(x).astype(np.float32)) <= 2.0)


@given(arrays(jnp.float16, (4,), max_abs=1e5))
def test_arrays_stay_finite_in_a_narrow_dtype(x):
    # float16's largest value is 65504: values up to max_abs are clipped to it, not cast to inf.
    assert x.dtype == jnp.float16 and bool(jnp.all(jnp.isfinite(x)))


@given(array_shapes(min_dims=1, max_dims=2, max_side=2))
def test_array_shapes_bounds(shape):
    assert 1 <= len(shape) <= 2 and all(1 <= d <= 2 for d in shape)


@given(params_and_updates())
def test_params_and_updates_match_leaf_for_leaf(pair):
    params, updates = pair
    assert jax.tree.structure(params) == jax.tree.structure(updates)
    for p, u in zip(jax.tree.leaves(params), jax.tree.leaves(updates), strict=True):
        assert p.shape == u.shape and p.dtype == u.dtype


@pytest.mark.parametrize(
    "call",
    [
        lambda: array_shapes(min_dims=2, max_dims=1),
        lambda: array_shapes(max_side=0),
        lambda: arrays(max_abs=0.0),
        lambda: arrays(max_abs=1e39),  # inf in float32
        lambda: pytrees(max_children=0),
        lambda: pytrees(max_depth=-1),
    ],
)
def test_bad_bounds_raise(call):
    with pytest.raises(ValueError):
        call()


# The kit used as intended: the contract over random trees. Few examples, since each compiles.
@settings(max_examples=4)
@given(params_and_updates(pytrees(arrays(float_dtypes(low_precision=False)), max_depth=1)))
def test_sgd_with_momentum_keeps_the_contract_on_random_trees(pair):
    params, updates = pair
    check_transformation(gradtx.sgd(0.1, momentum=0.9), params, updates=updates, skip={"vmap"})


@settings(max_examples=3)
@given(params_and_updates(pytrees(arrays(st.just(jnp.dtype(jnp.bfloat16))), max_depth=1)))
def test_adam_keeps_the_contract_on_random_bf16_trees(pair):
    params, updates = pair
    # jit may fuse bf16 roundings away, so jit and eager agree to bf16 precision only.
    check_transformation(gradtx.adam(1e-2), params, updates=updates, rtol=2e-2, atol=2e-2, skip={"vmap"})
