"""The optax-parity optimizers against independent float64 NumPy references written from the papers.

100-step trajectories on three leaves (ranks 1-3) with param-dependent gradients, relative 1e-10.
Also: hyperparameter validation, missing params/values, and behaviour of the compatibility names.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.support import reference_adaptive as ref

STEPS = 100
SHAPES = [(4,), (5, 4), (3, 2, 4)]
CURV = [0.5, 1.0, 1.5]
TARGET = [-0.3, 0.0, 0.3]


def _np_grads(params: list[np.ndarray]) -> list[np.ndarray]:
    return [c * (p - t) + 0.08 * p**3 for p, c, t in zip(params, CURV, TARGET)]


def _jax_grads(params: list[jax.Array]) -> list[jax.Array]:
    return [c * (p - t) + 0.08 * p**3 for p, c, t in zip(params, CURV, TARGET)]


def _init() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=s) for s in SHAPES]


CASES = [
    (
        "adabelief",
        lambda: gradtx.adabelief(0.01, b1=0.85, eps_root=1e-12),
        ref.AdaBelief(0.01, b1=0.85, eps_root=1e-12),
    ),
    ("yogi", lambda: gradtx.yogi(0.01, b2=0.99), ref.Yogi(0.01, b2=0.99)),
    ("amsgrad", lambda: gradtx.amsgrad(0.01, b2=0.99), ref.AMSGrad(0.01, b2=0.99)),
    ("adan", lambda: gradtx.adan(0.01, eps_root=0.0), ref.Adan(0.01)),
    (
        "novograd",
        lambda: gradtx.novograd(0.003, eps=0.0, eps_root=1e-8, weight_decay=0.01),
        ref.NovoGrad(0.003, wd=0.01),
    ),
    (
        "rprop",
        lambda: gradtx.rprop(0.01, eta_minus=0.4, eta_plus=1.3, max_step_size=0.5),
        ref.Rprop(0.01, 0.4, 1.3, 1e-6, 0.5),
    ),
    ("sm3", lambda: gradtx.sm3(0.05, momentum=0.8), ref.SM3(0.05, momentum=0.8)),
]


@pytest.mark.parametrize(("make", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trajectory_matches_paper_reference(make: Any, rule: Any) -> None:
    tx = make()

    @jax.jit
    def run(params: Any) -> Any:
        def step(carry: Any, _: Any) -> tuple[Any, Any]:
            p, s = carry
            u, s = tx.update(_jax_grads(p), s, p)
            p = gradtx.apply_updates(p, u)
            return (p, s), p

        return jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)[1]

    init = _init()
    ours = run([jnp.asarray(p, jnp.float64) for p in init])
    expected = ref.run(rule, init, _np_grads, STEPS)
    for leaf in range(len(SHAPES)):
        want = np.stack([step[leaf] for step in expected])
        got = np.asarray(ours[leaf])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * float(np.max(np.abs(want))))


@pytest.mark.parametrize(
    ("build", "arg"),
    [
        (lambda: gradtx.adabelief(0.1, b1=1.0), "b1"),
        (lambda: gradtx.scale_by_belief(eps=-1.0), "eps"),
        (lambda: gradtx.yogi(0.1, b2=-0.1), "b2"),
        (lambda: gradtx.scale_by_yogi(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: gradtx.amsgrad(0.1, eps_root=-1e-3), "eps_root"),
        (lambda: gradtx.adan(0.1, b3=1.5), "b3"),
        (lambda: gradtx.novograd(0.1, weight_decay=-0.1), "weight_decay"),
        (lambda: gradtx.adadelta(0.1, rho=1.0), "rho"),
        (lambda: gradtx.rprop(0.0), "learning_rate"),
        (lambda: gradtx.rprop(0.1, eta_minus=1.5), "eta_minus"),
        (lambda: gradtx.rprop(0.1, eta_plus=0.5), "eta_plus"),
        (lambda: gradtx.rprop(0.1, min_step_size=1.0, max_step_size=0.5), "max_step_size"),
        (lambda: gradtx.sm3(0.1, momentum=1.0), "momentum"),
        (lambda: gradtx.scale_by_sm3(b2=1.5), "b2"),
        (lambda: gradtx.scale_by_rss(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: gradtx.polyak_sgd(max_learning_rate=-1.0), "max_learning_rate"),
        (lambda: gradtx.polyak_sgd(variant="sps-"), "variant"),
        (lambda: gradtx.optimistic_gradient_descent(0.1, alpha=-1.0), "alpha"),
        (lambda: gradtx.fromage(0.1, min_norm=-1.0), "min_norm"),
        (lambda: gradtx.scale_by_distance_over_gradients(reps_rel=0.0), "reps_rel"),
        (lambda: gradtx.scale_by_param_block_norm(min_scale=-1.0), "min_scale"),
        (lambda: gradtx.normalize_by_update_norm(eps=-1.0), "eps"),
        (lambda: gradtx.adaptive_grad_clip(-0.1), "clipping"),
        (lambda: gradtx.trace(-0.5), "decay"),
        (lambda: gradtx.optimistic_adam(lambda c: 0.1), "learning_rate"),
        (lambda: gradtx.per_example_global_norm_clip({"a": jnp.ones((2, 3))}, -1.0), "l2_norm_clip"),
    ],
)
def test_out_of_range_hyperparameters_name_the_argument(build: Any, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        build()


PARAMS = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.full((3,), 0.5, jnp.float32)}


@pytest.mark.parametrize(
    "tx",
    [
        gradtx.scale_by_novograd(),
        gradtx.scale_by_distance_over_gradients(),
        gradtx.scale_by_param_block_norm(),
        gradtx.adaptive_grad_clip(0.1),
        gradtx.keep_params_nonnegative(),
        gradtx.fromage(0.1),
    ],
    ids=["novograd", "dog", "param_block_norm", "agc", "nonnegative", "fromage"],
)
def test_transforms_that_read_params_say_so(tx: Any) -> None:
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="params"):
        tx.update(PARAMS, state)


def test_polyak_without_value_names_it() -> None:
    tx = gradtx.polyak_sgd()
    with pytest.raises(ValueError, match="value"):
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS, value=jnp.float32(2.0))
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))


def test_mismatched_updates_name_the_path() -> None:
    tx = gradtx.yogi(0.1)
    state = tx.init(PARAMS)
    bad = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.ones((4,), jnp.float32)}
    with pytest.raises(ValueError, match=r"\['b'\]"):
        tx.update(bad, state, PARAMS)


def test_compat_names() -> None:
    assert gradtx.GradientTransformationExtraArgs is gradtx.GradientTransformation
    tx = gradtx.adan(0.1)
    assert gradtx.with_extra_args_support(tx) is tx
    state = gradtx.trace(0.9).init(PARAMS)
    assert isinstance(state, gradtx.TraceState) and set(state._fields) == {"trace"}
    assert gradtx.keep_params_nonnegative().init(PARAMS) == gradtx.NonNegativeParamsState()


def test_sm3_scalar_leaf_and_abstract_init() -> None:
    params = {"s": jnp.float32(2.0), "m": jnp.ones((3, 2), jnp.float32)}
    tx = gradtx.sm3(0.1)
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params))
    state = tx.init(params)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), abstract) == jax.tree.map(lambda x: (x.shape, x.dtype), state)
    updates, _ = tx.update(params, state, params)
    assert updates["s"].shape == () and bool(jnp.isfinite(updates["s"]))


def test_dog_abstract_init_and_float64_state() -> None:
    params = {"w": jnp.ones((3, 2), jnp.float32), "s": jnp.float32(1.0)}
    tx = gradtx.scale_by_distance_over_gradients()
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params))
    assert abstract.init_params["w"].dtype == jnp.float32
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates["s"].shape == () and updates["w"].dtype == jnp.float32


TRANSFORMS = {
    "scale_by_belief": lambda: gradtx.scale_by_belief(nesterov=True),
    "scale_by_adadelta": gradtx.scale_by_adadelta,
    "scale_by_adan": gradtx.scale_by_adan,
    "scale_by_amsgrad": lambda: gradtx.scale_by_amsgrad(mu_dtype=jnp.bfloat16),
    "scale_by_novograd": gradtx.scale_by_novograd,
    "scale_by_optimistic_gradient": gradtx.scale_by_optimistic_gradient,
    "scale_by_rprop": lambda: gradtx.scale_by_rprop(0.1),
    "scale_by_rss": gradtx.scale_by_rss,
    "scale_by_sm3": gradtx.scale_by_sm3,
    "scale_by_yogi": gradtx.scale_by_yogi,
    "scale_by_stddev": gradtx.scale_by_stddev,
    "scale_by_distance_over_gradients": gradtx.scale_by_distance_over_gradients,
    "scale_by_param_block_norm": gradtx.scale_by_param_block_norm,
    "normalize_by_update_norm": gradtx.normalize_by_update_norm,
    "centralize": gradtx.centralize,
    "adaptive_grad_clip": lambda: gradtx.adaptive_grad_clip(0.1),
    "keep_params_nonnegative": gradtx.keep_params_nonnegative,
    "trace": lambda: gradtx.trace(0.9, nesterov=True),
}


@pytest.mark.parametrize("make", list(TRANSFORMS.values()), ids=list(TRANSFORMS))
def test_transform_jit_abstract_init_and_dtypes(make: Any) -> None:
    """Two steps: jit equals eager, abstract init gives the real state's shapes/dtypes, and each
    update keeps its leaf's dtype (bf16 included); the state keeps its structure and dtypes."""
    tx = make()
    rng = np.random.default_rng(3)
    params = {
        "w": jnp.asarray(np.abs(rng.normal(size=(3, 2))), jnp.float32),
        "h": jnp.asarray(np.abs(rng.normal(size=(4,))), jnp.bfloat16),
    }
    grads = jax.tree.map(lambda p: (0.5 - p).astype(p.dtype), params)
    state = tx.init(params)
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params))
    shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
    assert shapes(abstract) == shapes(state)
    step = lambda g, s, p: tx.update(g, s, p)
    jitted = jax.jit(step)
    s_eager, s_jit = state, state
    for _ in range(2):
        u_eager, s_eager = step(grads, s_eager, params)
        u_jit, s_jit = jitted(grads, s_jit, params)
        for a, b in zip(jax.tree.leaves(u_eager), jax.tree.leaves(u_jit)):
            np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-6)
        assert jax.tree.map(lambda u: u.dtype, u_jit) == jax.tree.map(lambda p: p.dtype, params)
        assert shapes(s_jit) == shapes(state)
