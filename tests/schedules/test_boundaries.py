"""Joined schedules with a jump, evaluated exactly at each boundary step and one step either side.

At a boundary ``b`` the next schedule takes over with its step counted from ``b``: the value at
``b`` is the next schedule's first value, not the previous one's last. The expected values come
from the closed forms, for integer and float steps, eager and jitted.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _cosine_cycle(t: float, init: float, peak: float, warmup: int, decay_steps: int, end: float) -> float:
    """Warmup from ``init`` to ``peak`` over ``warmup`` steps, then cosine to ``end`` at ``decay_steps``."""
    if t < warmup:
        return init + (peak - init) * t / warmup
    frac = min((t - warmup) / (decay_steps - warmup), 1.0)
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * frac))


def _evaluations(schedule, steps):
    jitted = jax.jit(schedule)
    for t in steps:
        for step in (t, jnp.asarray(t, jnp.int32), jnp.asarray(float(t), jnp.float32)):
            yield t, float(schedule(step)), float(jitted(step))


def test_join_schedules_jumps_exactly_at_the_boundaries() -> None:
    # 1.0 until step 10; then 5.0 falling by 0.5 a step (from its own step 0); then 0.25 from step 14.
    schedule = gradtx.join_schedules(
        [gradtx.constant_schedule(1.0), gradtx.linear_schedule(5.0, 0.0, 10), gradtx.constant_schedule(0.25)],
        boundaries=[10, 14],
    )
    expected = {0: 1.0, 9: 1.0, 10: 5.0, 11: 4.5, 13: 3.5, 14: 0.25, 15: 0.25}
    for t, eager, jitted in _evaluations(schedule, expected):
        assert eager == pytest.approx(expected[t], abs=1e-6), t
        assert jitted == pytest.approx(expected[t], abs=1e-6), t


def test_join_schedules_with_a_boundary_at_zero() -> None:
    schedule = gradtx.join_schedules([gradtx.constant_schedule(1.0), gradtx.linear_schedule(2.0, 0.0, 4)], [0])
    assert [float(schedule(t)) for t in (0, 1)] == pytest.approx([2.0, 1.5])


CYCLES = [
    dict(init_value=0.1, peak_value=1.0, warmup_steps=4, decay_steps=20, end_value=0.05),
    dict(init_value=0.3, peak_value=0.6, warmup_steps=2, decay_steps=30, end_value=0.2),
    dict(init_value=0.0, peak_value=0.4, warmup_steps=0, decay_steps=10, end_value=0.0),
]


@pytest.mark.parametrize("t", [0, 3, 4, 19, 20, 21, 22, 49, 50, 51, 59, 60, 65])
def test_sgdr_restarts_exactly_at_each_cycle_end(t: int) -> None:
    schedule = gradtx.sgdr_schedule(CYCLES)
    start, cycle = 0, CYCLES[0]
    for c in CYCLES:
        if t < start + c["decay_steps"] or c is CYCLES[-1]:
            cycle = c
            break
        start += c["decay_steps"]
    want = _cosine_cycle(
        t - start,
        cycle["init_value"],
        cycle["peak_value"],
        cycle["warmup_steps"],
        cycle["decay_steps"],
        cycle["end_value"],
    )
    for _, eager, jitted in _evaluations(schedule, [t]):
        np.testing.assert_allclose([eager, jitted], [want, want], rtol=1e-6, atol=1e-7, err_msg=f"step {t}")


def test_sgdr_boundaries_are_jumps() -> None:
    """The values either side of each restart differ a lot, so an off-by-one would be seen."""
    schedule = gradtx.sgdr_schedule(CYCLES)
    for b in (20, 50):
        assert abs(float(schedule(b)) - float(schedule(b - 1))) > 0.05
