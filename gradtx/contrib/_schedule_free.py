"""Schedule-Free learning (``optax.contrib.schedule_free`` and its AdamW and SGD forms, with optax's state tree).

Momentum is replaced by interpolation and averaging: gradients are taken at ``y``, a point
between the base optimizer's iterate ``z`` and the running average ``x`` of the ``z``s; ``x`` is
where to evaluate. The params the training loop holds are ``y``;
:func:`schedule_free_eval_params` recovers ``x`` from them and the state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, as_gradient_transformation, safe_increment
from gradtx._combine import chain
from gradtx.optimizers import sgd
from gradtx.schedules import warmup_constant_schedule
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate, scale_by_rms


class ScheduleFreeState(NamedTuple):
    """State of :func:`schedule_free` (optax's ``ScheduleFreeState``).

    Attributes:
      b1: the interpolation weight :math:`\\beta_1`, in the params' lowest float dtype.
      weight_sum: :math:`\\sum_i \\gamma_{\\max,i}^r`, the averaging weights so far.
      step_count: the step the learning rate is read at (scalar int32, starts at 1, saturating).
      max_lr: the largest learning rate so far, :math:`\\gamma_{\\max}`.
      base_optimizer_state: the base optimizer's state.
      z: the base optimizer's iterate, shaped like the params.
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: Any
    z: Any


def _lowest_float(params: Any) -> Any:
    """The smallest float dtype among the params (optax's ``tree.dtype(params, "lowest")``)."""
    dtypes = [jnp.dtype(getattr(x, "dtype", jnp.result_type(x))) for x in jax.tree.leaves(params)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    return min(floats, key=lambda d: d.itemsize) if floats else jnp.dtype(jnp.float32)


def _check(where: str, learning_rate: Any, b1: Any, weight_lr_power: Any, state_dtype: Any) -> Any:
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where=where, low=0.0)
    _checks.check_in_range("b1", b1, 0.0, 1.0, where=where, low_inclusive=False)
    _checks.check_non_negative("weight_lr_power", weight_lr_power, where=where)
    return _checks.check_dtype("state_dtype", state_dtype, where=where)


def schedule_free(
    base_optimizer: Any,
    learning_rate: Any,
    b1: Any = 0.9,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    """Makes ``base_optimizer`` schedule-free: interpolation and averaging instead of momentum and decay.

    .. math::
       y_t = (1-\\beta_1) z_t + \\beta_1 x_t, \\quad
       z_{t+1} = z_t + \\Delta_t \\ (\\Delta_t: \\text{the base optimizer's update of } \\nabla f(y_t)), \\\\
       c_{t+1} = \\frac{\\gamma_{\\max,t}^r}{\\sum_{i \\le t} \\gamma_{\\max,i}^r}, \\quad
       x_{t+1} = (1-c_{t+1}) x_t + c_{t+1} z_{t+1},

    with :math:`\\gamma_{\\max,t}` the largest learning rate so far and :math:`r =`
    ``weight_lr_power``. The params are :math:`y`; the update is :math:`y_{t+1} - y_t`, and
    :math:`x_t = (y_t - (1-\\beta_1) z_t) / \\beta_1` is recomputed from them each step (so a
    transform wrapped around this one keeps :math:`x` consistent). Evaluate at :math:`x`:
    :func:`schedule_free_eval_params`. The base optimizer should have no momentum (``b1=0``).

    Args:
      base_optimizer: the transform giving :math:`\\Delta_t` (gradtx or optax), e.g. ``sgd(lr)``.
      learning_rate: the schedule (warmup, no decay) or constant the averaging weights read; the
        base optimizer applies its own.
      b1: :math:`\\beta_1` in ``(0, 1]``. Default 0.9.
      weight_lr_power: :math:`r >= 0`. Default 2.
      state_dtype: dtype of :math:`z`; ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScheduleFreeState`.

    Raises:
      ValueError: when ``b1`` is outside ``(0, 1]``, ``weight_lr_power`` or a constant
        ``learning_rate`` is negative.
      TypeError: when ``base_optimizer`` is not a transform, or ``state_dtype`` not a float dtype.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> from gradtx.contrib import schedule_free, schedule_free_eval_params
      >>> tx = schedule_free(gradtx.sgd(0.5), learning_rate=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(20):
      ...     updates, state = tx.update(params, state, params)  # gradient of |p|^2 / 2
      ...     params = gradtx.apply_updates(params, updates)
      >>> bool(jnp.all(jnp.abs(schedule_free_eval_params(state, params)) < 0.1))
      True

    References:
      Defazio et al., "The Road Less Scheduled", https://arxiv.org/abs/2405.15682, 2024.
    """
    where = "schedule_free"
    state_dtype = _check(where, learning_rate, b1, weight_lr_power, state_dtype)
    base = as_gradient_transformation(base_optimizer, where=f"{where}: `base_optimizer`")

    def init_fn(params: Params) -> ScheduleFreeState:
        num.check_init_params(params, where=where, allow_complex=False)
        dtype = _lowest_float(params)
        z = jax.tree.map(lambda p: num.state_copy(p, state_dtype), params)
        return ScheduleFreeState(
            b1=jnp.full([], b1, dtype),
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base.init(params),
            z=z,
        )

    def update_fn(
        updates: Updates, state: ScheduleFreeState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ScheduleFreeState]:
        num.check_updates(
            updates, where=where, state_tree=state.z, state_name="state.z", params=params, need_params=True
        )
        sdt = state.max_lr.dtype
        cdt = num.compute_dtype(sdt)
        lr = _checks.evaluate_scalar_or_schedule(learning_rate, state.step_count, name="learning_rate", where=where)
        max_lr = jnp.maximum(state.max_lr.astype(cdt), num.as_dtype(lr, sdt).astype(cdt))
        weight = max_lr ** num.as_dtype(weight_lr_power, cdt)
        total = state.weight_sum.astype(cdt) + weight
        nan = jnp.isnan(weight) | jnp.isnan(total)
        ck = jnp.where(nan, jnp.full_like(weight, jnp.nan), jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf))
        base_updates, base_state = base.update(updates, state.base_optimizer_state, params, **extra_args)

        def leaf(g: jax.Array, y: jax.Array, z: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
            dtype = num.compute_dtype(num.wider(y.dtype, z.dtype))
            b = num.as_dtype(b1, dtype)
            one_b = 1 - b
            yc, zc = y.astype(dtype), z.astype(dtype)
            z_new = (zc + u.astype(dtype)).astype(z.dtype).astype(dtype)
            x = (yc - one_b * zc) / b
            c = ck.astype(dtype)
            x_new = (1 - c) * x + c * z_new
            y_new = b * x_new + one_b * z_new
            return (y_new - yc).astype(g.dtype), z_new.astype(z.dtype)

        out = jax.tree.map(leaf, updates, params, state.z, base_updates)
        new_updates, z = num.unzip(updates, out, 2)
        return new_updates, ScheduleFreeState(
            b1=state.b1,
            weight_sum=total.astype(sdt),
            step_count=safe_increment(state.step_count),
            max_lr=max_lr.astype(sdt),
            base_optimizer_state=base_state,
            z=z,
        )

    return GradientTransformation(init_fn, update_fn)


def _find_state(state: Any) -> ScheduleFreeState:
    if isinstance(state, ScheduleFreeState):
        return state
    found = [
        s
        for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ScheduleFreeState))
        if isinstance(s, ScheduleFreeState)
    ]
    if len(found) != 1:
        raise ValueError(
            "schedule_free_eval_params: `state` must be (or hold exactly one) ScheduleFreeState, the state of "
            f"schedule_free / schedule_free_adamw / schedule_free_sgd; found {len(found)} in a "
            f"{type(state).__name__}."
        )
    return found[0]


