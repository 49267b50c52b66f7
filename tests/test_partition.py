"""partition / multi_transform: groups against float64 references, allocation, errors, nesting under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def adam_ref_step(g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), m, v


def _params():
    return {
        "enc": {"w": jnp.array([0.5, -1.0, 2.0], jnp.float64), "b": jnp.array([0.1], jnp.float64)},
        "head": {"w": jnp.array([1.5, 0.2], jnp.float64)},
    }


def test_groups_against_reference_and_frozen_group_allocates_nothing():
    labels = {"enc": {"w": "adam", "b": "sgd"}, "head": "frozen"}  # "head" is a prefix label
    tx = gradtx.partition({"adam": gradtx.adam(0.01), "sgd": gradtx.sgd(0.1), "frozen": gradtx.set_to_zero()}, labels)
    params = _params()
    state = tx.init(params)
    assert isinstance(state, gradtx.PartitionState) and gradtx.MultiTransformState is gradtx.PartitionState
    assert jax.tree.leaves(state.inner_states["frozen"]) == []
    # the adam group's moments cover enc/w only
    assert sum(x.size for x in jax.tree.leaves(state.inner_states["adam"])) == 1 + 3 + 3
    p = jax.tree.map(np.asarray, params)
    m = v = np.zeros(3)
    step = jax.jit(tx.update)
    for t in range(1, 51):
        grads = jax.tree.map(lambda x: x * x - jnp.sin(x), params)
        updates, state = step(grads, state, params)
        params = gradtx.apply_updates(params, updates)
        g = jax.tree.map(lambda x: x * x - np.sin(x), p)
        u, m, v = adam_ref_step(g["enc"]["w"], m, v, t, 0.01)
        p = {"enc": {"w": p["enc"]["w"] + u, "b": p["enc"]["b"] - 0.1 * g["enc"]["b"]}, "head": p["head"]}
    for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(p)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(params["head"]["w"]), [1.5, 0.2])


def test_callable_labels_and_alias():
    assert gradtx.multi_transform is gradtx.partition
    label_fn = lambda tree: jax.tree.map(lambda x: "vec" if x.ndim == 1 else "scalar", tree)
    tx = gradtx.multi_transform({"vec": gradtx.sgd(1.0), "scalar": gradtx.set_to_zero()}, label_fn)
    params = {"a": jnp.ones(2, jnp.float32), "s": jnp.ones((), jnp.float32)}
    updates, _ = tx.update({"a": jnp.ones(2, jnp.float32), "s": jnp.ones((), jnp.float32)}, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(updates["a"]), -1.0)
    assert float(updates["s"]) == 0.0
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params))
    assert isinstance(abstract, gradtx.PartitionState)


def test_label_and_structure_errors():
    params = _params()
    tx = gradtx.partition(
        {"adam": gradtx.adam(0.1), "unused_one": gradtx.sgd(0.1)}, {"enc": {"w": "adam", "b": "typo"}, "head": "adam"}
    )
    with pytest.raises(ValueError, match=r"\['typo'\] name no transform.*no label uses: \['unused_one'\]"):
        tx.init(params)
    tx = gradtx.partition({"a": gradtx.sgd(0.1)}, {"enc": "a", "decoder": "a"})
    with pytest.raises(ValueError, match=r"\['decoder'\]"):
        tx.init(params)
    with pytest.raises(TypeError, match="mapping"):
        gradtx.partition([gradtx.sgd(0.1)], "a")  # type: ignore[arg-type]
    # A transform that no label uses is allowed (optax accepts it too).
    ok = gradtx.partition({"a": gradtx.sgd(0.1), "spare": gradtx.sgd(1.0)}, "a")
    ok.update(jax.tree.map(jnp.ones_like, params), ok.init(params), params)


def test_masked_mismatch_shows_path():
    params = _params()
    tx = gradtx.masked(gradtx.sgd(0.1), {"enc": {"w": True, "bias": False}, "head": True})
    with pytest.raises(ValueError, match=r"\['enc'\]\['bias'\]"):
        tx.init(params)


def test_nesting_masked_in_partition_in_multisteps_under_inject_under_jit():
    k, lr = 3, 0.01
    mask = {"enc": {"w": True, "b": False}, "head": {"w": True}}
    labels = {"enc": "train", "head": "frozen"}

    def factory(learning_rate):
        groups = gradtx.partition(
            {"train": gradtx.masked(gradtx.adam(learning_rate), mask), "frozen": gradtx.set_to_zero()}, labels
        )
        return gradtx.MultiSteps(groups, every_k_schedule=k, accumulator_dtype=None).gradient_transformation()

    tx = gradtx.inject_hyperparams(factory)(learning_rate=lr)
    params = _params()
    state = tx.init(params)
    assert float(state.hyperparams["learning_rate"]) == lr

    @jax.jit
    def micro_step(params, state, scale):
        grads = jax.tree.map(lambda x: scale * (x * x - jnp.sin(x)), params)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    p = jax.tree.map(np.asarray, params)
    m = v = np.zeros(3)
    scales = [1.0, 0.5, 2.0]
    for t in range(1, 9):
        for s in scales:
            params, state = micro_step(params, state, jnp.float64(s))
        g = jax.tree.map(lambda x: np.mean(scales) * (x * x - np.sin(x)), p)
        u, m, v = adam_ref_step(g["enc"]["w"], m, v, t, lr)
        # enc/b is masked out of adam inside the "train" group: the mean gradient passes through.
        p = {"enc": {"w": p["enc"]["w"] + u, "b": p["enc"]["b"] + g["enc"]["b"]}, "head": p["head"]}
        for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(p)):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)
    assert int(state.inner_state.gradient_step) == 8
