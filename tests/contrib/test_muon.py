"""Muon: a float64 trajectory against a NumPy transcription of the algorithm, optax.contrib parity,
the default labelling, the errors, and the sharded run (equal to the unsharded one, no gather)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.contrib import MuonDimensionNumbers, muon, scale_by_muon
from gradtx.sharding import state_shardings

ABC = (3.4445, -4.7750, 2.0315)


# --- The reference: Jordan's Muon (blog pseudo-code) with optax's bias-corrected Nesterov momentum --------


def _ns5(g: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    a, b, c = ABC
    x = g / (np.linalg.norm(g) + eps)
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    for _ in range(5):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if transposed else x


def _reference(params: dict[str, np.ndarray], grad_fn: Any, steps: int, lr: float, wd: float) -> Any:
    """Muon on 2-D leaves (x @ W layout: fan_in rows), AdamW (Nesterov, optax's) on the others; float64."""
    beta, b1, b2, eps = 0.95, 0.9, 0.999, 1e-8
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        g = grad_fn(p)
        for k in p:
            if p[k].ndim == 2:
                m[k] = beta * m[k] + (1 - beta) * g[k]
                m_hat = beta * m[k] / (1 - beta ** (t + 1)) + (1 - beta) * g[k] / (1 - beta**t)
                fan_in, fan_out = p[k].shape
                u = _ns5(m_hat) * np.sqrt(max(1.0, fan_out / fan_in))
                p[k] = p[k] - lr * (u + wd * p[k])
            else:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v2[k] = b2 * v2[k] + (1 - b2) * g[k] ** 2
                m_hat = b1 * m[k] / (1 - b1 ** (t + 1)) + (1 - b1) * g[k] / (1 - b1**t)
                v_hat = v2[k] / (1 - b2**t)
                p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def _problem(seed: int = 0) -> tuple[dict[str, np.ndarray], Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 6))
    y = rng.normal(size=(16, 3))
    params = {"w1": rng.normal(size=(6, 8)) * 0.3, "w2": rng.normal(size=(8, 3)) * 0.3, "b": np.zeros(8)}

    def np_grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        h = x @ p["w1"] + p["b"]
        r = h @ p["w2"] - y
        gw2 = h.T @ r / len(x)
        gh = r @ p["w2"].T / len(x)
        return {"w1": x.T @ gh, "w2": gw2, "b": gh.sum(0)}

    def loss(p: Any) -> jax.Array:
        h = jnp.asarray(x) @ p["w1"] + p["b"]
        return 0.5 * jnp.sum((h @ p["w2"] - jnp.asarray(y)) ** 2) / len(x)

    return params, np_grad, loss


def test_float64_trajectory_matches_the_reference() -> None:
    params, np_grad, loss = _problem()
    expected = _reference(params, np_grad, 60, lr=0.02, wd=0.01)
    tx = muon(0.02, weight_decay=0.01)
    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)

    @jax.jit
    def step(p: Any, state: Any) -> Any:
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        return gradtx.apply_updates(p, updates), state

    for _ in range(60):
        p, state = step(p, state)
    for k in params:
        np.testing.assert_allclose(np.asarray(p[k]), expected[k], rtol=1e-10, atol=1e-10, err_msg=k)
    assert float(loss(p)) < float(loss(jax.tree.map(jnp.asarray, params)))


# --- optax.contrib parity (float32) ---------------------------------------------------------------


def _optax_labels(p: Any) -> Any:
    return jax.tree.map(lambda x: optax.contrib.MuonDimensionNumbers() if x.ndim == 2 else None, p)


def _ours_labels(p: Any) -> Any:
    return jax.tree.map(lambda x: MuonDimensionNumbers() if x.ndim == 2 else None, p)


CASES = {
    "default": {},
    "plain_momentum_adaptive_rms": {"nesterov": False, "adaptive": True, "consistent_rms": 0.2},
    "aol_dion": {"preconditioning": "aol", "ns_coeffs": "dion"},
    "schatten_decay": {
        "preconditioning": "schatten",
        "weight_decay": 0.1,
        "adam_weight_decay": 0.05,
        "adam_learning_rate": 0.003,
    },
    "spectral": {"preconditioning": "spectral"},
}


def _run(tx: Any, apply: Any, params: Any, steps: int) -> tuple[Any, Any]:
    """``steps`` updates on ``g = sin((i + 1) p)``, in one compiled scan."""

    def body(carry: Any, i: jax.Array) -> Any:
        p, s = carry
        g = jax.tree.map(lambda x: jnp.sin(x * (i + 1).astype(x.dtype)), p)
        u, s = tx.update(g, s, p)
        return (apply(p, u), s), None

    (p, s), _ = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(steps)))(params, tx.init(params))
    return p, s


