"""check_transformation: passes correct transforms, and names the property each broken one breaks."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.testing import PROPERTIES, check_transformation

PARAMS = {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]], jnp.float32), "b": jnp.asarray([0.1, -0.3], jnp.float32)}


class CountState(NamedTuple):
    count: Any


def passthrough_init(params: Any) -> gradtx.EmptyState:
    del params
    return gradtx.EmptyState()


def transform(update: Any, init: Any = passthrough_init) -> gradtx.GradientTransformation:
    return gradtx.GradientTransformation(init, update)


def broken(prop: str) -> Any:
    """pytest.raises for an AssertionError that names ``prop``."""
    return pytest.raises(AssertionError, match=rf"check_transformation: property '{prop}' failed")


def test_correct_transforms_pass_every_property():
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-2, weight_decay=1e-2))
    assert check_transformation(tx, PARAMS) == PROPERTIES
    # None leaves, a nested tuple, a scalar, a fixed tree of updates and the monitor wrapper.
    params = {"a": (jnp.ones((3,), jnp.float32), None), "s": jnp.asarray(2.0, jnp.float32)}
    grads = {"a": (jnp.asarray([0.5, -1.0, 2.0], jnp.float32), None), "s": jnp.asarray(-1.0, jnp.float32)}
    monitored = gradtx.chain(gradtx.monitor({"norm": gradtx.global_norm}), gradtx.sgd(0.1, momentum=0.9))
    assert check_transformation(monitored, params, updates=grads) == PROPERTIES
    # A typed PRNG key in the state (add_noise's, from an int seed): compared by its key data.
    assert check_transformation(gradtx.noisy_sgd(0.1, key=0), PARAMS) == PROPERTIES


def test_extra_args_reach_update():
    seen = []

    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        seen.append(extra_args["value"])
        return jax.tree.map(lambda u: u * extra_args["value"], updates), state

    check_transformation(transform(update), PARAMS, extra_args={"value": 0.5}, skip={"vmap"})
    assert seen and all(v == 0.5 for v in seen)


def test_impure_global_counter_breaks_pure():
    calls = [0]

    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        calls[0] += 1  # hidden Python state: the result depends on how often update ran
        return jax.tree.map(lambda u: u * calls[0], updates), state

    with broken("pure") as info:
        check_transformation(transform(update), PARAMS)
    assert "different results" in str(info.value)


def test_mutating_the_callers_updates_breaks_pure():
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        updates["w"] = updates["w"] * 2.0  # writes into the caller's dict
        return updates, state

    with broken("pure") as info:
        check_transformation(transform(update), PARAMS)
    assert "in place" in str(info.value)


def test_mutating_the_callers_params_in_init_breaks_pure():
    def init(params: Any) -> gradtx.EmptyState:
        params["w"] = params["w"] * 0.0  # the caller would train from zeros
        return gradtx.EmptyState()

    with broken("pure") as info:
        check_transformation(transform(lambda u, s, p=None, **kw: (u, s), init), dict(PARAMS))
    assert "init changed the values of the params in place" in str(info.value)


def test_impure_init_breaks_pure():
    inits = [0]

    def init(params: Any) -> CountState:
        inits[0] += 1
        return CountState(jnp.asarray(inits[0], jnp.int32))

    with broken("pure") as info:
        check_transformation(transform(lambda u, s, p=None, **kw: (u, s), init), PARAMS)
    assert "init" in str(info.value)


def test_behaviour_that_differs_under_jit_breaks_jit():
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        traced = isinstance(jax.tree.leaves(updates)[0], jax.core.Tracer)
        return jax.tree.map(lambda u: u * (2.0 if traced else 1.0), updates), state

    with broken("jit") as info:
        check_transformation(transform(update), PARAMS)
    assert "step 1" in str(info.value)


def test_host_conversion_in_update_breaks_jit():
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        scale = float(np.asarray(gradtx.global_norm(updates)))  # a host sync: fails under jit
        return jax.tree.map(lambda u: u / scale, updates), state

    with broken("jit") as info:
        check_transformation(transform(update), PARAMS)
    assert "raised" in str(info.value)


def test_state_structure_change_breaks_state_stable():
    # What optax's monitor does: an empty dict after init, filled by the first update.
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        return updates, {"norm": gradtx.global_norm(updates)}

    with broken("state_stable") as info:
        check_transformation(transform(update, lambda p: {}), PARAMS)
    assert "structure" in str(info.value)


def test_state_dtype_change_breaks_state_stable():
    def init(params: Any) -> CountState:
        return CountState(jnp.zeros([], jnp.int32))

    def update(updates: Any, state: CountState, params: Any = None, **extra_args: Any) -> Any:
        return updates, CountState(state.count.astype(jnp.float32) + 1)  # int32 -> float32

    with broken("state_stable") as info:
        check_transformation(transform(update, init), PARAMS)
    assert "dtype" in str(info.value)


def test_state_sharding_change_breaks_state_stable():
    first, second = jax.devices()[:2]  # conftest gives 8 CPU devices

    def init(params: Any) -> CountState:
        return CountState(jax.device_put(jnp.zeros([], jnp.int32), first))

    def update(updates: Any, state: CountState, params: Any = None, **extra_args: Any) -> Any:
        return updates, CountState(jax.device_put(state.count + 1, second))

    with broken("state_stable") as info:
        check_transformation(transform(update, init), PARAMS, skip={"jit", "no_retrace", "vmap"})
    assert "sharding" in str(info.value)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_sharded_params_keep_their_state_sharding_and_resharding_breaks_state_stable(axis_type):
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        params = {
            "kernel": jax.device_put(jnp.ones((8, 4), jnp.float32), NamedSharding(mesh, P("data"))),
            "bias": jax.device_put(jnp.zeros((4,), jnp.float32), NamedSharding(mesh, P())),
        }
        # gradtx's state is made like its params: its shardings hold, eager and jitted.
        assert check_transformation(gradtx.adam(1e-2), params, skip={"vmap"})

        def init(p: Any) -> Any:
            return {"mu": jax.tree.map(jnp.zeros_like, p)}  # sharded like the params

        def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
            mu = jax.tree.map(lambda m, g: 0.9 * m + g, state["mu"], updates)
            # Gathers the kernel's moment onto every device: 8 times the memory, a silent change.
            return mu, {"mu": jax.device_put(mu, NamedSharding(mesh, P()))}

        with broken("state_stable") as info:
            check_transformation(transform(update, init), params, skip={"vmap"})
        assert "sharding" in str(info.value) and "kernel" in str(info.value)


def test_weak_type_flip_breaks_no_retrace():
    def init(params: Any) -> CountState:
        return CountState(jnp.asarray(0.0))  # weakly typed

    def update(updates: Any, state: CountState, params: Any = None, **extra_args: Any) -> Any:
        return updates, CountState((state.count + 1.0).astype(jnp.result_type(state.count)))  # strong

    with broken("no_retrace") as info:
        check_transformation(transform(update, init), PARAMS)
    assert "weak type" in str(info.value) and "count" in str(info.value)


def test_division_by_the_norm_breaks_finite_on_zero_updates():
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        norm = gradtx.global_norm(updates)  # no epsilon: 0 / 0 for zero gradients
        return jax.tree.map(lambda u: u / norm, updates), state

    with broken("finite_on_zero_updates") as info:
        check_transformation(transform(update), PARAMS)
    assert "output updates" in str(info.value)


def test_init_that_needs_values_breaks_abstract_init():
    def init(params: Any) -> CountState:
        return CountState(jnp.asarray(np.asarray(params["w"]).max()))  # reads values: no abstract init

    with broken("abstract_init") as info:
        check_transformation(transform(lambda u, s, p=None, **kw: (u, s), init), PARAMS)
    assert "ShapeDtypeStruct" in str(info.value)


def test_host_callback_without_batching_rule_breaks_vmap_and_skip_lets_it_pass():
    def double(u: jax.Array) -> jax.Array:
        return jax.pure_callback(lambda a: np.asarray(a) * 2, jax.ShapeDtypeStruct(u.shape, u.dtype), u)

    tx = transform(lambda u, s, p=None, **kw: (jax.tree.map(double, u), s))
    with broken("vmap"):
        check_transformation(tx, PARAMS)
    assert "vmap" not in check_transformation(tx, PARAMS, skip={"vmap"})


def test_wrong_vmap_result_breaks_vmap_and_a_per_set_reduction_does_not():
    def mean(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        return jax.tree.map(lambda u: u * 0.0 + jnp.mean(u), updates), state  # per param set under vmap

    assert "vmap" in check_transformation(transform(mean), PARAMS)

    def batch_dependent(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        batched = isinstance(jax.tree.leaves(updates)[0], jax.core.Tracer)
        return jax.tree.map(lambda u: u * (0.5 if batched else 1.0), updates), state

    with broken("vmap"):
        check_transformation(transform(batch_dependent), PARAMS, skip={"jit", "no_retrace"})


def test_dtype_drift_of_the_updates_breaks_updates_like_params():
    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        return jax.tree.map(lambda u: u.astype(jnp.float64), updates), state  # float32 in, float64 out

    with broken("updates_like_params") as info:
        check_transformation(transform(update), PARAMS)
    assert "step 1" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_steps": 1}, ValueError),
        ({"num_steps": True}, ValueError),
        ({"vmap_size": 0}, ValueError),
        ({"skip": {"purity"}}, ValueError),
        ({"skip": "vmap"}, ValueError),
        ({"updates": {"w": jnp.ones((2, 2))}}, ValueError),
    ],
)
def test_bad_options_raise(kwargs, error):
    with pytest.raises(error):
        check_transformation(gradtx.sgd(0.1), PARAMS, **kwargs)


@pytest.mark.parametrize("params", [{}, {"bias": None}])
def test_params_without_arrays_raise_instead_of_passing_vacuously(params):
    with pytest.raises(ValueError, match="`params` must have at least one array leaf"):
        check_transformation(gradtx.identity(), params)


def test_not_a_transform_raises_type_error():
    with pytest.raises(TypeError, match="init"):
        check_transformation(lambda p: p, PARAMS)
