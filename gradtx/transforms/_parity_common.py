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

# The per-leaf helpers are the catalog's; only the bias correction and dtype widening differ here.
from gradtx.transforms._moments import abs_sq, check_updates, compute_dtype, nan_unless_finite, unzip
from gradtx.transforms._moments import as_dtype as hp

__all__ = [
    "abs_sq",
    "bias_correction",
    "check_updates",
    "compute_dtype",
    "default_float",
    "hp",
    "nan_unless_finite",
    "unzip",
    "wider",
]


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


def bias_correction(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` in the widest enabled float; cast it where it is used."""
    dtype = default_float()
    return 1 - hp(decay, dtype) ** jnp.asarray(count).astype(dtype)
