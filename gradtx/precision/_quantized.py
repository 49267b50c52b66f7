"""Quantized optimizer state: 8-bit blockwise dynamic quantization of any transform's state.

:func:`quantized_state` wraps a transform and stores each large floating per-parameter state
leaf (Adam's moments, a momentum trace, RMSprop's average, ...) as one ``int8`` code per
entry plus one ``float32`` scale per block of ``block_size`` entries, following Dettmers et
al.'s blockwise dynamic quantization. The inner transform still computes in float32: the
state is decoded at the start of ``update`` and encoded again at its end.

The codes index one of two fixed 256-entry *dynamic maps* on ``[-1, 1]`` / ``[0, 1]`` (see
:func:`dynamic_map`), whose entries are spaced densely near zero and linearly within each
decade, so that entries much smaller than the block's largest one keep a few significant
digits instead of rounding to zero.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation
from gradtx._sharding_types import reshard_on_own_mesh, split_sharding

_SUPPORTED_BITS = (8,)
# Code `c` (an int8) stands for entry `c + _OFFSET` of a map.
_OFFSET = 128


def dynamic_map(signed: bool) -> np.ndarray:
    """The 256 values an 8-bit code stands for, as a sorted float64 NumPy array.

    The maps follow the *dynamic tree* layout of Dettmers et al.: a code's magnitude has a
    decimal exponent :math:`10^{-e}` and a linear fraction in :math:`(0.1, 1]` with
    :math:`2^{f}` steps, where the finer decades get fewer fraction bits:

    .. math::
       \\{0\\} \\cup \\{\\pm 10^{-e} (0.1 + 0.9\\, k / 2^{B-1-e}) : 0 \\le e < B,\\ 1 \\le k \\le 2^{B-1-e}\\}

    with :math:`B = 7` magnitude bits and a sign for ``signed=True`` (127 magnitudes from
    :math:`10^{-6}` to 1, mirrored, 0 in the middle; the first entry repeats -1 so that there
    are 256), and :math:`B = 8` without a sign for ``signed=False`` (0 and 255 magnitudes
    from :math:`10^{-7}` to 1). Both contain 0 and 1 exactly, so a block's largest entry and
    exact zeros survive a round trip unchanged.

    Args:
      signed: the map for state of either sign (``True``) or for non-negative state (``False``).

    Returns:
      A sorted ``float64`` array of 256 values in ``[-1, 1]`` (``[0, 1]`` when unsigned).

    Examples:
      >>> from gradtx.precision._quantized import dynamic_map
      >>> m = dynamic_map(signed=False)
      >>> len(m), float(m[0]), float(m[1]), float(m[-1])
      (256, 0.0, 1e-07, 1.0)

    References:
      Dettmers et al., "8-bit Optimizers via Block-wise Quantization", https://arxiv.org/abs/2110.02861, 2022.
    """
    bits = 7 if signed else 8
    mags = []
    for e in range(bits):
        steps = 2 ** (bits - 1 - e)
        mags.append(10.0**-e * (0.1 + 0.9 * np.arange(1, steps + 1) / steps))
    m = np.sort(np.concatenate(mags))
    values = np.concatenate([[-1.0], -m[::-1], [0.0], m]) if signed else np.concatenate([[0.0], m])
    assert values.shape == (256,)
    return values


def _midpoints(values: np.ndarray) -> np.ndarray:
    return ((values[1:] + values[:-1]) / 2).astype(np.float32)


# Both maps in one table each: the unsigned map at [0, 256), the signed one at [256, 512), so that a
# block's map is an offset into one lookup. The midpoints are padded with +inf to 256 per map.
_MAPS = np.concatenate([dynamic_map(False), dynamic_map(True)]).astype(np.float32)
_MIDS = np.concatenate([np.append(_midpoints(dynamic_map(s)), np.inf) for s in (False, True)]).astype(np.float32)
_SIGNED_BASE = 256


class QuantizedArray(NamedTuple):
    """One state leaf stored by :func:`quantized_state`.

    Attributes:
      codes: ``int8``, the leaf's shape: code ``c`` stands for entry ``c + 128`` of a
        :func:`dynamic_map`, scaled by its block's scale.
      scale: ``float32``, one per block: the leaf's leading dimensions followed by the number
        of blocks (see :func:`quantized_state`). Its magnitude is the block's largest
        absolute entry; its sign bit selects the map: set (``-absmax``) for the unsigned map
        (every entry of the block was ``>= 0``), clear for the signed map.
    """

    codes: jax.Array
    scale: jax.Array


def block_layout(shape: tuple[int, ...], block_size: int) -> tuple[tuple[int, ...], int, int]:
    """How a leaf of ``shape`` is cut into blocks: ``(leading_shape, row_length, blocks_per_row)``.

    The leaf is viewed as rows over its fewest trailing dimensions whose product is at least
    ``block_size`` (all of them when there are too few entries); each row is cut into blocks
    of ``block_size`` consecutive entries, the last one zero-padded. The leading dimensions
    are kept, so a leaf split over devices along them keeps its blocks (and scales) local.
    """
    k = len(shape)
    for i in range(1, len(shape) + 1):
        if math.prod(shape[len(shape) - i :]) >= block_size:
            k = i
            break
    lead = tuple(shape[: len(shape) - k])
    row = math.prod(shape[len(shape) - k :])
    return lead, row, -(-row // block_size)


def _explicit_spec(x: jax.Array) -> tuple[Any, ...] | None:
    """``x``'s partition spec (padded to its rank) where it is sharded in explicit mode, else ``None``."""
    sharding = split_sharding(x)
    if sharding is None:
        return None
    spec = tuple(sharding.spec)
    return spec + (None,) * (x.ndim - len(spec))


