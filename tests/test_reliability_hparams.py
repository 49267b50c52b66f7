"""Hyperparameter validation over every public constructor in ``gradtx``.

The constructors are found by introspection: every public function of ``gradtx`` that returns
a transform or a schedule. Each numeric hyperparameter given NaN must raise ``ValueError`` or
``TypeError`` naming it; the standard names must reject out-of-range values naming the
argument and the value; a string where a number belongs must raise naming the argument.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import numpy as np
import pytest

import gradtx

# Values for the required arguments, so that each constructor can be called at all.
REQUIRED: dict[str, Any] = {
    "learning_rate": 0.1,
    "clipping": 0.1,
    "eta": 0.01,
    "gamma": 0.55,
    "max_consecutive_errors": 3,
    "inner": gradtx.sgd(0.1),
    "max_delta": 1.0,
    "threshold": 1.0,
    "max_norm": 1.0,
    "init_value": 1.0,
    "decay_steps": 100,
    "transition_steps": 100,
    "peak_value": 1.0,
    "T_0": 10,
    "decay": 0.9,
    "decay_rate": 0.5,
    "end_value": 0.1,
    "power": 2.0,
    "warmup_steps": 10,
    "step_size": 0.1,
    "sync_period": 5,
    "slow_step_size": 0.5,
    "max_backtracking_steps": 15,
    "max_linesearch_steps": 15,
    "value": 1.0,
    "step_size_fn": lambda count: 0.1,
    "should_transform_fn": lambda count: True,
    "mask": lambda params: jax.tree.map(lambda _: True, params),
    "fast_optimizer": gradtx.sgd(0.1),
    "inner_factory": gradtx.sgd,
    "measure": lambda *args: 0.0,
    "measures": {},
    "measure_name": "m",
    "freeze_mask": {},
    "optimizer": gradtx.sgd(0.1),
    "transforms": {"a": gradtx.sgd(0.1)},
    "param_labels": lambda params: jax.tree.map(lambda _: "a", params),
    "interpolate_type": "linear",
    "cosine_kwargs": [dict(init_value=1.0, peak_value=1.0, decay_steps=10, warmup_steps=1)],
    "schedules": [gradtx.constant_schedule(1.0)] * 2,
    "boundaries": [5],
    "optimizer_fn": gradtx.sgd,
    "depth_fn": lambda path: 0,
    "num_layers": 2,
}

# Public functions that are not constructors: they compute on arrays or trees of arrays (their
# numeric arguments may be traced), or build a transform from transforms alone. Their numeric
# arguments are covered by `test_array_functions_reject_nan_arguments` where they have any.
NOT_CONSTRUCTORS = {
    "all_finite", "apply_updates", "as_optax", "averaged_params", "chain", "global_norm", "identity",
    "incremental_update", "init_empty_state", "keep_params_nonnegative", "layerwise_decay_groups", "lr_finder",
    "named_chain",
    "param_path_name", "per_example_global_norm_clip", "per_example_layer_norm_clip", "periodic_update",
    "safe_increment", "centralize", "scale_by_sign", "set_to_zero", "skip_large_updates", "skip_not_finite",
    "state_bytes_per_param", "stateless", "stateless_with_tree_map", "value_and_grad_from_state",
    "with_extra_args_support", "zero_nans",
}  # fmt: skip

# Hyperparameters whose default is None but which take a number when given.
NUMERIC_WHEN_GIVEN = {
    "alpha", "b1", "b2", "clipping_threshold", "decay_rate", "end_value", "eps", "eps_root", "initial_scale",
    "max_learning_rate", "min_norm", "momentum", "optimism", "weight_decay", "weight_decay_rate",
}  # fmt: skip

# Out-of-range values per standard name. Exemptions, with reasons:
# - `momentum` has no upper bound (torch.optim accepts any momentum >= 0; > 1 diverges but is
#   not ill-defined), and `trace`'s `decay` is the same momentum;
# - `beta` in `scale_by_optimistic_gradient` / `optimistic_*` is an optimism weight (any >= 0);
# - `learning_rate` has no range (negative rates ascend, as in optax): only NaN and type errors.
OUT_OF_RANGE: dict[str, list[float]] = {
    "b1": [-0.1, 1.5],
    "b2": [-0.1, 1.5],
    "b3": [-0.1, 1.5],
    "eps": [-1e-3],
    "eps_root": [-1e-3],
    "epsilon": [-1.0],
    "momentum": [-0.5],
    "weight_decay": [-0.1],
    "weight_decay_rate": [-0.1],
    "max_norm": [-1.0],
    "max_delta": [-1.0],
    "threshold": [-1.0],
    "clipping_threshold": [-1.0],
    "min_norm": [-1.0],
    "initial_accumulator_value": [-1.0],
    "rho": [-0.1, 1.5],
    "decay": [-0.1, 1.5],
    "beta": [-0.1, 1.5],
    "transition_steps": [0, -1],
    "decay_steps": [-1],
    "warmup_steps": [-1],
}
RANGE_EXEMPT = {("trace", "decay"), ("scale_by_optimistic_gradient", "beta")}
RANGE_EXEMPT |= {(name, "beta") for name in ("optimistic_adam_v2", "optimistic_gradient_descent")}
# optax documents `transition_steps <= 0` as a constant `init_value` schedule: gradtx gives that
# result with a UserWarning (tests/schedules/test_schedules.py checks it) instead of raising.
OPTAX_DOCUMENTED = {"linear_schedule", "polynomial_schedule", "exponential_decay", "warmup_exponential_decay_schedule"}
RANGE_EXEMPT |= {(name, "transition_steps") for name in OPTAX_DOCUMENTED}
UPPER_EXEMPT = {"momentum"}


def _constructors() -> list[str]:
    names = []
    for name in sorted(dir(gradtx)):
        obj = getattr(gradtx, name)
        if name.startswith("_") or not name[0].islower() or not inspect.isfunction(obj) or name in NOT_CONSTRUCTORS:
            continue
        names.append(name)
    return names


CONSTRUCTORS = _constructors()


def _required_kwargs(fn: Any) -> dict[str, Any]:
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    sig = inspect.signature(fn)
    return {p.name: REQUIRED[p.name] for p in sig.parameters.values() if p.default is p.empty and p.kind not in kinds}


def _numeric_params(fn: Any, required: dict[str, Any]) -> list[str]:
    out = []
    for p in inspect.signature(fn).parameters.values():
        numeric_default = isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
        numeric_required = p.name in required and isinstance(required[p.name], (int, float))
        if numeric_default or numeric_required or (p.default is None and p.name in NUMERIC_WHEN_GIVEN):
            out.append(p.name)
    return out


def test_constructor_discovery_is_complete() -> None:
    # Every public function is either a constructor (callable with REQUIRED values) or listed.
    assert len(CONSTRUCTORS) > 90
    for name in CONSTRUCTORS:
        fn = getattr(gradtx, name)
        built = fn(**_required_kwargs(fn))
        assert callable(built) or isinstance(built, gradtx.GradientTransformation), name


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_nan_hyperparameters_are_rejected_by_name(name: str) -> None:
    fn = getattr(gradtx, name)
    kwargs = _required_kwargs(fn)
    for param in _numeric_params(fn, kwargs):
        for bad in (float("nan"), np.float32("nan")):
            with pytest.raises((ValueError, TypeError), match=f"`{param}`") as info:
                fn(**{**kwargs, param: bad})
            assert "NaN" in str(info.value) or "nan" in str(info.value), str(info.value)
        with pytest.raises(TypeError, match=f"`{param}`"):
            fn(**{**kwargs, param: "0.1"})


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_out_of_range_standard_hyperparameters_name_argument_value_and_range(name: str) -> None:
    fn = getattr(gradtx, name)
    kwargs = _required_kwargs(fn)
    params = set(inspect.signature(fn).parameters)
    for param, values in OUT_OF_RANGE.items():
        if param not in params or (name, param) in RANGE_EXEMPT:
            continue
        for bad in values:
            if param in UPPER_EXEMPT and bad > 0:
                continue
            with pytest.raises(ValueError) as info:
                fn(**{**kwargs, param: bad})
            message = str(info.value)
            assert f"`{param}`" in message and repr(bad) in message, message
            assert "[" in message or "(" in message or ">" in message, f"no range in: {message}"


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_flags_must_be_bools(name: str) -> None:
    # A flag read by its truth value would turn on for the string "no" (sgd's nesterov did).
    # Masks default to True too, but take trees and callables: they are checked at init.
    fn = getattr(gradtx, name)
    kwargs = _required_kwargs(fn)
    for p in inspect.signature(fn).parameters.values():
        if isinstance(p.default, bool) and not p.name.endswith("mask"):
            with pytest.raises(TypeError, match=f"`{p.name}` must be a bool"):
                fn(**{**kwargs, p.name: "no"})


def test_array_functions_reject_nan_arguments() -> None:
    nan = float("nan")
    tree = {"a": np.ones((2, 3), np.float32)}
    cases = [
        ("step_size", lambda: gradtx.incremental_update(tree, tree, nan)),
        ("update_period", lambda: gradtx.periodic_update(tree, tree, 1, 2.5)),
        ("l2_norm_clip", lambda: gradtx.per_example_global_norm_clip(tree, nan)),
        ("global_l2_norm_clip", lambda: gradtx.per_example_layer_norm_clip(tree, nan)),
        ("max_squared_norm", lambda: gradtx.skip_large_updates(tree, 0, tree, nan)),
        ("learning_rate", lambda: gradtx.inject_hyperparams(gradtx.adam)(learning_rate=nan)),
        ("b1", lambda: gradtx.inject_hyperparams(gradtx.adam)(0.1, b1=nan)),
        ("loss_scale", lambda: gradtx.DynamicLossScale(nan)),
        ("every_k_schedule", lambda: gradtx.MultiSteps(gradtx.sgd(0.1), nan)),
    ]
    for param, make in cases:
        with pytest.raises((ValueError, TypeError), match=f"`{param}`"):
            make()


def test_schedule_only_where_schedules_are_accepted() -> None:
    def schedule(count: Any) -> Any:
        return 0.9

    gradtx.adam(schedule)  # learning rates may be schedules
    gradtx.add_decayed_weights(schedule)
    for make, param in (
        (lambda: gradtx.scale_by_adam(b1=schedule), "b1"),
        (lambda: gradtx.clip_by_global_norm(schedule), "max_norm"),
        (lambda: gradtx.scale_by_rms(eps=schedule), "eps"),
    ):
        with pytest.raises(TypeError, match=f"`{param}`"):
            make()


# Counts compared only with int32 counters: optax takes jax integer scalars for them, traced too.
_COUNTS = {
    "apply_if_finite": lambda k: gradtx.apply_if_finite(gradtx.sgd(0.1), k),
    "apply_every": lambda k: gradtx.chain(gradtx.sgd(0.1), gradtx.apply_every(k)),
    "MultiSteps": lambda k: gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=k).gradient_transformation(),
    "reduce_on_plateau": lambda k: gradtx.chain(
        gradtx.sgd(0.1), gradtx.reduce_on_plateau(patience=k, cooldown=k, accumulation_size=k)
    ),
}


def _count_run(name: str, k: Any) -> jax.Array:
    """Six updates with a NaN at the third; the updates, stacked."""
    import jax.numpy as jnp

    tx = _COUNTS[name](k)
    params = {"w": jnp.ones(3)}
    state, out = tx.init(params), []
    for i in range(6):
        g = {"w": jnp.array([jnp.nan, 1.0, 1.0]) if i == 2 else jnp.array([1.0, 2.0, 3.0]) * (i + 1)}
        extra = {"value": jnp.float64(1.0)} if name == "reduce_on_plateau" else {}
        updates, state = tx.update(g, state, params, **extra)
        out.append(updates["w"])
    return jnp.stack(out)


@pytest.mark.parametrize("name", list(_COUNTS))
def test_counts_take_jax_integer_scalars_concrete_traced_and_vmapped(name: str) -> None:
    import jax.numpy as jnp

    want = {k: np.asarray(_count_run(name, k)) for k in (2, 3)}
    np.testing.assert_array_equal(np.asarray(_count_run(name, jnp.int32(2))), want[2])
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: _count_run(name, k))(jnp.int32(2))), want[2])
    swept = jax.vmap(lambda k: _count_run(name, k))(jnp.array([2, 3], jnp.int32))
    np.testing.assert_array_equal(np.asarray(swept[1]), want[3])
    with pytest.raises(ValueError, match=r"must be an int in \[[01], 2147483647\], got -1"):
        _COUNTS[name](jnp.int32(-1))
    with pytest.raises(TypeError, match="must be an int or an integer scalar"):
        _COUNTS[name](jnp.float32(2))


def test_lookahead_and_sophia_take_jax_integer_periods() -> None:
    import jax.numpy as jnp

    from gradtx.contrib import sophia

    look = jax.jit(lambda k: gradtx.lookahead(gradtx.sgd(0.1), sync_period=k, slow_step_size=0.5).init({"w": 1.0}))
    assert int(look(jnp.int32(2)).steps_since_sync) == 0
    assert int(jax.jit(lambda k: sophia(0.1, update_interval=k).init({"w": jnp.ones(2)})[0].count)(jnp.int32(3))) == 0


def test_traced_float_hyperparameters_of_layerwise_decay_and_sophia_s_win_rate() -> None:
    import jax.numpy as jnp

    from gradtx.contrib import sophia

    params = {"embed": jnp.ones(2), "head": jnp.ones(2)}

    def embed_update(decay: Any) -> jax.Array:
        depth = {"embed": 0, "head": 1}
        tx = gradtx.layerwise_lr_decay(gradtx.sgd, 1.0, lambda n: depth[n], num_layers=1, decay=decay)
        return tx.update(params, tx.init(params), params)[0]["embed"]

    swept = jax.vmap(embed_update)(jnp.array([0.5, 0.25]))
    np.testing.assert_array_equal(np.asarray(swept), [[-0.5, -0.5], [-0.25, -0.25]])

    def sophia_update(c: Any) -> jax.Array:
        tx = sophia(0.5, clip_threshold=c, verbose=True, print_win_rate_every_n_steps=1000)
        return tx.update(params, tx.init(params), params, obj_fn=lambda q: jnp.sum(q["head"] ** 2))[0]["head"]

    np.testing.assert_array_equal(np.asarray(jax.jit(sophia_update)(jnp.float64(1.0))), np.asarray(sophia_update(1.0)))


@pytest.mark.parametrize(
    "build",
    [
        lambda p: gradtx.linear_onecycle_schedule(100, 1.0, pct_start=p),
        lambda p: gradtx.linear_onecycle_schedule(100, 1.0, pct_start=0.25, pct_final=p),
        lambda p: gradtx.cosine_onecycle_schedule(100, 1.0, pct_start=p),
        lambda p: gradtx.linear_onecycle_momentum_schedule(100, pct_start=p),
    ],
)
def test_a_traced_onecycle_phase_fraction_is_named(build: Any) -> None:
    import jax.numpy as jnp

    with pytest.raises(ValueError, match=r"`pct_(start|final)` must be a concrete number"):
        jax.jit(lambda p: build(p)(3))(jnp.float64(0.5))
    assert float(build(jnp.float64(0.5))(3)) == float(build(0.5)(3))
