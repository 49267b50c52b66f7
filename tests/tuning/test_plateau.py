"""reduce_on_plateau: torch's ReduceLROnPlateau rules with optax's signature."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

LOSSES = [5.0, 4.0, 4.0, 3.99999, 4.1, 4.2, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 1.0]
LOSSES = LOSSES + [1.0] * 12 + [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]


def reference_scales(losses, factor, patience, rtol, atol, cooldown, min_scale):
    """ReduceLROnPlateau's rules written out (mode='min'), with gradtx's patience (torch's + 1)."""
    scale, best, bad, cool, out = 1.0, float("inf"), 0, 0, []
    for v in losses:
        if v < (1 - rtol) * best - atol:
            best, bad = v, 0
        else:
            bad += 1
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad >= patience:
            scale, cool, bad = max(scale * factor, min_scale), cooldown, 0
        out.append(scale)
    return out


def run(tx, losses):
    params = {"w": jnp.ones(2, jnp.float32)}
    state = tx.init(params)
    step = jax.jit(lambda s, v: tx.update({"w": jnp.ones(2, jnp.float32)}, s, params, value=v))
    scales, updates = [], []
    for v in losses:
        u, state = step(state, jnp.float32(v))
        scales.append(float(state.scale))
        updates.append(float(u["w"][0]))
    return np.array(scales), np.array(updates), state


def test_signature_matches_optax():
    optax = pytest.importorskip("optax")
    ours = inspect.signature(gradtx.reduce_on_plateau).parameters
    theirs = inspect.signature(optax.contrib.reduce_on_plateau).parameters
    optax_part = [(p.name, p.default) for p in ours.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert optax_part == [(p.name, p.default) for p in theirs.values()]
    # torch's spelling comes after optax's arguments, keyword-only, so optax code runs unchanged.
    assert [p.name for p in ours.values() if p.kind is inspect.Parameter.KEYWORD_ONLY] == [
        "threshold",
        "threshold_mode",
    ]
    assert gradtx.ReduceLROnPlateauState._fields == optax.contrib.ReduceLROnPlateauState._fields


@pytest.mark.parametrize(
    "kw",
    [{}, {"patience": 2, "cooldown": 2, "factor": 0.5, "min_scale": 0.1}, {"rtol": 0.0, "atol": 0.5, "patience": 1}],
)
def test_against_reference_rules(kw):
    args = {"factor": 0.1, "patience": 3, "rtol": 1e-4, "atol": 0.0, "cooldown": 0, "min_scale": 0.0} | kw
    scales, updates, state = run(gradtx.reduce_on_plateau(**args), LOSSES)
    expected = reference_scales(LOSSES, **args)
    np.testing.assert_allclose(scales, expected, rtol=1e-6)
    np.testing.assert_allclose(updates, expected, rtol=1e-6)  # the new scale applies to the same call's updates
    assert state.best_value.dtype == jnp.float32 and state.plateau_count.dtype == jnp.int32


@pytest.mark.parametrize("mode,threshold", [("rel", 1e-4), ("abs", 0.3)])
def test_matches_torch_reduce_lr_on_plateau(mode, threshold):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=2, threshold=threshold, threshold_mode=mode, cooldown=1, min_lr=0.02
    )
    torch_scales = []
    for v in LOSSES:
        sched.step(v)
        torch_scales.append(opt.param_groups[0]["lr"])
    rtol, atol = (threshold, 0.0) if mode == "rel" else (0.0, threshold)
    tx = gradtx.reduce_on_plateau(factor=0.5, patience=3, rtol=rtol, atol=atol, cooldown=1, min_scale=0.02)
    np.testing.assert_allclose(run(tx, LOSSES)[0], torch_scales, rtol=1e-6)
    torch_spelling = gradtx.reduce_on_plateau(
        factor=0.5, patience=3, cooldown=1, min_scale=0.02, threshold=threshold, threshold_mode=mode
    )
    np.testing.assert_allclose(run(torch_spelling, LOSSES)[0], torch_scales, rtol=1e-6)


def test_threshold_flags_errors():
    with pytest.raises(ValueError, match="`threshold_mode` must be 'rel' or 'abs'"):
        gradtx.reduce_on_plateau(threshold_mode="max")
    with pytest.raises(ValueError, match="not both"):
        gradtx.reduce_on_plateau(rtol=1e-3, threshold=1e-2)
    with pytest.raises(ValueError, match="`threshold`"):
        gradtx.reduce_on_plateau(threshold=-1.0)


def test_accumulation_and_chain():
    values = [3.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # averaged in pairs: 2 (best), 2 (bad 1), 2 (bad 2: reduce)
    tx = gradtx.chain(gradtx.sgd(1.0), gradtx.reduce_on_plateau(patience=2, accumulation_size=2, factor=0.5))
    params = jnp.ones(2, jnp.float32)
    state = tx.init(params)
    scales = []
    for v in values:
        _, state = tx.update(jnp.ones(2, jnp.float32), state, params, value=v)
        scales.append(float(state[1].scale))
    assert scales == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]


def test_errors():
    for kw, name in [
        ({"factor": 1.0}, "factor"),
        ({"patience": 0}, "patience"),
        ({"rtol": -1.0}, "rtol"),
        ({"atol": -1.0}, "atol"),
        ({"cooldown": -1}, "cooldown"),
        ({"accumulation_size": 0}, "accumulation_size"),
        ({"min_scale": -0.1}, "min_scale"),
        # A floor above the starting scale 1 would raise the learning rate at a plateau.
        ({"min_scale": 2.0}, "min_scale"),
        ({"patience": 2**31}, "patience"),
    ]:
        with pytest.raises(ValueError, match=name):
            gradtx.reduce_on_plateau(**kw)
    # Counts are ints: a fraction was truncated silently (patience 2.5 acted as 2).
    for kw, name in [
        ({"patience": 2.5}, "patience"),
        ({"patience": True}, "patience"),
        ({"cooldown": 0.5}, "cooldown"),
        ({"accumulation_size": 1.5}, "accumulation_size"),
    ]:
        with pytest.raises(TypeError, match=f"`{name}` must be an int"):
            gradtx.reduce_on_plateau(**kw)
    tx = gradtx.reduce_on_plateau()
    state = tx.init(jnp.ones(2, jnp.float32))
    with pytest.raises(TypeError, match="value"):  # a missing argument, as in Python
        tx.update(jnp.ones(2, jnp.float32), state)
    with pytest.raises(ValueError, match="scalar"):
        tx.update(jnp.ones(2, jnp.float32), state, value=jnp.ones(2, jnp.float32))
