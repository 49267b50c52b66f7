"""``stacked``: run a transform on leaves stacked by shape and dtype.

A model with thousands of small tensors costs XLA a few kernels per tensor and per state
buffer, and compile time grows with them (bench/NOTES.md). Stacking the leaves of equal shape
and dtype lets the inner transform's state live in one buffer per group, so its arithmetic
compiles to a few kernels per group; what stays per leaf is the stacking of the gradient and
one slice of the stacked update.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.core import Tracer

from gradtx._base import GradientTransformation, OptState, Params, Updates, as_gradient_transformation
from gradtx._checks import check_int
from gradtx._numerics import check_init_params, check_updates
from gradtx._sharding_types import split_sharding
from gradtx._stack_view import StackView, viewing
from gradtx._tree import is_typed_key, leaf_dtype, path_str

__all__ = ["StackedState", "stacked"]


class StackedState(NamedTuple):
    """State of :func:`stacked`.

    Attributes:
      inner_state: the inner transform's state for the stacked tree, a dict from group name
        (such as ``"float32[16,32]"``) to the stack of that group's leaves; with
        ``per_leaf=True``, a dict from group name to the inner state of that group's stack.
      rows: the row numbers ``0, 1, ..., n - 1`` as uint32 scalars, ``n`` the size of the
        largest group. The ``r``-th leaf of every group is sliced out of its stack at
        ``rows[r]``: an array, not a Python int, so that the compiled slices of all leaves of
        one shape are the same kernel, compiled once; shared by the groups, so that a step
        passes one scalar per row rather than one per leaf.
      group_sizes: a dict from group name to the number of leaves in the group (int32 scalars):
        the grouping ``init`` saw, checked by every ``update``.
      tree: a dict with one entry, keyed by a digest of the key paths, shapes and dtypes of the
        params given to ``init``, whose value is their number of leaves (an int32 scalar);
        ``update`` checks that the updates have the same ones (a leaf's row is its rank among
        the leaves of its group in flattening order, so another tree would get other rows).
    """

    inner_state: Any
    rows: tuple[Any, ...]
    group_sizes: Any
    tree: Any


def _spec_key(x: Any) -> str:
    # Leaves with different explicit shardings cannot be stacked; under Auto shardings (the
    # usual jit) the types carry no sharding and XLA places the stacks.
    sharding = split_sharding(x)
    return "" if sharding is None else ",".join(str(s) for s in sharding.spec)


def _kinds(leaves: list[Any]) -> list[str]:
    """Each leaf's ``dtype[shape]``, e.g. ``float32[16,32]``: its group name, sharding aside."""
    return [f"{jnp.dtype(leaf_dtype(x)).name}[{','.join(str(d) for d in jnp.shape(x))}]" for x in leaves]


def _tree_key(paths: list[str], kinds: list[str]) -> str:
    # A digest of each leaf's key path, shape and dtype: stable across processes (unlike a
    # treedef's text, which can hold object addresses), so that a restored checkpoint matches
    # the tree it was saved for. Shardings stay out of it: contexts differ in what they see.
    text = "\n".join(f"{path} {kind}" for path, kind in zip(paths, kinds))
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return f"paths:{digest}"


