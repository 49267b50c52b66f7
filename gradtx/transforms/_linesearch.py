"""The backtracking (Armijo) line search, the extra-argument handling shared by line searches, and
:func:`value_and_grad_from_state`.

A line search is an ordinary transform whose ``update`` also reads ``value`` (the objective at the
current params), ``grad`` (its gradient there) and ``value_fn`` (the objective) from the extra
arguments; any other extra argument whose name ``value_fn`` accepts (e.g. a batch) is passed on to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, OptState, Params, Updates
from gradtx._stack_view import check_outside
from gradtx.transforms import _tree_math as tm

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "scale_by_backtracking_linesearch",
    "value_and_grad_from_state",
]

_REQUIRED = ("value", "grad", "value_fn")


class LinesearchInputs(NamedTuple):
    """What a line search reads from ``update``'s arguments, validated."""

    params: Params
    value: jax.Array
    grad: Updates
    value_fn: Callable[..., Any]
    fn_kwargs: dict[str, Any]
    dtype: Any


def linesearch_inputs(updates: Updates, params: Params | None, extra_args: dict[str, Any], *, where: str) -> Any:
    """Validates and unpacks the line-search arguments of ``update``.

    Raises:
      TypeError: naming each of ``value``, ``grad``, ``value_fn`` that is missing; when ``value_fn``
        is not callable, or an extra argument is neither a line-search argument nor accepted by
        ``value_fn``.
      ValueError: when params are missing, or when updates/grad do not match the params' structure;
        inside ``stacked`` or ``flatten`` (``value_fn`` would get stacks or a vector).
    """
    check_outside(updates, where=where, needs="calls `value_fn` on the params")
    _checks.require_extra_args(
        extra_args,
        _REQUIRED,
        where=where,
        call="update(updates, state, params, value=f(params), grad=grad_f(params), value_fn=f)",
    )
    _tree.require_params(params, where=where)
    value_fn = extra_args["value_fn"]
    _checks.check_callable("value_fn", value_fn, where=where)
    _tree.check_same_structure(params, updates, "params", "updates", where=where)
    _tree.check_same_structure(params, extra_args["grad"], "params", "grad", where=where)
    _tree.check_float_leaves(params, "params", where=where)
    others = {k: v for k, v in extra_args.items() if k not in _REQUIRED}
    fn_kwargs, unused = split_kwargs_for(value_fn, others)
    if unused:
        raise TypeError(
            f"{where}: the extra argument(s) {sorted(unused)} are not accepted by `value_fn`; pass only "
            "`value`, `grad`, `value_fn` and the keyword arguments `value_fn` takes."
        )
    dtype = tm.real_dtype(params)
    value = jnp.asarray(extra_args["value"])
    if jnp.shape(value) != ():
        raise ValueError(f"{where}: `value` must be a scalar, got shape {jnp.shape(value)}.")
    value = jnp.real(value).astype(dtype)
    grad = tm.cast_like(extra_args["grad"], params)
    return LinesearchInputs(params, value, grad, value_fn, fn_kwargs, dtype)


