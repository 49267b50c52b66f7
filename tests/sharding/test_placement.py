"""Placement-true optimizer state: every leaf is made like its param and keeps its type.

Runs each optimizer of the registry on a ``("data", "model") = (4, 2)`` mesh of the 8 CPU
devices, in explicit sharding mode (``AxisType.Explicit`` under ``jax.set_mesh``) and with
classic ``jax.jit`` shardings (``NamedSharding`` on an ``Auto`` mesh). Params mix a
row-sharded matrix, a column-sharded matrix and a replicated vector.

Abstract init (``jax.eval_shape`` on ``ShapeDtypeStruct``s with ``.sharding``) is checked in
explicit mode only: on an ``Auto`` mesh jax 0.10's ``eval_shape`` returns no sharding at all,
not even for the identity function, so there is nothing to compare.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx import _numerics
from tests.support.registry import ONE_VECTOR, REGISTRY

AXES = ("data", "model")
SPECS = {"rows": P("data", None), "cols": P(None, "model"), "bias": P()}
SHAPES = {"rows": (8, 4), "cols": (8, 4), "bias": (4,)}
MODES = ("explicit", "auto")


@functools.cache
def _mesh(mode: str) -> jax.sharding.Mesh:
    kind = AxisType.Explicit if mode == "explicit" else AxisType.Auto
    return jax.make_mesh((4, 2), AXES, axis_types=(kind, kind))


def _shardings(mode: str) -> dict[str, NamedSharding]:
    return {k: NamedSharding(_mesh(mode), spec) for k, spec in SPECS.items()}


def _values(seed: float) -> dict[str, np.ndarray]:
    # Deterministic, distinct entries (float32: a dtype drift of the state would show).
    return {
        k: (seed + np.arange(np.prod(s), dtype=np.float32).reshape(s) / 7.0).astype(np.float32)
        for k, s in SHAPES.items()
    }


def _placed(mode: str, seed: float) -> dict[str, jax.Array]:
    shardings = _shardings(mode)
    return {k: jax.device_put(v, shardings[k]) for k, v in _values(seed).items()}


def _abstract(mode: str) -> dict[str, jax.ShapeDtypeStruct]:
    shardings = _shardings(mode)
    return {k: jax.ShapeDtypeStruct(SHAPES[k], jnp.float32, sharding=shardings[k]) for k in SHAPES}


# `gradtx.stacked`'s groups of these params (flattened in key order: bias, cols, rows). In
# explicit mode leaves of one shape but different shardings are stacked apart, so each stack is
# placed like its leaves; under Auto shardings the traced leaves carry no sharding, the two
# matrices share one stack and XLA places it (documented): MIXED, no layout to expect.
MIXED = "mixed"
STACKED_GROUPS = {
    "explicit": {"float32[4]": "bias", "float32[8,4]": "cols", "float32[8,4]#1": "rows"},
    "auto": {"float32[4]": "bias", "float32[8,4]": MIXED},
}


def _param_of(path: tuple[Any, ...], mode: str) -> str | None:
    """The param a state leaf belongs to: the last dict key on its path that names a param or a stack."""
    groups = STACKED_GROUPS[mode]
    keys = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    names = [k if k in SHAPES else groups[k] for k in keys if k in SHAPES or k in groups]
    return names[-1] if names else None


def _expected_spec(shape: tuple[int, ...], name: str | None) -> P | None:
    """The spec a state leaf of ``shape`` must have, from its relation to its param.

    Same shape: the param's spec; one more leading dim (a history): ``None`` then the param's
    spec; same rank, some dims shrunk (blocked statistics): the entries of the unchanged dims;
    fewer dims (factored statistics): the param's spec without the reduced dims. ``None``
    means replicated (counters, per-leaf scalars, placeholders).
    """
    if name is None:
        return None
    pshape = SHAPES[name]
    spec = tuple(SPECS[name]) + (None,) * (len(pshape) - len(SPECS[name]))
    if shape == pshape:
        return P(*spec)
    if len(shape) == len(pshape) + 1 and shape[1:] == pshape:
        return P(None, *spec)
    if len(shape) == len(pshape):
        # Blocked statistics (e.g. quantization scales, one per block): a dim of the param's size
        # keeps its spec entry; a shrunk dim is unsharded.
        return P(*(s if n == m else None for s, n, m in zip(spec, shape, pshape, strict=True)))
    if 0 < len(shape) < len(pshape):
        # The dims kept are those whose sizes appear in order (sizes 8 and 4 are distinct here).
        kept, i = [], 0
        for d, n in enumerate(pshape):
            if i < len(shape) and shape[i] == n:
                kept.append(d)
                i += 1
        if i == len(shape):
            return P(*(spec[d] for d in kept))
    return None


def _check_placement(state: Any, mode: str, *, where: str, one_vector: bool = False) -> None:
    mesh = _mesh(mode)
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if not isinstance(leaf, jax.Array):
            continue
        name = _param_of(path, mode)
        if name == MIXED or (one_vector and mode == "auto" and leaf.ndim):
            continue
        spec = _expected_spec(leaf.shape, name)
        label = f"{where}: state{jax.tree_util.keystr(path)} {leaf.dtype}{list(leaf.shape)}"
        if spec is None or all(s is None for s in spec):
            assert leaf.sharding.is_fully_replicated, f"{label} is not replicated: {leaf.sharding}"
        else:
            want = NamedSharding(mesh, spec)
            assert leaf.sharding.is_equivalent_to(want, leaf.ndim), f"{label}: {leaf.sharding} is not {want}"


def _types(tree: Any) -> Any:
    return jax.tree.map(jax.typeof, tree)


def _specs_of(tree: Any) -> Any:
    """Each leaf's partition spec without trailing ``None``s; ``()`` when replicated or unknown."""

    def spec(x: Any) -> tuple[Any, ...]:
        entries = list(x.sharding.spec) if isinstance(x.sharding, NamedSharding) else []
        while entries and entries[-1] is None:
            entries.pop()
        return tuple(entries)

    return jax.tree.map(spec, tree)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("entry", REGISTRY, ids=[e.name for e in REGISTRY])
