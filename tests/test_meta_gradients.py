"""Differentiating through ``init`` and ``update`` (meta-learning): finite where optax is, and equal to it.

The inputs that break it are zeros: a zero-initialised bias (a norm at 0, whose ``sqrt`` has an
infinite derivative that a ``where`` or ``maximum`` turns into ``0 * inf = NaN``), and the zeros
``init`` builds from the params, which must carry no derivative back to them. All in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

_X = jnp.array([1.0, 2.0])


def _params() -> dict[str, jax.Array]:
    return {"w": jnp.array([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.zeros(2)}  # a bias at 0, as flax initialises it


def _loss(p: Any) -> jax.Array:
    return jnp.sum((_X @ p["w"] + p["b"] - 1.0) ** 2)


def _after_steps(lib: Any, tx: Any, steps: int = 3) -> Callable[[Any], jax.Array]:
    """The loss after ``steps`` updates, as a function of the initial params."""

    def run(p0: Any) -> jax.Array:
        state, p = tx.init(p0), p0
        for _ in range(steps):
            updates, state = tx.update(jax.grad(_loss)(p), state, p)
            p = lib.apply_updates(p, updates)
        return _loss(p)

    return run


CASES = {
    "lamb": lambda lib: lib.lamb(0.1),
    "lars": lambda lib: lib.lars(0.1),
    "fromage": lambda lib: lib.fromage(0.1),
    "trust_ratio": lambda lib: lib.chain(lib.scale_by_trust_ratio(), lib.sgd(0.1)),
    "adafactor": lambda lib: lib.adafactor(0.1, min_dim_size_to_factor=1),
    "param_block_rms": lambda lib: lib.chain(lib.scale_by_param_block_rms(), lib.sgd(0.1)),
    "param_block_norm": lambda lib: lib.chain(lib.scale_by_param_block_norm(), lib.sgd(0.1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_meta_gradient_at_a_zero_bias_is_finite_and_optax_s(name):
    ours = jax.grad(_after_steps(gradtx, CASES[name](gradtx)))(_params())
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.grad(_after_steps(optax, CASES[name](optax)))(_params())
    for k in ("w", "b"):
        assert np.isfinite(np.asarray(ours[k])).all(), (k, ours[k])
        # Adafactor's forward losses already differ from optax's by ~1e-8 relative on these inputs.
        rtol = 1e-6 if name == "adafactor" else 1e-10
        np.testing.assert_allclose(np.asarray(ours[k]), np.asarray(theirs[k]), rtol=rtol, atol=1e-12)


def test_the_zeros_init_makes_carry_no_derivative_to_the_params():
    p = jnp.array([1.0, -2.0])
    _, vjp = jax.vjp(lambda q: gradtx.adam(0.1).init(q)[0].nu, p)
    (back,) = vjp(jnp.array([jnp.inf, 1.0]))
    np.testing.assert_array_equal(np.asarray(back), [0.0, 0.0])


@pytest.mark.parametrize(
    "wrap", [gradtx.flatten, lambda tx: gradtx.stacked(tx, max_size=None)], ids=["flatten", "stacked"]
)
def test_an_unused_param_gets_a_zero_meta_gradient_through_a_regrouping_wrapper(wrap):
    params = {"a": jnp.array([1.0, -2.0]), "unused": jnp.array([0.5, 0.3])}

    def loss(p: Any) -> jax.Array:
        return jnp.sum((p["a"] - 0.1) ** 2)

    def after_one_step(p0: Any) -> jax.Array:
        tx = wrap(gradtx.adam(0.01))
        updates, _ = tx.update(jax.grad(loss)(p0), tx.init(p0), p0)
        return loss(gradtx.apply_updates(p0, updates))

    grads = jax.grad(after_one_step)(params)
    # The zero gradient of "unused" makes Adam's derivative there inf (sqrt at 0); it must stay
    # with the gradient and not reach the params through the state's zeros (it gave NaN).
    np.testing.assert_array_equal(np.asarray(grads["unused"]), [0.0, 0.0])
    assert np.isfinite(np.asarray(grads["a"])).all()


def test_clip_by_global_norm_at_a_zero_norm_has_the_identity_jacobian():
    # optax gives NaN here (sqrt's derivative at 0); gradtx's norm has derivative 0 at 0, so below
    # the threshold the clip is the identity, derivative included.
    tx = gradtx.clip_by_global_norm(1.0)
    jac = jax.jacobian(lambda g: tx.update(g, tx.init(g))[0])(jnp.zeros(3))
    np.testing.assert_array_equal(np.asarray(jac), np.eye(3))
    norm_grad = jax.grad(lambda t: gradtx.tree.norm(t))({"a": jnp.zeros(2)})
    np.testing.assert_array_equal(np.asarray(norm_grad["a"]), [0.0, 0.0])


def test_norms_keep_their_values_nan_and_inf_included():
    for s in (0.0, 4.0, jnp.inf, jnp.nan, 1e-300):
        got = gradtx._numerics.sqrt_of_squares(jnp.asarray(s))
        np.testing.assert_array_equal(np.asarray(got), np.sqrt(np.float64(s)))


def test_the_safe_derivative_adds_nothing_to_the_compiled_step(monkeypatch):
    # A guarding `where` around the global norm's sqrt made XLA copy the whole norm reduction into
    # every consumer kernel (2x the instructions here, 6x on 200 leaves); the custom derivative
    # leaves the compiled step exactly that of a plain sqrt.
    params = {f"l{i}": jnp.ones((8, 4)) for i in range(40)}

    def instructions() -> int:
        tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.lamb(1e-3))

        def step(p: Any, s: Any, g: Any) -> Any:
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s

        text = jax.jit(step).lower(params, tx.init(params), params).compile().as_text()
        return sum(1 for line in text.splitlines() if " = " in line)

    safe = instructions()
    monkeypatch.setattr(gradtx._numerics, "sqrt_of_squares", lambda s: jax.tree.map(jnp.sqrt, s))
    assert safe == instructions()
