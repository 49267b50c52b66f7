"""Prefix broadcasting (masks, labels, freeze) and ``masked``'s optax-shaped state and inputs.

The one prefix rule lives in ``gradtx._tree``; ``masked``, ``freeze`` and ``partition`` use it. A
hypothesis test checks it against a brute-force reference on random nested trees and random
prefix cuts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx
from gradtx import _tree


def _params() -> Any:
    return {
        "enc": {"w": jnp.ones((2, 3), jnp.float64), "b": jnp.full(3, 2.0, jnp.float64)},
        "head": jnp.full(2, 3.0, jnp.float64),
    }


# --- the prefix rule -------------------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "c", "d"])
_trees = st.recursive(
    st.integers(0, 99), lambda children: st.dictionaries(_keys, children, min_size=1, max_size=3), max_leaves=12
)


def _cut(tree: Any, draw: Any, depth: int = 0) -> Any:
    """A random prefix of ``tree`` whose leaves are labels naming the subtree they cover."""
    if not isinstance(tree, dict) or draw(st.booleans()):
        return f"L{depth}-{draw(st.integers(0, 3))}"
    return {k: _cut(v, draw, depth + 1) for k, v in tree.items()}


def _reference(prefix: Any, tree: Any) -> Any:
    if not isinstance(prefix, dict):
        return jax.tree.map(lambda _: prefix, tree)
    return {k: _reference(prefix[k], tree[k]) for k in tree}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_broadcast_prefix_matches_brute_force(data: Any) -> None:
    tree = data.draw(_trees)
    prefix = _cut(tree, data.draw)
    got = _tree.broadcast_prefix(prefix, tree, prefix_name="labels", tree_name="params", where="t")
    assert got == _reference(prefix, tree)
    assert jax.tree.structure(got) == jax.tree.structure(tree)


def test_prefix_mismatch_names_the_path_both_ways() -> None:
    tree = {"a": {"x": 1, "y": 2}, "b": 3}
    with pytest.raises(
        ValueError, match=r"t: the structure of labels does not match params: labels has an entry at \['a'\]\['z'\]"
    ):
        _tree.broadcast_prefix(
            {"a": {"x": 1, "z": 2}, "b": 0}, tree, prefix_name="labels", tree_name="params", where="t"
        )
    with pytest.raises(ValueError, match=r"params has a leaf at \['b'\] that labels does not cover"):
        _tree.broadcast_prefix({"a": 1}, tree, prefix_name="labels", tree_name="params", where="t")


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _CallableMask:
    """A registered pytree with ``__call__`` (like an equinox Module): a tree, not a mask function."""

    enc: Any
    head: Any

    def __call__(self, x: Any) -> Any:  # pragma: no cover - never called as a mask function
        raise AssertionError("a callable pytree mask must not be called")


def test_callable_pytree_is_a_mask_tree_not_a_function() -> None:
    assert _tree.is_prefix_function(lambda p: p)
    assert _tree.is_prefix_function(jax.tree_util.Partial(lambda p: p))
    assert not _tree.is_prefix_function(_CallableMask(True, False))

    # As with equinox, params and mask are instances of the same callable Module class.
    params = _CallableMask(jnp.ones(3, jnp.float64), jnp.ones(2, jnp.float64))
    tx = gradtx.masked(gradtx.scale(-0.5), _CallableMask(enc=True, head=False))
    updates, _ = tx.update(params, tx.init(params))
    np.testing.assert_array_equal(np.asarray(updates.enc), -0.5)
    np.testing.assert_array_equal(np.asarray(updates.head), 1.0)
    frozen, _ = gradtx.freeze(_CallableMask(enc=False, head=True)).update(params, gradtx.freeze(True).init(params))
    np.testing.assert_array_equal(np.asarray(frozen.head), 0.0)


# --- masked: optax's state shape and inputs ----------------------------------------------------------


def test_one_masked_node_per_masked_prefix_entry_as_optax() -> None:
    params = _params()
    mask = {"enc": False, "head": True}
    state = gradtx.masked(gradtx.scale_by_adam(), mask).init(params)
    expected = optax.masked(optax.scale_by_adam(), mask).init(params)
    assert isinstance(state.inner_state.mu["enc"], gradtx.MaskedNode)
    assert jax.tree.structure(state) != jax.tree.structure(expected)  # different NamedTuple classes...
    assert str(jax.tree.structure(state)).replace("gradtx", "optax") == str(jax.tree.structure(expected)).replace(
        "gradtx", "optax"
    )  # ...of the same layout


def test_update_without_params_and_reference() -> None:
    params = _params()
    tx = gradtx.masked(gradtx.sgd(0.1, momentum=0.9), {"enc": {"w": True, "b": False}, "head": True})
    state = tx.init(params)
    g = jax.tree.map(lambda x: 0.5 * x, params)
    trace = jax.tree.map(jnp.zeros_like, params)
    for _ in range(3):
        updates, state = tx.update(g, state)  # no params: the mask needs none
        trace = jax.tree.map(lambda t, gi: 0.9 * t + gi, trace, g)
    np.testing.assert_allclose(np.asarray(updates["enc"]["w"]), -0.1 * np.asarray(trace["enc"]["w"]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(updates["head"]), -0.1 * np.asarray(trace["head"]), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(updates["enc"]["b"]), np.asarray(g["enc"]["b"]))


def test_inner_mask_finer_than_an_outer_group_mask() -> None:
    """A masked inside a partition group sees a MaskedNode for the other group's whole subtree."""
    params = _params()
    inner = gradtx.masked(gradtx.scale(-1.0), {"enc": {"w": True, "b": False}, "head": True})
    tx = gradtx.partition({"g": inner, "z": gradtx.set_to_zero()}, {"enc": "z", "head": "g"})
    updates, _ = tx.update(params, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(updates["head"]), -3.0)
    assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(updates["enc"]))


def test_wrong_state_type_names_expected_and_found() -> None:
    params = _params()
    with pytest.raises(TypeError, match=r"expected a gradtx MaskedState.*found EmptyState"):
        gradtx.masked(gradtx.scale(1.0), {"enc": True, "head": False}).update(params, gradtx.EmptyState())
    momentum_state = gradtx.sgd(0.1, momentum=0.9).init(params)
    with pytest.raises(TypeError, match=r"expected a ScaleByAdamState state.*found ScaleByMomentumState"):
        gradtx.adam(0.1).update(params, momentum_state, params)
    with pytest.raises(TypeError, match="InjectStatefulHyperparamsState"):
        gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1).update(params, momentum_state, params)


@pytest.mark.parametrize("key", [0, "typed", "raw"])
def test_prng_key_through_inject_hyperparams_matches_optax(key: Any) -> None:
    """noisy_sgd's ``key`` is data, not a float hyperparameter: int seeds and typed keys work as in optax."""
    params = {"w": jnp.ones(3, jnp.float32)}
    ours_key = {"typed": jax.random.key(0), "raw": jax.random.PRNGKey(0)}.get(key, key)
    tx = gradtx.inject_hyperparams(gradtx.noisy_sgd)(learning_rate=0.01, key=ours_key)
    updates, _ = jax.jit(tx.update)(params, tx.init(params), params)
    # optax accepts int seeds and typed keys (not raw uint32 keys); all name the same key.
    theirs = optax.inject_hyperparams(optax.noisy_sgd)(learning_rate=0.01, key=0 if key == "raw" else ours_key)
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = theirs.update(params, theirs.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), np.asarray(expected["w"]), rtol=1e-6)
