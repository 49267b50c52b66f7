"""Every optimizer and transform of the optax-parity set against optax itself, on the same inputs.

Each case runs 100 steps on a tree of three leaves (ranks 1-3) whose gradients depend on the
params, float32 and float64 in one jitted ``lax.scan`` per library; the trajectories must agree
to 1e-6 (float32) and 1e-12 (float64) relative. optax runs under standard dtype promotion (it
mixes dtypes internally); gradtx runs under the suite's strict promotion.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

STEPS = 100
SHAPES = {"b": (4,), "w": (5, 4), "conv": {"k": (3, 2, 4)}}
TOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}


def _params(dtype: Any, positive: bool = False) -> Any:
    rng = np.random.default_rng(0)
    leaves, treedef = jax.tree.flatten(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
    values = [rng.normal(size=s) for s in leaves]
    if positive:
        values = [np.abs(v) + 0.05 for v in values]
    return jax.tree.unflatten(treedef, [jnp.asarray(v, dtype) for v in values])


def _loss(params: Any) -> jax.Array:
    """A non-negative loss with a different curvature and target per leaf."""
    total = jnp.zeros([], jax.tree.leaves(params)[0].dtype)
    for i, p in enumerate(jax.tree.leaves(params)):
        c, t = 0.5 + 0.5 * i, 0.3 * (i - 1)
        total = total + jnp.sum(0.5 * c * (p - t) ** 2 + 0.02 * p**4)
    return total


def _trajectory(lib: Any, tx: Any, params: Any) -> Any:
    def step(carry: Any, _: Any) -> tuple[Any, Any]:
        p, state = carry
        value, grads = jax.value_and_grad(_loss)(p)
        updates, state = tx.update(grads, state, p, value=value)
        p = lib.apply_updates(p, updates)
        return (p, state), p

    _, path = jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)
    return path


def _run(make: Callable[[Any], Any], positive: bool) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Both libraries, float32 and float64, in one jitted function (one compilation per case)."""
    ours = make(gradtx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optimistic_adam is deprecated in optax
        theirs = optax.with_extra_args_support(make(optax))

    @jax.jit
    def run(p32: Any, p64: Any) -> tuple[Any, ...]:
        a = (_trajectory(gradtx, ours, p32), _trajectory(gradtx, ours, p64))
        with jax.numpy_dtype_promotion("standard"):
            b = (_trajectory(optax, theirs, p32), _trajectory(optax, theirs, p64))
        return a, b

    a, b = run(_params(jnp.float32, positive), _params(jnp.float64, positive))
    return {jnp.float32: a[0], jnp.float64: a[1]}, {jnp.float32: b[0], jnp.float64: b[1]}


def _sched(step: Any) -> Any:
    return 0.02 / (1.0 + 0.01 * jnp.asarray(step).astype(jnp.float32))


def _lr(lib: Any, transform: Any, lr: float = 0.01) -> Any:
    return lib.chain(transform, lib.scale(-lr))


# (id, builder taking the library module, params must be positive). Optimizer cases use non-default
# hyperparameters, so that they also check their transform with those arguments; the transform-only
# cases cover what no optimizer reaches.
CASES: list[tuple[str, Callable[[Any], Any], bool]] = [
    ("adabelief", lambda o: o.adabelief(0.01, b1=0.85, eps_root=1e-12), False),
    ("adabelief_nesterov_sched", lambda o: o.adabelief(_sched, nesterov=True), False),
    ("adadelta", lambda o: o.adadelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.01), False),
    ("adamaxw", lambda o: o.adamaxw(0.01, b1=0.85, weight_decay=0.01), False),
    # b2 = 0.5: optax 0.2.8 weights the gradient difference by 1 - b2 where the paper has b2 (see scale_by_adan).
    ("adan", lambda o: o.adan(0.01, b2=0.5, b3=0.95, eps_root=1e-10, weight_decay=0.01), False),
    ("amsgrad", lambda o: o.amsgrad(0.01, b2=0.99), False),
    ("amsgrad_no_bc", lambda o: o.amsgrad(0.01, bias_correction_mu=False, bias_correction_nu=False), False),
    ("fromage", lambda o: o.fromage(0.01), False),
    ("fromage_sched", lambda o: o.fromage(_sched), False),
    ("nadamw", lambda o: o.nadamw(0.01, weight_decay=0.01), False),
    ("noisy_sgd", lambda o: o.noisy_sgd(0.01, key=jax.random.key(3)), False),
    ("novograd", lambda o: o.novograd(0.003, b2=0.5, weight_decay=0.01), False),
    ("optimistic_gradient_descent", lambda o: o.optimistic_gradient_descent(0.01, alpha=0.7, beta=0.4), False),
    ("optimistic_adam", lambda o: o.optimistic_adam(0.01, optimism=0.02), False),
    ("optimistic_adam_v2", lambda o: o.optimistic_adam_v2(0.01, alpha=0.8, beta=0.5), False),
    ("polyak_sgd", lambda o: o.polyak_sgd(max_learning_rate=0.2, f_min=0.01), False),
    ("polyak_sgd_plus", lambda o: o.polyak_sgd(max_learning_rate=0.2, f_min=5.0, eps=1e-3, variant="sps+"), False),
    ("sm3", lambda o: o.sm3(0.05, momentum=0.8), False),
    ("yogi", lambda o: o.yogi(0.01, b2=0.99), False),
    ("scale_by_sm3", lambda o: _lr(o, o.scale_by_sm3(b1=0.5, b2=0.9)), False),
    ("scale_by_yogi", lambda o: _lr(o, o.scale_by_yogi(eps_root=1e-8, initial_accumulator_value=0.1)), False),
    ("scale_by_rss", lambda o: _lr(o, o.scale_by_rss(), 0.1), False),
    ("scale_by_stddev", lambda o: _lr(o, o.scale_by_stddev(initial_scale=1.0)), False),
    ("scale_by_stddev_eps_out", lambda o: _lr(o, o.scale_by_stddev(decay=0.8, eps=1e-2, eps_in_sqrt=False)), False),
    ("scale_by_dog", lambda o: _lr(o, o.scale_by_distance_over_gradients(reps_rel=1e-2), 1.0), False),
    ("scale_by_param_block_norm", lambda o: _lr(o, o.scale_by_param_block_norm()), False),
    ("normalize_by_update_norm", lambda o: _lr(o, o.normalize_by_update_norm(scale_factor=2.0)), False),
    ("centralize", lambda o: _lr(o, o.centralize(), 0.1), False),
    ("adaptive_grad_clip", lambda o: _lr(o, o.adaptive_grad_clip(0.05), 0.5), False),
    ("keep_params_nonnegative", lambda o: o.chain(o.scale(-0.3), o.keep_params_nonnegative()), True),
    ("trace", lambda o: _lr(o, o.trace(0.9)), False),
    ("trace_nesterov", lambda o: _lr(o, o.trace(0.8, nesterov=True)), False),
]