@pytest.mark.parametrize("case", list(CASES))
def test_matches_optax_contrib(case: str) -> None:
    kwargs = CASES[case]
    with jax.enable_x64(False):
        rng = np.random.default_rng(1)
        params = {
            "embed": jnp.asarray(rng.normal(size=(7, 4)), jnp.float32),
            "tall": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32),
            "wide": jnp.asarray(rng.normal(size=(3, 5)), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=(5,)), jnp.float32),
        }
        ours = muon(0.01, muon_weight_dimension_numbers=_ours_labels, **kwargs)
        theirs = optax.contrib.muon(0.01, muon_weight_dimension_numbers=_optax_labels, **kwargs)
        p_ours, s_ours = _run(ours, gradtx.apply_updates, params, 8)
        with jax.numpy_dtype_promotion("standard"):
            p_theirs, s_theirs = _run(theirs, optax.apply_updates, params, 8)
        for k in params:
            np.testing.assert_allclose(p_ours[k], p_theirs[k], rtol=2e-5, atol=2e-5, err_msg=k)
        # The state restores into optax's tree (and back) with equal leaves.
        restored = serialization.from_state_dict(s_theirs, serialization.to_state_dict(s_ours))
        assert jax.tree.structure(restored) == jax.tree.structure(s_theirs)
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(s_ours), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        back = serialization.from_state_dict(s_ours, serialization.to_state_dict(s_theirs))
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(s_theirs), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_stacked_layers_match_optax_and_are_orthogonalised_per_layer() -> None:
    with jax.enable_x64(False):
        rng = np.random.default_rng(2)
        params = {"layers": jnp.asarray(rng.normal(size=(3, 4, 6)), jnp.float32)}
        ours = scale_by_muon(weight_dimension_numbers={"layers": MuonDimensionNumbers(1, 2)})
        theirs = optax.contrib.scale_by_muon(
            weight_dimension_numbers={"layers": optax.contrib.MuonDimensionNumbers(1, 2)}
        )
        g = {"layers": params["layers"]}
        u, _ = ours.update(g, ours.init(g))
        with jax.numpy_dtype_promotion("standard"):
            ut, _ = theirs.update(g, theirs.init(g))
        np.testing.assert_allclose(u["layers"], ut["layers"], rtol=1e-5, atol=1e-5)
        single, _ = scale_by_muon().update({"w": g["layers"][1]}, scale_by_muon().init({"w": g["layers"][1]}))
        np.testing.assert_allclose(u["layers"][1], single["w"], rtol=1e-6, atol=1e-6)


# --- Labelling -----------------------------------------------------------------------------------


def _groups(state: Any) -> dict[str, list[str]]:
    out = {}
    for label in ("muon", "adam"):
        mu = state.inner_states[label].inner_state[0].mu
        out[label] = sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(mu)[0])
    return out


def test_default_labelling_keeps_embeddings_heads_and_vectors_out_of_muon() -> None:
    params = {
        "Embed_0": {"embedding": jnp.zeros((10, 4))},
        "wte": jnp.zeros((10, 4)),
        "block": {"attn": {"kernel": jnp.zeros((4, 4))}, "mlp": {"kernel": jnp.zeros((4, 8))}, "norm": jnp.ones(4)},
        "lm_head": {"kernel": jnp.zeros((4, 10))},
        "conv": jnp.zeros((3, 3, 4)),
    }
    groups = _groups(muon(0.01).init(params))
    assert groups["muon"] == ["['block']['attn']['kernel']", "['block']['mlp']['kernel']"]
    assert len(groups["adam"]) == 5
    # Overridden: optax's labelling (every 2-D leaf), given as dimension numbers.
    groups = _groups(muon(0.01, muon_weight_dimension_numbers=_ours_labels).init(params))
    assert len(groups["muon"]) == 5 and groups["adam"] == ["['block']['norm']", "['conv']"]


def test_a_prefix_of_dimension_numbers_routes_whole_subtrees() -> None:
    params = {"embed": jnp.ones((6, 4)), "layers": {"w": jnp.ones((2, 4, 4)), "v": jnp.ones((2, 4, 3))}}
    tx = muon(0.01, muon_weight_dimension_numbers={"embed": None, "layers": MuonDimensionNumbers(1, 2)})
    state = tx.init(params)
    assert _groups(state) == {"muon": ["['layers']['v']", "['layers']['w']"], "adam": ["['embed']"]}
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, params)