def test_state_is_placed_like_params_and_keeps_its_type(entry, mode):
    tx = entry.build()
    mesh = _mesh(mode)
    traces = []

    def step(params, state, grads):
        traces.append(None)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    with jax.set_mesh(mesh):
        params, grads = _placed(mode, 1.0), _placed(mode, -0.5)
        # flatten's one vector: replicated in explicit mode (a raveled leaf has no sharding of a
        # split dim); under Auto shardings XLA places it.
        one_vector = entry.name in ONE_VECTOR
        if mode == "auto" and entry.name.startswith("stacked"):
            # rows and cols share a stack here (the step sees no shardings): init warns.
            with pytest.warns(UserWarning, match="sharded differently"):
                eager = tx.init(params)
        else:
            eager = tx.init(params)
        _check_placement(eager, mode, where=f"{entry.name} eager init", one_vector=one_vector)
        state = jax.jit(tx.init)(params)
        _check_placement(state, mode, where=f"{entry.name} jitted init", one_vector=one_vector)
        jstep = jax.jit(step)
        new_params, new_state = jstep(params, state, grads)
        new_params, new_state = jstep(new_params, new_state, grads)
        # The usual flow, eager init then the jitted step, reuses the same trace too.
        jstep(params, eager, grads)
        assert len(traces) == 1, f"{entry.name}: the jitted step was traced {len(traces)} times"
        _check_placement(new_state, mode, where=f"{entry.name} after two steps", one_vector=one_vector)
        if mode == "explicit":
            # The state's type (shape, dtype and sharding) is the same at init and after updates,
            # and the same whether init ran eagerly, jitted, or abstractly.
            assert _types(new_state) == _types(state)
            assert _types(eager) == _types(state)
            abstract = jax.eval_shape(tx.init, _abstract(mode))
            assert _specs_of(abstract) == _specs_of(state)
            # Without jit too: an eager update from the eager init keeps every type.
            _, eager_new = step(params, eager, grads)
            assert _types(eager_new) == _types(eager)


def _adamw() -> gradtx.GradientTransformation:
    return gradtx.adamw(0.01, weight_decay=0.01)