@pytest.mark.parametrize(("make", "positive"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trajectory_matches_optax(make: Callable[[Any], Any], positive: bool) -> None:
    ours, theirs = _run(make, positive)
    for dtype, rtol in TOL.items():
        for path, a, b in zip(
            jax.tree_util.tree_flatten_with_path(ours[dtype])[0],
            jax.tree.leaves(ours[dtype]),
            jax.tree.leaves(theirs[dtype]),
        ):
            assert a.dtype == jnp.dtype(dtype), (path[0], a.dtype)
            b = np.asarray(b, np.float64)
            scale = max(float(np.max(np.abs(b))), 1e-3)
            np.testing.assert_allclose(
                np.asarray(a, np.float64), b, rtol=rtol, atol=rtol * scale, err_msg=f"{jnp.dtype(dtype).name} {path[0]}"
            )


def test_rprop_state_matches_optax_in_lockstep() -> None:
    """optax 0.2.8's Rprop emits the previous step (a known bug); its state must still equal ours.

    gradtx drives the trajectory; optax's transform sees the same gradients, and after each step its
    ``prev_updates`` (the step it should have emitted) must equal gradtx's update.
    """
    kw = {"learning_rate": 0.01, "eta_minus": 0.4, "eta_plus": 1.3, "max_step_size": 0.5}
    ours, theirs = gradtx.scale_by_rprop(**kw), optax.scale_by_rprop(**kw)

    def run(p: Any) -> Any:
        def step(carry: Any, _: Any) -> tuple[Any, Any]:
            p, s_ours, s_theirs = carry
            g = jax.grad(_loss)(p)
            u, s_ours = ours.update(g, s_ours, p)
            with jax.numpy_dtype_promotion("standard"):
                _, s_theirs = theirs.update(g, s_theirs, p)
            return (gradtx.apply_updates(p, jax.tree.map(jnp.negative, u)), s_ours, s_theirs), (u, s_ours, s_theirs)

        return jax.lax.scan(step, (p, ours.init(p), theirs.init(p)), None, length=STEPS)[1]

    for dtype, rtol in TOL.items():
        u, s_ours, s_theirs = jax.jit(run)(_params(dtype))
        for a, b in [(u, s_theirs.prev_updates), (s_ours.step_sizes, s_theirs.step_sizes)]:
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0)
        assert float(np.max(np.abs(np.asarray(jax.tree.leaves(u)[0][0])))) > 0  # the first step moves


def test_per_example_clipping_matches_optax() -> None:
    rng = np.random.default_rng(1)
    grads = {"a": jnp.asarray(rng.normal(size=(6, 3)), jnp.float64), "b": jnp.asarray(rng.normal(size=(6, 2, 2)))}
    ours = gradtx.per_example_global_norm_clip(grads, 1.5)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.per_example_global_norm_clip(grads, 1.5)
    np.testing.assert_allclose(jax.tree.leaves(ours[0])[0], jax.tree.leaves(theirs[0])[0], rtol=1e-12)
    np.testing.assert_allclose(jax.tree.leaves(ours[0])[1], jax.tree.leaves(theirs[0])[1], rtol=1e-12)
    assert int(ours[1]) == int(theirs[1]) > 0
    for uniform in (True, False):
        ours = gradtx.per_example_layer_norm_clip(grads, 1.5, uniform=uniform)
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.per_example_layer_norm_clip(grads, 1.5, uniform=uniform)
        for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12)
