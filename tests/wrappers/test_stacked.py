"""stacked: the inner transform sees one stack per (shape, dtype) group; results equal the unstacked run."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx
import gradtx.testing
from tests.support.steps import assert_steps_equal, grads

SHAPES = ((3,), (2, 3), (4,), (1, 2, 2))


def _tree(shape_ids: list[int], dtype: Any = jnp.float64) -> dict[str, Any]:
    # Distinct values per leaf so that a row mix-up between leaves of one group shows.
    return {
        f"p{i}": (jnp.arange(np.prod(SHAPES[s]), dtype=dtype).reshape(SHAPES[s]) + 1.0) / (i + 2.0)
        for i, s in enumerate(shape_ids)
    }


ELEMENTWISE_OR_GLOBAL = {
    "sgd": lambda: gradtx.sgd(0.1),
    "nesterov": lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: gradtx.adam(0.1),
    "adamw": lambda: gradtx.adamw(0.05, weight_decay=0.1),
    "lion": lambda: gradtx.lion(0.01, weight_decay=0.1),
    "rmsprop": lambda: gradtx.rmsprop(0.01, momentum=0.5),
    "amsgrad": lambda: gradtx.amsgrad(0.1),
    "clip+adamw": lambda: gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adamw(0.05, weight_decay=0.1)),
}


# The three layouts a transform inside can be given: stacks, one leaf at a time, one vector.
WRAPPERS: dict[str, Any] = {
    "stacked": gradtx.stacked,
    "per_leaf": lambda inner: gradtx.stacked(inner, per_leaf=True),
    "flatten": gradtx.flatten,
}


def _weights_and_biases() -> dict[str, list[jax.Array]]:
    return {"w": [jnp.full((3, 2), i + 1.0) for i in range(3)], "b": [jnp.full(2, i - 1.0) for i in range(3)]}


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    shape_ids=st.lists(st.integers(0, len(SHAPES) - 1), min_size=1, max_size=9),
    name=st.sampled_from(sorted(ELEMENTWISE_OR_GLOBAL)),
)
def test_equals_the_unstacked_transform(shape_ids: list[int], name: str) -> None:
    params = _tree(shape_ids)
    plain, wrapped = ELEMENTWISE_OR_GLOBAL[name](), gradtx.stacked(ELEMENTWISE_OR_GLOBAL[name]())
    ps, ws = plain.init(params), wrapped.init(params)
    p_plain = p_wrapped = params
    for step in range(3):
        pu, ps = plain.update(grads(p_plain, step), ps, p_plain)
        wu, ws = wrapped.update(grads(p_wrapped, step), ws, p_wrapped)
        assert jax.tree.structure(wu) == jax.tree.structure(pu)
        for a, b in zip(jax.tree.leaves(wu), jax.tree.leaves(pu), strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            # Same arithmetic per entry; only the global norm's summation order differs.
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)
        p_plain, p_wrapped = gradtx.apply_updates(p_plain, pu), gradtx.apply_updates(p_wrapped, wu)


def test_state_holds_one_buffer_per_group_and_each_leafs_row() -> None:
    f32 = jnp.float32
    params = {
        "a": jnp.ones((2, 3), f32),
        "b": [jnp.zeros(3, f32), jnp.full((2, 3), 2.0, f32)],
        "c": jnp.ones(3, jnp.bfloat16),
    }
    state = gradtx.stacked(gradtx.adam(0.1)).init(params)
    assert isinstance(state, gradtx.StackedState)
    mu = state.inner_state[0].mu
    assert {k: v.shape for k, v in mu.items()} == {
        "float32[2,3]": (2, 2, 3),
        "float32[3]": (1, 3),
        "bfloat16[3]": (1, 3),
    }
    assert mu["bfloat16[3]"].dtype == jnp.bfloat16
    # One scalar per row of the largest group, shared by all groups; not one per leaf.
    assert [int(r) for r in state.rows] == [0, 1]
    assert all(x.dtype == jnp.uint32 and x.shape == () for x in state.rows)
    assert jax.tree.map(int, state.group_sizes) == {"float32[2,3]": 2, "float32[3]": 1, "bfloat16[3]": 1}


def test_keeps_the_contract_of_a_gradient_transformation() -> None:
    params = {"w": [jnp.ones((2, 3)), jnp.full((2, 3), 0.5)], "b": jnp.zeros(3), "h": jnp.ones(3, jnp.bfloat16)}
    checked = gradtx.testing.check_transformation(gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.1)), params)
    assert "vmap" in checked and "no_retrace" in checked
    per_leaf = gradtx.stacked(gradtx.lamb(0.1, weight_decay=0.1), per_leaf=True, max_size=4)
    assert "abstract_init" in gradtx.testing.check_transformation(per_leaf, params)


DECAY = {"w": [True] * 3, "b": [False] * 3}
# Two ways to give stacked AdamW a weight-decay mask, with the tolerance each meets against
# adamw(mask=...): the mask outside stacked, on the real tree.
MASKED_ADAMW = {
    "partition": (
        lambda: gradtx.partition(
            {"decay": gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.5)), "plain": gradtx.stacked(gradtx.adam(0.1))},
            jax.tree.map(lambda d: "decay" if d else "plain", DECAY),
        ),
        {"rtol": 1e-6},
    ),
    "decay_outside": (
        lambda: gradtx.chain(
            gradtx.stacked(gradtx.scale_by_adam()),
            gradtx.add_decayed_weights(0.5, DECAY),
            gradtx.scale_by_learning_rate(0.1),
        ),
        {"rtol": 1e-12, "atol": 1e-15},
    ),
}


@pytest.mark.parametrize("name", list(MASKED_ADAMW))
def test_masks_outside_give_adamw_with_a_decay_mask(name: str) -> None:
    build, tolerance = MASKED_ADAMW[name]
    assert_steps_equal(build(), gradtx.adamw(0.1, weight_decay=0.5, mask=DECAY), _weights_and_biases(), **tolerance)


def test_traced_step_grows_by_a_few_equations_per_leaf() -> None:
    # The design property behind the compile-time gain (bench/NOTES.md): the inner transform's
    # arithmetic is traced once per group, so a leaf adds only its stacking and its slice.
    def equations(tx: Any, n: int) -> int:
        params = {f"p{i}": jnp.full((4, 3), 1.0 + i) for i in range(n)}
        state = tx.init(params)
        return len(jax.make_jaxpr(tx.update)(params, state, params).jaxpr.eqns)

    def per_leaf(make: Any) -> float:
        return (equations(make(), 40) - equations(make(), 10)) / 30

    assert per_leaf(lambda: gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.1))) <= 4
    assert per_leaf(lambda: gradtx.adamw(0.1, weight_decay=0.1)) >= 10


def test_abstract_init_and_an_empty_tree() -> None:
    tx = gradtx.stacked(gradtx.adam(0.1))
    leaf = jax.ShapeDtypeStruct((4, 2), jnp.float32)
    abstract = jax.eval_shape(tx.init, {"x": leaf, "y": leaf})
    assert abstract.inner_state[0].mu["float32[4,2]"].shape == (2, 4, 2)
    state = tx.init({})
    updates, _ = tx.update({}, state)
    assert updates == {}


def test_errors_name_the_argument_and_the_path() -> None:
    params = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.ones(3, jnp.float32)}
    tx = gradtx.stacked(gradtx.adam(0.1))
    state = tx.init(params)
    with pytest.raises(TypeError, match="stacked: `state` must be the StackedState"):
        tx.update(params, state.inner_state)
    with pytest.raises(ValueError, match=r"stacked: the updates \(2 leaves\) differ .* in their key paths"):
        tx.update({"a": params["a"], "c": params["b"]}, state)
    with pytest.raises(ValueError, match=r"stacked: the updates \(2 leaves\) differ"):
        tx.update({"b": params["a"], "a": params["b"]}, state)  # swapped: the groups match, the paths do not
    with pytest.raises(ValueError, match=r"stacked: `state.rows` must be the tuple of 1 row"):
        tx.update(params, state._replace(rows=()))
    with pytest.raises(ValueError, match=r"updates\['b'\] is bfloat16\[3\]"):
        tx.update({"a": params["a"], "b": params["b"].astype(jnp.bfloat16)}, state)
    with pytest.raises(ValueError, match=r"updates\['b'\] is float32\[4\]"):
        tx.update({"a": params["a"], "b": jnp.ones(4, jnp.float32)}, state)
    with pytest.raises(ValueError, match="stacked"):
        tx.update(params, state, {"a": params["a"]})


def test_leaves_above_max_size_stay_unstacked_under_their_path() -> None:
    f64 = jnp.float64
    params = {
        "big": [jnp.full((5, 4), 0.5, f64), jnp.full((5, 4), 1.5, f64)],
        "small": [jnp.ones(3), 2.0 * jnp.ones(3)],
    }
    wrapped, plain = (
        gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.2), max_size=19),
        gradtx.adamw(0.1, weight_decay=0.2),
    )
    ws, ps = wrapped.init(params), plain.init(params)
    mu = ws.inner_state[0].mu
    assert {k: v.shape for k, v in mu.items()} == {
        "leaf['big'][0]": (5, 4),
        "leaf['big'][1]": (5, 4),
        "float64[3]": (2, 3),
    }
    for step in range(3):
        g = grads(params, step)
        wu, ws = jax.jit(wrapped.update)(g, ws, params)
        pu, ps = plain.update(g, ps, params)
        for a, b in zip(jax.tree.leaves(wu), jax.tree.leaves(pu), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)
    everything = gradtx.stacked(gradtx.adam(0.1), max_size=None).init(params)
    assert sorted(everything.inner_state[0].mu) == ["float64[3]", "float64[5,4]"]


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), (2.5, TypeError), (True, TypeError), ("16", TypeError)])
def test_max_size_must_be_a_non_negative_int(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="stacked: `max_size` must be an int"):
        gradtx.stacked(gradtx.sgd(0.1), max_size=bad)


PER_LEAF_STATISTICS = {
    "lamb": lambda: gradtx.lamb(0.1, weight_decay=0.1),
    "lars": lambda: gradtx.lars(0.1),
    "adafactor": lambda: gradtx.adafactor(0.1, min_dim_size_to_factor=2),
    "clip (per leaf)": lambda: gradtx.chain(gradtx.clip_by_block_rms(0.5), gradtx.adam(0.1)),
    "novograd": lambda: gradtx.novograd(0.1),
    "sm3": lambda: gradtx.sm3(0.1),
    "fromage": lambda: gradtx.fromage(0.1),
    "centralize": lambda: gradtx.chain(gradtx.centralize(), gradtx.sgd(0.1)),
    "param block rms": lambda: gradtx.chain(gradtx.scale_by_param_block_rms(), gradtx.sgd(0.1)),
    "agc": lambda: gradtx.chain(gradtx.adaptive_grad_clip(0.05), gradtx.sgd(0.1)),
    "dog": lambda: gradtx.chain(gradtx.scale_by_distance_over_gradients(param_dtype=jnp.float64), gradtx.sgd(0.1)),
    "muon": lambda: gradtx.contrib.muon(0.1),
}


@pytest.mark.parametrize("name", sorted(PER_LEAF_STATISTICS))
@settings(max_examples=4, deadline=None, derandomize=True)
@given(shape_ids=st.lists(st.integers(0, len(SHAPES) - 1), min_size=1, max_size=7))
def test_per_leaf_equals_the_unstacked_transform(shape_ids: list[int], name: str) -> None:
    params = _tree(shape_ids)
    plain = PER_LEAF_STATISTICS[name]()
    wrapped = gradtx.stacked(PER_LEAF_STATISTICS[name](), per_leaf=True, max_size=6)
    ps, ws = plain.init(params), wrapped.init(params)
    assert set(ws.inner_state) == set(ws.group_sizes)
    for step in range(3):
        g = grads(params, step)
        pu, ps = plain.update(g, ps, params)
        wu, ws = jax.jit(wrapped.update)(g, ws, params)
        for a, b in zip(jax.tree.leaves(wu), jax.tree.leaves(pu), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
        params = gradtx.apply_updates(params, pu)


@pytest.mark.parametrize("name", sorted(PER_LEAF_STATISTICS))
def test_a_per_leaf_statistic_on_the_stacks_raises(name: str) -> None:
    # Without per_leaf=True, a norm or mean per leaf would be taken over a whole stack: no error,
    # other numbers. Each such transform says so, at init when its state depends on it.
    params = _tree([1, 1, 0])
    tx = gradtx.stacked(PER_LEAF_STATISTICS[name]())
    with pytest.raises(ValueError, match=r"per leaf, but inside stacked .*float64\[2,3\].*per_leaf=True"):
        tx.update(grads(params, 0), tx.init(params), params)


WHOLE_TREE_STATISTICS = {
    "clip_by_global_norm": (lambda: gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(0.1)), {}),
    "normalize_by_update_norm": (lambda: gradtx.chain(gradtx.normalize_by_update_norm(), gradtx.sgd(0.1)), {}),
    "scale_by_polyak": (lambda: gradtx.polyak_sgd(), {"value": jnp.asarray(1.0)}),
    "scale_by_lbfgs": (lambda: gradtx.scale_by_lbfgs(), {}),
    "apply_if_finite": (lambda: gradtx.apply_if_finite(gradtx.adam(0.1), 3), {}),
    "MultiSteps": (
        lambda: gradtx.MultiSteps(gradtx.adam(0.1), 2, should_skip_update_fn=gradtx.skip_not_finite),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(WHOLE_TREE_STATISTICS))
def test_a_whole_tree_statistic_given_one_leaf_raises(name: str) -> None:
    # With per_leaf=True a global norm would be taken per leaf: no error, other numbers.
    make, extra_args = WHOLE_TREE_STATISTICS[name]
    params = _tree([1, 1, 0])
    tx = gradtx.stacked(make(), per_leaf=True)
    with pytest.raises(ValueError, match=rf"{name} takes .* over the whole tree, .* one leaf at a time \(of 3\)"):
        tx.update(grads(params, 0), tx.init(params), params, **extra_args)
    # The default mode gives it every leaf (in stacks): the numbers of the unstacked transform.
    assert_steps_equal(gradtx.stacked(make()), make(), params, extra_args=extra_args)
    # A tree of one leaf is the whole tree.
    one = {"w": params["p0"]}
    assert_steps_equal(gradtx.stacked(make(), per_leaf=True), make(), one, extra_args=extra_args)


@pytest.mark.parametrize("wrap", sorted(WRAPPERS))
@pytest.mark.parametrize("search", ["scale_by_backtracking_linesearch", "scale_by_zoom_linesearch"])
def test_a_line_search_inside_says_to_chain_it_outside(wrap: str, search: str) -> None:
    # It calls value_fn on candidate params, which inside would be stacks, one leaf or a vector.
    params = _tree([1, 1, 0])

    def value_fn(p: Any) -> jax.Array:
        return jnp.sum((p["p0"] - 1.0) ** 2) + jnp.sum((p["p1"] - 1.0) ** 2) + jnp.sum((p["p2"] - 1.0) ** 2)

    wrapper = WRAPPERS[wrap]
    tx = wrapper(gradtx.chain(gradtx.sgd(0.1), getattr(gradtx, search)(5)))
    value, grad = jax.value_and_grad(value_fn)(params)
    with pytest.raises(ValueError, match=rf"{search} calls `value_fn` on the params, but inside .*: chain it outside"):
        tx.update(grad, tx.init(params), params, value=value, grad=grad, value_fn=value_fn)
    # Chained outside, it sees the params: the numbers of the unwrapped chain.
    outside = gradtx.chain(wrapper(gradtx.sgd(0.1)), getattr(gradtx, search)(5))
    plain = gradtx.chain(gradtx.sgd(0.1), getattr(gradtx, search)(5))
    extra = {"value": value, "grad": grad, "value_fn": value_fn}
    a, _ = outside.update(grad, outside.init(params), params, **extra)
    b, _ = plain.update(grad, plain.init(params), params, **extra)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12)


@pytest.mark.parametrize("wrap", sorted(WRAPPERS))
def test_sophias_hutchinson_estimator_inside_says_to_run_it_without_the_wrapper(wrap: str) -> None:
    # It differentiates obj_fn at the params, which inside would be stacks, one leaf or a vector.
    params = _tree([1, 1, 0])

    def obj_fn(p: Any) -> jax.Array:
        return jnp.sum(p["p0"] ** 2) + jnp.sum(p["p1"] ** 3) + jnp.sum(jnp.sin(p["p2"]))

    wrapper = WRAPPERS[wrap]
    tx = wrapper(gradtx.contrib.sophia(0.1))
    g = jax.grad(obj_fn)(params)
    with pytest.raises(
        ValueError,
        match=r"hutchinson_estimator_diag_hessian differentiates `obj_fn` at the params, but inside "
        r".*: run sophia \(and this estimator\) without stacked or flatten",
    ):
        tx.update(g, tx.init(params), params, obj_fn=obj_fn)


@pytest.mark.parametrize("jit", [False, True])
def test_per_leaf_noise_is_a_stream_of_its_own_for_each_leaf(jit: bool) -> None:
    # vmap(init) copies the key to every row: without a stream per leaf, the leaves of a group
    # drew the same noise. Leaf i draws from fold_in(key, i), as add_noise on that leaf alone;
    # "leaf['w']" (above max_size) is not vmapped.
    params = {"a": jnp.zeros(64), "b": jnp.ones(64), "c": jnp.zeros(64), "w": jnp.zeros((10, 10)), "z": jnp.zeros(5)}
    tx = gradtx.stacked(gradtx.add_noise(1.0, 0.5, key=7), per_leaf=True, max_size=64)
    assert set(jax.eval_shape(tx.init, params).inner_state) == {"float64[64]", "float64[5]", "leaf['w']"}
    init, update = (jax.jit(tx.init), jax.jit(tx.update)) if jit else (tx.init, tx.update)
    state = init(params)
    refs = {
        name: gradtx.add_noise(1.0, 0.5, key=jax.random.fold_in(jax.random.key(7), i))
        for i, name in enumerate(sorted(params))
    }
    ref_states = {name: refs[name].init(params[name]) for name in params}
    for step in range(2):
        g = grads(params, step)
        out, state = update(g, state, params)
        for name in params:
            expected, ref_states[name] = refs[name].update(g[name], ref_states[name], params[name])
            # The same draws; under jit XLA may fuse `g + std * noise` differently (an ulp of the terms).
            np.testing.assert_allclose(np.asarray(out[name]), np.asarray(expected), rtol=1e-14, atol=1e-15)
    noise = {name: np.asarray(out[name]) - np.asarray(g[name]) for name in ("a", "b", "c")}
    assert not np.allclose(noise["a"], noise["b"]) and not np.allclose(noise["b"], noise["c"])


def test_per_leaf_noise_from_a_raw_key_raises() -> None:
    # A raw uint32 key is not recognizable as a key: every leaf would draw the same noise.
    params = {"a": jnp.zeros(4), "b": jnp.zeros(4)}
    tx = gradtx.stacked(gradtx.noisy_sgd(0.1, key=jax.random.PRNGKey(0)), per_leaf=True)
    with pytest.raises(ValueError, match=r"add_noise: inside stacked\(..., per_leaf=True\) .* raw uint32\[2\]"):
        tx.init(params)
    # The default mode draws over each stack: independent entries, nothing to derive.
    tx = gradtx.stacked(gradtx.noisy_sgd(0.1, key=jax.random.PRNGKey(0)))
    out, _ = tx.update(params, tx.init(params), params)
    assert not np.allclose(np.asarray(out["a"]), np.asarray(out["b"]))


@pytest.mark.parametrize("wrap", sorted(WRAPPERS))
def test_lookahead_inside_says_to_put_the_wrapper_inside_it(wrap: str) -> None:
    # Its update needs LookaheadParams, which inside would be stacks: it could never run there.
    params = _tree([1, 1, 0])
    wrapper = WRAPPERS[wrap]
    synced = gradtx.LookaheadParams.init_synced(params)
    with pytest.raises(ValueError, match=r"lookahead keeps the fast and slow params .* lookahead\(stacked\(inner\)"):
        wrapper(gradtx.lookahead(gradtx.adam(0.1), 2, 0.5)).init(synced)
    # The wrapper inside: the numbers of plain lookahead.
    inside = gradtx.lookahead(wrapper(gradtx.adam(0.1)), 2, 0.5)
    plain = gradtx.lookahead(gradtx.adam(0.1), 2, 0.5)
    si, sp, pi, pp = inside.init(synced), plain.init(synced), synced, synced
    for step in range(3):
        g = grads(pi.fast, step)
        ui, si = inside.update(g, si, pi)
        up, sp = plain.update(g, sp, pp)
        pi, pp = gradtx.apply_updates(pi, ui), gradtx.apply_updates(pp, up)
    for a, b in zip(jax.tree.leaves(pi), jax.tree.leaves(pp), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_per_leaf_state_is_one_inner_state_per_group_and_checked() -> None:
    params = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.ones((2, 3), jnp.float32), "c": jnp.ones(3, jnp.float32)}
    tx = gradtx.stacked(gradtx.lamb(0.1), per_leaf=True)
    state = tx.init(params)
    adam_state = state.inner_state["float32[2,3]"][0]
    assert adam_state.mu.shape == (2, 2, 3) and adam_state.count.shape == (2,)
    with pytest.raises(ValueError, match="one state per group"):
        tx.update(params, gradtx.stacked(gradtx.lamb(0.1)).init(params), params)
    with pytest.raises(TypeError, match="stacked: `per_leaf` must be a bool"):
        gradtx.stacked(gradtx.lamb(0.1), per_leaf=1)  # type: ignore[arg-type]


def test_rows_are_shared_by_the_groups_and_the_tree_key_is_stable() -> None:
    # A step passes one row scalar per row of the largest group, however many groups share it.
    f32 = jnp.float32
    params = {f"w{i}": jnp.ones((4, 3), f32) for i in range(5)} | {f"b{i}": jnp.zeros(3, f32) for i in range(5)}
    tx = gradtx.stacked(gradtx.sgd(0.1))
    state = tx.init(params)
    assert len(state.rows) == 5
    # The key depends on the paths, shapes and dtypes only: the same for abstract params and in
    # a fresh process (so that a checkpoint restores), different for another tree.
    assert jax.tree.structure(jax.eval_shape(tx.init, params)) == jax.tree.structure(state)
    code = (
        "import jax.numpy as jnp, gradtx\n"
        "f = jnp.float32\n"
        "p = {f'w{i}': jnp.ones((4, 3), f) for i in range(5)} | {f'b{i}': jnp.zeros(3, f) for i in range(5)}\n"
        "print(*gradtx.stacked(gradtx.sgd(0.1)).init(p).tree)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert other.stdout.split() == list(state.tree)
    renamed = tx.init({("x" + k): v for k, v in params.items()})
    assert list(renamed.tree) != list(state.tree)


@pytest.mark.parametrize("per_leaf", [False, True])
def test_an_error_of_inner_says_that_it_saw_the_stacks(per_leaf: bool) -> None:
    # optax's masked matches its mask tree against what it is given, the stacks; the error says so.
    params = {"w": jnp.ones((2, 3), jnp.float32), "b": jnp.ones(3, jnp.float32)}
    tx = gradtx.stacked(optax.masked(optax.adam(0.1), {"w": True, "b": False}), per_leaf=per_leaf)
    inside = r"raised inside stacked, where `inner` sees the dict of stacks"
    with pytest.raises(ValueError, match=rf"(?s){inside} .*float32\[2,3\].*`masked\(stacked\(inner\), mask\)`"):
        tx.init(params)
    # An update that inner rejects (polyak needs `value=`) keeps its type and gets the same context.
    polyak = gradtx.stacked(gradtx.polyak_sgd(), per_leaf=per_leaf)
    with pytest.raises(TypeError, match=rf"(?s)value.*{inside}"):
        polyak.update(params, polyak.init(params), params)


# Masks written for the params, given to a transform inside stacked: carried to the stacks.
MASKS_INSIDE = {
    "ndim function": lambda p: jax.tree.map(lambda x: x.ndim > 1, p),
    "path function": lambda p: jax.tree_util.tree_map_with_path(lambda path, _: path[0].key == "w", p),
    "tree": DECAY,
    "prefix tree": {"w": True, "b": False},
}


@pytest.mark.parametrize("per_leaf", [False, True])
@pytest.mark.parametrize("mask", list(MASKS_INSIDE))
def test_a_mask_inside_is_written_for_the_params(mask: str, per_leaf: bool) -> None:
    # Before, a function mask saw the stacks: the 1-D biases were 2-D stacks, and were decayed.
    params = _weights_and_biases()
    wrapped = gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.5, mask=MASKS_INSIDE[mask]), per_leaf=per_leaf)
    assert_steps_equal(wrapped, gradtx.adamw(0.1, weight_decay=0.5, mask=DECAY), params, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("per_leaf", [False, True])
def test_labels_and_nested_masks_inside_are_written_for_the_params(per_leaf: bool) -> None:
    params = _weights_and_biases()
    groups = {"decay": gradtx.adamw(0.1, weight_decay=0.5), "plain": gradtx.sgd(0.1, momentum=0.9)}
    by_name = lambda p: jax.tree_util.tree_map_with_path(lambda path, _: "decay" if path[0].key == "w" else "plain", p)
    for labels in (by_name, {"w": "decay", "b": "plain"}):
        wrapped = gradtx.stacked(gradtx.partition(groups, labels), per_leaf=per_leaf)
        assert_steps_equal(wrapped, gradtx.partition(groups, by_name), params, rtol=1e-12, atol=1e-15)
    # A mask inside a mask: the outer one leaves the inner one the stacks it kept.
    nested = gradtx.masked(gradtx.masked(gradtx.sgd(0.1, momentum=0.9), {"w": [True, False, True], "b": True}), DECAY)
    plain = gradtx.masked(gradtx.sgd(0.1, momentum=0.9), DECAY)
    # w[1]'s inner mask is False but w[0]'s True: one stack, two values.
    with pytest.raises(ValueError, match=r"inside stacked, the mask is True at \['w'\]\[0\] but False at \['w'\]\[1\]"):
        gradtx.stacked(nested, per_leaf=per_leaf).init(params)
    inner = gradtx.masked(gradtx.sgd(0.1, momentum=0.9), {"w": True, "b": False})
    uniform = gradtx.masked(inner, {"w": True, "b": True})
    assert_steps_equal(gradtx.stacked(uniform, per_leaf=per_leaf), plain, params, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("per_leaf", [False, True])
def test_a_mask_inside_stacked_inside_masked_skips_what_the_outer_mask_removed(per_leaf: bool) -> None:
    params: dict[str, Any] = {**_weights_and_biases(), "e": {"x": jnp.ones(4)}}
    outer = {"w": True, "b": True, "e": False}
    # The inner mask has entries under "e", which stacked is given as a MaskedNode.
    inner_mask = {"w": True, "b": False, "e": {"x": True}}
    wrapped = gradtx.masked(
        gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.5, mask=inner_mask), per_leaf=per_leaf), outer
    )
    plain = gradtx.masked(gradtx.adamw(0.1, weight_decay=0.5, mask=inner_mask), outer)
    assert_steps_equal(wrapped, plain, params, rtol=1e-12, atol=1e-15)
    wrong = gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.5, mask={"w": True, "c": False}), per_leaf=per_leaf)
    with pytest.raises(ValueError, match=r"the mask has an entry at \['c'\] that the tree given to stacked lacks"):
        wrong.init(params)


def test_muons_dimension_numbers_inside_are_written_for_the_params() -> None:
    # By key path: the "w" matrices are orthogonalized, the "v" matrices go to AdamW.
    params = {"w": [jnp.sin(jnp.arange(12.0) + i).reshape(4, 3) for i in range(2)], "v": [jnp.ones((3, 4))]}
    dims = lambda p: jax.tree_util.tree_map_with_path(
        lambda path, _: gradtx.contrib.MuonDimensionNumbers() if path[0].key == "w" else None, p
    )
    make = lambda: gradtx.contrib.muon(0.1, muon_weight_dimension_numbers=dims)
    assert_steps_equal(gradtx.stacked(make(), per_leaf=True), make(), params, rtol=1e-10, atol=1e-12)
    # A "v" of the shape of the "w"s would share their stack, one vmapped computation for both.
    params["v"] = [jnp.ones((4, 3))]
    with pytest.raises(ValueError, match=r"is 'adam' at \['v'\]\[0\] but 'muon' at \['w'\]\[0\], two leaves of"):
        gradtx.stacked(make(), per_leaf=True).init(params)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), shape_ids=st.lists(st.integers(0, len(SHAPES) - 1), min_size=1, max_size=8))
def test_a_mask_inside_equals_it_outside_or_names_the_group_it_splits(data: Any, shape_ids: list[int]) -> None:
    flags = data.draw(st.lists(st.booleans(), min_size=len(shape_ids), max_size=len(shape_ids)))
    per_leaf = data.draw(st.booleans())
    mask = {f"p{i}": flag for i, flag in enumerate(flags)}
    params = _tree(shape_ids)
    wrapped = gradtx.stacked(gradtx.adamw(0.1, weight_decay=0.5, mask=mask), per_leaf=per_leaf)
    by_group: dict[int, set[bool]] = {}
    for s, flag in zip(shape_ids, flags, strict=True):
        by_group.setdefault(s, set()).add(flag)
    if all(len(values) == 1 for values in by_group.values()):
        assert_steps_equal(wrapped, gradtx.adamw(0.1, weight_decay=0.5, mask=mask), params, rtol=1e-12, atol=1e-15)
    else:
        with pytest.raises(ValueError, match=r"masked: inside stacked, the mask is .* two leaves of the group float64"):
            wrapped.init(params)
