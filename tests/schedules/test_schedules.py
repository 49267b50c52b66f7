"""Schedules: closed forms, torch.optim.lr_scheduler step for step, properties, and bad input."""

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx
from gradtx import schedules

N = 120


def values(schedule, n=N):
    """The schedule at steps 0..n-1, computed in one jitted vmap over a traced int32 step."""
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(n, dtype=jnp.int32)))


def eager_values(schedule, n=512):
    """Like :func:`values` without jit: each hypothesis example builds a new schedule, and op-by-op
    dispatch on a fixed shape reuses compiled kernels where a jit would compile every example."""
    assert n <= 512
    return np.asarray(jax.vmap(schedule)(jnp.arange(512, dtype=jnp.int32)))[:n]


def assert_rel(actual, expected, rtol):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)) * 1e-3)


# --- independent closed forms (float64 Python) -------------------------------------------------


def ref_polynomial(t, init, end, power, steps, begin=0):
    k = min(max(t - begin, 0), steps)
    return (init - end) * (1 - k / steps) ** power + end


def ref_exponential(t, init, steps, rate, begin=0, staircase=False, end=None):
    if t <= begin:
        v = init
    else:
        p = (t - begin) / steps
        exponent = math.floor(p) if staircase else p
        v = init * math.exp(min(exponent * math.log(rate), 700.0))
    if end is not None:
        v = max(v, end) if rate < 1 else min(v, end)
    return v


def ref_cosine(t, init, steps, alpha=0.0, exponent=1.0):
    c = 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    return init * ((1 - alpha) * c**exponent + alpha)


def ref_warmup_cosine(t, init, peak, warmup, total, end=0.0, exponent=1.0):
    if t < warmup:
        return init + (peak - init) * t / warmup
    length = total - warmup
    c = 0.5 * (1 + math.cos(math.pi * min(t - warmup, length) / length))
    return end + (peak - end) * c**exponent


