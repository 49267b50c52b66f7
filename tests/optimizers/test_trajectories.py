"""Every optimizer against its float64 NumPy reference written from the paper, and against optax in float32.

100-step float64 trajectories, relative 1e-10: whole-tree references on three leaves (one large
enough for Adafactor to factor), and per-leaf rules on three leaves of ranks 1-3, both with
param-dependent gradients. Then 30-step float32 trajectories against optax, and optax's state
structure and signatures. The references are in ``tests/support/reference_<family>.py``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from tests.support import reference_adam as adam_refs
from tests.support import reference_sgd_rms as sgd_refs
from tests.support import reference_sign_trust_ratio as sign_refs
from tests.support.reference_runner import run, trajectory

STEPS = 100


def _initial_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w": rng.normal(size=(128, 160)) * 0.5,  # factored by Adafactor (both dims >= 128)
        "b": rng.normal(size=(7,)),
        "k": rng.normal(size=(3, 4, 5)),
    }


_TARGET = {k: np.random.default_rng(1).normal(size=v.shape) * 0.3 for k, v in _initial_params().items()}


def np_grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gradient of sum(0.5 (p - c)^2 + 0.025 (p - c)^4): depends on the params."""
    return {k: (p[k] - _TARGET[k]) + 0.1 * (p[k] - _TARGET[k]) ** 3 for k in p}


def jax_grad(p: Any) -> Any:
    target = {k: jnp.asarray(v, p[k].dtype) for k, v in _TARGET.items()}
    return {k: (p[k] - target[k]) + 0.1 * (p[k] - target[k]) ** 3 for k in p}


def run_trajectory(tx: Any, params: Any, steps: int = STEPS, apply: Any = gradtx.apply_updates) -> Any:
    """The params after each of ``steps`` steps, stacked along a leading axis (one compile)."""

    def body(carry: Any, _: Any) -> Any:
        p, s = carry
        u, s = tx.update(jax_grad(p), s, p)
        p = apply(p, u)
        return (p, s), p

    @jax.jit
    def run(p: Any) -> Any:
        return jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1]

    return run(params)


def _schedule(count: Any) -> Any:
    return 0.05 / (1.0 + 0.01 * jnp.asarray(count).astype(jnp.float64))


def _np_schedule(count: int) -> float:
    return 0.05 / (1.0 + 0.01 * count)