# --- Errors ---------------------------------------------------------------------------------------


def test_a_vector_is_refused_naming_the_leaf_and_where_to_route_it() -> None:
    params = {"w": jnp.ones((3, 2)), "bias": jnp.ones(2)}
    tx = scale_by_muon()
    with pytest.raises(ValueError, match=r"updates\['bias'\] has shape \[2\].*gradtx.partition.*'adam'"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match=r"updates\['bias'\] has shape \[2\].*gradtx.partition"):
        jax.jit(tx.update)(params, tx.init(params))


def test_more_than_two_dimensions_need_a_layer_axis() -> None:
    params = {"conv": jnp.ones((3, 3, 2))}
    tx = scale_by_muon()
    with pytest.raises(ValueError, match=r"updates\['conv'\] has shape \[3, 3, 2\] and no MuonDimensionNumbers"):
        tx.update(params, tx.init(params))


def test_muon_dimension_numbers_on_a_vector_name_the_adam_label_at_init() -> None:
    params = {"w": jnp.ones((3, 2)), "norm": {"scale": jnp.ones(2)}}
    tx = muon(0.01, muon_weight_dimension_numbers=MuonDimensionNumbers())
    with pytest.raises(ValueError, match=r"params\['norm'\]\['scale'\].*Give it None.*'adam' label"):
        tx.init(params)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ns_coeffs": (1.0, 2.0)}, "ns_coeffs"),
        ({"ns_coeffs": ((1.0, 2.0, 3.0),) * 6}, "more than `ns_steps`"),
        ({"ns_steps": 0}, "ns_steps"),
        ({"beta": 1.0}, "beta"),
        ({"eps": -1.0}, "eps"),
        ({"preconditioning": "newton"}, "preconditioning"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scale_by_muon(**kwargs)


def test_unknown_preset_and_overlapping_axes_are_named() -> None:
    with pytest.raises(ValueError, match="unknown `ns_coeffs` preset 'polar'"):
        muon(0.01, ns_coeffs="polar")
    tx = scale_by_muon(weight_dimension_numbers=MuonDimensionNumbers(0, 0))
    with pytest.raises(ValueError, match="disjoint"):
        tx.update({"w": jnp.ones((2, 2))}, tx.init({"w": jnp.ones((2, 2))}))


# --- Sharding -------------------------------------------------------------------------------------

SHAPES = {"tall": (64, 16), "wide": (16, 64), "layers": (8, 16, 32), "bias": (16,)}
SPECS = {"tall": P("x", None), "wide": P(None, "x"), "layers": P("x", None, None), "bias": P()}
DIMS = {"tall": MuonDimensionNumbers(), "wide": MuonDimensionNumbers(), "layers": MuonDimensionNumbers(1, 2)}


def _sharded_case() -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(3)
    params = {k: jnp.asarray(rng.normal(size=s)) for k, s in SHAPES.items()}
    grads = jax.tree.map(lambda p: jnp.cos(3.0 * p), params)
    tx = muon(0.02, weight_decay=0.01, muon_weight_dimension_numbers={**DIMS, "bias": None})
    return params, grads, tx


def _two_steps(tx: Any, params: Any, grads: Any, state: Any) -> Any:
    def step(p: Any, s: Any) -> Any:
        u, s = tx.update(grads, s, p)
        return gradtx.apply_updates(p, u), s

    jstep = jax.jit(step)
    p, s = jstep(params, state)
    return jstep, jstep(p, s)


@pytest.mark.parametrize("mode", ["auto", "explicit"])
def test_sharded_newton_schulz_equals_the_unsharded_run_without_a_gather(mode: str) -> None:
    params, grads, tx = _sharded_case()
    _, (want_p, want_s) = _two_steps(tx, params, grads, tx.init(params))
    kind = AxisType.Explicit if mode == "explicit" else AxisType.Auto
    mesh = jax.make_mesh((8,), ("x",), axis_types=(kind,))
    shardings = {k: NamedSharding(mesh, s) for k, s in SPECS.items()}
    with jax.set_mesh(mesh):
        p = jax.device_put(params, shardings)
        g = jax.device_put(grads, shardings)
        state = jax.device_put(tx.init(params), state_shardings(tx, params, shardings))
        jstep, (got_p, got_s) = _two_steps(tx, p, g, state)
        hlo = jstep.lower(p, state).compile().as_text()
    for a, b in zip(jax.tree.leaves((got_p, got_s)), jax.tree.leaves((want_p, want_s)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9)
    # No collective moves a whole matrix: nothing is all-gathered, and what is all-reduced is at
    # most a (batch of) 16 x 16 Gram matrices and norms (the smaller side of every matrix).
    assert "all-gather" not in hlo and "all-to-all" not in hlo
    reduced = [line for line in hlo.splitlines() if " all-reduce(" in line]
    assert reduced, "expected the Gram matrices to be all-reduced"
    for line in reduced:
        for shape in line.split(" all-reduce(")[0].split("=", 1)[1].replace("(", " ").split():
            if shape.startswith("f64["):
                dims = [int(d) for d in shape[4:].split("]")[0].split(",") if d]
                assert int(np.prod(dims)) <= 8 * 16 * 16, line
    # Every device holds its own eighth of each sharded param and momentum, never the whole.
    mu = got_s.inner_states["muon"].inner_state[0].mu
    for name in ("tall", "wide", "layers"):
        for leaf in (got_p[name], mu[name]):
            assert {s.data.size for s in leaf.addressable_shards} == {int(np.prod(SHAPES[name])) // 8}, name


@pytest.mark.parametrize("zero_stage", [1, 3])
def test_zero_train_step_with_muon_equals_the_single_device_run(zero_stage: int) -> None:
    """ZeRO-1 (state partitioned) and FSDP (params too) over 8 devices: the same params as one device."""
    rng = np.random.default_rng(4)
    params = {"w1": jnp.asarray(rng.normal(size=(32, 8)) * 0.3), "w2": jnp.asarray(rng.normal(size=(8, 4)) * 0.3)}
    x, y = jnp.asarray(rng.normal(size=(16, 32))), jnp.asarray(rng.normal(size=(16, 4)))

    def loss_fn(p: Any, batch: Any) -> jax.Array:
        bx, by = batch
        return jnp.mean((jnp.tanh(bx @ p["w1"]) @ p["w2"] - by) ** 2)

    tx = muon(0.02)
    want, state = params, tx.init(params)
    for _ in range(3):
        updates, state = tx.update(jax.grad(loss_fn)(want, (x, y)), state, want)
        want = gradtx.apply_updates(want, updates)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    zero = gradtx.sharding.zero_train_step(loss_fn, tx, mesh, params, zero_stage=zero_stage)
    p, s = zero.init(params)
    for _ in range(3):
        p, s, _ = zero.step(p, s, (x, y))
    for k in params:
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(want[k]), rtol=1e-9, atol=1e-9, err_msg=k)
    mu = s.inner_states["muon"].inner_state[0].mu["w1"]
    assert {sh.data.size for sh in mu.addressable_shards} == {32 * 8 // 8}


def test_a_matrix_sharded_on_its_smaller_side_is_gathered_once_in_explicit_mode() -> None:
    """Contracting the smaller side would all-reduce a Gram matrix larger than the update: the matrix is
    gathered along its sharded side once per step (not once per product), iterated, and sliced back."""
    rng = np.random.default_rng(5)
    params = {"w": jnp.asarray(rng.normal(size=(16, 64)))}
    tx = scale_by_muon()
    want, _ = tx.update(params, tx.init(params))
    mesh = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Explicit,))
    with jax.set_mesh(mesh):
        p = jax.device_put(params, NamedSharding(mesh, P("x", None)))
        update = jax.jit(lambda g, s: tx.update(g, s))
        got, _ = update(p, tx.init(p))
        hlo = update.lower(p, tx.init(p)).compile().as_text()
    np.testing.assert_allclose(np.asarray(got["w"]), np.asarray(want["w"]), rtol=1e-9, atol=1e-9)
    assert got["w"].sharding.spec == P("x", None)
    assert sum(" all-gather(" in line for line in hlo.splitlines()) == 1


@pytest.mark.parametrize(
    "dims", [MuonDimensionNumbers(0, 5), MuonDimensionNumbers(-3, 1), MuonDimensionNumbers((0,), (2,))]
)
def test_axes_outside_the_leaf_are_named_not_wrapped(dims: MuonDimensionNumbers) -> None:
    # Taken modulo the rank, axis 5 of a matrix was silently axis 1.
    params = {"w": jnp.ones((4, 3), jnp.float32)}
    tx = scale_by_muon(weight_dimension_numbers={"w": dims})
    with pytest.raises(ValueError, match=r"updates\['w'\] has shape \[4, 3\].*every axis must be in \[-2, 2\)"):
        tx.update(params, tx.init(params), params)
    negative = scale_by_muon(weight_dimension_numbers={"w": MuonDimensionNumbers(-2, -1)})
    got, _ = negative.update(params, negative.init(params), params)
    want, _ = scale_by_muon().update(params, scale_by_muon().init(params), params)
    np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(want["w"]))
