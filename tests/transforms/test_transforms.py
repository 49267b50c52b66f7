"""Catalog transforms: rules against NumPy, edge cases, masking, validation."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

F64 = jnp.float64


def _tree(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.normal(size=(3, 4)), F64), "b": {"c": jnp.asarray(rng.normal(size=(5,)), F64)}}


def test_scale_and_learning_rate_and_schedule() -> None:
    g = _tree()
    u, _ = gradtx.scale(2.5).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["a"], 2.5 * np.asarray(g["a"]))
    tx = gradtx.scale_by_learning_rate(lambda c: 0.1 * (jnp.asarray(c).astype(F64) + 1))
    s = tx.init(g)
    for t in range(3):
        u, s = tx.update(g, s)
        np.testing.assert_allclose(u["b"]["c"], -0.1 * (t + 1) * np.asarray(g["b"]["c"]), rtol=1e-14)
    assert isinstance(gradtx.scale_by_learning_rate(None).init(g), gradtx.EmptyState)
    u, _ = gradtx.scale_by_learning_rate(0.5, flip_sign=False).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["a"], 0.5 * np.asarray(g["a"]))


def test_schedule_returning_array_names_hyperparameter() -> None:
    tx = gradtx.scale_by_schedule(lambda c: jnp.ones(2))
    with pytest.raises(ValueError, match="step_size_fn"):
        tx.update(_tree(), tx.init(_tree()))


def test_momentum_and_ema_against_numpy() -> None:
    gs = [_tree(i) for i in range(4)]
    for nesterov in (False, True):
        tx = gradtx.scale_by_momentum(0.7, nesterov=nesterov)
        s, b = tx.init(gs[0]), np.zeros((3, 4))
        for g in gs:
            u, s = tx.update(g, s)
            b = 0.7 * b + np.asarray(g["a"])
            np.testing.assert_allclose(u["a"], np.asarray(g["a"]) + 0.7 * b if nesterov else b, rtol=1e-13)
    tx = gradtx.ema(0.8, debias=True)
    s, e = tx.init(gs[0]), np.zeros(5)
    for t, g in enumerate(gs, 1):
        u, s = tx.update(g, s)
        e = 0.8 * e + 0.2 * np.asarray(g["b"]["c"])
        np.testing.assert_allclose(u["b"]["c"], e / (1 - 0.8**t), rtol=1e-13)
    assert s.count == 4


def test_accumulator_dtype() -> None:
    params = {"w": jnp.ones(3, jnp.float32)}
    s = gradtx.scale_by_momentum(0.9, accumulator_dtype=jnp.bfloat16).init(params)
    assert s.trace["w"].dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="accumulator_dtype"):
        gradtx.scale_by_momentum(0.9, accumulator_dtype=jnp.int8)


def test_rms_bias_corrected_equals_adam_without_first_moment() -> None:
    g = _tree()
    a = gradtx.scale_by_rms(decay=0.99, eps=1e-8, eps_in_sqrt=False, bias_correction=True)
    b = gradtx.scale_by_adam(b1=0.0, b2=0.99, eps=1e-8)
    sa, sb = a.init(g), b.init(g)
    for i in range(3):
        ua, sa = a.update(_tree(i), sa)
        ub, sb = b.update(_tree(i), sb)
        np.testing.assert_allclose(ua["a"], ub["a"], rtol=1e-12)
    assert isinstance(sa, gradtx.ScaleByRmsWithCountState)


def test_adagrad_zero_accumulator_gives_zero_update() -> None:
    tx = gradtx.scale_by_adagrad(initial_accumulator_value=0.0, eps=0.0)
    g = {"w": jnp.array([0.0, 2.0], F64)}
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(u["w"], [0.0, 1.0])


def test_clip_and_global_norm() -> None:
    g = {"x": jnp.array([3.0, -4.0], F64), "y": jnp.array([0.0], F64)}
    u, _ = gradtx.clip(1.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["x"], [1.0, -1.0])
    u, _ = gradtx.clip_by_global_norm(1.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["x"], [0.6, -0.8], rtol=1e-14)
    u, _ = gradtx.clip_by_global_norm(10.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["x"], [3.0, -4.0])
    zeros = jax.tree.map(jnp.zeros_like, g)
    for max_norm in (0.0, 1.0):
        u, _ = jax.jit(gradtx.clip_by_global_norm(max_norm).update)(zeros, gradtx.EmptyState())
        assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
    u, _ = gradtx.clip_by_global_norm(0.0).update(g, gradtx.EmptyState())
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
    # An infinite entry must not turn the finite entries into silent zeros.
    bad = {"x": jnp.array([jnp.inf, 1.0], F64), "y": jnp.array([2.0], F64)}
    u, _ = gradtx.clip_by_global_norm(1.0).update(bad, gradtx.EmptyState())
    assert not bool(jnp.isfinite(u["y"][0]))
    with pytest.raises(ValueError, match="max_norm"):
        gradtx.clip_by_global_norm(-1.0)


def test_block_rms_and_param_scale_and_trust_ratio() -> None:
    g = {"w": jnp.array([3.0, 4.0], F64)}  # rms = sqrt(12.5)
    u, _ = gradtx.clip_by_block_rms(1.0).update(g, gradtx.EmptyState())
    np.testing.assert_allclose(u["w"], np.array([3.0, 4.0]) / np.sqrt(12.5), rtol=1e-14)
    u, _ = gradtx.clip_by_block_rms(0.0).update({"w": jnp.zeros(2, F64)}, gradtx.EmptyState())
    assert bool(jnp.all(u["w"] == 0))
    p = {"w": jnp.array([1e-5, 0.0], F64)}
    u, _ = gradtx.scale_by_param_block_rms(1e-3).update(g, gradtx.EmptyState(), p)
    np.testing.assert_allclose(u["w"], np.array([3.0, 4.0]) * 1e-3)
    with pytest.raises(ValueError, match="needs the current params"):
        gradtx.scale_by_param_block_rms().update(g, gradtx.EmptyState())
    tr = gradtx.scale_by_trust_ratio(trust_coefficient=0.5)
    u, _ = tr.update(g, gradtx.EmptyState(), {"w": jnp.array([0.0, 1.0], F64)})
    np.testing.assert_allclose(u["w"], np.array([3.0, 4.0]) * 0.5 * 1.0 / 5.0, rtol=1e-14)
    u, _ = tr.update(g, gradtx.EmptyState(), {"w": jnp.zeros(2, F64)})  # zero param norm: ratio 1
    np.testing.assert_allclose(u["w"], [3.0, 4.0])


def test_factored_state_shapes_and_rule() -> None:
    params = {"m": jnp.ones((4, 6), F64), "v": jnp.ones((6,), F64), "t": jnp.ones((2, 5, 4), F64)}
    tx = gradtx.scale_by_factored_rms(min_dim_size_to_factor=4)
    s = tx.init(params)
    assert s.v_row["m"].shape == (4,) and s.v_col["m"].shape == (6,) and s.v["m"].shape == (1,)
    assert s.v["v"].shape == (6,) and s.v_row["v"].shape == (1,)
    assert s.v_row["t"].shape == (2, 4) and s.v_col["t"].shape == (2, 5)
    g = jax.tree.map(lambda x: x * 2.0, params)
    u, s = tx.update(g, s, params)
    # First step: beta = 0, so a constant gradient is normalized to ~1 everywhere.
    for x in jax.tree.leaves(u):
        np.testing.assert_allclose(x, np.ones(x.shape), rtol=1e-12)
    with pytest.raises(ValueError, match="min_dim_size_to_factor"):
        gradtx.scale_by_factored_rms(min_dim_size_to_factor=0)


def test_add_decayed_weights_schedule_and_mask() -> None:
    params = {"w": jnp.ones((2, 2), F64), "b": jnp.ones(2, F64)}
    g = jax.tree.map(jnp.zeros_like, params)
    tx = gradtx.add_decayed_weights(lambda c: 0.1 * (jnp.asarray(c).astype(F64) + 1))
    s = tx.init(params)
    for t in range(2):
        u, s = tx.update(g, s, params)
        np.testing.assert_allclose(u["w"], 0.1 * (t + 1) * np.ones((2, 2)), rtol=1e-14)
    tx = gradtx.add_decayed_weights(0.5, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    u, s = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(u["w"], 0.5 * np.ones((2, 2)))
    np.testing.assert_allclose(u["b"], 0.0)
    assert isinstance(s, gradtx.MaskedState)
    with pytest.raises(ValueError, match="needs the current params"):
        gradtx.add_decayed_weights(0.1).update(g, gradtx.EmptyState())


def test_add_noise_seeded() -> None:
    g = {"w": jnp.zeros((2000,), F64), "v": jnp.zeros((3,), F64)}
    a, b, c = gradtx.add_noise(1.0, 0.0, 3), gradtx.add_noise(1.0, 0.0, 3), gradtx.add_noise(1.0, 0.0, 4)
    ua, sa = a.update(g, a.init(g))
    ub, _ = b.update(g, b.init(g))
    uc, _ = c.update(g, c.init(g))
    np.testing.assert_array_equal(ua["w"], ub["w"])
    assert not np.allclose(ua["w"], uc["w"])
    assert 0.9 < float(jnp.std(ua["w"])) < 1.1
    ua2, _ = a.update(g, sa)
    assert not np.allclose(ua["w"], ua2["w"])
    with pytest.raises(ValueError, match="key"):
        gradtx.add_noise(1.0, 0.5, 1, seed=2)


class TestMasked:
    params: ClassVar[dict[str, Any]] = {
        "enc": {"kernel": jnp.ones((2, 3), F64), "bias": jnp.ones(3, F64)},
        "head": jnp.ones(4, F64),
    }

    def test_no_state_for_masked_leaves_and_passthrough(self) -> None:
        mask = {"enc": {"kernel": True, "bias": False}, "head": False}
        tx = gradtx.masked(gradtx.scale_by_adam(), mask)
        s = tx.init(self.params)
        assert isinstance(s, gradtx.MaskedState)
        assert len(jax.tree.leaves(s.inner_state.mu)) == 1
        assert isinstance(s.inner_state.mu["enc"]["bias"], gradtx.MaskedNode)
        g = jax.tree.map(lambda x: 3.0 * x, self.params)
        u, s = jax.jit(tx.update)(g, s, self.params)
        np.testing.assert_allclose(u["head"], g["head"])
        np.testing.assert_allclose(u["enc"]["bias"], g["enc"]["bias"])
        np.testing.assert_allclose(u["enc"]["kernel"], np.ones((2, 3)), rtol=1e-6)

    def test_prefix_and_callable_masks(self) -> None:
        tx = gradtx.masked(gradtx.scale(0.0), {"enc": True, "head": False})
        u, _ = tx.update(self.params, tx.init(self.params))
        assert float(jnp.sum(u["enc"]["kernel"])) == 0.0 and float(jnp.sum(u["head"])) == 4.0
        tx = gradtx.masked(gradtx.scale(0.0), lambda p: jax.tree.map(lambda x: x.ndim == 1, p))
        u, _ = tx.update(self.params, tx.init(self.params))
        assert float(jnp.sum(u["enc"]["kernel"])) == 6.0 and float(jnp.sum(u["head"])) == 0.0
        tx = gradtx.masked(gradtx.scale_by_adam(), False)
        assert jax.tree.leaves(tx.init(self.params).inner_state.mu) == []

    def test_mismatched_mask_names_path(self) -> None:
        tx = gradtx.masked(gradtx.scale(0.0), {"enc": {"kernel": True, "bais": False}, "head": True})
        with pytest.raises(ValueError, match=r"\['enc'\]\['bais'\]"):
            tx.init(self.params)
        tx = gradtx.masked(gradtx.scale(0.0), {"enc": True})
        with pytest.raises(ValueError, match=r"\['head'\]"):
            tx.init(self.params)
        with pytest.raises(TypeError, match="bools"):
            gradtx.masked(gradtx.scale(0.0), {"enc": "yes", "head": True}).init(self.params)

    def test_extra_args_masked_when_compatible(self) -> None:
        seen = {}

        def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
            seen.update(extra)
            return updates, state

        inner = gradtx.GradientTransformation(gradtx.init_empty_state, update)
        tx = gradtx.masked(inner, {"enc": False, "head": True}, mask_compatible_extra_args=True)
        tx.update(self.params, tx.init(self.params), aux=self.params, value=1.0)
        # One MaskedNode per masked-out mask entry (the whole "enc" subtree), as optax.
        assert isinstance(seen["aux"]["enc"], gradtx.MaskedNode) and seen["value"] == 1.0
        assert seen["aux"]["head"].shape == (4,)


def test_complex_adam_uses_modulus() -> None:
    g = {"z": jnp.array([3.0 + 4.0j], jnp.complex128)}
    tx = gradtx.scale_by_adam(eps=0.0)
    u, s = tx.update(g, tx.init(g))
    np.testing.assert_allclose(u["z"], g["z"] / 5.0, rtol=1e-12)
    assert s.nu["z"].dtype == jnp.complex128
