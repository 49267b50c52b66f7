"""``state_shardings``: the structure of ``tx.init(params)``, each leaf placed by its relation to a param.

All abstract (``jax.eval_shape``) except one jitted Adafactor step on a 2-D mesh, so the
registry-wide check is cheap.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.sharding import gradient_shardings, state_shardings
from tests.support.registry import REGISTRY


@functools.cache
def _mesh() -> jax.sharding.Mesh:
    # Auto axes (classic jax.jit shardings): the shardings are the same in explicit mode, where
    # the ZeRO step of tests/sharding/test_zero.py runs.
    return jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))


def _params() -> dict[str, jax.ShapeDtypeStruct]:
    return {
        "w": jax.ShapeDtypeStruct((16, 8), jnp.float32),  # tensor-parallel columns
        "v": jax.ShapeDtypeStruct((8, 12), jnp.float32),  # tensor-parallel rows
        "b": jax.ShapeDtypeStruct((8,), jnp.float32),
    }


def _param_shardings() -> dict[str, NamedSharding]:
    mesh = _mesh()
    return {
        "w": NamedSharding(mesh, P(None, "model")),
        "v": NamedSharding(mesh, P("model", None)),
        "b": NamedSharding(mesh, P()),
    }


def _spec(sharding: NamedSharding, ndim: int) -> tuple[Any, ...]:
    spec = tuple(sharding.spec)
    return spec + (None,) * (ndim - len(spec))


def _check_valid(state: Any, shardings: Any) -> None:
    """Same structure as the state, and each sharding divides its leaf evenly."""
    assert jax.tree.structure(shardings) == jax.tree.structure(state)
    for leaf, sharding in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True):
        assert isinstance(sharding, NamedSharding)
        assert sharding.mesh == _mesh()
        shard = sharding.shard_shape(leaf.shape)  # raises when a dimension does not divide
        assert len(shard) == len(leaf.shape)


def _mirrors(path: tuple[Any, ...], shape: tuple[int, ...]) -> str | None:
    """The param name a state leaf at ``path`` mirrors (same shape, path ends with its key)."""
    params = _params()
    last = path[-1] if path else None
    if isinstance(last, jax.tree_util.DictKey) and last.key in params and params[last.key].shape == shape:
        return str(last.key)
    return None


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda e: e.name)
@pytest.mark.parametrize("zero_axis", [None, "data"])
def test_structure_and_mirrored_specs_for_every_registry_optimizer(entry, zero_axis):
    tx = entry.build()
    params = _params()
    state = jax.eval_shape(tx.init, params)
    shardings = state_shardings(tx, params, _param_shardings(), zero_axis=zero_axis)
    _check_valid(state, shardings)
    expected = gradient_shardings(params, _param_shardings(), zero_axis="data") if zero_axis else _param_shardings()
    for (path, leaf), sharding in zip(
        jax.tree_util.tree_flatten_with_path(state)[0], jax.tree.leaves(shardings), strict=True
    ):
        name = _mirrors(path, leaf.shape)
        if name is not None:  # a per-parameter statistic lives exactly where its (ZeRO-partitioned) param would
            assert _spec(sharding, leaf.ndim) == _spec(expected[name], leaf.ndim), (path, sharding)
        elif leaf.ndim == 0:
            assert sharding.spec == P(), path


def test_zero_partitions_the_largest_free_divisible_dimension():
    params = _params()
    shardings = state_shardings(gradtx.adam(0.1), params, _param_shardings(), zero_axis="data")
    mu = shardings[0].mu
    assert mu["w"].spec == P("data", "model")  # dim 0 (16) is the free one
    assert mu["v"].spec == P("model", "data")  # 12 divides by 4
    assert mu["b"].spec == P("data")
    assert shardings[0].count.spec == P()


def test_zero_leaves_a_leaf_replicated_when_no_dimension_divides():
    mesh = _mesh()
    params = {"odd": jax.ShapeDtypeStruct((6, 5), jnp.float32), "used": jax.ShapeDtypeStruct((8,), jnp.float32)}
    given = {"odd": NamedSharding(mesh, P()), "used": NamedSharding(mesh, P("data"))}
    mu = state_shardings(gradtx.sgd(0.1, momentum=0.9), params, given, zero_axis="data")[0].trace
    assert mu["odd"].spec == P()
    assert mu["used"].spec == P("data")  # already on the axis: unchanged, never twice


def test_adafactor_factored_statistics_drop_the_reduced_dimension_on_a_2d_mesh():
    mesh = _mesh()
    params = {
        "w": jax.ShapeDtypeStruct((32, 16), jnp.float64),
        "sq": jax.ShapeDtypeStruct((16, 16), jnp.float64),
        "b": jax.ShapeDtypeStruct((16,), jnp.float64),
    }
    given = {
        "w": NamedSharding(mesh, P("model", None)),
        "sq": NamedSharding(mesh, P("data", "model")),
        "b": NamedSharding(mesh, P()),
    }
    tx = gradtx.adafactor(0.01, min_dim_size_to_factor=4)
    state = jax.eval_shape(tx.init, params)
    for zero_axis in (None, "data"):
        shardings = state_shardings(tx, params, given, zero_axis=zero_axis)
        _check_valid(state, shardings)
    factored = next(s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, gradtx.FactoredState)))
    assert isinstance(factored, gradtx.FactoredState)

    plain = state_shardings(tx, params, given)
    leaves = jax.tree_util.tree_flatten_with_path(plain, is_leaf=lambda x: isinstance(x, gradtx.FactoredState))[0]
    fs = next(s for _, s in leaves if isinstance(s, gradtx.FactoredState))
    # w (32, 16): the row statistic drops the largest dim (0, "model"), the column statistic
    # drops the other and keeps dim 0's "model".
    assert fs.v_row["w"].spec == P()
    assert fs.v_col["w"].spec == P("model")
    # A square matrix's row and column statistics have the same shape: the dimension on which
    # the two candidate specs disagree is left unsharded.
    assert fs.v_row["sq"].spec == P() and fs.v_col["sq"].spec == P()
    zero = state_shardings(tx, params, given, zero_axis="data")
    fz = next(s for s in jax.tree.leaves(zero, is_leaf=lambda x: isinstance(x, gradtx.FactoredState)))
    assert isinstance(fz, gradtx.FactoredState)
    assert fz.v_row["w"].spec == P("data")
    assert fz.v_col["w"].spec == P("model")  # its one dim is taken by "model": nothing left to split

    # And the layout runs: one jitted step with these shardings, equal to the unsharded step.
    rng = np.random.default_rng(0)
    values = {k: rng.normal(size=v.shape) for k, v in params.items()}
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    ref_p, _ = jax.jit(step)(values, tx.init(values), grads)
    placed = jax.device_put(values, given)
    state0 = jax.jit(tx.init, out_shardings=zero)(placed)
    new_p, new_s = jax.jit(step, out_shardings=(given, zero))(placed, state0, jax.device_put(grads, given))
    for k in params:
        np.testing.assert_allclose(np.asarray(new_p[k]), np.asarray(ref_p[k]), rtol=0, atol=1e-12)
    assert jax.tree.leaves(new_s)[0].sharding is not None


class _TraceState(NamedTuple):
    buffers: list[Any]
    steps: jax.Array


def _user_transform() -> gradtx.GradientTransformation:
    """A transform written outside gradtx: state in its own layout (a list in leaf order)."""

    def init(params):
        return _TraceState([jnp.zeros_like(p) for p in jax.tree.leaves(params)], jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        buffers = [0.9 * b + g for b, g in zip(state.buffers, leaves, strict=True)]
        return jax.tree.unflatten(treedef, buffers), _TraceState(buffers, state.steps + 1)

    return gradtx.GradientTransformation(init, update)


def test_a_user_transform_is_placed_by_shape():
    params = _params()
    shardings = state_shardings(_user_transform(), params, _param_shardings(), zero_axis="data")
    _check_valid(jax.eval_shape(_user_transform().init, params), shardings)
    # Leaf order is b, v, w; each buffer has a unique param shape, so its param's layout.
    assert [s.spec for s in shardings.buffers] == [P("data"), P("model", "data"), P("data", "model")]
    assert shardings.steps.spec == P()


@pytest.mark.parametrize(
    "name",
    ["multi_steps", "inject_hyperparams", "masked", "partition", "lookahead", "apply_if_finite", "lbfgs"],
)
def test_wrappers_keep_structure_and_place_per_parameter_leaves(name):
    params = _params()
    build = {
        "multi_steps": lambda: gradtx.MultiSteps(gradtx.adam(0.1), every_k_schedule=2).gradient_transformation(),
        "inject_hyperparams": lambda: gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=0.1),
        "masked": lambda: gradtx.masked(gradtx.adam(0.1), {"w": True, "v": False, "b": True}),
        "partition": lambda: gradtx.partition(
            {"a": gradtx.adam(0.1), "s": gradtx.sgd(0.1, momentum=0.9)}, {"w": "a", "v": "s", "b": "a"}
        ),
        "lookahead": lambda: gradtx.lookahead(gradtx.adam(0.1), sync_period=2, slow_step_size=0.5),
        "apply_if_finite": lambda: gradtx.apply_if_finite(gradtx.adam(0.1), 3),
        "lbfgs": lambda: gradtx.lbfgs(),
    }[name]
    tx = build()
    state = jax.eval_shape(tx.init, params)
    shardings = state_shardings(tx, params, _param_shardings(), zero_axis="data")
    _check_valid(state, shardings)
    expected = gradient_shardings(params, _param_shardings(), zero_axis="data")
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    mirrored = 0
    for (path, leaf), sharding in zip(flat, jax.tree.leaves(shardings), strict=True):
        key = _mirrors(path, leaf.shape)
        if key is not None:
            mirrored += 1
            assert _spec(sharding, leaf.ndim) == _spec(expected[key], leaf.ndim), path
        elif leaf.ndim == 0:
            assert sharding.spec == P(), path
        elif name == "lbfgs" and leaf.ndim == 3:  # memory stacked on a leading axis
            assert sharding.spec[0] is None
            assert any("data" in (e if isinstance(e, tuple) else (e,)) for e in sharding.spec if e is not None), path
    assert mirrored > 0


def test_memory_kind_is_applied_to_every_sharding():
    params = _params()
    shardings = state_shardings(gradtx.adam(0.1), params, _param_shardings(), memory_kind="pinned_host")
    assert {s.memory_kind for s in jax.tree.leaves(shardings)} == {"pinned_host"}


def test_one_sharding_stands_for_every_param():
    params = _params()
    rep = NamedSharding(_mesh(), P())
    shardings = state_shardings(gradtx.adam(0.1), params, rep, zero_axis="data")
    assert shardings[0].mu["w"].spec == P("data")


def test_zero_axis_not_in_the_mesh_is_named():
    with pytest.raises(ValueError, match=r"zero_axis 'batch'.*\('data', 'model'\)"):
        state_shardings(gradtx.adam(0.1), _params(), _param_shardings(), zero_axis="batch")


def test_param_shardings_of_another_structure_are_refused():
    wrong = dict(_param_shardings())
    del wrong["b"]
    with pytest.raises(ValueError, match="param_shardings must have the params' structure"):
        state_shardings(gradtx.adam(0.1), _params(), wrong)


def test_a_memory_kind_the_backend_lacks_is_named():
    with pytest.raises(ValueError, match=r"memory_kind 'hbm'.*'pinned_host'"):
        state_shardings(gradtx.adam(0.1), _params(), _param_shardings(), memory_kind="hbm")


def test_a_sharding_without_mesh_axes_is_refused():
    single = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with pytest.raises(TypeError, match=r"param_shardings\['b'\] is a SingleDeviceSharding"):
        state_shardings(gradtx.adam(0.1), _params(), {**_param_shardings(), "b": single})


def _two_device_mesh() -> jax.sharding.Mesh:
    return jax.sharding.Mesh(np.array(jax.devices()[:2]), ("data",), axis_types=(AxisType.Explicit,))


def test_prng_keys_and_unrelated_vectors_stay_replicated_under_zero():
    # A raw key is uint32[2]: on a 2-device axis it divides, and before, any vector param made it
    # a "blocked" copy of that param, partitioned; jax then failed inside the jitted step.
    mesh = _two_device_mesh()
    rep = NamedSharding(mesh, P())
    params = {"w": jnp.ones((16, 8)), "b": jnp.zeros(8)}
    tx = gradtx.chain(gradtx.add_noise(0.1, 0.55, key=jax.random.PRNGKey(0)), gradtx.sgd(0.1, momentum=0.9))
    shardings = state_shardings(tx, params, rep, zero_axis="data")
    assert shardings[0].rng_key.spec == P()
    assert shardings[1][0].trace["w"].spec == P("data")  # per-parameter state is still partitioned
    step = jax.jit(
        lambda p, s, g: tx.update(g, s, p), in_shardings=(rep, shardings, rep), out_shardings=(rep, shardings)
    )
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    updates, _ = step(jax.device_put(params, rep), state, params)
    assert np.isfinite(np.asarray(updates["w"])).all()

    typed = gradtx.add_noise(0.1, 0.55, key=jax.random.key(0))  # a typed key array
    assert state_shardings(typed, params, rep, zero_axis="data").rng_key.spec == P()
    # L-BFGS's (m,) weights share no key with a param: not a shrunk copy of "b".
    weights = state_shardings(gradtx.lbfgs(memory_size=4), params, rep, zero_axis="data")[0].weights_memory
    assert weights.spec == P()


def test_a_floating_leaf_in_its_own_structure_is_placed_by_shape_but_never_as_a_block():
    mesh = _two_device_mesh()
    rep = NamedSharding(mesh, P())
    params = {"w": jax.ShapeDtypeStruct((16, 8), jnp.float32)}

    def init(p):
        return ([jnp.zeros((16, 8)), jnp.zeros((4, 8)), jnp.zeros((16, 8), jnp.int32)],)

    tx = gradtx.GradientTransformation(init, lambda u, s, p=None: (u, s))
    same, smaller, ints = state_shardings(tx, params, rep, zero_axis="data")[0]
    assert same.spec == P("data")  # a statistic of "w" kept in a list
    assert smaller.spec == P()  # a smaller float leaf with no key: nothing says it is blocks of "w"
    assert ints.spec == P()  # integers with no key: counts or indices, not statistics


def test_leaves_related_through_a_node_cost_no_scan_of_every_param(monkeypatch):
    # The quantized codes and scales end in `.codes`/`.scale`: they are matched through the node
    # above them, and must not first compare every param (quadratic on thousands of leaves).
    from gradtx.sharding import _state

    calls = []
    kinds = _state._Relations.kinds
    monkeypatch.setattr(_state._Relations, "kinds", staticmethod(lambda *a: calls.append(1) or kinds(*a)))
    mesh = _two_device_mesh()
    tx = gradtx.quantized_state(gradtx.adam(0.1), block_size=64, min_size=0)

    def count(layers: int) -> int:
        params = {f"layer{i}": {"w": jax.ShapeDtypeStruct((64, 64), jnp.float32)} for i in range(layers)}
        calls.clear()
        shardings = state_shardings(tx, params, NamedSharding(mesh, P()), zero_axis="data")
        assert shardings[0].mu["layer3"]["w"].codes.spec == P("data")
        return len(calls)

    assert count(80) == 2 * count(40)  # linear in the number of params


def test_partition_specs_without_a_mesh_are_named():
    with pytest.raises(TypeError, match="param_shardings is a PartitionSpec, which names no mesh"):
        state_shardings(gradtx.adam(0.1), _params(), P())
    specs = {"w": P(), "v": P(), "b": P()}
    with pytest.raises(TypeError, match=r"param_shardings\['b'\] is a PartitionSpec; a NamedSharding"):
        state_shardings(gradtx.adam(0.1), _params(), specs)
