"""The zoom line search (strong Wolfe conditions), Nocedal & Wright Algorithms 3.5 and 3.6."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as m
from gradtx._base import GradientTransformation, Params, Updates
from gradtx.transforms import _tree_math as tm
from gradtx.transforms._linesearch import as_finite_error, check_bool, check_steps, linesearch_inputs

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


class _Search(NamedTuple):
    """The loop state: the last trial point, the bracketing interval and the best safe point."""

    count: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Updates
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Updates


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
        dtype = tm.real_dtype(params)
        inf = jnp.full([], jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=inf,
            grad=m.state_zeros(params),
            info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), inf, inf),
        )

    def update_fn(
        updates: Updates, state: ScaleByZoomLinesearchState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByZoomLinesearchState]:
        inputs = linesearch_inputs(updates, params, extra_args, where=where)
        dtype, w, value0 = inputs.dtype, inputs.params, inputs.value
        direction = tm.cast_like(updates, w)
        value_and_grad = jax.value_and_grad(lambda p: inputs.value_fn(p, **inputs.fn_kwargs))
        hp = lambda x: jnp.asarray(x, dtype)
        c1, c2, eps_tol, grow = hp(slope_rtol), hp(curv_rtol), hp(tol), hp(increase_factor)
        precision = hp(stepsize_precision)
        budget = jnp.asarray(max_linesearch_steps, jnp.int32)

        def on_line(eta: jax.Array) -> tuple[jax.Array, Updates, jax.Array]:
            v, g = value_and_grad(tm.add_scale(w, eta, direction))
            g = tm.cast_like(g, w)
            slope = jnp.real(tm.vdot(tm.cast_like(jax.tree.map(jnp.conj, g), w), direction)).astype(dtype)
            return jnp.real(v).astype(dtype), g, slope

        slope0 = tm.real_vdot(direction, inputs.grad, dtype)

        def decrease_error(eta: jax.Array, v: jax.Array, slope: jax.Array) -> jax.Array:
            armijo = v - value0 - c1 * eta * slope0
            if approx_dec_rtol is not None:
                # Hager-Zhang: trust the slope rather than values that differ below machine precision,
                # but only while the value stays within approx_dec_rtol * |phi(0)| of the start.
                approx = jnp.maximum(
                    slope - (2.0 * c1 - 1.0) * slope0, v - value0 - hp(approx_dec_rtol) * jnp.abs(value0)
                )
                armijo = jnp.minimum(approx, armijo)
            return as_finite_error(armijo)

        def curvature_error(slope: jax.Array) -> jax.Array:
            return as_finite_error(jnp.abs(slope) - c2 * jnp.abs(slope0))

        def search_interval(s: _Search) -> _Search:
            eta = jnp.where(s.count == 0, guess, grow * s.stepsize)
            if max_learning_rate is not None:
                capped = eta >= hp(max_learning_rate)
                eta = jnp.minimum(eta, hp(max_learning_rate))
            else:
                capped = jnp.asarray(False)
            v, g, slope = on_line(eta)
            dec, curv = decrease_error(eta, v, slope), curvature_error(slope)
            error = jnp.maximum(dec, curv)
            safe = dec <= eps_tol
            safe_stepsize, safe_value, safe_grad = tm.where(
                safe, (eta, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad)
            )
            # Bracketed when the new point is too high (then [prev, new]) or the slope turned
            # non-negative (then [new, prev]).
            high_is_new = (dec > 0.0) | ((v >= s.value) & (s.count > 0))
            low_is_new = (slope >= 0.0) & ~high_is_new
            low, value_low, slope_low, high, value_high, slope_high = tm.where(
                low_is_new, (eta, v, slope, s.stepsize, s.value, s.slope), (s.stepsize, s.value, s.slope, eta, v, slope)
            )
            found = high_is_new | low_is_new | (error <= eps_tol)
            done = (error <= eps_tol) | (capped & ~found)
            return _Search(
                count=s.count + 1,
                stepsize=eta,
                value=v,
                grad=g,
                slope=slope,
                decrease_error=dec,
                curvature_error=curv,
                interval_found=found,
                done=done,
                failed=(s.count + 1 >= budget) & ~done,
                low=low,
                value_low=value_low,
                slope_low=slope_low,
                high=high,
                value_high=value_high,
                slope_high=slope_high,
                cubic_ref=low,
                value_cubic_ref=value_low,
                safe_stepsize=safe_stepsize,
                safe_value=safe_value,
                safe_grad=safe_grad,
            )

        def zoom(s: _Search) -> _Search:
            width = jnp.abs(s.high - s.low)
            left, right = jnp.minimum(s.high, s.low), jnp.maximum(s.high, s.low)
            cubic = _cubic_minimizer(
                s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref, s.value_cubic_ref
            )
            use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
            quad = _quadratic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high)
            use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
            eta = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (s.low + s.high) / 2.0))
            v, g, slope = on_line(eta)
            dec, curv = decrease_error(eta, v, slope), curvature_error(slope)
            error = jnp.maximum(dec, curv)
            better_safe = (dec <= eps_tol) & (v < s.safe_value)
            safe_stepsize, safe_value, safe_grad = tm.where(
                better_safe, (eta, v, g), (s.safe_stepsize, s.safe_value, s.safe_grad)
            )
            done = error <= eps_tol
            high_to_middle = (dec > 0.0) | (v >= s.value_low)
            high_to_low = (slope * (s.high - s.low) >= 0.0) & ~high_to_middle
            high, value_high, slope_high = tm.where(
                high_to_middle, (eta, v, slope), (s.high, s.value_high, s.slope_high)
            )
            high, value_high, slope_high = tm.where(
                high_to_low, (s.low, s.value_low, s.slope_low), (high, value_high, slope_high)
            )
            low, value_low, slope_low = tm.where(~high_to_middle, (eta, v, slope), (s.low, s.value_low, s.slope_low))
            cubic_ref, value_cubic_ref = tm.where(
                high_to_middle | high_to_low, (s.high, s.value_high), (s.low, s.value_low)
            )
            give_up = (s.count + 1 >= budget) | ((width <= precision) & (safe_stepsize > 0.0))
            return _Search(
                count=s.count + 1,
                stepsize=eta,
                value=v,
                grad=g,
                slope=slope,
                decrease_error=dec,
                curvature_error=curv,
                interval_found=s.interval_found,
                done=done,
                failed=give_up & ~done,
                low=low,
                value_low=value_low,
                slope_low=slope_low,
                high=high,
                value_high=value_high,
                slope_high=slope_high,
                cubic_ref=cubic_ref,
                value_cubic_ref=value_cubic_ref,
                safe_stepsize=safe_stepsize,
                safe_value=safe_value,
                safe_grad=safe_grad,
            )

        def fall_back_to_safe(s: _Search) -> _Search:
            # Out of budget: take the best step with sufficient decrease, if any was seen (or stay put
            # when the last point left the objective's domain).
            use_safe = (s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error)
            stepsize, v, g = tm.where(
                use_safe, (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
            )
            if verbose:
                jax.debug.print(
                    "scale_by_zoom_linesearch: no step met both conditions (value {v0}, slope {s0}, "
                    "last step {e}, decrease error {d}, curvature error {c}); using step {r}.",
                    v0=value0,
                    s0=slope0,
                    e=s.stepsize,
                    d=s.decrease_error,
                    c=s.curvature_error,
                    r=stepsize,
                )
            return s._replace(stepsize=stepsize, value=v, grad=g)

        def step(s: _Search) -> _Search:
            s = jax.lax.cond(s.interval_found, zoom, search_interval, s)
            return jax.lax.cond(s.failed, fall_back_to_safe, lambda x: x, s)

        guess = jnp.ones([], dtype) if initial_guess_strategy == "one" else state.learning_rate.astype(dtype)
        zero, inf, false = jnp.zeros([], dtype), jnp.full([], jnp.inf, dtype), jnp.asarray(False)
        start = _Search(
            count=jnp.zeros([], jnp.int32),
            stepsize=zero,
            value=value0,
            grad=inputs.grad,
            slope=slope0,
            decrease_error=inf,
            curvature_error=inf,
            interval_found=false,
            done=false,
            failed=false,
            low=zero,
            value_low=value0,
            slope_low=slope0,
            high=zero,
            value_high=value0,
            slope_high=slope0,
            cubic_ref=zero,
            value_cubic_ref=value0,
            safe_stepsize=zero,
            safe_value=value0,
            safe_grad=inputs.grad,
        )
        final = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=final.stepsize,
            value=final.value,
            grad=final.grad,
            info=ZoomLinesearchInfo(final.count, final.decrease_error, final.curvature_error),
        )
        return tm.scale(final.stepsize, updates), new_state

    return GradientTransformation(init_fn, update_fn)
