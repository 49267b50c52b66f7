"""The zoom line search (strong Wolfe conditions), Nocedal & Wright Algorithms 3.5 and 3.6."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates
from gradtx.transforms import _tree_math as tm
from gradtx.transforms._linesearch import as_finite_error, check_bool, check_steps, linesearch_inputs
from gradtx.tree import _math as tree_math

__all__ = ["ScaleByZoomLinesearchState", "ZoomLinesearchInfo", "scale_by_zoom_linesearch"]


class ZoomLinesearchInfo(NamedTuple):
    """Diagnostics of the last zoom search.

    Attributes:
      num_linesearch_steps: int32 number of objective evaluations made.
      decrease_error: how far the returned step misses the sufficient-decrease criterion (0 = met).
      curvature_error: how far it misses the curvature criterion (0 = met; a positive value is
        benign when, e.g., ``max_learning_rate`` caps the step).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of :func:`scale_by_zoom_linesearch`.

    Attributes:
      learning_rate: the step size returned at the last update.
      value: the objective at the returned point (reusable via :func:`gradtx.value_and_grad_from_state`).
      grad: its gradient at that point (likewise reusable).
      info: :class:`ZoomLinesearchInfo`.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates
    info: ZoomLinesearchInfo


class _Point(NamedTuple):
    """A point on the search line: the step size, the objective there and its slope along the line."""

    step: jax.Array
    value: jax.Array
    slope: jax.Array


class _Search(NamedTuple):
    """The loop state: the last trial point, the bracketing interval and the best safe point."""

    count: jax.Array
    last: _Point
    grad: Updates
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: _Point
    high: _Point
    cubic_ref: _Point
    safe: _Point
    safe_grad: Updates


class _Line(NamedTuple):
    """What one search holds fixed: the line ``w + eta u``, ``phi(0)``, ``phi'(0)`` and the settings.

    Not a loop carry: the loop functions close over it (``functools.partial``).
    """

    value_and_grad: Callable[[Params], tuple[jax.Array, Updates]]
    params: Params
    direction: Updates
    dtype: Any
    value0: jax.Array
    slope0: jax.Array
    guess: jax.Array
    c1: jax.Array
    c2: jax.Array
    tol: jax.Array
    grow: jax.Array
    precision: jax.Array
    budget: jax.Array
    max_learning_rate: jax.Array | None
    approx_dec_rtol: jax.Array | None
    verbose: bool


def _cubic_minimizer(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any) -> jax.Array:
    """The critical point of the cubic through ``(a, fa)``, ``(b, fb)``, ``(c, fc)`` with slope ``fpa`` at a.

    NaN when the cubic has no real critical point; the caller then rejects it.
    """
    db, dc = b - a, c - a
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    denom = (db * dc) ** 2 * (db - dc)
    cubic = (dc**2 * rb - db**2 * rc) / denom
    quad = (-(dc**3) * rb + db**3 * rc) / denom
    radical = quad * quad - 3.0 * cubic * fpa
    return a + (-quad + jnp.sqrt(radical)) / (3.0 * cubic)


def _quadratic_minimizer(a: Any, fa: Any, fpa: Any, b: Any, fb: Any) -> jax.Array:
    """The critical point of the parabola through ``(a, fa)``, ``(b, fb)`` with slope ``fpa`` at a."""
    db = b - a
    curv = (fb - fa - fpa * db) / (db * db)
    return a - fpa / (2.0 * curv)


def _evaluate(line: _Line, eta: jax.Array) -> tuple[_Point, Updates, jax.Array, jax.Array]:
    """``phi`` at ``eta``: the point, the gradient there, and its decrease and curvature errors."""
    v, g = line.value_and_grad(tm.add_scale(line.params, eta, line.direction))
    g = tm.cast_like(g, line.params)
    slope = jnp.real(tm.vdot(tm.cast_like(jax.tree.map(jnp.conj, g), line.params), line.direction))
    point = _Point(eta, jnp.real(v).astype(line.dtype), slope.astype(line.dtype))
    return point, g, _decrease_error(line, point), _curvature_error(line, point)


