"""L-BFGS entries for the contract registry (``tests/registry.py``'s :class:`Entry` format).

The contract calls ``update(grads, state, params)`` without extra arguments, while L-BFGS's line
search needs ``value``, ``grad`` and ``value_fn``. Each entry therefore builds the optimizer behind a
thin adapter that supplies them from the contract's own gradient ``g`` at ``p``: the objective is the
local quadratic model ``f(w) = <g, w - p> + |w - p|^2 / 2``, whose gradient at ``p`` is exactly ``g``
and which is bounded below, so the line search sees a consistent problem for any ``g`` (zero
gradients included). The transform under test is unchanged; only the call site is adapted, and it
is jitted (so the contract's "jit equals eager" check compares jit inside jit for these entries).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

import gradtx
from tests.registry import Entry


def _local_model(grads: Any, params: Any) -> Any:
    def value_fn(w: Any) -> jax.Array:
        leaves = zip(jax.tree.leaves(grads), jax.tree.leaves(w), jax.tree.leaves(params), strict=True)
        terms = [jnp.sum(g * (x - p) + 0.5 * (x - p) ** 2).astype(jnp.float32) for g, x, p in leaves]
        return sum(terms, jnp.zeros([], jnp.float32))

    return value_fn


def with_line_search_args(tx: gradtx.GradientTransformation) -> gradtx.GradientTransformation:
    """``tx`` whose ``update(g, state, p)`` passes ``value``, ``grad=g`` and ``value_fn`` itself."""

    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        del extra_args
        value_fn = _local_model(updates, params)
        return tx.update(updates, state, params, value=value_fn(params), grad=updates, value_fn=value_fn)

    # Jitted once per built optimizer: eagerly, every call would re-trace and re-compile the line
    # search's while_loop and the two-loop scans (minutes over the whole contract).
    return gradtx.GradientTransformation(tx.init, jax.jit(update))


def _build(**kwargs: Any) -> gradtx.GradientTransformation:
    return with_line_search_args(gradtx.lbfgs(**kwargs))


# One entry only: each L-BFGS contract run compiles a line search (seconds); the backtracking
# variant is covered in tests/test_lbfgs.py.
LBFGS_ENTRIES: list[Entry] = [
    Entry("lbfgs", _build),
]
"""Wire into ``tests/registry.py``: ``REGISTRY = CATALOG + PARITY + LBFGS_ENTRIES``."""
