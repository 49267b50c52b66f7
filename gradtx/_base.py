"""The one transform type and the few things every transform needs.

A gradient transformation is a pair of pure functions ``(init, update)``. ``init`` maps
params to a state; ``update`` maps ``(updates, state, params=None, **extra_args)`` to
``(new_updates, new_state)``. Every optimizer in gradtx is a ``chain`` of these.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx import _tree
from gradtx._checks import INT32_MAX

__all__ = [
    "ArrayTree",
    "EmptyState",
    "GradientTransformation",
    "InitFn",
    "MaskOrFn",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Schedule",
    "UpdateFn",
    "Updates",
    "apply_updates",
    "identity",
    "init_empty_state",
    "safe_increment",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
]

ArrayTree = Any
"""A pytree whose leaves are arrays (or ``jax.ShapeDtypeStruct`` for abstract params)."""
Params = ArrayTree
"""The model's parameters: a pytree of floating (or complex) arrays."""
Updates = ArrayTree
"""Gradients going in and updates coming out of a transform: a pytree with the params' structure."""
OptState = Any
"""A transform's state: whatever its ``init`` returns (a ``NamedTuple``, a tuple of them for a chain)."""
Numeric = Any
Schedule = Callable[[Any], Any]
"""A pure function ``step -> value``; ``step`` is a scalar int32 array."""
ScalarOrSchedule = float | jax.Array | Schedule
"""A hyperparameter: a Python number, a jax scalar (traced too), or a :data:`Schedule`."""
MaskOrFn = Any | Callable[[Params], Any] | None
"""A mask: a pytree of bools like the params (or a prefix of it), a callable ``params -> mask``, or ``None``."""


class InitFn(Protocol):
    """``init(params) -> state``; pure, works on abstract (``ShapeDtypeStruct``) params."""

    def __call__(self, params: Params) -> OptState: ...


class UpdateFn(Protocol):
    """``update(updates, state, params=None, **extra_args) -> (updates, state)``; pure."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """A gradient transformation: a pure ``(init, update)`` pair.

    ``update`` always accepts ``**extra_args`` (for example ``value=`` for
    :func:`gradtx.reduce_on_plateau` or a line search) and ignores those it does not use.
    :func:`gradtx.chain` forwards them to every member.

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> tx = gradtx.sgd(0.1)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)
      >>> gradtx.apply_updates(params, updates)["w"]
      Array([0.9, 0.9, 0.9], dtype=float32)
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """The state of a stateless transform: an empty tuple, so it holds no arrays."""


def init_empty_state(params: Params) -> EmptyState:
    """An ``init`` function for stateless transforms: returns :class:`EmptyState`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> gradtx.init_empty_state({"w": jnp.ones(2)})
      EmptyState()
    """
    del params
    return EmptyState()


