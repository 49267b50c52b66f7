"""Pytree helpers: global_norm and the path-aware structure check."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings

from gradtx import _tree, global_norm
from tests.support.trees import float_trees


@settings(max_examples=15)
@given(float_trees())
def test_global_norm_matches_float64_reference(tree):
    ref = np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))
    got = global_norm(tree)
    has_f64 = any(x.dtype == jnp.float64 for x in jax.tree.leaves(tree))
    assert got.dtype == (jnp.float64 if has_f64 else jnp.float32)
    np.testing.assert_allclose(float(got), ref, rtol=1e-6)


def test_global_norm_accumulates_fp16_without_overflow():
    # 300^2 = 90000 overflows float16 (max 65504); the norm itself (600) does not.
    tree = {"a": jnp.full((4,), 300.0, jnp.float16)}
    assert float(global_norm(tree)) == pytest.approx(600.0)
    assert float(optax.tree.norm(tree)) == float("inf")  # why we accumulate in float32


def test_global_norm_of_bf16_many_small_entries():
    n = 1 << 16
    tree = {"a": jnp.full((n,), 0.01, jnp.bfloat16)}
    ref = np.sqrt(n * float(np.asarray(jnp.bfloat16(0.01), np.float64)) ** 2)
    np.testing.assert_allclose(float(global_norm(tree)), ref, rtol=1e-5)


def test_global_norm_complex_and_empty():
    z = jnp.array([3 + 4j], jnp.complex64)
    assert float(global_norm({"z": z})) == pytest.approx(5.0)
    assert float(global_norm({})) == 0.0


def test_check_same_structure_messages():
    params = {"encoder": {"layer_3": {"kernel": jnp.zeros((4, 4)), "bias": jnp.zeros(4)}}}
    bad_shape = {"encoder": {"layer_3": {"kernel": jnp.zeros((4, 5)), "bias": jnp.zeros(4)}}}
    with pytest.raises(ValueError, match=r"where: shape mismatch at \['encoder'\]\['layer_3'\]\['kernel'\]"):
        _tree.check_same_structure(params, bad_shape, "params", "updates", where="where")
    _tree.check_same_structure(params, bad_shape, "params", "updates", where="w", check_shapes=False)
    bad_dtype = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    with pytest.raises(ValueError, match=r"dtype mismatch at \['encoder'\]\['layer_3'\]\['bias'\]"):
        _tree.check_same_structure(params, bad_dtype, "params", "state", where="w", check_dtypes=True)
    with pytest.raises(ValueError, match="different containers"):
        _tree.check_same_structure([jnp.zeros(1)], (jnp.zeros(1),), "a", "b", where="w")


def test_check_float_leaves_names_the_integer_leaf():
    with pytest.raises(TypeError, match=r"params\['emb'\]\['ids'\] is int32\[3\]"):
        _tree.check_float_leaves({"emb": {"ids": jnp.zeros(3, jnp.int32)}}, "params", where="adam")
    with pytest.raises(TypeError, match="floating leaves"):
        _tree.check_float_leaves({"z": jnp.zeros(1, jnp.complex64)}, "params", where="x", allow_complex=False)
    _tree.check_float_leaves({"z": jax.ShapeDtypeStruct((1,), jnp.bfloat16)}, "params", where="x")


def test_require_params():
    with pytest.raises(ValueError, match="add_decayed_weights needs the current params"):
        _tree.require_params(None, where="add_decayed_weights")
