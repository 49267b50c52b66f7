"""Failure modes of every registered optimizer: mismatched trees, integer params,
saturated step counters, infinite gradients, and bit-for-bit determinism.

Driven by the contract registry (``tests/support/registry.py``); the optimizers are built with the
registry's own defaults. Error checks raise while tracing, so they compile nothing.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.support.registry import ONE_VECTOR, REGISTRY, Entry
from tests.test_contract import all_finite, grads_of, make_params, step

IDS = [e.name for e in REGISTRY]
INT32_MAX = int(np.iinfo(np.int32).max)
KERNEL = "['encoder']['layer_3']['kernel']"


def nested_params() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        "encoder": {
            "layer_3": {
                "kernel": jnp.asarray(rng.normal(size=(4, 5)), jnp.float32),
                "bias": jnp.asarray(rng.normal(size=(5,)), jnp.float32),
            }
        },
        "head": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
    }


def _quadratic(w: Any) -> jax.Array:
    return sum((jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(w)), jnp.zeros([], jnp.float32))


def transform_and_update(entry: Entry) -> tuple[gradtx.GradientTransformation, Any]:
    """The entry's transform and an ``update(g, state, params)`` that reaches the library unchanged.

    The L-BFGS registry adapter derives its objective from ``g`` and ``params`` together (and
    would fail on a mismatch itself), so L-BFGS is called directly with an objective of the
    params only; every other entry is called as the contract calls it.
    """
    if entry.name != "lbfgs":
        tx = entry.build()
        return tx, tx.update
    tx = gradtx.lbfgs()

    def update(g: Any, state: Any, params: Any) -> Any:
        return tx.update(g, state, params, value=_quadratic(params), grad=g, value_fn=_quadratic)

    # Jitted, as in the registry: eagerly, the line search's loops take seconds per step.
    return tx, jax.jit(update)


def _mismatched_grads() -> list[tuple[str, Any, list[str]]]:
    """(case, grads, fragments the error must contain) for the params of :func:`nested_params`."""
    good = grads_of(nested_params())
    wrong_shape = jax.tree.map(lambda x: x, good)
    wrong_shape["encoder"]["layer_3"]["kernel"] = jnp.ones((4, 6), jnp.float32)
    missing = {"encoder": good["encoder"]}
    extra = jax.tree.map(lambda x: x, good)
    extra["encoder"]["layer_3"]["extra"] = jnp.ones((2,), jnp.float32)
    transposed = jax.tree.map(lambda x: x, good)
    transposed["encoder"]["layer_3"]["kernel"] = good["encoder"]["layer_3"]["kernel"].T
    return [
        ("shape", wrong_shape, [KERNEL, "[4, 5]", "[4, 6]"]),
        ("transposed", transposed, [KERNEL, "[4, 5]", "[5, 4]"]),
        ("missing_leaf", missing, ["['head']", "updates"]),
        ("extra_leaf", extra, ["['encoder']['layer_3']['extra']", "updates"]),
    ]


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_mismatched_gradients_name_the_path_eager_and_jit(entry: Entry) -> None:
    tx, update = transform_and_update(entry)
    params = nested_params()
    state = tx.init(params)
    for case, grads, fragments in _mismatched_grads():
        for jitted in (False, True):
            fn = jax.jit(update) if jitted else update
            # ValueError only: a jax broadcasting error would be a TypeError from deep inside jax.
            with pytest.raises(ValueError) as info:
                fn(grads, state, params)
            message = str(info.value)
            for fragment in fragments:
                assert fragment in message, f"{entry.name} [{case}, jit={jitted}]: {fragment!r} not in {message!r}"


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_state_from_other_params_is_rejected_or_harmless(entry: Entry) -> None:
    # A state built for a differently shaped kernel must either be rejected naming the path, or
    # (stateless transforms, whose state holds nothing per parameter) give the fresh-state result.
    tx, update = transform_and_update(entry)
    params = nested_params()
    other = jax.tree.map(lambda x: x, params)
    other["encoder"]["layer_3"]["kernel"] = jnp.ones((4, 6), jnp.float32)
    grads = grads_of(params)
    try:
        got, _ = update(grads, tx.init(other), params)
    except ValueError as e:
        # `flatten`'s state is optax's, one vector for the whole tree: no path to name, only the
        # vector's length that differs.
        fragment = "state.mu has float32[32], updates has float32[28]" if entry.name in ONE_VECTOR else KERNEL
        assert fragment in str(e), f"{entry.name}: {e}"
        return
    expected, _ = update(grads, tx.init(params), params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_integer_params_and_gradients_raise_type_error_naming_the_leaf(entry: Entry) -> None:
    tx, update = transform_and_update(entry)
    params = nested_params()
    grads = grads_of(params)
    int_params = jax.tree.map(lambda x: x, params)
    int_params["encoder"]["layer_3"]["bias"] = jnp.arange(5, dtype=jnp.int32)
    with pytest.raises(TypeError, match=re.escape("['encoder']['layer_3']['bias'] is int32[5]")):
        update(grads, tx.init(int_params), int_params)
    int_grads = jax.tree.map(lambda x: x, grads)
    int_grads["head"] = jnp.zeros((3,), jnp.int32)
    with pytest.raises(TypeError, match=re.escape("['head'] is int32[3]")):
        update(int_grads, tx.init(params), params)


def _is_counter(path: Any, x: Any) -> bool:
    """A step counter: an int32 scalar, or a vector of them named ``count`` (``stacked(..., per_leaf=True)``
    keeps one per stacked leaf); not ``StackedState``'s record of its group sizes and leaf count."""
    if not (hasattr(x, "dtype") and x.dtype == jnp.int32):
        return False
    names = [k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)]
    if any(n in ("group_sizes", "tree") for n in names):
        return False
    return jnp.ndim(x) == 0 or (jnp.ndim(x) == 1 and names[-1:] == ["count"])