WRAPPERS = {
    "multi_steps": lambda: gradtx.MultiSteps(_adamw(), 2).gradient_transformation(),
    "multi_steps_skip_not_finite": lambda: gradtx.MultiSteps(
        _adamw(), 2, should_skip_update_fn=gradtx.skip_not_finite
    ).gradient_transformation(),
    "apply_if_finite": lambda: gradtx.apply_if_finite(_adamw(), 3),
    "lookahead": lambda: gradtx.lookahead(_adamw(), 2, 0.5),
    "lookahead_reset": lambda: gradtx.lookahead(_adamw(), 2, 0.5, reset_state=True),
    "conditionally_transform": lambda: gradtx.conditionally_transform(_adamw(), lambda step: step % 2 == 0),
    "conditionally_mask": lambda: gradtx.conditionally_mask(_adamw(), lambda step: step % 2 == 0),
    "inject_hyperparams": lambda: gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=0.01, weight_decay=0.01),
    # An array hyperparameter made outside the mesh: init keeps a copy typed on the mesh.
    "inject_array": lambda: gradtx.inject_hyperparams(gradtx.adamw)(
        learning_rate=jnp.asarray(0.01, jnp.float32), weight_decay=0.01
    ),
    "inject_schedule": lambda: gradtx.inject_hyperparams(gradtx.adamw)(
        learning_rate=gradtx.linear_schedule(0.01, 0.001, 4)
    ),
    "ema_params": lambda: gradtx.chain(_adamw(), gradtx.ema_params(0.9)),
    # Measurements kept in the state: per-parameter ones keep the updates' sharding from init on.
    "monitor": lambda: gradtx.chain(_adamw(), gradtx.monitor({"updates": lambda u: u, "norm": gradtx.global_norm})),
    # State in another dtype than the params: the type keeps the state's dtype and the param's sharding.
    "bf16_moments": lambda: gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(0.01, mu_dtype=jnp.bfloat16)),
    "apply_every": lambda: gradtx.chain(_adamw(), gradtx.apply_every(2)),
}


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_wrappers_keep_state_types_in_explicit_mode(name):
    tx = WRAPPERS[name]()
    mesh = _mesh("explicit")
    traces = []

    def step(params, state, grads):
        traces.append(None)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    with jax.set_mesh(mesh):
        params, grads = _placed("explicit", 1.0), _placed("explicit", -0.5)
        if name.startswith("lookahead"):
            params = gradtx.LookaheadParams.init_synced(params)
        # The usual user flow: eager init, then a jitted step; every branch of the wrapper
        # (skip, hold, emit, sync) must return the state's types, so there is one trace only.
        state = tx.init(params)
        _check_placement(state, "explicit", where=f"{name} eager init")
        jstep = jax.jit(step)
        new_params, new_state = params, state
        for _ in range(3):
            new_params, new_state = jstep(new_params, new_state, grads)
        assert len(traces) == 1, f"{name}: the jitted step was traced {len(traces)} times"
        assert _types(new_state) == _types(state)
        assert _types(new_params) == _types(params)
        _check_placement(new_state, "explicit", where=f"{name} after three steps")
        # And eagerly (each lax.cond / lax.switch still checks its branches' types).
        _, eager_state = step(params, state, grads)
        assert _types(eager_state) == _types(state)


CROSS_LEAF = {
    # Reductions whose value spans all leaves (or a whole leaf): the sharded run must gather
    # partial sums correctly. A max norm of 0.5 makes clip_by_global_norm actually clip.
    "clip_by_global_norm": lambda: gradtx.clip_by_global_norm(0.5),
    "normalize_by_update_norm": lambda: gradtx.normalize_by_update_norm(),
    "adaptive_grad_clip": lambda: gradtx.adaptive_grad_clip(0.01),
    "scale_by_trust_ratio": lambda: gradtx.scale_by_trust_ratio(),
    "lamb": lambda: gradtx.lamb(0.01, weight_decay=0.01),
    "lars": lambda: gradtx.lars(0.1, weight_decay=0.01),
    "novograd": lambda: gradtx.novograd(0.01, weight_decay=0.01),
    "fromage": lambda: gradtx.fromage(0.01),
    "clip_by_block_rms": lambda: gradtx.clip_by_block_rms(0.1),
}