def _blocks(x: jax.Array, block_size: int, pad_value: Any) -> tuple[jax.Array, tuple[Any, ...] | None]:
    """``x`` as ``(*lead, blocks, block_size)``, and its spec to restore when one was changed.

    In explicit sharding mode a reshape must not split or merge a sharded dimension, so a leaf
    sharded along the dimensions that form its rows is first resharded to keep only its
    leading dimensions' sharding (an all-gather of those dimensions; the usual ZeRO layout,
    sharded along the first dimension, needs none).
    """
    lead, row, nb = block_layout(tuple(x.shape), block_size)
    spec = _explicit_spec(x)
    if spec is not None and any(s is not None for s in spec[len(lead) :]):
        x = reshard_on_own_mesh(x, spec[: len(lead)])
    else:
        spec = None
    x = x.reshape((*lead, row))
    if nb * block_size != row:
        x = jnp.pad(x, [(0, 0)] * len(lead) + [(0, nb * block_size - row)], constant_values=pad_value)
    return x.reshape((*lead, nb, block_size)), spec


def _unblock(x: jax.Array, shape: tuple[int, ...], block_size: int, spec: tuple[Any, ...] | None) -> jax.Array:
    lead, row, nb = block_layout(shape, block_size)
    out = x.reshape((*lead, nb * block_size))[..., :row].reshape(shape)
    return out if spec is None else reshard_on_own_mesh(out, spec, like=x)


def _lookup(values: np.ndarray, idx: jax.Array) -> jax.Array:
    """``values[idx]`` for a constant table; in explicit sharding mode the result is placed like ``idx``."""
    table = jnp.asarray(values)
    sharding = jax.typeof(idx).sharding
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or jax.sharding.AxisType.Explicit not in mesh.axis_types:
        return table[idx]
    return reshard_on_own_mesh(table, (), like=idx).at[idx].get(out_sharding=sharding)


def _nearest(v: jax.Array, base: jax.Array) -> jax.Array:
    """The index (0..255) of the map entry nearest to each ``v``, in the map starting at ``base`` of ``_MIDS``.

    A branchless binary search over the map's midpoints: equal to ``jnp.searchsorted(midpoints, v)``,
    whose scan does not trace in explicit sharding mode.
    """
    idx = jnp.zeros_like(v, jnp.int32)  # placed like v (explicit sharding)
    step = 128
    while step:
        cand = idx + step
        idx = jnp.where(_lookup(_MIDS, base + cand - 1) < v, cand, idx)
        step //= 2
    return idx


