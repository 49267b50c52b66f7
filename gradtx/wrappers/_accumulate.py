"""Gradient accumulation: ``MultiSteps`` (k micro-batches per optimizer step) and ``apply_every``.

``MultiSteps`` is the jit-friendly form of torch's manual accumulation loop (``loss / k``,
``backward()`` k times, then ``optimizer.step()``): the inner optimizer runs only on the
k-th micro-step, under ``lax.cond``, on the mean of the k gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _checks, _tree
from gradtx import _numerics as m
from gradtx._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_gradient_transformation,
    safe_increment,
    zero_count,
)
from gradtx._stack_view import check_whole_tree

__all__ = [
    "ApplyEvery",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "apply_every",
    "skip_large_updates",
    "skip_not_finite",
]


class ShouldSkipUpdateFunction(Protocol):
    """``fn(updates, gradient_step, params) -> (should_skip, skip_state)`` for :class:`MultiSteps`.

    ``should_skip`` is a scalar bool array; ``skip_state`` is any pytree (stored in
    :attr:`MultiStepsState.skip_state`, e.g. for monitoring). A skipped micro-step leaves the
    whole :class:`MultiStepsState` (but ``skip_state``) unchanged and returns zero updates.
    """

    def __call__(self, updates: Updates, gradient_step: Any, params: Params | None) -> tuple[Any, Any]: ...


def skip_not_finite(updates: Updates, gradient_step: Any, params: Params | None) -> tuple[jax.Array, Any]:
    """A ``should_skip_update_fn``: skip the micro-step when the updates hold a NaN or an Inf.

    Args:
      updates: the micro-step's updates (gradients).
      gradient_step: the optimizer-step counter (unused).
      params: the params (unused).

    Returns:
      ``(should_skip, {"should_skip": should_skip, "num_not_finite": n})`` where ``n`` is the
      int32 number of non-finite entries over all leaves.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2, should_skip_update_fn=gradtx.skip_not_finite)
      >>> params = {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
      >>> int(state.skip_state["num_not_finite"]), int(state.mini_step)  # the micro-step was dropped
      (1, 0)
    """
    del gradient_step, params
    num_not_finite = jnp.zeros([], jnp.int32)
    for leaf in jax.tree.leaves(updates):
        num_not_finite = num_not_finite + jnp.sum(~jnp.isfinite(leaf)).astype(jnp.int32)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: Any, params: Params | None, max_squared_norm: Any
) -> tuple[jax.Array, Any]:
    """A ``should_skip_update_fn``: skip the micro-step when ``||updates||^2 >= max_squared_norm``.

    Bind the threshold with ``functools.partial(skip_large_updates, max_squared_norm=...)``.
    A NaN norm is never ``< max_squared_norm``, so non-finite updates are skipped too.

    Args:
      updates: the micro-step's updates (gradients).
      gradient_step: the optimizer-step counter (unused).
      params: the params (unused).
      max_squared_norm: the largest squared global norm that is accepted (exclusive).

    Returns:
      ``(should_skip, {"should_skip": should_skip, "norm_squared": ||updates||^2})``; the
      squared norm is summed in at least float32.

    Examples:
      >>> import functools, jax.numpy as jnp, gradtx
      >>> skip = functools.partial(gradtx.skip_large_updates, max_squared_norm=1.0)
      >>> should_skip, info = skip({"w": jnp.array([3.0, 4.0])}, 0, None)
      >>> bool(should_skip), float(info["norm_squared"])
      (True, 25.0)
    """
    del gradient_step, params
    # A NaN threshold would skip every micro-step, silently.
    _checks.check_scalar("max_squared_norm", max_squared_norm, where="skip_large_updates")
    norm_sq = m.tree_sum_of_squares(updates)
    should_skip = jnp.logical_not(norm_sq < jnp.asarray(max_squared_norm).astype(norm_sq.dtype))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _never_skip(updates: Updates, gradient_step: Any, params: Params | None) -> tuple[jax.Array, Any]:
    del updates, gradient_step, params
    return jnp.array(False, jnp.bool_), ()


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps`.

    Attributes:
      mini_step: micro-steps accumulated since the last optimizer step (int32).
      gradient_step: the number of real optimizer steps taken so far (int32).
      inner_opt_state: the wrapped optimizer's state.
      acc_grads: the running mean (or sum) of this cycle's gradients, in the accumulator dtype.
      skip_state: what ``should_skip_update_fn`` returned last (``()`` without one).
    """

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


class MultiSteps:
    """Accumulates ``k`` micro-batch gradients and runs the wrapped optimizer once per ``k``.

    With ``g_1..g_k`` the micro-step gradients of one cycle and ``k = every_k_schedule(gradient_step)``::

        G = mean(g_1..g_k)       (sum with use_grad_mean=False)
        micro-steps 1..k-1:  updates = 0, inner state unchanged
        micro-step k:        (updates, inner_state) = opt.update(G, inner_state, params)

    so with ``sgd`` or ``adam`` k micro-steps give exactly the step of one batch whose gradient
    is ``mean(g_i)``. The inner update is evaluated under ``lax.cond`` only on the k-th
    micro-step. ``MultiStepsState.gradient_step`` counts the real optimizer steps and
    :meth:`has_updated` says whether the last call emitted one.

    Use the instance directly (it has ``init`` and ``update``) or as a plain transform via
    :meth:`gradient_transformation`.

    Args:
      opt: the wrapped optimizer.
      every_k_schedule: the number of micro-steps per optimizer step: an int >= 1 or a
        function of ``gradient_step`` (the number of optimizer steps so far) returning one.
      use_grad_mean: average the accumulated gradients (default) instead of summing them.
      should_skip_update_fn: optional ``fn(updates, gradient_step, params) -> (skip, skip_state)``
        (e.g. :func:`skip_not_finite`); a skipped micro-step returns zero updates and leaves
        the state (but ``skip_state``) unchanged, as if it never happened.
      accumulator_dtype: dtype of ``acc_grads`` (default float32; ``None`` follows each param's
        dtype). The accumulated mean is cast back to the gradients' dtype for the inner update.

    Raises:
      ValueError: when ``every_k_schedule`` is an int <= 0, or a schedule returns a concrete
        value <= 0 while tracing.
      TypeError: when a schedule returns a value that is not of an integer type (a float
        would be truncated), on a non-transform ``opt``, a non-callable ``should_skip_update_fn``, a
        non-floating ``accumulator_dtype``, or a ``should_skip_update_fn`` result that is not a
        scalar bool.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.zeros(2)}
      >>> opt = gradtx.MultiSteps(gradtx.sgd(1.0), every_k_schedule=2)
      >>> state = opt.init(params)
      >>> u1, state = opt.update({"w": jnp.array([1.0, 3.0])}, state, params)  # accumulated, no step yet
      >>> u2, state = opt.update({"w": jnp.array([3.0, 5.0])}, state, params)  # steps on the mean
      >>> [float(x) for x in u1["w"]], [float(x) for x in u2["w"]]
      ([0.0, 0.0], [-2.0, -4.0])

    References:
      Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
      https://arxiv.org/abs/1706.02677, 2017.
    """

    def __init__(
        self,
        opt: GradientTransformation,
        every_k_schedule: int | Callable[[Any], Any],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: Any = jnp.float32,
    ) -> None:
        where = "MultiSteps"
        self._opt = as_gradient_transformation(opt, where=f"{where}: `opt`")
        if callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            k_const = _checks.int_hyperparam(
                "every_k_schedule", every_k_schedule, where=where, low=1, high=_checks.INT32_MAX
            )
            self._every_k_schedule = lambda step: k_const
        _checks.check_callable("should_skip_update_fn", should_skip_update_fn, where=where, allow_none=True)
        _checks.check_bool("use_grad_mean", use_grad_mean, where=where)
        self._use_grad_mean = bool(use_grad_mean)
        self._should_skip_update_fn = should_skip_update_fn if should_skip_update_fn is not None else _never_skip
        self._accumulator_dtype = _checks.check_dtype("accumulator_dtype", accumulator_dtype, where=where)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self._opt

    def _k(self, gradient_step: Any) -> jax.Array:
        k = self._every_k_schedule(gradient_step)
        if isinstance(k, bool) or jnp.ndim(k) != 0 or not jnp.issubdtype(jnp.result_type(k), jnp.integer):
            # A fraction would be floored silently (2.5 -> every 2 micro-steps); a float schedule
            # such as `linear_schedule` must be rounded where the user can see it.
            raise TypeError(
                f"MultiSteps: `every_k_schedule` must give an integer number of micro-steps (a scalar), got "
                f"{getattr(k, 'dtype', type(k).__name__)} {k!r:.40} at gradient_step {gradient_step!r:.40}; "
                "round a float schedule, e.g. `lambda step: jnp.round(schedule(step)).astype(int)`."
            )
        if not isinstance(k, Tracer) and not 1 <= int(k) <= _checks.INT32_MAX:
            raise ValueError(
                f"MultiSteps: `every_k_schedule` must give a number of micro-steps in [1, {_checks.INT32_MAX}], "
                f"got {int(k)} at gradient_step {gradient_step!r:.40}."
            )
        return jnp.asarray(k).astype(jnp.int32)

    def init(self, params: Params) -> MultiStepsState:
        """The initial :class:`MultiStepsState`: zero counters and a zero accumulator."""
        gradient_step = zero_count()
        _, skip_state = self._should_skip_update_fn(m.state_zeros(params), gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=m.state_zeros(params, self._accumulator_dtype),
            skip_state=skip_state,
        )

    def update(
        self, updates: Updates, state: MultiStepsState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, MultiStepsState]:
        """Accumulates ``updates``; on the k-th micro-step returns the inner optimizer's updates."""
        where = "MultiSteps.update"
        _checks.check_state_type(state, MultiStepsState, where=where)
        _tree.check_same_structure(state.acc_grads, updates, "state.acc_grads", "updates", where=where)
        k = self._k(state.gradient_step)
        if self._should_skip_update_fn is not _never_skip:
            check_whole_tree(
                updates,
                where="MultiSteps",
                statistic="`should_skip_update_fn`'s decision",
                outside="MultiSteps(stacked(inner, per_leaf=True), k, should_skip_update_fn=...)",
            )
        should_skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        should_skip = jnp.asarray(should_skip)
        if should_skip.shape != () or should_skip.dtype != jnp.bool_:
            raise TypeError(
                f"{where}: `should_skip_update_fn` must return a scalar bool as its first output, "
                f"got {should_skip.dtype}{list(should_skip.shape)}."
            )

        n = state.mini_step
        if self._use_grad_mean:

            def accumulate(g: jax.Array, acc: jax.Array) -> jax.Array:
                # A running mean keeps the accumulator on the gradients' scale for any k.
                g = g.astype(acc.dtype)
                return acc + (g - acc) / (n + 1).astype(acc.dtype)
        else:

            def accumulate(g: jax.Array, acc: jax.Array) -> jax.Array:
                return acc + g.astype(acc.dtype)

        acc_grads = jax.tree.map(accumulate, updates, state.acc_grads)
        inner_input = jax.tree.map(lambda a, g: a.astype(g.dtype), acc_grads, updates)

        def inner_update(inputs: Updates, inner_state: Any, p: Params | None) -> tuple[Updates, Any]:
            new_updates, new_inner = self._opt.update(inputs, inner_state, p, **extra_args)
            # Both branches of lax.cond must agree on dtypes, so the new state keeps the old dtypes.
            new_inner = jax.tree.map(
                lambda new, old: jnp.asarray(new).astype(jnp.asarray(old).dtype), new_inner, inner_state
            )
            return new_updates, new_inner

        # The arrays go into the branches as operands, not closures: inside a branch they are then
        # tracers, whose `zeros_like` keeps their sharding type (explicit mode), which `lax.switch`
        # compares. (jax 0.10's `zeros_like` of a closed-over committed array drops it.)
        operands = (inner_input, acc_grads, state.inner_opt_state, params)
        # The skip and hold branches return zeros of the inner updates' exact type: `zeros_like`
        # of the abstract value keeps its sharding too.
        out_shape = jax.eval_shape(lambda ops: inner_update(ops[0], ops[2], ops[3])[0], operands)
        zero_out = jax.tree.map(jnp.zeros_like, out_shape)

        def emit(ops: Any) -> tuple[Updates, MultiStepsState]:
            inputs, acc, inner_state, p = ops
            new_updates, new_inner = inner_update(inputs, inner_state, p)
            return new_updates, MultiStepsState(
                mini_step=zero_count(),
                gradient_step=safe_increment(state.gradient_step),
                inner_opt_state=new_inner,
                acc_grads=jax.tree.map(jnp.zeros_like, acc),
                skip_state=skip_state,
            )

        def hold(ops: Any) -> tuple[Updates, MultiStepsState]:
            _, acc, inner_state, _ = ops
            return zero_out, MultiStepsState(
                mini_step=safe_increment(n),
                gradient_step=state.gradient_step,
                inner_opt_state=inner_state,
                acc_grads=acc,
                skip_state=skip_state,
            )

        def skip(_: Any) -> tuple[Updates, MultiStepsState]:
            return zero_out, state._replace(skip_state=skip_state)

        # branch 0: skip this micro-step, 1: accumulate only, 2: accumulate and run the optimizer.
        # `>=` rather than `==`: a schedule that shrinks k mid-cycle still emits at once.
        branch = jnp.where(should_skip, 0, jnp.where(n + 1 >= k, 2, 1))
        return jax.lax.switch(branch, (skip, hold, emit), operands)

    def has_updated(self, state: MultiStepsState | Any) -> jax.Array:
        """Whether the last ``update`` ran the inner optimizer (a scalar bool)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This wrapper as a plain :class:`GradientTransformation` ``(init, update)`` pair."""
        return GradientTransformation(self.init, self.update)


class ApplyEvery(NamedTuple):
    """State of :func:`apply_every` (named as in optax).

    Attributes:
      count: micro-steps since the last emission, modulo ``k`` (int32).
      grad_acc: the running sum of updates of the current cycle.
    """

    count: Any
    grad_acc: Any


def apply_every(k: int = 1) -> GradientTransformation:
    """Sums updates over ``k`` steps and emits the sum every ``k``-th step (zeros otherwise).

    ``acc_t = g_t + (acc_{t-1} if t mod k != 0 else 0)``; ``u_t = acc_t`` when ``t mod k == k-1``
    else ``0``. Unlike :class:`MultiSteps`, transforms before it in a chain still update
    their state every step, so it is not equivalent to a k-times larger batch.

    Args:
      k: the period (int >= 1, default 1).

    Returns:
      A :class:`GradientTransformation` with :class:`ApplyEvery` state.

    Raises:
      ValueError: when ``k < 1``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.chain(gradtx.sgd(0.1), gradtx.apply_every(k=2))
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     print([round(float(u), 4) for u in updates["w"]])  # zeros, then the sum of the two steps
      [0.0, 0.0]
      [-0.1, 0.1]
    """
    where = "apply_every"
    k = _checks.int_hyperparam("k", k, where=where, low=1, high=_checks.INT32_MAX)

    def init_fn(params: Params) -> ApplyEvery:
        return ApplyEvery(count=zero_count(), grad_acc=m.state_zeros(params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ApplyEvery]:
        del params, extra_args
        _tree.check_same_structure(state.grad_acc, updates, "state.grad_acc", "updates", where=where)
        phase = state.count % k
        keep = phase != 0
        emit = phase == k - 1
        grad_acc = jax.tree.map(
            lambda g, acc: jnp.where(keep, acc, jnp.zeros_like(acc)) + g.astype(acc.dtype), updates, state.grad_acc
        )
        out = jax.tree.map(lambda acc, g: jnp.where(emit, acc, jnp.zeros_like(acc)).astype(g.dtype), grad_acc, updates)
        return out, ApplyEvery(count=safe_increment(state.count) % k, grad_acc=grad_acc)

    return GradientTransformation(init_fn, update_fn)