def _run_two_steps(tx: gradtx.GradientTransformation, params: Any, grads: Any) -> tuple[Any, jax.Array]:
    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, gradtx.global_norm(u)

    state = tx.init(params)
    params, state, _ = step(params, state, grads)
    params, _, norm = step(params, state, grads)
    return params, norm


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CROSS_LEAF))
def test_cross_leaf_reductions_equal_the_unsharded_run(name, mode):
    values, grad_values = _values(1.0), _values(-0.5)
    as64 = lambda tree: {k: jnp.asarray(v, jnp.float64) for k, v in tree.items()}
    want_params, want_norm = _run_two_steps(CROSS_LEAF[name](), as64(values), as64(grad_values))
    shardings = _shardings(mode)
    with jax.set_mesh(_mesh(mode)):
        place = lambda tree: {k: jax.device_put(as64(tree)[k], shardings[k]) for k in tree}
        params, grads = place(values), place(grad_values)
        assert float(gradtx.global_norm(grads)) == pytest.approx(float(gradtx.global_norm(as64(grad_values))), 1e-12)
        got_params, got_norm = _run_two_steps(CROSS_LEAF[name](), params, grads)
    for k in SHAPES:
        assert got_params[k].dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got_params[k]), np.asarray(want_params[k]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(got_norm), float(want_norm), rtol=1e-12)


def test_state_leaf_on_abstract_and_unplaced_leaves():
    tree = {"a": jax.ShapeDtypeStruct((2, 3), jnp.bfloat16), "b": jnp.ones(4, jnp.float32)}
    zeros = _numerics.state_zeros(tree)
    assert zeros["a"].shape == (2, 3) and zeros["a"].dtype == jnp.bfloat16
    assert _numerics.state_zeros(tree, jnp.float32)["a"].dtype == jnp.float32
    abstract = jax.eval_shape(lambda t: _numerics.state_full(t, 2.0, jnp.float64), tree)
    assert abstract["b"].shape == (4,) and abstract["b"].dtype == jnp.float64
    # A weakly typed param (a Python float) never gives a weakly typed state leaf.
    assert not jax.typeof(_numerics.state_leaf(1.0)).weak_type
    assert not jax.typeof(jax.jit(_numerics.state_leaf)(1.0)).weak_type


@pytest.mark.parametrize("jit", [False, True])
def test_state_leaf_values_are_exact_for_any_param_values(jit):
    # Under jit the zeros are derived from the param (so XLA places them like it): they must
    # still be exactly +0, also where the param is inf, -inf, NaN or negative, and for complex.
    p = jnp.array([[-1.5, jnp.inf], [-jnp.inf, jnp.nan]], jnp.float64)
    make = _numerics.state_leaf
    if jit:
        make = jax.jit(_numerics.state_leaf, static_argnames=("dtype", "drop_axes", "lead_shape"))
    zeros = np.asarray(make(p))
    assert np.array_equal(zeros, np.zeros((2, 2))) and not np.signbit(zeros).any()
    np.testing.assert_array_equal(np.asarray(make(p, 3.0, jnp.float32)), np.full((2, 2), 3.0, np.float32))
    assert make(p, 3.0, jnp.float32).dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(make(p, -jnp.inf)), np.full((2, 2), -np.inf))
    np.testing.assert_array_equal(np.asarray(make(p, 0.5, drop_axes=(1,))), np.full((2,), 0.5))
    np.testing.assert_array_equal(np.asarray(make(p, lead_shape=(3,))), np.zeros((3, 2, 2)))
    z = make(p.astype(jnp.complex128), 1.0)
    assert z.dtype == jnp.complex128 and np.array_equal(np.asarray(z), np.ones((2, 2)))