def _decrease_error(line: _Line, p: _Point) -> jax.Array:
    """How far ``p`` misses sufficient decrease (Armijo, or Hager-Zhang's approximate form); 0 = met."""
    armijo = p.value - line.value0 - line.c1 * p.step * line.slope0
    if line.approx_dec_rtol is not None:
        # Hager-Zhang: trust the slope rather than values that differ below machine precision,
        # but only while the value stays within approx_dec_rtol * |phi(0)| of the start.
        approx = jnp.maximum(
            p.slope - (2.0 * line.c1 - 1.0) * line.slope0,
            p.value - line.value0 - line.approx_dec_rtol * jnp.abs(line.value0),
        )
        armijo = jnp.minimum(approx, armijo)
    return as_finite_error(armijo)


def _curvature_error(line: _Line, p: _Point) -> jax.Array:
    """How far ``p`` misses the strong curvature condition; 0 = met."""
    return as_finite_error(jnp.abs(p.slope) - line.c2 * jnp.abs(line.slope0))


def _start(line: _Line, grad: Updates) -> _Search:
    """The search before its first evaluation: every point at ``eta = 0``."""
    zero, inf, false = jnp.zeros([], line.dtype), jnp.full([], jnp.inf, line.dtype), jnp.asarray(False)
    origin = _Point(zero, line.value0, line.slope0)
    return _Search(
        count=jnp.zeros([], jnp.int32),
        last=origin,
        grad=grad,
        decrease_error=inf,
        curvature_error=inf,
        interval_found=false,
        done=false,
        failed=false,
        low=origin,
        high=origin,
        cubic_ref=origin,
        safe=origin,
        safe_grad=grad,
    )


def _evaluated(s: _Search, new: _Point, grad: Updates, dec: jax.Array, curv: jax.Array) -> _Search:
    """``s`` after one more evaluation, at ``new``: the count, the last point and its errors."""
    return s._replace(count=s.count + 1, last=new, grad=grad, decrease_error=dec, curvature_error=curv)


def _search_interval(line: _Line, s: _Search) -> _Search:
    """Phase 1 (Algorithm 3.5): grow the step until an interval holding an acceptable one is bracketed."""
    eta = jnp.where(s.count == 0, line.guess, line.grow * s.last.step)
    if line.max_learning_rate is not None:
        capped = eta >= line.max_learning_rate
        eta = jnp.minimum(eta, line.max_learning_rate)
    else:
        capped = jnp.asarray(False)
    new, g, dec, curv = _evaluate(line, eta)
    error = jnp.maximum(dec, curv)
    safe, safe_grad = tree_math.where(dec <= line.tol, (new, g), (s.safe, s.safe_grad))
    # Bracketed when the new point is too high (then [prev, new]) or the slope turned
    # non-negative (then [new, prev]).
    high_is_new = (dec > 0.0) | ((new.value >= s.last.value) & (s.count > 0))
    low_is_new = (new.slope >= 0.0) & ~high_is_new
    low, high = tree_math.where(low_is_new, (new, s.last), (s.last, new))
    found = high_is_new | low_is_new | (error <= line.tol)
    done = (error <= line.tol) | (capped & ~found)
    return _evaluated(s, new, g, dec, curv)._replace(
        interval_found=found,
        done=done,
        failed=(s.count + 1 >= line.budget) & ~done,
        low=low,
        high=high,
        cubic_ref=low,
        safe=safe,
        safe_grad=safe_grad,
    )


def _zoom(line: _Line, s: _Search) -> _Search:
    """Phase 2 (Algorithm 3.6): shrink the bracket by a cubic, quadratic or bisection step."""
    low, high, ref = s.low, s.high, s.cubic_ref
    width = jnp.abs(high.step - low.step)
    left, right = jnp.minimum(high.step, low.step), jnp.maximum(high.step, low.step)
    cubic = _cubic_minimizer(low.step, low.value, low.slope, high.step, high.value, ref.step, ref.value)
    use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
    quad = _quadratic_minimizer(low.step, low.value, low.slope, high.step, high.value)
    use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
    eta = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (low.step + high.step) / 2.0))
    new, g, dec, curv = _evaluate(line, eta)
    error = jnp.maximum(dec, curv)
    better_safe = (dec <= line.tol) & (new.value < s.safe.value)
    safe, safe_grad = tree_math.where(better_safe, (new, g), (s.safe, s.safe_grad))
    done = error <= line.tol
    high_to_middle = (dec > 0.0) | (new.value >= low.value)
    high_to_low = (new.slope * (high.step - low.step) >= 0.0) & ~high_to_middle
    new_high = tree_math.where(high_to_low, low, tree_math.where(high_to_middle, new, high))
    new_low = tree_math.where(~high_to_middle, new, low)
    give_up = (s.count + 1 >= line.budget) | ((width <= line.precision) & (safe.step > 0.0))
    return _evaluated(s, new, g, dec, curv)._replace(
        done=done,
        failed=give_up & ~done,
        low=new_low,
        high=new_high,
        cubic_ref=tree_math.where(high_to_middle | high_to_low, high, low),
        safe=safe,
        safe_grad=safe_grad,
    )


