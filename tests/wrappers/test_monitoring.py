"""snapshot, monitor and measure_with_ema against hand-written references."""

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


def test_snapshot_records_norm_before_next_transform():
    tx = gradtx.chain(gradtx.snapshot("norm", gradtx.global_norm), gradtx.sgd(0.5))
    params = {"w": jnp.array([3.0, 4.0], jnp.float64)}
    state = tx.init(params)
    assert float(state[0].measurement["norm"]) == 5.0  # init measures the params
    u, state = jax.jit(tx.update)({"w": jnp.array([6.0, 8.0], jnp.float64)}, state, params)
    assert float(state[0].measurement["norm"]) == 10.0
    np.testing.assert_array_equal(np.asarray(u["w"]), [-3.0, -4.0])
    assert gradtx.SnapshotState._fields == ("measurement",)


def test_monitor_with_ema_reference():
    decay, thresh = 0.9, 1.0
    tx = gradtx.monitor(
        {
            "norm": gradtx.global_norm,
            "clipped_ema": gradtx.measure_with_ema(lambda u: gradtx.global_norm(u) > thresh, decay),
        }
    )
    params = {"w": jnp.zeros(2, jnp.float64)}
    state = tx.init(params)
    # The measurements' structure is fixed at init (zeros), so a jitted step compiles once.
    assert jax.tree.structure(state.measurements) == jax.tree.structure({"norm": 0.0, "clipped_ema": 0.0})
    assert float(state.measurements["norm"]) == 0.0 and state.measurements["norm"].dtype == jnp.float64
    assert state.measurements["clipped_ema"].dtype == jnp.float32  # booleans are averaged as float32
    traces = []
    step = jax.jit(lambda g, s, p: (traces.append(1), tx.update(g, s, p))[1])
    ema = 0.0
    for t, x in enumerate([0.5, 2.0, 3.0, 0.1, 5.0], start=1):
        g = {"w": jnp.array([x, 0.0], jnp.float64)}
        u, state = step(g, state, params)
        np.testing.assert_array_equal(np.asarray(u["w"]), np.asarray(g["w"]))  # updates pass through
        ema = decay * ema + (1 - decay) * float(x > thresh)
        assert float(state.measurements["norm"]) == x
        np.testing.assert_allclose(float(state.measurements["clipped_ema"]), ema / (1 - decay**t), rtol=1e-6)
    assert len(traces) == 1  # the state after update has init's structure: no retrace
    assert gradtx.MonitorState._fields == ("measurements", "measure_states")
