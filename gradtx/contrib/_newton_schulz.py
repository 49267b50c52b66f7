"""The Newton-Schulz orthogonalisation behind Muon, written so that a sharded matrix stays sharded.

Each step ``X <- a X + (b A + c A^2) X`` with ``A = X X^T`` contracts one side of the matrix. The
Gram matrix is the smaller side's (the fewest flops, optax's rule), so the larger side is contracted:
when it is sharded, every device multiplies its own block and only the small Gram matrix is
all-reduced. In explicit sharding mode the products say so (``out_sharding``), as jax requires there,
and a matrix sharded on its Gram side is gathered along it once per step rather than once per product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _numerics as num
from gradtx._masking import MaskedNode
from gradtx._sharding_types import on_own_mesh, reshard_on_own_mesh


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Muon orthogonalises; every other axis is a batch (layer) axis.

    A weight used as ``y = x @ W`` has its reduction axis first and its output axis second (the
    default). For a stack of layers ``W[l]`` of shape ``(L, d_in, d_out)`` (scanned layers), use
    ``MuonDimensionNumbers(reduction_axis=1, output_axis=2)``: each of the ``L`` matrices is
    orthogonalised on its own. Several axes may be given as a tuple; they are flattened together.

    Attributes:
      reduction_axis: the input axis (or axes). Default 0.
      output_axis: the output axis (or axes). Default 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib import MuonDimensionNumbers, scale_by_muon
      >>> params = {"layers": jnp.ones((3, 4, 2))}  # 3 stacked 4x2 layers
      >>> tx = scale_by_muon(weight_dimension_numbers={"layers": MuonDimensionNumbers(1, 2)})
      >>> updates, _ = tx.update(params, tx.init(params))
      >>> updates["layers"].shape
      (3, 4, 2)
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dims(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def _is_dims_entry(x: Any) -> bool:
    return x is None or isinstance(x, (MuonDimensionNumbers, MaskedNode))


def _axes(axis: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    return tuple(int(a) % ndim for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis))


def _layout(shape: tuple[int, ...], dims: MuonDimensionNumbers, *, name: str, where: str, route: str) -> Any:
    """``(batch, reduction, output)`` axes of a leaf, or a ``ValueError`` naming it and where to route it."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"{where}: {name} has shape {list(shape)}; Muon orthogonalises matrices (2-D, or more dimensions "
            f"with a layer axis given by MuonDimensionNumbers), not {ndim}-D leaves. {route}"
        )
    given = [
        int(a)
        for axis in (dims.reduction_axis, dims.output_axis)
        for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis)
    ]
    if any(not -ndim <= a < ndim for a in given):
        # Taken modulo the rank, axis 5 of a matrix would silently be axis 1.
        raise ValueError(
            f"{where}: {name} has shape {list(shape)} and dimension numbers {dims}: every axis must be in "
            f"[{-ndim}, {ndim})."
        )
    red, out = _axes(dims.reduction_axis, ndim), _axes(dims.output_axis, ndim)
    if not red or not out or set(red) & set(out) or len(set(red)) < len(red) or len(set(out)) < len(out):
        raise ValueError(
            f"{where}: {name} has shape {list(shape)} and dimension numbers {dims}: the reduction and output "
            f"axes must be non-empty and disjoint."
        )
    batch = tuple(a for a in range(ndim) if a not in red and a not in out)
    return batch, red, out


def _spec_of(x: jax.Array) -> tuple[Any, ...] | None:
    """The partition spec of ``x``'s type on an all-``Explicit`` mesh (padded), else ``None``."""
    sharding = jax.typeof(x).sharding
    if not isinstance(sharding, jax.sharding.NamedSharding) or sharding.mesh.empty:
        return None
    if not sharding.mesh.are_all_axes_explicit:
        return None
    return tuple(sharding.spec) + (None,) * (x.ndim - len(sharding.spec))


def _gram(y: jax.Array, spec: tuple[Any, ...] | None) -> jax.Array:
    """``Y Y^H`` per batch entry, contracting the last axis; replicated over its two axes in explicit mode."""
    yh = jnp.conj(y) if jnp.iscomplexobj(y) else y
    if spec is None:
        return jnp.einsum("bpq,brq->bpr", y, yh)
    return jnp.einsum("bpq,brq->bpr", y, yh, out_sharding=on_own_mesh(y, (spec[0], None, None)))