def ref_restarts(t, init, t0, mult, end=0.0):
    start, length = (t // t0) * t0 if mult == 1 else 0, t0
    while t >= start + length:
        start, length = start + length, length * mult
    return end + (init - end) * 0.5 * (1 + math.cos(math.pi * (t - start) / length))


def ref_interp(t, knots, vals, kind):
    if t < knots[0]:
        return vals[0]
    for (b0, b1), (v0, v1) in zip(itertools.pairwise(knots), itertools.pairwise(vals)):
        if b0 <= t < b1:
            pct = (t - b0) / (b1 - b0)
            if kind == "linear":
                return v0 + (v1 - v0) * pct
            return v1 + (v0 - v1) * 0.5 * (1 + math.cos(math.pi * pct))
    return vals[-1]


CLOSED_FORMS = [
    (gradtx.constant_schedule(0.3), lambda t: 0.3),
    (gradtx.linear_schedule(1.0, 0.01, 50, 10), lambda t: ref_polynomial(t, 1.0, 0.01, 1, 50, 10)),
    (gradtx.polynomial_schedule(2.0, 0.1, 2.5, 70, 5), lambda t: ref_polynomial(t, 2.0, 0.1, 2.5, 70, 5)),
    (
        gradtx.piecewise_constant_schedule(1.0, {30: 0.5, 10: 0.1}),
        lambda t: 1.0 * (0.1 if t >= 10 else 1) * (0.5 if t >= 30 else 1),
    ),
    (gradtx.exponential_decay(1.0, 7, 0.8, 5, False, 0.2), lambda t: ref_exponential(t, 1.0, 7, 0.8, 5, False, 0.2)),
    (gradtx.exponential_decay(1.0, 9, 1.3, 0, True, 9.0), lambda t: ref_exponential(t, 1.0, 9, 1.3, 0, True, 9.0)),
    (gradtx.cosine_decay_schedule(0.5, 90, 0.1, 2.0), lambda t: ref_cosine(t, 0.5, 90, 0.1, 2.0)),
    (
        gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 15, 100, 0.05, 1.5),
        lambda t: ref_warmup_cosine(t, 0.0, 1.0, 15, 100, 0.05, 1.5),
    ),
    (gradtx.warmup_constant_schedule(0.1, 1.0, 20), lambda t: 0.1 + 0.9 * min(t, 20) / 20),
    (
        gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 8, 0.5, 4, True, 0.05),
        lambda t: t / 10 if t < 10 else ref_exponential(t - 10, 1.0, 8, 0.5, 4, True, 0.05),
    ),
    (
        gradtx.cosine_onecycle_schedule(100, 2.0),
        lambda t: ref_interp(t, [0, 30, 100], [0.08, 2.0, 0.08 / 1e4], "cosine"),
    ),
    (
        gradtx.linear_onecycle_schedule(100, 2.0, 0.25, 0.7, 10.0, 100.0),
        lambda t: ref_interp(t, [0, 25, 70, 100], [0.2, 2.0, 0.2, 0.002], "linear"),
    ),
    (
        gradtx.cosine_onecycle_momentum_schedule(100, 0.4),
        lambda t: ref_interp(t, [0, 40, 100], [0.95, 0.85, 0.95], "cosine"),
    ),
    (gradtx.linear_onecycle_momentum_schedule(100), lambda t: ref_interp(t, [0, 30, 85], [0.95, 0.85, 0.95], "linear")),
    (
        gradtx.piecewise_interpolate_schedule("linear", 1.0, {20: 0.5, 60: 0.1}),
        lambda t: ref_interp(t, [0, 20, 60], [1.0, 0.5, 0.05], "linear"),
    ),
    (
        gradtx.sgdr_schedule([{"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 40}] * 3),
        lambda t: ref_warmup_cosine(t - 40 * min(t // 40, 2), 0.0, 1.0, 5, 40),
    ),
    (gradtx.cosine_restarts_schedule(1.0, 10, 1, 0.1), lambda t: ref_restarts(t, 1.0, 10, 1, 0.1)),
    (gradtx.cosine_restarts_schedule(1.0, 5, 2), lambda t: ref_restarts(t, 1.0, 5, 2)),
    (gradtx.cosine_restarts_schedule(1.0, 4, 3), lambda t: ref_restarts(t, 1.0, 4, 3)),
    (
        gradtx.join_schedules([gradtx.constant_schedule(1.0), gradtx.linear_schedule(1.0, 0.0, 10)], [50]),
        lambda t: 1.0 if t < 50 else ref_polynomial(t - 50, 1.0, 0.0, 1, 10),
    ),
]


@pytest.mark.parametrize("index", range(len(CLOSED_FORMS)))
def test_closed_forms_float64(index):
    schedule, reference = CLOSED_FORMS[index]
    got = values(schedule)
    assert got.dtype == np.float64  # x64 is on in the tests
    assert_rel(got, [reference(t) for t in range(N)], rtol=1e-10)


def test_float32_without_x64_and_jit_equals_eager():
    s = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    eager = np.array([float(s(t)) for t in range(N)])
    np.testing.assert_allclose(values(s), eager, rtol=1e-12)
    with jax.enable_x64(False):
        v = jax.jit(s)(jnp.int32(37))
        assert v.dtype == jnp.float32
        np.testing.assert_allclose(float(v), ref_warmup_cosine(37, 0.0, 1.0, 10, 100), rtol=1e-6)


def test_schedules_namespace_mirrors_optax():
    optax = pytest.importorskip("optax")
    import inspect

    for name in [
        n for n in dir(optax.schedules) if not n.startswith("_") and n not in ("Schedule", "StatefulSchedule")
    ]:
        assert hasattr(schedules, name), name
        if inspect.isfunction(getattr(optax.schedules, name)):
            ours = inspect.signature(getattr(schedules, name)).parameters
            theirs = inspect.signature(getattr(optax.schedules, name)).parameters
            assert [(p.name, p.default) for p in ours.values()] == [(p.name, p.default) for p in theirs.values()]


def test_matches_optax_numbers():
    optax = pytest.importorskip("optax")
    pairs = [
        ("cosine_onecycle_schedule", (100, 1.0)),
        ("linear_onecycle_schedule", (100, 1.0)),
        ("piecewise_interpolate_schedule", ("cosine", 1.0, {4: 0.1, 8: 0.01, 9: 2.0})),
        ("warmup_cosine_decay_schedule", (0.0, 1.0, 10, 100, 0.05, 2.0)),
        ("exponential_decay", (2.0, 10, 1.5, 5, True, 7.0)),
    ]
    for name, args in pairs:
        ours = values(getattr(gradtx, name)(*args), 130)
        with jax.numpy_dtype_promotion("standard"):
            theirs = np.asarray(jax.vmap(getattr(optax, name)(*args))(jnp.arange(130, dtype=jnp.int32)))
        assert_rel(ours, theirs, rtol=1e-4)  # optax computes some of these in float32


# --- torch.optim.lr_scheduler, step for step --------------------------------------------------


def torch_lrs(make_scheduler, lr, n=N, **opt_kwargs):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=lr, **opt_kwargs)
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs, momenta = [], []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0].get("momentum", 0.0))
        opt.step()
        sched.step()
    return np.array(lrs), np.array(momenta)


TORCH_CASES = [
    ("StepLR", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), gradtx.exponential_decay(0.3, 7, 0.5, staircase=True)),
    (
        "MultiStepLR",
        lambda m, o: m.MultiStepLR(o, [10, 25, 60], 0.2),
        gradtx.piecewise_constant_schedule(0.3, {10: 0.2, 25: 0.2, 60: 0.2}),
    ),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, 0.97), gradtx.exponential_decay(0.3, 1, 0.97)),
    ("LinearLR", lambda m, o: m.LinearLR(o, 0.1, 0.8, 40), gradtx.linear_schedule(0.03, 0.24, 40)),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, 50, 2.0), gradtx.polynomial_schedule(0.3, 0.0, 2.0, 50)),
    (
        "CosineAnnealingLR",
        lambda m, o: m.CosineAnnealingLR(o, 100, 0.01),
        gradtx.cosine_decay_schedule(0.3, 100, 0.01 / 0.3),
    ),
    (
        "WarmRestarts",
        lambda m, o: m.CosineAnnealingWarmRestarts(o, 10, 1, 0.01),
        gradtx.cosine_restarts_schedule(0.3, 10, 1, 0.01),
    ),
    (
        "WarmRestartsMult",
        lambda m, o: m.CosineAnnealingWarmRestarts(o, 6, 2, 0.0),
        gradtx.cosine_restarts_schedule(0.3, 6, 2),
    ),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_lr_scheduler(case):
    _, make, ours = case
    n = 101 if case[0] == "CosineAnnealingLR" else N  # torch's cosine is compared within its first period
    assert_rel(values(ours, n), torch_lrs(make, 0.3, n)[0], rtol=1e-6)


