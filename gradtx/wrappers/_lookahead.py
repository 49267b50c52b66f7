"""Lookahead: k fast steps forward, one interpolation step back towards slow weights."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation, zero_count
from gradtx._stack_view import check_outside

__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
      fast_state: the fast optimizer's state.
      steps_since_sync: fast steps since the last synchronisation (int32, in ``[0, sync_period)``).
    """

    fast_state: Any
    steps_since_sync: Any


class LookaheadParams(NamedTuple):
    """The fast and slow copies of the params that :func:`lookahead` trains.

    Compute gradients at ``fast``; evaluate with ``slow``.

    Attributes:
      fast: the params the fast optimizer steps (take gradients here).
      slow: the slowly moving params (use these for evaluation).
    """

    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Both copies set to ``params``."""
        return cls(fast=params, slow=params)


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
) -> GradientTransformation:
    """Wraps a fast optimizer with Lookahead's slow weights.

    With fast params ``f``, slow params ``s``, fast update ``u`` and ``alpha = slow_step_size``,
    each step sets ``f <- f + u``; every ``sync_period``-th step then also sets::

        s <- s + alpha * (f - s)
        f <- s

    The params are a :class:`LookaheadParams` and so are the returned updates: apply them
    with :func:`gradtx.apply_updates` unchanged (modifying them breaks the synchronisation).

    Args:
      fast_optimizer: the inner optimizer, stepped on ``params.fast``.
      sync_period: fast steps between synchronisations (int >= 1).
      slow_step_size: the interpolation factor ``alpha`` in ``[0, 1]``.
      reset_state: re-initialise the fast optimizer's state at every synchronisation.

    Returns:
      A :class:`GradientTransformation` with :class:`LookaheadState`.

    Raises:
      ValueError: when ``sync_period < 1`` or ``slow_step_size`` is outside ``[0, 1]``.
      TypeError: when ``update`` is called without :class:`LookaheadParams` params.
      ValueError: (in ``init``) inside :func:`gradtx.stacked` or :func:`gradtx.flatten`, which give it
        stacks or a vector: wrap them inside instead, ``lookahead(stacked(inner), ...)``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.lookahead(gradtx.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> lookahead_params = gradtx.LookaheadParams.init_synced(params)
      >>> state = tx.init(lookahead_params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, lookahead_params)  # grads taken at .fast
      ...     lookahead_params = gradtx.apply_updates(lookahead_params, updates)
      >>> [round(float(u), 4) for u in lookahead_params.slow["w"]]  # halfway to the fast weights after 2 steps
      [0.95, -1.95]

    References:
      Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back", https://arxiv.org/abs/1907.08610, 2019.
    """
    where = "lookahead"
    _checks.check_bool("reset_state", reset_state, where=where)
    fast_optimizer = as_gradient_transformation(fast_optimizer, where=f"{where}: `fast_optimizer`")
    sync_period = _checks.int_hyperparam("sync_period", sync_period, where=where, low=1, high=_checks.INT32_MAX)
    _checks.check_in_range("slow_step_size", slow_step_size, 0.0, 1.0, where=where)

    def init_fn(params: Params) -> LookaheadState:
        # Inside stacked/flatten it would get the stacks: its update could never get LookaheadParams.
        check_outside(
            params,
            where=where,
            needs="keeps the fast and slow params (LookaheadParams)",
            instead="put the wrapper inside, e.g. lookahead(stacked(inner), ...)",
        )
        # Plain params are accepted too and taken as the fast copy.
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_state=fast_optimizer.init(fast), steps_since_sync=zero_count())

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[LookaheadParams, LookaheadState]:
        if not isinstance(params, LookaheadParams):
            raise TypeError(
                f"{where}: `params` must be a gradtx.LookaheadParams(fast, slow) (see "
                f"LookaheadParams.init_synced), got {type(params).__name__}."
            )
        if isinstance(updates, LookaheadParams):
            raise TypeError(f"{where}: `updates` must be the gradients at `params.fast`, not a LookaheadParams.")
        _tree.check_same_structure(params.fast, params.slow, "params.fast", "params.slow", where=where)
        fast_updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast, **extra_args)
        sync = state.steps_since_sync == sync_period - 1

        def leaf(f: jax.Array, u: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array]:
            alpha = jnp.asarray(slow_step_size).astype(f.dtype)
            gap = f + u.astype(f.dtype) - s.astype(f.dtype)  # f_new - s
            slow_u = jnp.where(sync, alpha * gap, jnp.zeros_like(gap))
            fast_u = jnp.where(sync, u.astype(f.dtype) - (1 - alpha) * gap, u.astype(f.dtype))
            return fast_u.astype(u.dtype), slow_u.astype(s.dtype)

        pairs = jax.tree.map(leaf, params.fast, fast_updates, params.slow)
        outer = jax.tree.structure(params.fast)
        fast_u, slow_u = jax.tree.transpose(outer, jax.tree.structure((0, 0)), pairs)
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(
                lambda cur, new: jnp.where(sync, jnp.asarray(new).astype(jnp.asarray(cur).dtype), cur),
                fast_state,
                fresh,
            )
        steps = (state.steps_since_sync + 1) % sync_period
        return LookaheadParams(fast=fast_u, slow=slow_u), LookaheadState(fast_state, steps.astype(jnp.int32))

    return GradientTransformation(init_fn, update_fn)
