"""The one dtype policy of gradtx: compute dtypes, bias correction, norms, and making state leaves.

Every transform computes in a *compute dtype*: the leaf's dtype promoted to at least
float32 (complex leaves stay complex). That keeps float64 exact, makes bf16/fp16
statistics accurate, and keeps ``eps`` from underflowing to zero in float16 (where
``1e-8`` rounds to 0 and a zero-gradient Adam step would be ``0 / 0``). Results are cast
back to the update's dtype and to each state leaf's stored dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree


def compute_dtype(dtype: Any) -> Any:
    """The dtype a leaf of ``dtype`` is computed in: at least float32, complex kept."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    if jnp.issubdtype(dtype, jnp.floating):
        # Half precision computes in float32; float32/float64 keep their own dtype.
        return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def real_dtype(dtype: Any) -> Any:
    """The real counterpart of ``dtype`` (``complex64 -> float32``)."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.finfo(dtype).dtype
    return dtype


def as_dtype(value: Any, dtype: Any) -> jax.Array:
    """A scalar hyperparameter (number, array or tracer) as an array of ``dtype``."""
    return jnp.asarray(value).astype(dtype)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2`` as a real array (``x * conj(x)`` for complex leaves)."""
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.real(x) ** 2 + jnp.imag(x) ** 2
    return x * x


def real_part(x: jax.Array) -> jax.Array:
    """The real part of a statistic stored in a complex dtype (no-op for real arrays)."""
    return jnp.real(x) if jnp.issubdtype(x.dtype, jnp.complexfloating) else x


def nan_unless_finite(factor: jax.Array, *norms: jax.Array) -> jax.Array:
    """``factor`` where every norm is finite, else NaN (same shape and dtype as ``factor``).

    A factor of the form ``c / norm`` is 0 for an infinite norm, which would silently zero
    every finite entry it multiplies; NaN keeps the failure visible (e.g. to
    :func:`gradtx.apply_if_finite`).
    """
    finite = jnp.ones(jnp.shape(factor), bool)
    for norm in norms:
        finite = finite & jnp.isfinite(norm)
    return jnp.where(finite, factor, jnp.full_like(factor, jnp.nan))


def bias_correction(decay: Any, count: jax.Array, dtype: Any) -> jax.Array:
    """``1 - decay**count`` in ``dtype`` (a real dtype)."""
    return 1 - as_dtype(decay, dtype) ** count.astype(dtype)


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
    """The trace-time checks every catalog ``update`` runs.

    Updates (and params, when given) must be floating (or complex, when allowed); their
    structure and shapes must match the per-parameter state and the params (when given). Errors name the first
    differing path.
    """
    if need_params:
        _tree.require_params(params, where=where)
    _tree.check_float_leaves(updates, "updates", where=where, allow_complex=allow_complex)
    if state_tree is not None:
        _tree.check_same_structure(state_tree, updates, state_name, "updates", where=where)
    if params is not None:
        _tree.check_same_structure(params, updates, "params", "updates", where=where)
        # Integer params would have every update truncated away by `apply_updates`.
        _tree.check_float_leaves(params, "params", where=where, allow_complex=allow_complex)


def check_init_params(params: Any, *, where: str, allow_complex: bool = True) -> None:
    """``init``-time check: params must be floating (or complex) arrays."""
    _tree.check_float_leaves(params, "params", where=where, allow_complex=allow_complex)


def state_zeros(params: Any, dtype: Any = None) -> Any:
    """Zeros like the params (or in ``dtype``); works on abstract params."""
    return _tree.tree_zeros_like(params, dtype)


def state_full(params: Any, value: Any, dtype: Any = None) -> Any:
    """``value`` everywhere, like the params (or in ``dtype``); works on abstract params."""
    return _tree.tree_full_like(params, value, dtype)


def unzip(like: Any, out: Any, n: int) -> tuple[Any, ...]:
    """Splits a tree of per-leaf ``n``-tuples (mapped over ``like``) into ``n`` trees."""
    return tuple(jax.tree.map(lambda _, o, i=i: o[i], like, out) for i in range(n))


def default_float() -> Any:
    """The widest enabled float dtype: float64 when x64 is on, else float32."""
    return jnp.result_type(float)


def wider(*dtypes: Any) -> Any:
    """The widest of some float (or complex) dtypes, without relying on the promotion mode.

    Used where two leaves of different dtypes meet (bf16 state with f32 grads, f32 initial
    params with f64 params); complex wins over real of the same width.
    """
    best = jnp.dtype(dtypes[0])
    for d in dtypes[1:]:
        d = jnp.dtype(d)
        if jnp.issubdtype(d, jnp.complexfloating) and not jnp.issubdtype(best, jnp.complexfloating):
            real = jnp.finfo(best).dtype
            best = d if d.itemsize >= 2 * real.itemsize else (jnp.complex128 if real.itemsize == 8 else d)
        elif jnp.issubdtype(best, jnp.complexfloating) and not jnp.issubdtype(d, jnp.complexfloating):
            if d.itemsize > jnp.finfo(best).dtype.itemsize:
                best = jnp.dtype(jnp.complex128)
        elif d.itemsize > best.itemsize:
            best = d
    return best


def bias_correction_wide(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` in the widest enabled float; cast it where it is used."""
    dtype = default_float()
    return 1 - as_dtype(decay, dtype) ** jnp.asarray(count).astype(dtype)