def _fall_back_to_safe(line: _Line, s: _Search) -> _Search:
    """Out of budget: take the best step with sufficient decrease, if any was seen (or stay put
    when the last point left the objective's domain)."""
    use_safe = (s.safe.step > 0.0) | jnp.isinf(s.decrease_error)
    step, value, grad = tree_math.where(
        use_safe, (s.safe.step, s.safe.value, s.safe_grad), (s.last.step, s.last.value, s.grad)
    )
    if line.verbose:
        jax.debug.print(
            "scale_by_zoom_linesearch: no step met both conditions (value {v0}, slope {s0}, "
            "last step {e}, decrease error {d}, curvature error {c}); using step {r}.",
            v0=line.value0,
            s0=line.slope0,
            e=s.last.step,
            d=s.decrease_error,
            c=s.curvature_error,
            r=step,
        )
    return s._replace(last=s.last._replace(step=step, value=value), grad=grad)


def _step(line: _Line, s: _Search) -> _Search:
    """One evaluation: a phase-1 or phase-2 step, then the fall-back when the search failed."""
    s = jax.lax.cond(s.interval_found, functools.partial(_zoom, line), functools.partial(_search_interval, line), s)
    return jax.lax.cond(s.failed, functools.partial(_fall_back_to_safe, line), lambda x: x, s)


