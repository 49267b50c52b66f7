"""Reduce the learning rate when a monitored value stops improving (torch's ReduceLROnPlateau).

The transform multiplies the updates by a scale that starts at 1 and is multiplied by
``factor`` whenever the value passed as ``update(..., value=loss)`` has not improved for
``patience`` evaluations. The signature is optax's (``optax.contrib.reduce_on_plateau``);
the rules (relative/absolute threshold, cooldown, floor) are torch's. Differences:

- torch reduces after ``patience + 1`` bad evaluations, gradtx (and optax) after ``patience``:
  torch's ``patience=p`` is gradtx's ``patience=p + 1``.
- torch's ``threshold_mode="rel", threshold=t`` is ``rtol=t, atol=0``; ``"abs"`` is ``rtol=0,
  atol=t``; gradtx's test ``value < (1 - rtol) * best - atol`` combines both.
- torch's ``min_lr`` is absolute, ``min_scale`` is relative to the base learning rate
  (``min_scale = min_lr / lr``); torch's ``mode="max"`` is ``value=-metric``; torch's ``eps``
  (skip changes smaller than eps) has no counterpart.
- torch changes the learning rate of the *next* optimizer step; here the new scale applies to
  the updates of the same call (the scale in the state after ``update(value=v)`` equals torch's
  ``lr / base_lr`` after ``scheduler.step(v)``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` (field names as optax's).

    Attributes:
      scale: the current multiplier of the updates (starts at 1).
      best_value: the best (lowest) averaged value seen so far (starts at ``inf``).
      plateau_count: int32, evaluations since the last improvement.
      cooldown_count: int32, evaluations left in the cooldown after a reduction.
      count: int32, values accumulated towards the next evaluation.
      avg_value: the running mean of the values accumulated so far.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


def _stat_dtype(params: Any) -> Any:
    # At least float32: a bf16 best value cannot register a 1e-4 relative improvement.
    for leaf in jax.tree.leaves(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jnp.dtype(dtype) == jnp.float64:
            return jax.dtypes.canonicalize_dtype(jnp.float64)
    return jnp.float32


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
    *,
    threshold: float | None = None,
    threshold_mode: str = "rel",
) -> GradientTransformation:
    r"""Scales the updates down by ``factor`` when ``value`` stops improving.

    Every ``accumulation_size`` calls, the mean ``v`` of the values passed as ``value=`` is
    evaluated:

    .. math::
      \text{improved} = v < (1 - \text{rtol})\,\text{best} - \text{atol};\quad
      \text{best} \leftarrow v \text{ if improved};\quad
      \text{bad} \leftarrow 0 \text{ if improved else bad} + 1

    During a cooldown ``bad`` is reset to 0 and the cooldown counts down. When ``bad`` reaches
    ``patience``: ``scale <- max(scale * factor, min_scale)``, ``bad <- 0``, ``cooldown_count <-
    cooldown``. Each call returns ``scale * updates``. Chain it after the optimizer:
    ``chain(adam(lr), reduce_on_plateau())`` and call ``update(grads, state, params, value=loss)``.

    Args:
      factor: multiplier applied at each reduction, in (0, 1) (default 0.1).
      patience: evaluations without improvement before a reduction, >= 1 (default 10; torch's
        ``patience=p`` is ``p + 1`` here).
      rtol: relative improvement threshold, in [0, 1] (default 1e-4; torch's ``threshold``).
      atol: absolute improvement threshold, >= 0 (default 0.0).
      cooldown: evaluations to wait after a reduction before counting again, >= 0 (default 0).
      accumulation_size: calls averaged into one evaluation, >= 1 (default 1).
      min_scale: the scale never drops below this, in [0, 1] (default 0.0; optax accepts more
        than 1, which raises the learning rate at the first plateau).
      threshold: torch's spelling of the improvement threshold (keyword-only; default ``None``
        uses ``rtol``/``atol``). With ``threshold_mode="rel"`` it sets ``rtol=threshold,
        atol=0``; with ``"abs"`` it sets ``rtol=0, atol=threshold``. Give either this or
        non-default ``rtol``/``atol``, not both.
      threshold_mode: ``"rel"`` (default) or ``"abs"``, as in torch's ``ReduceLROnPlateau``.

    Returns:
      A :class:`gradtx.GradientTransformation` with :class:`ReduceLROnPlateauState`.

    Raises:
      ValueError: on an out-of-range argument (naming it); from ``update`` when ``value`` is not a
        scalar.
      TypeError: from ``update`` when ``value`` is missing (as for a missing Python argument).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(gradtx.sgd(0.1), gradtx.reduce_on_plateau(factor=0.5, patience=2))
      >>> state = tx.init(params)
      >>> for loss in (1.0, 1.0, 1.0, 1.0):  # no improvement after the first value
      ...     updates, state = tx.update(grads, state, params, value=jnp.asarray(loss))
      >>> float(state[1].scale)
      0.5
    """
    where = "reduce_on_plateau"
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"{where}: `threshold_mode` must be 'rel' or 'abs', got {threshold_mode!r}.")
    if threshold is not None:
        if rtol != 1e-4 or atol != 0.0:
            raise ValueError(
                f"{where}: pass either `threshold` (torch's spelling) or `rtol`/`atol` (optax's), not both; "
                f"got threshold={threshold!r}, rtol={rtol!r}, atol={atol!r}."
            )
        _checks.check_non_negative("threshold", threshold, where=where)
        rtol, atol = (threshold, 0.0) if threshold_mode == "rel" else (0.0, threshold)
    _checks.check_in_range("factor", factor, 0.0, 1.0, where=where, low_inclusive=False, high_inclusive=False)
    # Counts compared with int32 counters: a fraction would be truncated silently.
    patience = _checks.int_hyperparam("patience", patience, where=where, low=1, high=_checks.INT32_MAX)
    _checks.check_in_range("rtol", rtol, 0.0, 1.0, where=where)
    _checks.check_non_negative("atol", atol, where=where)
    cooldown = _checks.int_hyperparam("cooldown", cooldown, where=where, low=0, high=_checks.INT32_MAX)
    accumulation_size = _checks.int_hyperparam(
        "accumulation_size", accumulation_size, where=where, low=1, high=_checks.INT32_MAX
    )
    # A floor on a scale that only shrinks from 1: above 1 it would raise the learning rate.
    _checks.check_in_range("min_scale", min_scale, 0.0, 1.0, where=where)

    def init_fn(params: Params) -> ReduceLROnPlateauState:
        dtype = _stat_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dtype),
            best_value=jnp.full([], jnp.inf, dtype),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], dtype),
        )

    def evaluate(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        dtype = state.best_value.dtype
        v = state.avg_value
        improved = v < (1.0 - jnp.asarray(rtol, dtype)) * state.best_value - jnp.asarray(atol, dtype)
        best = jnp.where(improved, v, state.best_value)
        bad = jnp.where(improved, jnp.int32(0), safe_increment(state.plateau_count))
        in_cooldown = state.cooldown_count > 0
        bad = jnp.where(in_cooldown, jnp.int32(0), bad)
        cooldown_count = jnp.where(in_cooldown, state.cooldown_count - 1, state.cooldown_count)
        reduce = bad >= jnp.asarray(patience, jnp.int32)
        reduced = jnp.maximum(state.scale * jnp.asarray(factor, dtype), jnp.asarray(min_scale, dtype))
        return ReduceLROnPlateauState(
            scale=jnp.where(reduce, reduced, state.scale),
            best_value=best,
            plateau_count=jnp.where(reduce, jnp.int32(0), bad),
            cooldown_count=jnp.where(reduce, jnp.asarray(cooldown, jnp.int32), cooldown_count),
            count=zero_count(),
            avg_value=jnp.zeros([], dtype),
        )

    def update_fn(
        updates: Updates, state: ReduceLROnPlateauState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ReduceLROnPlateauState]:
        del params
        _checks.check_state_type(state, ReduceLROnPlateauState, where=where)
        _checks.require_extra_args(
            extra_args, ("value",), where=where, call="update(updates, state, params, value=loss)"
        )
        value = jnp.asarray(extra_args["value"])
        if value.shape != ():
            raise ValueError(f"{where}: `value` must be a scalar, got shape {value.shape}.")
        dtype = state.avg_value.dtype
        count = safe_increment(state.count)
        avg = state.avg_value + (value.astype(dtype) - state.avg_value) / count.astype(dtype)
        state = state._replace(count=count, avg_value=avg)
        state = jax.lax.cond(count >= jnp.asarray(accumulation_size, jnp.int32), evaluate, lambda s: s, state)
        scale = state.scale
        updates = jax.tree.map(lambda u: u * scale.astype(jnp.asarray(u).dtype), updates)
        return updates, state

    return GradientTransformation(init_fn, update_fn)