def _counters(state: Any) -> list[Any]:
    return [x for path, x in jax.tree_util.tree_flatten_with_path(state)[0] if _is_counter(path, x)]


def _set_counters(state: Any, value: int) -> tuple[Any, int]:
    found = [0]

    def visit(path: Any, x: Any) -> Any:
        if _is_counter(path, x):
            found[0] += 1
            return jnp.full(jnp.shape(x), value, jnp.int32)
        return x

    return jax.tree_util.tree_map_with_path(visit, state), found[0]


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_counters_saturate_and_jit_is_bit_identical(entry: Entry) -> None:
    tx = entry.build()

    run = jax.jit(lambda p, s: step(tx, p, s))
    outputs = []
    for _ in range(2):  # the same inputs, built afresh, through the compiled step
        p = make_params(seed=5)
        state, n_counters = _set_counters(tx.init(p), INT32_MAX - 1)
        for _ in range(3):
            p, state = run(p, state)
        outputs.append((p, state))
    p, state = outputs[0]
    assert all_finite(p) and all_finite(state), f"{entry.name}: non-finite after a saturated counter"
    counters = [int(c) for x in _counters(state) for c in np.ravel(np.asarray(x))]
    assert len(_counters(state)) == n_counters
    assert all(c >= 0 for c in counters), f"{entry.name}: a counter wrapped to negative: {counters}"
    if counters:  # the step counter itself stays at the maximum (others, e.g. line-search steps, reset)
        assert max(counters) == INT32_MAX, f"{entry.name}: {counters}"
    assert_bit_identical(outputs[0], outputs[1], entry.name)


def assert_bit_identical(a: Any, b: Any, what: str) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    # NumPy has no typed PRNG keys (jax.random.key): compare their bits.
    a, b = gradtx.tree.unwrap_random_key_data(a), gradtx.tree.unwrap_random_key_data(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), f"{what}: outputs differ between two identical runs"


def _silent_zeros(grads: Any, updates: Any, skip: Any = None) -> list[str]:
    """Paths where a finite, nonzero gradient entry gave an update of exactly 0 (not NaN/inf).

    ``skip``: a tree of booleans like ``grads`` marking entries not to check.
    """
    bad = []
    skips = jax.tree.leaves(skip) if skip is not None else [None] * len(jax.tree.leaves(grads))
    for (path, g), u, s in zip(jax.tree_util.tree_flatten_with_path(grads)[0], jax.tree.leaves(updates), skips):
        g64, u64 = np.asarray(g, np.float64), np.asarray(u, np.float64)
        zeros = np.isfinite(g64) & (g64 != 0) & (u64 == 0)
        if s is not None:
            zeros &= ~np.asarray(s)
        if zeros.any():
            bad.append(f"{jax.tree_util.keystr(path)}: {int(zeros.sum())} finite entries became 0")
    return bad


