"""ZeRO stages 0-3 on 8 CPU devices: per-device bytes, equality with the unsharded run, 2-D meshes,
and an orbax checkpoint restored onto a smaller mesh.

A tiny float64 MLP whose every dimension divides by 8, so partitioned state splits evenly.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.sharding import per_device_bytes, state_shardings, zero_train_step

STEPS = 3


def _params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w1": rng.normal(size=(16, 32)) / 4,
        "b1": np.zeros(32),
        "w2": rng.normal(size=(32, 8)) / 6,
    }


def _batches() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(16, 16)) for _ in range(STEPS)]


def loss_fn(params: Any, batch: jax.Array) -> jax.Array:
    hidden = jnp.tanh(batch @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - 1.0) ** 2)


def _tx() -> gradtx.GradientTransformation:
    # A global-norm clip too: a reduction across leaves that must stay exact when they are sharded.
    return gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-2, weight_decay=1e-2))


@functools.cache
def _reference() -> tuple[dict[str, np.ndarray], list[float]]:
    """The unsharded run: one device, the same step."""
    tx = _tx()

    @jax.jit
    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    params = jax.device_put(_params(), jax.devices()[0])
    state = tx.init(params)
    losses = []
    for batch in _batches():
        params, state, loss = step(params, state, batch)
        losses.append(float(loss))
    return {k: np.asarray(v) for k, v in params.items()}, losses


def _run(zero, params: Any) -> tuple[Any, Any, list[float]]:
    params, state = zero.init(params)
    losses = []
    for batch in _batches():
        params, state, loss = zero.step(params, state, batch)
        losses.append(float(loss))
    return params, state, losses


def _assert_matches_reference(params: Any, losses: list[float]) -> None:
    ref_params, ref_losses = _reference()
    np.testing.assert_allclose(losses, ref_losses, rtol=0, atol=1e-9)
    for k, v in ref_params.items():
        np.testing.assert_allclose(np.asarray(params[k]), v, rtol=0, atol=1e-9)


def _share(tree: Any) -> float:
    """The fraction of the tree's bytes that each device holds, checked equal across devices."""
    total = sum(leaf.nbytes for leaf in jax.tree.leaves(tree))
    shares = [b / total for b in per_device_bytes(tree).values()]
    assert max(shares) == pytest.approx(min(shares), rel=0.05), shares
    return max(shares)


@pytest.mark.parametrize("zero_stage", [0, 1, 2, 3])
def test_zero_stages_divide_memory_and_equal_the_unsharded_run(zero_stage):
    mesh = jax.make_mesh((8,), ("data",))
    zero = zero_train_step(loss_fn, _tx(), mesh, _params(), zero_stage=zero_stage)
    params, state, losses = _run(zero, _params())
    _assert_matches_reference(params, losses)

    # Per-device optimizer-state bytes: all of it at stage 0, 1/8 from stage 1 on (the int32
    # step count, replicated, is the only excess: well inside 5%).
    assert _share(state) == pytest.approx(1.0 if zero_stage == 0 else 1 / 8, rel=0.05)
    assert len(per_device_bytes(state)) == 8
    # Params: whole on every device up to stage 2, partitioned at stage 3.
    assert _share(params) == pytest.approx(1 / 8 if zero_stage == 3 else 1.0, rel=0.05)
    assert (zero.grad_shardings is not None) == (zero_stage == 2)
    if zero_stage == 2:
        assert zero.grad_shardings["w1"].spec == P(None, "data")


def test_the_plain_jit_path_is_the_helper_written_out():
    """ZeRO-1 by hand: ``state_shardings`` and ``jax.jit`` shardings, as docs/sharding.md shows."""
    mesh = jax.make_mesh((8,), ("data",))
    tx = _tx()
    replicated = NamedSharding(mesh, P())
    param_shardings = jax.tree.map(lambda _: replicated, _params())
    opt_shardings = state_shardings(tx, _params(), param_shardings, zero_axis="data")

    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    train = jax.jit(
        step,
        in_shardings=(param_shardings, opt_shardings, NamedSharding(mesh, P("data"))),
        out_shardings=(param_shardings, opt_shardings, replicated),
        donate_argnums=(0, 1),
    )
    params = jax.device_put(_params(), param_shardings)
    state = jax.jit(tx.init, out_shardings=opt_shardings)(params)
    losses = []
    for batch in _batches():
        params, state, loss = train(params, state, batch)
        losses.append(float(loss))
    _assert_matches_reference(params, losses)
    assert _share(state) == pytest.approx(1 / 8, rel=0.05)


