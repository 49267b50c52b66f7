"""The L-BFGS optimizer: the L-BFGS direction, a sign flip (or learning rate) and a line search."""

from __future__ import annotations

from typing import Any

from gradtx._base import GradientTransformation, ScalarOrSchedule, identity
from gradtx._combine import chain
from gradtx.transforms._lbfgs import scale_by_lbfgs
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._zoom_linesearch import scale_by_zoom_linesearch

__all__ = ["lbfgs"]


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one"),  # noqa: B008
) -> GradientTransformation:
    r"""L-BFGS: a limited-memory quasi-Newton method with a line search.

    The update is ``w_{k+1} = w_k - eta_k P_k g_k``, with ``P_k`` the limited-memory inverse-Hessian
    approximation of :func:`gradtx.scale_by_lbfgs` (the full rule is there) and ``eta_k`` chosen by
    ``linesearch`` (by default a zoom search for the strong Wolfe conditions that first tries
    ``eta = 1``). Each ``update`` then needs the extra arguments ``value=f(w)``, ``grad=g`` and
    ``value_fn=f``; :func:`gradtx.value_and_grad_from_state` reuses the value and gradient that the
    line search computed at the new point. Best for small and medium deterministic problems.

    Args:
      learning_rate: an optional fixed scale (or schedule) applied to the direction before the line
        search; ``None`` (default) leaves the step size to the line search.
      memory_size: the number of past differences kept (default 10).
      scale_init_precond: use a scaled identity as the initial inverse Hessian (default True).
      linesearch: the line-search transform, e.g. :func:`gradtx.scale_by_zoom_linesearch` (default,
        20 steps, initial guess 1) or :func:`gradtx.scale_by_backtracking_linesearch`; ``None``
        for none (then choose ``learning_rate``).

    Returns:
      ``chain(scale_by_lbfgs(...), scale(-1) or scale_by_learning_rate(learning_rate), linesearch)``.

    Raises:
      ValueError, TypeError: from the member transforms, naming the argument; in ``update``, the line
        search names whichever of ``value``, ``grad``, ``value_fn`` is missing.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> solver = gradtx.lbfgs()
      >>> params = jnp.zeros(3)
      >>> state = solver.init(params)
      >>> value_and_grad = gradtx.value_and_grad_from_state(f)
      >>> @jax.jit  # one compilation of the whole step, line search included
      ... def step(params, state):
      ...     value, grad = value_and_grad(params, state=state)
      ...     updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=f)
      ...     return gradtx.apply_updates(params, updates), state
      >>> for _ in range(3):
      ...     params, state = step(params, state)
      >>> bool(f(params) < 1e-10)
      True

    References:
      Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
      https://doi.org/10.1007/BF01589116, 1989.
    """
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
        identity() if linesearch is None else linesearch,
    )