def _ns_step(y: jax.Array, a: jax.Array, c: jax.Array) -> jax.Array:
    """One quintic step ``c0 Y + (c1 A + c2 A^2) Y`` with ``A = Y Y^H`` given."""
    b = c[1] * a + c[2] * jnp.einsum("bpr,brs->bps", a, a)
    return c[0] * y + jnp.einsum("bpr,brq->bpq", b, y)


def _newton_schulz(y: jax.Array, coeffs: jax.Array, steps: int, preconditioning: str, eps: Any) -> jax.Array:
    """Orthogonalises each ``y[b]`` (shape ``(p, q)``, Gram over ``p``) by ``steps`` quintic steps."""
    spec = _spec_of(y)
    rdt = num.real_dtype(y.dtype)
    eps_r = num.as_dtype(eps, rdt)
    if preconditioning == "frobenius":
        norm = num.sqrt_of_squares(jnp.sum(num.abs_sq(y), axis=(1, 2), keepdims=True))
        y = y / (norm + eps_r).astype(y.dtype)
    elif preconditioning == "spectral":
        # The largest singular value needs an SVD of the whole matrix: the one asked-for gather.
        norm = jnp.linalg.norm(y, ord=2, axis=(1, 2), keepdims=True)
        y = y / (norm + eps_r).astype(y.dtype)
    for i in range(steps):
        c = coeffs if coeffs.ndim == 1 else coeffs[i]
        a = _gram(y, spec)
        if i == 0 and preconditioning == "aol":
            s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1), eps_r))[..., None].astype(y.dtype)
            y, a = y * s, a * s * jnp.swapaxes(s, -1, -2)
        elif i == 0 and preconditioning == "schatten":
            fro = num.sqrt_of_squares(jnp.sum(num.abs_sq(a), axis=(1, 2), keepdims=True))
            s = jax.lax.rsqrt(jnp.maximum(fro, eps_r)).astype(y.dtype)
            y, a = y * s, a * s * s
        y = _ns_step(y, a, c)
    return y


def orthogonalize(
    x: jax.Array,
    dims: MuonDimensionNumbers,
    coeffs: jax.Array,
    steps: int,
    preconditioning: str,
    eps: Any,
    *,
    name: str = "x",
    where: str = "scale_by_muon",
    route: str = "",
) -> jax.Array:
    """The Newton-Schulz orthogonalisation of one leaf (each matrix of its batch axes), in ``x``'s dtype.

    The Gram matrix is the smaller side's (optax's rule: fewest flops), so the contraction runs
    over the larger side; a square matrix contracts its sharded side. When the contracted side is
    sharded, each device multiplies its own block and only the small Gram matrix is all-reduced.
    """
    batch, red, out = _layout(tuple(x.shape), dims, name=name, where=where, route=route)
    perm = batch + red + out
    shape3 = (
        math.prod(x.shape[a] for a in batch),
        math.prod(x.shape[a] for a in red),
        math.prod(x.shape[a] for a in out),
    )
    y = x if perm == tuple(range(x.ndim)) else jnp.transpose(x, perm)
    moved_shape = y.shape
    y = y.reshape(shape3) if y.shape != shape3 else y
    spec = _spec_of(y)
    rows, cols = shape3[1], shape3[2]
    transpose = rows > cols  # optax: the Gram matrix of the smaller side, contracting the larger one
    if rows == cols and spec is not None and preconditioning != "aol":
        transpose = spec[1] is not None and spec[2] is None  # a square matrix: contract its sharded side
    if transpose:
        y = jnp.swapaxes(y, 1, 2)
    typed = _spec_of(y)
    gathered = typed is not None and typed[1] is not None
    if typed is not None and gathered:
        # The Gram side is sharded: every product would gather the matrix along it again, so gather
        # it along that side once (explicit mode says so), iterate, and slice the result back.
        y = reshard_on_own_mesh(y, (typed[0], None, typed[2]))
    y = _newton_schulz(y, coeffs.astype(y.dtype), steps, preconditioning, eps)
    if typed is not None and gathered:
        y = reshard_on_own_mesh(y, typed)
    if transpose:
        y = jnp.swapaxes(y, 1, 2)
    y = y.reshape(moved_shape) if y.shape != moved_shape else y
    if perm != tuple(range(x.ndim)):
        y = jnp.transpose(y, tuple(int(i) for i in np.argsort(perm)))
    return y
