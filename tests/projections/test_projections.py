"""gradtx.projections against optax.projections and against the sets' defining properties (float64)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx

P = gradtx.projections


def _tree(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(3 * rng.normal(size=(4,))), "b": {"c": jnp.asarray(3 * rng.normal(size=(2, 3)))}}


def _flat(tree: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


ONE_ARG = [
    "projection_non_negative",
    "projection_simplex",
    "projection_l1_sphere",
    "projection_l1_ball",
    "projection_l2_sphere",
    "projection_l2_ball",
    "projection_linf_ball",
]


@pytest.mark.parametrize("name", ONE_ARG)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_optax(name: str, seed: int) -> None:
    tree = _tree(seed)
    args = () if name == "projection_non_negative" else (1.7,)
    ours = getattr(P, name)(tree, *args)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int and float
        theirs = getattr(optax.projections, name)(tree, *args)
    np.testing.assert_allclose(_flat(ours), _flat(theirs), rtol=1e-12, atol=1e-12)


def test_vector_hyperplane_halfspace_box_match_optax() -> None:
    x, a = _tree(0), _tree(1)
    for name, args in [
        ("projection_vector", (x, a)),
        ("projection_hyperplane", (x, a, 0.5)),
        ("projection_halfspace", (x, a, -0.5)),
        ("projection_halfspace", (x, a, 100.0)),
        ("projection_box", (x, jax.tree.map(lambda v: -jnp.ones_like(v), x), jax.tree.map(jnp.ones_like, x))),
    ]:
        with jax.numpy_dtype_promotion("standard"):
            expected = getattr(optax.projections, name)(*args)
        np.testing.assert_allclose(_flat(getattr(P, name)(*args)), _flat(expected), rtol=1e-12, atol=1e-12)


def test_scalar_bounds_broadcast_over_a_tree() -> None:
    """gradtx broadcasts scalar bounds (optax's projection_hypercube fails on a dict tree)."""
    out = P.projection_hypercube(_tree(0), 2.0)
    flat = _flat(out)
    assert flat.min() >= 0.0 and flat.max() <= 2.0
    np.testing.assert_allclose(flat, np.clip(_flat(_tree(0)), 0.0, 2.0))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 5.0))
def test_simplex_and_l1_ball_are_nearest_points(seed: int, scale: float) -> None:
    """The simplex projection is feasible and beats feasible perturbations (KKT, in float64)."""
    v = _flat(_tree(seed))
    p = _flat(P.projection_simplex(_tree(seed), scale))
    assert p.min() >= 0.0 and p.sum() == pytest.approx(scale, rel=1e-12)
    # Optimality: v - p is constant on the support of p and no larger off it.
    gap = v - p
    support = p > 1e-12
    assert np.ptp(gap[support]) < 1e-10 and np.all(gap[~support] <= gap[support].max() + 1e-10)
    ball = _flat(P.projection_l1_ball(_tree(seed), scale))
    assert np.abs(ball).sum() <= scale * (1 + 1e-12)
    inside = P.projection_l1_ball(jax.tree.map(lambda x: x * 1e-3 / (1 + np.abs(v).sum()), _tree(seed)), scale)
    np.testing.assert_allclose(_flat(inside), _flat(_tree(seed)) * 1e-3 / (1 + np.abs(v).sum()), rtol=1e-12)


def test_balls_and_spheres_formulas() -> None:
    tree = _tree(3)
    v = _flat(tree)
    np.testing.assert_allclose(_flat(P.projection_l2_sphere(tree, 2.0)), 2.0 * v / np.linalg.norm(v), rtol=1e-12)
    np.testing.assert_allclose(
        _flat(P.projection_l2_ball(tree, 2.0)), v * 2.0 / max(np.linalg.norm(v), 2.0), rtol=1e-12
    )
    np.testing.assert_allclose(_flat(P.projection_linf_ball(tree, 0.5)), np.clip(v, -0.5, 0.5))
    assert np.abs(_flat(P.projection_l1_sphere(tree, 1.5))).sum() == pytest.approx(1.5, rel=1e-12)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
@pytest.mark.parametrize("name", ["projection_l2_ball", "projection_l2_sphere"])
def test_l2_projections_keep_low_precision_dtypes(name: str, dtype: Any) -> None:
    # The norm is taken in at least float32; the leaves come back in their own dtype, so a
    # projected step keeps the params' type (a lax.fori_loop carry, for one).
    tree = {"w": jnp.array([3.0, 4.0], dtype), "b": jnp.array([0.0], jnp.float32)}
    got = getattr(P, name)(tree, 1.0)
    assert got["w"].dtype == dtype and got["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got["w"], np.float64), [0.6, 0.8], rtol=1e-2)
    loop = jax.lax.fori_loop(0, 2, lambda i, t: getattr(P, name)(t, 1.0), tree)
    assert jax.tree.map(lambda x: x.dtype, loop) == jax.tree.map(lambda x: x.dtype, tree)