# Jitted so that an eager ``update`` runs each leaf's encoding as one compiled program rather than dozens of
# dispatched ops (inside an outer ``jax.jit`` it is inlined).
@functools.partial(jax.jit, static_argnames="block_size")
def quantize(x: jax.Array, block_size: int) -> QuantizedArray:
    """Encodes a real floating array blockwise (see :func:`quantized_state`).

    Each block is divided by its largest absolute entry and every entry is rounded to the
    nearest value of the unsigned :func:`dynamic_map` when the block has no negative entry,
    else of the signed one.
    """
    blocks, spec = _blocks(x.astype(jnp.float32), block_size, 0)
    absmax = jnp.max(jnp.abs(blocks), axis=-1)
    unsigned = jnp.all(blocks >= 0, axis=-1)
    safe = jnp.where(absmax > 0, absmax, jnp.ones_like(absmax))
    normed = blocks / safe[..., None]
    base = jnp.where(unsigned, 0, _SIGNED_BASE).astype(jnp.int32)[..., None]
    idx = _nearest(normed, base)
    codes = _unblock((idx - _OFFSET).astype(jnp.int8), tuple(x.shape), block_size, spec)
    return QuantizedArray(codes=codes, scale=jnp.where(unsigned, -absmax, absmax))


@functools.partial(jax.jit, static_argnames="block_size")
def dequantize(q: QuantizedArray, block_size: int) -> jax.Array:
    """Decodes a :class:`QuantizedArray` into a ``float32`` array of its codes' shape."""
    shape = tuple(q.codes.shape)
    codes, spec = _blocks(q.codes, block_size, 0)
    idx = codes.astype(jnp.int32) + _OFFSET
    base = jnp.where(jnp.signbit(q.scale), 0, _SIGNED_BASE).astype(jnp.int32)[..., None]
    values = _lookup(_MAPS, base + idx)
    return _unblock(values * jnp.abs(q.scale)[..., None], shape, block_size, spec)


def _is_quantized(x: Any) -> bool:
    return isinstance(x, QuantizedArray)