@pytest.mark.parametrize("mode", MODES)
def test_state_leaf_drops_and_prepends_spec_entries(mode):
    # A (8, 4) param sharded over both mesh axes: dropping a dim drops its spec entry, a
    # leading history dim is unsharded; eagerly, jitted and (explicit mode) abstractly.
    mesh = _mesh(mode)
    sharding = NamedSharding(mesh, P("data", "model"))
    cases = {
        "drop0": ({"drop_axes": (0,)}, P("model")),
        "drop1": ({"drop_axes": (1,)}, P("data")),
        "drop_all": ({"drop_axes": (0, 1)}, P()),
        "lead": ({"lead_shape": (3,)}, P(None, "data", "model")),
    }
    with jax.set_mesh(mesh):
        p = jax.device_put(jnp.ones((8, 4), jnp.float32), sharding)
        for name, (kwargs, spec) in cases.items():
            want = NamedSharding(mesh, spec)
            eager = _numerics.state_leaf(p, 1.0, **kwargs)
            jitted = jax.jit(lambda x, kw=kwargs: _numerics.state_leaf(x, 1.0, **kw))(p)
            for got in (eager, jitted):
                assert got.sharding.is_equivalent_to(want, got.ndim), f"{name}: {got.sharding} is not {want}"
                assert np.all(np.asarray(got) == 1.0)
            # Explicit mode: the type alone places the leaf, a constant. Auto mode: the leaf is derived
            # from the param, so that XLA's sharding propagation places it like the param.
            jaxpr = jax.make_jaxpr(lambda x, kw=kwargs: _numerics.state_leaf(x, 1.0, **kw))(p).jaxpr
            reads_param = any(v in eqn.invars for eqn in jaxpr.eqns for v in jaxpr.invars)
            assert reads_param == (mode == "auto"), name
            if mode == "explicit":
                assert jax.typeof(eager) == jax.typeof(jitted)
                sds = jax.ShapeDtypeStruct((8, 4), jnp.float32, sharding=sharding)
                abstract = jax.eval_shape(lambda x, kw=kwargs: _numerics.state_leaf(x, 1.0, **kw), sds)
                assert _specs_of(abstract) == _specs_of(eager), name


def test_state_never_aliases_the_callers_arrays():
    # A state leaf that is one of the caller's arrays (params, a PRNG key, a hyperparameter) is
    # freed when a step donates the state; each init keeps its own copy.
    params = {"w": jnp.ones((8, 4), jnp.float32)}
    key, lr = jax.random.PRNGKey(1), jnp.asarray(0.01, jnp.float32)
    cases = {
        "ema_params": (gradtx.ema_params(0.9), params["w"]),
        "noisy_sgd": (gradtx.noisy_sgd(0.01, key=key), key),
        "inject_hyperparams": (gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=lr), lr),
        "distance_over_gradients": (gradtx.scale_by_distance_over_gradients(), params["w"]),
    }
    for name, (tx, given) in cases.items():
        state = tx.init(params)
        assert all(leaf is not given for leaf in jax.tree.leaves(state)), name


def test_differently_sharded_updates_are_named_not_mixed():
    # Explicit mode would silently give the state a third type (8@data, 4@model): say so instead.
    mesh = _mesh("explicit")
    tx = _adamw()
    with jax.set_mesh(mesh):
        params = _placed("explicit", 1.0)
        grads = dict(params, rows=jax.device_put(params["rows"], NamedSharding(mesh, P(None, "model"))))
        state = tx.init(params)
        message = r"scale_by_adam: sharding mismatch at \['rows'\]: state.mu is float32\[8@data,4\] but updates is"
        with pytest.raises(ValueError, match=message + r" float32\[8,4@model\]"):
            jax.jit(tx.update)(grads, state, params)
        # Replicated gradients broadcast to the params' sharding: accepted, state types kept.
        replicated = {k: jax.device_put(v, NamedSharding(mesh, P())) for k, v in params.items()}
        _, new_state = jax.jit(tx.update)(replicated, state, params)
        assert _types(new_state) == _types(state)


NO_CONTEXT = {
    # The transforms that regroup a leaf's entries, and so reshard in explicit mode.
    "flatten": lambda: gradtx.flatten(_adamw()),
    "muon": lambda: gradtx.contrib.muon(0.01),
    "quantized": lambda: gradtx.quantized_state(_adamw(), block_size=8, min_size=0),
}


@pytest.mark.parametrize("name", list(NO_CONTEXT))
def test_explicit_arrays_need_no_mesh_context_eagerly(name):
    # `jax.make_mesh` gives explicit axes, and eager ops on such arrays need no `jax.set_mesh`:
    # the reshards inside take the arrays' own mesh (a bare spec would ask for the context).
    tx = NO_CONTEXT[name]()
    want, want_state = tx.update(_values(-0.5), tx.init(_values(1.0)), _values(1.0))
    params, grads = _placed("explicit", 1.0), _placed("explicit", -0.5)
    got, state = tx.update(grads, tx.init(params), params)
    assert _types(got) == _types(params)
    for a, b in zip(jax.tree.leaves((got, state)), jax.tree.leaves((want, want_state))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
