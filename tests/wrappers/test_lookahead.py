"""lookahead against a float64 NumPy reference of Zhang et al. (2019), Algorithm 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def lookahead_reference(theta0, grad_fn, steps, lr, k, alpha, momentum=None, reset=False):
    """Slow weights phi, fast weights theta; fast optimizer: SGD (optionally heavy-ball)."""
    phi, theta = theta0.copy(), theta0.copy()
    buf = np.zeros_like(theta0)
    traj = []
    for t in range(steps):
        g = grad_fn(theta)
        if momentum is None:
            step = g
        else:
            buf = momentum * buf + g
            step = buf
        theta = theta - lr * step
        if (t + 1) % k == 0:
            phi = phi + alpha * (theta - phi)
            theta = phi.copy()
            if reset:
                buf = np.zeros_like(theta0)
        traj.append((theta.copy(), phi.copy()))
    return traj


@pytest.mark.parametrize("momentum,reset", [(None, False), (0.9, False), (0.9, True)])
def test_lookahead_trajectory(momentum, reset):
    a = np.array([1.0, 3.0, 0.5])
    grad_fn = lambda x: a * x + np.sin(x)  # param-dependent gradients
    theta0 = np.array([1.0, -2.0, 0.7])
    steps, k, alpha, lr = 50, 5, 0.5, 0.1
    ref = lookahead_reference(theta0, grad_fn, steps, lr, k, alpha, momentum, reset)
    tx = gradtx.lookahead(gradtx.sgd(lr, momentum=momentum), sync_period=k, slow_step_size=alpha, reset_state=reset)
    params = gradtx.LookaheadParams.init_synced(jnp.asarray(theta0, jnp.float64))
    state = tx.init(params)
    aj = jnp.asarray(a, jnp.float64)

    @jax.jit
    def run(params, state):
        def body(carry, _):
            params, state = carry
            g = aj * params.fast + jnp.sin(params.fast)
            updates, state = tx.update(g, state, params)
            params = gradtx.apply_updates(params, updates)
            return (params, state), (params.fast, params.slow)

        return jax.lax.scan(body, (params, state), None, length=steps)

    (_, state), (fast, slow) = run(params, state)
    np.testing.assert_allclose(np.asarray(fast), np.stack([r[0] for r in ref]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(slow), np.stack([r[1] for r in ref]), rtol=1e-12, atol=1e-14)
    assert int(state.steps_since_sync) == steps % k


def test_state_and_errors():
    assert gradtx.LookaheadState._fields == ("fast_state", "steps_since_sync")
    assert gradtx.LookaheadParams._fields == ("fast", "slow")
    tx = gradtx.lookahead(gradtx.sgd(0.1), 2, 0.5)
    plain = jnp.zeros(2, jnp.float32)
    state = tx.init(plain)  # plain params are taken as the fast copy
    with pytest.raises(TypeError, match="LookaheadParams"):
        tx.update(jnp.ones(2, jnp.float32), state, plain)
    with pytest.raises(ValueError, match="sync_period"):
        gradtx.lookahead(gradtx.sgd(0.1), 0, 0.5)
    with pytest.raises(ValueError, match="slow_step_size"):
        gradtx.lookahead(gradtx.sgd(0.1), 2, 1.5)


@pytest.mark.parametrize("alpha", [0.3, 0.8, 0.0, 1.0])
def test_lookahead_interpolates_towards_the_fast_weights(alpha):
    """With alpha != 0.5 the direction of the interpolation is visible: the slow weights move by
    ``alpha * (fast - slow)``, not ``(1 - alpha) * (fast - slow)``; float64 reference, two syncs."""
    a = np.array([1.0, 3.0, 0.5])
    grad_fn = lambda x: a * x + np.sin(x)
    theta0 = np.array([1.0, -2.0, 0.7])
    steps, k, lr = 7, 3, 0.1
    ref = lookahead_reference(theta0, grad_fn, steps, lr, k, alpha)
    tx = gradtx.lookahead(gradtx.sgd(lr), sync_period=k, slow_step_size=alpha)
    params = gradtx.LookaheadParams.init_synced(jnp.asarray(theta0, jnp.float64))
    state = tx.init(params)
    for t in range(steps):
        g = jnp.asarray(a) * params.fast + jnp.sin(params.fast)
        updates, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, updates)
        np.testing.assert_allclose(np.asarray(params.fast), ref[t][0], rtol=1e-12, atol=1e-14, err_msg=f"fast {t}")
        np.testing.assert_allclose(np.asarray(params.slow), ref[t][1], rtol=1e-12, atol=1e-14, err_msg=f"slow {t}")
    # After the first sync (step 3) the slow weights sit alpha of the way from theta0 to the fast ones.
    fast_before_sync = theta0.copy()
    for _ in range(k):
        fast_before_sync = fast_before_sync - lr * grad_fn(fast_before_sync)
    np.testing.assert_allclose(ref[k - 1][1], theta0 + alpha * (fast_before_sync - theta0), rtol=1e-12)
