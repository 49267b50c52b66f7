"""The learning-rate range test: sweep the learning rate up exponentially and watch the loss.

One jitted ``lax.while_loop`` trains from the given params while the learning rate grows
geometrically from ``min_lr`` to ``max_lr``, records the loss and a bias-corrected
exponential moving average of it, and stops early once that smoothed loss diverges. The
suggestion is the learning rate where the smoothed loss falls fastest (per unit of log lr).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, apply_updates

__all__ = ["LRFinderResult", "lr_finder"]


class LRFinderResult(NamedTuple):
    """The curve of a range test. Arrays have length ``num_steps``.

    Attributes:
      learning_rates: the learning rate of each step (the whole schedule, also past ``num_run``).
      losses: the raw loss at each step (before its update); NaN past ``num_run``.
      smoothed_losses: the bias-corrected exponential moving average of the losses; NaN past
        ``num_run``.
      num_run: int32, the number of steps run before stopping (divergence or the end).
      suggestion: the learning rate at the steepest descent of the smoothed loss.
    """

    learning_rates: jax.Array
    losses: jax.Array
    smoothed_losses: jax.Array
    num_run: jax.Array
    suggestion: jax.Array

    def plot(self, path: str, *, title: str = "Learning-rate range test") -> str:
        """Writes the curve as a PNG (needs matplotlib); returns ``path``.

        See :func:`gradtx.plotting.plot_lr_finder`.
        """
        from gradtx.plotting import plot_lr_finder

        return plot_lr_finder(self, path, title=title)


def _steepest(lrs: jax.Array, smoothed: jax.Array, num_run: jax.Array) -> jax.Array:
    """The learning rate where ``d smoothed / d log(lr)`` is most negative among the steps run.

    The slope at step ``t`` is a centred difference over ``w = max(1, N // 20)`` steps on each
    side, so that one lucky batch cannot make a steep segment; and the first tenth of the run is
    skipped, since there the bias-corrected average still follows the raw, noisy loss.
    """
    n = lrs.shape[0]
    w = max(1, n // 20)
    if n <= 2 * w:
        return lrs[0]
    log_lr = jnp.log(lrs)
    slope = (smoothed[2 * w :] - smoothed[: -2 * w]) / (log_lr[2 * w :] - log_lr[: -2 * w])
    centre = jnp.arange(slope.shape[0], dtype=jnp.int32) + w  # slope[i] is centred on step i + w
    valid = (centre >= max(w, n // 10)) & (centre + w < num_run) & jnp.isfinite(slope)
    i = jnp.argmin(jnp.where(valid, slope, jnp.inf))
    # The first lr when too few steps were measured to form a slope.
    return jnp.where(jnp.any(valid), lrs[i + w], lrs[0])


def lr_finder(
    optimizer: Callable[[Any], GradientTransformation],
    loss_fn: Callable[..., Any],
    params: Params,
    batches: Any = None,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    divergence_threshold: float = 4.0,
) -> LRFinderResult:
    r"""Runs a learning-rate range test and suggests a learning rate.

    At step ``t`` the learning rate is :math:`\eta_t = \eta_{min} (\eta_{max}/\eta_{min})^{t/(N-1)}`;
    the loss :math:`\ell_t` is measured at the current params, which then take one step of
    ``optimizer(schedule)``. The smoothed loss is
    :math:`\bar\ell_t = a_t / (1 - \beta^{t+1})`, :math:`a_t = \beta a_{t-1} + (1 - \beta)\ell_t`.
    With :math:`m_t = \min_{s \le t} \bar\ell_s`, the run stops when
    :math:`\bar\ell_t > m_t + (\kappa - 1)|m_t|` (:math:`\kappa m_t` for a positive loss, as in
    fastai; a negative loss must rise as far) or the loss is not finite. The suggestion is the
    learning rate of the steepest negative slope of :math:`\bar\ell` against :math:`\log \eta`
    (a centred difference over ``num_steps // 20`` steps each side), ignoring the first
    ``num_steps // 10`` steps.
    Everything runs in one jitted ``lax.while_loop``.

    Args:
      optimizer: a factory taking the learning rate (a schedule) and returning a transform,
        e.g. ``gradtx.adam`` or ``lambda lr: gradtx.sgd(lr, momentum=0.9)``.
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``loss_fn(params)`` when ``batches`` is ``None``).
      params: the starting params (not modified).
      batches: ``None``, or a pytree whose leaves share a leading axis of batches; step ``t``
        uses batch ``t % n`` (default ``None``).
      min_lr: the first learning rate, > 0 (default 1e-7).
      max_lr: the last learning rate, > ``min_lr`` (default 10.0).
      num_steps: the number of steps, >= 2 (default 100).
      smoothing: the moving-average factor :math:`\beta`, in [0, 1) (default 0.98).
      divergence_threshold: :math:`\kappa` > 1; stop once the smoothed loss exceeds this
        multiple of its (positive) minimum (default 4.0).

    Returns:
      An :class:`LRFinderResult` (jax arrays; ``result.plot(path)`` writes a PNG).

    Raises:
      ValueError: on an out-of-range argument, naming it; when ``batches`` leaves disagree on
        their leading axis.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> loss_fn = lambda params: jnp.sum((params["w"] - 3.0) ** 2)
      >>> result = gradtx.lr_finder(gradtx.sgd, loss_fn, {"w": jnp.zeros(2)}, min_lr=1e-4, max_lr=10.0, num_steps=30)
      >>> len(result.learning_rates) <= 30, bool(1e-4 <= result.suggestion <= 10.0)
      (True, True)

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks",
      https://arxiv.org/abs/1506.01186, 2017.
    """
    where = "lr_finder"
    _checks.check_callable("optimizer", optimizer, where=where)
    _checks.check_callable("loss_fn", loss_fn, where=where)
    _checks.check_positive("min_lr", min_lr, where=where)
    _checks.check_in_range("max_lr", max_lr, float(min_lr), None, where=where, low_inclusive=False)
    _checks.check_int("num_steps", num_steps, where=where, low=2)
    _checks.check_in_range("smoothing", smoothing, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_in_range("divergence_threshold", divergence_threshold, 1.0, None, where=where, low_inclusive=False)
    num_batches = None
    if batches is not None:
        sizes = {jnp.shape(x)[0] if jnp.ndim(x) > 0 else None for x in jax.tree.leaves(batches)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                f"{where}: every leaf of `batches` needs the same leading (batch index) axis, got {sizes}."
            )
        num_batches = sizes.pop()
        if not num_batches:
            raise ValueError(f"{where}: `batches` holds no batch.")

    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    log_ratio = math.log(max_lr / min_lr)

    def lr_at(step: Any) -> jax.Array:
        return (min_lr * jnp.exp(log_ratio * jnp.asarray(step).astype(dtype) / (num_steps - 1))).astype(dtype)

    tx = optimizer(lr_at)

    def run(params: Params, batches: Any) -> LRFinderResult:
        def loss_at(p: Params, t: jax.Array) -> jax.Array:
            if num_batches is None:
                return jnp.asarray(loss_fn(p))
            index = t % jnp.int32(num_batches)
            batch = jax.tree.map(lambda x: x[index], batches)
            return jnp.asarray(loss_fn(p, batch))

        nan = jnp.full([num_steps], jnp.nan, dtype)
        init = (
            jnp.int32(0),
            params,
            tx.init(params),
            jnp.zeros([], dtype),
            jnp.full([], jnp.inf, dtype),
            False,
            nan,
            nan,
        )

        def cond(carry: Any) -> jax.Array:
            t, *_, stop, _, _ = carry
            return (t < num_steps) & ~stop

        def body(carry: Any) -> Any:
            t, p, opt_state, avg, best, _, losses, smoothed = carry
            loss, grads = jax.value_and_grad(loss_at)(p, t)
            loss = loss.astype(dtype)
            avg = smoothing * avg + (1.0 - smoothing) * loss
            smooth = avg / (1.0 - jnp.asarray(smoothing, dtype) ** (t + 1).astype(dtype))
            best = jnp.minimum(best, smooth)
            # fastai's `smooth > kappa * best` for positive losses; with |best| a negative loss
            # (a log-likelihood) must rise as far before the run stops, not stop at once.
            stop = ~jnp.isfinite(smooth) | (smooth > best + (divergence_threshold - 1.0) * jnp.abs(best))
            losses = losses.at[t].set(loss)
            smoothed = smoothed.at[t].set(smooth)
            updates, opt_state = tx.update(grads, opt_state, p)
            p = apply_updates(p, updates)
            return t + 1, p, opt_state, avg, best, stop, losses, smoothed

        t, *_, losses, smoothed = jax.lax.while_loop(cond, body, init)
        steps = jnp.arange(num_steps, dtype=jnp.int32)
        lrs = jax.vmap(lr_at)(steps)
        return LRFinderResult(lrs, losses, smoothed, t, _steepest(lrs, smoothed, t))

    return jax.jit(run)(params, batches)
