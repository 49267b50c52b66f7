"""Pictures of schedules and of learning-rate range tests, written as PNG files.

matplotlib is an optional dependency (``pip install gradtx[plot]``); it is imported only when a
function here is called, with the non-interactive Agg backend, so nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks

__all__ = ["plot_lr_finder", "plot_schedules"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - exercised only where matplotlib is absent
        raise ImportError(
            "gradtx.plotting needs matplotlib, which is an optional dependency: "
            "install it with `pip install matplotlib` (or `pip install gradtx[plot]`)."
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluate_schedule(schedule: Callable[[Any], Any], num_steps: int) -> np.ndarray:
    """The values ``schedule(0), ..., schedule(num_steps - 1)`` as a NumPy array, in one jitted vmap."""
    steps = jnp.arange(num_steps, dtype=jnp.int32)
    return np.asarray(jax.jit(jax.vmap(schedule))(steps), dtype=np.float64)


def plot_schedules(
    schedules: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]],
    num_steps: int,
    path: str,
    *,
    title: str | None = None,
    log_scale: bool = False,
    ylabel: str = "value",
) -> str:
    """Draws one or more schedules over steps ``0 .. num_steps - 1`` and saves a PNG.

    Args:
      schedules: a schedule, or ``{label: schedule}`` to draw several on one axis.
      num_steps: number of steps to draw, >= 1.
      path: where to write the PNG.
      title: the figure title (default ``None``: none).
      log_scale: use a logarithmic y axis (default ``False``).
      ylabel: the y axis label (default ``"value"``).

    Returns:
      ``path``.

    Raises:
      ImportError: when matplotlib is not installed, saying how to install it.
      ValueError: when ``num_steps < 1``.
      TypeError: when a schedule is not callable.

    Examples:
      >>> import os, tempfile, gradtx
      >>> from gradtx.plotting import plot_schedules
      >>> schedules = {"cosine": gradtx.cosine_decay_schedule(1.0, 100), "constant": gradtx.constant_schedule(0.5)}
      >>> path = plot_schedules(schedules, 100, os.path.join(tempfile.mkdtemp(), "schedules.png"))
      >>> os.path.getsize(path) > 0
      True
    """
    where = "plot_schedules"
    _checks.check_int("num_steps", num_steps, where=where, low=1)
    named = dict(schedules) if isinstance(schedules, Mapping) else {"": schedules}
    for label, s in named.items():
        _checks.check_callable(f"schedules[{label!r}]" if label else "schedules", s, where=where)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.5), dpi=100)
    try:
        steps = np.arange(num_steps)
        for label, s in named.items():
            ax.plot(steps, evaluate_schedule(s, num_steps), label=label or None, linewidth=1.6)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if any(named):
            ax.legend(loc="best", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def plot_lr_finder(result: Any, path: str, *, title: str = "Learning-rate range test") -> str:
    """Draws a :class:`gradtx.LRFinderResult` (loss against log learning rate) and saves a PNG.

    Shows the raw and smoothed losses of the steps that ran and marks the suggestion.

    Args:
      result: the result of :func:`gradtx.lr_finder`.
      path: where to write the PNG.
      title: the figure title (default ``"Learning-rate range test"``).

    Returns:
      ``path``.

    Raises:
      ImportError: when matplotlib is not installed, saying how to install it.

    Examples:
      >>> import os, tempfile, jax.numpy as jnp, gradtx
      >>> from gradtx.plotting import plot_lr_finder
      >>> result = gradtx.lr_finder(gradtx.sgd, lambda p: jnp.sum((p - 3.0) ** 2), jnp.zeros(2), num_steps=20)
      >>> path = plot_lr_finder(result, os.path.join(tempfile.mkdtemp(), "lr_finder.png"))
      >>> os.path.getsize(path) > 0
      True
    """
    plt = _pyplot()
    n = int(result.num_run)
    lrs = np.asarray(result.learning_rates)[:n]
    fig, ax = plt.subplots(figsize=(6.0, 3.5), dpi=100)
    try:
        ax.plot(lrs, np.asarray(result.losses)[:n], alpha=0.35, label="loss")
        ax.plot(lrs, np.asarray(result.smoothed_losses)[:n], label="smoothed loss")
        ax.axvline(
            float(result.suggestion), color="C3", linestyle="--", label=f"suggestion {float(result.suggestion):.2e}"
        )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.legend(loc="best", fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
