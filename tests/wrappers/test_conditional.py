"""conditionally_transform / conditionally_mask against hand-written references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _counting_scale():
    """inner: u = 2 * g, state counts its own calls (written out here)."""

    def init(params):
        return jnp.zeros([], jnp.int32)

    def update(updates, state, params=None, **extra_args):
        return jax.tree.map(lambda g: 2.0 * g, updates), state + 1

    return gradtx.GradientTransformation(init, update)


@pytest.mark.parametrize("masking", [False, True])
def test_runs_inner_only_when_condition_holds(masking):
    wrap = gradtx.conditionally_mask if masking else gradtx.conditionally_transform
    tx = wrap(_counting_scale(), lambda step: step % 3 == 0)
    params = jnp.zeros(2, jnp.float64)
    state = tx.init(params)
    step = jax.jit(tx.update)
    calls = 0
    for t in range(7):
        g = jnp.array([1.0, -t], jnp.float64)
        u, state = step(g, state, params)
        if t % 3 == 0:
            calls += 1
            np.testing.assert_array_equal(np.asarray(u), 2.0 * np.asarray(g))
        else:
            np.testing.assert_array_equal(np.asarray(u), 0.0 if masking else np.asarray(g))
        assert int(state.inner_state) == calls and int(state.step) == t + 1
    fields = ("step", "inner_state") if masking else ("inner_state", "step")
    assert type(state)._fields == fields


def test_forward_extra_args():
    cond = lambda step, loss: loss < 1.0
    tx = gradtx.conditionally_mask(_counting_scale(), cond, forward_extra_args=True)
    params = jnp.zeros(1, jnp.float32)
    state = tx.init(params)
    u, state = tx.update(jnp.ones(1, jnp.float32), state, params, loss=jnp.float32(5.0))
    assert float(u[0]) == 0.0
    u, state = tx.update(jnp.ones(1, jnp.float32), state, params, loss=jnp.float32(0.5))
    assert float(u[0]) == 2.0
    with pytest.raises(TypeError, match="should_transform_fn"):
        gradtx.conditionally_transform(_counting_scale(), 3)  # type: ignore[arg-type]