def _accepted_extra_args(update: Callable[..., Any]) -> frozenset[str] | None:
    """Names of the extra keyword arguments ``update`` takes; ``None`` means all (``**kwargs``)."""
    try:
        parameters = list(inspect.signature(update).parameters.values())
    except (TypeError, ValueError):  # builtins or C callables: assume the modern protocol
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keywords = [
        p.name
        for p in parameters[3:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return frozenset(keywords)


def as_gradient_transformation(tx: Any, *, where: str) -> GradientTransformation:
    """Accepts a gradtx or a foreign (e.g. optax) transform and returns a gradtx one.

    A foreign ``update`` that takes no ``**extra_args`` is wrapped once so that ``chain``
    can forward extra arguments to every member: it receives those it names in its
    signature and none of the others.

    Raises:
      TypeError: when ``tx`` has no callable ``init`` and ``update``; the message uses ``where``.
    """
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(
            f"{where} must be a gradient transformation with callable `init` and `update`, "
            f"got {type(tx).__name__}: {tx!r:.80}"
        )
    init: Any = tx.init
    update: Any = tx.update
    accepted = _accepted_extra_args(update)
    if accepted is None:
        if isinstance(tx, GradientTransformation):
            return tx
        return GradientTransformation(init, update)

    def update_with_known_extra_args(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        known = {name: value for name, value in extra_args.items() if name in accepted}
        return update(updates, state, params, **known)

    return GradientTransformation(init, update_with_known_extra_args)


def identity() -> GradientTransformation:
    """The transform that returns the updates unchanged and holds no state.

    Returns:
      A :class:`GradientTransformation` with :class:`EmptyState`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.identity()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> updates["w"], state
      (Array([ 0.5, -0.5], dtype=float32), EmptyState())
    """

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del params, extra_args
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
    """The transform that replaces every update by zeros (of the update's dtype); no state.

    Used for frozen parameters, e.g. as a group's transform in :func:`gradtx.multi_transform`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.set_to_zero()
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates["w"]
      Array([0., 0.], dtype=float32)
    """

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del params, extra_args
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
    """Builds a stateless transform from ``f(updates, params) -> updates``.

    Args:
      f: a pure function of the whole updates tree and the params (``None`` when the caller
        passes no params).

    Returns:
      A :class:`GradientTransformation` with :class:`EmptyState`.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> def add_decay(updates, params):
      ...     return {k: u + 0.1 * params[k] for k, u in updates.items()}
      >>> tx = gradtx.stateless(add_decay)
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.6, -0.7]
    """
    if not callable(f):
        raise TypeError(f"stateless: `f` must be callable, got {type(f).__name__}")

    def update_fn(
        updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        del extra_args
        return f(updates, params), state

    return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> GradientTransformation:
    """Builds a stateless transform applying ``f(update_leaf, param_leaf)`` leaf by leaf.

    ``param_leaf`` is ``None`` when the caller passes no params.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.stateless_with_tree_map(lambda u, p: u * (p > 0))  # only for positive params
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates["w"]
      Array([0.5, 0. ], dtype=float32)
    """
    if not callable(f):
        raise TypeError(f"stateless_with_tree_map: `f` must be callable, got {type(f).__name__}")

    def tree_f(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            return jax.tree.map(lambda u: f(u, None), updates)
        _tree.check_same_structure(updates, params, "updates", "params", where="stateless_with_tree_map")
        return jax.tree.map(f, updates, params)

    return stateless(tree_f)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Returns ``params + updates`` leaf by leaf; each result keeps its param's dtype.

    The sum is computed in the promoted dtype of the two leaves, then cast back to the
    param's dtype, so bf16 params stay bf16 even when the updates are float32.

    Raises:
      ValueError: when the two trees differ in structure or shape; names the first differing path.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, 2.0], dtype=jnp.bfloat16)}
      >>> new = gradtx.apply_updates(params, {"w": jnp.array([0.5, 0.5])})  # float32 updates
      >>> new["w"]  # the params keep their dtype
      Array([1.5, 2.5], dtype=bfloat16)
    """
    _tree.check_same_structure(params, updates, "params", "updates", where="apply_updates", check_shapes=True)

    def add(p: Any, u: Any) -> Any:
        if p is None and u is None:
            return None
        # The structure check compared the arrays' shapes; it lets a None or a Python scalar
        # through on either side, which would skip the param or broadcast it to the update's shape.
        if not (hasattr(p, "shape") and hasattr(u, "shape")) and (
            p is None or u is None or jnp.shape(p) != jnp.shape(u)
        ):
            _raise_none_or_shape_mismatch(params, updates)
        p, u = jnp.asarray(p), jnp.asarray(u)
        if p.dtype == u.dtype and not (p.weak_type or u.weak_type):
            # The common case needs no promotion and no casts; skipping them saves a third of
            # this function's trace time on thousands of leaves (bench/NOTES.md).
            return p + u
        # Explicit promotion: under strict dtype promotion bf16 + f32 would be an error.
        dtype = _tree.standard_promote(p.dtype, u.dtype)
        return (p.astype(dtype) + u.astype(dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def _raise_none_or_shape_mismatch(params: Params, updates: Updates) -> None:
    """Raises at the first path where a param and its update are not both ``None`` or of one shape."""
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: x is None)[0],
        jax.tree_util.tree_leaves(updates, is_leaf=lambda x: x is None),
        strict=True,
    )
    for (path, p), u in pairs:
        if (p is None) != (u is None) or (p is not None and jnp.shape(p) != jnp.shape(u)):
            describe = lambda x: "None" if x is None else f"shape {tuple(jnp.shape(x))}"
            raise ValueError(
                f"apply_updates: params{_tree.path_str(path)} is {describe(p)} but its update is {describe(u)}."
            )


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1`` for a scalar int32 counter, saturating at the int32 maximum.

    A long run then never wraps to a negative step (which would make bias corrections NaN).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> int(gradtx.safe_increment(jnp.asarray(41, jnp.int32)))
      42
      >>> int(gradtx.safe_increment(jnp.asarray(jnp.iinfo(jnp.int32).max)))  # saturates instead of wrapping
      2147483647
    """
    count = jnp.asarray(count, dtype=jnp.int32)
    return jnp.where(count < INT32_MAX, count + jnp.int32(1), jnp.int32(INT32_MAX))


def zero_count() -> jax.Array:
    """A fresh step counter: a scalar int32 zero."""
    return jnp.zeros([], jnp.int32)
