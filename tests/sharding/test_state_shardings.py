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
