"""Optimizer-state memory accounting: bytes of state per parameter, measured abstractly."""

from __future__ import annotations

import math
from typing import Any

import jax

from gradtx._base import GradientTransformation


def state_bytes_per_param(tx: GradientTransformation, params: Any) -> float:
    """Bytes of ``tx``'s state per parameter entry, found without allocating anything.

    .. math::
       \\frac{\\sum_{\\ell \\in \\mathrm{leaves}(\\mathrm{tx.init}(p))} \\mathrm{nbytes}(\\ell)}
             {\\sum_{\\ell \\in \\mathrm{leaves}(p)} \\mathrm{size}(\\ell)}

    The state's shapes come from :func:`jax.eval_shape`, so ``params`` may be
    ``jax.ShapeDtypeStruct`` leaves of a model too large to materialise.

    Args:
      tx: the transform.
      params: the params (arrays or ``jax.ShapeDtypeStruct`` leaves).

    Returns:
      The state bytes per parameter entry, e.g. 8.0 for AdamW with float32 moments.

    Raises:
      ValueError: when ``params`` holds no entries.

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"w": jax.ShapeDtypeStruct((1024, 1024), jnp.float32)}
      >>> gradtx.state_bytes_per_param(gradtx.adamw(1e-3), params)  # two float32 moments (+ a counter)
      8.000003814697266
    """
    n = sum(math.prod(jax.numpy.shape(p)) for p in jax.tree.leaves(params))
    if n == 0:
        raise ValueError("state_bytes_per_param: `params` holds no entries.")
    state = jax.eval_shape(tx.init, params)
    nbytes = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(state))
    return nbytes / n
