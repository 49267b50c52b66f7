"""gradtx.tree against optax.tree (and float64 formulas) on random trees; gradtx.tree_utils aliases."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx


def _tree(seed: int = 0, dtype: Any = jnp.float64) -> Any:
    rng = np.random.default_rng(seed)
    return {
        "a": jnp.asarray(rng.normal(size=(3,)), dtype),
        "b": {"c": jnp.asarray(rng.normal(size=(2, 2)), dtype), "d": jnp.asarray(rng.normal(), dtype)},
    }


X, Y, Z = _tree(0), _tree(1), _tree(2)
COMPLEX = jax.tree.map(lambda x, y: jax.lax.complex(x, y), X, Y)
KEY = jax.random.key(0)

# name -> (args, kwargs): called as gradtx.tree.<name>(*args, **kwargs) and optax.tree.<name>(...).
CASES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "add": ((X, Y, Z), {}),
    "sub": ((X, Y), {}),
    "mul": ((X, Y), {}),
    "div": ((X, Y), {}),
    "scale": ((0.3, X), {}),
    "add_scale": ((X, -0.7, Y), {}),
    "vdot": ((X, Y), {}),
    "vdot_complex": ((COMPLEX, X), {}),
    "sum": ((X,), {}),
    "max": ((X,), {}),
    "min": ((X,), {}),
    "size": ((X,), {}),
    "conj": ((COMPLEX,), {}),
    "real": ((COMPLEX,), {}),
    "norm": ((X,), {}),
    "norm_1": ((X,), {"ord": 1}),
    "norm_inf": ((X,), {"ord": "inf"}),
    "norm_squared": ((COMPLEX,), {"squared": True}),
    "batch_shape": ((X,), {"shape": (2,)}),
    "clip": ((X,), {"min_value": -0.5, "max_value": 0.5}),
    "where": ((True, X, Y), {}),
    "allclose": ((X, X), {}),
    "zeros_like": ((X,), {}),
    "ones_like": ((X,), {"dtype": jnp.float32}),
    "full_like": ((X, 2.5), {}),
    "cast": ((X, jnp.float32), {}),
    "cast_like": ((X, _tree(0, jnp.float32)), {}),
    "dtype": ((X,), {}),
    "random_like": ((KEY, X), {}),
    "split_key_like": ((KEY, X), {}),
    "unwrap_random_key_data": (({"k": KEY, "x": X},), {}),
    "update_moment": ((X, Y, 0.9, 2), {}),
    "update_infinity_moment": ((X, Y, 0.9, 1e-8), {}),
    "update_moment_per_elem_norm": ((COMPLEX, X, 0.9, 2), {}),
    "bias_correction": ((X, 0.9, jnp.asarray(3, jnp.int32)), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_optax(case: str) -> None:
    name = case.split("_complex")[0]
    for suffix in ("_1", "_inf", "_squared"):
        name = name.removesuffix(suffix) if name.startswith("norm") else name
    args, kwargs = CASES[case]
    ours = getattr(gradtx.tree, name)(*args, **kwargs)
    with jax.numpy_dtype_promotion("standard"):
        theirs = getattr(optax.tree, name)(*args, **kwargs)
    if name == "dtype":
        assert ours == theirs
        return
    if name == "split_key_like":
        ours, theirs = jax.tree.map(jax.random.key_data, (ours, theirs))
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert jnp.asarray(a).dtype == jnp.asarray(b).dtype, case
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0)


def test_norms_and_vdot_are_the_formulas() -> None:
    flat = np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(X)])
    other = np.concatenate([np.ravel(np.asarray(y)) for y in jax.tree.leaves(Y)])
    assert float(gradtx.tree.norm(X)) == pytest.approx(np.sqrt(np.sum(flat**2)), rel=1e-14)
    assert float(gradtx.tree.norm(X, ord=1)) == pytest.approx(np.sum(np.abs(flat)), rel=1e-14)
    assert float(gradtx.tree.norm(X, ord=np.inf)) == pytest.approx(np.max(np.abs(flat)), rel=1e-14)
    assert float(gradtx.tree.vdot(X, Y)) == pytest.approx(float(flat @ other), rel=1e-13)
    with pytest.raises(ValueError, match="ord"):
        gradtx.tree.norm(X, ord=3)


def test_dtype_handlers() -> None:
    mixed = {"a": jnp.zeros(2, jnp.float32), "b": jnp.zeros(2, jnp.bfloat16)}
    with pytest.raises(ValueError, match=r"\['b'\]"):
        gradtx.tree.dtype(mixed)
    assert gradtx.tree.dtype(mixed, "highest") == jnp.float32
    assert gradtx.tree.dtype(mixed, "lowest") == jnp.bfloat16
    assert gradtx.tree.dtype(mixed, "promote") == jnp.float32


def test_safe_norm_value_and_finite_gradient_at_zero() -> None:
    x = jnp.array([3.0, 4.0], jnp.float64)
    assert float(gradtx.tree.safe_norm(x, 1e-3)) == pytest.approx(5.0)
    assert float(gradtx.tree.safe_norm(jnp.zeros(2, jnp.float64), 1e-3)) == pytest.approx(1e-3)
    grad = jax.grad(lambda v: gradtx.tree.safe_norm(v, 1e-3))(jnp.zeros(2, jnp.float64))
    assert np.all(np.isfinite(np.asarray(grad)))
    with jax.numpy_dtype_promotion("standard"):
        expected = optax.safe_norm(jnp.asarray([[3.0, 4.0], [0.0, 0.0]]), 0.5, axis=1)
    np.testing.assert_allclose(gradtx.tree.safe_norm(jnp.asarray([[3.0, 4.0], [0.0, 0.0]]), 0.5, axis=1), expected)
    count = jnp.asarray(jnp.iinfo(jnp.int32).max, jnp.int32)
    assert int(gradtx.tree.safe_int32_increment(count)) == int(count)


@pytest.mark.parametrize("values", [np.zeros(3), np.array([3.0, -3.0, 3.0]), np.array([1e-4, 0.0, -1e-4])])
def test_safe_root_mean_squares_value_and_gradient_as_optax(values: np.ndarray) -> None:
    # At x = 0 the gradient was NaN: sqrt's infinite slope at 0 times where's zero cotangent.
    x = jnp.asarray(values, jnp.float64)
    f = lambda v: gradtx.tree.safe_root_mean_squares(v, 1e-3)
    with jax.numpy_dtype_promotion("standard"):
        want, want_grad = jax.value_and_grad(lambda v: optax.safe_root_mean_squares(v, 1e-3))(x)
    got, grad = jax.value_and_grad(f)(x)
    assert float(got) == pytest.approx(max(float(np.sqrt(np.mean(values**2))), 1e-3), rel=1e-12)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(want_grad), rtol=1e-12, atol=0)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_reductions_skip_empty_leaves_as_optax() -> None:
    tree = {"a": jnp.array([1.0, -5.0], jnp.float64), "empty": jnp.zeros((0, 3), jnp.float64)}
    assert float(gradtx.tree.max(tree)) == 1.0
    assert float(gradtx.tree.min(tree)) == -5.0
    assert float(gradtx.tree.norm(tree, "inf")) == 5.0
    assert float(gradtx.tree.max({"empty": jnp.zeros(0)})) == -np.inf


def test_add_scale_keeps_none_as_optax() -> None:
    x = {"a": jnp.array([1.0, 2.0], jnp.float64), "b": None}
    y = {"a": jnp.array([1.0, 2.0], jnp.float64), "b": jnp.ones(2, jnp.float64)}
    got = gradtx.tree.add_scale(x, 2.0, y)
    assert got["b"] is None
    np.testing.assert_array_equal(np.asarray(got["a"]), [3.0, 6.0])


def test_state_get_set_and_map_params_as_optax() -> None:
    params = {"w": jnp.ones((2, 3), jnp.float64), "b": jnp.zeros(3, jnp.float64)}
    tx = gradtx.chain(gradtx.clip(1.0), gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=0.1))
    state = tx.init(params)
    assert float(gradtx.tree.get(state, "learning_rate")) == pytest.approx(0.1)
    assert gradtx.tree.get(state, "absent", default=7) == 7
    with pytest.raises(KeyError, match="count"):
        gradtx.tree.get(state, "count")  # inject's count and Adam's
    paths = [str(p[-1]) for p, _ in gradtx.tree.get_all_with_path(state, "count")]
    theirs = [str(p[-1]) for p, _ in optax.tree.get_all_with_path(state, "count")]
    assert paths == theirs == ["InjectStatefulHyperparamsState.count", "ScaleByAdamState.count"]
    adam_only = gradtx.tree.get(state, "count", filtering=lambda p, _: "ScaleByAdamState" in str(p[-1]))
    assert int(adam_only) == 0
    new = gradtx.tree.set(state, learning_rate=jnp.asarray(0.5, jnp.float64))
    assert float(new[1].hyperparams["learning_rate"]) == 0.5
    assert jax.tree.structure(new) == jax.tree.structure(state)
    with pytest.raises(KeyError):
        gradtx.tree.set(state, nothing=1)
    with jax.numpy_dtype_promotion("standard"):
        expected = optax.tree.set(state, learning_rate=jnp.asarray(0.5, jnp.float64))
    assert jax.tree.structure(expected) == jax.tree.structure(new)

    mapped = gradtx.tree.map_params(tx, lambda x: x + 1.0, state, transform_non_params=lambda v: v)
    expected = optax.tree.map_params(tx, lambda x: x + 1.0, state, transform_non_params=lambda v: v)
    assert jax.tree.structure(mapped) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(mapped), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(mapped[1].inner_state[0].mu["w"][0, 0]) == 1.0


def test_tree_utils_is_optax_older_namespace() -> None:
    import gradtx.tree_utils as tree_utils  # pyright: ignore[reportMissingImports] - made by gradtx.compat

    assert tree_utils is gradtx.tree_utils
    for name in dir(optax.tree_utils):
        if name.startswith("tree_"):
            assert getattr(tree_utils, name) is getattr(gradtx.tree, name.removeprefix("tree_")), name
