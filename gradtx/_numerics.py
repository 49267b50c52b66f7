"""The one dtype policy of gradtx: compute dtypes, bias correction, norms, and making state leaves.

Every transform computes in a *compute dtype*: the leaf's dtype promoted to at least
float32 (complex leaves stay complex). That keeps float64 exact, makes bf16/fp16
statistics accurate, and keeps ``eps`` from underflowing to zero in float16 (where
``1e-8`` rounds to 0 and a zero-gradient Adam step would be ``0 / 0``). Results are cast
back to the update's dtype and to each state leaf's stored dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _tree
from gradtx._base import EmptyState, InitFn, Params
from gradtx._sharding_types import check_sharding_types

_T = TypeVar("_T")


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


def cast(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)``, or ``x`` itself when it already is a (not weakly typed) array of ``dtype``.

    The result is the same either way (jax returns such an array unchanged), but ``astype``
    costs a Python dispatch while tracing: per-leaf functions call this on every leaf.
    """
    if isinstance(x, jax.Array) and x.dtype == dtype and not x.weak_type:
        return x
    return x.astype(dtype)


def per_dtype(build: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """``build(dtype)`` computed once per dtype: one step's scalars, shared by all its leaves.

    A transform's ``update`` makes ``scalars = per_dtype(lambda dtype: ...)`` holding the
    hyperparameters cast to ``dtype``, its bias corrections and the like, and each leaf's
    function calls ``scalars(compute_dtype)``. The values are those the leaf would compute
    itself (the same ops on the same inputs, so eager results are bit-identical), but a tree
    of thousands of leaves traces them once per dtype instead of once per leaf, which was
    most of the trace time of a large tree (bench/NOTES.md, changes 4 and 5). Make it inside
    ``update``: the memo then lives for one step (one trace) only.
    """
    cached = functools.cache(build)
    return lambda dtype: cached(jnp.dtype(dtype))


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


def bias_correction(decay: Any, count: Any) -> jax.Array:
    """``1 - decay**count`` in the widest enabled float (float64 under x64); cast it where it is used.

    The one bias-correction rule of gradtx. It is computed wide, not in the leaf's dtype,
    because ``1 - 0.999**t`` cancels: float32 keeps only about four significant digits of it
    (``1 - 0.999`` is ``0.0009999871`` in float32, 1.3e-5 off relative; ``t = 10, 100`` are off
    as much), an error every Adam-family step divides by. Computing it in the widest enabled
    float and casting the result once where it is used is exact to the leaf's precision, and
    agrees with optax, whose ``1 - decay**count`` promotes to the default float.

    Args:
      decay: the moment's decay rate (a number, array or tracer).
      count: the step count (usually int32).

    Returns:
      A scalar of :func:`default_float` dtype.
    """
    dtype = default_float()
    return 1 - as_dtype(decay, dtype) ** jnp.asarray(count).astype(dtype)


def one_minus(decay: Any, dtype: Any) -> jax.Array:
    """``1 - decay`` as ``dtype``, computed in the widest enabled float like :func:`bias_correction`.

    A moving average weighted by ``1 - decay`` sums to ``1 - decay**t`` only when both are
    computed alike: float32's ``1 - float32(0.999)`` is 1.3e-5 off, which an exact bias
    correction would no longer cancel. So both are taken from the exact ``decay``.
    """
    return (1 - as_dtype(decay, default_float())).astype(dtype)


def norm_dtype(*dtypes: Any) -> Any:
    """The real dtype squares of leaves of ``dtypes`` are summed in: the one accumulation rule.

    At least float32 (a bf16/fp16 sum of squares over millions of entries loses all precision
    or overflows: fp16's largest value is 65504), float64 kept, complex mapped to its real
    part (squares are ``|x|^2``), the widest over several leaves; non-float dtypes count as float32.
    """
    reals = []
    for dtype in dtypes:
        real = real_dtype(dtype)
        floating = jnp.issubdtype(real, jnp.floating) and jnp.finfo(real).bits >= 32
        reals.append(real if floating else jnp.dtype(jnp.float32))
    return wider(*reals) if reals else jnp.dtype(jnp.float32)


def sum_of_squares(x: Any, axis: Any = None, *, keepdims: bool = False, dtype: Any = None) -> jax.Array:
    """``sum |x|^2`` of one array over ``axis`` (all axes by default), summed in ``dtype``.

    ``dtype`` defaults to :func:`norm_dtype` of ``x``; entries are cast to it before they are
    squared. The result is real.
    """
    x = jnp.asarray(x)
    acc = norm_dtype(x.dtype) if dtype is None else jnp.dtype(dtype)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        re, im = jnp.real(x).astype(acc), jnp.imag(x).astype(acc)
        sq = re * re + im * im
    else:
        xa = x.astype(acc)
        sq = xa * xa
    return jnp.sum(sq, axis=axis, keepdims=keepdims)


@jax.custom_jvp
def sqrt_of_squares(s: Any) -> Any:
    """``sqrt(s)`` of a sum of squares (or of each in a pytree of them), with derivative 0 at ``s = 0``.

    A norm at zero (a zero-initialised bias, a zero gradient) would otherwise send
    ``0 * inf = NaN`` back through every ``where`` or ``maximum`` that ignores it, where optax's
    ``safe_norm`` gives finite meta-gradients. The value is ``jnp.sqrt(s)``, and so is the
    compiled step: a custom derivative rather than guarding selects, which XLA would copy with
    the whole global-norm reduction into every consumer kernel (6x the instructions on 200 leaves).
    Per-leaf norms go through one call with a list: each call costs ~0.3 ms of tracing.
    """
    return jax.tree.map(jnp.sqrt, s)


@sqrt_of_squares.defjvp
def _sqrt_of_squares_jvp(primals: Any, tangents: Any) -> tuple[Any, Any]:
    (s,), (ds,) = primals, tangents

    def derivative(root: jax.Array, dx: jax.Array) -> jax.Array:
        nonzero = root != 0  # NaN stays NaN through the division
        return jnp.where(nonzero, dx / (2 * jnp.where(nonzero, root, jnp.ones_like(root))), jnp.zeros_like(dx))

    roots = jax.tree.map(jnp.sqrt, s)
    return roots, jax.tree.map(derivative, roots, ds)


def l2_norm(x: Any, axis: Any = None, *, keepdims: bool = False, dtype: Any = None) -> jax.Array:
    """``sqrt(sum |x|^2)`` of one array: see :func:`sum_of_squares` and :func:`sqrt_of_squares`."""
    return sqrt_of_squares(sum_of_squares(x, axis, keepdims=keepdims, dtype=dtype))


def tree_sum_of_squares(tree: Any) -> jax.Array:
    """``sum_i |x_i|^2`` over all leaves together, in :func:`norm_dtype` of all their dtypes.

    A tree without leaves gives a float32 zero.
    """
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
    acc = norm_dtype(*[x.dtype for x in leaves])
    total = jnp.zeros([], acc)
    for x in leaves:
        total = total + sum_of_squares(x, dtype=acc)
    return total


def tree_l2_norm(tree: Any) -> jax.Array:
    """The l2 norm of all leaves together, ``sqrt(sum_i |x_i|^2)``: see :func:`tree_sum_of_squares`."""
    return sqrt_of_squares(tree_sum_of_squares(tree))


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
    _tree.check_float_leaves(updates, "updates", where=where, allow_complex=allow_complex, scalars_ok=False)
    if state_tree is not None:
        _tree.check_same_structure(state_tree, updates, state_name, "updates", where=where)
        check_sharding_types(state_tree, updates, state_name, "updates", where=where, strict=True)
    if params is not None:
        _tree.check_same_structure(params, updates, "params", "updates", where=where)
        # Integer params would have every update truncated away by `apply_updates`.
        _tree.check_float_leaves(params, "params", where=where, allow_complex=allow_complex)
        check_sharding_types(params, updates, "params", "updates", where=where, strict=False)


def check_init_params(params: Any, *, where: str, allow_complex: bool = True) -> None:
    """The ``init``-time check every transform runs first: params must be floating (or complex) arrays.

    Raises:
      TypeError: naming the first leaf that is not, e.g. ``params['step'] is int32[]``.
    """
    _tree.check_float_leaves(params, "params", where=where, allow_complex=allow_complex)


def empty_init(where: str, *, allow_complex: bool = True) -> InitFn:
    """The ``init`` of a stateless transform: :func:`check_init_params`, then ``EmptyState()``."""

    def init_fn(params: Params) -> EmptyState:
        check_init_params(params, where=where, allow_complex=allow_complex)
        return EmptyState()

    return init_fn


def _placed_zeros(x: jax.Array, dtype: Any) -> jax.Array:
    """Zeros of ``dtype`` that XLA (and explicit sharding types) place exactly like the traced ``x``.

    Under ``jax.jit`` on an ``Auto`` mesh a tracer carries no sharding, and a bare constant
    is replicated on every device; deriving the zeros from ``x`` by ops that XLA may not fold
    (``0 * x`` is NaN for an infinite ``x``, so the select and ``abs`` keep it an exact
    ``+0``) lets sharding propagation give them ``x``'s layout. In explicit mode the same
    elementwise ops keep ``x``'s sharding type.
    """
    # No derivative either: an inf cotangent reaching the zeros would come back as 0 * inf = NaN
    # on the params (meta-gradients through `init`); optax's zeros_like has none.
    x = jax.lax.stop_gradient(x)
    r = jnp.real(x) if jnp.issubdtype(x.dtype, jnp.complexfloating) else x
    zero = jnp.zeros([], r.dtype)
    return jnp.abs(jnp.where(jnp.isfinite(r), r, zero) * zero).astype(dtype)


def _dropped_sharding(sharding: Any, ndim: int, drop: tuple[int, ...], lead: int) -> Any:
    """``sharding`` with the dims in ``drop`` removed and ``lead`` unsharded dims in front.

    ``None`` when it cannot be derived without computing (a sharding other than a
    ``NamedSharding`` or single device), then the caller lets jax place the result.
    """
    if isinstance(sharding, jax.sharding.SingleDeviceSharding):
        return sharding
    if isinstance(sharding, jax.sharding.NamedSharding) and isinstance(sharding.mesh, jax.sharding.Mesh):
        spec = _dropped_spec(sharding.spec, ndim, drop, lead)
        return jax.sharding.NamedSharding(sharding.mesh, spec, memory_kind=sharding.memory_kind)
    return None


def _dropped_spec(spec: Any, ndim: int, drop: tuple[int, ...], lead: int) -> jax.sharding.PartitionSpec:
    """``spec`` (of a rank-``ndim`` array) without the entries of ``drop``, after ``lead`` ``None``s."""
    entries = tuple(spec) + (None,) * (ndim - len(spec))
    return jax.sharding.PartitionSpec(*([None] * lead), *(s for i, s in enumerate(entries) if i not in drop))


def state_leaf(
    param: Any, value: Any = 0, dtype: Any = None, *, drop_axes: Any = (), lead_shape: Any = ()
) -> jax.Array:
    """One state leaf made like ``param``: the single place where gradtx creates per-parameter state.

    The result has ``param``'s shape (with the dims in ``drop_axes`` removed and ``lead_shape``
    prepended), is filled with ``value`` in ``dtype`` (default: ``param``'s dtype), and lives
    where ``param`` lives, so that eager, jitted, abstract and explicit-mode ``init`` agree:

    - a committed ``jax.Array`` (or a ``jax.ShapeDtypeStruct`` with a concrete sharding) gives
      its ``NamedSharding``, with the spec entries of dropped dims removed and ``None`` for the
      leading dims;
    - a tracer whose type is sharded on an all-``Explicit`` mesh gives a constant of that type
      (the spec adjusted as above), so ``jax.typeof`` of the leaf is the param's with the
      leaf's shape and dtype;
    - any other tracer (``jax.jit`` or ``jax.eval_shape`` on an ``Auto`` mesh, where types
      carry no sharding) gives zeros derived from the param itself (see :func:`_placed_zeros`),
      reduced over ``drop_axes`` and broadcast to ``lead_shape``, so that XLA's sharding
      propagation places the leaf like the param. (With ``out_shardings`` that differ from the
      params', XLA may then reshard once at init.)

    Args:
      param: an array, tracer, ``jax.ShapeDtypeStruct`` or scalar.
      value: the fill value (a scalar; may be traced).
      dtype: the leaf's dtype; ``None`` keeps ``param``'s (never weakly typed).
      drop_axes: dims of ``param`` that the statistic reduces away (factored statistics).
      lead_shape: dims put in front (a history of ``lead_shape[0]`` copies, as in L-BFGS).

    Returns:
      The state leaf.

    Examples:
      >>> import jax.numpy as jnp
      >>> state_leaf(jnp.ones((2, 3)), 1.0, jnp.float32, drop_axes=(1,)).shape
      (2,)
    """
    dtype = jnp.dtype(dtype if dtype is not None else _tree.leaf_dtype(param))
    ndim = len(jnp.shape(param))
    drop = tuple(sorted(a % ndim for a in drop_axes)) if ndim else ()
    lead = tuple(int(n) for n in lead_shape)
    if isinstance(param, Tracer):
        typed = jax.typeof(param).sharding
        explicit = isinstance(typed, jax.sharding.NamedSharding) and not typed.mesh.empty
        if explicit and typed.mesh.are_all_axes_explicit:
            # The type says where the param lives: a constant of the right type needs no data dependency.
            shape = lead + tuple(n for i, n in enumerate(jnp.shape(param)) if i not in drop)
            out = jax.sharding.NamedSharding(typed.mesh, _dropped_spec(typed.spec, ndim, drop, len(lead)))
            return jax.lax.full(shape, as_dtype(value, dtype), dtype, sharding=out)
        base = _placed_zeros(param, dtype)
        if drop:
            base = jnp.sum(base, axis=drop, dtype=dtype)
        if lead:
            base = jnp.broadcast_to(base, lead + base.shape)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
            return base
        return base + as_dtype(value, dtype)
    shape = lead + tuple(n for i, n in enumerate(jnp.shape(param)) if i not in drop)
    sharding = getattr(param, "sharding", None)
    placed = None
    # An uncommitted array (made without a device) stays uncommitted, as `jnp.zeros_like` does.
    if sharding is not None and getattr(param, "_committed", True):
        placed = _dropped_sharding(sharding, ndim, drop, len(lead))
    if isinstance(value, Tracer):
        placed = None  # a traced fill value: jit places the result
    fill = as_dtype(value, dtype) if isinstance(value, jax.Array) else value
    if placed is not None:
        return jnp.full(shape, fill, dtype, device=placed)
    if sharding is not None and not (drop or lead) and getattr(param, "_committed", True):
        return jnp.full_like(param, fill, dtype)
    return jnp.full(shape, fill, dtype)


def state_zeros(params: Any, dtype: Any = None) -> Any:
    """Zeros like each param (in ``dtype`` if given), placed like it: see :func:`state_leaf`."""
    return jax.tree.map(lambda p: state_leaf(p, 0, dtype), params)


def state_copy(param: Any, dtype: Any = None) -> jax.Array:
    """A copy of ``param`` (in ``dtype`` if given) for state that starts from the params' values.

    A real copy, placed like the param: ``astype`` to the same dtype returns the param itself,
    and state aliasing the params breaks donating both to a jitted step. An abstract param (a
    ``jax.ShapeDtypeStruct``) has no values: it gets the zeros :func:`state_leaf` makes, so
    abstract ``init`` still gives the state's shapes, dtypes and placement.
    """
    dtype = dtype if dtype is not None else _tree.leaf_dtype(param)
    if isinstance(param, jax.ShapeDtypeStruct):
        return state_leaf(param, 0, dtype)
    return jnp.array(param, dtype=dtype, copy=True)


def squares_dtype(param: Any, dtype: Any = None) -> Any:
    """The dtype of a state leaf that accumulates squared gradients (Adam's ``nu``, Adagrad's sums).

    ``dtype`` when given (the user's ``nu_dtype``); else the param's, raised to float32 for float16
    params: float16's smallest normal is 6e-5, so squares of gradients below about 1e-2 lose their
    precision or flush to zero, and Adam's step grows far beyond the learning rate (bfloat16 keeps
    float32's range and stays as it is).

    Examples:
      >>> import jax.numpy as jnp
      >>> squares_dtype(jnp.ones(2, jnp.float16)), squares_dtype(jnp.ones(2, jnp.bfloat16))
      (dtype('float32'), dtype(bfloat16))
    """
    if dtype is not None:
        return jnp.dtype(dtype)
    own = jnp.dtype(_tree.leaf_dtype(param))
    return jnp.dtype(jnp.float32) if own == jnp.float16 else own


def accumulator_dtype(param: Any, dtype: Any = None) -> Any:
    """The dtype of a running sum of gradients (momentum, EMA) asked to be ``dtype``.

    ``dtype`` when given, except that a complex param keeps a complex accumulator of that
    precision (``float32`` -> ``complex64``): storing a complex sum in a real dtype would drop
    its imaginary part silently. ``None``: the param's dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> accumulator_dtype(jnp.ones(2, jnp.complex128), jnp.float32), accumulator_dtype(jnp.ones(2), jnp.bfloat16)
      (dtype('complex64'), dtype(bfloat16))
    """
    own = jnp.dtype(_tree.leaf_dtype(param))
    if dtype is None:
        return own
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(own, jnp.complexfloating) and not jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.dtype(jnp.complex128) if dtype == jnp.float64 else jnp.dtype(jnp.complex64)
    return dtype


def state_squares(params: Any, value: Any = 0, dtype: Any = None) -> Any:
    """Like :func:`state_full`, for statistics of squared gradients: in :func:`squares_dtype`."""
    return jax.tree.map(lambda p: state_leaf(p, value, squares_dtype(p, dtype)), params)


def state_full(params: Any, value: Any, dtype: Any = None) -> Any:
    """``value`` everywhere, like each param (in ``dtype`` if given): see :func:`state_leaf`."""
    return jax.tree.map(lambda p: state_leaf(p, value, dtype), params)


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
