"""Clipping: elementwise, by global norm, adaptive (unit-wise, AGC) and per-example clipping."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import EmptyState, GradientTransformation, OptState, Params, Updates
from gradtx._stack_view import check_per_leaf, check_whole_tree
from gradtx._tree import path_str


def clip(max_delta: Any) -> GradientTransformation:
    """Clips every update entry into ``[-max_delta, max_delta]``.

    .. math:: u_t = \\min(\\max(g_t, -\\delta), \\delta)

    NaN entries stay NaN; infinities become :math:`\\pm\\delta`.

    Args:
      max_delta: :math:`\\delta \\ge 0`.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``max_delta`` is negative or NaN.
      TypeError: (while tracing) for complex or integer updates, naming the leaf.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.clip(max_delta=0.2)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.1])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.2, -0.1]
    """
    _checks.check_non_negative("max_delta", max_delta, where="clip")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        num.check_updates(updates, where="clip", params=params, allow_complex=False)

        limit = num.per_dtype(lambda dtype: num.as_dtype(max_delta, dtype))

        def leaf(g: jax.Array) -> jax.Array:
            delta = limit(g.dtype)
            return jnp.clip(g, -delta, delta)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(num.empty_init("clip", allow_complex=False), update_fn)


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
    """Rescales all updates together so that their joint l2 norm is at most ``max_norm``.

    .. math::
       \\|g\\| = \\sqrt{\\textstyle\\sum_i |g_i|^2}, \\qquad
       u_t = g_t \\cdot \\min\\!\\left(1, \\frac{c}{\\|g\\|}\\right).

    The norm is accumulated in at least float32. A zero norm, or ``max_norm=0``, stays
    finite: the factor is 1 when :math:`\\|g\\| \\le c`, so all-zero updates pass unchanged and
    ``max_norm=0`` maps every update to zero. A non-finite norm (an inf or NaN entry) gives
    non-finite updates (never silent zeros), so that :func:`gradtx.apply_if_finite` can skip
    the step.

    Args:
      max_norm: :math:`c \\ge 0`.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation`.

    Raises:
      ValueError: when ``max_norm`` is negative or NaN.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.clip_by_global_norm(1.0)
      >>> updates, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
      >>> round(float(updates["a"][0]), 4), round(float(updates["b"][0]), 4)  # norm 5 scaled to 1
      (0.6, 0.8)

    References:
      Pascanu et al., "On the difficulty of training Recurrent Neural Networks",
      https://arxiv.org/abs/1211.5063, 2012.
    """
    _checks.check_non_negative("max_norm", max_norm, where="clip_by_global_norm")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        check_whole_tree(updates, where="clip_by_global_norm", statistic="the global norm")
        num.check_updates(updates, where="clip_by_global_norm", params=params)
        norm = num.tree_l2_norm(updates)
        c = num.as_dtype(max_norm, norm.dtype)
        over = norm > c
        # Divide only where the norm exceeds c (> 0), so 0/0 never happens. A non-finite norm
        # would give c/inf = 0, silently zeroing the finite entries: make the factor NaN instead.
        safe_norm = jnp.where(over, norm, jnp.ones_like(norm))
        finite = jnp.isfinite(norm)
        # Real leaves: g / d * f with the scalars d = norm, f = c where the norm exceeds c, and
        # d = f = 1 (exact: g / 1 * 1 = g) elsewhere; d = NaN for a non-finite norm. No select
        # per entry: the clipped gradient is one kernel that the moments read, not a select of
        # g and g / norm * c repeated in each of them (bench/NOTES.md, change 10).
        divisor = jnp.where(finite, safe_norm, jnp.full_like(norm, jnp.nan))
        factor = jnp.where(over, c, jnp.ones_like(c))
        scalars = num.per_dtype(lambda dtype: (divisor.astype(dtype), factor.astype(dtype)))

        def leaf(g: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            gc = g.astype(dtype)
            if not jnp.issubdtype(dtype, jnp.complexfloating):
                d, f = scalars(dtype)
                # (g / norm) * c, the order optax uses, so float32 results agree bit for bit.
                return (gc / d * f).astype(g.dtype)
            # Complex division by 1 + 0j may turn -0 into +0: keep g itself where not clipped.
            clipped = gc / safe_norm.astype(dtype) * c.astype(dtype)
            out = jnp.where(over, clipped, gc)
            return jnp.where(finite, out, jnp.full_like(out, jnp.nan)).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(num.empty_init("clip_by_global_norm"), update_fn)


# Unit-wise norms: the axes reduced for each rank when `axis` is None (inputs on the leading axes,
# one unit per output channel on the last axis).
_UNIT_AXES = {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}


def _unitwise_norm(x: jax.Array, axis: Any, *, name: str) -> jax.Array:
    if axis is None and jnp.squeeze(x).ndim > 1:
        if x.ndim not in _UNIT_AXES:
            raise ValueError(
                f"adaptive_grad_clip: cannot choose unit-wise norm axes for {name} of shape {x.shape} "
                "(ranks up to 5 are known); pass `axis=`."
            )
        axis = _UNIT_AXES[x.ndim]
    # Kept with size-1 dims, not broadcast to x's shape: a broadcast result would be unsharded,
    # which explicit sharding mode refuses to mix with the sharded leaf in `jnp.where`.
    return num.l2_norm(x, axis, keepdims=True)


def adaptive_grad_clip(
    clipping: Any, eps: Any = 1e-3, axis: int | tuple[int, ...] | None = None
) -> GradientTransformation:
    """Adaptive gradient clipping (AGC): clips each unit's gradient relative to its param's norm.

    Per unit (an output channel; the whole leaf for scalars and vectors):

    .. math::
       u = \\begin{cases} g & \\|g\\| < \\lambda \\max(\\|x\\|, \\epsilon) \\\\
       g\\, \\frac{\\lambda \\max(\\|x\\|, \\epsilon)}{\\max(\\|g\\|, 10^{-6})} & \\text{else} \\end{cases}

    Unit norms reduce all axes but the last for rank 2-5 leaves (dense ``IO``, multi-head, conv
    ``HWIO``, 3-D conv), or over ``axis`` when given.

    Args:
      clipping: :math:`\\lambda \\ge 0`, the largest allowed gradient-to-param norm ratio.
      eps: :math:`\\epsilon \\ge 0`, a floor on the param norm (so zero-initialised params move). Default 1e-3.
      axis: the axes to reduce for the unit norms; ``None`` chooses by rank. Default ``None``.

    Returns:
      A stateless :class:`~gradtx.GradientTransformation` (state ``AdaptiveGradClipState``, an
      :class:`~gradtx.EmptyState`); ``update`` needs ``params``.

    Raises:
      ValueError: when an argument is negative; at update time, without params, or for a leaf of
        rank above 5 with ``axis=None`` (naming the leaf).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.adaptive_grad_clip(clipping=0.1)
      >>> updates, state = tx.update({"w": jnp.array([30.0, 40.0])}, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # rescaled to norm 0.1 * |w| = 0.2236
      [0.1342, 0.1789]

    References:
      Brock et al., "High-Performance Large-Scale Image Recognition Without Normalization",
      https://arxiv.org/abs/2102.06171, 2021.
    """
    where = "adaptive_grad_clip"
    _checks.check_non_negative("clipping", clipping, where=where)
    _checks.check_non_negative("eps", eps, where=where)
    if axis is not None and not isinstance(axis, (int, tuple)):
        raise TypeError(f"{where}: `axis` must be None, an int or a tuple of ints, got {axis!r:.60}.")

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="unit-wise norms of params and gradients")
        num.check_updates(updates, where=where, params=params, need_params=True)

        scalars = num.per_dtype(lambda dtype: tuple(num.as_dtype(x, dtype) for x in (clipping, eps, 1e-6)))

        def leaf(path: Any, g: jax.Array, x: jax.Array) -> jax.Array:
            dt = num.compute_dtype(num.wider(g.dtype, x.dtype))
            g_, x_ = num.cast(g, dt), num.cast(x, dt)
            name = f"updates{path_str(path)}"
            g_norm = _unitwise_norm(g_, axis, name=name)
            x_norm = _unitwise_norm(x_, axis, name=name)
            coefficient, eps_, tiny = scalars(g_norm.dtype)
            max_norm = coefficient * jnp.maximum(x_norm, eps_)
            factor = num.nan_unless_finite(max_norm / jnp.maximum(g_norm, tiny), g_norm)
            clipped = g_ * num.cast(factor, dt)
            return num.cast(jnp.where(g_norm < max_norm, g_, clipped), g.dtype)

        return jax.tree_util.tree_map_with_path(leaf, updates, params), state

    return GradientTransformation(num.empty_init("adaptive_grad_clip"), update_fn)


def _check_batched(grads: Any, where: str) -> int:
    leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
    if not leaves:
        raise ValueError(f"{where}: `grads` has no leaves.")
    sizes = set()
    for path, g in leaves:
        if jnp.ndim(g) < 1:
            raise ValueError(
                f"{where} expects per-example gradients with a batch dimension on axis 0, but "
                f"grads{path_str(path)} is a scalar."
            )
        sizes.add(jnp.shape(g)[0])
    if len(sizes) != 1:
        raise ValueError(
            f"{where}: all leaves of `grads` must share the batch size on axis 0, got sizes {sorted(sizes)}."
        )
    return sizes.pop()


def per_example_global_norm_clip(grads: Any, l2_norm_clip: Any) -> tuple[Any, jax.Array]:
    """Clips each example's gradient to a global l2 norm, then sums over the batch (DP-SGD).

    With :math:`g_i` the gradient tree of example :math:`i` (axis 0 of every leaf):

    .. math::
       \\bar g = \\sum_i g_i \\min\\left(1, \\frac{C}{\\|g_i\\|}\\right)

    (an example with zero norm keeps weight 1).

    Args:
      grads: a tree whose leaves carry the batch on axis 0.
      l2_norm_clip: :math:`C \\ge 0`.

    Returns:
      ``(summed_clipped_grads, num_clipped)``: the sum over the batch (leaves lose axis 0) and how
      many examples were scaled down (int32 scalar).

    Raises:
      ValueError: when a leaf has no batch axis, batch sizes differ, or ``l2_norm_clip`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> per_example = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}  # two examples, norms 5 and 0.5
      >>> summed, num_clipped = gradtx.per_example_global_norm_clip(per_example, l2_norm_clip=1.0)
      >>> [round(float(g), 4) for g in summed["w"]], int(num_clipped)
      ([0.9, 1.2], 1)

    References:
      Abadi et al., "Deep Learning with Differential Privacy", https://arxiv.org/abs/1607.00133, 2016.
    """
    where = "per_example_global_norm_clip"
    _checks.check_non_negative("l2_norm_clip", l2_norm_clip, where=where)
    _check_batched(grads, where)
    leaves = jax.tree.leaves(grads)
    # Integer gradients count as the default float here (as optax promotes them).
    acc = num.norm_dtype(*[num.compute_dtype(jnp.asarray(x).dtype) for x in leaves])
    sq = sum((num.sum_of_squares(x, tuple(range(1, jnp.ndim(x))), dtype=acc) for x in leaves), jnp.zeros([], acc))
    norms = num.sqrt_of_squares(sq)
    multipliers = jnp.nan_to_num(jnp.minimum(num.as_dtype(l2_norm_clip, acc) / norms, jnp.ones_like(norms)), nan=1.0)
    # An example with an infinite norm would get weight 0 (silently dropped): make it NaN.
    multipliers = num.nan_unless_finite(multipliers, norms)
    num_clipped = jnp.sum(multipliers < 1).astype(jnp.int32)

    def summed(g: Any) -> jax.Array:
        g = jnp.asarray(g)
        # Integer gradients are summed in the norm's float dtype (as optax promotes), never
        # with multipliers truncated to integers (which zeroes every clipped example).
        dtype = g.dtype if jnp.issubdtype(g.dtype, jnp.inexact) else multipliers.dtype
        return jnp.tensordot(multipliers.astype(dtype), g.astype(dtype), axes=1)

    return jax.tree.map(summed, grads), num_clipped


def per_example_layer_norm_clip(grads: Any, global_l2_norm_clip: Any, uniform: bool = True) -> tuple[Any, Any]:
    """Per-example clipping with one clip norm per layer (leaf), then a sum over the batch.

    Each leaf :math:`\\ell` is clipped with :func:`per_example_global_norm_clip` at
    :math:`C_\\ell = C / \\sqrt{L}` (``uniform=True``, :math:`L` leaves) or
    :math:`C_\\ell = C \\sqrt{n_\\ell / N}` (:math:`n_\\ell` entries per example of leaf :math:`\\ell`,
    :math:`N` in total), so that the concatenated clip norm is :math:`C`.

    Args:
      grads: a tree whose leaves carry the batch on axis 0.
      global_l2_norm_clip: :math:`C \\ge 0`.
      uniform: split the budget evenly over layers, else by layer size. Default ``True``.

    Returns:
      ``(summed_clipped_grads, num_clipped)``: two trees shaped like ``grads``' structure, the summed
      clipped gradient per leaf and the number of clipped examples per leaf.

    Raises:
      ValueError: when a leaf has no batch axis, batch sizes differ, or the clip norm is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> per_example = {"a": jnp.array([[3.0, 4.0], [0.3, 0.4]]), "b": jnp.array([[1.0], [1.0]])}
      >>> summed, num_clipped = gradtx.per_example_layer_norm_clip(per_example, global_l2_norm_clip=1.0)
      >>> [round(float(g), 4) for g in summed["a"]], {k: int(v) for k, v in num_clipped.items()}
      ([0.7243, 0.9657], {'a': 1, 'b': 2})

    References:
      McMahan et al., "A General Approach to Adding Differential Privacy to Iterative Training
      Procedures", https://arxiv.org/abs/1812.06210, 2018.
    """
    where = "per_example_layer_norm_clip"
    _checks.check_non_negative("global_l2_norm_clip", global_l2_norm_clip, where=where)
    _check_batched(grads, where)
    leaves = jax.tree.leaves(grads)
    if uniform:
        clip_norms = jax.tree.map(lambda _: global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5, grads)
    else:
        total = sum(int(jnp.size(x)) // int(jnp.shape(x)[0]) for x in leaves)
        clip_norms = jax.tree.map(
            lambda g: global_l2_norm_clip * ((int(jnp.size(g)) // int(jnp.shape(g)[0])) / total) ** 0.5, grads
        )
    pairs = jax.tree.map(per_example_global_norm_clip, grads, clip_norms)
    treedef = jax.tree.structure(grads)
    summed = jax.tree.unflatten(treedef, [p[0] for p in treedef.flatten_up_to(pairs)])
    counts = jax.tree.unflatten(treedef, [p[1] for p in treedef.flatten_up_to(pairs)])
    return summed, counts
