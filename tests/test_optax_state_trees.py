"""Every optimizer, wrapper and transform that optax 0.2.8 also has makes optax's state tree.

A job migrating from optax restores its optax checkpoint into gradtx (and back). For each case
below both libraries build the same thing; under jax's default configuration (x64 off, as users
train) with float32 params, and under x64 with float64 params, their ``init`` states must agree in NamedTuple type
(the same name, or optax's name resolving in gradtx to gradtx's type), fields, nesting, tuple
lengths, leaf shapes and dtypes; and ``flax.serialization.from_state_dict`` must restore the
state of an optax step into gradtx's tree (and gradtx's into optax's) with equal leaves.

Each entry of ``tests/support/registry.py`` that optax has appears here under the same name; a
test fails when a new registry entry is neither here nor in ``NOT_IN_OPTAX``.
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
from flax import serialization

import gradtx
from tests.support.registry import REGISTRY

# Registry entries optax does not have: name -> why.
_STACKED = "gradtx.stacked is gradtx's own layout (its state is one buffer per group of equal leaves)"
NOT_IN_OPTAX: dict[str, str] = {
    "stacked_adamw": _STACKED,
    "stacked_adamw_masked": _STACKED,
    "stacked_lamb_per_leaf": _STACKED,
    "stacked_noisy_sgd_per_leaf": _STACKED,
}

# Integer leaves whose dtype optax takes from `jax_enable_x64` (int64 under x64) while gradtx keeps
# int32 counters in both modes: optax's dtype drifts with a global flag. Only under x64 do they
# differ; a restore keeps the checkpoint's values and gradtx's next update returns int32 again.
INT_DRIFT_FIELDS = {"num_linesearch_steps", "num_not_finite"}
# Under x64 with float64 params, a scheduled hyperparameter of inject_hyperparams is float64 in
# gradtx (the params' precision) and float32 in optax (its schedule's output dtype). A restore
# keeps the checkpoint's float32, and gradtx keeps a restored hyperparameter's dtype.


def _params(dtype: Any = jnp.float32) -> Any:
    rng = np.random.default_rng(0)
    shapes = {"b": (4,), "w": (5, 4), "conv": {"k": (3, 2, 4)}}
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s), dtype), shapes, is_leaf=lambda x: isinstance(x, tuple)
    )


def _grads(params: Any, step: int) -> Any:
    return jax.tree.map(lambda p: (0.5 + 0.1 * step) * p - 0.2, params)


def _sched(lib: Any) -> Any:
    return lib.linear_schedule(0.1, 0.01, 10)


MASK = {"b": False, "w": True, "conv": False}
LABELS = {"b": "a", "w": "s", "conv": "a"}

# name -> make(lib): the same call under `gradtx` and `optax`.
OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd": lambda lib: lib.sgd(0.1),
    "sgd_momentum": lambda lib: lib.sgd(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda lib: lib.adagrad(0.1),
    "rmsprop": lambda lib: lib.rmsprop(0.01, momentum=0.9),
    "rmsprop_centered": lambda lib: lib.rmsprop(0.01, centered=True),
    "adam": lambda lib: lib.adam(0.01),
    "scale_by_adam": lambda lib: lib.chain(lib.scale_by_adam(), lib.scale_by_learning_rate(0.01)),
    "adamw": lambda lib: lib.adamw(0.01, weight_decay=0.01),
    "nadam": lambda lib: lib.nadam(0.01),
    "radam": lambda lib: lib.radam(0.01),
    "adamax": lambda lib: lib.adamax(0.01),
    "lamb": lambda lib: lib.lamb(0.01, weight_decay=0.01),
    "lars": lambda lib: lib.lars(0.1, weight_decay=0.01),
    "lion": lambda lib: lib.lion(1e-3),
    "adafactor": lambda lib: lib.adafactor(0.01, min_dim_size_to_factor=4),
    "adafactor_momentum": lambda lib: lib.adafactor(
        0.01, min_dim_size_to_factor=4, momentum=0.9, weight_decay_rate=1e-3
    ),
    "sign_sgd": lambda lib: lib.sign_sgd(1e-3),
    "signum": lambda lib: lib.signum(1e-3),
    "adabelief": lambda lib: lib.adabelief(0.01),
    "adabelief_nesterov": lambda lib: lib.adabelief(0.01, nesterov=True),
    "adadelta": lambda lib: lib.adadelta(0.5, weight_decay=0.01),
    "adamaxw": lambda lib: lib.adamaxw(0.01, weight_decay=0.01),
    "adan": lambda lib: lib.adan(0.01, weight_decay=0.01),
    "amsgrad": lambda lib: lib.amsgrad(0.01),
    "fromage": lambda lib: lib.fromage(0.01),
    "nadamw": lambda lib: lib.nadamw(0.01, weight_decay=0.01),
    "noisy_sgd": lambda lib: lib.noisy_sgd(0.01, key=0),
    "novograd": lambda lib: lib.novograd(0.01, weight_decay=0.01),
    "optimistic_gradient_descent": lambda lib: lib.optimistic_gradient_descent(0.01),
    "optimistic_adam": lambda lib: lib.optimistic_adam(0.01),
    "optimistic_adam_v2": lambda lib: lib.optimistic_adam_v2(0.01),
    "polyak_sgd": lambda lib: lib.polyak_sgd(max_learning_rate=0.1),
    "rprop": lambda lib: lib.rprop(0.01),
    "sm3": lambda lib: lib.sm3(0.01),
    "yogi": lambda lib: lib.yogi(0.01),
    "lbfgs": lambda lib: lib.lbfgs(),
    "muon": lambda lib: lib.contrib.muon(0.01, weight_decay=0.01),
    "muon_stacked": lambda lib: lib.contrib.muon(
        0.01,
        muon_weight_dimension_numbers=lambda p: jax.tree.map(
            lambda x: lib.contrib.MuonDimensionNumbers(x.ndim - 2, x.ndim - 1) if x.ndim >= 2 else None, p
        ),
    ),
    "schedule_free_adamw": lambda lib: lib.contrib.schedule_free_adamw(0.01, weight_decay=0.01),
    "schedule_free_sgd": lambda lib: lib.contrib.schedule_free_sgd(0.1, weight_decay=0.01),
    # Hutchinson's estimator needs `obj_fn`, which the one-step restore check does not pass: a squared-gradient
    # estimate instead (init compares Hutchinson's state in "sophia_hutchinson").
    "sophia": lambda lib: lib.contrib.sophia(
        0.01, update_interval=1, hessian_diagonal_fn=lib.stateless(lambda g, p: jax.tree.map(lambda x: x * x, g))
    ),
    "sophia_hutchinson": lambda lib: lib.contrib.sophia(0.01),
    "flatten_adamw": lambda lib: lib.flatten(lib.adamw(0.01, weight_decay=0.01)),
}

WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "inject_hyperparams": lambda lib: lib.inject_hyperparams(lib.adam)(learning_rate=0.01),
    "inject_hyperparams_schedule": lambda lib: lib.inject_hyperparams(lib.adam)(learning_rate=_sched(lib)),
    "inject_hyperparams_static": lambda lib: lib.inject_hyperparams(lib.sgd, static_args=("nesterov",))(
        learning_rate=0.1, momentum=0.9, nesterov=True
    ),
    "inject_stateful_hyperparams": lambda lib: lib.inject_stateful_hyperparams(lib.adam)(learning_rate=_sched(lib)),
    "masked": lambda lib: lib.masked(lib.adam(0.01), MASK),
    "masked_prefix_nested": lambda lib: lib.masked(lib.adam(0.01), {"b": True, "w": True, "conv": {"k": False}}),
    "masked_fn": lambda lib: lib.masked(lib.sgd(0.1, momentum=0.9), lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    "freeze": lambda lib: lib.freeze(MASK),
    "freeze_all": lambda lib: lib.freeze(True),
    "selective_transform": lambda lib: lib.selective_transform(lib.adam(0.01), freeze_mask=MASK),
    "partition": lambda lib: lib.partition({"a": lib.adam(0.01), "s": lib.sgd(0.1, momentum=0.9)}, LABELS),
    "partition_prefix": lambda lib: lib.partition(
        {"a": lib.adam(0.01), "s": lib.sgd(0.1, momentum=0.9)}, {"b": "s", "w": "s", "conv": "a"}
    ),
    "multi_transform": lambda lib: lib.multi_transform({"a": lib.adam(0.01), "s": lib.sgd(0.1)}, LABELS),
    "MultiSteps": lambda lib: lib.MultiSteps(lib.adam(0.01), 3),
    "MultiSteps_skip": lambda lib: lib.MultiSteps(lib.sgd(0.1), 2, should_skip_update_fn=lib.skip_not_finite),
    "apply_if_finite": lambda lib: lib.apply_if_finite(lib.adam(0.01), 3),
    "lookahead": lambda lib: lib.lookahead(lib.adam(0.01), 5, 0.5),
    "chain": lambda lib: lib.chain(lib.clip_by_global_norm(1.0), lib.adam(0.01)),
    "named_chain": lambda lib: lib.named_chain(("clip", lib.clip(1.0)), ("adam", lib.adam(0.1))),
    "conditionally_mask": lambda lib: lib.conditionally_mask(lib.adam(0.01), lambda step: step > 2),
    "conditionally_transform": lambda lib: lib.conditionally_transform(lib.adam(0.01), lambda step: step > 2),
    "apply_every": lambda lib: lib.apply_every(3),
    "flatten": lambda lib: lib.flatten(lib.adam(0.01)),
    "ema": lambda lib: lib.ema(0.9),
    "measure_with_ema": lambda lib: lib.measure_with_ema(lib.global_norm, 0.9),
    "snapshot": lambda lib: lib.snapshot("norm", lib.global_norm),
}

TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "trace": lambda lib: lib.trace(0.9),
    "scale_by_rss": lambda lib: lib.scale_by_rss(),
    "scale_by_stddev": lambda lib: lib.scale_by_stddev(),
    "scale_by_schedule": lambda lib: lib.scale_by_schedule(_sched(lib)),
    "scale_by_learning_rate_schedule": lambda lib: lib.scale_by_learning_rate(_sched(lib)),
    "add_decayed_weights_schedule": lambda lib: lib.add_decayed_weights(_sched(lib)),
    "scale_by_distance_over_gradients": lambda lib: lib.scale_by_distance_over_gradients(),
    "scale_by_param_block_norm": lambda lib: lib.scale_by_param_block_norm(),
    "scale_by_polyak": lambda lib: lib.scale_by_polyak(),
    "scale_by_backtracking_linesearch": lambda lib: lib.scale_by_backtracking_linesearch(max_backtracking_steps=5),
    "scale_by_lion": lambda lib: lib.scale_by_lion(),
    "scale_by_sm3": lambda lib: lib.scale_by_sm3(),
    "scale_by_factored_rms": lambda lib: lib.scale_by_factored_rms(min_dim_size_to_factor=4),
    "scale_by_radam": lambda lib: lib.scale_by_radam(),
    "scale_by_amsgrad": lambda lib: lib.scale_by_amsgrad(),
    "scale_by_novograd": lambda lib: lib.scale_by_novograd(),
    "scale_by_rprop": lambda lib: lib.scale_by_rprop(0.01),
    "normalize_by_update_norm": lambda lib: lib.normalize_by_update_norm(),
    "keep_params_nonnegative": lambda lib: lib.keep_params_nonnegative(),
    "zero_nans": lambda lib: lib.zero_nans(),
    "add_noise": lambda lib: lib.add_noise(0.1, 0.55, 0),
    "clip": lambda lib: lib.clip(1.0),
    "adaptive_grad_clip": lambda lib: lib.adaptive_grad_clip(0.1),
    "centralize": lambda lib: lib.centralize(),
}

CASES = {**OPTIMIZERS, **WRAPPERS, **TRANSFORMS}

# flax.serialization passes an OrderedDict node (named_chain's state, in both libraries) through
# unchanged instead of restoring into it, so these are restored leaf by leaf, as orbax does.
LEAF_RESTORE_ONLY = {"named_chain"}

# Cases whose update needs extra arguments (or params of another form): only init is compared.
INIT_ONLY = {"lbfgs", "polyak_sgd", "scale_by_polyak", "scale_by_backtracking_linesearch", "lookahead"}
INIT_ONLY |= {"sophia_hutchinson"}


def _build(name: str) -> tuple[Any, Any]:
    ours = CASES[name](gradtx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optimistic_adam, inject_stateful_hyperparams
        theirs = CASES[name](optax)
    return ours, theirs


def _optax(fn: Callable[..., Any], *args: Any) -> Any:
    with jax.numpy_dtype_promotion("standard"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _differences(ours: Any, theirs: Any, path: str = "state", *, allow_drift: bool = False) -> list[str]:
    """Every place where two state trees differ in node type, fields, length, shape or dtype."""
    if _is_namedtuple(theirs):
        name = type(theirs).__name__
        if not _is_namedtuple(ours):
            return [f"{path}: optax has {name}, gradtx has {type(ours).__name__}"]
        if type(ours).__name__ != name and getattr(gradtx, name, None) is not type(ours):
            return [f"{path}: optax has {name}, gradtx has {type(ours).__name__} (and gradtx.{name} is not it)"]
        if ours._fields != theirs._fields:
            return [f"{path}: {name} fields {theirs._fields} vs gradtx {ours._fields}"]
        out = []
        for field in theirs._fields:
            out += _differences(
                getattr(ours, field), getattr(theirs, field), f"{path}.{field}", allow_drift=allow_drift
            )
        return out
    if isinstance(theirs, (tuple, list)):
        if type(ours) is not type(theirs) or len(ours) != len(theirs):
            kind = f"{type(ours).__name__} of {len(ours)}" if isinstance(ours, (tuple, list)) else type(ours).__name__
            return [f"{path}: optax has a {type(theirs).__name__} of {len(theirs)}, gradtx a {kind}"]
        pairs = enumerate(zip(ours, theirs, strict=True))
        return [d for i, (a, b) in pairs for d in _differences(a, b, f"{path}[{i}]", allow_drift=allow_drift)]
    if isinstance(theirs, dict):
        if type(ours) is not type(theirs) or set(ours) != set(theirs):
            found = sorted(ours) if isinstance(ours, dict) else type(ours).__name__
            return [f"{path}: optax has keys {sorted(theirs)}, gradtx {found}"]
        return [d for k in theirs for d in _differences(ours[k], theirs[k], f"{path}[{k!r}]", allow_drift=allow_drift)]
    if theirs is None or ours is None:
        return [] if theirs is None and ours is None else [f"{path}: optax {theirs!r:.40}, gradtx {ours!r:.40}"]
    if not hasattr(theirs, "shape"):
        return [] if type(ours) is type(theirs) else [f"{path}: {type(theirs).__name__} vs {type(ours).__name__}"]
    if tuple(ours.shape) != tuple(theirs.shape):
        return [f"{path}: shape {tuple(theirs.shape)} vs gradtx {tuple(ours.shape)}"]
    if ours.dtype != theirs.dtype:
        last = path.rsplit(".", 1)[-1].split("[")[0]
        drift = allow_drift and (last in INT_DRIFT_FIELDS or path.endswith("['num_not_finite']"))
        drift_int = drift and theirs.dtype == jnp.int64 and ours.dtype == jnp.int32
        hyper = allow_drift and ".hyperparams[" in path and (theirs.dtype, ours.dtype) == (jnp.float32, jnp.float64)
        if not (drift_int or hyper):
            return [f"{path}: dtype {theirs.dtype} vs gradtx {ours.dtype}"]
    return []


def _leaves_equal(a: Any, b: Any) -> None:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _steps(tx: Any, state: Any, params: Any, n: int, *, optax_side: bool) -> Any:
    for i in range(n):
        g = _grads(params, i)
        if optax_side:
            _, state = _optax(lambda g=g, s=state: optax.with_extra_args_support(tx).update(g, s, params))
        else:
            _, state = tx.update(g, state, params)
    return state


def test_every_registry_entry_is_compared_or_listed() -> None:
    names = {entry.name for entry in REGISTRY}
    unlisted = sorted(names - set(OPTIMIZERS) - set(NOT_IN_OPTAX))
    assert not unlisted, f"registry entries neither compared with optax nor listed in NOT_IN_OPTAX: {unlisted}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_state_tree_is_optax(name: str) -> None:
    with jax.enable_x64(False):
        ours, theirs = _build(name)
        params = _params()
        diffs = _differences(ours.init(params), _optax(theirs.init, params), allow_drift=False)
    assert not diffs, f"{name}: the state trees differ:\n" + "\n".join(diffs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_state_tree_is_optax_x64(name: str) -> None:
    ours, theirs = _build(name)
    params = _params(jnp.float64)
    diffs = _differences(ours.init(params), _optax(theirs.init, params), allow_drift=True)
    assert not diffs, f"{name}: the state trees differ under x64:\n" + "\n".join(diffs)


# With bfloat16/float16 params (x64 off), the state leaves gradtx keeps wider than optax on purpose,
# each a row of docs/conventions.md: float16 squared-gradient moments (they underflow), injected
# hyperparameters (bf16 `b2 = 1.0`), and monitored norms (sums of squares: at least float32).
LOW_PRECISION_DEPARTURES = (
    r"\.(nu|n|nu_max|sum_of_squares|e_g|e_x)(\[.*\])?: dtype float16 vs gradtx float32$",
    r"\.hyperparams\[.*\]: dtype b?float16 vs gradtx float32$",
    r"\.(ema|measurement\['norm'\]): dtype b?float16 vs gradtx float32$",
)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_init_state_tree_is_optax_with_low_precision_params(name: str, dtype: Any) -> None:
    import re

    with jax.enable_x64(False):
        ours, theirs = _build(name)
        params = _params(dtype)
        diffs = _differences(ours.init(params), _optax(theirs.init, params), allow_drift=False)
    unexplained = [d for d in diffs if not any(re.search(rule, d) for rule in LOW_PRECISION_DEPARTURES)]
    assert not unexplained, f"{name}: the state trees differ:\n" + "\n".join(unexplained)


@pytest.mark.parametrize("name", sorted(set(CASES) - INIT_ONLY))
def test_state_restores_both_ways(name: str) -> None:
    """optax's state after one step restores into gradtx's tree with equal leaves, and back."""
    with jax.enable_x64(False):
        _check_restores(name)


def _restore(target: Any, source: Any, name: str) -> Any:
    if name in LEAF_RESTORE_ONLY:
        # What orbax does with a target tree: the source's leaves in the target's structure.
        return jax.tree.unflatten(jax.tree.structure(target), jax.tree.leaves(source))
    return serialization.from_state_dict(target, serialization.to_state_dict(source))


def _check_restores(name: str) -> None:
    ours, theirs = _build(name)
    params = _params()
    their_state = _steps(theirs, _optax(theirs.init, params), params, 1, optax_side=True)
    restored = _restore(ours.init(params), their_state, name)
    assert not _differences(restored, their_state)
    _leaves_equal(restored, their_state)
    # The restored state is one gradtx can step from.
    _, after = ours.update(_grads(params, 2), restored, params)
    assert jax.tree.structure(after) == jax.tree.structure(restored)

    our_state = _steps(ours, ours.init(params), params, 1, optax_side=False)
    back = _restore(_optax(theirs.init, params), our_state, name)
    _leaves_equal(back, our_state)


def test_optax_map_params_over_masked_and_partition_states() -> None:
    """``optax.tree.map_params`` (which initialises with a leafless placeholder) works on gradtx states."""
    params = _params(jnp.float64)
    for name in ("masked", "freeze", "partition", "selective_transform", "adamw"):
        ours, theirs = _build(name)
        mapped = optax.tree.map_params(ours, lambda x: jnp.full_like(x, 7.0), ours.init(params))
        expected = optax.tree.map_params(theirs, lambda x: jnp.full_like(x, 7.0), _optax(theirs.init, params))
        assert not _differences(mapped, expected), name
        _leaves_equal(mapped, expected)


def _resume_case(lib: Any, name: str) -> Any:
    if name == "inject_adamw_masked":
        schedule = lib.warmup_cosine_decay_schedule(0.0, 0.05, 5, 40)
        decay_mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
        return lib.inject_hyperparams(lib.adamw, static_args=("mask",))(
            learning_rate=schedule, weight_decay=1e-2, mask=decay_mask
        )
    if name == "multisteps_partition":
        groups = lib.partition({"a": lib.adam(0.02), "f": lib.set_to_zero()}, {"w": "a", "b": "a", "frozen": "f"})
        return lib.MultiSteps(lib.chain(lib.clip_by_global_norm(1.0), groups), 2)
    raise AssertionError(name)


def _train_loss(p: Any) -> jax.Array:
    return (
        jnp.sum((p["w"] @ jnp.ones(4, p["w"].dtype) - 1.0) ** 2) + jnp.sum((p["b"] - 0.5) ** 2) + jnp.sum(p["frozen"])
    )


@pytest.mark.parametrize("name", ["inject_adamw_masked", "multisteps_partition"])
def test_orbax_checkpoint_from_optax_resumes_under_gradtx(name: str, tmp_path: Any) -> None:
    """An optax loop saves with orbax after 10 steps; gradtx restores and runs 20 more, as optax does."""
    import orbax.checkpoint as ocp

    def run(lib: Any, tx: Any, p: Any, s: Any, n: int) -> tuple[Any, Any]:
        @jax.jit
        def step(p: Any, s: Any) -> tuple[Any, Any]:
            with jax.numpy_dtype_promotion("standard" if lib is optax else "strict"):
                u, s = tx.update(jax.grad(_train_loss)(p), s, p)
                return lib.apply_updates(p, u), s

        for _ in range(n):
            p, s = step(p, s)
        return p, s

    with jax.enable_x64(False):
        rng = np.random.default_rng(1)
        params = {
            "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            "b": jnp.zeros(4, jnp.float32),
            "frozen": jnp.ones(2, jnp.float32),
        }
        theirs, ours = _resume_case(optax, name), _resume_case(gradtx, name)
        p, s = run(optax, theirs, params, _optax(theirs.init, params), 10)
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp_path / "ckpt", {"params": p, "opt_state": s})
        checkpointer.wait_until_finished()
        target = jax.eval_shape(lambda: {"params": params, "opt_state": ours.init(params)})
        restored = checkpointer.restore(tmp_path / "ckpt", target)
        assert jax.tree.structure(restored["opt_state"]) == jax.tree.structure(ours.init(params))
        p_theirs, _ = run(optax, theirs, p, s, 20)
        p_ours, _ = run(gradtx, ours, restored["params"], restored["opt_state"], 20)
    for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    if name == "multisteps_partition":
        np.testing.assert_array_equal(np.asarray(p_ours["frozen"]), 1.0)


_WRAPPED = {
    "masked": lambda lib: lib.masked(lib.adam(0.1), {"b": True, "w": False, "conv": {"k": True}}),
    "inject_hyperparams": lambda lib: lib.inject_hyperparams(lib.adam)(learning_rate=0.1),
    "apply_if_finite": lambda lib: lib.apply_if_finite(lib.adam(0.1), 2),
    "MultiSteps": lambda lib: lib.MultiSteps(lib.adam(0.1), 2),
    "reduce_on_plateau": lambda lib: (lib.contrib if lib is optax else lib).reduce_on_plateau(),
    "conditionally_transform": lambda lib: lib.conditionally_transform(lib.adam(0.1), lambda step: step > 0),
}


@pytest.mark.parametrize("name", list(_WRAPPED))
def test_an_optax_state_object_is_named_with_the_leaf_recipe(name: str) -> None:
    # Its leaves restore (above); the object itself is another class, and failed deep in jax
    # ("cond branches of different structures") or read "expected a MaskedState, found MaskedState".
    params = _params()
    with jax.enable_x64(False):
        theirs = _optax(_WRAPPED[name](optax).init, params)
        ours = _WRAPPED[name](gradtx)
        with pytest.raises(TypeError, match=r"found optax\..*State\. A state object of another library.*leaves"):
            ours.update(params, theirs, params, value=jnp.float32(1.0))
        restored = jax.tree.unflatten(jax.tree.structure(ours.init(params)), jax.tree.leaves(theirs))
        ours.update(params, restored, params, value=jnp.float32(1.0))  # the recipe works
