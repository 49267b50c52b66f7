"""The optax-parity optimizers in the contract registry (``tests/registry.py``'s :class:`Entry` format).

The contract calls ``update(grads, state, params)`` without extra arguments, while Polyak's step
size needs the loss ``value``. Its entry wraps the optimizer in a thin adapter that passes
``value = 1 + |g|^2 / 2`` (positive, finite for any gradient); the optimizer itself is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import gradtx
from tests.registry import Entry


def _builder(fn: Callable[..., Any], *args: Any, **defaults: Any) -> Callable[..., Any]:
    def build(**overrides: Any) -> Any:
        return fn(*args, **{**defaults, **overrides})

    return build


def _with_value(tx: gradtx.GradientTransformation) -> gradtx.GradientTransformation:
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        del extra_args
        sq = [jnp.sum(jnp.abs(g).astype(jnp.float32) ** 2) for g in jax.tree.leaves(updates)]
        value = 1.0 + 0.5 * sum(sq, jnp.zeros([], jnp.float32))
        return tx.update(updates, state, params, value=value)

    return gradtx.GradientTransformation(tx.init, update)


PARITY: list[Entry] = [
    Entry("adabelief", _builder(gradtx.adabelief, 0.01)),
    Entry("adabelief_nesterov", _builder(gradtx.adabelief, 0.01, nesterov=True)),
    Entry("adadelta", _builder(gradtx.adadelta, 0.5, weight_decay=0.01)),
    Entry("adamaxw", _builder(gradtx.adamaxw, 0.01, weight_decay=0.01)),
    Entry("adan", _builder(gradtx.adan, 0.01, weight_decay=0.01)),
    Entry("amsgrad", _builder(gradtx.amsgrad, 0.01), mu_dtype_arg="mu_dtype"),
    Entry("fromage", _builder(gradtx.fromage, 0.01)),
    Entry("nadamw", _builder(gradtx.nadamw, 0.01, weight_decay=0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry("noisy_sgd", _builder(gradtx.noisy_sgd, 0.01, key=jax.random.PRNGKey(0))),
    Entry("novograd", _builder(gradtx.novograd, 0.01, weight_decay=0.01)),
    Entry("optimistic_gradient_descent", _builder(gradtx.optimistic_gradient_descent, 0.01), complex_ok=True),
    Entry("optimistic_adam", _builder(gradtx.optimistic_adam, 0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry("optimistic_adam_v2", _builder(gradtx.optimistic_adam_v2, 0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry("polyak_sgd", lambda **kw: _with_value(gradtx.polyak_sgd(**{"max_learning_rate": 0.1, **kw}))),
    Entry("rprop", _builder(gradtx.rprop, 0.01)),
    Entry("sm3", _builder(gradtx.sm3, 0.01)),
    Entry("yogi", _builder(gradtx.yogi, 0.01)),
]