@pytest.mark.parametrize("total,pct", [(100, 0.3), (200, 0.25), (50, 0.4)])
def test_onecycle_matches_torch_with_documented_arguments(total, pct):
    """torch's OneCycleLR(total_steps=T) is cosine_onecycle_schedule(T - 1, pct_start=(pct*T - 1)/(T - 1))."""
    make = lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, total_steps=total, pct_start=pct, div_factor=20.0, final_div_factor=50.0
    )
    lrs, momenta = torch_lrs(make, 0.5, total, momentum=0.9)
    pct_start = (pct * total - 1) / (total - 1)
    lr = gradtx.cosine_onecycle_schedule(total - 1, 0.5, pct_start, 20.0, 50.0)
    mom = gradtx.cosine_onecycle_momentum_schedule(total - 1, pct_start, 0.85, 0.95)
    assert_rel(values(lr, total), lrs, rtol=1e-6)
    assert_rel(values(mom, total), momenta, rtol=1e-6)


def test_linear_three_phase_onecycle_matches_torch():
    total, pct = 100, 0.3
    make = lambda m, o: m.OneCycleLR(
        o, 0.5, total_steps=total, pct_start=pct, anneal_strategy="linear", three_phase=True
    )
    lrs, momenta = torch_lrs(make, 0.5, total, momentum=0.9)
    args = (total - 1, (pct * total - 1) / (total - 1), (2 * pct * total - 2) / (total - 1))
    assert_rel(values(gradtx.linear_onecycle_schedule(args[0], 0.5, args[1], args[2]), total), lrs, rtol=1e-6)
    assert_rel(values(gradtx.linear_onecycle_momentum_schedule(*args), total), momenta, rtol=1e-6)


# --- properties --------------------------------------------------------------------------------

steps_st = st.integers(1, 400)
value_st = st.floats(1e-4, 10.0)


@settings(max_examples=12)
@given(init=value_st, end=value_st, power=st.floats(0.2, 4.0), steps=steps_st, begin=st.integers(0, 50))
def test_polynomial_monotone_and_exact_endpoints(init, end, power, steps, begin):
    v = eager_values(gradtx.polynomial_schedule(init, end, power, steps, begin), begin + steps + 5)
    d = np.diff(v) * np.sign(end - init)
    assert np.all(d >= -1e-12 * max(init, end))
    assert v[0] == pytest.approx(init, rel=1e-12) and v[begin] == pytest.approx(init, rel=1e-12)
    assert v[begin + steps] == pytest.approx(end, rel=1e-12) and v[-1] == pytest.approx(end, rel=1e-12)