def _inf_grads(params: Any) -> Any:
    grads = grads_of(params)
    grads["kernel"] = grads["kernel"].at[1, 2].set(jnp.inf)
    return grads


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_infinite_gradient_never_zeroes_finite_entries(entry: Entry) -> None:
    tx, update = transform_and_update(entry)
    params = make_params()
    grads = _inf_grads(params)
    updates, state = update(grads, tx.init(params), params)
    assert not _silent_zeros(grads, updates), f"{entry.name}: {_silent_zeros(grads, updates)}"
    # The next, finite step must not silently zero the other entries either: statistics shared by
    # a leaf or the tree (norms) keep the failure visible. The coordinate that was inf may get 0
    # from an elementwise statistic that is now inf (Adam's nu, as in optax).
    finite = grads_of(params)
    updates, _ = update(finite, state, params)
    skip = jax.tree.map(lambda g: ~jnp.isfinite(g), grads)
    bad = _silent_zeros(finite, updates, skip)
    assert not bad, f"{entry.name} (step after): {bad}"


# Transforms whose factor is a ratio of norms (c / ||g||), where an inf norm would zero everything.
NORM_TRANSFORMS = {
    "clip_by_global_norm": lambda: gradtx.clip_by_global_norm(1.0),
    "clip": lambda: gradtx.clip(1.0),
    "normalize_by_update_norm": lambda: gradtx.normalize_by_update_norm(),
    "scale_by_trust_ratio": lambda: gradtx.scale_by_trust_ratio(),
    "adaptive_grad_clip": lambda: gradtx.adaptive_grad_clip(0.1),
    "clip_by_block_rms": lambda: gradtx.clip_by_block_rms(1.0),
    "scale_by_param_block_norm": lambda: gradtx.scale_by_param_block_norm(),
    "scale_by_param_block_rms": lambda: gradtx.scale_by_param_block_rms(),
    "scale_by_factored_rms": lambda: gradtx.scale_by_factored_rms(min_dim_size_to_factor=4),
    "scale_by_novograd": lambda: gradtx.scale_by_novograd(),
    "scale_by_sm3": lambda: gradtx.scale_by_sm3(),
    "scale_by_distance_over_gradients": lambda: gradtx.scale_by_distance_over_gradients(),
    "centralize": lambda: gradtx.centralize(),
    "fromage": lambda: gradtx.fromage(0.1),
    "lars": lambda: gradtx.lars(0.1),
}


@pytest.mark.parametrize("name", sorted(NORM_TRANSFORMS))
def test_norm_based_transforms_with_infinite_gradient(name: str) -> None:
    tx = NORM_TRANSFORMS[name]()
    params = make_params()
    grads = _inf_grads(params)
    state = tx.init(params)
    for jitted in (False, True):
        updates, _ = (jax.jit(tx.update) if jitted else tx.update)(grads, state, params)
        assert not _silent_zeros(grads, updates), f"{name} (jit={jitted}): {_silent_zeros(grads, updates)}"


def test_per_example_clip_with_infinite_example_is_visible() -> None:
    grads = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)}
    grads["w"] = grads["w"].at[1, 0].set(jnp.inf)
    summed, _ = gradtx.per_example_global_norm_clip(grads, 1.0)
    # Example 1 cannot be dropped silently: every summed entry it touches is non-finite.
    assert not np.isfinite(np.asarray(summed["w"])).any()


def test_clip_by_global_norm_zero_norm_and_zero_max_norm_stay_finite() -> None:
    zeros = {"a": jnp.zeros((3,), jnp.float16), "b": jnp.zeros((2, 2), jnp.float32)}
    grads = {"a": jnp.ones((3,), jnp.float16), "b": jnp.full((2, 2), 2.0, jnp.float32)}
    for max_norm in (0.0, 1.0):
        tx = gradtx.clip_by_global_norm(max_norm)
        out, _ = tx.update(zeros, tx.init(zeros))
        assert all_finite(out) and all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree.leaves(out))
    out, _ = gradtx.clip_by_global_norm(0.0).update(grads, gradtx.EmptyState())
    assert all_finite(out) and all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree.leaves(out))


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.name != "lbfgs"], ids=lambda e: e.name)
def test_eager_is_bit_identical_across_runs(entry: Entry) -> None:
    # Two fresh builds, eagerly (jit is covered with the counters above; the L-BFGS entry is
    # jitted by its adapter, so it is covered there); two steps so that the state written by the
    # first is read by the second.
    outputs = []
    for _ in range(2):
        tx, params = entry.build(), make_params(seed=5)
        p, s = step(tx, params, tx.init(params))
        outputs.append(step(tx, p, s))
    assert_bit_identical(outputs[0], outputs[1], entry.name)