@pytest.mark.parametrize("zero_stage", [1, 2, 3])
def test_a_mesh_mixing_explicit_and_auto_axes(zero_stage):
    """An explicit data axis beside an auto model axis (moving to explicit sharding one axis at a
    time): each part of a sharding takes its own call (``reshard`` / a constraint), and the update
    runs with the explicit axes auto. Before, stage 2 failed for every optimizer, Adafactor at
    every stage, and stage 3's gather for the compute did nothing."""
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit, AxisType.Auto))
    tensor_parallel = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None)}
    zero = zero_train_step(loss_fn, _tx(), mesh, _params(), tensor_parallel, zero_stage=zero_stage)
    params, state, losses = _run(zero, _params())
    _assert_matches_reference(params, losses)
    assert state[1][0].mu["w1"].sharding.spec == P("data", "model")
    assert params["w1"].sharding.spec == (P("data", "model") if zero_stage == 3 else P(None, "model"))

    def factored(p: Any, s: Any) -> Any:
        return zero_train_step(
            loss_fn, gradtx.adafactor(1e-2, min_dim_size_to_factor=2), p, _params(), s, zero_stage=zero_stage
        )

    auto = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))
    # Replicated params too: then a matrix's row and column statistics are both partitioned over
    # "data", and their outer product has no valid explicit type.
    for layout in (tensor_parallel, None):
        got, _, _ = _run(factored(mesh, layout), _params())
        want, _, _ = _run(factored(auto, layout), _params())
        for k, v in want.items():
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(v), rtol=0, atol=1e-12)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto], ids=["explicit", "auto"])
def test_a_2d_mesh_state_mirrors_tensor_parallel_specs(axis_type):
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_type, axis_type))
    tensor_parallel = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None)}

    def explicit_loss(params, batch):
        # Explicit mode wants the model to say how a matmul over sharded contracting dims is
        # laid out; the optimizer side needs nothing.
        hidden = jnp.tanh(batch @ params["w1"] + params["b1"])
        out = jnp.matmul(hidden, params["w2"], out_sharding=NamedSharding(mesh, P("data", None)))
        return jnp.mean((out - 1.0) ** 2)

    loss = explicit_loss if axis_type == AxisType.Explicit else loss_fn
    zero = zero_train_step(loss, _tx(), mesh, _params(), tensor_parallel, zero_stage=1)
    params, state, losses = _run(zero, _params())
    _assert_matches_reference(params, losses)
    adam = state[1][0]
    # Each moment keeps its param's "model" dimension and adds "data" on a free one.
    for moment in (adam.mu, adam.nu):
        assert moment["w1"].sharding.spec == P("data", "model")
        assert moment["b1"].sharding.spec == P("model")  # 32 / 2 = 16 per "model" shard; "data" unused
        assert moment["w2"].sharding.spec == P("model", "data")
    assert params["w1"].sharding.spec == P(None, "model")
    assert _share(adam.mu) == pytest.approx(1 / 8, rel=0.15)  # b1 is only split 2 ways


def test_orbax_checkpoint_of_8_device_zero1_restores_on_4_devices_and_continues(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    tx = _tx()
    batches = _batches()
    mesh8 = jax.make_mesh((8,), ("data",))
    zero8 = zero_train_step(loss_fn, tx, mesh8, _params(), zero_stage=1)
    params, state = zero8.init(_params())
    params, state, _ = zero8.step(params, state, batches[0])

    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "step1", {"params": params, "opt_state": state})
    checkpointer.wait_until_finished()
    # The 8-device run goes on: the reference for what the restored run must do.
    expected_params, expected_state = params, state
    for batch in batches[1:]:
        expected_params, expected_state, _ = zero8.step(expected_params, expected_state, batch)

    mesh4 = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
    zero4 = zero_train_step(loss_fn, tx, mesh4, _params(), zero_stage=1)
    abstract = jax.eval_shape(tx.init, _params())
    target = {
        "params": jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), _params(), zero4.param_shardings
        ),
        "opt_state": jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, zero4.state_shardings
        ),
    }
    restored = checkpointer.restore(tmp_path / "step1", target)
    params4, state4 = restored["params"], restored["opt_state"]
    assert jax.tree.structure(state4) == jax.tree.structure(state)
    assert {d.id for leaf in jax.tree.leaves(state4) for d in leaf.sharding.device_set} == {0, 1, 2, 3}
    assert _share(state4) == pytest.approx(1 / 4, rel=0.05)
    for batch in batches[1:]:
        params4, state4, _ = zero4.step(params4, state4, batch)
    for got, want in zip(jax.tree.leaves((params4, state4)), jax.tree.leaves((expected_params, expected_state))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-9)


