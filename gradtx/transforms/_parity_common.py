"""Small numeric helpers shared by the optax-parity transforms (``_parity_*`` modules).

Each leaf is computed in its *compute dtype* (at least float32, complex kept), as the catalog
does, and results are cast back to the update's dtype and each state leaf's stored dtype.
Bias corrections ``1 - decay**t`` are computed in the widest enabled float (as optax does):
in float32, ``1 - 0.999**t`` keeps only about four significant digits.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree

__all__ = [
    "abs_sq",
    "bias_correction",
    "check_updates",
    "compute_dtype",
    "default_float",
    "hp",
    "unzip",
]


def default_float() -> Any:
    """The widest enabled float dtype: float64 when x64 is on, else float32."""
    return jnp.result_type(float)


def compute_dtype(dtype: Any) -> Any:
    """The dtype a leaf of ``dtype`` is computed in: at least float32, complex kept."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    return jnp.promote_types(dtype, jnp.float32)


def hp(value: Any, dtype: Any) -> jax.Array:
    """A scalar hyperparameter (number or array, possibly traced) as an array of ``dtype``."""
    return jnp.asarray(value).astype(dtype)


def bias_correction(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` in the widest enabled float; cast it where it is used."""
    dtype = default_float()
    return 1 - hp(decay, dtype) ** jnp.asarray(count).astype(dtype)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2`` elementwise; real for complex ``x``."""
    if jnp.iscomplexobj(x):
        return jnp.real(x) ** 2 + jnp.imag(x) ** 2
    return x * x


def check_updates(
    updates: Any,
    *,
    where: str,
    state_tree: Any = None,
    state_name: str = "state",
    params: Any = None,
    need_params: bool = False,
    allow_complex: bool = True,
) -> None:
    """Trace-time checks: floating updates with the structure and shapes of the state and params."""
    if need_params:
        _tree.require_params(params, where=where)
    _tree.check_float_leaves(updates, "updates", where=where, allow_complex=allow_complex)
    if state_tree is not None:
        _tree.check_same_structure(state_tree, updates, state_name, "updates", where=where)
    if params is not None:
        _tree.check_same_structure(params, updates, "params", "updates", where=where)


def unzip(like: Any, out: Any, n: int) -> tuple[Any, ...]:
    """Splits a tree of per-leaf ``n``-tuples (mapped over ``like``) into ``n`` trees."""
    return tuple(jax.tree.map(lambda _, o, i=i: o[i], like, out) for i in range(n))