@settings(max_examples=12)
@given(init=value_st, alpha=st.floats(0.0, 1.0), exponent=st.floats(0.5, 3.0), steps=steps_st)
def test_cosine_monotone_and_exact_endpoints(init, alpha, exponent, steps):
    v = eager_values(gradtx.cosine_decay_schedule(init, steps, alpha, exponent), steps + 5)
    assert np.all(np.diff(v) <= 1e-12 * init)
    assert v[0] == pytest.approx(init, rel=1e-12)
    assert v[steps] == pytest.approx(alpha * init, rel=1e-9, abs=1e-12)


@settings(max_examples=12)
@given(init=value_st, rate=st.floats(0.05, 0.99), steps=steps_st, staircase=st.booleans())
def test_exponential_decay_monotone(init, rate, steps, staircase):
    v = eager_values(gradtx.exponential_decay(init, steps, rate, staircase=staircase), 450)
    assert np.all(np.diff(v) <= 0) and v[0] == init
    assert v[steps] == pytest.approx(init * rate, rel=1e-9)


@settings(max_examples=12)
@given(
    init=st.floats(0.0, 1.0),
    peak=st.floats(1.0, 5.0),
    warmup=st.integers(1, 50),
    extra=steps_st,
    end=st.floats(0.0, 1.0),
)
def test_warmup_cosine_continuous_at_join_and_monotone_phases(init, peak, warmup, extra, end):
    s = gradtx.warmup_cosine_decay_schedule(init, peak, warmup, warmup + extra, end)
    v = eager_values(s, warmup + extra + 3)
    assert np.all(np.diff(v[: warmup + 1]) >= -1e-12) and np.all(np.diff(v[warmup:]) <= 1e-12)
    assert v[0] == pytest.approx(init, abs=1e-12) and v[warmup] == pytest.approx(peak, rel=1e-12)
    assert v[-1] == pytest.approx(end, abs=1e-12)
    # Continuity at the join: the left piece's limit equals the value at the boundary.
    left = float(s(jnp.float64(warmup - 1e-7)))
    assert left == pytest.approx(v[warmup], rel=1e-6)


@settings(max_examples=10)
@given(total=st.integers(10, 400), pct=st.floats(0.05, 0.95), peak=value_st)
def test_onecycle_continuous_peak_and_endpoints(total, pct, peak):
    s = gradtx.cosine_onecycle_schedule(total, peak, pct)
    v = eager_values(s, total + 2)
    top = int(pct * total)
    assert v[top] == pytest.approx(peak, rel=1e-12) and v.max() == pytest.approx(peak, rel=1e-12)
    assert v[0] == pytest.approx(peak / 25.0 if top > 0 else peak, rel=1e-12) and v[-1] == pytest.approx(
        peak / 25.0 / 1e4, rel=1e-9
    )
    assert np.all(np.diff(v[: top + 1]) >= -1e-12) and np.all(np.diff(v[top:]) <= 1e-12)
    if top > 0:
        assert float(s(jnp.float64(top - 1e-7))) == pytest.approx(peak, rel=1e-6)