# (id, gradtx builder, reference builder, optax builder or None)
CASES: list[tuple[str, Any, Any, Any]] = [
    ("sgd", lambda: gradtx.sgd(0.05), lambda: sgd_refs.ref_sgd(0.05), lambda: optax.sgd(0.05)),
    (
        "sgd_momentum_schedule",
        lambda: gradtx.sgd(_schedule, momentum=0.9),
        lambda: sgd_refs.ref_sgd(_np_schedule, momentum=0.9),
        lambda: optax.sgd(_schedule, momentum=0.9),
    ),
    (
        "sgd_nesterov",
        lambda: gradtx.sgd(0.05, momentum=0.8, nesterov=True),
        lambda: sgd_refs.ref_sgd(0.05, momentum=0.8, nesterov=True),
        lambda: optax.sgd(0.05, momentum=0.8, nesterov=True),
    ),
    ("adagrad", lambda: gradtx.adagrad(0.1), lambda: sgd_refs.ref_adagrad(0.1), lambda: optax.adagrad(0.1)),
    ("rmsprop", lambda: gradtx.rmsprop(0.01), lambda: sgd_refs.ref_rmsprop(0.01), lambda: optax.rmsprop(0.01)),
    (
        "rmsprop_centered_momentum",
        lambda: gradtx.rmsprop(0.01, eps=1e-3, centered=True, momentum=0.9, nesterov=True),
        lambda: sgd_refs.ref_rmsprop(0.01, eps=1e-3, centered=True, momentum=0.9, nesterov=True),
        lambda: optax.rmsprop(0.01, eps=1e-3, centered=True, momentum=0.9, nesterov=True),
    ),
    (
        "rmsprop_torch_eps_bias",
        lambda: gradtx.rmsprop(0.01, eps_in_sqrt=False, bias_correction=True, initial_scale=0.1),
        lambda: sgd_refs.ref_rmsprop(0.01, eps_in_sqrt=False, bias_correction=True, initial_scale=0.1),
        lambda: optax.rmsprop(0.01, eps_in_sqrt=False, bias_correction=True, initial_scale=0.1),
    ),
    (
        "rmsprop_centered_bias",
        lambda: gradtx.rmsprop(0.01, eps=1e-3, initial_scale=0.5, centered=True, bias_correction=True),
        lambda: sgd_refs.ref_rmsprop(0.01, eps=1e-3, initial_scale=0.5, centered=True, bias_correction=True),
        lambda: optax.rmsprop(0.01, eps=1e-3, initial_scale=0.5, centered=True, bias_correction=True),
    ),
    ("adam", lambda: gradtx.adam(0.01), lambda: adam_refs.ref_adam(0.01), lambda: optax.adam(0.01)),
    (
        "adam_schedule_eps_root",
        lambda: gradtx.adam(_schedule, b1=0.8, b2=0.99, eps_root=1e-6),
        lambda: adam_refs.ref_adam(_np_schedule, b1=0.8, b2=0.99, eps_root=1e-6),
        lambda: optax.adam(_schedule, b1=0.8, b2=0.99, eps_root=1e-6),
    ),
    ("nadam", lambda: gradtx.nadam(0.01), lambda: adam_refs.ref_adam(0.01, nesterov=True), lambda: optax.nadam(0.01)),
    (
        "adamw",
        lambda: gradtx.adamw(0.01, weight_decay=0.05),
        lambda: adam_refs.ref_adam(0.01, weight_decay=0.05),
        lambda: optax.adamw(0.01, weight_decay=0.05),
    ),
    ("radam", lambda: gradtx.radam(0.01), lambda: adam_refs.ref_radam(0.01), lambda: optax.radam(0.01)),
    ("adamax", lambda: gradtx.adamax(0.01), lambda: adam_refs.ref_adamax(0.01), lambda: optax.adamax(0.01)),
    (
        "lamb",
        lambda: gradtx.lamb(0.01, weight_decay=0.01),
        lambda: sign_refs.ref_lamb(0.01, weight_decay=0.01),
        lambda: optax.lamb(0.01, weight_decay=0.01),
    ),
    (
        "lars",
        lambda: gradtx.lars(1.0, weight_decay=1e-3, nesterov=True),
        lambda: sign_refs.ref_lars(1.0, weight_decay=1e-3, nesterov=True),
        lambda: optax.lars(1.0, weight_decay=1e-3, nesterov=True),
    ),
    ("lion", lambda: gradtx.lion(1e-3), lambda: sign_refs.ref_lion(1e-3), lambda: optax.lion(1e-3)),
    ("adafactor", lambda: gradtx.adafactor(0.01), lambda: sgd_refs.ref_adafactor(0.01), lambda: optax.adafactor(0.01)),
    (
        "adafactor_momentum_decay",
        lambda: gradtx.adafactor(0.01, momentum=0.9, dtype_momentum=jnp.float64, weight_decay_rate=1e-3),
        lambda: sgd_refs.ref_adafactor(0.01, momentum=0.9, weight_decay_rate=1e-3),
        None,
    ),
    ("sign_sgd", lambda: gradtx.sign_sgd(1e-3), lambda: sign_refs.ref_sign_sgd(1e-3), None),
    ("signum", lambda: gradtx.signum(1e-3, beta=0.8), lambda: sign_refs.ref_signum(1e-3, beta=0.8), None),
]