def quantized_state(inner: Any, bits: int = 8, block_size: int = 256, min_size: int = 4096) -> GradientTransformation:
    """Stores ``inner``'s large per-parameter state in 8 bits per entry (blockwise dynamic quantization).

    A state leaf of ``inner`` is quantized when it is a real floating array with at least
    ``min_size`` entries that is a per-parameter statistic: its key path ends with a param's
    key path (``state[0].mu['w']`` for ``params['w']``, the layout every gradtx transform
    uses) and it has that param's shape. Scalars, counters, factored statistics and stacked
    histories are left alone, even where their shape happens to equal another param's. Each such leaf is cut into blocks
    (below) and becomes a :class:`QuantizedArray`: for a block :math:`b` with largest
    absolute entry :math:`s_b`,

    .. math::
       c_i = \\operatorname{argmin}_j |x_i / s_b - q_j|, \\qquad \\hat x_i = s_b\\, q_{c_i},

    where :math:`q` is the unsigned :func:`dynamic_map` when every entry of the block is
    ``>= 0`` and the signed one otherwise. ``update`` decodes the state to ``float32``, runs
    ``inner.update`` on it, and encodes the new state; the updates are ``inner``'s, computed
    from the decoded state. The state tree is ``inner``'s with each quantized leaf replaced
    by its :class:`QuantizedArray` (``codes`` shaped like the param, ``scale`` one per block).

    The map is chosen per block from the values being stored, and recorded in the sign of
    the block's scale (no extra memory): non-negative state such as second moments always
    gets the unsigned map, with twice the resolution of the signed one, and a block of a
    signed state (a first moment) that happens to hold no negative entry gets it too, which
    is never less accurate. This needs no knowledge of which fields of which transform are
    non-negative, so it works for any transform.

    Blocks: the leaf is viewed as rows over its fewest trailing dimensions holding at least
    ``block_size`` entries (e.g. a ``(32000, 768)`` embedding as 32000 rows of 768), and each
    row is cut into blocks of ``block_size`` consecutive entries (the last one zero-padded),
    so ``scale`` has the leaf's leading dimensions and one more for the blocks
    (``(32000, 3)`` here). Eligibility and blocks depend only on the leaf's global shape,
    never on how it is sharded, so the numbers do not depend on the mesh; the codes take
    the param's sharding and the scales its sharding over the leading dimensions.

    Memory: one byte per entry plus ``4 / block_size`` for the scales, i.e. about 2.03 bytes
    per parameter for AdamW's two moments at the default block size, against 8 in float32.

    Args:
      inner: the transform whose state is stored quantized (any gradtx transform; a foreign
        one is accepted like in :func:`gradtx.chain`).
      bits: bits per code; only 8 is supported. Default 8.
      block_size: entries per block, a power of two. Default 256.
      min_size: the fewest entries a leaf needs to be quantized, ``>= 0``; smaller leaves (biases,
        norms' scales) stay in their dtype, where quantizing saves little. Default 4096.

    Returns:
      A :class:`~gradtx.GradientTransformation` whose state is ``inner``'s with the large
      floating per-parameter leaves replaced by :class:`QuantizedArray`.

    Raises:
      ValueError: when ``bits`` is not supported, ``block_size`` is not a positive power of
        two, or ``min_size`` is negative.
      TypeError: when an argument has the wrong type, or ``inner`` is not a transform.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.ones((16, 512)), "b": jnp.zeros(512)}
      >>> tx = gradtx.quantized_state(gradtx.adamw(1e-3), min_size=1024)
      >>> state = tx.init(params)
      >>> mu = state[0].mu  # adamw = chain(scale_by_adam, ...): its first state
      >>> mu["w"].codes.dtype, mu["w"].codes.shape, mu["w"].scale.shape, mu["b"].dtype
      (dtype('int8'), (16, 512), (16, 2), dtype('float32'))
      >>> grads = {"w": jnp.ones((16, 512)), "b": jnp.ones(512)}
      >>> updates, state = tx.update(grads, state, params)
      >>> round(float(updates["w"][0, 0]), 6)  # Adam's first step: -lr * sign(g)
      -0.001

    References:
      Dettmers et al., "8-bit Optimizers via Block-wise Quantization", https://arxiv.org/abs/2110.02861, 2022.
    """
    where = "quantized_state"
    inner = as_gradient_transformation(inner, where=f"{where}: `inner`")
    _checks.check_int("bits", bits, where=where)
    if bits not in _SUPPORTED_BITS:
        raise ValueError(f"{where}: `bits` must be one of {list(_SUPPORTED_BITS)}, got {bits}.")
    _checks.check_int("block_size", block_size, where=where, low=1)
    if block_size & (block_size - 1):
        raise ValueError(f"{where}: `block_size` must be a power of two (>= 1), got {block_size}.")
    _checks.check_int("min_size", min_size, where=where, low=0)

    def init_fn(params: Params) -> OptState:
        shapes = {tuple(path): tuple(jnp.shape(p)) for path, p in jax.tree_util.tree_flatten_with_path(params)[0]}

        def per_parameter(path: tuple[Any, ...], shape: tuple[int, ...]) -> bool:
            # The leaf sits at a param's key path (as a suffix: `state[0].mu['w']` for `params['w']`)
            # and has that param's shape.
            return any(shapes.get(path[i:]) == shape for i in range(len(path) + 1))

        def store(path: Any, x: Any) -> Any:
            if not (hasattr(x, "shape") and hasattr(x, "dtype")) or not jnp.issubdtype(x.dtype, jnp.floating):
                return x
            shape = tuple(x.shape)
            if math.prod(shape) < min_size or not per_parameter(tuple(path), shape):
                return x
            return quantize(x, block_size)

        return jax.tree_util.tree_map_with_path(store, inner.init(params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        decoded = jax.tree.map(
            lambda x: dequantize(x, block_size) if _is_quantized(x) else x, state, is_leaf=_is_quantized
        )
        updates, new_inner = inner.update(updates, decoded, params, **extra_args)

        def store(old: Any, new: Any) -> Any:
            return quantize(new, block_size) if _is_quantized(old) else new

        return updates, jax.tree.map(store, state, new_inner, is_leaf=_is_quantized)

    return GradientTransformation(init_fn, update_fn)
