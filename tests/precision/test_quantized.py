"""quantized_state: the blockwise round trip against a float64 reference, eligibility, jit/vmap,
explicit sharding, orbax, memory per parameter and accuracy against float32 AdamW."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.precision._quantized import block_layout, dequantize, dynamic_map, quantize

# --- the float64 reference --------------------------------------------------------------------


def _ref_roundtrip(x: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 blockwise round trip by brute force: ``(decoded, absmax per block)``."""
    lead, row, nb = block_layout(x.shape, block_size)
    flat = np.zeros((*lead, nb * block_size))
    flat[..., :row] = x.reshape((*lead, row))
    blocks = flat.reshape((*lead, nb, block_size))
    absmax = np.abs(blocks).max(axis=-1, keepdims=True)
    maps = np.where((blocks >= 0).all(axis=-1, keepdims=True)[..., None], dynamic_map(False), dynamic_map(True))
    normed = blocks / np.where(absmax > 0, absmax, 1.0)
    nearest = np.take_along_axis(maps, np.abs(maps - normed[..., None]).argmin(axis=-1)[..., None], -1)[..., 0]
    decoded = (nearest * absmax).reshape((*lead, nb * block_size))[..., :row].reshape(x.shape)
    return decoded, absmax[..., 0]


def _half_gap(signed: bool) -> float:
    return float(np.diff(dynamic_map(signed)).max() / 2)


CASES = [
    ("signed", (37, 300), 64),
    ("nonneg_decades", (37, 300), 64),
    ("signed", (1000,), 256),
    ("nonneg_decades", (3, 5, 7), 4),
    ("with_zeros", (16, 512), 128),
]