def schedule_free_eval_params(state: Any, params: Params) -> Params:
    """The params to evaluate a schedule-free run at: :math:`x = (y - (1-\\beta_1) z) / \\beta_1`.

    Args:
      state: the :class:`ScheduleFreeState` (or a state holding exactly one, e.g. a ``chain``'s).
      params: the params the training loop holds (:math:`y`).

    Returns:
      :math:`x`, shaped and typed like ``params``.

    Raises:
      ValueError: when ``state`` holds no (or several) :class:`ScheduleFreeState`, or ``params``
        does not match its :math:`z` (naming the first differing path).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib import schedule_free_sgd, schedule_free_eval_params
      >>> tx = schedule_free_sgd(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = tx.init(params)
      >>> schedule_free_eval_params(state, params)["w"]  # before any step x = y = z
      Array([1., 2.], dtype=float32)
    """
    sf = _find_state(state)
    _tree.check_same_structure(sf.z, params, "state.z", "params", where="schedule_free_eval_params")

    def leaf(y: jax.Array, z: jax.Array) -> jax.Array:
        dtype = num.compute_dtype(num.wider(y.dtype, z.dtype))
        b = sf.b1.astype(dtype)
        return ((y.astype(dtype) - (1 - b) * z.astype(dtype)) / b).astype(y.dtype)

    return jax.tree.map(leaf, params, sf.z)


