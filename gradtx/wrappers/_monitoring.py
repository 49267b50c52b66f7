"""Measurements of the updates kept in the state: ``snapshot``, ``monitor``, ``measure_with_ema``.

These transforms pass the updates through unchanged (``snapshot``, ``monitor``) and record
a measurement (a norm, a fraction of clipped steps, ...) in the state, where a training loop
reads it after ``update``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation, stateless
from gradtx._combine import chain
from gradtx.transforms._momentum import ema

__all__ = ["MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot"]


class SnapshotState(NamedTuple):
    """State of :func:`snapshot`.

    Attributes:
      measurement: ``{measure_name: measure(updates)}`` from the last ``update`` (from the
        params after ``init``).
    """

    measurement: Any


def snapshot(measure_name: str, measure: Callable[[Updates], Any]) -> GradientTransformation:
    """Stores ``measure(updates)`` in the state under ``measure_name``; updates pass through.

    In a chain it sees the updates as transformed by the members before it, e.g. the norm
    before clipping. ``init`` stores ``measure(params)`` so that the state's structure is
    fixed from the start.

    Args:
      measure_name: the key of the measurement in :attr:`SnapshotState.measurement`.
      measure: a pure function ``updates -> pytree``.

    Returns:
      A :class:`GradientTransformation` with :class:`SnapshotState`.

    Raises:
      TypeError: when ``measure_name`` is not a string or ``measure`` is not callable.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(gradtx.snapshot("grad_norm", gradtx.global_norm), gradtx.clip_by_global_norm(0.1))
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> round(float(state[0].measurement["grad_norm"]), 4)  # measured before clipping
      0.7071
    """
    where = "snapshot"
    if not isinstance(measure_name, str):
        raise TypeError(f"{where}: `measure_name` must be a str, got {type(measure_name).__name__}.")
    _checks.check_callable("measure", measure, where=where)

    def init_fn(params: Params) -> SnapshotState:
        return SnapshotState(measurement={measure_name: measure(params)})

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, SnapshotState]:
        del state, params, extra_args
        return updates, SnapshotState(measurement={measure_name: measure(updates)})

    return GradientTransformation(init_fn, update_fn)


class MonitorState(NamedTuple):
    """State of :func:`monitor`.

    Attributes:
      measurements: ``{name: value}`` from the last ``update`` (zeros of the same shapes and
        dtypes after ``init``, so that the state's structure never changes).
      measure_states: the state of each stateful measure, in the order of ``measures``.
    """

    measurements: Any
    measure_states: Any


def monitor(measures: Mapping[str, Any]) -> GradientTransformation:
    """Records several (possibly stateful) measurements of the updates; updates pass through.

    Each measure is either a function ``updates -> value`` or a transform whose *output
    updates* are the measurement (e.g. :func:`measure_with_ema`). All of them see the same
    updates, those this transform receives. ``init`` evaluates each measure abstractly on the
    params (``jax.eval_shape``) to give the measurements their final structure filled with zeros,
    so a measure must accept a tree of the params' structure without extra arguments.

    Args:
      measures: a mapping ``name -> function or transform``.

    Returns:
      A :class:`GradientTransformation` with :class:`MonitorState`.

    Raises:
      TypeError: when ``measures`` is not a mapping of callables or transforms.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(
      ...     gradtx.adam(0.1),
      ...     gradtx.monitor({
      ...         "update_norm": gradtx.global_norm,
      ...         "ema_norm": gradtx.measure_with_ema(gradtx.global_norm, decay=0.9),
      ...     }),
      ... )
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> {k: round(float(v), 4) for k, v in state[1].measurements.items()}
      {'update_norm': 0.1414, 'ema_norm': 0.1414}
    """
    where = "monitor"
    if not isinstance(measures, Mapping):
        raise TypeError(f"{where}: `measures` must be a mapping name -> measure, got {type(measures).__name__}.")
    members: dict[str, GradientTransformation] = {}
    for name, measure in measures.items():
        if hasattr(measure, "init") and hasattr(measure, "update"):
            members[name] = as_gradient_transformation(measure, where=f"{where}: measures[{name!r}]")
        elif callable(measure):
            members[name] = stateless(lambda u, _, f=measure: f(u))
        else:
            raise TypeError(f"{where}: measures[{name!r}] must be a function or a transform, got {measure!r:.60}.")
    names = tuple(members)

    def measure_all(updates: Updates, measure_states: Any, params: Any, **extra_args: Any) -> tuple[dict, tuple]:
        measurements = {}
        new_states = []
        for name, measure_state in zip(names, measure_states, strict=True):
            measurements[name], new_state = members[name].update(updates, measure_state, params, **extra_args)
            new_states.append(new_state)
        return measurements, tuple(new_states)

    def init_fn(params: Params) -> MonitorState:
        measure_states = tuple(members[n].init(params) for n in names)
        # The measurements start as zeros of their final shapes and dtypes (found abstractly, nothing
        # computed), not empty as in optax: a state whose structure changes at the first update
        # retraces a jitted step and breaks a lax.scan or fori_loop carrying it.
        shapes = jax.eval_shape(lambda p, s: measure_all(p, s, p)[0], params, measure_states)
        # `zeros_like` of the abstract values keeps their sharding type too (explicit sharding mode).
        measurements = jax.tree.map(lambda s: jnp.zeros_like(s, dtype=s.dtype), shapes)
        return MonitorState(measurements=measurements, measure_states=measure_states)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, MonitorState]:
        measurements, new_states = measure_all(updates, state.measure_states, params, **extra_args)
        return updates, MonitorState(measurements=measurements, measure_states=new_states)

    return GradientTransformation(init_fn, update_fn)


def _as_float(tree: Any) -> Any:
    # Booleans and integers (e.g. "was this step clipped?") are averaged as floats.
    def cast(x: Any) -> Any:
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.complexfloating):
            return x
        return x.astype(jnp.float32)

    return jax.tree.map(cast, tree)


def measure_with_ema(
    measure: Callable[[Updates], Any], decay: Any, debias: bool = True, accumulator_dtype: Any = None
) -> GradientTransformation:
    """A measure for :func:`monitor`: the exponential moving average of ``measure(updates)``.

    With ``m_t = measure(g_t)``: ``e_t = decay * e_{t-1} + (1 - decay) * m_t``, returned as the
    output updates (debiased by ``1 - decay^t`` when ``debias``). Boolean or integer
    measurements are averaged as float32. Use it inside :func:`monitor`, not directly in a
    chain: its output replaces the updates.

    Args:
      measure: a pure function ``updates -> pytree``.
      decay: the EMA decay in ``[0, 1]``.
      debias: divide by ``1 - decay^t``. Default ``True``.
      accumulator_dtype: dtype of the average (default: the measurement's dtype).

    Returns:
      A :class:`GradientTransformation` whose state is ``(EmptyState(), EmaState(count, ema))``.

    Raises:
      TypeError: when ``measure`` is not callable.
      ValueError: when ``decay`` lies outside ``[0, 1]``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.monitor({"norm": gradtx.measure_with_ema(gradtx.global_norm, decay=0.9)})
      >>> state = tx.init(params)
      >>> for scale in (1.0, 3.0):
      ...     updates, state = tx.update({"w": scale * jnp.array([3.0, 4.0])}, state, params)
      >>> round(float(state.measurements["norm"]), 4)  # debiased EMA of 5 and 15
      10.2632
    """
    _checks.check_callable("measure", measure, where="measure_with_ema")
    average = ema(decay, debias, accumulator_dtype)

    def init_fn(params: Params) -> Any:
        return average.init(_as_float(measure(params)))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, Any]:
        # The measurement's structure is not the params', so the params are not passed on.
        del params, extra_args
        return average.update(updates, state)

    average_of_measurement = GradientTransformation(init_fn, update_fn)
    return chain(stateless(lambda updates, _: _as_float(measure(updates))), average_of_measurement)
