"""Averages of the params: an EMA kept in the optimizer state, and the two functional helpers.

``ema_params`` goes last in a chain; its state holds the exponential moving average of the
params *after* each step, and :func:`averaged_params` fetches it from the whole optimizer
state to evaluate with. ``incremental_update`` and ``periodic_update`` are the pure-function
forms used for target networks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx import _numerics as m
from gradtx._base import GradientTransformation, OptState, Params, ScalarOrSchedule, Updates, safe_increment, zero_count

__all__ = ["EmaParamsState", "averaged_params", "ema_params", "incremental_update", "periodic_update"]


class EmaParamsState(NamedTuple):
    """State of :func:`ema_params`.

    Attributes:
      count: steps taken (int32).
      ema: the averaged params, with the params' structure.
    """

    count: Any
    ema: Any


def ema_params(decay: ScalarOrSchedule = 0.999, *, accumulator_dtype: Any = None) -> GradientTransformation:
    """Keeps an exponential moving average of the params in the state (Polyak averaging).

    Place it last in a chain, so that ``updates`` are the final ones. It starts from the initial
    params and, with ``p_t = params + updates`` the params after step ``t``::

        ema_t = decay * ema_{t-1} + (1 - decay) * p_t

    The updates pass through unchanged. Get the averaged params to evaluate with by
    ``gradtx.averaged_params(opt_state)``.

    Args:
      decay: the EMA decay in ``[0, 1]`` (default 0.999), or a schedule of the step count
        (e.g. a warm-up ``lambda t: jnp.minimum(0.999, (1. + t) / (10. + t))``).
      accumulator_dtype: dtype of the average (default: each param's dtype). With bf16
        params use ``jnp.float32``: a bf16 average cannot resolve steps of ``(1 - decay)``.

    Returns:
      A :class:`GradientTransformation` with :class:`EmaParamsState`; ``update`` needs params.

    Raises:
      ValueError: when a constant ``decay`` lies outside ``[0, 1]``, or ``update`` gets no params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.ema_params(decay=0.9))
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> gradtx.averaged_params(state)["w"]  # 0.9 * w + 0.1 * (w - g)
      Array([ 0.95, -1.95], dtype=float32)

    References:
      Polyak and Juditsky, "Acceleration of Stochastic Approximation by Averaging",
      https://doi.org/10.1137/0330046, 1992.
    """
    where = "ema_params"
    _checks.check_scalar_or_schedule("decay", decay, where=where, low=0.0, high=1.0)
    acc_dtype = _checks.check_dtype("accumulator_dtype", accumulator_dtype, where=where)

    def init_fn(params: Params) -> EmaParamsState:
        return EmaParamsState(count=zero_count(), ema=jax.tree.map(lambda p: m.state_copy(p, acc_dtype), params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmaParamsState]:
        del extra_args
        _tree.require_params(params, where=where)
        _tree.check_same_structure(params, updates, "params", "updates", where=where)
        _tree.check_same_structure(state.ema, params, "state.ema", "params", where=where)
        d = _checks.evaluate_scalar_or_schedule(decay, state.count, name="decay", where=where)

        def avg(e: jax.Array, p: jax.Array, u: jax.Array) -> jax.Array:
            dtype = _tree.standard_promote(e.dtype, p.dtype, u.dtype)
            new_p = p.astype(dtype) + u.astype(dtype)
            dd = jnp.asarray(d).astype(dtype)
            return (dd * e.astype(dtype) + (1 - dd) * new_p).astype(e.dtype)

        new_ema = jax.tree.map(avg, state.ema, params, updates)
        return updates, EmaParamsState(count=safe_increment(state.count), ema=new_ema)

    return GradientTransformation(init_fn, update_fn)


def averaged_params(opt_state: OptState) -> Params:
    """The averaged params held by the one :func:`ema_params` state inside ``opt_state``.

    Searches the whole (nested) optimizer state, so it works for any chain or wrapper.

    Raises:
      ValueError: when ``opt_state`` holds no :class:`EmaParamsState`, or more than one.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(gradtx.adam(0.1), gradtx.ema_params(decay=0.5))
      >>> state = tx.init(params)
      >>> gradtx.averaged_params(state)["w"]  # the average starts at the initial params
      Array([ 1., -2.], dtype=float32)
    """
    found: list[EmaParamsState] = []

    def visit(node: Any) -> None:
        if isinstance(node, EmaParamsState):
            found.append(node)
            return
        children = jax.tree_util.tree_flatten(node, is_leaf=lambda x: x is not node)[0]
        if len(children) == 1 and children[0] is node:
            return
        for child in children:
            visit(child)

    visit(opt_state)
    if len(found) != 1:
        raise ValueError(
            f"averaged_params: expected exactly one ema_params state in `opt_state`, found {len(found)}; "
            "add gradtx.ema_params(decay) once, last in the chain."
        )
    return found[0].ema


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: Any) -> Params:
    """One Polyak-averaging step: ``step_size * new + (1 - step_size) * old``, leaf by leaf.

    ``None`` leaves of ``new_tensors`` stay ``None``. Each result keeps the old leaf's dtype.

    Args:
      new_tensors: the latest params.
      old_tensors: the running average.
      step_size: the weight of the new params (``1 - decay``).

    Returns:
      The new average.

    Raises:
      ValueError: when the trees differ in structure or shape (names the path).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> online, target = {"w": jnp.array([1.0, 1.0])}, {"w": jnp.array([0.0, 2.0])}
      >>> gradtx.incremental_update(online, target, step_size=0.25)["w"]
      Array([0.25, 1.75], dtype=float32)

    References:
      Polyak and Juditsky, "Acceleration of Stochastic Approximation by Averaging",
      https://doi.org/10.1137/0330046, 1992.
    """
    _tree.check_same_structure(old_tensors, new_tensors, "old_tensors", "new_tensors", where="incremental_update")
    if jnp.ndim(step_size) == 0:
        _checks.check_scalar("step_size", step_size, where="incremental_update")  # NaN would poison the average

    def step(new: Any, old: Any) -> Any:
        if new is None:
            return None
        new, old = jnp.asarray(new), jnp.asarray(old)
        a = jnp.asarray(step_size).astype(old.dtype)
        return (a * new.astype(old.dtype) + (1 - a) * old).astype(old.dtype)

    return jax.tree.map(step, new_tensors, old_tensors, is_leaf=lambda x: x is None)


def periodic_update(new_tensors: Params, old_tensors: Params, steps: Any, update_period: Any) -> Params:
    """Returns ``new_tensors`` when ``steps % update_period == 0``, else ``old_tensors``.

    The hard target-network update of DQN and BYOL-style slow copies.

    Args:
      new_tensors: the online params.
      old_tensors: the slow copy.
      steps: the online network's step count (int scalar).
      update_period: how often the slow copy is replaced (int scalar > 0).

    Returns:
      The slow copy for the next step.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> online, target = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
      >>> gradtx.periodic_update(online, target, steps=10, update_period=5)["w"]  # 10 % 5 == 0: replaced
      Array([1., 1.], dtype=float32)

    References:
      Mnih et al., "Human-level control through deep reinforcement learning",
      https://doi.org/10.1038/nature14236, 2015.
    """
    _tree.check_same_structure(old_tensors, new_tensors, "old_tensors", "new_tensors", where="periodic_update")
    if not isinstance(update_period, jax.Array):  # traced or array periods are the caller's business
        _checks.check_int("update_period", update_period, where="periodic_update", low=1)
    return jax.lax.cond(jnp.mod(steps, update_period) == 0, lambda: new_tensors, lambda: old_tensors)