def test_bad_zero_stage_and_axis_are_named():
    mesh = jax.make_mesh((8,), ("data",))
    with pytest.raises(ValueError, match="zero_stage must be 0, 1, 2 or 3, got 4"):
        zero_train_step(loss_fn, _tx(), mesh, _params(), zero_stage=4)
    with pytest.raises(ValueError, match=r"zero_axis 'batch' is not an axis of the mesh; its axes are \('data',\)"):
        zero_train_step(loss_fn, _tx(), mesh, _params(), zero_axis="batch")
    other = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
    with pytest.raises(ValueError, match="not the step's mesh"):
        zero_train_step(loss_fn, _tx(), mesh, _params(), NamedSharding(other, P()))
    with pytest.raises(ValueError, match=r"^zero_train_step: param_shardings must have the params' structure"):
        zero_train_step(loss_fn, _tx(), mesh, _params(), {"w1": P(), "w2": P()})
    with pytest.raises(TypeError, match=r"per_device_bytes: tree\['b1'\] is a ndarray, not a jax.Array"):
        per_device_bytes(_params())


def test_a_none_param_sharding_means_replicated():
    mesh = jax.make_mesh((8,), ("data",))
    zero = zero_train_step(loss_fn, _tx(), mesh, _params(), {"w1": P(None, None), "b1": None, "w2": None})
    assert zero.param_shardings["b1"].spec == P()
    params, _, losses = _run(zero, _params())
    _assert_matches_reference(params, losses)


@pytest.mark.parametrize(
    "name",
    ["lamb", "lars", "adafactor", "novograd", "sm3"],
)
def test_reductions_within_and_across_sharded_leaves_stay_exact(name):
    """Trust ratios, per-leaf norms and factored means over partitioned state equal the unsharded run."""
    tx = {
        "lamb": lambda: gradtx.lamb(1e-2, weight_decay=1e-2),
        "lars": lambda: gradtx.lars(1e-1, weight_decay=1e-2),
        "adafactor": lambda: gradtx.adafactor(1e-2, min_dim_size_to_factor=4),
        "novograd": lambda: gradtx.novograd(1e-2),
        "sm3": lambda: gradtx.sm3(1e-2),
    }[name]()

    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    reference = jax.jit(step)
    ref_p = jax.device_put(_params(), jax.devices()[0])
    ref_s = tx.init(ref_p)
    zero = zero_train_step(loss_fn, tx, jax.make_mesh((8,), ("data",)), _params(), zero_stage=1)
    params, state = zero.init(_params())
    for batch in _batches():
        ref_p, ref_s, ref_loss = reference(ref_p, ref_s, batch)
        params, state, loss = zero.step(params, state, batch)
        np.testing.assert_allclose(float(loss), float(ref_loss), rtol=0, atol=1e-9)
    for got, want in zip(jax.tree.leaves((params, state)), jax.tree.leaves((ref_p, ref_s)), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-9)


def test_stage1_gathers_each_updated_param_and_stage0_gathers_none():
    """The compiled program shows the ZeRO-1 pattern: each param, updated where its state slice
    lives, is all-gathered. (XLA:CPU lowers stage 2's reduce-scatter as an all-reduce and a
    slice, so the collectives' names prove stages 0 and 1 only; bytes and equality prove the rest.)
    """
    mesh = jax.make_mesh((8,), ("data",))
    shapes = {f"f64[{','.join(map(str, v.shape))}]" for v in _params().values()}

    def gathered(stage: int) -> set[str]:
        zero = zero_train_step(loss_fn, _tx(), mesh, _params(), zero_stage=stage)
        params, state = zero.init(_params())
        hlo = zero.step.lower(params, state, _batches()[0]).compile().as_text()
        return {m for m in re.findall(r"= (f64\[[\d,]*\])\S* all-gather(?:-start)?\(", hlo) if m in shapes}

    assert gathered(0) == set()
    assert gathered(1) == shapes


@pytest.mark.parametrize("zero_stage", [1, 3])
def test_quantized_state_on_a_default_mesh_needs_no_mesh_context(zero_stage):
    # `jax.make_mesh` axes are explicit: the 8-bit codes' regrouping reshards on the arrays' own
    # mesh, so the helper works without `jax.set_mesh`, as it does for float32 state.
    params = {k: v.astype(np.float32) for k, v in _params().items()}
    tx = gradtx.quantized_state(gradtx.adamw(1e-2), block_size=8, min_size=0)
    zero = zero_train_step(loss_fn, tx, jax.make_mesh((8,), ("data",)), params, zero_stage=zero_stage)
    batches = [b.astype(np.float32) for b in _batches()]
    got, state = zero.init(params)
    losses = []
    for batch in batches:
        got, state, loss = zero.step(got, state, batch)
        losses.append(float(loss))
    assert state[0].mu["w1"].codes.dtype == jnp.int8

    @jax.jit
    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    want = jax.device_put(params, jax.devices()[0])
    s = tx.init(want)
    for batch, loss in zip(batches, losses):
        want, s, want_loss = step(want, s, batch)
        np.testing.assert_allclose(loss, float(want_loss), rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=0, atol=1e-5)
