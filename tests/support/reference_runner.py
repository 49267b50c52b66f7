"""How the float64 NumPy references run: a whole-tree ``Step`` over ``steps`` steps, or a per-leaf rule.

The references live in ``tests/support/reference_<family>.py``, written from the papers and sharing
no code with gradtx. They come in two forms:

- ``ref_<name>(**hyperparameters)`` returns ``step(params, grads, state, t) -> (new_params, state)``
  working on dicts of float64 arrays, with ``t = 1, 2, ...`` and ``state`` starting as ``None``
  (run by :func:`trajectory`);
- a per-leaf rule (a dataclass) has ``init(p) -> state`` and ``step(g, p, state, t) -> (update, state)``;
  the update is added to the param (run by :func:`run`).

Betas use the code convention (``b`` is the decay of a moving average; the papers' ``1 - beta``
for Adan) and the conventions gradtx documents (e.g. optax's epsilon placement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Tree = dict[str, np.ndarray]
Step = Callable[[Tree, Tree, Any, int], tuple[Tree, Any]]


def schedule_value(lr: Any, count: int) -> float:
    """A constant or scheduled learning rate at step ``count`` (from 0)."""
    return float(lr(count)) if callable(lr) else float(lr)


def trajectory(step: Step, params: Tree, grad_fn: Callable[[Tree], Tree], steps: int) -> list[Tree]:
    """Runs ``steps`` steps from ``params``; returns the params after each step."""
    out, state = [], None
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    for t in range(1, steps + 1):
        p, state = step(p, grad_fn(p), state, t)
        out.append(p)
    return out


def run(rule: Any, params: list[np.ndarray], grad_fn: Any, steps: int) -> list[list[np.ndarray]]:
    """The trajectory (params after each step) of ``rule`` applied leaf by leaf."""
    params = [np.asarray(p, np.float64).copy() for p in params]
    states = [rule.init(p) for p in params]
    path = []
    for t in range(1, steps + 1):
        grads = grad_fn(params)
        for i, (g, p) in enumerate(zip(grads, params)):
            u, states[i] = rule.step(g, p, states[i], t)
            params[i] = p + u
        path.append([p.copy() for p in params])
    return path