def split_kwargs_for(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Splits ``kwargs`` into those ``fn`` accepts by name and the rest (all accepted with ``**kw``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return dict(kwargs), {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(kwargs), {}
    names = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    return {k: v for k, v in kwargs.items() if k in names}, {k: v for k, v in kwargs.items() if k not in names}


def as_finite_error(error: jax.Array) -> jax.Array:
    """``max(error, 0)``, with NaN (the objective left its domain) turned into +inf."""
    error = jnp.where(jnp.isnan(error), jnp.inf, error)
    return jnp.maximum(error, 0.0)


def check_steps(name: str, value: Any, *, where: str, low: int) -> None:
    """A step budget: an int ``>= low`` (a concrete or traced integer scalar also passes)."""
    if isinstance(value, (jax.Array,)) and jnp.issubdtype(value.dtype, jnp.integer):
        _checks.check_in_range(name, value, low, None, where=where)
        return
    _checks.check_int(name, value, where=where, low=low)


def check_bool(name: str, value: Any, *, where: str) -> None:
    """Raises ``TypeError`` naming ``name`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{where}: `{name}` must be a bool, got {value!r:.40}.")


class BacktrackingLinesearchInfo(NamedTuple):
    """Diagnostics of the last backtracking search.

    Attributes:
      num_linesearch_steps: int32 number of objective evaluations made.
      decrease_error: how far the accepted step misses the decrease criterion (0 on success, +inf
        when every tried point gave a non-finite value).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`.

    Attributes:
      learning_rate: the step size accepted at the last update (the next search starts from it).
      value: the objective at the accepted point (reusable via :func:`value_and_grad_from_state`).
      grad: its gradient when ``store_grad=True``, else ``None``.
      info: :class:`BacktrackingLinesearchInfo`.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates | None
    info: BacktrackingLinesearchInfo


class _BacktrackingSearch(NamedTuple):
    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Updates
    decrease_error: jax.Array
    iter_num: jax.Array


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales the updates by a step size that decreases the objective enough (Armijo backtracking).

    Starting from ``eta = min(increase_factor * eta_prev, max_learning_rate)``, the step is multiplied
    by ``decrease_factor`` until

    .. math::
      f(w + \eta u) \le (1 + \mathrm{rtol}) f(w) + \eta\, c\, \mathrm{Re}\langle u, \nabla f(w)\rangle
      + \mathrm{atol}, \qquad c = \mathrm{slope\_rtol},

    or ``max_backtracking_steps`` reductions were tried; the output is ``eta * u``. ``u`` must be a
    descent direction (negative slope) for a step to exist. When every tried point gives a
    non-finite value the step is 0. ``update`` reads ``value``, ``grad`` and ``value_fn`` from its
    extra arguments and passes the other extra arguments that ``value_fn`` accepts on to it.

    Args:
      max_backtracking_steps: the most step reductions per update; an int >= 0.
      slope_rtol: the Armijo constant ``c`` in [0, 1) (default 1e-4).
      decrease_factor: the reduction factor in (0, 1) (default 0.8).
      increase_factor: the factor >= 1 applied to the previous step to form the first guess
        (default 1.5; ``math.inf`` always starts at ``max_learning_rate``).
      max_learning_rate: the largest step, > 0 (default 1.0).
      atol: absolute slack of the criterion, >= 0 (default 0).
      rtol: relative slack on ``f(w)``, >= 0 (default 0).
      store_grad: also compute and store the gradient at the accepted point, so that
        :func:`value_and_grad_from_state` can reuse it (default False).
      verbose: print a diagnostic (``jax.debug.print``) when the search fails (default False).

    Returns:
      A :class:`gradtx.GradientTransformation` with :class:`ScaleByBacktrackingLinesearchState`.

    Raises:
      ValueError: on an out-of-range argument, naming it; in ``update``, naming whichever of
        ``value``, ``grad``, ``value_fn`` is missing.
      TypeError: on a wrongly typed argument; in ``update``, on an extra argument ``value_fn`` does
        not accept.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
      >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_backtracking_linesearch(max_backtracking_steps=15))
      >>> w = jnp.zeros(2)
      >>> value, grad = jax.value_and_grad(f)(w)
      >>> updates, state = tx.update(grad, tx.init(w), w, value=value, grad=grad, value_fn=f)
      >>> [round(float(u), 4) for u in updates]  # f(w - grad) = f(w): the step is cut by 0.8
      [1.6, 1.6]
      >>> bool(f(w + updates) < value)
      True

    References:
      Armijo, "Minimization of functions having Lipschitz continuous first partial derivatives",
      https://doi.org/10.2140/pjm.1966.16.1, 1966.
      Vaswani et al., "Painless Stochastic Gradient: Interpolation, Line-Search, and Convergence Rates",
      https://arxiv.org/abs/1905.09997, 2019.
    """
    where = "scale_by_backtracking_linesearch"
    check_steps("max_backtracking_steps", max_backtracking_steps, where=where, low=0)
    _checks.check_in_range("slope_rtol", slope_rtol, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range(
        "decrease_factor", decrease_factor, 0.0, 1.0, where=where, low_inclusive=False, high_inclusive=False
    )
    _checks.check_in_range("increase_factor", increase_factor, 1.0, None, where=where)
    _checks.check_positive("max_learning_rate", max_learning_rate, where=where)
    _checks.check_non_negative("atol", atol, where=where)
    _checks.check_non_negative("rtol", rtol, where=where)
    check_bool("store_grad", store_grad, where=where)
    check_bool("verbose", verbose, where=where)

    def init_fn(params: Params) -> ScaleByBacktrackingLinesearchState:
        num.check_init_params(params, where="scale_by_backtracking_linesearch")
        dtype = tm.real_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=jnp.full([], jnp.inf, dtype),
            grad=num.state_zeros(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(jnp.zeros([], jnp.int32), jnp.full([], jnp.inf, dtype)),
        )

    def update_fn(
        updates: Updates, state: ScaleByBacktrackingLinesearchState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScaleByBacktrackingLinesearchState]:
        inputs = linesearch_inputs(updates, params, extra_args, where=where)
        dtype, value, w = inputs.dtype, inputs.value, inputs.params
        f = lambda p: jnp.real(inputs.value_fn(p, **inputs.fn_kwargs)).astype(dtype)
        direction = tm.cast_like(updates, w)
        # Slope of eta -> f(w + eta u) at 0 (for complex params, the real part of the pairing).
        slope = jnp.real(tm.vdot(tm.cast_like(jax.tree.map(jnp.conj, direction), w), inputs.grad)).astype(dtype)
        max_steps = jnp.asarray(max_backtracking_steps, jnp.int32)
        c, down = jnp.asarray(slope_rtol, dtype), jnp.asarray(decrease_factor, dtype)
        grow, eta_max = jnp.asarray(increase_factor, dtype), jnp.asarray(max_learning_rate, dtype)
        tol_abs, tol_rel = jnp.asarray(atol, dtype), jnp.asarray(rtol, dtype)

        def cond_fn(s: _BacktrackingSearch) -> jax.Array:
            return ~(s.decrease_error <= tol_abs) & (s.iter_num <= max_steps)

        def body_fn(s: _BacktrackingSearch) -> _BacktrackingSearch:
            eta = jnp.where(s.iter_num > 0, down * s.learning_rate, s.learning_rate)
            candidate = tm.add_scale(w, eta, direction)
            if store_grad:
                new_value, pullback = jax.vjp(f, candidate)
                error = as_finite_error(new_value - (1.0 + tol_rel) * value - eta * c * slope)
                accept = (error <= tol_abs) | (s.iter_num == max_steps)
                new_grad = jax.lax.cond(
                    accept,
                    lambda: tm.cast_like(pullback(jnp.ones([], dtype))[0], w),
                    lambda: s.new_grad,
                )
            else:
                new_value = f(candidate)
                error = as_finite_error(new_value - (1.0 + tol_rel) * value - eta * c * slope)
                new_grad = s.new_grad
            return _BacktrackingSearch(eta, new_value, new_grad, error, s.iter_num + 1)

        first_guess = jnp.minimum(grow * state.learning_rate.astype(dtype), eta_max)
        search = _BacktrackingSearch(
            first_guess, value, num.state_zeros(w), jnp.full([], jnp.inf, dtype), jnp.zeros([], jnp.int32)
        )
        search = jax.lax.while_loop(cond_fn, body_fn, search)
        eta = jnp.where(jnp.isinf(search.decrease_error), jnp.zeros([], dtype), search.learning_rate)
        if verbose:
            jax.lax.cond(
                search.decrease_error > tol_abs,
                lambda: jax.debug.print(
                    "scale_by_backtracking_linesearch: no step size met the decrease criterion "
                    "(value {v}, slope {s}, step {e}, decrease error {d}).",
                    v=value,
                    s=slope,
                    e=search.learning_rate,
                    d=search.decrease_error,
                ),
                lambda: None,
            )
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=eta,
            value=search.new_value,
            grad=search.new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(search.iter_num, search.decrease_error),
        )
        return tm.scale(eta, updates), new_state

    return GradientTransformation(init_fn, update_fn)


def _find_fields(tree: Any, key: str) -> list[Any]:
    """Every value stored under a NamedTuple field or dict key named ``key`` in a (state) tree."""
    found: list[Any] = []
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        for name, child in zip(tree._fields, tree):  # pyright: ignore[reportAttributeAccessIssue]
            if name == key:
                found.append(child)
            else:
                found.extend(_find_fields(child, key))
    elif isinstance(tree, dict):
        for name, child in tree.items():
            if name == key:
                found.append(child)
            else:
                found.extend(_find_fields(child, key))
    elif isinstance(tree, (list, tuple)):
        for child in tree:
            found.extend(_find_fields(child, key))
    return found


def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., tuple[jax.Array, Updates]]:
    """Like ``jax.value_and_grad(value_fn)``, but reuses the value and gradient a line search stored.

    A line search evaluates the objective (and, for the zoom search or ``store_grad=True``, its
    gradient) at the point it accepts, which is the next iterate. The returned function
    ``f(params, *args, state, **kwargs)`` looks for the single ``value`` and ``grad`` fields in the
    optimizer state and returns them when the value is finite; otherwise (e.g. the first step, where
    the stored value is +inf) it computes ``jax.value_and_grad(value_fn)(params, *args, **kwargs)``.
    Only valid for deterministic objectives (the same ``args`` at every step).

    Args:
      value_fn: the scalar objective, differentiable with ``jax.value_and_grad``.

    Returns:
      ``f(params, *fn_args, state, **fn_kwargs) -> (value, grad)``.

    Raises:
      TypeError: when ``value_fn`` is not callable.
      ValueError: (when the returned function is called) when the state holds no ``value`` or no
        ``grad`` field, holds several, or its ``grad`` is ``None``.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
      >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_backtracking_linesearch(15, store_grad=True))
      >>> value_and_grad = gradtx.value_and_grad_from_state(f)
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(2):
      ...     value, grad = value_and_grad(w, state=state)  # reuses the line search's last evaluation
      ...     updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
      ...     w = gradtx.apply_updates(w, updates)
      >>> round(float(f(w)), 4)
      0.2592
    """
    where = "value_and_grad_from_state"
    _checks.check_callable("value_fn", value_fn, where=where)

    def fn(params: Params, *fn_args: Any, state: OptState, **fn_kwargs: Any) -> tuple[jax.Array, Updates]:
        values, grads = _find_fields(state, "value"), _find_fields(state, "grad")
        if len(values) != 1 or len(grads) != 1:
            raise ValueError(
                f"{where}: the state must hold exactly one `value` and one `grad` field (from a line search), "
                f"found {len(values)} and {len(grads)}."
            )
        value, grad = values[0], grads[0]
        if value is None or grad is None:
            raise ValueError(
                f"{where}: the state's `grad` is None; use a line search that stores the gradient "
                "(e.g. `scale_by_backtracking_linesearch(..., store_grad=True)` or the zoom line search)."
            )

        def compute() -> tuple[jax.Array, Updates]:
            v, g = jax.value_and_grad(value_fn)(params, *fn_args, **fn_kwargs)
            return jnp.asarray(v).astype(value.dtype), tm.cast_like(g, grad)

        return jax.lax.cond(jnp.isfinite(value), lambda: (value, grad), compute)

    return fn
