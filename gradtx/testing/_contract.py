"""``check_transformation``: the contract of a gradient transformation, as one call for user code.

Each property is checked with chex's tree assertions and, when it does not hold, raises an
``AssertionError`` whose message starts with ``check_transformation: property '<name>' failed``,
so a failing test says at once *what* is wrong, not only that two numbers differ.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradtx._base import apply_updates
from gradtx.tree import unwrap_random_key_data

__all__ = ["PROPERTIES", "check_transformation"]

PROPERTIES: tuple[str, ...] = (
    "abstract_init",
    "pure",
    "updates_like_params",
    "state_stable",
    "jit",
    "no_retrace",
    "vmap",
    "finite_on_zero_updates",
)
"""The properties :func:`check_transformation` checks, in the order it checks them."""


class _PropertyFailed(AssertionError):
    pass


def _fail(prop: str, message: str) -> _PropertyFailed:
    return _PropertyFailed(f"check_transformation: property {prop!r} failed: {message}")


def _default_updates(params: Any) -> Any:
    # Param-dependent and never all zero: a transform that ignores its input or its params, or
    # that divides by a norm, shows it. Each leaf keeps its param's dtype.
    def leaf(p: Any) -> Any:
        p = jnp.asarray(p)
        return (0.5 * p + 0.25 * p * p + 0.125).astype(p.dtype)

    return jax.tree.map(leaf, params)


def _abstract(tree: Any) -> Any:
    def leaf(x: Any) -> Any:
        sharding = x.sharding if isinstance(x, jax.Array) else None
        return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x), sharding=sharding)

    return jax.tree.map(leaf, tree)


def _comparable(tree: Any) -> Any:
    # NumPy cannot compare bfloat16 closely: compare low-precision floats in float32.
    def leaf(x: Any) -> Any:
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating) and jnp.finfo(x.dtype).bits < 32:
            x = x.astype(jnp.float32)
        return np.asarray(x)

    # NumPy has no typed PRNG keys (`jax.random.key`, add_noise's state): compare their key data.
    return jax.tree.map(leaf, unwrap_random_key_data(tree))


def _paths(tree: Any) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _check(prop: str, what: str, assertion: Callable[..., None], *trees: Any, **kwargs: Any) -> None:
    try:
        assertion(*trees, **kwargs)
    except AssertionError as e:
        raise _fail(prop, f"{what}\n{e}") from None


def _check_avals(prop: str, what: str, expected: Any, actual: Any) -> None:
    _check(prop, f"{what}: the tree structure changed", chex.assert_trees_all_equal_structs, expected, actual)
    _check(
        prop,
        f"{what}: a leaf's shape or dtype changed",
        chex.assert_trees_all_equal_shapes_and_dtypes,
        _abstract(expected),
        _abstract(actual),
    )


def _check_shardings(prop: str, what: str, expected: Any, actual: Any) -> None:
    for path, a, b in zip(_paths(expected), jax.tree.leaves(expected), jax.tree.leaves(actual), strict=True):
        both_arrays = isinstance(a, jax.Array) and isinstance(b, jax.Array)
        if both_arrays and not a.sharding.is_equivalent_to(b.sharding, a.ndim):
            raise _fail(prop, f"{what}: the sharding of leaf {path} changed from {a.sharding} to {b.sharding}")


def _describe_avals(tree: Any) -> dict[str, str]:
    def describe(x: Any) -> str:
        aval = jax.typeof(x)
        weak = getattr(aval, "weak_type", False)
        return f"{aval.str_short()}{' (weak type)' if weak else ''}"

    return dict(zip(_paths(tree), [describe(x) for x in jax.tree.leaves(tree)], strict=True))


def check_transformation(
    tx: Any,
    params: Any,
    *,
    updates: Any = None,
    extra_args: Mapping[str, Any] | None = None,
    num_steps: int = 3,
    vmap_size: int = 2,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    skip: Collection[str] = (),
) -> tuple[str, ...]:
    """Checks that ``tx`` keeps the contract of a gradient transformation on ``params``.

    The properties, in the order they are checked (see :data:`PROPERTIES`):

    - ``abstract_init``: ``jax.eval_shape(tx.init, ...)`` works on ``jax.ShapeDtypeStruct`` params
      and gives the structure, shapes and dtypes of ``tx.init(params)``.
    - ``pure``: ``init`` and ``update`` called twice on the same inputs give identical results
      (no hidden Python state such as a global counter) and leave their inputs unchanged (no
      in-place mutation of a dict or list the caller passed).
    - ``updates_like_params``: the output updates have the incoming updates' structure, shapes
      and dtypes.
    - ``state_stable``: over ``num_steps`` updates, the state keeps the structure, shapes, dtypes
      and shardings it had after ``init``.
    - ``jit``: ``jax.jit`` of ``init`` and of a training step equal the unjitted ones (within
      ``rtol`` / ``atol``) over ``num_steps`` steps.
    - ``no_retrace``: the jitted step is traced once for ``num_steps`` steps (a second trace means
      the state's types changed, e.g. a weak type became strong).
    - ``vmap``: ``jax.vmap`` (compiled once with ``jax.jit``) over ``vmap_size`` different param
      sets, of ``init`` and two steps, equals running each set alone.
    - ``finite_on_zero_updates``: two updates with all-zero updates give finite updates and state.

    A *step* computes the updates (``updates(params)`` when ``updates`` is callable), calls
    ``tx.update(updates, state, params, **extra_args)`` and applies the result to the params, so
    the params move as in training.

    Args:
      tx: the transform, anything with ``init`` and ``update``.
      params: a pytree of arrays (``None`` leaves allowed).
      updates: the incoming updates (gradients): a pytree like ``params``, a function
        ``params -> updates``, or ``None`` (default) for a smooth function of the params.
      extra_args: keyword arguments passed to every ``update`` (e.g. ``{"value": loss}``).
      num_steps: steps of the trajectories compared, >= 2 (a retrace shows on the second).
      vmap_size: number of param sets batched for ``vmap``, >= 1.
      rtol: relative tolerance of the jit and vmap comparisons.
      atol: absolute tolerance of the jit and vmap comparisons.
      skip: names of properties not to check (e.g. ``{"vmap"}`` for a transform that calls the
        host on purpose).

    Returns:
      The names of the properties checked, in order.

    Raises:
      AssertionError: when a property does not hold; the message starts with
        ``check_transformation: property '<name>' failed`` and says what differed and where.
      TypeError: when ``tx`` has no callable ``init`` and ``update``, or ``updates`` is neither a
        pytree nor a callable.
      ValueError: when ``params`` has no array leaf, ``num_steps < 2``, ``vmap_size < 1``,
        ``skip`` names an unknown property, or ``updates`` does not have the structure of ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import gradtx
      >>> from gradtx.testing import check_transformation
      >>> check_transformation(gradtx.adam(1e-3), {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)})[:3]
      ('abstract_init', 'pure', 'updates_like_params')
    """
    where = "check_transformation"
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(f"{where}: `tx` must have callable `init` and `update`, got {type(tx).__name__}.")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"{where}: `num_steps` must be an int >= 2 (a retrace shows on step 2), got {num_steps!r}.")
    if isinstance(vmap_size, bool) or not isinstance(vmap_size, int) or vmap_size < 1:
        raise ValueError(f"{where}: `vmap_size` must be an int >= 1, got {vmap_size!r}.")
    unknown = sorted(set(skip) - set(PROPERTIES))
    if isinstance(skip, str) or unknown:
        raise ValueError(f"{where}: `skip` must be a collection of names from {PROPERTIES}, got {skip!r}.")
    kwargs = dict(extra_args or {})
    if updates is None:
        updates_of: Callable[[Any], Any] = _default_updates
    elif callable(updates):
        updates_of = updates
    else:
        if jax.tree.structure(updates) != jax.tree.structure(params):
            raise ValueError(
                f"{where}: `updates` must have the structure of `params`, got {jax.tree.structure(updates)} "
                f"for params {jax.tree.structure(params)}."
            )
        fixed = updates
        updates_of = lambda _: fixed
    if not jax.tree.leaves(params):
        # Every property would hold vacuously (or fail for the wrong reason: vmap needs an array).
        raise ValueError(f"{where}: `params` must have at least one array leaf, got {params!r:.80}.")
    checked = tuple(p for p in PROPERTIES if p not in skip)
    # Weakly typed params (``jnp.full(shape, 0.3)``) become strong after the first
    # ``apply_updates`` and would retrace any jitted step: not the transform's fault.
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)), params)

    def step(p: Any, s: Any) -> tuple[Any, Any, Any]:
        u, s = tx.update(updates_of(p), s, p, **kwargs)
        return apply_updates(p, u), s, u

    def trajectory(p: Any, s: Any, n: int, fn: Callable[..., Any] = step) -> list[tuple[Any, Any, Any]]:
        out = []
        for _ in range(n):
            p, s, u = fn(p, s)
            out.append((p, s, u))
        return out

    params_before = _comparable(params)
    params_structure = jax.tree.structure(params)
    state0 = tx.init(params)
    if "pure" in checked:
        # The caller's params must survive `init` too (a zeroed dict would train from zeros).
        if jax.tree.structure(params) != params_structure:
            raise _fail("pure", "init changed the structure of the params in place (a dict or list mutated)")
        _check(
            "pure",
            "init changed the values of the params in place",
            chex.assert_trees_all_equal,
            params_before,
            _comparable(params),
        )

    if "abstract_init" in checked:
        try:
            abstract = jax.eval_shape(tx.init, _abstract(params))
        except Exception as e:
            raise _fail(
                "abstract_init", f"tx.init raised {type(e).__name__} on jax.ShapeDtypeStruct params: {e}"
            ) from e
        _check_avals("abstract_init", "jax.eval_shape(tx.init) vs tx.init", state0, abstract)

    if "pure" in checked:
        grads = updates_of(params)
        before = _comparable((params, grads, state0))
        structure = jax.tree.structure((params, grads, state0))
        first = tx.update(grads, state0, params, **kwargs)
        second = tx.update(grads, state0, params, **kwargs)
        if jax.tree.structure((params, grads, state0)) != structure:
            raise _fail("pure", "update changed the structure of its inputs in place (a dict or list mutated)")
        _check(
            "pure",
            "update changed the values of its inputs in place",
            chex.assert_trees_all_equal,
            before,
            _comparable((params, grads, state0)),
        )
        _check(
            "pure",
            "two calls of update on the same inputs gave different results (hidden Python state?)",
            chex.assert_trees_all_equal,
            _comparable(first),
            _comparable(second),
        )
        _check(
            "pure",
            "two calls of init on the same params gave different states",
            chex.assert_trees_all_equal,
            _comparable(state0),
            _comparable(tx.init(params)),
        )

    eager = trajectory(params, state0, num_steps)

    if "updates_like_params" in checked:
        p = params
        for i, (p_next, _, u) in enumerate(eager):
            _check_avals("updates_like_params", f"step {i + 1}: output updates vs incoming updates", updates_of(p), u)
            p = p_next

    if "state_stable" in checked:
        for i, (p, s, _) in enumerate(eager):
            _check_avals("state_stable", f"state after init vs after update {i + 1}", state0, s)
            _check_shardings("state_stable", f"state after init vs after update {i + 1}", state0, s)
            _check_avals("state_stable", f"params vs params after update {i + 1}", params, p)

    if "jit" in checked or "no_retrace" in checked:
        traces: list[dict[str, str]] = []

        def counted(p: Any, s: Any) -> Any:
            traces.append(_describe_avals((p, s)))
            return step(p, s)

        try:
            jitted = trajectory(params, state0, num_steps, jax.jit(counted))
            jit_state0 = jax.jit(tx.init)(params)
        except Exception as e:
            if "jit" not in checked:
                raise
            raise _fail("jit", f"the jitted step raised {type(e).__name__}: {e}") from e
        if "jit" in checked:
            _check(
                "jit",
                "jax.jit(tx.init) vs tx.init",
                chex.assert_trees_all_close,
                _comparable(jit_state0),
                _comparable(state0),
                rtol=rtol,
                atol=atol,
            )
            for i, (a, b) in enumerate(zip(jitted, eager, strict=True)):
                _check(
                    "jit",
                    f"step {i + 1}: jitted (params, state, updates) vs unjitted",
                    chex.assert_trees_all_close,
                    _comparable(a),
                    _comparable(b),
                    rtol=rtol,
                    atol=atol,
                )
        if "no_retrace" in checked and len(traces) > 1:
            first, again = traces[0], traces[1]
            keys = {**first, **again}
            changed = [f"{k}: {first.get(k)} -> {again.get(k)}" for k in keys if first.get(k) != again.get(k)]
            raise _fail(
                "no_retrace",
                f"the jitted step was traced {len(traces)} times for {num_steps} steps; between the first two "
                f"traces the input (params, state) changed at: {changed[:5] or 'nothing visible (a static value?)'}",
            )
        if "state_stable" in checked:
            for i in range(1, len(jitted)):
                _check_shardings(
                    "state_stable", f"jitted state after step {i} vs step {i + 1}", jitted[i - 1][1], jitted[i][1]
                )

    if "vmap" in checked:
        # Different param sets (signs and scales), so a batching bug cannot hide behind equal rows.
        factors = [(1.0, -0.5, 2.0, 0.25, -1.5, 3.0)[i % 6] * (1 + i // 6) for i in range(vmap_size)]
        sets = [jax.tree.map(lambda x, f=f: (x * f).astype(x.dtype), params) for f in factors]

        def run(p: Any) -> Any:
            s = tx.init(p)
            for _ in range(2):
                p, s, _ = step(p, s)
            return p, s

        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *sets)
        try:
            batched = jax.jit(jax.vmap(run))(stacked)
        except Exception as e:
            raise _fail("vmap", f"jax.vmap of init and two steps raised {type(e).__name__}: {e}") from e
        for i, p in enumerate(sets):
            _check(
                "vmap",
                f"param set {i} of {vmap_size}: vmapped (params, state) after two steps vs alone",
                chex.assert_trees_all_close,
                _comparable(jax.tree.map(lambda x, i=i: x[i], batched)),
                _comparable(run(p)),
                rtol=rtol,
                atol=atol,
            )

    if "finite_on_zero_updates" in checked:
        zeros = jax.tree.map(jnp.zeros_like, updates_of(params))
        s = state0
        for i in range(2):
            u, s = tx.update(zeros, s, params, **kwargs)
            what = f"update {i + 1} with zero updates"
            _check("finite_on_zero_updates", f"{what}: output updates", chex.assert_tree_all_finite, _comparable(u))
            _check("finite_on_zero_updates", f"{what}: state", chex.assert_tree_all_finite, _comparable(s))
    return checked