@settings(max_examples=10)
@given(t0=st.integers(1, 30), mult=st.integers(1, 3), t=st.integers(0, 2000))
def test_restarts_restart_exactly(t0, mult, t):
    s = gradtx.cosine_restarts_schedule(1.0, t0, mult)
    assert float(s(jnp.int32(t))) == pytest.approx(ref_restarts(t, 1.0, t0, mult), rel=1e-9, abs=1e-12)
    starts = [t0 * (mult**k - 1) // (mult - 1) if mult > 1 else k * t0 for k in range(4)]
    assert np.allclose(eager_values(s)[starts], 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("index", range(len(CLOSED_FORMS)))
def test_finite_at_step_1e9(index):
    schedule, reference = CLOSED_FORMS[index]
    v64 = float(jax.jit(schedule)(jnp.int32(10**9)))
    with jax.enable_x64(False):
        v32 = float(jax.jit(schedule)(jnp.int32(10**9)))
    assert math.isfinite(v64) and math.isfinite(v32)
    assert v64 == pytest.approx(reference(10**9), rel=1e-6, abs=1e-9)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: gradtx.polynomial_schedule(1.0, 0.0, 2, 5, -1), "transition_begin"),
        (lambda: gradtx.linear_schedule(1.0, 0.0, float("nan")), "transition_steps"),
        (lambda: gradtx.exponential_decay(1.0, 10, -0.5), "decay_rate"),
        (lambda: gradtx.cosine_decay_schedule(1.0, 0), "decay_steps"),
        (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 100, 100), "warmup_steps"),
        (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, -1, 100), "warmup_steps"),
        (lambda: gradtx.warmup_constant_schedule(0.0, 1.0, 0), "warmup_steps"),
        (lambda: gradtx.piecewise_constant_schedule(1.0, {-3: 0.1}), "boundaries_and_scales"),
        (lambda: gradtx.piecewise_constant_schedule(1.0, {3: -0.1}), "boundaries_and_scales"),
        (lambda: gradtx.piecewise_interpolate_schedule("cubic", 1.0), "interpolate_type"),
        (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 3, [20, 10]), "boundaries"),
        (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 2, [-1]), "boundaries"),
        (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 2, [1, 2]), "boundaries"),
        (lambda: gradtx.cosine_onecycle_schedule(100, 1.0, pct_start=1.0), "pct_start"),
        (lambda: gradtx.cosine_onecycle_schedule(100, 1.0, pct_start=0.0), "pct_start"),
        (lambda: gradtx.cosine_onecycle_schedule(0, 1.0), "transition_steps"),
        (lambda: gradtx.linear_onecycle_schedule(100, 1.0, pct_start=0.5, pct_final=0.4), "pct_final"),
        (lambda: gradtx.cosine_onecycle_momentum_schedule(100, pct_start=1.5), "pct_start"),
        (lambda: gradtx.cosine_restarts_schedule(1.0, 10, 0.5), "T_mult"),
        (lambda: gradtx.cosine_restarts_schedule(1.0, 0), "T_0"),
        (lambda: gradtx.sgdr_schedule([]), "cosine_kwargs"),
    ],
)
def test_bad_input_names_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.linear_schedule(0.3, 0.0, 0),
        lambda lib: lib.polynomial_schedule(0.3, 0.0, 2, -5),
        lambda lib: lib.exponential_decay(0.3, 0, 0.5),
        lambda lib: lib.exponential_decay(0.3, 10, 0.0),
        lambda lib: lib.warmup_exponential_decay_schedule(0.0, 0.3, 0, 0, 0.5),
    ],
    ids=["linear", "polynomial", "exponential_steps", "exponential_rate", "warmup_exponential"],
)
def test_optax_documented_constant_schedules_warn(make: Any) -> None:
    """Where optax documents a constant ``init_value`` (annealing disabled), gradtx gives it, with a warning."""
    with pytest.warns(UserWarning, match="constant `init_value`"):
        schedule = make(gradtx)
    expected = make(optax)
    for step in (0, 1, 7, 1000):
        assert float(schedule(step)) == pytest.approx(float(expected(step)), rel=1e-7)
        assert float(schedule(step)) == pytest.approx(0.3, rel=1e-7)


def _reciprocal_misses(dtype: Any, count: int) -> list[int]:
    """Lengths ``T`` where ``n * T * fl(1 / T)`` falls below ``n`` for some ``n <= 5`` in ``dtype``:
    jitted, XLA divides by a constant through its rounded reciprocal."""
    out = []
    for t in range(2, 400):
        r = dtype(1) / dtype(t)
        if any(dtype(n * t) * r < n for n in range(1, 6)):
            out.append(t)
        if len(out) == count:
            return out
    raise AssertionError("no such length")


@pytest.mark.parametrize("x64", [False, True])
def test_ends_and_restarts_exact_when_jitted(x64):
    with jax.enable_x64(x64):
        for T in _reciprocal_misses(np.float64 if x64 else np.float32, 3):
            steps = jnp.arange(5 * T + 1)
            run = lambda s, steps=steps: np.asarray(jax.jit(jax.vmap(s))(steps), np.float64)
            at = np.arange(1, 6) * T
            # Held at the end value from the end on, not approaching it ever after.
            np.testing.assert_array_equal(run(gradtx.polynomial_schedule(1.0, 0.0, 0.5, T))[T:], 0.0)
            linear = run(gradtx.linear_schedule(1.0, 0.25, T))
            np.testing.assert_array_equal(linear[T:], 0.25)
            # A jump or a restart at each multiple of T, not a step late.
            stairs = run(gradtx.exponential_decay(1.0, T, 0.5, staircase=True))
            np.testing.assert_array_equal(stairs[at], 0.5 ** np.arange(1, 6))
            np.testing.assert_array_equal(run(gradtx.cosine_restarts_schedule(1.0, T))[at], 1.0)
            knots = run(gradtx.piecewise_interpolate_schedule("linear", 1.0, {T: 0.5, 3 * T: 0.25}))
            np.testing.assert_array_equal(knots[[T, 3 * T, 5 * T]], [0.5, 0.125, 0.125])  # scales multiply


def test_exponential_rate_one_ignores_end_value():
    s = gradtx.exponential_decay(1.0, 10, 1.0, end_value=0.1)
    np.testing.assert_array_equal(values(s, 30), 1.0)