def _warmup(learning_rate: Any, warmup_steps: Any, where: str) -> Any:
    if warmup_steps is None:
        return learning_rate
    _checks.check_int("warmup_steps", warmup_steps, where=where, low=1)
    return warmup_constant_schedule(init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps)


def schedule_free_sgd(
    learning_rate: Any = 1.0,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    """Schedule-free SGD: :func:`schedule_free` around ``sgd(learning_rate)`` (after weight decay, if any).

    :math:`\\Delta_t = -\\gamma_t (\\nabla f(y_t) + \\lambda y_t)`, with :math:`\\gamma_t` rising
    linearly from 0 over ``warmup_steps`` and constant after; see :func:`schedule_free`.

    Args:
      learning_rate: the peak learning rate :math:`\\gamma`. Default 1.
      warmup_steps: length of the linear warmup (``>= 1``); ``None`` for none.
      b1: :math:`\\beta_1` in ``(0, 1]``. Default 0.9.
      weight_decay: :math:`\\lambda` (multiplied by the learning rate); ``None`` for none.
      weight_lr_power: as :func:`schedule_free`. Default 2.
      state_dtype: dtype of :math:`z`; ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScheduleFreeState`.

    Raises:
      ValueError: for a hyperparameter out of range (named).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> from gradtx.contrib import schedule_free_sgd, schedule_free_eval_params
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = schedule_free_sgd(learning_rate=0.2, warmup_steps=5)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(params)
      >>> for _ in range(50):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = gradtx.apply_updates(params, updates)
      >>> bool(f(schedule_free_eval_params(state, params)) < 0.01)
      True
    """
    where = "schedule_free_sgd"
    learning_rate = _warmup(learning_rate, warmup_steps, where)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(
        optimizer, learning_rate=learning_rate, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype
    )


def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> GradientTransformation:
    """Schedule-free AdamW: :func:`schedule_free` around AdamW without momentum.

    .. math::
       v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2, \\quad
       \\Delta_t = -\\gamma_t \\Big(\\frac{g_t}{\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon} + \\lambda y_t\\Big),

    with :math:`g_t = \\nabla f(y_t)` and :math:`\\gamma_t` rising linearly from 0 over
    ``warmup_steps``; :math:`\\beta_1` is the interpolation weight of :func:`schedule_free`. The
    base is ``chain(scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
    add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))``, as in optax.

    Args:
      learning_rate: the peak learning rate :math:`\\gamma`. Default 0.0025.
      warmup_steps: length of the linear warmup (``>= 1``); ``None`` for none.
      b1: :math:`\\beta_1` in ``(0, 1]``. Default 0.9.
      b2: second-moment decay in ``[0, 1)``. Default 0.999.
      eps: added outside the square root. Default 1e-8.
      weight_decay: :math:`\\lambda` (multiplied by the learning rate). Default 0.
      weight_lr_power: as :func:`schedule_free`. Default 2.
      state_dtype: dtype of :math:`z`; ``None`` uses each param's dtype.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`ScheduleFreeState`.

    Raises:
      ValueError: for a hyperparameter out of range (named): ``b2`` outside ``[0, 1)``, a negative ``eps``, ...

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> from gradtx.contrib import schedule_free_adamw, schedule_free_eval_params
      >>> f = lambda x: jnp.sum(x**2)
      >>> tx = schedule_free_adamw(learning_rate=0.1, warmup_steps=10)
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(params)
      >>> for _ in range(200):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = gradtx.apply_updates(params, updates)
      >>> bool(f(schedule_free_eval_params(state, params)) < 0.05)
      True

    References:
      Defazio et al., "The Road Less Scheduled", https://arxiv.org/abs/2405.15682, 2024.
    """
    where = "schedule_free_adamw"
    _checks.check_in_range("b2", b2, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    learning_rate = _warmup(learning_rate, warmup_steps, where)
    optimizer = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
    return schedule_free(
        optimizer, learning_rate=learning_rate, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype
    )