def _search(line: _Line, grad: Updates) -> _Search:
    """Runs the search from ``eta = 0`` until a step meets both conditions or the search fails."""
    return jax.lax.while_loop(lambda s: ~(s.done | s.failed), functools.partial(_step, line), _start(line, grad))


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales the updates by a step size meeting the strong Wolfe conditions (zoom line search).

    With ``phi(eta) = f(w + eta u)``, ``c1 = slope_rtol``, ``c2 = curv_rtol``, a step is accepted when

    .. math::
      \phi(\eta) \le \phi(0) + c_1 \eta \phi'(0) + \mathrm{tol}
      \quad\text{and}\quad |\phi'(\eta)| \le c_2 |\phi'(0)| + \mathrm{tol}.

    Near convergence, where values differ by less than ``sqrt(machine eps)``, the first condition is
    replaced by Hager and Zhang's approximate one, ``phi'(eta) <= (2 c1 - 1) phi'(0)``, once
    ``phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|`` (``approx_dec_rtol=None`` turns this off).
    Phase 1 grows the step by ``increase_factor`` from the first guess (1 with
    ``initial_guess_strategy="one"``, the previous step with ``"keep"``) until an interval holding an
    acceptable step is bracketed; phase 2 shrinks it by cubic, quadratic or bisection steps. When
    ``max_linesearch_steps`` evaluations are spent, or the interval is narrower than
    ``stepsize_precision``, the best step with sufficient decrease is used. The output is
    ``eta * u``; the state keeps ``f`` and its gradient at the new point. ``update`` reads ``value``,
    ``grad`` and ``value_fn`` from its extra arguments (other extra arguments that ``value_fn``
    accepts are passed on to it).

    Args:
      max_linesearch_steps: the most objective evaluations per update; an int >= 1.
      max_learning_rate: the largest step (> 0), or None for no cap (default).
      tol: slack on both conditions, >= 0 (default 0).
      increase_factor: the growth factor > 1 of phase 1 (default 2).
      slope_rtol: ``c1`` in [0, 1) (default 1e-4).
      curv_rtol: ``c2`` > 0 (default 0.9; ``inf`` drops the curvature condition).
      approx_dec_rtol: the relative tolerance >= 0 on ``phi(0)`` for the approximate decrease
        condition, or None (default 1e-6).
      stepsize_precision: the interval width >= 0 under which the search settles (default 1e-5).
      initial_guess_strategy: ``"keep"`` (default; suits SGD) or ``"one"`` (suits (quasi-)Newton).
      verbose: print a diagnostic (``jax.debug.print``) when the search fails (default False).

    Returns:
      A :class:`gradtx.GradientTransformation` with :class:`ScaleByZoomLinesearchState`.

    Raises:
      ValueError: on an out-of-range argument, naming it; in ``update``, naming whichever of
        ``value``, ``grad``, ``value_fn`` is missing.
      TypeError: on a wrongly typed argument; in ``update``, on an extra argument ``value_fn`` does
        not accept.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
      >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_zoom_linesearch(max_linesearch_steps=10))
      >>> w = jnp.zeros(2)
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> updates, state = tx.update(grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> [round(float(u), 4) for u in updates]  # the minimiser along -grad (step size 0.5)
      [1.0, 1.0]

    References:
      Nocedal & Wright, "Numerical Optimization" (Algorithms 3.5 and 3.6),
      https://doi.org/10.1007/978-0-387-40065-5, 2006.
      Hager & Zhang, "Algorithm 851: CG_DESCENT, a conjugate gradient method with guaranteed descent",
      https://doi.org/10.1145/1132973.1132979, 2006.
    """
    where = "scale_by_zoom_linesearch"
    check_steps("max_linesearch_steps", max_linesearch_steps, where=where, low=1)
    if max_learning_rate is not None:
        _checks.check_positive("max_learning_rate", max_learning_rate, where=where)
    _checks.check_non_negative("tol", tol, where=where)
    _checks.check_in_range("increase_factor", increase_factor, 1.0, None, where=where, low_inclusive=False)
    _checks.check_in_range("slope_rtol", slope_rtol, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_positive("curv_rtol", curv_rtol, where=where)
    if approx_dec_rtol is not None:
        _checks.check_non_negative("approx_dec_rtol", approx_dec_rtol, where=where)
    _checks.check_non_negative("stepsize_precision", stepsize_precision, where=where)
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(
            f"{where}: `initial_guess_strategy` must be 'one' or 'keep', got {initial_guess_strategy!r:.40}."
        )
    check_bool("verbose", verbose, where=where)

    def init_fn(params: Params) -> ScaleByZoomLinesearchState:
        num.check_init_params(params, where="scale_by_zoom_linesearch")
        dtype = tm.real_dtype(params)
        inf = jnp.full([], jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=inf,
            grad=num.state_zeros(params),
            # The criteria's errors in the widest enabled float, as optax's state.
            info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), *[jnp.full([], jnp.inf, num.default_float())] * 2),
        )

    def update_fn(
        updates: Updates, state: ScaleByZoomLinesearchState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByZoomLinesearchState]:
        inputs = linesearch_inputs(updates, params, extra_args, where=where)
        dtype, w = inputs.dtype, inputs.params
        direction = tm.cast_like(updates, w)
        hp = lambda x: jnp.asarray(x, dtype)
        line = _Line(
            value_and_grad=jax.value_and_grad(lambda p: inputs.value_fn(p, **inputs.fn_kwargs)),
            params=w,
            direction=direction,
            dtype=dtype,
            value0=inputs.value,
            slope0=tm.real_vdot(direction, inputs.grad, dtype),
            guess=jnp.ones([], dtype) if initial_guess_strategy == "one" else state.learning_rate.astype(dtype),
            c1=hp(slope_rtol),
            c2=hp(curv_rtol),
            tol=hp(tol),
            grow=hp(increase_factor),
            precision=hp(stepsize_precision),
            budget=jnp.asarray(max_linesearch_steps, jnp.int32),
            max_learning_rate=None if max_learning_rate is None else hp(max_learning_rate),
            approx_dec_rtol=None if approx_dec_rtol is None else hp(approx_dec_rtol),
            verbose=verbose,
        )
        final = _search(line, inputs.grad)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=final.last.step,
            value=final.last.value,
            grad=final.grad,
            info=ZoomLinesearchInfo(
                final.count,
                final.decrease_error.astype(state.info.decrease_error.dtype),
                final.curvature_error.astype(state.info.curvature_error.dtype),
            ),
        )
        return tm.scale(final.last.step, updates), new_state

    return GradientTransformation(init_fn, update_fn)
