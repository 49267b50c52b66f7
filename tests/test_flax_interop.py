"""gradtx optimizers drop into Flax's training utilities: linen's TrainState and NNX's Optimizer."""

import jax
import jax.numpy as jnp
import pytest

import gradtx

nnx = pytest.importorskip("flax.nnx", reason="flax is a dev extra")
linen = pytest.importorskip("flax.linen")
train_state = pytest.importorskip("flax.training.train_state")

X = jnp.asarray([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [2.0, 0.0, -1.0], [1.0, 1.0, 1.0]], jnp.float32)
Y = jnp.asarray([[1.0], [0.0], [2.0], [1.0]], jnp.float32)


def test_linen_train_state_with_gradtx_adamw():
    class Model(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.Dense(1, param_dtype=jnp.float32)(x)

    model = Model()
    params = model.init(jax.random.key(0), X)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=gradtx.adamw(0.05))

    def loss(p):
        return jnp.mean((model.apply(p, X) - Y) ** 2)

    first = float(loss(state.params))
    step = jax.jit(lambda s: s.apply_gradients(grads=jax.grad(loss)(s.params)))
    for _ in range(30):
        state = step(state)
    assert float(loss(state.params)) < 0.5 * first
    assert int(state.step) == 30


def test_nnx_optimizer_with_gradtx_chain():
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float32)

        def __call__(self, x):
            return self.dense(x)

    model = Model(nnx.Rngs(0))
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(0.05))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    def loss_fn(m):
        return jnp.mean((m(X) - Y) ** 2)

    @nnx.jit
    def step(m, opt):
        value, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return value

    first = float(step(model, optimizer))
    for _ in range(30):
        last = float(step(model, optimizer))
    assert last < 0.5 * first
