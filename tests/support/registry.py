"""The registry of every optimizer that ``tests/test_contract.py`` runs through the contract.

To add an optimizer, append an :class:`Entry` to ``REGISTRY``:

- ``name``: a unique id (the pytest id).
- ``build(**overrides)``: returns the transform; ``overrides`` are keyword arguments merged
  over the entry's own defaults (the contract passes e.g. ``mu_dtype=jnp.bfloat16``).
- ``mu_dtype_arg`` / ``nu_dtype_arg``: the name of the builder's keyword that sets the first
  / second moment dtype, or ``None`` when it has none. The contract then checks that the
  moment leaves (found by ``moment_fields``) take that dtype.
- ``moment_fields``: state field names holding the moment whose dtype ``mu_dtype_arg``
  controls (default ``("mu",)``); ``nu_fields`` likewise for ``nu_dtype_arg``.
- ``complex_ok``: the optimizer supports complex params (the Adam family, SGD, RMSprop...).
- ``needs_params``: informative only; every contract call passes params.

The contract calls ``update(grads, state, params)`` without extra arguments. Optimizers that need
more get a thin adapter at the call site, the optimizer itself unchanged: Polyak's step size gets
the loss ``value = 1 + |g|^2 / 2`` (positive, finite for any gradient); L-BFGS's line search gets
``value``, ``grad`` and ``value_fn`` of the local quadratic model ``f(w) = <g, w - p> + |w - p|^2 / 2``,
whose gradient at ``p`` is exactly ``g`` and which is bounded below, so the line search sees a
consistent problem for any ``g`` (zero gradients included). The L-BFGS adapter is jitted, so the
contract's "jit equals eager" check compares jit inside jit for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import gradtx


class Entry(NamedTuple):
    """One optimizer in the contract registry (see the module docstring)."""

    name: str
    build: Callable[..., Any]
    mu_dtype_arg: str | None = None
    complex_ok: bool = False
    nu_dtype_arg: str | None = None
    moment_fields: tuple[str, ...] = ("mu",)
    nu_fields: tuple[str, ...] = ("nu",)


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


def _with_obj_fn(tx: gradtx.GradientTransformation) -> gradtx.GradientTransformation:
    """``tx`` whose ``update(g, state, p)`` passes ``obj_fn``, the local quadratic model (unit Hessian) at ``p``."""

    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        del extra_args
        return tx.update(updates, state, params, obj_fn=_local_model(updates, params))

    return gradtx.GradientTransformation(tx.init, update)


def _lbfgs_with_line_search_args(**kwargs: Any) -> gradtx.GradientTransformation:
    return with_line_search_args(gradtx.lbfgs(**kwargs))


def _last_two_axes(params: Any) -> Any:
    """Muon's dimension numbers for every leaf of rank >= 2 (its last two axes), ``None`` (AdamW) for the others."""
    dims = gradtx.contrib.MuonDimensionNumbers
    return jax.tree.map(lambda x: dims(x.ndim - 2, x.ndim - 1) if x.ndim >= 2 else None, params)


