"""chain and named_chain: composition, extra-argument forwarding, optax interop, errors."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx
from tests.support.trees import float_trees


class CountState(NamedTuple):
    count: jax.Array
    seen_value: jax.Array


def counting_scale(factor: float) -> gradtx.GradientTransformation:
    """A stateful test transform: scales by factor * (count + 1) and records the `value` extra arg."""

    def init(params: Any) -> CountState:
        del params
        return CountState(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32))

    def update(updates, state, params=None, **extra_args):
        del params
        mult = factor * (state.count + 1).astype(jnp.float32)
        out = jax.tree.map(lambda u: u * mult.astype(u.dtype), updates)
        value = jnp.asarray(extra_args.get("value", -1.0), jnp.float32)
        return out, CountState(gradtx.safe_increment(state.count), value)

    return gradtx.GradientTransformation(init, update)


def test_chain_forwards_extra_args_to_every_member():
    tx = gradtx.chain(counting_scale(2.0), counting_scale(3.0))
    params = {"w": jnp.ones(2, jnp.float32)}
    state = tx.init(params)
    updates, state = tx.update(params, state, params, value=7.0)
    np.testing.assert_allclose(updates["w"], 6.0)
    assert [float(s.seen_value) for s in state] == [7.0, 7.0]
    updates, state = jax.jit(tx.update)(params, state, params, value=5.0)
    np.testing.assert_allclose(updates["w"], 24.0)  # (2*2) * (3*2)
    assert [int(s.count) for s in state] == [2, 2]


@settings(max_examples=10)
@given(float_trees(dtypes=(jnp.float32, jnp.float64)), st.floats(0.1, 2.0), st.floats(0.1, 1.0))
def test_chain_matches_optax_chain(params, lr, max_norm):
    grads = jax.tree.map(lambda p: p * 2 + 1, params)
    ours = gradtx.chain(optax.clip_by_global_norm(max_norm), optax.scale_by_adam(), optax.scale(-lr))
    theirs = optax.chain(optax.clip_by_global_norm(max_norm), optax.scale_by_adam(), optax.scale(-lr))
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax does not run under strict promotion
        for _ in range(3):
            u_ours, s_ours = ours.update(grads, s_ours, params)
            u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
            chex_equal = jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), u_ours, u_theirs)
            del chex_equal
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_theirs)


def test_gradtx_transforms_work_inside_optax_chain():
    params = {"w": jnp.ones(3, jnp.float32)}
    tx = optax.chain(counting_scale(2.0), optax.scale(-1.0))
    state = tx.init(params)
    updates, state = tx.update(params, state, params)
    np.testing.assert_allclose(updates["w"], -2.0)


@pytest.mark.parametrize(
    "combinator",
    [
        lambda tx: optax.chain(optax.sgd(1.0), tx),
        lambda tx: optax.masked(tx, {"w": True}),
        lambda tx: optax.MultiSteps(tx, 1).gradient_transformation(),
    ],
    ids=["chain", "masked", "MultiSteps"],
)
def test_gradtx_extra_args_transforms_inside_optax_combinators_via_as_optax(combinator):
    # optax passes `value=` only to its own extra-arguments type: unwrapped, gradtx's plateau
    # raises that `value` is missing (and says to wrap it); wrapped, it gets it.
    params = {"w": jnp.ones(2, jnp.float32)}
    with jax.numpy_dtype_promotion("standard"):  # optax mixes dtypes inside MultiSteps
        plain = combinator(gradtx.reduce_on_plateau(patience=1, factor=0.5))
        with pytest.raises(TypeError, match=r"missing the required extra argument.*gradtx\.compat\.as_optax"):
            plain.update(params, plain.init(params), params, value=jnp.asarray(1.0))
        wrapped = combinator(gradtx.compat.as_optax(gradtx.reduce_on_plateau(patience=1, factor=0.5)))
        state = wrapped.init(params)
        for value in (1.0, 2.0, 2.0):  # no improvement after the first: the scale halves twice
            updates, state = wrapped.update(params, state, params, value=jnp.asarray(value))
    np.testing.assert_allclose(np.abs(np.asarray(updates["w"])), 0.25)


def test_optax_extra_args_transform_inside_gradtx_chain_receives_them():
    seen = []

    def update(updates, state, params=None, *, value):
        seen.append(value)
        return updates, state

    extra = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)
    tx = gradtx.chain(optax.scale(1.0), extra)
    params = {"w": jnp.ones(1)}
    tx.update(params, tx.init(params), params, value=3.0)
    assert seen == [3.0]


def test_chain_rejects_non_transform_naming_position():
    with pytest.raises(TypeError, match="chain: argument 1"):
        gradtx.chain(gradtx.identity(), "adam")


def test_chain_rejects_foreign_state():
    tx = gradtx.chain(gradtx.identity(), gradtx.identity())
    with pytest.raises(ValueError, match="state tuple of 2"):
        tx.update({"w": jnp.ones(1)}, (gradtx.EmptyState(),))


def test_empty_chain_is_identity():
    tx = gradtx.chain()
    params = {"w": jnp.ones(2)}
    updates, state = tx.update(params, tx.init(params))
    assert updates is params and state == ()


def test_named_chain_state_is_keyed_and_matches_chain():
    params = {"w": jnp.arange(3.0, dtype=jnp.float32)}
    named = gradtx.named_chain(("first", counting_scale(2.0)), ("second", counting_scale(0.5)))
    plain = gradtx.chain(counting_scale(2.0), counting_scale(0.5))
    s_named, s_plain = named.init(params), plain.init(params)
    assert set(s_named) == {"first", "second"}
    for _ in range(2):
        u_named, s_named = named.update(params, s_named, params, value=1.0)
        u_plain, s_plain = plain.update(params, s_plain, params, value=1.0)
        np.testing.assert_array_equal(u_named["w"], u_plain["w"])


def test_named_chain_errors():
    with pytest.raises(ValueError, match="used twice"):
        gradtx.named_chain(("a", gradtx.identity()), ("a", gradtx.identity()))
    with pytest.raises(TypeError, match="argument 0"):
        gradtx.named_chain(gradtx.identity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"argument 1 \('b'\)"):
        gradtx.named_chain(("a", gradtx.identity()), ("b", 1))
    tx = gradtx.named_chain(("a", gradtx.identity()))
    with pytest.raises(ValueError, match="keys"):
        tx.update({}, {"b": gradtx.EmptyState()})