def _paths(tree: Any) -> list[str]:
    return [path_str(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _groups(paths: list[str], kinds: list[str], leaves: list[Any], max_size: int | None) -> dict[str, list[int]]:
    """Leaf indices by group name, in flattening order within each group.

    A group is ``dtype[shape]``; leaves of that shape and dtype with different explicit
    shardings are further groups ``dtype[shape]#1``, ``#2``, ... in order of first appearance.
    The names do not spell the sharding, so a state's structure is the same whether or not the
    context that builds it sees shardings (``jax.eval_shape`` on an Auto mesh does not).
    A leaf of more than ``max_size`` entries is a group of its own, named by its path, and is
    passed to the inner transform as it is (no stacking copy).
    """
    keyed: dict[tuple[str, str], list[int]] = {}
    for i, x in enumerate(leaves):
        if max_size is not None and math.prod(jnp.shape(x)) > max_size:
            keyed[("leaf" + paths[i], "")] = [i]
        else:
            keyed.setdefault((kinds[i], _spec_key(x)), []).append(i)
    groups: dict[str, list[int]] = {}
    variants: dict[str, int] = {}
    for (base, _), members in keyed.items():
        k = variants.get(base, 0)
        variants[base] = k + 1
        groups[base if k == 0 else f"{base}#{k}"] = members
    return groups


def _spec_text(sharding: Any) -> str:
    return str(getattr(sharding, "spec", sharding))


def _concrete_sharding(x: Any) -> Any:
    if isinstance(x, jax.Array) and not isinstance(x, Tracer):
        return x.sharding
    return None


def _warn_mixed_shardings(groups: dict[str, list[int]], leaves: list[Any], paths: list[str]) -> None:
    """Warns when concrete leaves of one group are placed differently (an ``Auto`` mesh).

    In explicit mode such leaves are grouped apart; under ``Auto`` shardings the traced step sees
    no shardings, so they share a stack that XLA places, resharding the others every step.
    """
    for name, members in groups.items():
        if _is_alone(name):
            continue
        first = _concrete_sharding(leaves[members[0]])
        if first is None:
            continue
        ndim = len(jnp.shape(leaves[members[0]]))
        for i in members[1:]:
            other = _concrete_sharding(leaves[i])
            if other is not None and not other.is_equivalent_to(first, ndim):
                warnings.warn(
                    f"stacked: the leaves of {name} are sharded differently ({paths[members[0]]} is "
                    f"{_spec_text(first)}, {paths[i]} is {_spec_text(other)}); under Auto shardings they share "
                    "one stack, which XLA places, resharding the others every step. In explicit sharding mode "
                    "(a mesh of AxisType.Explicit under jax.set_mesh) they are stacked apart; or keep such leaves "
                    "unstacked with a `max_size` below their size.",
                    UserWarning,
                    stacklevel=3,
                )
                return


def _is_alone(name: str) -> bool:
    # No dtype name starts with "leaf".
    return name.startswith("leaf")


def _largest(groups: dict[str, list[int]]) -> int:
    """The number of rows the slices need: the size of the largest stacked group."""
    return max((len(members) for name, members in groups.items() if not _is_alone(name)), default=0)


def _stack(leaves: list[Any], groups: dict[str, list[int]]) -> dict[str, Any]:
    stacks: dict[str, Any] = {}
    for name, members in groups.items():
        first = leaves[members[0]]
        if _is_alone(name):
            stacks[name] = first
        elif isinstance(first, jax.ShapeDtypeStruct):
            stacks[name] = jax.ShapeDtypeStruct((len(members), *first.shape), first.dtype)
        else:
            stacks[name] = jnp.stack([leaves[i] for i in members])
    return stacks


def _check_groups(groups: dict[str, list[int]], sizes: Any, paths: list[str]) -> None:
    if not isinstance(sizes, dict):
        raise TypeError(
            f"stacked: `state.group_sizes` must be a dict from group name to size; got {type(sizes).__name__}"
        )
    for name, members in groups.items():
        if name not in sizes:
            raise ValueError(
                f"stacked: updates{paths[members[0]]} is {name}, a shape and dtype that the params given to init "
                "did not have "
                f"(groups at init: {', '.join(sorted(sizes))}); every update must have its param's shape and dtype"
            )
    missing = sorted(set(sizes) - set(groups))
    if any("#" in name for name in missing):
        raise ValueError(
            f"stacked: init grouped leaves of one shape apart by their explicit shardings ({', '.join(missing)}), "
            "but the updates carry no sharding (an Auto mesh or `auto_axes`): call update in explicit mode too"
        )
    if missing:
        raise ValueError(
            f"stacked: no update has the shape and dtype of group(s) {', '.join(missing)} of init's params"
        )


def _check_tree(tree: Any, key: str, n_leaves: int) -> None:
    if not isinstance(tree, dict) or len(tree) != 1:
        raise TypeError(f"stacked: `state.tree` must be a dict with one entry (the params' digest); got {tree!r:.80}")
    if key not in tree:
        raise ValueError(
            f"stacked: the updates ({n_leaves} leaves) differ from the params given to init in their key paths, "
            "or in the shape or dtype of a leaf; update needs the tree that init saw"
        )


@contextlib.contextmanager
def _inside(view: StackView) -> Iterator[None]:
    """Runs ``inner`` with ``view`` for its masks; adds to its errors that it saw the stacks."""
    try:
        with viewing(view):
            yield
    except (ValueError, TypeError) as e:
        # Subclasses (StackLayoutError among them) say what they need already.
        if type(e) not in (ValueError, TypeError):
            raise
        raise type(e)(
            f"{e}\n(raised inside stacked, where `inner` sees the dict of stacks {{{view.group_names()}}} "
            "instead of the params: gradtx's masks and labels are carried to the stacks, a tree for the params "
            "that another library's transform gets is not; apply such a one outside, e.g. "
            "`masked(stacked(inner), mask)`)"
        ) from e


def _row(stack: jax.Array, position: jax.Array) -> jax.Array:
    # A dynamic slice with a runtime row: a constant row would make every leaf's kernel
    # different, and XLA compiles each distinct kernel on its own (~20 ms each on CPU).
    shape = stack.shape[1:]
    start = (position,) + (np.zeros((), position.dtype),) * len(shape)
    return lax.reshape(lax.dynamic_slice(stack, start, (1, *shape)), shape)


def _own_streams(state: Any, members: list[int], batched: bool) -> Any:
    """Gives each leaf's copy of a PRNG key in ``state`` a stream of its own: ``fold_in(key, i)``.

    ``vmap(inner.init)`` copies one key to every row, so ``add_noise`` would draw the same
    noise for every leaf of a group (and the first rows of all groups would share it); leaf
    ``i`` of the params (its index in their flattening order) draws from ``fold_in(key, i)``.
    """
    index = jnp.asarray(members, jnp.uint32)

    def fold(x: Any) -> Any:
        if not is_typed_key(x):
            return x
        return jax.vmap(jax.random.fold_in)(x, index) if batched else jax.random.fold_in(x, index[0])

    return jax.tree.map(fold, state)


def _update_per_leaf(
    inner: GradientTransformation,
    stacks: dict[str, Any],
    states: Any,
    params: Any,
    extra_args: dict[str, Any],
    view: StackView,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``inner`` on each leaf of each stack (``vmap`` over the stacking dim): one leaf per tree."""
    if not isinstance(states, dict) or set(states) != set(stacks):
        raise ValueError(
            f"stacked: `state.inner_state` must be a dict with one state per group {sorted(stacks)} "
            "(per_leaf=True); it was built for other params or without per_leaf"
        )
    new_stacks: dict[str, Any] = {}
    new_states: dict[str, Any] = {}
    for name, stack in stacks.items():
        p = None if params is None else params[name]

        def one(g: Any, s: Any, p: Any, name: str = name) -> tuple[Any, Any]:
            with _inside(dataclasses.replace(view, group=name, per_leaf=True)):
                return inner.update(g, s, p, **extra_args)

        if _is_alone(name):
            new_stacks[name], new_states[name] = one(stack, states[name], p)
        else:
            new_stacks[name], new_states[name] = jax.vmap(one, in_axes=(0, 0, None if p is None else 0))(
                stack, states[name], p
            )
    return new_stacks, new_states


def stacked(
    inner: GradientTransformation, *, max_size: int | None = 2**14, per_leaf: bool = False
) -> GradientTransformation:
    """Runs ``inner`` on the leaves stacked by shape and dtype, then slices the results back.

    The leaves of equal shape and dtype (and, in explicit sharding mode, equal sharding) form a
    group; ``inner`` sees a dict from group name to the stack of its leaves, ``(n, *shape)``, and
    its state holds one buffer per group instead of one per leaf:
    ``u_i = inner(\\{k: stack_k(g)\\})_{k(i)}[r_i]`` where leaf ``i`` is row ``r_i`` of group ``k(i)``.

    Why: XLA compiles a few kernels per leaf and per state buffer, so a model with thousands of
    small tensors waits mostly for the compiler (bench/NOTES.md). Under ``stacked``, ``inner``'s
    arithmetic compiles to a few kernels per *group*; each leaf keeps one stacking copy of its
    gradient (and param) and one slice of the update, and those slices are one kernel per shape
    (the row is a runtime value kept in the state, one per row, shared by the groups). On 2,000
    small leaves of 12 shapes, ``stacked(adamw)`` traces and compiles in about 0.4 of optax
    ``adamw``'s time and steps in about 0.55 of it, and ``stacked(lamb, per_leaf=True)`` in about
    0.1 of optax ``lamb``'s
    (bench/NOTES.md, 2-core CPU). The price is memory: the stacks are copies, so the step's
    peak grows by the gradients and params of the stacked leaves (1.5x on that tree).

    Exact (the numbers of ``inner`` on the unstacked tree) when ``inner`` acts elementwise or
    through reductions over the whole tree: sgd, momentum, adam/adamw/nadam/amsgrad, lion,
    rmsprop, adagrad, ... chained with ``clip_by_global_norm``. Statistics that ``inner`` takes
    *per leaf* (the layer-wise trust ratios of lamb/lars, adafactor's factored moments, per-leaf
    clipping, novograd, sm3, DoG, centralization, muon's orthogonalization) would be taken per
    stack, so gradtx's transforms that take them raise a ``ValueError`` there: wrap those with
    ``per_leaf=True``, which runs ``inner`` on each leaf as a tree of its own (exact for them; a
    whole-tree reduction inside would then see one leaf).

    Masks and labels of gradtx transforms inside ``inner`` (``adamw(..., mask=...)``,
    ``masked``, ``partition``, muon's dimension numbers) are written for the params, as
    outside: a function is called on the params (at ``init``) or updates (at ``update``) given
    to ``stacked``, a tree is matched against them, and each stack gets the value its leaves
    share. Leaves of one group with different values raise a ``ValueError`` naming two of
    them: such a mask goes outside, e.g. ``masked(stacked(adamw(...)), mask)``. Another
    library's mask inside (``optax.masked``) sees the stacks.

    A function of the params passed to ``update`` would be called on the stacks, so the line
    searches (``value_fn``) and Sophia's Hutchinson estimator (``obj_fn``) raise a ``ValueError``
    inside: chain a line search outside, ``chain(stacked(inner), scale_by_zoom_linesearch(...))``,
    and run Sophia unstacked; ``lookahead`` raises inside too (its update needs
    ``LookaheadParams``): ``lookahead(stacked(inner), ...)``. Random transforms (``add_noise``,
    ``noisy_sgd``) draw their noise per stack: the same distribution as on the tree, not the
    same samples. Under ``per_leaf=True`` every typed PRNG key (``jax.random.key``) in
    ``inner``'s state gets a stream per leaf, ``fold_in(key, i)`` for leaf ``i`` of the params,
    so that the leaves of a group draw independent noise; ``add_noise`` given a raw ``uint32``
    key raises there.

    In explicit sharding mode, leaves of one shape but different shardings form separate groups
    (``float32[8,4]``, ``float32[8,4]#1``) and each stack is sharded like its leaves;
    :func:`gradtx.sharding.zero_train_step` partitions the stacks like any stacked buffer. Under
    ``Auto`` shardings (plain ``jax.jit``) the traced leaves carry no sharding, so such leaves are
    stacked together and XLA places the stacks: fine for replicated (data-parallel) params, a
    reshard per step for model-parallel ones (``init`` warns when the concrete params it gets are
    so placed; the default ``max_size`` keeps large, model-parallel matrices unstacked). Like
    :func:`flatten` (one vector, all leaves), the state differs from ``inner``'s on the original
    tree, so it is not interchangeable with it.

    Args:
      inner: the transform to run on the stacked tree.
      max_size: leaves of more entries than this stay unstacked: ``inner`` sees each of them
        as it is, under its path (e.g. ``"leaf['w']"``). Stacking copies the gradient (and the
        params, when given) into the stacks every step, which costs more than it saves on
        large leaves; the compile-time gain is on the many small ones. ``None`` stacks every
        leaf. Default ``2**14`` (keyword-only).
      per_leaf: when ``True``, ``inner`` runs on each leaf as a tree of its own (``jax.vmap`` over
        each stack's leading dim), so statistics it takes per leaf stay per leaf (lamb, lars,
        adafactor, trust ratios, per-leaf clipping); reductions over the whole tree would then
        see one leaf, so gradtx's (``clip_by_global_norm``, ``normalize_by_update_norm``,
        Polyak, L-BFGS, ``apply_if_finite``, ``MultiSteps``' skip functions) raise a
        ``ValueError`` there: chain them outside. The state is a dict from group name to
        ``inner``'s state for that group. Default ``False`` (keyword-only).

    Returns:
      A :class:`GradientTransformation` with :class:`StackedState`. ``update`` needs the updates
      to have the structure, shapes and dtypes of the params given to ``init`` (gradients do).

    Raises:
      ValueError: when ``updates`` (or ``params``) differ in structure from the params given to
        ``init`` (names the path), or when their groups differ from the state's (a leaf changed
        shape or dtype); when a mask or labels inside give leaves of one group different
        values; when a gradtx transform inside takes a statistic per leaf (default mode) or
        over the whole tree (``per_leaf=True``) that this layout would change; when a line
        search or Sophia's Hutchinson estimator inside would call the user's function on stacks.
      TypeError: when ``state`` is not a :class:`StackedState`, or when a leaf of the params
        (at ``init`` or ``update``) or of the updates is not floating or complex (names the path;
        inside, ``inner`` would see only the name of its stack).
      TypeError, ValueError: when ``max_size`` is not ``None`` or an int >= 0.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w1": jnp.ones((2, 3)), "w2": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> tx = gradtx.stacked(gradtx.adam(0.1))
      >>> state = tx.init(params)
      >>> sorted(state.inner_state[0].mu)  # one moment buffer per group
      ['float32[2,3]', 'float32[3]']
      >>> state.inner_state[0].mu["float32[2,3]"].shape
      (2, 2, 3)
      >>> updates, state = tx.update(params, state, params)
      >>> updates["w2"].shape
      (2, 3)
    """
    inner = as_gradient_transformation(inner, where="stacked: `inner`")
    if max_size is not None:
        check_int("max_size", max_size, where="stacked", low=0)
    if not isinstance(per_leaf, bool):
        raise TypeError(f"stacked: `per_leaf` must be a bool; got {type(per_leaf).__name__} {per_leaf!r:.60}")

    def init_fn(params: Params) -> StackedState:
        # Checked here, on the leaves' own paths: inside, `inner` sees the stacks' names.
        check_init_params(params, where="stacked")
        leaves = jax.tree.leaves(params)
        paths = _paths(params)
        kinds = _kinds(leaves)
        groups = _groups(paths, kinds, leaves, max_size)
        _warn_mixed_shardings(groups, leaves, paths)
        rows = tuple(jnp.asarray(r, jnp.uint32) for r in range(_largest(groups)))
        sizes = {name: jnp.asarray(len(members), jnp.int32) for name, members in groups.items()}
        tree = {_tree_key(paths, kinds): jnp.asarray(len(leaves), jnp.int32)}
        stacks = _stack(leaves, groups)
        view = StackView(params, groups, paths)
        if per_leaf:
            inner_state = {}
            for name, stack in stacks.items():
                alone = _is_alone(name)
                if isinstance(stack, jax.ShapeDtypeStruct) and not alone:
                    # vmap takes arrays; abstract params have no values, so zeros stand in (the
                    # placeholder values an abstract `init` gives anyway).
                    stack = jnp.zeros(stack.shape, stack.dtype)
                with _inside(dataclasses.replace(view, group=name, per_leaf=True)):
                    state = inner.init(stack) if alone else jax.vmap(inner.init)(stack)
                inner_state[name] = _own_streams(state, groups[name], batched=not alone)
        else:
            with _inside(view):
                inner_state = inner.init(stacks)
        return StackedState(inner_state, rows, sizes, tree)

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, StackedState]:
        if not isinstance(state, StackedState):
            raise TypeError(f"stacked: `state` must be the StackedState that init returned; got {type(state).__name__}")
        # Before the grouping, so that a leaf of another shape is named with both shapes.
        check_updates(updates, params=params, where="stacked")
        leaves, treedef = jax.tree.flatten(updates)
        paths = _paths(updates)
        kinds = _kinds(leaves)
        groups = _groups(paths, kinds, leaves, max_size)
        _check_groups(groups, state.group_sizes, paths)
        _check_tree(state.tree, _tree_key(paths, kinds), len(leaves))
        rows = state.rows
        largest = _largest(groups)
        if not isinstance(rows, tuple) or len(rows) < largest:
            raise ValueError(
                f"stacked: `state.rows` must be the tuple of {largest} row numbers that init made; got {rows!r:.80}"
            )
        stacked_params = None
        if params is not None:
            stacked_params = _stack(treedef.flatten_up_to(params), groups)
        stacks = _stack(leaves, groups)
        view = StackView(updates, groups, paths)
        if per_leaf:
            new_stacks, inner_state = _update_per_leaf(
                inner, stacks, state.inner_state, stacked_params, extra_args, view
            )
        else:
            with _inside(view):
                new_stacks, inner_state = inner.update(stacks, state.inner_state, stacked_params, **extra_args)
        out: list[Any] = [None] * len(leaves)
        for name, members in groups.items():
            stack = new_stacks[name]
            if _is_alone(name):
                out[members[0]] = stack
                continue
            for row, i in enumerate(members):
                out[i] = _row(stack, rows[row])
        return jax.tree.unflatten(treedef, out), StackedState(inner_state, rows, state.group_sizes, state.tree)

    return GradientTransformation(init_fn, update_fn)