REGISTRY: list[Entry] = [
    Entry("sgd", _builder(gradtx.sgd, 0.1), complex_ok=True),
    Entry(
        "sgd_momentum",
        _builder(gradtx.sgd, 0.1, momentum=0.9, nesterov=True),
        mu_dtype_arg="accumulator_dtype",
        complex_ok=True,
        moment_fields=("trace",),
    ),
    Entry(
        "adagrad",
        _builder(gradtx.adagrad, 0.1),
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
        nu_fields=("sum_of_squares",),
    ),
    Entry("rmsprop", _builder(gradtx.rmsprop, 0.01, momentum=0.9), nu_dtype_arg="nu_dtype", complex_ok=True),
    Entry("rmsprop_centered", _builder(gradtx.rmsprop, 0.01, centered=True), complex_ok=True),
    Entry("adam", _builder(gradtx.adam, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype", complex_ok=True),
    Entry(
        "scale_by_adam",
        lambda **kw: gradtx.chain(gradtx.scale_by_adam(**kw), gradtx.scale_by_learning_rate(0.01)),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry(
        "adamw",
        _builder(gradtx.adamw, 0.01, weight_decay=0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry("nadam", _builder(gradtx.nadam, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype", complex_ok=True),
    Entry("radam", _builder(gradtx.radam, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype", complex_ok=True),
    Entry("adamax", _builder(gradtx.adamax, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype", complex_ok=True),
    Entry(
        "lamb",
        _builder(gradtx.lamb, 0.01, weight_decay=0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry("lars", _builder(gradtx.lars, 0.1, weight_decay=0.01)),
    Entry("lion", _builder(gradtx.lion, 1e-3), mu_dtype_arg="mu_dtype"),
    Entry("adafactor", _builder(gradtx.adafactor, 0.01, min_dim_size_to_factor=4)),
    Entry(
        "adafactor_momentum",
        _builder(gradtx.adafactor, 0.01, min_dim_size_to_factor=4, momentum=0.9, weight_decay_rate=1e-3),
        mu_dtype_arg="dtype_momentum",
        moment_fields=("ema",),
    ),
    Entry("sign_sgd", _builder(gradtx.sign_sgd, 1e-3)),
    Entry("signum", _builder(gradtx.signum, 1e-3), mu_dtype_arg="accumulator_dtype", moment_fields=("ema",)),
    Entry("adabelief", _builder(gradtx.adabelief, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype"),
    Entry("adabelief_nesterov", _builder(gradtx.adabelief, 0.01, nesterov=True)),
    Entry("adadelta", _builder(gradtx.adadelta, 0.5, weight_decay=0.01)),
    Entry(
        "adamaxw",
        _builder(gradtx.adamaxw, 0.01, weight_decay=0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
    ),
    Entry(
        "adan",
        _builder(gradtx.adan, 0.01, weight_decay=0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        moment_fields=("m", "v"),
        nu_fields=("n",),
    ),
    Entry(
        "amsgrad",
        _builder(gradtx.amsgrad, 0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        nu_fields=("nu", "nu_max"),
    ),
    Entry("fromage", _builder(gradtx.fromage, 0.01)),
    Entry(
        "nadamw",
        _builder(gradtx.nadamw, 0.01, weight_decay=0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry("noisy_sgd", _builder(gradtx.noisy_sgd, 0.01, key=jax.random.PRNGKey(0))),
    Entry("novograd", _builder(gradtx.novograd, 0.01, weight_decay=0.01)),
    Entry("optimistic_gradient_descent", _builder(gradtx.optimistic_gradient_descent, 0.01), complex_ok=True),
    Entry(
        "optimistic_adam",
        _builder(gradtx.optimistic_adam, 0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry(
        "optimistic_adam_v2",
        _builder(gradtx.optimistic_adam_v2, 0.01),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry("polyak_sgd", lambda **kw: _with_value(gradtx.polyak_sgd(**{"max_learning_rate": 0.1, **kw}))),
    Entry("rprop", _builder(gradtx.rprop, 0.01)),
    Entry("sm3", _builder(gradtx.sm3, 0.01)),
    Entry("yogi", _builder(gradtx.yogi, 0.01), mu_dtype_arg="mu_dtype", nu_dtype_arg="nu_dtype"),
    # One entry only: each L-BFGS contract run compiles a line search (seconds); the backtracking
    # variant is covered in tests/transforms/test_lbfgs.py.
    Entry("lbfgs", lambda **kw: _lbfgs_with_line_search_args(**kw)),
    # gradtx.contrib: Muon (2-D leaves orthogonalised, the rest AdamW), and with every >= 2-D leaf
    # orthogonalised per matrix of its leading (layer) axes.
    Entry("muon", _builder(gradtx.contrib.muon, 0.01, weight_decay=0.01), mu_dtype_arg="mu_dtype"),
    Entry(
        "muon_stacked",
        _builder(gradtx.contrib.muon, 0.01, muon_weight_dimension_numbers=_last_two_axes),
        mu_dtype_arg="mu_dtype",
    ),
    # Schedule-Free: `state_dtype` sets the dtype of z, the base optimizer's iterate.
    Entry(
        "schedule_free_adamw",
        _builder(gradtx.contrib.schedule_free_adamw, 0.01, weight_decay=0.01),
        mu_dtype_arg="state_dtype",
        moment_fields=("z",),
    ),
    Entry(
        "schedule_free_sgd",
        _builder(gradtx.contrib.schedule_free_sgd, 0.1, weight_decay=0.01),
        mu_dtype_arg="state_dtype",
        moment_fields=("z",),
    ),
    # gradtx.flatten: the inner transform on one vector of all the leaves.
    Entry(
        "flatten_adamw",
        lambda **kw: gradtx.flatten(gradtx.adamw(**{"learning_rate": 0.01, "weight_decay": 0.01, **kw})),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    # gradtx.stacked: the inner transform on the leaves stacked by shape and dtype (max_size=None
    # stacks every leaf of the contract's trees); lamb's trust ratios per leaf through per_leaf.
    Entry(
        "stacked_adamw",
        lambda **kw: gradtx.stacked(gradtx.adamw(**{"learning_rate": 0.01, "weight_decay": 0.01, **kw}), max_size=None),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    # A decay mask written for the params, inside stacked: carried to the stacks (1-D leaves not decayed).
    Entry(
        "stacked_adamw_masked",
        lambda **kw: gradtx.stacked(
            gradtx.adamw(
                **{
                    "learning_rate": 0.01,
                    "weight_decay": 0.01,
                    "mask": lambda p: jax.tree.map(lambda x: x.ndim > 1, p),
                    **kw,
                }
            ),
            max_size=None,
        ),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry(
        "stacked_lamb_per_leaf",
        lambda **kw: gradtx.stacked(
            gradtx.lamb(**{"learning_rate": 0.01, "weight_decay": 0.01, **kw}), max_size=None, per_leaf=True
        ),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    # Noise inside stacked(per_leaf=True): each leaf draws from its own stream (fold_in of its index).
    Entry(
        "stacked_noisy_sgd_per_leaf",
        lambda **kw: gradtx.stacked(
            gradtx.noisy_sgd(**{"learning_rate": 0.01, "key": 3, **kw}), max_size=None, per_leaf=True
        ),
    ),
    # Sophia-H refreshing its Hessian estimate every other step: Hutchinson's estimator gets `obj_fn`.
    Entry(
        "sophia",
        lambda **kw: _with_obj_fn(gradtx.contrib.sophia(**{"learning_rate": 0.01, "update_interval": 2, **kw})),
        mu_dtype_arg="mu_dtype",
    ),
]

# Entries whose state is one vector of all the leaves (`gradtx.flatten`, optax's state): it names
# no leaf path, and under Auto shardings XLA places it.
ONE_VECTOR = {"flatten_adamw"}