def _draw(kind: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "signed":
        return rng.normal(size=shape) * 3
    if kind == "nonneg_decades":  # squared gradients spanning many decades, as a second moment does
        return np.exp(rng.normal(size=shape) * 4)
    x = rng.normal(size=shape)
    x[:, :256] = 0.0  # two whole zero blocks per row
    x[x < -1] = 0.0
    return x


def test_dynamic_maps() -> None:
    for signed in (True, False):
        m = dynamic_map(signed)
        assert m.shape == (256,) and np.all(np.diff(m) >= 0) and m[-1] == 1.0 and 0.0 in m
    signed_map = dynamic_map(True)
    np.testing.assert_array_equal(signed_map[1:], -signed_map[1:][::-1])  # symmetric around 0
    assert signed_map[0] == -1.0
    assert np.min(signed_map[signed_map > 0]) == pytest.approx(1e-6)
    assert np.min(dynamic_map(False)[1:]) == pytest.approx(1e-7)
    assert len(np.unique(dynamic_map(False))) == 256


@pytest.mark.parametrize(("kind", "shape", "block_size"), CASES)
def test_roundtrip_matches_float64_reference_within_per_block_bound(
    kind: str, shape: tuple[int, ...], block_size: int
) -> None:
    x = _draw(kind, shape)
    q = quantize(jnp.asarray(x, jnp.float32), block_size)
    lead, _, nb = block_layout(shape, block_size)
    assert q.codes.dtype == jnp.int8 and q.codes.shape == shape
    assert q.scale.dtype == jnp.float32 and q.scale.shape == (*lead, nb)
    got = np.asarray(dequantize(q, block_size), np.float64)
    ref, absmax = _ref_roundtrip(x, block_size)
    np.testing.assert_allclose(np.abs(np.asarray(q.scale)), absmax, rtol=1e-6)
    # Per block: the error is at most half the widest gap of the map, times the block's scale
    # (plus float32 rounding of the normalised value).
    err = np.abs(got - x)
    bound = _half_gap(True) if kind != "nonneg_decades" else _half_gap(False)
    lead_shape, row, _ = block_layout(shape, block_size)
    err_blocks = np.zeros((*lead_shape, nb * block_size))
    err_blocks[..., :row] = err.reshape((*lead_shape, row))
    per_block = err_blocks.reshape((*lead_shape, nb, block_size)).max(axis=-1)
    assert np.all(per_block <= absmax * (bound + 1e-6)), float(np.max(per_block / np.maximum(absmax, 1e-300)))
    # And the decoded values are the float64 nearest neighbours, except where float32
    # normalisation puts a value on the other side of a midpoint (then one code apart).
    same = np.isclose(got, ref, rtol=1e-6, atol=0)
    assert same.mean() > 0.995
    # The block maximum and exact zeros survive unchanged.
    assert np.all(got[x == 0] == 0)
    np.testing.assert_allclose(np.max(np.abs(got)), np.max(np.abs(x)), rtol=1e-6)


def test_nonnegative_state_uses_the_unsigned_map_and_keeps_small_values() -> None:
    # A second moment: one large entry and tiny ones in the same block.
    x = np.full((4, 256), 3e-6)
    x[:, 0] = 1.0
    q = quantize(jnp.asarray(x, jnp.float32), 256)
    assert bool(jnp.all(jnp.signbit(q.scale)))  # unsigned map chosen
    got = np.asarray(dequantize(q, 256), np.float64)
    np.testing.assert_allclose(got, x, rtol=0.2)  # a linear 8-bit code would give 0 here
    # A block with a negative entry uses the signed map.
    q2 = quantize(jnp.asarray(-x, jnp.float32), 256)
    assert not bool(jnp.any(jnp.signbit(q2.scale)))


def test_bad_arguments_raise_naming_them() -> None:
    inner = gradtx.adam(1e-3)
    for kwargs, name in [
        ({"bits": 4}, "bits"),
        ({"bits": 16}, "bits"),
        ({"block_size": 0}, "block_size"),
        ({"block_size": -8}, "block_size"),
        ({"block_size": 100}, "block_size"),
        ({"min_size": -1}, "min_size"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            gradtx.quantized_state(inner, **kwargs)
    with pytest.raises(TypeError, match="`block_size`"):
        gradtx.quantized_state(inner, block_size=256.0)
    with pytest.raises(TypeError, match="`inner`"):
        gradtx.quantized_state(object())


# --- the wrapper --------------------------------------------------------------------------------


def _params() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "w": jnp.asarray(rng.normal(size=(32, 128)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(128,)), jnp.float32),
        "v": jnp.asarray(rng.normal(size=(8, 8, 64)), jnp.float32),
    }


def _grads(params: Any, k: int = 0) -> Any:
    return jax.tree.map(lambda p: jnp.sin(p * (k + 1.5)) + 0.1 * p, params)


def test_eligibility_param_shaped_floating_leaves_of_min_size() -> None:
    params = _params()
    state = gradtx.quantized_state(gradtx.adamw(1e-2), block_size=64, min_size=1024).init(params)
    adam_state = state[0]
    assert adam_state.count.dtype == jnp.int32  # counters untouched
    for name in ("w", "v"):
        for field in (adam_state.mu, adam_state.nu):
            assert isinstance(field[name], gradtx.QuantizedArray)
    assert adam_state.mu["b"].dtype == jnp.float32  # 128 < min_size
    assert adam_state.mu["v"].scale.shape == (8, 8, 1)  # rows of 64 entries
    assert adam_state.mu["w"].scale.shape == (32, 2)
    # Factored statistics are not per-parameter leaves, even where their shape equals another
    # param's (`v_row['w']` is (32,), like `params['c']`); adafactor's unfactored `v` is.
    fac = gradtx.adafactor(1e-2, min_dim_size_to_factor=4)
    with_c = {**params, "c": jnp.ones(32, jnp.float32)}
    fstate = gradtx.quantized_state(fac, min_size=0).init(with_c)[0]
    plain = fac.init(with_c)[0]
    assert jax.tree.map(jnp.shape, (fstate.v_row, fstate.v_col)) == jax.tree.map(jnp.shape, (plain.v_row, plain.v_col))
    assert not any(isinstance(x, gradtx.QuantizedArray) for x in (*fstate.v_row.values(), *fstate.v_col.values()))
    assert isinstance(fstate.v["b"], gradtx.QuantizedArray)


def _assert_close(a: Any, b: Any) -> None:
    """Equal up to float32 rounding; codes may sit one step apart where a value is on a midpoint."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == np.int8:
            diff = np.abs(x.astype(np.int32) - y.astype(np.int32))
            assert diff.max() <= 1 and diff.mean() < 0.01
        else:
            np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-4, atol=1e-6)


def test_inside_wrappers_only_per_parameter_leaves_are_quantized() -> None:
    params = _params()
    grads = _grads(params)
    # Injected hyperparameters are scalars: left alone; the inner moments are found by their key paths.
    injected = gradtx.quantized_state(gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=1e-2), min_size=0)
    state = injected.init(params)
    assert isinstance(state.inner_state[0].nu["w"], gradtx.QuantizedArray)
    assert not any(isinstance(x, gradtx.QuantizedArray) for x in jax.tree.leaves(state.hyperparams))
    _, state = injected.update(grads, state, params)
    assert isinstance(state.inner_state[0].mu["b"], gradtx.QuantizedArray)
    # A masked inner transform: only the leaves it keeps state for are there to quantize.
    mask = {"w": True, "b": False, "v": True}
    masked = gradtx.quantized_state(gradtx.masked(gradtx.adam(1e-2), mask), min_size=0)
    u, _ = masked.update(grads, masked.init(params), params)
    np.testing.assert_array_equal(np.asarray(u["b"]), np.asarray(grads["b"]))  # untouched by the mask
    assert float(jnp.max(jnp.abs(u["w"]))) <= 1e-2 * (1 + 1e-6)  # Adam's first step: at most lr


def test_jit_equals_eager_vmap_and_stable_state_types() -> None:
    params = _params()
    tx = gradtx.quantized_state(gradtx.adamw(1e-2, weight_decay=0.01), block_size=64, min_size=0)
    state = tx.init(params)
    abstract = jax.eval_shape(tx.init, jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params))
    types0 = jax.tree.map(lambda x: (x.shape, x.dtype), state)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), abstract) == types0
    jitted = jax.jit(tx.update)
    s_eager, s_jit, p = state, state, params
    for k in range(2):
        u_eager, s_eager = tx.update(_grads(p, k), s_eager, p)
        u_jit, s_jit = jitted(_grads(p, k), s_jit, p)
        _assert_close(u_eager, u_jit)
        _assert_close(s_eager, s_jit)
        p = gradtx.apply_updates(p, u_jit)
        assert jax.tree.map(lambda x: (x.shape, x.dtype), s_jit) == types0
    # vmap over a batch of two independent problems equals running each alone.
    batch = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), params)
    bstate = jax.vmap(tx.init)(batch)
    bu, _ = jax.vmap(tx.update)(_grads(batch), bstate, batch)
    for i, scale in enumerate((1.0, 2.0)):
        single = jax.tree.map(lambda a, s=scale: s * a, params)
        u, _ = tx.update(_grads(single), tx.init(single), single)
        _assert_close(u, jax.tree.map(lambda x, i=i: x[i], bu))


def test_explicit_sharding_keeps_types_and_matches_unsharded() -> None:
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    params = _params()
    tx = gradtx.quantized_state(gradtx.adamw(1e-2), block_size=64, min_size=0)
    u_ref, s_ref = tx.update(_grads(params), tx.init(params), params)
    with jax.set_mesh(mesh):
        sharded = {k: jax.device_put(v, NamedSharding(mesh, P("data"))) for k, v in params.items()}
        state = jax.jit(tx.init)(sharded)
        u, new_state = jax.jit(tx.update)(_grads(sharded), state, sharded)
        assert jax.tree.map(jax.typeof, new_state) == jax.tree.map(jax.typeof, state)
        assert tuple(new_state[0].mu["w"].codes.sharding.spec) == ("data", None)  # the param's
    _assert_close((u, new_state), (u_ref, s_ref))


def test_state_shardings_place_codes_like_their_param() -> None:
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",))
    params = {"emb": jax.ShapeDtypeStruct((1024, 256), jnp.float32)}  # an embedding: more rows than columns
    tx = gradtx.quantized_state(gradtx.adamw(1e-3), min_size=0)
    shardings = gradtx.sharding.state_shardings(tx, params, {"emb": NamedSharding(mesh, P("data"))})
    assert shardings[0].mu["emb"].codes.spec == P("data")
    # One scale per row block, shape (1024, 1): it keeps the rows' spec, so each block's scale
    # lives on the device that holds the block.
    assert jax.eval_shape(tx.init, params)[0].mu["emb"].scale.shape == (1024, 1)
    assert shardings[0].mu["emb"].scale.spec == P("data")
    zero = gradtx.sharding.state_shardings(tx, params, NamedSharding(mesh, P()), zero_axis="data")
    # ZeRO partitions the codes (1 byte per entry) and the scales beside them, along the rows.
    assert zero[0].nu["emb"].codes.spec == P("data")
    assert zero[0].nu["emb"].scale.spec == P("data")


def test_orbax_round_trip(tmp_path: Any) -> None:
    ocp = pytest.importorskip("orbax.checkpoint")
    params = _params()
    tx = gradtx.quantized_state(gradtx.adamw(1e-2), block_size=64, min_size=0)
    _, state = tx.update(_grads(params), tx.init(params), params)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "state", state)
        ckpt.wait_until_finished()
        restored = ckpt.restore(tmp_path / "state", jax.eval_shape(lambda: state))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --- memory and accuracy ---------------------------------------------------------------------------


def bert_base_like() -> dict[str, Any]:
    """12 layers of (768x768 x4, 768x3072, 3072x768) and a 32000x768 embedding, abstract."""

    def leaf(*shape: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    layer = {"q": leaf(768, 768), "k": leaf(768, 768), "v": leaf(768, 768), "o": leaf(768, 768)}
    layers = [{**layer, "up": leaf(768, 3072), "down": leaf(3072, 768)} for _ in range(12)]
    return {"embedding": leaf(32000, 768), "layers": layers}


def test_state_bytes_per_parameter_on_a_bert_base_like_tree() -> None:
    params = bert_base_like()
    n = sum(math.prod(p.shape) for p in jax.tree.leaves(params))
    assert n == 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 32000 * 768
    bf16 = jnp.bfloat16
    adamw = gradtx.state_bytes_per_param(gradtx.adamw(1e-3), params)
    low = gradtx.state_bytes_per_param(gradtx.adamw(1e-3, mu_dtype=bf16, nu_dtype=bf16), params)
    q8 = gradtx.state_bytes_per_param(gradtx.quantized_state(gradtx.adamw(1e-3)), params)
    factored = gradtx.state_bytes_per_param(gradtx.adafactor(1e-3), params)
    assert adamw == pytest.approx(8.0, abs=1e-6)
    assert low == pytest.approx(4.0, abs=1e-6)
    assert q8 <= 2.1
    assert factored <= 0.01


def _regression_losses(tx: Any, steps: int = 300) -> jax.Array:
    """A fixed noisy regression (a teacher's outputs plus noise) by a two-layer tanh net, full batch."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(1024, 16)), jnp.float32)
    teacher = jnp.asarray(rng.normal(size=(16, 1)), jnp.float32)
    y = jnp.tanh(x @ teacher) + 0.3 * jnp.asarray(rng.normal(size=(1024, 1)), jnp.float32)
    params = {
        "w1": jnp.asarray(rng.normal(size=(16, 32)) / 4, jnp.float32),
        "b1": jnp.zeros(32, jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(32, 1)) / np.sqrt(32), jnp.float32),
    }

    def loss_fn(p: Any) -> jax.Array:
        return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)

    def body(carry: Any, _: Any) -> tuple[Any, jax.Array]:
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p)
        u, s = tx.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), loss

    _, losses = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
    return losses