def _max_rel_err(actual: Any, expected: np.ndarray) -> float:
    actual = np.asarray(actual, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


@pytest.mark.parametrize(("name", "build", "build_ref", "build_optax"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_matches_float64_reference(name: str, build: Any, build_ref: Any, build_optax: Any) -> None:
    del build_optax
    params = {k: jnp.asarray(v, jnp.float64) for k, v in _initial_params().items()}
    traj = {k: np.asarray(v) for k, v in run_trajectory(build(), params).items()}
    expected = trajectory(build_ref(), _initial_params(), np_grad, STEPS)
    moved = 0.0
    for t in range(STEPS):
        for k in expected[t]:
            err = _max_rel_err(traj[k][t], expected[t][k])
            assert err <= 1e-10, f"{name}: step {t + 1}, leaf {k}: relative error {err:.3e}"
    for k in expected[-1]:
        moved = max(moved, float(np.max(np.abs(expected[-1][k] - _initial_params()[k]))))
    assert moved > 1e-3, f"{name}: the reference barely moved; the test would not catch errors"


# One float32 comparison per optimizer name keeps the suite fast; the float64 references
# above cover the flag variants.
OPTAX_CASES = [
    c
    for c in CASES
    if c[3] is not None
    and c[0]
    in {"sgd_nesterov", "adagrad", "rmsprop_centered_momentum", "adam_schedule_eps_root", "nadam", "adamw"}
    | {"radam", "adamax", "lamb", "lars", "lion", "adafactor", "rmsprop_torch_eps_bias"}
]


@pytest.mark.parametrize(("name", "build", "build_optax"), [(c[0], c[1], c[3]) for c in OPTAX_CASES])
def test_matches_optax_float32(name: str, build: Any, build_optax: Any) -> None:
    params = {k: jnp.asarray(v, jnp.float32) for k, v in _initial_params().items()}
    ours = run_trajectory(build(), params, steps=30)
    with jax.numpy_dtype_promotion("standard"):
        theirs = run_trajectory(build_optax(), params, steps=30, apply=optax.apply_updates)
    for k in params:
        scale = float(jnp.max(jnp.abs(theirs[k])))
        err = float(jnp.max(jnp.abs(ours[k] - theirs[k]))) / scale
        assert err <= 2e-6, f"{name}: leaf {k}: relative difference to optax {err:.3e}"


def test_state_structure_matches_optax() -> None:
    params = {k: jnp.asarray(v, jnp.float32) for k, v in _initial_params().items()}
    for name, build, _, build_optax in OPTAX_CASES:
        ours = jax.eval_shape(build().init, params)
        with jax.numpy_dtype_promotion("standard"):
            theirs = jax.eval_shape(build_optax().init, params)
        assert [(x.shape, x.dtype) for x in jax.tree.leaves(ours)] == [
            (x.shape, x.dtype) for x in jax.tree.leaves(theirs)
        ], name
        assert jax.tree.structure(ours).num_leaves == jax.tree.structure(theirs).num_leaves, name


def test_import_gradtx_as_optax_signatures() -> None:
    import inspect

    from tests.support.optax_names import DELIBERATE_DIFFERENCES

    for name in ["sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam", "adamax", "lamb", "lars", "lion"]:
        ours = inspect.signature(getattr(gradtx, name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        # optax's parameters first, in its order; documented extensions (e.g. `nu_dtype`) only after them,
        # keyword-only, so optax code runs unchanged.
        assert list(ours)[: len(theirs)] == list(theirs), name
        extra = list(ours)[len(theirs) :]
        assert not extra or name in DELIBERATE_DIFFERENCES, (name, extra)
        assert all(ours[p].kind is inspect.Parameter.KEYWORD_ONLY for p in extra), (name, extra)
        for p in theirs:
            assert ours[p].kind == theirs[p].kind, (name, p)
            if theirs[p].default is not inspect.Parameter.empty and not callable(theirs[p].default):
                assert ours[p].default == theirs[p].default, (name, p)


# Per-leaf rules: three leaves of ranks 1-3, each with its own curvature and target.

LEAF_SHAPES = [(4,), (5, 4), (3, 2, 4)]
LEAF_CURV = [0.5, 1.0, 1.5]
LEAF_TARGET = [-0.3, 0.0, 0.3]


def _np_leaf_grads(params: list[np.ndarray]) -> list[np.ndarray]:
    return [c * (p - t) + 0.08 * p**3 for p, c, t in zip(params, LEAF_CURV, LEAF_TARGET)]


def _jax_leaf_grads(params: list[jax.Array]) -> list[jax.Array]:
    return [c * (p - t) + 0.08 * p**3 for p, c, t in zip(params, LEAF_CURV, LEAF_TARGET)]


def _leaf_params() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=s) for s in LEAF_SHAPES]


LEAF_CASES = [
    (
        "adabelief",
        lambda: gradtx.adabelief(0.01, b1=0.85, eps_root=1e-12),
        adam_refs.AdaBelief(0.01, b1=0.85, eps_root=1e-12),
    ),
    ("yogi", lambda: gradtx.yogi(0.01, b2=0.99), adam_refs.Yogi(0.01, b2=0.99)),
    ("amsgrad", lambda: gradtx.amsgrad(0.01, b2=0.99), adam_refs.AMSGrad(0.01, b2=0.99)),
    ("adan", lambda: gradtx.adan(0.01, eps_root=0.0), adam_refs.Adan(0.01)),
    (
        "novograd",
        lambda: gradtx.novograd(0.003, eps=0.0, eps_root=1e-8, weight_decay=0.01),
        sign_refs.NovoGrad(0.003, wd=0.01),
    ),
    (
        "rprop",
        lambda: gradtx.rprop(0.01, eta_minus=0.4, eta_plus=1.3, max_step_size=0.5),
        sign_refs.Rprop(0.01, 0.4, 1.3, 1e-6, 0.5),
    ),
    ("sm3", lambda: gradtx.sm3(0.05, momentum=0.8), sgd_refs.SM3(0.05, momentum=0.8)),
]


@pytest.mark.parametrize(("make", "rule"), [c[1:] for c in LEAF_CASES], ids=[c[0] for c in LEAF_CASES])
def test_leaf_rule_trajectory_matches_float64_reference(make: Any, rule: Any) -> None:
    tx = make()

    @jax.jit
    def ours_from(params: Any) -> Any:
        def step(carry: Any, _: Any) -> tuple[Any, Any]:
            p, s = carry
            u, s = tx.update(_jax_leaf_grads(p), s, p)
            p = gradtx.apply_updates(p, u)
            return (p, s), p

        return jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)[1]

    init = _leaf_params()
    ours = ours_from([jnp.asarray(p, jnp.float64) for p in init])
    expected = run(rule, init, _np_leaf_grads, STEPS)
    for leaf in range(len(LEAF_SHAPES)):
        want = np.stack([step[leaf] for step in expected])
        got = np.asarray(ours[leaf])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * float(np.max(np.abs(want))))
