"""``flatten``: run a transform on one concatenated vector instead of many small leaves."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation
from gradtx._numerics import check_init_params, check_updates
from gradtx._sharding_types import reshard_on_own_mesh, split_sharding
from gradtx._stack_view import StackView, viewing
from gradtx._tree import leaf_dtype, path_str

__all__ = ["flatten"]

_VECTOR = "the vector"


def _common_dtype(leaves: list[Any]) -> Any:
    dtypes = [leaf_dtype(x) for x in leaves]
    if not dtypes:
        return jnp.float32
    # One vector needs one dtype; the widest of the leaves loses nothing.
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(*dtypes)


def _ravel(x: Any, dtype: Any) -> jax.Array:
    x = jnp.asarray(x)
    if split_sharding(x) is not None:
        # Explicit mode has no sharding for the raveled leaf of a split dim: the vector is replicated.
        x = reshard_on_own_mesh(x, ())
    return jnp.reshape(x.astype(dtype), (-1,))


def _to_vector(tree: Any) -> Any:
    leaves = jax.tree.leaves(tree)
    dtype = _common_dtype(leaves)
    size = sum(math.prod(jnp.shape(x)) for x in leaves)
    if any(isinstance(x, jax.ShapeDtypeStruct) for x in leaves):
        return jax.ShapeDtypeStruct((size,), dtype)
    if not leaves:
        return jnp.zeros((0,), dtype)
    return jnp.concatenate([_ravel(x, dtype) for x in leaves])


def _from_vector(like: Any, vector: jax.Array) -> Any:
    leaves, treedef = jax.tree.flatten(like)
    out, offset = [], 0
    for x in leaves:
        n = math.prod(jnp.shape(x))
        leaf = jnp.reshape(vector[offset : offset + n], jnp.shape(x)).astype(leaf_dtype(x))
        sharding = split_sharding(x)
        out.append(leaf if sharding is None else jax.sharding.reshard(leaf, sharding))
        offset += n
    return jax.tree.unflatten(treedef, out)


def _view(tree: Any) -> StackView:
    # Masks inside are written for the params; per-leaf statistics inside would see the vector.
    paths = [path_str(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return StackView(tree, {_VECTOR: list(range(len(paths)))}, paths, group=_VECTOR, wrapper="flatten")


def flatten(inner: GradientTransformation) -> GradientTransformation:
    """Runs ``inner`` on the concatenation of all leaves, then splits the result back.

    ``u = unflatten(inner(concat(ravel(g_i))))``. Fewer, larger arrays cut the per-leaf
    overhead of trees with many small leaves, at the cost of one copy each way. The state of
    ``inner`` is built on a single vector. Leaves of different dtypes are concatenated in the
    widest one and cast back; the params' structure must not change between calls. In explicit
    sharding mode the vector (and so ``inner``'s state) is replicated, and each update is
    resharded like its leaf; under ``Auto`` shardings XLA places the vector.

    Masks and labels of gradtx transforms inside ``inner`` are written for the params, as
    outside, and must be the same for every leaf (one vector holds them all): otherwise a
    ``ValueError`` names two leaves that differ; apply such a mask outside,
    ``masked(flatten(inner), mask)``. gradtx's transforms that take statistics per leaf (trust
    ratios, factored moments, per-leaf clipping, ...) raise a ``ValueError`` inside, where they
    would take one over the vector; whole-tree reductions (``clip_by_global_norm``) are exact.
    The line searches (``value_fn``) and Sophia's Hutchinson estimator (``obj_fn``) would call
    the user's function on the vector, so they raise inside: chain a line search outside,
    ``chain(flatten(inner), scale_by_zoom_linesearch(...))``, and run Sophia without ``flatten``.
    Random transforms (``add_noise``) draw over the vector: the same distribution, other samples.

    Args:
      inner: the transform to run on the flat vector.

    Returns:
      A :class:`GradientTransformation` whose state is ``inner``'s state for the flat vector.

    Raises:
      ValueError: when ``updates`` and ``params`` differ in structure (names the path); when a
        mask or labels inside differ between leaves; when a gradtx transform inside takes a
        statistic per leaf; when a line search or Sophia's Hutchinson estimator inside would
        call the user's function on the vector.
      TypeError: when a leaf of the params or updates is not floating or complex (names the path).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"a": jnp.ones(2), "b": jnp.ones((2, 2))}
      >>> tx = gradtx.flatten(gradtx.adam(0.1))
      >>> state = tx.init(params)
      >>> state[0].mu.shape  # one vector for all six entries
      (6,)
      >>> updates, state = tx.update(params, state, params)
      >>> updates["b"].shape
      (2, 2)
    """
    inner = as_gradient_transformation(inner, where="flatten: `inner`")

    def init_fn(params: Params) -> Any:
        # Checked on the leaves' own paths: the vector would cast integer leaves to float silently.
        check_init_params(params, where="flatten")
        with viewing(_view(params)):
            return inner.init(_to_vector(params))

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, Any]:
        check_updates(updates, params=params, where="flatten")
        flat_params = None if params is None else _to_vector(params)
        with viewing(_view(updates)):
            flat_updates, new_state = inner.update(_to_vector(updates), state, flat_params, **extra_args)
        return _from_vector(updates, flat_updates), new_state

    return GradientTransformation(init_fn, update_fn)