def test_8bit_adamw_ends_within_5_percent_of_float32_adamw() -> None:
    run = jax.jit(_regression_losses, static_argnums=0)
    base = gradtx.adamw(1e-2, weight_decay=1e-4)
    # min_size=0 and small blocks: every leaf, even the bias, is stored in 8 bits.
    q8 = gradtx.quantized_state(base, block_size=64, min_size=0)
    f32, int8 = run(base), run(q8)
    assert float(f32[-1]) < 0.1 * float(f32[0])  # the problem is actually learned
    assert abs(float(int8[-1]) - float(f32[-1])) <= 0.05 * float(f32[-1]), (float(f32[-1]), float(int8[-1]))


def test_state_shardings_follow_the_param_not_a_same_shaped_neighbour() -> None:
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",))
    s = jax.ShapeDtypeStruct
    # Two params of one shape sharded differently, and a third whose shape is w's scale's.
    params = {"w": s((64, 256), jnp.float32), "v": s((64, 256), jnp.float32), "b": s((64, 4), jnp.float32)}
    specs = {"w": P("data", None), "v": P(None, "data"), "b": P(None, "data")}
    shardings = {k: NamedSharding(mesh, spec) for k, spec in specs.items()}
    tx = gradtx.quantized_state(gradtx.adam(1e-3), min_size=1000, block_size=64)
    assert jax.eval_shape(tx.init, params)[0].mu["w"].scale.shape == (64, 4)
    got = gradtx.sharding.state_shardings(tx, params, shardings)
    plain = gradtx.sharding.state_shardings(gradtx.adam(1e-3), params, shardings)
    # The codes are their param's (as float32 moments are), not replicated for the ambiguity.
    assert got[0].mu["w"].codes.spec == plain[0].mu["w"].spec == P("data")
    assert got[0].mu["v"].codes.spec == plain[0].mu["v"].spec == P(None, "data")
    assert got[0].mu["w"].scale.spec == P("data")  # w's rows, not b's spec of the same shape
    assert got[0].mu["v"].scale.spec == P()  # v's rows are whole: its blocks span the split columns
    assert got[0].mu["b"].spec == P(None, "data")  # b is below min_size: a float32 moment


@pytest.mark.parametrize("shape", [(1024, 256), (16, 4096)])
def test_zero_partitions_each_scale_along_its_codes(shape: tuple[int, int]) -> None:
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",))
    params = {"w": jax.ShapeDtypeStruct(shape, jnp.float32)}
    tx = gradtx.quantized_state(gradtx.adamw(1e-3), min_size=0)
    got = gradtx.sharding.state_shardings(tx, params, NamedSharding(mesh, P()), zero_axis="data")
    grads = gradtx.sharding.gradient_shardings(params, NamedSharding(mesh, P()), zero_axis="data")
    mu = got[0].mu["w"]
    # A wide matrix is partitioned along its columns: its (16, 16) scales too, not along their rows.
    assert mu.codes.spec == grads["w"].spec
    assert mu.scale.spec == grads["w"].spec
