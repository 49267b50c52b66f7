"""Validation at the optimizer level: hyperparameters out of range or of the wrong type, integer
params, mismatched or missing updates and params, and the compatibility names; abstract ``init`` and
``jit`` agreeing with eager, with each leaf's dtype kept.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: gradtx.adam(0.1, b1=1.0), "b1"),
        (lambda: gradtx.adam(0.1, b2=-0.1), "b2"),
        (lambda: gradtx.adamw(0.1, eps=-1.0), "eps"),
        (lambda: gradtx.sgd(0.1, momentum=-0.5), "momentum"),
        (lambda: gradtx.adafactor(min_dim_size_to_factor=0), "min_dim_size_to_factor"),
        (lambda: gradtx.rmsprop(0.1, decay=1.5), "decay"),
        (lambda: gradtx.lion(0.1, b1=2.0), "b1"),
        (lambda: gradtx.adamw(0.1, weight_decay=-1.0), "weight_decay"),
        (lambda: gradtx.radam(0.1, b2=1.0), "b2"),
        (lambda: gradtx.adagrad(0.1, eps=-1e-3), "eps"),
        # An ascent step (the update's sign flips).
        (lambda: gradtx.lars(0.1, trust_coefficient=-1.0), "trust_coefficient"),
        # The bias correction 1 - decay^t is 0 at decay 1: NaN at every step, as in optax.
        (lambda: gradtx.rmsprop(0.1, decay=1.0, bias_correction=True), "decay"),
    ],
)
def test_bad_hyperparameters_raise_naming_argument(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=f"`{match}`"):
        build()


def test_bad_types_raise() -> None:
    with pytest.raises(TypeError, match="learning_rate"):
        gradtx.adam("fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mu_dtype"):
        gradtx.adam(0.1, mu_dtype=jnp.int32)


def test_python_number_updates_raise_naming_leaf() -> None:
    params = {"a": jnp.ones(2, jnp.float32), "b": jnp.asarray(0.5, jnp.float32)}
    for tx in (gradtx.sgd(0.1), gradtx.adamw(0.1), gradtx.clip_by_global_norm(1.0)):
        with pytest.raises(TypeError, match=r"updates\['b'\] is a Python float; updates must be arrays"):
            tx.update({"a": jnp.ones(2, jnp.float32), "b": 0.5}, tx.init(params), params)


def test_adafactor_decay_offset_holds_the_first_step_until_reached() -> None:
    # optax's (and gradtx's before) decay 1 - (count - k + 1)^-0.8 is NaN from a fresh state.
    params = {"w": jnp.ones(3, jnp.float32)}
    grads = {"w": jnp.asarray([0.5, -1.0, 2.0], jnp.float32)}
    offset, plain = gradtx.adafactor(0.1, decay_offset=3), gradtx.adafactor(0.1)
    s_offset, s_plain = offset.init(params), plain.init(params)
    for _ in range(3):  # before the offset: every step is the plain first step
        u, s_offset = offset.update(grads, s_offset, params)
        assert bool(jnp.all(jnp.isfinite(u["w"])))
    first, _ = plain.update(grads, s_plain, params)
    np.testing.assert_array_equal(np.asarray(u["w"]), np.asarray(first["w"]))
    with pytest.raises(TypeError, match=r"step_offset|decay_offset"):
        gradtx.adafactor(0.1, decay_offset=1.5)


def test_integer_params_raise_naming_leaf() -> None:
    tx = gradtx.adam(0.1)
    with pytest.raises(TypeError, match=r"\['step'\]"):
        tx.init({"w": jnp.zeros(2, jnp.float32), "step": jnp.zeros((), jnp.int32)})


def test_grad_structure_mismatch_names_path() -> None:
    params = {"enc": {"kernel": jnp.zeros((2, 3), jnp.float32)}, "b": jnp.zeros(3, jnp.float32)}
    tx = gradtx.adamw(0.1)
    state = tx.init(params)
    bad_shape = {"enc": {"kernel": jnp.zeros((3, 2), jnp.float32)}, "b": jnp.zeros(3, jnp.float32)}
    with pytest.raises(ValueError, match=r"\['enc'\]\['kernel'\]"):
        tx.update(bad_shape, state, params)
    missing = {"enc": {"kernel": jnp.zeros((2, 3), jnp.float32)}}
    with pytest.raises(ValueError, match=r"\['b'\]"):
        tx.update(missing, state, params)


def test_needs_params_says_so() -> None:
    params = {"w": jnp.ones(3, jnp.float32)}
    for tx in (gradtx.adamw(0.1), gradtx.lamb(0.1), gradtx.lars(0.1), gradtx.adafactor(0.1)):
        with pytest.raises(ValueError, match="needs the current params"):
            tx.update(params, tx.init(params))


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
    with pytest.raises(TypeError, match="value"):  # a missing argument, as in Python and optax
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


@pytest.mark.parametrize("threshold", [3.0, 3.999, -1.0, 0.0])
def test_radam_threshold_below_four_raises(threshold: float) -> None:
    """RAdam's variance is tractable only for rho_t > 4, so a threshold below 4 must be refused."""
    with pytest.raises(ValueError, match="`threshold`"):
        gradtx.radam(0.1, threshold=threshold)
    with pytest.raises(ValueError, match="`threshold`"):
        gradtx.scale_by_radam(threshold=threshold)


def test_radam_threshold_four_and_above_accepted() -> None:
    for threshold in (4.0, 5.0, 100.0):
        gradtx.radam(0.1, threshold=threshold)
        gradtx.scale_by_radam(threshold=threshold)
