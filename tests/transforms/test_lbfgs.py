"""L-BFGS and the line searches: optima against scipy, trajectories against optax, the two-loop
direction against an explicit float64 NumPy inverse-Hessian recursion, Armijo on accepted steps,
and the errors for missing extra arguments and bad hyperparameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import gradtx

# --- objectives --------------------------------------------------------------------------------------


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


_rng = np.random.default_rng(0)
_X = _rng.normal(size=(80, 4))
_Y = (_X @ np.array([1.5, -2.0, 0.5, 1.0]) + 0.3 + _rng.normal(size=80) > 0).astype(np.float64)
_REG = 1e-2


def logistic(params, x, y):
    logits = x @ params["w"] + params["b"]
    nll = jnp.mean(jax.nn.softplus(logits) - y * logits)
    return nll + 0.5 * _REG * (jnp.sum(params["w"] ** 2) + params["b"] ** 2)


def _logistic_data(dtype):
    return jnp.asarray(_X, dtype), jnp.asarray(_Y, dtype)


def _logistic_init(dtype):
    return {"w": jnp.zeros(4, dtype), "b": jnp.zeros([], dtype)}


# --- a jitted while_loop training loop ---------------------------------------------------------------


def minimize(lib, solver, fun, params, *, max_steps, gtol, fn_kwargs=None):
    """Runs ``solver`` until the gradient norm drops below ``gtol``, in one jitted ``lax.while_loop``."""
    fn_kwargs = fn_kwargs or {}
    value_and_grad = lib.value_and_grad_from_state(fun)

    def cond(carry):
        _, state, k = carry
        grad = _state_grad(state)
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad)))
        return (k == 0) | ((k < max_steps) & (norm >= gtol))

    def body(carry):
        p, state, k = carry
        value, grad = value_and_grad(p, state=state, **fn_kwargs)
        updates, state = solver.update(
            updates=grad, state=state, params=p, value=value, grad=grad, value_fn=fun, **fn_kwargs
        )
        return lib.apply_updates(p, updates), state, k + 1

    @jax.jit
    def run(p):
        return jax.lax.while_loop(cond, body, (p, solver.init(p), jnp.zeros([], jnp.int32)))

    p, _, k = run(params)
    return p, int(k)


def _state_grad(state):
    return state[-1].grad


def trajectory(lib, solver, fun, params, steps, fn_kwargs=None):
    """The params after each of ``steps`` updates (one jitted ``lax.scan``)."""
    fn_kwargs = fn_kwargs or {}

    def step(carry, _):
        p, state = carry
        value, grad = jax.value_and_grad(fun)(p, **fn_kwargs)
        updates, state = solver.update(grad, state, p, value=value, grad=grad, value_fn=fun, **fn_kwargs)
        p = lib.apply_updates(p, updates)
        return (p, state), p

    return jax.jit(lambda p: jax.lax.scan(step, (p, solver.init(p)), None, steps)[1])(params)


# --- optima against scipy ----------------------------------------------------------------------------


def test_lbfgs_zoom_minimises_rosenbrock_to_scipys_optimum():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3])
    ref = scipy.optimize.minimize(
        lambda x: float(rosenbrock(jnp.asarray(x))),
        x0,
        jac=lambda x: np.asarray(jax.grad(rosenbrock)(jnp.asarray(x))),
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 2000},
    )
    assert ref.success
    ours, steps = minimize(gradtx, gradtx.lbfgs(), rosenbrock, jnp.asarray(x0), max_steps=200, gtol=1e-10)
    assert steps < 200
    np.testing.assert_allclose(np.asarray(ours), ref.x, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(ours), np.ones(5), atol=1e-5, rtol=0)


def test_lbfgs_zoom_minimises_logistic_regression_to_scipys_optimum():
    x, y = _logistic_data(jnp.float64)

    def flat(v):
        return logistic({"w": jnp.asarray(v[:4]), "b": jnp.asarray(v[4])}, x, y)

    ref = scipy.optimize.minimize(
        lambda v: float(flat(v)),
        np.zeros(5),
        jac=lambda v: np.asarray(jax.grad(flat)(jnp.asarray(v))),
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 1000},
    )
    assert ref.success
    ours, steps = minimize(
        gradtx,
        gradtx.lbfgs(),
        logistic,
        _logistic_init(jnp.float64),
        max_steps=100,
        gtol=1e-10,
        fn_kwargs={"x": x, "y": y},
    )
    assert steps < 100
    got = np.concatenate([np.asarray(ours["w"]), np.asarray(ours["b"])[None]])
    np.testing.assert_allclose(got, ref.x, atol=1e-5, rtol=0)


# --- trajectories against optax ----------------------------------------------------------------------


def _optax_trajectory(*args):
    # optax itself mixes int32/int64 and float32/float64 internally, which strict promotion rejects.
    with jax.numpy_dtype_promotion("standard"):
        return trajectory(optax, *args)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.lbfgs(),
        lambda lib: lib.lbfgs(
            memory_size=3,
            scale_init_precond=False,
            linesearch=lib.scale_by_zoom_linesearch(10, max_learning_rate=0.5, curv_rtol=0.5),
        ),
        lambda lib: lib.lbfgs(linesearch=lib.scale_by_backtracking_linesearch(30, store_grad=True)),
    ],
    ids=["default", "memory3-capped-zoom", "backtracking"],
)
def test_lbfgs_trajectory_matches_optax_float64(make):
    x, y = _logistic_data(jnp.float64)
    kw = {"x": x, "y": y}
    ours = trajectory(gradtx, make(gradtx), logistic, _logistic_init(jnp.float64), 15, kw)
    theirs = _optax_trajectory(make(optax), logistic, _logistic_init(jnp.float64), 15, kw)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_lbfgs_rosenbrock_trajectory_matches_optax_float64():
    x0 = jnp.array([-1.2, 1.0, -0.5, 0.8, 1.3], jnp.float64)
    ours = trajectory(gradtx, gradtx.lbfgs(), rosenbrock, x0, 40)
    theirs = _optax_trajectory(optax.lbfgs(), rosenbrock, x0, 40)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-10, atol=1e-10)


def test_lbfgs_float32_matches_optax_and_keeps_dtypes():
    x, y = _logistic_data(jnp.float32)
    kw = {"x": x, "y": y}
    ours = trajectory(gradtx, gradtx.lbfgs(), logistic, _logistic_init(jnp.float32), 12, kw)
    theirs = _optax_trajectory(optax.lbfgs(), logistic, _logistic_init(jnp.float32), 12, kw)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    state = gradtx.lbfgs().init(_logistic_init(jnp.float32))
    # The curvature weights in the widest enabled float (float64 here, under the suite's x64), as optax's.
    assert state[0].weights_memory.dtype == optax.lbfgs().init(_logistic_init(jnp.float32))[0].weights_memory.dtype
    assert state[0].weights_memory.dtype == jnp.float64 and state[2].value.dtype == jnp.float32


# --- the two-loop direction against an explicit float64 recursion ------------------------------------


def _explicit_direction(grads, params, m, scale_init):
    """``P_k g_k`` with ``P_k`` built as a matrix from the BFGS recursion over the last m pairs."""
    k = len(grads) - 1
    g = grads[-1]
    if k == 0:
        return min(1.0, 1.0 / np.linalg.norm(g)) * g if scale_init else g
    pairs = [(params[j + 1] - params[j], grads[j + 1] - grads[j]) for j in range(max(0, k - m), k)]
    s_last, y_last = pairs[-1]
    gamma = (s_last @ y_last) / (y_last @ y_last) if scale_init else 1.0
    n = g.shape[0]
    p = gamma * np.eye(n)
    for s, yv in pairs:
        rho = 1.0 / (yv @ s)
        v = np.eye(n) - rho * np.outer(yv, s)
        p = v.T @ p @ v + rho * np.outer(s, s)
    return p @ g


@pytest.mark.parametrize(("m", "scale_init"), [(2, True), (10, False)])
def test_scale_by_lbfgs_matches_explicit_inverse_hessian_recursion(m, scale_init):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    hess = a @ a.T + 4 * np.eye(4)
    tx = gradtx.scale_by_lbfgs(memory_size=m, scale_init_precond=scale_init)
    state = tx.init(jnp.zeros(4, jnp.float64))
    params, grads = [], []
    w = rng.normal(size=4)
    update = jax.jit(tx.update)
    for _ in range(6):
        g = hess @ w + 1.0
        params.append(w.copy())
        grads.append(g)
        direction, state = update(jnp.asarray(g), state, jnp.asarray(w))
        np.testing.assert_allclose(
            np.asarray(direction), _explicit_direction(grads, params, m, scale_init), rtol=1e-10, atol=1e-12
        )
        w = w - 0.1 * np.asarray(direction)
    assert int(state.count) == 6


def test_scale_by_lbfgs_state_and_abstract_init():
    params = {"a": jnp.ones((2, 3), jnp.float32), "b": jnp.ones([], jnp.float64)}
    tx = gradtx.scale_by_lbfgs(memory_size=4)
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params))
    state = tx.init(params)
    assert jax.tree.map(lambda s: (s.shape, s.dtype), abstract) == jax.tree.map(lambda s: (s.shape, s.dtype), state)
    assert state.diff_params_memory["a"].shape == (4, 2, 3) and state.count.dtype == jnp.int32
    assert type(state)._fields == optax.ScaleByLBFGSState._fields
    assert gradtx.ScaleByZoomLinesearchState._fields == optax.ScaleByZoomLinesearchState._fields
    assert gradtx.ZoomLinesearchInfo._fields == optax.ZoomLinesearchInfo._fields
    assert gradtx.ScaleByBacktrackingLinesearchState._fields == optax.ScaleByBacktrackingLinesearchState._fields


# --- backtracking ------------------------------------------------------------------------------------


def test_backtracking_accepted_steps_satisfy_armijo_and_match_optax():
    c = 0.3
    f = rosenbrock
    x = jnp.array([-1.2, 1.0, 0.3], jnp.float64)

    def run(lib):
        solver = lib.chain(lib.sgd(1.0), lib.scale_by_backtracking_linesearch(20, slope_rtol=c, decrease_factor=0.5))

        def step(carry, _):
            p, s = carry
            v, g = jax.value_and_grad(f)(p)
            u, s = solver.update(g, s, p, value=v, grad=g, value_fn=f)
            return (lib.apply_updates(p, u), s), (p, v, g, u, s[-1].learning_rate, s[-1].info.decrease_error)

        return jax.jit(lambda p: jax.lax.scan(step, (p, solver.init(p)), None, 30)[1])(x)

    ps, vs, gs, us, lrs, errs = (np.asarray(t) for t in run(gradtx))
    assert np.all(errs == 0) and np.all(lrs > 0)
    for p, v, g, u in zip(ps, vs, gs, us):  # u = lr * (-g); Armijo: f(p + u) <= f(p) + c <u, g>
        assert float(f(jnp.asarray(p + u))) <= v + c * (u @ g) + 1e-12
    with jax.numpy_dtype_promotion("standard"):
        theirs = run(optax)
    np.testing.assert_allclose(ps, np.asarray(theirs[0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lrs, np.asarray(theirs[4]), rtol=1e-12)


def test_backtracking_first_guess_and_value_fn_kwargs():
    def f(w, target):
        return jnp.sum((w - target) ** 2)

    tx = gradtx.scale_by_backtracking_linesearch(10, increase_factor=2.0, max_learning_rate=0.7, store_grad=True)
    w = jnp.array([1.0, -2.0], jnp.float64)
    target = jnp.array([0.5, 0.5], jnp.float64)
    state = tx.init(w)
    v, g = jax.value_and_grad(f)(w, target)
    u, state = tx.update(-g, state, w, value=v, grad=g, value_fn=f, target=target)
    # Armijo on a quadratic with u = -g holds for every eta <= 1 - c, so the capped guess is kept.
    assert float(state.learning_rate) == pytest.approx(0.7)
    np.testing.assert_allclose(np.asarray(u), -0.7 * np.asarray(g))
    np.testing.assert_allclose(np.asarray(state.grad), np.asarray(jax.grad(f)(w + u, target)))
    vg = gradtx.value_and_grad_from_state(f)
    v2, g2 = vg(w + u, target, state=state)
    assert float(v2) == pytest.approx(float(f(w + u, target)))
    np.testing.assert_allclose(np.asarray(g2), np.asarray(state.grad))


def test_value_and_grad_from_state_computes_on_first_step_and_needs_a_grad():
    f = lambda w: jnp.sum(w**2)
    w = jnp.array([1.0, 2.0], jnp.float64)
    vg = gradtx.value_and_grad_from_state(f)
    v, g = vg(w, state=gradtx.lbfgs().init(w))  # the stored value is +inf: computed
    assert float(v) == 5.0
    np.testing.assert_allclose(np.asarray(g), [2.0, 4.0])
    with pytest.raises(ValueError, match="grad"):
        vg(w, state=gradtx.scale_by_backtracking_linesearch(5).init(w))
    with pytest.raises(ValueError, match="exactly one `value`"):
        vg(w, state=(gradtx.lbfgs().init(w), gradtx.lbfgs().init(w)))


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: gradtx.scale_by_zoom_linesearch(5), lambda: gradtx.scale_by_backtracking_linesearch(5)],
    ids=["zoom", "backtracking"],
)
def test_missing_extra_args_are_named(make):
    f = lambda w: jnp.sum(w**2)
    w = jnp.array([1.0, 2.0], jnp.float32)
    tx = make()
    state = tx.init(w)
    full = {"value": f(w), "grad": 2 * w, "value_fn": f}
    for missing in ("value", "grad", "value_fn"):
        kwargs = {k: v for k, v in full.items() if k != missing}
        with pytest.raises(TypeError, match=rf"extra argument\(s\) `{missing}`"):
            tx.update(2 * w, state, w, **kwargs)
    with pytest.raises(TypeError, match=r"`value`, `grad`, `value_fn`"):
        tx.update(2 * w, state, w)
    with pytest.raises(TypeError, match="not accepted by `value_fn`"):
        tx.update(2 * w, state, w, batch=1.0, **full)
    with pytest.raises(ValueError, match="params"):
        tx.update(2 * w, state, None, **full)


def test_lbfgs_names_a_missing_extra_arg():
    w = jnp.array([1.0, 2.0], jnp.float32)
    tx = gradtx.lbfgs()
    with pytest.raises(TypeError, match=r"extra argument\(s\) `value_fn`"):
        jax.eval_shape(lambda p: tx.update(p, tx.init(p), p, value=jnp.sum(p), grad=p), w)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: gradtx.scale_by_lbfgs(memory_size=0), "memory_size"),
        (lambda: gradtx.lbfgs(memory_size=0), "memory_size"),
        (lambda: gradtx.scale_by_backtracking_linesearch(-1), "max_backtracking_steps"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, slope_rtol=1.0), "slope_rtol"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, decrease_factor=1.0), "decrease_factor"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, increase_factor=0.5), "increase_factor"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, max_learning_rate=0.0), "max_learning_rate"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, atol=-1.0), "atol"),
        (lambda: gradtx.scale_by_backtracking_linesearch(5, rtol=-1.0), "rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(0), "max_linesearch_steps"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, max_learning_rate=-1.0), "max_learning_rate"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, tol=-1.0), "tol"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, increase_factor=1.0), "increase_factor"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, slope_rtol=-0.1), "slope_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, curv_rtol=0.0), "curv_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, approx_dec_rtol=-1.0), "approx_dec_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, stepsize_precision=-1.0), "stepsize_precision"),
        (lambda: gradtx.scale_by_zoom_linesearch(5, initial_guess_strategy="two"), "initial_guess_strategy"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_wrongly_typed_arguments():
    with pytest.raises(TypeError, match="`memory_size`"):
        gradtx.scale_by_lbfgs(memory_size=2.5)  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="`store_grad`"):
        gradtx.scale_by_backtracking_linesearch(5, store_grad=1)  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="`value_fn`"):
        gradtx.value_and_grad_from_state(3.0)  # pyright: ignore[reportArgumentType]
    w = jnp.ones(2, jnp.float64)
    tx = gradtx.lbfgs()
    with pytest.raises(ValueError, match="structure"):
        tx.update({"a": w}, tx.init(w), w, value=1.0, grad=w, value_fn=jnp.sum)


def test_a_state_restored_as_numpy_arrays_steps_like_the_original():
    # flax.serialization.from_bytes without a typed target gives NumPy leaves, which lack `.at`.
    params = {"w": jnp.array([1.0, 2.0])}

    def f(q):
        return jnp.sum(q["w"] ** 2)

    tx = gradtx.lbfgs()
    value, grad = jax.value_and_grad(f)(params)
    state = tx.init(params)
    want, _ = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
    got, _ = tx.update(grad, jax.tree.map(np.asarray, state), params, value=value, grad=grad, value_fn=f)
    np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(want["w"]))
